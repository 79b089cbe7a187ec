//! Admin routes (the admin key only): tenants, their API keys, warm pools.

use reqwest::Method;
use warren_api::server::{
    ApiKeyCreated, ApiKeyInfo, ApiKeyList, CreateKeyRequest, CreateTenantRequest, KeyFormat,
    SetWarmPoolRequest, Tenant, TenantList, WarmPool, WarmPoolList,
};

use crate::error::Result;
use crate::Client;

impl Client {
    /// Creates a tenant (`max_sandboxes`: its quota, none when `None`).
    pub async fn create_tenant(&self, name: &str, max_sandboxes: Option<u32>) -> Result<Tenant> {
        let body = CreateTenantRequest {
            name: name.to_string(),
            max_sandboxes,
            max_total_sandboxes: None,
            max_memory_mb: None,
            max_cpus: None,
            max_disk_mb: None,
        };
        self.create_tenant_with(&body).await
    }

    /// Creates a tenant with every quota of `body` (see
    /// [`CreateTenantRequest`]).
    pub async fn create_tenant_with(&self, body: &CreateTenantRequest) -> Result<Tenant> {
        let http = self.http();
        http.json(http.post("/v1/admin/tenants").json(body)).await
    }

    /// Every tenant, following the pages.
    pub async fn tenants(&self) -> Result<Vec<Tenant>> {
        let http = self.http();
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut req = http.get("/v1/admin/tenants");
            if let Some(c) = &cursor {
                req = req.query(&[("cursor", c)]);
            }
            let page: TenantList = http.json(req).await?;
            all.extend(page.items);
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(all),
            }
        }
    }

    /// Makes an API key for a tenant; the secret is only in this answer.
    pub async fn create_key(&self, tenant_id: &str) -> Result<ApiKeyCreated> {
        self.create_key_in(tenant_id, KeyFormat::Warren).await
    }

    /// A new key for a tenant in `format` (`KeyFormat::E2b`: `e2b_` and hex,
    /// for E2B's SDKs); the secret is shown only here.
    pub async fn create_key_in(&self, tenant_id: &str, format: KeyFormat) -> Result<ApiKeyCreated> {
        let http = self.http();
        http.json(
            http.post(&format!("/v1/admin/tenants/{tenant_id}/keys"))
                .json(&CreateKeyRequest { format }),
        )
        .await
    }

    /// The keys of a tenant (without their secrets).
    pub async fn keys(&self, tenant_id: &str) -> Result<Vec<ApiKeyInfo>> {
        let http = self.http();
        let list: ApiKeyList = http
            .json(http.get(&format!("/v1/admin/tenants/{tenant_id}/keys")))
            .await?;
        Ok(list.items)
    }

    /// Revokes a key.
    pub async fn delete_key(&self, key_id: &str) -> Result<()> {
        let http = self.http();
        http.empty(http.delete(&format!("/v1/admin/keys/{key_id}")))
            .await
    }

    /// Every template's warm pool: its size and how many sandboxes are ready.
    pub async fn pools(&self) -> Result<Vec<WarmPool>> {
        let http = self.http();
        let list: WarmPoolList = http.json(http.get("/v1/admin/pools")).await?;
        Ok(list.items)
    }

    /// Keeps `size` sandboxes of `template` ready for creates (0: none).
    pub async fn set_pool(&self, template: &str, size: u32) -> Result<WarmPool> {
        let http = self.http();
        http.json(
            http.request(Method::PUT, &format!("/v1/admin/pools/{template}"))
                .json(&SetWarmPoolRequest { size }),
        )
        .await
    }
}
