//! Restore in place and wipe: the sandbox's disk becomes a writable snapshot
//! of a checkpoint (restore) or of its template (wipe), and it runs again.
//!
//! The sandbox keeps its id, env, metadata, labels, resources, network
//! policy, previews and everything else the database holds about it; API
//! keys are not the sandbox's, so they are untouched too. Its processes are
//! ended: a restore is a reboot onto the older disk (memory state would
//! need a micro-VM runtime). A stopped, failed or hibernated sandbox comes
//! back running (a stopped one counts against its tenant's quota again).
//!
//! Order, under the sandbox's lock: stage the snapshot of the source (the
//! sandbox still runs, so a missing checkpoint changes nothing), stop the
//! sandbox, swap the roots atomically, start it. A failure after the stop
//! leaves the sandbox in `error` with whichever root it had.

use std::path::PathBuf;
use std::sync::Arc;

use warren_api::checkpoint::RestoreRequest;
use warren_api::server::Sandbox;

use super::disk::is_missing;
use super::{blocking, detached, settled, CheckpointError, Checkpoints};
use crate::auth::Caller;
use crate::node::NodeError;
use crate::sandboxes::registry::{Entry, Phase};
use crate::sandboxes::SandboxError;
use crate::store::StoredState;

/// Where the new disk comes from.
enum Source {
    /// A checkpoint (its id).
    Checkpoint(String),
    /// The sandbox's template.
    Template,
}

impl Checkpoints {
    /// Makes sandbox `id`'s disk a writable snapshot of a checkpoint, in
    /// place. With `discard_later`, the sandbox's checkpoints taken after
    /// that one are deleted; otherwise they are kept (history branches).
    pub async fn restore(
        &self,
        caller: &Caller,
        id: &str,
        req: RestoreRequest,
    ) -> Result<Sandbox, CheckpointError> {
        let entry = self.inner.sandboxes.entry(caller, id)?;
        entry.touch();
        let checkpoint = self.visible(caller, &req.checkpoint_id).await?;
        let discard_later = req.discard_later.unwrap_or(false);
        let this = self.clone();
        detached("restore", async move {
            settled(&entry)?;
            let _op = entry.ops.lock().await;
            settled(&entry)?;
            this.rewind_locked(&entry, Source::Checkpoint(checkpoint.id.clone()))
                .await?;
            tracing::info!(sandbox = %entry.id, checkpoint = %checkpoint.id, "sandbox restored");
            if discard_later {
                let later = this
                    .inner
                    .store
                    .checkpoints_after(&entry.id, checkpoint.seq)
                    .await?;
                for ckpt in later {
                    this.remove(&ckpt).await?;
                }
            }
            Ok(this.inner.sandboxes.current(&entry).await?)
        })
        .await
    }

    /// Resets sandbox `id`'s disk to its template (no checkpoint is taken;
    /// its checkpoints are kept).
    pub async fn wipe(&self, caller: &Caller, id: &str) -> Result<Sandbox, CheckpointError> {
        let entry = self.inner.sandboxes.entry(caller, id)?;
        entry.touch();
        let this = self.clone();
        detached("wipe", async move {
            settled(&entry)?;
            let _op = entry.ops.lock().await;
            settled(&entry)?;
            this.rewind_locked(&entry, Source::Template).await?;
            tracing::info!(sandbox = %entry.id, "sandbox wiped");
            Ok(this.inner.sandboxes.current(&entry).await?)
        })
        .await
    }

    /// Swaps the sandbox's root for a snapshot of `source` and starts it.
    /// The caller holds the sandbox's lock.
    async fn rewind_locked(
        &self,
        entry: &Arc<Entry>,
        source: Source,
    ) -> Result<(), CheckpointError> {
        let sandboxes = &self.inner.sandboxes;
        let store = &self.inner.store;
        let record = store
            .sandbox(&entry.id)
            .await?
            .ok_or_else(|| SandboxError::NotFound(entry.id.clone()))?;
        let source_path: PathBuf = match &source {
            Source::Checkpoint(ckpt) => self.inner.node.checkpoint_volume(ckpt)?,
            Source::Template => self
                .inner
                .node
                .pool()
                .template_path(&record.template)
                .map_err(|_| CheckpointError::TemplateGone(record.template.clone()))?,
        };
        let node = self.inner.node.clone();
        let id = entry.id.clone();
        let staged = blocking("stage a root", move || node.stage_root(&id, &source_path))
            .await
            .map_err(|e| match (e, &source) {
                (CheckpointError::Node(e), Source::Checkpoint(ckpt)) if is_missing(&e) => {
                    CheckpointError::NotFound(ckpt.clone())
                }
                (CheckpointError::Node(e), Source::Template) if is_missing(&e) => {
                    CheckpointError::TemplateGone(record.template.clone())
                }
                (e, _) => e,
            })?;
        let previous = entry.phase();
        let discard = |this: &Self, staged: PathBuf| {
            let node = this.inner.node.clone();
            async move {
                let _ = tokio::task::spawn_blocking(move || node.discard_staged(&staged)).await;
            }
        };
        match previous {
            Phase::Running | Phase::Hibernated => {}
            Phase::Stopped | Phase::Error => {
                if !store.reserve_start(&entry.id).await? {
                    discard(self, staged).await;
                    return Err(sandboxes.quota_error(entry.tenant.as_deref()).await.into());
                }
            }
            phase => {
                discard(self, staged).await;
                return Err(SandboxError::Conflict {
                    id: entry.id.clone(),
                    phase: phase.as_str(),
                }
                .into());
            }
        }
        entry.set_phase(Phase::Starting);
        let node = self.inner.node.clone();
        let id = entry.id.clone();
        let swapped = blocking("swap roots", move || -> Result<(), NodeError> {
            node.stop(&id)?;
            let swapped = node.swap_root(&id, &staged);
            if swapped.is_err() {
                node.discard_staged(&staged);
            }
            swapped
        })
        .await;
        if let Err(err) = swapped {
            sandboxes.settle(entry, StoredState::Error).await;
            return Err(err);
        }
        match sandboxes.boot(&record).await {
            Ok(_) => {
                entry.set_phase(Phase::Running);
                entry.touch();
                Ok(())
            }
            Err(err) => {
                let node = self.inner.node.clone();
                let id = entry.id.clone();
                if let Err(e) = blocking("stop after a failed start", move || node.stop(&id)).await
                {
                    tracing::error!(id = %entry.id, error = %e, "stopping a sandbox that failed to start");
                }
                sandboxes.settle(entry, StoredState::Error).await;
                Err(err.into())
            }
        }
    }
}
