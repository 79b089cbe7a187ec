//! Tenants and their API keys (admin routes).

use warren_api::ids::{self, IdKind};
use warren_api::server::{ApiKeyCreated, ApiKeyInfo, ApiKeyList, KeyFormat, Tenant, TenantList};
use warren_api::{ErrorCode, Problem};

use crate::auth::{keys, Auth};
use crate::paging::Page;
use crate::store::{KeyRecord, Quotas, Store, StoreError, TenantRecord};
use crate::time::{now_ms, rfc3339};

/// Longest tenant name.
pub const MAX_NAME_LEN: usize = 64;

/// Failures of tenant and key operations.
#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    /// The name is empty, too long or has control characters.
    #[error("tenant name must be 1 to {MAX_NAME_LEN} printable characters")]
    InvalidName,
    /// A quota is not a valid number.
    #[error("{0}")]
    InvalidQuota(&'static str),
    /// Another tenant has this name.
    #[error("a tenant named {0:?} already exists")]
    NameTaken(String),
    /// No tenant with this id.
    #[error("no tenant with id {0}")]
    TenantNotFound(String),
    /// No key with this id.
    #[error("no API key with id {0}")]
    KeyNotFound(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<TenantError> for Problem {
    fn from(err: TenantError) -> Problem {
        let code = match &err {
            TenantError::InvalidName | TenantError::InvalidQuota(_) => ErrorCode::InvalidRequest,
            TenantError::NameTaken(_) => ErrorCode::AlreadyExists,
            TenantError::TenantNotFound(_) => ErrorCode::TenantNotFound,
            TenantError::KeyNotFound(_) => ErrorCode::KeyNotFound,
            TenantError::Store(_) => {
                tracing::error!(error = %err, "tenant operation failed");
                return Problem::new(
                    ErrorCode::Internal,
                    "the server failed to complete the operation",
                );
            }
        };
        Problem::new(code, err.to_string())
    }
}

impl axum::response::IntoResponse for TenantError {
    fn into_response(self) -> axum::response::Response {
        Problem::from(self).into_response()
    }
}

fn tenant(record: TenantRecord) -> Tenant {
    Tenant {
        id: record.id,
        name: record.name,
        max_sandboxes: record.max_sandboxes,
        max_total_sandboxes: record.max_total_sandboxes,
        max_memory_mb: record.max_memory_mb.map(|m| m.max(0) as u64),
        max_cpus: record.max_cpus,
        max_disk_mb: record.max_disk_mb.map(|m| m.max(0) as u64),
        created_at: rfc3339(record.created_at),
    }
}

fn key_info(record: KeyRecord) -> ApiKeyInfo {
    ApiKeyInfo {
        id: record.id,
        tenant_id: record.tenant_id,
        prefix: record.prefix,
        created_at: rfc3339(record.created_at),
    }
}

/// Tenant and key management; cheap to clone.
#[derive(Clone)]
pub struct Tenants {
    store: Store,
    auth: Auth,
}

impl Tenants {
    /// Over the given store; revocations are forwarded to `auth`'s cache.
    pub fn new(store: Store, auth: Auth) -> Self {
        Tenants { store, auth }
    }

    /// Creates a tenant.
    pub async fn create(&self, name: &str, quotas: Quotas) -> Result<Tenant, TenantError> {
        let name = name.trim();
        if name.is_empty()
            || name.chars().count() > MAX_NAME_LEN
            || name.chars().any(char::is_control)
        {
            return Err(TenantError::InvalidName);
        }
        let record = TenantRecord {
            seq: 0,
            id: ids::new_id(IdKind::Tenant),
            name: name.to_string(),
            max_sandboxes: quotas.max_sandboxes,
            max_total_sandboxes: quotas.max_total_sandboxes,
            max_memory_mb: quotas.max_memory_mb.map(|m| m.min(i64::MAX as u64) as i64),
            max_cpus: quotas.max_cpus,
            max_disk_mb: quotas.max_disk_mb.map(|m| m.min(i64::MAX as u64) as i64),
            created_at: now_ms(),
        };
        if quotas.max_cpus.is_some_and(|c| !c.is_finite() || c < 0.0) {
            return Err(TenantError::InvalidQuota(
                "max_cpus must be a number of CPUs, 0 or more",
            ));
        }
        if !self
            .store
            .insert_tenant(&record.id, &record.name, quotas, record.created_at)
            .await?
        {
            return Err(TenantError::NameTaken(record.name));
        }
        Ok(tenant(record))
    }

    /// One tenant.
    pub async fn get(&self, id: &str) -> Result<Tenant, TenantError> {
        self.record(id).await.map(tenant)
    }

    async fn record(&self, id: &str) -> Result<TenantRecord, TenantError> {
        if !ids::is_valid(IdKind::Tenant, id) {
            return Err(TenantError::TenantNotFound(id.to_string()));
        }
        self.store
            .tenant(id)
            .await?
            .ok_or_else(|| TenantError::TenantNotFound(id.to_string()))
    }

    /// A page of tenants.
    pub async fn list(&self, page: Page) -> Result<TenantList, TenantError> {
        let rows = self
            .store
            .list_tenants(page.after_seq, page.fetch())
            .await?;
        let (rows, next_cursor) = page.finish(rows, |r| r.seq);
        Ok(TenantList {
            items: rows.into_iter().map(tenant).collect(),
            next_cursor,
        })
    }

    /// A new key for a tenant; the secret is returned only here.
    pub async fn create_key(
        &self,
        tenant_id: &str,
        format: KeyFormat,
    ) -> Result<ApiKeyCreated, TenantError> {
        self.record(tenant_id).await?;
        let key = match format {
            KeyFormat::Warren => keys::generate(keys::TENANT_KEY_PREFIX),
            KeyFormat::E2b => keys::generate_e2b(),
        };
        let record = KeyRecord {
            id: ids::new_id(IdKind::Key),
            tenant_id: tenant_id.to_string(),
            prefix: keys::display_prefix(&key),
            created_at: now_ms(),
        };
        if !self.store.insert_key(&record, &keys::hash(&key)).await? {
            return Err(TenantError::TenantNotFound(tenant_id.to_string()));
        }
        Ok(ApiKeyCreated {
            id: record.id,
            key,
            tenant_id: record.tenant_id,
            created_at: rfc3339(record.created_at),
        })
    }

    /// A tenant's keys, without their secrets.
    pub async fn list_keys(&self, tenant_id: &str) -> Result<ApiKeyList, TenantError> {
        self.record(tenant_id).await?;
        let rows = self.store.list_keys(tenant_id).await?;
        Ok(ApiKeyList {
            items: rows.into_iter().map(key_info).collect(),
        })
    }

    /// Revokes a key: requests with it answer 401 from now on.
    pub async fn revoke_key(&self, key_id: &str) -> Result<(), TenantError> {
        if !ids::is_valid(IdKind::Key, key_id) || !self.store.delete_key(key_id).await? {
            return Err(TenantError::KeyNotFound(key_id.to_string()));
        }
        self.auth.forget_key(key_id);
        Ok(())
    }
}
