//! Rows of the E2B-compatible routes (`e2b_sandboxes`), and the absolute
//! deadlines they set on sandboxes.

use super::{query_err, Store, StoreError};

/// What the E2B routes keep about a sandbox they created.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct E2bRecord {
    /// The sandbox (`sbx_…`).
    pub sandbox_id: String,
    /// At its deadline the sandbox is hibernated, not destroyed.
    pub auto_pause: bool,
    /// The time to live it was created with, in seconds.
    pub timeout_secs: i64,
    /// Its ports are reachable without the traffic access token.
    pub public_traffic: bool,
    /// The token of a sandbox whose ports are not public.
    pub traffic_token: Option<String>,
}

impl Store {
    /// Records (or replaces) a sandbox's E2B row.
    pub async fn upsert_e2b(&self, r: &E2bRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO e2b_sandboxes (sandbox_id, auto_pause, timeout_secs, public_traffic, \
             traffic_token) VALUES (?, ?, ?, ?, ?) ON CONFLICT (sandbox_id) DO UPDATE SET \
             auto_pause = excluded.auto_pause, timeout_secs = excluded.timeout_secs, \
             public_traffic = excluded.public_traffic, traffic_token = excluded.traffic_token",
        )
        .bind(&r.sandbox_id)
        .bind(r.auto_pause)
        .bind(r.timeout_secs)
        .bind(r.public_traffic)
        .bind(&r.traffic_token)
        .execute(&self.pool)
        .await
        .map_err(query_err("upsert e2b sandbox"))?;
        Ok(())
    }

    /// A sandbox's E2B row, if the E2B routes created it.
    pub async fn e2b(&self, sandbox_id: &str) -> Result<Option<E2bRecord>, StoreError> {
        sqlx::query_as(
            "SELECT sandbox_id, auto_pause, timeout_secs, public_traffic, traffic_token \
             FROM e2b_sandboxes WHERE sandbox_id = ?",
        )
        .bind(sandbox_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("get e2b sandbox"))
    }

    /// Every E2B row (the sandbox plane's cache is filled from this).
    pub async fn all_e2b(&self) -> Result<Vec<E2bRecord>, StoreError> {
        sqlx::query_as(
            "SELECT sandbox_id, auto_pause, timeout_secs, public_traffic, traffic_token \
             FROM e2b_sandboxes",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("list e2b sandboxes"))
    }

    /// Sets a sandbox's deadline (unix ms; `None`: none).
    pub async fn set_deadline(&self, id: &str, at: Option<i64>) -> Result<(), StoreError> {
        sqlx::query("UPDATE sandboxes SET expires_at = ? WHERE id = ?")
            .bind(at)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(query_err("set sandbox deadline"))?;
        Ok(())
    }
}
