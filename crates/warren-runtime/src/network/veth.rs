//! A sandbox's point-to-point link: the host veth named for its address
//! (`<name>-<hex offset>`, the sandbox id in its alias), its peer as the
//! sandbox's `eth0`, and the routes both ways.

use std::net::Ipv4Addr;

use super::netlink::Netlink;
use super::nft::Tables;
use super::{netlink_err, Inner, NetworkError, SANDBOX_INTERFACE};

/// What [`Inner::wire`] does with a link that already has the sandbox's
/// interface name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Wire {
    /// A new init: the link is a leftover, to be replaced.
    Fresh,
    /// A running sandbox: the link is its own if its alias says so.
    Keep,
}

impl Inner {
    /// Creates and configures the sandbox's veth; with [`Wire::Keep`], not
    /// when it has one already.
    pub(super) fn wire(
        &self,
        id: &str,
        addr: Ipv4Addr,
        pid: i32,
        mode: Wire,
    ) -> Result<(), NetworkError> {
        let interface = veth_name(&self.tables, addr);
        let mut host = Netlink::open().map_err(netlink_err("opening netlink"))?;
        tracing::debug!(%id, pid, %interface, netns = ?std::fs::read_link(format!("/proc/{pid}/ns/net")).ok(), "wiring a sandbox");
        let mut added = host.add_veth(&interface, SANDBOX_INTERFACE, pid);
        if mode == Wire::Fresh && added.as_ref().is_err_and(is_eexist) {
            tracing::debug!(%id, %interface, "replacing a link left by the address's previous holder");
            host.delete_link(&interface)
                .map_err(netlink_err(format!("deleting the stale {interface}")))?;
            added = host.add_veth(&interface, SANDBOX_INTERFACE, pid);
        }
        match added {
            Ok(()) => {}
            Err(e) if is_eexist(&e) => {
                let owner = host
                    .links()
                    .map_err(netlink_err("listing links"))?
                    .into_iter()
                    .find(|l| l.name == interface)
                    .map(|l| l.alias)
                    .unwrap_or_default();
                if owner == id {
                    return Ok(());
                }
                return Err(NetworkError::Conflict {
                    interface,
                    owner,
                    id: id.to_string(),
                });
            }
            Err(e) => return Err(netlink_err(format!("creating veth {interface}"))(e)),
        }
        let configured = (|| {
            let index = host
                .link_index(&interface)
                .map_err(netlink_err(format!("finding {interface}")))?
                .ok_or_else(|| NetworkError::BadConfig(format!("{interface} vanished")))?;
            host.set_alias(index, id)
                .map_err(netlink_err(format!("naming {interface}")))?;
            host.set_up(index)
                .map_err(netlink_err(format!("bringing {interface} up")))?;
            host.add_route(addr, 32, None, index)
                .map_err(netlink_err(format!("routing {addr} to {interface}")))?;
            let mut inside = Netlink::open_in(pid)
                .map_err(netlink_err(format!("entering the netns of {pid}")))?;
            let eth = inside
                .link_index(SANDBOX_INTERFACE)
                .map_err(netlink_err("finding eth0 in the sandbox"))?
                .ok_or_else(|| NetworkError::BadConfig("eth0 missing in the sandbox".into()))?;
            inside
                .add_address(eth, addr, 32)
                .map_err(netlink_err("addressing eth0"))?;
            inside
                .set_up(eth)
                .map_err(netlink_err("bringing eth0 up"))?;
            inside
                .add_route(self.gateway, 32, None, eth)
                .map_err(netlink_err("routing the gateway"))?;
            inside
                .add_route(Ipv4Addr::UNSPECIFIED, 0, Some(self.gateway), eth)
                .map_err(netlink_err("adding the default route"))
        })();
        if configured.is_err() {
            let _ = host.delete_link(&interface);
        }
        configured
    }
}

fn is_eexist(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(libc::EEXIST)
}

/// `<name>-<hex offset>`.
pub(super) fn veth_name(tables: &Tables, addr: Ipv4Addr) -> String {
    let offset = u32::from(addr) - u32::from(tables.cidr.addr);
    format!("{}{offset:x}", tables.veth_prefix)
}

/// The address a host veth name stands for, if it is one of ours.
pub(super) fn veth_address(tables: &Tables, name: &str) -> Option<Ipv4Addr> {
    let hex = name.strip_prefix(&tables.veth_prefix)?;
    let offset = u32::from_str_radix(hex, 16).ok()?;
    (u64::from(offset) < tables.cidr.size() && offset >= 2)
        .then(|| Ipv4Addr::from(u32::from(tables.cidr.addr) + offset))
}
