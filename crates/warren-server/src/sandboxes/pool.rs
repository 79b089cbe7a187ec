//! The warm pool: per template, a few sandboxes started ahead of the creates
//! that will want them (`--pool TEMPLATE=N`, `PUT /v1/admin/pools/{template}`).
//!
//! A pooled sandbox is a sandbox of the template as the runtime knows it
//! (cgroups, a snapshot of the template, a run directory, its agent as PID 1,
//! the template's start command running and ready) with the server's default
//! resources, no network interface, and no row in the database: nothing of a
//! caller has reached it, it counts against no tenant's quota, and a restart
//! finds it as an orphan and removes it (reconciliation runs before the
//! refiller starts).
//!
//! A create of a template (not of a checkpoint; and, for a template with a
//! start command, one without `envs`, which that command must see) takes one
//! ([`Sandboxes::hand_over`]) and makes it the caller's before it answers:
//! its row goes in (the tenant's quota is checked there, and a refusal puts
//! the sandbox back untouched), then its cgroup limits, disk limit and
//! network policy become the caller's, and its agent gets the caller's
//! `envs` as its processes' default environment. Its id (hence its hostname,
//! which is the id) was never shown to anyone before. A hand-over that fails
//! destroys the pooled sandbox and the create goes on as a cold one.
//!
//! The refiller ([`Sandboxes::run_pool`]) makes one sandbox at a time, only
//! while no create is in flight (it never competes with one), only of
//! templates that are built and current (it never builds `base`), and backs
//! off after a failure (a template deleted, a full disk), so a broken pool
//! costs creates nothing: they find it empty and start cold.
//! Pooled sandboxes of a template that was rebuilt since are destroyed
//! rather than handed out.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::Method;
use warren_api::agent::Environment;
use warren_api::ids::{self, IdKind};
use warren_api::server::WarmPool as PoolView;
use warren_runtime::NetworkPolicy;

use super::registry::Phase;
use super::{blocking, view, SandboxError, Sandboxes};
use crate::store::{SandboxRecord, StoredState};
use crate::templates::{TemplateConfig, TemplateError};

/// Most ready sandboxes one template's pool may keep.
pub const MAX_POOL_SIZE: u32 = 10_000;
/// The template pooled when `--pool` does not name it.
pub const DEFAULT_POOL: (&str, u32) = ("base", 2);
/// The first pause after a failed refill; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest pause after failed refills.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How long the refiller sleeps with nothing to do, unless woken.
const IDLE_LOOK: Duration = Duration::from_secs(5);
/// How long the refiller waits for creates in flight before looking again.
const YIELD: Duration = Duration::from_millis(10);
/// Memory the host must have available for a refill: pooled sandboxes
/// never take what a create needs.
const MIN_AVAILABLE_MB: u64 = 512;

/// A started sandbox waiting for an owner.
#[derive(Debug)]
pub(crate) struct Warm {
    /// Its id (and hostname): the owner's sandbox id.
    pub id: String,
    /// Host pid of its init.
    pub pid: i32,
    /// The template contents it was made from.
    pub build_id: String,
}

/// The pools of every template: sizes, ready sandboxes, refill back-offs.
#[derive(Debug, Default)]
pub(crate) struct Pools {
    state: Mutex<State>,
    wake: tokio::sync::Notify,
    /// Creates in flight (from the pool or not): the refiller waits for
    /// them to finish, and so do the node's spare roots.
    creating: Arc<AtomicUsize>,
}

#[derive(Debug, Default)]
struct State {
    sizes: BTreeMap<String, u32>,
    ready: BTreeMap<String, VecDeque<Warm>>,
    /// Failures in a row and when to try again, per template.
    backoff: BTreeMap<String, (u32, Instant)>,
    /// Set at shutdown: nothing is refilled or handed out any more.
    closed: bool,
}

/// Counts a create in flight while it lives.
pub(crate) struct Creating<'a>(&'a Pools);

impl Drop for Creating<'_> {
    fn drop(&mut self) {
        if self.0.creating.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.wake.notify_one();
        }
    }
}

impl Pools {
    /// Pools of the given sizes (templates at 0 are left out).
    pub fn new(sizes: impl IntoIterator<Item = (String, u32)>) -> Self {
        let pools = Pools::default();
        pools.lock().sizes = sizes.into_iter().filter(|(_, n)| *n > 0).collect();
        pools
    }

    /// Counts creates in flight in `counter` (shared with the node's spare
    /// roots) instead of a count of its own.
    pub fn counting_in(mut self, counter: Arc<AtomicUsize>) -> Self {
        self.creating = counter;
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("pool lock")
    }

    /// Marks a create in flight until the guard drops.
    pub fn creating(&self) -> Creating<'_> {
        self.creating.fetch_add(1, Ordering::SeqCst);
        Creating(self)
    }

    /// Every pool with a size or ready sandboxes, by template.
    pub fn views(&self) -> Vec<PoolView> {
        let state = self.lock();
        let mut names: Vec<&String> = state.sizes.keys().chain(state.ready.keys()).collect();
        names.sort();
        names.dedup();
        names.into_iter().map(|t| state.view(t)).collect()
    }

    /// Sets `template`'s size; returns its view and the ready sandboxes
    /// over the new size (the caller destroys them).
    pub fn set_size(&self, template: &str, size: u32) -> (PoolView, Vec<Warm>) {
        let mut state = self.lock();
        if size == 0 {
            state.sizes.remove(template);
        } else {
            state.sizes.insert(template.to_string(), size);
        }
        state.backoff.remove(template);
        let mut excess = Vec::new();
        if let Some(ready) = state.ready.get_mut(template) {
            while ready.len() > size as usize {
                excess.extend(ready.pop_back());
            }
        }
        let view = state.view(template);
        drop(state);
        self.wake.notify_one();
        (view, excess)
    }

    /// A ready sandbox of `template` made from `build_id`, if any; with the
    /// ready ones made from another build (to destroy).
    pub fn take(&self, template: &str, build_id: &str) -> (Option<Warm>, Vec<Warm>) {
        let mut state = self.lock();
        if state.closed {
            return (None, Vec::new());
        }
        let Some(ready) = state.ready.get_mut(template) else {
            return (None, Vec::new());
        };
        let (current, stale): (Vec<Warm>, Vec<Warm>) = std::mem::take(ready)
            .into_iter()
            .partition(|w| w.build_id == build_id);
        *ready = current.into();
        let taken = ready.pop_front();
        drop(state);
        self.wake.notify_one();
        (taken, stale)
    }

    /// Puts back a sandbox [`take`](Self::take) gave out and that was not
    /// handed over (its create was refused before anything touched it).
    pub fn put_back(&self, template: &str, warm: Warm) -> Option<Warm> {
        self.add(template, warm, true)
    }

    /// Adds a freshly made sandbox; returns it if the pool no longer wants
    /// it (resized meanwhile, or closed).
    fn add(&self, template: &str, warm: Warm, front: bool) -> Option<Warm> {
        let mut state = self.lock();
        let size = state.sizes.get(template).copied().unwrap_or(0) as usize;
        if state.closed || state.ready_count(template) >= size {
            return Some(warm);
        }
        let ready = state.ready.entry(template.to_string()).or_default();
        if front {
            ready.push_front(warm);
        } else {
            ready.push_back(warm);
        }
        None
    }

    /// The template to make a sandbox for next: one under its size and not
    /// backing off. `None` when every pool is full (or closed).
    fn next_to_fill(&self, now: Instant) -> Option<String> {
        let state = self.lock();
        if state.closed {
            return None;
        }
        state
            .sizes
            .iter()
            .filter(|(t, &size)| state.ready_count(t) < size as usize)
            .filter(|(t, _)| state.backoff.get(*t).is_none_or(|(_, at)| *at <= now))
            .map(|(t, _)| t.clone())
            .next()
    }

    /// Records a failed refill of `template`: its next try waits.
    fn failed(&self, template: &str, now: Instant) -> Duration {
        let mut state = self.lock();
        let failures = state.backoff.get(template).map_or(0, |(n, _)| *n) + 1;
        let pause = FIRST_BACKOFF
            .saturating_mul(1 << (failures - 1).min(6))
            .min(MAX_BACKOFF);
        state
            .backoff
            .insert(template.to_string(), (failures, now + pause));
        pause
    }

    fn succeeded(&self, template: &str) {
        self.lock().backoff.remove(template);
    }

    /// Ready sandboxes of `template` made from another build than `build_id`.
    fn remove_stale(&self, template: &str, build_id: Option<&str>) -> Vec<Warm> {
        let mut state = self.lock();
        let Some(ready) = state.ready.get_mut(template) else {
            return Vec::new();
        };
        let (keep, stale): (Vec<Warm>, Vec<Warm>) = std::mem::take(ready)
            .into_iter()
            .partition(|w| Some(w.build_id.as_str()) == build_id);
        *ready = keep.into();
        stale
    }

    /// Templates with ready sandboxes.
    fn stocked(&self) -> Vec<String> {
        let state = self.lock();
        state
            .ready
            .iter()
            .filter(|(_, r)| !r.is_empty())
            .map(|(t, _)| t.clone())
            .collect()
    }

    /// Closes the pools; returns every ready sandbox (to destroy).
    pub fn close(&self) -> Vec<Warm> {
        let mut state = self.lock();
        state.closed = true;
        let all = std::mem::take(&mut state.ready);
        drop(state);
        self.wake.notify_one();
        all.into_values().flatten().collect()
    }
}

impl State {
    fn ready_count(&self, template: &str) -> usize {
        self.ready.get(template).map_or(0, VecDeque::len)
    }

    fn view(&self, template: &str) -> PoolView {
        PoolView {
            template: template.to_string(),
            size: self.sizes.get(template).copied().unwrap_or(0),
            ready: self.ready_count(template) as u32,
        }
    }
}

impl Sandboxes {
    /// Every template's pool.
    pub fn pools(&self) -> Vec<PoolView> {
        self.inner.pools.views()
    }

    /// Sets how many ready sandboxes of `template` the server keeps; 0
    /// destroys its ready ones. The template must exist (`base` may be not
    /// built yet: the pool fills once a create has built it).
    pub async fn set_pool(&self, template: &str, size: u32) -> Result<PoolView, SandboxError> {
        if size > MAX_POOL_SIZE {
            return Err(SandboxError::invalid(
                "size",
                format!("at most {MAX_POOL_SIZE} ready sandboxes per template"),
            ));
        }
        if size > 0
            && template != DEFAULT_POOL.0
            && self.inner.templates.current(template).await?.is_none()
        {
            return Err(TemplateError::NotFound(template.to_string()).into());
        }
        let (view, excess) = self.inner.pools.set_size(template, size);
        tracing::info!(template, size, "warm pool resized");
        self.destroy_warm(excess).await;
        Ok(view)
    }

    /// Wakes the refiller to drop pooled sandboxes of templates deleted or
    /// rebuilt (it also looks on its own, every few seconds).
    pub fn templates_changed(&self) {
        self.inner.pools.wake.notify_one();
    }

    /// Destroys ready sandboxes whose template is gone or was rebuilt.
    async fn purge_stale(&self) {
        for template in self.inner.pools.stocked() {
            let build_id = match self.inner.templates.current(&template).await {
                Ok(config) => config.map(|c| c.build_id),
                Err(e) => {
                    tracing::warn!(%template, error = %e, "checking a pooled template");
                    continue;
                }
            };
            let stale = self
                .inner
                .pools
                .remove_stale(&template, build_id.as_deref());
            if !stale.is_empty() {
                tracing::info!(%template, count = stale.len(), "destroying pooled sandboxes of a deleted or rebuilt template");
                self.destroy_warm(stale).await;
            }
        }
    }

    /// Makes the caller's sandbox out of a pooled one, if the pool of
    /// `record.template` has one of `template`'s current build: `Ok(None)`
    /// when it has none or the hand-over failed (the create goes on cold,
    /// with `record` as it was), an error when the tenant is at its quota.
    pub(super) async fn hand_over(
        &self,
        record: &mut SandboxRecord,
        template: &TemplateConfig,
        started: Instant,
    ) -> Result<Option<warren_api::server::Sandbox>, SandboxError> {
        // A start command sees the environment of its boot: with `envs` of
        // the caller's, only a cold start gives it them.
        if template.has_start && !callers_env(record, template).is_empty() {
            return Ok(None);
        }
        let (warm, stale) = self.inner.pools.take(&record.template, &template.build_id);
        self.destroy_warm(stale).await;
        let Some(warm) = warm else {
            return Ok(None);
        };
        let cold_id = std::mem::replace(&mut record.id, warm.id.clone());
        // Running from the start: it is (a crash before the answer leaves it
        // running, as it would a cold create whose agent came up).
        record.state = StoredState::Running;
        record.pid = Some(warm.pid);
        // Registered before its row, as a cold create is (the row's commit
        // announces the sandbox).
        let entry = self.inner.registry.insert(
            &record.id,
            record.tenant_id.clone(),
            Phase::Creating,
            record.created_at,
        );
        entry.set_options(record.auto_checkpoint, record.auto_wake);
        let _op = entry.ops.lock().await;
        let inserted = self.inner.store.insert_sandbox(record).await;
        if !matches!(inserted, Ok(true)) {
            self.inner.registry.remove(&record.id);
        }
        if !inserted? {
            if let Some(unwanted) = self.inner.pools.put_back(&record.template, warm) {
                self.destroy_warm(vec![unwanted]).await;
            }
            record.id = cold_id;
            record.state = StoredState::Creating;
            record.pid = None;
            return Err(self
                .quota_error(record.tenant_id.as_deref(), super::Asked::New(record))
                .await);
        }
        match self.make_it_theirs(record, template, &warm).await {
            Ok(()) => {
                entry.set_phase(Phase::Running);
                self.inner.metrics.observe_create(started.elapsed(), true);
                tracing::info!(id = %record.id, pid = warm.pid, took_ms = started.elapsed().as_millis() as u64, "sandbox created from the warm pool");
                Ok(Some(view(record, Some(&entry))))
            }
            Err(err) => {
                tracing::warn!(id = %record.id, error = %err, "handing over a pooled sandbox failed; creating one cold");
                let node = self.inner.node.clone();
                let id = record.id.clone();
                if let Err(e) =
                    blocking("destroy a pooled sandbox", move || node.destroy(&id)).await
                {
                    tracing::error!(id = %record.id, error = %e, "destroying a pooled sandbox");
                }
                self.inner.store.delete_sandbox(&record.id).await?;
                self.inner.registry.remove(&record.id);
                record.id = cold_id;
                record.state = StoredState::Creating;
                record.pid = None;
                Ok(None)
            }
        }
    }

    /// Gives the pooled sandbox `warm` what `record` asks for where it is
    /// not what the pool started it with (the server's default resources
    /// and disk limit, no network, the template's environment).
    async fn make_it_theirs(
        &self,
        record: &SandboxRecord,
        template: &TemplateConfig,
        warm: &Warm,
    ) -> Result<(), SandboxError> {
        let node = self.inner.node.clone();
        let (id, pid, resources, disk_mb, network) = (
            record.id.clone(),
            warm.pid,
            record.resources,
            record.disk_mb,
            record.network.clone(),
        );
        let limits = &self.inner.limits;
        let (same_resources, same_disk) = (
            resources == limits.default_resources,
            disk_mb == limits.default_disk_mb,
        );
        blocking("hand over", move || {
            if node.pid(&id) != Some(pid) {
                return Err(crate::node::NodeError::Runtime(
                    warren_runtime::RuntimeError::NotRunning(id),
                ));
            }
            if !same_resources {
                node.set_resources(&id, &resources)?;
            }
            if !same_disk {
                node.limit_disk(&id, disk_mb)?;
            }
            if network.needs_interface() {
                node.set_network(&id, &network)?;
            }
            Ok(())
        })
        .await?;
        // The template's variables are the agent's already; the caller's go
        // over them.
        let env = callers_env(record, template);
        if !env.is_empty() {
            self.inner
                .agent
                .call::<Environment>(
                    Method::PATCH,
                    &record.id,
                    "/v1/environment",
                    Some(&Environment { env }),
                )
                .await
                .map_err(SandboxError::HandOver)?;
        }
        Ok(())
    }

    /// Makes one pooled sandbox of `template`.
    async fn make_warm(&self, template: &str) -> Result<Warm, SandboxError> {
        let Some(config) = self.inner.templates.current(template).await? else {
            return Err(TemplateError::NotFound(template.to_string()).into());
        };
        let stale = self
            .inner
            .pools
            .remove_stale(template, Some(&config.build_id));
        self.destroy_warm(stale).await;
        let id = ids::new_id(IdKind::Sandbox);
        let node = self.inner.node.clone();
        let resources = self.inner.limits.default_resources;
        let disk_mb = self.inner.limits.default_disk_mb;
        let (sandbox, name) = (id.clone(), template.to_string());
        let env = config.env.clone();
        let workdir = config.workdir.clone();
        let made = blocking("make a pooled sandbox", move || {
            let spec = node.prepare_warm(
                &sandbox,
                &name,
                env,
                workdir,
                resources,
                NetworkPolicy::deny(),
            )?;
            node.limit_disk(&sandbox, disk_mb)?;
            node.start(&spec, &mut |_| {})
        })
        .await;
        let started = match made {
            Ok(started) => started,
            Err(e) => {
                self.destroy_warm(vec![Warm {
                    id,
                    pid: 0,
                    build_id: config.build_id,
                }])
                .await;
                return Err(e);
            }
        };
        self.launch_start_command(&id, template).await;
        Ok(Warm {
            id,
            pid: started.pid,
            build_id: config.build_id,
        })
    }

    /// Destroys pooled sandboxes (never handed out), logging failures.
    async fn destroy_warm(&self, warm: Vec<Warm>) {
        for w in warm {
            let node = self.inner.node.clone();
            let id = w.id.clone();
            if let Err(e) = blocking("destroy a pooled sandbox", move || node.destroy(&id)).await {
                tracing::error!(id = %w.id, error = %e, "destroying a pooled sandbox");
            }
        }
    }

    /// The refiller: keeps every pool at its size until `stop`, then
    /// destroys the ready sandboxes. One sandbox at a time, never while a
    /// create is in flight or the host is short of memory.
    pub async fn run_pool(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let pools = &self.inner.pools;
        loop {
            if *stop.borrow() {
                break;
            }
            if pools.creating.load(Ordering::SeqCst) > 0 || !memory_to_spare() {
                tokio::select! {
                    _ = tokio::time::sleep(YIELD) => {}
                    _ = stop.changed() => {}
                }
                continue;
            }
            let Some(template) = pools.next_to_fill(Instant::now()) else {
                self.purge_stale().await;
                tokio::select! {
                    _ = pools.wake.notified() => {}
                    _ = tokio::time::sleep(IDLE_LOOK) => {}
                    _ = stop.changed() => {}
                }
                continue;
            };
            match self.make_warm(&template).await {
                Ok(warm) => {
                    pools.succeeded(&template);
                    tracing::debug!(id = %warm.id, %template, "pooled sandbox ready");
                    if let Some(unwanted) = pools.add(&template, warm, false) {
                        self.destroy_warm(vec![unwanted]).await;
                    }
                }
                Err(e) => {
                    let pause = pools.failed(&template, Instant::now());
                    self.purge_stale().await;
                    tracing::warn!(%template, error = %e, retry_in = ?pause, "refilling the warm pool failed");
                }
            }
        }
        let ready = pools.close();
        tracing::info!(
            count = ready.len(),
            "destroying the warm pool's ready sandboxes"
        );
        self.destroy_warm(ready).await;
    }
}

/// The variables of `record`'s environment that its template does not set
/// (to the same value): the caller's `envs`.
fn callers_env(
    record: &SandboxRecord,
    template: &TemplateConfig,
) -> std::collections::BTreeMap<String, String> {
    record
        .envs
        .iter()
        .filter(|(k, v)| template.env.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Whether the host has [`MIN_AVAILABLE_MB`] of memory available (true when
/// it cannot tell).
fn memory_to_spare() -> bool {
    let Ok(meminfo) = std::fs::read_to_string("/proc/meminfo") else {
        return true;
    };
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .is_none_or(|kib| kib / 1024 >= MIN_AVAILABLE_MB)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warm(id: &str, build: &str) -> Warm {
        Warm {
            id: id.into(),
            pid: 1,
            build_id: build.into(),
        }
    }

    #[test]
    fn takes_only_the_current_build_and_gives_back_the_rest() {
        let pools = Pools::new([("base".to_string(), 3)]);
        assert!(pools.add("base", warm("a", "old"), false).is_none());
        assert!(pools.add("base", warm("b", "new"), false).is_none());
        assert!(pools.add("base", warm("c", "new"), false).is_none());
        // Full: a fourth is handed back.
        assert!(pools.add("base", warm("d", "new"), false).is_some());
        let (taken, stale) = pools.take("base", "new");
        assert_eq!(taken.unwrap().id, "b");
        assert_eq!(
            stale.iter().map(|w| w.id.as_str()).collect::<Vec<_>>(),
            ["a"]
        );
        assert_eq!(pools.views()[0].ready, 1);
        assert!(pools.take("other", "new").0.is_none());
    }

    #[test]
    fn a_refused_create_puts_its_sandbox_back_first() {
        let pools = Pools::new([("base".to_string(), 2)]);
        assert!(pools.add("base", warm("a", "x"), false).is_none());
        assert!(pools.add("base", warm("b", "x"), false).is_none());
        let (taken, _) = pools.take("base", "x");
        assert!(pools.put_back("base", taken.unwrap()).is_none());
        assert_eq!(pools.take("base", "x").0.unwrap().id, "a");
    }

    #[test]
    fn shrinking_returns_the_excess_and_zero_removes_the_pool() {
        let pools = Pools::new([("base".to_string(), 3)]);
        for id in ["a", "b", "c"] {
            assert!(pools.add("base", warm(id, "x"), false).is_none());
        }
        let (view, excess) = pools.set_size("base", 1);
        assert_eq!((view.size, view.ready, excess.len()), (1, 1, 2));
        let (view, excess) = pools.set_size("base", 0);
        assert_eq!((view.size, view.ready, excess.len()), (0, 0, 1));
        assert!(pools.next_to_fill(Instant::now()).is_none());
    }

    #[test]
    fn failures_back_off_and_success_clears_it() {
        let pools = Pools::new([("base".to_string(), 1)]);
        let now = Instant::now();
        assert_eq!(pools.next_to_fill(now).as_deref(), Some("base"));
        assert_eq!(pools.failed("base", now), FIRST_BACKOFF);
        assert!(pools.next_to_fill(now).is_none());
        assert_eq!(pools.failed("base", now), FIRST_BACKOFF * 2);
        assert_eq!(
            pools.next_to_fill(now + FIRST_BACKOFF * 2).as_deref(),
            Some("base")
        );
        for _ in 0..20 {
            assert!(pools.failed("base", now) <= MAX_BACKOFF);
        }
        pools.succeeded("base");
        assert_eq!(pools.next_to_fill(now).as_deref(), Some("base"));
    }

    #[test]
    fn a_closed_pool_hands_out_nothing_and_returns_everything() {
        let pools = Pools::new([("base".to_string(), 2)]);
        assert!(pools.add("base", warm("a", "x"), false).is_none());
        assert_eq!(pools.close().len(), 1);
        assert!(pools.take("base", "x").0.is_none());
        assert!(pools.add("base", warm("b", "x"), false).is_some());
        assert!(pools.next_to_fill(Instant::now()).is_none());
    }
}
