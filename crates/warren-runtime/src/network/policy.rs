//! Egress policies: what a sandbox may reach outside itself.
//!
//! On the wire a policy is `{egress: "allow" | "deny", allow: [...]}`:
//! - `allow` with an empty list: the public internet (never the host, other
//!   sandboxes, link-local/metadata or private ranges);
//! - `deny` with an empty list: loopback only (no interface at all);
//! - `deny` with entries: only what the entries name. An entry is an IPv4
//!   address, an IPv4 CIDR, a host name (`example.com`, exactly that name) or
//!   a wildcard (`*.example.com`, any name under it). Names are admitted
//!   through the server's resolver: the addresses it answers for them become
//!   reachable. CIDRs may open private ranges, on a server whose admin
//!   allows it ([`NetworkPolicy::check_reachable`] refuses an entry that
//!   lies wholly in closed space); link-local (cloud metadata),
//!   loopback and multicast stay closed whatever a list says, and addresses
//!   learnt through DNS never open anything but public space (a name
//!   resolving to 127.0.0.1 or the metadata address opens nothing).

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

/// Most entries in an allow-list.
pub const MAX_ALLOW_ENTRIES: usize = 256;

/// Outbound access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Egress {
    /// The public internet (or, with an allow-list, only what it names).
    Allow,
    /// Nothing but what the allow-list names; with no list, loopback only.
    #[default]
    Deny,
}

/// A sandbox's egress policy as stored and sent to the runtime.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NetworkPolicy {
    /// `allow` or `deny`.
    #[serde(default)]
    pub egress: Egress,
    /// CIDRs, addresses and host names admitted when `egress` is `deny`.
    #[serde(default)]
    pub allow: Vec<String>,
}

impl NetworkPolicy {
    /// Loopback only.
    pub fn deny() -> Self {
        NetworkPolicy::default()
    }

    /// The public internet.
    pub fn allow_all() -> Self {
        NetworkPolicy {
            egress: Egress::Allow,
            allow: Vec::new(),
        }
    }

    /// Whether the sandbox needs an interface beyond loopback.
    pub fn needs_interface(&self) -> bool {
        self.egress == Egress::Allow || !self.allow.is_empty()
    }

    /// Checks the policy and sorts its entries into rules.
    pub fn rules(&self) -> Result<Rules, PolicyError> {
        if self.allow.is_empty() {
            return Ok(match self.egress {
                Egress::Allow => Rules::Public,
                Egress::Deny => Rules::Loopback,
            });
        }
        if self.egress == Egress::Allow {
            return Err(PolicyError::AllowListWithAllow);
        }
        if self.allow.len() > MAX_ALLOW_ENTRIES {
            return Err(PolicyError::TooManyEntries(self.allow.len()));
        }
        let mut nets = Vec::new();
        let mut names = Vec::new();
        for entry in &self.allow {
            match parse_entry(entry)? {
                Entry::Net(net) => nets.push(net),
                Entry::Name(name) => names.push(name),
            }
        }
        Ok(Rules::List { nets, names })
    }
}

/// A checked policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rules {
    /// No interface: loopback only.
    Loopback,
    /// Every public address.
    Public,
    /// Only these.
    List {
        /// Networks admitted as given: their public part, and their private
        /// part on a server that allows private egress; never link-local,
        /// loopback or multicast space (see [`super::nft`]).
        nets: Vec<Cidr>,
        /// Host names admitted through the resolver.
        names: Vec<NamePattern>,
    },
}

impl Rules {
    /// Whether the resolver answers `name` for this sandbox.
    pub fn admits_name(&self, name: &str) -> bool {
        match self {
            Rules::Loopback => false,
            Rules::Public => true,
            Rules::List { names, .. } => {
                let name = normalize(name);
                names.iter().any(|p| p.matches(&name))
            }
        }
    }
}

/// An IPv4 network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    /// First address (host bits zero).
    pub addr: Ipv4Addr,
    /// Prefix length, 0 to 32.
    pub prefix: u8,
}

impl Cidr {
    /// `addr/prefix` with the host bits cleared.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Cidr {
        Cidr {
            addr: Ipv4Addr::from(u32::from(addr) & mask(prefix)),
            prefix,
        }
    }

    /// Whether `ip` is in the network.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == u32::from(self.addr)
    }

    /// Number of addresses.
    pub fn size(&self) -> u64 {
        1u64 << (32 - self.prefix)
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl std::str::FromStr for Cidr {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Cidr, PolicyError> {
        let bad = || PolicyError::BadEntry(s.to_string());
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, p.parse::<u8>().map_err(|_| bad())?),
            None => (s, 32),
        };
        if prefix > 32 {
            return Err(bad());
        }
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        Ok(Cidr::new(addr, prefix))
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    }
}

/// An admitted host name: exact, or every name under a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamePattern {
    /// Exactly this name.
    Exact(String),
    /// Any name ending in `.<domain>` (not the domain itself).
    Suffix(String),
}

impl NamePattern {
    fn matches(&self, name: &str) -> bool {
        match self {
            NamePattern::Exact(n) => n == name,
            NamePattern::Suffix(domain) => name
                .strip_suffix(domain.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
        }
    }
}

/// Lower case, without the trailing dot of a fully qualified name.
pub fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

enum Entry {
    Net(Cidr),
    Name(NamePattern),
}

fn parse_entry(raw: &str) -> Result<Entry, PolicyError> {
    let entry = raw.trim();
    if entry.contains(':') {
        return Err(PolicyError::Ipv6(raw.to_string()));
    }
    if entry
        .split('/')
        .next()
        .is_some_and(|a| a.parse::<Ipv4Addr>().is_ok())
    {
        return entry.parse().map(Entry::Net);
    }
    let (wildcard, name) = match entry.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, entry),
    };
    let name = normalize(name);
    if !is_host_name(&name) {
        return Err(PolicyError::BadEntry(raw.to_string()));
    }
    Ok(Entry::Name(if wildcard {
        NamePattern::Suffix(name)
    } else {
        NamePattern::Exact(name)
    }))
}

/// 1 to 253 characters in dot-separated labels of letters, digits, `-` and
/// `_`, none empty, longer than 63 or starting or ending with `-`; the last
/// label is not all digits (that would be an address).
fn is_host_name(name: &str) -> bool {
    if name.is_empty() || name.len() > 253 {
        return false;
    }
    let labels: Vec<&str> = name.split('.').collect();
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    labels.iter().all(label_ok)
        && !labels
            .last()
            .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
}

/// Why a policy is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// An allow-list came with `egress: "allow"`, which admits everything
    /// public already.
    #[error("an allow list needs egress \"deny\" (everything it does not name is denied); egress \"allow\" admits every public address already")]
    AllowListWithAllow,
    /// Too many entries.
    #[error("the allow list has {0} entries; at most {MAX_ALLOW_ENTRIES} are allowed")]
    TooManyEntries(usize),
    /// An entry is neither an IPv4 address, a CIDR nor a host name.
    #[error("allow entry {0:?} is not an IPv4 address, an IPv4 CIDR, a host name or *.domain")]
    BadEntry(String),
    /// An IPv6 entry: sandboxes have IPv4 only.
    #[error("allow entry {0:?} is IPv6; sandboxes have IPv4 egress only")]
    Ipv6(String),
    /// A CIDR entry inside space no sandbox ever reaches (link-local and
    /// cloud metadata, loopback, multicast, reserved): whatever a list
    /// says, the sandbox could not reach it.
    #[error("allow entry {entry:?} lies in {range}, link-local, loopback or multicast space, which no sandbox reaches whatever its allow list says (cloud metadata lives there)")]
    NeverReachable {
        /// The entry as given.
        entry: String,
        /// The closed range it lies in.
        range: Cidr,
    },
    /// A CIDR entry inside a private range on a server that keeps private
    /// ranges closed.
    #[error("allow entry {entry:?} lies in the private range {range}, which this server keeps closed to sandboxes (its admin can open private ranges with --allow-private-egress)")]
    PrivateRange {
        /// The entry as given.
        entry: String,
        /// The private range it lies in.
        range: Cidr,
    },
}

impl NetworkPolicy {
    /// Refuses allow-list CIDRs that name only space the sandbox would not
    /// reach anyway: what no sandbox ever reaches ([`super::nft::NEVER`]),
    /// and private ranges ([`super::nft::PRIVATE`]) unless `allow_private`
    /// (the admin's choice). A wider CIDR (`0.0.0.0/0`) is accepted: the
    /// rules open only its reachable part. Host names are not checked here;
    /// what the resolver learns for them never opens closed space.
    pub fn check_reachable(&self, allow_private: bool) -> Result<(), PolicyError> {
        let ranges =
            |list: &[&str]| -> Vec<Cidr> { list.iter().filter_map(|s| s.parse().ok()).collect() };
        let never = ranges(super::nft::NEVER);
        let private = ranges(super::nft::PRIVATE);
        let inside = |net: &Cidr, ranges: &[Cidr]| {
            ranges
                .iter()
                .find(|outer| outer.prefix <= net.prefix && outer.contains(net.addr))
                .copied()
        };
        for entry in &self.allow {
            let Ok(Entry::Net(net)) = parse_entry(entry) else {
                continue;
            };
            if let Some(range) = inside(&net, &never) {
                return Err(PolicyError::NeverReachable {
                    entry: entry.clone(),
                    range,
                });
            }
            if let Some(range) = inside(&net, &private).filter(|_| !allow_private) {
                return Err(PolicyError::PrivateRange {
                    entry: entry.clone(),
                    range,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> NetworkPolicy {
        NetworkPolicy {
            egress: Egress::Deny,
            allow: entries.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn metadata_never_and_private_ranges_only_when_allowed() {
        for (entry, range) in [
            ("169.254.169.254", "169.254.0.0/16"),
            ("169.254.0.0/16", "169.254.0.0/16"),
            (" 169.254.169.254/32", "169.254.0.0/16"),
            ("127.0.0.1", "127.0.0.0/8"),
            ("0.0.0.0/8", "0.0.0.0/8"),
            ("224.0.0.1", "224.0.0.0/3"),
            ("255.255.255.255", "224.0.0.0/3"),
        ] {
            for allow_private in [false, true] {
                let err = list(&["8.8.8.8", entry])
                    .check_reachable(allow_private)
                    .unwrap_err();
                assert_eq!(
                    err,
                    PolicyError::NeverReachable {
                        entry: entry.into(),
                        range: range.parse().unwrap()
                    }
                );
                // The message names the entry as the tenant wrote it.
                assert!(err.to_string().contains(&format!("{entry:?}")), "{err}");
            }
        }
        for (entry, range) in [
            ("10.0.0.0/8", "10.0.0.0/8"),
            ("10.1.2.3", "10.0.0.0/8"),
            ("192.168.1.0/24", "192.168.0.0/16"),
            ("172.16.5.5", "172.16.0.0/12"),
            ("100.64.0.1", "100.64.0.0/10"),
            ("192.0.0.170", "192.0.0.0/24"),
        ] {
            let err = list(&[entry]).check_reachable(false).unwrap_err();
            assert_eq!(
                err,
                PolicyError::PrivateRange {
                    entry: entry.into(),
                    range: range.parse().unwrap()
                }
            );
            assert!(err.to_string().contains("--allow-private-egress"), "{err}");
            assert_eq!(list(&[entry]).check_reachable(true), Ok(()), "{entry}");
        }
        // Wider CIDRs and names are accepted: the rules open only their
        // reachable part.
        for entry in [
            "0.0.0.0/0",
            "8.8.8.8",
            "1.0.0.0/8",
            "128.0.0.0/1",
            "example.com",
            "*.internal",
        ] {
            assert_eq!(list(&[entry]).check_reachable(false), Ok(()), "{entry}");
        }
        assert_eq!(NetworkPolicy::allow_all().check_reachable(false), Ok(()));
    }

    #[test]
    fn modes() {
        assert_eq!(NetworkPolicy::deny().rules().unwrap(), Rules::Loopback);
        assert_eq!(NetworkPolicy::allow_all().rules().unwrap(), Rules::Public);
        assert!(!NetworkPolicy::deny().needs_interface());
        assert!(list(&["1.2.3.4"]).needs_interface());
        let with_allow = NetworkPolicy {
            egress: Egress::Allow,
            allow: vec!["1.2.3.4".into()],
        };
        assert_eq!(with_allow.rules(), Err(PolicyError::AllowListWithAllow));
    }

    #[test]
    fn entries_parse() {
        let rules = list(&["198.18.0.0/15", "1.2.3.4", "Example.COM.", "*.pypi.org"])
            .rules()
            .unwrap();
        let Rules::List { nets, names } = &rules else {
            panic!("{rules:?}")
        };
        assert_eq!(nets[0].to_string(), "198.18.0.0/15");
        assert_eq!(nets[1].to_string(), "1.2.3.4/32");
        assert!(rules.admits_name("example.com"));
        assert!(rules.admits_name("EXAMPLE.com."));
        assert!(!rules.admits_name("www.example.com"));
        assert!(rules.admits_name("files.pypi.org"));
        assert!(!rules.admits_name("pypi.org"));
        assert!(!rules.admits_name("evilpypi.org"));
        assert_eq!(names.len(), 2);
        for bad in [
            "",
            "1.2.3.4/33",
            "a..b",
            "-a.com",
            "::1",
            "fe80::/10",
            "x y",
            "1.2.3",
        ] {
            assert!(list(&[bad]).rules().is_err(), "{bad:?} accepted");
        }
        let many: Vec<String> = (0..300).map(|i| format!("h{i}.example")).collect();
        let policy = NetworkPolicy {
            egress: Egress::Deny,
            allow: many,
        };
        assert!(matches!(
            policy.rules(),
            Err(PolicyError::TooManyEntries(300))
        ));
    }

    #[test]
    fn cidrs() {
        let net: Cidr = "10.213.7.9/16".parse().unwrap();
        assert_eq!(net.to_string(), "10.213.0.0/16");
        assert!(net.contains(Ipv4Addr::new(10, 213, 255, 1)));
        assert!(!net.contains(Ipv4Addr::new(10, 214, 0, 1)));
        assert_eq!(net.size(), 65536);
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(Ipv4Addr::new(8, 8, 8, 8)));
    }

    #[test]
    fn policies_round_trip_and_old_specs_parse() {
        let p: NetworkPolicy = serde_json::from_str("{}").unwrap();
        assert_eq!(p, NetworkPolicy::deny());
        let p: NetworkPolicy =
            serde_json::from_str(r#"{"egress":"deny","allow":["a.example"]}"#).unwrap();
        assert_eq!(p, list(&["a.example"]));
    }
}
