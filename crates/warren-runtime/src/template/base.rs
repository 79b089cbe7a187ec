//! The `base` template: Debian minbase by debootstrap, built once per pool.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::inroot::InRoot;
use super::mirror::{detect_mirrors, Mirrors};
use super::{
    default_env, get, hash_parts, name_lock, now_secs, publish_template, shift, TemplateError,
    TemplateMeta, TemplateSource, TmpVolume,
};
use crate::storage::Pool;
use crate::SANDBOX_ID_BASE;

/// Name of the debootstrapped template.
pub const BASE_TEMPLATE: &str = "base";

/// Packages `base` has beyond minbase.
pub const BASE_PACKAGES: &[&str] = &[
    "ca-certificates",
    "curl",
    "git",
    "python3",
    "procps",
    "iproute2",
    "bash",
];

/// How `base` is built.
#[derive(Debug, Clone)]
pub struct BaseOptions {
    /// Debian suite.
    pub suite: String,
    /// Mirror to use instead of the one in the host's apt sources.
    pub mirror: Option<String>,
    /// Where apt sources are read from (normally `/etc/apt`).
    pub apt_dir: PathBuf,
    /// debootstrap's package cache (`--cache-dir`), kept across builds so
    /// that a rebuild downloads nothing.
    pub cache_dir: PathBuf,
}

impl Default for BaseOptions {
    fn default() -> Self {
        BaseOptions {
            suite: "bookworm".to_string(),
            mirror: None,
            apt_dir: PathBuf::from("/etc/apt"),
            cache_dir: PathBuf::from("/var/cache/warren/debootstrap"),
        }
    }
}

/// Returns the `base` template, building it first if the pool has none.
///
/// The build (a few minutes the first time, mostly downloads) reports
/// debootstrap's output lines to `progress`, runs into a temporary volume,
/// shifts ownership into the sandbox id range, writes the files every
/// template has (see the module docs) and publishes the result read-only.
/// Concurrent callers (threads or processes) wait for one build.
pub fn ensure_base(
    pool: &Pool,
    options: &BaseOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<TemplateMeta, TemplateError> {
    match get(pool, BASE_TEMPLATE) {
        Err(TemplateError::NotFound(_)) => {}
        other => return other,
    }
    let _lock = name_lock(pool, BASE_TEMPLATE)?;
    match get(pool, BASE_TEMPLATE) {
        Err(TemplateError::NotFound(_)) => {}
        other => return other,
    }
    let mirrors = match &options.mirror {
        Some(m) => Mirrors {
            debian: m.clone(),
            security: None,
        },
        None => detect_mirrors(&options.apt_dir, &options.suite).ok_or_else(|| {
            TemplateError::NoMirror {
                suite: options.suite.clone(),
                apt_dir: options.apt_dir.display().to_string(),
            }
        })?,
    };
    progress(&format!(
        "building template {BASE_TEMPLATE}: debootstrap {} from {}",
        options.suite, mirrors.debian
    ));
    std::fs::create_dir_all(&options.cache_dir)
        .map_err(|e| TemplateError::io("create cache dir", &options.cache_dir, e))?;
    let tmp = TmpVolume::create(pool, BASE_TEMPLATE)?;
    let debootstrap =
        crate::storage::find_program("debootstrap").ok_or_else(|| TemplateError::Spawn {
            program: "debootstrap".to_string(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        })?;
    let mut cmd = Command::new(debootstrap);
    cmd.arg("--variant=minbase")
        .arg(format!("--include={}", BASE_PACKAGES.join(",")))
        .arg(format!("--cache-dir={}", options.cache_dir.display()))
        .arg(&options.suite)
        .arg(tmp.path())
        .arg(&mirrors.debian)
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("LANG", "C.UTF-8")
        .env("DEBIAN_FRONTEND", "noninteractive");
    super::run::run_streaming(&mut cmd, "debootstrap", progress)?;

    progress("shifting ownership into the sandbox id range");
    let files = shift::shift_ownership(tmp.path())
        .map_err(|e| TemplateError::io("shift ownership", tmp.path(), e))?;
    finish_rootfs(tmp.path())?;
    write_sources(tmp.path(), &mirrors, &options.suite)?;
    let meta = TemplateMeta {
        name: BASE_TEMPLATE.to_string(),
        source: TemplateSource::Debootstrap {
            suite: options.suite.clone(),
            mirror: mirrors.debian.clone(),
            packages: BASE_PACKAGES.iter().map(|p| p.to_string()).collect(),
        },
        build_id: hash_parts(&[
            b"debootstrap",
            options.suite.as_bytes(),
            mirrors.debian.as_bytes(),
            &now_nanos().to_le_bytes(),
            &std::process::id().to_le_bytes(),
        ]),
        layers: Vec::new(),
        env: default_env(),
        workdir: "/root".to_string(),
        created_at: now_secs(),
    };
    publish_template(pool, tmp, &meta)?;
    progress(&format!("template {BASE_TEMPLATE} ready ({files} files)"));
    Ok(meta)
}

fn now_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

const HOSTS: &str = "127.0.0.1\tlocalhost\n\
::1\tlocalhost ip6-localhost ip6-loopback\n\
ff02::1\tip6-allnodes\n\
ff02::2\tip6-allrouters\n";

const RESOLV_PLACEHOLDER: &str =
    "# Placeholder: Warren provides the sandbox's resolver configuration at start.\n";

/// Writes the files every template has (owned by the sandbox root):
/// `/etc/hostname`, `/etc/hosts`, a placeholder `/etc/resolv.conf` (a regular
/// file, never a symlink, so it can be bind-mounted over) and `/root`.
pub(crate) fn finish_rootfs(rootfs: &Path) -> Result<(), TemplateError> {
    let root_ids = (SANDBOX_ID_BASE, SANDBOX_ID_BASE);
    let fs = InRoot::open(rootfs).map_err(|e| TemplateError::io("open rootfs", rootfs, e))?;
    let write = |rel: &str, data: &str| {
        fs.write_file(Path::new(rel), data.as_bytes(), root_ids, 0o644)
            .map_err(|e| TemplateError::io("write", &rootfs.join(rel.trim_start_matches('/')), e))
    };
    write("/etc/hostname", "sandbox\n")?;
    write("/etc/hosts", HOSTS)?;
    write("/etc/resolv.conf", RESOLV_PLACEHOLDER)?;
    let home = fs
        .dir(Path::new("/root"), Some(root_ids))
        .map_err(|e| TemplateError::io("create", &rootfs.join("root"), e))?;
    std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .map_err(|e| TemplateError::io("chmod", &home, e))?;
    Ok(())
}

/// Points apt inside the template at the host's mirrors (debootstrap writes
/// only the main suite).
fn write_sources(rootfs: &Path, mirrors: &Mirrors, suite: &str) -> Result<(), TemplateError> {
    let mut list = format!(
        "deb {m} {suite} main\ndeb {m} {suite}-updates main\n",
        m = mirrors.debian
    );
    if let Some(security) = &mirrors.security {
        list.push_str(&format!("deb {security} {suite}-security main\n"));
    }
    let fs = InRoot::open(rootfs).map_err(|e| TemplateError::io("open rootfs", rootfs, e))?;
    let ids = (SANDBOX_ID_BASE, SANDBOX_ID_BASE);
    fs.write_file(
        Path::new("/etc/apt/sources.list"),
        list.as_bytes(),
        ids,
        0o644,
    )
    .map_err(|e| TemplateError::io("write", &rootfs.join("etc/apt/sources.list"), e))
}
