//! The `base` template: Debian minbase by debootstrap, built once per pool.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::account;
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
    "sudo",
];

/// Version of what [`ensure_base`] puts in `base` beyond the package list.
/// A pool's `base` from an older version is rebuilt by the next
/// [`ensure_base`], and the seed's key changes with it.
/// - 1 (no field in the metadata): debootstrap and the files every template has;
/// - 2: the `user` account (uid 1000, `/home/user`, passwordless sudo).
pub const BASE_VERSION: u32 = 2;

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
    /// Where finished base root file systems are kept as tar archives, keyed
    /// by suite, mirror and package list. A new pool on the same machine (a
    /// second state dir, a test run) unpacks the seed in seconds instead of
    /// running debootstrap again. `None` disables seeds.
    pub seed_dir: Option<PathBuf>,
}

impl Default for BaseOptions {
    fn default() -> Self {
        BaseOptions {
            suite: "bookworm".to_string(),
            mirror: None,
            apt_dir: PathBuf::from("/etc/apt"),
            cache_dir: PathBuf::from("/var/cache/warren/debootstrap"),
            seed_dir: Some(PathBuf::from("/var/cache/warren/seeds")),
        }
    }
}

/// Whether `meta` (the pool's `base`) was made by an older [`ensure_base`]
/// and is rebuilt by the next one. A `base` from elsewhere (an image
/// imported under that name) is never replaced.
pub fn base_is_outdated(meta: &TemplateMeta) -> bool {
    matches!(meta.source, TemplateSource::Debootstrap { version, .. } if version < BASE_VERSION)
}

/// Returns the `base` template, building it first if the pool has none or
/// has one made by an older version ([`BASE_VERSION`]).
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
        Ok(meta) if base_is_outdated(&meta) => {}
        other => return other,
    }
    let _lock = name_lock(pool, BASE_TEMPLATE)?;
    match get(pool, BASE_TEMPLATE) {
        Err(TemplateError::NotFound(_)) => {}
        Ok(meta) if base_is_outdated(&meta) => progress(&format!(
            "template {BASE_TEMPLATE} was built by an older Warren: rebuilding it \
             (templates built on it keep the old one until they are rebuilt)"
        )),
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
    let seed = options.seed_dir.as_ref().map(|dir| {
        let key = hash_parts(&[
            options.suite.as_bytes(),
            mirrors.debian.as_bytes(),
            BASE_PACKAGES.join(",").as_bytes(),
            &BASE_VERSION.to_le_bytes(),
        ]);
        dir.join(format!("base-{}-{}.tar", options.suite, &key[..16]))
    });
    let tmp = TmpVolume::create(pool, BASE_TEMPLATE)?;
    let files = match seed.as_deref().filter(|p| p.is_file()) {
        Some(seed) => {
            progress(&format!(
                "building template {BASE_TEMPLATE} from the seed {}",
                seed.display()
            ));
            tar_seed(seed, tmp.path(), SeedOp::Unpack, progress)?;
            0
        }
        None => {
            let files = debootstrap(options, &mirrors, tmp.path(), progress)?;
            if let Some(seed) = &seed {
                // A failed seed only costs the next pool a debootstrap.
                if let Err(e) = tar_seed(seed, tmp.path(), SeedOp::Pack, progress) {
                    progress(&format!("could not keep a seed of the base template: {e}"));
                }
            }
            files
        }
    };
    finish_rootfs(tmp.path())?;
    write_sources(tmp.path(), &mirrors, &options.suite)?;
    account::add_user(tmp.path())?;
    let meta = TemplateMeta {
        name: BASE_TEMPLATE.to_string(),
        source: TemplateSource::Debootstrap {
            suite: options.suite.clone(),
            mirror: mirrors.debian.clone(),
            packages: BASE_PACKAGES.iter().map(|p| p.to_string()).collect(),
            version: BASE_VERSION,
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
        start: None,
        ready_port: None,
        user: None,
        created_at: now_secs(),
    };
    publish_template(pool, tmp, &meta)?;
    progress(&format!(
        "template {BASE_TEMPLATE} ready ({files} files shifted)"
    ));
    Ok(meta)
}

/// Runs debootstrap into `rootfs` and shifts ownership into the sandbox id
/// range; returns the number of files shifted.
fn debootstrap(
    options: &BaseOptions,
    mirrors: &Mirrors,
    rootfs: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<u64, TemplateError> {
    progress(&format!(
        "building template {BASE_TEMPLATE}: debootstrap {} from {}",
        options.suite, mirrors.debian
    ));
    std::fs::create_dir_all(&options.cache_dir)
        .map_err(|e| TemplateError::io("create cache dir", &options.cache_dir, e))?;
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
        .arg(rootfs)
        .arg(&mirrors.debian)
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("LANG", "C.UTF-8")
        .env("DEBIAN_FRONTEND", "noninteractive");
    // debootstrap refuses a target on which it cannot open the device nodes
    // it makes, and the pool is mounted nodev.
    super::run::with_devices_in(&mut cmd, rootfs)?;
    super::run::run_streaming(&mut cmd, "debootstrap", progress)?;

    progress("shifting ownership into the sandbox id range");
    let files = shift::shift_ownership(rootfs)
        .map_err(|e| TemplateError::io("shift ownership", rootfs, e))?;
    Ok(files)
}

/// Which way [`tar_seed`] goes.
#[derive(Clone, Copy)]
enum SeedOp {
    Pack,
    Unpack,
}

/// Packs `rootfs` into the seed archive (written to a temporary name, then
/// renamed, so a reader never sees half a seed) or unpacks the seed into it,
/// keeping numeric owners, modes and extended attributes (file capabilities).
fn tar_seed(
    seed: &Path,
    rootfs: &Path,
    op: SeedOp,
    progress: &mut dyn FnMut(&str),
) -> Result<(), TemplateError> {
    let mut cmd = Command::new("tar");
    cmd.arg("-C").arg(rootfs).args([
        "--numeric-owner",
        "--xattrs",
        "--xattrs-include=*",
        "--acls",
    ]);
    match op {
        SeedOp::Unpack => {
            cmd.arg("-xpf").arg(seed);
            super::run::run_streaming(&mut cmd, "unpack base seed", progress)
        }
        SeedOp::Pack => {
            let dir = seed.parent().unwrap_or(Path::new("/"));
            std::fs::create_dir_all(dir)
                .map_err(|e| TemplateError::io("create seed dir", dir, e))?;
            let partial = seed.with_extension(format!("tar.{}.partial", std::process::id()));
            cmd.arg("-cf").arg(&partial).arg(".");
            let packed =
                super::run::run_streaming(&mut cmd, "pack base seed", progress).and_then(|()| {
                    std::fs::rename(&partial, seed)
                        .map_err(|e| TemplateError::io("rename seed", seed, e))
                });
            if packed.is_err() {
                let _ = std::fs::remove_file(&partial);
            }
            packed
        }
    }
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
