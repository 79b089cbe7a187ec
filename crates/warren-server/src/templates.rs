//! Templates: the read-only root file systems sandboxes are snapshots of
//! ([`warren_runtime::template`] holds and builds them). Listed, built (from
//! a spec.toml, or a Dockerfile and its build context), imported and
//! deleted through the API; looked up when a sandbox is created (and its
//! start command at each boot), and `base` is built (debootstrap, minutes)
//! on first use, with its progress in the log.

use std::sync::Arc;

use warren_api::server::{Template, TemplateLayer, TemplateList, TemplateStart};
use warren_api::{ErrorCode, Problem};
use warren_runtime::storage::StorageError;
use warren_runtime::template::{self, BaseOptions, StartCommand, TemplateMeta, BASE_TEMPLATE};

use std::collections::BTreeMap;

use crate::node::Node;
use crate::time::rfc3339;

/// Failures of template operations.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// No template with this name.
    #[error("no template named {0:?}")]
    NotFound(String),
    /// Building the `base` template failed.
    #[error("building the base template: {0}")]
    BuildBase(template::TemplateError),
    /// Reading, listing or deleting templates failed.
    #[error("templates: {0}")]
    Pool(template::TemplateError),
    /// The spec or image is not acceptable, or a build step failed (the
    /// caller's doing; the message says which step and why).
    #[error("{0}")]
    Rejected(template::TemplateError),
    /// A spec sent over the API names host files (`files`), which the
    /// server will not read on a caller's behalf.
    #[error("`files` in a spec sent over the API is not supported: copy files in with a `run` step, or build on the server's host")]
    HostFiles,
    /// Receiving an uploaded image or build context failed.
    #[error("receiving the upload: {0}")]
    Upload(std::io::Error),
    /// `build_args` is not a JSON object of strings.
    #[error("build_args: {0}")]
    BuildArgs(String),
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
            TemplateError::Rejected(_)
            | TemplateError::HostFiles
            | TemplateError::Upload(_)
            | TemplateError::BuildArgs(_) => ErrorCode::InvalidRequest,
            TemplateError::BuildBase(_) | TemplateError::Pool(_) | TemplateError::Task { .. } => {
                ErrorCode::Internal
            }
        }
    }

    /// Sorts a template-module error: a missing or impossible name is
    /// [`TemplateError::NotFound`], anything else a pool failure.
    fn from_pool(name: &str, err: template::TemplateError) -> Self {
        match err {
            template::TemplateError::NotFound(_)
            | template::TemplateError::Storage(StorageError::InvalidName(_)) => {
                TemplateError::NotFound(name.to_string())
            }
            e @ (template::TemplateError::InvalidSpec { .. }
            | template::TemplateError::Dockerfile { .. }
            | template::TemplateError::InvalidContext(_)
            | template::TemplateError::StepFailed { .. }
            | template::TemplateError::InvalidImage { .. }
            | template::TemplateError::PathEscape { .. }) => TemplateError::Rejected(e),
            other => TemplateError::Pool(other),
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

/// What a sandbox takes from its template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateConfig {
    /// Working directory of the agent.
    pub workdir: String,
    /// Default environment (the sandbox's `envs` go over it).
    pub env: BTreeMap<String, String>,
    /// Identity of the template's contents: a rebuilt template has a new
    /// one, so the warm pool can tell its sandboxes of the old one.
    pub build_id: String,
    /// Whether its sandboxes run a start command at boot.
    pub has_start: bool,
}

fn config(meta: TemplateMeta) -> TemplateConfig {
    TemplateConfig {
        workdir: meta.workdir,
        env: meta.env,
        build_id: meta.build_id,
        has_start: meta.start.is_some(),
    }
}

/// Template operations; cheap to clone.
#[derive(Clone)]
pub struct Templates {
    node: Node,
    base: Arc<BaseOptions>,
}

impl Templates {
    /// Templates in the node's pool; `base` is built with `base` options.
    pub fn new(node: Node, base: BaseOptions) -> Self {
        Templates {
            node,
            base: Arc::new(base),
        }
    }

    /// What sandboxes made from `name` inherit. `base` is built first if
    /// the pool has none or an outdated one (concurrent callers wait for
    /// one build).
    pub async fn ensure(&self, name: &str) -> Result<TemplateConfig, TemplateError> {
        let node = self.node.clone();
        let options = self.base.clone();
        let name = name.to_string();
        blocking("look up template", move || {
            let pool = node.pool();
            let found = template::get(pool, &name);
            let rebuild = name == BASE_TEMPLATE
                && match &found {
                    Ok(meta) => template::base_is_outdated(meta),
                    Err(e) => matches!(e, template::TemplateError::NotFound(_)),
                };
            match found {
                _ if rebuild => {
                    tracing::info!(
                        "template base is missing or from an older Warren: building it \
                         (minutes, once)"
                    );
                    let meta = template::ensure_base(pool, &options, &mut |line| {
                        tracing::info!(template = BASE_TEMPLATE, "{line}");
                    })
                    .map_err(TemplateError::BuildBase)?;
                    Ok(config(meta))
                }
                Ok(meta) => Ok(config(meta)),
                Err(e) => Err(TemplateError::from_pool(&name, e)),
            }
        })
        .await
    }

    /// What sandboxes made from `name` inherit, if the template is built
    /// and current (a `base` of an older Warren is not); builds nothing.
    pub async fn current(&self, name: &str) -> Result<Option<TemplateConfig>, TemplateError> {
        let node = self.node.clone();
        let name = name.to_string();
        blocking("look up template", move || {
            match template::get(node.pool(), &name) {
                Ok(meta) if name == BASE_TEMPLATE && template::base_is_outdated(&meta) => Ok(None),
                Ok(meta) => Ok(Some(config(meta))),
                Err(template::TemplateError::NotFound(_)) => Ok(None),
                Err(e) => Err(TemplateError::from_pool(&name, e)),
            }
        })
        .await
    }

    /// The start command of template `name`, its user and ready port; `None`
    /// when the template has none or no longer exists (sandboxes outlive
    /// their templates; theirs is looked up at each boot).
    pub async fn start_of(&self, name: &str) -> Result<Option<BootCommand>, TemplateError> {
        let node = self.node.clone();
        let name = name.to_string();
        blocking("look up a start command", move || {
            match template::get(node.pool(), &name) {
                Ok(meta) => Ok(meta.start.map(|command| BootCommand {
                    command,
                    user: meta.user,
                    ready_port: meta.ready_port,
                    workdir: meta.workdir,
                })),
                Err(
                    template::TemplateError::NotFound(_)
                    | template::TemplateError::Storage(StorageError::InvalidName(_)),
                ) => Ok(None),
                Err(e) => Err(TemplateError::Pool(e)),
            }
        })
        .await
    }

    /// Every template on the host, by name.
    pub async fn list(&self) -> Result<TemplateList, TemplateError> {
        let node = self.node.clone();
        blocking("list templates", move || {
            let metas = template::list(node.pool()).map_err(TemplateError::Pool)?;
            Ok(TemplateList {
                items: metas.into_iter().map(describe).collect(),
            })
        })
        .await
    }

    /// Builds (or rebuilds) template `name` from a spec.toml's text; each
    /// step is a cached layer, so a rebuild redoes only what changed. The
    /// build's output goes to the log, and each line to `log` too.
    pub async fn build(
        &self,
        name: &str,
        spec: String,
        mut log: impl FnMut(&str) + Send + 'static,
    ) -> Result<Template, TemplateError> {
        let node = self.node.clone();
        let name = name.to_string();
        blocking("build template", move || {
            let mut spec =
                template::TemplateSpec::parse(&spec, std::path::Path::new("/nonexistent"))
                    .map_err(|e| TemplateError::from_pool(&name, e))?;
            spec.extra_ca = node.extra_ca().map(str::to_string);
            if !spec.files.is_empty() {
                return Err(TemplateError::HostFiles);
            }
            let report = template::build(node.pool(), &name, &spec, &mut |line| {
                tracing::info!(template = %name, "{line}");
                log(line);
            })
            .map_err(|e| TemplateError::from_pool(&name, e))?;
            Ok(described_build(report))
        })
        .await
    }

    /// Builds (or rebuilds) template `name` from a Dockerfile in a build
    /// context already received into `context` (a tar archive, removed
    /// afterwards); each instruction that changes files is a cached layer.
    /// Each line of the build's output goes to the log and to `log`.
    pub async fn build_dockerfile(
        &self,
        name: &str,
        context: tempfile::TempPath,
        dockerfile: Option<String>,
        build_args: BTreeMap<String, String>,
        mut log: impl FnMut(&str) + Send + 'static,
    ) -> Result<Template, TemplateError> {
        let node = self.node.clone();
        let name = name.to_string();
        blocking("build template", move || {
            let req = template::DockerBuild {
                context: context.to_path_buf(),
                dockerfile: dockerfile.unwrap_or_default(),
                build_args,
                extra_ca: node.extra_ca().map(str::to_string),
            };
            let report = template::build_dockerfile(node.pool(), &name, &req, &mut |line| {
                tracing::info!(template = %name, "{line}");
                log(line);
            })
            .map_err(|e| TemplateError::from_pool(&name, e))?;
            drop(context);
            Ok(described_build(report))
        })
        .await
    }

    /// Imports template `name` from an OCI image layout or `docker save`
    /// tarball already received into `image` (removed afterwards).
    pub async fn import(
        &self,
        name: &str,
        image: tempfile::TempPath,
    ) -> Result<Template, TemplateError> {
        let node = self.node.clone();
        let name = name.to_string();
        blocking("import template", move || {
            let meta = template::import(node.pool(), &name, &image)
                .map_err(|e| TemplateError::from_pool(&name, e))?;
            Ok(describe(meta))
        })
        .await
    }

    /// Where uploads wait before they are imported: inside the state dir,
    /// never in a world-writable /tmp.
    pub fn upload_dir(&self) -> std::path::PathBuf {
        self.node.run_root().to_path_buf()
    }

    /// Deletes a template. Sandboxes made from it keep their disks (they are
    /// snapshots, not references).
    pub async fn delete(&self, name: &str) -> Result<(), TemplateError> {
        let node = self.node.clone();
        let name = name.to_string();
        blocking("delete template", move || {
            template::delete(node.pool(), &name).map_err(|e| TemplateError::from_pool(&name, e))?;
            crate::spares::remove(node.pool(), &name);
            Ok(())
        })
        .await
    }
}

/// What a template's sandboxes start on every boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootCommand {
    /// The command.
    pub command: StartCommand,
    /// Its user (`name[:group]`), root when absent.
    pub user: Option<String>,
    /// The port it is ready on, which the boot waits for.
    pub ready_port: Option<u16>,
    /// The template's working directory, where it starts (also as a user,
    /// whose commands otherwise start in its home).
    pub workdir: String,
}

/// The API's view of a template.
fn describe(meta: TemplateMeta) -> Template {
    let start = meta.start.map(|start| {
        let (cmd, argv) = match start {
            StartCommand::Shell(cmd) => (Some(cmd), None),
            StartCommand::Exec(argv) => (None, Some(argv)),
        };
        TemplateStart {
            cmd,
            argv,
            user: meta.user.clone(),
            ready_port: meta.ready_port,
        }
    });
    Template {
        created_at: rfc3339(meta.created_at as i64 * 1000),
        name: meta.name,
        workdir: meta.workdir,
        env: meta.env,
        start,
        layers: Vec::new(),
    }
}

/// The API's view of a template just built, with what became of each layer.
fn described_build(report: template::BuildReport) -> Template {
    Template {
        layers: report
            .layers
            .into_iter()
            .map(|l| TemplateLayer {
                step: l.step,
                cached: l.cached,
            })
            .collect(),
        ..describe(report.template)
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
