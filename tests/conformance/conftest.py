"""Starts `stoxide sim` for the official-SDK conformance tests and points the SDK at it."""
import json
import os
import subprocess
import sys
import urllib.parse
import http.client

import pytest


def _binary():
    path = os.environ.get("STOXIDE_BIN")
    if path:
        return path
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(root, "target"))
    return os.path.join(target, "debug", "stoxide")


@pytest.fixture(scope="session")
def sim():
    proc = subprocess.Popen(
        [_binary(), "sim", "--addr", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=sys.stderr,
        text=True,
    )
    try:
        banner = json.loads(proc.stdout.readline())
        yield banner
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def client_of(sim, user_index):
    """An SDK client holding the token of the simulator's user `user_index` (each user has its
    own order-rate budget, so tests that place many orders use users of their own)."""
    import upstox_client

    config = upstox_client.Configuration()
    config.host = sim["base_url"]
    config.order_host = sim["base_url"]
    config.access_token = sim["users"][user_index]["access_token"]
    return upstox_client.ApiClient(config)


@pytest.fixture()
def api_client(sim):
    return client_of(sim, 0)


@pytest.fixture()
def gtt_client(sim):
    """SIM003: the GTT tests' orders stay out of SIM001's order-rate budget."""
    return client_of(sim, 2)


def login_code(sim, app, user, state="conformance"):
    """Submits the simulator's login form the way a browser does; returns the redirect's code."""
    base = urllib.parse.urlparse(sim["base_url"])
    conn = http.client.HTTPConnection(base.hostname, base.port, timeout=10)
    body = urllib.parse.urlencode(
        {
            "client_id": app["client_id"],
            "redirect_uri": app["redirect_uri"],
            "state": state,
            "user_id": user["user_id"],
            "pin": user["pin"],
        }
    )
    conn.request("POST", "/v2/login/authorization/dialog", body, {"Content-Type": "application/x-www-form-urlencoded"})
    resp = conn.getresponse()
    assert resp.status == 302, resp.status
    query = urllib.parse.parse_qs(urllib.parse.urlparse(resp.getheader("Location")).query)
    assert query["state"] == [state]
    return query["code"][0]
