//! `warren template build|import` against a real server: a spec build whose
//! layers land in a template sandboxes then run from, a `docker save`
//! tarball imported as a template, and the errors of bad input.

mod server_common;

use std::process::{Command, Output};

use serde_json::{json, Value};
use server_common::{TestServer, ADMIN_KEY};

async fn warren(server: &TestServer, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_warren"));
    cmd.env("WARREN_URL", &server.base)
        .env("WARREN_API_KEY", ADMIN_KEY)
        .env("HOME", "/nonexistent")
        .args(args);
    tokio::task::spawn_blocking(move || cmd.output().expect("running warren"))
        .await
        .expect("warren task")
}

async fn ok_json(server: &TestServer, args: &[&str]) -> Value {
    let out = warren(server, args).await;
    assert!(
        out.status.success(),
        "warren {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

#[tokio::test(flavor = "multi_thread")]
async fn build_a_template_from_a_spec_and_run_a_sandbox_on_it() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("spec.toml");
    std::fs::write(
        &spec,
        "base = \"base\"\nrun = [\"echo built > /etc/marker\", \"mkdir -p /srv/app\"]\nenv = { FOO = \"bar\" }\nworkdir = \"/srv/app\"\n",
    )
    .unwrap();
    let built = ok_json(
        &server,
        &[
            "template",
            "build",
            "tpl-one",
            "-f",
            spec.to_str().unwrap(),
            "--json",
        ],
    )
    .await;
    assert_eq!(built["name"], "tpl-one");
    assert_eq!(built["workdir"], "/srv/app");
    let listed = ok_json(&server, &["template", "ls", "--json"]).await;
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "tpl-one"),
        "{listed}"
    );

    let sandbox = server
        .create(ADMIN_KEY, json!({"template": "tpl-one"}))
        .await;
    let id = sandbox["id"].as_str().unwrap();
    let out = server
        .run(ADMIN_KEY, id, "cat /etc/marker; echo $FOO; pwd")
        .await;
    assert_eq!(out["stdout"], "built\nbar\n/srv/app\n");

    // A failing step is the caller's error, with its output.
    std::fs::write(&spec, "run = [\"echo nope >&2; exit 7\"]\n").unwrap();
    let out = warren(
        &server,
        &["template", "build", "tpl-bad", "-f", spec.to_str().unwrap()],
    )
    .await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("invalid_request"), "{stderr}");
    assert!(stderr.contains("nope"), "the step's output: {stderr}");

    // Host files are not read on a caller's behalf.
    std::fs::write(&spec, "files = { \"/etc/passwd2\" = \"/etc/passwd\" }\n").unwrap();
    let out = warren(
        &server,
        &[
            "template",
            "build",
            "tpl-files",
            "-f",
            spec.to_str().unwrap(),
        ],
    )
    .await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid_request"));

    // Tenants cannot build templates.
    let (_, tenant_key) = server.tenant("acme", None).await;
    let resp = server
        .req(reqwest::Method::POST, "/v1/templates/x/build", &tenant_key)
        .body("run = [\"true\"]")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
}

/// A `docker save` tarball: manifest.json, a config blob and one layer.
fn docker_save(path: &std::path::Path) {
    let mut layer = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8], mode: u32| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        layer.append_data(&mut h, name, data).unwrap();
    };
    add("hello.txt", b"imported\n", 0o644);
    let layer = layer.into_inner().unwrap();
    let config = serde_json::to_vec(&json!({
        "config": {"Env": ["IMPORTED=yes"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": []}
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&json!([{
        "Config": "config.json", "RepoTags": ["t:latest"], "Layers": ["layer/layer.tar"]
    }]))
    .unwrap();
    let mut image = tar::Builder::new(std::fs::File::create(path).unwrap());
    for (name, data) in [
        ("manifest.json", &manifest),
        ("config.json", &config),
        ("layer/layer.tar", &layer),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        image.append_data(&mut h, name, data.as_slice()).unwrap();
    }
    image.finish().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn import_a_docker_save_tarball_as_a_template() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("image.tar");
    docker_save(&image);
    let imported = ok_json(
        &server,
        &[
            "template",
            "import",
            "tpl-img",
            image.to_str().unwrap(),
            "--json",
        ],
    )
    .await;
    assert_eq!(imported["name"], "tpl-img");
    assert_eq!(imported["env"]["IMPORTED"], "yes");

    // Garbage is a 400, not a 500.
    let junk = dir.path().join("junk.tar");
    std::fs::write(&junk, b"not a tarball at all").unwrap();
    let out = warren(
        &server,
        &["template", "import", "tpl-junk", junk.to_str().unwrap()],
    )
    .await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid_request"));

    ok_json(&server, &["template", "rm", "tpl-img", "--json"]).await;
    let listed = ok_json(&server, &["template", "ls", "--json"]).await;
    assert!(!listed
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["name"] == "tpl-img"));
}
