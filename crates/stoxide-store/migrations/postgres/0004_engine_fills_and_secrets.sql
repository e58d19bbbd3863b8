-- What each intent's orders filled (units) at what average price (decimal text), written in the
-- same transaction as the position it moved, so a fill is applied to a position exactly once.
ALTER TABLE intents ADD COLUMN filled BIGINT NOT NULL DEFAULT 0;
ALTER TABLE intents ADD COLUMN average_price TEXT;
CREATE INDEX intents_by_subscription ON intents (subscription, created_at);

-- The secret each external strategy signs its signals with, sealed by the vault's key like
-- every other secret (never stored in clear).
CREATE TABLE signing_secrets (
    strategy    TEXT PRIMARY KEY NOT NULL,
    secret      BYTEA NOT NULL,
    created_at  BIGINT NOT NULL
);
