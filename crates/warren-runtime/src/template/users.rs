//! Users and groups of a rootfs, looked up in its own `/etc/passwd` and
//! `/etc/group` (read without following a symlink out of it), for build
//! steps that run as a user (`USER` in a Dockerfile) and files copied in
//! with `--chown`.

use std::io::Read;
use std::path::Path;

use super::inroot::InRoot;
use super::{shift_id, TemplateError};

/// A user as the rootfs defines it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ident {
    /// Its uid inside the sandbox.
    pub(crate) uid: u32,
    /// Its primary gid (or the group asked for).
    pub(crate) gid: u32,
    /// Its supplementary groups (those of `/etc/group` that list it).
    pub(crate) groups: Vec<u32>,
    /// Its home directory (`/` when it has no passwd entry).
    pub(crate) home: String,
}

impl Ident {
    /// Its uid and gid as they are on the host (shifted into the sandbox
    /// id range).
    pub(crate) fn shifted(&self) -> (u32, u32) {
        (shift_id(self.uid.into()), shift_id(self.gid.into()))
    }
}

/// Reads `/etc/<name>` of the rootfs; empty when it is missing.
fn read_etc(fs: &InRoot, name: &str) -> Result<String, TemplateError> {
    use std::os::unix::fs::OpenOptionsExt;
    let rel = Path::new("etc").join(name);
    let path = match fs.entry(&rel, None) {
        Ok(path) => path,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(String::new()),
        Err(e) => return Err(TemplateError::io("resolve", &rel, e)),
    };
    let mut text = String::new();
    match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
    {
        Ok(file) => file
            .take(16 << 20)
            .read_to_string(&mut text)
            .map_err(|e| TemplateError::io("read", &rel, e))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(TemplateError::io("read", &rel, e)),
    };
    Ok(text)
}

/// Resolves `spec` (`user`, `uid`, `user:group`, `uid:gid`) in the rootfs.
/// A name that is not there is an error; a number need not be (its group
/// is then 0, as Docker has it).
pub(crate) fn resolve(rootfs: &Path, spec: &str) -> Result<Ident, TemplateError> {
    let fs = InRoot::open(rootfs).map_err(|e| TemplateError::io("open rootfs", rootfs, e))?;
    let passwd = read_etc(&fs, "passwd")?;
    let group = read_etc(&fs, "group")?;
    resolve_in(&passwd, &group, spec).map_err(|reason| TemplateError::InvalidSpec {
        path: "USER".to_string(),
        reason,
    })
}

/// [`resolve`] over the texts of `/etc/passwd` and `/etc/group`.
pub(crate) fn resolve_in(passwd: &str, group: &str, spec: &str) -> Result<Ident, String> {
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let entry = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 7)
        .find(|f| {
            if user.bytes().all(|b| b.is_ascii_digit()) {
                f[2] == user
            } else {
                f[0] == user
            }
        });
    let (uid, mut gid, home, name) = match (&entry, user.parse::<u32>()) {
        (Some(f), _) => (
            f[2].parse::<u32>()
                .map_err(|_| format!("user {user:?}: a bad uid in /etc/passwd"))?,
            f[3].parse::<u32>()
                .map_err(|_| format!("user {user:?}: a bad gid in /etc/passwd"))?,
            f[5].to_string(),
            Some(f[0]),
        ),
        (None, Ok(uid)) => (uid, 0, "/".to_string(), None),
        (None, Err(_)) => return Err(format!("no user {user:?} in the template's /etc/passwd")),
    };
    let groups_of = group
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 4);
    if let Some(grp) = grp {
        gid = match grp.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => groups_of
                .clone()
                .find(|f| f[0] == grp)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| format!("no group {grp:?} in the template's /etc/group"))?,
        };
    }
    let mut groups = vec![gid];
    if let Some(name) = name {
        for f in groups_of {
            if f[3].split(',').any(|m| m == name) {
                if let Ok(g) = f[2].parse::<u32>() {
                    if !groups.contains(&g) {
                        groups.push(g);
                    }
                }
            }
        }
    }
    Ok(Ident {
        uid,
        gid,
        groups,
        home,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str =
        "root:x:0:0:root:/root:/bin/bash\nuser:x:1000:1000::/home/user:/bin/bash\n";
    const GROUP: &str = "root:x:0:\nsudo:x:27:user\nuser:x:1000:\nstaff:x:50:\n";

    #[test]
    fn users_resolve_by_name_number_and_group() {
        let u = resolve_in(PASSWD, GROUP, "user").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (1000, 1000, "/home/user"));
        assert_eq!(u.groups, [1000, 27]);
        let u = resolve_in(PASSWD, GROUP, "1000:staff").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 50));
        let u = resolve_in(PASSWD, GROUP, "4242").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (4242, 0, "/"));
        assert!(resolve_in(PASSWD, GROUP, "nobody-here").is_err());
        assert!(resolve_in(PASSWD, GROUP, "user:nogroup").is_err());
    }
}
