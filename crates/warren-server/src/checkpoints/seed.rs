//! What a sandbox made `from_checkpoint` (or by a fork) starts with: the
//! checkpoint's disk, template name, working directory and environment, and
//! its patches, which run before the sandbox is handed out.

use warren_api::ids::{self, IdKind};

use crate::auth::Caller;
use crate::sandboxes::SandboxError;
use crate::store::{CheckpointRecord, PatchRecord, Store};
use crate::templates::TemplateConfig;

/// A checkpoint to make a sandbox from, with its patches in run order.
#[derive(Debug, Clone)]
pub struct Seed {
    /// The checkpoint.
    pub checkpoint: CheckpointRecord,
    /// Its patches.
    pub patches: Vec<PatchRecord>,
}

impl Seed {
    /// The working directory and environment the sandbox starts with. A
    /// `template` asked for alongside the checkpoint must be its template.
    pub fn config(&self, template: &str) -> Result<TemplateConfig, SandboxError> {
        if !template.is_empty() && template != self.checkpoint.template {
            return Err(SandboxError::invalid(
                "template",
                format!(
                    "checkpoint {} is of template {:?}: leave template out with from_checkpoint",
                    self.checkpoint.id, self.checkpoint.template
                ),
            ));
        }
        Ok(TemplateConfig {
            workdir: self.checkpoint.workdir.clone(),
            env: self.checkpoint.envs.clone(),
            // Made from a checkpoint, never from the warm pool.
            build_id: String::new(),
            has_start: false,
        })
    }
}

/// The checkpoint `id` if `caller` may see it; otherwise (missing, or
/// another tenant's) [`SandboxError::CheckpointNotFound`].
pub async fn visible(
    store: &Store,
    caller: &Caller,
    id: &str,
) -> Result<CheckpointRecord, SandboxError> {
    let not_found = || SandboxError::CheckpointNotFound(id.to_string());
    if !ids::is_valid(IdKind::Checkpoint, id) {
        return Err(not_found());
    }
    let record = store.checkpoint(id).await?.ok_or_else(not_found)?;
    if !caller.can_see(record.tenant_id.as_deref()) {
        return Err(not_found());
    }
    Ok(record)
}

/// The seed of a sandbox made from checkpoint `id` by `caller`.
pub async fn resolve(store: &Store, caller: &Caller, id: &str) -> Result<Seed, SandboxError> {
    let checkpoint = visible(store, caller, id).await?;
    let patches = store.patches(&checkpoint.id).await?;
    Ok(Seed {
        checkpoint,
        patches,
    })
}
