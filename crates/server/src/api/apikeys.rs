//! API key management (admins): list, create (the token is shown once),
//! revoke. Scoped like users: a tenant admin manages its tenant's keys.

use super::caller::Caller;
use super::error::{ApiError, ErrorBody};
use super::users::{parse_role, tenant_for};
use crate::access::{password, session};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use simguard_engine::time::rfc3339;
use simguard_store::{ApiKeyInfo, Role};
use utoipa::ToSchema;

#[derive(Serialize, ToSchema, Debug)]
pub struct ApiKeyView {
    pub id: i64,
    pub name: String,
    /// admin, operator or viewer.
    pub role: &'static str,
    /// null = operator-wide.
    pub tenant: Option<String>,
    pub created: String,
}

#[derive(Serialize, ToSchema)]
pub struct ApiKeyList {
    pub items: Vec<ApiKeyView>,
}

/// A new key with its token: the only time the token is shown.
#[derive(Serialize, ToSchema)]
pub struct ApiKeyCreated {
    #[serde(flatten)]
    pub key: ApiKeyView,
    /// Send as `Authorization: Bearer <token>`. Only its hash is kept.
    pub token: String,
}

fn key_view(k: &ApiKeyInfo) -> ApiKeyView {
    ApiKeyView {
        id: k.id,
        name: k.name.clone(),
        role: k.role.as_str(),
        tenant: k.tenant.clone(),
        created: rfc3339(k.created_ms),
    }
}

/// A new API token: 256 random bits.
pub fn new_token() -> String {
    format!("sg_{}", session::random_hex(32))
}

/// API keys the caller manages (not revoked), by id (admins only).
#[utoipa::path(get, path = "/api/v1/apikeys", responses((status = 200, body = ApiKeyList), (status = 403, body = ErrorBody)))]
pub async fn list_keys(
    State(s): State<AppState>,
    caller: Caller,
) -> Result<Json<ApiKeyList>, ApiError> {
    caller.require(Role::Admin)?;
    let keys = s
        .access
        .with(|a| a.api_keys(caller.scope()))
        .map_err(ApiError::internal)?;
    Ok(Json(ApiKeyList {
        items: keys.iter().map(key_view).collect(),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyInput {
    /// 1 to 64 letters, digits and . - _ @ (the audit trail's actor).
    pub name: String,
    /// admin, operator or viewer.
    pub role: String,
    /// The key's tenant; null or absent = the caller's (operator-wide for
    /// an operator-wide admin).
    #[serde(default)]
    pub tenant: Option<String>,
}

/// Creates an API key and answers its token, once (admins only; a tenant
/// admin, in its tenant).
#[utoipa::path(post, path = "/api/v1/apikeys", request_body = ApiKeyInput, responses((status = 201, body = ApiKeyCreated), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn create_key(
    State(s): State<AppState>,
    caller: Caller,
    body: Result<Json<ApiKeyInput>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<ApiKeyCreated>), ApiError> {
    caller.require(Role::Admin)?;
    let Json(input) = body?;
    let name = input.name.trim().to_string();
    password::check_name(&name).map_err(|m| ApiError::invalid(format!("name: {m}")))?;
    let role = parse_role(&input.role)?;
    let tenant = tenant_for(&caller, input.tenant)?;
    let token = new_token();
    let now = crate::acct::now_ms();
    let id = s
        .access
        .with(|a| a.add_api_key(&name, &token, role, tenant.as_deref(), now))
        .map_err(ApiError::internal)?;
    tracing::info!(key = id, name = %name, role = role.as_str(), tenant = ?tenant, by = %caller.name, "API key created");
    Ok((
        StatusCode::CREATED,
        Json(ApiKeyCreated {
            key: ApiKeyView {
                id,
                name,
                role: role.as_str(),
                tenant,
                created: rfc3339(now),
            },
            token,
        }),
    ))
}

#[derive(Serialize, ToSchema)]
pub struct ApiKeyRevoked {
    pub revoked: i64,
}

/// Revokes an API key: it stops working at once (admins only; a tenant
/// admin, its tenant's).
#[utoipa::path(delete, path = "/api/v1/apikeys/{id}", params(("id" = i64, Path)), responses((status = 200, body = ApiKeyRevoked), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_key(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<ApiKeyRevoked>, ApiError> {
    caller.require(Role::Admin)?;
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::not_found(format!("no API key {id:?}")))?;
    let now = crate::acct::now_ms();
    let revoked = s
        .access
        .with(|a| a.revoke_api_key(id, caller.scope(), now))
        .map_err(ApiError::internal)?;
    if !revoked {
        return Err(ApiError::not_found(format!("no API key {id}")));
    }
    tracing::info!(key = id, by = %caller.name, "API key revoked");
    Ok(Json(ApiKeyRevoked { revoked: id }))
}
