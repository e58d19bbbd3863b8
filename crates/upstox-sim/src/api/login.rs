//! Login: the authorization dialog (an HTML form for the seeded users), the code-for-token
//! exchange, v3 access-token requests delivered to the app's notifier webhook, and logout.

use std::collections::HashMap;
use std::time::Duration;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use bytes::Bytes;
use serde_json::json;
use upstox_types::error_code;

use super::QueryMap;
use crate::error::{ApiError, ApiResult, success};
use crate::state::{AppState, Authed, SimState};

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn form_page(q: &HashMap<String, String>, error: Option<&str>) -> Html<String> {
    let field = |k: &str| escape(q.get(k).map(String::as_str).unwrap_or(""));
    let error = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    Html(format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Upstox simulator — Login</title>
<style>body{{font-family:sans-serif;max-width:24rem;margin:4rem auto}}label{{display:block;margin:.6rem 0}}.error{{color:#b00}}</style>
</head><body>
<h1>Log in (simulator)</h1>
<p>App <code>{client_id}</code> asks to trade on your behalf.</p>
{error}
<form method="post" action="/v2/login/authorization/dialog" id="login-form">
<input type="hidden" name="client_id" value="{client_id}">
<input type="hidden" name="redirect_uri" value="{redirect_uri}">
<input type="hidden" name="state" value="{state}">
<input type="hidden" name="response_type" value="code">
<label>User ID <input name="user_id" id="user_id" autocomplete="username" required></label>
<label>PIN <input name="pin" id="pin" type="password" inputmode="numeric" autocomplete="current-password" required></label>
<button type="submit" id="login-submit">Log in and authorize</button>
</form></body></html>"#,
        client_id = field("client_id"),
        redirect_uri = field("redirect_uri"),
        state = field("state"),
    ))
}

/// `GET /v2/login/authorization/dialog`: the login form, or UDAPI100068 for a wrong app.
pub(super) async fn dialog(State(state): State<AppState>, q: QueryMap) -> Result<Html<String>, ApiError> {
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
    state
        .auth
        .lock()
        .check_dialog(get("client_id"), get("redirect_uri"), get("response_type"))?;
    Ok(form_page(&q, None))
}

/// The form submission: a 302 to the app's redirect_uri with `code` and `state`.
pub(super) async fn dialog_submit(
    State(state): State<AppState>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let now = state.now();
    let result = state
        .auth
        .lock()
        .login(get("client_id"), get("redirect_uri"), get("user_id"), get("pin"), now);
    match result {
        Ok(code) => {
            let Ok(mut url) = url::Url::parse(get("redirect_uri")) else {
                return ApiError::bad_request(error_code::BAD_CLIENT_OR_REDIRECT, "redirect_uri is not a URL")
                    .into_response();
            };
            url.query_pairs_mut().append_pair("code", &code);
            if let Some(s) = form.get("state") {
                url.query_pairs_mut().append_pair("state", s);
            }
            (StatusCode::FOUND, [(header::LOCATION, url.to_string())]).into_response()
        }
        Err(e) if e.code == error_code::INVALID_CREDENTIALS => (
            StatusCode::UNAUTHORIZED,
            form_page(&form, Some("Wrong user ID or PIN.")),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// `POST /v2/login/authorization/token` (form): the token response, not wrapped in an envelope.
pub(super) async fn token(State(state): State<AppState>, body: Bytes) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    for field in ["code", "client_id", "client_secret", "redirect_uri", "grant_type"] {
        if get(field).is_empty() {
            return ApiError::bad_request(error_code::INVALID_INPUT, format!("{field} is required"))
                .with_property(field, None)
                .into_response();
        }
    }
    let now = state.now();
    let issued = {
        let mut auth = state.auth.lock();
        auth.exchange(
            get("code"),
            get("client_id"),
            get("client_secret"),
            get("redirect_uri"),
            get("grant_type"),
            now,
        )
    };
    match issued {
        Ok(t) => {
            let user = state.auth.lock().user(&t.record.user_id).cloned();
            let Some(user) = user else {
                return ApiError::internal().into_response();
            };
            let mut body = super::user::profile_json(&user);
            body.insert("access_token".into(), t.access_token.into());
            body.insert("extended_token".into(), t.extended_token.into());
            axum::Json(serde_json::Value::Object(body)).into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// `POST /v3/login/auth/token/request/{client_id}`: starts a request the simulated user approves.
pub(super) async fn token_request(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let body: serde_json::Value = serde_json::from_slice(&body).map_err(|_| {
        ApiError::bad_request(
            error_code::INVALID_INPUT,
            "Body must be JSON: {\"client_secret\": \"...\"}",
        )
    })?;
    let secret = body.get("client_secret").and_then(|s| s.as_str()).unwrap_or("");
    let now = state.now();
    let (id, request) = state.auth.lock().request_token(&client_id, secret, now)?;
    let notifier = state.auth.lock().app(&client_id).and_then(|a| a.notifier_url.clone());
    if let Some(ms) = state.config.token_request_auto_approve_ms {
        let state = state.clone();
        let id = id.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            approve(&state, &id).await;
        });
    }
    Ok(success(json!({
        "authorization_expiry": request.expires_at.timestamp_millis().to_string(),
        "notifier_url": notifier.unwrap_or_default(),
    })))
}

/// Approves a pending request: issues the token and POSTs it to the app's notifier webhook.
pub(crate) async fn approve(state: &SimState, id: &str) -> bool {
    let now = state.now();
    let (issued, notifier) = {
        let mut auth = state.auth.lock();
        let Some(req) = auth.take_request(id) else {
            return false;
        };
        if now >= req.expires_at {
            return false;
        }
        let issued = auth.issue(&req.user_id, &req.client_id, now);
        let notifier = auth.app(&req.client_id).and_then(|a| a.notifier_url.clone());
        (issued, notifier)
    };
    let Some(url) = notifier else {
        tracing::warn!(
            request = id,
            "approved token request, but the app has no notifier_url to deliver it to"
        );
        return true;
    };
    let payload = json!({
        "client_id": issued.record.client_id,
        "user_id": issued.record.user_id,
        "access_token": issued.access_token,
        "token_type": "Bearer",
        "expires_at": issued.record.expires_at.timestamp_millis().to_string(),
        "issued_at": issued.record.issued_at.timestamp_millis().to_string(),
        "message_type": "access_token",
    });
    crate::server::install_crypto_provider();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build();
    match client {
        Ok(c) => {
            if let Err(e) = c.post(&url).json(&payload).send().await {
                tracing::warn!(error = %e.without_url(), "notifier webhook delivery failed");
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot build webhook client"),
    }
    true
}

/// `DELETE /v2/logout`.
pub(super) async fn logout(State(state): State<AppState>, who: Authed) -> ApiResult {
    state.auth.lock().logout(&who.token);
    Ok(success(true))
}
