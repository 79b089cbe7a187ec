//! Group commit for the writes every create and delete makes: writes that
//! arrive while another commit is going to disk are committed together, in
//! one transaction, so a burst of creates pays one commit's fsyncs per
//! batch rather than queueing behind one per write on the single connection
//! (see [`Store::open`](super::Store::open)).
//!
//! Each write is its own statement in the transaction and sees the ones
//! before it (two inserts of one tenant in a batch are checked against its
//! quota in turn); a statement that fails fails alone. A COMMIT that fails
//! fails every write of the batch: nothing in it is acknowledged. A write
//! that finds nobody waiting is committed at once, as before.
//!
//! Every write of a sandbox's state goes through here, so this is where
//! state changes are published to [`crate::events`]: once their batch is
//! committed, in commit order.

use std::sync::Arc;

use sqlx::{SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use super::sandboxes::{Applied, SandboxRecord};
use super::{CheckpointRecord, StoreError, StoredState};
use crate::events::Hub;
use crate::time::now_ms;

/// Most writes committed in one transaction.
const MAX_BATCH: usize = 256;

/// A write the batcher commits.
pub(super) enum Write {
    /// A new sandbox, unless its tenant is at a quota.
    InsertSandbox(Box<SandboxRecord>),
    /// A sandbox's state and pid.
    SetState {
        /// The sandbox.
        id: String,
        /// Its new state.
        state: StoredState,
        /// Host pid of its init, when it runs.
        pid: Option<i32>,
    },
    /// A stopped or failed sandbox becomes `running` ahead of its start,
    /// unless its tenant is at a quota.
    ReserveStart(String),
    /// A sandbox's row goes.
    DeleteSandbox(String),
    /// A fork's checkpoint, then its child's `running` state (and pid, if
    /// known): the state changes only if the checkpoint is recorded.
    RunningWithCheckpoint {
        /// The child.
        id: String,
        /// Host pid of its init, if it exists yet.
        pid: Option<i32>,
        /// The checkpoint its root was made with.
        checkpoint: Box<CheckpointRecord>,
    },
}

impl Write {
    /// Runs the write's statements.
    async fn execute(&self, conn: &mut SqliteConnection) -> Result<Applied, StoreError> {
        match self {
            Write::InsertSandbox(record) => super::sandboxes::insert(conn, record).await,
            Write::SetState { id, state, pid } => {
                super::sandboxes::update_state(conn, id, *state, *pid).await
            }
            Write::ReserveStart(id) => super::sandboxes::reserve_start(conn, id).await,
            Write::DeleteSandbox(id) => super::sandboxes::delete(conn, id).await,
            Write::RunningWithCheckpoint {
                id,
                pid,
                checkpoint,
            } => {
                // Both or neither: a savepoint, which is the transaction
                // itself when the write is committed alone.
                savepoint(conn, "SAVEPOINT running_with_checkpoint").await?;
                let applied = match super::checkpoints::insert(&mut *conn, checkpoint).await {
                    Ok(()) => {
                        super::sandboxes::update_state(conn, id, StoredState::Running, *pid).await
                    }
                    Err(e) => Err(e),
                };
                if applied.is_err() {
                    savepoint(conn, "ROLLBACK TO running_with_checkpoint").await?;
                }
                savepoint(conn, "RELEASE running_with_checkpoint").await?;
                applied
            }
        }
    }
}

/// Runs one savepoint statement.
async fn savepoint(conn: &mut SqliteConnection, sql: &'static str) -> Result<(), StoreError> {
    sqlx::query(sql)
        .execute(&mut *conn)
        .await
        .map(|_| ())
        .map_err(super::query_err("savepoint"))
}

/// Where a write's outcome goes: the rows it changed once its batch is
/// committed, and, if asked for, the same count as soon as its statement
/// ran (`None` if it failed), ahead of the commit.
struct Reply {
    ran: Option<oneshot::Sender<Option<u64>>>,
    committed: oneshot::Sender<Result<u64, StoreError>>,
}

impl Reply {
    fn send(self, result: Result<u64, StoreError>) {
        let _ = self.committed.send(result);
    }
}

/// A write whose statement has run and whose commit is under way.
pub(super) struct Running {
    /// Rows its statement changed.
    pub rows: u64,
    /// Answers once the write's batch is committed (or failed to).
    pub committed: oneshot::Receiver<Result<u64, StoreError>>,
}

/// The queue of writes and the task that commits them; cheap to clone.
#[derive(Clone)]
pub(super) struct Batcher {
    queue: mpsc::UnboundedSender<(Write, Reply)>,
}

impl Batcher {
    /// Starts the committing task on `pool`, publishing committed state
    /// changes to `events` (it ends when every [`Batcher`] is dropped).
    pub fn start(pool: SqlitePool, events: Hub) -> Batcher {
        let (queue, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(pool, events, rx));
        Batcher { queue }
    }

    /// Commits `write` (with whatever else is waiting); the rows it changed.
    pub async fn write(&self, write: Write) -> Result<u64, StoreError> {
        self.queue(write)?.await.map_err(|_| StoreError::Closed)?
    }

    /// Queues `write` now, in order with every write queued before and
    /// after it, and answers once its batch is committed; the caller may
    /// go on without waiting for that.
    pub fn queue(
        &self,
        write: Write,
    ) -> Result<oneshot::Receiver<Result<u64, StoreError>>, StoreError> {
        let (committed, answer) = oneshot::channel();
        let reply = Reply {
            ran: None,
            committed,
        };
        self.queue
            .send((write, reply))
            .map_err(|_| StoreError::Closed)?;
        Ok(answer)
    }

    /// Runs `write` and answers as soon as its statement has run, before
    /// its batch is committed: the caller starts work that depends on the
    /// outcome (a quota check) while the commit goes to disk, and awaits
    /// [`Running::committed`] before acknowledging anything.
    pub async fn write_early(&self, write: Write) -> Result<Running, StoreError> {
        let (ran_tx, ran) = oneshot::channel();
        let (committed, answer) = oneshot::channel();
        let reply = Reply {
            ran: Some(ran_tx),
            committed,
        };
        self.queue
            .send((write, reply))
            .map_err(|_| StoreError::Closed)?;
        match ran.await {
            Ok(Some(rows)) => Ok(Running {
                rows,
                committed: answer,
            }),
            // The statement failed (or the batcher is gone): its error is
            // the commit's answer.
            Ok(None) | Err(_) => match answer.await {
                Ok(Err(e)) => Err(e),
                Ok(Ok(_)) | Err(_) => Err(StoreError::Closed),
            },
        }
    }
}

async fn run(pool: SqlitePool, events: Hub, mut rx: mpsc::UnboundedReceiver<(Write, Reply)>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        commit(&pool, &events, batch).await;
    }
}

/// Answers a committed write and publishes the state change it made.
fn answer(events: &Hub, reply: Reply, result: Result<Applied, StoreError>) {
    let result = result.map(|applied| {
        if let Some(mut change) = applied.change {
            change.at_ms = now_ms();
            events.publish(change);
        }
        applied.rows
    });
    reply.send(result);
}

/// Commits `batch` in one transaction and answers every write.
async fn commit(pool: &SqlitePool, events: &Hub, mut batch: Vec<(Write, Reply)>) {
    let mut conn = match pool.acquire().await {
        Ok(conn) => conn,
        Err(e) => {
            let e = Arc::new(e);
            for (_, reply) in batch {
                reply.send(Err(StoreError::Batch(e.clone())));
            }
            return;
        }
    };
    if batch.len() == 1 && batch[0].1.ran.is_none() {
        let (write, reply) = batch.into_iter().next().expect("one write");
        // Outside a transaction: the statement is committed as it returns.
        answer(events, reply, write.execute(&mut conn).await);
        return;
    }
    let began = sqlx::query("BEGIN").execute(&mut *conn).await;
    if let Err(e) = began {
        let e = Arc::new(e);
        for (_, reply) in batch {
            reply.send(Err(StoreError::Batch(e.clone())));
        }
        return;
    }
    let mut results = Vec::with_capacity(batch.len());
    for (write, reply) in &mut batch {
        let result = write.execute(&mut conn).await;
        if let Some(ran) = reply.ran.take() {
            let _ = ran.send(result.as_ref().ok().map(|applied| applied.rows));
        }
        results.push(result);
    }
    match sqlx::query("COMMIT").execute(&mut *conn).await {
        Ok(_) => {
            for ((_, reply), result) in batch.into_iter().zip(results) {
                answer(events, reply, result);
            }
        }
        Err(e) => {
            // A connection left inside the transaction is closed when it
            // goes back to the pool (see `Store::open`).
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            tracing::error!(error = %e, writes = batch.len(), "committing a batch of writes failed");
            let e = Arc::new(e);
            for (_, reply) in batch {
                reply.send(Err(StoreError::Batch(e.clone())));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::{Quotas, SandboxRecord, Store, StoredState};

    fn record(id: &str, tenant: &str) -> SandboxRecord {
        SandboxRecord {
            seq: 0,
            id: id.to_string(),
            tenant_id: Some(tenant.to_string()),
            state: StoredState::Creating,
            template: "base".into(),
            created_at: 1,
            last_active_at: 1,
            timeout_secs: 0,
            ttl_secs: None,
            expires_at: None,
            envs: BTreeMap::new(),
            metadata: BTreeMap::new(),
            labels: BTreeMap::new(),
            workdir: "/".into(),
            resources: warren_runtime::Resources::default(),
            disk_mb: None,
            network: warren_runtime::NetworkPolicy::deny(),
            auto_checkpoint: false,
            auto_checkpoint_keep: 1,
            auto_wake: false,
            from_checkpoint: None,
            pid: None,
        }
    }

    #[tokio::test]
    async fn each_committed_state_change_is_published_once_in_order() {
        use std::collections::HashSet;

        use warren_api::server::SandboxState as S;

        use crate::auth::Caller;
        use crate::events::Item;

        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("warren.db")).await.unwrap();
        let quotas = Quotas {
            max_sandboxes: Some(1),
            ..Quotas::default()
        };
        assert!(store.insert_tenant("ten_e", "e", quotas, 1).await.unwrap());
        let tenant = Caller::Tenant("ten_e".into());
        let mut sub = store.events().subscribe(&tenant, HashSet::new()).unwrap();
        let id = "sbx_e";
        assert!(store.insert_sandbox(&record(id, "ten_e")).await.unwrap());
        // Over quota: nothing committed, nothing published.
        assert!(!store
            .insert_sandbox(&record("sbx_f", "ten_e"))
            .await
            .unwrap());
        store
            .set_state(id, StoredState::Running, Some(7))
            .await
            .unwrap();
        // A pid recorded again is no change.
        store
            .set_state(id, StoredState::Running, Some(8))
            .await
            .unwrap();
        store
            .set_state(id, StoredState::Stopped, None)
            .await
            .unwrap();
        assert!(store.reserve_start(id).await.unwrap());
        store
            .set_state(id, StoredState::Running, Some(9))
            .await
            .unwrap();
        // `destroying` is internal; `destroyed` comes with the delete.
        store
            .set_state(id, StoredState::Destroying, None)
            .await
            .unwrap();
        store.delete_sandbox(id).await.unwrap();
        store.delete_sandbox(id).await.unwrap();
        store
            .set_state("sbx_missing", StoredState::Error, None)
            .await
            .unwrap();
        let mut seen = Vec::new();
        for _ in 0..5 {
            match sub.next().await {
                Some(Item::Change(c)) => {
                    assert_eq!(
                        (c.sandbox_id.as_str(), c.tenant_id.as_deref()),
                        (id, Some("ten_e"))
                    );
                    assert!(c.at_ms > 0);
                    seen.push(c.state);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(
            seen,
            [
                S::Creating,
                S::Running,
                S::Stopped,
                S::Running,
                S::Destroyed
            ]
        );
        // Nothing more was published.
        store.events().close();
        assert_eq!(sub.next().await, None);
        store.close().await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn concurrent_writes_commit_together_and_keep_quotas_exact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("warren.db");
        let store = Store::open(&path).await.unwrap();
        let quotas = Quotas {
            max_sandboxes: Some(25),
            ..Quotas::default()
        };
        assert!(store.insert_tenant("ten_q", "q", quotas, 1).await.unwrap());
        // 100 inserts at once, for a tenant allowed 25: exactly 25 go in.
        let inserts = (0..100).map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .insert_sandbox(&record(&format!("sbx_{i:03}"), "ten_q"))
                    .await
            })
        });
        let mut inserted = Vec::new();
        for (i, task) in inserts.enumerate() {
            if task.await.unwrap().unwrap() {
                inserted.push(format!("sbx_{i:03}"));
            }
        }
        assert_eq!(inserted.len(), 25);
        // State changes and deletes at once; a write to a missing row fails
        // nothing else.
        let writes = inserted.iter().enumerate().map(|(n, id)| {
            let store = store.clone();
            let id = id.clone();
            tokio::spawn(async move {
                if n % 2 == 0 {
                    store.set_state(&id, StoredState::Running, Some(7)).await
                } else {
                    store.delete_sandbox(&id).await
                }
            })
        });
        for task in writes {
            task.await.unwrap().unwrap();
        }
        store
            .set_state("sbx_missing", StoredState::Running, None)
            .await
            .unwrap();
        // Everything acknowledged is committed: the database opened again
        // (the server holds it exclusively) holds it.
        store.close().await;
        let other = Store::open(&path).await.unwrap();
        for (n, id) in inserted.iter().enumerate() {
            let row = other.sandbox(id).await.unwrap();
            if n % 2 == 0 {
                let row = row.expect("an acknowledged insert");
                assert_eq!((row.state, row.pid), (StoredState::Running, Some(7)));
            } else {
                assert!(row.is_none(), "an acknowledged delete of {id}");
            }
        }
        other.close().await;
        store.close().await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_pid_recorded_without_waiting_lands_before_later_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("warren.db");
        let store = Store::open(&path).await.unwrap();
        for (n, id) in ["sbx_p", "sbx_q"].into_iter().enumerate() {
            let mut row = record(id, "ten_p");
            row.tenant_id = None;
            assert!(store.insert_sandbox(&row).await.unwrap(), "{n}");
            store
                .set_state(id, StoredState::Running, Some(1))
                .await
                .unwrap();
        }
        // Queued, not awaited: a write made right after (a stop taking the
        // sandbox's lock once the restore answered) still comes after it.
        store.record_pid("sbx_p", 41);
        store
            .set_state("sbx_p", StoredState::Stopped, None)
            .await
            .unwrap();
        // Alone, it reaches the disk all the same: a later write's commit
        // means every earlier one's.
        store.record_pid("sbx_q", 42);
        store
            .set_state("sbx_other", StoredState::Running, None)
            .await
            .unwrap();
        store.close().await;
        let other = Store::open(&path).await.unwrap();
        let p = other.sandbox("sbx_p").await.unwrap().unwrap();
        assert_eq!((p.state, p.pid), (StoredState::Stopped, None));
        let q = other.sandbox("sbx_q").await.unwrap().unwrap();
        assert_eq!((q.state, q.pid), (StoredState::Running, Some(42)));
        other.close().await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_early_insert_answers_its_quota_check_then_commits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("warren.db");
        let store = Store::open(&path).await.unwrap();
        let quotas = Quotas {
            max_sandboxes: Some(2),
            ..Quotas::default()
        };
        assert!(store.insert_tenant("ten_w", "w", quotas, 1).await.unwrap());
        // Early inserts of one tenant at once, with plain writes in between:
        // exactly the quota's worth is accepted, and each accepted one
        // commits.
        let inserts = (0..6).map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let id = format!("sbx_w{i}");
                if i % 3 == 2 {
                    store
                        .set_state("sbx_none", StoredState::Running, None)
                        .await?;
                    return Ok(None);
                }
                match store.insert_sandbox_early(&record(&id, "ten_w")).await? {
                    Some(inserting) => {
                        inserting.committed().await?;
                        Ok(Some(id))
                    }
                    None => Ok::<_, super::super::StoreError>(None),
                }
            })
        });
        let mut accepted = Vec::new();
        for task in inserts {
            if let Some(id) = task.await.unwrap().unwrap() {
                accepted.push(id);
            }
        }
        assert_eq!(accepted.len(), 2, "{accepted:?}");
        // A refused one wrote nothing; an accepted one is durable: the
        // database opened again holds exactly the accepted rows.
        store.close().await;
        let other = Store::open(&path).await.unwrap();
        for i in 0..6 {
            let id = format!("sbx_w{i}");
            assert_eq!(
                other.sandbox(&id).await.unwrap().is_some(),
                accepted.contains(&id),
                "{id}"
            );
        }
        other.close().await;
        let store = Store::open(&path).await.unwrap();
        // A statement that fails answers with its error, not a count: the
        // same id twice breaks the primary key.
        assert!(store
            .insert_tenant("ten_d", "d", Quotas::default(), 1)
            .await
            .unwrap());
        let first = store.insert_sandbox_early(&record("sbx_d", "ten_d")).await;
        first.unwrap().expect("no quota").committed().await.unwrap();
        let again = store.insert_sandbox_early(&record("sbx_d", "ten_d")).await;
        assert!(again.is_err(), "a duplicate id is an error");
        store.close().await;
    }

    #[tokio::test]
    async fn a_fork_s_checkpoint_and_its_child_s_state_commit_together_or_not_at_all() {
        use super::super::CheckpointRecord;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("warren.db");
        let store = Store::open(&path).await.unwrap();
        let checkpoint = CheckpointRecord {
            seq: 0,
            id: "ckpt_f".into(),
            sandbox_id: "sbx_src".into(),
            tenant_id: None,
            name: "fork".into(),
            created_at: 1,
            command: None,
            exit_code: None,
            auto: false,
            imported: false,
            template: "base".into(),
            workdir: "/".into(),
            envs: BTreeMap::new(),
        };
        let mut child = record("sbx_child", "ten_x");
        child.tenant_id = None;
        let mut other = record("sbx_other", "ten_x");
        other.tenant_id = None;
        assert!(store.insert_sandbox(&child).await.unwrap());
        assert!(store.insert_sandbox(&other).await.unwrap());
        store
            .set_running_with_checkpoint("sbx_child", Some(41), &checkpoint)
            .await
            .unwrap();
        // The same checkpoint again fails its insert: the other child's
        // state does not change either.
        assert!(store
            .set_running_with_checkpoint("sbx_other", None, &checkpoint)
            .await
            .is_err());
        store.close().await;
        // As a restarted server finds them.
        let store = Store::open(&path).await.unwrap();
        let child = store.sandbox("sbx_child").await.unwrap().unwrap();
        assert_eq!((child.state, child.pid), (StoredState::Running, Some(41)));
        assert_eq!(
            store
                .checkpoint("ckpt_f")
                .await
                .unwrap()
                .unwrap()
                .sandbox_id,
            "sbx_src"
        );
        let other = store.sandbox("sbx_other").await.unwrap().unwrap();
        assert_eq!((other.state, other.pid), (StoredState::Creating, None));
    }
}
