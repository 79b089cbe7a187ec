//! Networking fixtures for server tests: a sandbox network of the test's own
//! (`wt<k>`, `10.214.<k>.0/24`), a stand-in internet in a network namespace
//! of its own (`198.18.<k>.0/24`, the benchmark range), and a probe that
//! sandboxes run to see what they can reach.
//!
//! Traffic only ever goes to addresses of namespaces and interfaces the
//! test made. Everything made here is removed on drop, by the names and
//! pids made here: the netns, the veth, the processes in it, and the nft
//! table and bridge the server made for this network.

#![allow(dead_code)]

use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A slot `k` of the test networks, held by an exclusive lock file for the
/// test's lifetime, so that tests running at once never share a range.
pub struct Slot {
    /// 1..=250.
    pub k: u8,
    _lock: File,
}

impl Slot {
    /// Takes a free slot.
    pub fn take() -> Slot {
        std::fs::create_dir_all("/run/warren").unwrap();
        for k in 1..=250u8 {
            let path = format!("/run/warren/test-net-{k}.lock");
            let file = File::create(&path).unwrap();
            // SAFETY: flock on a descriptor this function owns.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
                return Slot { k, _lock: file };
            }
        }
        panic!("no free test network slot");
    }

    /// Network name of the server: `wt<k>`.
    pub fn name(&self) -> String {
        format!("wt{}", self.k)
    }

    /// The sandboxes' range.
    pub fn cidr(&self) -> String {
        format!("10.214.{}.0/24", self.k)
    }

    /// The sandboxes' gateway (a host address).
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 214, self.k, 1)
    }

    /// `warren server` arguments for this network, resolving through `dns`.
    pub fn server_args(&self, dns: Option<Ipv4Addr>) -> Vec<String> {
        let mut args = vec![
            "--network-name".to_string(),
            self.name(),
            "--network-cidr".to_string(),
            self.cidr(),
        ];
        if let Some(dns) = dns {
            args.push("--network-dns".into());
            args.push(format!("{dns}:53"));
        }
        args
    }
}

impl Drop for Slot {
    /// Removes what the server made for this network (it leaves them for
    /// sandboxes that outlive it).
    fn drop(&mut self) {
        let name = self.name();
        let _ = Command::new("nft")
            .args(["delete", "table", "inet", &name])
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("ip")
            .args(["link", "del", &format!("{name}0")])
            .stderr(Stdio::null())
            .status();
    }
}

/// A stand-in for the internet: netns `wti<k>` behind veth `wti<k>h`, with
/// addresses `.2` (host name `a.test`) and `.3` (`b.test`), a web server on
/// port 80 of each (answering `stand-in a` / `stand-in b`) and a DNS server
/// on `.2:53` for those two names. The host routes to it directly.
pub struct Internet {
    k: u8,
    children: Vec<Child>,
    dir: tempfile::TempDir,
}

impl Internet {
    /// Builds it for slot `k`.
    pub fn start(k: u8) -> Internet {
        let mut net = Internet {
            k,
            children: Vec::new(),
            dir: tempfile::tempdir().unwrap(),
        };
        net.remove_leftovers();
        let (ns, veth) = (net.netns(), net.veth());
        let host = format!("198.18.{k}.1/24");
        let a = format!("198.18.{k}.2/24");
        let b = format!("198.18.{k}.3/24");
        for args in [
            vec!["netns", "add", &ns],
            vec![
                "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ],
            vec!["addr", "add", &host, "dev", &veth],
            vec!["link", "set", &veth, "up"],
            vec!["-n", &ns, "addr", "add", &a, "dev", "eth0"],
            vec!["-n", &ns, "addr", "add", &b, "dev", "eth0"],
            vec!["-n", &ns, "link", "set", "eth0", "up"],
            vec!["-n", &ns, "link", "set", "lo", "up"],
        ] {
            ip(&args);
        }
        // A link-local address of the host's own on the link, for
        // listeners on the host side (removed with the veth).
        ip(&[
            "addr",
            "add",
            &format!("{}/32", net.host_link_local()),
            "dev",
            &veth,
        ]);
        // A "cloud metadata" address and a private one behind the same
        // link, each with a web server, routed from the host.
        for (addr, name) in [(net.metadata(), "metadata"), (net.private(), "private")] {
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{addr}/32"),
                "dev",
                "eth0",
            ]);
            ip(&["route", "add", &format!("{addr}/32"), "dev", &veth]);
            let root = net.dir.path().join(name);
            std::fs::create_dir_all(&root).unwrap();
            std::fs::write(root.join("index.html"), format!("stand-in {name}\n")).unwrap();
            net.spawn_in_ns(&[
                "python3",
                "-m",
                "http.server",
                "80",
                "--bind",
                &addr.to_string(),
                "--directory",
                root.to_str().unwrap(),
            ]);
        }

        for (name, addr) in [("a", net.a()), ("b", net.b())] {
            let root = net.dir.path().join(name);
            std::fs::create_dir_all(&root).unwrap();
            std::fs::write(root.join("index.html"), format!("stand-in {name}\n")).unwrap();
            net.spawn_in_ns(&[
                "python3",
                "-m",
                "http.server",
                "80",
                "--bind",
                &addr.to_string(),
                "--directory",
                root.to_str().unwrap(),
            ]);
        }
        let dns = net.dir.path().join("dns.py");
        std::fs::write(&dns, DNS_SERVER).unwrap();
        net.spawn_in_ns(&[
            "python3",
            dns.to_str().unwrap(),
            &net.a().to_string(),
            &net.b().to_string(),
        ]);
        net.wait_ready();
        net
    }

    /// `198.18.<k>.2`, `a.test`.
    pub fn a(&self) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, self.k, 2)
    }

    /// `198.18.<k>.3`, `b.test`.
    pub fn b(&self) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, self.k, 3)
    }

    /// `169.254.<k>.254`: link-local, where clouds serve instance
    /// metadata.
    pub fn metadata(&self) -> Ipv4Addr {
        Ipv4Addr::new(169, 254, self.k, 254)
    }

    /// `169.254.<k>.1`: a link-local address of the host itself, on the
    /// stand-in's link (for listeners on the host side).
    pub fn host_link_local(&self) -> Ipv4Addr {
        Ipv4Addr::new(169, 254, self.k, 1)
    }

    /// `172.31.<k>.2`: a private address.
    pub fn private(&self) -> Ipv4Addr {
        Ipv4Addr::new(172, 31, self.k, 2)
    }

    /// The host's own address on the stand-in's link.
    pub fn host_side(&self) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, self.k, 1)
    }

    fn netns(&self) -> String {
        format!("wti{}", self.k)
    }

    fn veth(&self) -> String {
        format!("wti{}h", self.k)
    }

    fn spawn_in_ns(&mut self, argv: &[&str]) {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.netns()])
            .args(argv)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawning in the stand-in netns");
        self.children.push(child);
    }

    /// Waits until both web servers answer from the host.
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        for addr in [self.a(), self.b(), self.metadata(), self.private()] {
            loop {
                if std::net::TcpStream::connect_timeout(
                    &(addr, 80).into(),
                    Duration::from_millis(200),
                )
                .is_ok()
                {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "the stand-in internet did not come up"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    fn remove_leftovers(&self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns()])
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("ip")
            .args(["link", "del", &self.veth()])
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Internet {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.remove_leftovers();
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("running ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A DNS server for the stand-in: `a.test` and `b.test` (A records, TTL
/// 60) from argv, NXDOMAIN for the rest; UDP on the first address.
const DNS_SERVER: &str = r#"
import socket, struct, sys
names = {"a.test": sys.argv[1], "b.test": sys.argv[2]}
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 53))
while True:
    q, peer = s.recvfrom(512)
    i, labels = 12, []
    while q[i]:
        labels.append(q[i + 1:i + 1 + q[i]].decode().lower())
        i += 1 + q[i]
    question = q[12:i + 5]
    qtype = struct.unpack("!H", q[i + 1:i + 3])[0]
    ip = names.get(".".join(labels))
    if ip and qtype == 1:
        answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton(ip)
        head = q[:2] + b"\x81\x80" + struct.pack("!HHHH", 1, 1, 0, 0)
    else:
        answer = b""
        head = q[:2] + (b"\x81\x80" if ip else b"\x81\x83") + struct.pack("!HHHH", 1, 0, 0, 0)
    s.sendto(head + question + answer, peer)
"#;

/// A probe run inside sandboxes: `probe.py tcp HOST PORT` (`ok` when a
/// connection opens, `err <reason>` when not), `probe.py http HOST PORT`
/// (`ok <first line of the body>`) and `probe.py resolve NAME`
/// (`ok <address>`).
pub const PROBE: &str = r#"
import socket, sys, urllib.request
what = sys.argv[1]
try:
    if what == "tcp":
        socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=3).close()
        print("ok")
    elif what == "http":
        body = urllib.request.urlopen("http://%s:%s/" % (sys.argv[2], sys.argv[3]), timeout=3).read()
        print("ok", body.decode().splitlines()[0])
    elif what == "resolve":
        print("ok", socket.gethostbyname(sys.argv[2]))
except Exception as e:
    print("err", type(e).__name__, e)
"#;

/// Where the probe is written in sandboxes.
pub const PROBE_PATH: &str = "/tmp/probe.py";

/// What a server's table `inet <name>` holds, from `nft -j list table`.
#[derive(Debug, Default)]
pub struct TableState {
    /// Names of its chains.
    pub chains: Vec<String>,
    /// How many rules it holds, over every chain.
    pub rules: usize,
    /// Elements of `egress_public`, `egress_listed`, `allowed` and
    /// `learnt`, each as `nft` prints it.
    pub public: Vec<String>,
    /// See `public`.
    pub listed: Vec<String>,
    /// See `public`.
    pub allowed: Vec<String>,
    /// See `public`.
    pub learnt: Vec<String>,
}

impl TableState {
    /// Reads table `inet <name>`.
    pub fn read(name: &str) -> TableState {
        let out = Command::new("nft")
            .args(["-j", "list", "table", "inet", name])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut state = TableState::default();
        for item in doc["nftables"].as_array().unwrap() {
            if let Some(chain) = item["chain"]["name"].as_str() {
                state.chains.push(chain.to_string());
            }
            if item.get("rule").is_some() {
                state.rules += 1;
            }
            let set = &item["set"];
            let elements: Vec<String> = set["elem"]
                .as_array()
                .map(|e| e.iter().map(|v| v.to_string()).collect())
                .unwrap_or_default();
            match set["name"].as_str() {
                Some("egress_public") => state.public = elements,
                Some("egress_listed") => state.listed = elements,
                Some("allowed") => state.allowed = elements,
                Some("learnt") => state.learnt = elements,
                _ => {}
            }
        }
        state
    }
}
