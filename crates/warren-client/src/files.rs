//! The files of a sandbox: raw bytes in and out (streamed), listings,
//! stat, mkdir, remove, move, edit, and tar upload/download.

use std::collections::VecDeque;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use warren_api::agent::{
    EditRequest, FileEntry, FileList, FileStat, FileWritten, MoveRequest, WatchEvent,
};

use crate::error::{Error, Result};
use crate::sse::SseParser;
use crate::Client;

/// The files of one sandbox (from [`crate::Sandbox::files`]).
#[derive(Debug, Clone)]
pub struct Files {
    client: Client,
    sandbox_id: String,
}

impl Files {
    pub(crate) fn new(client: Client, sandbox_id: String) -> Files {
        Files { client, sandbox_id }
    }

    fn path(&self, rest: &str) -> String {
        format!("/v1/sandboxes/{}/files{rest}", self.sandbox_id)
    }

    /// A file's whole content.
    pub async fn read(&self, path: &str) -> Result<Bytes> {
        let http = self.client.http();
        let resp = http
            .send(http.get(&self.path("")).query(&[("path", path)]))
            .await?;
        Ok(resp.bytes().await?)
    }

    /// A file's content as a text (invalid UTF-8 replaced).
    pub async fn read_text(&self, path: &str) -> Result<String> {
        Ok(String::from_utf8_lossy(&self.read(path).await?).into_owned())
    }

    /// A file's content as a stream of chunks, for files too big to hold.
    pub async fn read_stream(
        &self,
        path: &str,
    ) -> Result<impl Stream<Item = Result<Bytes>> + Send + 'static> {
        let http = self.client.http();
        let resp = http
            .send(http.get(&self.path("")).query(&[("path", path)]))
            .await?;
        Ok(resp.bytes_stream().map_err(Error::from))
    }

    /// Writes a file (parents are created). `body` may be bytes, a string,
    /// or a [`reqwest::Body`] wrapping a stream.
    pub async fn write(&self, path: &str, body: impl Into<reqwest::Body>) -> Result<FileWritten> {
        self.write_mode(path, body, None).await
    }

    /// Writes a file with permission bits `mode` (octal text, e.g. `755`).
    pub async fn write_mode(
        &self,
        path: &str,
        body: impl Into<reqwest::Body>,
        mode: Option<&str>,
    ) -> Result<FileWritten> {
        let http = self.client.http();
        let mut query = vec![("path", path)];
        if let Some(mode) = mode {
            query.push(("mode", mode));
        }
        http.json(
            http.request(reqwest::Method::PUT, &self.path(""))
                .query(&query)
                .body(body),
        )
        .await
    }

    /// Writes a file from a stream of chunks.
    pub async fn write_stream<S>(&self, path: &str, stream: S) -> Result<FileWritten>
    where
        S: futures::TryStream + Send + 'static,
        S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        Bytes: From<S::Ok>,
    {
        self.write(path, reqwest::Body::wrap_stream(stream)).await
    }

    /// The entries of a directory, sorted by name.
    pub async fn list(&self, path: &str) -> Result<Vec<FileEntry>> {
        let http = self.client.http();
        let list: FileList = http
            .json(http.get(&self.path("/list")).query(&[("path", path)]))
            .await?;
        Ok(list.items)
    }

    /// What is at `path` (`exists: false` when nothing is).
    pub async fn stat(&self, path: &str) -> Result<FileStat> {
        let http = self.client.http();
        http.json(http.get(&self.path("/stat")).query(&[("path", path)]))
            .await
    }

    /// Whether anything exists at `path`.
    pub async fn exists(&self, path: &str) -> Result<bool> {
        Ok(self.stat(path).await?.exists)
    }

    /// `mkdir -p`.
    pub async fn mkdir(&self, path: &str) -> Result<FileWritten> {
        let http = self.client.http();
        http.json(http.post(&self.path("/mkdir")).query(&[("path", path)]))
            .await
    }

    /// Removes a file, or a directory (`recursive` for a non-empty one).
    pub async fn remove(&self, path: &str, recursive: bool) -> Result<()> {
        let http = self.client.http();
        http.empty(
            http.delete(&self.path(""))
                .query(&[("path", path), ("recursive", &recursive.to_string())]),
        )
        .await
    }

    /// Moves or renames.
    pub async fn rename(&self, from: &str, to: &str, overwrite: bool) -> Result<FileWritten> {
        let http = self.client.http();
        let body = MoveRequest {
            from: from.to_string(),
            to: to.to_string(),
            overwrite,
        };
        http.json(http.post(&self.path("/move")).json(&body)).await
    }

    /// Replaces `old_text`, which must occur exactly once (`edit_conflict`
    /// otherwise), with `new_text`.
    pub async fn edit(&self, path: &str, old_text: &str, new_text: &str) -> Result<FileWritten> {
        let http = self.client.http();
        let body = EditRequest {
            path: path.to_string(),
            old_text: old_text.to_string(),
            new_text: new_text.to_string(),
        };
        http.json(http.post(&self.path("/edit")).json(&body)).await
    }

    /// Extracts a tar archive (`body`, e.g. a streamed [`reqwest::Body`])
    /// under directory `path`.
    pub async fn upload(&self, path: &str, tar: impl Into<reqwest::Body>) -> Result<FileWritten> {
        let http = self.client.http();
        http.json(
            http.post(&self.path("/upload"))
                .query(&[("path", path)])
                .header("content-type", "application/x-tar")
                .body(tar),
        )
        .await
    }

    /// A tar of the file or directory at `path`, as a stream: a directory's
    /// entries are relative to it, a file's entry is its name.
    pub async fn download(
        &self,
        path: &str,
    ) -> Result<impl Stream<Item = Result<Bytes>> + Send + 'static> {
        let http = self.client.http();
        let resp = http
            .send(http.get(&self.path("/download")).query(&[("path", path)]))
            .await?;
        Ok(resp.bytes_stream().map_err(Error::from))
    }
}

/// One item of [`Files::watch`].
#[derive(Debug, Clone)]
pub enum WatchItem {
    /// The watch is armed: changes from now on are reported.
    Ready,
    /// Something changed.
    Change(WatchEvent),
    /// The kernel's queue overflowed and events were lost: rescan.
    Overflow,
}

impl Files {
    /// Changes under directory `path` (and its subdirectories with
    /// `recursive`) as they happen; the first item is [`WatchItem::Ready`].
    /// The stream runs until dropped.
    pub async fn watch(
        &self,
        path: &str,
        recursive: bool,
    ) -> Result<BoxStream<'static, Result<WatchItem>>> {
        let http = self.client.http();
        let resp = http
            .send(
                http.get(&self.path("/watch"))
                    .query(&[("path", path), ("recursive", &recursive.to_string())])
                    .header("accept", "text/event-stream"),
            )
            .await?;
        let state = (
            resp.bytes_stream().boxed(),
            SseParser::default(),
            VecDeque::<WatchItem>::new(),
        );
        Ok(
            futures::stream::unfold(state, |(mut body, mut parser, mut pending)| async move {
                loop {
                    if let Some(item) = pending.pop_front() {
                        return Some((Ok(item), (body, parser, pending)));
                    }
                    let chunk = match body.next().await? {
                        Ok(chunk) => chunk,
                        Err(e) => return Some((Err(e.into()), (body, parser, pending))),
                    };
                    for event in parser.feed(&chunk) {
                        match event.event.as_str() {
                            "ready" => pending.push_back(WatchItem::Ready),
                            "overflow" => pending.push_back(WatchItem::Overflow),
                            "fs" => match serde_json::from_str(&event.data) {
                                Ok(change) => pending.push_back(WatchItem::Change(change)),
                                Err(e) => return Some((Err(e.into()), (body, parser, pending))),
                            },
                            _ => {}
                        }
                    }
                }
            })
            .boxed(),
        )
    }
}
