//! `warren shell ID`: an interactive terminal in a sandbox over the attach
//! WebSocket. The local terminal is put in raw mode (restored on every way
//! out), SIGWINCH resizes the remote one, and Ctrl-] detaches, leaving the
//! shell running.

use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};

use clap::Args;
use nix::sys::termios::{self, SetArg, Termios};
use tokio::io::AsyncReadExt;
use tokio::signal::unix::{signal, SignalKind};
use warren_client::{Client, PtyEvent, PtyInput, PtyOptions};

use super::cli::{CliError, CliResult};

/// The detach key: Ctrl-] (as in telnet and `docker attach`).
const DETACH: u8 = 0x1d;

/// `warren shell`.
#[derive(Debug, Args)]
pub struct ShellArgs {
    /// The sandbox (`sbx_…`).
    id: String,
    /// Run this command line instead of a login shell.
    #[arg(long, short)]
    cmd: Option<String>,
    /// Run as this user of the sandbox (a name, such as `base`'s `user`,
    /// or a uid). Default: root.
    #[arg(long, short)]
    user: Option<String>,
    /// Working directory inside the sandbox.
    #[arg(long, short = 'w')]
    cwd: Option<String>,
}

/// Puts the terminal in raw mode and restores it when dropped.
struct RawMode {
    saved: Termios,
}

impl RawMode {
    fn enable(fd: BorrowedFd<'_>) -> Result<RawMode, CliError> {
        let saved = termios::tcgetattr(fd).map_err(|e| local("reading the terminal mode", e))?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(fd, SetArg::TCSANOW, &raw).map_err(|e| local("setting raw mode", e))?;
        Ok(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let stdin = std::io::stdin();
        let _ = termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &self.saved);
    }
}

fn local(what: &'static str, e: nix::Error) -> CliError {
    CliError::Local {
        what,
        path: "stdin".into(),
        source: std::io::Error::from(e),
    }
}

/// The size of the terminal on stdin, `(cols, rows)`; 80x24 when unknown.
fn terminal_size() -> (u16, u16) {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` into the valid, exclusively
    // borrowed struct; fd 0 is only read.
    let ok = unsafe { libc::ioctl(0, libc::TIOCGWINSZ, &mut size) } == 0;
    if ok && size.ws_col > 0 && size.ws_row > 0 {
        (size.ws_col, size.ws_row)
    } else {
        (80, 24)
    }
}

/// `warren shell`.
pub async fn shell(client: &Client, args: ShellArgs) -> CliResult {
    let stdin = std::io::stdin();
    if !nix::unistd::isatty(libc::STDIN_FILENO).unwrap_or(false) {
        return Err(CliError::Usage(
            "warren shell needs a terminal on stdin; use `warren exec` for scripts".into(),
        ));
    }
    let (cols, rows) = terminal_size();
    let pty = client
        .sandbox(&args.id)
        .pty_with(&PtyOptions {
            cmd: args.cmd,
            cols,
            rows,
            user: args.user,
            cwd: args.cwd,
            env: None,
        })
        .await?;
    let (process, input, mut output) = pty.split();
    let raw = RawMode::enable(stdin.as_fd())?;
    let (detach_tx, mut detached) = tokio::sync::oneshot::channel();
    tokio::spawn(pump_keys(input.clone(), detach_tx));
    tokio::spawn(follow_resizes(input));
    let code = loop {
        tokio::select! {
            event = output.recv() => match event {
                Ok(Some(PtyEvent::Output(data))) => {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(&data).and_then(|()| out.flush());
                }
                Ok(Some(PtyEvent::Dropped { .. })) => {}
                Ok(Some(PtyEvent::Exit(status))) => break Ok(status.code()),
                Ok(None) => break Ok(0),
                Err(e) => break Err(e.into()),
            },
            _ = &mut detached => {
                drop(raw);
                eprintln!("\r\ndetached; {} keeps running in {}", process.id(), args.id);
                return Ok(0);
            }
        }
    };
    drop(raw);
    code
}

/// Sends keystrokes to the terminal until stdin ends or the detach key.
async fn pump_keys(input: PtyInput, detach: tokio::sync::oneshot::Sender<()>) {
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 4096];
    loop {
        let n = match stdin.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let keys = &buf[..n];
        if let Some(at) = keys.iter().position(|&b| b == DETACH) {
            if at > 0 {
                let _ = input.send(&keys[..at]).await;
            }
            let _ = detach.send(());
            return;
        }
        if input.send(keys).await.is_err() {
            return;
        }
    }
}

/// Resizes the remote terminal whenever the local one is.
async fn follow_resizes(input: PtyInput) {
    let Ok(mut winch) = signal(SignalKind::window_change()) else {
        return;
    };
    while winch.recv().await.is_some() {
        let (cols, rows) = terminal_size();
        if input.resize(cols, rows).await.is_err() {
            return;
        }
    }
}
