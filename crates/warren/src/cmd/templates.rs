//! `warren template build|import|ls|rm`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
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
    /// workdir, start, user) or a Dockerfile (any file not named *.toml);
    /// unchanged steps are reused from the cache.
    Build {
        /// Its name.
        name: String,
        /// The spec.toml or the Dockerfile.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// The build context of a Dockerfile (default: its directory),
        /// sent to the server without what its .dockerignore excludes.
        #[arg(long)]
        context: Option<PathBuf>,
        /// A Dockerfile build argument, KEY=VALUE (repeatable).
        #[arg(long = "build-arg", value_name = "KEY=VALUE")]
        build_arg: Vec<String>,
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
        TemplateCommand::Build {
            name,
            file,
            context,
            build_arg,
            out,
        } => {
            if file.extension().is_none_or(|e| e != "toml") {
                return build_dockerfile(client, &name, &file, context, &build_arg, out).await;
            }
            if context.is_some() || !build_arg.is_empty() {
                return Err(CliError::Usage(
                    "--context and --build-arg are for Dockerfiles, not spec.toml".into(),
                ));
            }
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

/// `warren template build NAME -f Dockerfile`: packs the context, sends it.
async fn build_dockerfile(
    client: &Client,
    name: &str,
    file: &Path,
    context: Option<PathBuf>,
    build_args: &[String],
    out: Output,
) -> CliResult {
    let local = |what, path: &Path| {
        let path = path.display().to_string();
        move |source| CliError::Local { what, path, source }
    };
    let file = file.canonicalize().map_err(local("reading", file))?;
    let dir = match context {
        Some(dir) => dir.canonicalize().map_err(local("reading", &dir))?,
        None => file.parent().unwrap_or(Path::new("/")).to_path_buf(),
    };
    let Ok(rel) = file.strip_prefix(&dir) else {
        return Err(CliError::Usage(format!(
            "the Dockerfile {} is not inside the build context {}: move it there or pass --context",
            file.display(),
            dir.display()
        )));
    };
    let rel = rel.to_string_lossy().into_owned();
    let mut args = BTreeMap::new();
    for pair in build_args {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(CliError::Usage(format!(
                "--build-arg {pair:?}: expected KEY=VALUE"
            )));
        };
        args.insert(key.to_string(), value.to_string());
    }
    let archive =
        tempfile::NamedTempFile::new().map_err(local("creating", Path::new("a temporary file")))?;
    let writer = archive.reopen().map_err(local("opening", archive.path()))?;
    let (pack_dir, keep) = (dir.clone(), rel.clone());
    tokio::task::spawn_blocking(move || super::context::pack(&pack_dir, writer, &keep))
        .await?
        .map_err(local("packing", &dir))?;
    let (body, progress) = super::progress::file_body(archive.path(), !out.json).await?;
    let started = Instant::now();
    let built = client
        .build_template_dockerfile(name, body, Some(&rel), &args)
        .await;
    progress.finish();
    let built = built?;
    if !out.json {
        for layer in &built.layers {
            let cached = if layer.cached { " (cached)" } else { "" };
            eprintln!("  {}{cached}", layer.step);
        }
    }
    done(&built, started, out)
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
