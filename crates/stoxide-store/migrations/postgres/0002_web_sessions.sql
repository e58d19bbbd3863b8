-- Signed-in browsers of the dashboard (and the portal to come), so a restart signs nobody out.
-- The session id is the cookie's secret: only its SHA-256 is stored. Times are epoch
-- milliseconds (UTC).
CREATE TABLE web_sessions (
    id_hash      TEXT PRIMARY KEY NOT NULL,
    username     TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    -- The outcome of the last form, shown once by the next page (server-written text only).
    flash        TEXT
);
CREATE INDEX web_sessions_by_expiry ON web_sessions (expires_at);
CREATE INDEX web_sessions_by_user ON web_sessions (username);
