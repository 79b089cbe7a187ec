//! Many envd uploads in a row through the server's E2B sandbox plane, sent
//! as the JS SDK's `fetch` sends a `FormData` body: chunked (the SDK hands
//! undici the `Request`'s body stream, of unknown length), in separate
//! writes (each part's head, its data, its CRLF, the closing boundary, its
//! CRLF, and at last the chunked terminator). The server forwards each over its
//! pooled connections to the agent's `/envd/files`; none may fail.

mod server_common;

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use serde_json::{json, Value};
use server_common::TestServer;

/// A one-file multipart body, as undici encodes a `FormData`.
fn form(boundary: &str, name: &str, data: &[u8]) -> Bytes {
    let mut form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    form.extend_from_slice(data);
    form.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    Bytes::from(form)
}

/// A body of unknown length (so sent chunked, as the SDK's fetch sends a
/// `Request`'s body stream): the whole form in one chunk, then, `delay`
/// later, its end (the chunked terminator, which undici writes on its own
/// once the stream is done).
fn paced(form: Bytes, delay: Duration) -> reqwest::Body {
    let steps = [Some(form), None];
    let stream = futures::stream::iter(steps).filter_map(move |chunk| async move {
        if chunk.is_none() {
            // Below tokio's timer resolution: the window is that small.
            let _ = tokio::task::spawn_blocking(move || std::thread::sleep(delay)).await;
        }
        chunk.map(Ok::<_, std::io::Error>)
    });
    reqwest::Body::wrap_stream(stream)
}

#[tokio::test(flavor = "multi_thread")]
async fn e2b_multipart_uploads_in_a_row_all_succeed() {
    let server = TestServer::start().await;
    let (_, key) = server.tenant("e2b-uploads", None).await;
    let resp = server
        .http
        .post(server.url("/v2/sandboxes"))
        .header("X-API-KEY", &key)
        .json(&json!({"templateID": "base"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let created: Value = resp.json().await.unwrap();
    let id = created["sandboxID"].as_str().unwrap().to_string();
    let token = created["envdAccessToken"].as_str().unwrap().to_string();

    let boundary = "----formdata-undici-0123456789";
    let mut failures = Vec::new();
    const WRITES: usize = 400;
    for i in 0..WRITES {
        let data = format!("file {i}");
        let path = format!("/tmp/loop/f{i}.txt");
        let form = form(boundary, &path, data.as_bytes());
        // The end comes from at once to 4 ms after the form: the agent
        // answers in that time, so some of these land just as it does.
        let delay = Duration::from_micros((i as u64 * 97) % 4000);
        let resp = server
            .http
            .post(server.url("/files"))
            .header("E2b-Sandbox-Id", &id)
            .header("X-Access-Token", &token)
            .header("Authorization", "Basic dXNlcjo=")
            .header(
                "Content-Type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(paced(form, delay))
            .send()
            .await;
        // A 502 from the server, or the server's connection closed under
        // the upload it could not forward.
        match resp {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let text = resp.text().await.unwrap_or_default();
                if status != 200 {
                    failures.push(format!("write {i}: {status} {text}"));
                }
            }
            Err(err) => failures.push(format!("write {i}: {err}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {WRITES} uploads failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let listed = server
        .run(&key, &format!("sbx_{id}"), "ls /tmp/loop | wc -l")
        .await;
    assert_eq!(
        listed["stdout"].as_str().unwrap().trim(),
        WRITES.to_string()
    );
}
