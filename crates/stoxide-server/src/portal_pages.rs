//! The portal's pages (`/portal`): the same use cases as the JSON API ([`crate::portal_api`]),
//! for a browser — sign in (password, then the two-factor code when set up), accept an
//! invitation, link an Upstox account through Upstox's dialog, read the catalog, subscribe, read
//! and confirm the consent, see one's accounts, subscriptions and today's orders, pull one's
//! kill switch; an operator also sees and invites people. A browser's session is the same kind of
//! store session as an API token, carried in its own HttpOnly cookie; every form carries the
//! session's CSRF token (the sign-in and invitation forms a double-submit cookie).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use askama::Template;
use axum::Form;
use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use secrecy::SecretString;
use serde::Deserialize;
use stoxide_engine::subscription::{Inputs, Sizing};
use stoxide_people::{AccountView, Person, Role, SubscriptionView, Viewer};
use upstox_types::IST;

use crate::AppState;
use crate::auth::{PERSON_PREFIX, cookie, random_hex, same, set_cookie};
use crate::pages::error_page;
use crate::portal_api::{INVITATION_TTL, PORTAL_SESSION_TTL};

/// The portal browser session's cookie.
pub(crate) const PORTAL_COOKIE: &str = "stoxide_portal";
const FORM_CSRF_COOKIE: &str = "stoxide_portal_form";

/// The portal's routes.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/portal", get(home))
        .route("/portal/login", get(login_page).post(login_submit))
        .route("/portal/logout", post(logout))
        .route("/portal/invite/{secret}", get(invite_page))
        .route("/portal/invite", post(invite_submit))
        .route("/portal/people/invite", post(invite_new))
        .route("/portal/accounts/link", post(link))
        .route("/portal/accounts/link-own", post(link_own))
        .route("/portal/subscribe", post(subscribe))
        .route(
            "/portal/subscriptions/{id}/consent",
            get(consent_page).post(consent_submit),
        )
        .route("/portal/subscriptions/{id}/lots", post(change_lots))
        .route("/portal/subscriptions/{id}/edit", get(edit_page))
        .route("/portal/subscriptions/{id}/inputs", post(edit_submit))
        .route("/portal/kill", post(kill))
        .route("/portal/kill/global", post(global_kill))
        .route("/portal/strategies", post(add_strategies))
        .route("/portal/strategies/{id}/kill", post(strategy_kill))
        .route("/portal/strategies/{id}/secret", post(rotate_secret))
        .route("/portal/notifications", post(set_notifications))
        .route("/portal/people/{id}/disabled", post(set_disabled))
        .route("/portal/sessions/{id}/end", post(end_session))
        .route("/portal/audit/verify", post(verify_audit))
        .route("/portal/accounts/{id}/compliance", get(compliance))
        .route("/portal/events", get(events))
        .route("/static/portal.js", get(script))
}

/// `GET /static/portal.js`: applies the live updates to the page.
async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../static/portal.js"),
    )
}

/// What the live page shows, pushed when it changes.
#[derive(serde::Serialize, PartialEq)]
struct Live {
    orders: Vec<OrderLine>,
    subscriptions: Vec<(String, String)>,
    /// The operator's signal monitor (nothing for a client).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    signals: Vec<SignalLine>,
}

async fn live(state: &AppState, v: &Viewer) -> anyhow_like::Result<Live> {
    Ok(Live {
        orders: order_lines(v).await?,
        subscriptions: v.subscriptions().await?.into_iter().map(|s| (s.id, s.state)).collect(),
        signals: signal_lines(state, v).await?,
    })
}

/// How often a live page's picture is re-read.
const LIVE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// `GET /portal/events`: Server-Sent Events with the person's orders and subscription states,
/// sent when they change.
async fn events(
    State(state): State<AppState>,
    who: Browser,
) -> axum::response::sse::Sse<impl futures::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>>>
{
    use axum::response::sse::{Event, KeepAlive, Sse};
    let stream = futures::stream::unfold((state, who.viewer, None::<String>), |(state, v, last)| async move {
        loop {
            if last.is_some() {
                tokio::time::sleep(LIVE_EVERY).await;
            }
            let Ok(now) = live(&state, &v).await else {
                tokio::time::sleep(LIVE_EVERY).await;
                continue;
            };
            let json = serde_json::to_string(&now).unwrap_or_default();
            if last.as_deref() != Some(json.as_str()) {
                let event = Event::default().event("live").data(json.clone());
                return Some((Ok(event), (state, v, Some(json))));
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

fn page(status: StatusCode, t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "portal template");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                error_page(StatusCode::INTERNAL_SERVER_ERROR, "the page could not be drawn"),
            )
                .into_response()
        }
    }
}

fn oops(status: StatusCode, message: &str) -> Response {
    (status, error_page(status, message)).into_response()
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "portal page failed");
    oops(
        StatusCode::INTERNAL_SERVER_ERROR,
        "something went wrong on the server; the log has the details",
    )
}

fn back_home() -> Response {
    Redirect::to("/portal").into_response()
}

fn peer(ext: &axum::http::Extensions) -> IpAddr {
    ext.get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |c| c.0.ip())
}

/// A request from a signed-in portal browser; pages without one go to the sign-in.
pub(crate) struct Browser {
    id: String,
    csrf: String,
    viewer: Viewer,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser")
            .field("person", &self.viewer.person().id)
            .finish_non_exhaustive()
    }
}

impl Browser {
    /// The refusal of a form without this session's CSRF token, if it is one.
    fn refuse(&self, field: Option<&str>) -> Option<Response> {
        match field {
            Some(f) if same(f, &self.csrf) => None,
            _ => Some(oops(
                StatusCode::FORBIDDEN,
                "the form expired or did not come from this portal; reload the page and try again",
            )),
        }
    }

    async fn flash(&self, state: &AppState, message: String) -> Response {
        match state.sessions.flash(&self.id, &message).await {
            Ok(()) => back_home(),
            Err(e) => internal(e),
        }
    }
}

/// The portal session in `headers`, if it is a live person's.
pub(crate) async fn portal_session(state: &AppState, headers: &HeaderMap) -> Option<(String, String, Person)> {
    let id = cookie(headers, PORTAL_COOKIE)?;
    let session = state.sessions.get(&id).await.ok()??;
    let person_id = session.user.strip_prefix(PERSON_PREFIX)?;
    let person = state.people.person(person_id).await.ok()??;
    Some((id, session.csrf, person))
}

impl FromRequestParts<AppState> for Browser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Some((id, csrf, person)) = portal_session(state, &parts.headers).await else {
            return Err(if parts.method == axum::http::Method::GET {
                Redirect::to("/portal/login").into_response()
            } else {
                oops(StatusCode::UNAUTHORIZED, "sign in first")
            });
        };
        let viewer = match state.people.viewer(person).await {
            Ok(v) => v,
            Err(stoxide_people::Error::Disabled) => {
                return Err(oops(
                    StatusCode::FORBIDDEN,
                    "this account is disabled: ask the operator",
                ));
            }
            Err(e) => return Err(internal(e)),
        };
        Ok(Self { id, csrf, viewer })
    }
}

#[derive(Template)]
#[template(path = "portal_login.html")]
struct LoginPage {
    csrf: String,
    error: Option<String>,
    notice: Option<String>,
    email: String,
}

/// A form page that carries a fresh double-submit token.
fn with_form_cookie(status: StatusCode, csrf: &str, t: &impl Template) -> Response {
    let mut resp = page(status, t);
    resp.headers_mut()
        .append(header::SET_COOKIE, set_cookie(FORM_CSRF_COOKIE, csrf, None));
    resp
}

fn login_response(status: StatusCode, error: Option<String>, notice: Option<String>, email: String) -> Response {
    let csrf = random_hex();
    with_form_cookie(
        status,
        &csrf.clone(),
        &LoginPage {
            csrf,
            error,
            notice,
            email,
        },
    )
}

fn form_cookie_ok(headers: &HeaderMap, field: &str) -> bool {
    cookie(headers, FORM_CSRF_COOKIE).is_some_and(|c| !c.is_empty() && same(&c, field))
}

/// `GET /portal/login`.
async fn login_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if portal_session(&state, &headers).await.is_some() {
        return back_home();
    }
    login_response(StatusCode::OK, None, None, String::new())
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    code: String,
}

/// `POST /portal/login`.
async fn login_submit(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    if !form_cookie_ok(&headers, &form.csrf) {
        return login_response(
            StatusCode::FORBIDDEN,
            Some("The sign-in form expired; try again.".into()),
            None,
            form.email,
        );
    }
    let code = Some(form.code.as_str()).filter(|c| !c.trim().is_empty());
    let person = match state
        .portal
        .sign_in(&form.email, &SecretString::from(form.password), code, peer(&ext))
        .await
    {
        Ok(p) => p,
        Err(
            e @ (stoxide_portal::Error::People(_)
            | stoxide_portal::Error::TwoFactor(_)
            | stoxide_portal::Error::CodeNeeded),
        ) => {
            let status = match &e {
                stoxide_portal::Error::People(stoxide_people::Error::Throttled { .. }) => StatusCode::TOO_MANY_REQUESTS,
                stoxide_portal::Error::People(stoxide_people::Error::Disabled) => StatusCode::FORBIDDEN,
                stoxide_portal::Error::People(stoxide_people::Error::Store(_)) => return internal(e),
                _ => StatusCode::UNAUTHORIZED,
            };
            return login_response(status, Some(capitalised(&e.to_string())), None, form.email);
        }
        Err(e) => return internal(e),
    };
    let id = match state
        .sessions
        .create_for(&format!("{PERSON_PREFIX}{}", person.id), PORTAL_SESSION_TTL)
        .await
    {
        Ok(id) => id,
        Err(e) => return internal(e),
    };
    let mut resp = back_home();
    let h = resp.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(PORTAL_COOKIE, &id, Some(PORTAL_SESSION_TTL)),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(FORM_CSRF_COOKIE, "", Some(std::time::Duration::ZERO)),
    );
    resp
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect::<String>() + if s.ends_with('.') { "" } else { "." })
        .unwrap_or_default()
}

#[derive(Deserialize)]
struct CsrfOnly {
    csrf: Option<String>,
}

/// `POST /portal/logout`.
async fn logout(State(state): State<AppState>, who: Browser, Form(form): Form<CsrfOnly>) -> Response {
    if let Some(r) = who.refuse(form.csrf.as_deref()) {
        return r;
    }
    if let Err(e) = state.sessions.remove(&who.id).await {
        return internal(e);
    }
    let mut resp = Redirect::to("/portal/login").into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(PORTAL_COOKIE, "", Some(std::time::Duration::ZERO)),
    );
    resp
}

#[derive(Template)]
#[template(path = "portal_invite.html")]
struct InvitePage {
    csrf: String,
    invitation: String,
    error: Option<String>,
    min: usize,
    max: usize,
}

fn invite_response(status: StatusCode, invitation: String, error: Option<String>) -> Response {
    let csrf = random_hex();
    with_form_cookie(
        status,
        &csrf.clone(),
        &InvitePage {
            csrf,
            invitation,
            error,
            min: stoxide_people::MIN_PASSWORD,
            max: stoxide_people::MAX_PASSWORD,
        },
    )
}

/// `GET /portal/invite/{secret}`: the invited person chooses a password.
async fn invite_page(Path(secret): Path<String>) -> Response {
    invite_response(StatusCode::OK, secret, None)
}

#[derive(Deserialize)]
struct AcceptForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    invitation: String,
    #[serde(default)]
    password: String,
}

/// `POST /portal/invite`.
async fn invite_submit(State(state): State<AppState>, headers: HeaderMap, Form(form): Form<AcceptForm>) -> Response {
    if !form_cookie_ok(&headers, &form.csrf) {
        return invite_response(
            StatusCode::FORBIDDEN,
            form.invitation,
            Some("The form expired; try again.".into()),
        );
    }
    let now = chrono::Utc::now().timestamp_millis();
    match state
        .people
        .accept(
            &SecretString::from(form.invitation.clone()),
            &SecretString::from(form.password),
            now,
        )
        .await
    {
        Ok(p) => login_response(
            StatusCode::OK,
            None,
            Some("Your password is set: sign in.".into()),
            p.email,
        ),
        Err(e @ stoxide_people::Error::Invalid(_)) => invite_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            form.invitation,
            Some(capitalised(&e.to_string())),
        ),
        Err(e @ stoxide_people::Error::InvitationInvalid) => oops(StatusCode::NOT_FOUND, &capitalised(&e.to_string())),
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
struct InviteForm {
    csrf: Option<String>,
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
}

/// `POST /portal/people/invite` (operator): the link, shown once in the answer.
async fn invite_new(State(state): State<AppState>, who: Browser, Form(form): Form<InviteForm>) -> Response {
    if let Some(r) = who.refuse(form.csrf.as_deref()) {
        return r;
    }
    let by = match who.viewer.operator() {
        Ok(p) => p.clone(),
        Err(e) => return oops(StatusCode::FORBIDDEN, &capitalised(&e.to_string())),
    };
    let now = chrono::Utc::now().timestamp_millis();
    match state
        .people
        .invite(&by, &form.email, &form.name, Role::Client, INVITATION_TTL, now)
        .await
    {
        // The link is a secret: it is drawn into this one answer, never kept in the session.
        Ok(inv) => {
            use secrecy::ExposeSecret;
            let notice = format!(
                "Invited {}: send them /portal/invite/{} (it works once, for 72 hours).",
                inv.person.email,
                inv.secret.expose_secret()
            );
            match home_page(&state, &who, Some(notice)).await {
                Ok(r) => r,
                Err(e) => internal(e),
            }
        }
        Err(e @ (stoxide_people::Error::Invalid(_) | stoxide_people::Error::EmailTaken(_))) => {
            who.flash(&state, capitalised(&e.to_string())).await
        }
        Err(e) => internal(e),
    }
}

/// `POST /portal/accounts/link`: off to Upstox's login dialog; `/oauth/callback` links the
/// account to this person.
#[derive(Deserialize)]
struct LinkForm {
    csrf: Option<String>,
    /// Today's login for this account (with the app it was linked with); a new link without.
    #[serde(default)]
    account: String,
}

async fn link(State(state): State<AppState>, who: Browser, Form(form): Form<LinkForm>) -> Response {
    if let Some(r) = who.refuse(form.csrf.as_deref()) {
        return r;
    }
    // An account linked with the client's own app logs in again through that app.
    let own = if form.account.is_empty() {
        None
    } else if !who.viewer.sees(&form.account) {
        return oops(StatusCode::NOT_FOUND, "No such account.");
    } else {
        match state.vault.account(&form.account).await {
            Ok(a) => a.and_then(|a| a.client_id),
            Err(e) => return internal(e),
        }
    };
    let app = match login_app(&state, own.as_deref()).await {
        Ok(Some(app)) => app,
        Ok(None) => {
            return who
                .flash(
                    &state,
                    "Linking is not set up on this server: link with your own Upstox app below, or ask the operator."
                        .into(),
                )
                .await;
        }
        Err(e) => return internal(e),
    };
    match state.logins.start(&state.clients, &app, &who.id) {
        Ok(url) => Redirect::to(&url).into_response(),
        Err(e) => internal(e),
    }
}

/// The app a login goes through: the one `client_id` names (the platform's, or a client's own),
/// else the platform's.
async fn login_app(
    state: &AppState,
    client_id: Option<&str>,
) -> stoxide_app::Result<Option<stoxide_app::linking::LinkApp>> {
    let configured = state.config.app.as_ref();
    match client_id {
        Some(id) => stoxide_app::linking::app_by_id(&state.vault, configured, id).await,
        None => stoxide_app::linking::find(&state.vault, configured, crate::CALLBACK_PATH).await,
    }
}

/// This server's OAuth callback, as Upstox must send a browser back to it: the configured
/// app's redirect URI, else this host's `/oauth/callback`.
pub(crate) fn callback_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(app) = &state.config.app {
        return app.creds.redirect_uri.clone();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}{}", crate::CALLBACK_PATH)
}

#[derive(Deserialize)]
struct OwnAppForm {
    csrf: Option<String>,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: String,
    #[serde(default)]
    redirect_uri: String,
}

/// `POST /portal/accounts/link-own`: individual mode — the client's own Upstox app (its secret
/// sealed in the vault), then off to Upstox's dialog with it.
async fn link_own(
    State(state): State<AppState>,
    headers: HeaderMap,
    who: Browser,
    Form(form): Form<OwnAppForm>,
) -> Response {
    if let Some(r) = who.refuse(form.csrf.as_deref()) {
        return r;
    }
    let creds = upstox_client::login::AppCredentials {
        client_id: form.client_id,
        client_secret: SecretString::from(form.client_secret),
        redirect_uri: form.redirect_uri,
    };
    let base = state
        .config
        .app
        .as_ref()
        .map_or_else(|| "https://api.upstox.com".to_owned(), |a| a.base_url.clone());
    // Behind a TLS proxy the browser's scheme (and port) are not what this server hears: the
    // client's URI is this server's callback when its host and path are.
    let ours = callback_url(&state, &headers);
    let place = |u: &str| {
        url::Url::parse(u)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .map(|u| (u.host_str().map(str::to_owned), u.path().to_owned()))
    };
    let given = creds.redirect_uri.trim().to_owned();
    let callback = if state.config.app.is_none() && place(&given).is_some() && place(&given) == place(&ours) {
        given
    } else {
        ours
    };
    match stoxide_app::linking::own_app(&state.vault, creds, &callback, &base).await {
        Ok(app) => match state.logins.start(&state.clients, &app, &who.id) {
            Ok(url) => Redirect::to(&url).into_response(),
            Err(e) => internal(e),
        },
        Err(stoxide_app::Error::OwnApp(e)) => who.flash(&state, capitalised(&e.to_string())).await,
        Err(e) => internal(e),
    }
}

/// After Upstox's dialog, for a portal browser: the account is linked to the person.
pub(crate) async fn callback(
    state: &AppState,
    session_id: &str,
    person: &Person,
    query: &std::collections::HashMap<String, String>,
) -> Response {
    // The app the login was started with (the platform's, or the client's own).
    let app = match login_app(state, state.logins.app_of(query).as_deref()).await {
        Ok(Some(app)) => app,
        Ok(None) => return oops(StatusCode::BAD_REQUEST, "the app of this login is no longer configured"),
        Err(e) => return internal(e),
    };
    let message = match state
        .logins
        .finish(&state.vault, &state.clients, &app, query, session_id)
        .await
    {
        Ok(linked) => {
            let now = chrono::Utc::now().timestamp_millis();
            match state.people.link_account(person, &linked.account.id, now).await {
                Ok(true) => format!("Linked your Upstox account {}.", linked.account.id),
                Ok(false) => {
                    let owner = state.people.accounts_of(person).await.unwrap_or_default();
                    if owner.contains(&linked.account.id) {
                        format!("Logged in to Upstox for {} for today.", linked.account.id)
                    } else {
                        format!(
                            "The Upstox account {} belongs to another client here: ask the operator.",
                            linked.account.id
                        )
                    }
                }
                Err(e) => return internal(e),
            }
        }
        Err(stoxide_app::Error::Login(stoxide_app::linking::LoginError::Refused(err))) => {
            format!("Upstox refused the login: {err}")
        }
        Err(stoxide_app::Error::Login(e)) => crate::words::login_error(&e),
        Err(e) => return internal(e),
    };
    match state.sessions.flash(session_id, &message).await {
        Ok(()) => back_home(),
        Err(e) => internal(e),
    }
}

#[derive(serde::Serialize, PartialEq)]
struct OrderLine {
    time: String,
    strategy: String,
    account: String,
    state: String,
    filled: i64,
    reason: String,
}

#[derive(Template)]
#[template(path = "portal_home.html")]
struct HomePage {
    csrf: String,
    person: Person,
    operator: bool,
    notice: Option<String>,
    login_today: Vec<String>,
    people: Vec<Person>,
    accounts: Vec<AccountView>,
    /// The accounts' table: each with its token's countdown.
    account_lines: Vec<AccountLine>,
    subscriptions: Vec<SubscriptionView>,
    catalog: Vec<stoxide_portal::CatalogEntry>,
    /// Each strategy with its subscribe form's first values.
    catalog_forms: Vec<(stoxide_portal::CatalogEntry, crate::portal_forms::FormValues)>,
    orders: Vec<OrderLine>,
    signals: Vec<SignalLine>,
    /// The operator's view of every client's accounts today.
    clients: Vec<ClientLine>,
    /// Realised P&L per strategy over time, from the fills.
    pnl: Option<crate::chart::Chart>,
    /// The configured app's redirect URI (the page's script fills in this host's otherwise).
    callback: String,
    today: String,
    positions: Vec<PositionLine>,
    /// Trading symbols of the keys the page shows.
    names: crate::names::Names,
    audit: Vec<AuditLine>,
    /// The person's live sessions: (public id, since, this one).
    sessions: Vec<(String, String, bool)>,
    /// (event name, words, chosen) for the notification form.
    notify_events: Vec<(&'static str, &'static str, bool)>,
    notify_email: bool,
    notify_webhook: String,
}

/// One linked account as the page lists it.
struct AccountLine {
    account: AccountView,
    /// When today's token ends (epoch ms), while it is valid.
    until: Option<i64>,
    /// That end in words ("ends 03:30 IST, in 9h 12m"); the page's script keeps it ticking.
    ends: String,
}

impl AccountLine {
    fn of(account: &AccountView, now: chrono::DateTime<chrono::Utc>) -> Self {
        let until = account.token_expires_at.filter(|_| account.token == "valid");
        let ends = until
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map(|end| {
                format!(
                    "ends {} IST, in {}",
                    end.with_timezone(&IST).format("%H:%M"),
                    stoxide_vault::status::human(end - now)
                )
            })
            .unwrap_or_default();
        Self {
            account: account.clone(),
            until,
            ends,
        }
    }
}

/// One open or closed position, marked.
struct PositionLine {
    subscription: String,
    instrument: String,
    quantity: i64,
    avg_price: String,
    ltp: String,
    unrealised: String,
    realised: String,
}

/// One record of the person's own audit trail.
struct AuditLine {
    time: String,
    account: String,
    kind: String,
    by: String,
}

/// The most audit records the page shows (the export has them all).
const AUDIT_ON_PAGE: usize = 30;

/// One client account in the operator's "clients today" table.
struct ClientLine {
    person: String,
    email: String,
    /// Empty: no account linked yet.
    account: String,
    token: &'static str,
    /// "2 subscription(s) wait for a login", or empty.
    login_note: String,
    /// "3 filled, 1 rejected", or "none".
    orders: String,
    rate_limited: usize,
}

impl ClientLine {
    fn of(c: &stoxide_portal::ClientHealth) -> Vec<Self> {
        let line = |a: Option<&stoxide_portal::AccountHealth>| Self {
            person: c.person.name.clone(),
            email: c.person.email.clone(),
            account: a.map(|a| a.account.clone()).unwrap_or_default(),
            token: a.map_or("missing", |a| a.token),
            login_note: match a.map_or(0, |a| a.needs_login) {
                0 => String::new(),
                n => format!("{n} subscription(s) wait for a login"),
            },
            orders: match a {
                Some(a) if !a.orders_today.is_empty() => a
                    .orders_today
                    .iter()
                    .map(|(state, n)| format!("{n} {state}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                _ => "none".into(),
            },
            rate_limited: a.map_or(0, |a| a.rate_limited_today),
        };
        if c.accounts.is_empty() {
            vec![line(None)]
        } else {
            c.accounts.iter().map(|a| line(Some(a))).collect()
        }
    }
}

/// One line of the operator's signal monitor.
#[derive(serde::Serialize, PartialEq)]
struct SignalLine {
    time: String,
    strategy: String,
    id: String,
    outcome: String,
    fanout: String,
    /// Per account: its order's state, why (Upstox's words for a rejection), decided and last
    /// changed (IST).
    orders: Vec<FanoutLine>,
}

/// One account's part in a signal's fan-out.
#[derive(serde::Serialize, PartialEq)]
struct FanoutLine {
    account: String,
    state: String,
    reason: String,
    decided: String,
    changed: String,
}

fn ist_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.with_timezone(&IST).format("%d %b %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// The daily-login banner shows from this IST hour when an account's token is missing.
const LOGIN_BANNER_FROM_HOUR: u32 = 8;

/// `GET /portal`.
async fn home(State(state): State<AppState>, who: Browser) -> Response {
    match home_page(&state, &who, None).await {
        Ok(r) => r,
        Err(e) => internal(e),
    }
}

/// The home page; `notice` instead of the session's message, when given.
async fn home_page(state: &AppState, who: &Browser, notice: Option<String>) -> anyhow_like::Result<Response> {
    use chrono::Timelike;
    let now = chrono::Utc::now();
    let v = &who.viewer;
    let accounts = v.accounts(now.timestamp_millis()).await?;
    let after_eight = now.with_timezone(&IST).hour() >= LOGIN_BANNER_FROM_HOUR;
    let login_today = accounts
        .iter()
        .filter(|a| a.token != "valid" && after_eight)
        .map(|a| a.id.clone())
        .collect();
    let operator = v.person().role == Role::Operator;
    let people = if operator {
        state.people.list(None).await?
    } else {
        Vec::new()
    };
    let orders = order_lines(v).await?;
    let notify = state.portal.notification_settings(v).await?;
    let positions: Vec<PositionLine> = crate::portal_api::marked_positions(state, v)
        .await
        .map_err(|_| "the positions could not be read")?
        .into_iter()
        .map(|p| PositionLine {
            subscription: p.subscription,
            instrument: p.instrument,
            quantity: p.quantity,
            avg_price: p.avg_price.to_string(),
            ltp: p.ltp.map_or_else(|| "—".into(), |l| l.to_string()),
            unrealised: p.unrealised.map_or_else(|| "—".into(), |u| u.round_dp(2).to_string()),
            realised: p.realised.round_dp(2).to_string(),
        })
        .collect();
    let mut audit = Vec::new();
    if !operator {
        let to = now.timestamp_millis() + 1;
        for a in &accounts {
            for r in v.audit(&a.id, to - 86_400_000, to).await?.unwrap_or_default() {
                audit.push((
                    r.seq,
                    AuditLine {
                        time: ist_time(r.at_ms),
                        account: r.account,
                        kind: r.kind,
                        by: r.body.get("by").and_then(|b| b.as_str()).unwrap_or_default().to_owned(),
                    },
                ));
            }
        }
        audit.sort_by_key(|x| std::cmp::Reverse(x.0));
        audit.truncate(AUDIT_ON_PAGE);
    }
    let audit = audit.into_iter().map(|(_, l)| l).collect();
    let current = crate::auth::Sessions::public_id(&who.id);
    let sessions = state
        .sessions
        .list(&format!("{PERSON_PREFIX}{}", v.person().id))
        .await?
        .into_iter()
        .map(|s| (s.id.clone(), ist_time(s.created_at), s.id == current))
        .collect();
    let signals = signal_lines(state, v).await?;
    let clients = if operator {
        state
            .portal
            .client_health(v, now.timestamp_millis())
            .await?
            .iter()
            .flat_map(ClientLine::of)
            .collect()
    } else {
        Vec::new()
    };
    let curves = crate::portal_api::pnl_curves(state, v)
        .await
        .map_err(|_| "the P&L could not be read")?;
    let pnl = crate::chart::layout(&curves, now.timestamp_millis());
    let catalog = state.portal.catalog().await?;
    let names = crate::names::Names::of(
        state,
        catalog
            .iter()
            .flat_map(|c| c.instruments.iter().cloned())
            .chain(positions.iter().map(|p| p.instrument.clone())),
    )
    .await;
    let p = HomePage {
        names,
        callback: state
            .config
            .app
            .as_ref()
            .map(|a| a.creds.redirect_uri.clone())
            .unwrap_or_default(),
        pnl,
        clients,
        csrf: who.csrf.clone(),
        person: v.person().clone(),
        operator,
        notice: match notice {
            Some(n) => Some(n),
            None => state.sessions.take_flash(&who.id).await?,
        },
        login_today,
        people,
        account_lines: accounts.iter().map(|a| AccountLine::of(a, now)).collect(),
        accounts,
        subscriptions: v.subscriptions().await?,
        catalog_forms: catalog
            .iter()
            .map(|c| (c.clone(), crate::portal_forms::FormValues::defaults(c)))
            .collect(),
        catalog,
        orders,
        signals,
        today: now.with_timezone(&IST).format("%Y-%m-%d").to_string(),
        notify_events: stoxide_portal::notify::Event::ALL
            .iter()
            .map(|e| (e.as_str(), event_words(*e), notify.events.contains(e)))
            .collect(),
        positions,
        audit,
        sessions,
        notify_email: notify.email,
        notify_webhook: notify.webhook_url.clone().unwrap_or_default(),
    };
    Ok(page(StatusCode::OK, &p))
}

/// The operator's signal monitor: the latest signals, each with its fan-out per account
/// (nothing for a client).
async fn signal_lines(state: &AppState, v: &Viewer) -> anyhow_like::Result<Vec<SignalLine>> {
    if v.person().role != Role::Operator {
        return Ok(Vec::new());
    }
    Ok(state
        .portal
        .signals(v, 20)
        .await?
        .into_iter()
        .map(|s| SignalLine {
            time: ist_time(s.received_at),
            outcome: if s.accepted {
                "accepted".into()
            } else {
                format!("refused: {}", s.reason.unwrap_or_default())
            },
            fanout: s
                .states
                .iter()
                .map(|(k, n)| format!("{n} {k}"))
                .collect::<Vec<_>>()
                .join(", "),
            orders: s
                .orders
                .iter()
                .map(|o| FanoutLine {
                    account: o.account.clone(),
                    state: o.state.clone(),
                    reason: o.reason.clone().unwrap_or_default(),
                    decided: ist_time(o.created_at),
                    changed: ist_time(o.updated_at),
                })
                .collect(),
            strategy: s.strategy,
            id: s.id,
        })
        .collect())
}

/// The person's latest orders, for the page.
async fn order_lines(v: &Viewer) -> anyhow_like::Result<Vec<OrderLine>> {
    Ok(v.orders(None, 50)
        .await?
        .unwrap_or_default()
        .into_iter()
        .map(|o| OrderLine {
            time: ist_time(o.created_at),
            strategy: o.strategy,
            account: o.account,
            state: o.state,
            filled: o.filled,
            reason: o.reason.unwrap_or_default(),
        })
        .collect())
}

/// The page handlers' error: anything, shown as a generic page and logged.
mod anyhow_like {
    pub(crate) type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;
}

/// `POST /portal/subscribe`: subscribes, then shows the consent page.
async fn subscribe(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    who: Browser,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    use crate::portal_forms::get;
    if let Some(r) = who.refuse(get(&fields, "csrf")) {
        return r;
    }
    let wanted = get(&fields, "strategy").unwrap_or_default();
    let strategy = match state.portal.catalog_entry(wanted).await {
        Ok(s) => s,
        Err(e) => return internal(e),
    };
    let Some(strategy) = strategy else {
        return who.flash(&state, format!("There is no strategy {wanted:?}.")).await;
    };
    let parsed = crate::portal_forms::subscribe_inputs(&fields, &strategy);
    let inputs = match parsed {
        Ok(i) => i,
        Err(m) => return who.flash(&state, m).await,
    };
    match state
        .portal
        .subscribe(
            &who.viewer,
            get(&fields, "account").unwrap_or_default(),
            &strategy.id,
            inputs,
            peer(&ext),
        )
        .await
    {
        Ok(sub) => Redirect::to(&format!("/portal/subscriptions/{}/consent", sub.id)).into_response(),
        Err(stoxide_portal::Error::NotFound(what)) => oops(StatusCode::NOT_FOUND, &format!("No such {what}.")),
        Err(
            e @ stoxide_portal::Error::Engine(stoxide_engine::Error::Inputs(_) | stoxide_engine::Error::Invalid(_)),
        ) => who.flash(&state, capitalised(&e.to_string())).await,
        Err(e) => internal(e),
    }
}

#[derive(Template)]
#[template(path = "portal_consent.html")]
struct ConsentPage {
    csrf: String,
    names: crate::names::Names,
    /// The consent hash's first characters, for the person's records.
    reference: String,
    p: stoxide_portal::ConsentPreview,
    product: String,
    two_factor: bool,
    error: Option<String>,
}

fn product_words(code: &str) -> String {
    match code {
        "I" => "Intraday (squared off the same day)".into(),
        "D" => "Delivery".into(),
        "MTF" => "Margin trading facility".into(),
        other => other.to_owned(),
    }
}

async fn consent_response(
    state: &AppState,
    who: &Browser,
    id: &str,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    match crate::portal_api::priced_preview(state, &who.viewer, id).await {
        Ok(p) => page(
            status,
            &ConsentPage {
                names: crate::names::Names::of(state, p.instruments.iter()).await,
                csrf: who.csrf.clone(),
                reference: p.hash.chars().take(12).collect(),
                product: product_words(&p.product),
                two_factor: who.viewer.person().two_factor,
                p,
                error,
            },
        ),
        Err(stoxide_portal::Error::NotFound(_)) => oops(StatusCode::NOT_FOUND, "No such subscription."),
        Err(e) => internal(e),
    }
}

/// `GET /portal/subscriptions/{id}/consent`.
async fn consent_page(State(state): State<AppState>, who: Browser, Path(id): Path<String>) -> Response {
    consent_response(&state, &who, &id, StatusCode::OK, None).await
}

#[derive(Deserialize)]
struct ConsentForm {
    csrf: Option<String>,
    #[serde(default)]
    hash: String,
    password: Option<String>,
    code: Option<String>,
}

/// `POST /portal/subscriptions/{id}/consent`.
async fn consent_submit(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    who: Browser,
    Path(id): Path<String>,
    Form(form): Form<ConsentForm>,
) -> Response {
    if let Some(r) = who.refuse(form.csrf.as_deref()) {
        return r;
    }
    let confirm = match (
        form.password.filter(|p| !p.is_empty()),
        form.code.filter(|c| !c.is_empty()),
    ) {
        (Some(p), _) => stoxide_portal::Confirm::Password(SecretString::from(p)),
        (None, Some(c)) => stoxide_portal::Confirm::Code(c),
        (None, None) => {
            return consent_response(
                &state,
                &who,
                &id,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("Confirm with your password (or your two-factor code).".into()),
            )
            .await;
        }
    };
    match state
        .portal
        .consent(&who.viewer, &id, &form.hash, &confirm, peer(&ext))
        .await
    {
        Ok(sub) => {
            who.flash(
                &state,
                format!(
                    "{} is active in {}: it trades on the next signal.",
                    sub.strategy, sub.account
                ),
            )
            .await
        }
        Err(stoxide_portal::Error::NotFound(_)) => oops(StatusCode::NOT_FOUND, "No such subscription."),
        Err(
            e @ (stoxide_portal::Error::ConsentChanged
            | stoxide_portal::Error::TwoFactor(_)
            | stoxide_portal::Error::People(
                stoxide_people::Error::WrongPassword | stoxide_people::Error::Throttled { .. },
            )
            | stoxide_portal::Error::Engine(stoxide_engine::Error::Transition(_))),
        ) => {
            consent_response(
                &state,
                &who,
                &id,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(capitalised(&e.to_string())),
            )
            .await
        }
        Err(e) => internal(e),
    }
}

/// `POST /portal/kill/global` (operator).
async fn global_kill(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    who: Browser,
    Form(form): Form<KillForm>,
) -> Response {
    if let Some(r) = who.refuse(form.csrf.as_deref()) {
        return r;
    }
    let halt = form.halt != "false";
    match state.portal.global_kill(&who.viewer, halt, peer(&ext)).await {
        Ok(_) if halt => {
            who.flash(
                &state,
                "Global kill switch: no order goes out for anyone until you let go.".into(),
            )
            .await
        }
        Ok(_) => who.flash(&state, "Global kill switch released.".into()).await,
        Err(e @ stoxide_portal::Error::People(_)) => oops(StatusCode::FORBIDDEN, &capitalised(&e.to_string())),
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
struct CatalogForm {
    csrf: Option<String>,
    #[serde(default)]
    catalog: String,
}

/// `POST /portal/strategies` (operator): strategies from a TOML catalog (`[[strategy]]`
/// tables, as `examples/strategies.toml`) — new ones, or new versions (their subscribers back
/// to awaiting consent).
async fn add_strategies(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    who: Browser,
    Form(form): Form<CatalogForm>,
) -> Response {
    if let Some(r) = who.refuse(form.csrf.as_deref()) {
        return r;
    }
    if let Err(e) = who.viewer.operator() {
        return oops(StatusCode::FORBIDDEN, &capitalised(&e.to_string()));
    }
    let catalog: stoxide_engine::catalog::CatalogFile = match toml::from_str(&form.catalog) {
        Ok(c) => c,
        Err(e) => {
            let first = e.message().lines().next().unwrap_or_default().to_owned();
            return who
                .flash(
                    &state,
                    format!("That is not a strategy catalog ([[strategy]] tables in TOML): {first}"),
                )
                .await;
        }
    };
    let mut said = Vec::new();
    for s in &catalog.strategy {
        match state.portal.register_strategy(&who.viewer, s, peer(&ext)).await {
            Ok(stoxide_portal::Registered::New) => said.push(format!("{} added.", s.id)),
            Ok(stoxide_portal::Registered::Unchanged) => said.push(format!("{} is unchanged.", s.id)),
            Ok(stoxide_portal::Registered::NewVersion { reconsent }) => said.push(format!(
                "{} is now version {}: {reconsent} subscription(s) await their client's consent again.",
                s.id, s.version
            )),
            Err(e @ stoxide_portal::Error::Engine(_)) => said.push(format!("{}: {}", s.id, e)),
            Err(e) => return internal(e),
        }
    }
    if said.is_empty() {
        said.push("The catalog holds no [[strategy]].".into());
    }
    who.flash(&state, said.join(" ")).await
}

/// `POST /portal/strategies/{id}/kill` (operator): every subscription of it halted, or let go.
async fn strategy_kill(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    who: Browser,
    Path(id): Path<String>,
    Form(form): Form<KillForm>,
) -> Response {
    if let Some(r) = who.refuse(form.csrf.as_deref()) {
        return r;
    }
    let halt = form.halt != "false";
    match state.portal.strategy_kill(&who.viewer, &id, halt, peer(&ext)).await {
        Ok(subs) if halt => {
            who.flash(
                &state,
                format!("{id} halted: no order goes out for its {} subscription(s).", subs.len()),
            )
            .await
        }
        Ok(subs) => {
            who.flash(
                &state,
                format!("{id} let go: its {} subscription(s) may trade.", subs.len()),
            )
            .await
        }
        Err(stoxide_portal::Error::NotFound(_)) => oops(StatusCode::NOT_FOUND, "No such strategy."),
        Err(e @ stoxide_portal::Error::People(_)) => oops(StatusCode::FORBIDDEN, &capitalised(&e.to_string())),
        Err(e) => internal(e),
    }
}

/// `POST /portal/strategies/{id}/secret` (operator): a new signing secret for an external
/// strategy, drawn into this one answer (never kept in the session); the old one stops working.
async fn rotate_secret(
    State(state): State<AppState>,
    who: Browser,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Response {
    if let Some(r) = who.refuse(form.csrf.as_deref()) {
        return r;
    }
    match state.portal.rotate_signing_secret(&who.viewer, &id).await {
        Ok(secret) => {
            use secrecy::ExposeSecret;
            let notice = format!(
                "New signing secret for {id} (shown once; the old one no longer signs): {}",
                secret.expose_secret()
            );
            match home_page(&state, &who, Some(notice)).await {
                Ok(r) => r,
                Err(e) => internal(e),
            }
        }
        Err(stoxide_portal::Error::NotFound(_)) => oops(StatusCode::NOT_FOUND, "No such strategy."),
        Err(e @ stoxide_portal::Error::People(_)) => oops(StatusCode::FORBIDDEN, &capitalised(&e.to_string())),
        Err(e) => internal(e),
    }
}

/// `POST /portal/audit/verify` (operator).
async fn verify_audit(State(state): State<AppState>, who: Browser, Form(form): Form<CsrfOnly>) -> Response {
    if let Some(r) = who.refuse(form.csrf.as_deref()) {
        return r;
    }
    match state.portal.verify_audit(&who.viewer).await {
        Ok(c) if c.intact => {
            who.flash(
                &state,
                format!(
                    "The audit chain is intact: {} records, each hashed over the one before.",
                    c.records
                ),
            )
            .await
        }
        Ok(c) => {
            who.flash(
                &state,
                format!("The audit chain is broken: {}.", c.problem.unwrap_or_default()),
            )
            .await
        }
        Err(e @ stoxide_portal::Error::People(_)) => oops(StatusCode::FORBIDDEN, &capitalised(&e.to_string())),
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
struct DayForm {
    day: Option<String>,
}

/// `GET /portal/accounts/{id}/compliance?day=YYYY-MM-DD`: the CSV download.
async fn compliance(
    State(state): State<AppState>,
    who: Browser,
    Path(id): Path<String>,
    axum::extract::Query(q): axum::extract::Query<DayForm>,
) -> Response {
    let day = match crate::portal_api::day_of(q.day.as_deref().filter(|d| !d.is_empty())) {
        Ok(d) => d,
        Err(p) => return p.into_response(),
    };
    match state.portal.compliance_csv(&who.viewer, &id, day).await {
        Ok(text) => crate::portal_api::csv_response(&id, day, text),
        Err(stoxide_portal::Error::NotFound(_)) => oops(StatusCode::NOT_FOUND, "No such account."),
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
struct DisabledForm {
    csrf: Option<String>,
    #[serde(default)]
    disabled: String,
}

/// `POST /portal/people/{id}/disabled` (operator).
async fn set_disabled(
    State(state): State<AppState>,
    who: Browser,
    Path(id): Path<String>,
    Form(form): Form<DisabledForm>,
) -> Response {
    if let Some(r) = who.refuse(form.csrf.as_deref()) {
        return r;
    }
    let by = match who.viewer.operator() {
        Ok(p) => p.clone(),
        Err(e) => return oops(StatusCode::FORBIDDEN, &capitalised(&e.to_string())),
    };
    if id == by.id {
        return who.flash(&state, "An operator cannot disable themselves.".into()).await;
    }
    let disabled = form.disabled == "true";
    match state
        .people
        .set_disabled(&by, &id, disabled, chrono::Utc::now().timestamp_millis())
        .await
    {
        Ok(true) => {
            who.flash(
                &state,
                if disabled {
                    "Disabled: they can no longer sign in.".into()
                } else {
                    "Enabled again.".into()
                },
            )
            .await
        }
        Ok(false) => oops(StatusCode::NOT_FOUND, "No such person."),
        Err(e) => internal(e),
    }
}

/// `POST /portal/sessions/{id}/end`: ends one of the person's own sessions (this one: signs out).
async fn end_session(
    State(state): State<AppState>,
    who: Browser,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Response {
    if let Some(r) = who.refuse(form.csrf.as_deref()) {
        return r;
    }
    let user = format!("{PERSON_PREFIX}{}", who.viewer.person().id);
    match state.sessions.revoke(&user, &id).await {
        Ok(true) if id == crate::auth::Sessions::public_id(&who.id) => Redirect::to("/portal/login").into_response(),
        Ok(true) => {
            who.flash(&state, "That session is ended: the browser there is signed out.".into())
                .await
        }
        Ok(false) => oops(StatusCode::NOT_FOUND, "No such session."),
        Err(e) => internal(e),
    }
}

fn event_words(e: stoxide_portal::notify::Event) -> &'static str {
    use stoxide_portal::notify::Event;
    match e {
        Event::LoginToday => "Log in to Upstox today (from 08:00 IST)",
        Event::OrderRejected => "An order was rejected",
        Event::DailyLossLimit => "A daily loss limit was hit",
        Event::SubscriptionPaused => "A subscription was paused",
    }
}

/// `POST /portal/notifications`: what the person is told, and how.
async fn set_notifications(
    State(state): State<AppState>,
    who: Browser,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if let Some(r) = who.refuse(get("csrf")) {
        return r;
    }
    let events = stoxide_portal::notify::Event::ALL
        .into_iter()
        .filter(|e| fields.iter().any(|(n, v)| n == "event" && v == e.as_str()))
        .collect();
    let settings = stoxide_portal::notify::Settings {
        email: get("email") == Some("on"),
        webhook_url: get("webhook_url")
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_owned),
        events,
    };
    match state.portal.set_notification_settings(&who.viewer, &settings).await {
        Ok(_) => who.flash(&state, "Notifications saved.".into()).await,
        Err(e @ stoxide_portal::Error::Invalid(_)) => who.flash(&state, capitalised(&e.to_string())).await,
        Err(e) => internal(e),
    }
}

#[derive(Template)]
#[template(path = "portal_edit.html")]
struct EditPage {
    csrf: String,
    names: crate::names::Names,
    subscription: String,
    c: stoxide_portal::CatalogEntry,
    f: crate::portal_forms::FormValues,
}

/// The subscription in scope, its current inputs and its strategy, or the answer to give.
async fn editable(
    state: &AppState,
    who: &Browser,
    id: &str,
) -> Result<(Inputs, stoxide_portal::CatalogEntry), Response> {
    let sub = match who.viewer.subscription(id).await {
        Ok(Some(s)) => s,
        Ok(None) => return Err(oops(StatusCode::NOT_FOUND, "No such subscription.")),
        Err(e) => return Err(internal(e)),
    };
    let inputs: Inputs = serde_json::from_value(sub.inputs).map_err(internal)?;
    match state.portal.catalog_entry(&sub.strategy).await {
        Ok(Some(c)) => Ok((inputs, c)),
        Ok(None) => Err(oops(StatusCode::NOT_FOUND, "That subscription's strategy is gone.")),
        Err(e) => Err(internal(e)),
    }
}

/// `GET /portal/subscriptions/{id}/edit`: every input, as now.
async fn edit_page(State(state): State<AppState>, who: Browser, Path(id): Path<String>) -> Response {
    match editable(&state, &who, &id).await {
        Ok((inputs, c)) => page(
            StatusCode::OK,
            &EditPage {
                names: crate::names::Names::of(&state, c.instruments.iter()).await,
                csrf: who.csrf.clone(),
                subscription: id,
                f: crate::portal_forms::FormValues::of(&inputs, &c),
                c,
            },
        ),
        Err(r) => r,
    }
}

/// `POST /portal/subscriptions/{id}/inputs`: new inputs; a change puts the subscription back
/// to awaiting consent.
async fn edit_submit(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    who: Browser,
    Path(id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    if let Some(r) = who.refuse(crate::portal_forms::get(&fields, "csrf")) {
        return r;
    }
    let c = match editable(&state, &who, &id).await {
        Ok((_, c)) => c,
        Err(r) => return r,
    };
    let inputs = match crate::portal_forms::subscribe_inputs(&fields, &c) {
        Ok(i) => i,
        Err(m) => return who.flash(&state, m).await,
    };
    new_inputs(&state, &ext, &who, &id, inputs).await
}

/// Sets `inputs` on `id` and says what became of it.
async fn new_inputs(
    state: &AppState,
    ext: &axum::http::Extensions,
    who: &Browser,
    id: &str,
    inputs: Inputs,
) -> Response {
    match state.portal.change_inputs(&who.viewer, id, inputs, peer(ext)).await {
        Ok(sub) if sub.state == stoxide_engine::subscription::SubState::AwaitingConsent => {
            who.flash(
                state,
                format!(
                    "{} now awaits your consent again: nothing trades for it until you confirm.",
                    sub.id
                ),
            )
            .await
        }
        Ok(sub) => who.flash(state, format!("{} is unchanged.", sub.id)).await,
        Err(stoxide_portal::Error::NotFound(_)) => oops(StatusCode::NOT_FOUND, "No such subscription."),
        Err(
            e @ stoxide_portal::Error::Engine(stoxide_engine::Error::Inputs(_) | stoxide_engine::Error::Transition(_)),
        ) => who.flash(state, capitalised(&e.to_string())).await,
        Err(e) => internal(e),
    }
}

#[derive(Deserialize)]
struct LotsForm {
    csrf: Option<String>,
    #[serde(default)]
    lots: String,
}

/// `POST /portal/subscriptions/{id}/lots`: new lots per signal, the other inputs kept; a change
/// puts the subscription back to awaiting consent.
async fn change_lots(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    who: Browser,
    Path(id): Path<String>,
    Form(form): Form<LotsForm>,
) -> Response {
    if let Some(r) = who.refuse(form.csrf.as_deref()) {
        return r;
    }
    let lots: u32 = match crate::portal_forms::parse_number(&form.lots, "Lots per signal") {
        Ok(n) => n,
        Err(m) => return who.flash(&state, m).await,
    };
    let current = match who.viewer.subscription(&id).await {
        Ok(Some(s)) => s,
        Ok(None) => return oops(StatusCode::NOT_FOUND, "No such subscription."),
        Err(e) => return internal(e),
    };
    let mut inputs: Inputs = match serde_json::from_value(current.inputs) {
        Ok(i) => i,
        Err(e) => return internal(e),
    };
    inputs.sizing = match inputs.sizing {
        Sizing::FixedLots { multiplier, .. } => Sizing::FixedLots { lots, multiplier },
        Sizing::MarginPercent { .. } => Sizing::FixedLots { lots, multiplier: 1 },
    };
    new_inputs(&state, &ext, &who, &id, inputs).await
}

#[derive(Deserialize)]
struct KillForm {
    csrf: Option<String>,
    #[serde(default)]
    halt: String,
}

/// `POST /portal/kill`: the person's own kill switch.
async fn kill(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    who: Browser,
    Form(form): Form<KillForm>,
) -> Response {
    if let Some(r) = who.refuse(form.csrf.as_deref()) {
        return r;
    }
    let switch = match form.halt.as_str() {
        "false" => stoxide_portal::Switch::Release,
        "exit" => stoxide_portal::Switch::HaltAndExit,
        _ => stoxide_portal::Switch::Halt,
    };
    let now = chrono::Utc::now().timestamp_millis();
    let message = match state
        .portal
        .kill_switch(&who.viewer, None, switch, peer(&ext), now)
        .await
    {
        Ok(r) if r.accounts.is_empty() => "You have no linked account to halt.".to_owned(),
        Ok(r) => kill_words(&r, switch),
        Err(e) => return internal(e),
    };
    who.flash(&state, message).await
}

/// What a person's kill switch did, in words.
fn kill_words(r: &stoxide_portal::KillReport, switch: stoxide_portal::Switch) -> String {
    let accounts = r.accounts.join(", ");
    match switch {
        stoxide_portal::Switch::Release => format!("Let go: {accounts} may trade again."),
        stoxide_portal::Switch::Halt => format!("Halted: no order goes out for {accounts} until you let go."),
        stoxide_portal::Switch::HaltAndExit => {
            let exits = match (&r.exit_problem, r.exits) {
                (Some(p), _) => format!(" Your positions were NOT exited: {p}."),
                (None, 0) => " Open orders cancelled; there was no open position to exit.".into(),
                (None, n) => format!(" Open orders cancelled and {n} exit order(s) sent for your open positions."),
            };
            format!("Halted: no order goes out for {accounts} until you let go.{exits}")
        }
    }
}
