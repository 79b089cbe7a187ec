//! The sandboxes' resolver: a small DNS forwarder on the gateway address
//! (UDP and TCP port 53) that the server controls.
//!
//! Every query is checked against the policy of the sandbox it comes from
//! (known by its source address; spoofed sources never get this far, see
//! [`super::nft`]): an allow-list sandbox may only resolve the names its list
//! admits (`REFUSED` otherwise), and the IPv4 addresses answered for them are
//! admitted for it in nftables before the answer is handed back, so the
//! connection that follows is already allowed. Queries from unknown sources
//! are refused. Everything else is forwarded, bytes unchanged, to the
//! upstream servers (by default the host's `/etc/resolv.conf`).
//!
//! Threads, not async: the runtime crate has no executor, and sandboxes ask
//! little. One thread polls both sockets; each UDP query and each TCP
//! connection gets a short-lived thread, at most [`MAX_IN_FLIGHT`] at once
//! and at most [`MAX_PER_SOURCE`] for one sandbox (beyond that UDP queries
//! are dropped, as a busy server would, and the client retries; TCP
//! connections are closed). A TCP connection lives at most
//! [`CONNECTION_DEADLINE`], however slowly its client writes, so no sandbox
//! can hold the resolver away from the others.

pub mod message;

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use message::{Question, Rcode};

use super::policy::Rules;

/// Queries (and TCP connections) handled at once.
pub const MAX_IN_FLIGHT: usize = 256;
/// Queries (and TCP connections) of one source address handled at once: a
/// sandbox gets a fair share, never the whole resolver.
pub const MAX_PER_SOURCE: usize = 16;
/// How long a TCP connection may last, all its queries included.
#[cfg(not(test))]
pub const CONNECTION_DEADLINE: Duration = Duration::from_secs(10);
/// How long a TCP connection may last (short in tests).
#[cfg(test)]
pub const CONNECTION_DEADLINE: Duration = Duration::from_secs(1);
/// How long one upstream server gets to answer.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(3);
/// How often the poller looks at the stop flag.
const POLL_INTERVAL_MS: i32 = 250;

/// What the resolver asks of the network it serves.
pub trait Policy: Send + Sync + 'static {
    /// The rules of the sandbox at `source`; `None` when no sandbox has it.
    fn rules(&self, source: Ipv4Addr) -> Option<Arc<Rules>>;
    /// Admits `ips`, answered for a name the sandbox at `source` may
    /// resolve, for at least `ttl`. Called before the answer is returned.
    fn learn(&self, source: Ipv4Addr, ips: &[Ipv4Addr], ttl: Duration);
}

/// A running resolver; dropping it stops it.
pub struct Resolver {
    stop: Arc<AtomicBool>,
    poller: Option<JoinHandle<()>>,
    addr: SocketAddrV4,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("addr", &self.addr)
            .finish()
    }
}

struct Shared {
    policy: Arc<dyn Policy>,
    upstreams: Vec<SocketAddr>,
    in_flight: AtomicUsize,
    /// Slots taken per source address (entries at zero are removed).
    per_source: Mutex<HashMap<Ipv4Addr, usize>>,
}

impl Shared {
    fn new(policy: Arc<dyn Policy>, upstreams: Vec<SocketAddr>) -> Shared {
        Shared {
            policy,
            upstreams,
            in_flight: AtomicUsize::new(0),
            per_source: Mutex::new(HashMap::new()),
        }
    }
}

impl Resolver {
    /// Binds `addr` (UDP and TCP) and starts answering.
    pub fn start(
        addr: SocketAddrV4,
        upstreams: Vec<SocketAddr>,
        policy: Arc<dyn Policy>,
    ) -> io::Result<Resolver> {
        let udp = UdpSocket::bind(addr)?;
        let tcp = TcpListener::bind(addr)?;
        tcp.set_nonblocking(true)?;
        let shared = Arc::new(Shared::new(policy, upstreams));
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let poller = std::thread::Builder::new()
            .name("warren-dns".into())
            .spawn(move || poll_loop(udp, tcp, shared, flag))?;
        Ok(Resolver {
            stop,
            poller: Some(poller),
            addr,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddrV4 {
        self.addr
    }
}

impl Drop for Resolver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(poller) = self.poller.take() {
            let _ = poller.join();
        }
    }
}

fn poll_loop(udp: UdpSocket, tcp: TcpListener, shared: Arc<Shared>, stop: Arc<AtomicBool>) {
    let mut buf = vec![0u8; 65_535];
    while !stop.load(Ordering::Relaxed) {
        let mut fds = [
            libc::pollfd {
                fd: udp.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: tcp.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: two valid pollfds in a live array.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, POLL_INTERVAL_MS) };
        if n <= 0 {
            continue;
        }
        if fds[0].revents & libc::POLLIN != 0 {
            if let Ok((len, SocketAddr::V4(from))) = udp.recv_from(&mut buf) {
                let query = buf[..len].to_vec();
                let slot = Slot::take(&shared, *from.ip());
                if let (Some(_slot), Ok(reply_socket)) = (slot, udp.try_clone()) {
                    let shared = shared.clone();
                    let _ = std::thread::Builder::new()
                        .name("warren-dns-q".into())
                        .spawn(move || {
                            let _slot = _slot;
                            let reply = handle(&shared, &query, *from.ip(), false);
                            let _ = reply_socket.send_to(&reply, from);
                        });
                }
            }
        }
        if fds[1].revents & libc::POLLIN != 0 {
            while let Ok((stream, SocketAddr::V4(from))) = tcp.accept() {
                // Unknown sources and sources at their share are closed
                // at once, before any thread is spent on them.
                if shared.policy.rules(*from.ip()).is_none() {
                    continue;
                }
                let Some(slot) = Slot::take(&shared, *from.ip()) else {
                    continue;
                };
                let shared = shared.clone();
                let _ = std::thread::Builder::new()
                    .name("warren-dns-tcp".into())
                    .spawn(move || {
                        let _slot = slot;
                        let _ = serve_tcp(&shared, stream, *from.ip());
                    });
            }
        }
    }
}

/// One of the [`MAX_IN_FLIGHT`] places, and one of its source's
/// [`MAX_PER_SOURCE`]; given back on drop.
struct Slot(Arc<Shared>, Ipv4Addr);

impl Slot {
    fn take(shared: &Arc<Shared>, source: Ipv4Addr) -> Option<Slot> {
        let mut per_source = shared.per_source.lock().expect("per-source lock");
        let mine = per_source.entry(source).or_insert(0);
        if *mine >= MAX_PER_SOURCE {
            if *mine == 0 {
                per_source.remove(&source);
            }
            return None;
        }
        let before = shared.in_flight.fetch_add(1, Ordering::AcqRel);
        if before >= MAX_IN_FLIGHT {
            shared.in_flight.fetch_sub(1, Ordering::AcqRel);
            if *mine == 0 {
                per_source.remove(&source);
            }
            return None;
        }
        *mine += 1;
        Some(Slot(shared.clone(), source))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut per_source = self.0.per_source.lock().expect("per-source lock");
        if let Some(mine) = per_source.get_mut(&self.1) {
            *mine -= 1;
            if *mine == 0 {
                per_source.remove(&self.1);
            }
        }
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Queries of one TCP connection, each a 2-byte length and the message,
/// until the client closes it or [`CONNECTION_DEADLINE`] passes.
fn serve_tcp(shared: &Shared, mut stream: TcpStream, from: Ipv4Addr) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    let deadline = std::time::Instant::now() + CONNECTION_DEADLINE;
    let left = || {
        deadline
            .checked_duration_since(std::time::Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| io::Error::from(io::ErrorKind::TimedOut))
    };
    loop {
        // Every read and write waits only for what is left of the deadline.
        let mut stream = Deadlined {
            stream: &mut stream,
            left: &left,
        };
        let query = match read_framed(&mut stream) {
            Ok(query) => query,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        };
        let reply = handle(shared, &query, from, true);
        write_framed(&mut stream, &reply)?;
    }
}

/// A stream whose every read and write is bounded by `left()`.
struct Deadlined<'a, F: Fn() -> io::Result<Duration>> {
    stream: &'a mut TcpStream,
    left: &'a F,
}

impl<F: Fn() -> io::Result<Duration>> Read for Deadlined<'_, F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.set_read_timeout(Some((self.left)()?))?;
        self.stream.read(buf)
    }
}

impl<F: Fn() -> io::Result<Duration>> Write for Deadlined<'_, F> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.set_write_timeout(Some((self.left)()?))?;
        self.stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

fn read_framed(stream: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len)?;
    let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
    stream.read_exact(&mut msg)?;
    Ok(msg)
}

fn write_framed(stream: &mut impl Write, msg: &[u8]) -> io::Result<()> {
    let len = u16::try_from(msg.len()).map_err(|_| io::Error::other("message too long"))?;
    let mut out = Vec::with_capacity(2 + msg.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(msg);
    stream.write_all(&out)
}

/// The reply to one query from `from`.
fn handle(shared: &Shared, query: &[u8], from: Ipv4Addr, tcp: bool) -> Vec<u8> {
    let Some(rules) = shared.policy.rules(from) else {
        return message::error_reply(query, Rcode::Refused);
    };
    let question = match message::parse_query(query) {
        Ok(q) => q,
        Err(message::ParseError::Opcode(_)) => return message::error_reply(query, Rcode::NotImp),
        Err(_) => return message::error_reply(query, Rcode::Refused),
    };
    if !rules.admits_name(&question.name) {
        tracing::debug!(%from, name = %question.name, "dns: name not admitted");
        return message::error_reply(query, Rcode::Refused);
    }
    let Some(response) = forward(&shared.upstreams, query, &question, tcp) else {
        return message::error_reply(query, Rcode::ServFail);
    };
    if matches!(*rules, Rules::List { .. }) {
        learn(shared, from, &response);
    }
    response
}

/// Admits the public A records of an answer for the sandbox at `from`.
fn learn(shared: &Shared, from: Ipv4Addr, response: &[u8]) {
    let Ok(records) = message::answer_addresses(response) else {
        return;
    };
    let blocked: Vec<super::policy::Cidr> = [super::nft::NEVER, super::nft::PRIVATE]
        .concat()
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    let ips: Vec<Ipv4Addr> = records
        .iter()
        .map(|(ip, _)| *ip)
        .filter(|ip| !blocked.iter().any(|net| net.contains(*ip)))
        .collect();
    if ips.is_empty() {
        return;
    }
    let ttl = records.iter().map(|(_, ttl)| *ttl).max().unwrap_or(0);
    shared
        .policy
        .learn(from, &ips, Duration::from_secs(u64::from(ttl)));
}

/// Asks each upstream in turn; the first matching answer wins.
fn forward(
    upstreams: &[SocketAddr],
    query: &[u8],
    question: &Question,
    tcp: bool,
) -> Option<Vec<u8>> {
    for upstream in upstreams {
        let answer = if tcp {
            ask_tcp(*upstream, query)
        } else {
            ask_udp(*upstream, query, question)
        };
        match answer {
            Ok(response) if message::answers(question, &response) => return Some(response),
            Ok(_) => tracing::debug!(%upstream, "dns: upstream answered another question"),
            Err(e) => tracing::debug!(%upstream, error = %e, "dns: upstream failed"),
        }
    }
    None
}

fn ask_udp(upstream: SocketAddr, query: &[u8], question: &Question) -> io::Result<Vec<u8>> {
    let local: SocketAddr = match upstream {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local)?;
    socket.connect(upstream)?;
    socket.set_read_timeout(Some(UPSTREAM_TIMEOUT))?;
    socket.send(query)?;
    let mut buf = vec![0u8; 65_535];
    let deadline = std::time::Instant::now() + UPSTREAM_TIMEOUT;
    loop {
        let n = socket.recv(&mut buf)?;
        if message::answers(question, &buf[..n]) {
            return Ok(buf[..n].to_vec());
        }
        if std::time::Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no matching answer",
            ));
        }
    }
}

fn ask_tcp(upstream: SocketAddr, query: &[u8]) -> io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect_timeout(&upstream, UPSTREAM_TIMEOUT)?;
    stream.set_read_timeout(Some(UPSTREAM_TIMEOUT))?;
    stream.set_write_timeout(Some(UPSTREAM_TIMEOUT))?;
    write_framed(&mut stream, query)?;
    read_framed(&mut stream)
}

/// The `nameserver` lines of a resolv.conf, as port-53 addresses.
pub fn parse_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("nameserver")).then(|| words.next())?
        })
        .filter_map(|addr| {
            let addr = addr.split('%').next()?;
            addr.parse::<std::net::IpAddr>().ok()
        })
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::policy::{Egress, NetworkPolicy};

    #[test]
    fn resolv_conf_is_read() {
        let text =
            "# c\nsearch x\nnameserver 10.255.255.53\nnameserver fe80::1%eth0\nnameserver bad\n";
        assert_eq!(
            parse_resolv_conf(text),
            vec![
                "10.255.255.53:53".parse::<SocketAddr>().unwrap(),
                "[fe80::1]:53".parse().unwrap()
            ]
        );
    }

    /// A policy for tests: fixed rules per source, learnt addresses kept.
    struct Fixed {
        rules: HashMap<Ipv4Addr, Arc<Rules>>,
        learnt: Mutex<Vec<(Ipv4Addr, Vec<Ipv4Addr>)>>,
    }

    impl Policy for Fixed {
        fn rules(&self, source: Ipv4Addr) -> Option<Arc<Rules>> {
            self.rules.get(&source).cloned()
        }
        fn learn(&self, source: Ipv4Addr, ips: &[Ipv4Addr], _ttl: Duration) {
            self.learnt.lock().unwrap().push((source, ips.to_vec()));
        }
    }

    /// An upstream on loopback that answers every A query with 192.0.2.9
    /// and 10.1.1.1 (the second must never be learnt: it is private).
    fn fake_upstream() -> (SocketAddr, Arc<AtomicBool>, JoinHandle<()>) {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while !flag.load(Ordering::Relaxed) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let mut r = buf[..n].to_vec();
                r[2] |= 0x80;
                r[7] = 2;
                for ip in [[192, 0, 2, 9], [10, 1, 1, 1]] {
                    r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4]);
                    r.extend_from_slice(&ip);
                }
                socket.send_to(&r, from).unwrap();
            }
        });
        (addr, stop, handle)
    }

    #[test]
    fn policy_decides_and_answers_are_learnt() {
        let (upstream, stop, upstream_thread) = fake_upstream();
        let list = NetworkPolicy {
            egress: Egress::Deny,
            allow: vec!["ok.example".into()],
        };
        let fixed = Arc::new(Fixed {
            rules: [(Ipv4Addr::new(127, 0, 0, 1), Arc::new(list.rules().unwrap()))].into(),
            learnt: Mutex::new(Vec::new()),
        });
        let shared = Shared::new(fixed.clone(), vec![upstream]);
        let me = Ipv4Addr::new(127, 0, 0, 1);
        let q = message::encode_query(5, "ok.example", 1);
        let reply = handle(&shared, &q, me, false);
        assert_eq!(reply[3] & 0xf, 0, "answered");
        assert_eq!(message::answer_addresses(&reply).unwrap().len(), 2);
        assert_eq!(
            *fixed.learnt.lock().unwrap(),
            vec![(me, vec![Ipv4Addr::new(192, 0, 2, 9)])]
        );
        let refused = handle(
            &shared,
            &message::encode_query(6, "no.example", 1),
            me,
            false,
        );
        assert_eq!(refused[3] & 0xf, Rcode::Refused as u8);
        let stranger = handle(&shared, &q, Ipv4Addr::new(127, 0, 0, 2), false);
        assert_eq!(stranger[3] & 0xf, Rcode::Refused as u8);
        stop.store(true, Ordering::Relaxed);
        upstream_thread.join().unwrap();
    }

    #[test]
    fn the_running_resolver_answers_over_udp_and_tcp() {
        let (upstream, stop, upstream_thread) = fake_upstream();
        let me = Ipv4Addr::LOCALHOST;
        let policy = NetworkPolicy {
            egress: Egress::Deny,
            allow: vec!["ok.example".into()],
        };
        let fixed = Arc::new(Fixed {
            rules: [(me, Arc::new(policy.rules().unwrap()))].into(),
            learnt: Mutex::new(Vec::new()),
        });
        // A port free for TCP; UDP on the same number is all but always free.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let resolver =
            Resolver::start(SocketAddrV4::new(me, port), vec![upstream], fixed.clone()).unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        client
            .send_to(&message::encode_query(11, "ok.example", 1), resolver.addr())
            .unwrap();
        let mut buf = [0u8; 512];
        let n = client.recv(&mut buf).unwrap();
        assert_eq!(message::answer_addresses(&buf[..n]).unwrap().len(), 2);
        assert_eq!(fixed.learnt.lock().unwrap().len(), 1);

        let mut tcp = TcpStream::connect(resolver.addr()).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        for id in [12, 13] {
            write_framed(&mut tcp, &message::encode_query(id, "no.example", 1)).unwrap();
            let reply = read_framed(&mut tcp).unwrap();
            assert_eq!(&reply[..2], &id.to_be_bytes());
            assert_eq!(reply[3] & 0xf, Rcode::Refused as u8);
        }
        drop(resolver);
        stop.store(true, Ordering::Relaxed);
        upstream_thread.join().unwrap();
    }

    #[test]
    fn a_dead_upstream_is_servfail() {
        // A bound socket that never answers.
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let shared = Shared::new(
            Arc::new(Fixed {
                rules: [(Ipv4Addr::LOCALHOST, Arc::new(Rules::Public))].into(),
                learnt: Mutex::new(Vec::new()),
            }),
            vec![silent.local_addr().unwrap()],
        );
        let q = message::encode_query(8, "x.example", 1);
        let reply = handle(&shared, &q, Ipv4Addr::LOCALHOST, false);
        assert_eq!(reply[3] & 0xf, Rcode::ServFail as u8);
    }

    /// A TCP connection to `to` from source address `from` (any of 127/8).
    fn connect_from(from: Ipv4Addr, to: SocketAddrV4) -> TcpStream {
        use std::os::fd::FromRawFd;
        let addr = |a: SocketAddrV4| libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: a.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*a.ip()).to_be(),
            },
            sin_zero: [0; 8],
        };
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        // SAFETY: a fresh socket, and sockaddr_in values that live across
        // the calls; the fd is owned by the returned stream.
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            assert!(fd >= 0);
            let stream = TcpStream::from_raw_fd(fd);
            let local = addr(SocketAddrV4::new(from, 0));
            assert_eq!(
                libc::bind(fd, (&local as *const libc::sockaddr_in).cast(), len),
                0
            );
            let remote = addr(to);
            assert_eq!(
                libc::connect(fd, (&remote as *const libc::sockaddr_in).cast(), len),
                0,
                "{}",
                io::Error::last_os_error()
            );
            stream
        }
    }

    /// Whether the resolver closed `stream` within `wait`.
    fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
        stream.set_read_timeout(Some(wait)).unwrap();
        let mut buf = [0u8; 16];
        match stream.read(&mut buf) {
            Ok(0) => true,
            Err(e) => e.kind() == io::ErrorKind::ConnectionReset,
            Ok(_) => false,
        }
    }

    #[test]
    fn one_sandbox_cannot_take_the_resolver_from_the_others() {
        let hog = Ipv4Addr::new(127, 0, 0, 1);
        let other = Ipv4Addr::new(127, 0, 0, 2);
        let policy = NetworkPolicy {
            egress: Egress::Deny,
            allow: vec!["ok.example".into()],
        };
        let rules = Arc::new(policy.rules().unwrap());
        let fixed = Arc::new(Fixed {
            rules: [(hog, rules.clone()), (other, rules)].into(),
            learnt: Mutex::new(Vec::new()),
        });
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let resolver = Resolver::start(SocketAddrV4::new(hog, port), vec![], fixed).unwrap();

        // Slow connections from one source: its share is held, the rest
        // are closed at once.
        let extra = 4;
        let mut held: Vec<TcpStream> = (0..MAX_PER_SOURCE + extra)
            .map(|_| connect_from(hog, resolver.addr()))
            .collect();
        let started = std::time::Instant::now();
        // The refused ones are closed by the time the resolver has polled
        // them all; the held ones stay open until the deadline.
        std::thread::sleep(CONNECTION_DEADLINE / 4);
        let mut closed_at_once = 0;
        for stream in &mut held {
            stream.set_nonblocking(true).unwrap();
            let mut buf = [0u8; 16];
            if matches!(stream.read(&mut buf), Ok(0)) {
                closed_at_once += 1;
            }
            stream.set_nonblocking(false).unwrap();
        }
        assert_eq!(closed_at_once, extra);

        // Another sandbox is answered meanwhile.
        let mut tcp = connect_from(other, resolver.addr());
        tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write_framed(&mut tcp, &message::encode_query(21, "no.example", 1)).unwrap();
        let reply = read_framed(&mut tcp).unwrap();
        assert_eq!(&reply[..2], &21u16.to_be_bytes());
        assert!(
            started.elapsed() < CONNECTION_DEADLINE,
            "not answered at once"
        );

        // The held connections end at the deadline, however slow.
        for stream in &mut held {
            assert!(closed_within(stream, CONNECTION_DEADLINE * 3));
        }
        drop(resolver);
    }
}
