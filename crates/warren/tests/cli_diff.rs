//! Checkpoint diffs from the clients against a real server: `warren
//! checkpoint diff A [B] [--path P] [--json]` (the binary as a child
//! process) and the Rust SDK's `checkpoint_diff` / `checkpoint_file_diff`.

mod server_common;

use serde_json::Value;
use server_common::{TestServer, ADMIN_KEY};
use warren_client::{Client, CreateSandboxRequest, DiffChange, DiffKind, ErrorCode};

#[tokio::test(flavor = "multi_thread")]
async fn cli_checkpoint_diff_lists_paths_and_prints_unified_diffs() {
    let server = TestServer::start().await;
    let id = server
        .cli_ok(ADMIN_KEY, &["create"])
        .await
        .trim()
        .to_string();
    server
        .cli_ok(
            ADMIN_KEY,
            &[
                "exec",
                &id,
                "mkdir /srv/w && printf 'a\\nb\\n' > /srv/w/t.txt && echo x > /srv/w/gone",
            ],
        )
        .await;
    let a = server
        .cli_ok(ADMIN_KEY, &["checkpoint", "create", &id])
        .await
        .trim()
        .to_string();
    server
        .cli_ok(
            ADMIN_KEY,
            &[
                "exec",
                &id,
                "printf 'a\\nB\\n' > /srv/w/t.txt && rm /srv/w/gone && echo hello > /srv/w/new",
            ],
        )
        .await;
    let b = server
        .cli_ok(ADMIN_KEY, &["checkpoint", "create", &id])
        .await
        .trim()
        .to_string();

    let table = server
        .cli_ok(ADMIN_KEY, &["checkpoint", "diff", &a, &b])
        .await;
    let lines: Vec<&str> = table.lines().filter(|l| l.contains("/srv/w/")).collect();
    let cells: Vec<Vec<&str>> = lines
        .iter()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        cells,
        [
            vec!["deleted", "2", "/srv/w/gone"],
            vec!["added", "6", "/srv/w/new"],
            vec!["modified", "4", "/srv/w/t.txt"],
        ],
        "{table}"
    );
    assert!(table.starts_with("CHANGE"), "{table}");

    // To the live disk, as JSON.
    server
        .cli_ok(ADMIN_KEY, &["exec", &id, "echo more > /srv/w/live"])
        .await;
    let live: Value = serde_json::from_str(
        &server
            .cli_ok(ADMIN_KEY, &["checkpoint", "diff", &b, "--json"])
            .await,
    )
    .unwrap();
    let paths: Vec<&str> = live["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["path"].as_str().filter(|p| p.starts_with("/srv/w/")))
        .collect();
    assert_eq!(paths, ["/srv/w/live"], "{live}");
    assert_eq!(live["truncated"], false);

    let unified = server
        .cli_ok(
            ADMIN_KEY,
            &["checkpoint", "diff", &a, &b, "--path", "/srv/w/t.txt"],
        )
        .await;
    assert_eq!(
        unified,
        "--- a/srv/w/t.txt\n+++ b/srv/w/t.txt\n@@ -1,2 +1,2 @@\n a\n-b\n+B\n"
    );
    let bad = server
        .cli(
            ADMIN_KEY,
            &["checkpoint", "diff", &a, "--path", "srv/w/t.txt"],
        )
        .await;
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("invalid_request"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    server.cli_ok(ADMIN_KEY, &["rm", &id]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rust_client_diffs_checkpoints() {
    let server = TestServer::start().await;
    let client = Client::new(&server.base, Some(ADMIN_KEY)).expect("client");
    let sandbox = client
        .create(&CreateSandboxRequest::default())
        .await
        .unwrap();
    sandbox
        .run("mkdir /srv/r && printf 'one\\n' > /srv/r/f")
        .await
        .unwrap();
    let a = sandbox.checkpoint(Some("a")).await.unwrap();
    sandbox
        .run("printf 'two\\n' > /srv/r/f && mkdir /srv/r/d && ln -s f /srv/r/d/l")
        .await
        .unwrap();

    let live = client.checkpoint_diff(&a.id, None).await.unwrap();
    let mine: Vec<_> = live
        .items
        .iter()
        .filter(|i| i.path.starts_with("/srv/r/"))
        .map(|i| (i.path.as_str(), i.change, i.kind, i.size))
        .collect();
    assert_eq!(
        mine,
        [
            ("/srv/r/d", DiffChange::Added, DiffKind::Dir, 0),
            ("/srv/r/d/l", DiffChange::Added, DiffKind::Symlink, 1),
            ("/srv/r/f", DiffChange::Modified, DiffKind::File, 4),
        ]
    );
    let b = sandbox.checkpoint(Some("b")).await.unwrap();
    let between = client.checkpoint_diff(&a.id, Some(&b.id)).await.unwrap();
    assert!(!between.truncated);
    assert!(between.items.iter().any(|i| i.path == "/srv/r/f"));
    let file = client
        .checkpoint_file_diff(&a.id, "/srv/r/f", Some(&b.id))
        .await
        .unwrap();
    assert_eq!(file.change, DiffChange::Modified);
    assert!(!file.binary);
    assert_eq!(
        file.unified.as_deref(),
        Some("--- a/srv/r/f\n+++ b/srv/r/f\n@@ -1 +1 @@\n-one\n+two\n")
    );
    let err = client.checkpoint_diff("ckpt_nope", None).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::CheckpointNotFound), "{err}");
    sandbox.delete().await.unwrap();
}
