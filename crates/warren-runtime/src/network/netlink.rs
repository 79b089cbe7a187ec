//! A minimal rtnetlink client: the handful of link, address and route
//! requests a sandbox's network needs, on a blocking `NETLINK_ROUTE` socket.
//!
//! Hand-rolled rather than a crate: the messages are few and fixed, the
//! client must work from the multithreaded server without an async runtime,
//! and each request is one send and one acknowledgement (a sandbox's whole
//! set-up is about ten of them, well under a millisecond; `ip` would cost a
//! few milliseconds per command in fork and exec alone).
//!
//! A netlink socket talks to the network namespace it was created in, so
//! [`Netlink::open_in`] creates it on a short-lived thread that first enters
//! the sandbox's namespace (`setns` on a thread changes that thread only).

use std::fs::File;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

pub(super) const NLMSG_HDRLEN: usize = 16;
pub(super) const NLMSG_ERROR: u16 = 2;
pub(super) const NLMSG_DONE: u16 = 3;

pub(super) const NLM_F_REQUEST: u16 = 0x1;
pub(super) const NLM_F_ACK: u16 = 0x4;
const NLM_F_REPLACE: u16 = 0x100;
const NLM_F_EXCL: u16 = 0x200;
pub(super) const NLM_F_CREATE: u16 = 0x400;
pub(super) const NLM_F_DUMP: u16 = 0x300;

const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;

const IFLA_IFNAME: u16 = 3;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_PID: u16 = 19;
const IFLA_IFALIAS: u16 = 20;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;

const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;

const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;

const RT_TABLE_MAIN: u8 = 254;
const RTPROT_STATIC: u8 = 4;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RT_SCOPE_LINK: u8 = 253;
const RTN_UNICAST: u8 = 1;

const NLA_F_NESTED: u16 = 1 << 15;

/// A link as a dump lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Interface index.
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// `ifalias` (empty when unset).
    pub alias: String,
}

/// Scope of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Directly attached: no gateway.
    Link,
    /// Through a gateway.
    Universe,
}

/// A blocking rtnetlink socket bound to one network namespace.
#[derive(Debug)]
pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

impl Netlink {
    /// A socket in the calling thread's network namespace.
    pub fn open() -> io::Result<Netlink> {
        let fd = socket(libc::NETLINK_ROUTE)?;
        Ok(Netlink { fd, seq: 1 })
    }

    /// A socket in the network namespace of host process `pid`.
    pub fn open_in(pid: i32) -> io::Result<Netlink> {
        let ns = File::open(format!("/proc/{pid}/ns/net"))?;
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    // SAFETY: setns with a namespace fd changes only this
                    // thread's network namespace; the thread ends right after
                    // creating the socket, which stays bound to that namespace.
                    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                        return Err(io::Error::last_os_error());
                    }
                    Netlink::open()
                })
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the netns thread panicked")))
        })
    }

    /// Index of the link named `name`, if there is one.
    pub fn link_index(&mut self, name: &str) -> io::Result<Option<u32>> {
        let mut msg = Message::new(RTM_GETLINK, 0);
        msg.ifinfo(0, 0, 0);
        msg.attr_str(IFLA_IFNAME, name);
        match self.exchange(msg, false) {
            Ok(replies) => Ok(replies
                .iter()
                .find(|(ty, _)| *ty == RTM_NEWLINK)
                .and_then(|(_, body)| parse_link(body))
                .map(|link| link.index)),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every link of the namespace.
    pub fn links(&mut self) -> io::Result<Vec<Link>> {
        let mut msg = Message::new(RTM_GETLINK, NLM_F_DUMP);
        msg.ifinfo(0, 0, 0);
        let replies = self.exchange(msg, true)?;
        Ok(replies
            .iter()
            .filter(|(ty, _)| *ty == RTM_NEWLINK)
            .filter_map(|(_, body)| parse_link(body))
            .collect())
    }

    /// Creates a bridge named `name` (no error if it exists).
    pub fn add_bridge(&mut self, name: &str) -> io::Result<()> {
        let mut msg = Message::new(RTM_NEWLINK, NLM_F_CREATE);
        msg.ifinfo(0, 0, 0);
        msg.attr_str(IFLA_IFNAME, name);
        let info = msg.begin(IFLA_LINKINFO);
        msg.attr(IFLA_INFO_KIND, b"bridge");
        msg.end(info);
        self.exchange(msg, false).map(drop)
    }

    /// Creates a veth pair: `name` here, `peer` in the network namespace of
    /// host process `peer_pid`. Fails with `EEXIST` when `name` exists.
    pub fn add_veth(&mut self, name: &str, peer: &str, peer_pid: i32) -> io::Result<()> {
        let mut msg = Message::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
        msg.ifinfo(0, 0, 0);
        msg.attr_str(IFLA_IFNAME, name);
        let info = msg.begin(IFLA_LINKINFO);
        msg.attr(IFLA_INFO_KIND, b"veth");
        let data = msg.begin(IFLA_INFO_DATA);
        let peer_info = msg.begin(VETH_INFO_PEER);
        msg.ifinfo(0, 0, 0);
        msg.attr_str(IFLA_IFNAME, peer);
        msg.attr(IFLA_NET_NS_PID, &(peer_pid as u32).to_ne_bytes());
        msg.end(peer_info);
        msg.end(data);
        msg.end(info);
        self.exchange(msg, false).map(drop)
    }

    /// Deletes the link named `name`; true if it existed.
    pub fn delete_link(&mut self, name: &str) -> io::Result<bool> {
        let mut msg = Message::new(RTM_DELLINK, 0);
        msg.ifinfo(0, 0, 0);
        msg.attr_str(IFLA_IFNAME, name);
        match self.exchange(msg, false) {
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Sets the `ifalias` of link `index` (the kernel ignores it on create).
    pub fn set_alias(&mut self, index: u32, alias: &str) -> io::Result<()> {
        let mut msg = Message::new(RTM_NEWLINK, 0);
        msg.ifinfo(index, 0, 0);
        msg.attr(IFLA_IFALIAS, alias.as_bytes());
        self.exchange(msg, false).map(drop)
    }

    /// Brings link `index` up.
    pub fn set_up(&mut self, index: u32) -> io::Result<()> {
        let up = libc::IFF_UP as u32;
        let mut msg = Message::new(RTM_NEWLINK, 0);
        msg.ifinfo(index, up, up);
        self.exchange(msg, false).map(drop)
    }

    /// Adds (or keeps) `addr/prefix` on link `index`.
    pub fn add_address(&mut self, index: u32, addr: Ipv4Addr, prefix: u8) -> io::Result<()> {
        let mut msg = Message::new(RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE);
        msg.bytes(&[libc::AF_INET as u8, prefix, 0, RT_SCOPE_UNIVERSE]);
        msg.bytes(&index.to_ne_bytes());
        msg.attr(IFA_LOCAL, &addr.octets());
        msg.attr(IFA_ADDRESS, &addr.octets());
        self.exchange(msg, false).map(drop)
    }

    /// Adds (or replaces) the route to `dst/prefix` out of link `index`,
    /// through `gateway` if given.
    pub fn add_route(
        &mut self,
        dst: Ipv4Addr,
        prefix: u8,
        gateway: Option<Ipv4Addr>,
        index: u32,
    ) -> io::Result<()> {
        let scope = if gateway.is_some() {
            Scope::Universe
        } else {
            Scope::Link
        };
        let mut msg = Message::new(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE);
        msg.bytes(&[
            libc::AF_INET as u8,
            prefix,
            0,
            0,
            RT_TABLE_MAIN,
            RTPROT_STATIC,
            match scope {
                Scope::Link => RT_SCOPE_LINK,
                Scope::Universe => RT_SCOPE_UNIVERSE,
            },
            RTN_UNICAST,
        ]);
        msg.bytes(&0u32.to_ne_bytes());
        if prefix > 0 {
            msg.attr(RTA_DST, &dst.octets());
        }
        if let Some(gw) = gateway {
            msg.attr(RTA_GATEWAY, &gw.octets());
        }
        msg.attr(RTA_OIF, &index.to_ne_bytes());
        self.exchange(msg, false).map(drop)
    }

    /// Sends `msg` and collects the replies: with `dump`, every message up to
    /// `NLMSG_DONE`; otherwise up to the acknowledgement. A negative
    /// acknowledgement is returned as the errno it carries.
    fn exchange(&mut self, msg: Message, dump: bool) -> io::Result<Vec<(u16, Vec<u8>)>> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let buf = msg.finish(seq);
        // SAFETY: `buf` is a valid buffer of the given length; the kernel
        // reads it and nothing else.
        let sent = unsafe { libc::send(self.fd.as_raw_fd(), buf.as_ptr().cast(), buf.len(), 0) };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut replies = Vec::new();
        let mut rx = vec![0u8; 32 * 1024];
        loop {
            // SAFETY: `rx` is a writable buffer of the given length.
            let n = unsafe { libc::recv(self.fd.as_raw_fd(), rx.as_mut_ptr().cast(), rx.len(), 0) };
            if n < 0 {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(err);
            }
            let mut data = &rx[..n as usize];
            while data.len() >= NLMSG_HDRLEN {
                let len = u32::from_ne_bytes(data[0..4].try_into().expect("4 bytes")) as usize;
                let ty = u16::from_ne_bytes(data[4..6].try_into().expect("2 bytes"));
                let msg_seq = u32::from_ne_bytes(data[8..12].try_into().expect("4 bytes"));
                if len < NLMSG_HDRLEN || len > data.len() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "truncated netlink message",
                    ));
                }
                let body = &data[NLMSG_HDRLEN..len];
                data = &data[align(len).min(data.len())..];
                if msg_seq != seq {
                    continue;
                }
                match ty {
                    NLMSG_ERROR => {
                        let code = body
                            .get(0..4)
                            .map(|b| i32::from_ne_bytes(b.try_into().expect("4 bytes")))
                            .unwrap_or(-libc::EIO);
                        if code != 0 {
                            return Err(io::Error::from_raw_os_error(-code));
                        }
                        return Ok(replies);
                    }
                    NLMSG_DONE if dump => return Ok(replies),
                    _ => replies.push((ty, body.to_vec())),
                }
            }
        }
    }
}

/// A netlink socket of `protocol`, bound, in the calling thread's network
/// namespace.
pub(super) fn socket(protocol: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the fd is owned below.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            protocol,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by socket(2) and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_nl is plain old data; zero is a valid value.
    let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    // SAFETY: `addr` is a valid sockaddr_nl of the given length.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

pub(super) fn align(len: usize) -> usize {
    (len + 3) & !3
}

/// Name, index and alias of an `RTM_NEWLINK` body.
fn parse_link(body: &[u8]) -> Option<Link> {
    let index = u32::from_ne_bytes(body.get(4..8)?.try_into().ok()?);
    let mut link = Link {
        index,
        name: String::new(),
        alias: String::new(),
    };
    for (ty, data) in attrs(body.get(16..)?) {
        let text = || {
            String::from_utf8_lossy(data)
                .trim_end_matches('\0')
                .to_string()
        };
        match ty {
            IFLA_IFNAME => link.name = text(),
            IFLA_IFALIAS => link.alias = text(),
            _ => {}
        }
    }
    Some(link)
}

/// The (type, payload) pairs of a run of attributes.
pub(super) fn attrs(mut data: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while data.len() >= 4 {
        let len = u16::from_ne_bytes([data[0], data[1]]) as usize;
        let ty = u16::from_ne_bytes([data[2], data[3]]) & !NLA_F_NESTED;
        if len < 4 || len > data.len() {
            break;
        }
        out.push((ty, &data[4..len]));
        data = &data[align(len).min(data.len())..];
    }
    out
}

/// A request being built: header, fixed struct, attributes.
pub(super) struct Message {
    buf: Vec<u8>,
}

impl Message {
    pub(super) fn new(ty: u16, flags: u16) -> Message {
        Message::raw(ty, flags | NLM_F_REQUEST | NLM_F_ACK)
    }

    /// A message with exactly `flags` (no acknowledgement asked).
    pub(super) fn raw(ty: u16, flags: u16) -> Message {
        let mut buf = vec![0u8; NLMSG_HDRLEN];
        buf[4..6].copy_from_slice(&ty.to_ne_bytes());
        buf[6..8].copy_from_slice(&flags.to_ne_bytes());
        Message { buf }
    }

    pub(super) fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    /// `struct ifinfomsg` (AF_UNSPEC) for link `index`.
    fn ifinfo(&mut self, index: u32, flags: u32, change: u32) {
        self.bytes(&[libc::AF_UNSPEC as u8, 0, 0, 0]);
        self.bytes(&index.to_ne_bytes());
        self.bytes(&flags.to_ne_bytes());
        self.bytes(&change.to_ne_bytes());
    }

    pub(super) fn attr(&mut self, ty: u16, data: &[u8]) {
        let len = 4 + data.len();
        self.bytes(&(len as u16).to_ne_bytes());
        self.bytes(&ty.to_ne_bytes());
        self.bytes(data);
        self.pad();
    }

    /// A NUL-terminated string attribute.
    pub(super) fn attr_str(&mut self, ty: u16, s: &str) {
        let mut data = s.as_bytes().to_vec();
        data.push(0);
        self.attr(ty, &data);
    }

    /// Opens a nested attribute; returns where its header is.
    pub(super) fn begin(&mut self, ty: u16) -> usize {
        let at = self.buf.len();
        self.bytes(&0u16.to_ne_bytes());
        self.bytes(&(ty | NLA_F_NESTED).to_ne_bytes());
        at
    }

    pub(super) fn end(&mut self, at: usize) {
        let len = (self.buf.len() - at) as u16;
        self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    pub(super) fn finish(mut self, seq: u32) -> Vec<u8> {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_framed_and_padded() {
        let mut msg = Message::new(RTM_GETLINK, 0);
        msg.ifinfo(7, 0, 0);
        msg.attr_str(IFLA_IFNAME, "abc");
        let buf = msg.finish(9);
        assert_eq!(buf.len(), 16 + 16 + 8);
        assert_eq!(u32::from_ne_bytes(buf[0..4].try_into().unwrap()), 40);
        assert_eq!(u32::from_ne_bytes(buf[8..12].try_into().unwrap()), 9);
        let parsed = attrs(&buf[32..]);
        assert_eq!(parsed, vec![(IFLA_IFNAME, &b"abc\0"[..])]);
    }

    #[test]
    fn loopback_is_listed() {
        let mut nl = Netlink::open().unwrap();
        let links = nl.links().unwrap();
        assert!(links.iter().any(|l| l.name == "lo"), "{links:?}");
        assert_eq!(nl.link_index("lo").unwrap(), Some(1));
        assert_eq!(nl.link_index("no-such-link0").unwrap(), None);
    }
}
