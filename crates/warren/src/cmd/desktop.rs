//! `warren desktop start|stop|status|screenshot`: a sandbox's desktop from
//! the terminal (input and window commands in `desktop_input.rs`).

use clap::{Args, Subcommand, ValueEnum};
use warren_client::{Client, DesktopStartRequest, DesktopStatus, ImageFormat, ScreenshotQuery};

use super::cli::{print_json, print_table, CliError, CliResult, Output};

/// `warren desktop ...`.
#[derive(Debug, Subcommand)]
pub enum DesktopCommand {
    /// Start the display and window manager of a sandbox.
    Start {
        /// The sandbox (`sbx_…`).
        id: String,
        /// Screen width in pixels (default 1280).
        #[arg(long)]
        width: Option<u32>,
        /// Screen height in pixels (default 800).
        #[arg(long)]
        height: Option<u32>,
        /// Dots per inch (default 96).
        #[arg(long)]
        dpi: Option<u32>,
        #[command(flatten)]
        out: Output,
    },
    /// Stop the display.
    Stop {
        /// The sandbox (`sbx_…`).
        id: String,
        #[command(flatten)]
        out: Output,
    },
    /// Whether the desktop runs, and its processes.
    Status {
        /// The sandbox (`sbx_…`).
        id: String,
        #[command(flatten)]
        out: Output,
    },
    /// Save a screenshot to a file.
    Screenshot(ScreenshotArgs),
    /// Mouse, keyboard, windows and applications.
    #[command(flatten)]
    Input(super::desktop_input::InputCommand),
}

/// Image format of `warren desktop screenshot`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    /// PNG.
    Png,
    /// JPEG.
    Jpeg,
}

/// `warren desktop screenshot`.
#[derive(Debug, Args)]
pub struct ScreenshotArgs {
    /// The sandbox (`sbx_…`).
    id: String,
    /// Where to write the image.
    #[arg(short, long)]
    output: String,
    /// The image format (default: png).
    #[arg(long, value_enum, default_value = "png")]
    format: Format,
    /// JPEG quality, 1 to 100.
    #[arg(long)]
    quality: Option<u32>,
    /// Scale factor, above 0 and at most 1.
    #[arg(long)]
    scale: Option<f64>,
    /// Draw the mouse pointer.
    #[arg(long)]
    cursor: bool,
}

/// Runs a `warren desktop` command.
pub async fn desktop(client: &Client, command: DesktopCommand) -> CliResult {
    match command {
        DesktopCommand::Start {
            id,
            width,
            height,
            dpi,
            out,
        } => {
            let request = DesktopStartRequest { width, height, dpi };
            let status = client.sandbox(&id).desktop().start(&request).await?;
            show(&status, out)
        }
        DesktopCommand::Stop { id, out } => show(&client.sandbox(&id).desktop().stop().await?, out),
        DesktopCommand::Status { id, out } => {
            show(&client.sandbox(&id).desktop().status().await?, out)
        }
        DesktopCommand::Screenshot(args) => screenshot(client, args).await,
        DesktopCommand::Input(command) => super::desktop_input::input(client, command).await,
    }
}

async fn screenshot(client: &Client, args: ScreenshotArgs) -> CliResult {
    let query = ScreenshotQuery {
        format: match args.format {
            Format::Png => ImageFormat::Png,
            Format::Jpeg => ImageFormat::Jpeg,
        },
        quality: args.quality,
        scale: args.scale,
        cursor: Some(args.cursor),
    };
    let image = client
        .sandbox(&args.id)
        .desktop()
        .screenshot(&query)
        .await?;
    tokio::fs::write(&args.output, &image)
        .await
        .map_err(|source| CliError::Local {
            what: "writing",
            path: args.output.clone(),
            source,
        })?;
    eprintln!("{} ({} bytes)", args.output, image.len());
    Ok(0)
}

fn show(status: &DesktopStatus, out: Output) -> CliResult {
    if out.json {
        return print_json(status);
    }
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    print_table(
        &["RUNNING", "DISPLAY", "SIZE", "DPI", "PROCESSES"],
        &[vec![
            status.running.to_string(),
            or_dash(status.display.clone()),
            or_dash(
                status
                    .width
                    .zip(status.height)
                    .map(|(w, h)| format!("{w}x{h}")),
            ),
            or_dash(status.dpi.map(|d| d.to_string())),
            status
                .processes
                .iter()
                .map(|p| format!("{}:{}", p.name, if p.running { "up" } else { "down" }))
                .collect::<Vec<_>>()
                .join(","),
        ]],
    );
    Ok(0)
}
