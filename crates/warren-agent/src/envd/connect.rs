//! The Connect RPC protocol with the JSON codec, as E2B's SDKs speak it
//! (`@connectrpc/connect-web` with `useBinaryFormat: false`, and the Python
//! SDK's `connectrpc` with its JSON codec).
//!
//! - Unary: the request body is one JSON message (`application/json`); the
//!   answer is one JSON message with 200, or a Connect error body
//!   `{"code": "not_found", "message": ...}` with the code's HTTP status.
//! - Streaming (`application/connect+json`): each message is an envelope,
//!   one flag byte, a 4-byte big-endian length, then the JSON. A server
//!   stream ends with an envelope flagged [`END_STREAM`] carrying `{}` or
//!   `{"error": {...}}`; errors of streaming calls travel there, under 200.
//! - `Connect-Timeout-Ms` bounds a call; E2B's `Keepalive-Ping-Interval`
//!   (seconds) asks for a keepalive message at that interval.

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};
use futures::StreamExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use warren_api::ErrorCode;

use crate::AgentError;

/// Flag of the envelope that ends a stream.
pub const END_STREAM: u8 = 0x02;
/// Flag of a compressed envelope (refused: the SDKs never compress).
const COMPRESSED: u8 = 0x01;

/// Content type of unary messages.
pub const UNARY_JSON: &str = "application/json";
/// Content type of streams.
pub const STREAM_JSON: &str = "application/connect+json";

/// Header of E2B's keepalive interval, in seconds.
const KEEPALIVE_HEADER: &str = "keepalive-ping-interval";
/// Header of the call's deadline, in milliseconds.
const TIMEOUT_HEADER: &str = "connect-timeout-ms";
/// Keepalive interval when the client names none (envd's).
const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(90);
/// Shortest keepalive interval honoured (a client cannot make us spin).
const MIN_KEEPALIVE: Duration = Duration::from_secs(1);
/// Longest keepalive interval honoured.
const MAX_KEEPALIVE: Duration = Duration::from_secs(3600);

/// Connect's error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// The call was cancelled.
    Canceled,
    /// Unknown error.
    Unknown,
    /// Bad arguments.
    InvalidArgument,
    /// The deadline passed.
    DeadlineExceeded,
    /// Not found.
    NotFound,
    /// Already exists.
    AlreadyExists,
    /// Not allowed.
    PermissionDenied,
    /// A limit was reached.
    ResourceExhausted,
    /// The system is not in the state the call needs.
    FailedPrecondition,
    /// No such method.
    Unimplemented,
    /// Our failure.
    Internal,
    /// Not available now.
    Unavailable,
    /// Unknown caller.
    Unauthenticated,
}

impl Code {
    /// The code's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Code::Canceled => "canceled",
            Code::Unknown => "unknown",
            Code::InvalidArgument => "invalid_argument",
            Code::DeadlineExceeded => "deadline_exceeded",
            Code::NotFound => "not_found",
            Code::AlreadyExists => "already_exists",
            Code::PermissionDenied => "permission_denied",
            Code::ResourceExhausted => "resource_exhausted",
            Code::FailedPrecondition => "failed_precondition",
            Code::Unimplemented => "unimplemented",
            Code::Internal => "internal",
            Code::Unavailable => "unavailable",
            Code::Unauthenticated => "unauthenticated",
        }
    }

    /// The HTTP status of a unary error with this code (Connect's table).
    pub fn status(self) -> StatusCode {
        match self {
            Code::Canceled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
            Code::Unknown | Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Code::InvalidArgument | Code::FailedPrecondition => StatusCode::BAD_REQUEST,
            Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::AlreadyExists => StatusCode::CONFLICT,
            Code::PermissionDenied => StatusCode::FORBIDDEN,
            Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        }
    }

    /// The Connect code of a Warren problem code.
    pub fn of(code: ErrorCode) -> Code {
        match code {
            ErrorCode::InvalidRequest
            | ErrorCode::IsADirectory
            | ErrorCode::NotADirectory
            | ErrorCode::InvalidTranscript
            | ErrorCode::UnsupportedMediaType
            | ErrorCode::RangeNotSatisfiable => Code::InvalidArgument,
            ErrorCode::NotFound
            | ErrorCode::ProcessNotFound
            | ErrorCode::ProcessNotRunning
            | ErrorCode::FileNotFound
            | ErrorCode::SessionNotFound
            | ErrorCode::RequestNotFound
            | ErrorCode::AgentNotFound => Code::NotFound,
            ErrorCode::AlreadyExists => Code::AlreadyExists,
            ErrorCode::Forbidden | ErrorCode::PathNotAllowed => Code::PermissionDenied,
            ErrorCode::Unauthorized => Code::PermissionDenied,
            ErrorCode::TooManyRequests
            | ErrorCode::QuotaExceeded
            | ErrorCode::PayloadTooLarge
            | ErrorCode::InsufficientStorage => Code::ResourceExhausted,
            ErrorCode::Conflict
            | ErrorCode::EditConflict
            | ErrorCode::DirectoryNotEmpty
            | ErrorCode::SessionEnded
            | ErrorCode::AgentNotInstalled => Code::FailedPrecondition,
            ErrorCode::Timeout => Code::DeadlineExceeded,
            ErrorCode::Unavailable | ErrorCode::PortUnreachable => Code::Unavailable,
            ErrorCode::MethodNotAllowed => Code::Unimplemented,
            _ => Code::Internal,
        }
    }
}

/// A Connect error: a code and a message.
#[derive(Debug, Clone)]
pub struct RpcError {
    /// Its code.
    pub code: Code,
    /// What went wrong.
    pub message: String,
}

impl RpcError {
    /// An error with this code and message.
    pub fn new(code: Code, message: impl Into<String>) -> RpcError {
        RpcError {
            code,
            message: message.into(),
        }
    }

    /// `invalid_argument`.
    pub fn invalid(message: impl Into<String>) -> RpcError {
        RpcError::new(Code::InvalidArgument, message)
    }

    /// The error as Connect's JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "code": self.code.name(), "message": self.message })
    }
}

impl From<AgentError> for RpcError {
    fn from(err: AgentError) -> RpcError {
        let code = Code::of(err.code());
        if code == Code::Internal {
            tracing::error!(error = %err, "envd: internal error");
            RpcError::new(code, "the sandbox failed to complete the operation")
        } else {
            RpcError::new(code, err.to_string())
        }
    }
}

impl IntoResponse for RpcError {
    fn into_response(self) -> Response {
        let body = self.to_json().to_string();
        (
            self.code.status(),
            [(header::CONTENT_TYPE, UNARY_JSON)],
            body,
        )
            .into_response()
    }
}

/// A unary answer.
pub fn unary<T: Serialize>(result: Result<T, RpcError>) -> Response {
    match result.and_then(|value| {
        serde_json::to_string(&value)
            .map_err(|e| RpcError::new(Code::Internal, format!("encoding the answer: {e}")))
    }) {
        Ok(json) => (StatusCode::OK, [(header::CONTENT_TYPE, UNARY_JSON)], json).into_response(),
        Err(err) => err.into_response(),
    }
}

/// Decodes a unary request body (an empty body is the empty message).
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, RpcError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        &b"{}"[..]
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| RpcError::invalid(format!("invalid request: {e}")))
}

/// One envelope.
pub fn envelope(flags: u8, payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(5 + payload.len());
    out.put_u8(flags);
    out.put_u32(payload.len() as u32);
    out.put_slice(payload);
    out.freeze()
}

/// The envelope of one message of a stream.
pub fn message<T: Serialize>(value: &T) -> Bytes {
    envelope(
        0,
        &serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec()),
    )
}

/// The envelope that ends a stream, with its error if any.
pub fn end_stream(error: Option<&RpcError>) -> Bytes {
    let body = match error {
        Some(err) => serde_json::json!({ "error": err.to_json() }),
        None => serde_json::json!({}),
    };
    envelope(END_STREAM, body.to_string().as_bytes())
}

/// Reads enveloped messages from a request body, each at most `limit` bytes.
pub struct Envelopes {
    body: axum::body::BodyDataStream,
    buf: BytesMut,
    limit: usize,
}

impl Envelopes {
    /// A reader of `body`.
    pub fn new(body: Body, limit: usize) -> Envelopes {
        Envelopes {
            body: body.into_data_stream(),
            buf: BytesMut::new(),
            limit,
        }
    }

    /// The next message; `Ok(None)` at the end of the body.
    pub async fn next<T: DeserializeOwned>(&mut self) -> Result<Option<T>, RpcError> {
        loop {
            if self.buf.len() >= 5 {
                let flags = self.buf[0];
                let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]])
                    as usize;
                if len > self.limit {
                    return Err(RpcError::new(
                        Code::ResourceExhausted,
                        format!("message of {len} bytes is over the limit of {}", self.limit),
                    ));
                }
                if flags & COMPRESSED != 0 {
                    return Err(RpcError::new(
                        Code::Unimplemented,
                        "compressed messages are not supported",
                    ));
                }
                if self.buf.len() >= 5 + len {
                    let frame = self.buf.split_to(5 + len);
                    if flags & END_STREAM != 0 {
                        return Ok(None);
                    }
                    return decode(&frame[5..]).map(Some);
                }
            }
            match self.body.next().await {
                Some(Ok(chunk)) => self.buf.extend_from_slice(&chunk),
                Some(Err(e)) => {
                    return Err(RpcError::new(
                        Code::Canceled,
                        format!("reading the request: {e}"),
                    ))
                }
                None if self.buf.is_empty() => return Ok(None),
                None => return Err(RpcError::invalid("the request ends inside a message")),
            }
        }
    }

    /// The single message of a server-streaming call.
    pub async fn single<T: DeserializeOwned>(mut self) -> Result<T, RpcError> {
        self.next()
            .await?
            .ok_or_else(|| RpcError::invalid("the request carries no message"))
    }
}

/// The sending half of a streamed answer; dropping it ends the body.
pub struct StreamTx(mpsc::Sender<Bytes>);

impl StreamTx {
    /// Sends a message; `false` once the client has gone.
    pub async fn send<T: Serialize>(&self, value: &T) -> bool {
        self.0.send(message(value)).await.is_ok()
    }

    /// Ends the stream, with an error or without.
    pub async fn end(self, error: Option<RpcError>) {
        let _ = self.0.send(end_stream(error.as_ref())).await;
    }

    /// Resolves when the client has gone.
    pub async fn closed(&self) {
        self.0.closed().await
    }
}

/// A streamed answer and the sender that feeds it.
pub fn stream() -> (StreamTx, Response) {
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let body = Body::from_stream(ReceiverStream::new(rx).map(Ok::<_, std::convert::Infallible>));
    let response = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, STREAM_JSON)
        .body(body)
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
    (StreamTx(tx), response)
}

/// A stream that only carries an error.
pub fn stream_error(error: RpcError) -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, STREAM_JSON)
        .body(Body::from(end_stream(Some(&error))))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// The keepalive interval the client asked for, within bounds, or envd's
/// default.
pub fn keepalive(headers: &HeaderMap) -> Option<Duration> {
    let asked = headers
        .get(KEEPALIVE_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_KEEPALIVE);
    Some(asked.clamp(MIN_KEEPALIVE, MAX_KEEPALIVE))
}

/// The call's deadline (`Connect-Timeout-Ms`), if any and positive.
pub fn timeout(headers: &HeaderMap) -> Option<Duration> {
    let ms: u64 = headers
        .get(TIMEOUT_HEADER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    (ms > 0).then(|| Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn envelopes_round_trip() {
        let mut body = envelope(0, br#"{"a":1}"#).to_vec();
        body.extend_from_slice(&envelope(0, b"{}"));
        body.extend_from_slice(&end_stream(None));
        // Delivered one byte at a time, as a slow client would.
        let chunks: Vec<Result<Bytes, std::io::Error>> = body
            .iter()
            .map(|b| Ok(Bytes::copy_from_slice(&[*b])))
            .collect();
        let body = Body::from_stream(futures::stream::iter(chunks));
        let mut reader = Envelopes::new(body, 1024);
        let first: serde_json::Value = reader.next().await.unwrap().unwrap();
        assert_eq!(first["a"], 1);
        let second: serde_json::Value = reader.next().await.unwrap().unwrap();
        assert_eq!(second, serde_json::json!({}));
        assert!(reader.next::<serde_json::Value>().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn oversized_messages_are_refused() {
        let body = Body::from(envelope(0, &[b' '; 100]));
        let err = Envelopes::new(body, 10)
            .next::<serde_json::Value>()
            .await
            .unwrap_err();
        assert_eq!(err.code, Code::ResourceExhausted);
    }

    #[test]
    fn end_stream_carries_the_error() {
        let end = end_stream(Some(&RpcError::new(Code::NotFound, "gone")));
        assert_eq!(end[0], END_STREAM);
        let json: serde_json::Value = serde_json::from_slice(&end[5..]).unwrap();
        assert_eq!(json["error"]["code"], "not_found");
        assert_eq!(Code::NotFound.status(), StatusCode::NOT_FOUND);
    }
}
