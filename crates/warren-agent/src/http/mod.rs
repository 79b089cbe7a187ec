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
//! from the handlers' `#[utoipa::path]` attributes by `utoipa-axum`, and only
//! when it is asked for ([`doc`]): the serving router is built without it.

pub mod auth;
pub mod browser;
pub mod desktop;
mod doc;
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

/// The routes and the OpenAPI document they describe (only their paths and
/// methods unless built inside [`doc::documented`]).
fn parts(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    let body_limit = state.config.limits.max_json_body;
    let routes = doc::Routes::new(ApiDoc::openapi);
    let routes = health::routes(routes);
    let routes = environment::routes(routes);
    let routes = processes::routes(routes);
    let routes = files::routes(routes);
    let routes = ports::routes(routes);
    let routes = sessions::routes(routes);
    let routes = desktop::routes(routes);
    let (router, api) = browser::routes(routes).split();
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

/// The agent's router, with `/v1/openapi.json`. The router is built without
/// the OpenAPI descriptions of its routes ([`doc`]): a sandbox's agent
/// answers its first command sooner, and an idle agent does not keep the
/// document. The document is made and serialized on its first request.
pub fn router(state: AppState) -> Router {
    let (router, _) = parts(state.clone());
    let json = std::sync::Arc::new(std::sync::OnceLock::<String>::new());
    router.route(
        "/v1/openapi.json",
        axum::routing::get(move || async move {
            let json = json
                .get_or_init(|| {
                    let api = doc::documented(|| parts(state.clone()).1);
                    let json = api.to_pretty_json().expect("OpenAPI document serializes");
                    drop(api);
                    trim_heap();
                    json
                })
                .clone();
            ([(http::header::CONTENT_TYPE, "application/json")], json)
        }),
    )
}

/// Gives the memory freed so far back to the kernel: what building the
/// document allocated and dropped would otherwise stay in the agent.
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
    rt.block_on(async { doc::documented(|| parts(AppState::new(config)).1) })
}
