"""The official SDK's MarketDataStreamerV3 and PortfolioDataStreamer against the simulator.

The SDK hard-codes wss://api.upstox.com for its streamers (api-facts §11); the only change here
is a wrapper around websocket.WebSocketApp that swaps that host for the simulator's. Everything
else — the redirect on the direct connect, binary JSON control frames, protobuf decoding with the
SDK's own compiled schema, MessageToDict — is the SDK's unchanged code.
"""
import json
import threading

import pytest
import upstox_client
import websocket

from conftest import client_of

RELIANCE = "NSE_EQ|INE002A01018"
NIFTY = "NSE_INDEX|Nifty 50"


@pytest.fixture()
def ws_redirect(sim, monkeypatch):
    real = websocket.WebSocketApp
    ws_base = sim["base_url"].replace("http://", "ws://")

    def patched(url, *args, **kwargs):
        return real(url.replace("wss://api.upstox.com", ws_base), *args, **kwargs)

    monkeypatch.setattr(websocket, "WebSocketApp", patched)


def collect(streamer, until, timeout=20):
    """Runs a streamer until `until(messages)` holds; answers the messages."""
    messages, errors = [], []
    done = threading.Event()

    def on_message(m):
        messages.append(m)
        if until(messages):
            done.set()

    streamer.on("message", on_message)
    streamer.on("error", lambda e: errors.append(e))
    streamer.connect()
    ok = done.wait(timeout)
    streamer.disconnect()
    assert ok, f"timed out; errors={errors!r}; got {len(messages)} messages"
    return messages


def test_market_data_streamer_v3_receives_and_decodes(api_client, ws_redirect):
    streamer = upstox_client.MarketDataStreamerV3(api_client, [RELIANCE, NIFTY], "full")

    def enough(msgs):
        kinds = [m.get("type", "initial_feed") for m in msgs]
        return "market_info" in kinds and "initial_feed" in kinds and "live_feed" in kinds

    msgs = collect(streamer, enough)
    assert msgs[0]["type"] == "market_info"
    assert msgs[0]["marketInfo"]["segmentStatus"]["NSE_EQ"] in ("NORMAL_OPEN", "NORMAL_CLOSE", "CLOSING_END", "PRE_OPEN_START", "PRE_OPEN_END", "CLOSING_START")
    initial = next(m for m in msgs if "type" not in m)  # proto3 JSON omits the default initial_feed
    eq = initial["feeds"][RELIANCE]
    assert eq["requestMode"] == "full_d5"
    ff = eq["fullFeed"]["marketFF"]
    assert ff["ltpc"]["ltp"] > 0 and len(ff["marketLevel"]["bidAskQuote"]) == 5
    assert isinstance(ff["ltpc"]["ltt"], str), "int64 as string"
    idx = initial["feeds"][NIFTY]["fullFeed"]["indexFF"]
    assert idx["ltpc"]["ltp"] > 0


def test_ltpc_mode_and_rest_agree(api_client, ws_redirect):
    streamer = upstox_client.MarketDataStreamerV3(api_client, [RELIANCE], "ltpc")
    msgs = collect(streamer, lambda ms: any(RELIANCE in m.get("feeds", {}) for m in ms))
    feed = next(m for m in msgs if RELIANCE in m.get("feeds", {}))["feeds"][RELIANCE]
    ltp = feed["ltpc"]["ltp"]
    rest = upstox_client.MarketQuoteV3Api(api_client).get_ltp(instrument_key=RELIANCE).data["NSE_EQ:RELIANCE"].last_price
    assert abs(rest - ltp) / ltp < 0.01


def test_portfolio_data_streamer_gets_order_updates(api_client, ws_redirect):
    streamer = upstox_client.PortfolioDataStreamer(api_client, order_update=True, position_update=True)
    messages = []
    opened = threading.Event()
    got = threading.Event()

    def on_message(m):
        text = m.decode() if isinstance(m, bytes) else m
        messages.append(json.loads(text))
        # The order's completion and the position it opens are two messages; wait for both.
        if any(x.get("update_type") == "order" and x.get("status") == "complete" for x in messages) and any(
            x.get("update_type") == "position" for x in messages
        ):
            got.set()

    streamer.on("open", lambda: opened.set())
    streamer.on("message", on_message)
    streamer.connect()
    assert opened.wait(10)
    body = upstox_client.PlaceOrderV3Request(
        quantity=1, product="I", validity="DAY", price=0, tag="stream-test",
        instrument_token=RELIANCE, order_type="MARKET", transaction_type="BUY",
        disclosed_quantity=0, trigger_price=0, is_amo=False, slice=False,
    )
    upstox_client.OrderApiV3(api_client).place_order(body)
    ok = got.wait(10)
    streamer.disconnect()
    assert ok, messages
    order = next(x for x in messages if x.get("update_type") == "order" and x.get("status") == "complete")
    assert order["tag"] == "stream-test" and order["instrument_token"] == RELIANCE
    assert any(x.get("update_type") == "position" for x in messages)


def test_portfolio_data_streamer_gets_gtt_updates(sim, ws_redirect):
    api_client = client_of(sim, 2)
    streamer = upstox_client.PortfolioDataStreamer(api_client, order_update=False, gtt_update=True)
    messages = []
    opened = threading.Event()
    got = threading.Event()

    def on_message(m):
        text = m.decode() if isinstance(m, bytes) else m
        messages.append(json.loads(text))
        if any(x.get("update_type") == "gtt_order" and x["rules"][0]["status"] == "COMPLETED" for x in messages):
            got.set()

    streamer.on("open", lambda: opened.set())
    streamer.on("message", on_message)
    streamer.connect()
    assert opened.wait(10)
    v3 = upstox_client.OrderApiV3(api_client)
    placed = v3.place_gtt_order(upstox_client.GttPlaceOrderRequest(
        type="SINGLE", quantity=1, product="I", instrument_token=RELIANCE, transaction_type="BUY",
        rules=[upstox_client.GttRule(strategy="ENTRY", trigger_type="IMMEDIATE", trigger_price=1.0)],
    ))
    gtt_id = placed.data.gtt_order_ids[0]
    ok = got.wait(10)
    streamer.disconnect()
    assert ok, messages
    assert all(x.get("update_type") == "gtt_order" for x in messages), "only the asked-for type"
    done = next(x for x in messages if x["rules"][0]["status"] == "COMPLETED")
    assert done["gtt_order_id"] == gtt_id and done["instrument_token"] == RELIANCE
    assert done["rules"][0]["order_id"] and done["expires_at"] > done["created_at"]
