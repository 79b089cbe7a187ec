//! `warren template build|import` against a real server: a spec build whose
//! layers land in a template sandboxes then run from, a `docker save`
//! tarball imported as a template, and the errors of bad input.

mod server_common;

use serde_json::{json, Value};
use server_common::{TestServer, ADMIN_KEY};

async fn ok_json(server: &TestServer, args: &[&str]) -> Value {
    let out = server.cli(ADMIN_KEY, args).await;
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
    let out = server
        .cli(
            ADMIN_KEY,
            &["template", "build", "tpl-bad", "-f", spec.to_str().unwrap()],
        )
        .await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("invalid_request"), "{stderr}");
    assert!(stderr.contains("nope"), "the step's output: {stderr}");

    // Host files are not read on a caller's behalf.
    std::fs::write(&spec, "files = { \"/etc/passwd2\" = \"/etc/passwd\" }\n").unwrap();
    let out = server
        .cli(
            ADMIN_KEY,
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
    let out = server
        .cli(
            ADMIN_KEY,
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

/// The managed processes of sandbox `id`.
async fn processes(server: &TestServer, id: &str) -> Vec<Value> {
    let (status, list) = server
        .call(
            "GET",
            &format!("/v1/sandboxes/{id}/processes"),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(status, 200, "{list}");
    list["items"].as_array().unwrap().clone()
}

/// The buffered output of process `pid` of sandbox `id`.
async fn output(server: &TestServer, id: &str, pid: &str) -> String {
    let (status, logs) = server
        .call(
            "GET",
            &format!("/v1/sandboxes/{id}/processes/{pid}/logs"),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(status, 200, "{logs}");
    logs["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["data"].as_str().unwrap_or_default())
        .collect()
}

/// Polls `cmd` in sandbox `id` until it prints `want` (a minute at most).
async fn until_prints(server: &TestServer, id: &str, cmd: &str, want: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (_, out) = server.sh(ADMIN_KEY, id, cmd).await;
        if out == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{cmd:?} printed {out:?}, not {want:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_template_start_command_runs_on_every_boot_as_a_managed_process() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("spec.toml");
    // Each boot appends a line (the disk is kept across stop and start, and
    // copied by a fork), then serves the workdir on a port.
    std::fs::write(
        &spec,
        "run = [\"mkdir -p /srv/www && echo hello > /srv/www/index.html\"]\n\
         workdir = \"/srv/www\"\n\
         start = \"id -un >> /root/boots && echo serving && exec python3 -m http.server 8000\"\n",
    )
    .unwrap();
    let built = ok_json(
        &server,
        &[
            "template",
            "build",
            "tpl-start",
            "-f",
            spec.to_str().unwrap(),
            "--json",
        ],
    )
    .await;
    assert_eq!(built["name"], "tpl-start");

    let sandbox = server
        .create(ADMIN_KEY, json!({"template": "tpl-start"}))
        .await;
    let id = sandbox["id"].as_str().unwrap().to_string();
    let serve = "curl -sf http://127.0.0.1:8000/index.html";
    until_prints(&server, &id, serve, "hello\n").await;
    until_prints(&server, &id, "cat /root/boots", "root\n").await;
    let procs = processes(&server, &id).await;
    let started = procs
        .iter()
        .find(|p| p["cmd"].as_str().is_some_and(|c| c.contains("http.server")))
        .unwrap_or_else(|| panic!("the start command is a managed process: {procs:?}"));
    assert_eq!(started["state"], "running");
    let pid = started["id"].as_str().unwrap();
    assert!(output(&server, &id, pid).await.contains("serving"));

    // Stop and start: it runs again.
    let (status, body) = server
        .call("POST", &format!("/v1/sandboxes/{id}/stop"), ADMIN_KEY, None)
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{id}/start"),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    until_prints(&server, &id, serve, "hello\n").await;
    until_prints(&server, &id, "cat /root/boots", "root\nroot\n").await;

    // Hibernate and wake: again.
    for step in ["hibernate", "wake"] {
        let (status, body) = server
            .call(
                "POST",
                &format!("/v1/sandboxes/{id}/{step}"),
                ADMIN_KEY,
                None,
            )
            .await;
        assert_eq!(status, 200, "{step}: {body}");
    }
    until_prints(&server, &id, serve, "hello\n").await;
    until_prints(&server, &id, "wc -l < /root/boots", "3\n").await;

    // A fork boots it too, on its copy of the disk.
    let (status, forked) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{id}/fork"),
            ADMIN_KEY,
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 201, "{forked}");
    let fork = forked["items"][0]["id"]
        .as_str()
        .or_else(|| forked["id"].as_str())
        .unwrap_or_else(|| panic!("a fork's id: {forked}"))
        .to_string();
    until_prints(&server, &fork, serve, "hello\n").await;
    until_prints(&server, &fork, "wc -l < /root/boots", "4\n").await;

    // A restore to the fork's checkpoint (three boots on its disk) too.
    let checkpoint = forked["checkpoint_id"].as_str().unwrap();
    let (status, body) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{id}/restore"),
            ADMIN_KEY,
            Some(json!({ "checkpoint_id": checkpoint })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    until_prints(&server, &id, serve, "hello\n").await;
    until_prints(&server, &id, "wc -l < /root/boots", "4\n").await;

    // A template built on it inherits the command; its own `user` applies.
    std::fs::write(&spec, "base = \"tpl-start\"\nuser = \"nobody\"\n").unwrap();
    ok_json(
        &server,
        &[
            "template",
            "build",
            "tpl-start-child",
            "-f",
            spec.to_str().unwrap(),
            "--json",
        ],
    )
    .await;
    let child = server
        .create(ADMIN_KEY, json!({"template": "tpl-start-child"}))
        .await;
    let child = child["id"].as_str().unwrap();
    // `nobody` cannot write /root/boots, and says so in the process's output.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let failed = loop {
        let procs = processes(&server, child).await;
        if let Some(p) = procs.iter().find(|p| p["state"] == "exited") {
            break p.clone();
        }
        assert!(std::time::Instant::now() < deadline, "{procs:?}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_ne!(failed["exit_code"], 0, "{failed}");

    // A start command that fails does not fail the create, and shows as
    // an exited process with its output.
    std::fs::write(&spec, "start = [\"/no/such/program\", \"--flag\"]\n").unwrap();
    ok_json(
        &server,
        &[
            "template",
            "build",
            "tpl-start-bad",
            "-f",
            spec.to_str().unwrap(),
            "--json",
        ],
    )
    .await;
    let bad = server
        .create(ADMIN_KEY, json!({"template": "tpl-start-bad"}))
        .await;
    let bad = bad["id"].as_str().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let failed = loop {
        let procs = processes(&server, bad).await;
        if let Some(p) = procs.iter().find(|p| p["state"] == "exited") {
            break p.clone();
        }
        assert!(std::time::Instant::now() < deadline, "{procs:?}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_ne!(failed["exit_code"], 0, "{failed}");
    let pid = failed["id"].as_str().unwrap();
    let said = output(&server, bad, pid).await;
    assert!(said.contains("/no/such/program"), "{said}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ready_port_makes_create_wait_for_the_start_command_to_listen() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("spec.toml");
    // The server listens only a second and a half after the boot.
    std::fs::write(
        &spec,
        "run = [\"mkdir -p /srv/www && echo ready > /srv/www/index.html\"]\n\
         workdir = \"/srv/www\"\n\
         start = \"sleep 1.5 && exec python3 -m http.server 8000\"\n\
         ready_port = 8000\n",
    )
    .unwrap();
    let built = ok_json(
        &server,
        &[
            "template",
            "build",
            "tpl-ready",
            "-f",
            spec.to_str().unwrap(),
            "--json",
        ],
    )
    .await;
    assert_eq!(built["start"]["ready_port"], 8000, "{built}");

    // Each boot hands the sandbox out with the port already answering: a
    // request right after create (and after a stop and start) is served.
    let sandbox = server
        .create(ADMIN_KEY, json!({"template": "tpl-ready"}))
        .await;
    let id = sandbox["id"].as_str().unwrap().to_string();
    let served = || async {
        let (status, out) = server
            .call(
                "POST",
                &format!("/v1/sandboxes/{id}/processes/run"),
                ADMIN_KEY,
                Some(json!({"cmd": "curl -sS http://127.0.0.1:8000/index.html"})),
            )
            .await;
        assert_eq!(status, 200, "{out}");
        out
    };
    let out = served().await;
    assert_eq!(
        out["stdout"], "ready\n",
        "not listening right after create: {out}"
    );
    let (status, body) = server
        .call("POST", &format!("/v1/sandboxes/{id}/stop"), ADMIN_KEY, None)
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{id}/start"),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let out = served().await;
    assert_eq!(
        out["stdout"], "ready\n",
        "not listening right after start: {out}"
    );

    // A start command that never listens costs the boot nothing once it
    // has exited: create returns, with the failure visible as the process.
    std::fs::write(&spec, "start = \"exit 3\"\nready_port = 8000\n").unwrap();
    ok_json(
        &server,
        &[
            "template",
            "build",
            "tpl-never",
            "-f",
            spec.to_str().unwrap(),
            "--json",
        ],
    )
    .await;
    let started = std::time::Instant::now();
    let sandbox = server
        .create(ADMIN_KEY, json!({"template": "tpl-never"}))
        .await;
    assert!(sandbox["id"].is_string(), "{sandbox}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "create waited out the ready timeout for a command that had exited"
    );
}
