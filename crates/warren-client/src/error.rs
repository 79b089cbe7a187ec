//! The client's error type: a problem the server answered with, or a
//! failure to reach it or understand it.

use warren_api::ErrorCode;

/// Everything a call of this crate can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with an RFC 7807 problem.
    #[error("{code}: {detail}")]
    Api {
        /// The stable problem code (`sandbox_not_found`, ...).
        code: ErrorCode,
        /// The HTTP status.
        status: u16,
        /// What went wrong, in words.
        detail: String,
    },
    /// The server answered with an error that is not a problem body (a
    /// proxy in between, or not a Warren server at all).
    #[error("HTTP {status} from the server: {body}")]
    UnexpectedStatus {
        /// The HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// The request could not be sent or its answer not read.
    #[error("request failed: {0}")]
    Transport(#[from] reqwest::Error),
    /// The WebSocket of a PTY failed.
    #[error("WebSocket failed: {0}")]
    WebSocket(Box<tokio_tungstenite::tungstenite::Error>),
    /// A body or event was not the JSON this client expects.
    #[error("decoding the server's answer: {0}")]
    Decode(#[from] serde_json::Error),
    /// Output data marked base64 was not base64.
    #[error("decoding base64 output: {0}")]
    Base64(#[from] base64::DecodeError),
    /// The config file exists but could not be read or parsed.
    #[error("reading {path}: {reason}")]
    ConfigFile {
        /// The file.
        path: String,
        /// Why it failed.
        reason: String,
    },
    /// The server URL is not an `http://` or `https://` URL.
    #[error("invalid server URL {0:?}: it must start with http:// or https://")]
    InvalidUrl(String),
    /// An output stream broke and reconnecting from its cursor kept failing.
    #[error("the stream of {0} kept breaking")]
    StreamBroken(String),
}

impl Error {
    /// The problem code, when the server answered with a problem.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Api { code, .. } => Some(*code),
            _ => None,
        }
    }
}

impl From<tokio_tungstenite::tungstenite::Error> for Error {
    fn from(e: tokio_tungstenite::tungstenite::Error) -> Error {
        Error::WebSocket(Box::new(e))
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
