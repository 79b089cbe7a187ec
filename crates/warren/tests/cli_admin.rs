//! The `warren` CLI as a user of the sandbox and as the admin: `exec
//! --user`, `run --user`, tenants and API keys (`key create --format e2b`),
//! against a real server.

mod server_common;

use serde_json::Value;
use server_common::{TestServer, ADMIN_KEY};

async fn json(server: &TestServer, key: &str, args: &[&str]) -> Value {
    let text = server.cli_ok(key, args).await;
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("warren {args:?}: {e}: {text}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_and_run_take_a_user() {
    let server = TestServer::start().await;
    let id = server
        .cli_ok(ADMIN_KEY, &["create"])
        .await
        .trim()
        .to_string();
    let out = server
        .cli_ok(
            ADMIN_KEY,
            &[
                "exec",
                "--user",
                "user",
                "-w",
                "/home/user",
                &id,
                "id -un; echo $HOME; pwd; sudo -n id -u",
            ],
        )
        .await;
    assert_eq!(out, "user\n/home/user\n/home/user\n0\n");
    // argv form, short flag.
    let out = server
        .cli_ok(ADMIN_KEY, &["exec", "-u", "1000", &id, "id", "-u"])
        .await;
    assert_eq!(out, "1000\n");
    let out = server.cli_ok(ADMIN_KEY, &["exec", &id, "id -u"]).await;
    assert_eq!(out, "0\n");
    let failed = server
        .cli(ADMIN_KEY, &["exec", "-u", "ghost", &id, "true"])
        .await;
    assert!(!failed.status.success());
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(stderr.contains("invalid_request"), "{stderr}");
    let out = server
        .cli_ok(ADMIN_KEY, &["run", "--user", "user", "--", "whoami"])
        .await;
    assert_eq!(out, "user\n");
    server.cli_ok(ADMIN_KEY, &["rm", &id]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tenants_and_keys_in_both_formats() {
    let server = TestServer::start().await;
    let tenant = server
        .cli_ok(
            ADMIN_KEY,
            &["tenant", "create", "acme", "--max-sandboxes", "3"],
        )
        .await
        .trim()
        .to_string();
    assert!(tenant.starts_with("ten_"), "{tenant}");
    let listed = json(&server, ADMIN_KEY, &["tenant", "ls", "--json"]).await;
    assert!(listed
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["id"] == tenant.as_str() && t["name"] == "acme" && t["max_sandboxes"] == 3));

    // The E2B form, by tenant name; the secret alone on stdout.
    let e2b = server
        .cli_ok(
            ADMIN_KEY,
            &["key", "create", "--tenant", "acme", "--format", "e2b"],
        )
        .await
        .trim()
        .to_string();
    let hex = e2b.strip_prefix("e2b_").expect("e2b_ prefix");
    assert_eq!(hex.len(), 64, "{e2b}");
    assert!(hex
        .chars()
        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    // The Warren form, by id, as JSON.
    let warren = json(
        &server,
        ADMIN_KEY,
        &["key", "create", "--tenant", &tenant, "--json"],
    )
    .await;
    assert!(
        warren["key"].as_str().unwrap().starts_with("wsk_"),
        "{warren}"
    );
    assert_eq!(warren["tenant_id"], tenant.as_str());

    // Both keys act for the tenant.
    let id = server.cli_ok(&e2b, &["create"]).await.trim().to_string();
    let seen = json(&server, warren["key"].as_str().unwrap(), &["ls", "--json"]).await;
    assert!(seen.to_string().contains(&id), "{seen}");

    let keys = json(
        &server,
        ADMIN_KEY,
        &["key", "ls", "--tenant", "acme", "--json"],
    )
    .await;
    let keys = keys.as_array().unwrap();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys
        .iter()
        .any(|k| k["prefix"].as_str().unwrap().starts_with("e2b_")));

    // Revoked, the key is refused.
    let e2b_id = keys
        .iter()
        .find(|k| k["prefix"].as_str().unwrap().starts_with("e2b_"))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    server.cli_ok(ADMIN_KEY, &["key", "rm", &e2b_id]).await;
    let refused = server.cli(&e2b, &["ls"]).await;
    assert!(!refused.status.success());

    let missing = server
        .cli(ADMIN_KEY, &["key", "create", "--tenant", "nobody"])
        .await;
    assert!(!missing.status.success());
    server.cli_ok(ADMIN_KEY, &["rm", &id]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pool_set_and_ls_size_the_warm_pool() {
    let server = TestServer::start().await;
    let set = json(&server, ADMIN_KEY, &["pool", "set", "base", "1", "--json"]).await;
    assert_eq!(set[0]["template"], "base", "{set}");
    assert_eq!(set[0]["size"], 1, "{set}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let pools = json(&server, ADMIN_KEY, &["pool", "ls", "--json"]).await;
        if pools[0]["ready"] == 1 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never ready: {pools}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let table = server.cli_ok(ADMIN_KEY, &["pool", "ls"]).await;
    assert!(
        table.contains("TEMPLATE") && table.contains("base"),
        "{table}"
    );
    // A tenant's key is not the admin's; an unknown template is refused.
    let (_, tenant_key) = server.tenant("t", None).await;
    assert!(!server
        .cli(&tenant_key, &["pool", "ls"])
        .await
        .status
        .success());
    assert!(!server
        .cli(ADMIN_KEY, &["pool", "set", "nope", "1"])
        .await
        .status
        .success());
    server
        .cli_ok(ADMIN_KEY, &["pool", "set", "base", "0"])
        .await;
}
