//! Moving a checkpoint between servers: `GET /v1/checkpoints/{id}/export`
//! streams it out, `POST /v1/checkpoints/import` takes the same stream in
//! and makes a checkpoint of it (not tied to a live sandbox; usable with
//! `from_checkpoint`).
//!
//! The stream is a small header, then the disk:
//!
//! ```text
//! WARREN-CHECKPOINT 1\n
//! {"format":"btrfs-send","name":…,"template":…,"workdir":…,"envs":{…},…}\n
//! <payload>
//! ```
//!
//! - `btrfs-send`: the output of `btrfs send` of the checkpoint's read-only
//!   subvolume (the default with the btrfs driver), taken in by
//!   `btrfs receive --chroot` on a btrfs server.
//! - `tar-gzip`: a gzipped GNU tar with numeric owners, modes, xattrs and
//!   ACLs (the default with the copy driver; `?format=tar-gzip` from a btrfs
//!   server), which either driver takes in.
//!
//! The header carries what a sandbox made from the checkpoint starts with
//! besides the disk, the environment included (as the disk itself may hold
//! whatever the sandbox wrote, treat the file as you would the sandbox).
//!
//! The disk lands in the host's pool, extracted by host root, so an import
//! is checked as an attack ([`imported::check_tree`]): every owner inside the
//! sandboxes' id range, no `security.*`/`trusted.*` attribute (excluded from
//! the extraction, then verified), no device node outside `/dev` (those in
//! it are dropped from a tar). A `btrfs-send` stream is imported with the
//! admin key only (`btrfs receive` is the kernel parsing it as root); tenants
//! send `tar-gzip`. A failed export ends the response body early (the client
//! sees a truncated transfer, never a complete-looking one); a failed
//! import leaves nothing behind.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};

use axum::body::{Body, Bytes};
use axum::response::Response;
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use warren_api::checkpoint::Checkpoint;
use warren_api::ids::{self, IdKind};

use super::disk::{entries, tmp_name};
use super::imported;
use super::{blocking, checked_name, view, CheckpointError, Checkpoints};
use crate::auth::Caller;
use crate::node::{Node, NodeError};
use crate::store::CheckpointRecord;
use crate::time::{now_ms, rfc3339};

/// First line of every export.
pub const MAGIC: &str = "WARREN-CHECKPOINT 1";

/// Media type of an export.
pub const CONTENT_TYPE: &str = "application/vnd.warren.checkpoint";

/// Longest header line accepted on import.
const MAX_HEADER: usize = 1 << 20;

/// Bytes of a failing tool's stderr kept for the error.
const STDERR_TAIL: usize = 2048;

/// How the disk is carried in an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// `btrfs send` of the read-only subvolume.
    BtrfsSend,
    /// A gzipped tar.
    TarGzip,
}

impl Format {
    fn as_str(self) -> &'static str {
        match self {
            Format::BtrfsSend => "btrfs-send",
            Format::TarGzip => "tar-gzip",
        }
    }
}

/// The JSON line after [`MAGIC`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// How the payload carries the disk.
    pub format: Format,
    /// The checkpoint's id on the exporting server.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The sandbox it was taken of.
    pub sandbox_id: String,
    /// Template of the disk.
    pub template: String,
    /// Working directory of sandboxes made from it.
    pub workdir: String,
    /// Their starting environment.
    pub envs: BTreeMap<String, String>,
    /// When it was taken (RFC 3339).
    pub created_at: String,
    /// The command an automatic checkpoint follows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// That command's exit code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
}

/// GNU tar options shared by both directions: numeric owners, xattrs
/// (capabilities, ACLs) but not the copy driver's volume marker.
const TAR_COMMON: [&str; 5] = [
    "--numeric-owner",
    "--xattrs",
    "--xattrs-include=*",
    "--xattrs-exclude=trusted.warren.*",
    "--acls",
];

/// Compression of exports: gzip's fastest level, about twice as fast as its
/// default for a few percent more bytes (the stream is the bottleneck of a
/// move, not the wire).
const TAR_COMPRESS: &str = "--use-compress-program=gzip -1";

/// An executable from the usual directories (a service `PATH` may lack sbin).
fn program(name: &str) -> PathBuf {
    [
        "/usr/local/sbin",
        "/usr/sbin",
        "/sbin",
        "/usr/local/bin",
        "/usr/bin",
        "/bin",
    ]
    .iter()
    .map(|dir| Path::new(dir).join(name))
    .find(|p| p.is_file())
    .unwrap_or_else(|| PathBuf::from(name))
}

/// A transfer's I/O failure while doing `op`.
pub(super) fn transfer_err(op: &'static str) -> impl FnOnce(std::io::Error) -> CheckpointError {
    move |source| CheckpointError::Transfer { op, source }
}

impl Checkpoints {
    /// The export stream of a checkpoint: header, then the disk in `format`
    /// (default: `btrfs-send` on btrfs, `tar-gzip` with the copy driver).
    pub async fn export(
        &self,
        caller: &Caller,
        id: &str,
        format: Option<Format>,
    ) -> Result<Response, CheckpointError> {
        let record = self.visible(caller, id).await?;
        let on_btrfs = self.inner.node.pool().driver().name() == "btrfs";
        let format = format.unwrap_or(if on_btrfs {
            Format::BtrfsSend
        } else {
            Format::TarGzip
        });
        if format == Format::BtrfsSend && !on_btrfs {
            return Err(CheckpointError::invalid(
                "format",
                "this server keeps disks with the copy driver: export with format=tar-gzip",
            ));
        }
        let path = self.inner.node.checkpoint_volume(&record.id)?;
        if !self.inner.node.pool().driver().is_volume(&path) {
            return Err(CheckpointError::NotFound(record.id));
        }
        let header = Header {
            format,
            id: record.id.clone(),
            name: record.name.clone(),
            sandbox_id: record.sandbox_id.clone(),
            template: record.template.clone(),
            workdir: record.workdir.clone(),
            envs: record.envs.clone(),
            created_at: rfc3339(record.created_at),
            command: record.command.clone(),
            exit_code: record.exit_code,
        };
        let mut head = format!("{MAGIC}\n").into_bytes();
        head.extend(serde_json::to_vec(&header).expect("a header serializes"));
        head.push(b'\n');
        let mut cmd = match format {
            Format::BtrfsSend => {
                let mut cmd = Command::new(program("btrfs"));
                cmd.args(["send", "-q"]).arg(&path);
                cmd
            }
            Format::TarGzip => {
                let mut cmd = Command::new(program("tar"));
                cmd.args(["--create", "--file=-", "--sparse", TAR_COMPRESS])
                    .args(TAR_COMMON)
                    .arg("-C")
                    .arg(&path)
                    .arg(".");
                cmd
            }
        };
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(transfer_err("starting the export"))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = tokio::spawn(stderr_tail(child.stderr.take().expect("piped stderr")));
        tracing::info!(checkpoint = %record.id, format = format.as_str(), "exporting a checkpoint");
        let body = export_stream(Bytes::from(head), stdout, child, stderr);
        Response::builder()
            .header(http::header::CONTENT_TYPE, CONTENT_TYPE)
            .header(
                http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}.warren\"", record.id),
            )
            .body(Body::from_stream(body))
            .map_err(|e| CheckpointError::Transfer {
                op: "building the export response",
                source: std::io::Error::other(e),
            })
    }

    /// Makes a checkpoint of an export stream; it belongs to the caller.
    pub async fn import(&self, caller: &Caller, body: Body) -> Result<Checkpoint, CheckpointError> {
        let mut stream = body.into_data_stream();
        let imported = self.import_stream(caller, &mut stream).await;
        if imported.is_err() {
            drain(&mut stream).await;
        }
        imported
    }

    /// [`Checkpoints::import`] until the stream is taken or refused.
    async fn import_stream<S>(
        &self,
        caller: &Caller,
        stream: &mut S,
    ) -> Result<Checkpoint, CheckpointError>
    where
        S: Stream<Item = Result<Bytes, axum::Error>> + Unpin,
    {
        let (header, rest) = read_header(stream).await?;
        let name = checked_name(Some(header.name.clone()), "").map_err(|_| {
            CheckpointError::BadImport("the header's name is not a valid checkpoint name".into())
        })?;
        check_header(&header)?;
        if header.format == Format::BtrfsSend && !matches!(caller, Caller::Admin) {
            // The kernel parses a send stream as host root: only what the
            // admin vouches for goes through it.
            return Err(CheckpointError::ImportForbidden(
                "a btrfs-send stream is imported with the admin key only: export with \
                 format=tar-gzip to import as a tenant"
                    .into(),
            ));
        }
        let on_btrfs = self.inner.node.pool().driver().name() == "btrfs";
        if header.format == Format::BtrfsSend && !on_btrfs {
            return Err(CheckpointError::BadImport(
                "this server keeps disks with the copy driver and cannot receive a btrfs send \
                 stream: export with format=tar-gzip"
                    .into(),
            ));
        }
        let node = self.inner.node.clone();
        let staging = node.pool().tmp_dir().join(tmp_name("import"));
        let (format, target) = (header.format, staging.clone());
        let prepared = node.clone();
        blocking("prepare an import", move || match format {
            Format::BtrfsSend => std::fs::create_dir(&target).map_err(|e| {
                NodeError::Storage(warren_runtime::storage::StorageError::Io {
                    op: "create import directory",
                    path: target.display().to_string(),
                    source: e,
                })
            }),
            Format::TarGzip => Ok(prepared.pool().driver().create_volume(&target)?),
        })
        .await?;
        let received = receive(format, &staging, rest, stream).await;
        let id = ids::new_id(IdKind::Checkpoint);
        let finished = match received {
            Ok(()) => {
                let (node, staging, id) = (node.clone(), staging.clone(), id.clone());
                tokio::task::spawn_blocking(move || finish(&node, format, &staging, &id))
                    .await
                    .map_err(|source| CheckpointError::Task {
                        op: "import",
                        source,
                    })
                    .and_then(|r| r)
            }
            Err(e) => Err(e),
        };
        if let Err(err) = finished {
            let node = node.clone();
            let _ = tokio::task::spawn_blocking(move || {
                if let Err(e) = node.remove_tmp(&staging) {
                    tracing::warn!(path = %staging.display(), error = %e, "removing a failed import (swept at the next start)");
                }
            })
            .await;
            return Err(err);
        }
        let record = CheckpointRecord {
            seq: 0,
            id,
            sandbox_id: header.sandbox_id,
            tenant_id: caller.tenant().map(str::to_owned),
            name,
            created_at: now_ms(),
            command: header.command,
            exit_code: header.exit_code,
            auto: false,
            imported: true,
            template: header.template,
            workdir: header.workdir,
            envs: header.envs,
        };
        if let Err(e) = self.inner.store.insert_checkpoint(&record).await {
            self.remove_volume(&record.id).await;
            return Err(e.into());
        }
        tracing::info!(checkpoint = %record.id, from = %header.id, format = format.as_str(), "checkpoint imported");
        Ok(view(&record))
    }
}

/// Most of a refused import's body read and dropped before the refusal.
const DRAIN_BYTES: u64 = 8 << 30;

/// Longest time spent reading a refused import's body.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(30);

/// Reads what is left of a refused import's body, within [`DRAIN_BYTES`]
/// and [`DRAIN_TIME`], and drops it. A server that answers early and closes
/// while the client still sends resets the connection, and the client sees
/// a broken pipe instead of the answer (what a proxy's lingering close
/// avoids); draining first lets the answer through.
async fn drain<S, E>(stream: &mut S)
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    let read = async {
        let mut left = DRAIN_BYTES;
        while let Some(Ok(chunk)) = stream.next().await {
            left = left.saturating_sub(chunk.len() as u64);
            if left == 0 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME, read).await;
}

/// Reads `MAGIC\n{json}\n` off the front of the body; returns the header
/// and the bytes after it.
async fn read_header<S, E>(stream: &mut S) -> Result<(Header, Bytes), CheckpointError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut buf: Vec<u8> = Vec::new();
    let end = loop {
        let newlines: Vec<usize> = buf
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .map(|(i, _)| i)
            .take(2)
            .collect();
        if newlines.len() == 2 {
            break newlines;
        }
        if buf.len() > MAX_HEADER {
            return Err(CheckpointError::BadImport(
                "no checkpoint header in the first MiB of the body".into(),
            ));
        }
        match stream.next().await {
            Some(Ok(chunk)) => buf.extend_from_slice(&chunk),
            Some(Err(e)) => {
                return Err(CheckpointError::BadImport(format!("reading the body: {e}")))
            }
            None => {
                return Err(CheckpointError::BadImport(
                    "the body ended before the checkpoint header did".into(),
                ))
            }
        }
    };
    if &buf[..end[0]] != MAGIC.as_bytes() {
        return Err(CheckpointError::BadImport(format!(
            "not a Warren checkpoint export: it does not start with {MAGIC:?}"
        )));
    }
    let header: Header = serde_json::from_slice(&buf[end[0] + 1..end[1]]).map_err(|e| {
        CheckpointError::BadImport(format!("the checkpoint header does not parse: {e}"))
    })?;
    let rest = Bytes::copy_from_slice(&buf[end[1] + 1..]);
    Ok((header, rest))
}

/// Checks what the header brings besides the name.
fn check_header(h: &Header) -> Result<(), CheckpointError> {
    let bad = |what: &str| CheckpointError::BadImport(format!("the header's {what} is not valid"));
    if !ids::is_valid(IdKind::Sandbox, &h.sandbox_id) {
        return Err(bad("sandbox_id"));
    }
    if warren_runtime::storage::validate_name(&h.template).is_err() {
        return Err(bad("template"));
    }
    if !h.workdir.starts_with('/') || h.workdir.contains('\0') || h.workdir.len() > 4096 {
        return Err(bad("workdir"));
    }
    let env_ok = h.envs.len() <= 256
        && h.envs.iter().all(|(k, v)| {
            !k.is_empty()
                && k.len() <= 256
                && v.len() <= 16 * 1024
                && !k.contains(['=', '\0'])
                && !v.contains('\0')
        });
    if !env_ok {
        return Err(bad("envs"));
    }
    if h.command.as_ref().is_some_and(|c| c.len() > 8192) {
        return Err(bad("command"));
    }
    Ok(())
}

/// Pipes `rest` and the remainder of `stream` into the receiving tool.
async fn receive<S, E>(
    format: Format,
    staging: &Path,
    rest: Bytes,
    stream: &mut S,
) -> Result<(), CheckpointError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut cmd = match format {
        Format::BtrfsSend => {
            let mut cmd = Command::new(program("btrfs"));
            cmd.args(["receive", "--chroot"]).arg(staging);
            cmd
        }
        Format::TarGzip => {
            let mut cmd = Command::new(program("tar"));
            cmd.args([
                "--extract",
                "--file=-",
                "--gzip",
                "--same-owner",
                "--preserve-permissions",
            ])
            .args(TAR_COMMON)
            // File capabilities and trusted attributes would be written as
            // host root's: a capability would hold on the host.
            .args(["--xattrs-exclude=security.*", "--xattrs-exclude=trusted.*"])
            .arg("-C")
            .arg(staging);
            cmd
        }
    };
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(transfer_err("starting the import"))?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let stderr = tokio::spawn(stderr_tail(child.stderr.take().expect("piped stderr")));
    let mut body_error = None;
    let mut chunk: Option<Result<Bytes, E>> = Some(Ok(rest));
    while let Some(next) = chunk {
        match next {
            Ok(bytes) => {
                // A write fails when the tool gave up; its status says why.
                if stdin.write_all(&bytes).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                body_error = Some(e.to_string());
                break;
            }
        }
        chunk = stream.next().await;
    }
    drop(stdin);
    if let Some(reason) = body_error {
        let _ = child.kill().await;
        return Err(CheckpointError::BadImport(format!(
            "the body ended early: {reason}"
        )));
    }
    let status = child
        .wait()
        .await
        .map_err(transfer_err("waiting for the import"))?;
    let tail = stderr.await.unwrap_or_default();
    if !status.success() {
        let tool = match format {
            Format::BtrfsSend => "btrfs receive",
            Format::TarGzip => "tar",
        };
        return Err(CheckpointError::BadImport(format!(
            "{tool} could not take the stream ({}): {}",
            describe(status),
            tail.trim()
        )));
    }
    Ok(())
}

/// Checks the received disk and moves it to `checkpoints/<id>`, read-only.
fn finish(node: &Node, format: Format, staging: &Path, id: &str) -> Result<(), CheckpointError> {
    let driver = node.pool().driver();
    let target = node.checkpoint_volume(id)?;
    let volume = match format {
        Format::BtrfsSend => {
            let made = entries(staging);
            match made.as_slice() {
                [(_, path)] if driver.is_volume(path) => path.clone(),
                _ => {
                    return Err(CheckpointError::BadImport(
                        "the btrfs stream did not hold exactly one subvolume".into(),
                    ))
                }
            }
        }
        Format::TarGzip => staging.to_path_buf(),
    };
    imported::check_tree(&volume, format == Format::TarGzip)?;
    match format {
        // A received subvolume is read-only and cannot be renamed: a
        // read-only snapshot of it (O(1)) takes its place.
        Format::BtrfsSend => {
            driver
                .snapshot(&volume, &target, true)
                .map_err(NodeError::from)?;
            node.remove_tmp(staging)?;
        }
        Format::TarGzip => {
            std::fs::rename(&volume, &target).map_err(transfer_err("placing the import"))?;
            driver
                .set_readonly(&target, true)
                .map_err(NodeError::from)?;
        }
    }
    Ok(())
}

fn describe(status: ExitStatus) -> String {
    match status.code() {
        Some(code) => format!("exit code {code}"),
        None => "killed by a signal".into(),
    }
}

/// The last [`STDERR_TAIL`] bytes a tool wrote on stderr.
async fn stderr_tail(mut stderr: impl AsyncRead + Unpin) -> String {
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = stderr.read(&mut buf).await {
        if n == 0 {
            break;
        }
        all.extend_from_slice(&buf[..n]);
        if all.len() > 2 * STDERR_TAIL {
            all.drain(..all.len() - STDERR_TAIL);
        }
    }
    let start = all.len().saturating_sub(STDERR_TAIL);
    String::from_utf8_lossy(&all[start..]).into_owned()
}

/// Where the export stream is.
enum Export<R> {
    /// The header is next.
    Head(Bytes, R, Child, tokio::task::JoinHandle<String>),
    /// The tool's output is next.
    Body(R, Child, tokio::task::JoinHandle<String>),
    /// Done.
    End,
}

/// Header, then the tool's stdout; at its end, an error item if the tool
/// failed, so the response is cut short instead of looking complete.
fn export_stream<R>(
    head: Bytes,
    stdout: R,
    child: Child,
    stderr: tokio::task::JoinHandle<String>,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send
where
    R: AsyncRead + Unpin + Send + 'static,
{
    futures::stream::unfold(
        Export::Head(head, stdout, child, stderr),
        |state| async move {
            match state {
                Export::Head(head, out, child, err) => {
                    Some((Ok(head), Export::Body(out, child, err)))
                }
                Export::Body(mut out, mut child, err) => {
                    let mut buf = vec![0u8; 256 * 1024];
                    match out.read(&mut buf).await {
                        Ok(0) => {
                            let status = child.wait().await;
                            let tail = err.await.unwrap_or_default();
                            match status {
                                Ok(s) if s.success() => None,
                                Ok(s) => {
                                    tracing::error!(status = %describe(s), stderr = %tail.trim(), "export failed");
                                    Some((
                                        Err(std::io::Error::other("the export failed")),
                                        Export::End,
                                    ))
                                }
                                Err(e) => Some((Err(e), Export::End)),
                            }
                        }
                        Ok(n) => {
                            buf.truncate(n);
                            Some((Ok(Bytes::from(buf)), Export::Body(out, child, err)))
                        }
                        Err(e) => Some((Err(e), Export::End)),
                    }
                }
                Export::End => None,
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            format: Format::TarGzip,
            id: "ckpt_aaaaaaaaaaaaaaaaaaaa".into(),
            name: "n".into(),
            sandbox_id: "sbx_aaaaaaaaaaaaaaaaaaaa".into(),
            template: "base".into(),
            workdir: "/root".into(),
            envs: [("PATH".to_string(), "/bin".to_string())].into(),
            created_at: "2026-01-01T00:00:00.000Z".into(),
            command: None,
            exit_code: None,
        }
    }

    #[tokio::test]
    async fn headers_are_read_off_the_front_in_any_chunking() {
        let mut bytes = format!("{MAGIC}\n").into_bytes();
        bytes.extend(serde_json::to_vec(&header()).unwrap());
        bytes.extend(b"\npayload");
        for split in [1, 7, bytes.len()] {
            let chunks: Vec<Result<Bytes, std::io::Error>> = bytes
                .chunks(split)
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect();
            let mut stream = futures::stream::iter(chunks);
            let (h, rest) = read_header(&mut stream).await.unwrap();
            assert_eq!(h, header());
            let mut tail = rest.to_vec();
            while let Some(Ok(c)) = stream.next().await {
                tail.extend_from_slice(&c);
            }
            assert_eq!(tail, b"payload");
        }
        let mut bad = futures::stream::iter(vec![Ok::<_, std::io::Error>(Bytes::from_static(
            b"GIF89a\n{}\n",
        ))]);
        assert!(matches!(
            read_header(&mut bad).await,
            Err(CheckpointError::BadImport(_))
        ));
    }

    #[test]
    fn headers_are_checked() {
        check_header(&header()).unwrap();
        for broken in [
            Header {
                sandbox_id: "../x".into(),
                ..header()
            },
            Header {
                template: "a/b".into(),
                ..header()
            },
            Header {
                workdir: "relative".into(),
                ..header()
            },
            Header {
                envs: [("A=B".to_string(), String::new())].into(),
                ..header()
            },
        ] {
            assert!(check_header(&broken).is_err(), "{broken:?}");
        }
    }
}
