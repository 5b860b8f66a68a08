//! API errors: JSON with a stable code and a message a person can act on.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable code: unauthorized, forbidden, csrf, not_found, conflict, invalid, rate_limited, unavailable, internal.
    pub code: &'static str,
    /// What went wrong and what to do about it.
    pub message: String,
    /// Per-item problems of a batch request.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<FieldProblem>,
}

/// One invalid field of one item of a request.
#[derive(Debug, Serialize, ToSchema, Clone)]
pub struct FieldProblem {
    /// Index of the item in the request's list.
    pub index: usize,
    pub field: String,
    pub message: String,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Vec<FieldProblem>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            details: Vec::new(),
        }
    }

    pub fn unauthorized() -> ApiError {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or unknown credentials: send 'Authorization: Bearer <token>' (the first admin token comes from SIMGUARD_ADMIN_TOKEN or is printed at first start) or log in with POST /api/v1/session",
        )
    }

    /// A session cookie that names no live session (expired, logged out).
    pub fn session_expired() -> ApiError {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the session has ended (expired or logged out): log in again with POST /api/v1/session",
        )
    }

    /// A cookie-authenticated write without the session's CSRF token, or
    /// from another origin.
    pub fn csrf(what: impl Into<String>) -> ApiError {
        Self::new(StatusCode::FORBIDDEN, "csrf", what)
    }

    pub fn conflict(what: impl Into<String>) -> ApiError {
        Self::new(StatusCode::CONFLICT, "conflict", what)
    }

    pub fn forbidden(what: impl Into<String>) -> ApiError {
        Self::new(StatusCode::FORBIDDEN, "forbidden", what)
    }

    pub fn not_found(what: impl Into<String>) -> ApiError {
        Self::new(StatusCode::NOT_FOUND, "not_found", what)
    }

    pub fn invalid(what: impl Into<String>) -> ApiError {
        Self::new(StatusCode::BAD_REQUEST, "invalid", what)
    }

    pub fn unavailable(what: impl Into<String>) -> ApiError {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", what)
    }

    pub fn internal(what: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %what, "API internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("internal error: {what}"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(ErrorBody {
                error: ErrorDetail {
                    code: self.code,
                    message: self.message,
                    details: self.details,
                },
            }),
        )
            .into_response()
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(r: axum::extract::rejection::QueryRejection) -> Self {
        ApiError::invalid(format!("bad query string: {}", r.body_text()))
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(r: axum::extract::rejection::JsonRejection) -> Self {
        ApiError::new(
            r.status(),
            "invalid",
            format!("bad JSON body: {}", r.body_text()),
        )
    }
}
