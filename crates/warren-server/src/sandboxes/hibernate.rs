//! Hibernate and wake.
//!
//! Hibernating ends every process of the sandbox and removes its cgroups, so
//! it holds no memory and no CPU while asleep; its disk (and everything the
//! database holds about it) is kept. Waking starts it again on that disk:
//! files are intact, processes are not (memory-state hibernation, which
//! would keep them, needs the micro-VM runtime and comes with it). A
//! hibernated sandbox still counts against its tenant's quota, so that
//! waking it never fails for quota.
//!
//! Auto-wake (E2B's auto-resume): a call to an agent route of a hibernated
//! sandbox created with `auto_wake: true` wakes it first and then goes
//! through; without `auto_wake` it answers 409 saying how to wake it. Such
//! a sandbox also hibernates, rather than stops, when its idle timeout
//! passes (E2B's auto-pause).

use std::sync::Arc;

use warren_api::server::Sandbox;

use super::registry::{Entry, Phase};
use super::{blocking, detached, ensure_settled, SandboxError, Sandboxes};
use crate::auth::Caller;
use crate::store::StoredState;
use crate::time::now_ms;

impl Sandboxes {
    /// Hibernates a running sandbox (idempotent on a hibernated one).
    pub async fn hibernate(&self, caller: &Caller, id: &str) -> Result<Sandbox, SandboxError> {
        let entry = self.entry(caller, id)?;
        entry.touch();
        self.hibernate_entry(entry, None).await
    }

    /// The reaper's hibernate of an idle `auto_wake` sandbox: only if it is
    /// still idle that long once its lock is held.
    pub(crate) async fn hibernate_idle(
        &self,
        entry: Arc<Entry>,
        idle_timeout_ms: i64,
    ) -> Result<Sandbox, SandboxError> {
        self.hibernate_entry(entry, Some(idle_timeout_ms)).await
    }

    async fn hibernate_entry(
        &self,
        entry: Arc<Entry>,
        idle_timeout_ms: Option<i64>,
    ) -> Result<Sandbox, SandboxError> {
        let this = self.clone();
        detached("hibernate", async move {
            ensure_settled(&entry)?;
            let _op = entry.ops.lock().await;
            ensure_settled(&entry)?;
            let busy = |t| entry.has_open_streams() || entry.last_active() + t > now_ms();
            match (entry.phase(), idle_timeout_ms) {
                (Phase::Hibernated, _) => return this.current(&entry).await,
                (Phase::Running, Some(t)) if busy(t) => return this.current(&entry).await,
                (Phase::Running, _) => {}
                (_, Some(_)) => return this.current(&entry).await,
                (phase, None) => {
                    return Err(SandboxError::Conflict {
                        id: entry.id.clone(),
                        phase: phase.as_str(),
                    })
                }
            }
            entry.set_phase(Phase::Stopping);
            let node = this.inner.node.clone();
            let target = entry.id.clone();
            if let Err(err) = blocking("hibernate", move || node.stop(&target)).await {
                this.settle(&entry, StoredState::Error).await;
                return Err(err);
            }
            this.inner
                .store
                .set_state(&entry.id, StoredState::Hibernated, None)
                .await?;
            entry.set_phase(Phase::Hibernated);
            tracing::info!(id = %entry.id, idle = idle_timeout_ms.is_some(), "sandbox hibernated");
            this.current(&entry).await
        })
        .await
    }

    /// E2B's auto-pause: a sandbox whose deadline passed is hibernated if
    /// it runs, and has no deadline while it sleeps (a `connect` sets a new
    /// one).
    pub async fn hibernate_expired(&self, entry: Arc<Entry>) -> Result<(), SandboxError> {
        let id = entry.id.clone();
        if entry.phase() == Phase::Running {
            self.hibernate_entry(entry, None).await?;
        }
        self.inner.store.set_deadline(&id, None).await?;
        Ok(())
    }

    /// Wakes a hibernated sandbox (idempotent on a running one).
    pub async fn wake(&self, caller: &Caller, id: &str) -> Result<Sandbox, SandboxError> {
        let entry = self.entry(caller, id)?;
        entry.touch();
        self.wake_entry(entry).await
    }

    async fn wake_entry(&self, entry: Arc<Entry>) -> Result<Sandbox, SandboxError> {
        let this = self.clone();
        detached("wake", async move {
            ensure_settled(&entry)?;
            let _op = entry.ops.lock().await;
            ensure_settled(&entry)?;
            this.wake_locked(&entry).await
        })
        .await
    }

    /// Wakes `entry`; the caller holds its lock.
    pub(crate) async fn wake_locked(&self, entry: &Entry) -> Result<Sandbox, SandboxError> {
        match entry.phase() {
            Phase::Running => return self.current(entry).await,
            Phase::Hibernated => {}
            phase => {
                return Err(SandboxError::Conflict {
                    id: entry.id.clone(),
                    phase: phase.as_str(),
                })
            }
        }
        entry.set_phase(Phase::Starting);
        let Some(record) = self.inner.store.sandbox(&entry.id).await? else {
            entry.set_phase(Phase::Hibernated);
            return Err(SandboxError::NotFound(entry.id.clone()));
        };
        match self.boot(&record).await {
            Ok(pid) => {
                entry.set_phase(Phase::Running);
                entry.touch();
                tracing::info!(id = %entry.id, pid, "sandbox woken");
                self.current(entry).await
            }
            Err(err) => {
                let node = self.inner.node.clone();
                let id = entry.id.clone();
                if let Err(e) = blocking("stop after a failed wake", move || node.stop(&id)).await {
                    tracing::error!(id = %entry.id, error = %e, "stopping a sandbox that failed to wake");
                }
                self.settle(entry, StoredState::Error).await;
                Err(err)
            }
        }
    }

    /// The running sandbox `id` for an agent call. A hibernated one created
    /// with `auto_wake` is woken first; without it the call is refused with
    /// [`SandboxError::Hibernated`].
    pub async fn entry_for_agent(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<Arc<Entry>, SandboxError> {
        let entry = self.entry(caller, id)?;
        self.awake(entry).await?;
        self.entry_for_proxy(caller, id)
    }

    /// `entry` once it runs: woken first when it is hibernated (or being
    /// woken) and was created with `auto_wake`. Other phases are left to the
    /// caller's check.
    pub async fn awake(&self, entry: Arc<Entry>) -> Result<Arc<Entry>, SandboxError> {
        match entry.phase() {
            Phase::Hibernated if !entry.auto_wake() => {
                Err(SandboxError::Hibernated(entry.id.clone()))
            }
            // Waking (by this call or another one): wait for it under the
            // sandbox's lock, then go through.
            Phase::Hibernated | Phase::Starting if entry.auto_wake() => {
                self.wake_entry(entry.clone()).await?;
                Ok(entry)
            }
            _ => Ok(entry),
        }
    }
}
