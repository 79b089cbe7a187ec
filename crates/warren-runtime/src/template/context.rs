//! Build contexts of Dockerfile builds: a tar archive unpacked into a
//! scratch volume ([`unpack`]), the sources `COPY` names found in it
//! ([`sources`]), and their copy into a rootfs ([`CopySpec`]).
//!
//! Both trees are walked without ever following a symlink out of them:
//! paths are resolved by [`InRoot`] (the kernel's `RESOLVE_IN_ROOT`, so a
//! symlink in the context means what it would mean in the context, never on
//! the host), and only entries whose type was checked without following are
//! descended into.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tar::EntryType;

use super::build::hash_source;
use super::inroot::{remove_any, InRoot};
use super::users;
use super::TemplateError;
use crate::SANDBOX_ID_BASE;

/// The owner of what is unpacked (host root: the context is the server's
/// scratch, under its 0700 state directory).
const HOST_ROOT: (u32, u32) = (0, 0);

/// Unpacks the (uncompressed) tar archive `reader` into `dir`: regular
/// files, directories, symlinks and hard links, with their modes; any
/// other entry type is skipped, and names with `..` are refused.
pub(crate) fn unpack(reader: impl Read, dir: &Path) -> Result<(), TemplateError> {
    let bad = |e: io::Error| TemplateError::InvalidContext(format!("not a tar archive: {e}"));
    let root = InRoot::open(dir).map_err(|e| TemplateError::io("open", dir, e))?;
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let raw = entry.path().map_err(bad)?.into_owned();
        let Some(rel) = super::layer::clean(&raw)? else {
            continue;
        };
        let kind = entry.header().entry_type();
        let mode = entry.header().mode().unwrap_or(0o644) & 0o7777;
        let err = |e| TemplateError::io("unpack", &rel, e);
        match kind {
            EntryType::Directory => {
                let path = root.dir(&rel, Some(HOST_ROOT)).map_err(err)?;
                fs::set_permissions(&path, fs::Permissions::from_mode(mode | 0o700))
                    .map_err(err)?;
            }
            EntryType::Regular | EntryType::Continuous => {
                let path = root.entry(&rel, Some(HOST_ROOT)).map_err(err)?;
                remove_any(&path).map_err(err)?;
                let mut file = fs::File::create_new(&path).map_err(err)?;
                io::copy(&mut entry, &mut file).map_err(err)?;
                fs::set_permissions(&path, fs::Permissions::from_mode(mode)).map_err(err)?;
            }
            EntryType::Symlink => {
                let link = entry.link_name().map_err(bad)?.unwrap_or_default();
                let path = root.entry(&rel, Some(HOST_ROOT)).map_err(err)?;
                remove_any(&path).map_err(err)?;
                std::os::unix::fs::symlink(&link, &path).map_err(err)?;
            }
            EntryType::Link => {
                let link = entry.link_name().map_err(bad)?.unwrap_or_default();
                let Some(link_rel) = super::layer::clean(&link)? else {
                    continue;
                };
                let source = root.entry(&link_rel, None).map_err(err)?;
                let path = root.entry(&rel, Some(HOST_ROOT)).map_err(err)?;
                remove_any(&path).map_err(err)?;
                fs::hard_link(&source, &path).map_err(err)?;
            }
            other => {
                tracing::debug!(entry = %rel.display(), kind = ?other, "context entry skipped");
            }
        }
    }
    Ok(())
}

/// One source of a `COPY`, found in the context.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    /// As matched in the context (relative, for messages and cache keys).
    pub(crate) rel: String,
    /// Its host path (the parent resolved in the context, the name not).
    pub(crate) path: PathBuf,
    /// Whether it is a directory (its contents are copied).
    pub(crate) is_dir: bool,
}

/// The entries of `context` that `pattern` names: a path relative to the
/// context (a leading `/` is the context's root), whose components may
/// hold `*` and `?` wildcards. `Err` says why nothing fits.
pub(crate) fn sources(context: &Path, pattern: &str) -> Result<Vec<Source>, String> {
    let mut parts = Vec::new();
    for part in pattern.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(format!("{pattern:?} is outside the build context")),
            p => parts.push(p),
        }
    }
    if parts.iter().any(|p| p.contains('[')) {
        return Err(format!(
            "{pattern:?}: [...] patterns are not supported (* and ? are)"
        ));
    }
    let root = InRoot::open(context).map_err(|e| e.to_string())?;
    let mut found: Vec<String> = vec![String::new()];
    for part in parts {
        let mut next = Vec::new();
        for prefix in &found {
            if !part.contains(['*', '?']) {
                next.push(join(prefix, part));
                continue;
            }
            let Ok(dir) = root.dir(Path::new(prefix), None) else {
                continue;
            };
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            let mut names: Vec<String> = entries
                .flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| wildcard(part, n))
                .collect();
            names.sort();
            next.extend(names.iter().map(|n| join(prefix, n)));
        }
        found = next;
    }
    let mut out = Vec::new();
    for rel in found {
        let path = if rel.is_empty() {
            root.dir(Path::new(""), None)
        } else {
            root.entry(Path::new(&rel), None)
        };
        let Ok(path) = path else {
            continue;
        };
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        out.push(Source {
            rel: if rel.is_empty() { ".".into() } else { rel },
            path,
            is_dir: meta.is_dir(),
        });
    }
    if out.is_empty() {
        return Err(format!("{pattern:?} is not in the build context"));
    }
    Ok(out)
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}/{name}")
    }
}

/// Whether `name` matches `pattern` (`*`: any run, `?`: one character).
fn wildcard(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some('*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some('?'), Some(_)) => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

/// A `COPY` (or `ADD`) step: sources of the context into the rootfs.
pub(crate) struct CopySpec {
    /// The sources.
    pub(crate) sources: Vec<Source>,
    /// The destination, absolute in the rootfs.
    pub(crate) dest: String,
    /// Whether `dest` is a directory the sources go into (it ends with
    /// `/`, or there are several sources); otherwise a lone file source is
    /// copied to `dest` itself unless `dest` is an existing directory.
    pub(crate) dest_is_dir: bool,
    /// `--chown`: a user (and group) of the rootfs; root when `None`.
    pub(crate) chown: Option<String>,
    /// `--chmod`: the mode of everything copied.
    pub(crate) chmod: Option<u32>,
}

impl CopySpec {
    pub(crate) fn describe(&self) -> String {
        let names: Vec<&str> = self.sources.iter().map(|s| s.rel.as_str()).collect();
        format!("copy {} {}", names.join(" "), self.dest)
    }

    /// The parts of the step's identity: where, how, and the sources'
    /// contents.
    pub(crate) fn identity(&self) -> io::Result<Vec<Vec<u8>>> {
        let mut parts = vec![
            self.dest.clone().into_bytes(),
            vec![u8::from(self.dest_is_dir)],
            self.chown.clone().unwrap_or_default().into_bytes(),
            self.chmod
                .map(|m| m.to_le_bytes().to_vec())
                .unwrap_or_default(),
        ];
        for source in &self.sources {
            parts.push(source.rel.clone().into_bytes());
            parts.push(hash_source(&source.path)?.into_bytes());
        }
        Ok(parts)
    }

    /// Copies the sources into `rootfs`.
    pub(crate) fn execute(&self, rootfs: &Path) -> Result<(), TemplateError> {
        let owner = match &self.chown {
            Some(user) => users::resolve(rootfs, user)?.shifted(),
            None => (SANDBOX_ID_BASE, SANDBOX_ID_BASE),
        };
        let fs = InRoot::open(rootfs).map_err(|e| TemplateError::io("open rootfs", rootfs, e))?;
        let dest = Path::new(&self.dest);
        let err = |e| TemplateError::io("copy to", dest, e);
        let copier = Copier {
            owner,
            chmod: self.chmod,
        };
        let lone_file = self.sources.len() == 1 && !self.sources[0].is_dir && !self.dest_is_dir;
        if lone_file {
            let target = fs.entry(dest, Some(owner)).map_err(err)?;
            let target = if fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir()) {
                target.join(file_name(&self.sources[0].path))
            } else {
                target
            };
            return copier.replace(&self.sources[0].path, &target).map_err(err);
        }
        let dir = fs.dir(dest, Some(owner)).map_err(err)?;
        for source in &self.sources {
            if source.is_dir {
                copier.merge(&source.path, &dir).map_err(err)?;
            } else {
                copier
                    .replace(&source.path, &dir.join(file_name(&source.path)))
                    .map_err(err)?;
            }
        }
        Ok(())
    }
}

fn file_name(path: &Path) -> &std::ffi::OsStr {
    path.file_name().unwrap_or_default()
}

struct Copier {
    owner: (u32, u32),
    chmod: Option<u32>,
}

impl Copier {
    /// Copies the contents of directory `src` into directory `dst` (a host
    /// path inside the rootfs without symlinks), merging with what is
    /// there: a directory stays (and is descended into), anything else is
    /// replaced.
    fn merge(&self, src: &Path, dst: &Path) -> io::Result<()> {
        for entry in fs::read_dir(src)? {
            let entry = entry?;
            let from = entry.path();
            let to = dst.join(entry.file_name());
            if fs::symlink_metadata(&from)?.is_dir() {
                if !fs::symlink_metadata(&to).is_ok_and(|m| m.is_dir()) {
                    remove_any(&to)?;
                    fs::create_dir(&to)?;
                    std::os::unix::fs::lchown(&to, Some(self.owner.0), Some(self.owner.1))?;
                    let mode = fs::symlink_metadata(&from)?.permissions().mode() & 0o7777;
                    fs::set_permissions(
                        &to,
                        fs::Permissions::from_mode(self.chmod.unwrap_or(mode)),
                    )?;
                }
                self.merge(&from, &to)?;
            } else {
                self.replace(&from, &to)?;
            }
        }
        Ok(())
    }

    /// Replaces whatever is at `dst` with a copy of the file or symlink
    /// `src`.
    fn replace(&self, src: &Path, dst: &Path) -> io::Result<()> {
        remove_any(dst)?;
        crate::storage::copy::copy_tree(src, dst, Some(self.owner))?;
        if let Some(mode) = self.chmod {
            if !fs::symlink_metadata(dst)?.file_type().is_symlink() {
                fs::set_permissions(dst, fs::Permissions::from_mode(mode))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_like_a_shell() {
        assert!(wildcard("*.py", "main.py"));
        assert!(!wildcard("*.py", "main.pyc"));
        assert!(wildcard("req?.txt", "req1.txt"));
        assert!(wildcard("*", ".hidden"));
    }

    #[test]
    fn sources_stay_inside_the_context() {
        let ctx = tempfile::tempdir().unwrap();
        fs::write(ctx.path().join("a.py"), "a").unwrap();
        fs::write(ctx.path().join("b.py"), "b").unwrap();
        fs::create_dir(ctx.path().join("dir")).unwrap();
        std::os::unix::fs::symlink("/etc", ctx.path().join("etc")).unwrap();
        let found = sources(ctx.path(), "*.py").unwrap();
        let names: Vec<&str> = found.iter().map(|s| s.rel.as_str()).collect();
        assert_eq!(names, ["a.py", "b.py"]);
        assert!(sources(ctx.path(), ".").unwrap()[0].is_dir);
        assert!(sources(ctx.path(), "../x").is_err());
        assert!(sources(ctx.path(), "missing").is_err());
        // `etc/passwd` through the symlink is the context's etc, not the host's.
        assert!(sources(ctx.path(), "etc/passwd").is_err());
    }

    #[test]
    fn unpacking_refuses_escapes() {
        let dir = tempfile::tempdir().unwrap();
        let mut tar = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o755);
        h.set_entry_type(EntryType::Regular);
        h.set_cksum();
        tar.append_data(&mut h, "ok/run.sh", &b"x"[..]).unwrap();
        let good = tar.into_inner().unwrap();
        unpack(&good[..], dir.path()).unwrap();
        let mode = fs::metadata(dir.path().join("ok/run.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);

        let mut evil = good.clone();
        // Rewrite the name in place: `../x/run.sh` has the same length.
        evil[..11].copy_from_slice(b"../x/run.sh");
        let mut header = tar::Header::from_byte_slice(&evil[..512]).clone();
        header.set_cksum();
        evil[..512].copy_from_slice(header.as_bytes());
        assert!(unpack(&evil[..], dir.path()).is_err());
    }
}
