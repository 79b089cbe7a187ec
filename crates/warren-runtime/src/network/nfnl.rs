//! Set elements of our nftables table over `NETLINK_NETFILTER`, without
//! the `nft` binary.
//!
//! Every per-sandbox change is a handful of set elements (see [`super::nft`]).
//! `nft -f` would cost a process and, worse, a cache of every chain of every
//! table on the host, which grows with the number of sandboxes (about 5 ms
//! with none, 45 ms with a thousand). Here a change is one batch on a socket
//! kept open: `NFT_MSG_NEWSETELEM` and `NFT_MSG_DESTROYSETELEM` (deleting an
//! element that is not there is no error; Linux 6.3 and later) between a
//! batch's begin and end, which the kernel applies atomically. Its cost
//! depends on the elements named, not on how many the sets hold. Before
//! Linux 6.3 (no destroy), an element is removed by adding it (no error if
//! present) and deleting it in the same batch.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use super::netlink::{
    align, attrs, socket, Message, NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN, NLM_F_ACK, NLM_F_CREATE,
    NLM_F_DUMP, NLM_F_REQUEST,
};

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 16;
const NFNL_MSG_BATCH_END: u16 = 17;
const NFT_MSG_NEWSETELEM: u16 = 12;
const NFT_MSG_GETSETELEM: u16 = 13;
const NFT_MSG_DELSETELEM: u16 = 14;
const NFT_MSG_DESTROYSETELEM: u16 = 30;
const NFPROTO_INET: u8 = 1;

const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_TIMEOUT: u16 = 4;
const NFTA_SET_ELEM_EXPIRATION: u16 = 5;
const NFTA_SET_ELEM_KEY_END: u16 = 10;
const NFTA_DATA_VALUE: u16 = 1;

const NETLINK_CAP_ACK: libc::c_int = 10;
/// Elements per message: keeps each nested attribute far below 64 KiB.
const CHUNK: usize = 256;

/// One set element: its key, the end of its range (interval sets), and
/// its timeout (sets with timeouts).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Element {
    /// The key, as the set's type lays it out (concatenations field by
    /// field, each padded to 4 bytes).
    pub key: Vec<u8>,
    /// Closing key of a range.
    pub key_end: Option<Vec<u8>>,
    /// Timeout (adds only).
    pub timeout: Option<Duration>,
}

/// An element as a dump lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The key.
    pub key: Vec<u8>,
    /// Closing key of a range.
    pub key_end: Option<Vec<u8>>,
    /// Time left before it expires.
    pub expires: Option<Duration>,
}

/// What one message of a batch does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Adds the elements (present already with the same key: no error).
    Add,
    /// Removes the elements (absent: no error).
    Destroy,
}

/// A change to one set.
#[derive(Debug, Clone)]
pub struct Change {
    /// Add or destroy.
    pub op: Op,
    /// The set's name.
    pub set: &'static str,
    /// Its elements.
    pub elements: Vec<Element>,
}

/// A `NETLINK_NETFILTER` socket for the sets of one `inet` table.
#[derive(Debug)]
pub struct Nftables {
    fd: OwnedFd,
    table: String,
    seq: u32,
    /// Whether the kernel has `NFT_MSG_DESTROYSETELEM`.
    destroy: bool,
}

impl Nftables {
    /// A socket for table `inet <table>`.
    pub fn open(table: &str) -> io::Result<Nftables> {
        let fd = socket(libc::NETLINK_NETFILTER)?;
        let one: libc::c_int = 1;
        // SAFETY: setsockopt with a valid int option value. Short
        // acknowledgements: without it, each repeats the whole request.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_NETLINK,
                NETLINK_CAP_ACK,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        Ok(Nftables {
            fd,
            table: table.to_string(),
            seq: 1,
            destroy: true,
        })
    }

    /// Finds out whether the kernel destroys elements, by destroying `key`
    /// (which must be absent) in `set`; without, removals add and delete.
    pub fn probe(&mut self, set: &'static str, key: Vec<u8>) {
        let absent = Element {
            key,
            key_end: None,
            timeout: None,
        };
        self.destroy = self
            .commit(&[Change {
                op: Op::Destroy,
                set,
                elements: vec![absent],
            }])
            .is_ok();
        if !self.destroy {
            tracing::info!(
                "nftables without element destroy (Linux before 6.3): removals add, then delete"
            );
        }
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Applies `changes`, in order, as one transaction: all or nothing.
    pub fn commit(&mut self, changes: &[Change]) -> io::Result<()> {
        let mut buf = Vec::new();
        let mut begin = Message::raw(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST);
        begin.bytes(&nfgen(0, NFNL_SUBSYS_NFTABLES));
        buf.extend(begin.finish(self.next_seq()));
        let mut asked = 0usize;
        let steps = changes.iter().flat_map(|change| {
            let kinds: &[(u16, u16)] = match (change.op, self.destroy) {
                (Op::Add, _) => &[(NFT_MSG_NEWSETELEM, NLM_F_CREATE)],
                (Op::Destroy, true) => &[(NFT_MSG_DESTROYSETELEM, 0)],
                (Op::Destroy, false) => {
                    &[(NFT_MSG_NEWSETELEM, NLM_F_CREATE), (NFT_MSG_DELSETELEM, 0)]
                }
            };
            kinds.iter().map(move |kind| (change, *kind))
        });
        let steps: Vec<(&Change, (u16, u16))> = steps.collect();
        for (change, (ty, flags)) in steps {
            for chunk in change.elements.chunks(CHUNK) {
                let mut msg = Message::new(NFNL_SUBSYS_NFTABLES << 8 | ty, flags);
                msg.bytes(&nfgen(NFPROTO_INET, 0));
                msg.attr_str(NFTA_SET_ELEM_LIST_TABLE, &self.table);
                msg.attr_str(NFTA_SET_ELEM_LIST_SET, change.set);
                let list = msg.begin(NFTA_SET_ELEM_LIST_ELEMENTS);
                for element in chunk {
                    let item = msg.begin(NFTA_LIST_ELEM);
                    value(&mut msg, NFTA_SET_ELEM_KEY, &element.key);
                    if let Some(end) = &element.key_end {
                        value(&mut msg, NFTA_SET_ELEM_KEY_END, end);
                    }
                    if let (Op::Add, Some(timeout)) = (change.op, element.timeout) {
                        let ms = timeout.as_millis() as u64;
                        msg.attr(NFTA_SET_ELEM_TIMEOUT, &ms.to_be_bytes());
                    }
                    msg.end(item);
                }
                msg.end(list);
                buf.extend(msg.finish(self.next_seq()));
                asked += 1;
            }
        }
        if asked == 0 {
            return Ok(());
        }
        let mut end = Message::raw(NFNL_MSG_BATCH_END, NLM_F_REQUEST);
        end.bytes(&nfgen(0, NFNL_SUBSYS_NFTABLES));
        buf.extend(end.finish(self.next_seq()));
        self.send(&buf)?;
        // The kernel runs the batch inside send(2): every acknowledgement
        // is queued by the time it returns.
        let mut acked = 0usize;
        let mut failure = None;
        let mut rx = vec![0u8; 64 * 1024];
        while acked < asked {
            let n = self.recv(&mut rx, failure.is_some() || acked > 0)?;
            let Some(n) = n else { break };
            for (ty, body) in messages(&rx[..n])? {
                if ty != NLMSG_ERROR {
                    continue;
                }
                acked += 1;
                let code = error_code(body);
                if code != 0 && failure.is_none() {
                    failure = Some(io::Error::from_raw_os_error(-code));
                }
            }
        }
        match failure {
            Some(e) => Err(e),
            None if acked < asked => Err(io::Error::other(format!(
                "nftables acknowledged {acked} of {asked} messages"
            ))),
            None => Ok(()),
        }
    }

    /// Every element of `set`.
    pub fn elements(&mut self, set: &str) -> io::Result<Vec<Listed>> {
        let mut msg = Message::raw(
            NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETSETELEM,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_DUMP,
        );
        msg.bytes(&nfgen(NFPROTO_INET, 0));
        msg.attr_str(NFTA_SET_ELEM_LIST_TABLE, &self.table);
        msg.attr_str(NFTA_SET_ELEM_LIST_SET, set);
        let seq = self.next_seq();
        self.send(&msg.finish(seq))?;
        let mut out = Vec::new();
        let mut rx = vec![0u8; 64 * 1024];
        loop {
            let n = self.recv(&mut rx, false)?.unwrap_or(0);
            for (ty, body) in messages(&rx[..n])? {
                match ty {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => {
                        let code = error_code(body);
                        if code != 0 {
                            return Err(io::Error::from_raw_os_error(-code));
                        }
                    }
                    _ => out.extend(parse_elements(body.get(4..).unwrap_or_default())),
                }
            }
        }
    }

    fn send(&self, buf: &[u8]) -> io::Result<()> {
        // SAFETY: `buf` is a valid buffer of the given length.
        let sent = unsafe { libc::send(self.fd.as_raw_fd(), buf.as_ptr().cast(), buf.len(), 0) };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// One datagram; with `nowait`, `None` when none is queued.
    fn recv(&self, rx: &mut [u8], nowait: bool) -> io::Result<Option<usize>> {
        let flags = if nowait { libc::MSG_DONTWAIT } else { 0 };
        loop {
            // SAFETY: `rx` is a writable buffer of the given length.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), rx.as_mut_ptr().cast(), rx.len(), flags) };
            if n >= 0 {
                return Ok(Some(n as usize));
            }
            let err = io::Error::last_os_error();
            match err.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock if nowait => return Ok(None),
                _ => return Err(err),
            }
        }
    }
}

/// `struct nfgenmsg`.
fn nfgen(family: u8, res_id: u16) -> [u8; 4] {
    let id = res_id.to_be_bytes();
    [family, 0, id[0], id[1]]
}

/// An `nft_data` value nested in attribute `ty`.
fn value(msg: &mut Message, ty: u16, data: &[u8]) {
    let at = msg.begin(ty);
    msg.attr(NFTA_DATA_VALUE, data);
    msg.end(at);
}

fn error_code(body: &[u8]) -> i32 {
    body.get(0..4)
        .map(|b| i32::from_ne_bytes(b.try_into().expect("4 bytes")))
        .unwrap_or(-libc::EIO)
}

/// The (type, body) pairs of a datagram.
fn messages(mut data: &[u8]) -> io::Result<Vec<(u16, &[u8])>> {
    let mut out = Vec::new();
    while data.len() >= NLMSG_HDRLEN {
        let len = u32::from_ne_bytes(data[0..4].try_into().expect("4 bytes")) as usize;
        let ty = u16::from_ne_bytes(data[4..6].try_into().expect("2 bytes"));
        if len < NLMSG_HDRLEN || len > data.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "truncated netlink message",
            ));
        }
        out.push((ty, &data[NLMSG_HDRLEN..len]));
        data = &data[align(len).min(data.len())..];
    }
    Ok(out)
}

/// The elements of one `NFT_MSG_NEWSETELEM` (after its `nfgenmsg`).
fn parse_elements(body: &[u8]) -> Vec<Listed> {
    let mut out = Vec::new();
    for (ty, list) in attrs(body) {
        if ty != NFTA_SET_ELEM_LIST_ELEMENTS {
            continue;
        }
        for (ty, element) in attrs(list) {
            if ty != NFTA_LIST_ELEM {
                continue;
            }
            let mut listed = Listed {
                key: Vec::new(),
                key_end: None,
                expires: None,
            };
            for (ty, data) in attrs(element) {
                let nested = || {
                    attrs(data)
                        .into_iter()
                        .find(|(t, _)| *t == NFTA_DATA_VALUE)
                        .map(|(_, v)| v.to_vec())
                };
                match ty {
                    NFTA_SET_ELEM_KEY => listed.key = nested().unwrap_or_default(),
                    NFTA_SET_ELEM_KEY_END => listed.key_end = nested(),
                    NFTA_SET_ELEM_EXPIRATION => {
                        if let Ok(ms) = <[u8; 8]>::try_from(data) {
                            listed.expires = Some(Duration::from_millis(u64::from_be_bytes(ms)));
                        }
                    }
                    _ => {}
                }
            }
            out.push(listed);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_round_trip_through_the_wire_format() {
        let mut msg = Message::new(NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWSETELEM, 0);
        msg.bytes(&nfgen(NFPROTO_INET, 0));
        msg.attr_str(NFTA_SET_ELEM_LIST_TABLE, "warren");
        let list = msg.begin(NFTA_SET_ELEM_LIST_ELEMENTS);
        let item = msg.begin(NFTA_LIST_ELEM);
        value(&mut msg, NFTA_SET_ELEM_KEY, &[10, 213, 0, 5, 1, 2, 3, 0]);
        value(
            &mut msg,
            NFTA_SET_ELEM_KEY_END,
            &[10, 213, 0, 5, 1, 2, 3, 255],
        );
        msg.attr(NFTA_SET_ELEM_EXPIRATION, &1500u64.to_be_bytes());
        msg.end(item);
        msg.end(list);
        let buf = msg.finish(3);
        let parsed = messages(&buf).unwrap();
        assert_eq!(parsed.len(), 1);
        let elements = parse_elements(&parsed[0].1[4..]);
        assert_eq!(
            elements,
            [Listed {
                key: vec![10, 213, 0, 5, 1, 2, 3, 0],
                key_end: Some(vec![10, 213, 0, 5, 1, 2, 3, 255]),
                expires: Some(Duration::from_millis(1500)),
            }]
        );
    }

    /// A scratch table of this test's own, deleted on drop.
    struct Scratch(String);

    impl Scratch {
        fn new() -> Scratch {
            let name = format!("wnfnl{}", std::process::id() % 1_000_000);
            let script = format!(
                "add table inet {name}\n\
                 add set inet {name} learnt {{ type ipv4_addr . ipv4_addr; flags timeout; }}\n\
                 add set inet {name} allowed {{ type ipv4_addr . ipv4_addr; flags interval; }}\n"
            );
            nft(&script);
            Scratch(name)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            nft(&format!("delete table inet {}\n", self.0));
        }
    }

    fn nft(script: &str) {
        use std::io::Write;
        let mut child = std::process::Command::new("nft")
            .args(["-f", "-"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success(), "{script}");
    }

    #[test]
    fn elements_are_added_listed_and_removed_atomically() {
        let scratch = Scratch::new();
        let learnt = Element {
            key: vec![10, 0, 0, 1, 1, 1, 1, 1],
            key_end: None,
            timeout: Some(Duration::from_secs(60)),
        };
        let range = Element {
            key: vec![10, 0, 0, 1, 1, 2, 3, 0],
            key_end: Some(vec![10, 0, 0, 1, 1, 2, 3, 255]),
            timeout: None,
        };
        let change = |op, set, e: &Element| Change {
            op,
            set,
            elements: vec![e.clone()],
        };
        let mut sets = Nftables::open(&scratch.0).unwrap();
        sets.probe("learnt", vec![0; 8]);
        assert!(sets.destroy, "this kernel destroys elements");
        for destroy in [true, false] {
            sets.destroy = destroy;
            let add = [
                change(Op::Add, "learnt", &learnt),
                change(Op::Add, "allowed", &range),
            ];
            // Adding twice is no error.
            sets.commit(&add).unwrap();
            sets.commit(&add).unwrap();
            let listed = sets.elements("learnt").unwrap();
            assert_eq!(listed.len(), 1, "{listed:?}");
            assert_eq!(listed[0].key, learnt.key);
            let left = listed[0].expires.unwrap();
            assert!(left <= Duration::from_secs(60) && left > Duration::from_secs(50));
            let ranges = sets.elements("allowed").unwrap();
            assert_eq!(ranges.len(), 1, "{ranges:?}");
            assert_eq!(
                (&ranges[0].key, &ranges[0].key_end),
                (&range.key, &range.key_end)
            );

            // A batch that fails anywhere changes nothing.
            let other = Element {
                key: vec![10, 0, 0, 2, 1, 1, 1, 1],
                ..learnt.clone()
            };
            let failing = [
                change(Op::Add, "learnt", &other),
                change(Op::Add, "no-such-set", &other),
            ];
            assert!(sets.commit(&failing).is_err());
            assert_eq!(sets.elements("learnt").unwrap().len(), 1);

            // Removing twice is no error.
            let remove = [
                change(Op::Destroy, "learnt", &learnt),
                change(Op::Destroy, "allowed", &range),
            ];
            sets.commit(&remove).unwrap();
            sets.commit(&remove).unwrap();
            assert!(sets.elements("learnt").unwrap().is_empty());
            assert!(sets.elements("allowed").unwrap().is_empty());
        }
    }
}
