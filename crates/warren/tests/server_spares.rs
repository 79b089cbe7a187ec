//! Spare roots (`warren_server::spares`): after a create every slot of its
//! template is filled again, a burst of creates takes the roots that were
//! ready, and each of them is a root of its own.

mod server_common;

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;
use server_common::{list_dir, Options, TestServer, ADMIN_KEY};
use warren_server::spares::{FIRST_REQUEST_WAIT, PER_TEMPLATE};

/// The spare roots of `base` once every slot holds one (and nothing is
/// half made), within a minute.
async fn full_spares(dir: &Path) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut names = list_dir(dir);
        names.sort();
        let ready = names.len() == PER_TEMPLATE
            && names.iter().all(|n| n.starts_with("base@"))
            && (0..PER_TEMPLATE).all(|slot| names.iter().any(|n| n.ends_with(&format!("+{slot}"))));
        if ready {
            return names;
        }
        assert!(
            Instant::now() < deadline,
            "the spare roots of base were not refilled: {names:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The device number of the volume at `path`: each btrfs subvolume has its
/// own, and keeps it when renamed.
fn volume_dev(path: &Path) -> u64 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .dev()
}

/// A server without a warm pool whose first create has filled every
/// spare slot of `base`: the server, the spares' directory and their names.
async fn server_with_full_spares() -> (TestServer, std::path::PathBuf, Vec<String>) {
    let server = TestServer::start_with(Options {
        args: vec!["--no-network".into(), "--pool".into(), "base=0".into()],
        ..Default::default()
    })
    .await;
    let spares = server.state_dir.join("pool/spares");
    // The first create starts the refill of every slot.
    let first = server.create(ADMIN_KEY, json!({})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(server.sh(ADMIN_KEY, &first, "echo up").await.0, 0);
    let names = full_spares(&spares).await;
    (server, spares, names)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_takes_every_spare_root_and_each_is_its_own() {
    let (server, spares, before) = server_with_full_spares().await;

    // The burst takes exactly those spares (not snapshots of its own, nor
    // the spares refilled meanwhile).
    let spare_devs: BTreeSet<u64> = before.iter().map(|n| volume_dev(&spares.join(n))).collect();
    let creates = (0..PER_TEMPLATE).map(|_| server.create(ADMIN_KEY, json!({})));
    let ids: Vec<String> = futures::future::join_all(creates)
        .await
        .into_iter()
        .map(|s| s["id"].as_str().expect("created").to_string())
        .collect();
    let root_devs: BTreeSet<u64> = ids
        .iter()
        .map(|id| volume_dev(&server.state_dir.join("pool/sandboxes").join(id)))
        .collect();
    assert_eq!(
        root_devs, spare_devs,
        "the burst's roots are not the spares that were ready ({before:?})"
    );

    // Each root is a snapshot of its own: a file written in one is in no
    // other, and the template's files are in all.
    for id in &ids {
        let (code, out) = server
            .sh(ADMIN_KEY, id, &format!("echo {id} > /srv/mark-{id}"))
            .await;
        assert_eq!(code, 0, "{out}");
    }
    for id in &ids {
        let (code, out) = server
            .sh(ADMIN_KEY, id, "ls /srv; test -x /bin/sh && echo template")
            .await;
        assert_eq!(code, 0, "{out}");
        assert_eq!(
            out.split_whitespace().collect::<Vec<_>>(),
            [format!("mark-{id}").as_str(), "template"],
            "{id} sees another sandbox's files"
        );
    }

    // And the slots are filled again, with new volumes.
    let after = full_spares(&spares).await;
    assert_eq!(after, before, "the same template volume, the same slots");
    for name in &after {
        assert!(!spare_devs.contains(&volume_dev(&spares.join(name))));
    }
}

/// How many slots of `base` hold a whole spare root.
fn ready_slots(dir: &Path) -> usize {
    list_dir(dir)
        .iter()
        .filter(|n| n.starts_with("base@"))
        .count()
}

/// A refill waits for the first request of the sandbox that took a spare
/// (so that its snapshot's commit does not land on that request), but not
/// longer than `FIRST_REQUEST_WAIT` when none comes.
#[tokio::test(flavor = "multi_thread")]
async fn a_refill_waits_for_the_new_sandbox_s_first_request_but_not_forever() {
    let (server, spares, _) = server_with_full_spares().await;

    // A create takes a spare; without a request its slot stays empty for
    // a while (checked only while the wait surely runs: a loaded machine
    // may look later than that).
    let sent = Instant::now();
    let second = server.create(ADMIN_KEY, json!({})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Long enough for a refill that did not wait to be done.
    tokio::time::sleep(Duration::from_millis(25)).await;
    let held = FIRST_REQUEST_WAIT - Duration::from_millis(10);
    let looked = sent.elapsed();
    let ready = ready_slots(&spares);
    if looked < held {
        assert_eq!(
            ready,
            PER_TEMPLATE - 1,
            "refilled {looked:?} after the create, before its first request"
        );
    } else {
        eprintln!("looked {looked:?} after the create: too late to check the wait");
    }
    // Its first request lets the refill go.
    assert_eq!(server.sh(ADMIN_KEY, &second, "echo up").await.0, 0);
    full_spares(&spares).await;

    // A sandbox that is sent nothing holds its refill back no longer than
    // the bound.
    let _idle = server.create(ADMIN_KEY, json!({})).await;
    let waited = Instant::now();
    full_spares(&spares).await;
    assert!(
        waited.elapsed() < Duration::from_secs(10),
        "{:?}",
        waited.elapsed()
    );
}
