//! The agent's HTTP surface: one router built from one module per resource.
//!
//! - [`auth`], the bearer-token layer (constant-time, `?access_token=` too);
//! - [`health`] for `/v1/health`;
//! - [`environment`] for `/v1/environment` (processes' default environment);
//! - [`processes`] for `/v1/processes/...`;
//! - [`files`] for `/v1/files/...`;
//! - [`sessions`] for `/v1/agents`, `/v1/sessions/...`, `/v1/transcripts`;
//! - [`sse`]: helpers of the streaming routes;
//! - [`ports`] for `/v1/ports/{port}/tunnel` (preview URLs);
//! - [`browser`] for `/v1/desktop/browser/...` (Chromium and its DevTools protocol).
//! - [`desktop`] for `/v1/desktop/...` (display, input, windows, screenshots).
//!
//! Handlers parse, call the domain ([`crate::process`], [`crate::files`]) and
//! render; they hold no logic of their own. The OpenAPI document is collected
//! from the handlers' `#[utoipa::path]` attributes by `utoipa-axum`.

pub mod auth;
pub mod browser;
pub mod desktop;
pub mod environment;
pub mod files;
pub mod health;
pub mod ports;
pub mod processes;
pub mod sessions;
pub mod sse;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use self::auth::SecurityAddon;
use crate::AppState;

/// Top-level OpenAPI metadata; paths come from the route modules.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Warren agent API",
        description = "The in-sandbox agent: processes, terminals, files and a desktop over HTTP.",
        license(name = "Apache-2.0")
    ),
    components(schemas(warren_api::Problem, warren_api::ErrorCode)),
    modifiers(&SecurityAddon),
    security(("bearer" = []))
)]
struct ApiDoc;

/// The routes and the OpenAPI document they describe.
fn parts(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    let body_limit = state.config.limits.max_json_body;
    let (router, api) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(health::routes())
        .merge(environment::routes())
        .merge(processes::routes())
        .merge(files::routes())
        .merge(ports::routes())
        .merge(sessions::routes())
        .merge(desktop::routes())
        .merge(browser::routes())
        .split_for_parts();
    // envd's routes are E2B's protocol, not Warren's API: outside the
    // OpenAPI document, behind the same token.
    let router = router
        .merge(crate::envd::routes())
        .fallback(warren_api::extract::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state);
    (router, api)
}

/// The agent's router, with `/v1/openapi.json` served from the same document.
/// The document is made again and serialized on its first request, not kept
/// from start-up: it is the largest thing on an idle agent's heap (every
/// route's schemas), and a sandbox's agent should answer its first command
/// as soon as it can.
pub fn router(state: AppState) -> Router {
    let (router, api) = parts(state.clone());
    drop(api);
    trim_heap();
    let json = std::sync::Arc::new(std::sync::OnceLock::<String>::new());
    router.route(
        "/v1/openapi.json",
        axum::routing::get(move || async move {
            let json = json
                .get_or_init(|| {
                    parts(state.clone())
                        .1
                        .to_pretty_json()
                        .expect("OpenAPI document serializes")
                })
                .clone();
            ([(http::header::CONTENT_TYPE, "application/json")], json)
        }),
    )
}

/// Gives the memory freed so far back to the kernel: what building the
/// router allocated and dropped would otherwise stay in every idle agent.
fn trim_heap() {
    // SAFETY: malloc_trim only releases free heap memory; it takes no
    // pointers.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The OpenAPI document of the agent API, as committed in `docs/openapi/agent.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let config = crate::AgentConfig::for_tests("/");
    // The state is only needed to build the router; no process is started.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async { parts(AppState::new(config)).1 })
}
