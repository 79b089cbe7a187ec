//! Templates: the read-only root file systems sandboxes start from.
//!
//! Three ways to make one:
//! - [`ensure_base`]: `base`, Debian bookworm minbase by debootstrap from the
//!   host's configured Debian mirror, with a `user` account (uid 1000,
//!   passwordless sudo), built on first use, cached, and rebuilt when made
//!   by an older version ([`BASE_VERSION`]).
//! - [`build`]: a [`TemplateSpec`] (`spec.toml`) on top of another template:
//!   apt packages, files, commands, env and workdir, each step cached as a
//!   layer.
//! - [`build_dockerfile`]: a Dockerfile (the common subset, see
//!   [`dockerfile`]) and its build context, each instruction that changes
//!   files a cached layer like a spec's steps.
//! - [`import`]: an OCI image layout or `docker save` tarball.
//!
//! # Layout of a template
//!
//! ```text
//! pool/templates/<name>        read-only volume: the root file system
//! pool/templates/<name>.json   TemplateMeta: source, env, workdir, layers
//! pool/layers/<sha256>         read-only volume: the rootfs after one build step
//! pool/tmp/<label>.<pid>.<n>   volumes under construction (deleted on failure)
//! pool/tmp/<name>.lock         serialises builds of one template name
//! ```
//!
//! The metadata sits next to the rootfs rather than inside it, so sandboxes
//! never see or carry it. It is written last: a template exists when its
//! `.json` does, and a rootfs without one is the leftover of a crash that
//! the next build of that name replaces.
//!
//! Every rootfs is owned by the sandbox id range: a file owned by uid `u`
//! inside is owned by [`SANDBOX_ID_BASE`]` + u` on the host (debootstrap
//! output and image layers are shifted; build steps run as the sandbox root
//! in a user namespace and create shifted files directly). Every template has
//! `/etc/hostname`, `/etc/hosts`, a placeholder `/etc/resolv.conf` (a
//! regular file the runtime can bind-mount over) and `/root`.

mod account;
mod base;
mod build;
mod context;
mod dockerbuild;
pub mod dockerfile;
mod import;
mod inroot;
mod layer;
mod mirror;
mod run;
mod shift;
mod users;

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::storage::{Pool, StorageError};
use crate::SANDBOX_ID_BASE;

pub use account::{USER_HOME, USER_ID, USER_NAME};
pub use base::{
    base_is_outdated, ensure_base, BaseOptions, BASE_PACKAGES, BASE_TEMPLATE, BASE_VERSION,
};
pub use build::{build, BuildReport, LayerReport, TemplateSpec};
pub use dockerbuild::{base_template, build_dockerfile, DockerBuild};
pub use import::import;
pub use mirror::{detect_mirrors, Mirrors};

/// Errors of template operations.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// A storage operation failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// No template of that name.
    #[error("template {0} not found")]
    NotFound(String),
    /// No usable Debian mirror in the host's apt sources.
    #[error("no Debian mirror for {suite} found in {apt_dir}/sources.list(.d)")]
    NoMirror {
        /// The suite looked for.
        suite: String,
        /// The apt configuration directory searched.
        apt_dir: String,
    },
    /// The spec file is malformed or asks for something not allowed.
    #[error("invalid template spec {path}: {reason}")]
    InvalidSpec {
        /// The spec file (or `<inline>`).
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A build step (debootstrap, apt, a command) exited unsuccessfully.
    #[error("{step} failed ({status}): {output}")]
    StepFailed {
        /// The step.
        step: String,
        /// Its exit status.
        status: String,
        /// The last lines it printed.
        output: String,
    },
    /// A program could not be started.
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// Cause.
        source: io::Error,
    },
    /// A file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// The operation.
        op: &'static str,
        /// The path acted on.
        path: String,
        /// Cause.
        source: io::Error,
    },
    /// A template's metadata file is unreadable.
    #[error("template metadata {path}: {source}")]
    Metadata {
        /// The metadata file.
        path: String,
        /// Cause.
        source: serde_json::Error,
    },
    /// The image tarball is not an OCI layout or `docker save` archive, or
    /// is damaged.
    #[error("invalid image {image}: {reason}")]
    InvalidImage {
        /// The tarball.
        image: String,
        /// What is wrong.
        reason: String,
    },
    /// A Dockerfile is malformed or uses what is not supported (the error
    /// names the line).
    #[error("Dockerfile {path}: {source}")]
    Dockerfile {
        /// The Dockerfile's path in the build context.
        path: String,
        /// What is wrong, and where.
        source: dockerfile::DockerfileError,
    },
    /// A build context is not a tar archive, or lacks the Dockerfile.
    #[error("build context: {0}")]
    InvalidContext(String),
    /// An image entry points outside the root file system (`..`).
    #[error("image entry {entry:?} escapes the root file system")]
    PathEscape {
        /// The offending entry name or link target.
        entry: String,
    },
}

impl TemplateError {
    pub(crate) fn io(op: &'static str, path: &Path, source: io::Error) -> Self {
        TemplateError::Io {
            op,
            path: path.display().to_string(),
            source,
        }
    }
}

/// Where a template came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TemplateSource {
    /// Built by debootstrap.
    Debootstrap {
        /// Debian suite.
        suite: String,
        /// Mirror URL used.
        mirror: String,
        /// Packages included beyond minbase.
        packages: Vec<String>,
        /// [`BASE_VERSION`] of the build (0: before versions were kept).
        #[serde(default)]
        version: u32,
    },
    /// Built from a spec on top of another template.
    Spec {
        /// The parent template.
        base: String,
    },
    /// Built from a Dockerfile on top of another template.
    Dockerfile {
        /// The parent template.
        base: String,
    },
    /// Imported from an image tarball.
    Import {
        /// File name of the tarball.
        image: String,
    },
}

/// A template's metadata (`templates/<name>.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateMeta {
    /// Template name.
    pub name: String,
    /// How it was made.
    pub source: TemplateSource,
    /// Identity of the contents: layers built on this template are keyed on
    /// it, so rebuilding a parent invalidates its children's cached layers.
    pub build_id: String,
    /// Layer hashes of a spec build, bottom first.
    #[serde(default)]
    pub layers: Vec<String>,
    /// Default environment of processes in sandboxes of this template.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Default working directory.
    pub workdir: String,
    /// The command every sandbox of this template starts on each boot (as
    /// a managed process of its agent), if any; templates built on this
    /// one inherit it unless they name their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<StartCommand>,
    /// The user the start command (and later build steps of templates
    /// built on it from a Dockerfile) runs as: a name or uid of the
    /// template's `/etc/passwd`, optionally `:group`; root when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The port the start command accepts connections on once it is ready;
    /// each boot waits for it (bounded), so a sandbox is handed out with its
    /// server already listening.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_port: Option<u16>,
    /// Creation time, seconds since the Unix epoch.
    pub created_at: u64,
}

/// A template's start command: a shell command line (run by `/bin/sh -c`)
/// or a program and its arguments (exec'd directly). In a spec.toml,
/// `start = "python3 -m http.server 8000"` or `start = ["python3", "-m",
/// "http.server", "8000"]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StartCommand {
    /// A shell command line.
    Shell(String),
    /// A program and its arguments.
    Exec(Vec<String>),
}

impl StartCommand {
    /// Why the command cannot be run, if it cannot: empty, or a NUL byte.
    pub fn check(&self) -> Result<(), String> {
        let ok = match self {
            StartCommand::Shell(cmd) => !cmd.trim().is_empty() && !cmd.contains('\0'),
            StartCommand::Exec(argv) => {
                argv.first().is_some_and(|p| !p.is_empty())
                    && argv.iter().all(|a| !a.contains('\0'))
            }
        };
        if ok {
            Ok(())
        } else {
            Err(format!("{self:?} is not a command"))
        }
    }
}

/// The environment every template starts from.
pub(crate) fn default_env() -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "PATH".to_string(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        ),
        ("LANG".to_string(), "C.UTF-8".to_string()),
    ])
}

fn meta_path(pool: &Pool, name: &str) -> Result<PathBuf, TemplateError> {
    let rootfs = pool.template_path(name)?;
    let mut json = rootfs.into_os_string();
    json.push(".json");
    Ok(json.into())
}

/// The metadata of template `name`.
pub fn get(pool: &Pool, name: &str) -> Result<TemplateMeta, TemplateError> {
    let path = meta_path(pool, name)?;
    let data = match fs::read(&path) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(TemplateError::NotFound(name.to_string()))
        }
        Err(e) => return Err(TemplateError::io("read", &path, e)),
    };
    if !pool.driver().is_volume(&pool.template_path(name)?) {
        return Err(TemplateError::NotFound(name.to_string()));
    }
    serde_json::from_slice(&data).map_err(|source| TemplateError::Metadata {
        path: path.display().to_string(),
        source,
    })
}

/// Every template, sorted by name.
pub fn list(pool: &Pool) -> Result<Vec<TemplateMeta>, TemplateError> {
    let dir = pool.templates_dir();
    let mut out = Vec::new();
    for entry in fs::read_dir(&dir).map_err(|e| TemplateError::io("list", &dir, e))? {
        let entry = entry.map_err(|e| TemplateError::io("list", &dir, e))?;
        let file = entry.file_name();
        let Some(name) = file.to_str().and_then(|f| f.strip_suffix(".json")) else {
            continue;
        };
        match get(pool, name) {
            Ok(meta) => out.push(meta),
            // Half-deleted or invalid names: not templates.
            Err(TemplateError::NotFound(_) | TemplateError::Storage(_)) => {}
            Err(e) => return Err(e),
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Deletes template `name` (metadata first, so it disappears at once).
/// Sandboxes made from it are independent copies and keep running.
pub fn delete(pool: &Pool, name: &str) -> Result<(), TemplateError> {
    let _lock = name_lock(pool, name)?;
    let path = meta_path(pool, name)?;
    match fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(TemplateError::NotFound(name.to_string()))
        }
        Err(e) => return Err(TemplateError::io("delete", &path, e)),
    }
    pool.driver().delete(&pool.template_path(name)?)?;
    Ok(())
}

/// Deletes cached layers that no template's metadata lists; returns their
/// hashes.
pub fn prune_layers(pool: &Pool) -> Result<Vec<String>, TemplateError> {
    let used: std::collections::HashSet<String> =
        list(pool)?.into_iter().flat_map(|t| t.layers).collect();
    let dir = pool.layers_dir();
    let mut pruned = Vec::new();
    for entry in fs::read_dir(&dir).map_err(|e| TemplateError::io("list", &dir, e))? {
        let entry = entry.map_err(|e| TemplateError::io("list", &dir, e))?;
        let Some(hash) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if used.contains(&hash) || !pool.driver().is_volume(&entry.path()) {
            continue;
        }
        pool.driver().delete(&entry.path())?;
        pruned.push(hash);
    }
    pruned.sort();
    Ok(pruned)
}

/// Removes what builds and imports of processes that no longer run left in
/// the pool's `tmp/` (a crash in the middle of a template build leaves its
/// volume there): temporary volumes (`<label>.<pid>.<n>`) and decompressed
/// imports (`import.<pid>.tar`) whose pid is gone or is this very process
/// (a server calls this at start, before it builds anything). Returns how
/// many were removed.
pub fn sweep_tmp(pool: &Pool) -> usize {
    let Ok(entries) = fs::read_dir(pool.tmp_dir()) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(leftover_owner) else {
            continue;
        };
        if pid != std::process::id() && Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let path = entry.path();
        for mp in crate::storage::mounts_under(&path).unwrap_or_default() {
            let _ = nix::mount::umount2(&mp, nix::mount::MntFlags::MNT_DETACH);
        }
        let result = if pool.driver().is_volume(&path) {
            pool.driver().delete(&path).map_err(|e| e.to_string())
        } else {
            fs::remove_file(&path).map_err(|e| e.to_string())
        };
        match result {
            Ok(()) => removed += 1,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "sweeping a template leftover")
            }
        }
    }
    removed
}

/// The pid in the name of a leftover of [`TmpVolume`] or of an import.
fn leftover_owner(name: &str) -> Option<u32> {
    let parts: Vec<&str> = name.split('.').collect();
    match parts.as_slice() {
        ["import", pid, "tar"] => pid.parse().ok(),
        [.., label, pid, n] if !label.is_empty() && n.parse::<u64>().is_ok() => pid.parse().ok(),
        _ => None,
    }
}

/// An exclusive lock on one template name, across processes.
fn name_lock(pool: &Pool, name: &str) -> Result<Flock<File>, TemplateError> {
    crate::storage::validate_name(name)?;
    let path = pool.tmp_dir().join(format!("{name}.lock"));
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| TemplateError::io("open lock", &path, e))?;
    Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, e)| TemplateError::io("lock", &path, io::Error::from(e)))
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Lower-case hex SHA-256 of `parts`, each length-prefixed so that
/// boundaries cannot be forged.
pub(crate) fn hash_parts(parts: &[&[u8]]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    hex(&h.finalize())
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A volume under `tmp/`, deleted on drop unless published.
pub(crate) struct TmpVolume<'p> {
    pool: &'p Pool,
    path: PathBuf,
    published: bool,
}

impl<'p> TmpVolume<'p> {
    fn unique_path(pool: &Pool, label: &str) -> PathBuf {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        pool.tmp_dir()
            .join(format!("{label}.{}.{n}", std::process::id()))
    }

    /// A new empty volume.
    pub(crate) fn create(pool: &'p Pool, label: &str) -> Result<Self, TemplateError> {
        let path = Self::unique_path(pool, label);
        pool.driver().create_volume(&path)?;
        Ok(TmpVolume {
            pool,
            path,
            published: false,
        })
    }

    /// A writable snapshot of `src`.
    pub(crate) fn snapshot(pool: &'p Pool, src: &Path, label: &str) -> Result<Self, TemplateError> {
        let path = Self::unique_path(pool, label);
        pool.driver().snapshot(src, &path, false)?;
        Ok(TmpVolume {
            pool,
            path,
            published: false,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Moves the volume to `dst` (which must not exist) and makes it
    /// read-only. Renaming first: the copy driver's read-only directories
    /// cannot be renamed.
    pub(crate) fn publish(mut self, dst: &Path) -> Result<(), TemplateError> {
        nix::fcntl::renameat2(
            None,
            &self.path,
            None,
            dst,
            nix::fcntl::RenameFlags::RENAME_NOREPLACE,
        )
        .map_err(|e| match e {
            nix::errno::Errno::EEXIST => {
                TemplateError::Storage(StorageError::AlreadyExists(dst.display().to_string()))
            }
            e => TemplateError::io("publish", dst, io::Error::from(e)),
        })?;
        self.published = true;
        self.pool.driver().set_readonly(dst, true)?;
        Ok(())
    }
}

impl Drop for TmpVolume<'_> {
    fn drop(&mut self) {
        if self.published {
            return;
        }
        // A failed build step can leave mounts behind (debootstrap mounts
        // /proc in its target): never delete through a mount.
        for mp in crate::storage::mounts_under(&self.path).unwrap_or_default() {
            let _ = nix::mount::umount2(&mp, nix::mount::MntFlags::MNT_DETACH);
        }
        if let Err(e) = self.pool.driver().delete(&self.path) {
            tracing::warn!(path = %self.path.display(), error = %e, "temporary volume not deleted");
        }
    }
}

/// Publishes `tmp` as template `meta.name`, replacing any previous template
/// of that name. The caller holds the name lock.
pub(crate) fn publish_template(
    pool: &Pool,
    tmp: TmpVolume<'_>,
    meta: &TemplateMeta,
) -> Result<(), TemplateError> {
    let dst = pool.template_path(&meta.name)?;
    let json = meta_path(pool, &meta.name)?;
    match fs::remove_file(&json) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(TemplateError::io("delete", &json, e)),
    }
    pool.driver().delete(&dst)?;
    tmp.publish(&dst)?;
    let data = serde_json::to_vec_pretty(meta).map_err(|source| TemplateError::Metadata {
        path: json.display().to_string(),
        source,
    })?;
    crate::storage::pool::write_atomic(&json, &data)?;
    Ok(())
}

/// Maps an id of a rootfs (as seen inside) to the host: `SANDBOX_ID_BASE +
/// id`, and ids beyond the mapped range to the sandbox's `nobody`.
pub(crate) fn shift_id(id: u64) -> u32 {
    let count = u64::from(crate::SANDBOX_ID_COUNT);
    if id < count {
        SANDBOX_ID_BASE + id as u32
    } else {
        SANDBOX_ID_BASE + 65_534
    }
}

#[cfg(test)]
mod sweep_tests {
    use super::leftover_owner;

    #[test]
    fn leftovers_are_known_by_the_pid_in_their_name() {
        assert_eq!(leftover_owner("layer.1234.0"), Some(1234));
        assert_eq!(leftover_owner("my-tpl.77.12"), Some(77));
        assert_eq!(leftover_owner("import.99.tar"), Some(99));
        assert_eq!(leftover_owner("my-tpl.lock"), None);
        assert_eq!(leftover_owner(".tt-import-00ff"), None);
        assert_eq!(leftover_owner("layer.x.0"), None);
    }
}
