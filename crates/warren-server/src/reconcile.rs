//! Startup reconciliation: the database says what should exist, the machine
//! says what does. Sandboxes are not children of the server, so after a
//! crash or `kill -9` their agents are still running; this finds them.
//!
//! For every sandbox in the database:
//! - `running` or `creating` and alive → reattached (a `creating` one whose
//!   agent came up is recorded as `running`), and thawed if a crash left it
//!   frozen (between a checkpoint's freeze and its thaw);
//! - the same but dead → `stopped` (`error` for a create that never
//!   finished), with its leftover cgroups removed;
//! - `hibernated` → kept hibernated (nothing of it runs);
//! - `stopped` or `error` but alive → stopped, as the database says;
//! - `destroying` → the destroy is finished.
//!
//! What the machine has and the database does not (a running sandbox, a
//! disk, a run directory) is an orphan of an interrupted create or delete:
//! it is stopped and removed.

use std::collections::HashSet;

use crate::node::NodeError;
use crate::sandboxes::registry::Phase;
use crate::sandboxes::Sandboxes;
use crate::store::{StoreError, StoredState};

/// What reconciliation found and did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Running sandboxes reattached.
    pub reattached: usize,
    /// Sandboxes found dead and marked stopped or error.
    pub marked_dead: usize,
    /// Unfinished destroys finished.
    pub destroyed: usize,
    /// Orphans (unknown to the database) removed.
    pub orphans: usize,
    /// Running sandboxes found frozen (a crash mid-checkpoint) and thawed.
    pub thawed: usize,
}

/// Failures of reconciliation.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The blocking inspection of the machine panicked.
    #[error("inspecting the machine: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Reconciles the database with the machine and fills the registry.
pub async fn reconcile(sandboxes: &Sandboxes) -> Result<Report, ReconcileError> {
    let store = sandboxes.store();
    let node = sandboxes.node().clone();
    let records = store.all_sandboxes().await?;
    let probe = node.clone();
    let (alive, on_disk): (HashSet<String>, Vec<String>) = tokio::task::spawn_blocking(move || {
        (
            probe.running().into_iter().collect(),
            probe.sandboxes_on_disk(),
        )
    })
    .await?;
    let mut report = Report::default();
    let known: HashSet<&str> = records.iter().map(|r| r.id.as_str()).collect();
    for record in &records {
        let id = record.id.clone();
        let is_alive = alive.contains(&id);
        let settled = match (record.state, is_alive) {
            (StoredState::Destroying, _) => {
                let node = node.clone();
                let target = id.clone();
                match tokio::task::spawn_blocking(move || node.destroy(&target)).await? {
                    Ok(()) => {
                        store.delete_sandbox(&id).await?;
                        report.destroyed += 1;
                        continue;
                    }
                    Err(e) => {
                        log_failure(&id, "finishing a destroy", &e);
                        StoredState::Error
                    }
                }
            }
            (StoredState::Running, true) => {
                report.reattached += 1;
                record.state
            }
            // Nothing of a hibernated sandbox runs; whatever does (a
            // hibernate cut short) is stopped below.
            (StoredState::Hibernated, _) => StoredState::Hibernated,
            (StoredState::Creating, true) => {
                report.reattached += 1;
                StoredState::Running
            }
            (StoredState::Creating, false) => {
                report.marked_dead += 1;
                StoredState::Error
            }
            (StoredState::Running, false) => {
                report.marked_dead += 1;
                StoredState::Stopped
            }
            (StoredState::Stopped | StoredState::Error, _) => record.state,
        };
        let keep_running = settled == StoredState::Running;
        if keep_running {
            // A server killed between a checkpoint's freeze and its thaw
            // leaves the sandbox frozen: nothing in it would ever answer.
            let node = node.clone();
            let target = id.clone();
            let thawed = tokio::task::spawn_blocking(move || {
                if !node.is_frozen(&target) {
                    return Ok(false);
                }
                node.thaw(&target).map(|()| true)
            })
            .await?;
            match thawed {
                Ok(true) => {
                    report.thawed += 1;
                    tracing::warn!(
                        %id,
                        "reconcile: the sandbox was left frozen (the server stopped during a \
                         checkpoint, fork or hibernate); thawed it"
                    );
                }
                Ok(false) => {}
                Err(e) => log_failure(&id, "thawing a frozen sandbox", &e),
            }
        }
        let pid = if keep_running {
            let node = node.clone();
            let target = id.clone();
            tokio::task::spawn_blocking(move || node.pid(&target)).await?
        } else {
            // Whatever runs (or is left of its cgroups) goes, as the state says.
            let node = node.clone();
            let target = id.clone();
            if let Err(e) = tokio::task::spawn_blocking(move || node.stop(&target)).await? {
                log_failure(&id, "stopping", &e);
            }
            None
        };
        if settled != record.state || pid != record.pid {
            store.set_state(&id, settled, pid).await?;
        }
        let entry = sandboxes.registry().insert(
            &id,
            record.tenant_id.clone(),
            Phase::settled(settled),
            record.last_active_at,
        );
        entry.set_options(record.auto_checkpoint, record.auto_wake);
        if keep_running {
            // Its init is watched for its exit, as if started now.
            let (watcher, target) = (node.clone(), id.clone());
            tokio::task::spawn_blocking(move || watcher.watch(&target)).await?;
            // The runtime's resolver and rules learn the policy again (the
            // interface and rules themselves survived the restart).
            let node = node.clone();
            let (target, policy) = (id.clone(), record.network.clone());
            if let Err(e) =
                tokio::task::spawn_blocking(move || node.set_network(&target, &policy)).await?
            {
                log_failure(&id, "restoring the network policy", &e);
            }
            // While the server was down nobody could use the sandbox: its
            // idle clock starts again now.
            entry.touch();
        }
    }
    let orphans: Vec<String> = alive
        .iter()
        .chain(on_disk.iter())
        .filter(|id| !known.contains(id.as_str()))
        .cloned()
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    for id in orphans {
        let node = node.clone();
        let target = id.clone();
        match tokio::task::spawn_blocking(move || node.destroy(&target)).await? {
            Ok(()) => report.orphans += 1,
            Err(e) => log_failure(&id, "removing an orphan", &e),
        }
    }
    tracing::info!(
        reattached = report.reattached,
        marked_dead = report.marked_dead,
        destroyed = report.destroyed,
        orphans = report.orphans,
        thawed = report.thawed,
        "reconciled sandboxes with the machine"
    );
    Ok(report)
}

fn log_failure(id: &str, what: &str, err: &NodeError) {
    tracing::error!(%id, error = %err, "reconcile: {what} failed");
}
