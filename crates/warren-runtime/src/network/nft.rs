//! The nftables side: one table of our own (`inet <name>`), never anyone
//! else's. Its chains and sets are loaded once, at start, by `nft -f -`;
//! everything per sandbox is set elements, changed through [`super::nfnl`]
//! in atomic batches that cost the same with a thousand sandboxes as with
//! none (no per-sandbox chain or rule: a rule list would be walked, and
//! `nft` would cache it, on every change).
//!
//! ```text
//! table inet warren
//!   set never          loopback, link-local (metadata), multicast, reserved:
//!                      refused to every sandbox before its own policy
//!   set blocked        private ranges (and the above): refused unless the
//!                      server allows private egress and an allow-list names them
//!   set egress_public  veth . address of every `allow` sandbox
//!   set egress_listed  veth . address of every sandbox with an allow-list
//!   set allowed        address . allowed range, for allow-lists (intervals)
//!   set learnt         address . resolver-learnt address (with timeouts)
//!   prerouting         from a sandbox veth: drop unless the source address
//!                      routes back through that veth (anti-spoofing)
//!   input              from a sandbox veth: only DNS to the gateway; the host's
//!                      own services, on any of its addresses, are refused
//!   forward            sandbox → sandbox refused; @never refused; sandbox →
//!                      out: `public` or `listed` by the sets above, keyed on
//!                      the veth and the address together, else refused;
//!                      → sandbox: replies only
//!   public             private ranges refused, the rest accepted
//!   listed             @allowed and @learnt of the source address accepted
//!   postrouting        masquerade sandbox addresses leaving the host
//! ```
//!
//! Refusals are `reject` (an immediate "host unreachable" for the sandbox's
//! client) rather than silent drops, except for spoofed packets. Servers
//! before this layout kept a chain `sb_<hex>` and sets `sn_<hex>`/`sd_<hex>`
//! per sandbox behind a verdict map `sandboxes`: [`Tables::legacy_script`]
//! removes them.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::nfnl::{Change, Element, Op};
use super::policy::{Cidr, Rules};
use super::NetworkError;

/// Ranges no sandbox ever reaches, whatever its policy: "this network",
/// loopback, link-local (cloud metadata at 169.254.169.254 among them),
/// multicast and reserved.
pub const NEVER: &[&str] = &["0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/3"];

/// Private and shared ranges: reached only through an allow-list's CIDR,
/// and only on a server started with `allow_private` (the admin's choice,
/// never a tenant's).
pub const PRIVATE: &[&str] = &[
    "10.0.0.0/8",
    "100.64.0.0/10",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.168.0.0/16",
];

const REJECT: &str = "reject with icmpx type admin-prohibited";

/// Addresses learnt through DNS stay admitted at least this long after the
/// answer (clients cache answers past their TTL) and at most a day.
pub const MIN_DNS_TIMEOUT: Duration = Duration::from_secs(3600);
const MAX_DNS_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Names and addresses of one network instance's rules.
#[derive(Debug, Clone)]
pub struct Tables {
    /// `nft` binary.
    pub nft: PathBuf,
    /// Table name (family `inet`).
    pub table: String,
    /// Prefix of every sandbox veth on the host (`warren-`).
    pub veth_prefix: String,
    /// The sandboxes' network.
    pub cidr: Cidr,
    /// The gateway (and resolver) address.
    pub gateway: Ipv4Addr,
    /// Whether an allow-list's CIDRs may open private ranges.
    pub allow_private: bool,
}

/// Set of the `allow` sandboxes (`ifname . ipv4_addr`).
pub const PUBLIC: &str = "egress_public";
/// Set of the sandboxes with an allow-list (`ifname . ipv4_addr`).
pub const LISTED: &str = "egress_listed";
/// Allowed ranges per sandbox (`ipv4_addr . ipv4_addr`, intervals).
pub const ALLOWED: &str = "allowed";
/// Resolver-learnt addresses per sandbox (`ipv4_addr . ipv4_addr`, timeouts).
pub const LEARNT: &str = "learnt";
/// Length of an interface name in a set key (`IFNAMSIZ`).
const IFNAMSIZ: usize = 16;

/// The egress elements of one sandbox, as installed in the kernel (its
/// learnt addresses aside).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Installed {
    /// `Some(true)`: in [`PUBLIC`]; `Some(false)`: in [`LISTED`].
    pub public: Option<bool>,
    /// Its ranges in [`ALLOWED`], first and last address.
    pub ranges: Vec<(Ipv4Addr, Ipv4Addr)>,
}

impl Installed {
    /// What `rules` install.
    pub fn of(rules: &Rules) -> Installed {
        match rules {
            Rules::Loopback => Installed::default(),
            Rules::Public => Installed {
                public: Some(true),
                ranges: Vec::new(),
            },
            Rules::List { nets, .. } => Installed {
                public: Some(false),
                ranges: merge(nets)
                    .iter()
                    .map(|n| {
                        let first = u32::from(n.addr);
                        let last = first + (n.size() - 1) as u32;
                        (n.addr, Ipv4Addr::from(last))
                    })
                    .collect(),
            },
        }
    }
}

impl Tables {
    /// The base ruleset: table, sets, chains. Safe to load again: every
    /// chain it owns is flushed and refilled, the sets' elements are kept.
    pub fn base_script(&self) -> String {
        let t = format!("inet {}", self.table);
        let veths = format!("\"{}*\"", self.veth_prefix);
        let (cidr, gw) = (self.cidr, self.gateway);
        let never = NEVER.join(", ");
        let blocked = [NEVER, PRIVATE].concat().join(", ");
        let mut s = String::new();
        let mut line = |l: String| {
            s.push_str(&l);
            s.push('\n');
        };
        line(format!("add table {t}"));
        line(format!(
            "add set {t} never {{ type ipv4_addr; flags interval; elements = {{ {never} }}; }}"
        ));
        line(format!(
            "add set {t} blocked {{ type ipv4_addr; flags interval; elements = {{ {blocked} }}; }}"
        ));
        for set in [PUBLIC, LISTED] {
            line(format!("add set {t} {set} {{ type ifname . ipv4_addr; }}"));
        }
        line(format!(
            "add set {t} {ALLOWED} {{ type ipv4_addr . ipv4_addr; flags interval; }}"
        ));
        line(format!(
            "add set {t} {LEARNT} {{ type ipv4_addr . ipv4_addr; flags timeout; }}"
        ));
        for (chain, hook, priority) in [
            ("prerouting", "filter hook prerouting", "-150"),
            ("input", "filter hook input", "0"),
            ("forward", "filter hook forward", "0"),
            ("postrouting", "nat hook postrouting", "100"),
        ] {
            line(format!(
                "add chain {t} {chain} {{ type {hook} priority {priority}; policy accept; }}"
            ));
            line(format!("flush chain {t} {chain}"));
        }
        for chain in ["public", "listed"] {
            line(format!("add chain {t} {chain}"));
            line(format!("flush chain {t} {chain}"));
        }
        line(format!(
            "add rule {t} prerouting iifname {veths} fib saddr . iif oif missing drop"
        ));
        line(format!(
            "add rule {t} input iifname {veths} ip daddr {gw} udp dport 53 accept"
        ));
        line(format!(
            "add rule {t} input iifname {veths} ip daddr {gw} tcp dport 53 accept"
        ));
        line(format!("add rule {t} input iifname {veths} {REJECT}"));
        line(format!(
            "add rule {t} forward iifname {veths} oifname {veths} {REJECT}"
        ));
        line(format!(
            "add rule {t} forward iifname {veths} meta nfproto ipv6 drop"
        ));
        line(format!(
            "add rule {t} forward iifname {veths} ip daddr {cidr} {REJECT}"
        ));
        line(format!(
            "add rule {t} forward iifname {veths} ip daddr @never {REJECT}"
        ));
        line(format!(
            "add rule {t} forward iifname {veths} iifname . ip saddr @{PUBLIC} goto public"
        ));
        line(format!(
            "add rule {t} forward iifname {veths} iifname . ip saddr @{LISTED} goto listed"
        ));
        line(format!("add rule {t} forward iifname {veths} {REJECT}"));
        line(format!(
            "add rule {t} forward oifname {veths} ct state established,related accept"
        ));
        line(format!("add rule {t} forward oifname {veths} drop"));
        line(format!("add rule {t} public ip daddr @blocked {REJECT}"));
        line(format!("add rule {t} public accept"));
        if !self.allow_private {
            line(format!("add rule {t} listed ip daddr @blocked {REJECT}"));
        }
        line(format!(
            "add rule {t} listed ip saddr . ip daddr @{ALLOWED} accept"
        ));
        line(format!("add rule {t} listed ip daddr @blocked {REJECT}"));
        line(format!(
            "add rule {t} listed ip saddr . ip daddr @{LEARNT} accept"
        ));
        line(format!("add rule {t} listed {REJECT}"));
        line(format!(
            "add rule {t} postrouting ip saddr {cidr} oifname != {veths} masquerade"
        ));
        s
    }

    /// The key of the sandbox at `addr` in [`PUBLIC`] and [`LISTED`]: its
    /// host veth's name and its address, so a packet must carry both.
    pub fn egress_key(&self, addr: Ipv4Addr) -> Vec<u8> {
        let mut key = vec![0u8; IFNAMSIZ];
        let name = super::veth_name(self, addr);
        key[..name.len()].copy_from_slice(name.as_bytes());
        key.extend(addr.octets());
        key
    }

    /// The batch that takes the sandbox at `addr` from `old` to `new`, and
    /// removes the `forget` learnt addresses. Removals come first.
    pub fn changes(
        &self,
        addr: Ipv4Addr,
        old: &Installed,
        new: &Installed,
        forget: &[Ipv4Addr],
    ) -> Vec<Change> {
        let range = |(first, last): &(Ipv4Addr, Ipv4Addr)| Element {
            key: pair(addr, *first),
            key_end: Some(pair(addr, *last)),
            timeout: None,
        };
        let entry = || Element {
            key: self.egress_key(addr),
            key_end: None,
            timeout: None,
        };
        let set = |public: bool| if public { PUBLIC } else { LISTED };
        let mut changes = Vec::new();
        if let Some(public) = old.public.filter(|_| old.public != new.public) {
            changes.push(Change {
                op: Op::Destroy,
                set: set(public),
                elements: vec![entry()],
            });
        }
        let gone: Vec<Element> = (old.ranges.iter())
            .filter(|r| !new.ranges.contains(r))
            .map(range)
            .collect();
        let learnt: Vec<Element> = (forget.iter())
            .map(|ip| Element {
                key: pair(addr, *ip),
                key_end: None,
                timeout: None,
            })
            .collect();
        let added: Vec<Element> = (new.ranges.iter())
            .filter(|r| !old.ranges.contains(r))
            .map(range)
            .collect();
        for (op, set, elements) in [
            (Op::Destroy, ALLOWED, gone),
            (Op::Destroy, LEARNT, learnt),
            (Op::Add, ALLOWED, added),
        ] {
            if !elements.is_empty() {
                changes.push(Change { op, set, elements });
            }
        }
        if let Some(public) = new.public.filter(|_| old.public != new.public) {
            changes.push(Change {
                op: Op::Add,
                set: set(public),
                elements: vec![entry()],
            });
        }
        changes
    }

    /// Admits `fresh` and `refresh` (answers of the resolver) for the
    /// sandbox at `addr` for `ttl`, clamped to [[`MIN_DNS_TIMEOUT`], a day].
    /// `refresh` elements are removed first so that their timeout starts
    /// again.
    pub fn learnt_changes(
        &self,
        addr: Ipv4Addr,
        fresh: &[Ipv4Addr],
        refresh: &[Ipv4Addr],
        ttl: Duration,
    ) -> Vec<Change> {
        let timeout = ttl.clamp(MIN_DNS_TIMEOUT, MAX_DNS_TIMEOUT);
        let element = |ip: &Ipv4Addr, timeout| Element {
            key: pair(addr, *ip),
            key_end: None,
            timeout,
        };
        let mut changes = Vec::new();
        if !refresh.is_empty() {
            changes.push(Change {
                op: Op::Destroy,
                set: LEARNT,
                elements: refresh.iter().map(|ip| element(ip, None)).collect(),
            });
        }
        let all: Vec<Element> = (fresh.iter().chain(refresh))
            .map(|ip| element(ip, Some(timeout)))
            .collect();
        if !all.is_empty() {
            changes.push(Change {
                op: Op::Add,
                set: LEARNT,
                elements: all,
            });
        }
        changes
    }

    /// Runs `script` through `nft -f -`.
    pub fn run(&self, script: String) -> Result<(), NetworkError> {
        let mut child = Command::new(&self.nft)
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| NetworkError::NftSpawn {
                nft: self.nft.clone(),
                source,
            })?;
        let mut stdin = child.stdin.take().expect("piped stdin");
        let written = std::io::Write::write_all(&mut stdin, script.as_bytes());
        drop(stdin);
        let out = child
            .wait_with_output()
            .map_err(|source| NetworkError::NftSpawn {
                nft: self.nft.clone(),
                source,
            })?;
        if let Err(source) = written {
            return Err(NetworkError::NftSpawn {
                nft: self.nft.clone(),
                source,
            });
        }
        if out.status.success() {
            Ok(())
        } else {
            Err(NetworkError::Nft {
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
                script,
            })
        }
    }

    /// The batch that removes what servers of the old layout left in the
    /// table (per-sandbox chains and sets and their verdict map); `None`
    /// when there is nothing. Run after [`Tables::base_script`], which
    /// drops the only rule that used them.
    pub fn legacy_script(&self) -> Result<Option<String>, NetworkError> {
        let out = Command::new(&self.nft)
            .args(["-j", "list", "table", "inet", &self.table])
            .output()
            .map_err(|source| NetworkError::NftSpawn {
                nft: self.nft.clone(),
                source,
            })?;
        if !out.status.success() {
            return Err(NetworkError::Nft {
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
                script: "list table".into(),
            });
        }
        let doc: serde_json::Value =
            serde_json::from_slice(&out.stdout).map_err(|e| NetworkError::Nft {
                stderr: format!("unreadable JSON from nft: {e}"),
                script: "list table".into(),
            })?;
        let items = doc["nftables"].as_array().cloned().unwrap_or_default();
        Ok(legacy_script_of(&self.table, &items))
    }
}

/// See [`Tables::legacy_script`]: `items` is `nft -j list table`'s list.
fn legacy_script_of(table: &str, items: &[serde_json::Value]) -> Option<String> {
    let t = format!("inet {table}");
    let named = |kind: &str, prefixes: &[&str]| -> Vec<String> {
        items
            .iter()
            .filter_map(|item| item[kind]["name"].as_str())
            .filter(|name| {
                prefixes.iter().any(|p| {
                    name.strip_prefix(p)
                        .is_some_and(|hex| hex.len() == 8 && u32::from_str_radix(hex, 16).is_ok())
                })
            })
            .map(str::to_string)
            .collect()
    };
    let map = items
        .iter()
        .any(|item| item["map"]["name"].as_str() == Some("sandboxes"));
    let chains = named("chain", &["sb_"]);
    let sets = named("set", &["sn_", "sd_"]);
    if !map && chains.is_empty() && sets.is_empty() {
        return None;
    }
    let mut s = String::new();
    if map {
        s.push_str(&format!(
            "flush map {t} sandboxes\ndelete map {t} sandboxes\n"
        ));
    }
    for chain in chains {
        s.push_str(&format!(
            "flush chain {t} {chain}\ndelete chain {t} {chain}\n"
        ));
    }
    for set in sets {
        s.push_str(&format!("delete set {t} {set}\n"));
    }
    Some(s)
}

/// A `ipv4_addr . ipv4_addr` key.
fn pair(a: Ipv4Addr, b: Ipv4Addr) -> Vec<u8> {
    [a.octets(), b.octets()].concat()
}

/// Sorted, with networks inside others dropped: nft refuses overlapping
/// intervals in one set.
fn merge(nets: &[Cidr]) -> Vec<Cidr> {
    let mut sorted: Vec<Cidr> = nets.to_vec();
    sorted.sort_by_key(|n| (u32::from(n.addr), n.prefix));
    let mut out: Vec<Cidr> = Vec::new();
    for net in sorted {
        if out
            .iter()
            .any(|kept| kept.contains(net.addr) && kept.prefix <= net.prefix)
        {
            continue;
        }
        out.retain(|kept| !(net.contains(kept.addr) && net.prefix <= kept.prefix));
        out.push(net);
    }
    out
}

/// Finds the `nft` binary: the usual sbin paths, then `PATH`.
pub fn find_nft() -> Option<PathBuf> {
    let fixed = ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"]
        .into_iter()
        .map(PathBuf::from);
    let on_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("nft"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    fixed.chain(on_path).find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables() -> Tables {
        Tables {
            nft: PathBuf::from("nft"),
            table: "warren".into(),
            veth_prefix: "warren-".into(),
            cidr: "10.213.0.0/16".parse().unwrap(),
            gateway: Ipv4Addr::new(10, 213, 0, 1),
            allow_private: false,
        }
    }

    fn position(script: &str, what: &str) -> usize {
        script
            .lines()
            .position(|l| l.contains(what))
            .unwrap_or_else(|| panic!("no {what:?} in {script}"))
    }

    #[test]
    fn metadata_and_private_ranges_stay_closed_to_allow_lists() {
        let base = tables().base_script();
        let never = position(&base, "ip daddr @never reject");
        assert!(
            never < position(&base, "@egress_public goto public"),
            "{base}"
        );
        assert!(
            never < position(&base, "@egress_listed goto listed"),
            "{base}"
        );
        let set = |name: &str| {
            base.lines()
                .find(|l| l.starts_with(&format!("add set inet warren {name} ")))
                .unwrap_or_else(|| panic!("set {name}: {base}"))
                .to_string()
        };
        for range in NEVER {
            assert!(set("never").contains(range), "{range}: {base}");
            assert!(set("blocked").contains(range), "{range}: {base}");
        }
        for range in PRIVATE {
            assert!(!set("never").contains(range), "{range}: {base}");
            assert!(set("blocked").contains(range), "{range}: {base}");
        }
        // Unlisted sandboxes end at a refusal.
        let last_forward = base
            .lines()
            .rfind(|l| l.contains(" forward iifname \"warren-*\""))
            .unwrap();
        assert!(last_forward.ends_with(REJECT), "{base}");

        let closed = base;
        assert!(
            position(&closed, "listed ip daddr @blocked reject")
                < position(&closed, "@allowed accept"),
            "{closed}"
        );
        let open = Tables {
            allow_private: true,
            ..tables()
        }
        .base_script();
        assert!(
            position(&open, "@allowed accept") < position(&open, "listed ip daddr @blocked reject"),
            "{open}"
        );
        // Learnt addresses come after the private ranges' refusal either
        // way, and `allow` (no list) is public space only.
        for script in [&closed, &open] {
            assert!(
                position(script, "listed ip daddr @blocked reject")
                    < position(script, "@learnt accept"),
                "{script}"
            );
            assert!(
                position(script, "public ip daddr @blocked reject")
                    < position(script, "public accept"),
                "{script}"
            );
        }
    }

    #[test]
    fn overlapping_networks_are_merged() {
        let nets: Vec<Cidr> = [
            "10.0.0.0/8",
            "10.1.0.0/16",
            "1.2.3.4",
            "1.2.3.0/24",
            "8.8.8.8",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        let merged: Vec<String> = merge(&nets).iter().map(Cidr::to_string).collect();
        assert_eq!(merged, ["1.2.3.0/24", "8.8.8.8/32", "10.0.0.0/8"]);
    }

    #[test]
    fn scripts_name_only_our_table() {
        let items: serde_json::Value = serde_json::json!([
            {"map": {"name": "sandboxes"}},
            {"chain": {"name": "sb_0ad50005"}},
            {"chain": {"name": "forward"}},
            {"set": {"name": "sn_0ad50005"}},
            {"set": {"name": "sd_0ad50005"}},
            {"set": {"name": "learnt"}},
        ]);
        let legacy = legacy_script_of("warren", items.as_array().unwrap()).unwrap();
        assert_eq!(
            legacy,
            "flush map inet warren sandboxes\ndelete map inet warren sandboxes\n\
             flush chain inet warren sb_0ad50005\ndelete chain inet warren sb_0ad50005\n\
             delete set inet warren sn_0ad50005\ndelete set inet warren sd_0ad50005\n"
        );
        let current =
            serde_json::json!([{"chain": {"name": "forward"}}, {"set": {"name": "learnt"}}]);
        assert_eq!(
            legacy_script_of("warren", current.as_array().unwrap()),
            None
        );
        for script in [tables().base_script(), legacy] {
            for line in script.lines() {
                let words: Vec<&str> = line.split_whitespace().collect();
                assert_eq!(words[2..4], ["inet", "warren"], "{line}");
                assert_ne!(words[1], "ruleset", "{line}");
            }
        }
    }

    #[test]
    fn a_sandbox_is_elements_only() {
        let t = tables();
        let addr = Ipv4Addr::new(10, 213, 1, 2);
        let key = t.egress_key(addr);
        assert_eq!(&key[..10], b"warren-102");
        assert_eq!(key[10..16], [0; 6]);
        assert_eq!(key[16..], [10, 213, 1, 2]);

        let none = Installed::default();
        let public = Installed::of(&Rules::Public);
        let list = crate::network::NetworkPolicy {
            egress: crate::network::Egress::Deny,
            allow: vec!["1.2.3.0/24".into(), "1.2.3.4".into(), "example.com".into()],
        }
        .rules()
        .unwrap();
        let listed = Installed::of(&list);
        assert_eq!(
            listed.ranges,
            [(Ipv4Addr::new(1, 2, 3, 0), Ipv4Addr::new(1, 2, 3, 255))]
        );
        let summary = |changes: Vec<Change>| -> Vec<(Op, &str, usize)> {
            changes
                .iter()
                .map(|c| (c.op, c.set, c.elements.len()))
                .collect()
        };
        assert_eq!(
            summary(t.changes(addr, &none, &public, &[])),
            [(Op::Add, PUBLIC, 1)]
        );
        assert!(t.changes(addr, &public, &public, &[]).is_empty());
        let learnt = [Ipv4Addr::new(9, 9, 9, 9)];
        assert_eq!(
            summary(t.changes(addr, &public, &listed, &learnt)),
            [
                (Op::Destroy, PUBLIC, 1),
                (Op::Destroy, LEARNT, 1),
                (Op::Add, ALLOWED, 1),
                (Op::Add, LISTED, 1)
            ]
        );
        assert_eq!(
            summary(t.changes(addr, &listed, &none, &learnt)),
            [
                (Op::Destroy, LISTED, 1),
                (Op::Destroy, ALLOWED, 1),
                (Op::Destroy, LEARNT, 1)
            ]
        );
        let range = &t.changes(addr, &none, &listed, &[])[0].elements[0];
        assert_eq!(range.key, [10, 213, 1, 2, 1, 2, 3, 0]);
        assert_eq!(
            range.key_end.as_deref(),
            Some(&[10, 213, 1, 2, 1, 2, 3, 255][..])
        );

        let changes = t.learnt_changes(addr, &learnt, &[], Duration::from_secs(5));
        assert_eq!(summary(changes.clone()), [(Op::Add, LEARNT, 1)]);
        assert_eq!(changes[0].elements[0].timeout, Some(MIN_DNS_TIMEOUT));
    }
}
