//! `warren template build`: a spec on top of a template, one cached layer
//! per step.
//!
//! Steps run in this order: `apt` (one step: update, install, clean), then
//! `files` (one step, all files), then each `run` command. Each step's
//! result is a read-only layer `layers/<key>` where `key` hashes the
//! previous key (the parent template's `build_id` for the first step) and
//! the step itself: its packages, the destination and content of its files,
//! or its command with the environment and working directory it runs with.
//! A rebuild finds every unchanged leading step in the cache and runs only
//! from the first changed one.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

use super::base::{base_is_outdated, ensure_base, BaseOptions, BASE_TEMPLATE};
use super::context::CopySpec;
use super::inroot::{remove_any, InRoot};
use super::run::run_in_rootfs;
use super::users;
use super::{
    get, hash_parts, name_lock, now_secs, publish_template, StartCommand, TemplateError,
    TemplateMeta, TemplateSource, TmpVolume,
};
use crate::storage::Pool;
use crate::SANDBOX_ID_BASE;

/// A `spec.toml`:
///
/// ```toml
/// base = "base"                      # parent template (default "base")
/// apt = ["jq", "build-essential"]    # Debian packages
/// files = { "/app/main.py" = "main.py" }   # dest in the rootfs = source,
///                                    # relative to the spec's directory
/// run = ["pip install --break-system-packages requests"]
/// env = { APP_MODE = "dev" }         # added to the parent's, used by `run`
/// workdir = "/app"                   # default: the parent's
/// start = "python3 -m http.server 8000"   # or an argv array; started on
///                                    # every boot (default: the parent's)
/// user = "user"                      # the start command's user
///                                    # (default: the parent's, else root)
/// ```
///
/// A spec is trusted input, like a Dockerfile given to `docker build`:
/// `files` reads any host path the caller can read, and `run` commands get
/// the host's network and no resource limits (they do run as the sandbox
/// root in a user namespace, not as host root). Do not build specs from
/// untrusted callers without restricting `files` to a context directory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateSpec {
    /// The parent template.
    #[serde(default = "default_base")]
    pub base: String,
    /// Packages to install with apt.
    #[serde(default)]
    pub apt: Vec<String>,
    /// Commands run with `sh -c`, in order, as the sandbox's root.
    #[serde(default)]
    pub run: Vec<String>,
    /// Files or directories to copy in: absolute destination = source path.
    #[serde(default)]
    pub files: BTreeMap<String, PathBuf>,
    /// Environment variables, over the parent's.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Default working directory, if not the parent's.
    #[serde(default)]
    pub workdir: Option<String>,
    /// The command sandboxes start on every boot, if not the parent's.
    #[serde(default)]
    pub start: Option<StartCommand>,
    /// The user the start command runs as, if not the parent's (`run`
    /// steps of a spec run as root whatever this says).
    #[serde(default)]
    pub user: Option<String>,
    /// A port the start command listens on when it is ready: a boot waits
    /// (bounded) until the port accepts connections. Inherited with the
    /// parent's start command; a spec naming its own `start` names its own.
    #[serde(default)]
    pub ready_port: Option<u16>,
    /// Directory relative `files` sources are read from.
    #[serde(skip)]
    pub context: PathBuf,
    /// Extra CA certificates (PEM) the steps trust, set by the caller (not
    /// part of the spec, nor of the layers' cache keys): a step sees them
    /// as a sandbox does (`crate::trust`), and nothing of them is left in
    /// the template.
    #[serde(skip)]
    pub extra_ca: Option<String>,
}

/// The environment a step runs with: the spec's, plus the extra CA
/// certificates for [`super::run`]'s step script to install under `/run`
/// and the variables that point programs at them (`crate::trust`).
fn with_extra_ca(
    env: &BTreeMap<String, String>,
    extra_ca: Option<&str>,
) -> BTreeMap<String, String> {
    let mut env = env.clone();
    if let Some(pem) = extra_ca {
        env.insert(super::run::EXTRA_CA_VAR.into(), pem.to_string());
        for (key, value) in crate::trust::env() {
            env.entry(key.into()).or_insert_with(|| value.into());
        }
    }
    env
}

fn default_base() -> String {
    BASE_TEMPLATE.to_string()
}

impl TemplateSpec {
    /// Parses and checks a spec; `context` is where relative file sources
    /// are looked up.
    pub fn parse(text: &str, context: &Path) -> Result<TemplateSpec, TemplateError> {
        Self::parse_named(text, context, "<inline>")
    }

    /// Reads `path`; relative file sources are relative to its directory.
    pub fn from_file(path: &Path) -> Result<TemplateSpec, TemplateError> {
        let text = fs::read_to_string(path).map_err(|e| TemplateError::io("read", path, e))?;
        let context = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Self::parse_named(&text, context, &path.display().to_string())
    }

    fn parse_named(
        text: &str,
        context: &Path,
        origin: &str,
    ) -> Result<TemplateSpec, TemplateError> {
        let invalid = |reason: String| TemplateError::InvalidSpec {
            path: origin.to_string(),
            reason,
        };
        let mut spec: TemplateSpec = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        spec.context = context.to_path_buf();
        spec.check().map_err(invalid)?;
        Ok(spec)
    }

    fn check(&self) -> Result<(), String> {
        crate::storage::validate_name(&self.base).map_err(|e| format!("base: {e}"))?;
        for pkg in &self.apt {
            let ok = pkg.starts_with(|c: char| c.is_ascii_alphanumeric())
                && pkg
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.:=~/".contains(c));
            if !ok {
                return Err(format!("apt: {pkg:?} is not a package name"));
            }
        }
        for cmd in &self.run {
            if cmd.trim().is_empty() || cmd.contains('\0') {
                return Err(format!("run: {cmd:?} is not a command"));
            }
        }
        for (dest, src) in &self.files {
            if !is_clean_absolute(dest) || dest == "/" {
                return Err(format!(
                    "files: destination {dest:?} must be an absolute path without '..'"
                ));
            }
            if src.as_os_str().is_empty() {
                return Err(format!("files: empty source for {dest:?}"));
            }
        }
        for (key, value) in &self.env {
            let ok = key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok || value.contains('\0') {
                return Err(format!("env: {key:?} is not a variable name"));
            }
        }
        if let Some(w) = &self.workdir {
            if !is_clean_absolute(w) {
                return Err(format!(
                    "workdir: {w:?} must be an absolute path without '..'"
                ));
            }
        }
        if let Some(start) = &self.start {
            start.check().map_err(|e| format!("start: {e}"))?;
        }
        if let Some(user) = &self.user {
            check_user(user).map_err(|e| format!("user: {e}"))?;
        }
        if self.ready_port == Some(0) {
            return Err("ready_port: 0 is not a port".into());
        }
        Ok(())
    }
}

/// Checks a user as `USER` and `user =` take it: a name or uid, optionally
/// followed by `:` and a group name or gid.
pub(crate) fn check_user(user: &str) -> Result<(), String> {
    let word = |w: &str| {
        !w.is_empty()
            && !w.starts_with('-')
            && w.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    };
    let mut parts = user.splitn(2, ':');
    let name = parts.next().unwrap_or_default();
    if word(name) && parts.next().is_none_or(word) {
        Ok(())
    } else {
        Err(format!(
            "{user:?} is not a user (name or uid, optionally :group)"
        ))
    }
}

fn is_clean_absolute(path: &str) -> bool {
    let p = Path::new(path);
    p.is_absolute() && !path.contains('\0') && !p.components().any(|c| c == Component::ParentDir)
}

/// One build step, ready to hash and run.
pub(crate) enum Step {
    /// `apt-get install` of packages (spec `apt`).
    Apt(Vec<String>),
    /// Host files copied in (spec `files`).
    Files(Vec<(String, PathBuf)>),
    /// A command run by `sh -c` as the sandbox's root (spec `run`, and a
    /// Dockerfile's `RUN` without `USER`).
    Run(String),
    /// A command run by `sh -c` as a user of the rootfs (a Dockerfile's
    /// `RUN` after `USER`).
    RunAs {
        /// The command.
        cmd: String,
        /// `name[:group]` or `uid[:gid]`.
        user: String,
    },
    /// Sources of a build context copied in (`COPY`, `ADD`).
    Copy(CopySpec),
    /// A directory made if missing, owned by `user` (`WORKDIR`).
    Workdir {
        /// Absolute path in the rootfs.
        path: String,
        /// Owner of the directories made, root when `None`.
        user: Option<String>,
    },
}

/// A step with the environment and working directory it runs with.
pub(crate) struct PlannedStep {
    pub(crate) step: Step,
    pub(crate) env: BTreeMap<String, String>,
    pub(crate) workdir: String,
    /// The Dockerfile line it comes from, named in progress and errors.
    pub(crate) line: Option<usize>,
}

/// A build: the parent, its steps, and what the template keeps.
pub(crate) struct Plan {
    /// The parent template (already looked up).
    pub(crate) parent: TemplateMeta,
    /// How the template is recorded as made.
    pub(crate) source: TemplateSource,
    /// The steps, in order.
    pub(crate) steps: Vec<PlannedStep>,
    /// The template's environment.
    pub(crate) env: BTreeMap<String, String>,
    /// The template's working directory.
    pub(crate) workdir: String,
    /// The template's start command.
    pub(crate) start: Option<StartCommand>,
    /// The start command's user.
    pub(crate) user: Option<String>,
    /// The port the start command is ready on.
    pub(crate) ready_port: Option<u16>,
    /// Extra CA certificates the steps trust (see [`TemplateSpec::extra_ca`]).
    pub(crate) extra_ca: Option<String>,
    /// Where errors about the input point (the spec's directory, the
    /// Dockerfile).
    pub(crate) origin: String,
}

impl Step {
    fn describe(&self) -> String {
        match self {
            Step::Apt(pkgs) => format!("apt install {}", pkgs.join(" ")),
            Step::Files(files) => {
                let dests: Vec<&str> = files.iter().map(|(d, _)| d.as_str()).collect();
                format!("files {}", dests.join(" "))
            }
            Step::Run(cmd) => format!("run {cmd}"),
            Step::RunAs { cmd, user } => format!("run (as {user}) {cmd}"),
            Step::Copy(copy) => copy.describe(),
            Step::Workdir { path, .. } => format!("workdir {path}"),
        }
    }

    /// The bytes that identify this step's effect. Those of spec steps are
    /// what they have always been, so that existing layer caches stay
    /// valid.
    fn identity(&self, env: &BTreeMap<String, String>, workdir: &str) -> io::Result<Vec<u8>> {
        let env_json = serde_json::to_vec(env).map_err(io::Error::other)?;
        let parts: Vec<Vec<u8>> = match self {
            Step::Apt(pkgs) => vec![b"apt".to_vec(), pkgs.join("\n").into_bytes(), env_json],
            Step::Files(files) => {
                let mut parts = vec![b"files".to_vec()];
                for (dest, src) in files {
                    parts.push(dest.clone().into_bytes());
                    parts.push(hash_source(src)?.into_bytes());
                }
                parts
            }
            Step::Run(cmd) => vec![
                b"run".to_vec(),
                cmd.clone().into_bytes(),
                env_json,
                workdir.as_bytes().to_vec(),
            ],
            Step::RunAs { cmd, user } => vec![
                b"run-as".to_vec(),
                user.clone().into_bytes(),
                cmd.clone().into_bytes(),
                env_json,
                workdir.as_bytes().to_vec(),
            ],
            Step::Copy(copy) => {
                let mut parts = vec![b"copy".to_vec()];
                parts.extend(copy.identity()?);
                parts
            }
            Step::Workdir { path, user } => vec![
                b"workdir".to_vec(),
                path.clone().into_bytes(),
                user.clone().unwrap_or_default().into_bytes(),
            ],
        };
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        Ok(hash_parts(&refs).into_bytes())
    }

    /// Runs the step in `rootfs`; `describe` names it in errors.
    fn execute(
        &self,
        rootfs: &Path,
        env: &BTreeMap<String, String>,
        workdir: &str,
        describe: &str,
        progress: &mut dyn FnMut(&str),
    ) -> Result<(), TemplateError> {
        match self {
            Step::Apt(pkgs) => {
                let quoted: Vec<String> = pkgs.iter().map(|p| format!("'{p}'")).collect();
                let script = format!(
                    "apt-get update && apt-get install -y --no-install-recommends {} \
                     && apt-get clean && rm -rf /var/lib/apt/lists/*",
                    quoted.join(" ")
                );
                let mut env = env.clone();
                env.insert("DEBIAN_FRONTEND".into(), "noninteractive".into());
                run_in_rootfs(rootfs, &script, &env, "/", None, describe, progress)
            }
            Step::Files(files) => copy_files(rootfs, files),
            Step::Run(cmd) => run_in_rootfs(rootfs, cmd, env, workdir, None, describe, progress),
            Step::RunAs { cmd, user } => {
                let ident = users::resolve(rootfs, user)?;
                let mut env = env.clone();
                env.entry("HOME".into())
                    .or_insert_with(|| ident.home.clone());
                run_in_rootfs(rootfs, cmd, &env, workdir, Some(&ident), describe, progress)
            }
            Step::Copy(copy) => copy.execute(rootfs),
            Step::Workdir { path, user } => {
                let owner = match user {
                    Some(user) => users::resolve(rootfs, user)?.shifted(),
                    None => (SANDBOX_ID_BASE, SANDBOX_ID_BASE),
                };
                let fs = InRoot::open(rootfs)
                    .map_err(|e| TemplateError::io("open rootfs", rootfs, e))?;
                fs.dir(Path::new(path), Some(owner))
                    .map(drop)
                    .map_err(|e| TemplateError::io("make", Path::new(path), e))
            }
        }
    }
}

/// Copies spec files into the rootfs, owned by the sandbox root.
fn copy_files(rootfs: &Path, files: &[(String, PathBuf)]) -> Result<(), TemplateError> {
    let ids = (SANDBOX_ID_BASE, SANDBOX_ID_BASE);
    let fs = InRoot::open(rootfs).map_err(|e| TemplateError::io("open rootfs", rootfs, e))?;
    for (dest, src) in files {
        let target = fs
            .entry(Path::new(dest), Some(ids))
            .map_err(|e| TemplateError::io("resolve", Path::new(dest), e))?;
        remove_any(&target).map_err(|e| TemplateError::io("replace", &target, e))?;
        crate::storage::copy::copy_tree(src, &target, Some(ids))
            .map_err(|e| TemplateError::io("copy", src, e))?;
    }
    Ok(())
}

/// A digest of a file or tree: names, types, modes and contents.
pub(crate) fn hash_source(path: &Path) -> io::Result<String> {
    use sha2::{Digest, Sha256};
    fn walk(path: &Path, h: &mut Sha256) -> io::Result<()> {
        let meta = fs::symlink_metadata(path)?;
        h.update(meta.mode().to_le_bytes());
        if meta.is_dir() {
            let mut names: Vec<_> = fs::read_dir(path)?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<io::Result<_>>()?;
            names.sort();
            for name in names {
                h.update(name.as_encoded_bytes());
                h.update([0]);
                walk(&path.join(name), h)?;
            }
        } else if meta.file_type().is_symlink() {
            h.update(fs::read_link(path)?.as_os_str().as_encoded_bytes());
        } else {
            let mut f = fs::File::open(path)?;
            let mut buf = vec![0; 64 << 10];
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
        }
        h.update(b"\xff");
        Ok(())
    }
    let mut h = Sha256::new();
    walk(path, &mut h).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    Ok(super::hex(&h.finalize()))
}

/// What a build did with each layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerReport {
    /// The layer's key (`layers/<hash>`).
    pub hash: String,
    /// The step, e.g. `run make install`.
    pub step: String,
    /// Whether it came from the cache.
    pub cached: bool,
}

/// Result of [`build`].
#[derive(Debug, Clone)]
pub struct BuildReport {
    /// The new template.
    pub template: TemplateMeta,
    /// One entry per step, in order.
    pub layers: Vec<LayerReport>,
}

/// Builds template `name` from `spec` (replacing an existing one), reusing
/// cached layers. A missing or outdated `base` parent is built first; any other
/// missing parent is [`TemplateError::NotFound`].
pub fn build(
    pool: &Pool,
    name: &str,
    spec: &TemplateSpec,
    progress: &mut dyn FnMut(&str),
) -> Result<BuildReport, TemplateError> {
    let parent = parent_template(pool, &spec.base, progress)?;
    let _lock = name_lock(pool, name)?;
    let mut env = parent.env.clone();
    env.extend(spec.env.clone());
    let workdir = spec
        .workdir
        .clone()
        .unwrap_or_else(|| parent.workdir.clone());

    let mut steps = Vec::new();
    if !spec.apt.is_empty() {
        steps.push(Step::Apt(spec.apt.clone()));
    }
    if !spec.files.is_empty() {
        let files = spec
            .files
            .iter()
            .map(|(dest, src)| (dest.clone(), spec.context.join(src)))
            .collect();
        steps.push(Step::Files(files));
    }
    steps.extend(spec.run.iter().cloned().map(Step::Run));
    let plan = Plan {
        source: TemplateSource::Spec {
            base: spec.base.clone(),
        },
        steps: steps
            .into_iter()
            .map(|step| PlannedStep {
                step,
                env: env.clone(),
                workdir: workdir.clone(),
                line: None,
            })
            .collect(),
        start: spec.start.clone().or_else(|| parent.start.clone()),
        user: spec.user.clone().or_else(|| parent.user.clone()),
        ready_port: match (&spec.start, spec.ready_port) {
            (_, Some(port)) => Some(port),
            (Some(_), None) => None,
            (None, None) => parent.ready_port,
        },
        parent,
        env,
        workdir,
        extra_ca: spec.extra_ca.clone(),
        origin: spec.context.display().to_string(),
    };
    run_plan(pool, name, plan, progress)
}

/// Template `base_name`, built first when it is `base` and missing.
pub(crate) fn parent_template(
    pool: &Pool,
    base_name: &str,
    progress: &mut dyn FnMut(&str),
) -> Result<TemplateMeta, TemplateError> {
    match get(pool, base_name) {
        Err(TemplateError::NotFound(_)) if base_name == BASE_TEMPLATE => {
            ensure_base(pool, &BaseOptions::default(), progress)
        }
        Ok(meta) if base_name == BASE_TEMPLATE && base_is_outdated(&meta) => {
            ensure_base(pool, &BaseOptions::default(), progress)
        }
        other => other,
    }
}

/// Runs `plan`'s steps, each a layer found in the cache or made, and
/// publishes the result as template `name`. The caller holds the name's
/// lock.
pub(crate) fn run_plan(
    pool: &Pool,
    name: &str,
    plan: Plan,
    progress: &mut dyn FnMut(&str),
) -> Result<BuildReport, TemplateError> {
    let mut key = plan.parent.build_id.clone();
    let mut current = pool.template_path(&plan.parent.name)?;
    let total = plan.steps.len();
    let mut layers = Vec::with_capacity(total);
    for (i, planned) in plan.steps.iter().enumerate() {
        let step = &planned.step;
        let describe = match planned.line {
            Some(line) => format!("line {line}: {}", step.describe()),
            None => step.describe(),
        };
        let identity = step.identity(&planned.env, &planned.workdir).map_err(|e| {
            TemplateError::InvalidSpec {
                path: plan.origin.clone(),
                reason: format!("{describe}: {e}"),
            }
        })?;
        key = hash_parts(&[key.as_bytes(), &identity]);
        let layer = pool.layer_path(&key)?;
        let cached = pool.driver().is_volume(&layer);
        if cached {
            progress(&format!("step {}/{total}: {describe} (cached)", i + 1));
        } else {
            progress(&format!("step {}/{total}: {describe}", i + 1));
            let tmp = TmpVolume::snapshot(pool, &current, "layer")?;
            let env = with_extra_ca(&planned.env, plan.extra_ca.as_deref());
            step.execute(tmp.path(), &env, &planned.workdir, &describe, progress)
                .map_err(|e| match e {
                    TemplateError::InvalidSpec { reason, .. } => TemplateError::InvalidSpec {
                        path: plan.origin.clone(),
                        reason: format!("{describe}: {reason}"),
                    },
                    other => other,
                })?;
            match tmp.publish(&layer) {
                // Another build made the same layer meanwhile: same content.
                Ok(())
                | Err(TemplateError::Storage(crate::storage::StorageError::AlreadyExists(_))) => {}
                Err(e) => return Err(e),
            }
        }
        layers.push(LayerReport {
            hash: key.clone(),
            step: describe,
            cached,
        });
        current = layer;
    }

    let tmp = TmpVolume::snapshot(pool, &current, name)?;
    let meta = TemplateMeta {
        name: name.to_string(),
        source: plan.source,
        build_id: key,
        layers: layers.iter().map(|l| l.hash.clone()).collect(),
        env: plan.env,
        workdir: plan.workdir,
        start: plan.start,
        user: plan.user,
        ready_port: plan.ready_port,
        created_at: now_secs(),
    };
    publish_template(pool, tmp, &meta)?;
    progress(&format!("template {name} ready"));
    Ok(BuildReport {
        template: meta,
        layers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_spec() {
        let spec = TemplateSpec::parse(
            r#"
            base = "base"
            apt = ["jq", "libfoo1=1.2-3"]
            run = ["echo hi > /hello"]
            files = { "/app/main.py" = "src/main.py" }
            env = { MODE = "dev" }
            workdir = "/app"
            start = ["python3", "-m", "http.server"]
            user = "user"
            "#,
            Path::new("/ctx"),
        )
        .unwrap();
        assert_eq!(spec.apt, ["jq", "libfoo1=1.2-3"]);
        assert_eq!(spec.files["/app/main.py"], Path::new("src/main.py"));
        assert_eq!(spec.workdir.as_deref(), Some("/app"));
        assert_eq!(spec.context, Path::new("/ctx"));
        assert_eq!(
            spec.start,
            Some(StartCommand::Exec(vec![
                "python3".into(),
                "-m".into(),
                "http.server".into()
            ]))
        );
        assert_eq!(spec.user.as_deref(), Some("user"));
        let shell = TemplateSpec::parse("start = \"sleep 1\"", Path::new(".")).unwrap();
        assert_eq!(shell.start, Some(StartCommand::Shell("sleep 1".into())));
        assert_eq!(
            TemplateSpec::parse("", Path::new(".")).unwrap().base,
            "base"
        );
    }

    #[test]
    fn rejects_bad_specs() {
        for bad in [
            "apt = [\"-o=APT::evil\"]",
            "apt = [\"jq; rm -rf /\"]",
            "files = { \"relative\" = \"x\" }",
            "files = { \"/a/../../etc\" = \"x\" }",
            "workdir = \"app\"",
            "env = { \"A-B\" = \"x\" }",
            "base = \"../etc\"",
            "unknown = 1",
            "run = [\"  \"]",
            "start = \" \"",
            "start = []",
            "user = \"a b\"",
            "user = \"root:\"",
        ] {
            assert!(
                matches!(
                    TemplateSpec::parse(bad, Path::new(".")),
                    Err(TemplateError::InvalidSpec { .. })
                ),
                "{bad}"
            );
        }
    }
}
