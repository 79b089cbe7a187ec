//! A key carried by `Sec-WebSocket-Protocol`, for browsers: their
//! WebSocket API can set no header, and a key in a URL ends up in logs and
//! history. The client offers two subprotocols,
//! `warren.v1, warren.key.<base64url(key), no padding>`; the server takes
//! the key from the second, never forwards it to the sandbox, and answers
//! `Sec-WebSocket-Protocol: warren.v1` (a browser fails the handshake
//! unless the server picks one of the protocols it offered).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http::header::SEC_WEBSOCKET_PROTOCOL;
use http::{HeaderMap, HeaderValue};

/// The subprotocol the server answers with.
pub const PROTOCOL: &str = "warren.v1";
/// Prefix of the credential subprotocol.
pub const KEY_PREFIX: &str = "warren.key.";

/// The offered subprotocols, trimmed.
fn offered(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
}

/// The key of an offered `warren.key.<base64url>` protocol, if any.
pub fn key(headers: &HeaderMap) -> Option<String> {
    let encoded = offered(headers).find_map(|p| p.strip_prefix(KEY_PREFIX))?;
    let bytes = URL_SAFE_NO_PAD.decode(encoded.trim_end_matches('=')).ok()?;
    String::from_utf8(bytes).ok()
}

/// Removes the credentials (keys and live-view tokens) from the offered protocols (before the request is
/// forwarded); returns whether the client offered [`PROTOCOL`], i.e. whether
/// the answer must name it.
pub fn strip(headers: &mut HeaderMap) -> bool {
    let kept: Vec<String> = offered(headers)
        .filter(|p| {
            !p.is_empty()
                && !p.starts_with(KEY_PREFIX)
                && !p.starts_with(super::stream_token::PROTOCOL_PREFIX)
        })
        .map(str::to_string)
        .collect();
    let wants_ours = kept.iter().any(|p| p == PROTOCOL);
    headers.remove(SEC_WEBSOCKET_PROTOCOL);
    let others: Vec<&str> = kept
        .iter()
        .map(String::as_str)
        .filter(|p| *p != PROTOCOL)
        .collect();
    if !others.is_empty() {
        if let Ok(value) = HeaderValue::from_str(&others.join(", ")) {
            headers.insert(SEC_WEBSOCKET_PROTOCOL, value);
        }
    }
    wants_ours
}

/// Names [`PROTOCOL`] in a `101` answer that named no protocol.
pub fn answer(headers: &mut HeaderMap) {
    if !headers.contains_key(SEC_WEBSOCKET_PROTOCOL) {
        headers.insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(PROTOCOL));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_read_and_never_forwarded() {
        let mut headers = HeaderMap::new();
        let encoded = URL_SAFE_NO_PAD.encode("wr_secret+/=");
        headers.insert(
            SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_str(&format!("warren.v1, {KEY_PREFIX}{encoded}")).unwrap(),
        );
        assert_eq!(key(&headers).as_deref(), Some("wr_secret+/="));
        assert!(strip(&mut headers));
        assert!(headers.get(SEC_WEBSOCKET_PROTOCOL).is_none());
    }

    #[test]
    fn other_protocols_pass_through() {
        let mut headers = HeaderMap::new();
        headers.insert(
            SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("chat, warren.key.eA, warren.token.x.y"),
        );
        assert!(!strip(&mut headers));
        assert_eq!(headers.get(SEC_WEBSOCKET_PROTOCOL).unwrap(), "chat");
        assert!(key(&HeaderMap::new()).is_none());
    }
}
