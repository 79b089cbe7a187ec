//! [`CheckpointError`]: every way a time-travel operation fails, each mapped
//! to one problem code at the HTTP edge. Server-side failures are logged with
//! their cause; the response only says that the operation failed on our side.

use warren_api::{ErrorCode, Problem};

use crate::node::NodeError;
use crate::sandboxes::SandboxError;
use crate::store::StoreError;

/// Failures of checkpoint operations.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// No such checkpoint, or one the caller may not see.
    #[error("no checkpoint with id {0}")]
    NotFound(String),
    /// No such patch on the checkpoint.
    #[error("checkpoint {checkpoint} has no patch {patch}")]
    PatchNotFound {
        /// The checkpoint.
        checkpoint: String,
        /// The patch id asked for.
        patch: String,
    },
    /// A field of the request is invalid.
    #[error("{field}: {reason}")]
    Invalid {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The sandbox's template is gone, so its disk cannot be reset to it.
    #[error("template {0:?} no longer exists: the sandbox cannot be wiped")]
    TemplateGone(String),
    /// An import body is not a checkpoint this server can take.
    #[error("import: {0}")]
    BadImport(String),
    /// A tenant sent a stream only the admin may import (`btrfs receive`
    /// parses it in the host kernel as root).
    #[error("import: {0}")]
    ImportForbidden(String),
    /// No file at that path on either side of a diff.
    #[error("no file at {0} on either side")]
    FileNotFound(String),
    /// A file diff of a directory.
    #[error("{0} is a directory: ask for the diff of the checkpoint to list its changes")]
    IsADirectory(String),
    /// The caller already runs as many diffs as it may at once.
    #[error("too many diffs in flight: wait for one to finish")]
    Busy,
    /// The sandbox part of the operation failed (not found, conflict, quota).
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// The runtime or storage failed.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Streaming a checkpoint in or out failed on our side.
    #[error("{op}: {source}")]
    Transfer {
        /// What was being done.
        op: &'static str,
        /// Cause.
        source: std::io::Error,
    },
    /// A background task of the operation panicked or was cancelled.
    #[error("task of {op} failed: {source}")]
    Task {
        /// The operation.
        op: &'static str,
        /// Cause.
        source: tokio::task::JoinError,
    },
}

impl CheckpointError {
    /// The stable problem code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            CheckpointError::NotFound(_) => ErrorCode::CheckpointNotFound,
            CheckpointError::PatchNotFound { .. } => ErrorCode::NotFound,
            CheckpointError::Invalid { .. } | CheckpointError::BadImport(_) => {
                ErrorCode::InvalidRequest
            }
            CheckpointError::ImportForbidden(_) => ErrorCode::Forbidden,
            CheckpointError::FileNotFound(_) => ErrorCode::FileNotFound,
            CheckpointError::IsADirectory(_) => ErrorCode::IsADirectory,
            CheckpointError::Busy => ErrorCode::TooManyRequests,
            CheckpointError::TemplateGone(_) => ErrorCode::TemplateNotFound,
            CheckpointError::Sandbox(e) => e.code(),
            CheckpointError::Node(e) if crate::node::is_out_of_space(e) => {
                ErrorCode::InsufficientStorage
            }
            CheckpointError::Store(e) if crate::node::is_out_of_space(e) => {
                ErrorCode::InsufficientStorage
            }
            CheckpointError::Node(_)
            | CheckpointError::Store(_)
            | CheckpointError::Transfer { .. }
            | CheckpointError::Task { .. } => ErrorCode::Internal,
        }
    }

    /// Shorthand for [`CheckpointError::Invalid`].
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        CheckpointError::Invalid {
            field,
            reason: reason.into(),
        }
    }
}

impl From<CheckpointError> for Problem {
    fn from(err: CheckpointError) -> Problem {
        match err {
            CheckpointError::Sandbox(e) => e.into(),
            err if err.code() == ErrorCode::InsufficientStorage => {
                tracing::error!(error = %err, "out of space");
                Problem::new(
                    ErrorCode::InsufficientStorage,
                    "the server's storage is full: the checkpoint operation failed (retry once space is freed)",
                )
            }
            err if err.code() == ErrorCode::Internal => {
                tracing::error!(error = %err, "checkpoint operation failed");
                Problem::new(
                    ErrorCode::Internal,
                    "the server failed to complete the checkpoint operation",
                )
            }
            err => Problem::new(err.code(), err.to_string()),
        }
    }
}

impl axum::response::IntoResponse for CheckpointError {
    fn into_response(self) -> axum::response::Response {
        Problem::from(self).into_response()
    }
}
