//! The portal's JSON API (`/api/v1`): everything a client or an operator reads, scoped to the
//! signed-in person. Sign in with `POST /api/v1/sessions` (email, password) and send the answered
//! token as `Authorization: Bearer <token>`; the token is a session in the store (it survives a
//! restart, is listed and revocable by its owner, and only its hash is kept).
//!
//! Scoping is the library's ([`stoxide_people::Viewer`]): an identifier outside the person's scope
//! answers 404 exactly like one that does not exist, so ids cannot be probed. The document
//! describing the API is at `GET /api/v1/openapi.json`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use secrecy::SecretString;
use serde::Deserialize;
use stoxide_people::{Error as PeopleError, Person, Role, Viewer};

use crate::AppState;
use crate::auth::{PERSON_PREFIX, Sessions};

/// How long a portal session lasts.
pub const PORTAL_SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// How long an invitation link stays valid.
pub const INVITATION_TTL: Duration = Duration::from_secs(72 * 3600);
/// The largest request body the API reads.
const MAX_BODY: usize = 16 * 1024;

/// An error answer: a status and one line in `{"error": ...}`.
#[derive(Debug)]
pub struct Problem(StatusCode, String);

impl Problem {
    fn not_found(what: &str) -> Self {
        Self(StatusCode::NOT_FOUND, format!("no such {what}"))
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

impl From<PeopleError> for Problem {
    fn from(e: PeopleError) -> Self {
        let status = match &e {
            PeopleError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            PeopleError::EmailTaken(_) => StatusCode::CONFLICT,
            PeopleError::InvitationInvalid => StatusCode::NOT_FOUND,
            PeopleError::BadCredentials => StatusCode::UNAUTHORIZED,
            PeopleError::WrongPassword => StatusCode::FORBIDDEN,
            PeopleError::Disabled | PeopleError::NotOperator | PeopleError::TwoFactorNeeded => StatusCode::FORBIDDEN,
            PeopleError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            PeopleError::Corrupt(_) | PeopleError::Hash(_) | PeopleError::Store(_) => {
                tracing::error!(error = %e, "portal request failed");
                return Self(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "something went wrong on the server; the log has the details".into(),
                );
            }
        };
        Self(status, e.to_string())
    }
}

impl From<stoxide_portal::Error> for Problem {
    fn from(e: stoxide_portal::Error) -> Self {
        use stoxide_engine::Error as E;
        match e {
            stoxide_portal::Error::People(p) => p.into(),
            stoxide_portal::Error::NotFound(_) => Self(StatusCode::NOT_FOUND, e.to_string()),
            stoxide_portal::Error::ConsentChanged => Self(StatusCode::CONFLICT, e.to_string()),
            stoxide_portal::Error::TwoFactor(_) | stoxide_portal::Error::Invalid(_) => {
                Self(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
            }
            stoxide_portal::Error::CodeNeeded => Self(StatusCode::UNAUTHORIZED, e.to_string()),
            stoxide_portal::Error::Engine(E::UnknownStrategy(_) | E::UnknownSubscription(_) | E::UnknownAccount(_)) => {
                Self(StatusCode::NOT_FOUND, e.to_string())
            }
            stoxide_portal::Error::Engine(E::Inputs(_) | E::Transition(_) | E::Invalid(_)) => {
                Self(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
            }
            stoxide_portal::Error::Engine(_) | stoxide_portal::Error::Vault(_) => {
                tracing::error!(error = %e, "portal request failed");
                Self(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "something went wrong on the server; the log has the details".into(),
                )
            }
        }
    }
}

impl From<crate::Error> for Problem {
    fn from(e: crate::Error) -> Self {
        tracing::error!(error = %e, "portal request failed");
        Self(
            StatusCode::INTERNAL_SERVER_ERROR,
            "something went wrong on the server; the log has the details".into(),
        )
    }
}

impl From<JsonRejection> for Problem {
    fn from(e: JsonRejection) -> Self {
        Self(
            StatusCode::BAD_REQUEST,
            format!("the body is not the JSON this route takes: {}", e.body_text()),
        )
    }
}

type ApiResult<T> = Result<T, Problem>;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A request from a signed-in person (bearer token).
pub struct Caller {
    token: String,
    viewer: Viewer,
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field("person", &self.viewer.person().id)
            .finish_non_exhaustive()
    }
}

impl Caller {
    fn person(&self) -> &Person {
        self.viewer.person()
    }
}

fn bearer(parts: &Parts) -> Option<String> {
    let v = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim().to_owned())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let unsigned = || {
            Problem(
                StatusCode::UNAUTHORIZED,
                "sign in first: POST /api/v1/sessions, then send Authorization: Bearer <token>".into(),
            )
        };
        let token = bearer(parts).ok_or_else(unsigned)?;
        let session = state.sessions.get(&token).await?.ok_or_else(unsigned)?;
        let id = session.user.strip_prefix(PERSON_PREFIX).ok_or_else(unsigned)?;
        let person = state.people.person(id).await?.ok_or_else(unsigned)?;
        let viewer = state.people.viewer(person).await?;
        Ok(Self { token, viewer })
    }
}

fn peer(parts_ext: &axum::http::Extensions) -> IpAddr {
    parts_ext
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |c| c.0.ip())
}

/// The API's routes (mounted at the root; every path starts with `/api/v1`).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/sessions", post(sign_in).get(sessions))
        .route("/api/v1/sessions/current", axum::routing::delete(sign_out))
        .route("/api/v1/sessions/{id}", axum::routing::delete(revoke))
        .route("/api/v1/invitations", post(invite))
        .route("/api/v1/invitations/accept", post(accept))
        .route("/api/v1/me", get(me))
        .route("/api/v1/me/two-factor", post(two_factor_setup).put(two_factor_enable))
        .route("/api/v1/me/notifications", get(notifications).put(set_notifications))
        .route("/api/v1/people", get(people))
        .route("/api/v1/clients", get(clients))
        .route("/api/v1/pnl", get(pnl))
        .route("/api/v1/people/{id}/disabled", axum::routing::put(set_disabled))
        .route("/api/v1/accounts", get(accounts))
        .route("/api/v1/accounts/{id}", get(account))
        .route("/api/v1/accounts/{id}/audit", get(audit))
        .route("/api/v1/strategies", get(strategies).post(register_strategy))
        .route("/api/v1/strategies/{id}/signing-secret", post(rotate_secret))
        .route("/api/v1/strategies/{id}/kill", post(strategy_kill))
        .route("/api/v1/subscriptions", get(subscriptions).post(subscribe))
        .route("/api/v1/subscriptions/{id}", get(subscription))
        .route("/api/v1/subscriptions/{id}/positions", get(positions))
        .route("/api/v1/subscriptions/{id}/consent", get(consent_page).post(consent))
        .route("/api/v1/subscriptions/{id}/inputs", axum::routing::put(change_inputs))
        .route("/api/v1/subscriptions/{id}/pause", post(pause))
        .route("/api/v1/subscriptions/{id}/resume", post(resume))
        .route("/api/v1/kill", post(kill_switch))
        .route("/api/v1/kill/global", post(global_kill))
        .route("/api/v1/signals", get(signals))
        .route("/api/v1/audit/verify", get(verify_audit))
        .route("/api/v1/accounts/{id}/compliance", get(compliance))
        .route("/api/v1/positions", get(positions_marked))
        .route("/api/v1/orders", get(orders))
        .route("/api/v1/orders/{tag}", get(order))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    email: String,
    password: String,
    /// The authenticator app's current code, for people with two-factor sign-in.
    code: Option<String>,
}

/// `POST /api/v1/sessions`: 201 `{token, person, expires_at}`; 401 wrong email or password; 403
/// disabled; 429 throttled.
async fn sign_in(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    body: Result<Json<SignIn>, JsonRejection>,
) -> ApiResult<Response> {
    let Json(body) = body?;
    let person = state
        .portal
        .sign_in(
            &body.email,
            &SecretString::from(body.password),
            body.code.as_deref(),
            peer(&ext),
        )
        .await
        .map_err(|e| match e {
            // A wrong code is a failed sign-in.
            stoxide_portal::Error::TwoFactor(m) => Problem(StatusCode::UNAUTHORIZED, m),
            other => other.into(),
        })?;
    let token = state
        .sessions
        .create_for(&format!("{PERSON_PREFIX}{}", person.id), PORTAL_SESSION_TTL)
        .await?;
    tracing::info!(person = %person.id, "portal sign-in");
    let expires_at = now_ms() + i64::try_from(PORTAL_SESSION_TTL.as_millis()).unwrap_or(0);
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({
            "token": token,
            "session": Sessions::public_id(&token),
            "person": person,
            "expires_at": expires_at,
        })),
    )
        .into_response())
}

/// `GET /api/v1/sessions`: the caller's own live sessions.
async fn sessions(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    let list = state
        .sessions
        .list(&format!("{PERSON_PREFIX}{}", caller.person().id))
        .await?;
    let current = Sessions::public_id(&caller.token);
    let list: Vec<_> = list
        .into_iter()
        .map(|s| {
            let mut v = serde_json::to_value(&s).unwrap_or_default();
            v["current"] = serde_json::Value::Bool(s.id == current);
            v
        })
        .collect();
    Ok(Json(list).into_response())
}

/// `DELETE /api/v1/sessions/current`: signs out.
async fn sign_out(State(state): State<AppState>, caller: Caller) -> ApiResult<StatusCode> {
    state.sessions.remove(&caller.token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /api/v1/sessions/{id}`: ends another of the caller's own sessions (404 for anyone
/// else's; 422 for the one making the request — that is signing out).
async fn revoke(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let user = format!("{PERSON_PREFIX}{}", caller.person().id);
    if id == Sessions::public_id(&caller.token) {
        return Err(Problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "that is the session making this request: sign out with DELETE /api/v1/sessions/current".into(),
        ));
    }
    if state.sessions.revoke(&user, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::not_found("session"))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InviteBody {
    email: String,
    name: String,
    #[serde(default = "client_role")]
    role: Role,
}

fn client_role() -> Role {
    Role::Client
}

/// `POST /api/v1/invitations` (operator): 201 `{person, invitation, link, expires_at}` — the
/// invitation secret is shown this once.
async fn invite(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<InviteBody>, JsonRejection>,
) -> ApiResult<Response> {
    let by = caller.viewer.operator()?.clone();
    let Json(body) = body?;
    let inv = state
        .people
        .invite(&by, &body.email, &body.name, body.role, INVITATION_TTL, now_ms())
        .await?;
    use secrecy::ExposeSecret;
    let secret = inv.secret.expose_secret();
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({
            "person": inv.person,
            "invitation": secret,
            "link": format!("/portal/invite/{secret}"),
            "expires_at": inv.expires_at,
        })),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AcceptBody {
    invitation: String,
    password: String,
}

/// `POST /api/v1/invitations/accept`: the invited person sets their password; 200 the person,
/// 404 an unknown, used or expired invitation, 422 a password that will not do.
async fn accept(State(state): State<AppState>, body: Result<Json<AcceptBody>, JsonRejection>) -> ApiResult<Response> {
    let Json(body) = body?;
    let person = state
        .people
        .accept(
            &SecretString::from(body.invitation),
            &SecretString::from(body.password),
            now_ms(),
        )
        .await?;
    Ok(Json(person).into_response())
}

/// `GET /api/v1/me`.
async fn me(caller: Caller) -> Json<Person> {
    Json(caller.person().clone())
}

/// `GET /api/v1/people` (operator).
async fn people(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.viewer.operator()?;
    Ok(Json(state.people.list(None).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DisabledBody {
    disabled: bool,
}

/// `PUT /api/v1/people/{id}/disabled` (operator): `{disabled: bool}`.
async fn set_disabled(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Json<DisabledBody>, JsonRejection>,
) -> ApiResult<StatusCode> {
    let by = caller.viewer.operator()?.clone();
    let Json(body) = body?;
    if id == by.id {
        return Err(Problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "an operator cannot disable themselves".into(),
        ));
    }
    if state.people.set_disabled(&by, &id, body.disabled, now_ms()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::not_found("person"))
    }
}

/// `GET /api/v1/accounts`.
async fn accounts(caller: Caller) -> ApiResult<Response> {
    Ok(Json(caller.viewer.accounts(now_ms()).await?).into_response())
}

/// `GET /api/v1/accounts/{id}`.
async fn account(caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    let a = caller.viewer.account(&id, now_ms()).await?;
    a.map(|a| Json(a).into_response())
        .ok_or_else(|| Problem::not_found("account"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Window {
    /// Epoch ms, inclusive; default a day before `to`.
    from: Option<i64>,
    /// Epoch ms, exclusive; default now.
    to: Option<i64>,
}

/// `GET /api/v1/accounts/{id}/audit?from=&to=`.
async fn audit(
    caller: Caller,
    Path(id): Path<String>,
    q: Result<Query<Window>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let Query(w) = q.map_err(|e| Problem(StatusCode::BAD_REQUEST, e.body_text()))?;
    let to = w.to.unwrap_or_else(|| now_ms() + 1);
    let from = w.from.unwrap_or(to.saturating_sub(86_400_000));
    if from > to {
        return Err(Problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "from is after to: give epoch milliseconds with from <= to".into(),
        ));
    }
    let rows = caller.viewer.audit(&id, from, to).await?;
    rows.map(|r| Json(r).into_response())
        .ok_or_else(|| Problem::not_found("account"))
}

/// `GET /api/v1/subscriptions`.
async fn subscriptions(caller: Caller) -> ApiResult<Response> {
    Ok(Json(caller.viewer.subscriptions().await?).into_response())
}

/// `GET /api/v1/subscriptions/{id}`.
async fn subscription(caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    let s = caller.viewer.subscription(&id).await?;
    s.map(|s| Json(s).into_response())
        .ok_or_else(|| Problem::not_found("subscription"))
}

/// `GET /api/v1/subscriptions/{id}/positions`.
async fn positions(caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    let p = caller.viewer.positions(&id).await?;
    p.map(|p| Json(p).into_response())
        .ok_or_else(|| Problem::not_found("subscription"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OrdersQuery {
    account: Option<String>,
    limit: Option<i64>,
}

/// `GET /api/v1/orders?account=&limit=`: newest first.
async fn orders(
    caller: Caller,
    q: Result<Query<OrdersQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let Query(q) = q.map_err(|e| Problem(StatusCode::BAD_REQUEST, e.body_text()))?;
    let rows = caller
        .viewer
        .orders(q.account.as_deref(), q.limit.unwrap_or(100))
        .await?;
    rows.map(|r| Json(r).into_response())
        .ok_or_else(|| Problem::not_found("account"))
}

/// `GET /api/v1/orders/{tag}`.
async fn order(caller: Caller, Path(tag): Path<String>) -> ApiResult<Response> {
    let o = caller.viewer.order(&tag).await?;
    o.map(|o| Json(o).into_response())
        .ok_or_else(|| Problem::not_found("order"))
}

/// `GET /api/v1/openapi.json`.
async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("../openapi.json"),
    )
        .into_response()
}

/// `GET /api/v1/strategies`: the catalog.
async fn strategies(State(state): State<AppState>, _caller: Caller) -> ApiResult<Response> {
    Ok(Json(state.portal.catalog().await?).into_response())
}

/// A subscription as its owner reads it, after a change.
async fn subscription_view(caller: &Caller, id: &str) -> ApiResult<Response> {
    let s = caller.viewer.subscription(id).await?;
    s.map(|s| Json(s).into_response())
        .ok_or_else(|| Problem::not_found("subscription"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscribeBody {
    account: String,
    strategy: String,
    inputs: stoxide_engine::subscription::Inputs,
}

/// `POST /api/v1/subscriptions`: 201, awaiting consent.
async fn subscribe(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    caller: Caller,
    body: Result<Json<SubscribeBody>, JsonRejection>,
) -> ApiResult<Response> {
    let Json(b) = body?;
    let sub = state
        .portal
        .subscribe(&caller.viewer, &b.account, &b.strategy, b.inputs, peer(&ext))
        .await?;
    let view = subscription_view(&caller, &sub.id).await?;
    Ok((StatusCode::CREATED, view).into_response())
}

/// `GET /api/v1/subscriptions/{id}/consent`: exactly what consenting agrees to.
async fn consent_page(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    Ok(Json(priced_preview(&state, &caller.viewer, &id).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsentBody {
    /// The hash the consent page showed.
    hash: String,
    /// Either the password…
    password: Option<String>,
    /// …or the authenticator app's current code.
    code: Option<String>,
}

/// `POST /api/v1/subscriptions/{id}/consent`: consent as shown, confirmed with the password.
async fn consent(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Json<ConsentBody>, JsonRejection>,
) -> ApiResult<Response> {
    let Json(b) = body?;
    let confirm = match (b.password, b.code) {
        (Some(p), None) => stoxide_portal::Confirm::Password(SecretString::from(p)),
        (None, Some(c)) => stoxide_portal::Confirm::Code(c),
        _ => {
            return Err(Problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "confirm with either your password or your two-factor code (one of them)".into(),
            ));
        }
    };
    state
        .portal
        .consent(&caller.viewer, &id, &b.hash, &confirm, peer(&ext))
        .await?;
    subscription_view(&caller, &id).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InputsBody {
    inputs: stoxide_engine::subscription::Inputs,
}

/// `PUT /api/v1/subscriptions/{id}/inputs`: back to awaiting consent when they differ.
async fn change_inputs(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Json<InputsBody>, JsonRejection>,
) -> ApiResult<Response> {
    let Json(b) = body?;
    state
        .portal
        .change_inputs(&caller.viewer, &id, b.inputs, peer(&ext))
        .await?;
    subscription_view(&caller, &id).await
}

/// `POST /api/v1/subscriptions/{id}/pause`.
async fn pause(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    state.portal.pause(&caller.viewer, &id, peer(&ext)).await?;
    subscription_view(&caller, &id).await
}

/// `POST /api/v1/subscriptions/{id}/resume`.
async fn resume(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    state.portal.resume(&caller.viewer, &id, peer(&ext)).await?;
    subscription_view(&caller, &id).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KillBody {
    /// One account of yours; all of them when absent.
    account: Option<String>,
    /// `true` halts; `false` lets go again.
    halt: bool,
    /// With `halt`: also cancel the open orders and exit the open positions (the running
    /// engine does it).
    #[serde(default)]
    exit: bool,
}

/// `POST /api/v1/kill`: the caller's own kill switch.
async fn kill_switch(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    caller: Caller,
    body: Result<Json<KillBody>, JsonRejection>,
) -> ApiResult<Response> {
    let Json(b) = body?;
    let report = state
        .portal
        .kill_switch(
            &caller.viewer,
            b.account.as_deref(),
            match (b.halt, b.exit) {
                (false, _) => stoxide_portal::Switch::Release,
                (true, false) => stoxide_portal::Switch::Halt,
                (true, true) => stoxide_portal::Switch::HaltAndExit,
            },
            peer(&ext),
            now_ms(),
        )
        .await?;
    Ok(Json(report).into_response())
}

/// `POST /api/v1/me/two-factor`: a fresh secret for the authenticator app (shown once, stored
/// only when confirmed with `PUT`).
async fn two_factor_setup(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    use secrecy::ExposeSecret;
    let setup = state.portal.two_factor_setup(&caller.viewer)?;
    Ok(Json(serde_json::json!({
        "secret": setup.secret.expose_secret(),
        "otpauth_url": setup.otpauth_url.expose_secret(),
    }))
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnableBody {
    secret: String,
    code: String,
}

/// `PUT /api/v1/me/two-factor`: turns two-factor sign-in on with the set-up's secret and a
/// current code.
async fn two_factor_enable(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<EnableBody>, JsonRejection>,
) -> ApiResult<Response> {
    let Json(b) = body?;
    let person = state
        .portal
        .enable_two_factor(&caller.viewer, &SecretString::from(b.secret), &b.code)
        .await?;
    Ok(Json(person).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitQuery {
    limit: Option<i64>,
}

/// `GET /api/v1/signals?limit=` (operator): the signal monitor — each signal and its fan-out.
async fn signals(
    State(state): State<AppState>,
    caller: Caller,
    q: Result<Query<LimitQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let Query(q) = q.map_err(|e| Problem(StatusCode::BAD_REQUEST, e.body_text()))?;
    let list = state.portal.signals(&caller.viewer, q.limit.unwrap_or(50)).await?;
    Ok(Json(list).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HaltBody {
    halt: bool,
}

/// `POST /api/v1/kill/global` (operator): every client's trading halted, or let go.
async fn global_kill(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    caller: Caller,
    body: Result<Json<HaltBody>, JsonRejection>,
) -> ApiResult<Response> {
    let Json(b) = body?;
    let s = state.portal.global_kill(&caller.viewer, b.halt, peer(&ext)).await?;
    Ok(Json(serde_json::json!({ "state": s })).into_response())
}

/// `GET /api/v1/audit/verify` (operator): re-checks the whole audit chain.
async fn verify_audit(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    Ok(Json(state.portal.verify_audit(&caller.viewer).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DayQuery {
    /// `YYYY-MM-DD`, an IST day; today (IST) when absent.
    day: Option<String>,
}

/// The IST day a query names (today when absent).
pub(crate) fn day_of(raw: Option<&str>) -> Result<chrono::NaiveDate, Problem> {
    match raw {
        None => Ok(chrono::Utc::now().with_timezone(&upstox_types::IST).date_naive()),
        Some(d) => chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| {
            Problem(
                StatusCode::BAD_REQUEST,
                format!("day {d:?} is not a date: give YYYY-MM-DD (an IST day)"),
            )
        }),
    }
}

/// `GET /api/v1/accounts/{id}/compliance?day=YYYY-MM-DD`: the account's audit records of that
/// IST day as CSV (operator, or the client who owns it).
async fn compliance(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    q: Result<Query<DayQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let Query(q) = q.map_err(|e| Problem(StatusCode::BAD_REQUEST, e.body_text()))?;
    let day = day_of(q.day.as_deref())?;
    let text = state.portal.compliance_csv(&caller.viewer, &id, day).await?;
    Ok(csv_response(&id, day, text))
}

/// A CSV download named after the account and the day.
pub(crate) fn csv_response(account: &str, day: chrono::NaiveDate, text: String) -> Response {
    let safe: String = account
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
        .collect();
    let disposition = format!("attachment; filename=\"audit-{safe}-{day}.csv\"");
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        text,
    )
        .into_response()
}

/// `GET /api/v1/me/notifications`: what the caller is told, and how.
async fn notifications(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    Ok(Json(state.portal.notification_settings(&caller.viewer).await?).into_response())
}

/// `PUT /api/v1/me/notifications`: `{email, webhook_url, events}`.
async fn set_notifications(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<stoxide_portal::notify::Settings>, JsonRejection>,
) -> ApiResult<Response> {
    let Json(b) = body?;
    Ok(Json(state.portal.set_notification_settings(&caller.viewer, &b).await?).into_response())
}

/// The viewer's positions marked to the market: last prices read with each account's own token
/// (an account whose prices cannot be read shows its positions unmarked).
pub(crate) async fn marked_positions(
    state: &AppState,
    viewer: &Viewer,
) -> Result<Vec<stoxide_portal::MarkedPosition>, Problem> {
    use std::collections::HashMap;
    let mut all = Vec::new();
    for s in viewer.subscriptions().await? {
        for p in viewer.positions(&s.id).await?.unwrap_or_default() {
            all.push((s.id.clone(), s.account.clone(), p));
        }
    }
    let mut by_account: HashMap<String, Vec<String>> = HashMap::new();
    for (_, account, p) in &all {
        if p.quantity != 0 {
            by_account
                .entry(account.clone())
                .or_default()
                .push(p.instrument.clone());
        }
    }
    let mut ltps: HashMap<String, rust_decimal::Decimal> = HashMap::new();
    for (account, keys) in by_account {
        ltps.extend(last_prices(state, &account, keys).await);
    }
    Ok(stoxide_portal::mark_to_market(&all, &ltps))
}

/// The last prices of `keys` (instrument key → price), read with `account`'s own token; none
/// when the account has no token or Upstox cannot be asked (said in the log).
pub(crate) async fn last_prices(
    state: &AppState,
    account: &str,
    mut keys: Vec<String>,
) -> std::collections::HashMap<String, rust_decimal::Decimal> {
    let mut ltps = std::collections::HashMap::new();
    keys.sort();
    keys.dedup();
    let Ok(Some(a)) = state.vault.account(account).await else {
        return ltps;
    };
    let Ok(Some(token)) = state.vault.access_token(account).await else {
        return ltps;
    };
    let Ok(client) = state.clients.for_user(&a.base_url, account, token) else {
        return ltps;
    };
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    match client.ltp(&refs).await {
        Ok(quotes) => {
            for q in quotes.into_values() {
                if let Ok(d) = rust_decimal::Decimal::try_from(q.last_price) {
                    ltps.insert(q.instrument_token.to_string(), d.round_dp(2));
                }
            }
        }
        Err(e) => tracing::warn!(account = %account, error = %e, "no last prices"),
    }
    ltps
}

/// What consenting to `id` agrees to, with one order priced at today's last prices (read with
/// the account's own token; lot sizes from the instrument master). Without prices the preview
/// still stands: the figures are then missing, never guessed.
pub(crate) async fn priced_preview(
    state: &AppState,
    viewer: &Viewer,
    id: &str,
) -> Result<stoxide_portal::ConsentPreview, stoxide_portal::Error> {
    let mut p = state.portal.consent_preview(viewer, id).await?;
    let ltps = last_prices(state, &p.account, p.instruments.clone()).await;
    let master = crate::pages::instrument_master(state).await.ok();
    p.at_todays_prices = stoxide_portal::at_todays_prices(
        &p.sizing_inputs,
        &p.instruments,
        |k| {
            let i = master?.get(k)?;
            Some((i.trading_symbol.to_owned(), i.lot_size.unwrap_or(1).max(1)))
        },
        &ltps,
    );
    Ok(p)
}

/// Each strategy's realised P&L over time in the viewer's scope, replayed from the fills of
/// their latest orders (MCX quantities are lots: their lot size from the instrument master).
pub(crate) async fn pnl_curves(
    state: &AppState,
    viewer: &Viewer,
) -> Result<std::collections::BTreeMap<String, Vec<stoxide_portal::PnlPoint>>, Problem> {
    let orders = viewer
        .orders(None, stoxide_people::MAX_ORDERS)
        .await?
        .unwrap_or_default();
    // The instrument master only where a fill's quantity counts lots.
    let in_lots = |o: &stoxide_people::OrderView| {
        o.plan
            .as_ref()
            .and_then(|p| p["instrument"].as_str())
            .and_then(|k| k.parse::<upstox_types::InstrumentKey>().ok())
            .is_some_and(|k| k.segment().quantity_in_lots())
    };
    let master = if orders.iter().any(|o| o.filled > 0 && in_lots(o)) {
        crate::pages::instrument_master(state).await.ok()
    } else {
        None
    };
    Ok(stoxide_portal::pnl_over_time(&orders, |k| {
        master.and_then(|m| m.get(&k.to_string())).and_then(|i| i.lot_size)
    }))
}

/// `GET /api/v1/pnl`: each strategy's realised P&L over time (`[[epoch ms, rupees], …]`), from
/// the fills of the caller's latest orders.
async fn pnl(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    Ok(Json(pnl_curves(&state, &caller.viewer).await?).into_response())
}

/// `GET /api/v1/clients` (operator): every client's accounts today — token state, orders by
/// state, Upstox's 429s, subscriptions waiting for a login.
async fn clients(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    Ok(Json(state.portal.client_health(&caller.viewer, now_ms()).await?).into_response())
}

/// `GET /api/v1/positions`: the caller's positions, marked to the market.
async fn positions_marked(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    Ok(Json(marked_positions(&state, &caller.viewer).await?).into_response())
}

/// `POST /api/v1/strategies` (operator): a strategy's definition — new, or a new version (which
/// puts every subscription of it back to awaiting consent).
async fn register_strategy(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    caller: Caller,
    body: Result<Json<stoxide_engine::catalog::Strategy>, JsonRejection>,
) -> ApiResult<Response> {
    let Json(s) = body?;
    let r = state.portal.register_strategy(&caller.viewer, &s, peer(&ext)).await?;
    let status = if r == stoxide_portal::Registered::New {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(r)).into_response())
}

/// `POST /api/v1/strategies/{id}/signing-secret` (operator): a new signing secret, shown once.
async fn rotate_secret(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    use secrecy::ExposeSecret;
    let secret = state.portal.rotate_signing_secret(&caller.viewer, &id).await?;
    Ok(Json(serde_json::json!({ "strategy": id, "secret": secret.expose_secret() })).into_response())
}

/// `POST /api/v1/strategies/{id}/kill` (operator): `{halt}` for every subscription of it.
async fn strategy_kill(
    State(state): State<AppState>,
    ext: axum::http::Extensions,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<Json<HaltBody>, JsonRejection>,
) -> ApiResult<Response> {
    let Json(b) = body?;
    let subs = state
        .portal
        .strategy_kill(&caller.viewer, &id, b.halt, peer(&ext))
        .await?;
    Ok(Json(serde_json::json!({ "strategy": id, "subscriptions": subs, "halted": b.halt })).into_response())
}
