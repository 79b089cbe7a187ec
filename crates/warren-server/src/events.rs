//! Sandbox state changes as a stream (`GET /v1/events`).
//!
//! The store publishes every state it commits (see `store::batch`: each
//! insert, state change and delete of a sandbox row, after its commit) to
//! the [`Hub`]; nothing else publishes, so no transition can be missed. A
//! state written again unchanged (a pid recorded) is not a change; the
//! internal `destroying` is not one either: `destroyed` is published when
//! the row is gone. Pooled sandboxes have no row until they are handed
//! over, so the pool's own sandboxes are never seen.
//!
//! Each tenant with a stream open has a channel of its own, holding only
//! its sandboxes' changes; the admin key's channel has everybody's. A
//! channel is a bounded ring ([`tokio::sync::broadcast`]): a subscriber
//! that falls more than its capacity behind loses the oldest events and is
//! told how many ([`Item::Lagged`]), and nobody waits for it. A tenant's
//! channel exists only while it has a stream open, and a tenant (the admin
//! alike) has at most [`MAX_STREAMS`] streams, so what the hub holds is
//! bounded by the number of tenants, whatever they do.
//!
//! At shutdown [`Hub::close`] ends every stream, so that open streams never
//! hold up a graceful stop.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tokio::sync::{broadcast, watch};
use warren_api::server::{SandboxEvent, SandboxState};
use warren_api::{ErrorCode, Problem};

use crate::auth::Caller;
use crate::time::rfc3339;

/// Most streams open at once per tenant (and for the admin key).
pub const MAX_STREAMS: usize = 16;

/// Events a tenant's channel keeps for its slowest subscriber.
pub const TENANT_CAPACITY: usize = 256;

/// Events the admin key's channel keeps for its slowest subscriber.
pub const ADMIN_CAPACITY: usize = 1024;

/// Most `sandbox_id` filters of one stream.
pub const MAX_FILTER_IDS: usize = 100;

/// One committed state change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The sandbox.
    pub sandbox_id: String,
    /// Its owner (`None`: the admin key's own).
    pub tenant_id: Option<String>,
    /// Its new state.
    pub state: SandboxState,
    /// Unix ms of the commit.
    pub at_ms: i64,
}

impl Change {
    /// The change as `caller` is shown it: the admin key sees the owner.
    pub fn view(&self, caller: &Caller) -> SandboxEvent {
        SandboxEvent {
            sandbox_id: self.sandbox_id.clone(),
            state: self.state,
            time: rfc3339(self.at_ms),
            tenant_id: match caller {
                Caller::Admin => self.tenant_id.clone(),
                Caller::Tenant(_) => None,
            },
        }
    }
}

/// Why a subscription was refused.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    /// The tenant (or the admin key) has [`MAX_STREAMS`] streams open.
    #[error("{who} already has {MAX_STREAMS} event streams open (the server's limit)")]
    TooManyStreams {
        /// `tenant ten_…` or `the admin key`.
        who: String,
    },
}

impl From<EventsError> for Problem {
    fn from(err: EventsError) -> Problem {
        match err {
            EventsError::TooManyStreams { .. } => {
                Problem::new(ErrorCode::TooManyRequests, err.to_string())
            }
        }
    }
}

type Sender = broadcast::Sender<Arc<Change>>;

struct Inner {
    admin: Sender,
    /// Channels of the tenants with a stream open. A std lock: held for a
    /// map lookup and a non-blocking send, never across an await.
    tenants: Mutex<HashMap<String, Sender>>,
    closed: watch::Sender<bool>,
}

/// Where committed changes go and streams come from; cheap to clone.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl Hub {
    /// A hub with no subscriber.
    pub fn new() -> Hub {
        Hub {
            inner: Arc::new(Inner {
                admin: broadcast::channel(ADMIN_CAPACITY).0,
                tenants: Mutex::default(),
                closed: watch::channel(false).0,
            }),
        }
    }

    /// Publishes a committed change to whoever may see it (without
    /// waiting for anyone).
    pub fn publish(&self, change: Change) {
        let change = Arc::new(change);
        if let Some(tenant) = &change.tenant_id {
            let tenants = self.inner.tenants.lock().expect("event hub lock");
            if let Some(channel) = tenants.get(tenant) {
                let _ = channel.send(change.clone());
            }
        }
        // An error only says that no admin stream is open.
        let _ = self.inner.admin.send(change);
    }

    /// A stream of the changes `caller` may see, only those of
    /// `sandbox_ids` when that is not empty.
    pub fn subscribe(
        &self,
        caller: &Caller,
        sandbox_ids: HashSet<String>,
    ) -> Result<Subscription, EventsError> {
        let mut tenants = self.inner.tenants.lock().expect("event hub lock");
        let rx = match caller {
            Caller::Admin => {
                if self.inner.admin.receiver_count() >= MAX_STREAMS {
                    return Err(EventsError::TooManyStreams {
                        who: "the admin key".into(),
                    });
                }
                self.inner.admin.subscribe()
            }
            Caller::Tenant(tenant) => {
                let channel = tenants
                    .entry(tenant.clone())
                    .or_insert_with(|| broadcast::channel(TENANT_CAPACITY).0);
                if channel.receiver_count() >= MAX_STREAMS {
                    return Err(EventsError::TooManyStreams {
                        who: format!("tenant {tenant}"),
                    });
                }
                channel.subscribe()
            }
        };
        Ok(Subscription {
            rx: Some(rx),
            tenant: caller.tenant().map(str::to_owned),
            sandbox_ids,
            closed: self.inner.closed.subscribe(),
            hub: self.clone(),
        })
    }

    /// Ends every stream, now and from now on (the server is stopping).
    pub fn close(&self) {
        self.inner.closed.send_replace(true);
    }

    /// Tenants with a channel.
    #[cfg(test)]
    fn tenant_channels(&self) -> usize {
        self.inner.tenants.lock().expect("event hub lock").len()
    }
}

/// What a subscription yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A change the subscriber may see.
    Change(Arc<Change>),
    /// This many events were dropped: the subscriber was too slow.
    Lagged(u64),
}

/// One open stream; counted against its tenant's [`MAX_STREAMS`] until it
/// drops.
pub struct Subscription {
    rx: Option<broadcast::Receiver<Arc<Change>>>,
    tenant: Option<String>,
    sandbox_ids: HashSet<String>,
    closed: watch::Receiver<bool>,
    hub: Hub,
}

impl Subscription {
    /// The next change (or lag notice); `None` once the hub is closed.
    pub async fn next(&mut self) -> Option<Item> {
        let rx = self.rx.as_mut()?;
        loop {
            let received = tokio::select! {
                biased;
                _ = self.closed.wait_for(|closed| *closed) => return None,
                received = rx.recv() => received,
            };
            match received {
                Ok(change) => {
                    if self.sandbox_ids.is_empty() || self.sandbox_ids.contains(&change.sandbox_id)
                    {
                        return Some(Item::Change(change));
                    }
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    return Some(Item::Lagged(missed))
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let Some(tenant) = &self.tenant else {
            return;
        };
        let mut tenants = self.hub.inner.tenants.lock().expect("event hub lock");
        // The receiver goes first, under the lock, so the count is exact.
        self.rx.take();
        if tenants
            .get(tenant)
            .is_some_and(|channel| channel.receiver_count() == 0)
        {
            tenants.remove(tenant);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(id: &str, tenant: Option<&str>, state: SandboxState) -> Change {
        Change {
            sandbox_id: id.into(),
            tenant_id: tenant.map(str::to_owned),
            state,
            at_ms: 1_700_000_000_123,
        }
    }

    fn tenant(id: &str) -> Caller {
        Caller::Tenant(id.into())
    }

    async fn next_change(sub: &mut Subscription) -> Change {
        match sub.next().await {
            Some(Item::Change(change)) => (*change).clone(),
            other => panic!("expected a change, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn tenants_see_their_own_and_the_admin_sees_all() {
        let hub = Hub::new();
        let mut a = hub.subscribe(&tenant("ten_a"), HashSet::new()).unwrap();
        let mut b = hub.subscribe(&tenant("ten_b"), HashSet::new()).unwrap();
        let mut admin = hub.subscribe(&Caller::Admin, HashSet::new()).unwrap();
        hub.publish(change("sbx_1", Some("ten_a"), SandboxState::Running));
        hub.publish(change("sbx_2", None, SandboxState::Stopped));
        hub.publish(change("sbx_3", Some("ten_b"), SandboxState::Destroyed));
        assert_eq!(next_change(&mut a).await.sandbox_id, "sbx_1");
        assert_eq!(next_change(&mut b).await.sandbox_id, "sbx_3");
        let seen: Vec<String> = [
            next_change(&mut admin).await,
            next_change(&mut admin).await,
            next_change(&mut admin).await,
        ]
        .into_iter()
        .map(|c| c.sandbox_id)
        .collect();
        assert_eq!(seen, ["sbx_1", "sbx_2", "sbx_3"]);
        // The admin's view names the owner; a tenant's never does.
        let c = change("sbx_1", Some("ten_a"), SandboxState::Running);
        assert_eq!(c.view(&Caller::Admin).tenant_id.as_deref(), Some("ten_a"));
        assert_eq!(c.view(&tenant("ten_a")).tenant_id, None);
        assert_eq!(c.view(&Caller::Admin).time, "2023-11-14T22:13:20.123Z");
    }

    #[tokio::test]
    async fn the_filter_keeps_only_the_named_sandboxes() {
        let hub = Hub::new();
        let only = HashSet::from(["sbx_2".to_string()]);
        let mut sub = hub.subscribe(&tenant("ten_a"), only).unwrap();
        hub.publish(change("sbx_1", Some("ten_a"), SandboxState::Running));
        hub.publish(change("sbx_2", Some("ten_a"), SandboxState::Running));
        assert_eq!(next_change(&mut sub).await.sandbox_id, "sbx_2");
    }

    #[tokio::test]
    async fn a_slow_subscriber_is_told_what_it_missed_and_goes_on() {
        let hub = Hub::new();
        let mut sub = hub.subscribe(&tenant("ten_a"), HashSet::new()).unwrap();
        for i in 0..TENANT_CAPACITY + 10 {
            hub.publish(change(
                &format!("sbx_{i}"),
                Some("ten_a"),
                SandboxState::Running,
            ));
        }
        assert_eq!(sub.next().await, Some(Item::Lagged(10)));
        assert_eq!(next_change(&mut sub).await.sandbox_id, "sbx_10");
    }

    #[tokio::test]
    async fn streams_are_capped_per_tenant_and_channels_go_with_their_last_stream() {
        let hub = Hub::new();
        let subs: Vec<Subscription> = (0..MAX_STREAMS)
            .map(|_| hub.subscribe(&tenant("ten_a"), HashSet::new()).unwrap())
            .collect();
        assert!(matches!(
            hub.subscribe(&tenant("ten_a"), HashSet::new()),
            Err(EventsError::TooManyStreams { .. })
        ));
        // Another tenant is not affected.
        let other = hub.subscribe(&tenant("ten_b"), HashSet::new()).unwrap();
        assert_eq!(hub.tenant_channels(), 2);
        drop(subs);
        drop(other);
        assert_eq!(hub.tenant_channels(), 0);
        // Changes of tenants without a stream are kept nowhere.
        hub.publish(change("sbx_1", Some("ten_c"), SandboxState::Running));
        assert_eq!(hub.tenant_channels(), 0);
        hub.subscribe(&tenant("ten_a"), HashSet::new()).unwrap();
    }

    #[tokio::test]
    async fn close_ends_every_stream() {
        let hub = Hub::new();
        let mut sub = hub.subscribe(&Caller::Admin, HashSet::new()).unwrap();
        let waiting = tokio::spawn(async move { sub.next().await });
        tokio::task::yield_now().await;
        hub.close();
        assert_eq!(waiting.await.unwrap(), None);
        let mut late = hub.subscribe(&Caller::Admin, HashSet::new()).unwrap();
        assert_eq!(late.next().await, None);
    }
}
