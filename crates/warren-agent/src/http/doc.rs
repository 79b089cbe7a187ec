//! Routes whose OpenAPI description is made only when someone asks for it.
//!
//! `utoipa_axum::routes!` builds each route's operation and collects its
//! schemas as the route is added. For the agent that was most of its
//! start-up: about 4.5 ms of a sandbox's cold start went into a document
//! that nobody reads before the first command. This module's `routes!`
//! takes the same handlers and, unless the router is being built for its
//! document ([`documenting`]), registers each one from its path and methods
//! alone (an empty operation, no schemas). The served routes are the same
//! either way: both come from the handlers' `#[utoipa::path]` attributes,
//! and a test compares them.

use std::cell::Cell;

use axum::Router;
use utoipa::openapi::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};

use crate::AppState;

thread_local! {
    static DOCUMENTING: Cell<bool> = const { Cell::new(false) };
}

/// Whether the routes being built on this thread must carry their full
/// OpenAPI description.
pub(crate) fn documenting() -> bool {
    DOCUMENTING.with(Cell::get)
}

/// Runs `build` with [`documenting`] on (the routers it builds carry the
/// full document), and turns it off again even if `build` panics.
pub(crate) fn documented<T>(build: impl FnOnce() -> T) -> T {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            DOCUMENTING.with(|d| d.set(self.0));
        }
    }
    let _reset = Reset(DOCUMENTING.with(|d| d.replace(true)));
    build()
}

/// `utoipa_axum::routes!` when [`documenting`], else the same routes
/// without their descriptions. Handlers are named bare (`run_process`,
/// several per call) or as `module::handler` (one per call).
macro_rules! routes {
    ($module:ident :: $handler:ident) => {
        if $crate::http::doc::documenting() {
            ::utoipa_axum::routes!($module::$handler)
        } else {
            ::paste::paste! {
                $crate::http::doc::routes!(@bare $module::[<__path_ $handler>] => $module::$handler)
            }
        }
    };
    ($($handler:ident),+ $(,)?) => {
        if $crate::http::doc::documenting() {
            ::utoipa_axum::routes!($($handler),+)
        } else {
            ::paste::paste! {
                $crate::http::doc::routes!(@bare $([<__path_ $handler>] => $handler),+)
            }
        }
    };
    (@bare $($described:path => $handler:path),+) => {{
        use ::utoipa::Path as _;
        use ::utoipa_axum::PathItemExt as _;
        let mut paths = ::utoipa::openapi::path::Paths::new();
        let mut router = ::axum::routing::MethodRouter::new();
        $(
            let methods = <$described>::methods();
            for method in &methods {
                router = router.on(method.to_method_filter(), $handler);
            }
            paths.add_path_operation(
                <$described>::path(),
                methods,
                ::utoipa::openapi::path::Operation::new(),
            );
        )+
        let schemas: Vec<(
            String,
            ::utoipa::openapi::RefOr<::utoipa::openapi::schema::Schema>,
        )> = Vec::new();
        (schemas, paths, router)
    }};
}
pub(crate) use routes;

/// The agent's routes as the modules add them: a plain axum router when
/// serving, utoipa-axum's [`OpenApiRouter`] when [`documenting`]. Each
/// module adds its routes to the one builder, so a serving router is built
/// in one pass: no per-module routers merged (which inserts every route
/// again), and no OpenAPI paths collected and merged for nobody.
pub enum Routes {
    /// Serving: the routes alone (and, in tests, their bare paths, to check
    /// them against the document's).
    Serving {
        /// The routes.
        router: Router<AppState>,
        /// Their paths and methods, without descriptions.
        #[cfg(test)]
        paths: utoipa::openapi::path::Paths,
    },
    /// Documenting: the routes and their descriptions.
    Documenting(Box<OpenApiRouter<AppState>>),
}

impl Routes {
    /// No routes yet; documenting if [`documenting`], over `doc`'s
    /// top-level metadata.
    pub fn new(doc: impl FnOnce() -> OpenApi) -> Self {
        if documenting() {
            Routes::Documenting(Box::new(OpenApiRouter::with_openapi(doc())))
        } else {
            Routes::Serving {
                router: Router::new(),
                #[cfg(test)]
                paths: Default::default(),
            }
        }
    }

    /// Adds the routes of one [`routes!`] call.
    pub fn routes(self, routes: UtoipaMethodRouter<AppState>) -> Self {
        match self {
            Routes::Documenting(router) => Routes::Documenting(Box::new(router.routes(routes))),
            Routes::Serving {
                router,
                #[cfg(test)]
                    paths: mut all,
            } => {
                let (_, paths, method_router) = routes;
                let router = paths.paths.keys().fold(router, |router, path| {
                    router.route(path, method_router.clone())
                });
                #[cfg(test)]
                all.merge(paths);
                Routes::Serving {
                    router,
                    #[cfg(test)]
                    paths: all,
                }
            }
        }
    }

    /// The router, and its document (empty unless documenting; in tests,
    /// the bare paths and methods when serving).
    pub fn split(self) -> (Router<AppState>, OpenApi) {
        match self {
            Routes::Serving {
                router,
                #[cfg(test)]
                paths,
            } => {
                #[cfg(not(test))]
                let api = OpenApi::default();
                #[cfg(test)]
                let api = {
                    let mut api = OpenApi::default();
                    api.paths = paths;
                    api
                };
                (router, api)
            }
            Routes::Documenting(router) => router.split_for_parts(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use utoipa::openapi::OpenApi;

    use crate::{AgentConfig, AppState};

    /// Every (path, method) of a document.
    fn operations(api: &OpenApi) -> BTreeSet<(String, &'static str)> {
        let mut all = BTreeSet::new();
        for (path, item) in &api.paths.paths {
            let methods = [
                ("get", &item.get),
                ("put", &item.put),
                ("post", &item.post),
                ("delete", &item.delete),
                ("options", &item.options),
                ("head", &item.head),
                ("patch", &item.patch),
                ("trace", &item.trace),
            ];
            for (method, operation) in methods {
                if operation.is_some() {
                    all.insert((path.clone(), method));
                }
            }
        }
        all
    }

    #[tokio::test]
    async fn the_router_serves_what_the_document_describes_without_building_it() {
        let state = AppState::new(AgentConfig::for_tests("/"));
        let (_, bare) = super::super::parts(state.clone());
        let (_, full) = super::documented(|| super::super::parts(state));
        assert!(
            !super::documenting(),
            "documented() turns the flag off again"
        );
        let served = operations(&bare);
        assert!(served.len() > 50, "only {} routes", served.len());
        assert_eq!(served, operations(&full));
        // The serving router's copy carries no descriptions and no schemas;
        // the document has both.
        let described = |api: &OpenApi| {
            api.paths
                .paths
                .values()
                .filter_map(|item| item.get.as_ref().or(item.post.as_ref()))
                .filter(|op| op.operation_id.is_some())
                .count()
        };
        assert_eq!(described(&bare), 0);
        assert!(described(&full) > 50);
        assert!(bare.components.is_none_or(|c| c.schemas.is_empty()));
        assert!(full.components.is_some_and(|c| c.schemas.len() > 20));
    }

    /// Every path of the document is routed by the serving router: asked
    /// with a method none of its routes has, each answers 405 (a path the
    /// router lacks would answer 404). No handler runs.
    #[tokio::test]
    async fn the_serving_router_routes_every_documented_path() {
        use tower::ServiceExt;
        let state = AppState::new(AgentConfig::for_tests("/"));
        let router = super::super::router(state.clone());
        let (_, full) = super::documented(|| super::super::parts(state));
        assert!(full.paths.paths.len() > 40);
        for path in full.paths.paths.keys() {
            // `{name}` parameters become a plain segment.
            let uri: String = path
                .split('/')
                .map(|seg| if seg.starts_with('{') { "x" } else { seg })
                .collect::<Vec<_>>()
                .join("/");
            let req = axum::http::Request::builder()
                .method("TRACE")
                .uri(&uri)
                .body(axum::body::Body::empty())
                .unwrap();
            let status = router.clone().oneshot(req).await.unwrap().status();
            assert_eq!(status, 405, "TRACE {uri} ({path})");
        }
    }
}
