//! Sandbox rows: insert (with the tenant's quota checked in the same
//! statement), state changes, filters and pages, activity and deadlines.

use std::collections::BTreeMap;

use sqlx::{QueryBuilder, Sqlite};
use warren_api::server::SandboxState;
use warren_runtime::{Egress, NetworkPolicy, Resources};

use super::{query_err, Store, StoreError};
use crate::events::Change;

/// A sandbox's state as stored. `Destroying` is internal: the row is on its
/// way out (a restart finishes the job) and the API shows it as `destroyed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoredState {
    /// Being set up.
    Creating,
    /// Its agent answers.
    Running,
    /// Disk kept, nothing runs.
    Stopped,
    /// Frozen.
    Hibernated,
    /// Failed to start or died.
    Error,
    /// Being destroyed.
    Destroying,
}

impl StoredState {
    fn as_str(self) -> &'static str {
        match self {
            StoredState::Creating => "creating",
            StoredState::Running => "running",
            StoredState::Stopped => "stopped",
            StoredState::Hibernated => "hibernated",
            StoredState::Error => "error",
            StoredState::Destroying => "destroying",
        }
    }

    fn parse(s: &str) -> Option<StoredState> {
        Some(match s {
            "creating" => StoredState::Creating,
            "running" => StoredState::Running,
            "stopped" => StoredState::Stopped,
            "hibernated" => StoredState::Hibernated,
            "error" => StoredState::Error,
            "destroying" => StoredState::Destroying,
            _ => return None,
        })
    }

    /// The state as the API shows it.
    pub fn api(self) -> SandboxState {
        match self {
            StoredState::Creating => SandboxState::Creating,
            StoredState::Running => SandboxState::Running,
            StoredState::Stopped => SandboxState::Stopped,
            StoredState::Hibernated => SandboxState::Hibernated,
            StoredState::Error => SandboxState::Error,
            StoredState::Destroying => SandboxState::Destroyed,
        }
    }

    /// The stored state an API state filter selects.
    pub fn from_api(state: SandboxState) -> StoredState {
        match state {
            SandboxState::Creating => StoredState::Creating,
            SandboxState::Running => StoredState::Running,
            SandboxState::Stopped => StoredState::Stopped,
            SandboxState::Hibernated => StoredState::Hibernated,
            SandboxState::Error => StoredState::Error,
            SandboxState::Destroyed => StoredState::Destroying,
        }
    }
}

/// States that count against a tenant's quota: the sandbox holds compute.
pub(super) const QUOTA_STATES: &str = "('creating', 'running', 'hibernated')";

/// The condition "tenant `t` would go over a quota with one more sandbox of
/// `{memory}` MiB and `{cpus}` CPUs" (SQL expressions), for `WHERE NOT
/// EXISTS (SELECT 1 FROM tenants t WHERE t.id = … AND <this>)`. With
/// `new_disk` (the new sandbox's `disk_mb`, an SQL expression), the sandbox
/// is a new one and counts toward `max_total_sandboxes` and `max_disk_mb`
/// too (a stopped sandbox's disk is already counted).
fn over_quota(memory: &str, cpus: &str, new_disk: Option<&str>) -> String {
    let compute = |what: &str| {
        format!(
            "(SELECT COALESCE(SUM({what}), 0) FROM sandboxes x WHERE x.tenant_id = t.id \
             AND x.state IN {QUOTA_STATES})"
        )
    };
    let total = if new_disk.is_some() {
        " OR (t.max_total_sandboxes IS NOT NULL \
           AND (SELECT COUNT(*) FROM sandboxes x WHERE x.tenant_id = t.id) >= t.max_total_sandboxes)"
    } else {
        ""
    };
    let disk = new_disk.map_or(String::new(), |disk| {
        format!(
            " OR (t.max_disk_mb IS NOT NULL AND (SELECT COALESCE(SUM(COALESCE(x.disk_mb, 0)), 0) \
               FROM sandboxes x WHERE x.tenant_id = t.id) + COALESCE({disk}, 0) > t.max_disk_mb)"
        )
    });
    format!(
        "((t.max_sandboxes IS NOT NULL AND {count} >= t.max_sandboxes){total} \
          OR (t.max_memory_mb IS NOT NULL AND {mem} + {memory} > t.max_memory_mb) \
          OR (t.max_cpus IS NOT NULL AND {cpu} + {cpus} > t.max_cpus + 0.000001){disk})",
        count = compute("1"),
        mem = compute("x.memory_mb"),
        cpu = compute("x.cpus"),
    )
}

/// A sandbox row, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxRecord {
    /// Insertion order, for pagination.
    pub seq: i64,
    /// `sbx_…`.
    pub id: String,
    /// Owner; `None` for the admin key.
    pub tenant_id: Option<String>,
    /// Lifecycle state.
    pub state: StoredState,
    /// Template name.
    pub template: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms of the last API activity (as last flushed).
    pub last_active_at: i64,
    /// Idle timeout; 0 disables it.
    pub timeout_secs: u64,
    /// Lifetime, if any.
    pub ttl_secs: Option<u64>,
    /// Destruction deadline, unix ms.
    pub expires_at: Option<i64>,
    /// Default environment.
    pub envs: BTreeMap<String, String>,
    /// Metadata.
    pub metadata: BTreeMap<String, String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Working directory of the agent.
    pub workdir: String,
    /// Limits.
    pub resources: Resources,
    /// Most the disk may take beyond its template, MiB (`None`: no limit).
    pub disk_mb: Option<u64>,
    /// Egress policy.
    pub network: NetworkPolicy,
    /// Checkpoint after every run.
    pub auto_checkpoint: bool,
    /// Automatic checkpoints kept.
    pub auto_checkpoint_keep: u32,
    /// Wake on an agent call while hibernated.
    pub auto_wake: bool,
    /// The checkpoint the disk was made from.
    pub from_checkpoint: Option<String>,
    /// Host pid of the sandbox's init while running.
    pub pid: Option<i32>,
}

#[derive(sqlx::FromRow)]
struct Row {
    seq: i64,
    id: String,
    tenant_id: Option<String>,
    state: String,
    template: String,
    created_at: i64,
    last_active_at: i64,
    timeout_secs: i64,
    ttl_secs: Option<i64>,
    expires_at: Option<i64>,
    envs: String,
    metadata: String,
    labels: String,
    workdir: String,
    cpus: f64,
    memory_mb: i64,
    pids: i64,
    disk_mb: Option<i64>,
    egress: String,
    network_allow: String,
    auto_checkpoint: bool,
    auto_checkpoint_keep: i64,
    auto_wake: bool,
    from_checkpoint: Option<String>,
    pid: Option<i64>,
}

/// The reaper's question for idle sandboxes (see [`Store::idle_sandboxes`]).
pub(super) const IDLE_SANDBOXES: &str = "SELECT id, timeout_secs FROM sandboxes \
    INDEXED BY sandboxes_idle_deadline WHERE state = 'running' AND timeout_secs > 0 \
    AND last_active_at + timeout_secs * 1000 <= ?";

/// The reaper's question for sandboxes past their deadline (see
/// [`Store::expired_sandboxes`]); the partial index of deadlines answers it.
pub(super) const EXPIRED_SANDBOXES: &str = "SELECT s.id, COALESCE(e.auto_pause, 0) \
    FROM sandboxes s LEFT JOIN e2b_sandboxes e ON e.sandbox_id = s.id \
    WHERE s.expires_at IS NOT NULL AND s.expires_at <= ? AND s.state != 'creating'";

const COLUMNS: &str = "seq, id, tenant_id, state, template, created_at, last_active_at, \
    timeout_secs, ttl_secs, expires_at, envs, metadata, labels, workdir, cpus, memory_mb, pids, \
    disk_mb, egress, network_allow, auto_checkpoint, auto_checkpoint_keep, auto_wake, from_checkpoint, pid";

impl Row {
    fn parse(self) -> Result<SandboxRecord, StoreError> {
        let corrupt = |what, reason: String| StoreError::Corrupt {
            what,
            id: self.id.clone(),
            reason,
        };
        let map = |what, text: &str| -> Result<BTreeMap<String, String>, StoreError> {
            serde_json::from_str(text).map_err(|e| corrupt(what, e.to_string()))
        };
        let state = StoredState::parse(&self.state)
            .ok_or_else(|| corrupt("state", format!("unknown state {:?}", self.state)))?;
        let egress = match self.egress.as_str() {
            "allow" => Egress::Allow,
            "deny" => Egress::Deny,
            other => return Err(corrupt("egress", format!("unknown policy {other:?}"))),
        };
        let allow: Vec<String> = serde_json::from_str(&self.network_allow)
            .map_err(|e| corrupt("network_allow", e.to_string()))?;
        Ok(SandboxRecord {
            envs: map("envs", &self.envs)?,
            metadata: map("metadata", &self.metadata)?,
            labels: map("labels", &self.labels)?,
            seq: self.seq,
            state,
            network: NetworkPolicy { egress, allow },
            tenant_id: self.tenant_id,
            template: self.template,
            created_at: self.created_at,
            last_active_at: self.last_active_at,
            timeout_secs: self.timeout_secs.max(0) as u64,
            ttl_secs: self.ttl_secs.map(|t| t.max(0) as u64),
            expires_at: self.expires_at,
            workdir: self.workdir,
            resources: Resources {
                cpus: self.cpus,
                memory_mb: self.memory_mb.max(0) as u64,
                pids: self.pids.max(0) as u64,
            },
            disk_mb: self.disk_mb.map(|d| d.max(0) as u64),
            auto_checkpoint: self.auto_checkpoint,
            auto_checkpoint_keep: u32::try_from(self.auto_checkpoint_keep.max(1))
                .unwrap_or(u32::MAX),
            auto_wake: self.auto_wake,
            from_checkpoint: self.from_checkpoint,
            pid: self.pid.and_then(|p| i32::try_from(p).ok()),
            id: self.id,
        })
    }
}

fn parse_all(rows: Vec<Row>) -> Result<Vec<SandboxRecord>, StoreError> {
    rows.into_iter().map(Row::parse).collect()
}

fn json(map: &BTreeMap<String, String>) -> String {
    serde_json::to_string(map).expect("a map of strings serializes")
}

/// Filters and page of a sandbox list.
#[derive(Debug, Clone, Default)]
pub struct SandboxFilter {
    /// Only this tenant's sandboxes (`Some(None)`: only the admin's own).
    pub tenant: Option<Option<String>>,
    /// Only sandboxes in this state.
    pub state: Option<StoredState>,
    /// Every label must match.
    pub labels: Vec<(String, String)>,
    /// Every metadata pair must match.
    pub metadata: Vec<(String, String)>,
    /// Rows after this `seq`.
    pub after_seq: Option<i64>,
    /// Page size.
    pub limit: u32,
}

impl Store {
    /// Inserts a new sandbox in its `state` (`creating`; `running`, with
    /// its `pid`, for a pooled sandbox being handed over), unless its tenant
    /// is at a quota: `Ok(false)` then. The check and the insert are one
    /// statement, so concurrent creates cannot both slip under the quota.
    /// `seq` of `s` is ignored.
    pub async fn insert_sandbox(&self, s: &SandboxRecord) -> Result<bool, StoreError> {
        let inserted = self
            .batch
            .write(super::batch::Write::InsertSandbox(Box::new(s.clone())))
            .await?;
        Ok(inserted == 1)
    }

    /// [`Store::insert_sandbox`] that answers once the quota check and the
    /// insert have run, before they are committed: `Ok(None)` if the tenant
    /// is at a quota, else the commit to await ([`Inserting::committed`])
    /// before the sandbox is acknowledged. A create starts the sandbox
    /// meanwhile; if the server dies first, the sandbox has no row and
    /// reconciliation removes it as an orphan.
    pub async fn insert_sandbox_early(
        &self,
        s: &SandboxRecord,
    ) -> Result<Option<Inserting>, StoreError> {
        let running = self
            .batch
            .write_early(super::batch::Write::InsertSandbox(Box::new(s.clone())))
            .await?;
        Ok((running.rows == 1).then_some(Inserting {
            committed: running.committed,
        }))
    }

    /// Moves a stopped or failed sandbox to `running` ahead of starting it,
    /// unless that would put its tenant over quota: `Ok(false)` then.
    pub async fn reserve_start(&self, id: &str) -> Result<bool, StoreError> {
        let reserved = self
            .batch
            .write(super::batch::Write::ReserveStart(id.to_string()))
            .await?;
        Ok(reserved == 1)
    }

    /// One sandbox by id.
    pub async fn sandbox(&self, id: &str) -> Result<Option<SandboxRecord>, StoreError> {
        let row: Option<Row> =
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM sandboxes WHERE id = ?"))
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(query_err("get sandbox"))?;
        row.map(Row::parse).transpose()
    }

    /// Every sandbox (startup and reconciliation).
    pub async fn all_sandboxes(&self) -> Result<Vec<SandboxRecord>, StoreError> {
        let rows: Vec<Row> =
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM sandboxes ORDER BY seq"))
                .fetch_all(&self.pool)
                .await
                .map_err(query_err("list all sandboxes"))?;
        parse_all(rows)
    }

    /// A page of sandboxes matching `filter`, in creation order.
    pub async fn list_sandboxes(
        &self,
        filter: &SandboxFilter,
    ) -> Result<Vec<SandboxRecord>, StoreError> {
        let mut q: QueryBuilder<Sqlite> =
            QueryBuilder::new(format!("SELECT {COLUMNS} FROM sandboxes WHERE seq > "));
        q.push_bind(filter.after_seq.unwrap_or(0));
        match &filter.tenant {
            Some(Some(tenant)) => {
                q.push(" AND tenant_id = ").push_bind(tenant.clone());
            }
            Some(None) => {
                q.push(" AND tenant_id IS NULL");
            }
            None => {}
        }
        if let Some(state) = filter.state {
            q.push(" AND state = ").push_bind(state.as_str());
        }
        for (column, pairs) in [("labels", &filter.labels), ("metadata", &filter.metadata)] {
            for (key, value) in pairs {
                q.push(format!(
                    " AND EXISTS (SELECT 1 FROM json_each(sandboxes.{column}) WHERE key = "
                ))
                .push_bind(key.clone())
                .push(" AND value = ")
                .push_bind(value.clone())
                .push(")");
            }
        }
        q.push(" ORDER BY seq LIMIT ").push_bind(filter.limit);
        let rows: Vec<Row> = q
            .build_query_as()
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("list sandboxes"))?;
        parse_all(rows)
    }

    /// Sets the state (and the pid: `None` clears it).
    pub async fn set_state(
        &self,
        id: &str,
        state: StoredState,
        pid: Option<i32>,
    ) -> Result<(), StoreError> {
        self.batch
            .write(super::batch::Write::SetState {
                id: id.to_string(),
                state,
                pid,
            })
            .await?;
        Ok(())
    }

    /// Records the pid of a sandbox whose row already says `running` (a
    /// restart, a restore): the write is queued at once, ahead of any later
    /// write of the sandbox, but nobody waits for its commit. The pid is
    /// informational (reconciliation reads the live init's from the
    /// machine), so a server that dies before the commit loses nothing; a
    /// failed commit is logged.
    pub fn record_pid(&self, id: &str, pid: i32) {
        let queued = self.batch.queue(super::batch::Write::SetState {
            id: id.to_string(),
            state: StoredState::Running,
            pid: Some(pid),
        });
        let id = id.to_string();
        let failed = move |e: &dyn std::fmt::Display| {
            tracing::warn!(%id, error = %e, "recording a running sandbox's pid");
        };
        match queued {
            Ok(committed) => {
                tokio::spawn(async move {
                    match committed.await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => failed(&e),
                        Err(e) => failed(&e),
                    }
                });
            }
            Err(e) => failed(&e),
        }
    }

    /// Replaces the given fields.
    pub async fn patch_sandbox(
        &self,
        id: &str,
        metadata: Option<&BTreeMap<String, String>>,
        labels: Option<&BTreeMap<String, String>>,
        timeout_secs: Option<u64>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE sandboxes SET metadata = COALESCE(?, metadata), labels = COALESCE(?, labels), \
             timeout_secs = COALESCE(?, timeout_secs) WHERE id = ?",
        )
        .bind(metadata.map(json))
        .bind(labels.map(json))
        .bind(timeout_secs.map(|t| t as i64))
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(query_err("patch sandbox"))?;
        Ok(())
    }

    /// Pushes the ttl deadline `ms` further (from `now` if it has passed).
    pub async fn extend_sandbox(&self, id: &str, ms: i64, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE sandboxes SET expires_at = MAX(expires_at, ?1) + ?2 \
             WHERE id = ?3 AND expires_at IS NOT NULL",
        )
        .bind(now)
        .bind(ms)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(query_err("extend sandbox"))?;
        Ok(())
    }

    /// Records API activity, batched: one transaction for many sandboxes.
    /// A time never moves backwards.
    pub async fn touch_sandboxes(&self, touches: &[(String, i64)]) -> Result<(), StoreError> {
        if touches.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await.map_err(query_err("begin touch"))?;
        for (id, at) in touches {
            sqlx::query(
                "UPDATE sandboxes SET last_active_at = MAX(last_active_at, ?) WHERE id = ?",
            )
            .bind(at)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(query_err("touch sandbox"))?;
        }
        tx.commit().await.map_err(query_err("commit touch"))
    }

    /// Running sandboxes idle since before their timeout, with that timeout.
    /// Reads only those (the partial index of idle deadlines, named: without
    /// statistics SQLite would rather take the `state` index and visit every
    /// running sandbox).
    pub async fn idle_sandboxes(&self, now: i64) -> Result<Vec<(String, i64)>, StoreError> {
        sqlx::query_as(IDLE_SANDBOXES)
            .bind(now)
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("find idle sandboxes"))
    }

    /// Sandboxes past their ttl deadline, each with whether it is to be
    /// hibernated (E2B's `autoPause`) rather than destroyed.
    pub async fn expired_sandboxes(&self, now: i64) -> Result<Vec<(String, bool)>, StoreError> {
        sqlx::query_as(EXPIRED_SANDBOXES)
            .bind(now)
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("find expired sandboxes"))
    }

    /// Removes a sandbox's row.
    pub async fn delete_sandbox(&self, id: &str) -> Result<(), StoreError> {
        self.batch
            .write(super::batch::Write::DeleteSandbox(id.to_string()))
            .await?;
        Ok(())
    }

    /// How many sandboxes are in each stored state.
    pub async fn count_by_state(&self) -> Result<Vec<(StoredState, i64)>, StoreError> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT state, COUNT(*) FROM sandboxes GROUP BY state")
                .fetch_all(&self.pool)
                .await
                .map_err(query_err("count sandboxes"))?;
        Ok(rows
            .into_iter()
            .filter_map(|(state, n)| StoredState::parse(&state).map(|s| (s, n)))
            .collect())
    }
}

/// A sandbox's row inserted and on its way to disk
/// ([`Store::insert_sandbox_early`]).
pub struct Inserting {
    committed: tokio::sync::oneshot::Receiver<Result<u64, StoreError>>,
}

impl Inserting {
    /// Waits until the row is committed (durable), or its commit failed.
    pub async fn committed(self) -> Result<(), StoreError> {
        self.committed.await.map_err(|_| StoreError::Closed)??;
        Ok(())
    }
}

/// What a write of a sandbox row did: the rows it changed, and the state
/// change it made, if any, for [`crate::events`] once it is committed
/// (`at_ms` is set then).
pub(super) struct Applied {
    /// Rows changed.
    pub rows: u64,
    /// The sandbox's new state, when it is a new one.
    pub change: Option<Change>,
}

impl Applied {
    fn new(rows: u64, id: &str, tenant_id: Option<String>, state: SandboxState) -> Applied {
        Applied {
            rows,
            change: (rows > 0).then(|| Change {
                sandbox_id: id.to_string(),
                tenant_id,
                state,
                at_ms: 0,
            }),
        }
    }

    fn unchanged(rows: u64) -> Applied {
        Applied { rows, change: None }
    }
}

/// A sandbox's owner and stored state before a write.
async fn before(
    conn: &mut sqlx::SqliteConnection,
    id: &str,
) -> Result<Option<(Option<String>, String)>, StoreError> {
    sqlx::query_as("SELECT tenant_id, state FROM sandboxes WHERE id = ?")
        .bind(id)
        .fetch_optional(conn)
        .await
        .map_err(query_err("read sandbox state"))
}

/// Inserts `s` unless its tenant is at a quota (0 or 1 rows).
pub(super) async fn insert(
    conn: &mut sqlx::SqliteConnection,
    s: &SandboxRecord,
) -> Result<Applied, StoreError> {
    let sql = format!(
        "INSERT INTO sandboxes (id, tenant_id, state, template, created_at, last_active_at, \
         timeout_secs, ttl_secs, expires_at, envs, metadata, labels, workdir, cpus, memory_mb, \
         pids, disk_mb, egress, network_allow, auto_checkpoint, auto_checkpoint_keep, auto_wake, \
         from_checkpoint, pid) \
         SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? \
         WHERE NOT EXISTS (SELECT 1 FROM tenants t WHERE t.id = ? AND {})",
        over_quota("?", "?", Some("?"))
    );
    let result = sqlx::query(&sql)
        .bind(&s.id)
        .bind(&s.tenant_id)
        .bind(s.state.as_str())
        .bind(&s.template)
        .bind(s.created_at)
        .bind(s.last_active_at)
        .bind(s.timeout_secs as i64)
        .bind(s.ttl_secs.map(|t| t as i64))
        .bind(s.expires_at)
        .bind(json(&s.envs))
        .bind(json(&s.metadata))
        .bind(json(&s.labels))
        .bind(&s.workdir)
        .bind(s.resources.cpus)
        .bind(s.resources.memory_mb as i64)
        .bind(s.resources.pids as i64)
        .bind(s.disk_mb.map(|d| d as i64))
        .bind(super::previews::egress_str(s.network.egress))
        .bind(serde_json::to_string(&s.network.allow).expect("strings serialize"))
        .bind(s.auto_checkpoint)
        .bind(s.auto_checkpoint_keep)
        .bind(s.auto_wake)
        .bind(&s.from_checkpoint)
        .bind(s.pid)
        .bind(&s.tenant_id)
        .bind(s.resources.memory_mb as i64)
        .bind(s.resources.cpus)
        .bind(s.disk_mb.map(|d| d as i64))
        .execute(conn)
        .await
        .map_err(query_err("insert sandbox"))?;
    Ok(Applied::new(
        result.rows_affected(),
        &s.id,
        s.tenant_id.clone(),
        s.state.api(),
    ))
}

/// Moves a sandbox to `running` (pid cleared) unless its tenant would go
/// over quota (0 or 1 rows).
pub(super) async fn reserve_start(
    conn: &mut sqlx::SqliteConnection,
    id: &str,
) -> Result<Applied, StoreError> {
    let Some((tenant, previous)) = before(&mut *conn, id).await? else {
        return Ok(Applied::unchanged(0));
    };
    let sql = format!(
        "UPDATE sandboxes SET state = 'running', pid = NULL WHERE id = ?1 \
         AND NOT EXISTS (SELECT 1 FROM tenants t \
           WHERE t.id = sandboxes.tenant_id AND {})",
        over_quota("sandboxes.memory_mb", "sandboxes.cpus", None)
    );
    let result = sqlx::query(&sql)
        .bind(id)
        .execute(conn)
        .await
        .map_err(query_err("reserve sandbox start"))?;
    let rows = result.rows_affected();
    if previous == StoredState::Running.as_str() {
        return Ok(Applied::unchanged(rows));
    }
    Ok(Applied::new(rows, id, tenant, SandboxState::Running))
}

/// Sets a sandbox's state and pid. Only a new state is a change, and
/// `destroying` is none: `destroyed` comes with the row's delete.
pub(super) async fn update_state(
    conn: &mut sqlx::SqliteConnection,
    id: &str,
    state: StoredState,
    pid: Option<i32>,
) -> Result<Applied, StoreError> {
    let Some((tenant, previous)) = before(&mut *conn, id).await? else {
        return Ok(Applied::unchanged(0));
    };
    let result = sqlx::query("UPDATE sandboxes SET state = ?, pid = ? WHERE id = ?")
        .bind(state.as_str())
        .bind(pid)
        .bind(id)
        .execute(conn)
        .await
        .map_err(query_err("set sandbox state"))?;
    let rows = result.rows_affected();
    if previous == state.as_str() || state == StoredState::Destroying {
        return Ok(Applied::unchanged(rows));
    }
    Ok(Applied::new(rows, id, tenant, state.api()))
}

/// Deletes a sandbox's row: it is `destroyed`.
pub(super) async fn delete(
    conn: &mut sqlx::SqliteConnection,
    id: &str,
) -> Result<Applied, StoreError> {
    let owner: Option<(Option<String>,)> =
        sqlx::query_as("DELETE FROM sandboxes WHERE id = ? RETURNING tenant_id")
            .bind(id)
            .fetch_optional(conn)
            .await
            .map_err(query_err("delete sandbox"))?;
    Ok(match owner {
        Some((tenant,)) => Applied::new(1, id, tenant, SandboxState::Destroyed),
        None => Applied::unchanged(0),
    })
}
