//! Refusals that reach the client: a request refused before its body was
//! read (no key, not the admin key, no such sandbox, a body over the limit)
//! has the rest of its body read and dropped before the refusal is sent, up
//! to [`DRAIN_MAX`] bytes within [`DRAIN_TIME`].
//!
//! Without it, the server answers and closes a connection with unread data
//! in it, the kernel resets it, and a client still sending its upload (most
//! send the whole body before they read the answer) sees a broken pipe or a
//! reset instead of the 401, 403 or 404 that says what was wrong. A body
//! larger than the bound still ends in a reset; so does nothing else
//! (nginx's "lingering close" is the same idea). A client that sent
//! `Expect: 100-continue` and was refused before its body was asked for
//! never sent it: nothing is read, so the refusal is not turned into an
//! invitation to upload.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;

/// Most bytes of a refused request's body read to deliver the refusal.
pub const DRAIN_MAX: u64 = 64 << 20;

/// Longest a refusal waits for the rest of its request's body.
pub const DRAIN_TIME: Duration = Duration::from_secs(10);

/// Middleware: see the module's documentation.
pub async fn drain_refused_body(req: Request, next: Next) -> Response {
    let expects_continue = req
        .headers()
        .get(http::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let left = Arc::new(Left::default());
    let req = req.map(|body| {
        Body::new(Tracked {
            inner: Some(body),
            left: left.clone(),
        })
    });
    let mut response = next.run(req).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let rest = left.rest.lock().expect("drain lock").take();
    let Some(rest) = rest else {
        return response;
    };
    if expects_continue && !left.polled.load(Ordering::Relaxed) {
        return response;
    }
    if !drain(rest).await {
        // Not read to its end: the connection carries no other request.
        response.headers_mut().insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("close"),
        );
    }
    response
}

/// Reads `body` to its end, within the bounds; whether it got there.
async fn drain(mut body: Body) -> bool {
    let read = async {
        let mut seen = 0u64;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { return false };
            if let Some(data) = frame.data_ref() {
                seen += data.len() as u64;
                if seen > DRAIN_MAX {
                    return false;
                }
            }
        }
        true
    };
    tokio::time::timeout(DRAIN_TIME, read)
        .await
        .unwrap_or(false)
}

/// What a handler left of its request's body.
#[derive(Default)]
struct Left {
    /// The unread rest, put here when the body is dropped before its end.
    rest: Mutex<Option<Body>>,
    /// Whether anything asked for the body.
    polled: AtomicBool,
}

/// A request body that hands what is left of it to [`Left`] when dropped
/// unfinished.
struct Tracked {
    inner: Option<Body>,
    left: Arc<Left>,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        self.left.polled.store(true, Ordering::Relaxed);
        match self.inner.as_mut() {
            Some(inner) => Pin::new(inner).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), |b| b.size_hint())
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            if !http_body::Body::is_end_stream(&inner) {
                *self.left.rest.lock().expect("drain lock") = Some(inner);
            }
        }
    }
}
