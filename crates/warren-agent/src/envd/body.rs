//! Every envd request body is read to its end before the answer goes out.
//!
//! A handler may stop reading early: multipart parsing ends at the closing
//! boundary, before the body's own end (a chunked body's terminator, which
//! the JS SDK's fetch writes on its own); a gzip stream ends before its
//! transport does; an error answers at once. hyper then closes the
//! connection after the answer, and when it had already sent that answer's
//! head as keep-alive, the server's pooled client reuses a connection that
//! is about to close and its next request fails. So the handler gets the
//! body through a [`Shared`] handle; once it answers, what it left unread is
//! drained here (at most [`MAX_DRAIN`] bytes, for at most [`DRAIN_TIME`]).
//! A body still not at its end, or still held by the handler, gets the
//! answer `Connection: close`, so that the client never reuses the
//! connection.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body as _, Frame, SizeHint};

/// Most bytes drained after the handler answered.
pub const MAX_DRAIN: usize = 64 * 1024;
/// Longest wait for the rest of a body after the handler answered.
pub const DRAIN_TIME: Duration = Duration::from_secs(1);

/// The request body, left here when the handler drops its [`Shared`].
#[derive(Default)]
struct Slot {
    body: Option<Body>,
    /// The body reached its end.
    ended: bool,
}

/// The handler's view of a body whose rest the middleware can drain.
struct Shared(Arc<Mutex<Slot>>);

impl hyper::body::Body for Shared {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let Some(body) = slot.body.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(body).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            slot.ended = true;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        let slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        slot.ended || slot.body.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        let slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        slot.body
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), |b| b.size_hint())
    }
}

/// Middleware: reads what the handler left of the body before its answer
/// goes out, or makes the answer close the connection.
pub async fn whole_body(req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    if body.is_end_stream() {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let slot = Arc::new(Mutex::new(Slot {
        body: Some(body),
        ended: false,
    }));
    let handed = Body::new(Shared(slot.clone()));
    let mut response = next.run(Request::from_parts(parts, handed)).await;
    if !drain(&slot).await {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Reads the rest of the body when the handler let go of it; whether it is
/// now read to its end.
async fn drain(slot: &Arc<Mutex<Slot>>) -> bool {
    if Arc::strong_count(slot) > 1 {
        // The handler still reads it (its answer streams): not ours.
        return false;
    }
    let mut body = {
        let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
        if slot.ended {
            return true;
        }
        match slot.body.take() {
            Some(body) => body,
            None => return true,
        }
    };
    let read = async {
        let mut drained = 0usize;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { return false };
            if let Some(data) = frame.data_ref() {
                drained += data.len();
                if drained > MAX_DRAIN {
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
