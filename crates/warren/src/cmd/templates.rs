//! `warren template build|import|ls|rm`.

use std::path::PathBuf;
use std::time::Instant;

use clap::Subcommand;
use warren_client::{Client, Template};

use super::cli::{pairs, print_json, print_table, CliError, CliResult, Output};

/// `warren template ...`.
#[derive(Debug, Subcommand)]
pub enum TemplateCommand {
    /// List the server's templates.
    Ls {
        #[command(flatten)]
        out: Output,
    },
    /// Build (or rebuild) a template from a spec.toml (base, apt, run, env,
    /// workdir); unchanged steps are reused from the cache.
    Build {
        /// Its name.
        name: String,
        /// The spec.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        #[command(flatten)]
        out: Output,
    },
    /// Import a template from an OCI image layout or `docker save` tarball.
    Import {
        /// Its name.
        name: String,
        /// The image tarball.
        image: PathBuf,
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
        TemplateCommand::Build { name, file, out } => {
            let spec =
                tokio::fs::read_to_string(&file)
                    .await
                    .map_err(|source| CliError::Local {
                        what: "reading",
                        path: file.display().to_string(),
                        source,
                    })?;
            let started = Instant::now();
            let ticker = super::progress::Ticker::start(
                format!("building template {name} (apt and run steps can take minutes)"),
                !out.json,
            );
            let built = client.build_template(&name, spec).await;
            ticker.stop();
            done(&built?, started, out)
        }
        TemplateCommand::Import { name, image, out } => {
            let (body, progress) = super::progress::file_body(&image, !out.json).await?;
            let started = Instant::now();
            let template = client.import_template(&name, body).await?;
            progress.finish();
            done(&template, started, out)
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

fn done(template: &Template, started: Instant, out: Output) -> CliResult {
    if out.json {
        return print_json(template);
    }
    eprintln!(
        "template {} ready in {:.1} s",
        template.name,
        started.elapsed().as_secs_f64()
    );
    println!("{}", template.name);
    Ok(0)
}
