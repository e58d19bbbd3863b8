-- What each portal person wants to be told, and how: by email (to their sign-in address) and/or
-- a webhook; `events` is a JSON array of event kinds (login_today, order_rejected,
-- daily_loss_limit, subscription_paused). Times are epoch milliseconds (UTC).
CREATE TABLE notification_settings (
    person_id    TEXT PRIMARY KEY NOT NULL,
    email        BIGINT NOT NULL DEFAULT 0,
    webhook_url  TEXT,
    events       TEXT NOT NULL,
    updated_at   BIGINT NOT NULL
);

-- Each notification sent once: `about` names what it is about (an order's tag, an account and
-- an IST day, ...).
CREATE TABLE notifications_sent (
    person_id  TEXT NOT NULL,
    about      TEXT NOT NULL,
    sent_at    BIGINT NOT NULL,
    PRIMARY KEY (person_id, about)
);
