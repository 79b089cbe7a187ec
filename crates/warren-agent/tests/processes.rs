//! `/v1/processes`: one-shot runs and managed processes, with real
//! processes over real HTTP.

mod common;

use std::time::{Duration, Instant};

use common::process::{assert_problem, pid_exists, wait_pid_gone, within, KillOnDrop};
use common::TestAgent;
use serde_json::json;

#[tokio::test]
async fn run_reports_exit_codes_output_and_signals() {
    let agent = TestAgent::start().await;
    let out = agent
        .run(json!({"cmd": "echo out; echo err >&2; exit 3"}))
        .await;
    assert_eq!(out["exit_code"], 3);
    assert_eq!(out["signal"], json!(null));
    assert_eq!(out["stdout"], "out\n");
    assert_eq!(out["stderr"], "err\n");
    assert_eq!(out["timed_out"], false);
    assert_eq!(out["stdout_truncated"], false);
    assert!(out["duration_ms"].is_u64());

    let out = agent.run(json!({"argv": ["true"]})).await;
    assert_eq!(out["exit_code"], 0);

    let out = agent.run(json!({"cmd": "kill -KILL $$"})).await;
    assert_eq!(out["exit_code"], json!(null));
    assert_eq!(out["signal"], 9);
}

#[tokio::test]
async fn run_feeds_stdin_then_closes_it() {
    let agent = TestAgent::start().await;
    let out = agent
        .run(json!({"cmd": "cat; echo; echo done", "stdin": "héllo"}))
        .await;
    assert_eq!(out["stdout"], "héllo\ndone\n");
    // Without stdin, the process reads EOF at once.
    let out = agent.run(json!({"argv": ["cat"]})).await;
    assert_eq!(out["stdout"], "");
    assert_eq!(out["exit_code"], 0);
}

#[tokio::test]
async fn run_merges_env_and_resolves_cwd() {
    let agent = TestAgent::start_with(|c| {
        c.env.extend(
            [("BASE", "from-agent"), ("OVER", "agent")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .into(),
        );
    })
    .await;
    std::fs::create_dir(agent.dir.path().join("sub")).unwrap();
    let out = agent
        .run(json!({
            "cmd": "echo \"$BASE $OVER $EXTRA\"; pwd; command -v ls >/dev/null && echo has-path",
            "env": {"OVER": "request", "EXTRA": "x"},
            "cwd": "sub",
        }))
        .await;
    let expected = format!(
        "from-agent request x\n{}\nhas-path\n",
        agent.dir.path().join("sub").display()
    );
    assert_eq!(out["stdout"], expected);
    // The default cwd is the workdir; an absolute cwd is taken as is.
    let out = agent.run(json!({"argv": ["pwd"]})).await;
    assert_eq!(out["stdout"], format!("{}\n", agent.dir.path().display()));
    let out = agent.run(json!({"argv": ["pwd"], "cwd": "/tmp"})).await;
    assert_eq!(out["stdout"], "/tmp\n");
}

#[tokio::test]
async fn the_default_environment_can_be_extended_for_later_processes() {
    let agent = TestAgent::start_with(|c| {
        c.env
            .extend([("KEEP".to_string(), "template".to_string())].into());
    })
    .await;
    let url = agent.url("/v1/environment");
    let env: serde_json::Value = agent
        .http
        .get(&url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(env, json!({"env": {"KEEP": "template"}}));
    // A process started before the change keeps its environment.
    let before = agent
        .http
        .post(agent.url("/v1/processes"))
        .json(&json!({"cmd": "read _; echo \"$KEEP $OWNER\""}))
        .send()
        .await
        .unwrap();
    assert!(before.status().is_success());
    let before: serde_json::Value = before.json().await.unwrap();
    let resp = agent
        .http
        .patch(&url)
        .json(&json!({"env": {"OWNER": "caller"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let env: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(env, json!({"env": {"KEEP": "template", "OWNER": "caller"}}));
    let out = agent.run(json!({"cmd": "echo \"$KEEP $OWNER\""})).await;
    assert_eq!(out["stdout"], "template caller\n");
    let id = before["id"].as_str().unwrap();
    agent
        .http
        .post(agent.url(&format!("/v1/processes/{id}/stdin")))
        .json(&json!({"data": "\n"}))
        .send()
        .await
        .unwrap();
    within("the earlier process's output", async {
        loop {
            let logs: serde_json::Value = agent
                .http
                .get(agent.url(&format!("/v1/processes/{id}/logs")))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let text = logs.to_string();
            if text.contains("template ") {
                assert!(!text.contains("caller"), "{logs}");
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    // Names with '=' (or empty, or NUL) are refused, and nothing changes.
    let resp = agent
        .http
        .patch(&url)
        .json(&json!({"env": {"A=B": "x", "FINE": "y"}}))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    assert_problem(
        &(status, resp.json().await.unwrap()),
        400,
        "invalid_request",
    );
    let env: serde_json::Value = agent
        .http
        .get(&url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(env["env"].as_object().unwrap().len(), 2, "{env}");
    // The environment is bounded in size: 600 KB fits once, not twice, and
    // the refused change leaves it as it was.
    let big = "x".repeat(600 * 1024);
    let resp = agent
        .http
        .patch(&url)
        .json(&json!({"env": {"BIG1": big}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = agent
        .http
        .patch(&url)
        .json(&json!({"env": {"BIG2": big}}))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    assert_problem(
        &(status, resp.json().await.unwrap()),
        413,
        "payload_too_large",
    );
    let env: serde_json::Value = agent
        .http
        .get(&url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&String> = env["env"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["BIG1", "KEEP", "OWNER"], "{names:?}");
}

#[tokio::test]
async fn argv_is_exec_directly_and_cmd_goes_through_the_shell() {
    let agent = TestAgent::start().await;
    let out = agent
        .run(json!({"argv": ["echo", "$HOME", "a;b", "*"]}))
        .await;
    assert_eq!(out["stdout"], "$HOME a;b *\n");
    let out = agent.run(json!({"cmd": "echo a;echo b | tr b c"})).await;
    assert_eq!(out["stdout"], "a\nc\n");
    // argv[0] as given is what the program sees.
    let out = agent.run(json!({"argv": ["sh", "-c", "echo $0"]})).await;
    assert_eq!(out["stdout"], "sh\n");
}

#[tokio::test]
async fn run_timeout_kills_the_whole_group() {
    warren_agent::process::become_subreaper();
    let agent = TestAgent::start().await;
    let started = Instant::now();
    let out = agent
        .run(json!({"cmd": "sleep 100 & echo $!; sleep 100", "timeout_ms": 300}))
        .await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(out["timed_out"], true);
    assert_eq!(out["signal"], 9);
    assert_eq!(out["exit_code"], json!(null));
    let grandchild: i64 = out["stdout"].as_str().unwrap().trim().parse().unwrap();
    let _guard = KillOnDrop(grandchild);
    assert!(
        wait_pid_gone(grandchild).await,
        "the background grandchild {grandchild} survived the timeout"
    );
}

#[tokio::test]
async fn run_truncates_each_stream_and_keeps_draining() {
    let agent = TestAgent::start().await;
    let out = agent
        .run(json!({
            "cmd": "head -c 300000 /dev/zero | tr '\\0' a; printf 12345 >&2",
            "max_output_bytes": 1000,
        }))
        .await;
    assert_eq!(out["exit_code"], 0, "the writer was not blocked: {out}");
    assert_eq!(out["stdout"].as_str().unwrap(), "a".repeat(1000));
    assert_eq!(out["stdout_truncated"], true);
    assert_eq!(out["stderr"], "12345");
    assert_eq!(out["stderr_truncated"], false);
    let out = agent
        .run(json!({"cmd": "printf 12345", "max_output_bytes": 5}))
        .await;
    assert_eq!(out["stdout"], "12345");
    assert_eq!(out["stdout_truncated"], false);
}

#[tokio::test]
async fn run_returns_when_background_children_hold_the_pipes() {
    let agent = TestAgent::start().await;
    let started = Instant::now();
    let out = agent
        .run(json!({"cmd": "sleep 30 & echo $!; echo done"}))
        .await;
    let lines: Vec<&str> = out["stdout"].as_str().unwrap().lines().collect();
    let _guard = KillOnDrop(lines[0].parse().unwrap());
    assert_eq!(lines[1], "done");
    assert_eq!(out["exit_code"], 0);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "run waited for the background child: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_run_whose_client_leaves_is_killed() {
    let agent = TestAgent::start().await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let err = client
        .post(agent.url("/v1/processes/run"))
        .json(&json!({"cmd": "echo $$ > run.pid; exec sleep 30"}))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    let pid: i64 = std::fs::read_to_string(agent.dir.path().join("run.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _guard = KillOnDrop(pid);
    assert!(
        wait_pid_gone(pid).await,
        "the abandoned run {pid} is still alive"
    );
}

#[tokio::test]
async fn orphans_are_reaped() {
    warren_agent::process::become_subreaper();
    let agent = TestAgent::start().await;
    // The shell exits at once; the sleep is orphaned to us (a subreaper)
    // and exits 200 ms later. Only the agent's reaper can collect it.
    let out = agent
        .run(json!({"cmd": "sleep 0.2 >/dev/null 2>&1 & echo $!"}))
        .await;
    let orphan: i64 = out["stdout"].as_str().unwrap().trim().parse().unwrap();
    let _guard = KillOnDrop(orphan);
    assert!(
        wait_pid_gone(orphan).await,
        "orphan {orphan} was not reaped (still in /proc)"
    );
}

#[tokio::test]
async fn bad_run_requests_are_problems() {
    let agent = TestAgent::start_with(|c| c.limits.max_stdin_bytes = 16).await;
    let resp = agent
        .http
        .post(agent.url("/v1/processes/run"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "invalid_request");

    let run = "/v1/processes/run";
    for (body, what) in [
        (json!({}), "give what to run"),
        (json!({"cmd": "true", "argv": ["true"]}), "not both"),
        (json!({"argv": []}), "empty"),
        (
            json!({"argv": ["no-such-program-xyz"]}),
            "not found in PATH",
        ),
        (json!({"cmd": "true", "cwd": "missing-dir"}), "missing-dir"),
        (json!({"cmd": "true", "timeout_ms": 0}), "timeout_ms"),
        (json!({"cmd": "true", "timeout_ms": u64::MAX}), "timeout_ms"),
        (json!({"cmd": "true", "env": {"A=B": "x"}}), "environment"),
        (json!({"cmd": 5}), "cmd"),
    ] {
        let got = agent.post(run, body.clone()).await;
        assert_problem(&got, 400, "invalid_request");
        assert!(
            got.1["detail"].as_str().unwrap().contains(what),
            "{body} → {}",
            got.1
        );
    }
    let got = agent
        .post(run, json!({"cmd": "cat", "stdin": "x".repeat(17)}))
        .await;
    assert_problem(&got, 413, "payload_too_large");

    // Exec failures after the fork (posix_spawn for run, fork+exec with
    // setsid for managed processes, with a terminal or not).
    let got = agent
        .post(run, json!({"argv": ["/nonexistent/prog"]}))
        .await;
    assert_problem(&got, 400, "invalid_request");
    assert!(got.1["detail"].as_str().unwrap().contains("cannot start"));
    for tty in [false, true] {
        let got = agent
            .post(
                "/v1/processes",
                json!({"argv": ["/nonexistent/prog"], "tty": tty}),
            )
            .await;
        assert_problem(&got, 400, "invalid_request");
    }
    let (_, list) = agent.get("/v1/processes").await;
    assert_eq!(list["items"], json!([]));
}

#[tokio::test]
async fn process_limit_is_a_429() {
    let agent = TestAgent::start_with(|c| c.limits.max_processes = 2).await;
    let a = agent.start_process(json!({"argv": ["sleep", "30"]})).await;
    let b = agent.start_process(json!({"argv": ["sleep", "30"]})).await;
    let got = agent.post("/v1/processes", json!({"cmd": "true"})).await;
    assert_problem(&got, 429, "too_many_requests");
    let got = agent
        .post("/v1/processes/run", json!({"cmd": "true"}))
        .await;
    assert_problem(&got, 429, "too_many_requests");
    // A slot frees when a process exits.
    let (status, _) = agent
        .delete(&format!(
            "/v1/processes/{}?force=true",
            a["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, 204);
    agent.run(json!({"cmd": "true"})).await;
    let (status, _) = agent
        .delete(&format!(
            "/v1/processes/{}?force=true",
            b["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, 204);
}

#[tokio::test]
async fn managed_process_lifecycle_list_wait_delete() {
    let agent = TestAgent::start().await;
    let info = agent
        .start_process(json!({"cmd": "sleep 0.3; exit 7"}))
        .await;
    let id = info["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("proc_"));
    assert_eq!(info["state"], "running");
    assert_eq!(info["status"], "running");
    assert_eq!(info["cmd"], "sleep 0.3; exit 7");
    assert_eq!(info["tty"], false);
    assert!(info["started_at"].as_str().unwrap().ends_with('Z'));
    assert!(info["pid"].as_i64().unwrap() > 0);

    let other = agent.start_process(json!({"argv": ["sleep", "30"]})).await;
    let other_id = other["id"].as_str().unwrap();
    let (status, list) = agent.get("/v1/processes").await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [id.as_str(), other_id]);
    assert_eq!(list["items"][1]["argv"], json!(["sleep", "30"]));

    // A running process cannot be deleted without force.
    let got = agent.delete(&format!("/v1/processes/{id}")).await;
    assert_problem(&got, 409, "conflict");

    // Long poll until exit.
    let started = Instant::now();
    let done = agent.wait_exit(&id).await;
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(done["exit_code"], 7);
    assert!(done["exited_at"].as_str().unwrap().ends_with('Z'));

    // A wait that times out answers with the process still running.
    let started = Instant::now();
    let (status, running) = agent
        .get(&format!(
            "/v1/processes/{other_id}?wait=true&timeout_ms=200"
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(running["state"], "running");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(150) && waited < Duration::from_secs(3));

    let (status, _) = agent.delete(&format!("/v1/processes/{id}")).await;
    assert_eq!(status, 204);
    let got = agent.get(&format!("/v1/processes/{id}")).await;
    assert_problem(&got, 404, "process_not_found");
    let (status, _) = agent
        .delete(&format!("/v1/processes/{other_id}?force=true"))
        .await;
    assert_eq!(status, 204);
    let (_, list) = agent.get("/v1/processes").await;
    assert_eq!(list["items"], json!([]));
}

#[tokio::test]
async fn managed_timeout_kills_the_process() {
    let agent = TestAgent::start().await;
    let info = agent
        .start_process(json!({"argv": ["sleep", "30"], "timeout_ms": 200}))
        .await;
    let done = agent.wait_exit(info["id"].as_str().unwrap()).await;
    assert_eq!(done["signal"], 9);
}

#[tokio::test]
async fn stdin_to_a_managed_process() {
    let agent = TestAgent::start_with(|c| c.limits.max_stdin_bytes = 64).await;
    let info = agent
        .start_process(json!({"argv": ["cat"], "stdin": "one "}))
        .await;
    let id = info["id"].as_str().unwrap();
    let stdin = format!("/v1/processes/{id}/stdin");
    let (status, _) = agent.post(&stdin, json!({"data": "two "})).await;
    assert_eq!(status, 204);
    let got = agent
        .post(&stdin, json!({"data": "!!", "encoding": "base64"}))
        .await;
    assert_problem(&got, 400, "invalid_request");
    let got = agent.post(&stdin, json!({"data": "x".repeat(65)})).await;
    assert_problem(&got, 413, "payload_too_large");
    // "three" in base64, then close stdin: cat exits.
    let (status, _) = agent
        .post(
            &stdin,
            json!({"data": "dGhyZWU=", "encoding": "base64", "eof": true}),
        )
        .await;
    assert_eq!(status, 204);
    let done = agent.wait_exit(id).await;
    assert_eq!(done["exit_code"], 0);
    assert_eq!(agent.output_text(id).await, "one two three");
    let got = agent.post(&stdin, json!({"data": "late"})).await;
    assert_problem(&got, 409, "process_not_running");
}

#[tokio::test]
async fn signals_reach_the_whole_group() {
    warren_agent::process::become_subreaper();
    let agent = TestAgent::start().await;
    let info = agent
        .start_process(json!({"cmd": "sleep 100 & echo $!; wait"}))
        .await;
    let id = info["id"].as_str().unwrap();
    let text = agent.wait_output(id, "\n").await;
    let grandchild: i64 = text.trim().parse().unwrap();
    let _guard = KillOnDrop(grandchild);
    assert!(pid_exists(grandchild));

    let signal = format!("/v1/processes/{id}/signal");
    for bad in [json!("SIGNOPE"), json!(0), json!(1000), json!(true)] {
        let got = agent.post(&signal, json!({ "signal": bad })).await;
        assert_problem(&got, 400, "invalid_request");
    }
    let (status, _) = agent.post(&signal, json!({"signal": "TERM"})).await;
    assert_eq!(status, 204);
    let done = agent.wait_exit(id).await;
    assert_eq!(done["signal"], 15);
    assert!(
        wait_pid_gone(grandchild).await,
        "grandchild {grandchild} did not get the signal"
    );
    let got = agent.post(&signal, json!({"signal": 9})).await;
    assert_problem(&got, 409, "process_not_running");
}

#[tokio::test]
async fn unknown_ids_are_404_everywhere() {
    let agent = TestAgent::start().await;
    for id in ["proc_aaaaaaaaaaaaaaaaaaaa", "nope", "proc_..%2F..%2Fetc"] {
        let base = format!("/v1/processes/{id}");
        assert_problem(&agent.get(&base).await, 404, "process_not_found");
        assert_problem(
            &agent.get(&format!("{base}?wait=true&timeout_ms=10")).await,
            404,
            "process_not_found",
        );
        assert_problem(&agent.delete(&base).await, 404, "process_not_found");
        assert_problem(
            &agent.get(&format!("{base}/logs")).await,
            404,
            "process_not_found",
        );
        assert_problem(
            &agent.get(&format!("{base}/logs?follow=true")).await,
            404,
            "process_not_found",
        );
        assert_problem(
            &agent
                .post(&format!("{base}/stdin"), json!({"data": "x"}))
                .await,
            404,
            "process_not_found",
        );
        assert_problem(
            &agent
                .post(&format!("{base}/signal"), json!({"signal": "TERM"}))
                .await,
            404,
            "process_not_found",
        );
        assert_problem(
            &agent
                .post(&format!("{base}/resize"), json!({"cols": 80, "rows": 24}))
                .await,
            404,
            "process_not_found",
        );
    }
}

#[tokio::test]
async fn resize_needs_a_tty_and_sane_sizes() {
    let agent = TestAgent::start().await;
    let info = agent.start_process(json!({"argv": ["sleep", "30"]})).await;
    let id = info["id"].as_str().unwrap();
    let resize = format!("/v1/processes/{id}/resize");
    let got = agent.post(&resize, json!({"cols": 100, "rows": 40})).await;
    assert_problem(&got, 409, "conflict");
    let got = agent.post(&resize, json!({"cols": 0, "rows": 40})).await;
    assert_problem(&got, 400, "invalid_request");
    let got = agent.post(&resize, json!({"cols": 100})).await;
    assert_problem(&got, 400, "invalid_request");
    let got = agent
        .post(
            "/v1/processes",
            json!({"cmd": "true", "tty": true, "cols": 5000}),
        )
        .await;
    assert_problem(&got, 400, "invalid_request");
}

#[tokio::test]
async fn exited_processes_are_forgotten() {
    let agent = TestAgent::start_with(|c| c.limits.max_exited_kept = 2).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let info = agent.start_process(json!({"argv": ["true"]})).await;
        let id = info["id"].as_str().unwrap().to_string();
        agent.wait_exit(&id).await;
        ids.push(id);
    }
    // The next start prunes down to the limit: the oldest exited one goes.
    let running = agent.start_process(json!({"argv": ["sleep", "30"]})).await;
    let (_, list) = agent.get("/v1/processes").await;
    let listed: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        [
            ids[1].as_str(),
            ids[2].as_str(),
            running["id"].as_str().unwrap()
        ]
    );
    assert_problem(
        &agent.get(&format!("/v1/processes/{}", ids[0])).await,
        404,
        "process_not_found",
    );

    let agent = TestAgent::start_with(|c| c.limits.exited_ttl = Duration::from_millis(100)).await;
    let info = agent.start_process(json!({"argv": ["true"]})).await;
    let id = info["id"].as_str().unwrap();
    agent.wait_exit(id).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_problem(
        &agent.get(&format!("/v1/processes/{id}")).await,
        404,
        "process_not_found",
    );
}

#[tokio::test]
async fn shutdown_stops_every_process() {
    let agent = TestAgent::start().await;
    let term = agent.start_process(json!({"argv": ["sleep", "30"]})).await;
    // This one ignores SIGTERM and needs the SIGKILL after the grace.
    let stubborn = agent
        .start_process(json!({"cmd": "trap '' TERM; echo ready; while :; do sleep 0.05; done"}))
        .await;
    agent
        .wait_output(stubborn["id"].as_str().unwrap(), "ready")
        .await;
    let started = Instant::now();
    within(
        "shutdown",
        agent.state.processes.shutdown(Duration::from_millis(300)),
    )
    .await;
    assert!(started.elapsed() >= Duration::from_millis(250));
    let a = agent.wait_exit(term["id"].as_str().unwrap()).await;
    assert_eq!(a["signal"], 15);
    let b = agent.wait_exit(stubborn["id"].as_str().unwrap()).await;
    assert_eq!(b["signal"], 9);
}

#[tokio::test]
async fn processes_run_as_the_user_asked_for() {
    let agent = TestAgent::start().await;
    let script = "id -u; id -g; id -G; echo $HOME $USER $LOGNAME";
    let out = agent
        .run(json!({"cmd": script, "user": "nobody", "cwd": "/"}))
        .await;
    assert_eq!(out["exit_code"], 0, "{out}");
    let lines: Vec<&str> = out["stdout"].as_str().unwrap().lines().collect();
    assert_eq!(lines[0], "65534", "{out}");
    assert_eq!(lines[1], "65534");
    assert_eq!(lines[2], "65534", "root's groups were kept");
    assert_eq!(lines[3], "/nonexistent nobody nobody");

    // By uid, with the request's own HOME.
    let out = agent
        .run(json!({"cmd": "id -u; echo $HOME", "user": "65534", "env": {"HOME": "/tmp"}, "cwd": "/"}))
        .await;
    assert_eq!(out["stdout"], "65534\n/tmp\n", "{out}");

    // Managed processes and terminals too.
    let info = agent
        .start_process(json!({"cmd": "id -u", "user": "nobody", "cwd": "/", "tty": true}))
        .await;
    let id = info["id"].as_str().unwrap();
    agent.wait_exit(id).await;
    assert!(agent.output_text(id).await.contains("65534"));

    // The agent's own user when none is asked for.
    let out = agent.run(json!({"cmd": "id -u"})).await;
    assert_eq!(out["stdout"], format!("{}\n", unsafe { libc::getuid() }));

    let bad = agent
        .post(
            "/v1/processes/run",
            json!({"cmd": "true", "user": "no-such-user-x"}),
        )
        .await;
    assert_problem(&bad, 400, "invalid_request");
    assert!(
        bad.1["detail"].as_str().unwrap().contains("no-such-user-x"),
        "{}",
        bad.1
    );
}
