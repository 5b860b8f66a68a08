//! Console sessions: log in, read the current session, log out.
//!
//! A login answers the same 401 for an unknown user and a wrong password,
//! after the same work (an unknown user is verified against a dummy hash),
//! so neither the answer nor its timing tells which names exist. Failed
//! logins back off per username and per client address
//! (`access::limiter`), for unknown names exactly as for known ones.

use super::caller::{Caller, Via};
use super::error::{ApiError, ErrorBody};
use crate::access::{password, session, Access};
use crate::AppState;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use simguard_engine::time::rfc3339;
use simguard_store::{Role, SessionRecord};
use std::net::SocketAddr;
use std::sync::Arc;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
pub struct LoginInput {
    pub username: String,
    pub password: String,
}

/// The session: who, with which role and tenant, the token to send as
/// `x-csrf-token` on writes, and when it ends at the latest.
#[derive(Serialize, ToSchema, Debug)]
pub struct SessionView {
    pub user: String,
    /// admin, operator or viewer.
    pub role: &'static str,
    /// null = operator-wide.
    pub tenant: Option<String>,
    pub csrf_token: String,
    /// The absolute end (RFC 3339); an idle session ends sooner.
    pub expires: String,
    pub expires_ms: i64,
    /// Seconds without a request after which the session ends.
    pub idle_timeout_secs: i64,
}

fn view(
    user: &str,
    role: Role,
    tenant: Option<String>,
    csrf: String,
    expires_ms: i64,
    a: &Access,
) -> SessionView {
    SessionView {
        user: user.to_string(),
        role: role.as_str(),
        tenant,
        csrf_token: csrf,
        expires: rfc3339(expires_ms),
        expires_ms,
        idle_timeout_secs: a.policy.idle_ms / 1000,
    }
}

fn record_view(r: SessionRecord, a: &Access) -> SessionView {
    view(
        &r.user.name,
        r.user.role,
        r.user.tenant,
        r.csrf,
        r.expires_ms,
        a,
    )
}

fn bad_credentials() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "wrong username or password",
    )
}

fn rate_limited(wait_ms: i64) -> Response {
    let secs = (wait_ms + 999) / 1000;
    let mut r = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("too many failed logins: try again in {secs} s"),
    )
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// Verifies on a blocking thread, a bounded number at once.
async fn verify(a: &Arc<Access>, password: String, phc: String) -> Result<bool, ApiError> {
    let _slot = a
        .verify_slots
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| ApiError::unavailable("server is shutting down"))?;
    tokio::task::spawn_blocking(move || password::verify(&password, &phc))
        .await
        .map_err(ApiError::internal)
}

/// Logs in: sets the `simguard_session` cookie (HttpOnly, SameSite=Strict,
/// Secure unless configured off for plain HTTP on loopback) and answers the
/// session with its CSRF token. 401 `wrong username or password` for an
/// unknown user and a wrong password alike; 429 with Retry-After while
/// failed logins back off.
#[utoipa::path(post, path = "/api/v1/session", request_body = LoginInput, security(()), responses((status = 200, body = SessionView, headers(("set-cookie" = String, description = "simguard_session=<secret>; Path=/; Max-Age=...; HttpOnly; SameSite=Strict; Secure"))), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn login(
    State(s): State<AppState>,
    ext: axum::http::Extensions,
    headers: HeaderMap,
    body: Result<Json<LoginInput>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let a = s.access.clone();
    // A login form posted from another site would log the victim into the
    // attacker's account (login CSRF): refuse a foreign Origin here too.
    if let Some(o) = headers.get(header::ORIGIN) {
        let o = o.to_str().unwrap_or("(not text)");
        if !session::same_origin(o, &headers, &a.policy) {
            return Err(ApiError::csrf(
                session::CsrfError::CrossOrigin(o.to_string()).to_string(),
            ));
        }
    }
    let Json(input) = body?;
    let addr = addr_of(&ext).unwrap_or_else(|| "unknown".to_string());
    let username = input.username.trim().to_string();
    let now = crate::acct::now_ms();
    if let Err(wait) = a.limiter.lock().check(&username, &addr, now) {
        tracing::warn!(user = %username, %addr, "login refused while backing off");
        return Ok(rate_limited(wait));
    }
    let creds = if username.is_empty() || username.len() > password::MAX_NAME {
        None
    } else {
        a.with(|st| st.credentials(&username))
            .map_err(ApiError::internal)?
    };
    let oversized = input.password.len() > password::MAX_PASSWORD;
    // Unknown user: the same verification against the dummy hash, so the
    // answer takes as long as a wrong password.
    let phc = creds
        .as_ref()
        .map_or_else(|| a.dummy_hash.clone(), |c| c.password_hash.clone());
    let pw = if oversized {
        String::new()
    } else {
        input.password
    };
    let matched = verify(&a, pw, phc).await?;
    let Some(user) = creds.filter(|_| matched && !oversized).map(|c| c.user) else {
        a.limiter
            .lock()
            .fail(&username, &addr, crate::acct::now_ms());
        tracing::info!(user = %username, %addr, "login failed");
        return Err(bad_credentials());
    };
    a.limiter.lock().succeed(&username);
    let now = crate::acct::now_ms();
    let secret = session::new_secret();
    let csrf = session::new_secret();
    let expires = now + a.policy.absolute_ms;
    let old = session::cookie(&headers);
    let idle = a.policy.idle_ms;
    a.with(|st| {
        // A new session id at every login (no fixation), and the one the
        // browser held before is ended.
        if let Some(old) = &old {
            st.delete_session(old)?;
        }
        st.purge_sessions(now, idle)?;
        st.create_session(&secret, &user.name, &csrf, now, expires)
    })
    .map_err(ApiError::internal)?;
    tracing::info!(user = %user.name, role = user.role.as_str(), tenant = ?user.tenant, %addr, "logged in");
    let cookie = session::set_cookie(&secret, &a.policy)
        .ok_or_else(|| ApiError::internal("session cookie is not a header value"))?;
    let body = view(&user.name, user.role, user.tenant, csrf, expires, &a);
    let mut r = Json(body).into_response();
    r.headers_mut().insert(header::SET_COOKIE, cookie);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// The current session (from the cookie), with its CSRF token: what the
/// console reads after a reload. 401 when there is none.
#[utoipa::path(get, path = "/api/v1/session", security(("session" = [])), responses((status = 200, body = SessionView), (status = 401, body = ErrorBody)))]
pub async fn current(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if caller.via != Via::Session {
        return Err(no_session());
    }
    let secret = session::cookie(&headers).ok_or_else(no_session)?;
    let r = s
        .access
        .with(|a| a.session(&secret))
        .map_err(ApiError::internal)?
        .ok_or_else(ApiError::session_expired)?;
    let mut resp = Json(record_view(r, &s.access)).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

fn no_session() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "no session: log in with POST /api/v1/session (a bearer token has no session)",
    )
}

#[derive(Serialize, ToSchema)]
pub struct LoggedOut {
    pub logged_out: bool,
}

/// Logs out: ends the session server-side and deletes the cookie. Needs
/// the `x-csrf-token` header like every cookie-authenticated write.
#[utoipa::path(delete, path = "/api/v1/session", security(("session" = [])), responses((status = 200, body = LoggedOut), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn logout(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if caller.via != Via::Session {
        return Err(no_session());
    }
    let secret = session::cookie(&headers).ok_or_else(no_session)?;
    s.access
        .with(|a| a.delete_session(&secret))
        .map_err(ApiError::internal)?;
    tracing::info!(user = %caller.name, "logged out");
    let mut r = Json(LoggedOut { logged_out: true }).into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, session::clear_cookie(&s.access.policy));
    Ok(r)
}

/// The client's address as the connection shows it (behind a proxy: the
/// proxy's, so its clients share one back-off; see README). Absent when the
/// router runs without connection info (in-memory tests).
fn addr_of(ext: &axum::http::Extensions) -> Option<String> {
    ext.get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
}
