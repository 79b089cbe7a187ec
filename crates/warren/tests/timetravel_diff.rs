//! Checkpoint diffs through a real server on real sandboxes: the paths
//! changed between two checkpoints and up to the live disk, one file's
//! unified diff, binary files, the item cap, tenant isolation.

mod server_common;

use serde_json::{json, Value};
use server_common::{list_dir, TestServer};

fn id_of(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .to_string()
}

async fn checkpoint(server: &TestServer, key: &str, sbx: &str) -> String {
    let (status, ckpt) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{sbx}/checkpoints"),
            key,
            None,
        )
        .await;
    assert_eq!(status, 201, "checkpoint: {ckpt}");
    id_of(&ckpt)
}

async fn sh_ok(server: &TestServer, key: &str, sbx: &str, cmd: &str) {
    let (code, out) = server.sh(key, sbx, cmd).await;
    assert_eq!(code, 0, "{cmd}: {out}");
}

/// `(change, kind, size, path)` of the items under `prefix`.
fn under(diff: &Value, prefix: &str) -> Vec<(String, String, u64, String)> {
    diff["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items in {diff}"))
        .iter()
        .filter(|i| i["path"].as_str().unwrap().starts_with(prefix))
        .map(|i| {
            (
                i["change"].as_str().unwrap().to_string(),
                i["kind"].as_str().unwrap().to_string(),
                i["size"].as_u64().unwrap(),
                i["path"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn rows(rows: &[(&str, &str, u64, &str)]) -> Vec<(String, String, u64, String)> {
    rows.iter()
        .map(|(c, k, s, p)| (c.to_string(), k.to_string(), *s, p.to_string()))
        .collect()
}

/// The diff changes of the work directory between the two checkpoints.
const CHANGES: &[(&str, &str, u64, &str)] = &[
    ("modified", "file", 5, "/home/user/w/bin.dat"),
    ("added", "dir", 0, "/home/user/w/d"),
    ("added", "file", 3, "/home/user/w/d/f.txt"),
    ("deleted", "file", 4, "/home/user/w/del.txt"),
    ("added", "symlink", 8, "/home/user/w/link"),
    ("modified", "file", 14, "/home/user/w/mod.txt"),
    ("added", "file", 4, "/home/user/w/new.txt"),
    ("deleted", "dir", 0, "/home/user/w/old"),
    ("deleted", "file", 2, "/home/user/w/old/a.txt"),
    ("added", "dir", 0, "/home/user/w/renamed"),
    ("added", "file", 2, "/home/user/w/renamed/a.txt"),
];

#[tokio::test(flavor = "multi_thread")]
async fn diffs_between_checkpoints_and_to_the_live_disk() {
    let server = TestServer::start().await;
    let (_, key) = server.tenant("alpha", None).await;
    let (_, other) = server.tenant("beta", None).await;
    let sbx = id_of(&server.create(&key, json!({})).await);
    sh_ok(
        &server,
        &key,
        &sbx,
        "mkdir -p /home/user/w/old && cd /home/user/w && printf 'one\\ntwo\\nthree\\n' > mod.txt \
         && printf 'bye\\n' > del.txt && printf 'a\\n' > old/a.txt && printf 'keep\\n' > keep.txt \
         && printf 'a\\0b' > bin.dat",
    )
    .await;
    let a = checkpoint(&server, &key, &sbx).await;
    sh_ok(
        &server,
        &key,
        &sbx,
        "cd /home/user/w && printf 'one\\nTWO\\nthree\\n' > mod.txt && rm del.txt \
         && printf 'new\\n' > new.txt && mkdir d && printf 'in\\n' > d/f.txt \
         && ln -s keep.txt link && mv old renamed && printf 'x\\0y\\0z' > bin.dat",
    )
    .await;
    let b = checkpoint(&server, &key, &sbx).await;

    let (status, diff) = server
        .call(
            "GET",
            &format!("/v1/checkpoints/{a}/diff?to={b}"),
            &key,
            None,
        )
        .await;
    assert_eq!(status, 200, "{diff}");
    assert_eq!(diff["truncated"], false);
    assert_eq!(under(&diff, "/home/user/w/"), rows(CHANGES), "{diff}");
    let paths: Vec<&str> = diff["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["path"].as_str().unwrap())
        .collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted, "sorted by path");

    // Up to the live disk, after one more change.
    sh_ok(
        &server,
        &key,
        &sbx,
        "printf 'later\\n' > /home/user/w/later.txt",
    )
    .await;
    let (status, live) = server
        .call("GET", &format!("/v1/checkpoints/{a}/diff"), &key, None)
        .await;
    assert_eq!(status, 200, "{live}");
    let mut expected = CHANGES.to_vec();
    expected.insert(4, ("added", "file", 6, "/home/user/w/later.txt"));
    assert_eq!(under(&live, "/home/user/w/"), rows(&expected), "{live}");
    let (status, live) = server
        .call("GET", &format!("/v1/checkpoints/{b}/diff"), &key, None)
        .await;
    assert_eq!(status, 200, "{live}");
    assert_eq!(
        under(&live, "/home/user/w/"),
        rows(&[("added", "file", 6, "/home/user/w/later.txt")])
    );
    let tmp = server.state_dir.join("pool/tmp");
    assert!(
        !list_dir(&tmp).iter().any(|n| n.starts_with("tt-diff")),
        "the live disk's snapshot is deleted: {:?}",
        list_dir(&tmp)
    );
    // The sandbox kept running, unfrozen.
    sh_ok(&server, &key, &sbx, "test -f /home/user/w/later.txt").await;

    // One text file's unified diff; a binary one.
    let file = |path: &str, to: &str| format!("/v1/checkpoints/{a}/diff/file?path={path}{to}");
    let (status, text) = server
        .call(
            "GET",
            &file("/home/user/w/mod.txt", &format!("&to={b}")),
            &key,
            None,
        )
        .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(text["change"], "modified");
    assert_eq!(text["binary"], false);
    assert_eq!(text["truncated"], false);
    assert_eq!(
        text["unified"],
        "--- a/home/user/w/mod.txt\n+++ b/home/user/w/mod.txt\n@@ -1,3 +1,3 @@\n one\n-two\n+TWO\n three\n",
        "{text}"
    );
    let (status, added) = server
        .call("GET", &file("/home/user/w/later.txt", ""), &key, None)
        .await;
    assert_eq!(status, 200, "{added}");
    assert_eq!(added["change"], "added");
    assert!(
        added["unified"].as_str().unwrap().contains("+later\n"),
        "{added}"
    );
    let (status, bin) = server
        .call(
            "GET",
            &file("/home/user/w/bin.dat", &format!("&to={b}")),
            &key,
            None,
        )
        .await;
    assert_eq!(status, 200, "{bin}");
    assert_eq!(
        (bin["binary"].clone(), bin["unified"].clone()),
        (json!(true), Value::Null)
    );
    for (path, status, code) in [
        ("relative.txt", 400, "invalid_request"),
        ("/home/user/w/../w/mod.txt", 400, "invalid_request"),
        ("/home/user/w/d", 400, "is_a_directory"),
        ("/home/user/w/nothing", 404, "file_not_found"),
    ] {
        let (got, problem) = server.call("GET", &file(path, ""), &key, None).await;
        assert_eq!(
            (got, problem["code"].as_str()),
            (status, Some(code)),
            "{path}: {problem}"
        );
    }

    // Another tenant sees neither checkpoint, from either end.
    let theirs = id_of(&server.create(&other, json!({})).await);
    let their_ckpt = checkpoint(&server, &other, &theirs).await;
    for path in [
        format!("/v1/checkpoints/{a}/diff"),
        format!("/v1/checkpoints/{a}/diff?to={b}"),
        format!("/v1/checkpoints/{their_ckpt}/diff?to={a}"),
        format!("/v1/checkpoints/{a}/diff/file?path=/home/user/w/mod.txt"),
    ] {
        let (status, problem) = server.call("GET", &path, &other, None).await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (404, Some("checkpoint_not_found")),
            "{path}: {problem}"
        );
    }

    // More changes than the cap: the first 10,000, truncated.
    sh_ok(
        &server,
        &key,
        &sbx,
        "mkdir /home/user/many && cd /home/user/many && seq -f 'f%05g' 1 10050 | xargs touch",
    )
    .await;
    let (status, many) = server
        .call("GET", &format!("/v1/checkpoints/{b}/diff"), &key, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(many["truncated"], true);
    assert_eq!(many["items"].as_array().unwrap().len(), 10_000);

    // Checkpoints outlive their sandbox; a diff to its live disk does not.
    let (status, _) = server
        .call("DELETE", &format!("/v1/sandboxes/{sbx}"), &key, None)
        .await;
    assert_eq!(status, 204);
    let (status, problem) = server
        .call("GET", &format!("/v1/checkpoints/{a}/diff"), &key, None)
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (404, Some("sandbox_not_found")),
        "{problem}"
    );
    let (status, diff) = server
        .call(
            "GET",
            &format!("/v1/checkpoints/{a}/diff?to={b}"),
            &key,
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(under(&diff, "/home/user/w/"), rows(CHANGES));
}

/// `GET` of `path` as the admin; (status, body).
async fn get(server: &TestServer, path: &str) -> (u16, Value) {
    server
        .call("GET", path, server_common::ADMIN_KEY, None)
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_copy_driver_diffs_by_walking() {
    use server_common::{Options, ADMIN_KEY};
    // The copy driver's server has no `base`: its sandbox comes from a
    // checkpoint of a btrfs server, exported as a tar (trimmed first, so
    // its full copies stay quick).
    let origin = TestServer::start().await;
    let copy = TestServer::start_with(Options {
        copy_driver: true,
        args: vec!["--no-network".into()],
        ..Options::default()
    })
    .await;
    let sbx = id_of(&origin.create(ADMIN_KEY, json!({})).await);
    sh_ok(
        &origin,
        ADMIN_KEY,
        &sbx,
        "rm -rf /var/lib/apt/lists /var/cache/apt /usr/share/doc /usr/share/man /usr/share/locale",
    )
    .await;
    let seed = checkpoint(&origin, ADMIN_KEY, &sbx).await;
    let resp = origin
        .req(
            reqwest::Method::GET,
            &format!("/v1/checkpoints/{seed}/export?format=tar-gzip"),
            ADMIN_KEY,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let export = resp.bytes().await.unwrap();
    let resp = copy
        .req(reqwest::Method::POST, "/v1/checkpoints/import", ADMIN_KEY)
        .header("content-type", "application/vnd.warren.checkpoint")
        .body(export)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let imported = id_of(&resp.json().await.unwrap());
    let made = id_of(
        &copy
            .create(ADMIN_KEY, json!({"from_checkpoint": imported}))
            .await,
    );

    sh_ok(
        &copy,
        ADMIN_KEY,
        &made,
        "mkdir -p /srv/c/old && printf 'one\\ntwo\\n' > /srv/c/t.txt && echo x > /srv/c/old/a",
    )
    .await;
    let a = checkpoint(&copy, ADMIN_KEY, &made).await;
    sh_ok(
        &copy,
        ADMIN_KEY,
        &made,
        "printf 'one\\n2\\n' > /srv/c/t.txt && mv /srv/c/old /srv/c/new && ln -s t.txt /srv/c/l",
    )
    .await;
    let b = checkpoint(&copy, ADMIN_KEY, &made).await;
    let expected = rows(&[
        ("added", "symlink", 5, "/srv/c/l"),
        ("added", "dir", 0, "/srv/c/new"),
        ("added", "file", 2, "/srv/c/new/a"),
        ("deleted", "dir", 0, "/srv/c/old"),
        ("deleted", "file", 2, "/srv/c/old/a"),
        ("modified", "file", 6, "/srv/c/t.txt"),
    ]);
    let (status, diff) = get(&copy, &format!("/v1/checkpoints/{a}/diff?to={b}")).await;
    assert_eq!(status, 200, "{diff}");
    assert_eq!(under(&diff, "/srv/c/"), expected, "{diff}");
    let (status, live) = get(&copy, &format!("/v1/checkpoints/{a}/diff")).await;
    assert_eq!(status, 200, "{live}");
    assert_eq!(under(&live, "/srv/c/"), expected, "{live}");
    let (status, file) = get(
        &copy,
        &format!("/v1/checkpoints/{a}/diff/file?path=/srv/c/t.txt&to={b}"),
    )
    .await;
    assert_eq!(status, 200, "{file}");
    assert_eq!(
        file["unified"],
        "--- a/srv/c/t.txt\n+++ b/srv/c/t.txt\n@@ -1,2 +1,2 @@\n one\n-two\n+2\n"
    );
}
