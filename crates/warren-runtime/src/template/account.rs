//! The `user` account of the `base` template: what E2B's sandboxes run
//! commands as (uid and gid 1000, home `/home/user`, `/bin/bash`, in the
//! `sudo` group, passwordless sudo).
//!
//! Written into the account databases as text, the way `useradd` would, so
//! that the same step applies to a debootstrapped root and to one unpacked
//! from a seed, and runs nothing from the root on the host.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::inroot::InRoot;
use super::{shift_id, TemplateError};

/// The account's name.
pub const USER_NAME: &str = "user";
/// Its uid and gid (inside the sandbox).
pub const USER_ID: u32 = 1000;
/// Its home directory.
pub const USER_HOME: &str = "/home/user";

/// The sudoers drop-in that makes its sudo passwordless.
const SUDOERS: &str = "/etc/sudoers.d/user";

/// Adds `line` to `db` unless an entry named `name` is there already.
fn with_entry(db: &str, name: &str, line: &str) -> String {
    let prefix = format!("{name}:");
    if db.lines().any(|l| l.starts_with(&prefix)) {
        return db.to_string();
    }
    let mut out = db.to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(line);
    out.push('\n');
    out
}

/// Adds `member` to the member list (the field at `field`) of group
/// `group` in a `group` or `gshadow` database.
fn with_member(db: &str, group: &str, field: usize, member: &str) -> String {
    let prefix = format!("{group}:");
    let mut out = String::with_capacity(db.len() + member.len() + 1);
    for line in db.lines() {
        if line.starts_with(&prefix) {
            let mut fields: Vec<String> = line.split(':').map(str::to_string).collect();
            if fields.len() > field {
                let members = &mut fields[field];
                if !members.split(',').any(|m| m == member) {
                    if !members.is_empty() {
                        members.push(',');
                    }
                    members.push_str(member);
                }
            }
            out.push_str(&fields.join(":"));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// The four account databases with the `user` account in them.
fn databases(passwd: &str, group: &str, shadow: &str, gshadow: &str) -> [String; 4] {
    let (name, id, home) = (USER_NAME, USER_ID, USER_HOME);
    [
        with_entry(
            passwd,
            name,
            &format!("{name}:x:{id}:{id}::{home}:/bin/bash"),
        ),
        with_member(
            &with_entry(group, name, &format!("{name}:x:{id}:")),
            "sudo",
            3,
            name,
        ),
        // No password (`*`: none matches); empty aging fields, so PAM never
        // asks for a new one.
        with_entry(shadow, name, &format!("{name}:*:::::::")),
        with_member(
            &with_entry(gshadow, name, &format!("{name}:!::")),
            "sudo",
            3,
            name,
        ),
    ]
}

/// Adds the `user` account to `rootfs` (already shifted into the sandbox id
/// range): its entries in `/etc/passwd`, `/etc/group`, `/etc/shadow` and
/// `/etc/gshadow` (each keeping its owner and mode), membership of `sudo`,
/// passwordless sudo, and its home with `/etc/skel`'s files. Harmless to
/// repeat.
pub(crate) fn add_user(rootfs: &Path) -> Result<(), TemplateError> {
    let fs = InRoot::open(rootfs).map_err(|e| TemplateError::io("open rootfs", rootfs, e))?;
    let host = |rel: &str| rootfs.join(rel.trim_start_matches('/'));
    let read = |rel: &str| -> Result<(String, (u32, u32), u32), TemplateError> {
        let path = fs
            .entry(Path::new(rel), None)
            .map_err(|e| TemplateError::io("resolve", &host(rel), e))?;
        let meta = std::fs::symlink_metadata(&path)
            .map_err(|e| TemplateError::io("stat", &host(rel), e))?;
        let text =
            std::fs::read_to_string(&path).map_err(|e| TemplateError::io("read", &host(rel), e))?;
        Ok((text, (meta.uid(), meta.gid()), meta.mode() & 0o7777))
    };
    let names = ["/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow"];
    let [passwd, group, shadow, gshadow] = names.map(read);
    let (passwd, group, shadow, gshadow) = (passwd?, group?, shadow?, gshadow?);
    let new = databases(&passwd.0, &group.0, &shadow.0, &gshadow.0);
    for ((rel, (_, owner, mode)), text) in
        names.iter().zip([passwd, group, shadow, gshadow]).zip(new)
    {
        fs.write_file(Path::new(rel), text.as_bytes(), owner, mode)
            .map_err(|e| TemplateError::io("write", &host(rel), e))?;
    }

    let root = (shift_id(0), shift_id(0));
    fs.write_file(
        Path::new(SUDOERS),
        format!("{USER_NAME} ALL=(ALL:ALL) NOPASSWD: ALL\n").as_bytes(),
        root,
        0o440,
    )
    .map_err(|e| TemplateError::io("write", &host(SUDOERS), e))?;

    let user = (shift_id(USER_ID.into()), shift_id(USER_ID.into()));
    let home = fs
        .dir(Path::new(USER_HOME), Some(root))
        .map_err(|e| TemplateError::io("create", &host(USER_HOME), e))?;
    std::os::unix::fs::lchown(&home, Some(user.0), Some(user.1))
        .and_then(|()| {
            std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o750))
        })
        .map_err(|e| TemplateError::io("chown", &home, e))?;
    for name in [".bashrc", ".profile", ".bash_logout"] {
        let skel = format!("/etc/skel/{name}");
        let Ok(path) = fs.entry(Path::new(&skel), None) else {
            continue;
        };
        let Ok(data) = std::fs::read(&path) else {
            continue;
        };
        let rel = format!("{USER_HOME}/{name}");
        fs.write_file(Path::new(&rel), &data, user, 0o644)
            .map_err(|e| TemplateError::io("write", &host(&rel), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_account_is_added_once_and_joins_sudo() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n";
        let group = "root:x:0:\nsudo:x:27:\nadm:x:4:\n";
        let shadow = "root:*:19000:0:99999:7:::\n";
        let gshadow = "root:*::\nsudo:*::\n";
        let [p, g, s, gs] = databases(passwd, group, shadow, gshadow);
        assert_eq!(
            p,
            "root:x:0:0:root:/root:/bin/bash\nuser:x:1000:1000::/home/user:/bin/bash\n"
        );
        assert_eq!(g, "root:x:0:\nsudo:x:27:user\nadm:x:4:\nuser:x:1000:\n");
        assert_eq!(s, "root:*:19000:0:99999:7:::\nuser:*:::::::\n");
        assert_eq!(gs, "root:*::\nsudo:*::user\nuser:!::\n");
        // A second pass changes nothing.
        assert_eq!(databases(&p, &g, &s, &gs), [p, g, s, gs]);
        // Existing members are kept.
        let g = with_member("sudo:x:27:alice\n", "sudo", 3, "user");
        assert_eq!(g, "sudo:x:27:alice,user\n");
    }
}
