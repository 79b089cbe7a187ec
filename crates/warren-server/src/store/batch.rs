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

use std::sync::Arc;

use sqlx::{SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use super::sandboxes::SandboxRecord;
use super::{StoreError, StoredState};

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
    /// A sandbox's row goes.
    DeleteSandbox(String),
}

impl Write {
    /// Runs the write's statement; the rows it changed.
    async fn execute(&self, conn: &mut SqliteConnection) -> Result<u64, StoreError> {
        match self {
            Write::InsertSandbox(record) => super::sandboxes::insert(conn, record).await,
            Write::SetState { id, state, pid } => {
                super::sandboxes::update_state(conn, id, *state, *pid).await
            }
            Write::DeleteSandbox(id) => super::sandboxes::delete(conn, id).await,
        }
    }
}

type Reply = oneshot::Sender<Result<u64, StoreError>>;

/// The queue of writes and the task that commits them; cheap to clone.
#[derive(Clone)]
pub(super) struct Batcher {
    queue: mpsc::UnboundedSender<(Write, Reply)>,
}

impl Batcher {
    /// Starts the committing task on `pool` (it ends when every
    /// [`Batcher`] is dropped).
    pub fn start(pool: SqlitePool) -> Batcher {
        let (queue, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(pool, rx));
        Batcher { queue }
    }

    /// Commits `write` (with whatever else is waiting); the rows it changed.
    pub async fn write(&self, write: Write) -> Result<u64, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send((write, reply))
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

async fn run(pool: SqlitePool, mut rx: mpsc::UnboundedReceiver<(Write, Reply)>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        commit(&pool, batch).await;
    }
}

/// Commits `batch` in one transaction and answers every write.
async fn commit(pool: &SqlitePool, batch: Vec<(Write, Reply)>) {
    let mut conn = match pool.acquire().await {
        Ok(conn) => conn,
        Err(e) => {
            let e = Arc::new(e);
            for (_, reply) in batch {
                let _ = reply.send(Err(StoreError::Batch(e.clone())));
            }
            return;
        }
    };
    if batch.len() == 1 {
        let (write, reply) = batch.into_iter().next().expect("one write");
        let _ = reply.send(write.execute(&mut conn).await);
        return;
    }
    let began = sqlx::query("BEGIN").execute(&mut *conn).await;
    if let Err(e) = began {
        let e = Arc::new(e);
        for (_, reply) in batch {
            let _ = reply.send(Err(StoreError::Batch(e.clone())));
        }
        return;
    }
    let mut results = Vec::with_capacity(batch.len());
    for (write, _) in &batch {
        results.push(write.execute(&mut conn).await);
    }
    match sqlx::query("COMMIT").execute(&mut *conn).await {
        Ok(_) => {
            for ((_, reply), result) in batch.into_iter().zip(results) {
                let _ = reply.send(result);
            }
        }
        Err(e) => {
            // A connection left inside the transaction is closed when it
            // goes back to the pool (see `Store::open`).
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            tracing::error!(error = %e, writes = batch.len(), "committing a batch of writes failed");
            let e = Arc::new(e);
            for (_, reply) in batch {
                let _ = reply.send(Err(StoreError::Batch(e.clone())));
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
        // Everything acknowledged is committed: a second connection sees it.
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
}
