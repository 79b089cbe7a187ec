//! Output of managed processes: buffered logs, SSE follow (replay, live,
//! resume, drops), several followers at once.

mod common;

use common::process::{assert_problem, output_of, within};
use common::TestAgent;
use futures::future::join_all;
use serde_json::json;

#[tokio::test]
async fn follow_replays_then_streams_live_then_resumes_from_a_cursor() {
    let agent = TestAgent::start().await;
    // Prints, then waits for a line on stdin before printing again.
    let info = agent
        .start_process(json!({"cmd": "echo one; echo warn >&2; read x; echo \"two $x\""}))
        .await;
    let id = info["id"].as_str().unwrap();
    agent.wait_output(id, "warn").await;

    // Replay: what is already buffered comes first, each stream separately.
    let mut follow = agent.follow(id, 0).await;
    let first = follow.next().await.unwrap();
    assert_eq!(first.event, "output");
    assert_eq!(first.data["stream"], "stdout");
    assert_eq!(first.data["cursor"], 0);
    assert_eq!(first.data["data"], "one\n");
    assert_eq!(first.data["encoding"], "utf8");
    assert_eq!(
        first.id.as_deref(),
        Some("4"),
        "the SSE id is the resume cursor"
    );
    let second = follow.next().await.unwrap();
    assert_eq!(second.data["stream"], "stderr");
    assert_eq!(second.data["cursor"], 4);
    assert_eq!(second.data["data"], "warn\n");

    // Live: output produced after the follow started arrives on it.
    let (status, _) = agent
        .post(
            &format!("/v1/processes/{id}/stdin"),
            json!({"data": "live\n"}),
        )
        .await;
    assert_eq!(status, 204);
    let rest = follow.until_exit().await;
    assert_eq!(output_of(&rest), "two live\n");
    assert_eq!(rest[0].data["cursor"], 9);
    let exit = rest.last().unwrap();
    assert_eq!(exit.data["type"], "exit");
    assert_eq!(exit.data["exit_code"], 0);
    assert_eq!(exit.data["cursor"], 18);

    // Resume: from a cursor, after the process has exited.
    let mut resumed = agent.follow(id, 4).await;
    let events = resumed.until_exit().await;
    assert_eq!(output_of(&events), "warn\ntwo live\n");

    // Last-Event-ID resumes too, and Accept: text/event-stream means follow.
    let resp = agent
        .http
        .get(agent.url(&format!("/v1/processes/{id}/logs")))
        .header("accept", "text/event-stream")
        .header("last-event-id", "9")
        .send()
        .await
        .unwrap();
    let text = within("sse body", resp.text()).await.unwrap();
    assert!(text.contains("\"data\":\"two live\\n\""), "{text}");
    assert!(!text.contains("warn"), "{text}");

    // Buffered logs as JSON, from a cursor.
    let (status, logs) = agent
        .get(&format!("/v1/processes/{id}/logs?cursor=4"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(logs["chunks"][0]["data"], "warn\n");
    assert_eq!(logs["chunks"][1]["data"], "two live\n");
    assert_eq!(logs["next_cursor"], 18);
    assert_eq!(logs["dropped_bytes"], 0);
    assert_eq!(logs["exited"], true);
    let got = agent
        .get(&format!("/v1/processes/{id}/logs?cursor=19"))
        .await;
    assert_problem(&got, 400, "invalid_request");
    let got = agent
        .get(&format!("/v1/processes/{id}/logs?cursor=abc"))
        .await;
    assert_problem(&got, 400, "invalid_request");
}

#[tokio::test]
async fn output_that_left_the_ring_is_reported_as_dropped() {
    let agent = TestAgent::start_with(|c| c.limits.ring_bytes = 64).await;
    let info = agent
        .start_process(json!({"cmd": "head -c 1000 /dev/zero | tr '\\0' x; echo END"}))
        .await;
    let id = info["id"].as_str().unwrap();
    let done = agent.wait_exit(id).await;
    assert_eq!(done["output_cursor"], 1004);

    let mut follow = agent.follow(id, 0).await;
    let events = follow.until_exit().await;
    assert_eq!(events[0].event, "dropped");
    assert_eq!(events[0].data["bytes"], 940);
    assert_eq!(events[0].data["cursor"], 940);
    let text = output_of(&events);
    assert_eq!(text, format!("{}END\n", "x".repeat(60)));
    assert_eq!(events.last().unwrap().data["cursor"], 1004);

    let (_, logs) = agent.get(&format!("/v1/processes/{id}/logs")).await;
    assert_eq!(logs["dropped_bytes"], 940);
    assert_eq!(logs["next_cursor"], 1004);
}

#[tokio::test]
async fn a_slow_follower_is_told_what_it_missed() {
    let agent = TestAgent::start_with(|c| c.limits.ring_bytes = 64 << 10).await;
    // 50 MB at full speed: far more than the ring plus the socket buffers
    // of a follower whose client stops reading.
    let info = agent
        .start_process(json!({
            "cmd": "read go; head -c 50000000 /dev/zero | tr '\\0' x; echo; echo END"
        }))
        .await;
    let id = info["id"].as_str().unwrap();
    let mut follow = agent.follow(id, 0).await;
    agent
        .post(
            &format!("/v1/processes/{id}/stdin"),
            json!({"data": "go\n"}),
        )
        .await;
    // Read one event (output, or already a drop), then stall until the
    // process is done.
    let first = follow.next().await.unwrap();
    let done = agent.wait_exit(id).await;
    let total = done["output_cursor"].as_u64().unwrap();
    assert_eq!(total, 50_000_005);
    let mut events = vec![first];
    events.extend(follow.until_exit().await);
    let dropped: u64 = events
        .iter()
        .filter(|e| e.event == "dropped")
        .map(|e| e.data["bytes"].as_u64().unwrap())
        .sum();
    assert!(dropped > 0, "the slow follower was not told of a drop");
    // Every byte is accounted for, in order: read + dropped = all.
    let mut cursor = 0;
    for e in &events {
        match e.event.as_str() {
            "output" => {
                assert_eq!(e.data["cursor"], cursor);
                cursor += e.data["data"].as_str().unwrap().len() as u64;
            }
            "dropped" => {
                cursor += e.data["bytes"].as_u64().unwrap();
                assert_eq!(e.data["cursor"], cursor);
            }
            _ => assert_eq!(e.data["cursor"], total),
        }
    }
    assert_eq!(cursor, total);
    assert!(output_of(&events).ends_with("x\nEND\n"));
}

#[tokio::test]
async fn several_followers_see_the_same_output() {
    let agent = TestAgent::start().await;
    let info = agent
        .start_process(json!({
            "cmd": "read go; for i in 1 2 3 4 5; do echo line$i; sleep 0.03; done; exit 4"
        }))
        .await;
    let id = info["id"].as_str().unwrap();
    let mut followers = Vec::new();
    for _ in 0..4 {
        followers.push(agent.follow(id, 0).await);
    }
    agent
        .post(
            &format!("/v1/processes/{id}/stdin"),
            json!({"data": "go\n"}),
        )
        .await;
    let results = join_all(followers.iter_mut().map(|f| f.until_exit())).await;
    for events in results {
        assert_eq!(output_of(&events), "line1\nline2\nline3\nline4\nline5\n");
        assert_eq!(events.last().unwrap().data["exit_code"], 4);
    }
}

#[tokio::test]
async fn binary_output_is_base64_and_text_is_never_split() {
    let agent = TestAgent::start().await;
    // "é" is written in two halves, 200 ms apart, to a live follower.
    let info = agent
        .start_process(json!({
            "cmd": "read go; printf '\\377\\376'; printf 'h\\303' >&2; sleep 0.2; printf '\\251!' >&2"
        }))
        .await;
    let id = info["id"].as_str().unwrap();
    let mut follow = agent.follow(id, 0).await;
    agent
        .post(
            &format!("/v1/processes/{id}/stdin"),
            json!({"data": "go\n"}),
        )
        .await;
    let events = follow.until_exit().await;
    assert_eq!(events[0].data["encoding"], "base64");
    assert_eq!(events[0].data["data"], "//4=");
    let stderr: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e.event == "output" && e.data["stream"] == "stderr")
        .map(|e| &e.data)
        .collect();
    assert!(stderr.iter().all(|c| c["encoding"] == "utf8"), "{stderr:?}");
    let text: String = stderr.iter().map(|c| c["data"].as_str().unwrap()).collect();
    assert_eq!(text, "hé!");
}
