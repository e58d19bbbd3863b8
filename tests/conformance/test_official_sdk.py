"""The official Upstox Python SDK (PyPI upstox-python-sdk), unchanged, against the simulator.

Only Configuration.host and order_host are changed; every call below goes through the SDK's
own request building, routing (order host for place/modify/cancel) and model deserialization.
"""
import datetime
import time

import pytest
import upstox_client
from upstox_client.rest import ApiException

from conftest import login_code

V = "2.0"
RELIANCE = "NSE_EQ|INE002A01018"
NIFTY = "NSE_INDEX|Nifty 50"


def _body(exc):
    body = exc.value.body
    return body.decode() if isinstance(body, bytes) else body


def test_login_token_exchange_and_logout(sim):
    # The vendor app and its second user, so the first user's seeded token stays live for the
    # other tests (a new login revokes the previous token of the same app and user).
    app, user = sim["apps"][1], sim["users"][1]
    code = login_code(sim, app, user)
    config = upstox_client.Configuration()
    config.host = sim["base_url"]
    login = upstox_client.LoginApi(upstox_client.ApiClient(config))
    token = login.token(
        V, code=code, client_id=app["client_id"], client_secret=app["client_secret"],
        redirect_uri=app["redirect_uri"], grant_type="authorization_code",
    )
    assert token.user_id == user["user_id"]
    assert token.access_token
    with pytest.raises(ApiException) as reused:
        login.token(V, code=code, client_id=app["client_id"], client_secret=app["client_secret"],
                    redirect_uri=app["redirect_uri"], grant_type="authorization_code")
    assert "UDAPI100057" in _body(reused)

    config.access_token = token.access_token
    client = upstox_client.ApiClient(config)
    assert upstox_client.UserApi(client).get_profile(V).data.user_id == user["user_id"]
    assert upstox_client.LoginApi(client).logout(V).data is True
    with pytest.raises(ApiException) as dead:
        upstox_client.UserApi(client).get_profile(V)
    assert dead.value.status == 401
    assert "UDAPI100050" in _body(dead)


def test_token_request_for_indie_user(sim):
    # The vendor app: the simulated approval issues a token for its first user (SIM002), which
    # leaves SIM001's seeded token, used by the other tests, alive.
    app = sim["apps"][1]
    config = upstox_client.Configuration()
    config.host = sim["base_url"]
    login = upstox_client.LoginApi(upstox_client.ApiClient(config))
    body = upstox_client.IndieUserTokenRequest(client_secret=app["client_secret"])
    resp = login.init_token_request_for_indie_user(body, app["client_id"])
    assert resp.status == "success"
    assert int(resp.data.authorization_expiry) > 0


def test_user_profile_and_funds(api_client, sim):
    user = upstox_client.UserApi(api_client)
    assert user.get_profile(V).data.user_id == sim["users"][0]["user_id"]
    funds = user.get_user_fund_margin(V)
    assert funds.data["equity"].available_margin > 0
    v3 = user.get_user_fund_margin_v3()
    assert v3.status == "success"


def test_quotes_v2_and_v3(api_client):
    v2 = upstox_client.MarketQuoteApi(api_client)
    ltp = v2.ltp(RELIANCE, V)
    assert ltp.data["NSE_EQ:RELIANCE"].instrument_token == RELIANCE
    full = v2.get_full_market_quote(RELIANCE + "," + NIFTY, V)
    quote = full.data["NSE_EQ:RELIANCE"]
    assert quote.last_price > 0 and len(quote.depth.buy) == 5
    ohlc = v2.get_market_quote_ohlc(RELIANCE, "1d", V)
    assert ohlc.data["NSE_EQ:RELIANCE"].ohlc.high >= ohlc.data["NSE_EQ:RELIANCE"].ohlc.low

    v3 = upstox_client.MarketQuoteV3Api(api_client)
    l3 = v3.get_ltp(instrument_key=RELIANCE)
    assert l3.data["NSE_EQ:RELIANCE"].last_price > 0
    o3 = v3.get_market_quote_ohlc("I1", instrument_key=RELIANCE)
    assert o3.data["NSE_EQ:RELIANCE"].live_ohlc.close > 0


def test_history_v2_and_v3(api_client):
    today = datetime.date.today()
    frm = (today - datetime.timedelta(days=20)).isoformat()
    h2 = upstox_client.HistoryApi(api_client)
    days = h2.get_historical_candle_data1(RELIANCE, "day", today.isoformat(), frm, V)
    assert len(days.data.candles) >= 10
    h3 = upstox_client.HistoryV3Api(api_client)
    d3 = h3.get_historical_candle_data1(RELIANCE, "days", "1", today.isoformat(), frm)
    assert len(d3.data.candles) >= 10
    intraday = h3.get_intra_day_candle_data(RELIANCE, "minutes", "1")
    assert intraday.status == "success"
    assert h2.get_intra_day_candle_data(RELIANCE, "30minute", V).status == "success"


def test_market_status(api_client):
    status = upstox_client.MarketHolidaysAndTimingsApi(api_client).get_market_status("NSE")
    assert status.data.exchange == "NSE" and status.data.status


def test_holidays_and_exchange_timings(api_client):
    api = upstox_client.MarketHolidaysAndTimingsApi(api_client)
    holidays = api.get_holidays()
    assert holidays.status == "success" and isinstance(holidays.data, list)
    # 2026-12-07 is a Monday: every exchange's session, 09:15-15:30 IST for NSE.
    timings = api.get_exchange_timings("2026-12-07")
    by_exchange = {t.exchange: t for t in timings.data}
    assert set(by_exchange) == {"NSE", "NFO", "BSE", "BFO", "MCX"}
    ist = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
    opens = datetime.datetime.fromtimestamp(by_exchange["NSE"].start_time / 1000, ist)
    closes = datetime.datetime.fromtimestamp(by_exchange["NSE"].end_time / 1000, ist)
    assert (opens.hour, opens.minute, closes.hour, closes.minute) == (9, 15, 15, 30)
    # A Sunday: nothing trades; a day that is no holiday has none.
    assert api.get_exchange_timings("2026-12-06").data == []
    assert api.get_holiday("2026-12-07").data == []


def test_brokerage_and_margin(api_client):
    charges = upstox_client.ChargeApi(api_client)
    b = charges.get_brokerage(RELIANCE, 10, "D", "BUY", 2500.0, V)
    c = b.data.charges
    assert c.total > 0 and c.brokerage >= 0 and c.taxes.stt > 0
    body = upstox_client.MarginRequest(instruments=[
        upstox_client.Instrument(instrument_key=RELIANCE, quantity=10, product="I",
                                 transaction_type="BUY", price=2500.0),
    ])
    m = charges.post_margin(body)
    assert m.status == "success" and len(m.data.margins) == 1
    assert m.data.final_margin > 0


def test_trade_pnl_report(api_client):
    orders = upstox_client.OrderApiV3(api_client)
    for side, qty in (("BUY", 5), ("SELL", 5)):
        orders.place_order(upstox_client.PlaceOrderV3Request(
            quantity=qty, product="I", validity="DAY", price=0, instrument_token=RELIANCE,
            order_type="MARKET", transaction_type=side, disclosed_quantity=0, trigger_price=0,
            is_amo=False))
    ist = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
    # The simulator's day (its clock may run on another day than ours).
    now_ms = upstox_client.MarketHolidaysAndTimingsApi(api_client).get_market_status("NSE").data.last_updated
    today = datetime.datetime.fromtimestamp(now_ms / 1000, ist).date()
    start = today.year if today.month >= 4 else today.year - 1
    fy = f"{start % 100:02d}{(start + 1) % 100:02d}"
    pnl = upstox_client.TradeProfitAndLossApi(api_client)
    meta = pnl.get_trade_wise_profit_and_loss_meta_data("EQ", fy, V)
    assert meta.data.trades_count >= 1 and meta.data.page_size_limit > 0
    rows = pnl.get_trade_wise_profit_and_loss_data("EQ", fy, 1, 100, V)
    assert rows.metadata.page.page_number == 1
    assert any(r.scrip_name == "RELIANCE" and r.quantity == 5 for r in rows.data)
    charges = pnl.get_profit_and_loss_charges("EQ", fy, V)
    assert charges.data.charges_breakdown.total > 0


def test_options_contracts_chain_and_greeks(api_client):
    options = upstox_client.OptionsApi(api_client)
    contracts = options.get_option_contracts(NIFTY)
    assert len(contracts.data) > 100
    expiry = min(c.expiry for c in contracts.data)
    expiry = expiry if isinstance(expiry, str) else expiry.strftime("%Y-%m-%d")
    chain = options.get_put_call_option_chain(NIFTY, expiry)
    assert len(chain.data) > 50
    key = chain.data[len(chain.data) // 2].call_options.instrument_key
    greeks = upstox_client.MarketQuoteV3Api(api_client).get_market_quote_option_greek(instrument_key=key)
    assert next(iter(greeks.data.values())).delta > 0


def test_orders_v3_v2_book_trades_and_portfolio(api_client):
    v3 = upstox_client.OrderApiV3(api_client)
    body = upstox_client.PlaceOrderV3Request(
        quantity=2, product="I", validity="DAY", price=0, tag="conformance-1",
        instrument_token=RELIANCE, order_type="MARKET", transaction_type="BUY",
        disclosed_quantity=0, trigger_price=0, is_amo=False, slice=False,
    )
    placed = v3.place_order(body)
    order_id = placed.data.order_ids[0]

    v2 = upstox_client.OrderApi(api_client)
    status = v2.get_order_status(order_id=order_id)
    assert status.data.status == "complete"
    history = v2.get_order_details(V, order_id=order_id)
    assert history.data[-1].status == "complete"
    trades = v2.get_trades_by_order(order_id, V)
    assert trades.data[0].quantity == 2
    assert any(o.order_id == order_id for o in v2.get_order_book(V).data)
    assert len(v2.get_trade_history(V).data) >= 1

    low = resting_buy_price(api_client)
    limit = upstox_client.PlaceOrderRequest(
        quantity=1, product="I", validity="DAY", price=low, tag="conformance-2",
        instrument_token=RELIANCE, order_type="LIMIT", transaction_type="BUY",
        disclosed_quantity=0, trigger_price=0, is_amo=False,
    )
    open_id = v2.place_order(limit, V).data.order_id
    resting = v2.get_order_status(order_id=open_id).data
    assert resting.status == "open", (resting.status, resting.status_message, low)
    modify = upstox_client.ModifyOrderRequest(
        quantity=1, validity="DAY", price=round(low - 0.05, 2), order_id=open_id,
        order_type="LIMIT", disclosed_quantity=0, trigger_price=0,
    )
    assert v3.modify_order(modify).data.order_id == open_id
    assert v2.modify_order(modify, V).data.order_id == open_id
    assert v3.cancel_order(open_id).data.order_id == open_id
    with pytest.raises(ApiException) as again:
        v2.cancel_order(open_id, V)
    assert "UDAPI100040" in _body(again)

    portfolio = upstox_client.PortfolioApi(api_client)
    positions = portfolio.get_positions(V)
    assert any(p.instrument_token == RELIANCE and p.quantity == 2 for p in positions.data)
    assert len(portfolio.get_holdings(V).data) >= 1


def resting_buy_price(api_client):
    """A buy limit below the market that still lies inside the day's circuit limits (orders
    outside them are rejected, as by the exchange)."""
    q = upstox_client.MarketQuoteApi(api_client).get_full_market_quote(RELIANCE, V).data["NSE_EQ:RELIANCE"]
    price = q.lower_circuit_limit + (q.last_price - q.lower_circuit_limit) * 0.3
    return round(round(price / 0.05) * 0.05, 2)


def test_multi_order_cancel_all_and_exit(api_client):
    v2 = upstox_client.OrderApi(api_client)
    low = resting_buy_price(api_client)
    lines = [
        upstox_client.MultiOrderRequest(
            quantity=1, product="I", validity="DAY", price=0, tag="multi", slice=False,
            instrument_token=RELIANCE, order_type="MARKET", transaction_type="BUY",
            disclosed_quantity=0, trigger_price=0, is_amo=False, correlation_id="c1",
        ),
        upstox_client.MultiOrderRequest(
            quantity=1, product="I", validity="DAY", price=low, tag="multi", slice=False,
            instrument_token=RELIANCE, order_type="LIMIT", transaction_type="BUY",
            disclosed_quantity=0, trigger_price=0, is_amo=False, correlation_id="c2",
        ),
    ]
    resp = v2.place_multi_order(lines)
    assert resp.status == "success" and len(resp.data) == 2
    cancelled = v2.cancel_multi_order(tag="multi")
    assert cancelled.status == "success"
    exited = v2.exit_positions()
    assert exited.status == "success"


def _tick(x):
    return round(round(x / 0.05) * 0.05, 2)


def _ltp(api_client):
    q = upstox_client.MarketQuoteApi(api_client).get_full_market_quote(RELIANCE, V).data["NSE_EQ:RELIANCE"]
    return q.last_price


def _gtt(v3, gtt_id, done, timeout=20):
    deadline = time.time() + timeout
    while True:
        got = v3.get_gtt_order_details(gtt_order_id=gtt_id)
        assert got.status == "success" and len(got.data) == 1
        g = got.data[0]
        if done(g) or time.time() > deadline:
            return g
        time.sleep(0.2)


def test_gtt_place_fires_from_the_price_and_places_orders(gtt_client):
    api_client = gtt_client
    v3 = upstox_client.OrderApiV3(api_client)
    ltp = _ltp(api_client)
    body = upstox_client.GttPlaceOrderRequest(
        type="MULTIPLE", quantity=1, product="I", instrument_token=RELIANCE, transaction_type="BUY",
        rules=[
            upstox_client.GttRule(strategy="ENTRY", trigger_type="IMMEDIATE", trigger_price=_tick(ltp)),
            upstox_client.GttRule(strategy="TARGET", trigger_type="IMMEDIATE", trigger_price=_tick(ltp * 1.5)),
            # Above the market: fires as soon as the entry's order completes.
            upstox_client.GttRule(strategy="STOPLOSS", trigger_type="IMMEDIATE", trigger_price=_tick(ltp * 1.2)),
        ],
    )
    placed = v3.place_gtt_order(body)
    assert placed.status == "success"
    gtt_id = placed.data.gtt_order_ids[0]
    g = _gtt(v3, gtt_id, lambda g: all(r.status in ("COMPLETED", "CANCELLED", "FAILED") for r in g.rules))
    by = {r.strategy: r for r in g.rules}
    assert by["ENTRY"].status == "COMPLETED" and by["ENTRY"].transaction_type == "BUY", g
    assert by["STOPLOSS"].status == "COMPLETED" and by["STOPLOSS"].transaction_type == "SELL", g
    assert by["TARGET"].status == "CANCELLED", g
    assert g.instrument_token == RELIANCE and g.exchange == "NSE_EQ" and g.expires_at > g.created_at
    v2 = upstox_client.OrderApi(api_client)
    for r in (by["ENTRY"], by["STOPLOSS"]):
        assert v2.get_order_status(order_id=r.order_id).data.status == "complete"


def test_gtt_modify_get_and_cancel(gtt_client):
    api_client = gtt_client
    v3 = upstox_client.OrderApiV3(api_client)
    ltp = _ltp(api_client)
    entry = upstox_client.GttRule(strategy="ENTRY", trigger_type="BELOW", trigger_price=_tick(ltp * 0.5))
    placed = v3.place_gtt_order(upstox_client.GttPlaceOrderRequest(
        type="SINGLE", quantity=1, product="D", instrument_token=RELIANCE, transaction_type="BUY", rules=[entry],
    ))
    gtt_id = placed.data.gtt_order_ids[0]
    modify = upstox_client.GttModifyOrderRequest(
        type="MULTIPLE", quantity=2, gtt_order_id=gtt_id,
        rules=[entry, upstox_client.GttRule(strategy="STOPLOSS", trigger_type="IMMEDIATE",
                                            trigger_price=_tick(ltp * 0.4), trailing_gap=2.0)],
    )
    assert v3.modify_gtt_order(modify).data.gtt_order_ids == [gtt_id]
    g = v3.get_gtt_order_details(gtt_order_id=gtt_id).data[0]
    assert g.type == "MULTIPLE" and g.quantity == 2 and len(g.rules) == 2
    assert [r.status for r in g.rules] == ["PENDING", "SCHEDULED"]
    assert any(x.gtt_order_id == gtt_id for x in v3.get_gtt_order_details().data)
    assert v3.cancel_gtt_order(upstox_client.GttCancelOrderRequest(gtt_order_id=gtt_id)).status == "success"
    assert all(r.status == "CANCELLED" for r in v3.get_gtt_order_details(gtt_order_id=gtt_id).data[0].rules)
    with pytest.raises(ApiException) as bad:
        v3.place_gtt_order(upstox_client.GttPlaceOrderRequest(
            type="SINGLE", quantity=1, product="D", instrument_token=RELIANCE, transaction_type="BUY",
            rules=[upstox_client.GttRule(strategy="TARGET", trigger_type="ABOVE", trigger_price=_tick(ltp))],
        ))
    assert bad.value.status == 400 and "ENTRY" in _body(bad)


def test_errors_carry_upstox_codes(api_client):
    v3 = upstox_client.MarketQuoteV3Api(api_client)
    with pytest.raises(ApiException) as bad:
        v3.get_ltp(instrument_key="RELIANCE")
    assert bad.value.status == 400
    assert "UDAPI1026" in _body(bad)
