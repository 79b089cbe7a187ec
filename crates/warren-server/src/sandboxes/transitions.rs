//! Lifecycle transitions: create, delete, stop, start, and the reaper's idle
//! stop and ttl destroy (hibernate and wake are in [`super::hibernate`]).
//!
//! Protocol of every transition: take the sandbox's operation lock, check the
//! phase (409 while creating or destroying), set a transitional phase, do the
//! work on the node, commit the new state to the database, then settle the
//! phase. A failure on the node leaves the sandbox in `error` (or, for a
//! create, removes every trace of it) and never a phase without a state.

use std::sync::Arc;
use std::time::{Duration, Instant};

use warren_api::ids::{self, IdKind};
use warren_api::server::{CreateSandboxRequest, Sandbox};
use warren_runtime::gate::RootGate;

use super::registry::{Entry, Phase};
use super::seeded::Origin;
use super::validate::{self, CreatePlan};
use super::{blocking, detached, ensure_settled, view, SandboxError, Sandboxes};
use crate::auth::Caller;
use crate::checkpoints::{self, fork::OneFork, seed};
use crate::store::{SandboxRecord, StoredState};

/// What a create or start refused over quota asked for, so that the error
/// can name the quota it would break.
pub(crate) enum Asked<'a> {
    /// A new sandbox, as it would have been inserted.
    New(&'a SandboxRecord),
    /// Starting the existing sandbox with this id (its disk is counted
    /// already).
    Start(&'a str),
}
use crate::time::now_ms;

impl Sandboxes {
    /// Creates a sandbox and returns once its agent answers.
    pub async fn create(
        &self,
        caller: &Caller,
        req: CreateSandboxRequest,
    ) -> Result<Sandbox, SandboxError> {
        let plan = validate::create_plan(req, &self.inner.limits, &self.inner.host)?;
        self.create_planned(caller, plan).await
    }

    /// Creates a sandbox from a checked plan (a fork makes its plan from the
    /// sandbox it forks).
    pub(crate) async fn create_planned(
        &self,
        caller: &Caller,
        plan: CreatePlan,
    ) -> Result<Sandbox, SandboxError> {
        self.check_egress_available(&plan.network)?;
        let origin = match &plan.from_checkpoint {
            Some(id) => Origin::Checkpoint(Box::new(
                seed::resolve(&self.inner.store, caller, id).await?,
            )),
            None => Origin::Template,
        };
        let tenant = caller.tenant().map(str::to_owned);
        let this = self.clone();
        detached("create", async move {
            this.create_detached(tenant, plan, origin).await
        })
        .await
    }

    /// Creates the one sandbox of a fork of one sandbox; the caller runs in
    /// its own task already, and holds the source's lock.
    pub(crate) async fn create_forked(
        &self,
        caller: &Caller,
        plan: CreatePlan,
        fork: OneFork,
    ) -> Result<Sandbox, SandboxError> {
        self.check_egress_available(&plan.network)?;
        let tenant = caller.tenant().map(str::to_owned);
        self.clone()
            .create_detached(tenant, plan, Origin::Fork(fork))
            .await
    }

    async fn create_detached(
        self,
        tenant: Option<String>,
        mut plan: CreatePlan,
        origin: Origin,
    ) -> Result<Sandbox, SandboxError> {
        let started = Instant::now();
        let _creating = self.inner.pools.creating();
        let template = match origin.seed() {
            None => self.inner.templates.ensure(&plan.template).await?,
            Some(seed) => {
                let config = seed.config(&plan.template)?;
                plan.template = seed.checkpoint.template.clone();
                config
            }
        };
        let now = now_ms();
        let mut env = template.env.clone();
        env.extend(plan.envs);
        let mut record = SandboxRecord {
            seq: 0,
            id: ids::new_id(IdKind::Sandbox),
            tenant_id: tenant,
            state: StoredState::Creating,
            template: plan.template,
            created_at: now,
            last_active_at: now,
            timeout_secs: plan.timeout_secs,
            ttl_secs: plan.ttl_secs,
            expires_at: plan.ttl_secs.map(|ttl| now + ttl as i64 * 1000),
            envs: env,
            metadata: plan.metadata,
            labels: plan.labels,
            workdir: template.workdir.clone(),
            resources: plan.resources,
            disk_mb: plan.disk_mb,
            network: plan.network,
            auto_checkpoint: plan.auto_checkpoint,
            auto_checkpoint_keep: plan.auto_checkpoint_keep,
            auto_wake: plan.auto_wake,
            from_checkpoint: plan.from_checkpoint,
            pid: None,
        };
        if let Origin::Template = origin {
            if let Some(sandbox) = self.hand_over(&mut record, &template, started).await? {
                return Ok(sandbox);
            }
        }
        let ensured = started.elapsed();
        let t = Instant::now();
        // Registered before its row: the row's commit announces the sandbox
        // (GET /v1/events), and whoever asks for it then must find it.
        let entry =
            self.inner
                .registry
                .insert(&record.id, record.tenant_id.clone(), Phase::Creating, now);
        entry.set_options(record.auto_checkpoint, record.auto_wake);
        let _op = entry.ops.lock().await;
        // The quota check and the insert have run; their commit goes to disk
        // while the sandbox starts, and is awaited before the answer.
        let inserting = match self.inner.store.insert_sandbox_early(&record).await {
            Ok(Some(inserting)) => inserting,
            refused => {
                self.inner.registry.remove(&record.id);
                refused?;
                return Err(self
                    .quota_error(record.tenant_id.as_deref(), Asked::New(&record))
                    .await);
            }
        };
        tracing::debug!(id = %record.id, ?ensured, inserted = ?t.elapsed(), "create phases before boot");
        let (booted, committed) =
            tokio::join!(self.boot_new(&record, &origin), inserting.committed());
        let booted = match (booted, committed) {
            (booted, Ok(())) => booted,
            (Ok(_), Err(e)) => Err(e.into()),
            (Err(e), Err(_)) => Err(e),
        };
        match booted {
            Ok(pid) => {
                record.state = StoredState::Running;
                record.pid = Some(pid);
                entry.set_phase(Phase::Running);
                self.inner.metrics.observe_create(started.elapsed(), false);
                tracing::info!(id = %record.id, pid, took_ms = started.elapsed().as_millis() as u64, "sandbox created");
                Ok(view(&record, Some(&entry)))
            }
            Err(err) => {
                tracing::warn!(id = %record.id, error = %err, "sandbox create failed; removing it");
                let id = record.id.clone();
                let node = self.inner.node.clone();
                if let Err(e) = blocking("clean up", move || node.destroy(&id)).await {
                    tracing::error!(id = %record.id, error = %e, "cleaning up a failed create");
                }
                self.inner.store.delete_sandbox(&record.id).await?;
                self.inner.registry.remove(&record.id);
                Err(err)
            }
        }
    }

    /// Makes the disk, starts the sandbox, records it as running and starts
    /// its template's start command ([`super::startup`]). The running state
    /// is committed while the agent comes up: the runtime reports the init's
    /// pid before it waits for the agent, and both are awaited here, unless
    /// `record.state` says the row is `running` already (then only the pid
    /// is recorded, without waiting: see `Store::record_pid`).
    pub(crate) async fn boot(&self, record: &SandboxRecord) -> Result<i32, SandboxError> {
        self.boot_with(record, None).await
    }

    /// [`Sandboxes::boot`] of a fork's child, begun while its root is still
    /// being made ([`OneFork::make_root`] opens `gate` once it exists): its
    /// `running` state is committed with the fork's checkpoint, once that
    /// is taken. The disk's size limit is the root's maker's to set.
    pub(crate) async fn boot_forked(
        &self,
        record: &SandboxRecord,
        fork: &OneFork,
        gate: RootGate,
    ) -> Result<i32, SandboxError> {
        self.boot_with(record, Some((fork, gate))).await
    }

    async fn boot_with(
        &self,
        record: &SandboxRecord,
        fork: Option<(&OneFork, RootGate)>,
    ) -> Result<i32, SandboxError> {
        let node = self.inner.node.clone();
        let (id, template, env, workdir, resources, network, disk_mb) = (
            record.id.clone(),
            record.template.clone(),
            record.envs.clone(),
            record.workdir.clone(),
            record.resources,
            record.network.clone(),
            record.disk_mb,
        );
        let (fork, gated) = match fork {
            Some((fork, gate)) => (Some(fork), Some((fork.source().to_string(), gate))),
            None => (None, None),
        };
        let (init_tx, init_rx) = tokio::sync::oneshot::channel();
        let start = blocking("start", move || {
            let begun = Instant::now();
            let mut init_tx = Some(init_tx);
            let mut init_exists = |pid| {
                if let Some(tx) = init_tx.take() {
                    let _ = tx.send((pid, Instant::now()));
                }
            };
            let t = Instant::now();
            let (started, prepared, limited) = match gated {
                None => {
                    let spec = node.prepare(&id, &template, env, workdir, resources, network)?;
                    let prepared = t.elapsed();
                    let t = Instant::now();
                    node.limit_disk(&id, disk_mb)?;
                    let limited = t.elapsed();
                    (node.start(&spec, &mut init_exists), prepared, limited)
                }
                Some((source, gate)) => {
                    let spec =
                        node.prepare_snapshot_of(&id, &source, env, workdir, resources, network)?;
                    let prepared = t.elapsed();
                    (
                        node.start_gated(&spec, gate, &mut init_exists),
                        prepared,
                        Duration::ZERO,
                    )
                }
            };
            started.map(|started| (started, prepared, limited, begun.elapsed()))
        });
        // Committed while the agent starts; awaited before any answer (a
        // failed start after it is cleaned up by the caller, whose writes
        // come after this one). A row that says `running` already (a start
        // or a restore reserved it so) only gets its informational pid,
        // queued in order but not waited for. A fork's child reserves its
        // state so too, with its checkpoint's row, as soon as the
        // checkpoint is taken: the commit goes to disk while the init sets
        // up, rather than after the init exists.
        let already_running = record.state == StoredState::Running;
        let record_running = async {
            let begun = Instant::now();
            let reserved = match fork {
                Some(fork) if !already_running => {
                    let committed = match fork.checkpoint_taken().await {
                        Ok(checkpoint) => self
                            .inner
                            .store
                            .set_running_with_checkpoint(&record.id, None, &checkpoint)
                            .await
                            .map_err(SandboxError::from),
                        Err(e) => Err(e),
                    };
                    if let Err(e) = committed {
                        return Some((Err(e), begun.elapsed()));
                    }
                    true
                }
                _ => already_running,
            };
            let (pid, reported) = init_rx.await.ok()?;
            let result = if reserved {
                self.inner.store.record_pid(&record.id, pid);
                Ok(())
            } else {
                self.inner
                    .store
                    .set_state(&record.id, StoredState::Running, Some(pid))
                    .await
                    .map_err(SandboxError::from)
            };
            Some((result, reported.elapsed()))
        };
        // The start command is looked up (a file of the template) while the
        // sandbox starts.
        let start_command = self.start_command_of(&record.id, &record.template);
        let (started, recorded, start_command) = tokio::join!(start, record_running, start_command);
        let (started, prepared, limited, blocking_took) = started?;
        let set_state = match recorded {
            Some((result, took)) => {
                result?;
                took
            }
            // Only a runtime that never reports its init gets here.
            None => {
                let t = Instant::now();
                self.inner
                    .store
                    .set_state(&record.id, StoredState::Running, Some(started.pid))
                    .await?;
                t.elapsed()
            }
        };
        let t = Instant::now();
        self.launch_found_start_command(&record.id, start_command)
            .await;
        tracing::debug!(
            id = %record.id,
            ?prepared,
            ?limited,
            start = ?blocking_took.saturating_sub(prepared + limited),
            ?set_state,
            start_command = ?t.elapsed(),
            "boot phases"
        );
        Ok(started.pid)
    }

    /// The error of a create or start over the tenant's quota: which
    /// quota, and what the tenant uses of it.
    pub(crate) async fn quota_error(&self, tenant: Option<&str>, asked: Asked<'_>) -> SandboxError {
        let tenant = tenant.unwrap_or_default().to_string();
        let store = &self.inner.store;
        let (record, usage) = match (store.tenant(&tenant).await, store.usage(&tenant).await) {
            (Ok(Some(record)), Ok(usage)) => (record, usage),
            (Err(e), _) | (_, Err(e)) => return SandboxError::Store(e),
            (Ok(None), _) => {
                return SandboxError::QuotaExceeded {
                    tenant,
                    quota: "no such tenant".into(),
                }
            }
        };
        // What one more sandbox adds: a new one its disk too (a stopped
        // one's disk is counted already).
        let (memory_mb, cpus, new_disk) = match asked {
            Asked::New(r) => (
                r.resources.memory_mb,
                r.resources.cpus,
                Some(r.disk_mb.unwrap_or(0)),
            ),
            Asked::Start(id) => match store.sandbox(id).await {
                Ok(Some(r)) => (r.resources.memory_mb, r.resources.cpus, None),
                Ok(None) => (0, 0.0, None),
                Err(e) => return SandboxError::Store(e),
            },
        };
        let q = record.quotas();
        let over = |max: Option<u64>, used: i64, more: u64| {
            max.filter(|&max| used.max(0) as u64 + more > max)
        };
        let quota = if let Some(max) = q.max_sandboxes.filter(|&m| usage.sandboxes >= i64::from(m))
        {
            format!(
                "max_sandboxes: it has {} sandboxes creating, running or hibernated, its quota is {max}",
                usage.sandboxes,
            )
        } else if let Some(max) = q
            .max_total_sandboxes
            .filter(|&m| new_disk.is_some() && usage.total_sandboxes >= i64::from(m))
        {
            format!(
                "max_total_sandboxes: it has {} sandboxes (stopped ones included), its quota is {max}",
                usage.total_sandboxes,
            )
        } else if let Some(max) = over(q.max_memory_mb, usage.memory_mb, memory_mb) {
            format!(
                "max_memory_mb: its sandboxes use {} MiB, {memory_mb} MiB more would take it over its quota of {max} MiB",
                usage.memory_mb
            )
        } else if let Some(max) = q.max_cpus.filter(|&max| usage.cpus + cpus > max + 0.000001) {
            format!(
                "max_cpus: its sandboxes use {} CPUs, {cpus} more would take it over its quota of {max}",
                usage.cpus
            )
        } else if let Some(max) = new_disk.and_then(|d| over(q.max_disk_mb, usage.disk_mb, d)) {
            format!(
                "max_disk_mb: its sandboxes' disks add up to {} MiB, {} MiB more would take it over its quota of {max} MiB",
                usage.disk_mb,
                new_disk.unwrap_or(0)
            )
        } else {
            // Usage changed between the refusal and this look.
            "a quota (its usage changed meanwhile; try again)".to_string()
        };
        SandboxError::QuotaExceeded { tenant, quota }
    }

    /// Destroys a sandbox: its processes, disk, run directory and row.
    pub async fn delete(&self, caller: &Caller, id: &str) -> Result<(), SandboxError> {
        let entry = self.entry(caller, id)?;
        let this = self.clone();
        detached("delete", async move { this.destroy(entry).await }).await
    }

    pub(crate) async fn destroy(&self, entry: Arc<Entry>) -> Result<(), SandboxError> {
        ensure_settled(&entry)?;
        let _op = entry.ops.lock().await;
        ensure_settled(&entry)?;
        if self.inner.registry.get(&entry.id).is_none() {
            return Err(SandboxError::NotFound(entry.id.clone()));
        }
        let id = entry.id.clone();
        let previous = entry.phase();
        entry.set_phase(Phase::Destroying);
        if let Err(e) = self
            .inner
            .store
            .set_state(&id, StoredState::Destroying, None)
            .await
        {
            entry.set_phase(previous);
            return Err(e.into());
        }
        let node = self.inner.node.clone();
        let cleanup_id = id.clone();
        if let Err(err) = blocking("destroy", move || node.destroy(&cleanup_id)).await {
            self.settle(&entry, StoredState::Error).await;
            return Err(err);
        }
        self.inner.store.delete_sandbox(&id).await?;
        self.inner.registry.remove(&id);
        tracing::info!(%id, "sandbox destroyed");
        if let Err(e) = checkpoints::remove_auto_of(&self.inner.store, &self.inner.node, &id).await
        {
            tracing::error!(%id, error = %e, "removing the automatic checkpoints of a destroyed sandbox");
        }
        Ok(())
    }

    /// Records `state` after a failed transition, best effort (the database
    /// error, if any, is logged: the original failure is what the caller sees).
    pub(crate) async fn settle(&self, entry: &Entry, state: StoredState) {
        if let Err(e) = self.inner.store.set_state(&entry.id, state, None).await {
            tracing::error!(id = %entry.id, error = %e, "recording the sandbox's state");
        }
        entry.set_phase(Phase::settled(state));
    }

    /// Stops every process of a sandbox; its disk is kept.
    pub async fn stop(&self, caller: &Caller, id: &str) -> Result<Sandbox, SandboxError> {
        let entry = self.entry(caller, id)?;
        entry.touch();
        let this = self.clone();
        detached("stop", async move { this.stop_entry(entry, None).await }).await
    }

    /// Stops `entry`. With `idle_timeout_ms`, only if it is still idle that
    /// long once the lock is held (activity may have come in meanwhile).
    pub(crate) async fn stop_entry(
        &self,
        entry: Arc<Entry>,
        idle_timeout_ms: Option<i64>,
    ) -> Result<Sandbox, SandboxError> {
        ensure_settled(&entry)?;
        let _op = entry.ops.lock().await;
        ensure_settled(&entry)?;
        let phase = entry.phase();
        let still_idle = |e: &Entry, t| !e.has_open_streams() && e.last_active() + t <= now_ms();
        let skip = match idle_timeout_ms {
            Some(t) => phase != Phase::Running || !still_idle(&entry, t),
            None => phase == Phase::Stopped,
        };
        if !skip {
            entry.set_phase(Phase::Stopping);
            let node = self.inner.node.clone();
            let id = entry.id.clone();
            // A hibernated sandbox has nothing running: this only records it.
            let stopped = blocking("stop", move || node.stop(&id)).await;
            if let Err(err) = stopped {
                self.settle(&entry, StoredState::Error).await;
                return Err(err);
            }
            self.inner
                .store
                .set_state(&entry.id, StoredState::Stopped, None)
                .await?;
            entry.set_phase(Phase::Stopped);
            tracing::info!(id = %entry.id, idle = idle_timeout_ms.is_some(), "sandbox stopped");
        }
        self.current(&entry).await
    }

    /// Starts a stopped (or failed) sandbox again on its kept disk.
    pub async fn start(&self, caller: &Caller, id: &str) -> Result<Sandbox, SandboxError> {
        let entry = self.entry(caller, id)?;
        entry.touch();
        let this = self.clone();
        detached("start", async move { this.start_entry(entry).await }).await
    }

    async fn start_entry(&self, entry: Arc<Entry>) -> Result<Sandbox, SandboxError> {
        ensure_settled(&entry)?;
        let _op = entry.ops.lock().await;
        ensure_settled(&entry)?;
        match entry.phase() {
            Phase::Running => return self.current(&entry).await,
            Phase::Hibernated => return self.wake_locked(&entry).await,
            _ => {}
        }
        if !self.inner.store.reserve_start(&entry.id).await? {
            return Err(self
                .quota_error(entry.tenant.as_deref(), Asked::Start(&entry.id))
                .await);
        }
        let previous = entry.phase();
        entry.set_phase(Phase::Starting);
        let Some(record) = self.inner.store.sandbox(&entry.id).await? else {
            entry.set_phase(previous);
            return Err(SandboxError::NotFound(entry.id.clone()));
        };
        match self.boot(&record).await {
            Ok(pid) => {
                entry.set_phase(Phase::Running);
                entry.touch();
                tracing::info!(id = %entry.id, pid, "sandbox started");
                self.current(&entry).await
            }
            Err(err) => {
                let node = self.inner.node.clone();
                let id = entry.id.clone();
                if let Err(e) = blocking("stop after failed start", move || node.stop(&id)).await {
                    tracing::error!(id = %entry.id, error = %e, "stopping a sandbox that failed to start");
                }
                self.settle(&entry, StoredState::Error).await;
                Err(err)
            }
        }
    }

    /// Marks running sandboxes whose init has died (killed from outside, out
    /// of memory) as `error` and removes what is left of their processes.
    /// Only the sandboxes whose init exited since the last look are read
    /// ([`Node::exits`]), so a look costs nothing with none dead.
    pub(crate) async fn reap_dead(&self) {
        let node = self.inner.node.clone();
        let exited = match blocking("check liveness", move || Ok(node.exits())).await {
            Ok(exited) => exited,
            Err(e) => {
                tracing::error!(error = %e, "checking sandbox liveness");
                return;
            }
        };
        for id in exited {
            let Some(entry) = self.inner.registry.get(&id) else {
                continue;
            };
            // An operation under way (a checkpoint, say) ends first; what
            // it leaves running is checked below.
            let _op = entry.ops.lock().await;
            if entry.phase() != Phase::Running {
                continue;
            }
            let node = self.inner.node.clone();
            let id = entry.id.clone();
            let cleaned = blocking("clean up a dead sandbox", move || match node.pid(&id) {
                Some(_) => Ok(false),
                None => node.stop(&id).map(|()| true),
            })
            .await;
            match cleaned {
                Ok(false) => {}
                Ok(true) => {
                    tracing::warn!(id = %entry.id, "sandbox died; marking it as error");
                    self.settle(&entry, StoredState::Error).await;
                }
                Err(e) => tracing::error!(id = %entry.id, error = %e, "cleaning up a dead sandbox"),
            }
        }
    }

    /// The sandbox as stored now.
    pub(crate) async fn current(&self, entry: &Entry) -> Result<Sandbox, SandboxError> {
        let record = self.record(&entry.id).await?;
        Ok(view(&record, Some(entry)))
    }

    /// Sandbox `id`'s row, or [`SandboxError::NotFound`].
    pub(crate) async fn record(&self, id: &str) -> Result<SandboxRecord, SandboxError> {
        self.inner
            .store
            .sandbox(id)
            .await?
            .ok_or_else(|| SandboxError::NotFound(id.to_string()))
    }
}
