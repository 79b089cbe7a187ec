//! The sandbox's `/etc/hosts` and `/etc/resolv.conf`, which name its host
//! and its resolver, given to it without writing its disk.
//!
//! Both differ from one sandbox to the next (the host name is the
//! sandbox's id). Written into the root, they were the first write of every
//! start: on btrfs that copies the tree blocks the root shares with its
//! template, and the next commit records a reference for every block under
//! them, a cost that grows with the number of snapshots of that template
//! alive (a create in a loop of creates and deletes: 9–12 ms with none
//! alive, 21–31 ms with 300, and 11–12 ms with 300 without these writes).
//! So, as Docker does, each is written into the run directory
//! (`/run/warren`, a tmpfs) and bound over the root's file: the sandbox
//! reads it and appends to it as before, while its disk, and so its
//! checkpoints and forks, keep the image's file (with whatever the tenant
//! wrote there before). What this costs a tenant, as in Docker: the file
//! cannot be replaced by a rename (`sed -i` fails with `EBUSY`), and what is
//! written to it lasts until the sandbox stops. A root whose file is not a
//! regular file of at most [`MAX_BOUND`] bytes gets it written in place.

use std::fs;
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::mount::{mount, MsFlags};

/// The run directory as the sandbox sees it.
const RUN_DIR: &str = "/run/warren";
/// Largest file bound from the run directory (a tmpfs of a few MiB that
/// the agent's socket and log share); a larger one is written in place.
const MAX_BOUND: u64 = 64 << 10;

/// Whether `path` is a regular file (not a symlink) of at most
/// [`MAX_BOUND`] bytes.
fn is_small_file(path: &Path) -> io::Result<bool> {
    match fs::symlink_metadata(path) {
        Ok(meta) => Ok(meta.is_file() && meta.len() <= MAX_BOUND),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Writes `text` into the run directory as `name` and binds it over
/// `/etc/<name>` (the init still holds `CAP_SYS_ADMIN` in its namespaces).
/// The bind keeps the run directory's `nosuid,nodev,noexec`.
fn bind_copy(name: &str, text: &str) -> io::Result<()> {
    let copy = Path::new(RUN_DIR).join(name);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&copy)?;
    file.write_all(text.as_bytes())?;
    drop(file);
    let target = Path::new("/etc").join(name);
    mount(
        Some(&copy),
        &target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(io::Error::from)
}

/// Points `/etc/resolv.conf` at the server's resolver: bound from the run
/// directory over a regular file; a symlink (whose target may not exist)
/// or a missing file is replaced by a plain file in the root as before.
/// Runs inside the new root, so a symlink can only lead within the sandbox.
pub(super) fn point_resolver(resolver: Ipv4Addr) -> io::Result<()> {
    let path = Path::new("/etc/resolv.conf");
    if !Path::new("/etc").is_dir() {
        return Ok(());
    }
    let text = format!("# written by warren: the sandbox's resolver\nnameserver {resolver}\n");
    if is_small_file(path)? {
        return bind_copy("resolv.conf", &text);
    }
    if path.is_symlink() {
        fs::remove_file(path)?;
    }
    fs::write(path, text)
}

/// Marks the `/etc/hosts` line [`name_host`] adds.
const HOSTS_MARK: &str = "# warren: the sandbox's hostname";

/// Makes the sandbox's hostname resolve (to `127.0.1.1`, as Debian does)
/// through `/etc/hosts`: `sudo` and others look their own host up and
/// complain when that fails. The line is marked, so a fork or a restored
/// disk (another id) gets its own instead of one more; a line of the
/// image's or the user's that names the host already is left alone, and so
/// is a symlinked `/etc/hosts`.
pub(super) fn name_host(hostname: &str) -> io::Result<()> {
    let path = Path::new("/etc/hosts");
    if !Path::new("/etc").is_dir() || path.is_symlink() {
        return Ok(());
    }
    let small = is_small_file(path)?;
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    match hosts_naming(&text, hostname) {
        None => Ok(()),
        Some(new) if small => bind_copy("hosts", &new),
        Some(new) => fs::write(path, new),
    }
}

/// `hosts` with the line that names `hostname` (ours, replacing an earlier
/// one of ours), or `None` when it needs no change.
fn hosts_naming(hosts: &str, hostname: &str) -> Option<String> {
    let ours = format!("127.0.1.1\t{hostname}\t{HOSTS_MARK}");
    let mut kept: Vec<&str> = hosts
        .lines()
        .filter(|line| !line.ends_with(HOSTS_MARK))
        .collect();
    let named = kept.iter().any(|line| {
        let line = line.split('#').next().unwrap_or("");
        line.split_whitespace().skip(1).any(|name| name == hostname)
    });
    if !named {
        kept.push(&ours);
    }
    let mut new = kept.join("\n");
    new.push('\n');
    (new != hosts).then_some(new)
}

#[cfg(test)]
mod hosts_tests {
    use super::*;

    #[test]
    fn the_hostname_gets_one_marked_line() {
        let base = "127.0.0.1\tlocalhost\n";
        let first = hosts_naming(base, "sbx_a").unwrap();
        assert_eq!(first, format!("{base}127.0.1.1\tsbx_a\t{HOSTS_MARK}\n"));
        assert_eq!(hosts_naming(&first, "sbx_a"), None);
        // A fork: its own line instead of the parent's.
        let fork = hosts_naming(&first, "sbx_b").unwrap();
        assert_eq!(fork, format!("{base}127.0.1.1\tsbx_b\t{HOSTS_MARK}\n"));
        // Named by the user already: left alone.
        let mine = "127.0.0.1 localhost sbx_c # mine\n";
        assert_eq!(hosts_naming(mine, "sbx_c"), None);
        assert_eq!(
            hosts_naming("", "sbx_d").unwrap(),
            format!("127.0.1.1\tsbx_d\t{HOSTS_MARK}\n")
        );
    }
}
