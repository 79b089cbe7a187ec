//! Who is calling: the admin key or a tenant's API key.
//!
//! Every route but `/v1/health` and `/v1/openapi.json` needs a key, as
//! `Authorization: Bearer <key>`, `?access_token=<key>`, or (WebSockets from
//! a browser, which can set no header and should not put a key in a URL) a
//! `Sec-WebSocket-Protocol` credential: the client offers
//! `warren.v1, warren.key.<base64url(key)>` and the server answers
//! `warren.v1` (see [`ws_protocol`]). The admin key is compared in constant time; a tenant key
//! is looked up by its SHA-256 (keys are 256 random bits, so a plain hash is
//! as good as a slow one and keeps the hot path cheap). Known keys are cached
//! in memory; revoking one drops it from the cache in the same process that
//! deletes it from the database, so the cache is never stale.
//!
//! One route takes a narrower credential: a sandbox's live view
//! (`desktop/stream`) opens with a signed, expiring token offered as the
//! subprotocol `warren.token.<token>` ([`stream_token`]), the credential of
//! shareable desktop URLs.

pub mod admin_key;
pub mod keys;
pub mod stream_token;
pub mod ws_protocol;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use warren_api::{ErrorCode, Problem};

use crate::store::{Store, StoreError};

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The admin key: sees and manages everything.
    Admin,
    /// A tenant's key: sees only that tenant's sandboxes.
    Tenant(String),
}

impl Caller {
    /// The tenant sandboxes created by this caller belong to (`None`: admin).
    pub fn tenant(&self) -> Option<&str> {
        match self {
            Caller::Admin => None,
            Caller::Tenant(id) => Some(id),
        }
    }

    /// Whether this caller may see a sandbox owned by `owner`.
    pub fn can_see(&self, owner: Option<&str>) -> bool {
        match self {
            Caller::Admin => true,
            Caller::Tenant(id) => owner == Some(id.as_str()),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| Problem::new(ErrorCode::Unauthorized, "missing API key"))
    }
}

/// Extractor for admin-only routes: a tenant key gets `403 forbidden`.
#[derive(Debug, Clone, Copy)]
pub struct AdminOnly;

impl<S: Send + Sync> FromRequestParts<S> for AdminOnly {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Caller::from_request_parts(parts, state).await? {
            Caller::Admin => Ok(AdminOnly),
            Caller::Tenant(_) => Err(Problem::new(
                ErrorCode::Forbidden,
                "this route needs the admin key",
            )),
        }
    }
}

/// A tenant key as cached after its first use.
#[derive(Debug, Clone)]
struct CachedKey {
    key_id: String,
    tenant_id: String,
}

/// Key checks; cheap to clone.
#[derive(Clone)]
pub struct Auth {
    admin_key: Arc<str>,
    store: Store,
    /// SHA-256 of a tenant key → the key. A std lock: held for a map lookup
    /// only, never across an await.
    cache: Arc<RwLock<HashMap<[u8; 32], CachedKey>>>,
    /// Live-view tokens.
    stream: stream_token::StreamTokens,
}

impl Auth {
    /// Checks keys against `admin_key` and the tenant keys in `store`, and
    /// live-view tokens signed with `stream`.
    pub fn new(admin_key: String, store: Store, stream: stream_token::StreamTokens) -> Self {
        Auth {
            admin_key: admin_key.into(),
            store,
            cache: Arc::default(),
            stream,
        }
    }

    /// The live-view tokens.
    pub fn stream_tokens(&self) -> &stream_token::StreamTokens {
        &self.stream
    }

    /// The caller a key stands for, or `None` for an unknown key.
    pub async fn authenticate(&self, token: &str) -> Result<Option<Caller>, StoreError> {
        if bool::from(token.as_bytes().ct_eq(self.admin_key.as_bytes())) {
            return Ok(Some(Caller::Admin));
        }
        let hash = keys::hash(token);
        if let Some(key) = self.cache.read().expect("auth cache lock").get(&hash) {
            return Ok(Some(Caller::Tenant(key.tenant_id.clone())));
        }
        let Some(record) = self.store.key_by_hash(&hash).await? else {
            return Ok(None);
        };
        self.cache.write().expect("auth cache lock").insert(
            hash,
            CachedKey {
                key_id: record.id,
                tenant_id: record.tenant_id.clone(),
            },
        );
        Ok(Some(Caller::Tenant(record.tenant_id)))
    }

    /// Drops a revoked key from the cache.
    pub fn forget_key(&self, key_id: &str) {
        self.cache
            .write()
            .expect("auth cache lock")
            .retain(|_, key| key.key_id != key_id);
    }
}

/// Paths anyone may call.
const PUBLIC_PATHS: &[&str] = &["/v1/health", "/v1/openapi.json"];

/// Middleware: resolves the caller into the request's extensions, or answers
/// `401 unauthorized`.
pub async fn require_key(State(auth): State<Auth>, mut req: Request, next: Next) -> Response {
    if PUBLIC_PATHS.contains(&req.uri().path()) {
        return next.run(req).await;
    }
    let token = presented_token(&req);
    if token.is_none() {
        if let Some(response) = stream_token(&auth, &mut req) {
            return match response {
                Ok(()) => next.run(req).await,
                Err(problem) => problem.into_response(),
            };
        }
    }
    let Some(token) = token else {
        return Problem::new(
            ErrorCode::Unauthorized,
            "missing API key: send Authorization: Bearer <key> or ?access_token=",
        )
        .into_response();
    };
    match auth.authenticate(&token).await {
        Ok(Some(caller)) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Ok(None) => Problem::new(ErrorCode::Unauthorized, "invalid API key").into_response(),
        Err(err) => {
            tracing::error!(error = %err, "checking an API key failed");
            Problem::new(
                ErrorCode::Internal,
                "the server failed to check the API key",
            )
            .into_response()
        }
    }
}

/// A live-view token on its stream route: `None` when there is none (or
/// not on that route), else the grant put in the request (the caller, and
/// `view_only=true` forced into the query of a view-only token) or the
/// `401` that refuses it.
fn stream_token(auth: &Auth, req: &mut Request) -> Option<Result<(), Problem>> {
    let sandbox = stream_token::stream_sandbox(req.uri().path())?;
    let token = stream_token::offered(req.headers())?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let grant = match auth.stream.verify(token, sandbox, now) {
        Ok(grant) => grant,
        Err(e) => return Some(Err(Problem::new(ErrorCode::Unauthorized, e.to_string()))),
    };
    if grant.view_only {
        let query = stream_token::force_view_only(req.uri().query());
        let uri = format!("{}?{query}", req.uri().path());
        match uri.parse() {
            Ok(uri) => *req.uri_mut() = uri,
            Err(_) => return Some(Err(Problem::invalid("the query cannot be forwarded"))),
        }
    }
    req.extensions_mut().insert(grant.caller);
    Some(Ok(()))
}

/// The key from the `Authorization` header, else from a WebSocket
/// protocol credential, else from `?access_token=`.
fn presented_token(req: &Request) -> Option<String> {
    if let Some(value) = req.headers().get(http::header::AUTHORIZATION) {
        let value = value.to_str().ok()?;
        return value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(|t| t.trim().to_string());
    }
    if let Some(key) = ws_protocol::key(req.headers()) {
        return Some(key);
    }
    crate::params::get(req.uri().query()?, ACCESS_TOKEN)
}

/// The query parameter that may carry the key (browsers' WebSockets and
/// EventSources cannot set headers); removed before anything is forwarded.
pub const ACCESS_TOKEN: &str = "access_token";

/// Adds the `bearer` security scheme to the OpenAPI document.
pub struct SecurityAddon;

impl utoipa::Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        // E2B's routes: the same keys, as the E2B SDKs send them.
        components.add_security_scheme(
            "e2b_api_key",
            SecurityScheme::ApiKey(utoipa::openapi::security::ApiKey::Header(
                utoipa::openapi::security::ApiKeyValue::new("X-API-KEY"),
            )),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_see_only_their_own() {
        let a = Caller::Tenant("ten_a".into());
        assert!(a.can_see(Some("ten_a")));
        assert!(!a.can_see(Some("ten_b")));
        assert!(!a.can_see(None));
        assert!(Caller::Admin.can_see(Some("ten_b")));
        assert!(Caller::Admin.can_see(None));
    }
}
