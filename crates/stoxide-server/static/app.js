// Live prices and stream health over Server-Sent Events; no polling, no framework.
(function () {
  "use strict";
  const rows = new Map();
  const series = new Map();
  function row(key) {
    if (!rows.has(key)) {
      const tr = document.querySelector('#prices tr[data-key="' + CSS.escape(key) + '"]');
      if (tr) rows.set(key, tr);
    }
    return rows.get(key);
  }
  function draw(key) {
    const tr = row(key);
    const points = series.get(key) || [];
    if (!tr || points.length < 2) return;
    const min = Math.min(...points), max = Math.max(...points);
    const span = max - min || 1;
    const step = 200 / (points.length - 1);
    const pts = points.map((p, i) => (i * step).toFixed(1) + "," + (38 - ((p - min) / span) * 36).toFixed(1));
    tr.querySelector("polyline").setAttribute("points", pts.join(" "));
  }
  function quotes(q) {
    for (const [key, v] of Object.entries(q)) {
      const tr = row(key);
      if (!tr) continue;
      tr.querySelector(".ltp").textContent = v.ltp.toFixed(2);
      const chg = tr.querySelector(".chg");
      chg.textContent = (v.change >= 0 ? "+" : "") + v.change.toFixed(2) + " (" + v.change_pct.toFixed(2) + "%)";
      chg.className = "chg " + (v.change >= 0 ? "up" : "down");
      tr.dataset.received = v.received_ms;
      const s = series.get(key) || [];
      if (s.length === 0 || s[s.length - 1] !== v.ltp) s.push(v.ltp);
      if (s.length > 600) s.shift();
      series.set(key, s);
      draw(key);
    }
  }
  function health(h) {
    document.getElementById("stream-state").textContent = h.state_text;
    document.getElementById("stream-reconnects").textContent = h.reconnects;
    document.getElementById("stream-error").textContent = h.last_error || "none";
    document.getElementById("stream-notice").textContent = h.notice || "";
  }
  setInterval(function () {
    const now = Date.now();
    document.querySelectorAll("#prices tr[data-key]").forEach(function (tr) {
      if (tr.dataset.received) {
        tr.querySelector(".age").textContent = ((now - Number(tr.dataset.received)) / 1000).toFixed(1) + " s ago";
      }
    });
  }, 500);
  // The session so far (one-minute closes), then live ticks extend it.
  document.querySelectorAll("#prices tr[data-key]").forEach(async function (tr) {
    const key = tr.dataset.key;
    try {
      const r = await fetch("/chart?key=" + encodeURIComponent(key), { headers: { Accept: "application/json" } });
      if (!r.ok) return;
      const closes = await r.json();
      series.set(key, closes.concat(series.get(key) || []).slice(-600));
      draw(key);
    } catch (_) { /* the chart starts with the live ticks */ }
  });
  const events = new EventSource("/events");
  events.addEventListener("quotes", (e) => quotes(JSON.parse(e.data)));
  events.addEventListener("health", (e) => health(JSON.parse(e.data)));
  events.addEventListener("instruments", () => window.location.reload());

  const search = document.getElementById("search");
  const results = document.getElementById("search-results");
  let timer = null;
  search.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(async function () {
      const q = search.value.trim();
      results.textContent = "";
      if (q.length < 2) return;
      const r = await fetch("/instruments/search?q=" + encodeURIComponent(q), { headers: { Accept: "application/json" } });
      if (!r.ok) return;
      for (const hit of await r.json()) {
        const li = document.createElement("li");
        li.textContent = hit.trading_symbol + " — " + hit.name + " (" + hit.instrument_key + ")";
        li.addEventListener("click", function () {
          document.getElementById("add-key").value = hit.instrument_key;
          document.getElementById("add-form").submit();
        });
        results.appendChild(li);
      }
    }, 250);
  });
  document.getElementById("search-form").addEventListener("submit", (e) => e.preventDefault());
})();
