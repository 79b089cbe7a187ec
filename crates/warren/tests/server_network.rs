//! Egress policies on real sandboxes of a real server, against a stand-in
//! internet in a network namespace of the test's own: `deny` reaches
//! nothing, `allow` reaches it, an allow-list only what it names (by CIDR and
//! by host name through the server's resolver); the host's services and the
//! other sandboxes are out of reach in every mode; `PATCH` changes a running
//! sandbox's reachability; deleting sandboxes leaves no interface or rule.
//! A tenant's allow-list never opens link-local (cloud metadata) space, not
//! even the host's own, and opens private ranges only on a server started
//! with `--allow-private-egress`; naming such space is a 400 that names the
//! entry. A stopped sandbox's interface goes with its network namespace,
//! and a start on an address whose old link is still there gets a link of
//! its own.

mod network_support;
mod server_common;

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use network_support::{Internet, Slot, TableState, PROBE, PROBE_PATH};
use serde_json::{json, Value};
use server_common::{Options, TestServer, ADMIN_KEY};
use warren_runtime::Runtime;

/// Runs the probe in sandbox `id`; its one line of output.
async fn probe(server: &TestServer, id: &str, args: &str) -> String {
    probe_as(server, ADMIN_KEY, id, args).await
}

/// Runs the probe in sandbox `id` as `key`; its one line of output.
async fn probe_as(server: &TestServer, key: &str, id: &str, args: &str) -> String {
    let out = server
        .run(key, id, &format!("python3 {PROBE_PATH} {args}"))
        .await;
    out["stdout"]
        .as_str()
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Creates a sandbox with `network` and the probe in it; its id.
async fn create(server: &TestServer, network: Value) -> String {
    create_as(server, ADMIN_KEY, network).await
}

/// Creates a sandbox with `network` and the probe in it as `key`; its id.
async fn create_as(server: &TestServer, key: &str, network: Value) -> String {
    let sandbox = server.create(key, json!({ "network": network })).await;
    let id = sandbox["id"].as_str().unwrap().to_string();
    upload_probe(server, key, &id).await;
    id
}

/// Puts the probe in sandbox `id` as `key` (again after a start: `/tmp` is
/// a fresh tmpfs then).
async fn upload_probe(server: &TestServer, key: &str, id: &str) {
    let resp = server
        .req(
            reqwest::Method::PUT,
            &format!("/v1/sandboxes/{id}/files?path={PROBE_PATH}"),
            key,
        )
        .body(PROBE)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
}

/// Host interfaces of the test network.
fn host_veths(slot: &Slot) -> Vec<String> {
    let links = Command::new("ip").args(["-o", "link"]).output().unwrap();
    let prefix = format!("{}-", slot.name());
    String::from_utf8_lossy(&links.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|name| name.split('@').next().unwrap_or(name).to_string())
        .filter(|name| name.starts_with(&prefix))
        .collect()
}

/// Host interfaces of the test network once `veths` of them are left, and
/// its table. A stopped sandbox's interface goes with its network
/// namespace, which the kernel tears down shortly after the stop answers:
/// up to 10 s are allowed for that.
fn host_state(slot: &Slot, veths: usize) -> (Vec<String>, TableState) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut left = host_veths(slot);
    while left.len() != veths && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        left = host_veths(slot);
    }
    (left, TableState::read(&slot.name()))
}

#[tokio::test]
async fn egress_policies_on_running_sandboxes() {
    let slot = Slot::take();
    let internet = Internet::start(slot.k);
    let server = TestServer::start_with(Options {
        args: slot.server_args(Some(internet.a())),
        ..Options::default()
    })
    .await;
    let (a, b) = (internet.a().to_string(), internet.b().to_string());

    // Host services: on the host's loopback, on the sandboxes' gateway, on
    // the host's side of the stand-in link. Connecting to any of them from
    // a sandbox must fail (the listeners never accept; the kernel would
    // complete a handshake if a packet got through).
    let on_loopback = TcpListener::bind("127.0.0.1:0").unwrap();
    let on_gateway = TcpListener::bind((slot.gateway(), 0)).unwrap();
    let on_host_side = TcpListener::bind((internet.host_side(), 0)).unwrap();
    let host_services = [
        format!("127.0.0.1 {}", on_loopback.local_addr().unwrap().port()),
        format!(
            "{} {}",
            slot.gateway(),
            on_gateway.local_addr().unwrap().port()
        ),
        format!(
            "{} {}",
            internet.host_side(),
            on_host_side.local_addr().unwrap().port()
        ),
    ];

    let deny = create(&server, json!({ "egress": "deny" })).await;
    let allow = create(&server, json!({})).await;
    let by_cidr = create(&server, json!({ "allow": [format!("{a}/32")] })).await;
    let by_name = create(&server, json!({ "allow": ["b.test"] })).await;
    let neighbour = create(&server, json!({ "egress": "allow" })).await;

    let (_, shown) = server
        .call("GET", &format!("/v1/sandboxes/{by_name}"), ADMIN_KEY, None)
        .await;
    assert_eq!(
        shown["network"],
        json!({ "egress": "deny", "allow": ["b.test"] })
    );
    let (_, shown) = server
        .call("GET", &format!("/v1/sandboxes/{allow}"), ADMIN_KEY, None)
        .await;
    assert_eq!(shown["network"], json!({ "egress": "allow", "allow": [] }));

    // A server in the neighbour sandbox, and its address.
    server
        .call(
            "POST",
            &format!("/v1/sandboxes/{neighbour}/processes"),
            ADMIN_KEY,
            Some(json!({ "cmd": "python3 -m http.server 8080" })),
        )
        .await;
    let out = server
        .run(
            ADMIN_KEY,
            &neighbour,
            "ip -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1",
        )
        .await;
    let neighbour_ip = out["stdout"].as_str().unwrap().trim().to_string();
    assert!(neighbour_ip.starts_with("10.214."), "{out}");
    let neighbour_up = format!("tcp {neighbour_ip} 8080");
    let mut tries = 0;
    while !probe(&server, &neighbour, "tcp 127.0.0.1 8080")
        .await
        .starts_with("ok")
    {
        tries += 1;
        assert!(tries < 50, "the neighbour's server did not start");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // deny: loopback only.
    let out = server
        .run(ADMIN_KEY, &deny, "ip -o link | awk -F': ' '{print $2}'")
        .await;
    assert_eq!(out["stdout"].as_str().unwrap().trim(), "lo", "{out}");
    assert!(probe(&server, &deny, &format!("http {a} 80"))
        .await
        .starts_with("err"));

    // allow: the stand-in internet, by address and by name.
    assert_eq!(
        probe(&server, &allow, &format!("http {a} 80")).await,
        "ok stand-in a"
    );
    assert_eq!(
        probe(&server, &allow, &format!("http {b} 80")).await,
        "ok stand-in b"
    );
    assert_eq!(
        probe(&server, &allow, "resolve a.test").await,
        format!("ok {a}")
    );
    let resolv = server.run(ADMIN_KEY, &allow, "cat /etc/resolv.conf").await;
    assert!(
        resolv["stdout"]
            .as_str()
            .unwrap()
            .contains(&format!("nameserver {}", slot.gateway())),
        "{resolv}"
    );

    // An allow-list by CIDR: only that address; no names at all.
    assert_eq!(
        probe(&server, &by_cidr, &format!("http {a} 80")).await,
        "ok stand-in a"
    );
    assert!(probe(&server, &by_cidr, &format!("http {b} 80"))
        .await
        .starts_with("err"));
    assert!(probe(&server, &by_cidr, "resolve a.test")
        .await
        .starts_with("err"));

    // An allow-list by name: reachable once resolved through the server's
    // resolver; the other name neither resolves nor connects.
    assert!(probe(&server, &by_name, &format!("http {b} 80"))
        .await
        .starts_with("err"));
    assert_eq!(
        probe(&server, &by_name, "resolve b.test").await,
        format!("ok {b}")
    );
    assert_eq!(
        probe(&server, &by_name, &format!("http {b} 80")).await,
        "ok stand-in b"
    );
    assert!(probe(&server, &by_name, "resolve a.test")
        .await
        .starts_with("err"));
    assert!(probe(&server, &by_name, &format!("http {a} 80"))
        .await
        .starts_with("err"));

    // A restart of the server (kill -9) keeps every sandbox's network:
    // rules, interfaces and the addresses learnt for names.
    let mut server = server;
    server.kill9();
    server.spawn();
    assert_eq!(
        probe(&server, &by_name, &format!("http {b} 80")).await,
        "ok stand-in b"
    );
    assert_eq!(
        probe(&server, &by_name, "resolve b.test").await,
        format!("ok {b}")
    );
    assert!(probe(&server, &by_name, "resolve a.test")
        .await
        .starts_with("err"));
    assert_eq!(
        probe(&server, &allow, &format!("http {a} 80")).await,
        "ok stand-in a"
    );
    assert!(probe(&server, &by_cidr, &format!("http {b} 80"))
        .await
        .starts_with("err"));

    // In every mode: no host service, no other sandbox.
    for id in [&deny, &allow, &by_cidr, &by_name] {
        for service in &host_services {
            let got = probe(&server, id, &format!("tcp {service}")).await;
            assert!(
                got.starts_with("err"),
                "{id} reached host service {service}: {got}"
            );
        }
        let got = probe(&server, id, &neighbour_up).await;
        assert!(got.starts_with("err"), "{id} reached the neighbour: {got}");
    }

    // PATCH a running sandbox: deny → allow → allow-list → deny, same process.
    let pid_before = server
        .run(ADMIN_KEY, &deny, "cat /proc/1/stat | cut -d' ' -f22")
        .await;
    let (status, body) = server
        .call(
            "PATCH",
            &format!("/v1/sandboxes/{deny}"),
            ADMIN_KEY,
            Some(json!({ "network": { "egress": "allow" } })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["network"]["egress"], "allow");
    assert_eq!(
        probe(&server, &deny, &format!("http {a} 80")).await,
        "ok stand-in a"
    );
    assert_eq!(
        probe(&server, &deny, "resolve b.test").await,
        format!("ok {b}")
    );
    let (status, _) = server
        .call(
            "PATCH",
            &format!("/v1/sandboxes/{deny}"),
            ADMIN_KEY,
            Some(json!({ "network": { "allow": [format!("{b}")] } })),
        )
        .await;
    assert_eq!(status, 200);
    assert!(probe(&server, &deny, &format!("http {a} 80"))
        .await
        .starts_with("err"));
    assert_eq!(
        probe(&server, &deny, &format!("http {b} 80")).await,
        "ok stand-in b"
    );
    let (status, _) = server
        .call(
            "PATCH",
            &format!("/v1/sandboxes/{deny}"),
            ADMIN_KEY,
            Some(json!({ "network": { "egress": "deny" } })),
        )
        .await;
    assert_eq!(status, 200);
    assert!(probe(&server, &deny, &format!("http {b} 80"))
        .await
        .starts_with("err"));
    let out = server
        .run(ADMIN_KEY, &deny, "ip -o link | awk -F': ' '{print $2}'")
        .await;
    assert_eq!(out["stdout"].as_str().unwrap().trim(), "lo", "{out}");
    let pid_after = server
        .run(ADMIN_KEY, &deny, "cat /proc/1/stat | cut -d' ' -f22")
        .await;
    assert_eq!(
        pid_before["stdout"], pid_after["stdout"],
        "the sandbox was not restarted"
    );

    // Bad policies are refused with a problem.
    for bad in [
        json!({ "egress": "allow", "allow": ["1.2.3.4"] }),
        json!({ "allow": ["not a host"] }),
        json!({ "allow": ["::1"] }),
        json!({ "egress": "sometimes" }),
    ] {
        let (status, body) = server
            .call(
                "POST",
                "/v1/sandboxes",
                ADMIN_KEY,
                Some(json!({ "network": bad })),
            )
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["code"], "invalid_request", "{body}");
        let (status, _) = server
            .call(
                "PATCH",
                &format!("/v1/sandboxes/{allow}"),
                ADMIN_KEY,
                Some(json!({ "network": bad })),
            )
            .await;
        assert_eq!(status, 400, "PATCH {bad}");
    }

    // Stop and start keep the policy; delete leaves no veth and no chain.
    let (status, _) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{by_cidr}/stop"),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{by_cidr}/start"),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(status, 200);
    upload_probe(&server, ADMIN_KEY, &by_cidr).await;
    assert_eq!(
        probe(&server, &by_cidr, &format!("http {a} 80")).await,
        "ok stand-in a"
    );
    assert!(probe(&server, &by_cidr, &format!("http {b} 80"))
        .await
        .starts_with("err"));

    let (veths, table) = host_state(&slot, 4);
    assert_eq!(veths.len(), 4, "{veths:?}");
    assert_eq!(table.public.len() + table.listed.len(), 4, "{table:?}");
    for id in [&deny, &allow, &by_cidr, &by_name, &neighbour] {
        let (status, _) = server
            .call("DELETE", &format!("/v1/sandboxes/{id}"), ADMIN_KEY, None)
            .await;
        assert_eq!(status, 204);
    }
    let (veths, table) = host_state(&slot, 0);
    assert!(veths.is_empty(), "{veths:?}");
    for elements in [&table.public, &table.listed, &table.allowed, &table.learnt] {
        assert!(elements.is_empty(), "{table:?}");
    }
    drop(server);
}

/// Creates a sandbox with `network` as `key`; (status, body).
async fn try_create(server: &TestServer, key: &str, network: Value) -> (u16, Value) {
    server
        .call(
            "POST",
            "/v1/sandboxes",
            key,
            Some(json!({ "network": network })),
        )
        .await
}

/// Replaces the policy of sandbox `id` as `key`; (status, body).
async fn try_patch(server: &TestServer, key: &str, id: &str, network: Value) -> (u16, Value) {
    server
        .call(
            "PATCH",
            &format!("/v1/sandboxes/{id}"),
            key,
            Some(json!({ "network": network })),
        )
        .await
}

/// Asserts a 400 `invalid_request` whose detail names `entry` as given and
/// says `why`.
fn assert_refused(answer: &(u16, Value), entry: &str, why: &str) {
    let (status, body) = answer;
    assert_eq!(*status, 400, "{entry}: {body}");
    assert_eq!(body["code"], "invalid_request", "{entry}: {body}");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(&format!("{entry:?}")), "{entry}: {body}");
    assert!(detail.contains(why), "{entry}: {body}");
}

#[tokio::test]
async fn metadata_is_never_reached_and_private_ranges_only_when_the_admin_allows() {
    // The default: private ranges closed.
    let slot = Slot::take();
    let internet = Internet::start(slot.k);
    let server = TestServer::start_with(Options {
        args: slot.server_args(Some(internet.a())),
        ..Options::default()
    })
    .await;
    let (_, key) = server.tenant("mallory", None).await;
    let (metadata, private, a) = (internet.metadata(), internet.private(), internet.a());
    // A service on a link-local address of the host itself.
    let on_link_local = TcpListener::bind((internet.host_link_local(), 0)).unwrap();
    let link_local = format!(
        "{} {}",
        internet.host_link_local(),
        on_link_local.local_addr().unwrap().port()
    );
    for (entry, says) in [
        (format!("{metadata}/32"), "link-local"),
        ("169.254.169.254".to_string(), "link-local"),
        ("169.254.0.0/16".to_string(), "link-local"),
        ("127.0.0.1".to_string(), "link-local"),
        ("224.0.0.251/32".to_string(), "link-local"),
        (format!("{private}/32"), "private range"),
        ("10.0.0.0/8".to_string(), "private range"),
        ("192.168.0.0/16".to_string(), "private range"),
        ("100.64.0.1".to_string(), "private range"),
    ] {
        let refused = try_create(&server, &key, json!({ "allow": ["a.test", &entry] })).await;
        assert_refused(&refused, &entry, says);
    }
    // Everything, as a list: the public part only.
    let everything = create_as(&server, &key, json!({ "allow": ["0.0.0.0/0"] })).await;
    let public = create_as(&server, &key, json!({})).await;
    for id in [&everything, &public] {
        assert_eq!(
            probe_as(&server, &key, id, &format!("http {a} 80")).await,
            "ok stand-in a"
        );
        for closed in [metadata, private] {
            let out = probe_as(&server, &key, id, &format!("http {closed} 80")).await;
            assert!(out.starts_with("err"), "{closed} reached: {out}");
        }
        let out = probe_as(&server, &key, id, &format!("tcp {link_local}")).await;
        assert!(out.starts_with("err"), "{link_local} reached: {out}");
    }
    // A PATCH cannot open them either; the policy stays as it was.
    for (entry, says) in [
        ("169.254.169.254", "link-local"),
        ("172.31.0.0/16", "private range"),
    ] {
        let refused = try_patch(&server, &key, &everything, json!({ "allow": [entry] })).await;
        assert_refused(&refused, entry, says);
    }
    let (_, shown) = server
        .call("GET", &format!("/v1/sandboxes/{everything}"), &key, None)
        .await;
    assert_eq!(
        shown["network"],
        json!({ "egress": "deny", "allow": ["0.0.0.0/0"] })
    );
    let out = probe_as(&server, &key, &everything, &format!("http {private} 80")).await;
    assert!(out.starts_with("err"), "{private} reached: {out}");
    drop(server);
    drop(on_link_local);
    drop(internet);
    drop(slot);

    // A server whose admin opens private ranges: a list may name them;
    // metadata and the host's link-local services stay closed.
    let slot = Slot::take();
    let internet = Internet::start(slot.k);
    let mut args = slot.server_args(Some(internet.a()));
    args.push("--allow-private-egress".into());
    let server = TestServer::start_with(Options {
        args,
        ..Options::default()
    })
    .await;
    let (_, key) = server.tenant("mallory", None).await;
    let (metadata, private) = (internet.metadata(), internet.private());
    let on_link_local = TcpListener::bind((internet.host_link_local(), 0)).unwrap();
    let link_local = format!(
        "{} {}",
        internet.host_link_local(),
        on_link_local.local_addr().unwrap().port()
    );
    for entry in [format!("{metadata}/32"), "169.254.169.254".to_string()] {
        let refused = try_create(&server, &key, json!({ "allow": [&entry] })).await;
        assert_refused(&refused, &entry, "link-local");
    }
    let named = create_as(&server, &key, json!({ "allow": [format!("{private}/32")] })).await;
    let everything = create_as(&server, &key, json!({ "allow": ["0.0.0.0/0"] })).await;
    let public = create_as(&server, &key, json!({})).await;
    for id in [&named, &everything] {
        assert_eq!(
            probe_as(&server, &key, id, &format!("http {private} 80")).await,
            "ok stand-in private"
        );
    }
    for id in [&named, &everything, &public] {
        let out = probe_as(&server, &key, id, &format!("http {metadata} 80")).await;
        assert!(out.starts_with("err"), "metadata reached: {out}");
        let out = probe_as(&server, &key, id, &format!("tcp {link_local}")).await;
        assert!(out.starts_with("err"), "{link_local} reached: {out}");
    }
    // Without a list naming them, private ranges stay closed.
    let out = probe_as(&server, &key, &public, &format!("http {private} 80")).await;
    assert!(out.starts_with("err"), "{out}");
    // A PATCH may open them on this server, never metadata.
    let refused = try_patch(
        &server,
        &key,
        &public,
        json!({ "allow": ["169.254.0.0/16"] }),
    )
    .await;
    assert_refused(&refused, "169.254.0.0/16", "link-local");
    let (status, body) = try_patch(
        &server,
        &key,
        &public,
        json!({ "allow": ["172.31.0.0/16"] }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        probe_as(&server, &key, &public, &format!("http {private} 80")).await,
        "ok stand-in private"
    );
    drop(server);
    drop(on_link_local);
}

/// With many `allow` sandboxes alive, each is two set elements' worth of
/// state, never rules of its own (a rule list is walked by every packet and
/// cached by `nft` on every change, so its cost grows with the count). An
/// allow-listed, a plain-allow and a deny sandbox side by side each get
/// exactly their own policy, before and after one of them is deleted.
#[tokio::test]
async fn many_sandboxes_are_set_elements_not_rules() {
    const MANY: usize = 50;
    let slot = Slot::take();
    let internet = Internet::start(slot.k);
    let server = TestServer::start_with(Options {
        args: slot.server_args(Some(internet.a())),
        ..Options::default()
    })
    .await;
    let (a, b) = (internet.a().to_string(), internet.b().to_string());
    let empty = TableState::read(&slot.name());
    assert!(
        empty.public.is_empty() && empty.listed.is_empty(),
        "{empty:?}"
    );

    let listed = create(&server, json!({ "allow": [format!("{a}/32")] })).await;
    let deny = create(&server, json!({ "egress": "deny" })).await;
    let mut public = Vec::new();
    for i in 0..MANY {
        // One in the middle gets the probe, to check its reach.
        if i == MANY / 2 {
            public.push(create(&server, json!({ "egress": "allow" })).await);
            continue;
        }
        let sandbox = server
            .create(ADMIN_KEY, json!({ "network": { "egress": "allow" } }))
            .await;
        public.push(sandbox["id"].as_str().unwrap().to_string());
    }
    let plain = create(&server, json!({ "egress": "allow" })).await;

    let full = TableState::read(&slot.name());
    assert_eq!(full.rules, empty.rules, "{full:?}");
    assert_eq!(full.chains, empty.chains, "{full:?}");
    assert_eq!(full.public.len(), MANY + 1, "{full:?}");
    assert_eq!(full.listed.len(), 1, "{full:?}");
    assert_eq!(full.allowed.len(), 1, "{full:?}");

    let reach = |id: String, host: String| {
        let server = &server;
        async move {
            probe(server, &id, &format!("http {host} 80"))
                .await
                .starts_with("ok")
        }
    };
    let check = |with_plain: bool| {
        let (listed, deny, plain, other) = (
            listed.clone(),
            deny.clone(),
            plain.clone(),
            public[MANY / 2].clone(),
        );
        let (a, b) = (a.clone(), b.clone());
        let reach = &reach;
        async move {
            assert!(reach(listed.clone(), a.clone()).await, "listed → a");
            assert!(!reach(listed, b.clone()).await, "listed → b");
            assert!(!reach(deny.clone(), a.clone()).await, "deny → a");
            assert!(!reach(deny, b.clone()).await, "deny → b");
            assert!(reach(other.clone(), a.clone()).await, "allow → a");
            assert!(reach(other, b.clone()).await, "allow → b");
            if with_plain {
                assert!(reach(plain.clone(), a).await, "plain → a");
                assert!(reach(plain, b).await, "plain → b");
            }
        }
    };
    check(true).await;

    let (status, _) = server
        .call("DELETE", &format!("/v1/sandboxes/{plain}"), ADMIN_KEY, None)
        .await;
    assert_eq!(status, 204);
    check(false).await;
    let fewer = TableState::read(&slot.name());
    assert_eq!(fewer.rules, empty.rules, "{fewer:?}");
    assert_eq!(fewer.public.len(), MANY, "{fewer:?}");
    assert_eq!(fewer.listed.len(), 1, "{fewer:?}");

    for id in public.iter().chain([&listed, &deny]) {
        let (status, _) = server
            .call("DELETE", &format!("/v1/sandboxes/{id}"), ADMIN_KEY, None)
            .await;
        assert_eq!(status, 204);
    }
    let (veths, table) = host_state(&slot, 0);
    assert!(veths.is_empty(), "{veths:?}");
    assert_eq!(table.rules, empty.rules, "{table:?}");
    for elements in [&table.public, &table.listed, &table.allowed, &table.learnt] {
        assert!(elements.is_empty(), "{table:?}");
    }
    drop(server);
}

/// After a `kill -9` and a restart, running sandboxes keep exactly their
/// policies (their elements are read back), while elements of no sandbox
/// and whatever an older server left in the table (a chain and sets per
/// sandbox behind a verdict map) are removed.
#[tokio::test]
async fn a_restart_keeps_policies_and_removes_leftovers() {
    let slot = Slot::take();
    let internet = Internet::start(slot.k);
    let mut server = TestServer::start_with(Options {
        args: slot.server_args(Some(internet.a())),
        ..Options::default()
    })
    .await;
    let (a, b) = (internet.a().to_string(), internet.b().to_string());
    let listed = create(&server, json!({ "allow": [format!("{a}/32")] })).await;
    let by_name = create(&server, json!({ "allow": ["b.test"] })).await;
    let plain = create(&server, json!({ "egress": "allow" })).await;
    assert_eq!(
        probe(&server, &by_name, "http b.test 80").await,
        "ok stand-in b"
    );
    let before = TableState::read(&slot.name());
    assert_eq!(before.learnt.len(), 1, "{before:?}");

    server.kill9();
    let (t, k) = (format!("inet {}", slot.name()), slot.k);
    let stray = format!("10.214.{k}.250");
    let old = format!(
        "{:08x}",
        u32::from(stray.parse::<std::net::Ipv4Addr>().unwrap())
    );
    let leftovers = format!(
        "add map {t} sandboxes {{ type ipv4_addr : verdict; }}\n\
         add chain {t} sb_{old}\n\
         add rule {t} sb_{old} accept\n\
         add set {t} sn_{old} {{ type ipv4_addr; flags interval; }}\n\
         add set {t} sd_{old} {{ type ipv4_addr; flags timeout; }}\n\
         add element {t} sandboxes {{ {stray} : jump sb_{old} }}\n\
         add element {t} egress_public {{ \"{name}-fa\" . {stray} }}\n\
         add element {t} allowed {{ {stray} . 0.0.0.0/0 }}\n\
         add element {t} learnt {{ {stray} . {b} timeout 1h }}\n",
        name = slot.name()
    );
    let mut nft = Command::new("nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    nft.stdin
        .take()
        .unwrap()
        .write_all(leftovers.as_bytes())
        .unwrap();
    assert!(nft.wait().unwrap().success());
    server.spawn();

    let after = TableState::read(&slot.name());
    assert!(
        !after.chains.iter().any(|c| c.starts_with("sb_")),
        "{after:?}"
    );
    assert_eq!(after.rules, before.rules, "{after:?}");
    assert_eq!(after.public, before.public, "{after:?}");
    assert_eq!(after.listed, before.listed, "{after:?}");
    assert_eq!(after.allowed, before.allowed, "{after:?}");
    assert_eq!(after.learnt.len(), 1, "{after:?}");
    let listing = Command::new("nft")
        .args(["list", "table", "inet", &slot.name()])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(
        !listing.contains(&stray) && !listing.contains("sandboxes"),
        "{listing}"
    );

    let reach = |id: &str, host: &str| {
        let (server, cmd) = (&server, format!("http {host} 80"));
        let id = id.to_string();
        async move { probe(server, &id, &cmd).await.starts_with("ok") }
    };
    assert!(reach(&listed, &a).await);
    assert!(!reach(&listed, &b).await);
    assert!(reach(&plain, &a).await);
    assert!(reach(&plain, &b).await);
    assert!(reach(&by_name, &b).await);
    assert!(!reach(&by_name, &a).await);

    for id in [&listed, &by_name, &plain] {
        let (status, _) = server
            .call("DELETE", &format!("/v1/sandboxes/{id}"), ADMIN_KEY, None)
            .await;
        assert_eq!(status, 204);
    }
    let (veths, table) = host_state(&slot, 0);
    assert!(veths.is_empty(), "{veths:?}");
    for elements in [&table.public, &table.listed, &table.allowed, &table.learnt] {
        assert!(elements.is_empty(), "{table:?}");
    }
}

/// A stop leaves a sandbox's interface to the kernel, which removes it with
/// the sandbox's network namespace; until then the address may be handed
/// out again. Here the namespace is held open by the test, the range has
/// five addresses, and the sandbox is restarted until it gets its first
/// address back: that start must replace the old link with one of its own
/// (not take the old one, named for it, as its own) and reach out.
#[tokio::test]
async fn a_start_on_an_address_whose_old_link_lingers_gets_its_own_interface() {
    let slot = Slot::take();
    let internet = Internet::start(slot.k);
    let k = slot.k;
    let server = TestServer::start_with(Options {
        args: vec![
            "--network-name".into(),
            slot.name(),
            "--network-cidr".into(),
            format!("10.214.{k}.0/29"),
            "--network-dns".into(),
            format!("{}:53", internet.a()),
        ],
        ..Options::default()
    })
    .await;
    let a = internet.a().to_string();
    let id = create(&server, json!({ "egress": "allow" })).await;
    assert_eq!(
        probe(&server, &id, &format!("http {a} 80")).await,
        "ok stand-in a"
    );
    let first_link = format!("{}-2", slot.name());
    assert_eq!(host_veths(&slot), std::slice::from_ref(&first_link));
    let pid = server.runtime().pid(&id).expect("the sandbox's init");
    let held = std::fs::File::open(format!("/proc/{pid}/ns/net")).unwrap();

    let cycle = |n: usize| {
        let (server, id) = (&server, id.clone());
        async move {
            for action in ["stop", "start"] {
                let (status, body) = server
                    .call(
                        "POST",
                        &format!("/v1/sandboxes/{id}/{action}"),
                        ADMIN_KEY,
                        None,
                    )
                    .await;
                assert_eq!(status, 200, "{action} #{n}: {body}");
            }
        }
    };
    // Addresses .3 to .6, then .2 again.
    for n in 1..=4 {
        cycle(n).await;
        assert!(
            host_veths(&slot).contains(&first_link),
            "the held namespace keeps the first link after stop #{n}"
        );
    }
    cycle(5).await;
    upload_probe(&server, ADMIN_KEY, &id).await;
    assert_eq!(
        probe(&server, &id, &format!("http {a} 80")).await,
        "ok stand-in a",
        "the sandbox on its first address again has an interface of its own"
    );
    drop(held);
    let (status, _) = server
        .call("DELETE", &format!("/v1/sandboxes/{id}"), ADMIN_KEY, None)
        .await;
    assert_eq!(status, 204);
    let (veths, table) = host_state(&slot, 0);
    assert!(veths.is_empty(), "{veths:?}");
    for elements in [&table.public, &table.listed, &table.allowed, &table.learnt] {
        assert!(elements.is_empty(), "{table:?}");
    }
}
