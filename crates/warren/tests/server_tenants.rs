//! Tenants, keys and quotas on a real server: a tenant's key sees only its
//! own sandboxes (anything else is a 404 exactly like a missing id), the
//! admin key sees everything, revoked keys stop working, quotas answer 429.

mod server_common;

use serde_json::{json, Value};
use server_common::{TestServer, ADMIN_KEY};

/// A problem's body with the sandbox id in `detail` replaced, so that two
/// 404s can be compared whole.
fn anonymized(body: &Value, id: &str) -> Value {
    let mut body = body.clone();
    let detail = body["detail"]
        .as_str()
        .unwrap_or_default()
        .replace(id, "ID");
    body["detail"] = Value::String(detail);
    body
}

fn ids(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn tenants_see_only_their_own_sandboxes() {
    let server = TestServer::start().await;
    let (tenant_a, key_a) = server.tenant("team-a", None).await;
    let (tenant_b, key_b) = server.tenant("team-b", None).await;
    let a = server.create(&key_a, json!({})).await;
    let b = server.create(&key_b, json!({})).await;
    let (a_id, b_id) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    assert_eq!(a["tenant_id"], tenant_a.as_str());
    assert_eq!(b["tenant_id"], tenant_b.as_str());

    // Another tenant's sandbox is a 404 exactly like an id that never existed.
    let missing = "sbx_aaaaaaaaaaaaaaaaaaaa";
    let (status, not_there) = server
        .call("GET", &format!("/v1/sandboxes/{missing}"), &key_a, None)
        .await;
    assert_eq!(status, 404);
    assert_eq!(not_there["code"], "sandbox_not_found");
    for (method, path, body) in [
        ("GET", format!("/v1/sandboxes/{b_id}"), None),
        ("DELETE", format!("/v1/sandboxes/{b_id}"), None),
        (
            "PATCH",
            format!("/v1/sandboxes/{b_id}"),
            Some(json!({"metadata": {}})),
        ),
        ("POST", format!("/v1/sandboxes/{b_id}/stop"), None),
        (
            "POST",
            format!("/v1/sandboxes/{b_id}/extend"),
            Some(json!({"seconds": 5})),
        ),
        (
            "POST",
            format!("/v1/sandboxes/{b_id}/processes/run"),
            Some(json!({"cmd": "true"})),
        ),
        (
            "GET",
            format!("/v1/sandboxes/{b_id}/files?path=/etc/hostname"),
            None,
        ),
    ] {
        let (status, answer) = server.call(method, &path, &key_a, body.clone()).await;
        assert_eq!(status, 404, "{method} {path}: {answer}");
        let missing_path = path.replace(b_id, missing);
        let (_, missing_body) = server.call(method, &missing_path, &key_a, body).await;
        assert_eq!(
            anonymized(&answer, b_id),
            anonymized(&missing_body, missing),
            "{method} {path}"
        );
    }
    // B's sandbox survived A's attempts.
    let out = server.run(&key_b, b_id, "echo alive").await;
    assert_eq!(out["stdout"], "alive\n");

    // Lists: each tenant sees its own; the admin sees both and can filter.
    let (_, list) = server.call("GET", "/v1/sandboxes", &key_a, None).await;
    assert_eq!(ids(&list), vec![a_id.to_string()]);
    let (_, list) = server.call("GET", "/v1/sandboxes", &key_b, None).await;
    assert_eq!(ids(&list), vec![b_id.to_string()]);
    let (_, list) = server
        .call(
            "GET",
            &format!("/v1/sandboxes?tenant={tenant_b}"),
            &key_a,
            None,
        )
        .await;
    assert!(
        ids(&list).is_empty(),
        "A filtering on B sees nothing: {list}"
    );
    let (_, list) = server.call("GET", "/v1/sandboxes", ADMIN_KEY, None).await;
    assert_eq!(ids(&list), vec![a_id.to_string(), b_id.to_string()]);
    let (_, list) = server
        .call(
            "GET",
            &format!("/v1/sandboxes?tenant={tenant_a}"),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(ids(&list), vec![a_id.to_string()]);
    let (status, admin_view) = server
        .call("GET", &format!("/v1/sandboxes/{b_id}"), ADMIN_KEY, None)
        .await;
    assert_eq!((status, &admin_view["id"]), (200, &json!(b_id)));

    // The admin routes are the admin's.
    let (status, body) = server.call("GET", "/v1/admin/tenants", &key_a, None).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));
    let (status, tenants) = server
        .call("GET", "/v1/admin/tenants", ADMIN_KEY, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(tenants["items"].as_array().unwrap().len(), 2);
    let (status, _) = server
        .call(
            "POST",
            "/v1/admin/tenants",
            ADMIN_KEY,
            Some(json!({"name": "team-a"})),
        )
        .await;
    assert_eq!(status, 409, "tenant names are unique");
    let (status, body) = server
        .call(
            "POST",
            "/v1/admin/tenants/ten_aaaaaaaaaaaaaaaaaaaa/keys",
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("tenant_not_found"))
    );

    // Keys: listed without secrets, revoked for good.
    let (_, keys) = server
        .call(
            "GET",
            &format!("/v1/admin/tenants/{tenant_a}/keys"),
            ADMIN_KEY,
            None,
        )
        .await;
    let key_id = keys["items"][0]["id"].as_str().unwrap().to_string();
    assert!(
        !keys.to_string().contains(&key_a),
        "a listed key shows its secret"
    );
    let (status, _) = server
        .call(
            "DELETE",
            &format!("/v1/admin/keys/{key_id}"),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, body) = server.call("GET", "/v1/sandboxes", &key_a, None).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")));
    let (status, _) = server
        .call(
            "DELETE",
            &format!("/v1/admin/keys/{key_id}"),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(status, 404, "a revoked key is gone");
    let (status, _) = server.call("GET", "/v1/sandboxes", "wsk_nope", None).await;
    assert_eq!(status, 401);
    let resp = server
        .http
        .get(server.url("/v1/sandboxes"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    // ?access_token= works like the header.
    let resp = server
        .http
        .get(server.url(&format!("/v1/sandboxes?access_token={key_b}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn quota_counts_running_sandboxes() {
    let server = TestServer::start().await;
    let (_, key) = server.tenant("small", Some(2)).await;
    let first = server.create(&key, json!({})).await;
    let _second = server.create(&key, json!({})).await;
    let (status, body) = server
        .call("POST", "/v1/sandboxes", &key, Some(json!({})))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (429, Some("quota_exceeded")),
        "{body}"
    );

    // A stopped sandbox holds no compute: room for another.
    let first_id = first["id"].as_str().unwrap();
    let (status, stopped) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{first_id}/stop"),
            &key,
            None,
        )
        .await;
    assert_eq!((status, stopped["state"].as_str()), (200, Some("stopped")));
    let third = server.create(&key, json!({})).await;
    // Starting the stopped one would make three.
    let (status, body) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{first_id}/start"),
            &key,
            None,
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (429, Some("quota_exceeded"))
    );
    let (_, still) = server
        .call("GET", &format!("/v1/sandboxes/{first_id}"), &key, None)
        .await;
    assert_eq!(still["state"], "stopped", "a refused start changes nothing");
    let third_id = third["id"].as_str().unwrap();
    let (status, _) = server
        .call("DELETE", &format!("/v1/sandboxes/{third_id}"), &key, None)
        .await;
    assert_eq!(status, 204);
    let (status, started) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{first_id}/start"),
            &key,
            None,
        )
        .await;
    assert_eq!(
        (status, started["state"].as_str()),
        (200, Some("running")),
        "{started}"
    );
    // The admin key has no quota.
    server.create(ADMIN_KEY, json!({})).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn lists_filter_and_page() {
    let server = TestServer::start().await;
    let mut created = Vec::new();
    for (i, team) in ["a", "a", "b", "b", "a"].iter().enumerate() {
        let sandbox = server
            .create(
                ADMIN_KEY,
                json!({
                    "labels": {"team": team, "n": i.to_string()},
                    "metadata": {"owner": if i % 2 == 0 { "even" } else { "odd" }},
                }),
            )
            .await;
        created.push(sandbox["id"].as_str().unwrap().to_string());
    }
    let list = |query: &str| {
        let server = &server;
        let path = format!("/v1/sandboxes?{query}");
        async move {
            let (status, body) = server.call("GET", &path, ADMIN_KEY, None).await;
            assert_eq!(status, 200, "{path}: {body}");
            body
        }
    };
    let pick = |idx: &[usize]| idx.iter().map(|&i| created[i].clone()).collect::<Vec<_>>();
    assert_eq!(ids(&list("label=team=a").await), pick(&[0, 1, 4]));
    assert_eq!(ids(&list("label=team=a&label=n=4").await), pick(&[4]));
    assert_eq!(ids(&list("metadata.owner=odd").await), pick(&[1, 3]));
    assert_eq!(
        ids(&list("metadata.owner=odd&label=team=b").await),
        pick(&[3])
    );
    assert!(ids(&list("label=team=c").await).is_empty());

    let (status, _) = server
        .call(
            "POST",
            &format!("/v1/sandboxes/{}/stop", created[2]),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(ids(&list("state=stopped").await), pick(&[2]));
    assert_eq!(ids(&list("state=running").await), pick(&[0, 1, 3, 4]));

    // Pages of two walk everything once, in creation order.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let query = match &cursor {
            Some(c) => format!("limit=2&cursor={c}"),
            None => "limit=2".to_string(),
        };
        let page = list(&query).await;
        assert!(page["items"].as_array().unwrap().len() <= 2);
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, created);

    for bad in [
        "limit=0",
        "limit=5000",
        "cursor=nonsense",
        "state=asleep",
        "label=nokv",
        "colour=red",
    ] {
        let (status, body) = server
            .call("GET", &format!("/v1/sandboxes?{bad}"), ADMIN_KEY, None)
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("invalid_request")),
            "{bad}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn served_openapi_is_the_committed_document() {
    let server = TestServer::start_with(server_common::Options {
        no_base: true,
        args: vec!["--no-network".into()],
        ..Default::default()
    })
    .await;
    // Public, like /v1/health.
    let served: Value = server
        .http
        .get(server.url("/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/openapi/server.json"
        ))
        .unwrap(),
    )
    .unwrap();
    assert!(
        served == committed,
        "the served /v1/openapi.json is not docs/openapi/server.json: regenerate it with \
         `UPDATE_OPENAPI=1 cargo nextest run -p warren-server openapi`"
    );
    let health: Value = server
        .http
        .get(server.url("/v1/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
}

#[tokio::test(flavor = "multi_thread")]
async fn e2b_form_keys_are_warren_keys_too() {
    let server = TestServer::start().await;
    let (status, tenant) = server
        .call(
            "POST",
            "/v1/admin/tenants",
            ADMIN_KEY,
            Some(json!({"name": "e2b-user"})),
        )
        .await;
    assert_eq!(status, 201, "{tenant}");
    let tid = tenant["id"].as_str().unwrap();
    let (status, created) = server
        .call(
            "POST",
            &format!("/v1/admin/tenants/{tid}/keys"),
            ADMIN_KEY,
            Some(json!({"format": "e2b"})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let key = created["key"].as_str().unwrap().to_string();
    // What E2B's SDKs check: `e2b_` and hex.
    assert!(key.starts_with("e2b_"), "{key}");
    assert_eq!(key.len(), 68);
    assert!(
        key[4..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{key}"
    );

    // It is the tenant's key like any other.
    let sandbox = server.create(&key, json!({})).await;
    let id = sandbox["id"].as_str().unwrap();
    assert_eq!(
        server.sh(&key, id, "echo hi").await,
        (0, "hi\n".to_string())
    );
    let (_, list) = server.call("GET", "/v1/sandboxes", &key, None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);

    // Without a body (or with the default format) keys keep Warren's form.
    let (status, plain) = server
        .call(
            "POST",
            &format!("/v1/admin/tenants/{tid}/keys"),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(status, 201);
    assert!(
        plain["key"].as_str().unwrap().starts_with("wsk_"),
        "{plain}"
    );
    let (status, bad) = server
        .call(
            "POST",
            &format!("/v1/admin/tenants/{tid}/keys"),
            ADMIN_KEY,
            Some(json!({"format": "aws"})),
        )
        .await;
    assert_eq!(
        (status, bad["code"].as_str()),
        (400, Some("invalid_request")),
        "{bad}"
    );

    // Revoked, it stops working.
    let (status, _) = server
        .call(
            "DELETE",
            &format!("/v1/admin/keys/{}", created["id"].as_str().unwrap()),
            ADMIN_KEY,
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = server.call("GET", "/v1/sandboxes", &key, None).await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rust_client_makes_e2b_form_keys() {
    let server = TestServer::start().await;
    let admin = warren_client::Client::new(&server.base, Some(ADMIN_KEY)).unwrap();
    let tenant = admin.create_tenant("via-client", None).await.unwrap();
    let key = admin
        .create_key_in(&tenant.id, warren_client::KeyFormat::E2b)
        .await
        .unwrap();
    assert!(
        key.key.starts_with("e2b_") && key.key.len() == 68,
        "{}",
        key.key
    );
    let tenant_client = warren_client::Client::new(&server.base, Some(&key.key)).unwrap();
    let sandbox = tenant_client.create(&Default::default()).await.unwrap();
    assert_eq!(sandbox.run("echo ok").await.unwrap().stdout, "ok\n");
}

/// Sends `method path` with a `size`-byte body the way Python's
/// `http.client` and many other clients do: the whole body, then the
/// answer. Its status and JSON body, or what went wrong.
async fn upload_then_read(
    server: &TestServer,
    method: &str,
    path: &str,
    key: &str,
    size: usize,
    expect_continue: bool,
) -> Result<(u16, Value), std::io::Error> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let url = reqwest::Url::parse(&server.url(path)).unwrap();
    let address = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: warren\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {size}\r\n\
         Connection: close\r\n{}\r\n",
        if expect_continue {
            "Expect: 100-continue\r\n"
        } else {
            ""
        }
    );
    stream.write_all(head.as_bytes()).await?;
    if expect_continue {
        // The body waits for a `100 Continue`, which a refusal never is.
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        return Ok(parse_answer(&answer));
    }
    let chunk = vec![b'x'; 1 << 20];
    let mut sent = 0;
    while sent < size {
        let n = chunk.len().min(size - sent);
        stream.write_all(&chunk[..n]).await?;
        sent += n;
    }
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    Ok(parse_answer(&answer))
}

/// The status and JSON body of a raw HTTP/1.1 answer.
fn parse_answer(answer: &[u8]) -> (u16, Value) {
    let answer = String::from_utf8_lossy(answer);
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .and_then(|(_, body)| serde_json::from_str(body).ok())
        .unwrap_or(Value::Null);
    (status, body)
}

/// A refusal sent before an upload was read still reaches a client that
/// sends the whole body before it reads the answer: the server reads and
/// drops the rest of the body first, rather than close a connection with
/// unread data in it (a reset: the client's write fails with a broken
/// pipe and it never sees why).
#[tokio::test(flavor = "multi_thread")]
async fn refusals_of_large_uploads_reach_the_client() {
    let server = TestServer::start().await;
    let (_, key) = server.tenant("uploader", None).await;
    let missing = "/v1/sandboxes/sbx_aaaaaaaaaaaaaaaaaaaa/files?path=/root/big";
    // Well past what the sockets of a loopback connection buffer.
    let size = 32 << 20;
    for (method, path, key, status, code) in [
        (
            "POST",
            "/v1/templates/big/import",
            key.as_str(),
            403,
            "forbidden",
        ),
        ("PUT", missing, key.as_str(), 404, "sandbox_not_found"),
        ("PUT", missing, "not-a-key", 401, "unauthorized"),
    ] {
        for expect_continue in [false, true] {
            let (got, body) = upload_then_read(&server, method, path, key, size, expect_continue)
                .await
                .unwrap_or_else(|e| panic!("{method} {path}: no answer: {e}"));
            // With `Expect`, the refusal comes first, with no `100 Continue`.
            assert_eq!(
                (got, body["code"].as_str()),
                (status, Some(code)),
                "{method} {path} (expect {expect_continue}): {body}"
            );
        }
    }
}
