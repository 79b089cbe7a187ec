//! Time-travel routes: checkpoints, restore, fork, wipe, patches, export and
//! import. Parse, call [`crate::checkpoints`], render.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use warren_api::checkpoint::{
    Checkpoint, CheckpointDiff, CheckpointList, CreateCheckpointRequest, CreatePatchRequest,
    FileDiff, ForkRequest, ForkResponse, Patch, PatchList, RestoreRequest,
};
use warren_api::extract::{Json, Query};
use warren_api::server::Sandbox;
use warren_api::Problem;

use super::OptionalJson;
use crate::auth::Caller;
use crate::checkpoints::transfer::Format;
use crate::checkpoints::CheckpointError;
use crate::paging::{Page, PageQuery};
use crate::AppState;

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list_of_sandbox))
        .routes(routes!(list))
        .routes(routes!(get_one, delete))
        .routes(routes!(diff))
        .routes(routes!(diff_file))
        .routes(routes!(restore))
        .routes(routes!(fork))
        .routes(routes!(wipe))
        .routes(routes!(add_patch, patches))
        .routes(routes!(delete_patch))
        .routes(routes!(export))
        .routes(routes!(import))
}

/// `?limit=&cursor=&sandbox_id=` of `GET /v1/checkpoints`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only checkpoints of this sandbox (which may be gone).
    pub sandbox_id: Option<String>,
    /// Items per page, 1 to 1000 (default 100).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// `?to=` of a diff.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DiffQuery {
    /// The newer checkpoint (`ckpt_…`); without it, the live disk of the
    /// checkpoint's sandbox.
    pub to: Option<String>,
}

/// `?path=&to=` of a file diff.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FileDiffQuery {
    /// The file, absolute as the sandbox sees it (`/home/user/x.txt`).
    pub path: String,
    /// The newer checkpoint (`ckpt_…`); without it, the live disk of the
    /// checkpoint's sandbox.
    pub to: Option<String>,
}

/// `?format=` of an export.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `btrfs-send` (btrfs servers' default) or `tar-gzip` (the copy
    /// driver's default, and what a copy-driver server can import).
    pub format: Option<Format>,
}

/// Take a checkpoint: a read-only snapshot of the sandbox's disk, consistent
/// (its processes are frozen while it is taken).
#[utoipa::path(post, path = "/v1/sandboxes/{id}/checkpoints", tag = "checkpoints",
    params(("id" = String, Path, description = "`sbx_…`")),
    request_body(content = Option<CreateCheckpointRequest>, description = "Optional; an empty body is fine."),
    responses(
        (status = 201, description = "Taken and recorded", body = Checkpoint),
        (status = 400, description = "Invalid name", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such sandbox", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Being created or destroyed", body = Problem, content_type = "application/problem+json")))]
async fn create(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    OptionalJson(req): OptionalJson<CreateCheckpointRequest>,
) -> Result<(StatusCode, Json<Checkpoint>), CheckpointError> {
    let checkpoint = app.checkpoints.create(&caller, &id, req).await?;
    Ok((StatusCode::CREATED, Json(checkpoint)))
}

/// The sandbox's checkpoints, in creation order.
#[utoipa::path(get, path = "/v1/sandboxes/{id}/checkpoints", tag = "checkpoints",
    params(("id" = String, Path, description = "`sbx_…`"), PageQuery),
    responses(
        (status = 200, description = "A page of checkpoints", body = CheckpointList),
        (status = 400, description = "Invalid page", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such sandbox", body = Problem, content_type = "application/problem+json")))]
async fn list_of_sandbox(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(page): Query<PageQuery>,
) -> Result<Json<CheckpointList>, Problem> {
    let page = Page::parse(page.limit, page.cursor.as_deref())?;
    Ok(Json(
        app.checkpoints.list_for_sandbox(&caller, &id, page).await?,
    ))
}

/// Every checkpoint the caller may see, in creation order: those of deleted
/// sandboxes and imported ones included.
#[utoipa::path(get, path = "/v1/checkpoints", tag = "checkpoints",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of checkpoints", body = CheckpointList),
        (status = 400, description = "Invalid page", body = Problem, content_type = "application/problem+json")))]
async fn list(
    State(app): State<AppState>,
    caller: Caller,
    Query(query): Query<ListQuery>,
) -> Result<Json<CheckpointList>, Problem> {
    let page = Page::parse(query.limit, query.cursor.as_deref())?;
    Ok(Json(
        app.checkpoints
            .list(&caller, query.sandbox_id, page)
            .await?,
    ))
}

/// One checkpoint.
#[utoipa::path(get, path = "/v1/checkpoints/{id}", tag = "checkpoints",
    params(("id" = String, Path, description = "`ckpt_…`")),
    responses(
        (status = 200, description = "The checkpoint", body = Checkpoint),
        (status = 404, description = "No such checkpoint (or another tenant's)", body = Problem, content_type = "application/problem+json")))]
async fn get_one(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Checkpoint>, CheckpointError> {
    Ok(Json(app.checkpoints.get(&caller, &id).await?))
}

/// What changed since the checkpoint, up to checkpoint `to` or the live disk
/// of its sandbox: paths added, modified and deleted, sorted by path (at most
/// 10,000, then `truncated`).
#[utoipa::path(get, path = "/v1/checkpoints/{id}/diff", tag = "checkpoints",
    params(("id" = String, Path, description = "`ckpt_…`"), DiffQuery),
    responses(
        (status = 200, description = "The changed paths", body = CheckpointDiff),
        (status = 404, description = "No such checkpoint (or another tenant's), or the sandbox of a live diff is gone", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many diffs of this tenant in flight", body = Problem, content_type = "application/problem+json")))]
async fn diff(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<DiffQuery>,
) -> Result<Json<CheckpointDiff>, CheckpointError> {
    Ok(Json(
        app.checkpoints
            .diff(&caller, &id, query.to.as_deref())
            .await?,
    ))
}

/// One file's unified diff since the checkpoint (up to checkpoint `to` or the
/// live disk); at most 1 MiB of each side is compared.
#[utoipa::path(get, path = "/v1/checkpoints/{id}/diff/file", tag = "checkpoints",
    params(("id" = String, Path, description = "`ckpt_…`"), FileDiffQuery),
    responses(
        (status = 200, description = "The file's diff", body = FileDiff),
        (status = 400, description = "Invalid path, or a directory", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such checkpoint or sandbox, or no such file on either side", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many diffs of this tenant in flight", body = Problem, content_type = "application/problem+json")))]
async fn diff_file(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<FileDiffQuery>,
) -> Result<Json<FileDiff>, CheckpointError> {
    Ok(Json(
        app.checkpoints
            .diff_file(&caller, &id, &query.path, query.to.as_deref())
            .await?,
    ))
}

/// Delete a checkpoint and its patches; sandboxes made from it keep working.
#[utoipa::path(delete, path = "/v1/checkpoints/{id}", tag = "checkpoints",
    params(("id" = String, Path, description = "`ckpt_…`")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such checkpoint", body = Problem, content_type = "application/problem+json")))]
async fn delete(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, CheckpointError> {
    app.checkpoints.delete(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Restore in place: the sandbox's disk becomes a writable snapshot of the
/// checkpoint. It keeps its id, env, metadata and keys; its processes are
/// ended and its agent starts again (it is running afterwards).
#[utoipa::path(post, path = "/v1/sandboxes/{id}/restore", tag = "checkpoints",
    params(("id" = String, Path, description = "`sbx_…`")),
    request_body = RestoreRequest,
    responses(
        (status = 200, description = "Restored and running", body = Sandbox),
        (status = 400, description = "Invalid request", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such sandbox or checkpoint", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Being created or destroyed", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "A stopped sandbox would put its tenant over quota", body = Problem, content_type = "application/problem+json")))]
async fn restore(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<RestoreRequest>,
) -> Result<Json<Sandbox>, CheckpointError> {
    Ok(Json(app.checkpoints.restore(&caller, &id, req).await?))
}

/// Checkpoint the sandbox once and make `count` independent sandboxes from it.
#[utoipa::path(post, path = "/v1/sandboxes/{id}/fork", tag = "checkpoints",
    params(("id" = String, Path, description = "`sbx_…`")),
    request_body(content = Option<ForkRequest>, description = "Optional; default one fork."),
    responses(
        (status = 201, description = "The forks, running", body = ForkResponse),
        (status = 400, description = "Invalid count or name", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such sandbox", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Being created or destroyed", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The tenant's quota is reached", body = Problem, content_type = "application/problem+json")))]
async fn fork(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    OptionalJson(req): OptionalJson<ForkRequest>,
) -> Result<(StatusCode, Json<ForkResponse>), CheckpointError> {
    let forks = app.checkpoints.fork(&caller, &id, req).await?;
    Ok((StatusCode::CREATED, Json(forks)))
}

/// Reset the sandbox's disk to its template (no checkpoint is taken; its
/// checkpoints are kept). Processes are ended as by a restore.
#[utoipa::path(post, path = "/v1/sandboxes/{id}/wipe", tag = "checkpoints",
    params(("id" = String, Path, description = "`sbx_…`")),
    responses(
        (status = 200, description = "Wiped and running", body = Sandbox),
        (status = 404, description = "No such sandbox, or its template is gone", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Being created or destroyed", body = Problem, content_type = "application/problem+json")))]
async fn wipe(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Sandbox>, CheckpointError> {
    Ok(Json(app.checkpoints.wipe(&caller, &id).await?))
}

/// Attach a script to a checkpoint; it runs (after the ones before it) in
/// every sandbox made from the checkpoint, before the sandbox is handed out.
#[utoipa::path(post, path = "/v1/checkpoints/{id}/patches", tag = "checkpoints",
    params(("id" = String, Path, description = "`ckpt_…`")),
    request_body = CreatePatchRequest,
    responses(
        (status = 201, description = "Added", body = Patch),
        (status = 400, description = "Invalid script, name or timeout", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such checkpoint", body = Problem, content_type = "application/problem+json")))]
async fn add_patch(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<CreatePatchRequest>,
) -> Result<(StatusCode, Json<Patch>), CheckpointError> {
    let patch = app.checkpoints.add_patch(&caller, &id, req).await?;
    Ok((StatusCode::CREATED, Json(patch)))
}

/// The checkpoint's patches, in the order they run.
#[utoipa::path(get, path = "/v1/checkpoints/{id}/patches", tag = "checkpoints",
    params(("id" = String, Path, description = "`ckpt_…`")),
    responses(
        (status = 200, description = "The patches", body = PatchList),
        (status = 404, description = "No such checkpoint", body = Problem, content_type = "application/problem+json")))]
async fn patches(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<PatchList>, CheckpointError> {
    Ok(Json(app.checkpoints.patches(&caller, &id).await?))
}

/// Remove a patch from a checkpoint.
#[utoipa::path(delete, path = "/v1/checkpoints/{id}/patches/{patch_id}", tag = "checkpoints",
    params(
        ("id" = String, Path, description = "`ckpt_…`"),
        ("patch_id" = String, Path, description = "`pat_…`")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such checkpoint or patch", body = Problem, content_type = "application/problem+json")))]
async fn delete_patch(
    State(app): State<AppState>,
    caller: Caller,
    Path((id, patch_id)): Path<(String, String)>,
) -> Result<StatusCode, CheckpointError> {
    app.checkpoints
        .delete_patch(&caller, &id, &patch_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Stream a checkpoint out, to import it on another server: a header line
/// naming the format, the checkpoint's metadata as JSON, then the disk.
#[utoipa::path(get, path = "/v1/checkpoints/{id}/export", tag = "checkpoints",
    params(("id" = String, Path, description = "`ckpt_…`"), ExportQuery),
    responses(
        (status = 200, description = "The export stream", content_type = "application/vnd.warren.checkpoint"),
        (status = 400, description = "A format this server cannot make", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such checkpoint", body = Problem, content_type = "application/problem+json")))]
async fn export(
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<ExportQuery>,
) -> Result<Response, CheckpointError> {
    app.checkpoints.export(&caller, &id, query.format).await
}

/// Make a checkpoint of an export stream (the body, streamed). It belongs to
/// the caller and can be used with `from_checkpoint`.
#[utoipa::path(post, path = "/v1/checkpoints/import", tag = "checkpoints",
    request_body(content = Vec<u8>, description = "An export stream", content_type = "application/vnd.warren.checkpoint"),
    responses(
        (status = 201, description = "Imported", body = Checkpoint),
        (status = 400, description = "Not an export, a format this server cannot take, or a disk with device nodes", body = Problem, content_type = "application/problem+json")))]
async fn import(
    State(app): State<AppState>,
    caller: Caller,
    body: Body,
) -> Result<(StatusCode, Json<Checkpoint>), CheckpointError> {
    let checkpoint = app.checkpoints.import(&caller, body).await?;
    Ok((StatusCode::CREATED, Json(checkpoint)))
}
