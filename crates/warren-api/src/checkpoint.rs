//! Request and response bodies of time travel on the control plane:
//! checkpoints (read-only snapshots of a sandbox's disk), restore in place,
//! forks, wipes, checkpoint patches, and moving a checkpoint between servers.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::server::Sandbox;

/// `POST /v1/sandboxes/{id}/checkpoints`: every field is optional.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCheckpointRequest {
    /// A name for people (1 to 128 characters, no control characters;
    /// names need not be unique). Default: `manual_<unix ms>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A read-only snapshot of a sandbox's disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Checkpoint {
    /// `ckpt_…`.
    pub id: String,
    /// Its name (`cmd_<unix ms>` for automatic checkpoints).
    pub name: String,
    /// The sandbox it was taken of (for an imported checkpoint: the sandbox
    /// on the server it was exported from). The checkpoint outlives it.
    pub sandbox_id: String,
    /// Owning tenant; null for checkpoints of the admin key.
    pub tenant_id: Option<String>,
    /// RFC 3339 UTC.
    pub created_at: String,
    /// The template the sandbox's disk was first made from.
    pub template: String,
    /// The command after which an `auto_checkpoint` sandbox took it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Exit code of that command (absent when a signal ended it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Whether `auto_checkpoint` took it (retention deletes the oldest
    /// automatic checkpoints; named ones are kept until deleted).
    pub auto: bool,
    /// Whether it came from `POST /v1/checkpoints/import`.
    pub imported: bool,
}

/// A page of checkpoints.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CheckpointList {
    /// Checkpoints in creation order.
    pub items: Vec<Checkpoint>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// `POST /v1/sandboxes/{id}/restore`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreRequest {
    /// The checkpoint whose disk the sandbox gets (`ckpt_…`).
    pub checkpoint_id: String,
    /// Delete this sandbox's checkpoints taken after that one (default
    /// false: they are kept and history branches).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discard_later: Option<bool>,
}

/// `POST /v1/sandboxes/{id}/fork`: every field is optional.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForkRequest {
    /// How many sandboxes to make (1 to 64, default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Name of the checkpoint the forks are made from (default
    /// `fork_<unix ms>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The answer of a fork: the new sandboxes, all running.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ForkResponse {
    /// The new sandboxes.
    pub items: Vec<Sandbox>,
    /// The checkpoint they were made from (kept; deleting it leaves them
    /// working).
    pub checkpoint_id: String,
}

/// `POST /v1/checkpoints/{id}/patches`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePatchRequest {
    /// The script: run as an executable file (a `#!` line picks the
    /// interpreter; without one `/bin/sh` runs it), as root, in the
    /// sandbox's working directory, stdin empty.
    pub script: String,
    /// A name for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Time limit in milliseconds (default 300000); exceeding it fails the
    /// patch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

/// A script run in every sandbox made from its checkpoint, before the
/// sandbox is handed out. Patches run in the order they were added; a
/// failing one (non-zero exit or timeout) fails the fork.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Patch {
    /// `pat_…`.
    pub id: String,
    /// The checkpoint it belongs to.
    pub checkpoint_id: String,
    /// Its name, if given.
    pub name: Option<String>,
    /// The script.
    pub script: String,
    /// Its time limit in milliseconds.
    pub timeout_ms: u64,
    /// RFC 3339 UTC.
    pub created_at: String,
}

/// The patches of a checkpoint, in the order they run.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PatchList {
    /// Patches in run order.
    pub items: Vec<Patch>,
}

/// How a path changed between two disks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DiffChange {
    /// Only in the newer disk.
    Added,
    /// In both, with different contents or metadata (type, size, mode,
    /// owner, mtime, symlink target).
    Modified,
    /// Only in the older disk.
    Deleted,
    /// In both and the same (only in a file diff).
    Unchanged,
}

/// What a changed path is (on the newer side when both have it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DiffKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A fifo, socket or device node.
    Other,
}

/// One changed path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DiffItem {
    /// Absolute, as the sandbox sees it (`/home/user/x.txt`).
    pub path: String,
    /// `added`, `modified` or `deleted`.
    pub change: DiffChange,
    /// Bytes of a file or of a symlink's target; 0 for a directory.
    pub size: u64,
    /// `file`, `dir`, `symlink` or `other`.
    pub kind: DiffKind,
}

/// `GET /v1/checkpoints/{id}/diff`: what changed since the checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CheckpointDiff {
    /// Changed paths sorted by path; an added or deleted directory brings
    /// its contents along; a directory whose only change is its children's
    /// is left out.
    pub items: Vec<DiffItem>,
    /// Whether the list is incomplete (more than 10,000 changes, or the
    /// server's time limit for a diff passed).
    pub truncated: bool,
}

/// `GET /v1/checkpoints/{id}/diff/file`: one file's unified diff.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FileDiff {
    /// The path asked for.
    pub path: String,
    /// `added`, `modified`, `deleted` or `unchanged`.
    pub change: DiffChange,
    /// Whether either side is not text (a NUL byte or invalid UTF-8 in its
    /// first MiB, or not a regular file); `unified` is then null.
    pub binary: bool,
    /// The unified diff (`--- a/…`, `+++ b/…`, hunks with 3 lines of
    /// context); empty when the contents are the same.
    pub unified: Option<String>,
    /// Whether either side is longer than the 1 MiB compared.
    pub truncated: bool,
}
