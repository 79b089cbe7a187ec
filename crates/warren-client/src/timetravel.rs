//! The rest of time travel: what changed since a checkpoint (diffs), moving
//! checkpoints between servers (export and import streams), checkpoint
//! patches, and wiping a sandbox back to its template.

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use warren_api::checkpoint::{
    Checkpoint, CheckpointDiff, CreatePatchRequest, FileDiff, Patch, PatchList,
};
use warren_api::server::Sandbox as SandboxInfo;

use crate::error::{Error, Result};
use crate::{Client, Sandbox};

impl Client {
    /// The paths added, modified and deleted since checkpoint `id`, up to
    /// checkpoint `to` or (with `None`) the live disk of its sandbox.
    pub async fn checkpoint_diff(&self, id: &str, to: Option<&str>) -> Result<CheckpointDiff> {
        let http = self.http();
        let mut req = http.get(&format!("/v1/checkpoints/{id}/diff"));
        if let Some(to) = to {
            req = req.query(&[("to", to)]);
        }
        http.json(req).await
    }

    /// The unified diff of the text file at `path` (absolute, as the
    /// sandbox sees it) since checkpoint `id`, up to checkpoint `to` or the
    /// live disk.
    pub async fn checkpoint_file_diff(
        &self,
        id: &str,
        path: &str,
        to: Option<&str>,
    ) -> Result<FileDiff> {
        let http = self.http();
        let mut req = http
            .get(&format!("/v1/checkpoints/{id}/diff/file"))
            .query(&[("path", path)]);
        if let Some(to) = to {
            req = req.query(&[("to", to)]);
        }
        http.json(req).await
    }

    /// A checkpoint as an export stream, to import on another server.
    /// `format`: `btrfs-send` or `tar-gzip` (default: the server's own).
    pub async fn export_checkpoint(
        &self,
        id: &str,
        format: Option<&str>,
    ) -> Result<BoxStream<'static, Result<Bytes>>> {
        let http = self.http();
        let mut req = http.get(&format!("/v1/checkpoints/{id}/export"));
        if let Some(format) = format {
            req = req.query(&[("format", format)]);
        }
        Ok(http
            .send(req)
            .await?
            .bytes_stream()
            .map_err(Error::from)
            .boxed())
    }

    /// Makes a checkpoint of an export stream (e.g. a file wrapped in a
    /// streamed [`reqwest::Body`]).
    pub async fn import_checkpoint(&self, export: impl Into<reqwest::Body>) -> Result<Checkpoint> {
        let http = self.http();
        http.json(
            http.post("/v1/checkpoints/import")
                .header("content-type", "application/vnd.warren.checkpoint")
                .body(export),
        )
        .await
    }

    /// Attaches a script to a checkpoint, run in every sandbox made from it.
    pub async fn add_patch(
        &self,
        checkpoint_id: &str,
        patch: &CreatePatchRequest,
    ) -> Result<Patch> {
        let http = self.http();
        http.json(
            http.post(&format!("/v1/checkpoints/{checkpoint_id}/patches"))
                .json(patch),
        )
        .await
    }

    /// The patches of a checkpoint, in the order they run.
    pub async fn patches(&self, checkpoint_id: &str) -> Result<Vec<Patch>> {
        let http = self.http();
        let list: PatchList = http
            .json(http.get(&format!("/v1/checkpoints/{checkpoint_id}/patches")))
            .await?;
        Ok(list.items)
    }

    /// Removes a patch.
    pub async fn delete_patch(&self, checkpoint_id: &str, patch_id: &str) -> Result<()> {
        let http = self.http();
        http.empty(http.delete(&format!(
            "/v1/checkpoints/{checkpoint_id}/patches/{patch_id}"
        )))
        .await
    }
}

impl Sandbox {
    /// Resets its disk to its template (its checkpoints are kept).
    pub async fn wipe(&mut self) -> Result<&SandboxInfo> {
        let http = self.client().http();
        let info: SandboxInfo = http
            .json(http.post(&format!("/v1/sandboxes/{}/wipe", self.id())))
            .await?;
        Ok(self.set_info(info))
    }
}
