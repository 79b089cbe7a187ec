//! The control plane's HTTP surface: one router built from one module per
//! resource, plus the agent proxy.
//!
//! - [`health`]: `/v1/health` and `/metrics`.
//! - [`sandboxes`]: `/v1/sandboxes/...` (lifecycle).
//! - [`checkpoints`]: checkpoints, restore, fork, wipe, patches, export and
//!   import.
//! - [`admin`]: `/v1/admin/...` (tenants and keys); [`pools`]:
//!   `/v1/admin/pools` (the warm pools).
//! - [`templates`]: `/v1/templates` routes.
//! - [`events`]: `/v1/events` (sandbox state changes, SSE).
//! - [`crate::proxy`]: every other `/v1/sandboxes/{id}/...` path.
//! - [`console`]: the web console at `/ui` (static files, no key).
//! - [`e2b`]: E2B's control plane (`/sandboxes`, `/v2/sandboxes`, ...),
//!   with its own key check (`X-API-KEY`) and error bodies.
//!
//! Layers, outermost first: E2B's sandbox plane
//! ([`crate::e2b::plane::dispatch`]), previews, tracing (tower-http), metrics
//! ([`crate::metrics::track`]), authentication ([`crate::auth::require_key`]),
//! the JSON body limit. Handlers parse, call the domain and render; the
//! OpenAPI document is collected from their `#[utoipa::path]` attributes.

pub mod admin;
pub mod checkpoints;
pub mod console;
pub mod desktop;
mod drain;
pub mod e2b;
pub mod events;
pub mod health;
pub mod pools;
pub mod previews;
pub mod sandboxes;
pub mod templates;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use axum::http::StatusCode;
use axum::routing::any;
use axum::Router;
use serde::de::DeserializeOwned;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tower_http::LatencyUnit;
use tracing::Level;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use warren_api::{ErrorCode, Problem};

use crate::auth::{self, SecurityAddon};
use crate::{metrics, proxy, AppState};

/// Top-level OpenAPI metadata; paths come from the route modules.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Warren server API",
        description = "The control plane: sandboxes, tenants, keys and templates. Every agent \
            route (see the agent's document) is also served under `/v1/sandboxes/{id}/`.",
        license(name = "Apache-2.0")
    ),
    paths(proxy::forward),
    components(schemas(
        warren_api::Problem,
        warren_api::ErrorCode,
        warren_api::server::EventsLagged
    )),
    modifiers(&SecurityAddon),
    security(("bearer" = []))
)]
struct ApiDoc;

/// Warren's own routes, each with its OpenAPI description.
fn documented() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(health::routes())
        .merge(sandboxes::routes())
        .merge(checkpoints::routes())
        .merge(previews::routes())
        .merge(admin::routes())
        .merge(pools::routes())
        .merge(templates::routes())
        .merge(events::routes())
        .merge(desktop::routes())
}

/// The routes and the OpenAPI document they describe.
fn parts(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    let body_limit = state.limits.max_json_body;
    let (router, mut api) = documented().split_for_parts();
    let (e2b_router, e2b_api) = e2b::routes().split_for_parts();
    api.merge(e2b_api);
    let router = router
        .route("/v1/sandboxes/{id}/{*agent_path}", any(proxy::forward))
        .fallback(warren_api::extract::not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::map_response(close_after_refused_body))
        .layer(axum::middleware::from_fn_with_state(
            state.auth.clone(),
            auth::require_key,
        ))
        .merge(e2b::layered(e2b_router, &state))
        .merge(console::routes())
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::track,
        ))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(
                    DefaultOnResponse::new()
                        .level(Level::INFO)
                        .latency_unit(LatencyUnit::Micros),
                ),
        )
        // Preview URLs (by Host or by path) are served before any API
        // routing or key check.
        .layer(axum::middleware::from_fn_with_state(
            state.previews.clone(),
            crate::previews::forward::dispatch,
        ))
        // E2B's sandbox plane (`E2b-Sandbox-Id`, envd's port by Host):
        // before previews, whose hosts it shares.
        .layer(axum::middleware::from_fn_with_state(
            state.e2b.clone(),
            crate::e2b::plane::dispatch,
        ))
        // Outermost: a refusal of any of the above is delivered whole.
        .layer(axum::middleware::from_fn(drain::drain_refused_body))
        .with_state(state);
    (router, api)
}

/// A body refused as too large was not read to its end, so the connection
/// cannot carry another request: say so, or a keep-alive client would send
/// its next request into a connection the server is closing.
async fn close_after_refused_body(
    mut response: axum::response::Response,
) -> axum::response::Response {
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        response.headers_mut().insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("close"),
        );
    }
    response
}

/// The span of a request: its method and path. Not the query, which may
/// carry an `access_token`.
fn request_span(req: &http::Request<axum::body::Body>) -> tracing::Span {
    tracing::info_span!("request", method = %req.method(), path = %req.uri().path())
}

async fn method_not_allowed() -> Problem {
    Problem::new(
        ErrorCode::MethodNotAllowed,
        "method not allowed on this route",
    )
}

/// The server's router, with `/v1/openapi.json` served from the same document.
pub fn router(state: AppState) -> Router {
    let (router, api) = parts(state);
    let json = api.to_pretty_json().expect("OpenAPI document serializes");
    router.route(
        "/v1/openapi.json",
        axum::routing::get(move || async move {
            ([(http::header::CONTENT_TYPE, "application/json")], json)
        }),
    )
}

/// The OpenAPI document of the server API, as committed in
/// `docs/openapi/server.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, mut api) = documented().split_for_parts();
    let (_, e2b_api) = e2b::routes().split_for_parts();
    api.merge(e2b_api);
    api
}

/// A JSON body that may be absent: an empty body is `T::default()`.
/// Rejections are problems (400 bad JSON, 413 too large, 415 not JSON).
#[derive(Debug, Clone, Default)]
pub struct OptionalJson<T>(pub T);

impl<T, S> FromRequest<S> for OptionalJson<T>
where
    T: DeserializeOwned + Default,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json_type = req
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|ct| {
                let mime = ct.split(';').next().unwrap_or("").trim();
                mime.eq_ignore_ascii_case("application/json") || mime.ends_with("+json")
            });
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Problem::new(ErrorCode::PayloadTooLarge, "request body is too large")
            } else {
                Problem::invalid(rejection.body_text())
            }
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        if json_type == Some(false) {
            return Err(Problem::new(
                ErrorCode::UnsupportedMediaType,
                "expected a body with Content-Type: application/json",
            ));
        }
        serde_json::from_slice(&bytes)
            .map(OptionalJson)
            .map_err(|e| Problem::invalid(format!("invalid JSON body: {e}")))
    }
}
