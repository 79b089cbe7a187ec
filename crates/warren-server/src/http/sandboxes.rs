//! `/v1/sandboxes` routes: parse, call [`crate::sandboxes`], render.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use utoipa_axum::{router::OpenApiRouter, routes};
use warren_api::extract::{Json, Query};
use warren_api::server::{
    CreateSandboxRequest, ExtendRequest, PatchSandboxRequest, Sandbox, SandboxList, SandboxState,
};
use warren_api::Problem;

use super::OptionalJson;
use crate::auth::Caller;
use crate::paging::Page;
use crate::sandboxes::{ListQuery, SandboxError};
use crate::AppState;

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(get_one, patch, delete))
        .routes(routes!(extend))
        .routes(routes!(stop))
        .routes(routes!(start))
        .routes(routes!(hibernate))
        .routes(routes!(wake))
}

/// Create a sandbox; answers when it runs commands.
#[utoipa::path(post, path = "/v1/sandboxes", tag = "sandboxes",
    request_body(content = Option<CreateSandboxRequest>, description = "Every field is optional; an empty body is fine."),
    responses(
        (status = 201, description = "The sandbox runs", body = Sandbox),
        (status = 400, description = "Invalid request or resources over the host's", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such template or checkpoint", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The tenant's quota is reached", body = Problem, content_type = "application/problem+json")))]
async fn create(
    State(app): State<AppState>,
    caller: Caller,
    OptionalJson(req): OptionalJson<CreateSandboxRequest>,
) -> Result<(StatusCode, Json<Sandbox>), SandboxError> {
    let sandbox = app.sandboxes.create(&caller, req).await?;
    Ok((StatusCode::CREATED, Json(sandbox)))
}

/// List sandboxes, in creation order.
#[utoipa::path(get, path = "/v1/sandboxes", tag = "sandboxes",
    params(
        ("state" = Option<SandboxState>, Query, description = "Only sandboxes in this state"),
        ("label" = Option<Vec<String>>, Query, description = "`KEY=VALUE`; repeatable, all must match"),
        ("metadata.KEY" = Option<String>, Query, description = "`metadata.KEY=VALUE`; any number, all must match"),
        ("tenant" = Option<String>, Query, description = "Only this tenant's sandboxes (admin key)"),
        ("limit" = Option<u32>, Query, description = "Items per page, 1 to 1000 (default 100)"),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page")),
    responses(
        (status = 200, description = "A page of sandboxes", body = SandboxList),
        (status = 400, description = "Invalid filter or cursor", body = Problem, content_type = "application/problem+json")))]
async fn list(
    State(app): State<AppState>,
    caller: Caller,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Json<SandboxList>, Problem> {
    let (query, page) = parse_list_query(pairs)?;
    Ok(Json(app.sandboxes.list(&caller, query, page).await?))
}

/// Splits a list's query string into filters and page.
fn parse_list_query(pairs: Vec<(String, String)>) -> Result<(ListQuery, Page), Problem> {
    let mut query = ListQuery::default();
    let (mut limit, mut cursor) = (None, None);
    for (key, value) in pairs {
        match key.as_str() {
            "state" => {
                query.state = Some(value.parse::<SandboxState>().map_err(Problem::invalid)?);
            }
            "label" => {
                let (k, v) = value.split_once('=').ok_or_else(|| {
                    Problem::invalid(format!("label filter {value:?} is not KEY=VALUE"))
                })?;
                query.labels.push((k.to_string(), v.to_string()));
            }
            "tenant" => query.tenant = Some(value),
            "limit" => {
                limit =
                    Some(value.parse::<u32>().map_err(|_| {
                        Problem::invalid(format!("limit {value:?} is not a number"))
                    })?);
            }
            "cursor" => cursor = Some(value),
            "access_token" => {}
            other => match other.strip_prefix("metadata.") {
                Some(k) if !k.is_empty() => query.metadata.push((k.to_string(), value)),
                _ => {
                    return Err(Problem::invalid(format!(
                        "unknown query parameter {other:?}"
                    )))
                }
            },
        }
    }
    let page = Page::parse(limit, cursor.as_deref())?;
    Ok((query, page))
}

/// One sandbox.
#[utoipa::path(get, path = "/v1/sandboxes/{id}", tag = "sandboxes",
    params(("id" = String, Path, description = "`sbx_…`")),
    responses(
        (status = 200, description = "The sandbox", body = Sandbox),
        (status = 404, description = "No such sandbox (or another tenant's)", body = Problem, content_type = "application/problem+json")))]
async fn get_one(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Sandbox>, SandboxError> {
    Ok(Json(app.sandboxes.get(&caller, &id).await?))
}

/// Replace metadata, labels or the idle timeout.
#[utoipa::path(patch, path = "/v1/sandboxes/{id}", tag = "sandboxes",
    params(("id" = String, Path, description = "`sbx_…`")),
    request_body = PatchSandboxRequest,
    responses(
        (status = 200, description = "The updated sandbox", body = Sandbox),
        (status = 400, description = "Invalid request", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such sandbox", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Being created or destroyed", body = Problem, content_type = "application/problem+json")))]
async fn patch(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<PatchSandboxRequest>,
) -> Result<Json<Sandbox>, SandboxError> {
    Ok(Json(app.sandboxes.patch(&caller, &id, req).await?))
}

/// Destroy a sandbox: its processes, disk and record. 404 afterwards.
#[utoipa::path(delete, path = "/v1/sandboxes/{id}", tag = "sandboxes",
    params(("id" = String, Path, description = "`sbx_…`")),
    responses(
        (status = 204, description = "Destroyed"),
        (status = 404, description = "No such sandbox", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Being created or destroyed", body = Problem, content_type = "application/problem+json")))]
async fn delete(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, SandboxError> {
    app.sandboxes.delete(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Push `expires_at` back and restart the idle clock.
#[utoipa::path(post, path = "/v1/sandboxes/{id}/extend", tag = "sandboxes",
    params(("id" = String, Path, description = "`sbx_…`")),
    request_body = ExtendRequest,
    responses(
        (status = 200, description = "The extended sandbox", body = Sandbox),
        (status = 400, description = "Invalid seconds", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such sandbox", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Being created or destroyed", body = Problem, content_type = "application/problem+json")))]
async fn extend(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<ExtendRequest>,
) -> Result<Json<Sandbox>, SandboxError> {
    Ok(Json(app.sandboxes.extend(&caller, &id, req.seconds).await?))
}

/// Stop every process; the disk is kept.
#[utoipa::path(post, path = "/v1/sandboxes/{id}/stop", tag = "sandboxes",
    params(("id" = String, Path, description = "`sbx_…`")),
    responses(
        (status = 200, description = "Stopped", body = Sandbox),
        (status = 404, description = "No such sandbox", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Being created or destroyed", body = Problem, content_type = "application/problem+json")))]
async fn stop(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Sandbox>, SandboxError> {
    Ok(Json(app.sandboxes.stop(&caller, &id).await?))
}

/// Start a stopped sandbox again on its disk.
#[utoipa::path(post, path = "/v1/sandboxes/{id}/start", tag = "sandboxes",
    params(("id" = String, Path, description = "`sbx_…`")),
    responses(
        (status = 200, description = "Running", body = Sandbox),
        (status = 404, description = "No such sandbox", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Being created or destroyed", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The tenant's quota is reached", body = Problem, content_type = "application/problem+json")))]
async fn start(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Sandbox>, SandboxError> {
    Ok(Json(app.sandboxes.start(&caller, &id).await?))
}

/// Freeze every process: no compute until `wake`.
#[utoipa::path(post, path = "/v1/sandboxes/{id}/hibernate", tag = "sandboxes",
    params(("id" = String, Path, description = "`sbx_…`")),
    responses(
        (status = 200, description = "Hibernated", body = Sandbox),
        (status = 404, description = "No such sandbox", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not running", body = Problem, content_type = "application/problem+json")))]
async fn hibernate(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Sandbox>, SandboxError> {
    Ok(Json(app.sandboxes.hibernate(&caller, &id).await?))
}

/// Thaw a hibernated sandbox.
#[utoipa::path(post, path = "/v1/sandboxes/{id}/wake", tag = "sandboxes",
    params(("id" = String, Path, description = "`sbx_…`")),
    responses(
        (status = 200, description = "Running", body = Sandbox),
        (status = 404, description = "No such sandbox", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not hibernated", body = Problem, content_type = "application/problem+json")))]
async fn wake(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Sandbox>, SandboxError> {
    Ok(Json(app.sandboxes.wake(&caller, &id).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn list_query_parses_filters() {
        let (q, page) = parse_list_query(pairs(&[
            ("state", "running"),
            ("label", "team=a=b"),
            ("label", "x="),
            ("metadata.owner", "me"),
            ("tenant", "ten_x"),
            ("limit", "5"),
            ("access_token", "k"),
        ]))
        .unwrap();
        assert_eq!(q.state, Some(SandboxState::Running));
        assert_eq!(
            q.labels,
            vec![("team".into(), "a=b".into()), ("x".into(), "".into())]
        );
        assert_eq!(q.metadata, vec![("owner".into(), "me".into())]);
        assert_eq!(q.tenant.as_deref(), Some("ten_x"));
        assert_eq!(page.limit, 5);
        for bad in [
            ("state", "sleeping"),
            ("label", "novalue"),
            ("limit", "x"),
            ("metadata.", "v"),
            ("colour", "red"),
        ] {
            assert!(parse_list_query(pairs(&[bad])).is_err(), "{bad:?}");
        }
    }
}
