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
//! Order, under the sandbox's lock: check the source exists; stop the
//! sandbox while a writable snapshot of the source is staged; swap the roots
//! atomically; start it; delete the old root in the background. If the
//! source vanished meanwhile, the sandbox goes back to what it was on its
//! own disk; any other failure leaves it in `error` with whichever root it
//! had.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use warren_api::checkpoint::RestoreRequest;
use warren_api::server::Sandbox;

use super::disk::is_missing;
use super::{blocking, detached, CheckpointError, Checkpoints};
use crate::auth::Caller;
use crate::sandboxes::registry::{Entry, Phase};
use crate::sandboxes::{ensure_settled, view, Asked, SandboxError};
use crate::store::{SandboxRecord, StoredState};

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
            ensure_settled(&entry)?;
            let _op = entry.ops.lock().await;
            ensure_settled(&entry)?;
            let record = this
                .rewind_locked(&entry, Source::Checkpoint(checkpoint.id.clone()))
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
            Ok(view(&record, Some(&entry)))
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
            ensure_settled(&entry)?;
            let _op = entry.ops.lock().await;
            ensure_settled(&entry)?;
            let record = this.rewind_locked(&entry, Source::Template).await?;
            tracing::info!(sandbox = %entry.id, "sandbox wiped");
            Ok(view(&record, Some(&entry)))
        })
        .await
    }

    /// Swaps the sandbox's root for a snapshot of `source` and starts it;
    /// its record as it now is (nothing but its state and pid changed under
    /// the lock, so it is not read again). The caller holds the sandbox's
    /// lock.
    async fn rewind_locked(
        &self,
        entry: &Arc<Entry>,
        source: Source,
    ) -> Result<SandboxRecord, CheckpointError> {
        let begun = Instant::now();
        let sandboxes = &self.inner.sandboxes;
        let store = &self.inner.store;
        let node = &self.inner.node;
        let mut record = sandboxes.record(&entry.id).await?;
        let (source_path, missing) = match &source {
            Source::Checkpoint(ckpt) => (
                node.checkpoint_volume(ckpt)?,
                CheckpointError::NotFound(ckpt.clone()),
            ),
            Source::Template => (
                node.pool()
                    .template_path(&record.template)
                    .map_err(|_| CheckpointError::TemplateGone(record.template.clone()))?,
                CheckpointError::TemplateGone(record.template.clone()),
            ),
        };
        if !node.pool().driver().is_volume(&source_path) {
            return Err(missing);
        }
        let previous = entry.phase();
        match previous {
            Phase::Running | Phase::Hibernated => {}
            Phase::Stopped | Phase::Error => {
                if !store.reserve_start(&entry.id).await? {
                    return Err(sandboxes
                        .quota_error(entry.tenant.as_deref(), Asked::Start(&entry.id))
                        .await
                        .into());
                }
                // As the row says now.
                record.state = StoredState::Running;
            }
            phase => {
                return Err(SandboxError::Conflict {
                    id: entry.id.clone(),
                    phase: phase.as_str(),
                }
                .into())
            }
        }
        entry.set_phase(Phase::Starting);
        // The new root is staged while the sandbox stops: both take
        // milliseconds, neither needs the other.
        let (worker, id) = (node.clone(), entry.id.clone());
        let (stopped, staged) = blocking("stop and stage", move || {
            Ok(std::thread::scope(|scope| {
                let staging = scope.spawn(|| worker.stage_root(&id, &source_path));
                let stopped = worker.stop(&id);
                (stopped, staging.join().expect("staging a root panicked"))
            }))
        })
        .await?;
        let staged_at = begun.elapsed();
        let staged = match (stopped, staged) {
            (Ok(()), Ok(staged)) => staged,
            (Err(err), staged) => {
                if let Ok(staged) = staged {
                    self.discard_later(staged);
                }
                sandboxes.settle(entry, StoredState::Error).await;
                return Err(err.into());
            }
            (Ok(()), Err(err)) => {
                // The source went away meanwhile: the sandbox keeps its disk
                // and goes back to what it was.
                let err = if is_missing(&err) {
                    missing
                } else {
                    err.into()
                };
                self.resume(entry, &record, previous).await;
                return Err(err);
            }
        };
        let (worker, id) = (node.clone(), entry.id.clone());
        let swapped = blocking("swap roots", move || {
            let swapped = worker.swap_root(&id, &staged);
            if swapped.is_err() {
                worker.discard_staged(&staged);
            }
            swapped
        });
        let old = match swapped.await {
            Ok(old) => old,
            Err(err) => {
                sandboxes.settle(entry, StoredState::Error).await;
                return Err(err);
            }
        };
        let swapped_at = begun.elapsed();
        self.inner.node.read_root_ahead(&record.id);
        let booted = sandboxes.boot(&record).await;
        // The old root goes after the start, off the caller's clock.
        if let Some(old) = old {
            self.discard_later(old);
        }
        match booted {
            Ok(pid) => {
                entry.set_phase(Phase::Running);
                entry.touch();
                tracing::debug!(id = %entry.id, staged = ?staged_at, swapped = ?swapped_at, total = ?begun.elapsed(), "restore timings");
                record.state = StoredState::Running;
                record.pid = Some(pid);
                Ok(record)
            }
            Err(err) => {
                self.stop_failed(entry).await;
                sandboxes.settle(entry, StoredState::Error).await;
                Err(err.into())
            }
        }
    }

    /// Puts a sandbox whose restore could not go on back in its `previous`
    /// phase, on its own disk.
    async fn resume(&self, entry: &Arc<Entry>, record: &SandboxRecord, previous: Phase) {
        let sandboxes = &self.inner.sandboxes;
        let state = match previous {
            Phase::Running => match sandboxes.boot(record).await {
                Ok(_) => {
                    entry.set_phase(Phase::Running);
                    return;
                }
                Err(e) => {
                    tracing::error!(id = %entry.id, error = %e, "starting a sandbox again after a failed restore");
                    self.stop_failed(entry).await;
                    StoredState::Error
                }
            },
            Phase::Hibernated => StoredState::Hibernated,
            Phase::Stopped => StoredState::Stopped,
            _ => StoredState::Error,
        };
        sandboxes.settle(entry, state).await;
    }

    /// Stops what a failed start left (logged on failure).
    async fn stop_failed(&self, entry: &Entry) {
        let (node, id) = (self.inner.node.clone(), entry.id.clone());
        if let Err(e) = blocking("stop after a failed start", move || node.stop(&id)).await {
            tracing::error!(id = %entry.id, error = %e, "stopping a sandbox that failed to start");
        }
    }

    /// Deletes a staged or replaced root in the background.
    fn discard_later(&self, path: PathBuf) {
        let node = self.inner.node.clone();
        tokio::task::spawn_blocking(move || node.discard_staged(&path));
    }
}
