//! The dashboard's routes: sign-in, the dashboard page, account linking through Upstox's OAuth
//! dialog, stream start/stop, instrument search, the live event stream, the doctor, metrics.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::Ordering;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use futures::Stream;
use serde::Deserialize;
use stoxide_vault::Vault;
use upstox_types::IST;

use crate::AppState;
use crate::auth::{LOGIN_CSRF_COOKIE, SESSION_COOKIE, Signed, cookie, random_hex, same, set_cookie};
use crate::error::{Error, Result};
use crate::hub::HubEvent;

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    status: String,
    message: &'a str,
}

/// The page for an error.
pub(crate) fn error_page(status: StatusCode, message: &str) -> Html<String> {
    let page = ErrorPage {
        status: status.to_string(),
        message,
    };
    Html(page.render().unwrap_or_else(|_| message.to_owned()))
}

fn render(t: &impl Template) -> Result<Html<String>> {
    t.render()
        .map(Html)
        .map_err(|e| Error::Internal(format!("template: {e}")))
}

fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// Back to the dashboard, which shows `msg` once. The message travels in the session, never in
/// the URL, so a link cannot make the dashboard show someone else's words.
async fn home_with(state: &AppState, who: &Signed, msg: String) -> Result<Response> {
    state.sessions.flash(&who.id, &msg).await?;
    Ok(see_other("/"))
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    csrf: String,
    error: Option<String>,
}

fn login_response(status: StatusCode, error: Option<String>) -> Response {
    let csrf = random_hex();
    let page = LoginPage {
        csrf: csrf.clone(),
        error,
    };
    match render(&page) {
        Ok(html) => (
            status,
            [(header::SET_COOKIE, set_cookie(LOGIN_CSRF_COOKIE, &csrf, None))],
            html,
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET /login`.
pub(crate) async fn login_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(id) = cookie(&headers, SESSION_COOKIE)
        && matches!(state.sessions.get(&id).await, Ok(Some(s)) if !s.user.starts_with(crate::auth::PERSON_PREFIX))
    {
        return see_other("/");
    }
    login_response(StatusCode::OK, None)
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

/// `POST /login`: double-submit CSRF, argon2 check, a fresh session.
pub(crate) async fn login_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    if expected.is_empty() || !same(&expected, &form.csrf) {
        return login_response(
            StatusCode::FORBIDDEN,
            Some("The sign-in form expired; try again.".into()),
        );
    }
    let admin = state.admin.clone();
    let (user, pass) = (form.username.clone(), form.password);
    let ok = tokio::task::spawn_blocking(move || admin.verify(&user, &pass))
        .await
        .unwrap_or(false);
    if !ok {
        tracing::warn!("a dashboard sign-in failed");
        return login_response(StatusCode::UNAUTHORIZED, Some("Wrong user name or password.".into()));
    }
    let id = match state.sessions.create(&form.username).await {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    let mut resp = see_other("/");
    let headers = resp.headers_mut();
    headers.append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, &id, Some(std::time::Duration::from_secs(12 * 3600))),
    );
    headers.append(
        header::SET_COOKIE,
        set_cookie(LOGIN_CSRF_COOKIE, "", Some(std::time::Duration::ZERO)),
    );
    resp
}

#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    csrf: Option<String>,
}

/// `POST /logout`.
pub(crate) async fn logout(State(state): State<AppState>, who: Signed, Form(form): Form<CsrfForm>) -> Result<Response> {
    who.check_csrf(form.csrf.as_deref())?;
    state.sessions.remove(&who.id).await?;
    let mut resp = see_other("/login");
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", Some(std::time::Duration::ZERO)),
    );
    Ok(resp)
}

struct AccountRow {
    id: String,
    name: String,
    summary: String,
    valid: bool,
    expires: String,
    next_step: String,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    csrf: String,
    message: Option<String>,
    accounts: Vec<AccountRow>,
    app_ready: bool,
    instruments: Vec<upstox_types::InstrumentKey>,
    health_state: String,
    reconnects: u64,
    last_error: String,
    names: crate::names::Names,
}

/// The process's one vault handle (shared, never closed by a handler).
fn vault_of(state: &AppState) -> &Vault {
    &state.vault
}

/// `GET /`.
pub(crate) async fn dashboard(State(state): State<AppState>, who: Signed) -> Result<Html<String>> {
    let vault = vault_of(&state);
    let mut accounts = Vec::new();
    for a in vault.accounts().await? {
        let status = stoxide_app::tokens::status(vault, &state.clients, &a, false).await?;
        accounts.push(AccountRow {
            id: a.id.clone(),
            name: a.user_name.clone().unwrap_or_default(),
            summary: status.summary(),
            valid: status.is_valid(),
            expires: a
                .expires_at
                .map(|e| e.with_timezone(&IST).format("%d %b %H:%M IST").to_string())
                .unwrap_or_default(),
            next_step: status
                .next_step
                .as_ref()
                .map(crate::words::next_step)
                .unwrap_or_default(),
        });
    }
    let app_ready = link_app(&state).await?.is_some();
    let (instruments, _, health) = state.hub.snapshot();
    let names = crate::names::Names::of(&state, instruments.iter().map(ToString::to_string)).await;
    render(&DashboardPage {
        names,
        csrf: who.session.csrf.clone(),
        message: state.sessions.take_flash(&who.id).await?,
        accounts,
        app_ready,
        instruments,
        health_state: health.state_text,
        reconnects: health.stream.reconnects,
        last_error: health.stream.last_error.unwrap_or_else(|| "none".into()),
    })
}

/// The app to link accounts with: the configured one, else the vault's first with a secret
/// whose redirect URI comes back here.
async fn link_app(state: &AppState) -> Result<Option<stoxide_app::linking::LinkApp>> {
    Ok(stoxide_app::linking::find(&state.vault, state.config.app.as_ref(), crate::CALLBACK_PATH).await?)
}

/// `POST /accounts/link` and `POST /accounts/{id}/refresh`: off to Upstox's dialog with a
/// single-use state tied to this browser's session. (Upstox has no refresh token: refreshing is
/// logging in again.)
pub(crate) async fn link(State(state): State<AppState>, who: Signed, Form(form): Form<CsrfForm>) -> Result<Response> {
    who.check_csrf(form.csrf.as_deref())?;
    let app = link_app(&state).await?.ok_or_else(|| {
        Error::BadRequest("no Upstox app is configured for linking accounts (see the hint on the dashboard)".into())
    })?;
    Ok(see_other(&state.logins.start(&state.clients, &app, &who.id)?))
}

/// `POST /accounts/{id}/refresh`.
pub(crate) async fn refresh(
    state: State<AppState>,
    who: Signed,
    Path(_id): Path<String>,
    form: Form<CsrfForm>,
) -> Result<Response> {
    link(state, who, form).await
}

/// `GET /oauth/callback`: the state must be one this server issued to this browser's session —
/// the admin dashboard's, or a portal person's (whose account it then links to them).
pub(crate) async fn oauth_callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response> {
    let admin = match cookie(&headers, SESSION_COOKIE) {
        Some(id) => state
            .sessions
            .get(&id)
            .await?
            .filter(|s| !s.user.starts_with(crate::auth::PERSON_PREFIX))
            .map(|session| Signed { id, session }),
        None => None,
    };
    let Some(who) = admin else {
        if let Some((id, _, person)) = crate::portal_pages::portal_session(&state, &headers).await {
            return Ok(crate::portal_pages::callback(&state, &id, &person, &q).await);
        }
        return Ok(see_other("/login"));
    };
    let app = link_app(&state)
        .await?
        .ok_or_else(|| Error::BadRequest("the app of this login is no longer configured".into()))?;
    match state
        .logins
        .finish(&state.vault, &state.clients, &app, &q, &who.id)
        .await
    {
        Ok(linked) => {
            home_with(
                &state,
                &who,
                format!(
                    "Linked {} ({}).",
                    linked.account.id,
                    linked.profile.user_name.unwrap_or_default()
                ),
            )
            .await
        }
        Err(stoxide_app::Error::Login(stoxide_app::linking::LoginError::Refused(err))) => {
            home_with(&state, &who, format!("Upstox refused the login: {err}")).await
        }
        Err(stoxide_app::Error::Login(e)) => Err(Error::BadRequest(crate::words::login_error(&e))),
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub(crate) struct StartForm {
    csrf: Option<String>,
    account: Option<String>,
}

/// `POST /stream/start`: streams for the chosen account, else the first with a valid token.
pub(crate) async fn stream_start(
    State(state): State<AppState>,
    who: Signed,
    Form(form): Form<StartForm>,
) -> Result<Response> {
    who.check_csrf(form.csrf.as_deref())?;
    let vault = vault_of(&state);
    let mut chosen = None;
    for a in vault.accounts().await? {
        if form.account.as_ref().is_some_and(|want| want != &a.id) {
            continue;
        }
        if stoxide_app::tokens::status(vault, &state.clients, &a, false)
            .await?
            .is_valid()
            && let Some(t) = vault.access_token(&a.id).await?
        {
            chosen = Some((a, t));
            break;
        }
    }
    let Some((account, token)) = chosen else {
        return home_with(
            &state,
            &who,
            "No account with a valid token: log in to Upstox first.".into(),
        )
        .await;
    };
    let client = state.client(&account.base_url)?;
    state
        .hub
        .start(
            client,
            stoxide_app::stream::TokenFrom::Vault {
                vault: state.vault.clone(),
                account: account.id.clone(),
                token,
            },
            account.id.clone(),
        )
        .await;
    home_with(&state, &who, format!("Streaming for {}.", account.id)).await
}

/// `POST /stream/stop`.
pub(crate) async fn stream_stop(
    State(state): State<AppState>,
    who: Signed,
    Form(form): Form<CsrfForm>,
) -> Result<Response> {
    who.check_csrf(form.csrf.as_deref())?;
    state.hub.stop().await;
    home_with(&state, &who, "Stream stopped.".into()).await
}

#[derive(Deserialize)]
pub(crate) struct AddForm {
    csrf: Option<String>,
    key: String,
}

/// `POST /instruments`: adds an instrument to the price table.
pub(crate) async fn add_instrument(
    State(state): State<AppState>,
    who: Signed,
    Form(form): Form<AddForm>,
) -> Result<Response> {
    who.check_csrf(form.csrf.as_deref())?;
    state.hub.add(form.key.trim())?;
    home_with(&state, &who, format!("Added {}.", form.key.trim())).await
}

/// The instrument master, downloaded once from the first account's Upstox host (or the
/// configured app's) and kept.
pub(crate) async fn instrument_master(state: &AppState) -> Result<&upstox_client::InstrumentMaster> {
    state
        .instruments
        .get_or_try_init(|| async {
            let vault = vault_of(state);
            let base = vault
                .accounts()
                .await?
                .first()
                .map(|a| a.base_url.clone())
                .or_else(|| state.config.app.as_ref().map(|a| a.base_url.clone()))
                .ok_or_else(|| {
                    Error::BadRequest("link an account first: the instrument master comes from its Upstox host".into())
                })?;
            let client = state.client(&base)?;
            let gz = client.download_instruments("complete", |_, _| {}).await?;
            state.metrics.rest_call("GET complete.json.gz", "200");
            let m = tokio::task::spawn_blocking(move || upstox_client::InstrumentMaster::from_gzip(&gz))
                .await
                .map_err(|e| Error::Internal(e.to_string()))?
                .map_err(|e| Error::Internal(e.to_string()))?;
            Ok::<_, Error>(m)
        })
        .await
}

/// `GET /instruments/search?q=`: the instrument master (downloaded once from the first
/// account's base URL) searched by symbol and name.
pub(crate) async fn search(
    State(state): State<AppState>,
    _who: Signed,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response> {
    let text = q.get("q").map(|s| s.trim().to_owned()).unwrap_or_default();
    if text.len() < 2 {
        return Ok(axum::Json(Vec::<serde_json::Value>::new()).into_response());
    }
    let master = instrument_master(&state).await?;
    let hits: Vec<serde_json::Value> = master
        .search(&text, 20)
        .into_iter()
        .map(|i| {
            serde_json::json!({
                "instrument_key": i.instrument_key,
                "trading_symbol": i.trading_symbol,
                "name": i.name,
                "segment": i.segment,
            })
        })
        .collect();
    Ok(axum::Json(hits).into_response())
}

/// `GET /chart?key=`: today's one-minute closes (oldest first), so the chart shows the session
/// before the page opened; live ticks extend it.
pub(crate) async fn chart(
    State(state): State<AppState>,
    _who: Signed,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response> {
    let key = q.get("key").map(|k| k.trim().to_owned()).unwrap_or_default();
    key.parse::<upstox_types::InstrumentKey>()
        .map_err(|e| Error::BadRequest(e.to_string()))?;
    let health = state.hub.health();
    let vault = vault_of(&state);
    let accounts = vault.accounts().await?;
    let base = health
        .account
        .as_ref()
        .and_then(|id| accounts.iter().find(|a| &a.id == id))
        .or(accounts.first())
        .map(|a| a.base_url.clone())
        .ok_or_else(|| Error::BadRequest("link an account first".into()))?;
    let mut candles = state
        .client(&base)?
        .intraday_candles(&key, upstox_client::market::CandleUnit::Minutes(1))
        .await?;
    candles.sort_by(|a, b| a.0.cmp(&b.0));
    let closes: Vec<f64> = candles.iter().map(|c| c.4).collect();
    Ok(axum::Json(closes).into_response())
}

fn sse_event(e: &HubEvent) -> Option<Event> {
    let (name, data) = match e {
        HubEvent::Quotes(q) => ("quotes", serde_json::to_string(q).ok()?),
        HubEvent::Health(h) => ("health", serde_json::to_string(h).ok()?),
        HubEvent::Instruments(i) => ("instruments", serde_json::to_string(i).ok()?),
    };
    Some(Event::default().event(name).data(data))
}

/// Counts an open page for `/metrics`; uncounts it when the page goes away.
struct ClientGuard(AppState);

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.0.metrics.sse_clients.fetch_sub(1, Ordering::Relaxed);
    }
}

/// `GET /events`: the current picture, then every change, pushed.
pub(crate) async fn events(
    State(state): State<AppState>,
    _who: Signed,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = state.hub.subscribe();
    let (_, quotes, health) = state.hub.snapshot();
    state.metrics.sse_clients.fetch_add(1, Ordering::Relaxed);
    let guard = ClientGuard(state.clone());
    let first: Vec<Event> = [HubEvent::Health(health), HubEvent::Quotes(quotes)]
        .iter()
        .filter_map(sse_event)
        .collect();
    let live = futures::stream::unfold((rx, guard), |(mut rx, guard)| async move {
        loop {
            match rx.recv().await {
                Ok(e) => {
                    if let Some(ev) = sse_event(&e) {
                        return Some((Ok(ev), (rx, guard)));
                    }
                }
                // A page that fell behind skips to the latest picture.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    let stream = futures::StreamExt::chain(futures::stream::iter(first.into_iter().map(Ok)), live);
    Sse::new(stream).keep_alive(KeepAlive::default())
}

struct DoctorCheck {
    step: String,
    ok: bool,
    detail: String,
    fix: Option<String>,
}

#[derive(Template)]
#[template(path = "doctor.html")]
struct DoctorPage {
    checks: Vec<DoctorCheck>,
    keys: String,
}

/// At most this many keys are checked at once from the doctor page.
const DOCTOR_MAX_KEYS: usize = 50;

/// `GET /doctor[?keys=…]`: the checklist (`stoxide-app`'s) for the streaming (or first) account,
/// then the stream's own health, then each key asked about (one a line, or comma-separated):
/// known, cleared for the account's segments, or the key meant.
pub(crate) async fn doctor(
    State(state): State<AppState>,
    _who: Signed,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Html<String>> {
    use stoxide_app::doctor::{self, Fix, Next, Report, Step, TokenSourceKind};
    let raw = q.get("keys").map(String::as_str).unwrap_or("");
    let keys: Vec<String> = raw
        .split(['\n', ','])
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(ToOwned::to_owned)
        .collect();
    if keys.len() > DOCTOR_MAX_KEYS {
        return Err(Error::BadRequest(format!(
            "{} keys: the doctor checks at most {DOCTOR_MAX_KEYS} at once",
            keys.len()
        )));
    }
    let mut report = Report::default();
    let mut profile = None;
    let health = state.hub.health();
    let accounts = state.vault.accounts().await?;
    let account = health
        .account
        .as_ref()
        .and_then(|id| accounts.iter().find(|a| &a.id == id))
        .or(accounts.first())
        .cloned();
    match account {
        None => report.fail(Step::VaultAccount, "no account in the vault", Fix::CreateVault),
        Some(a) => {
            let wanted = Some(a.id.as_str());
            if doctor::vault(&mut report, Ok(Some(state.vault.clone())), wanted).await == Next::Continue
                && let Some(token) = state.vault.access_token(&a.id).await?
            {
                let client = state.clients.for_user(&a.base_url, &a.id, token)?;
                let source = TokenSourceKind::Vault { account: a.id.clone() };
                profile = doctor::connection(&mut report, &client, &source, std::time::Duration::from_secs(5)).await;
            }
        }
    }
    let healthy = health.is_healthy();
    let summary = format!(
        "{}; {} reconnect(s); last error: {}",
        crate::words::stream_state(&health.state),
        health.reconnects,
        health.last_error.clone().unwrap_or_else(|| "none".into())
    );
    if healthy {
        report.pass(Step::Stream, summary);
    } else {
        report.fail(Step::Stream, summary, Fix::RestartStream);
    }
    if !keys.is_empty() {
        doctor::keys(
            &mut report,
            &keys,
            instrument_master(&state),
            profile.as_ref().map(|p| p.exchanges.as_slice()),
        )
        .await;
    }
    let checks = report
        .checks
        .iter()
        .map(|c| DoctorCheck {
            step: c.step.label(),
            ok: c.ok,
            detail: c.detail.clone(),
            fix: c.fix.as_ref().map(crate::words::fix),
        })
        .collect();
    render(&DoctorPage {
        checks,
        keys: keys.join("\n"),
    })
}

/// `GET /metrics` (no account data, so no sign-in).
pub(crate) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    state
        .metrics
        .rate_limit_wait_ms
        .store(state.rate_limit_wait().as_millis() as u64, Ordering::Relaxed);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

/// `GET /healthz`: for supervisors.
pub(crate) async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    let (_, _, h) = state.hub.snapshot();
    axum::Json(serde_json::json!({"status": "ok", "stream": h.state_text}))
}
