//! Tenants and their API keys.

use super::{query_err, Store, StoreError};

/// A tenant row.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct TenantRecord {
    /// Insertion order, for pagination.
    pub seq: i64,
    /// `ten_…`.
    pub id: String,
    /// Unique name.
    pub name: String,
    /// Quota on creating + running sandboxes.
    pub max_sandboxes: Option<u32>,
    /// Quota on all sandboxes, stopped ones included.
    pub max_total_sandboxes: Option<u32>,
    /// Quota on memory (MiB) of sandboxes holding compute.
    pub max_memory_mb: Option<i64>,
    /// Quota on CPUs of sandboxes holding compute.
    pub max_cpus: Option<f64>,
    /// Quota on the disk (MiB, the sum of `disk_mb`) of all sandboxes.
    pub max_disk_mb: Option<i64>,
    /// Unix milliseconds.
    pub created_at: i64,
}

impl TenantRecord {
    /// The record's quotas.
    pub fn quotas(&self) -> Quotas {
        Quotas {
            max_sandboxes: self.max_sandboxes,
            max_total_sandboxes: self.max_total_sandboxes,
            max_memory_mb: self.max_memory_mb.map(|m| m.max(0) as u64),
            max_cpus: self.max_cpus,
            max_disk_mb: self.max_disk_mb.map(|m| m.max(0) as u64),
        }
    }
}

/// A tenant's quotas; `None` means no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Quotas {
    /// Sandboxes creating, running or hibernated.
    pub max_sandboxes: Option<u32>,
    /// Sandboxes in any state.
    pub max_total_sandboxes: Option<u32>,
    /// Memory (MiB) of sandboxes creating, running or hibernated.
    pub max_memory_mb: Option<u64>,
    /// CPUs of sandboxes creating, running or hibernated.
    pub max_cpus: Option<f64>,
    /// Disk limits (MiB, `disk_mb`) of sandboxes in any state.
    pub max_disk_mb: Option<u64>,
}

/// What a tenant uses, counted as its quotas count.
#[derive(Debug, Clone, Copy, Default, PartialEq, sqlx::FromRow)]
pub struct Usage {
    /// Sandboxes creating, running or hibernated.
    pub sandboxes: i64,
    /// Sandboxes in any state.
    pub total_sandboxes: i64,
    /// Their memory, MiB.
    pub memory_mb: i64,
    /// Their CPUs.
    pub cpus: f64,
    /// The disk limits (MiB) of all its sandboxes.
    pub disk_mb: i64,
}

/// An API key row (the hash is not read back).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct KeyRecord {
    /// `key_…`.
    pub id: String,
    /// The tenant it acts for.
    pub tenant_id: String,
    /// The first characters of the key.
    pub prefix: String,
    /// Unix milliseconds.
    pub created_at: i64,
}

const TENANT_COLUMNS: &str =
    "seq, id, name, max_sandboxes, max_total_sandboxes, max_memory_mb, max_cpus, max_disk_mb, \
     created_at";

impl Store {
    /// Inserts a tenant; `Ok(false)` when the name is taken.
    pub async fn insert_tenant(
        &self,
        id: &str,
        name: &str,
        quotas: Quotas,
        created_at: i64,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "INSERT INTO tenants (id, name, max_sandboxes, max_total_sandboxes, max_memory_mb, \
             max_cpus, max_disk_mb, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(name)
        .bind(quotas.max_sandboxes)
        .bind(quotas.max_total_sandboxes)
        .bind(quotas.max_memory_mb.map(|m| m as i64))
        .bind(quotas.max_cpus)
        .bind(quotas.max_disk_mb.map(|m| m.min(i64::MAX as u64) as i64))
        .bind(created_at)
        .execute(&self.pool)
        .await;
        match result {
            Ok(_) => Ok(true),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
            Err(e) => Err(query_err("insert tenant")(e)),
        }
    }

    /// What `tenant` uses now.
    pub async fn usage(&self, tenant: &str) -> Result<Usage, StoreError> {
        sqlx::query_as(&format!(
            "SELECT \
               COALESCE(SUM(state IN {q}), 0) AS sandboxes, \
               COUNT(*) AS total_sandboxes, \
               COALESCE(SUM(CASE WHEN state IN {q} THEN memory_mb ELSE 0 END), 0) AS memory_mb, \
               CAST(COALESCE(SUM(CASE WHEN state IN {q} THEN cpus ELSE 0.0 END), 0.0) AS REAL) \
                 AS cpus, \
               COALESCE(SUM(COALESCE(disk_mb, 0)), 0) AS disk_mb \
             FROM sandboxes WHERE tenant_id = ?",
            q = super::sandboxes::QUOTA_STATES
        ))
        .bind(tenant)
        .fetch_one(&self.pool)
        .await
        .map_err(query_err("tenant usage"))
    }

    /// One tenant by id.
    pub async fn tenant(&self, id: &str) -> Result<Option<TenantRecord>, StoreError> {
        sqlx::query_as(&format!(
            "SELECT {TENANT_COLUMNS} FROM tenants WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err("get tenant"))
    }

    /// Up to `limit` tenants after `after_seq`, in creation order.
    pub async fn list_tenants(
        &self,
        after_seq: Option<i64>,
        limit: u32,
    ) -> Result<Vec<TenantRecord>, StoreError> {
        sqlx::query_as(&format!(
            "SELECT {TENANT_COLUMNS} FROM tenants WHERE seq > ? ORDER BY seq LIMIT ?"
        ))
        .bind(after_seq.unwrap_or(0))
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("list tenants"))
    }

    /// Stores a key's hash for a tenant; `Ok(false)` when the tenant is gone.
    pub async fn insert_key(&self, key: &KeyRecord, hash: &[u8; 32]) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "INSERT INTO api_keys (id, tenant_id, hash, prefix, created_at) \
             SELECT ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM tenants WHERE id = ?)",
        )
        .bind(&key.id)
        .bind(&key.tenant_id)
        .bind(&hash[..])
        .bind(&key.prefix)
        .bind(key.created_at)
        .bind(&key.tenant_id)
        .execute(&self.pool)
        .await
        .map_err(query_err("insert api key"))?;
        Ok(result.rows_affected() == 1)
    }

    /// The key id and tenant of the key with this hash.
    pub async fn key_by_hash(&self, hash: &[u8; 32]) -> Result<Option<KeyRecord>, StoreError> {
        sqlx::query_as("SELECT id, tenant_id, prefix, created_at FROM api_keys WHERE hash = ?")
            .bind(&hash[..])
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err("find api key"))
    }

    /// Every key of a tenant, in creation order.
    pub async fn list_keys(&self, tenant_id: &str) -> Result<Vec<KeyRecord>, StoreError> {
        sqlx::query_as(
            "SELECT id, tenant_id, prefix, created_at FROM api_keys WHERE tenant_id = ? ORDER BY seq",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("list api keys"))
    }

    /// Deletes a key; `Ok(false)` when there was none.
    pub async fn delete_key(&self, id: &str) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM api_keys WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(query_err("delete api key"))?;
        Ok(result.rows_affected() == 1)
    }
}
