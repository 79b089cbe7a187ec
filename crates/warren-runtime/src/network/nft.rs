//! The nftables side: one table of our own (`inet <name>`), never anyone
//! else's, changed only through atomic `nft -f -` batches.
//!
//! ```text
//! table inet warren
//!   set never        loopback, link-local (metadata), multicast, reserved:
//!                    refused to every sandbox before its own chain
//!   set blocked      private ranges (and the above): refused unless the
//!                    server allows private egress and an allow-list names them
//!   map sandboxes    sandbox address → jump sb_<hex>
//!   prerouting       from a sandbox veth: drop unless the source address
//!                    routes back through that veth (anti-spoofing)
//!   input            from a sandbox veth: only DNS to the gateway; the host's
//!                    own services, on any of its addresses, are refused
//!   forward          sandbox → sandbox refused; sandbox → out: its chain;
//!                    → sandbox: replies only
//!   postrouting      masquerade sandbox addresses leaving the host
//!   sb_<hex>         one sandbox's policy (public, or its allow-list)
//!   sn_<hex>         its allowed CIDRs; sd_<hex> its resolver-learnt addresses (with timeouts)
//! ```
//!
//! Refusals are `reject` (an immediate "host unreachable" for the sandbox's
//! client) rather than silent drops, except for spoofed packets.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

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

impl Tables {
    /// The base ruleset: table, sets, hooks. Safe to load again: every
    /// chain it owns is flushed and refilled, per-sandbox chains and map
    /// elements are kept.
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
        line(format!(
            "add map {t} sandboxes {{ type ipv4_addr : verdict; }}"
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
            "add rule {t} forward iifname {veths} ip saddr vmap @sandboxes"
        ));
        line(format!("add rule {t} forward iifname {veths} {REJECT}"));
        line(format!(
            "add rule {t} forward oifname {veths} ct state established,related accept"
        ));
        line(format!("add rule {t} forward oifname {veths} drop"));
        line(format!(
            "add rule {t} postrouting ip saddr {cidr} oifname != {veths} masquerade"
        ));
        s
    }

    /// Installs (or replaces, atomically) the policy of the sandbox at
    /// `addr`. With `forget_learnt`, resolver-learnt addresses are dropped
    /// too (after a policy change the names they were learnt for may no
    /// longer be admitted); re-applying the same policy keeps them.
    pub fn sandbox_script(&self, addr: Ipv4Addr, rules: &Rules, forget_learnt: bool) -> String {
        let t = format!("inet {}", self.table);
        let key = key(addr);
        let mut s = String::new();
        let mut line = |l: String| {
            s.push_str(&l);
            s.push('\n');
        };
        line(format!("add chain {t} sb_{key}"));
        line(format!("flush chain {t} sb_{key}"));
        line(format!(
            "add set {t} sn_{key} {{ type ipv4_addr; flags interval; }}"
        ));
        line(format!("flush set {t} sn_{key}"));
        line(format!(
            "add set {t} sd_{key} {{ type ipv4_addr; flags timeout; }}"
        ));
        if forget_learnt {
            line(format!("flush set {t} sd_{key}"));
        }
        match rules {
            Rules::Loopback => line(format!("add rule {t} sb_{key} {REJECT}")),
            Rules::Public => {
                line(format!("add rule {t} sb_{key} ip daddr @blocked {REJECT}"));
                line(format!("add rule {t} sb_{key} accept"));
            }
            Rules::List { nets, .. } => {
                if !nets.is_empty() {
                    let elements: Vec<String> = merge(nets).iter().map(Cidr::to_string).collect();
                    line(format!(
                        "add element {t} sn_{key} {{ {} }}",
                        elements.join(", ")
                    ));
                }
                if !self.allow_private {
                    line(format!("add rule {t} sb_{key} ip daddr @blocked {REJECT}"));
                }
                line(format!("add rule {t} sb_{key} ip daddr @sn_{key} accept"));
                line(format!("add rule {t} sb_{key} ip daddr @blocked {REJECT}"));
                line(format!("add rule {t} sb_{key} ip daddr @sd_{key} accept"));
                line(format!("add rule {t} sb_{key} {REJECT}"));
            }
        }
        line(format!(
            "add element {t} sandboxes {{ {addr} : jump sb_{key} }}"
        ));
        s
    }

    /// Removes everything of the sandbox at `addr`; succeeds whether or not
    /// it was there (each object is added, then deleted, in one batch).
    pub fn teardown_script(&self, addr: Ipv4Addr) -> String {
        let t = format!("inet {}", self.table);
        let key = key(addr);
        [
            format!("add chain {t} sb_{key}"),
            format!("add element {t} sandboxes {{ {addr} : jump sb_{key} }}"),
            format!("delete element {t} sandboxes {{ {addr} }}"),
            format!("delete chain {t} sb_{key}"),
            format!("add set {t} sn_{key} {{ type ipv4_addr; flags interval; }}"),
            format!("delete set {t} sn_{key}"),
            format!("add set {t} sd_{key} {{ type ipv4_addr; flags timeout; }}"),
            format!("delete set {t} sd_{key}"),
            String::new(),
        ]
        .join("\n")
    }

    /// Admits `ips` (answers of the resolver) for the sandbox at `addr` for
    /// `ttl`, clamped to [[`MIN_DNS_TIMEOUT`], a day]. With `refresh`, each
    /// element is deleted first so that its timeout starts again (the
    /// caller knows it is present).
    pub fn learnt_script(
        &self,
        addr: Ipv4Addr,
        ips: &[Ipv4Addr],
        ttl: Duration,
        refresh: bool,
    ) -> String {
        let t = format!("inet {}", self.table);
        let key = key(addr);
        let secs = ttl.clamp(MIN_DNS_TIMEOUT, MAX_DNS_TIMEOUT).as_secs();
        let mut s = String::new();
        for ip in ips {
            if refresh {
                s.push_str(&format!("delete element {t} sd_{key} {{ {ip} }}\n"));
            }
            s.push_str(&format!(
                "add element {t} sd_{key} {{ {ip} timeout {secs}s }}\n"
            ));
        }
        s
    }

    /// Starts `nft -f -` on `script`; [`Pending::wait`] collects it. Lets a
    /// caller overlap the few milliseconds of `nft` with other work.
    pub fn spawn(&self, script: String) -> Result<Pending, NetworkError> {
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
        // The script is a few kB at most, well within the pipe's buffer.
        let written = stdin.write_all(script.as_bytes());
        drop(stdin);
        if let Err(source) = written {
            let _ = child.kill();
            let _ = child.wait();
            return Err(NetworkError::NftSpawn {
                nft: self.nft.clone(),
                source,
            });
        }
        Ok(Pending {
            child: Some(child),
            script,
        })
    }

    /// Runs `script` to completion.
    pub fn run(&self, script: String) -> Result<(), NetworkError> {
        self.spawn(script)?.wait()
    }

    /// Addresses of the sandboxes that have a chain in the table.
    pub fn sandbox_chains(&self) -> Result<Vec<Ipv4Addr>, NetworkError> {
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
        let chains = doc["nftables"].as_array().cloned().unwrap_or_default();
        Ok(chains
            .iter()
            .filter_map(|item| item["chain"]["name"].as_str())
            .filter_map(|name| name.strip_prefix("sb_"))
            .filter_map(|hex| u32::from_str_radix(hex, 16).ok())
            .map(Ipv4Addr::from)
            .collect())
    }
}

/// A running `nft -f -`. Dropping it waits for `nft` to finish.
#[derive(Debug)]
pub struct Pending {
    child: Option<Child>,
    script: String,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }
}

impl Pending {
    /// Waits for `nft`; its complaint is the error if it failed.
    pub fn wait(mut self) -> Result<(), NetworkError> {
        let child = self.child.take().expect("waited once");
        let out = child
            .wait_with_output()
            .map_err(|source| NetworkError::NftSpawn {
                nft: PathBuf::from("nft"),
                source,
            })?;
        if out.status.success() {
            Ok(())
        } else {
            Err(NetworkError::Nft {
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
                script: std::mem::take(&mut self.script),
            })
        }
    }
}

/// The sandbox's key in chain and set names: its address in hex.
pub fn key(addr: Ipv4Addr) -> String {
    format!("{:08x}", u32::from(addr))
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

    #[test]
    fn metadata_and_private_ranges_stay_closed_to_allow_lists() {
        let t = tables();
        let base = t.base_script();
        let never = base
            .lines()
            .position(|l| l.contains("ip daddr @never reject"))
            .expect("the never rule");
        let policies = base
            .lines()
            .position(|l| l.contains("vmap @sandboxes"))
            .expect("the per-sandbox jump");
        assert!(never < policies, "{base}");
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
        assert!(set("never").contains("169.254.0.0/16"), "{base}");

        let addr = Ipv4Addr::new(10, 213, 0, 5);
        let rules = crate::network::NetworkPolicy {
            egress: crate::network::Egress::Deny,
            allow: vec!["0.0.0.0/0".into()],
        }
        .rules()
        .unwrap();
        let position = |script: &str, what: &str| {
            script
                .lines()
                .position(|l| l.contains(what))
                .unwrap_or_else(|| panic!("no {what:?} in {script}"))
        };
        let closed = t.sandbox_script(addr, &rules, true);
        assert!(
            position(&closed, "@blocked reject") < position(&closed, "@sn_0ad50005 accept"),
            "{closed}"
        );
        let open = Tables {
            allow_private: true,
            ..tables()
        }
        .sandbox_script(addr, &rules, true);
        assert!(
            position(&open, "@sn_0ad50005 accept") < position(&open, "@blocked reject"),
            "{open}"
        );
        // Learnt addresses come after the private ranges' refusal either way.
        for script in [&closed, &open] {
            assert!(
                position(script, "@blocked reject") < position(script, "@sd_0ad50005 accept"),
                "{script}"
            );
        }
        // `allow` (no list) is public space only, whatever the server allows.
        for allow_private in [false, true] {
            let public = Tables {
                allow_private,
                ..tables()
            }
            .sandbox_script(addr, &Rules::Public, true);
            assert!(
                position(&public, "@blocked reject") < position(&public, "sb_0ad50005 accept"),
                "{public}"
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
        let t = tables();
        let addr = Ipv4Addr::new(10, 213, 0, 5);
        for script in [
            t.base_script(),
            t.sandbox_script(addr, &Rules::Public, true),
            t.teardown_script(addr),
            t.learnt_script(
                addr,
                &[Ipv4Addr::new(1, 1, 1, 1)],
                Duration::from_secs(5),
                true,
            ),
        ] {
            for line in script.lines() {
                let words: Vec<&str> = line.split_whitespace().collect();
                assert_eq!(words[2..4], ["inet", "warren"], "{line}");
                assert_ne!(words[1], "ruleset", "{line}");
            }
        }
        let learnt = t.learnt_script(
            addr,
            &[Ipv4Addr::new(1, 1, 1, 1)],
            Duration::from_secs(5),
            false,
        );
        assert_eq!(
            learnt,
            "add element inet warren sd_0ad50005 { 1.1.1.1 timeout 3600s }\n"
        );
    }
}
