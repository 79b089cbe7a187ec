//! `warren desktop click|move|type|press|scroll|windows|open|launch`: the
//! mouse, keyboard, windows and applications of a sandbox's desktop.

use clap::{Subcommand, ValueEnum};
use warren_client::{Client, MouseButton, MouseClickRequest};

use super::cli::{print_json, print_table, CliResult, Output};

/// The input and window commands of `warren desktop`.
#[derive(Debug, Subcommand)]
pub enum InputCommand {
    /// Click at a position.
    Click {
        /// The sandbox (`sbx_…`).
        id: String,
        /// Horizontal position in screen pixels.
        x: u32,
        /// Vertical position in screen pixels.
        y: u32,
        /// The button.
        #[arg(long, value_enum, default_value = "left")]
        button: Button,
        /// Click twice.
        #[arg(long)]
        double: bool,
    },
    /// Move the pointer.
    Move {
        /// The sandbox (`sbx_…`).
        id: String,
        /// Horizontal position in screen pixels.
        x: u32,
        /// Vertical position in screen pixels.
        y: u32,
    },
    /// Type text as key strokes.
    Type {
        /// The sandbox (`sbx_…`).
        id: String,
        /// The text.
        text: String,
    },
    /// Press keys one after the other, each an X key name or a
    /// combination (`Return`, `ctrl+l`).
    Press {
        /// The sandbox (`sbx_…`).
        id: String,
        /// The keys.
        #[arg(required = true)]
        keys: Vec<String>,
    },
    /// Turn the mouse wheel where the pointer is.
    Scroll {
        /// The sandbox (`sbx_…`).
        id: String,
        /// Scroll up (default: down).
        #[arg(long, conflicts_with = "down")]
        up: bool,
        /// Scroll down.
        #[arg(long)]
        down: bool,
        /// Wheel steps, 1 to 100.
        #[arg(long, default_value_t = 1)]
        amount: u8,
    },
    /// List the top-level windows.
    Windows {
        /// The sandbox (`sbx_…`).
        id: String,
        #[command(flatten)]
        out: Output,
    },
    /// Open a URL or file with its default handler.
    Open {
        /// The sandbox (`sbx_…`).
        id: String,
        /// An `http(s)://` or `file://` URL, or a path.
        target: String,
    },
    /// Start an application on the display.
    Launch {
        /// The sandbox (`sbx_…`).
        id: String,
        /// The program, looked up in `PATH`.
        app: String,
        /// Its arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// A mouse button of `warren desktop click`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Button {
    /// Button 1.
    Left,
    /// Button 3.
    Right,
    /// Button 2.
    Middle,
}

/// Runs an input or window command.
pub async fn input(client: &Client, command: InputCommand) -> CliResult {
    match command {
        InputCommand::Click {
            id,
            x,
            y,
            button,
            double,
        } => {
            let request = MouseClickRequest {
                x: Some(x),
                y: Some(y),
                button: match button {
                    Button::Left => MouseButton::Left,
                    Button::Right => MouseButton::Right,
                    Button::Middle => MouseButton::Middle,
                },
                count: Some(if double { 2 } else { 1 }),
            };
            client.sandbox(&id).desktop().click(&request).await?;
        }
        InputCommand::Move { id, x, y } => client.sandbox(&id).desktop().move_mouse(x, y).await?,
        InputCommand::Type { id, text } => client.sandbox(&id).desktop().type_text(&text).await?,
        InputCommand::Press { id, keys } => {
            let desktop = client.sandbox(&id).desktop();
            for key in &keys {
                desktop.press(key).await?;
            }
        }
        InputCommand::Scroll { id, up, amount, .. } => {
            let steps = i32::from(amount);
            let dy = if up { -steps } else { steps };
            client.sandbox(&id).desktop().scroll(0, dy).await?;
        }
        InputCommand::Windows { id, out } => {
            let windows = client.sandbox(&id).desktop().windows().await?;
            if out.json {
                return print_json(&windows);
            }
            let rows: Vec<Vec<String>> = windows
                .iter()
                .map(|w| {
                    vec![
                        w.id.to_string(),
                        format!("{}x{}+{}+{}", w.width, w.height, w.x, w.y),
                        if w.focused { "*" } else { "" }.to_string(),
                        w.title.clone(),
                    ]
                })
                .collect();
            print_table(&["ID", "GEOMETRY", "FOCUS", "TITLE"], &rows);
        }
        InputCommand::Open { id, target } => {
            let launched = client.sandbox(&id).desktop().open(&target).await?;
            println!("{}", launched.process_id);
        }
        InputCommand::Launch { id, app, args } => {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let launched = client.sandbox(&id).desktop().launch(&app, &args).await?;
            println!("{}", launched.process_id);
        }
    }
    Ok(0)
}
