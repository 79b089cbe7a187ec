//! `GET` and `PATCH /v1/environment`: the default environment of the
//! processes the agent starts (the server sets a pooled sandbox's `envs`
//! through it when it hands the sandbox to its owner).

use super::doc::{routes, Routes};
use warren_api::agent::Environment;
use warren_api::extract::Json;
use warren_api::Problem;

use crate::config::MAX_ENV_BYTES;
use crate::error::AgentError;
use crate::AppState;

/// Routes of this module.
pub fn routes(into: Routes) -> Routes {
    into.routes(routes!(get_environment, patch_environment))
}

/// The default environment of new processes.
#[utoipa::path(get, path = "/v1/environment", tag = "environment",
    responses((status = 200, description = "The default environment", body = Environment)))]
async fn get_environment(state: axum::extract::State<AppState>) -> Json<Environment> {
    Json(Environment {
        env: (*state.config.env.get()).clone(),
    })
}

/// Sets variables over the default environment of processes started from
/// now on; running processes keep theirs.
#[utoipa::path(patch, path = "/v1/environment", tag = "environment",
    request_body = Environment,
    responses(
        (status = 200, description = "The default environment now", body = Environment),
        (status = 400, description = "A bad variable name or value", body = Problem),
        (status = 413, description = "The environment would exceed its size limit", body = Problem),
    ))]
async fn patch_environment(
    state: axum::extract::State<AppState>,
    Json(req): Json<Environment>,
) -> Result<Json<Environment>, AgentError> {
    for (name, value) in &req.env {
        if name.is_empty() || name.contains(['=', '\0']) || value.contains('\0') {
            return Err(AgentError::InvalidRequest(format!(
                "invalid environment variable {name:?}: names are non-empty without '=' or NUL, values without NUL"
            )));
        }
    }
    let env = state
        .config
        .env
        .try_extend(req.env)
        .map_err(|_| AgentError::TooLarge {
            what: "the default environment",
            limit: MAX_ENV_BYTES as u64,
        })?;
    Ok(Json(Environment {
        env: (*env).clone(),
    }))
}
