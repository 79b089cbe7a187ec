//! Running processes as another user: `user` of a run or a managed process,
//! looked up in the system's `/etc/passwd` and `/etc/group` (inside a
//! sandbox, the sandbox's own), applied between fork and exec.

use std::io;

use crate::AgentError;

/// Largest `/etc/passwd` or `/etc/group` read.
const MAX_DB: u64 = 4 << 20;

/// A resolved user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Its name (the uid as text when it has no passwd entry).
    pub name: String,
    /// Its uid.
    pub uid: u32,
    /// Its primary group.
    pub gid: u32,
    /// Every group it is in, the primary one first.
    pub groups: Vec<u32>,
    /// Its home directory.
    pub home: String,
}

fn read_db(path: &str) -> String {
    use std::io::Read;
    let mut text = String::new();
    if let Ok(file) = std::fs::File::open(path) {
        let _ = file.take(MAX_DB).read_to_string(&mut text);
    }
    text
}

/// Looks `spec` (a name, or a numeric uid) up in `passwd` and `group`.
pub fn lookup_in(spec: &str, passwd: &str, group: &str) -> Result<User, AgentError> {
    if spec.is_empty() || spec.contains(['\0', ':', '\n']) {
        return Err(AgentError::InvalidRequest(format!("invalid user {spec:?}")));
    }
    let numeric = spec.parse::<u32>().ok();
    let entry = passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 7 {
            return None;
        }
        let uid = f[2].parse::<u32>().ok()?;
        let gid = f[3].parse::<u32>().ok()?;
        (f[0] == spec || numeric == Some(uid))
            .then(|| (f[0].to_string(), uid, gid, f[5].to_string()))
    });
    let (name, uid, gid, home) = match (entry, numeric) {
        (Some(e), _) => e,
        // A uid without an entry runs with its own id as group, at `/`.
        (None, Some(uid)) => (uid.to_string(), uid, uid, "/".to_string()),
        (None, None) => {
            return Err(AgentError::InvalidRequest(format!(
                "no user {spec:?} in /etc/passwd"
            )))
        }
    };
    let mut groups = vec![gid];
    for line in group.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 4 {
            continue;
        }
        let Ok(id) = f[2].parse::<u32>() else {
            continue;
        };
        if f[3].split(',').any(|member| member == name) && !groups.contains(&id) {
            groups.push(id);
        }
    }
    Ok(User {
        name,
        uid,
        gid,
        groups,
        home,
    })
}

/// Looks a user up in the system's databases.
pub fn lookup(spec: &str) -> Result<User, AgentError> {
    lookup_in(spec, &read_db("/etc/passwd"), &read_db("/etc/group"))
}

/// Names of uids and gids, read once from `/etc/passwd` and `/etc/group`.
#[derive(Debug, Default)]
pub struct IdNames {
    users: std::collections::HashMap<u32, String>,
    groups: std::collections::HashMap<u32, String>,
}

impl IdNames {
    /// Reads the system's databases.
    pub fn load() -> IdNames {
        IdNames::parse(&read_db("/etc/passwd"), &read_db("/etc/group"))
    }

    /// Parses `passwd` and `group` text (the first name of an id wins).
    pub fn parse(passwd: &str, group: &str) -> IdNames {
        let table = |text: &str| {
            let mut map = std::collections::HashMap::new();
            for line in text.lines() {
                let f: Vec<&str> = line.split(':').collect();
                if let (Some(name), Some(Ok(id))) = (f.first(), f.get(2).map(|s| s.parse())) {
                    map.entry(id).or_insert_with(|| name.to_string());
                }
            }
            map
        };
        IdNames {
            users: table(passwd),
            groups: table(group),
        }
    }

    /// The user name of `uid`, or the number as text.
    pub fn user(&self, uid: u32) -> String {
        self.users
            .get(&uid)
            .cloned()
            .unwrap_or_else(|| uid.to_string())
    }

    /// The group name of `gid`, or the number as text.
    pub fn group(&self, gid: u32) -> String {
        self.groups
            .get(&gid)
            .cloned()
            .unwrap_or_else(|| gid.to_string())
    }
}

/// Between fork and exec: takes on `groups`, `gid` and `uid`, in that
/// order (groups and gid need the privilege that setuid gives up).
/// Async-signal-safe: raw system calls on memory allocated before the fork.
pub fn become_user(uid: u32, gid: u32, groups: &[libc::gid_t]) -> io::Result<()> {
    // SAFETY: setgroups reads `groups.len()` ids from a live slice;
    // setgid and setuid take integers.
    unsafe {
        if libc::setgroups(groups.len(), groups.as_ptr()) != 0
            || libc::setgid(gid) != 0
            || libc::setuid(uid) != 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str =
        "root:x:0:0:root:/root:/bin/bash\nuser:x:1000:1000::/home/user:/bin/bash\n";
    const GROUP: &str = "root:x:0:\nsudo:x:27:user\nuser:x:1000:\nadm:x:4:other,user\n";

    #[test]
    fn users_resolve_by_name_or_uid_with_their_groups() {
        let user = lookup_in("user", PASSWD, GROUP).unwrap();
        assert_eq!(
            (user.uid, user.gid, user.home.as_str()),
            (1000, 1000, "/home/user")
        );
        assert_eq!(user.groups, vec![1000, 27, 4]);
        assert_eq!(lookup_in("1000", PASSWD, GROUP).unwrap().name, "user");
        let bare = lookup_in("4242", PASSWD, GROUP).unwrap();
        assert_eq!(
            (bare.uid, bare.gid, bare.groups.clone()),
            (4242, 4242, vec![4242])
        );
        assert!(lookup_in("nobody-here", PASSWD, GROUP).is_err());
        assert!(lookup_in("a:b", PASSWD, GROUP).is_err());
    }

    #[test]
    fn ids_have_names() {
        let names = IdNames::parse(PASSWD, GROUP);
        assert_eq!(names.user(1000), "user");
        assert_eq!(names.group(27), "sudo");
        assert_eq!(names.user(4242), "4242");
    }
}
