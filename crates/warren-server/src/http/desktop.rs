//! `POST /v1/sandboxes/{id}/desktop/stream/url`: a shareable live-view URL
//! of a sandbox's desktop, with a token scoped to its stream
//! ([`crate::auth::stream_token`]). Served before the agent proxy; every
//! other desktop route is the agent's.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use utoipa_axum::{router::OpenApiRouter, routes};
use warren_api::desktop::{StreamUrl, StreamUrlRequest};
use warren_api::extract::Json;
use warren_api::Problem;

use super::OptionalJson;
use crate::auth::stream_token::MAX_TTL;
use crate::auth::Caller;
use crate::AppState;

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(stream_url))
}

/// Mints a live-view URL: the console's page `/ui/desktop/{id}` with a
/// token in its fragment that opens this sandbox's `desktop/stream`
/// WebSocket only (as the subprotocol `warren.token.<token>`), until it
/// expires; a `view_only` token can only ever watch.
#[utoipa::path(post, path = "/v1/sandboxes/{id}/desktop/stream/url", tag = "desktop",
    params(("id" = String, Path, description = "`sbx_…`")),
    request_body(content = Option<StreamUrlRequest>, description = "Every field is optional; an empty body is fine."),
    responses(
        (status = 200, description = "The URL and its token", body = StreamUrl),
        (status = 400, description = "`ttl_seconds` out of 1..=86400 (`invalid_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such sandbox (`sandbox_not_found`)", body = Problem, content_type = "application/problem+json")))]
async fn stream_url(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    OptionalJson(req): OptionalJson<StreamUrlRequest>,
) -> Result<Json<StreamUrl>, Problem> {
    if !(1..=MAX_TTL).contains(&req.ttl_seconds) {
        return Err(Problem::invalid(format!(
            "ttl_seconds must be between 1 and {MAX_TTL}"
        )));
    }
    app.sandboxes.get(&caller, &id).await?;
    let now_ms = crate::time::now_ms();
    let expires = u64::try_from(now_ms / 1000).unwrap_or(0) + req.ttl_seconds;
    let token = app
        .auth
        .stream_tokens()
        .mint(&id, &caller, req.view_only, expires);
    Ok(Json(StreamUrl {
        url: format!("{}/ui/desktop/{id}#token={token}", origin(&headers)),
        token,
        view_only: req.view_only,
        expires_at: crate::time::rfc3339(i64::try_from(expires).unwrap_or(i64::MAX / 1000) * 1000),
    }))
}

/// The server's origin as the client reached it: `X-Forwarded-Proto`
/// (`https` behind a TLS proxy, else `http`) and the `Host` header.
fn origin(headers: &HeaderMap) -> String {
    let host = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic() && b != b'/'))
        .unwrap_or("localhost");
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"));
    format!("{}://{host}", if https { "https" } else { "http" })
}
