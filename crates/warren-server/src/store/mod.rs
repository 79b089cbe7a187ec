//! The state of the control plane in SQLite (through sqlx): tenants, API keys,
//! sandboxes and their previews. The store is the only module that speaks SQL.
//!
//! Durability: a rollback journal (`PERSIST`, the server holding the file
//! exclusively) with `synchronous = FULL`, so a write is on disk when its
//! `await` returns; callers answer a request only after that. A full disk fails writes with "database or disk is
//! full" and loses nothing committed (see [`Store::open`] for why not WAL). The
//! schema lives in `migrations/` and is applied at open by `sqlx::migrate!`.

mod batch;
mod checkpoints;
mod e2b;
mod previews;
mod sandboxes;
mod tenants;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqliteLockingMode, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::SqlitePool;

use crate::events::Hub;

pub use checkpoints::{CheckpointFilter, CheckpointRecord, PatchRecord};
pub use e2b::E2bRecord;
pub use previews::PreviewRecord;
pub use sandboxes::{Inserting, SandboxFilter, SandboxRecord, StoredState};
pub use tenants::{KeyRecord, Quotas, TenantRecord, Usage};

/// Failures of the store. Every one is a server-side problem (500 at the
/// edge) except where a caller maps a specific case itself.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be opened or created.
    #[error("opening the database {path}: {source}")]
    Open {
        /// The database file.
        path: String,
        /// Cause.
        source: sqlx::Error,
    },
    /// Applying the migrations failed.
    #[error("migrating the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query failed; `op` names it.
    #[error("{op}: {source}")]
    Query {
        /// What the query was doing.
        op: &'static str,
        /// Cause.
        source: sqlx::Error,
    },
    /// Committing a batch of writes failed (every write of the batch gets
    /// this; none of them is committed).
    #[error("committing a batch of writes: {0}")]
    Batch(std::sync::Arc<sqlx::Error>),
    /// The store was closed.
    #[error("the database is closed")]
    Closed,
    /// A stored value does not parse (a JSON map or a state).
    #[error("corrupt {what} in row {id}: {reason}")]
    Corrupt {
        /// Which column.
        what: &'static str,
        /// The row's id.
        id: String,
        /// Why it does not parse.
        reason: String,
    },
}

/// Shorthand used by the query modules: wraps a sqlx error with its operation.
fn query_err(op: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Query { op, source }
}

/// A handle on the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
    /// Group commit of the writes of creates and deletes.
    batch: batch::Batcher,
    /// Where committed state changes are published.
    events: Hub,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.display().to_string(),
            source,
        };
        let options = SqliteConnectOptions::from_str("sqlite://")
            .map_err(open_err)?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Persist)
            .pragma("journal_size_limit", "1048576")
            .locking_mode(SqliteLockingMode::Exclusive)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        // A rollback journal, not WAL: WAL's index is a memory-mapped
        // `-shm` file whose pages a full file system (btrfs copies on
        // write) cannot back, and the kernel kills the server with SIGBUS;
        // with the index in the heap instead (exclusive locking), a kill -9
        // after a disk-full episode lost acknowledged commits. The journal
        // costs more fsyncs per commit and keeps every commit durable.
        //
        // The journal is kept (`PERSIST`: its header zeroed at each commit,
        // the file cut back to 1 MiB after a larger transaction) and held
        // open (exclusive locking: only this server opens the database):
        // a commit is four fsyncs of two files already allocated. Deleting
        // or truncating it at each commit, and reopening it at the next,
        // cost an ftruncate, block frees and a fsync of the state directory
        // as well: 0.3 to 0.8 ms more on every create, fork, restore and
        // delete here, and kernel time beside every sandbox's start. Another
        // process (the `sqlite3` shell) can read the database only while
        // the server is stopped.
        // One connection: statements queue in the pool instead of racing
        // for the file's locks, where a rollback journal can answer
        // SQLITE_BUSY at once (a deadlock the busy timeout cannot wait out).
        //
        // A COMMIT (or ROLLBACK) that fails on a full disk can leave the
        // connection inside its transaction; every later statement would
        // then run in it and be acknowledged without ever being committed.
        // Such a connection is closed when it comes back to the pool (SQLite
        // rolls its journal back, at once or at the next open).
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .after_release(|conn, _| {
                Box::pin(async move {
                    let in_transaction = in_transaction(conn).await?;
                    if in_transaction {
                        tracing::warn!(
                            "a database connection was left inside a failed transaction: closing it"
                        );
                    }
                    Ok(!in_transaction)
                })
            })
            .connect_with(options)
            .await
            .map_err(open_err)?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        let events = Hub::new();
        let batch = batch::Batcher::start(pool.clone(), events.clone());
        Ok(Store {
            pool,
            batch,
            events,
        })
    }

    /// The hub every committed sandbox state change is published to.
    pub fn events(&self) -> &Hub {
        &self.events
    }

    /// Closes every connection.
    pub async fn close(&self) {
        // A connection whose release was under way as the pool closed (a
        // batch answers its writers before it lets go of the connection)
        // can come back among the idle ones afterwards, its after-release
        // check being a task of its own; closing again closes it. The
        // database, held exclusively, is free once none is left.
        loop {
            self.pool.close().await;
            if self.pool.size() == 0 {
                return;
            }
            tokio::task::yield_now().await;
        }
    }
}

/// Whether `conn` is inside a transaction (SQLite's autocommit is off).
async fn in_transaction(conn: &mut sqlx::SqliteConnection) -> Result<bool, sqlx::Error> {
    let mut handle = conn.lock_handle().await?;
    // SAFETY: the handle is open and locked for us; sqlite3_get_autocommit
    // only reads the connection's state.
    Ok(unsafe { libsqlite3_sys::sqlite3_get_autocommit(handle.as_raw_handle().as_ptr()) } == 0)
}

/// Page cursors: opaque to clients, the `seq` of the last row of a page.
pub mod cursor {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    /// Encodes the `seq` of the last item of a page.
    pub fn encode(seq: i64) -> String {
        URL_SAFE_NO_PAD.encode(format!("seq:{seq}"))
    }

    /// Decodes a cursor from [`encode`]; `None` when it is not one.
    pub fn decode(cursor: &str) -> Option<i64> {
        let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        text.strip_prefix("seq:")?.parse().ok()
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn round_trips_and_rejects_garbage() {
            assert_eq!(super::decode(&super::encode(42)), Some(42));
            assert_eq!(super::decode("nope"), None);
            assert_eq!(super::decode(""), None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_connection_left_inside_a_transaction_never_swallows_a_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("warren.db");
        let store = Store::open(&path).await.unwrap();
        // What a COMMIT that failed on a full disk leaves behind.
        let mut conn = store.pool.acquire().await.unwrap();
        sqlx::query("BEGIN").execute(&mut *conn).await.unwrap();
        drop(conn);

        // A write acknowledged after that is committed: the database opened
        // again, as after a restart, holds it (closing rolls back whatever a
        // stale transaction would have swallowed).
        let quotas = tenants::Quotas::default();
        assert!(store.insert_tenant("ten_a", "a", quotas, 1).await.unwrap());
        store.close().await;
        let other = Store::open(&path).await.unwrap();
        let seen = other.tenant("ten_a").await.unwrap();
        assert!(
            seen.is_some(),
            "an acknowledged insert was left uncommitted in a stale transaction"
        );
        other.close().await;
    }

    /// The reaper's two questions, asked every second, read only the rows
    /// that answer them: the plan of each is a search of its partial index,
    /// never a scan of the sandboxes nor a walk of every running one.
    #[tokio::test]
    async fn the_reapers_questions_read_only_their_answers() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("warren.db")).await.unwrap();
        let insert = |id: &'static str, state: &'static str, timeout: i64, expires: Option<i64>| {
            sqlx::query(
                "INSERT INTO sandboxes (id, state, template, created_at, last_active_at, \
                 timeout_secs, expires_at, envs, metadata, labels, workdir, cpus, memory_mb, \
                 pids, egress, auto_checkpoint) \
                 VALUES (?, ?, 'base', 0, 1000, ?, ?, '{}', '{}', '{}', '/', 1, 512, 512, 'deny', 0)",
            )
            .bind(id)
            .bind(state)
            .bind(timeout)
            .bind(expires)
        };
        for (id, state, timeout, expires) in [
            ("sbx_idle", "running", 5, None),
            ("sbx_forever", "running", 0, None),
            ("sbx_stopped", "stopped", 5, None),
            ("sbx_due", "running", 0, Some(4_000)),
            ("sbx_later", "running", 0, Some(9_000)),
            ("sbx_new", "creating", 0, Some(1)),
        ] {
            insert(id, state, timeout, expires)
                .execute(&store.pool)
                .await
                .unwrap();
        }
        for (query, index) in [
            (sandboxes::IDLE_SANDBOXES, "sandboxes_idle_deadline"),
            (sandboxes::EXPIRED_SANDBOXES, "sandboxes_expires"),
        ] {
            let plan: Vec<(i64, i64, i64, String)> =
                sqlx::query_as(&format!("EXPLAIN QUERY PLAN {query}"))
                    .bind(0_i64)
                    .fetch_all(&store.pool)
                    .await
                    .unwrap();
            let first = &plan[0].3;
            assert!(
                first.starts_with("SEARCH") && first.contains(index),
                "{query}: {plan:?}"
            );
        }
        // Idle from 1000 + 5 s on; the others have no timeout or are not
        // running.
        assert!(store.idle_sandboxes(5_999).await.unwrap().is_empty());
        let idle = store.idle_sandboxes(6_000).await.unwrap();
        assert_eq!(idle, vec![("sbx_idle".to_string(), 5)]);
        let expired = store.expired_sandboxes(5_000).await.unwrap();
        assert_eq!(expired, vec![("sbx_due".to_string(), false)]);
        store.close().await;
    }
}
