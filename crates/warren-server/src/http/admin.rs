//! `/v1/admin` routes (admin key only): tenants and their API keys.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use utoipa_axum::{router::OpenApiRouter, routes};
use warren_api::extract::{Json, Query};
use warren_api::server::{
    ApiKeyCreated, ApiKeyList, CreateKeyRequest, CreateTenantRequest, Tenant, TenantList,
};
use warren_api::Problem;

use crate::auth::AdminOnly;
use crate::paging::{Page, PageQuery};
use crate::tenants::TenantError;
use crate::AppState;

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_tenant, list_tenants))
        .routes(routes!(get_tenant))
        .routes(routes!(create_key, list_keys))
        .routes(routes!(revoke_key))
}

/// Create a tenant.
#[utoipa::path(post, path = "/v1/admin/tenants", tag = "admin",
    request_body = CreateTenantRequest,
    responses(
        (status = 201, description = "Created", body = Tenant),
        (status = 400, description = "Invalid name", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not the admin key", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The name is taken", body = Problem, content_type = "application/problem+json")))]
async fn create_tenant(
    State(app): State<AppState>,
    _: AdminOnly,
    Json(req): Json<CreateTenantRequest>,
) -> Result<(StatusCode, Json<Tenant>), TenantError> {
    let quotas = crate::store::Quotas {
        max_sandboxes: req.max_sandboxes,
        max_total_sandboxes: req.max_total_sandboxes,
        max_memory_mb: req.max_memory_mb,
        max_cpus: req.max_cpus,
        max_disk_mb: req.max_disk_mb,
    };
    let tenant = app.tenants.create(&req.name, quotas).await?;
    Ok((StatusCode::CREATED, Json(tenant)))
}

/// List tenants, in creation order.
#[utoipa::path(get, path = "/v1/admin/tenants", tag = "admin",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of tenants", body = TenantList),
        (status = 400, description = "Invalid page", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not the admin key", body = Problem, content_type = "application/problem+json")))]
async fn list_tenants(
    State(app): State<AppState>,
    _: AdminOnly,
    Query(page): Query<PageQuery>,
) -> Result<Json<TenantList>, Problem> {
    let page = Page::parse(page.limit, page.cursor.as_deref())?;
    Ok(Json(app.tenants.list(page).await?))
}

/// One tenant.
#[utoipa::path(get, path = "/v1/admin/tenants/{id}", tag = "admin",
    params(("id" = String, Path, description = "`ten_…`")),
    responses(
        (status = 200, description = "The tenant", body = Tenant),
        (status = 403, description = "Not the admin key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant", body = Problem, content_type = "application/problem+json")))]
async fn get_tenant(
    State(app): State<AppState>,
    _: AdminOnly,
    Path(id): Path<String>,
) -> Result<Json<Tenant>, TenantError> {
    Ok(Json(app.tenants.get(&id).await?))
}

/// Create an API key for a tenant. The key is shown only in this response.
/// The body is optional: `{"format": "e2b"}` makes a key of the form
/// `e2b_` + 64 hex digits, which E2B's SDKs accept as `E2B_API_KEY` and
/// which works as a Warren key all the same.
#[utoipa::path(post, path = "/v1/admin/tenants/{id}/keys", tag = "admin",
    params(("id" = String, Path, description = "`ten_…`")),
    request_body(content = Option<CreateKeyRequest>, content_type = "application/json"),
    responses(
        (status = 400, description = "A body that is not a key request", body = Problem, content_type = "application/problem+json"),
        (status = 201, description = "Created", body = ApiKeyCreated),
        (status = 403, description = "Not the admin key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant", body = Problem, content_type = "application/problem+json")))]
async fn create_key(
    State(app): State<AppState>,
    _: AdminOnly,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<ApiKeyCreated>), Problem> {
    let request: CreateKeyRequest = if body.iter().all(u8::is_ascii_whitespace) {
        CreateKeyRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| Problem::invalid(format!("invalid key request: {e}")))?
    };
    let key = app.tenants.create_key(&id, request.format).await?;
    Ok((StatusCode::CREATED, Json(key)))
}

/// A tenant's API keys, without their secrets.
#[utoipa::path(get, path = "/v1/admin/tenants/{id}/keys", tag = "admin",
    params(("id" = String, Path, description = "`ten_…`")),
    responses(
        (status = 200, description = "The keys", body = ApiKeyList),
        (status = 403, description = "Not the admin key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant", body = Problem, content_type = "application/problem+json")))]
async fn list_keys(
    State(app): State<AppState>,
    _: AdminOnly,
    Path(id): Path<String>,
) -> Result<Json<ApiKeyList>, TenantError> {
    Ok(Json(app.tenants.list_keys(&id).await?))
}

/// Revoke an API key: requests with it answer 401 from now on.
#[utoipa::path(delete, path = "/v1/admin/keys/{id}", tag = "admin",
    params(("id" = String, Path, description = "`key_…`")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "Not the admin key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such key", body = Problem, content_type = "application/problem+json")))]
async fn revoke_key(
    State(app): State<AppState>,
    _: AdminOnly,
    Path(id): Path<String>,
) -> Result<StatusCode, TenantError> {
    app.tenants.revoke_key(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
