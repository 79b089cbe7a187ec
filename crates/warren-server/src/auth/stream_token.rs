//! Live-view tokens: what a shareable desktop URL carries instead of a key.
//!
//! A token names one sandbox, the caller who minted it (a tenant, or the
//! admin), whether it can only watch, and when it expires, signed with
//! HMAC-SHA256 under the server's secret (`TokenKey`, domain-separated from
//! envd's tokens). It opens exactly one route, the sandbox's
//! `desktop/stream` WebSocket, offered as the subprotocol
//! `warren.token.<token>`; a view-only token forces `view_only=true`.
//! Nothing is stored: tokens survive restarts and cannot be revoked before
//! their expiry (at most a day).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use subtle::ConstantTimeEq;

use super::Caller;
use crate::e2b::token::TokenKey;

/// Prefix of the credential subprotocol.
pub const PROTOCOL_PREFIX: &str = "warren.token.";
/// The longest validity a token may be given, in seconds.
pub const MAX_TTL: u64 = 86_400;
/// The HMAC's domain.
const DOMAIN: &[u8] = b"warren-desktop-stream-v1:";
/// Tenant field of an admin's token.
const ADMIN: &str = "-";

/// What a valid token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The caller the stream is opened as.
    pub caller: Caller,
    /// Whether the stream must be view-only.
    pub view_only: bool,
}

/// Why a token was refused (each a `401 unauthorized`; the text says which).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token, or its signature does not match.
    #[error("invalid live-view token")]
    Invalid,
    /// A token of another sandbox.
    #[error("the live-view token is for another sandbox")]
    OtherSandbox,
    /// Past its expiry.
    #[error("the live-view token has expired")]
    Expired,
}

/// Mints and checks tokens; cheap to clone.
#[derive(Clone, Debug)]
pub struct StreamTokens {
    key: TokenKey,
}

impl StreamTokens {
    /// Tokens signed under `key`.
    pub fn new(key: TokenKey) -> Self {
        StreamTokens { key }
    }

    /// A token for `sandbox`'s stream opened as `caller`, valid until
    /// `expires` (seconds since the epoch).
    pub fn mint(&self, sandbox: &str, caller: &Caller, view_only: bool, expires: u64) -> String {
        let tenant = caller.tenant().unwrap_or(ADMIN);
        let payload = format!("{sandbox}|{tenant}|{}|{expires}", u8::from(view_only));
        let mac = self.key.sign(DOMAIN, payload.as_bytes());
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(mac)
        )
    }

    /// Checks `token` for `sandbox` at `now` (seconds since the epoch).
    pub fn verify(&self, token: &str, sandbox: &str, now: u64) -> Result<Grant, TokenError> {
        let (payload, mac) = token.split_once('.').ok_or(TokenError::Invalid)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| TokenError::Invalid)?;
        let mac = URL_SAFE_NO_PAD
            .decode(mac)
            .map_err(|_| TokenError::Invalid)?;
        let expected = self.key.sign(DOMAIN, &payload);
        if !bool::from(expected.as_slice().ct_eq(&mac)) {
            return Err(TokenError::Invalid);
        }
        let payload = String::from_utf8(payload).map_err(|_| TokenError::Invalid)?;
        let fields: Vec<&str> = payload.split('|').collect();
        let [id, tenant, view_only, expires] = fields.as_slice() else {
            return Err(TokenError::Invalid);
        };
        if *id != sandbox {
            return Err(TokenError::OtherSandbox);
        }
        let expires: u64 = expires.parse().map_err(|_| TokenError::Invalid)?;
        if now >= expires {
            return Err(TokenError::Expired);
        }
        Ok(Grant {
            caller: if *tenant == ADMIN {
                Caller::Admin
            } else {
                Caller::Tenant((*tenant).to_string())
            },
            view_only: *view_only == "1",
        })
    }
}

/// The sandbox whose stream `path` is, if it is exactly a stream route
/// (`/v1/sandboxes/{id}/desktop/stream`).
pub fn stream_sandbox(path: &str) -> Option<&str> {
    let id = path
        .strip_prefix("/v1/sandboxes/")?
        .strip_suffix("/desktop/stream")?;
    (!id.is_empty() && !id.contains('/')).then_some(id)
}

/// The token of an offered `warren.token.<token>` subprotocol, if any.
pub fn offered(headers: &http::HeaderMap) -> Option<&str> {
    headers
        .get_all(http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| p.trim().strip_prefix(PROTOCOL_PREFIX))
}

/// `query` with `view_only=true` in place of any `view_only` it had.
pub fn force_view_only(query: Option<&str>) -> String {
    let kept = query.map(|q| crate::params::without(q, "view_only"));
    match kept.as_deref() {
        Some(kept) if !kept.is_empty() => format!("{kept}&view_only=true"),
        _ => "view_only=true".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> StreamTokens {
        StreamTokens::new(TokenKey::from_secret(b"secret"))
    }

    #[test]
    fn a_token_opens_its_sandbox_until_it_expires() {
        let t = tokens();
        let tenant = Caller::Tenant("ten_a".into());
        let token = t.mint("sbx_a", &tenant, false, 100);
        let grant = t.verify(&token, "sbx_a", 99).unwrap();
        assert_eq!(grant.caller, tenant);
        assert!(!grant.view_only);
        assert_eq!(t.verify(&token, "sbx_a", 100), Err(TokenError::Expired));
        assert_eq!(t.verify(&token, "sbx_b", 99), Err(TokenError::OtherSandbox));
        let admin = t.mint("sbx_a", &Caller::Admin, true, 100);
        let grant = t.verify(&admin, "sbx_a", 0).unwrap();
        assert_eq!(grant.caller, Caller::Admin);
        assert!(grant.view_only);
    }

    #[test]
    fn tampered_and_foreign_tokens_are_refused() {
        let t = tokens();
        let token = t.mint("sbx_a", &Caller::Tenant("ten_a".into()), true, 100);
        let (payload, mac) = token.split_once('.').unwrap();
        // View-only turned off, expiry pushed out: the signature no longer fits.
        let forged = URL_SAFE_NO_PAD.encode("sbx_a|ten_a|0|999999");
        assert_eq!(
            t.verify(&format!("{forged}.{mac}"), "sbx_a", 0),
            Err(TokenError::Invalid)
        );
        assert_eq!(
            t.verify(&format!("{payload}.AAAA"), "sbx_a", 0),
            Err(TokenError::Invalid)
        );
        assert_eq!(t.verify("garbage", "sbx_a", 0), Err(TokenError::Invalid));
        let other = StreamTokens::new(TokenKey::from_secret(b"other"));
        assert_eq!(other.verify(&token, "sbx_a", 0), Err(TokenError::Invalid));
    }

    #[test]
    fn only_the_stream_route_and_forced_view_only() {
        assert_eq!(
            stream_sandbox("/v1/sandboxes/sbx_a/desktop/stream"),
            Some("sbx_a")
        );
        for path in [
            "/v1/sandboxes/sbx_a/desktop/stream/url",
            "/v1/sandboxes/sbx_a/desktop/screenshot",
            "/v1/sandboxes/sbx_a/x/desktop/stream",
            "/v1/sandboxes//desktop/stream",
        ] {
            assert_eq!(stream_sandbox(path), None, "{path}");
        }
        assert_eq!(force_view_only(None), "view_only=true");
        assert_eq!(
            force_view_only(Some("view_only=false&a=1")),
            "a=1&view_only=true"
        );
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::SEC_WEBSOCKET_PROTOCOL,
            http::HeaderValue::from_static("binary, warren.token.abc.def"),
        );
        assert_eq!(offered(&headers), Some("abc.def"));
    }
}
