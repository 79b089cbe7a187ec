//! `warren exec`, `warren run` and `warren logs`: commands whose output is
//! streamed live (SSE `logs?follow=true`) and whose exit code becomes the
//! CLI's.

use std::io::Write;

use clap::Args;
use futures::StreamExt;
use tokio::io::AsyncReadExt;
use tokio::signal::unix::{signal, SignalKind};
use warren_client::{
    chunk_bytes, Client, ExitStatus, OutputEvent, Process, Sandbox, SignalSpec, StartRequest,
    StreamKind,
};

use super::cli::{parse_pairs, print_json, print_table, CliError, CliResult, Output};
use super::sandboxes::CreateArgs;

/// What to run and how (shared by `exec` and `run`).
#[derive(Debug, Args)]
pub struct CommandArgs {
    /// Working directory inside the sandbox.
    #[arg(long, short = 'w')]
    cwd: Option<String>,
    /// Run as this user of the sandbox (a name, such as `base`'s `user`,
    /// or a uid): its uid, groups and HOME. Default: root.
    #[arg(long, short = 'u')]
    user: Option<String>,
    /// Forward this terminal's stdin to the command (closed at EOF).
    #[arg(long, short = 'i')]
    interactive: bool,
    /// The command: one argument is a shell command line (`sh -c`), more
    /// are a program and its arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    cmd: Vec<String>,
}

impl CommandArgs {
    fn request(&self, envs: &[String]) -> Result<StartRequest, CliError> {
        let env = parse_pairs("env", envs)?;
        let (cmd, argv) = match self.cmd.as_slice() {
            [line] => (Some(line.clone()), None),
            argv => (None, Some(argv.to_vec())),
        };
        Ok(StartRequest {
            cmd,
            argv,
            cwd: self.cwd.clone(),
            user: self.user.clone(),
            env: (!env.is_empty()).then_some(env),
            ..StartRequest::default()
        })
    }
}

/// `warren exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The sandbox (`sbx_…`).
    id: String,
    /// An environment variable of the command, `KEY=VALUE` (repeatable).
    #[arg(long = "env", short = 'e')]
    envs: Vec<String>,
    #[command(flatten)]
    command: CommandArgs,
    #[command(flatten)]
    out: Output,
}

/// `warren run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    create: CreateArgs,
    #[command(flatten)]
    command: CommandArgs,
}

/// `warren logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The sandbox (`sbx_…`).
    id: String,
    /// The process (`proc_…` or its pid).
    process: String,
    /// Keep printing output until the process exits.
    #[arg(long, short)]
    follow: bool,
    #[command(flatten)]
    out: Output,
}

/// `warren ps`.
#[derive(Debug, Args)]
pub struct PsArgs {
    /// The sandbox (`sbx_…`).
    id: String,
    #[command(flatten)]
    out: Output,
}

/// Collected output, for `--json`.
#[derive(Debug, Default, serde::Serialize)]
struct Collected {
    process_id: String,
    exit_code: Option<i32>,
    signal: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Starts the command, forwards stdin if asked, and streams its output to
/// this process's stdout and stderr (or collects it for `--json`).
async fn stream(sandbox: &Sandbox, args: &CommandArgs, envs: &[String], json: bool) -> CliResult {
    let process = sandbox.spawn_with(&args.request(envs)?).await?;
    if args.interactive {
        tokio::spawn(forward_stdin(process.clone()));
    }
    let forwarder = tokio::spawn(forward_signals(process.clone()));
    let followed = follow(&process, json).await;
    forwarder.abort();
    let (status, collected) = followed?;
    if json {
        print_json(&Collected {
            exit_code: status.exit_code,
            signal: status.signal,
            ..collected
        })?;
    }
    Ok(status.code())
}

/// Prints (or collects) a process's output until it exits.
async fn follow(process: &Process, collect: bool) -> Result<(ExitStatus, Collected), CliError> {
    let mut collected = Collected {
        process_id: process.id().to_string(),
        ..Collected::default()
    };
    let mut output = std::pin::pin!(process.output());
    while let Some(event) = output.next().await {
        match event? {
            OutputEvent::Output { stream, data, .. } => {
                if collect {
                    let text = String::from_utf8_lossy(&data);
                    match stream {
                        StreamKind::Stdout => collected.stdout.push_str(&text),
                        StreamKind::Stderr => collected.stderr.push_str(&text),
                    }
                } else {
                    write_out(stream, &data);
                }
            }
            OutputEvent::Dropped { bytes } => {
                eprintln!("warren: {bytes} bytes of output were lost (the buffer overflowed)");
            }
            OutputEvent::Exit(status) => return Ok((status, collected)),
        }
    }
    // The stream ends only after `Exit` or an error, both returned above.
    Err(warren_client::Error::StreamBroken(process.id().to_string()).into())
}

fn write_out(stream: StreamKind, data: &[u8]) {
    // A closed stdout (`| head`) is no reason to stop the command.
    let _ = match stream {
        StreamKind::Stdout => {
            let mut out = std::io::stdout().lock();
            out.write_all(data).and_then(|()| out.flush())
        }
        StreamKind::Stderr => {
            let mut err = std::io::stderr().lock();
            err.write_all(data).and_then(|()| err.flush())
        }
    };
}

/// Copies this process's stdin to the command's, closing it at EOF.
async fn forward_stdin(process: Process) {
    let mut stdin = tokio::io::stdin();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match stdin.read(&mut buf).await {
            Ok(0) | Err(_) => {
                if let Err(e) = process.close_stdin(b"").await {
                    eprintln!("warren: closing stdin: {e}");
                }
                return;
            }
            Ok(n) => {
                if let Err(e) = process.write_stdin(&buf[..n]).await {
                    eprintln!("warren: writing stdin: {e}");
                    return;
                }
            }
        }
    }
}

/// Passes Ctrl-C (SIGINT), SIGTERM and SIGHUP on to the remote process
/// group, so that it ends like a local command would; the output keeps
/// flowing until it exits.
async fn forward_signals(process: Process) {
    let kinds = [
        (SignalKind::interrupt(), "SIGINT"),
        (SignalKind::terminate(), "SIGTERM"),
        (SignalKind::hangup(), "SIGHUP"),
    ];
    let mut streams = Vec::new();
    for (kind, name) in kinds {
        match signal(kind) {
            Ok(stream) => streams.push((stream, name)),
            Err(e) => eprintln!("warren: cannot forward {name}: {e}"),
        }
    }
    loop {
        let received = futures::future::select_all(
            streams
                .iter_mut()
                .map(|(stream, name)| Box::pin(async move { stream.recv().await.map(|_| *name) })),
        )
        .await
        .0;
        let Some(name) = received else { return };
        if let Err(e) = process.signal(SignalSpec::Name(name.into())).await {
            eprintln!("warren: forwarding {name}: {e}");
        }
    }
}

/// `warren exec`.
pub async fn exec(client: &Client, args: ExecArgs) -> CliResult {
    stream(
        &client.sandbox(&args.id),
        &args.command,
        &args.envs,
        args.out.json,
    )
    .await
}

/// `warren run`: create, run, destroy (even when the run failed).
pub async fn run(client: &Client, args: RunArgs) -> CliResult {
    let sandbox = client.create(&args.create.request()?).await?;
    // The sandbox's `--env` already reaches the command.
    let result = stream(&sandbox, &args.command, &[], args.create.json()).await;
    if let Err(e) = sandbox.delete().await {
        eprintln!("error: destroying {}: {e}", sandbox.id());
    }
    result
}

/// `warren logs`.
pub async fn logs(client: &Client, args: LogsArgs) -> CliResult {
    let process = client.sandbox(&args.id).process(&args.process).await?;
    if args.follow {
        let (status, collected) = follow(&process, args.out.json).await?;
        if args.out.json {
            print_json(&Collected {
                exit_code: status.exit_code,
                signal: status.signal,
                ..collected
            })?;
        }
        return Ok(0);
    }
    let logs = process.logs(0).await?;
    if args.out.json {
        return print_json(&logs);
    }
    for chunk in &logs.chunks {
        write_out(chunk.stream, &chunk_bytes(chunk)?);
    }
    Ok(0)
}

/// `warren ps`: the managed processes of a sandbox.
pub async fn ps(client: &Client, args: PsArgs) -> CliResult {
    let items = client.sandbox(&args.id).processes().await?;
    if args.out.json {
        return print_json(&items);
    }
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|p| {
            let status = match (p.exit_code, p.signal) {
                (Some(code), _) => format!("exited {code}"),
                (None, Some(signal)) => format!("killed {signal}"),
                (None, None) => "running".to_string(),
            };
            let command = p
                .cmd
                .clone()
                .or_else(|| p.argv.as_ref().map(|argv| argv.join(" ")))
                .unwrap_or_default();
            vec![
                p.id.clone(),
                p.pid.to_string(),
                status,
                p.started_at.clone(),
                command,
            ]
        })
        .collect();
    print_table(&["ID", "PID", "STATUS", "STARTED", "COMMAND"], &rows);
    Ok(0)
}
