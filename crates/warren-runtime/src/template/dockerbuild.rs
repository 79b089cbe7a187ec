//! `warren template build NAME -f Dockerfile`: a Dockerfile and its build
//! context (a tar archive) built into a template, one cached layer per
//! `RUN`, `COPY`/`ADD` and `WORKDIR`, exactly like spec steps.
//!
//! `ENV`, `ARG`, `USER`, `CMD`, `ENTRYPOINT`, `LABEL` and `EXPOSE` change
//! no file: they make no layer of their own, but what they set is part of
//! the key of every later layer (a `RUN`'s key holds its environment, its
//! user and its working directory), so a rebuild with nothing changed is
//! all cached and a changed `ENV` rebuilds from the first step that sees
//! it.
//!
//! `FROM` names a Warren template (`base`, one built or imported before).
//! Two kinds of image name map to a template, because the template is
//! what the image is: `debian:bookworm` and `debian:12` (and their `-slim`
//! tags) to `base`, Debian 12; `e2bdev/code-interpreter` (any tag) to
//! `code-interpreter`, Warren's counterpart of E2B's image (the same server
//! on port 49999). Any other image is an error saying how to import it:
//! mapping `ubuntu:22.04` or `python:3.12` to Debian would build something
//! else than what the Dockerfile says.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use super::build::{parent_template, run_plan, Plan, PlannedStep, Step};
use super::context::{self, CopySpec};
use super::dockerfile::{self, Action, DockerfileError, Parent};
use super::inroot::InRoot;
use super::{name_lock, BuildReport, TemplateError, TemplateSource, TmpVolume};
use crate::storage::Pool;

/// Largest Dockerfile read.
const MAX_DOCKERFILE: u64 = 1 << 20;

/// The inputs of a Dockerfile build.
#[derive(Debug, Clone, Default)]
pub struct DockerBuild {
    /// The build context: an uncompressed tar archive on the host.
    pub context: std::path::PathBuf,
    /// The Dockerfile's path inside the context (`Dockerfile` by default).
    pub dockerfile: String,
    /// `--build-arg` values.
    pub build_args: BTreeMap<String, String>,
    /// Extra CA certificates the steps trust (as
    /// [`super::TemplateSpec::extra_ca`]).
    pub extra_ca: Option<String>,
}

/// The Warren template a `FROM` image names, or why there is none.
pub fn base_template(image: &str) -> Result<String, String> {
    if crate::storage::validate_name(image).is_ok() {
        return Ok(image.to_string());
    }
    let short = image
        .strip_prefix("docker.io/")
        .or_else(|| image.strip_prefix("index.docker.io/"))
        .unwrap_or(image);
    let short = short.strip_prefix("library/").unwrap_or(short);
    let short = short.split('@').next().unwrap_or(short);
    let (repo, tag) = match short.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (short, "latest"),
    };
    match (repo, tag) {
        ("e2bdev/code-interpreter", _) => Ok("code-interpreter".into()),
        ("debian", "bookworm" | "12" | "bookworm-slim" | "12-slim") => Ok("base".into()),
        _ => Err(format!(
            "{image} is not a Warren template: import the image first (docker pull {image} && \
             docker save {image} -o image.tar && warren template import NAME image.tar) and \
             write FROM NAME, or start FROM base (Debian 12)"
        )),
    }
}

/// Builds template `name` from a Dockerfile and its context (replacing an
/// existing one), reusing cached layers.
pub fn build_dockerfile(
    pool: &Pool,
    name: &str,
    req: &DockerBuild,
    progress: &mut dyn FnMut(&str),
) -> Result<BuildReport, TemplateError> {
    let dockerfile_name = if req.dockerfile.is_empty() {
        "Dockerfile"
    } else {
        &req.dockerfile
    };
    let in_dockerfile = |source: DockerfileError| TemplateError::Dockerfile {
        path: dockerfile_name.to_string(),
        source,
    };
    let ctx = TmpVolume::create(pool, "context")?;
    let archive = std::fs::File::open(&req.context)
        .map_err(|e| TemplateError::io("open", &req.context, e))?;
    context::unpack(std::io::BufReader::new(archive), ctx.path())?;
    let text = read_dockerfile(ctx.path(), dockerfile_name)?;
    let parsed = dockerfile::parse(&text).map_err(in_dockerfile)?;

    let (from_line, image) = parsed.base_image(&req.build_args).map_err(in_dockerfile)?;
    let from_error = |reason: String| {
        in_dockerfile(DockerfileError::Invalid {
            line: from_line,
            instruction: format!("FROM {image}"),
            reason,
        })
    };
    let base = base_template(&image).map_err(from_error)?;
    let parent = match parent_template(pool, &base, progress) {
        Err(TemplateError::NotFound(_)) if base != image => {
            return Err(from_error(format!(
                "{image} maps to the Warren template {base}, which this server does not have: \
                 build it first (warren template ls lists the templates)"
            )))
        }
        Err(TemplateError::NotFound(_)) => {
            return Err(from_error(format!(
                "no template {base} on this server: build it, or import the image (docker save \
                 {image} -o image.tar && warren template import {base} image.tar)"
            )))
        }
        other => other?,
    };
    let _lock = name_lock(pool, name)?;

    let evaluated = parsed
        .evaluate(
            &req.build_args,
            &Parent {
                env: parent.env.clone(),
                workdir: parent.workdir.clone(),
                user: parent.user.clone(),
            },
        )
        .map_err(in_dockerfile)?;
    if !evaluated.unused_args.is_empty() {
        progress(&format!(
            "warning: build arguments no ARG declares: {}",
            evaluated.unused_args.join(", ")
        ));
    }
    let mut steps = Vec::with_capacity(evaluated.steps.len());
    for step in evaluated.steps {
        let planned = match step.action {
            Action::Run { cmd, user: None } => Step::Run(cmd),
            Action::Run {
                cmd,
                user: Some(user),
            } => Step::RunAs { cmd, user },
            Action::Workdir { path, user } => Step::Workdir { path, user },
            Action::Copy {
                add,
                sources,
                dest,
                dest_is_dir,
                chown,
                chmod,
            } => {
                let mut found = Vec::new();
                for pattern in &sources {
                    found.extend(context::sources(ctx.path(), pattern).map_err(|reason| {
                        in_dockerfile(DockerfileError::Invalid {
                            line: step.line,
                            instruction: if add { "ADD" } else { "COPY" }.into(),
                            reason,
                        })
                    })?);
                }
                Step::Copy(CopySpec {
                    dest_is_dir: dest_is_dir || found.len() > 1,
                    sources: found,
                    dest,
                    chown,
                    chmod,
                })
            }
        };
        steps.push(PlannedStep {
            step: planned,
            env: step.env,
            workdir: step.workdir,
            line: Some(step.line),
        });
    }
    let plan = Plan {
        source: TemplateSource::Dockerfile {
            base: parent.name.clone(),
        },
        // A Dockerfile's own CMD/ENTRYPOINT has no known ready port.
        ready_port: match evaluated.start {
            Some(_) => None,
            None => parent.ready_port,
        },
        start: match evaluated.start {
            Some(start) => start,
            None => parent.start.clone(),
        },
        user: evaluated.user,
        env: evaluated.env,
        workdir: evaluated.workdir,
        parent,
        steps,
        extra_ca: req.extra_ca.clone(),
        origin: dockerfile_name.to_string(),
    };
    let report = run_plan(pool, name, plan, progress);
    drop(ctx);
    report
}

/// The Dockerfile at `rel` in the unpacked context.
fn read_dockerfile(ctx: &Path, rel: &str) -> Result<String, TemplateError> {
    use std::os::unix::fs::OpenOptionsExt;
    let missing =
        || TemplateError::InvalidContext(format!("no Dockerfile {rel:?} in the build context"));
    let fs = InRoot::open(ctx).map_err(|e| TemplateError::io("open", ctx, e))?;
    let path = fs.entry(Path::new(rel), None).map_err(|_| missing())?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(|_| missing())?;
    let mut text = String::new();
    file.take(MAX_DOCKERFILE)
        .read_to_string(&mut text)
        .map_err(|e| TemplateError::InvalidContext(format!("reading {rel:?}: {e}")))?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_names_map_to_templates_or_say_how_to_import() {
        assert_eq!(base_template("base").unwrap(), "base");
        assert_eq!(base_template("my-tpl").unwrap(), "my-tpl");
        assert_eq!(
            base_template("e2bdev/code-interpreter:latest").unwrap(),
            "code-interpreter"
        );
        assert_eq!(
            base_template("docker.io/e2bdev/code-interpreter").unwrap(),
            "code-interpreter"
        );
        assert_eq!(base_template("debian:bookworm-slim").unwrap(), "base");
        assert_eq!(
            base_template("docker.io/library/debian:12").unwrap(),
            "base"
        );
        for other in [
            "ubuntu:22.04",
            "python:3.12-slim",
            "debian:trixie",
            "debian",
        ] {
            match base_template(other) {
                // `debian` alone is a valid template name: a template
                // lookup decides.
                Ok(name) => assert_eq!(name, other),
                Err(why) => assert!(why.contains("warren template import"), "{why}"),
            }
        }
    }
}
