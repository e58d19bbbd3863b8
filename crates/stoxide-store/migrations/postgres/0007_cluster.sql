-- Engine nodes sharing the work on one PostgreSQL (issue 12). Times are epoch milliseconds read
-- off the database's own clock, so nodes' clocks never decide who owns a user.

-- Each node's last sign of life; `egress` is the (static, whitelisted) address its orders leave
-- from; `info` is a JSON summary it writes with each heartbeat (users held, signals waiting).
CREATE TABLE cluster_nodes (
    name          TEXT PRIMARY KEY NOT NULL,
    egress        TEXT NOT NULL,
    heartbeat_ms  BIGINT NOT NULL,
    started_ms    BIGINT NOT NULL,
    info          TEXT NOT NULL DEFAULT '{}'
);

-- Who sends for an account now: one row per account, held by one node until `expires_ms`;
-- `epoch` grows each time the account changes hands.
CREATE TABLE cluster_leases (
    account      TEXT PRIMARY KEY NOT NULL,
    node         TEXT NOT NULL,
    epoch        BIGINT NOT NULL,
    expires_ms   BIGINT NOT NULL,
    acquired_ms  BIGINT NOT NULL
);
CREATE INDEX cluster_leases_by_node ON cluster_leases (node);

-- The addresses an account's Upstox app has whitelisted (comma-separated); the row for '*'
-- holds a vendor app's addresses for every account without its own row.
CREATE TABLE cluster_egress (
    account    TEXT PRIMARY KEY NOT NULL,
    addresses  TEXT NOT NULL
);
