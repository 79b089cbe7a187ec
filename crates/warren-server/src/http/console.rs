//! The web console at `/ui`: the files `warren-ui` embedded, with a fallback
//! to `index.html` for every client-side route (a single-page app). No key
//! is needed for these static files; the console asks for one and sends it
//! with each API call.
//!
//! Every answer carries a strict Content-Security-Policy (no inline script
//! or style, nothing from another origin), `nosniff` and `no-referrer`.
//! Hashed assets are cached for a year; `index.html` is revalidated on each
//! load (its ETag makes that a `304`).

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use warren_ui::Asset;

/// The console's Content-Security-Policy.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data: blob:; font-src 'self'; connect-src 'self'; base-uri 'none'; \
    form-action 'self'; frame-ancestors 'none'";

/// `/ui` (redirected to `/ui/`) and everything under it; no key needed.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/ui", get(|| async { Redirect::permanent("/ui/") }))
        .route("/ui/", get(serve))
        .route("/ui/{*path}", get(serve))
}

async fn serve(req: Request) -> Response {
    let path = req.uri().path().strip_prefix("/ui/").unwrap_or("");
    // A missing asset is a 404 (a stale page asking for an old bundle must
    // not get HTML as JavaScript); any other path is a client-side route.
    let asset = match warren_ui::get(path) {
        Some(asset) => asset,
        None if path.starts_with("assets/") => {
            return (StatusCode::NOT_FOUND, secured(), "no such asset").into_response()
        }
        None => warren_ui::index(),
    };
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == asset.etag));
    let mut response = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, asset.content_type)], asset.bytes).into_response()
    };
    let headers = response.headers_mut();
    headers.extend(secured());
    headers.insert(header::ETAG, HeaderValue::from_static(asset.etag));
    headers.insert(header::CACHE_CONTROL, cache_control(asset));
    response
}

/// The security headers every console answer carries.
fn secured() -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers
}

fn cache_control(asset: &Asset) -> HeaderValue {
    HeaderValue::from_static(if asset.hashed {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    })
}
