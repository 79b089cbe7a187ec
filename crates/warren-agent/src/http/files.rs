//! `/v1/files` routes.

use utoipa_axum::router::OpenApiRouter;

use crate::AppState;

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
}
