//! The agent answers health, unknown routes and auth with the documented shapes.

mod common;

use common::TestAgent;

#[tokio::test]
async fn health_answers_ok_with_version() {
    let agent = TestAgent::start().await;
    let resp = agent
        .http
        .get(agent.url("/v1/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["version"], warren_api::VERSION);
}

#[tokio::test]
async fn unknown_route_is_a_not_found_problem() {
    let agent = TestAgent::start().await;
    let resp = agent.http.get(agent.url("/v1/nope")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.headers()["content-type"],
        warren_api::problem::PROBLEM_CONTENT_TYPE
    );
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "not_found");
}

#[tokio::test]
async fn token_is_required_when_configured() {
    let agent = TestAgent::start_with(|c| c.token = Some("s3cret".into())).await;
    // Health stays public.
    let resp = agent
        .http
        .get(agent.url("/v1/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    for (auth, query) in [
        (None, ""),
        (Some("Bearer wrong"), ""),
        (None, "?access_token=wrong"),
    ] {
        let mut req = agent.http.get(agent.url(&format!("/v1/processes{query}")));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401, "auth={auth:?} query={query}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["code"], "unauthorized");
    }
    // The right token passes auth (whatever the route then answers, it is not 401).
    for (auth, query) in [(Some("Bearer s3cret"), ""), (None, "?access_token=s3cret")] {
        let mut req = agent.http.get(agent.url(&format!("/v1/nope{query}")));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 404, "auth={auth:?} query={query}");
    }
}
