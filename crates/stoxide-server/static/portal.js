// The portal's live page: orders and subscription states arrive over Server-Sent Events
// (/portal/events) and replace what the page shows; nothing is polled from here.
(function () {
  "use strict";
  // Today's Upstox token: a countdown to its end at 03:30 IST, ticking on this page's clock.
  function countdown() {
    document.querySelectorAll(".countdown[data-until]").forEach(function (el) {
      var left = Math.floor((Number(el.getAttribute("data-until")) - Date.now()) / 1000);
      if (!(left > 0)) { el.textContent = "ended: log in to Upstox again"; el.className = "countdown bad"; return; }
      var h = Math.floor(left / 3600), m = Math.floor(left / 60) % 60, s = left % 60;
      el.textContent = "ends 03:30 IST, in " + (h > 0 ? h + "h " + m + "m" : m + "m " + s + "s");
    });
  }
  countdown();
  setInterval(countdown, 1000);
  var own = document.getElementById("own-redirect");
  if (own && !own.value) own.value = location.origin + "/oauth/callback";
  var body = document.getElementById("orders-body");
  if (!body || !window.EventSource) return;
  var fields = ["time", "strategy", "account", "state", "filled", "reason"];
  function cell(v) {
    var td = document.createElement("td");
    td.textContent = v === undefined || v === null ? "" : String(v);
    return td;
  }
  var events = new EventSource("/portal/events");
  events.addEventListener("live", function (e) {
    var live;
    try { live = JSON.parse(e.data); } catch (_) { return; }
    var rows = (live.orders || []).map(function (o) {
      var tr = document.createElement("tr");
      fields.forEach(function (f) { tr.appendChild(cell(o[f])); });
      return tr;
    });
    body.replaceChildren.apply(body, rows);
    var monitor = document.querySelector("#signal-monitor tbody");
    if (monitor && live.signals) {
      var open = {};
      monitor.querySelectorAll("details[open]").forEach(function (d) { open[d.getAttribute("data-signal")] = true; });
      monitor.replaceChildren.apply(monitor, live.signals.map(function (g) {
        var tr = document.createElement("tr");
        [g.time, g.strategy, g.id, g.outcome].forEach(function (v) { tr.appendChild(cell(v)); });
        var fan = document.createElement("td");
        if (!g.orders.length) {
          fan.textContent = g.fanout;
        } else {
          var d = document.createElement("details");
          d.className = "fanout";
          d.setAttribute("data-signal", g.strategy + "/" + g.id);
          if (open[g.strategy + "/" + g.id]) d.open = true;
          var sum = document.createElement("summary");
          sum.textContent = g.fanout;
          d.appendChild(sum);
          var t = document.createElement("table");
          var head = document.createElement("tr");
          ["Account", "State", "Why", "Decided", "Last change"].forEach(function (h) {
            var th = document.createElement("th"); th.textContent = h; head.appendChild(th);
          });
          t.appendChild(head);
          g.orders.forEach(function (o) {
            var r = document.createElement("tr");
            [o.account, o.state, o.reason, o.decided, o.changed].forEach(function (v) { r.appendChild(cell(v)); });
            t.appendChild(r);
          });
          d.appendChild(t);
          fan.appendChild(d);
        }
        tr.appendChild(fan);
        return tr;
      }));
    }
    (live.subscriptions || []).forEach(function (pair) {
      var row = document.querySelector('tr[data-subscription="' + CSS.escape(pair[0]) + '"] .sub-state');
      if (!row) return;
      if (pair[1] === "awaiting_consent") {
        row.innerHTML = "";
        var span = document.createElement("span");
        span.className = "bad";
        span.textContent = "awaiting your consent — no orders until you confirm";
        row.appendChild(span);
      } else {
        row.textContent = pair[1];
      }
    });
  });
})();
