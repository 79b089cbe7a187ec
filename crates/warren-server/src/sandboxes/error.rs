//! [`SandboxError`]: every way a sandbox operation fails, each mapped to one
//! problem code at the HTTP edge. Server-side failures are logged with their
//! cause; the response only says that the operation failed on our side.

use warren_api::{ErrorCode, Problem};

use crate::node::NodeError;
use crate::store::StoreError;
use crate::templates::TemplateError;

/// Failures of sandbox operations.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// No such sandbox, or one the caller may not see.
    #[error("no sandbox with id {0}")]
    NotFound(String),
    /// A field of the request is invalid.
    #[error("{field}: {reason}")]
    Invalid {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The requested resources are more than the host has.
    #[error("{0}")]
    OverHostLimits(String),
    /// The template is missing or could not be prepared.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// No checkpoint with this id.
    #[error("no checkpoint with id {0}")]
    CheckpointNotFound(String),
    /// A patch of the checkpoint the sandbox was made from failed; the
    /// message has its exit code and output.
    #[error("{0}")]
    PatchFailed(String),
    /// An agent call to a hibernated sandbox without `auto_wake`.
    #[error("sandbox {0} is hibernated: wake it with POST /v1/sandboxes/{0}/wake first (sandboxes created with auto_wake: true wake on their first call)")]
    Hibernated(String),
    /// The operation would take the tenant over one of its quotas.
    #[error("tenant {tenant} is at its quota: {quota}")]
    QuotaExceeded {
        /// The tenant.
        tenant: String,
        /// Which quota, and the tenant's use of it.
        quota: String,
    },
    /// The sandbox or its tenant has its maximum of requests in flight.
    #[error("{0}")]
    TooManyRequests(String),
    /// The sandbox is in a transition or state that excludes the operation.
    #[error("sandbox {id} is {phase}")]
    Conflict {
        /// The sandbox.
        id: String,
        /// Its phase, as words ("being created", "stopped").
        phase: &'static str,
    },
    /// The runtime, storage or templates failed.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The agent of a pooled sandbox refused what makes it the caller's.
    #[error("handing over a pooled sandbox: {0}")]
    HandOver(String),
    /// A background task of the operation panicked or was cancelled.
    #[error("task of {op} failed: {source}")]
    Task {
        /// The operation.
        op: &'static str,
        /// Cause.
        source: tokio::task::JoinError,
    },
}

impl SandboxError {
    /// The stable problem code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            SandboxError::NotFound(_) => ErrorCode::SandboxNotFound,
            SandboxError::Invalid { .. } | SandboxError::OverHostLimits(_) => {
                ErrorCode::InvalidRequest
            }
            SandboxError::Node(e) if e.is_bad_resources() => ErrorCode::InvalidRequest,
            SandboxError::Template(e) => e.code(),
            SandboxError::Node(e) if e.is_template_not_found() => ErrorCode::TemplateNotFound,
            SandboxError::CheckpointNotFound(_) => ErrorCode::CheckpointNotFound,
            SandboxError::QuotaExceeded { .. } => ErrorCode::QuotaExceeded,
            SandboxError::TooManyRequests(_) => ErrorCode::TooManyRequests,
            SandboxError::Conflict { .. } | SandboxError::Hibernated(_) => ErrorCode::Conflict,
            SandboxError::PatchFailed(_) => ErrorCode::PatchFailed,
            SandboxError::Node(e) if crate::node::is_out_of_space(e) => {
                ErrorCode::InsufficientStorage
            }
            SandboxError::Store(e) if crate::node::is_out_of_space(e) => {
                ErrorCode::InsufficientStorage
            }
            SandboxError::Node(_)
            | SandboxError::Store(_)
            | SandboxError::Task { .. }
            | SandboxError::HandOver(_) => ErrorCode::Internal,
        }
    }

    /// Shorthand for [`SandboxError::Invalid`].
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        SandboxError::Invalid {
            field,
            reason: reason.into(),
        }
    }
}

impl From<SandboxError> for Problem {
    fn from(err: SandboxError) -> Problem {
        let code = err.code();
        if code == ErrorCode::InsufficientStorage {
            tracing::error!(error = %err, "out of space");
            Problem::new(
                code,
                "the server's storage is full: the operation failed (retry once space is freed)",
            )
        } else if code == ErrorCode::Internal {
            tracing::error!(error = %err, "sandbox operation failed");
            Problem::new(code, "the server failed to complete the sandbox operation")
        } else {
            Problem::new(code, err.to_string())
        }
    }
}

impl axum::response::IntoResponse for SandboxError {
    fn into_response(self) -> axum::response::Response {
        Problem::from(self).into_response()
    }
}
