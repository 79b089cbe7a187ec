//! Checkpoint and patch rows: insert, look up, pages in creation order, the
//! sets that restore (`discard_later`), retention and sandbox deletion act
//! on, and the ids the start-up sweep compares with the disks.

use std::collections::BTreeMap;

use sqlx::{QueryBuilder, Sqlite};

use super::{query_err, Store, StoreError};

/// A checkpoint row, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointRecord {
    /// Insertion order: creation order and page position.
    pub seq: i64,
    /// `ckpt_…`.
    pub id: String,
    /// The sandbox it was taken of.
    pub sandbox_id: String,
    /// Owner; `None` for the admin key.
    pub tenant_id: Option<String>,
    /// Name.
    pub name: String,
    /// Unix ms.
    pub created_at: i64,
    /// The command an automatic checkpoint follows.
    pub command: Option<String>,
    /// That command's exit code.
    pub exit_code: Option<i32>,
    /// Taken by `auto_checkpoint`.
    pub auto: bool,
    /// Came from an import.
    pub imported: bool,
    /// Template of the disk.
    pub template: String,
    /// Working directory sandboxes made from it get.
    pub workdir: String,
    /// Environment sandboxes made from it start with.
    pub envs: BTreeMap<String, String>,
}

#[derive(sqlx::FromRow)]
struct Row {
    seq: i64,
    id: String,
    sandbox_id: String,
    tenant_id: Option<String>,
    name: String,
    created_at: i64,
    command: Option<String>,
    exit_code: Option<i64>,
    auto: bool,
    imported: bool,
    template: String,
    workdir: String,
    envs: String,
}

const COLUMNS: &str = "seq, id, sandbox_id, tenant_id, name, created_at, command, exit_code, \
    auto, imported, template, workdir, envs";

impl Row {
    fn parse(self) -> Result<CheckpointRecord, StoreError> {
        let envs = serde_json::from_str(&self.envs).map_err(|e| StoreError::Corrupt {
            what: "checkpoint envs",
            id: self.id.clone(),
            reason: e.to_string(),
        })?;
        Ok(CheckpointRecord {
            seq: self.seq,
            id: self.id,
            sandbox_id: self.sandbox_id,
            tenant_id: self.tenant_id,
            name: self.name,
            created_at: self.created_at,
            command: self.command,
            exit_code: self.exit_code.and_then(|c| i32::try_from(c).ok()),
            auto: self.auto,
            imported: self.imported,
            template: self.template,
            workdir: self.workdir,
            envs,
        })
    }
}

fn parse_all(rows: Vec<Row>) -> Result<Vec<CheckpointRecord>, StoreError> {
    rows.into_iter().map(Row::parse).collect()
}

/// Filters and page of a checkpoint list.
#[derive(Debug, Clone, Default)]
pub struct CheckpointFilter {
    /// Only checkpoints of this sandbox.
    pub sandbox_id: Option<String>,
    /// Only this owner's checkpoints (`Some(None)`: only the admin's own).
    pub tenant: Option<Option<String>>,
    /// Rows after this `seq`.
    pub after_seq: Option<i64>,
    /// Page size.
    pub limit: u32,
}

/// A patch row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchRecord {
    /// Insertion order: run order.
    pub seq: i64,
    /// `pat_…`.
    pub id: String,
    /// Its checkpoint.
    pub checkpoint_id: String,
    /// Name, if given.
    pub name: Option<String>,
    /// The script.
    pub script: String,
    /// Time limit.
    pub timeout_ms: u64,
    /// Unix ms.
    pub created_at: i64,
}

#[derive(sqlx::FromRow)]
struct PatchRow {
    seq: i64,
    id: String,
    checkpoint_id: String,
    name: Option<String>,
    script: String,
    timeout_ms: i64,
    created_at: i64,
}

impl From<PatchRow> for PatchRecord {
    fn from(r: PatchRow) -> Self {
        PatchRecord {
            seq: r.seq,
            id: r.id,
            checkpoint_id: r.checkpoint_id,
            name: r.name,
            script: r.script,
            timeout_ms: r.timeout_ms.max(0) as u64,
            created_at: r.created_at,
        }
    }
}

impl Store {
    /// Records a checkpoint whose volume exists. `seq` is ignored.
    pub async fn insert_checkpoint(&self, c: &CheckpointRecord) -> Result<(), StoreError> {
        insert(&self.pool, c).await
    }

    /// Records that sandbox `id` runs (as `pid`, if its init exists yet;
    /// see [`Store::record_pid`] for after) and, in the same transaction,
    /// its fork's checkpoint `c`, whose volume exists: a fork of one answers
    /// once both are committed, so one commit rather than two in a row.
    pub async fn set_running_with_checkpoint(
        &self,
        id: &str,
        pid: Option<i32>,
        c: &CheckpointRecord,
    ) -> Result<(), StoreError> {
        self.batch
            .write(super::batch::Write::RunningWithCheckpoint {
                id: id.to_string(),
                pid,
                checkpoint: Box::new(c.clone()),
            })
            .await?;
        Ok(())
    }

    /// One checkpoint by id.
    pub async fn checkpoint(&self, id: &str) -> Result<Option<CheckpointRecord>, StoreError> {
        let row: Option<Row> =
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM checkpoints WHERE id = ?"))
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(query_err("get checkpoint"))?;
        row.map(Row::parse).transpose()
    }

    /// A page of checkpoints matching `filter`, in creation order.
    pub async fn list_checkpoints(
        &self,
        filter: &CheckpointFilter,
    ) -> Result<Vec<CheckpointRecord>, StoreError> {
        let mut q: QueryBuilder<Sqlite> =
            QueryBuilder::new(format!("SELECT {COLUMNS} FROM checkpoints WHERE seq > "));
        q.push_bind(filter.after_seq.unwrap_or(0));
        if let Some(sandbox) = &filter.sandbox_id {
            q.push(" AND sandbox_id = ").push_bind(sandbox.clone());
        }
        match &filter.tenant {
            Some(Some(tenant)) => {
                q.push(" AND tenant_id = ").push_bind(tenant.clone());
            }
            Some(None) => {
                q.push(" AND tenant_id IS NULL");
            }
            None => {}
        }
        q.push(" ORDER BY seq LIMIT ").push_bind(filter.limit);
        let rows: Vec<Row> = q
            .build_query_as()
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("list checkpoints"))?;
        parse_all(rows)
    }

    /// Removes a checkpoint's row (its patches go with it); whether it existed.
    pub async fn delete_checkpoint(&self, id: &str) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM checkpoints WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(query_err("delete checkpoint"))?;
        Ok(result.rows_affected() == 1)
    }

    /// Ids of the checkpoints of `sandbox_id` taken after the one at `seq`.
    pub async fn checkpoints_after(
        &self,
        sandbox_id: &str,
        seq: i64,
    ) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT id FROM checkpoints WHERE sandbox_id = ? AND seq > ? ORDER BY seq",
        )
        .bind(sandbox_id)
        .bind(seq)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("find later checkpoints"))
    }

    /// Ids of the automatic checkpoints of `sandbox_id` beyond the newest
    /// `keep`, oldest first.
    pub async fn auto_checkpoints_beyond(
        &self,
        sandbox_id: &str,
        keep: u32,
    ) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT id FROM checkpoints WHERE sandbox_id = ?1 AND auto AND seq NOT IN \
             (SELECT seq FROM checkpoints WHERE sandbox_id = ?1 AND auto ORDER BY seq DESC LIMIT ?2) \
             ORDER BY seq",
        )
        .bind(sandbox_id)
        .bind(keep)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("find checkpoints beyond retention"))
    }

    /// Ids of every automatic checkpoint of `sandbox_id`.
    pub async fn auto_checkpoints(&self, sandbox_id: &str) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar("SELECT id FROM checkpoints WHERE sandbox_id = ? AND auto ORDER BY seq")
            .bind(sandbox_id)
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("find automatic checkpoints"))
    }

    /// Ids of every checkpoint (the start-up sweep).
    pub async fn all_checkpoint_ids(&self) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar("SELECT id FROM checkpoints")
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("list checkpoint ids"))
    }

    /// Adds a patch at the end of its checkpoint's list. `seq` is ignored.
    pub async fn insert_patch(&self, p: &PatchRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO checkpoint_patches (id, checkpoint_id, name, script, timeout_ms, created_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&p.id)
        .bind(&p.checkpoint_id)
        .bind(&p.name)
        .bind(&p.script)
        .bind(p.timeout_ms as i64)
        .bind(p.created_at)
        .execute(&self.pool)
        .await
        .map_err(query_err("insert patch"))?;
        Ok(())
    }

    /// The patches of a checkpoint, in run order.
    pub async fn patches(&self, checkpoint_id: &str) -> Result<Vec<PatchRecord>, StoreError> {
        let rows: Vec<PatchRow> = sqlx::query_as(
            "SELECT seq, id, checkpoint_id, name, script, timeout_ms, created_at \
             FROM checkpoint_patches WHERE checkpoint_id = ? ORDER BY seq",
        )
        .bind(checkpoint_id)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("list patches"))?;
        Ok(rows.into_iter().map(PatchRecord::from).collect())
    }

    /// Removes a patch of a checkpoint; whether it existed.
    pub async fn delete_patch(&self, checkpoint_id: &str, id: &str) -> Result<bool, StoreError> {
        let result =
            sqlx::query("DELETE FROM checkpoint_patches WHERE checkpoint_id = ? AND id = ?")
                .bind(checkpoint_id)
                .bind(id)
                .execute(&self.pool)
                .await
                .map_err(query_err("delete patch"))?;
        Ok(result.rows_affected() == 1)
    }
}

/// Inserts checkpoint `c` (`seq` is ignored) with `exec`: the pool, or a
/// batch's transaction.
pub(super) async fn insert<'e>(
    exec: impl sqlx::Executor<'e, Database = Sqlite>,
    c: &CheckpointRecord,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO checkpoints (id, sandbox_id, tenant_id, name, created_at, command, \
         exit_code, auto, imported, template, workdir, envs) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(&c.id)
    .bind(&c.sandbox_id)
    .bind(&c.tenant_id)
    .bind(&c.name)
    .bind(c.created_at)
    .bind(&c.command)
    .bind(c.exit_code)
    .bind(c.auto)
    .bind(c.imported)
    .bind(&c.template)
    .bind(&c.workdir)
    .bind(serde_json::to_string(&c.envs).expect("a map of strings serializes"))
    .execute(exec)
    .await
    .map_err(query_err("insert checkpoint"))?;
    Ok(())
}
