//! axum extractors whose rejections are [`Problem`]s (feature `axum`).
//!
//! axum's own `Json` and `Query` answer bad input with plain-text bodies;
//! these wrappers answer with `400 invalid_request` (or `413
//! payload_too_large`, `415 unsupported_media_type`) problem documents so that
//! every error a client sees has the same shape.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{ErrorCode, Problem};

/// A JSON body; rejections become problems.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

fn json_rejection(rejection: JsonRejection) -> Problem {
    match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => {
            Problem::new(ErrorCode::PayloadTooLarge, "request body is too large")
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => Problem::new(
            ErrorCode::UnsupportedMediaType,
            "expected a body with Content-Type: application/json",
        ),
        _ => Problem::invalid(rejection.body_text()),
    }
}

/// Query parameters; rejections become problems.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Query(v)),
            Err(rejection) => Err(query_rejection(rejection)),
        }
    }
}

fn query_rejection(rejection: QueryRejection) -> Problem {
    Problem::invalid(rejection.body_text())
}

/// Fallback handler: an unknown route answers `404 not_found` as a problem.
pub async fn not_found() -> Problem {
    Problem::new(ErrorCode::NotFound, "no such route")
}
