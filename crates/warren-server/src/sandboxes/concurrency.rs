//! Caps on requests in flight: every proxied agent call and preview request
//! holds an [`InFlight`] from its first byte to its answer's last (a follow
//! stream or a terminal holds one for as long as it is open). A sandbox has
//! at most `max_requests_per_sandbox` of them and a tenant, over all its
//! sandboxes, `max_requests_per_tenant`; the next one is refused with 429
//! `too_many_requests` before anything is sent to the sandbox, so that one
//! tenant's thousands of streams cannot take the server's memory from
//! everyone else. The admin's own sandboxes are held to the per-sandbox cap
//! only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::registry::{Entry, StreamGuard};
use super::{SandboxError, Sandboxes};

/// Requests in flight per tenant; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct TenantCounts(Arc<Mutex<HashMap<String, usize>>>);

impl TenantCounts {
    /// Takes one of `tenant`'s `max` slots, if one is free.
    fn try_take(&self, tenant: &str, max: usize) -> bool {
        let mut map = self.0.lock().expect("tenant counts lock");
        let count = map.entry(tenant.to_string()).or_insert(0);
        if *count >= max {
            return false;
        }
        *count += 1;
        true
    }

    /// Gives back one of `tenant`'s slots.
    fn release(&self, tenant: &str) {
        let mut map = self.0.lock().expect("tenant counts lock");
        if let Some(count) = map.get_mut(tenant) {
            *count -= 1;
            if *count == 0 {
                map.remove(tenant);
            }
        }
    }

    /// `tenant`'s requests in flight.
    pub fn get(&self, tenant: &str) -> usize {
        let map = self.0.lock().expect("tenant counts lock");
        map.get(tenant).copied().unwrap_or(0)
    }
}

/// A request in flight: keeps its sandbox awake and counted against both
/// caps until it drops.
#[derive(Debug)]
pub struct InFlight {
    _stream: StreamGuard,
    tenant: Option<(TenantCounts, String)>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some((counts, tenant)) = &self.tenant {
            counts.release(tenant);
        }
    }
}

impl Sandboxes {
    /// Admits one more request in flight to `entry`'s sandbox, or refuses it
    /// with [`SandboxError::TooManyRequests`] when the sandbox or its tenant
    /// is at its cap.
    pub fn enter(&self, entry: &Arc<Entry>) -> Result<InFlight, SandboxError> {
        let limits = &self.inner.limits;
        let tenant = match &entry.tenant {
            Some(tenant) => {
                let counts = &self.inner.in_flight;
                if !counts.try_take(tenant, limits.max_requests_per_tenant) {
                    return Err(SandboxError::TooManyRequests(format!(
                        "tenant {tenant} already has {} requests in flight (the server's limit per tenant)",
                        limits.max_requests_per_tenant
                    )));
                }
                Some((counts.clone(), tenant.clone()))
            }
            None => None,
        };
        let Some(stream) = entry.try_open_stream(limits.max_requests_per_sandbox) else {
            if let Some((counts, tenant)) = &tenant {
                counts.release(tenant);
            }
            return Err(SandboxError::TooManyRequests(format!(
                "sandbox {} already has {} requests in flight (the server's limit per sandbox)",
                entry.id, limits.max_requests_per_sandbox
            )));
        };
        Ok(InFlight {
            _stream: stream,
            tenant,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_slots_are_taken_and_given_back() {
        let counts = TenantCounts::default();
        assert!(counts.try_take("t", 2));
        assert!(counts.try_take("t", 2));
        assert!(!counts.try_take("t", 2));
        assert!(counts.try_take("u", 2));
        counts.release("t");
        assert_eq!(counts.get("t"), 1);
        assert!(counts.try_take("t", 2));
        counts.release("t");
        counts.release("t");
        assert_eq!(counts.get("t"), 0);
        assert!(counts.0.lock().unwrap().get("t").is_none());
    }
}
