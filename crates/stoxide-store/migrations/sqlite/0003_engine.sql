-- The execution engine's records. JSON columns hold the engine's own types; money is decimal
-- text (exact on both backends). Times are epoch milliseconds (UTC).

-- The catalog: each strategy's definition as JSON, and its version.
CREATE TABLE strategies (
    id          TEXT PRIMARY KEY NOT NULL,
    version     INTEGER NOT NULL,
    definition  TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- One account following one strategy: its inputs, state and consent (JSON).
CREATE TABLE subscriptions (
    id          TEXT PRIMARY KEY NOT NULL,
    account     TEXT NOT NULL,
    strategy    TEXT NOT NULL,
    inputs      TEXT NOT NULL,
    state       TEXT NOT NULL,
    consent     TEXT,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX subscriptions_by_strategy ON subscriptions (strategy);
CREATE INDEX subscriptions_by_account ON subscriptions (account);

-- Every signal received, accepted or refused; (strategy, id) is unique, so a signal sent twice
-- is one signal.
CREATE TABLE signals (
    strategy    TEXT NOT NULL,
    id          TEXT NOT NULL,
    body        TEXT NOT NULL,
    accepted    INTEGER NOT NULL,
    reason      TEXT,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (strategy, id)
);

-- One intent per (signal, subscription), keyed by the deterministic tag its order carries;
-- written before the order is sent.
CREATE TABLE intents (
    tag          TEXT PRIMARY KEY NOT NULL,
    strategy     TEXT NOT NULL,
    signal_id    TEXT NOT NULL,
    subscription TEXT NOT NULL,
    account      TEXT NOT NULL,
    plan         TEXT,
    state        TEXT NOT NULL,
    reason       TEXT,
    order_ids    TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX intents_by_signal ON intents (strategy, signal_id);
CREATE INDEX intents_by_state ON intents (state);

-- Each subscription's position per instrument (signed units), from its fills.
CREATE TABLE positions (
    subscription TEXT NOT NULL,
    instrument   TEXT NOT NULL,
    quantity     INTEGER NOT NULL,
    avg_price    TEXT NOT NULL,
    realised     TEXT NOT NULL,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (subscription, instrument)
);

-- Trading states and kill switches per level (global, user, subscription), kept across restarts.
CREATE TABLE trading_states (
    level       TEXT NOT NULL,
    target      TEXT NOT NULL,
    state       TEXT NOT NULL,
    reason      TEXT,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (level, target)
);

-- The hash-chained audit trail, append-only, and its head kept apart (a truncation shows).
CREATE TABLE audit_log (
    seq     INTEGER PRIMARY KEY NOT NULL,
    at_ms   INTEGER NOT NULL,
    kind    TEXT NOT NULL,
    user_id TEXT NOT NULL,
    body    TEXT NOT NULL,
    prev    TEXT NOT NULL,
    hash    TEXT NOT NULL
);
CREATE INDEX audit_by_user ON audit_log (user_id, at_ms);
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY NOT NULL,
    seq  INTEGER NOT NULL,
    hash TEXT NOT NULL
);
