//! `warren template ls|rm`. (The server has no routes to build or import
//! templates yet; `warren server` builds `base` itself.)

use clap::Subcommand;
use warren_client::Client;

use super::cli::{pairs, print_json, print_table, CliResult, Output};

/// `warren template ...`.
#[derive(Debug, Subcommand)]
pub enum TemplateCommand {
    /// List the server's templates.
    Ls {
        #[command(flatten)]
        out: Output,
    },
    /// Delete a template.
    Rm {
        /// Its name.
        name: String,
        #[command(flatten)]
        out: Output,
    },
}

/// `warren template ...`.
pub async fn template(client: &Client, command: TemplateCommand) -> CliResult {
    match command {
        TemplateCommand::Ls { out } => {
            let items = client.templates().await?;
            if out.json {
                return print_json(&items);
            }
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|t| {
                    vec![
                        t.name.clone(),
                        t.workdir.clone(),
                        t.created_at.clone(),
                        pairs(&t.env),
                    ]
                })
                .collect();
            print_table(&["NAME", "WORKDIR", "CREATED", "ENV"], &rows);
            Ok(0)
        }
        TemplateCommand::Rm { name, out } => {
            client.delete_template(&name).await?;
            if out.json {
                return print_json(&serde_json::json!({ "removed": name }));
            }
            println!("{name}");
            Ok(0)
        }
    }
}
