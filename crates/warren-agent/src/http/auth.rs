//! Bearer-token authentication.
//!
//! Every route but `/v1/health` and `/v1/openapi.json` needs the token, given
//! as `Authorization: Bearer <token>` or, for WebSocket and SSE clients that
//! cannot set headers, `?access_token=<token>`. The comparison is constant
//! time in the token's contents.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use warren_api::{ErrorCode, Problem};

use crate::AppState;

/// Paths anyone may call.
const PUBLIC_PATHS: &[&str] = &["/v1/health", "/v1/openapi.json"];

/// Middleware: rejects requests without the right token with `401 unauthorized`.
pub async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(expected) = state.config.token.as_deref() else {
        return next.run(req).await;
    };
    if PUBLIC_PATHS.contains(&req.uri().path()) {
        return next.run(req).await;
    }
    match presented_token(&req) {
        Some(given) if token_matches(given, expected) => next.run(req).await,
        Some(_) => Problem::new(ErrorCode::Unauthorized, "invalid token").into_response(),
        None => Problem::new(
            ErrorCode::Unauthorized,
            "missing token: send Authorization: Bearer <token> or ?access_token=",
        )
        .into_response(),
    }
}

/// The token from the `Authorization` header, else from `?access_token=`.
pub fn presented_token(req: &Request) -> Option<&str> {
    if let Some(value) = req.headers().get(http::header::AUTHORIZATION) {
        let value = value.to_str().ok()?;
        return value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim);
    }
    let query = req.uri().query()?;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("access_token="))
}

/// Constant-time comparison (length is not secret).
pub fn token_matches(given: &str, expected: &str) -> bool {
    given.as_bytes().ct_eq(expected.as_bytes()).into()
}

/// Adds the `bearer` security scheme to the OpenAPI document.
pub struct SecurityAddon;

impl utoipa::Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_tokens() {
        assert!(token_matches("abc", "abc"));
        assert!(!token_matches("abd", "abc"));
        assert!(!token_matches("ab", "abc"));
        assert!(!token_matches("", "abc"));
    }
}
