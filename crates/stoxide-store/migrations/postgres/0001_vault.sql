-- The token vault (PostgreSQL). Every BYTEA column holds ciphertext sealed by stoxide-vault, with
-- the row's identity and the column's name bound as associated data. Times are epoch
-- milliseconds (UTC). The same tables as migrations/sqlite/0001_vault.sql.

CREATE TABLE vault_meta (
    name  TEXT PRIMARY KEY NOT NULL,
    value BYTEA NOT NULL
);

-- Upstox apps whose credentials we hold. Individual mode: a user's own app; vendor mode: one
-- app that many users log in to.
CREATE TABLE apps (
    client_id    TEXT PRIMARY KEY NOT NULL,
    secret       BYTEA,
    redirect_uri TEXT NOT NULL,
    mode         TEXT NOT NULL CHECK (mode IN ('individual', 'vendor')),
    base_url     TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);

-- One row per Upstox user (the account id is the Upstox user id).
CREATE TABLE accounts (
    id             TEXT PRIMARY KEY NOT NULL,
    client_id      TEXT,
    user_name      TEXT,
    base_url       TEXT NOT NULL,
    access_token   BYTEA,
    extended_token BYTEA,
    issued_at      BIGINT,
    expires_at     BIGINT,
    source         TEXT CHECK (source IN ('oauth', 'token-request', 'imported')),
    checked_at     BIGINT,
    check_result   TEXT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
