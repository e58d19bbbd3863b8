//! Notifications each person chooses: by email (SMTP, to their sign-in address) and/or a webhook
//! (a JSON POST), for "log in to Upstox today" (from 08:00 IST while an account's token is
//! missing), "order rejected" (with Upstox's words), "daily loss limit hit" and "subscription
//! paused". A [`Notifier`] scans the records every few seconds; every notification is claimed in
//! the store before it is sent, so it goes out once even with several processes. Delivery sits
//! behind [`Deliver`]; [`Delivery`] is the real one (lettre over SMTP, reqwest for webhooks).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use stoxide_people::{Person, Viewer};
use stoxide_store::{NotificationSettingsRow, Store};

use crate::{Error, Portal, Result};

/// What a person can be told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    LoginToday,
    OrderRejected,
    DailyLossLimit,
    SubscriptionPaused,
}

impl Event {
    pub const ALL: [Self; 4] = [
        Self::LoginToday,
        Self::OrderRejected,
        Self::DailyLossLimit,
        Self::SubscriptionPaused,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::LoginToday => "login_today",
            Self::OrderRejected => "order_rejected",
            Self::DailyLossLimit => "daily_loss_limit",
            Self::SubscriptionPaused => "subscription_paused",
        }
    }
}

/// A person's choices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// By email, to the sign-in address.
    pub email: bool,
    /// A webhook (http or https) that gets each notification as JSON.
    pub webhook_url: Option<String>,
    pub events: BTreeSet<Event>,
}

impl Default for Settings {
    /// Nothing is sent until the person chooses.
    fn default() -> Self {
        Self {
            email: false,
            webhook_url: None,
            events: BTreeSet::new(),
        }
    }
}

fn settings_of(row: &NotificationSettingsRow) -> Settings {
    Settings {
        email: row.email != 0,
        webhook_url: row.webhook_url.clone(),
        events: serde_json::from_str(&row.events).unwrap_or_default(),
    }
}

impl Portal {
    /// The signed-in person's notification settings.
    ///
    /// # Errors
    /// Store errors.
    pub async fn notification_settings(&self, v: &Viewer) -> Result<Settings> {
        let row = self
            .vault
            .store()
            .notification_settings(&v.person().id)
            .await
            .map_err(stoxide_engine::Error::from)?;
        Ok(row.as_ref().map(settings_of).unwrap_or_default())
    }

    /// Sets the signed-in person's notification settings.
    ///
    /// # Errors
    /// A webhook URL that is not http(s) ([`Error::Invalid`]); store errors.
    pub async fn set_notification_settings(&self, v: &Viewer, s: &Settings) -> Result<Settings> {
        if let Some(u) = &s.webhook_url {
            let ok = url::Url::parse(u).is_ok_and(|p| matches!(p.scheme(), "http" | "https") && p.host().is_some());
            if !ok {
                return Err(Error::Invalid(format!(
                    "the webhook {u:?} is not an http(s) URL (https://example.com/hook)"
                )));
            }
        }
        let row = NotificationSettingsRow {
            person_id: v.person().id.clone(),
            email: i64::from(s.email),
            webhook_url: s.webhook_url.clone(),
            events: serde_json::to_string(&s.events).unwrap_or_else(|_| "[]".into()),
            updated_at: chrono::Utc::now().timestamp_millis(),
        };
        self.vault
            .store()
            .put_notification_settings(&row)
            .await
            .map_err(stoxide_engine::Error::from)?;
        Ok(settings_of(&row))
    }
}

/// One notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    pub event: Event,
    /// Who it is for (their id and email).
    pub person: String,
    pub email: String,
    /// The account it is about.
    pub account: String,
    /// One line for a person.
    pub subject: String,
    pub message: String,
    /// Epoch ms.
    pub at: i64,
}

/// How notifications leave.
pub trait Deliver: Send + Sync {
    /// Sends `notice` by email to its person.
    fn email(&self, notice: &Notice) -> impl std::future::Future<Output = std::result::Result<(), String>> + Send;
    /// POSTs `notice` as JSON to `url`.
    fn webhook(
        &self,
        url: &str,
        notice: &Notice,
    ) -> impl std::future::Future<Output = std::result::Result<(), String>> + Send;
}

/// How the SMTP relay is reached.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    /// `starttls` (the default for 587), `tls` (465), or `none` (a relay on a private network).
    pub security: SmtpSecurity,
    /// The From address.
    pub from: String,
    pub username: Option<String>,
    pub password: Option<SecretString>,
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    StartTls,
    Tls,
    None,
}

impl std::str::FromStr for SmtpSecurity {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "starttls" => Ok(Self::StartTls),
            "tls" => Ok(Self::Tls),
            "none" => Ok(Self::None),
            other => Err(format!("{other:?} is not starttls, tls or none")),
        }
    }
}

/// The real delivery: lettre over SMTP (when configured) and reqwest for webhooks.
pub struct Delivery {
    smtp: Option<(
        lettre::AsyncSmtpTransport<lettre::Tokio1Executor>,
        lettre::message::Mailbox,
    )>,
    http: reqwest::Client,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("smtp", &self.smtp.is_some())
            .finish_non_exhaustive()
    }
}

impl Delivery {
    /// Email through `smtp` (none: email settings are kept but nothing is mailed), webhooks
    /// with a 10 s timeout.
    ///
    /// # Errors
    /// A From address or relay host that will not do ([`Error::Invalid`]).
    pub fn new(smtp: Option<&SmtpConfig>) -> Result<Self> {
        use lettre::AsyncSmtpTransport;
        use lettre::transport::smtp::authentication::Credentials;
        let smtp = match smtp {
            None => None,
            Some(c) => {
                let from: lettre::message::Mailbox = c
                    .from
                    .parse()
                    .map_err(|e| Error::Invalid(format!("the From address {:?} will not do: {e}", c.from)))?;
                let bad = |e: lettre::transport::smtp::Error| Error::Invalid(format!("the SMTP relay {}: {e}", c.host));
                let mut b = match c.security {
                    SmtpSecurity::StartTls => {
                        AsyncSmtpTransport::<lettre::Tokio1Executor>::starttls_relay(&c.host).map_err(bad)?
                    }
                    SmtpSecurity::Tls => AsyncSmtpTransport::<lettre::Tokio1Executor>::relay(&c.host).map_err(bad)?,
                    SmtpSecurity::None => AsyncSmtpTransport::<lettre::Tokio1Executor>::builder_dangerous(&c.host),
                }
                .port(c.port)
                .timeout(Some(Duration::from_secs(10)));
                if let (Some(u), Some(p)) = (&c.username, &c.password) {
                    b = b.credentials(Credentials::new(u.clone(), p.expose_secret().to_owned()));
                }
                Some((b.build(), from))
            }
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| Error::Invalid(format!("the webhook client: {e}")))?;
        Ok(Self { smtp, http })
    }
}

impl Deliver for Delivery {
    async fn email(&self, n: &Notice) -> std::result::Result<(), String> {
        use lettre::AsyncTransport;
        let Some((transport, from)) = &self.smtp else {
            return Err("no SMTP relay is configured".into());
        };
        let to: lettre::message::Mailbox = n.email.parse().map_err(|e| format!("the address {:?}: {e}", n.email))?;
        let message = lettre::Message::builder()
            .from(from.clone())
            .to(to)
            .subject(&n.subject)
            .header(lettre::message::header::ContentType::TEXT_PLAIN)
            .body(n.message.clone())
            .map_err(|e| e.to_string())?;
        transport.send(message).await.map(drop).map_err(|e| e.to_string())
    }

    async fn webhook(&self, url: &str, n: &Notice) -> std::result::Result<(), String> {
        let resp = self.http.post(url).json(n).send().await.map_err(|e| e.to_string())?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(format!("the webhook answered {}", resp.status()))
        }
    }
}

/// From this IST hour the "log in today" notice goes out for an account without a token.
pub const LOGIN_NOTICE_FROM_HOUR: u32 = 8;

/// Scans the records and sends what each person asked for.
pub struct Notifier<D> {
    store: Store,
    people: stoxide_people::People,
    deliver: Arc<D>,
    /// Records changed from here on are looked at (epoch ms).
    since: i64,
    /// Deliveries that failed (logged, counted; the notice is not retried).
    pub failures: u64,
}

impl<D> std::fmt::Debug for Notifier<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("since", &self.since)
            .field("failures", &self.failures)
            .finish_non_exhaustive()
    }
}

impl<D: Deliver> Notifier<D> {
    /// A notifier over `portal`'s records from `since` (epoch ms) on.
    pub fn new(portal: &Portal, deliver: Arc<D>, since: i64) -> Self {
        Self {
            store: portal.vault.store().clone(),
            people: portal.people.clone(),
            deliver,
            since,
            failures: 0,
        }
    }

    /// One scan at `now` (epoch ms): answers how many notices went out.
    ///
    /// # Errors
    /// Store errors.
    pub async fn scan(&mut self, now: i64) -> Result<usize> {
        let store_err = stoxide_engine::Error::from;
        let settings = self.store.all_notification_settings().await.map_err(store_err)?;
        if settings.is_empty() {
            self.since = now;
            return Ok(0);
        }
        let mut found: Vec<(Event, String, String, String, String)> = Vec::new(); // event, account, about, subject, message
        for i in self
            .store
            .intents_changed_since(self.since, 1000)
            .await
            .map_err(store_err)?
        {
            if i.state == "rejected" {
                let why = i.reason.clone().unwrap_or_else(|| "no reason given".into());
                found.push((
                    Event::OrderRejected,
                    i.account.clone(),
                    format!("rejected:{}", i.tag),
                    format!("Order rejected in {}", i.account),
                    format!(
                        "Upstox rejected the {} order for {} in {}: {why}",
                        i.strategy, i.subscription, i.account
                    ),
                ));
            }
        }
        let subs = self.store.subscriptions().await.map_err(store_err)?;
        for s in &subs {
            if s.updated_at >= self.since && (s.state == "paused" || s.state == "needs_login") {
                found.push((
                    Event::SubscriptionPaused,
                    s.account.clone(),
                    format!("paused:{}:{}", s.id, s.updated_at),
                    format!("Subscription {} paused", s.id),
                    if s.state == "needs_login" {
                        format!(
                            "{} is paused: Upstox refused {}'s token; log in again to resume.",
                            s.id, s.account
                        )
                    } else {
                        format!(
                            "{} in {} is paused: nothing trades for it until it is resumed.",
                            s.id, s.account
                        )
                    },
                ));
            }
        }
        let ist = chrono::DateTime::from_timestamp_millis(now)
            .unwrap_or_default()
            .with_timezone(&upstox_types::IST);
        let day = ist.format("%Y-%m-%d").to_string();
        for t in self.store.trading_states().await.map_err(store_err)? {
            let loss = t.reason.as_deref().is_some_and(|r| {
                matches!(
                    serde_json::from_str(r),
                    Ok(stoxide_engine::records::StateReason::DailyLoss { .. })
                )
            });
            if t.level == "subscription"
                && t.state == "reducing"
                && loss
                && t.updated_at >= self.since
                && let Some(s) = subs.iter().find(|s| s.id == t.target)
            {
                found.push((
                    Event::DailyLossLimit,
                    s.account.clone(),
                    format!("loss:{}:{day}", s.id),
                    format!("Daily loss limit hit: {}", s.id),
                    format!(
                        "{} reached its day's loss limit in {}: only exits until the day ends.",
                        s.id, s.account
                    ),
                ));
            }
        }
        use chrono::Timelike;
        if ist.hour() >= LOGIN_NOTICE_FROM_HOUR {
            for a in self.store.accounts().await.map_err(store_err)? {
                if stoxide_people::token_state(Some(&a), now) != "valid" {
                    found.push((
                        Event::LoginToday,
                        a.id.clone(),
                        format!("login:{}:{day}", a.id),
                        format!("Log in to Upstox today for {}", a.id),
                        format!("Today's Upstox login for {} is missing: nothing trades for it until you log in (tokens end at 03:30 IST).", a.id),
                    ));
                }
            }
        }
        let mut sent = 0;
        for (event, account, about, subject, message) in found {
            let Some(owner) = self.store.owner_of_account(&account).await.map_err(store_err)? else {
                continue;
            };
            let Some(row) = settings.iter().find(|r| r.person_id == owner) else {
                continue;
            };
            let choice = settings_of(row);
            if !choice.events.contains(&event) || (!choice.email && choice.webhook_url.is_none()) {
                continue;
            }
            let Some(person) = self.people.person(&owner).await? else {
                continue;
            };
            if person.disabled
                || !self
                    .store
                    .claim_notification(&owner, &about, now)
                    .await
                    .map_err(store_err)?
            {
                continue;
            }
            let notice = notice(event, &person, account, subject, message, now);
            sent += self.send(&choice, &notice).await;
        }
        self.since = now;
        Ok(sent)
    }

    async fn send(&mut self, choice: &Settings, n: &Notice) -> usize {
        let mut sent = 0;
        if choice.email {
            match self.deliver.email(n).await {
                Ok(()) => sent += 1,
                Err(e) => {
                    self.failures += 1;
                    tracing::warn!(person = %n.person, event = n.event.as_str(), error = %e, "a notification email failed");
                }
            }
        }
        if let Some(url) = &choice.webhook_url {
            match self.deliver.webhook(url, n).await {
                Ok(()) => sent += 1,
                Err(e) => {
                    self.failures += 1;
                    tracing::warn!(person = %n.person, event = n.event.as_str(), error = %e, "a notification webhook failed");
                }
            }
        }
        sent
    }

    /// Scans every `every` until `stop`.
    pub async fn run(mut self, every: Duration, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(every) => {}
            }
            let now = chrono::Utc::now().timestamp_millis();
            if let Err(e) = self.scan(now).await {
                tracing::warn!(error = %e, "the notifier's scan failed");
            }
        }
    }
}

fn notice(event: Event, person: &Person, account: String, subject: String, message: String, at: i64) -> Notice {
    Notice {
        event,
        person: person.id.clone(),
        email: person.email.clone(),
        account,
        subject,
        message,
        at,
    }
}
