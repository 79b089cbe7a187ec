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
}
