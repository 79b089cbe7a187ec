//! Sandbox networking: egress policies on routed veth pairs, NAT, and a
//! resolver the server controls.
//!
//! ```text
//!  sandbox netns                 host
//!  eth0 10.213.0.5/32  ──veth──  warren-5 (no address; route 10.213.0.5/32)
//!  default via 10.213.0.1        warren0 bridge, no ports: holds 10.213.0.1/16,
//!                                the gateway and resolver address (DNS on :53)
//!                                nft table `inet warren`: policy, NAT, isolation
//! ```
//!
//! Every sandbox that may go out gets its own point-to-point veth; there is
//! no shared layer 2 between sandboxes, so isolation is routing plus the
//! rules in [`nft`]. A `deny` sandbox gets no interface at all (loopback
//! only). Everything is keyed by the sandbox's address, which is encoded in
//! its host veth's name, with the sandbox id in the veth's alias: after a
//! restart [`Network::open`] finds every lease again from the links alone,
//! and set-up and teardown are idempotent.
//!
//! One [`Network`] owns an instance (`name`: table `inet <name>`, bridge
//! `<name>0`, veths `<name>-<hex>`) on a machine at a time, through a lock
//! file; a second server needs its own name and range.

pub mod dns;
pub mod netlink;
pub mod nfnl;
pub mod nft;
pub mod policy;
mod veth;

use std::collections::HashMap;
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use policy::{Cidr, Egress, NetworkPolicy, PolicyError, Rules};

use netlink::Netlink;
use nfnl::Nftables;
use nft::{Installed, Tables};
use veth::{veth_address, veth_name, Wire};

/// Where instance locks live.
pub const LOCK_DIR: &str = "/run/warren";
/// The sandbox side of every veth.
pub const SANDBOX_INTERFACE: &str = "eth0";

/// Which network a server runs its sandboxes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConfig {
    /// 1 to 8 characters of `[a-z0-9]`, starting with a letter (so that
    /// the longest veth name fits the kernel's 15 characters): the nft
    /// table `inet <name>`, the bridge `<name>0`, veths `<name>-<hex>`.
    pub name: String,
    /// The sandboxes' addresses; the first host address is the gateway.
    pub cidr: Cidr,
    /// DNS servers the resolver forwards to; empty: the host's
    /// `/etc/resolv.conf`.
    pub upstreams: Vec<SocketAddr>,
    /// Whether an allow-list's CIDRs may open private ranges (10/8,
    /// 172.16/12, 192.168/16, 100.64/10): the admin's choice. Link-local
    /// (metadata), loopback and multicast stay closed regardless.
    pub allow_private: bool,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            name: "warren".into(),
            cidr: Cidr::new(Ipv4Addr::new(10, 213, 0, 0), 16),
            upstreams: Vec::new(),
            allow_private: false,
        }
    }
}

/// Failures of the sandbox network.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// The configuration cannot work.
    #[error("network config: {0}")]
    BadConfig(String),
    /// Another process owns this network instance.
    #[error("network {name:?} is in use by another warren server (lock {path}); give this one another --network-name and --network-cidr")]
    InUse {
        /// Instance name.
        name: String,
        /// Its lock file.
        path: PathBuf,
    },
    /// The lock file could not be opened.
    #[error("lock file {path}: {source}")]
    Lock {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// `nft` is not installed.
    #[error("nft (Debian package nftables) was not found")]
    NftMissing,
    /// `nft` could not be run.
    #[error("running {nft}: {source}")]
    NftSpawn {
        /// The binary.
        nft: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The kernel refused a batch of set elements.
    #[error("nftables: {0}")]
    Elements(std::io::Error),
    /// `nft` refused a batch.
    #[error("nft failed: {stderr}")]
    Nft {
        /// Its complaint.
        stderr: String,
        /// The batch.
        script: String,
    },
    /// A netlink request failed.
    #[error("{op}: {source}")]
    Netlink {
        /// What was asked.
        op: String,
        /// Cause.
        source: std::io::Error,
    },
    /// A sysctl could not be set.
    #[error("setting {path}: {source}")]
    Sysctl {
        /// The /proc/sys file.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The resolver could not bind its address.
    #[error("starting the resolver on {addr}: {source}")]
    Resolver {
        /// The address.
        addr: SocketAddrV4,
        /// Cause.
        source: std::io::Error,
    },
    /// The policy is invalid.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// Every address of the range is taken.
    #[error("no free address left in {0}")]
    Exhausted(Cidr),
    /// A veth of this address belongs to another sandbox.
    #[error("interface {interface} belongs to sandbox {owner:?}, not {id}")]
    Conflict {
        /// The host interface.
        interface: String,
        /// Its alias.
        owner: String,
        /// The sandbox asking.
        id: String,
    },
}

fn netlink_err(op: impl Into<String>) -> impl FnOnce(std::io::Error) -> NetworkError {
    let op = op.into();
    move |source| NetworkError::Netlink { op, source }
}

/// Per sandbox address, its resolver-learnt addresses and when their
/// elements time out.
type Learnt = HashMap<Ipv4Addr, HashMap<Ipv4Addr, Instant>>;

/// One sandbox's place on the network.
#[derive(Debug, Clone)]
struct Lease {
    addr: Ipv4Addr,
    /// `None` for a lease found after a restart whose policy the server has
    /// not applied again yet: the resolver refuses it meanwhile.
    rules: Option<Arc<Rules>>,
    /// Its elements in the table.
    installed: Installed,
}

#[derive(Debug, Default)]
struct Leases {
    by_id: HashMap<String, Lease>,
    by_addr: HashMap<Ipv4Addr, String>,
    /// Next offset to try: addresses are handed out round the range, so a
    /// freed one is reused as late as possible (conntrack entries of its old
    /// owner expire first).
    cursor: u32,
}

struct Inner {
    config: NetworkConfig,
    tables: Tables,
    gateway: Ipv4Addr,
    leases: Mutex<Leases>,
    /// sandbox → learnt address → when its nft element times out.
    learnt: Mutex<Learnt>,
    /// The table's sets. Every change of a sandbox's elements holds it,
    /// then (briefly) `leases`: never the other way round.
    sets: Mutex<Nftables>,
    _lock: File,
}

/// The host's sandbox network; one per server.
pub struct Network {
    inner: Arc<Inner>,
    _resolver: dns::Resolver,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("config", &self.inner.config)
            .finish()
    }
}

/// A sandbox's policy installed before the sandbox exists; see
/// [`Network::prepare`].
#[derive(Debug)]
pub struct Prepared {
    id: String,
    addr: Ipv4Addr,
    rules: Arc<Rules>,
}

impl Network {
    /// Takes the instance's lock, sets the host up (forwarding, the gateway
    /// bridge, the base rules), finds the leases of running sandboxes again,
    /// removes what no sandbox owns, and starts the resolver.
    pub fn open(config: NetworkConfig) -> Result<Network, NetworkError> {
        validate(&config)?;
        let lock = lock(&config.name)?;
        let nft = nft::find_nft().ok_or(NetworkError::NftMissing)?;
        let gateway = Ipv4Addr::from(u32::from(config.cidr.addr) + 1);
        let tables = Tables {
            nft,
            table: config.name.clone(),
            veth_prefix: format!("{}-", config.name),
            cidr: config.cidr,
            gateway,
            allow_private: config.allow_private,
        };
        sysctl("/proc/sys/net/ipv4/ip_forward", "1")?;
        let mut host = Netlink::open().map_err(netlink_err("opening netlink"))?;
        let bridge = format!("{}0", config.name);
        host.add_bridge(&bridge)
            .map_err(netlink_err(format!("creating bridge {bridge}")))?;
        let index = host
            .link_index(&bridge)
            .map_err(netlink_err(format!("finding {bridge}")))?
            .ok_or_else(|| NetworkError::BadConfig(format!("{bridge} vanished")))?;
        host.add_address(index, gateway, config.cidr.prefix)
            .map_err(netlink_err(format!("adding {gateway} to {bridge}")))?;
        host.set_up(index)
            .map_err(netlink_err(format!("bringing {bridge} up")))?;
        tables.run(tables.base_script())?;
        if let Some(script) = tables.legacy_script()? {
            tables.run(script)?;
        }
        let mut sets = Nftables::open(&config.name).map_err(NetworkError::Elements)?;
        // 0.0.0.0 is never a sandbox's address.
        sets.probe(nft::LEARNT, vec![0; 8]);

        let mut leases = Leases::default();
        for link in host.links().map_err(netlink_err("listing links"))? {
            let Some(addr) = veth_address(&tables, &link.name) else {
                continue;
            };
            if link.alias.is_empty() || leases.by_addr.contains_key(&addr) {
                let _ = host.delete_link(&link.name);
                continue;
            }
            leases.by_addr.insert(addr, link.alias.clone());
            leases.by_id.insert(
                link.alias,
                Lease {
                    addr,
                    rules: None,
                    installed: Installed::default(),
                },
            );
        }
        let learnt = recover(&tables, &mut sets, &mut leases)?;
        let upstreams = if config.upstreams.is_empty() {
            let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
            dns::parse_resolv_conf(&text)
        } else {
            config.upstreams.clone()
        };
        let upstreams: Vec<SocketAddr> = upstreams
            .into_iter()
            .filter(|a| !matches!(a, SocketAddr::V4(v4) if config.cidr.contains(*v4.ip())))
            .collect();
        if upstreams.is_empty() {
            tracing::warn!("no upstream DNS server: sandboxes' lookups will fail");
        }
        tracing::info!(name = %config.name, cidr = %config.cidr, %gateway, recovered = leases.by_id.len(), ?upstreams, "sandbox network ready");
        let inner = Arc::new(Inner {
            config,
            tables,
            gateway,
            leases: Mutex::new(leases),
            learnt: Mutex::new(learnt),
            sets: Mutex::new(sets),
            _lock: lock,
        });
        let addr = SocketAddrV4::new(gateway, 53);
        let resolver = dns::Resolver::start(addr, upstreams, inner.clone())
            .map_err(|source| NetworkError::Resolver { addr, source })?;
        Ok(Network {
            inner,
            _resolver: resolver,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &NetworkConfig {
        &self.inner.config
    }

    /// The gateway: sandboxes' default route and nameserver.
    pub fn gateway(&self) -> Ipv4Addr {
        self.inner.gateway
    }

    /// The address of sandbox `id`, if it has an interface.
    pub fn address(&self, id: &str) -> Option<Ipv4Addr> {
        let leases = self.inner.leases.lock().expect("leases lock");
        leases.by_id.get(id).map(|l| l.addr)
    }

    /// First half of connecting a sandbox that is about to start: takes an
    /// address and installs its rules (one batch of set elements, well
    /// under a millisecond). `None` for a loopback-only policy.
    pub fn prepare(
        &self,
        id: &str,
        policy: &NetworkPolicy,
    ) -> Result<Option<Prepared>, NetworkError> {
        let rules = policy.rules()?;
        if rules == Rules::Loopback {
            return Ok(None);
        }
        let rules = Arc::new(rules);
        let (addr, previous) = self.inner.lease(id)?;
        if let Err(e) = self.inner.install(id, addr, &rules, true) {
            if previous.is_none() {
                self.inner.drop_lease(id);
            }
            return Err(e);
        }
        Ok(Some(Prepared {
            id: id.to_string(),
            addr,
            rules,
        }))
    }

    /// Second half: gives the started sandbox (init at host pid `pid`) its
    /// interface once its rules are in. On failure the caller releases `id`.
    ///
    /// The init is new, so a host link already named for this address is
    /// the interface of an earlier holder of the address (this sandbox
    /// before a restart, say) whose network namespace has not gone yet
    /// (see [`Network::forget`]): it is deleted, and the sandbox gets its
    /// own.
    pub fn connect(&self, prepared: Prepared, pid: i32) -> Result<(), NetworkError> {
        let Prepared { id, addr, rules } = prepared;
        self.inner.wire(&id, addr, pid, Wire::Fresh)?;
        self.inner.set_rules(&id, Some(rules));
        Ok(())
    }

    /// Applies `policy` to the running sandbox `id` (init at host pid
    /// `pid`) without restarting it: rules are replaced atomically, the
    /// interface is added or removed as the policy needs. Idempotent.
    pub fn apply(&self, id: &str, pid: i32, policy: &NetworkPolicy) -> Result<(), NetworkError> {
        let rules = policy.rules()?;
        if rules == Rules::Loopback {
            return self.release(id);
        }
        let rules = Arc::new(rules);
        let (addr, previous) = self.inner.lease(id)?;
        let changed = previous.as_deref().is_some_and(|p| *p != *rules);
        if let Err(e) = self.inner.install(id, addr, &rules, changed) {
            if previous.is_none() {
                self.inner.drop_lease(id);
            }
            return Err(e);
        }
        self.inner.wire(id, addr, pid, Wire::Keep)?;
        self.inner.set_rules(id, Some(rules));
        Ok(())
    }

    /// Removes the running sandbox's interface, rules and address (its
    /// policy became `deny`). Releasing a sandbox without any is not an
    /// error.
    pub fn release(&self, id: &str) -> Result<(), NetworkError> {
        let Some(addr) = self.address(id) else {
            return Ok(());
        };
        let interface = veth_name(&self.inner.tables, addr);
        let mut host = Netlink::open().map_err(netlink_err("opening netlink"))?;
        host.delete_link(&interface)
            .map_err(netlink_err(format!("deleting {interface}")))?;
        self.forget(id)
    }

    /// Removes the rules and the address of a sandbox that is being
    /// stopped, and leaves its interface to the kernel: a veth pair goes
    /// when the network namespace one of its ends is in goes, which is when
    /// the sandbox's last process has exited. Deleting the host end here
    /// instead would wait for the kernel's RCU grace periods, about 25 ms on
    /// this machine kind, on every stop, restore and delete; the
    /// namespaces' teardown batches them off everyone's path. The address
    /// is handed out again last (round the range), and a start that finds
    /// the old link still there removes it ([`Network::connect`]).
    /// Forgetting a sandbox without an address is not an error.
    pub fn forget(&self, id: &str) -> Result<(), NetworkError> {
        let Some(addr) = self.address(id) else {
            return Ok(());
        };
        // The resolver admits nothing more for it; what it admitted until
        // now (under the lock of the sets) goes with the rest.
        self.inner.set_rules(id, None);
        self.inner.install(id, addr, &Rules::Loopback, true)?;
        self.inner.drop_lease(id);
        Ok(())
    }
}

impl Inner {
    /// The sandbox's lease, taken now if it has none; with its rules so far.
    fn lease(&self, id: &str) -> Result<(Ipv4Addr, Option<Arc<Rules>>), NetworkError> {
        let mut leases = self.leases.lock().expect("leases lock");
        if let Some(lease) = leases.by_id.get(id) {
            return Ok((lease.addr, lease.rules.clone()));
        }
        let base = u32::from(self.config.cidr.addr);
        // Offsets 0 (network), 1 (gateway) and the last (broadcast) are not handed out.
        let usable = (self.config.cidr.size() - 3) as u32;
        for step in 0..usable {
            let offset = 2 + (leases.cursor + step) % usable;
            let addr = Ipv4Addr::from(base + offset);
            if !leases.by_addr.contains_key(&addr) {
                leases.cursor = (offset - 2 + 1) % usable;
                leases.by_addr.insert(addr, id.to_string());
                leases.by_id.insert(
                    id.to_string(),
                    Lease {
                        addr,
                        rules: None,
                        installed: Installed::default(),
                    },
                );
                return Ok((addr, None));
            }
        }
        Err(NetworkError::Exhausted(self.config.cidr))
    }

    fn set_rules(&self, id: &str, rules: Option<Arc<Rules>>) {
        let mut leases = self.leases.lock().expect("leases lock");
        if let Some(lease) = leases.by_id.get_mut(id) {
            lease.rules = rules;
        }
    }

    fn drop_lease(&self, id: &str) {
        let mut leases = self.leases.lock().expect("leases lock");
        if let Some(lease) = leases.by_id.remove(id) {
            leases.by_addr.remove(&lease.addr);
        }
    }

    /// Replaces the elements of sandbox `id` (at `addr`) with those of
    /// `rules`, in one batch; with `forget`, its learnt addresses go too.
    /// `Rules::Loopback` removes everything.
    fn install(
        &self,
        id: &str,
        addr: Ipv4Addr,
        rules: &Rules,
        forget: bool,
    ) -> Result<(), NetworkError> {
        let mut sets = self.sets.lock().expect("sets lock");
        let old = {
            let leases = self.leases.lock().expect("leases lock");
            leases
                .by_id
                .get(id)
                .map(|l| l.installed.clone())
                .unwrap_or_default()
        };
        let new = Installed::of(rules);
        let learnt: Vec<Ipv4Addr> = if forget {
            let learnt = self.learnt.lock().expect("learnt lock");
            (learnt.get(&addr))
                .map(|ips| ips.keys().copied().collect())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let changes = self.tables.changes(addr, &old, &new, &learnt);
        sets.commit(&changes).map_err(NetworkError::Elements)?;
        if forget {
            self.learnt.lock().expect("learnt lock").remove(&addr);
        }
        let mut leases = self.leases.lock().expect("leases lock");
        if let Some(lease) = leases.by_id.get_mut(id) {
            lease.installed = new;
        }
        Ok(())
    }
}

impl dns::Policy for Inner {
    fn rules(&self, source: Ipv4Addr) -> Option<Arc<Rules>> {
        let leases = self.leases.lock().expect("leases lock");
        let id = leases.by_addr.get(&source)?;
        leases.by_id.get(id)?.rules.clone()
    }

    fn learn(&self, source: Ipv4Addr, ips: &[Ipv4Addr], ttl: Duration) {
        let now = Instant::now();
        let timeout = ttl.clamp(nft::MIN_DNS_TIMEOUT, Duration::from_secs(24 * 3600));
        let (mut fresh, mut refresh) = (Vec::new(), Vec::new());
        {
            let learnt = self.learnt.lock().expect("learnt lock");
            for ip in ips {
                match learnt.get(&source).and_then(|ips| ips.get(ip)) {
                    // Still admitted for more than half of what is asked.
                    Some(&until) if until > now + timeout / 2 => {}
                    Some(&until) if until > now + Duration::from_secs(5) => refresh.push(*ip),
                    _ => fresh.push(*ip),
                }
            }
        }
        if fresh.is_empty() && refresh.is_empty() {
            return;
        }
        let mut sets = self.sets.lock().expect("sets lock");
        // Only for a sandbox still holding an allow-list (the others have
        // no use for it, and a released address must stay clean).
        let listed = matches!(self.rules(source).as_deref(), Some(Rules::List { .. }));
        if !listed {
            return;
        }
        let changes = self.tables.learnt_changes(source, &fresh, &refresh, ttl);
        match sets.commit(&changes).map_err(NetworkError::Elements) {
            Ok(()) => {
                let mut learnt = self.learnt.lock().expect("learnt lock");
                let ips = learnt.entry(source).or_default();
                for ip in fresh.iter().chain(&refresh) {
                    ips.insert(*ip, now + timeout);
                }
            }
            Err(e) => tracing::warn!(sandbox = %source, error = %e, "admitting resolved addresses"),
        }
    }
}

/// Reads the table's elements back at start: those of a sandbox found
/// again become its lease's `installed` state (and its learnt addresses),
/// the rest are removed in one batch.
fn recover(
    tables: &Tables,
    sets: &mut Nftables,
    leases: &mut Leases,
) -> Result<Learnt, NetworkError> {
    let now = Instant::now();
    let mut learnt = Learnt::new();
    let mut stale = Vec::new();
    let addr_at = |key: &[u8], at: usize| -> Option<Ipv4Addr> {
        let octets: [u8; 4] = key.get(at..at + 4)?.try_into().ok()?;
        Some(Ipv4Addr::from(octets))
    };
    fn lease(leases: &mut Leases, addr: Option<Ipv4Addr>) -> Option<&mut Lease> {
        let id = leases.by_addr.get(&addr?)?.clone();
        leases.by_id.get_mut(&id)
    }
    for set in [nft::PUBLIC, nft::LISTED, nft::ALLOWED, nft::LEARNT] {
        let mut gone = Vec::new();
        for listed in sets.elements(set).map_err(NetworkError::Elements)? {
            let kept = match set {
                nft::PUBLIC | nft::LISTED => {
                    let addr = addr_at(&listed.key, 16);
                    let exact = addr.is_some_and(|a| tables.egress_key(a) == listed.key);
                    match lease(leases, addr) {
                        Some(l) if exact && l.installed.public.is_none() => {
                            l.installed.public = Some(set == nft::PUBLIC);
                            true
                        }
                        _ => false,
                    }
                }
                nft::ALLOWED => {
                    let first = addr_at(&listed.key, 4);
                    let last = listed.key_end.as_deref().and_then(|k| addr_at(k, 4));
                    match (lease(leases, addr_at(&listed.key, 0)), first, last) {
                        (Some(l), Some(first), Some(last)) => {
                            l.installed.ranges.push((first, last));
                            true
                        }
                        _ => false,
                    }
                }
                _ => match (addr_at(&listed.key, 0), addr_at(&listed.key, 4)) {
                    (Some(owner), Some(ip)) if lease(leases, Some(owner)).is_some() => {
                        let left = listed.expires.unwrap_or_default();
                        learnt.entry(owner).or_default().insert(ip, now + left);
                        true
                    }
                    _ => false,
                },
            };
            if !kept {
                gone.push(nfnl::Element {
                    key: listed.key,
                    key_end: listed.key_end,
                    timeout: None,
                });
            }
        }
        stale.push(nfnl::Change {
            op: nfnl::Op::Destroy,
            set,
            elements: gone,
        });
    }
    sets.commit(&stale).map_err(NetworkError::Elements)?;
    Ok(learnt)
}

fn validate(config: &NetworkConfig) -> Result<(), NetworkError> {
    let name = &config.name;
    let name_ok = (1..=8).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !name_ok {
        return Err(NetworkError::BadConfig(format!(
            "name {name:?}: 1 to 8 characters of a-z 0-9, starting with a letter"
        )));
    }
    let prefix = config.cidr.prefix;
    if !(8..=29).contains(&prefix) {
        return Err(NetworkError::BadConfig(format!(
            "cidr {}: the prefix must be between /8 and /29",
            config.cidr
        )));
    }
    Ok(())
}

fn lock(name: &str) -> Result<File, NetworkError> {
    let path = PathBuf::from(LOCK_DIR).join(format!("network-{name}.lock"));
    let lock_err = |source| NetworkError::Lock {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(LOCK_DIR).map_err(lock_err)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(lock_err)?;
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor this function owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
            return Err(NetworkError::InUse {
                name: name.to_string(),
                path,
            });
        }
        return Err(lock_err(err));
    }
    Ok(file)
}

fn sysctl(path: &str, value: &str) -> Result<(), NetworkError> {
    let current = std::fs::read_to_string(path).unwrap_or_default();
    if current.trim() == value {
        return Ok(());
    }
    std::fs::write(path, value).map_err(|source| NetworkError::Sysctl {
        path: path.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_are_checked() {
        assert!(validate(&NetworkConfig::default()).is_ok());
        for (name, cidr) in [
            ("", "10.0.0.0/16"),
            ("Warren", "10.0.0.0/16"),
            ("1abc", "10.0.0.0/16"),
            ("abcdefghi", "10.0.0.0/16"),
            ("warren", "10.0.0.0/30"),
            ("warren", "10.0.0.0/7"),
        ] {
            let config = NetworkConfig {
                name: name.into(),
                cidr: cidr.parse().unwrap(),
                upstreams: Vec::new(),
                allow_private: false,
            };
            assert!(validate(&config).is_err(), "{name} {cidr}");
        }
    }

    #[test]
    fn veth_names_round_trip() {
        let tables = Tables {
            nft: PathBuf::from("nft"),
            table: "warren".into(),
            veth_prefix: "warren-".into(),
            cidr: "10.213.0.0/16".parse().unwrap(),
            gateway: Ipv4Addr::new(10, 213, 0, 1),
            allow_private: false,
        };
        let addr = Ipv4Addr::new(10, 213, 1, 2);
        let name = veth_name(&tables, addr);
        assert_eq!(name, "warren-102");
        assert_eq!(veth_address(&tables, &name), Some(addr));
        assert_eq!(veth_address(&tables, "warren0"), None);
        assert_eq!(veth_address(&tables, "warren-1"), None);
        assert_eq!(veth_address(&tables, "warren-10000"), None);
        assert_eq!(veth_address(&tables, "eth0"), None);
    }
}
