//! The committed OpenAPI document (`docs/openapi/server.json`) is the one the
//! code generates (and `warren server` serves at `/v1/openapi.json`).
//! Regenerate with `UPDATE_OPENAPI=1 cargo nextest run -p warren-server openapi`.

use std::path::PathBuf;

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi/server.json")
}

fn generated() -> String {
    let mut json = warren_server::http::openapi()
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
        std::fs::write(&path, &generated).expect("write docs/openapi/server.json");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi/server.json is stale: run `UPDATE_OPENAPI=1 cargo nextest run -p warren-server openapi` and commit it"
    );
}

#[test]
fn the_document_describes_the_api_md_contract() {
    let doc: serde_json::Value = serde_json::from_str(&generated()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = &doc["paths"];
    for (path, method) in [
        ("/v1/health", "get"),
        ("/v1/sandboxes", "post"),
        ("/v1/sandboxes", "get"),
        ("/v1/sandboxes/{id}", "get"),
        ("/v1/sandboxes/{id}", "patch"),
        ("/v1/sandboxes/{id}", "delete"),
        ("/v1/sandboxes/{id}/extend", "post"),
        ("/v1/sandboxes/{id}/stop", "post"),
        ("/v1/sandboxes/{id}/start", "post"),
        ("/v1/sandboxes/{id}/hibernate", "post"),
        ("/v1/sandboxes/{id}/wake", "post"),
        ("/v1/sandboxes/{id}/{agent_path}", "post"),
        ("/v1/admin/tenants", "post"),
        ("/v1/admin/tenants", "get"),
        ("/v1/admin/tenants/{id}/keys", "post"),
        ("/v1/admin/keys/{id}", "delete"),
        ("/v1/templates", "get"),
        ("/v1/templates/{name}", "delete"),
        ("/v1/checkpoints/{id}/diff", "get"),
        ("/v1/checkpoints/{id}/diff/file", "get"),
        ("/metrics", "get"),
    ] {
        assert!(paths[path][method].is_object(), "{method} {path} missing");
    }
    let sandbox = &doc["components"]["schemas"]["Sandbox"]["properties"];
    for field in ["id", "state", "template", "created_at", "expires_at"] {
        assert!(sandbox[field].is_object(), "Sandbox.{field} missing");
    }
    let item = &doc["components"]["schemas"]["DiffItem"]["properties"];
    for field in ["path", "change", "size", "kind"] {
        assert!(item[field].is_object(), "DiffItem.{field} missing");
    }
}
