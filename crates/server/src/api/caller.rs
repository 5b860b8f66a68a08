//! The caller of a route: one extractor for both ways in.
//!
//! `Authorization: Bearer <token>` is an API key; otherwise the
//! `simguard_session` cookie is a console session. Either gives the same
//! [`Caller`] (name, role, tenant), so every route works with both and
//! applies the same checks. A cookie-authenticated request that changes
//! something (POST, PUT, PATCH, DELETE) must also pass the CSRF checks
//! (`access::session::check_csrf`); a bearer request needs none, since no
//! browser attaches a bearer token on its own. A request that carries a
//! bearer token is judged by it alone, cookie or not.

use super::error::ApiError;
use super::with_reader;
use crate::access::session;
use crate::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, Method};
use simguard_store::Role;

/// How the caller authenticated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Via {
    ApiKey {
        id: i64,
    },
    /// A console session (the cookie's secret stays in the request).
    Session,
}

/// The authenticated caller.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The API key's or the user's name (the audit trail's actor).
    pub name: String,
    pub role: Role,
    /// None = operator-wide (sees every tenant).
    pub tenant: Option<String>,
    pub via: Via,
}

fn now_ms() -> i64 {
    crate::acct::now_ms()
}

impl Caller {
    /// Whether the caller may see things of `tenant` (None = unprovisioned devices,
    /// which only operator-wide callers see).
    pub fn sees(&self, tenant: Option<&str>) -> bool {
        match (&self.tenant, tenant) {
            (None, _) => true,
            (Some(mine), Some(t)) => mine == t,
            (Some(_), None) => false,
        }
    }

    /// Refuses callers below `min`: viewers read; operators also act on
    /// devices and alerts; admins also manage inventory, rules, policies,
    /// users and API keys.
    pub fn require(&self, min: Role) -> Result<(), ApiError> {
        if self.role.at_least(min) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this needs role {} or above; {} has role {}",
                min.as_str(),
                self.name,
                self.role.as_str()
            )))
        }
    }

    /// Data that belongs to no tenant (unattributed flows) is for operator-wide callers.
    pub fn require_operator_wide_read(&self) -> Result<(), ApiError> {
        if self.tenant.is_none() {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "only operator-wide callers see data that belongs to no tenant",
            ))
        }
    }

    pub fn require_operator_wide(&self) -> Result<(), ApiError> {
        if self.tenant.is_none() && self.role == Role::Admin {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "only an operator-wide admin can do this",
            ))
        }
    }

    /// What the caller may manage (users, API keys): its tenant's, or
    /// everything for an operator-wide admin.
    pub fn scope(&self) -> Option<&str> {
        self.tenant.as_deref()
    }
}

fn bearer(parts: &Parts) -> Option<Result<&str, ApiError>> {
    let v = parts.headers.get(header::AUTHORIZATION)?;
    Some(
        v.to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(ApiError::unauthorized),
    )
}

/// Whether a request of this method may change something (and so needs
/// the CSRF checks when a cookie authenticates it).
pub fn changes_state(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(token) = bearer(parts) {
            let token = token?;
            let key = with_reader(state, |r| r.find_api_key(token))?
                .ok_or_else(ApiError::unauthorized)?;
            return Ok(Caller {
                name: key.name,
                role: key.role,
                tenant: key.tenant,
                via: Via::ApiKey { id: key.id },
            });
        }
        let secret = session::cookie(&parts.headers).ok_or_else(ApiError::unauthorized)?;
        let access = &state.access;
        let now = now_ms();
        let record = access
            .with(|a| a.session(&secret))
            .map_err(ApiError::internal)?
            .filter(|s| session::is_live(s, now, &access.policy))
            .ok_or_else(ApiError::session_expired)?;
        if changes_state(&parts.method) {
            session::check_csrf(&parts.headers, &record.csrf, &access.policy).map_err(|e| {
                tracing::warn!(user = %record.user.name, method = %parts.method, path = %parts.uri.path(), error = %e, "CSRF check failed");
                ApiError::csrf(e.to_string())
            })?;
        }
        if now - record.last_seen_ms >= access.policy.touch_every_ms() {
            access
                .with(|a| a.touch_session(&secret, now))
                .map_err(ApiError::internal)?;
        }
        Ok(Caller {
            name: record.user.name,
            role: record.user.role,
            tenant: record.user.tenant,
            via: Via::Session,
        })
    }
}
