//! A template build asked for as server-sent events streams its log as it
//! runs, then ends with the template or with the problem.

mod server_common;

use serde_json::Value;
use server_common::{TestServer, ADMIN_KEY};

/// The events of an SSE body, as (name, JSON data).
fn events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter_map(|block| {
            let mut name = None;
            let mut data = None;
            for line in block.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = Some(n.to_string());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = Some(serde_json::from_str(d).expect("JSON data"));
                }
            }
            Some((name?, data?))
        })
        .collect()
}

/// Builds template `name` from `spec` with `Accept: text/event-stream`.
async fn build_events(server: &TestServer, name: &str, spec: String) -> Vec<(String, Value)> {
    let resp = server
        .req(
            reqwest::Method::POST,
            &format!("/v1/templates/{name}/build"),
            ADMIN_KEY,
        )
        .header("accept", "text/event-stream")
        .header("content-type", "application/toml")
        .body(spec)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    events(&resp.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_build_streams_its_log_then_the_template_or_the_problem() {
    let server = TestServer::start().await;
    // A nonce so no cached layer skips the step.
    let nonce = format!("{}-{:?}", std::process::id(), std::time::Instant::now());
    let spec = format!("run = [\"echo streamed {nonce}\"]");
    let events = build_events(&server, "streamed", spec).await;
    let lines: Vec<&str> = events
        .iter()
        .filter(|(n, _)| n == "log")
        .map(|(_, d)| d["line"].as_str().unwrap())
        .collect();
    assert!(lines.iter().any(|l| l.starts_with("step 1/1")), "{lines:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("streamed {nonce}"))),
        "{lines:?}"
    );
    let (last, template) = events.last().expect("events");
    assert_eq!(last, "done", "{events:?}");
    assert_eq!(template["name"], "streamed", "{template}");
    let (_, list) = server.call("GET", "/v1/templates", ADMIN_KEY, None).await;
    assert!(list["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["name"] == "streamed"));

    // A failing step: its output, then the problem a plain build answers.
    let events = build_events(
        &server,
        "failing",
        "run = [\"echo about-to-fail; exit 3\"]".into(),
    )
    .await;
    assert!(
        events
            .iter()
            .any(|(n, d)| n == "log" && d["line"] == "about-to-fail"),
        "{events:?}"
    );
    let (last, problem) = events.last().expect("events");
    assert_eq!(last, "error", "{events:?}");
    assert_eq!(problem["code"], "invalid_request", "{problem}");
    assert_eq!(problem["status"], 400, "{problem}");

    // A tenant key is refused before any event.
    let (_, key) = server.tenant("builder", None).await;
    let resp = server
        .req(reqwest::Method::POST, "/v1/templates/nope/build", &key)
        .header("accept", "text/event-stream")
        .body("run = [\"true\"]")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
}
