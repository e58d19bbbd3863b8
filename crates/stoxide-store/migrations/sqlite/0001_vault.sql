-- The token vault. Every BLOB column holds ciphertext: [version 1][24-byte nonce][XChaCha20-Poly1305
-- ciphertext + tag], with the row's identity and the column's name bound as associated data.
-- Times are epoch milliseconds (UTC).

CREATE TABLE vault_meta (
    name  TEXT PRIMARY KEY NOT NULL,
    value BLOB NOT NULL
);

-- Upstox apps whose credentials we hold. Individual mode: a user's own app; vendor mode: one
-- app that many users log in to.
CREATE TABLE apps (
    client_id    TEXT PRIMARY KEY NOT NULL,
    secret       BLOB,
    redirect_uri TEXT NOT NULL,
    mode         TEXT NOT NULL CHECK (mode IN ('individual', 'vendor')),
    base_url     TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);

-- One row per Upstox user (the account id is the Upstox user id).
CREATE TABLE accounts (
    id             TEXT PRIMARY KEY NOT NULL,
    client_id      TEXT,
    user_name      TEXT,
    base_url       TEXT NOT NULL,
    access_token   BLOB,
    extended_token BLOB,
    issued_at      INTEGER,
    expires_at     INTEGER,
    source         TEXT CHECK (source IN ('oauth', 'token-request', 'imported')),
    checked_at     INTEGER,
    check_result   TEXT,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
