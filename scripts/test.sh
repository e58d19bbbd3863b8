#!/usr/bin/env bash
# Runs every test of the workspace on a fresh machine: installs what the tests need (Debian's
# Chromium and ChromeDriver for the browser test, a Python venv with the official Upstox SDK and schemathesis;
# PostgreSQL, Redis and NATS (JetStream) are started when they are not running),
# checks formatting and lints, runs the Rust tests (the browser test included), a bounded fuzz run,
# then the official-SDK conformance tests against our simulator and schemathesis against the
# portal API. Tests talk to 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
# A one-shot run (CI) gains nothing from incremental caches, which double the target's size.
if [ "${CI:-}" = "true" ]; then export CARGO_INCREMENTAL=0; fi

step() { printf '\n==> %s\n' "$*"; }

step "Chromium and ChromeDriver for the browser test (Debian's chromium, chromium-driver)"
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver
fi
chromium --version 2>/dev/null || true
export STOXIDE_BROWSER_TESTS=1

step "Python venv with the official Upstox SDK (tests/conformance/requirements.txt)"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -r tests/conformance/requirements.txt

step "PostgreSQL on 127.0.0.1:5432 for the store's contract tests (started if it is not running)"
export STOXIDE_TEST_POSTGRES_URL="${STOXIDE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
pg_ready() { command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432; }
if ! pg_ready; then
    if command -v pg_ctlcluster >/dev/null 2>&1 && ls /etc/postgresql >/dev/null 2>&1; then
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
    fi
    for _ in $(seq 1 30); do pg_ready && break; sleep 1; done
fi
pg_ready || { echo "PostgreSQL is not reachable on 127.0.0.1:5432; the contract tests need it" >&2; exit 1; }
echo "PostgreSQL is ready ($STOXIDE_TEST_POSTGRES_URL); each test creates and drops its own database"

step "Redis on 127.0.0.1:6379 for the shared rate-limit budgets (started if it is not running)"
export STOXIDE_TEST_REDIS_URL="${STOXIDE_TEST_REDIS_URL:-redis://127.0.0.1:6379/0}"
redis_ready() { (exec 3<>/dev/tcp/127.0.0.1/6379 && printf 'PING\r\n' >&3 && head -c 5 <&3 | grep -q PONG) 2>/dev/null; }
if ! redis_ready; then
    if ! command -v redis-server >/dev/null 2>&1; then
        SUDO=""
        if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends redis-server
    fi
    mkdir -p /tmp/stoxide-redis
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
        --dir /tmp/stoxide-redis --logfile /tmp/stoxide-redis/redis.log || true
    for _ in $(seq 1 30); do redis_ready && break; sleep 1; done
fi
redis_ready || { echo "Redis is not reachable on 127.0.0.1:6379; the shared rate-limit tests need it" >&2; exit 1; }
echo "Redis is ready ($STOXIDE_TEST_REDIS_URL); each test keeps its keys under a prefix of its own"

step "NATS with JetStream on 127.0.0.1:4222 for the cluster test (started if it is not running)"
export STOXIDE_TEST_NATS_URL="${STOXIDE_TEST_NATS_URL:-nats://127.0.0.1:4222}"
nats_ready() { (exec 3<>/dev/tcp/127.0.0.1/4222 && head -c 4 <&3 | grep -q INFO) 2>/dev/null; }
if ! nats_ready; then
    if ! command -v nats-server >/dev/null 2>&1 && [ ! -x /usr/sbin/nats-server ]; then
        SUDO=""
        if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nats-server
    fi
    NATS_BIN="$(command -v nats-server || echo /usr/sbin/nats-server)"
    mkdir -p /tmp/stoxide-nats
    nohup "$NATS_BIN" -a 127.0.0.1 -p 4222 -js -sd /tmp/stoxide-nats -l /tmp/stoxide-nats/nats.log >/dev/null 2>&1 &
    for _ in $(seq 1 30); do nats_ready && break; sleep 1; done
fi
nats_ready || { echo "NATS is not reachable on 127.0.0.1:4222; the cluster test needs it (with -js)" >&2; exit 1; }
echo "NATS is ready ($STOXIDE_TEST_NATS_URL); the cluster test keeps its signals in a stream of its own"

step "disk before building"
df -h "$PWD" 2>/dev/null | tail -n 1 || true

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test"
cargo test --workspace --locked

step "fuzz: bounded runs of the frame decoder and the control-frame parser (cargo-fuzz)"
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked --quiet
# Only stable rustc exists here; RUSTC_BOOTSTRAP lets cargo-fuzz's -Z flags through.
# No input may panic (crash), hang (-timeout) or allocate without bound (-rss_limit_mb).
for target in feed_frame control_frame; do
    (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" -- -max_total_time="${FUZZ_SECONDS:-30}" -timeout=10 -rss_limit_mb=2048 2>&1 | tail -n 3)
done

step "official Python SDK against the simulator"
STOXIDE_BIN="$CARGO_TARGET_DIR/debug/stoxide" .venv/bin/python -m pytest -q tests/conformance

step "portal API fuzzing: schemathesis against a running stoxide serve (no 5xx, answers match openapi.json)"
STOXIDE_BIN="$CARGO_TARGET_DIR/debug/stoxide" ./scripts/fuzz-api.sh

step "benchmarks, smoke run: cargo xtask bench-all --quick (debug build; figures printed, never asserted)"
cargo run --quiet --locked -p xtask -- bench-all --quick --python .venv/bin/python

step "disk used by this run"
du -sh "$CARGO_TARGET_DIR" 2>/dev/null || true
df -h "$CARGO_TARGET_DIR" 2>/dev/null | tail -n 1 || true
