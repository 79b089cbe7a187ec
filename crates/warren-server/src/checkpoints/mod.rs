//! Time travel: checkpoints of sandbox disks, and what is made of them.
//!
//! - this module: take, list, get and delete checkpoints; retention of
//!   automatic ones; the start-up sweep.
//! - [`restore`]: restore in place and wipe (the sandbox keeps its id, env,
//!   metadata and tokens; its processes end, its agent starts again).
//! - [`fork`]: one checkpoint, `count` new sandboxes (one of them started
//!   while its checkpoint is taken).
//! - [`seed`]: what creating a sandbox `from_checkpoint` needs (the
//!   checkpoint and its patches); [`patches`] holds and runs the patches.
//! - [`auto`]: the checkpoint after every `processes/run` of an
//!   `auto_checkpoint` sandbox, taken in the proxy.
//! - [`transfer`]: export to a stream and import on another server.
//! - [`diff`]: what changed since a checkpoint (paths, one file's text).
//! - [`disk`]: the node operations (freeze, durable snapshot, swap).
//!
//! Rules: a checkpoint is taken under its sandbox's operation lock (never
//! during a create, stop or restore of it) and recorded in the database
//! before it is acknowledged. It belongs to its sandbox's tenant and is
//! invisible (404 `checkpoint_not_found`) to every other tenant. It outlives
//! its sandbox, except automatic ones, which go with it. Deleting a
//! checkpoint never affects sandboxes made from it (their disks are
//! snapshots, not references).

pub mod auto;
pub mod diff;
pub mod disk;
mod error;
pub mod fork;
mod imported;
pub mod patches;
pub mod restore;
pub mod seed;
pub mod transfer;

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;

use warren_api::checkpoint::{Checkpoint, CheckpointList, CreateCheckpointRequest};
use warren_api::ids::{self, IdKind};

pub use error::CheckpointError;

use crate::auth::Caller;
use crate::node::{Node, NodeError};
use crate::paging::Page;
use crate::sandboxes::registry::{Entry, Phase};
use crate::sandboxes::{ensure_settled, SandboxError, Sandboxes};
use crate::store::{CheckpointFilter, CheckpointRecord, SandboxRecord, Store, StoreError};
use crate::time::{now_ms, rfc3339};

/// Longest checkpoint or patch name.
pub const MAX_NAME_LEN: usize = 128;

/// What an automatic checkpoint records about the command it follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AfterCommand {
    /// The command (`cmd`, or `argv` joined with spaces).
    pub command: String,
    /// Its exit code (`None` when a signal ended it).
    pub exit_code: Option<i32>,
}

struct Inner {
    sandboxes: Sandboxes,
    store: Store,
    node: Node,
    diffs: diff::DiffSlots,
}

/// The checkpoint service; cheap to clone.
#[derive(Clone)]
pub struct Checkpoints {
    inner: Arc<Inner>,
}

impl Checkpoints {
    /// The service over the sandboxes' store and node.
    pub fn new(sandboxes: Sandboxes) -> Self {
        Checkpoints {
            inner: Arc::new(Inner {
                store: sandboxes.store().clone(),
                node: sandboxes.node().clone(),
                sandboxes,
                diffs: diff::DiffSlots::default(),
            }),
        }
    }

    /// Takes a checkpoint of sandbox `id`.
    pub async fn create(
        &self,
        caller: &Caller,
        id: &str,
        req: CreateCheckpointRequest,
    ) -> Result<Checkpoint, CheckpointError> {
        let name = checked_name(req.name, "manual")?;
        let entry = self.inner.sandboxes.entry(caller, id)?;
        entry.touch();
        let record = self.take(entry, name, None).await?;
        Ok(view(&record))
    }

    /// Takes a checkpoint named `name` of the sandbox of `entry` (after a
    /// command, for `auto`); its own task, under the sandbox's lock.
    pub(crate) async fn take(
        &self,
        entry: Arc<Entry>,
        name: String,
        auto: Option<AfterCommand>,
    ) -> Result<CheckpointRecord, CheckpointError> {
        let this = self.clone();
        detached("checkpoint", async move {
            ensure_settled(&entry)?;
            let _op = entry.ops.lock().await;
            ensure_settled(&entry)?;
            this.take_locked(&entry, name, auto).await
        })
        .await
    }

    /// [`Checkpoints::take`] for a caller holding the sandbox's lock.
    pub(crate) async fn take_locked(
        &self,
        entry: &Entry,
        name: String,
        auto: Option<AfterCommand>,
    ) -> Result<CheckpointRecord, CheckpointError> {
        let sandbox = self.inner.sandboxes.record(&entry.id).await?;
        let running = entry.phase() == Phase::Running;
        let id = ids::new_id(IdKind::Checkpoint);
        let node = self.inner.node.clone();
        let (sbx, ckpt) = (entry.id.clone(), id.clone());
        blocking("checkpoint", move || {
            node.snapshot_sandbox(&sbx, &ckpt, running)
        })
        .await?;
        let record = new_record(&sandbox, id, name, auto.as_ref());
        if let Err(e) = self.inner.store.insert_checkpoint(&record).await {
            self.remove_volume(&record.id).await;
            return Err(e.into());
        }
        tracing::info!(sandbox = %entry.id, checkpoint = %record.id, auto = record.auto, "checkpoint taken");
        if record.auto {
            let keep = sandbox.auto_checkpoint_keep;
            for old in self
                .inner
                .store
                .auto_checkpoints_beyond(&entry.id, keep)
                .await?
            {
                self.remove(&old).await?;
            }
        }
        Ok(record)
    }

    /// A checkpoint the caller may see, or [`CheckpointError::NotFound`].
    pub(crate) async fn visible(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<CheckpointRecord, CheckpointError> {
        seed::visible(&self.inner.store, caller, id)
            .await
            .map_err(|e| match e {
                SandboxError::CheckpointNotFound(id) => CheckpointError::NotFound(id),
                other => other.into(),
            })
    }

    /// One checkpoint.
    pub async fn get(&self, caller: &Caller, id: &str) -> Result<Checkpoint, CheckpointError> {
        Ok(view(&self.visible(caller, id).await?))
    }

    /// A page of the checkpoints of sandbox `id`, in creation order.
    pub async fn list_for_sandbox(
        &self,
        caller: &Caller,
        id: &str,
        page: Page,
    ) -> Result<CheckpointList, CheckpointError> {
        let entry = self.inner.sandboxes.entry(caller, id)?;
        let filter = CheckpointFilter {
            sandbox_id: Some(entry.id.clone()),
            tenant: None,
            after_seq: page.after_seq,
            limit: page.fetch(),
        };
        self.page(&filter, page).await
    }

    /// A page of every checkpoint the caller may see (imported ones and
    /// those of deleted sandboxes included), optionally of one sandbox id.
    pub async fn list(
        &self,
        caller: &Caller,
        sandbox_id: Option<String>,
        page: Page,
    ) -> Result<CheckpointList, CheckpointError> {
        let filter = CheckpointFilter {
            sandbox_id,
            tenant: caller.tenant().map(|t| Some(t.to_string())),
            after_seq: page.after_seq,
            limit: page.fetch(),
        };
        self.page(&filter, page).await
    }

    async fn page(
        &self,
        filter: &CheckpointFilter,
        page: Page,
    ) -> Result<CheckpointList, CheckpointError> {
        let rows = self.inner.store.list_checkpoints(filter).await?;
        let (rows, next_cursor) = page.finish(rows, |r| r.seq);
        Ok(CheckpointList {
            items: rows.iter().map(view).collect(),
            next_cursor,
        })
    }

    /// Deletes a checkpoint and its patches. Sandboxes made from it keep
    /// working.
    pub async fn delete(&self, caller: &Caller, id: &str) -> Result<(), CheckpointError> {
        let record = self.visible(caller, id).await?;
        let this = self.clone();
        detached(
            "delete checkpoint",
            async move { this.remove(&record.id).await },
        )
        .await
    }

    /// Removes a checkpoint (see [`remove_checkpoint`]).
    pub(crate) async fn remove(&self, id: &str) -> Result<(), CheckpointError> {
        Ok(remove_checkpoint(&self.inner.store, &self.inner.node, id).await?)
    }

    async fn remove_volume(&self, id: &str) {
        remove_volume(&self.inner.node, id).await
    }

    /// Start-up: removes leftovers of interrupted operations and checkpoint
    /// volumes without a row.
    pub async fn sweep(&self) -> Result<usize, CheckpointError> {
        let known: HashSet<String> = self
            .inner
            .store
            .all_checkpoint_ids()
            .await?
            .into_iter()
            .collect();
        let node = self.inner.node.clone();
        let removed = tokio::task::spawn_blocking(move || node.sweep_time_travel(&known))
            .await
            .map_err(|source| CheckpointError::Task {
                op: "sweep",
                source,
            })?;
        if removed > 0 {
            tracing::info!(
                removed,
                "removed leftovers of interrupted checkpoint operations"
            );
        }
        Ok(removed)
    }
}

/// The row of checkpoint `id` of `sandbox`, taken now.
fn new_record(
    sandbox: &SandboxRecord,
    id: String,
    name: String,
    auto: Option<&AfterCommand>,
) -> CheckpointRecord {
    CheckpointRecord {
        seq: 0,
        id,
        sandbox_id: sandbox.id.clone(),
        tenant_id: sandbox.tenant_id.clone(),
        name,
        created_at: now_ms(),
        command: auto.map(|a| a.command.clone()),
        exit_code: auto.and_then(|a| a.exit_code),
        auto: auto.is_some(),
        imported: false,
        template: sandbox.template.clone(),
        workdir: sandbox.workdir.clone(),
        envs: sandbox.envs.clone(),
    }
}

/// Removes a checkpoint: the row first (so nothing finds it any more), then
/// the volume. A volume left by a crash in between is swept at the next
/// start.
pub(crate) async fn remove_checkpoint(
    store: &Store,
    node: &Node,
    id: &str,
) -> Result<(), StoreError> {
    if store.delete_checkpoint(id).await? {
        remove_volume(node, id).await;
    }
    Ok(())
}

/// Removes the automatic checkpoints of a destroyed sandbox; named ones
/// outlive it.
pub(crate) async fn remove_auto_of(
    store: &Store,
    node: &Node,
    sandbox_id: &str,
) -> Result<(), StoreError> {
    for id in store.auto_checkpoints(sandbox_id).await? {
        remove_checkpoint(store, node, &id).await?;
    }
    Ok(())
}

/// Deletes a checkpoint's volume, best effort (logged; swept at the next
/// start).
async fn remove_volume(node: &Node, id: &str) {
    let node = node.clone();
    let target = id.to_string();
    if let Err(e) = blocking("delete checkpoint volume", move || {
        node.delete_checkpoint_volume(&target)
    })
    .await
    {
        tracing::warn!(checkpoint = %id, error = %e, "deleting a checkpoint's volume (swept at the next start)");
    }
}

/// The API view of a checkpoint.
pub fn view(record: &CheckpointRecord) -> Checkpoint {
    Checkpoint {
        id: record.id.clone(),
        name: record.name.clone(),
        sandbox_id: record.sandbox_id.clone(),
        tenant_id: record.tenant_id.clone(),
        created_at: rfc3339(record.created_at),
        template: record.template.clone(),
        command: record.command.clone(),
        exit_code: record.exit_code,
        auto: record.auto,
        imported: record.imported,
    }
}

/// A checked name, or `<prefix>_<unix ms>` when none is given.
pub fn checked_name(name: Option<String>, prefix: &str) -> Result<String, CheckpointError> {
    match name {
        None => Ok(format!("{prefix}_{}", now_ms())),
        Some(name) => {
            if name.is_empty()
                || name.chars().count() > MAX_NAME_LEN
                || name.chars().any(char::is_control)
            {
                Err(CheckpointError::invalid(
                    "name",
                    format!("1 to {MAX_NAME_LEN} characters without control characters"),
                ))
            } else {
                Ok(name)
            }
        }
    }
}

/// Runs `fut` in its own task, so that it completes even if the request
/// that started it is dropped.
async fn detached<T: Send + 'static>(
    op: &'static str,
    fut: impl Future<Output = Result<T, CheckpointError>> + Send + 'static,
) -> Result<T, CheckpointError> {
    tokio::spawn(fut)
        .await
        .map_err(|source| CheckpointError::Task { op, source })?
}

/// Runs blocking node work on the blocking pool.
async fn blocking<T: Send + 'static>(
    op: &'static str,
    f: impl FnOnce() -> Result<T, NodeError> + Send + 'static,
) -> Result<T, CheckpointError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|source| CheckpointError::Task { op, source })?
        .map_err(CheckpointError::Node)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_default_and_are_checked() {
        assert!(checked_name(None, "cmd").unwrap().starts_with("cmd_"));
        assert_eq!(
            checked_name(Some("before rm".into()), "x").unwrap(),
            "before rm"
        );
        for bad in ["", "a\nb", &"x".repeat(MAX_NAME_LEN + 1)] {
            assert!(checked_name(Some(bad.to_string()), "x").is_err(), "{bad:?}");
        }
    }
}
