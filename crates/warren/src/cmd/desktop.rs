//! `warren desktop start|stop|status|screenshot|view`: a sandbox's desktop
//! from the terminal (input and window commands in `desktop_input.rs`).

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
    /// Print a live-view URL of the desktop (and open it in a browser when
    /// there is a display).
    View {
        /// The sandbox (`sbx_…`).
        id: String,
        /// A URL that can only watch.
        #[arg(long)]
        view_only: bool,
        /// Seconds the URL works, 1 to 86400 (default 3600).
        #[arg(long)]
        ttl: Option<u64>,
        /// Print the URL only.
        #[arg(long)]
        no_open: bool,
        #[command(flatten)]
        out: Output,
    },
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
        DesktopCommand::View {
            id,
            view_only,
            ttl,
            no_open,
            out,
        } => {
            let url = client
                .sandbox(&id)
                .desktop()
                .stream_url(view_only, ttl)
                .await?;
            if out.json {
                print_json(&url)?;
            } else {
                println!("{}", url.url);
            }
            if !no_open && std::env::var_os("DISPLAY").is_some_and(|d| !d.is_empty()) {
                open_in_browser(&url.url);
            }
            Ok(0)
        }
        DesktopCommand::Input(command) => super::desktop_input::input(client, command).await,
    }
}

/// `xdg-open URL` (which hands the URL to the browser and returns); a
/// failure is only reported.
fn open_in_browser(url: &str) {
    let status = std::process::Command::new("xdg-open")
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => eprintln!("xdg-open failed ({s})"),
        Err(e) => eprintln!("could not run xdg-open: {e}"),
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
