//! Reads and small updates: get, list, patch, extend.

use warren_api::server::{PatchSandboxRequest, Sandbox, SandboxList, SandboxState};

use super::{ensure_settled, validate, view, SandboxError, Sandboxes};
use crate::auth::Caller;
use crate::paging::Page;
use crate::store::{SandboxFilter, StoredState};
use crate::time::now_ms;

/// Filters of a list, as parsed from its query string.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListQuery {
    /// Only sandboxes in this state.
    pub state: Option<SandboxState>,
    /// `label=k=v`: every one must match.
    pub labels: Vec<(String, String)>,
    /// `metadata.k=v`: every one must match.
    pub metadata: Vec<(String, String)>,
    /// `tenant=`: only this tenant's sandboxes (admin only).
    pub tenant: Option<String>,
}

impl Sandboxes {
    /// One sandbox.
    pub async fn get(&self, caller: &Caller, id: &str) -> Result<Sandbox, SandboxError> {
        let entry = self.entry(caller, id)?;
        self.current(&entry).await
    }

    /// A page of the sandboxes `caller` may see, filtered.
    pub async fn list(
        &self,
        caller: &Caller,
        query: ListQuery,
        page: Page,
    ) -> Result<SandboxList, SandboxError> {
        let tenant = match (caller, query.tenant) {
            (Caller::Admin, filter) => filter.map(Some),
            (Caller::Tenant(own), None) => Some(Some(own.clone())),
            // A tenant naming itself is fine; naming another sees nothing
            // of it, exactly as if that tenant had no sandboxes.
            (Caller::Tenant(own), Some(filter)) if &filter == own => Some(Some(filter)),
            (Caller::Tenant(_), Some(_)) => {
                return Ok(SandboxList {
                    items: Vec::new(),
                    next_cursor: None,
                })
            }
        };
        let filter = SandboxFilter {
            tenant,
            state: query.state.map(StoredState::from_api),
            labels: query.labels,
            metadata: query.metadata,
            after_seq: page.after_seq,
            limit: page.fetch(),
        };
        let rows = self.inner.store.list_sandboxes(&filter).await?;
        let (rows, next_cursor) = page.finish(rows, |r| r.seq);
        let registry = &self.inner.registry;
        Ok(SandboxList {
            items: rows
                .iter()
                .map(|r| view(r, registry.get(&r.id).as_deref()))
                .collect(),
            next_cursor,
        })
    }

    /// Replaces metadata, labels or the idle timeout.
    pub async fn patch(
        &self,
        caller: &Caller,
        id: &str,
        req: PatchSandboxRequest,
    ) -> Result<Sandbox, SandboxError> {
        validate::patch(&req, &self.inner.limits)?;
        let entry = self.entry(caller, id)?;
        ensure_settled(&entry)?;
        entry.touch();
        if let Some(network) = req.network.clone() {
            let limits = &self.inner.limits;
            let policy = super::network::resolve(
                Some(network),
                limits.default_egress,
                limits.allow_private_egress,
            )?;
            self.set_network(&entry, policy).await?;
        }
        self.inner
            .store
            .patch_sandbox(
                id,
                req.metadata.as_ref(),
                req.labels.as_ref(),
                req.timeout_secs,
            )
            .await?;
        self.current(&entry).await
    }

    /// Pushes the ttl deadline back by `seconds` and restarts the idle clock.
    pub async fn extend(
        &self,
        caller: &Caller,
        id: &str,
        seconds: u64,
    ) -> Result<Sandbox, SandboxError> {
        validate::extension(seconds, &self.inner.limits)?;
        let entry = self.entry(caller, id)?;
        ensure_settled(&entry)?;
        entry.touch();
        self.inner
            .store
            .extend_sandbox(id, seconds as i64 * 1000, now_ms())
            .await?;
        self.current(&entry).await
    }
}
