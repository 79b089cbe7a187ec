//! Forks: one checkpoint of a sandbox, then `count` independent sandboxes
//! made from it, started side by side.
//!
//! A fork is the same machine at that moment: same template, environment,
//! metadata, labels, resources, network policy, timeouts and time-travel
//! options; its own id, disk (a snapshot), processes and lifetime. The
//! checkpoint is kept (named `fork_<unix ms>` unless named) and can be
//! deleted without touching the forks. Forks are all or nothing: if one
//! cannot be made (quota, a failing start), the others are destroyed and the
//! error is returned.
//!
//! A fork of one sandbox (`count` 1, the common case) is made in one freeze
//! of its source ([`OneFork`]): the child's root and the checkpoint are
//! snapshotted from the source at once (two threads), the child
//! starts (begun before its root exists, up to where it needs the root:
//! [`warren_runtime::gate`]), and the checkpoint's row is committed with
//! the child's `running` state (one SQLite commit) as soon as the checkpoint
//! is taken, while the child's init sets up. With more, the checkpoint comes first and each
//! child's root is a snapshot of it.

use std::sync::{Arc, Mutex};

use tokio::task::{JoinHandle, JoinSet};
use warren_api::checkpoint::{ForkRequest, ForkResponse};
use warren_api::ids::{self, IdKind};
use warren_api::server::Sandbox;
use warren_runtime::gate::RootOpener;

use super::seed::Seed;
use super::{checked_name, detached, new_record, CheckpointError, Checkpoints};
use crate::auth::Caller;
use crate::node::{Node, NodeError};
use crate::sandboxes::registry::{Entry, Phase};
use crate::sandboxes::validate::CreatePlan;
use crate::sandboxes::{ensure_settled, SandboxError};
use crate::store::{CheckpointRecord, SandboxRecord};
use crate::time::now_ms;

/// Most sandboxes one fork call makes.
pub const MAX_FORKS: u32 = 64;

/// The disk and checkpoint of a fork of one sandbox: the child's root and
/// the checkpoint snapshotted from the frozen source at once
/// ([`Node::fork_sandbox`]); the checkpoint's row is committed with the
/// child's `running` state, in one transaction, once the checkpoint is
/// taken (`Store::set_running_with_checkpoint`; the init's pid follows).
/// Cheap to clone; the create that makes the child calls
/// [`OneFork::make_root`], then its boot [`OneFork::checkpoint_taken`];
/// a fork that failed calls [`OneFork::settled`] before it removes what
/// was made.
#[derive(Clone)]
pub(crate) struct OneFork {
    inner: Arc<OneForkInner>,
}

struct OneForkInner {
    node: Node,
    source: String,
    running: bool,
    /// The checkpoint as it will be recorded, with no patches.
    seed: Seed,
    /// Taking the checkpoint, under way once the child's root exists.
    disk: Mutex<Option<JoinHandle<Result<(), NodeError>>>>,
}

impl OneFork {
    /// What the child starts with: the checkpoint to be taken (its
    /// template, working directory and environment).
    pub(crate) fn seed(&self) -> &Seed {
        &self.inner.seed
    }

    /// The sandbox forked (the child's root is a snapshot of its root).
    pub(crate) fn source(&self) -> &str {
        &self.inner.source
    }

    /// Makes `child`'s root from the frozen source, with the checkpoint.
    /// Once the root exists, `opener` is opened (the child's start, begun
    /// meanwhile, goes on: [`warren_runtime::gate`]), the disk is limited
    /// to `disk_mb` and read ahead; returns then (the checkpoint's snapshot
    /// may still be under way). The limit is in place before the create
    /// answers, so before any of the tenant's code runs. Called once.
    pub(crate) async fn make_root(
        &self,
        child: &str,
        disk_mb: Option<u64>,
        opener: RootOpener,
    ) -> Result<(), SandboxError> {
        let (made_tx, made) = tokio::sync::oneshot::channel();
        let inner = &self.inner;
        let (node, source, child, ckpt, running) = (
            inner.node.clone(),
            inner.source.clone(),
            child.to_string(),
            inner.seed.checkpoint.id.clone(),
            inner.running,
        );
        let disk = tokio::task::spawn_blocking(move || {
            let made_node = node.clone();
            let made_child = child.clone();
            node.fork_sandbox(&source, &child, &ckpt, running, move || {
                opener.open();
                let limited = made_node.limit_disk(&made_child, disk_mb);
                made_node.read_root_ahead(&made_child);
                let _ = made_tx.send(limited);
            })
        });
        // The root exists; its limit may have failed.
        let limited = match made.await {
            Ok(limited) => limited.map_err(SandboxError::Node),
            // The root was not made: the job's error is the create's.
            Err(_) => {
                return Err(match disk.await {
                    Ok(Err(e)) => SandboxError::Node(e),
                    Ok(Ok(())) => unreachable!("a fork's disk was taken without its root"),
                    Err(source) => SandboxError::Task {
                        op: "fork the disk",
                        source,
                    },
                })
            }
        };
        *inner.disk.lock().expect("fork disk lock") = Some(disk);
        limited
    }

    /// Waits for the checkpoint's snapshot; its row, to be committed with
    /// the child's `running` state. Called once, by the child's boot.
    pub(crate) async fn checkpoint_taken(&self) -> Result<CheckpointRecord, SandboxError> {
        let disk = self.inner.disk.lock().expect("fork disk lock").take();
        if let Some(disk) = disk {
            disk.await.map_err(|source| SandboxError::Task {
                op: "fork the disk",
                source,
            })??;
        }
        let mut record = self.inner.seed.checkpoint.clone();
        record.created_at = now_ms();
        Ok(record)
    }

    /// Waits for the checkpoint's snapshot if the child's boot did not
    /// (a create that failed before it): what was made can then be removed.
    async fn settled(&self) {
        let disk = self.inner.disk.lock().expect("fork disk lock").take();
        if let Some(disk) = disk {
            let _ = disk.await;
        }
    }
}

/// The plan of a fork of `source` from `checkpoint`.
fn plan_of(source: SandboxRecord, checkpoint: &CheckpointRecord) -> CreatePlan {
    CreatePlan {
        template: checkpoint.template.clone(),
        timeout_secs: source.timeout_secs,
        ttl_secs: source.ttl_secs,
        // The checkpoint carries the source's environment.
        envs: Default::default(),
        metadata: source.metadata,
        labels: source.labels,
        resources: source.resources,
        disk_mb: source.disk_mb,
        network: source.network,
        auto_checkpoint: source.auto_checkpoint,
        auto_checkpoint_keep: source.auto_checkpoint_keep,
        auto_wake: source.auto_wake,
        from_checkpoint: Some(checkpoint.id.clone()),
    }
}

impl Checkpoints {
    /// Checkpoints sandbox `id` once and makes `count` sandboxes from it.
    pub async fn fork(
        &self,
        caller: &Caller,
        id: &str,
        req: ForkRequest,
    ) -> Result<ForkResponse, CheckpointError> {
        let count = req.count.unwrap_or(1);
        if !(1..=MAX_FORKS).contains(&count) {
            return Err(CheckpointError::invalid(
                "count",
                format!("between 1 and {MAX_FORKS}"),
            ));
        }
        let name = checked_name(req.name, "fork")?;
        let entry = self.inner.sandboxes.entry(caller, id)?;
        entry.touch();
        if count == 1 {
            let this = self.clone();
            let caller = caller.clone();
            return detached(
                "fork",
                async move { this.fork_one(&caller, entry, name).await },
            )
            .await;
        }
        let checkpoint = self.take(entry, name, None).await?;
        let source = self.inner.sandboxes.record(id).await?;
        let plan = plan_of(source, &checkpoint);
        let mut tasks = JoinSet::new();
        for _ in 0..count {
            let (sandboxes, caller, plan) =
                (self.inner.sandboxes.clone(), caller.clone(), plan.clone());
            tasks.spawn(async move { sandboxes.create_planned(&caller, plan).await });
        }
        let mut made: Vec<Sandbox> = Vec::with_capacity(count as usize);
        let mut failure: Option<CheckpointError> = None;
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(Ok(sandbox)) => made.push(sandbox),
                Ok(Err(e)) => failure = failure.or(Some(e.into())),
                Err(source) => {
                    failure = failure.or(Some(CheckpointError::Task { op: "fork", source }))
                }
            }
        }
        if let Some(err) = failure {
            self.destroy_forks(caller, &made).await;
            return Err(err);
        }
        made.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        tracing::info!(source = %id, checkpoint = %checkpoint.id, count, "sandbox forked");
        Ok(ForkResponse {
            items: made,
            checkpoint_id: checkpoint.id,
        })
    }

    /// A fork of one sandbox ([`OneFork`]), under the source's lock.
    async fn fork_one(
        &self,
        caller: &Caller,
        entry: Arc<Entry>,
        name: String,
    ) -> Result<ForkResponse, CheckpointError> {
        ensure_settled(&entry)?;
        let _op = entry.ops.lock().await;
        ensure_settled(&entry)?;
        let source = self.inner.sandboxes.record(&entry.id).await?;
        let checkpoint = new_record(&source, ids::new_id(IdKind::Checkpoint), name, None);
        let fork = OneFork {
            inner: Arc::new(OneForkInner {
                node: self.inner.node.clone(),
                source: entry.id.clone(),
                running: entry.phase() == Phase::Running,
                seed: Seed {
                    checkpoint: checkpoint.clone(),
                    patches: Vec::new(),
                },
                disk: Mutex::new(None),
            }),
        };
        let plan = plan_of(source, &checkpoint);
        let begun = std::time::Instant::now();
        let made = self
            .inner
            .sandboxes
            .create_forked(caller, plan, fork.clone())
            .await;
        let created = begun.elapsed();
        let child = match made {
            // Its boot committed the checkpoint's row with its state.
            Ok(child) => child,
            Err(e) => {
                // Whatever of the checkpoint was made goes: its row, if
                // the failure came after its commit, and its volume.
                fork.settled().await;
                if let Err(removing) = self.inner.store.delete_checkpoint(&checkpoint.id).await {
                    tracing::error!(checkpoint = %checkpoint.id, error = %removing, "removing the checkpoint of a failed fork");
                }
                if self
                    .inner
                    .node
                    .checkpoint_volume(&checkpoint.id)
                    .is_ok_and(|v| v.exists())
                {
                    self.remove_volume(&checkpoint.id).await;
                }
                return Err(e.into());
            }
        };
        tracing::debug!(?created, "fork phases");
        tracing::info!(sandbox = %entry.id, checkpoint = %checkpoint.id, auto = false, "checkpoint taken");
        tracing::info!(source = %entry.id, checkpoint = %checkpoint.id, count = 1, "sandbox forked");
        Ok(ForkResponse {
            items: vec![child],
            checkpoint_id: checkpoint.id,
        })
    }

    /// Destroys the forks made by a fork that failed (logged).
    async fn destroy_forks(&self, caller: &Caller, made: &[Sandbox]) {
        for sandbox in made {
            if let Err(e) = self.inner.sandboxes.delete(caller, &sandbox.id).await {
                tracing::error!(id = %sandbox.id, error = %e, "destroying a fork after another failed");
            }
        }
    }
}
