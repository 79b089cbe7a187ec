//! `warren checkpoint create|ls|diff|rm`, `warren restore`, `warren fork`.

use std::path::Path;

use clap::{Args, Subcommand};
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use warren_client::{Checkpoint, Client, DiffChange};

use super::cli::{print_json, print_table, CliError, CliResult, Output};
use super::progress::Progress;

/// `warren checkpoint ...`.
#[derive(Debug, Subcommand)]
pub enum CheckpointCommand {
    /// Snapshot a sandbox's disk; prints the checkpoint's id.
    Create {
        /// The sandbox (`sbx_…`).
        id: String,
        /// A name for people.
        #[arg(long, short)]
        name: Option<String>,
        #[command(flatten)]
        out: Output,
    },
    /// List the checkpoints of a sandbox (of every sandbox without one).
    Ls {
        /// The sandbox (`sbx_…`).
        id: Option<String>,
        #[command(flatten)]
        out: Output,
    },
    /// What changed since checkpoint A, up to checkpoint B or (without it)
    /// the sandbox's live disk: one line per path (change, size, path).
    Diff {
        /// The older checkpoint (`ckpt_…`).
        from: String,
        /// The newer checkpoint (`ckpt_…`); default: the live disk.
        to: Option<String>,
        /// Print this file's unified diff instead (absolute path).
        #[arg(long)]
        path: Option<String>,
        #[command(flatten)]
        out: Output,
    },
    /// Write a checkpoint's export stream to a file, to import elsewhere.
    Export {
        /// The checkpoint (`ckpt_…`).
        id: String,
        /// The file to write.
        file: std::path::PathBuf,
        /// `btrfs-send` or `tar-gzip` (default: the server's own).
        #[arg(long)]
        format: Option<String>,
        #[command(flatten)]
        out: Output,
    },
    /// Make a checkpoint of an export file; prints its id.
    Import {
        /// The export file.
        file: std::path::PathBuf,
        #[command(flatten)]
        out: Output,
    },
    /// Delete checkpoints.
    Rm {
        /// The checkpoints (`ckpt_…`).
        #[arg(required = true)]
        ids: Vec<String>,
        #[command(flatten)]
        out: Output,
    },
}

/// `warren restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The sandbox (`sbx_…`).
    id: String,
    /// The checkpoint whose disk it gets (`ckpt_…`).
    checkpoint: String,
    #[command(flatten)]
    out: Output,
}

/// `warren fork`.
#[derive(Debug, Args)]
pub struct ForkArgs {
    /// The sandbox (`sbx_…`).
    id: String,
    /// How many sandboxes to make.
    #[arg(long, short = 'n', default_value_t = 1)]
    count: u32,
    #[command(flatten)]
    out: Output,
}

fn print_checkpoints(items: &[Checkpoint]) {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|c| {
            vec![
                c.id.clone(),
                c.name.clone(),
                c.sandbox_id.clone(),
                c.created_at.clone(),
                c.command.clone().unwrap_or_default(),
            ]
        })
        .collect();
    print_table(&["ID", "NAME", "SANDBOX", "CREATED", "COMMAND"], &rows);
}

/// `warren checkpoint ...`.
pub async fn checkpoint(client: &Client, command: CheckpointCommand) -> CliResult {
    match command {
        CheckpointCommand::Create { id, name, out } => {
            let checkpoint = client.sandbox(&id).checkpoint(name.as_deref()).await?;
            if out.json {
                return print_json(&checkpoint);
            }
            println!("{}", checkpoint.id);
            Ok(0)
        }
        CheckpointCommand::Ls { id, out } => {
            let items = match id {
                Some(id) => client.sandbox(&id).checkpoints().await?,
                None => client.checkpoints().await?,
            };
            if out.json {
                return print_json(&items);
            }
            print_checkpoints(&items);
            Ok(0)
        }
        CheckpointCommand::Diff {
            from,
            to,
            path,
            out,
        } => diff(client, &from, to.as_deref(), path.as_deref(), out).await,
        CheckpointCommand::Export {
            id,
            file,
            format,
            out,
        } => export(client, &id, &file, format.as_deref(), out).await,
        CheckpointCommand::Import { file, out } => import(client, &file, out).await,
        CheckpointCommand::Rm { ids, out } => {
            let mut removed = Vec::new();
            let mut code = 0;
            for id in ids {
                match client.delete_checkpoint(&id).await {
                    Ok(()) => removed.push(id),
                    Err(e) => {
                        eprintln!("error: {e}");
                        code = 1;
                    }
                }
            }
            if out.json {
                print_json(&serde_json::json!({ "removed": removed }))?;
            } else {
                removed.iter().for_each(|id| println!("{id}"));
            }
            Ok(code)
        }
    }
}

/// `warren restore`.
pub async fn restore(client: &Client, args: RestoreArgs) -> CliResult {
    let mut sandbox = client.sandbox(&args.id);
    let info = sandbox.restore(&args.checkpoint).await?;
    if args.out.json {
        return print_json(info);
    }
    println!("{} restored to {}", info.id, args.checkpoint);
    Ok(0)
}

/// `warren fork`: prints the new sandboxes' ids.
pub async fn fork(client: &Client, args: ForkArgs) -> CliResult {
    let (forks, checkpoint) = client.sandbox(&args.id).fork(args.count).await?;
    if args.out.json {
        let items: Vec<_> = forks.iter().filter_map(|s| s.info()).collect();
        return print_json(&serde_json::json!({ "items": items, "checkpoint_id": checkpoint }));
    }
    forks.iter().for_each(|s| println!("{}", s.id()));
    Ok(0)
}

fn local(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> CliError {
    let path = path.display().to_string();
    move |source| CliError::Local { what, path, source }
}

/// `warren checkpoint export`: streams the export into `file`.
async fn export(
    client: &Client,
    id: &str,
    file: &Path,
    format: Option<&str>,
    out: Output,
) -> CliResult {
    let mut stream = client.export_checkpoint(id, format).await?;
    let mut writer = tokio::fs::File::create(file)
        .await
        .map_err(local("creating", file))?;
    let progress = Progress::new(format!("{id} -> {}", file.display()), None, !out.json);
    let mut bytes = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        bytes += chunk.len() as u64;
        progress.add(chunk.len() as u64);
        writer
            .write_all(&chunk)
            .await
            .map_err(local("writing", file))?;
    }
    writer.flush().await.map_err(local("writing", file))?;
    progress.finish();
    if out.json {
        return print_json(&serde_json::json!({ "path": file, "bytes": bytes }));
    }
    Ok(0)
}

/// `warren checkpoint import`: streams `file` to the server.
async fn import(client: &Client, file: &Path, out: Output) -> CliResult {
    let (body, progress) = super::progress::file_body(file, !out.json).await?;
    let checkpoint = client.import_checkpoint(body).await?;
    progress.finish();
    if out.json {
        return print_json(&checkpoint);
    }
    println!("{}", checkpoint.id);
    Ok(0)
}

/// `warren checkpoint diff A [B] [--path P]`.
async fn diff(
    client: &Client,
    from: &str,
    to: Option<&str>,
    path: Option<&str>,
    out: Output,
) -> CliResult {
    if let Some(path) = path {
        let diff = client.checkpoint_file_diff(from, path, to).await?;
        if out.json {
            return print_json(&diff);
        }
        match &diff.unified {
            Some(text) => print!("{text}"),
            None => println!("binary file {} {}", diff.path, change_name(diff.change)),
        }
        if diff.truncated {
            eprintln!("(compared the first MiB of each side only)");
        }
        return Ok(0);
    }
    let diff = client.checkpoint_diff(from, to).await?;
    if out.json {
        return print_json(&diff);
    }
    let rows: Vec<Vec<String>> = diff
        .items
        .iter()
        .map(|item| {
            vec![
                change_name(item.change).to_string(),
                item.size.to_string(),
                item.path.clone(),
            ]
        })
        .collect();
    print_table(&["CHANGE", "SIZE", "PATH"], &rows);
    if diff.truncated {
        eprintln!("(truncated: more changes than listed)");
    }
    Ok(0)
}

fn change_name(change: DiffChange) -> &'static str {
    match change {
        DiffChange::Added => "added",
        DiffChange::Modified => "modified",
        DiffChange::Deleted => "deleted",
        DiffChange::Unchanged => "unchanged",
    }
}
