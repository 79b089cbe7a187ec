//! Preview URLs, and the network policy column of sandboxes.

use warren_runtime::NetworkPolicy;

use super::{query_err, Store, StoreError};

/// A preview row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PreviewRecord {
    /// `prv_…`.
    pub id: String,
    /// The sandbox.
    pub sandbox_id: String,
    /// The port inside it.
    pub port: u16,
    /// `public` or `token`.
    pub auth: String,
    /// The token of a `token` preview.
    pub token: Option<String>,
    /// The domain its URL is made under.
    pub domain: String,
    /// Unix milliseconds.
    pub created_at: i64,
}

const COLUMNS: &str = "id, sandbox_id, port, auth, token, domain, created_at";

impl Store {
    /// Inserts a preview, replacing the sandbox's preview of the same port.
    pub async fn upsert_preview(&self, p: &PreviewRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO previews (id, sandbox_id, port, auth, token, domain, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (sandbox_id, port) DO UPDATE SET id = excluded.id, auth = excluded.auth, \
             token = excluded.token, domain = excluded.domain, created_at = excluded.created_at",
        )
        .bind(&p.id)
        .bind(&p.sandbox_id)
        .bind(p.port)
        .bind(&p.auth)
        .bind(&p.token)
        .bind(&p.domain)
        .bind(p.created_at)
        .execute(&self.pool)
        .await
        .map_err(query_err("upsert preview"))?;
        Ok(())
    }

    /// Every preview (the proxy's cache is filled from this at start).
    pub async fn all_previews(&self) -> Result<Vec<PreviewRecord>, StoreError> {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM previews ORDER BY sandbox_id, port"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("list previews"))
    }

    /// Deletes the sandbox's preview of `port`; false if there was none.
    pub async fn delete_preview(&self, sandbox_id: &str, port: u16) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM previews WHERE sandbox_id = ? AND port = ?")
            .bind(sandbox_id)
            .bind(port)
            .execute(&self.pool)
            .await
            .map_err(query_err("delete preview"))?;
        Ok(result.rows_affected() == 1)
    }

    /// Replaces a sandbox's egress policy.
    pub async fn set_network(&self, id: &str, policy: &NetworkPolicy) -> Result<(), StoreError> {
        sqlx::query("UPDATE sandboxes SET egress = ?, network_allow = ? WHERE id = ?")
            .bind(egress_str(policy.egress))
            .bind(serde_json::to_string(&policy.allow).expect("strings serialize"))
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(query_err("set sandbox network"))?;
        Ok(())
    }
}

/// The `egress` column's value.
pub fn egress_str(egress: warren_runtime::Egress) -> &'static str {
    match egress {
        warren_runtime::Egress::Allow => "allow",
        warren_runtime::Egress::Deny => "deny",
    }
}
