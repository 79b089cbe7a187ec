//! Errors of the E2B routes: Warren's domain errors, rendered in E2B's body
//! (`{"code": <status>, "message": "..."}`) with the same status, so the
//! SDKs raise their usual exceptions (401 authentication, 404 not found,
//! 400 invalid argument, 429 rate limit, ...).

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use warren_api::{ErrorCode, Problem};

use super::wire::ErrorBody;

/// A failure of an E2B route: the problem Warren would answer, in E2B's body.
#[derive(Debug)]
pub struct E2bError(pub Problem);

impl<E: Into<Problem>> From<E> for E2bError {
    fn from(err: E) -> Self {
        E2bError(err.into())
    }
}

impl E2bError {
    /// A 400 (the SDKs' invalid argument).
    pub fn invalid(message: impl Into<String>) -> Self {
        E2bError(Problem::invalid(message))
    }

    /// A 404 naming the sandbox as the SDK knows it.
    pub fn sandbox_not_found(id: &str) -> Self {
        E2bError(Problem::new(
            ErrorCode::SandboxNotFound,
            format!("sandbox {id} not found"),
        ))
    }

    /// A database failure (a 500 whose cause is logged, not shown).
    pub fn store(err: crate::store::StoreError) -> Self {
        crate::sandboxes::SandboxError::from(err).into()
    }

    /// The status and E2B body of this error.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            code: self.0.status,
            message: self.0.detail.clone(),
        }
    }
}

impl IntoResponse for E2bError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(self.body())).into_response()
    }
}
