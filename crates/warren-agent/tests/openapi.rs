//! The committed OpenAPI document (`docs/openapi/agent.json`) is the one the
//! code generates and serves. Regenerate with `UPDATE_OPENAPI=1 cargo nextest
//! run -p warren-agent openapi`.

mod common;

use std::path::PathBuf;

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi/agent.json")
}

fn generated() -> String {
    let mut json = warren_agent::http::openapi()
        .to_pretty_json()
        .expect("OpenAPI serializes");
    json.push('\n');
    json
}

#[test]
fn committed_openapi_matches_the_code() {
    let generated = generated();
    let path = committed_path();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).expect("write docs/openapi/agent.json");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi/agent.json is stale: run `UPDATE_OPENAPI=1 cargo nextest run -p warren-agent openapi` and commit it"
    );
}

#[tokio::test]
async fn served_openapi_is_the_committed_document() {
    let agent = common::TestAgent::start().await;
    let served: serde_json::Value = agent
        .http
        .get(agent.url("/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // `openapi()` runs its own runtime, so build it off this one.
    let generated = tokio::task::spawn_blocking(generated).await.unwrap();
    let generated: serde_json::Value = serde_json::from_str(&generated).unwrap();
    assert_eq!(served, generated);
    assert_eq!(served["openapi"], "3.1.0");
    assert!(served["paths"]["/v1/health"].is_object());
}
