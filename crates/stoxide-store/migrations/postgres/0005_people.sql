-- The portal's people: operators (the vendor's staff, who run everything) and clients (each
-- sees and acts on their own Upstox accounts only). A password is an argon2id PHC string, set
-- when the person accepts their invitation; a TOTP secret is sealed by the vault's key like every
-- other secret. Times are epoch milliseconds (UTC).
CREATE TABLE people (
    id            TEXT PRIMARY KEY NOT NULL,
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL,
    password_phc  TEXT,
    totp_sealed   BYTEA,
    disabled      BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

-- Single-use invitation links: only the SHA-256 of the link's secret is kept.
CREATE TABLE invitations (
    token_hash  TEXT PRIMARY KEY NOT NULL,
    person_id   TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);
CREATE INDEX invitations_by_person ON invitations (person_id);

-- Which linked Upstox accounts (the vault's) belong to which person: every client-facing read
-- is scoped through this table.
CREATE TABLE person_accounts (
    person_id   TEXT NOT NULL,
    account     TEXT NOT NULL UNIQUE,
    linked_at   BIGINT NOT NULL,
    PRIMARY KEY (person_id, account)
);
