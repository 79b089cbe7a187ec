//! Sandboxes' egress policies: requests resolved into policies, the API view,
//! and changing the policy of a sandbox, running or not.

use std::sync::Arc;

use warren_api::server::{self as api, NetworkRequest};
use warren_runtime::{Egress, NetworkPolicy};

use super::registry::{Entry, Phase};
use super::{blocking, ensure_settled, SandboxError, Sandboxes};

/// The policy a create or `PATCH` asks for. `egress` defaults to `deny`
/// when `allow` is given (an allow-list) and to `default` when not. An
/// allow-list entry that lies wholly in space no sandbox reaches, or in a
/// private range unless `allow_private` (the admin's
/// `--allow-private-egress`), is refused with the entry named.
pub fn resolve(
    req: Option<NetworkRequest>,
    default: Egress,
    allow_private: bool,
) -> Result<NetworkPolicy, SandboxError> {
    let req = req.unwrap_or_default();
    let allow = req.allow.unwrap_or_default();
    let egress = match req.egress {
        Some(api::Egress::Allow) => Egress::Allow,
        Some(api::Egress::Deny) => Egress::Deny,
        None if allow.is_empty() => default,
        None => Egress::Deny,
    };
    let policy = NetworkPolicy { egress, allow };
    policy
        .rules()
        .and_then(|_| policy.check_reachable(allow_private))
        .map_err(|e| SandboxError::invalid("network", e.to_string()))?;
    Ok(policy)
}

/// The API view of a policy.
pub fn view(policy: &NetworkPolicy) -> api::NetworkPolicy {
    api::NetworkPolicy {
        egress: match policy.egress {
            Egress::Allow => api::Egress::Allow,
            Egress::Deny => api::Egress::Deny,
        },
        allow: policy.allow.clone(),
    }
}

impl Sandboxes {
    /// Refuses a policy that needs outbound access on a server without it.
    pub(crate) fn check_egress_available(
        &self,
        policy: &NetworkPolicy,
    ) -> Result<(), SandboxError> {
        if policy.needs_interface() && !self.inner.node.egress_available() {
            return Err(SandboxError::invalid(
                "network",
                "outbound network is not available on this server (see its log): only egress \"deny\" without an allow list",
            ));
        }
        Ok(())
    }

    /// Replaces the egress policy of `entry`. A running (or hibernated)
    /// sandbox gets the new rules at once, without a restart; a stopped one
    /// gets them when it starts. The runtime is changed first and the
    /// database after, so a failure leaves the stored policy in force.
    pub(crate) async fn set_network(
        &self,
        entry: &Arc<Entry>,
        policy: NetworkPolicy,
    ) -> Result<(), SandboxError> {
        self.check_egress_available(&policy)?;
        ensure_settled(entry)?;
        let _op = entry.ops.lock().await;
        ensure_settled(entry)?;
        if matches!(entry.phase(), Phase::Running | Phase::Hibernated) {
            let node = self.inner.node.clone();
            let (id, applied) = (entry.id.clone(), policy.clone());
            blocking("set network", move || node.set_network(&id, &applied)).await?;
        }
        self.inner.store.set_network(&entry.id, &policy).await?;
        tracing::info!(id = %entry.id, egress = ?policy.egress, allow = policy.allow.len(), "network policy changed");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_resolve() {
        let p = resolve(None, Egress::Allow, false).unwrap();
        assert_eq!(p, NetworkPolicy::allow_all());
        let p = resolve(None, Egress::Deny, false).unwrap();
        assert_eq!(p, NetworkPolicy::deny());
        let list = NetworkRequest {
            egress: None,
            allow: Some(vec!["example.com".into()]),
        };
        let p = resolve(Some(list), Egress::Allow, false).unwrap();
        assert_eq!(p.egress, Egress::Deny);
        assert_eq!(p.allow, ["example.com"]);
        let conflicting = NetworkRequest {
            egress: Some(api::Egress::Allow),
            allow: Some(vec!["1.2.3.4".into()]),
        };
        assert!(resolve(Some(conflicting), Egress::Allow, false).is_err());
        let bad = NetworkRequest {
            egress: None,
            allow: Some(vec!["not a host".into()]),
        };
        let err = resolve(Some(bad), Egress::Allow, false).unwrap_err();
        assert!(err.to_string().contains("not a host"), "{err}");
        assert_eq!(view(&p).allow, ["example.com"]);
    }

    #[test]
    fn closed_space_is_refused_by_entry() {
        let list = |entry: &str| NetworkRequest {
            egress: None,
            allow: Some(vec!["example.com".into(), entry.into()]),
        };
        for allow_private in [false, true] {
            let err =
                resolve(Some(list("169.254.169.254")), Egress::Allow, allow_private).unwrap_err();
            assert!(err.to_string().contains("\"169.254.169.254\""), "{err}");
        }
        let err = resolve(Some(list("10.0.0.0/8")), Egress::Allow, false).unwrap_err();
        assert!(err.to_string().contains("\"10.0.0.0/8\""), "{err}");
        let p = resolve(Some(list("10.0.0.0/8")), Egress::Allow, true).unwrap();
        assert_eq!(p.allow, ["example.com", "10.0.0.0/8"]);
        let p = resolve(Some(list("0.0.0.0/0")), Egress::Allow, false).unwrap();
        assert_eq!(p.allow, ["example.com", "0.0.0.0/0"]);
    }
}
