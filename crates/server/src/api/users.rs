//! User management (admins): list, create, delete. A tenant's admin manages
//! only its tenant's users; an operator-wide admin manages all, and alone
//! creates operator-wide users. Another tenant's user does not exist for a
//! tenant admin (404), like every scoped resource.

use super::caller::{Caller, Via};
use super::error::{ApiError, ErrorBody};
use crate::access::password;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use simguard_engine::inventory;
use simguard_engine::time::rfc3339;
use simguard_store::{Role, User};
use std::sync::Arc;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema, Debug)]
pub struct UserView {
    pub name: String,
    /// admin, operator or viewer.
    pub role: &'static str,
    /// null = operator-wide.
    pub tenant: Option<String>,
    pub created: String,
}

#[derive(Serialize, ToSchema)]
pub struct UserList {
    pub items: Vec<UserView>,
}

fn user_view(u: &User) -> UserView {
    UserView {
        name: u.name.clone(),
        role: u.role.as_str(),
        tenant: u.tenant.clone(),
        created: rfc3339(u.created_ms),
    }
}

/// Parses a role field.
pub(crate) fn parse_role(r: &str) -> Result<Role, ApiError> {
    Role::parse(r.trim())
        .ok_or_else(|| ApiError::invalid(format!("role: {r:?} is not admin, operator or viewer")))
}

/// The tenant a new user or key gets: a tenant admin's own (it may name
/// it, nothing else); an operator-wide admin's choice (null = operator-wide).
pub(crate) fn tenant_for(
    caller: &Caller,
    asked: Option<String>,
) -> Result<Option<String>, ApiError> {
    let asked = asked
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty());
    if let Some(t) = &asked {
        inventory::validate_slug("tenant", t).map_err(|e| ApiError::invalid(e.to_string()))?;
    }
    match (&caller.tenant, asked) {
        (None, t) => Ok(t),
        (Some(mine), None) => Ok(Some(mine.clone())),
        (Some(mine), Some(t)) if *mine == t => Ok(Some(t)),
        (Some(_), Some(t)) => Err(ApiError::forbidden(format!(
            "a tenant admin manages only its own tenant, not {t:?}"
        ))),
    }
}

/// Users the caller manages, by name (admins only).
#[utoipa::path(get, path = "/api/v1/users", responses((status = 200, body = UserList), (status = 403, body = ErrorBody)))]
pub async fn list_users(
    State(s): State<AppState>,
    caller: Caller,
) -> Result<Json<UserList>, ApiError> {
    caller.require(Role::Admin)?;
    let users = s
        .access
        .with(|a| a.users(caller.scope()))
        .map_err(ApiError::internal)?;
    Ok(Json(UserList {
        items: users.iter().map(user_view).collect(),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserInput {
    /// 1 to 64 letters, digits and . - _ @.
    pub name: String,
    /// At least 8 characters.
    pub password: String,
    /// admin, operator or viewer.
    pub role: String,
    /// The user's tenant; null or absent = the caller's (operator-wide for
    /// an operator-wide admin).
    #[serde(default)]
    pub tenant: Option<String>,
}

/// Creates a user (admins only; a tenant admin, in its tenant). 409 when
/// the name is taken.
#[utoipa::path(post, path = "/api/v1/users", request_body = UserInput, responses((status = 201, body = UserView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_user(
    State(s): State<AppState>,
    caller: Caller,
    body: Result<Json<UserInput>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    caller.require(Role::Admin)?;
    let Json(input) = body?;
    let name = input.name.trim().to_string();
    password::check_name(&name).map_err(|m| ApiError::invalid(format!("name: {m}")))?;
    password::check_new(&input.password)
        .map_err(|m| ApiError::invalid(format!("password: {m}")))?;
    let role = parse_role(&input.role)?;
    let tenant = tenant_for(&caller, input.tenant)?;
    let a = Arc::clone(&s.access);
    let pw = input.password;
    let hash = tokio::task::spawn_blocking(move || password::hash(&pw))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    let now = crate::acct::now_ms();
    let added = a
        .with(|st| st.add_user(&name, &hash, role, tenant.as_deref(), now))
        .map_err(ApiError::internal)?;
    if !added {
        return Err(ApiError::conflict(format!("a user named {name:?} exists")));
    }
    tracing::info!(user = %name, role = role.as_str(), tenant = ?tenant, by = %caller.name, "user created");
    Ok((
        StatusCode::CREATED,
        Json(UserView {
            name,
            role: role.as_str(),
            tenant,
            created: rfc3339(now),
        }),
    ))
}

#[derive(Serialize, ToSchema)]
pub struct UserDeleted {
    pub deleted: String,
}

/// Deletes a user and ends its sessions (admins only; a tenant admin, its
/// tenant's). Nobody deletes the user they are logged in as.
#[utoipa::path(delete, path = "/api/v1/users/{name}", params(("name" = String, Path)), responses((status = 200, body = UserDeleted), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_user(
    State(s): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<UserDeleted>, ApiError> {
    caller.require(Role::Admin)?;
    if caller.via == Via::Session && caller.name == name {
        return Err(ApiError::invalid(
            "you cannot delete the user you are logged in as",
        ));
    }
    let deleted = s
        .access
        .with(|a| a.delete_user(&name, caller.scope()))
        .map_err(ApiError::internal)?;
    if !deleted {
        return Err(ApiError::not_found(format!("no user {name:?}")));
    }
    tracing::info!(user = %name, by = %caller.name, "user deleted");
    Ok(Json(UserDeleted { deleted: name }))
}
