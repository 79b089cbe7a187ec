//! `warren cp`: files and directories in both directions. Files travel as
//! raw streamed bodies; directories as a tar made (or unpacked) while it is
//! sent, never held whole in memory.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use clap::Args;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use warren_client::{Client, Files};

use super::cli::{print_json, CliError, CliResult, Output};
use super::progress::Progress;

/// Chunks in flight between the tar thread and the network.
const DEPTH: usize = 16;

/// `warren cp`.
#[derive(Debug, Args)]
pub struct CpArgs {
    /// `LOCAL` or `ID:PATH`.
    src: String,
    /// `ID:PATH` or `LOCAL`.
    dst: String,
    #[command(flatten)]
    out: Output,
}

/// `ID:PATH`, when `arg` names a sandbox path.
fn remote(arg: &str) -> Option<(&str, &str)> {
    let (id, path) = arg.split_once(':')?;
    (id.starts_with("sbx_") && !id.contains('/')).then_some((id, path))
}

fn io_err(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> CliError {
    let path = path.display().to_string();
    move |source| CliError::Local { what, path, source }
}

/// The last component of a path, as the name a copy gets inside a directory.
fn base_name(path: &str) -> Result<String, CliError> {
    Path::new(path.trim_end_matches('/'))
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| CliError::Usage(format!("{path:?} names no file")))
}

/// `warren cp`.
pub async fn cp(client: &Client, args: CpArgs) -> CliResult {
    let (bytes, to) =
        match (remote(&args.src), remote(&args.dst)) {
            (None, Some((id, path))) => {
                let show = !args.out.json;
                upload(
                    &client.sandbox(id).files(),
                    Path::new(&args.src),
                    path,
                    show,
                )
                .await?
            }
            (Some((id, path)), None) => {
                let show = !args.out.json;
                download(
                    &client.sandbox(id).files(),
                    path,
                    Path::new(&args.dst),
                    show,
                )
                .await?
            }
            _ => return Err(CliError::Usage(
                "cp copies between here and a sandbox: `cp LOCAL ID:PATH` or `cp ID:PATH LOCAL`"
                    .into(),
            )),
        };
    if args.out.json {
        return print_json(&serde_json::json!({ "path": to, "bytes": bytes }));
    }
    Ok(0)
}

/// Copies a local file or directory to `dest` in the sandbox (into it,
/// when `dest` is an existing directory). Returns bytes sent and the path.
async fn upload(
    files: &Files,
    src: &Path,
    dest: &str,
    show: bool,
) -> Result<(u64, String), CliError> {
    let meta = tokio::fs::metadata(src)
        .await
        .map_err(io_err("reading", src))?;
    let stat = files.stat(dest).await?;
    let target = if stat.is_dir {
        format!(
            "{}/{}",
            dest.trim_end_matches('/'),
            base_name(&src.to_string_lossy())?
        )
    } else {
        dest.to_string()
    };
    let total = (!meta.is_dir()).then_some(meta.len());
    let progress = Arc::new(Progress::new(
        format!("{} -> {target}", src.display()),
        total,
        show,
    ));
    let counter = progress.clone();
    let count = move |item: &std::io::Result<Bytes>| {
        if let Ok(bytes) = item {
            counter.add(bytes.len() as u64);
        }
    };
    let sent = if meta.is_dir() {
        let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(DEPTH);
        let dir = src.to_path_buf();
        let producer = tokio::task::spawn_blocking(move || {
            let mut builder = tar::Builder::new(ChannelWriter { tx: tx.clone() });
            builder.follow_symlinks(false);
            let result = builder
                .append_dir_all(".", &dir)
                .and_then(|()| builder.finish());
            if let Err(e) = result {
                let _ = tx.blocking_send(Err(e));
            }
        });
        let body = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        })
        .inspect(count);
        let written = files
            .upload(&target, reqwest::Body::wrap_stream(body))
            .await?;
        drop(producer.await);
        written.bytes
    } else {
        let file = tokio::fs::File::open(src)
            .await
            .map_err(io_err("opening", src))?;
        let body = tokio_util::io::ReaderStream::new(file).inspect(count);
        let written = files
            .write(&target, reqwest::Body::wrap_stream(body))
            .await?;
        written.bytes
    };
    progress.finish();
    Ok((sent, target))
}

/// Copies a sandbox file or directory to `dest` here (into it, when
/// `dest` is an existing directory). Returns bytes received and the path.
async fn download(
    files: &Files,
    src: &str,
    dest: &Path,
    show: bool,
) -> Result<(u64, String), CliError> {
    let stat = files.stat(src).await?;
    if !stat.exists {
        return Err(CliError::Client(warren_client::Error::Api {
            code: warren_client::ErrorCode::FileNotFound,
            status: 404,
            detail: format!("no file or directory {src} in the sandbox"),
        }));
    }
    let target: PathBuf = if dest.is_dir() {
        dest.join(base_name(src)?)
    } else {
        dest.to_path_buf()
    };
    let shown = target.display().to_string();
    let total = (!stat.is_dir).then_some(stat.size);
    let progress = Progress::new(format!("{src} -> {shown}"), total, show);
    let received = if stat.is_dir {
        tokio::fs::create_dir_all(&target)
            .await
            .map_err(io_err("creating", &target))?;
        let mut stream = std::pin::pin!(files.download(src).await?);
        let (tx, rx) = mpsc::channel::<Bytes>(DEPTH);
        let into = target.clone();
        let unpacker = tokio::task::spawn_blocking(move || {
            let reader = ChannelReader {
                rx,
                current: Bytes::new(),
                read: 0,
            };
            let mut archive = tar::Archive::new(reader);
            archive.set_preserve_permissions(true);
            let result = archive.unpack(&into);
            let read = archive.into_inner().read;
            result.map(|()| read)
        });
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            progress.add(chunk.len() as u64);
            if tx.send(chunk).await.is_err() {
                break; // The unpacker failed; its error is reported below.
            }
        }
        drop(tx);
        let bytes = unpacker.await?.map_err(io_err("unpacking into", &target))?;
        bytes
    } else {
        let mut stream = std::pin::pin!(files.read_stream(src).await?);
        let mut file = tokio::fs::File::create(&target)
            .await
            .map_err(io_err("creating", &target))?;
        let mut bytes = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            bytes += chunk.len() as u64;
            progress.add(chunk.len() as u64);
            file.write_all(&chunk)
                .await
                .map_err(io_err("writing", &target))?;
        }
        file.flush().await.map_err(io_err("writing", &target))?;
        bytes
    };
    progress.finish();
    Ok((received, shown))
}

/// A `Write` that hands what is written to the async side, chunk by chunk.
struct ChannelWriter {
    tx: mpsc::Sender<std::io::Result<Bytes>>,
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tx
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "upload ended"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A `Read` over chunks arriving from the async side.
struct ChannelReader {
    rx: mpsc::Receiver<Bytes>,
    current: Bytes,
    read: u64,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.current = chunk,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        self.read += n as u64;
        Ok(n)
    }
}
