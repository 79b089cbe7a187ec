//! A one-line progress indicator on stderr for long transfers, shown only
//! when stderr is a terminal (never in `--json` output or in pipes).

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Redraws at most this often.
const EVERY: Duration = Duration::from_millis(100);

/// Bytes moved so far, redrawn as `label: 12.0 MiB / 40.0 MiB (30%) 5.1 MiB/s`.
#[derive(Debug)]
pub struct Progress {
    label: String,
    total: Option<u64>,
    done: AtomicU64,
    started: Instant,
    last_draw: Mutex<Option<Instant>>,
    shown: bool,
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

impl Progress {
    /// A progress line for `label`; drawn only when `enabled` and stderr is
    /// a terminal.
    pub fn new(label: String, total: Option<u64>, enabled: bool) -> Progress {
        Progress {
            label,
            total,
            done: AtomicU64::new(0),
            started: Instant::now(),
            last_draw: Mutex::new(None),
            shown: enabled && std::io::stderr().is_terminal(),
        }
    }

    /// Counts `n` more bytes, redrawing when it is time.
    pub fn add(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        if !self.shown {
            return;
        }
        let Ok(mut last) = self.last_draw.lock() else {
            return;
        };
        if last.is_some_and(|at| at.elapsed() < EVERY) {
            return;
        }
        *last = Some(Instant::now());
        self.draw(done, false);
    }

    /// Draws the final state and ends the line.
    pub fn finish(&self) {
        if self.shown {
            self.draw(self.done.load(Ordering::Relaxed), true);
        }
    }

    fn draw(&self, done: u64, last: bool) {
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let amount = match self.total {
            Some(total) if total > 0 => format!(
                "{:.1} MiB / {:.1} MiB ({}%)",
                mib(done),
                mib(total),
                done.saturating_mul(100) / total
            ),
            _ => format!("{:.1} MiB", mib(done)),
        };
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[2K{}: {amount} {:.1} MiB/s{}",
            self.label,
            mib(done) / secs,
            if last { "\n" } else { "" }
        );
        let _ = err.flush();
    }
}

/// Streams a local file as a request body, counting it on a progress line
/// labelled `<file> -> server`; call [`Progress::finish`] once the request
/// is answered.
pub async fn file_body(
    file: &std::path::Path,
    show: bool,
) -> Result<(reqwest::Body, std::sync::Arc<Progress>), super::cli::CliError> {
    use futures::StreamExt;
    let reader =
        tokio::fs::File::open(file)
            .await
            .map_err(|source| super::cli::CliError::Local {
                what: "opening",
                path: file.display().to_string(),
                source,
            })?;
    let total = reader.metadata().await.ok().map(|m| m.len());
    let progress = std::sync::Arc::new(Progress::new(
        format!("{} -> server", file.display()),
        total,
        show,
    ));
    let counter = progress.clone();
    let body = tokio_util::io::ReaderStream::new(reader).inspect(move |item| {
        if let Ok(chunk) = item {
            counter.add(chunk.len() as u64);
        }
    });
    Ok((reqwest::Body::wrap_stream(body), progress))
}

/// A line on stderr that shows the time spent on work of unknown length
/// (`label... 12.3 s`), redrawn while the work runs; only on a terminal.
pub struct Ticker {
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Ticker {
    /// Starts redrawing `label` with the elapsed time, if `enabled` and
    /// stderr is a terminal.
    pub fn start(label: String, enabled: bool) -> Ticker {
        if !(enabled && std::io::stderr().is_terminal()) {
            return Ticker { task: None };
        }
        let started = Instant::now();
        let task = tokio::spawn(async move {
            loop {
                {
                    let mut err = std::io::stderr().lock();
                    let _ = write!(
                        err,
                        "\r\x1b[2K{label}... {:.1} s",
                        started.elapsed().as_secs_f64()
                    );
                    let _ = err.flush();
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Ticker { task: Some(task) }
    }

    /// Stops redrawing and ends the line.
    pub fn stop(self) {
        if let Some(task) = self.task {
            task.abort();
            eprintln!();
        }
    }
}
