#!/usr/bin/env bash
# Fuzzes the portal's JSON API with schemathesis against a running `stoxide serve`: a fresh data
# directory, a first operator, their bearer token; every documented route is generated from
# openapi.json and each answer must be no 5xx and conform to the document (status, content type,
# body schema). Used by scripts/test.sh; needs the debug binary and .venv with schemathesis.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${STOXIDE_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/debug/stoxide}"
DATA="$(mktemp -d)"
PORT="$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
PASSWORD="fuzzing operator password"
STOXIDE_DATA_DIR="$DATA" STOXIDE_OPERATOR_PASSWORD="$PASSWORD" STOXIDE_ADMIN_PASSWORD="$PASSWORD" \
    "$BIN" serve --addr "127.0.0.1:$PORT" --operator ops@fuzz.example >"$DATA/serve.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true; rm -rf "$DATA"' EXIT
URL="http://127.0.0.1:$PORT"
for _ in $(seq 1 100); do
    curl -fsS "$URL/healthz" >/dev/null 2>&1 && break
    kill -0 $SERVER 2>/dev/null || { cat "$DATA/serve.log" >&2; echo "stoxide serve stopped before answering" >&2; exit 1; }
    sleep 0.1
done
# Operators act only with two-factor sign-in: set it up the way an authenticator app would
# (RFC 6238 from the standard library), then sign in with password and code.
TOKEN="$(.venv/bin/python - "$URL" "$PASSWORD" <<'PY'
import base64, hashlib, hmac, json, struct, sys, time, urllib.request
url, password = sys.argv[1], sys.argv[2]
def call(method, path, body=None, token=None):
    req = urllib.request.Request(url + path, method=method, data=json.dumps(body).encode() if body is not None else None)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(req) as r:
        return json.load(r)
def code(secret):
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    mac = hmac.new(key, struct.pack(">Q", int(time.time()) // 30), hashlib.sha1).digest()
    o = mac[-1] & 15
    return "%06d" % ((struct.unpack(">I", mac[o:o + 4])[0] & 0x7FFFFFFF) % 1000000)
who = {"email": "ops@fuzz.example", "password": password}
first = call("POST", "/api/v1/sessions", who)["token"]
secret = call("POST", "/api/v1/me/two-factor", token=first)["secret"]
call("PUT", "/api/v1/me/two-factor", {"secret": secret, "code": code(secret)}, first)
print(call("POST", "/api/v1/sessions", dict(who, code=code(secret)))["token"])
PY
)"
# Signing out would end the token mid-run; it is covered by the Rust tests.
.venv/bin/schemathesis run "$URL/api/v1/openapi.json" \
    --header "Authorization: Bearer $TOKEN" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --exclude-path /api/v1/sessions/current \
    --max-time "${API_FUZZ_SECONDS:-60}" --workers 1 "$@"
curl -fsS "$URL/api/v1/me" -H "Authorization: Bearer $TOKEN" >/dev/null ||
    { echo "the operator's session did not survive the fuzzing run" >&2; exit 1; }
echo "portal API fuzzing passed"
