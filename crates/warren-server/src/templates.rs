//! Templates: the read-only root file systems sandboxes are snapshots of.
//! Listed and deleted through the API; looked up (and, for `base`, built on
//! first use) when a sandbox is created.

use std::sync::Arc;
use std::time::UNIX_EPOCH;

use warren_api::server::{Template, TemplateList};
use warren_api::{ErrorCode, Problem};

use crate::node::{Node, NodeError, TemplateConfig};
use crate::time::rfc3339;

/// Failures of template operations.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// No template with this name.
    #[error("no template named {0:?}")]
    NotFound(String),
    /// Storage failed.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// Reading the templates directory failed.
    #[error("listing templates: {0}")]
    List(std::io::Error),
    /// The blocking task doing the work panicked.
    #[error("task of {op} failed: {source}")]
    Task {
        /// The operation.
        op: &'static str,
        /// Cause.
        source: tokio::task::JoinError,
    },
}

impl TemplateError {
    /// The stable problem code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            TemplateError::NotFound(_) => ErrorCode::TemplateNotFound,
            TemplateError::Node(e) if e.is_template_not_found() => ErrorCode::TemplateNotFound,
            TemplateError::Node(_) | TemplateError::List(_) | TemplateError::Task { .. } => {
                ErrorCode::Internal
            }
        }
    }
}

impl From<TemplateError> for Problem {
    fn from(err: TemplateError) -> Problem {
        let code = err.code();
        if code == ErrorCode::Internal {
            tracing::error!(error = %err, "template operation failed");
            Problem::new(code, "the server failed to complete the template operation")
        } else {
            Problem::new(code, err.to_string())
        }
    }
}

impl axum::response::IntoResponse for TemplateError {
    fn into_response(self) -> axum::response::Response {
        Problem::from(self).into_response()
    }
}

/// Template operations; cheap to clone.
#[derive(Clone)]
pub struct Templates {
    node: Node,
    /// Serializes builds and deletes: two creates that both find `base`
    /// missing build it once.
    builds: Arc<tokio::sync::Mutex<()>>,
}

impl Templates {
    /// Templates in the node's pool.
    pub fn new(node: Node) -> Self {
        Templates {
            node,
            builds: Arc::default(),
        }
    }

    /// What sandboxes made from `name` inherit.
    pub async fn ensure(&self, name: &str) -> Result<TemplateConfig, TemplateError> {
        let node = self.node.clone();
        let name = name.to_string();
        blocking("look up template", move || {
            node.template_config(&name).map_err(|e| match e {
                NodeError::TemplateNotFound(n) => TemplateError::NotFound(n),
                other => TemplateError::Node(other),
            })
        })
        .await
    }

    /// Every template on the host, by name.
    pub async fn list(&self) -> Result<TemplateList, TemplateError> {
        let node = self.node.clone();
        blocking("list templates", move || {
            let dir = node.pool().templates_dir();
            let mut items = Vec::new();
            for entry in std::fs::read_dir(&dir).map_err(TemplateError::List)? {
                let entry = entry.map_err(TemplateError::List)?;
                let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                let Ok(config) = node.template_config(&name) else {
                    continue;
                };
                let created_at = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map(|d| rfc3339(d.as_millis() as i64));
                items.push(Template {
                    name,
                    workdir: config.workdir,
                    env: config.env,
                    created_at,
                });
            }
            items.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(TemplateList { items })
        })
        .await
    }

    /// Deletes a template. Sandboxes made from it keep their disks (they are
    /// snapshots, not references).
    pub async fn delete(&self, name: &str) -> Result<(), TemplateError> {
        let _build = self.builds.lock().await;
        let node = self.node.clone();
        let name = name.to_string();
        blocking("delete template", move || {
            node.template_config(&name).map_err(|e| match e {
                NodeError::TemplateNotFound(n) => TemplateError::NotFound(n),
                other => TemplateError::Node(other),
            })?;
            let path = node.pool().template_path(&name).map_err(NodeError::from)?;
            node.pool()
                .driver()
                .delete(&path)
                .map_err(NodeError::from)?;
            Ok(())
        })
        .await
    }
}

async fn blocking<T: Send + 'static>(
    op: &'static str,
    f: impl FnOnce() -> Result<T, TemplateError> + Send + 'static,
) -> Result<T, TemplateError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|source| TemplateError::Task { op, source })?
}
