//! cgroup v1 (and hybrid hosts): one directory per hierarchy.
//!
//! Limits go to the cpu (`cpu.cfs_quota_us` over `cpu.cfs_period_us`),
//! memory (`memory.limit_in_bytes`, and `memory.memsw.limit_in_bytes` where
//! swap accounting is on, so that swap counts too) and pids (`pids.max`)
//! controllers; the freezer freezes and stops. cpuacct, `name=systemd` and the
//! unified hierarchy of a hybrid host are joined too (no limits there) so
//! that the sandbox leaves the server's own cgroups everywhere.

use std::io;
use std::path::{Path, PathBuf};

use super::{
    cpu_quota_us, kill_pids, mkdir_all, read_pids, rmdir, sandbox_subdirs, spare_subdirs,
    wait_until, write_file, Backend, Join, CPU_PERIOD_US, FREEZE_TIMEOUT, KILL_TIMEOUT,
};
use crate::Resources;

/// Hierarchies that must be mounted: limits and the freezer.
const REQUIRED: [&str; 4] = ["cpu", "memory", "pids", "freezer"];

/// v1 hierarchies joined when present, for accounting and process tracking.
const OPTIONAL: [&str; 2] = ["cpuacct", "systemd"];

/// Where a hybrid host mounts its cgroup2 hierarchy (joined when present).
const UNIFIED: &str = "unified";

/// An empty cgroup of the freezer hierarchy, kept frozen, shared by every
/// server of the host and never removed. The v1 freezer switches a static
/// key on when the first cgroup of the host starts freezing and off when
/// the last one thaws; each switch patches the kernel's code on every CPU
/// (IPIs, in a VM exits), about 0.15 ms of a freeze's write here, and as
/// much of its thaw. With this one frozen, the key stays on, and a fork's
/// or a checkpoint's freeze and thaw skip both patches; no other task is
/// slowed by it but for a check on its way back from a signal.
pub const FREEZER_HOLD: &str = "warren-freezer-hold";

/// The v1/hybrid layout.
#[derive(Debug, Clone)]
pub struct V1 {
    parent: String,
    cpu: PathBuf,
    memory: PathBuf,
    pids: PathBuf,
    freezer: PathBuf,
    /// Every hierarchy joined (deduplicated: `cpu` and `cpuacct` are often
    /// one mount reached through two symlinks).
    all: Vec<PathBuf>,
    /// The cgroup2 hierarchy of a hybrid host, if mounted.
    unified: Option<PathBuf>,
}

impl V1 {
    /// The same hierarchies with `parent` as the parent of every sandbox.
    pub fn with_parent(mut self, parent: &str) -> V1 {
        self.parent = parent.to_string();
        self
    }

    /// Finds the hierarchies under `root`; fails if a required controller is
    /// not mounted.
    pub fn new(root: &Path, parent: &str) -> io::Result<V1> {
        let mount = |name: &str, magic| -> Option<PathBuf> {
            let path = std::fs::canonicalize(root.join(name)).ok()?;
            let fs = nix::sys::statfs::statfs(&path).ok()?;
            (fs.filesystem_type() == magic).then_some(path)
        };
        let v1 = nix::sys::statfs::CGROUP_SUPER_MAGIC;
        let mut required = Vec::with_capacity(REQUIRED.len());
        for name in REQUIRED {
            let path = mount(name, v1).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!(
                        "cgroup v1 controller {name} is not mounted under {}",
                        root.display()
                    ),
                )
            })?;
            required.push(path);
        }
        let mut all = required.clone();
        for path in OPTIONAL.iter().filter_map(|name| mount(name, v1)) {
            if !all.contains(&path) {
                all.push(path);
            }
        }
        let unified = mount(UNIFIED, nix::sys::statfs::CGROUP2_SUPER_MAGIC);
        all.extend(unified.clone());
        let [cpu, memory, pids, freezer] = <[PathBuf; 4]>::try_from(required)
            .map_err(|_| io::Error::other("required controllers"))?;
        Ok(V1 {
            parent: parent.to_string(),
            cpu,
            memory,
            pids,
            freezer,
            all,
            unified,
        })
    }

    fn dir(&self, hierarchy: &Path, id: &str) -> PathBuf {
        hierarchy.join(&self.parent).join(id)
    }

    /// The hierarchies a cgroup can be renamed in: all but the unified one
    /// (cgroup2 has no rename).
    fn renamable(&self) -> impl Iterator<Item = &PathBuf> {
        self.all
            .iter()
            .filter(move |h| Some(*h) != self.unified.as_ref())
    }

    fn freezer_state(&self, id: &str) -> io::Result<String> {
        let path = self.dir(&self.freezer, id).join("freezer.state");
        Ok(std::fs::read_to_string(path)?.trim().to_string())
    }

    fn set_memory(&self, id: &str, bytes: u64) -> io::Result<()> {
        let dir = self.dir(&self.memory, id);
        let limit = dir.join("memory.limit_in_bytes");
        let memsw = dir.join("memory.memsw.limit_in_bytes");
        let value = bytes.to_string();
        // memsw must stay >= limit at every step: lowering goes limit then
        // memsw, raising memsw then limit. Trying limit first covers both.
        let first = write_file(&limit, &value);
        if memsw.exists() {
            write_file(&memsw, &value)?;
        }
        if first.is_err() {
            write_file(&limit, &value)?;
        }
        Ok(())
    }
}

/// Writes `value` to a cgroup file unless it already reads so.
fn write_if_changed(path: &Path, value: u64) -> io::Result<()> {
    if super::read_u64(path) == Some(value) {
        return Ok(());
    }
    write_file(path, &value.to_string())
}

impl Backend for V1 {
    fn name(&self) -> &'static str {
        "v1"
    }

    fn create(&self, id: &str, resources: &Resources) -> io::Result<()> {
        for hierarchy in &self.all {
            mkdir_all(&self.dir(hierarchy, id))?;
        }
        self.set_limits(id, resources)
    }

    fn set_limits(&self, id: &str, resources: &Resources) -> io::Result<()> {
        let cpu = self.dir(&self.cpu, id);
        // A cpu write makes the kernel walk every cpu cgroup of the host to
        // check the quotas, a cost that grows with the sandboxes alive: a
        // value in place is not written again (a new cgroup has the kernel's
        // default period, which is ours; a spare has the quota most starts
        // ask for).
        write_if_changed(&cpu.join("cpu.cfs_period_us"), CPU_PERIOD_US)?;
        write_if_changed(&cpu.join("cpu.cfs_quota_us"), cpu_quota_us(resources.cpus))?;
        self.set_memory(id, resources.memory_mb << 20)?;
        write_file(
            &self.dir(&self.pids, id).join("pids.max"),
            &resources.pids.to_string(),
        )?;
        Ok(())
    }

    fn join(&self, id: &str) -> Join {
        let mut join = Join::default();
        for hierarchy in &self.all {
            let dir = self.dir(hierarchy, id);
            if Some(hierarchy) == self.unified.as_ref() {
                join.cgroup2 = Some(dir);
            } else {
                join.v1_tasks.push(dir.join("tasks"));
            }
        }
        join
    }

    fn exists(&self, id: &str) -> bool {
        self.dir(&self.freezer, id).is_dir()
    }

    fn pids(&self, id: &str) -> Vec<i32> {
        read_pids(&self.dir(&self.freezer, id).join("cgroup.procs"))
    }

    fn freeze(&self, id: &str) -> io::Result<()> {
        let state = self.dir(&self.freezer, id).join("freezer.state");
        write_file(&state, "FROZEN")?;
        // A task in an uninterruptible sleep can leave the cgroup FREEZING;
        // writing FROZEN again retries it.
        wait_until(FREEZE_TIMEOUT, "freezing", || {
            match self.freezer_state(id).as_deref() {
                Ok("FROZEN") => true,
                _ => {
                    let _ = write_file(&state, "FROZEN");
                    false
                }
            }
        })
    }

    fn thaw(&self, id: &str) -> io::Result<()> {
        write_file(&self.dir(&self.freezer, id).join("freezer.state"), "THAWED")
    }

    fn is_frozen(&self, id: &str) -> bool {
        matches!(self.freezer_state(id).as_deref(), Ok("FROZEN" | "FREEZING"))
    }

    fn kill_all(&self, id: &str) -> io::Result<()> {
        // Frozen tasks cannot fork while we collect their pids; a SIGKILL
        // sent to a frozen task takes effect at thaw.
        // A freeze that does not complete still leaves the kill below to
        // retry until the cgroup is empty.
        if let Err(e) = self.freeze(id) {
            tracing::warn!(id, error = %e, "freezing before the kill");
        }
        kill_pids(&self.pids(id));
        self.thaw(id)?;
        wait_until(KILL_TIMEOUT, "emptying the cgroup", || {
            let pids = self.pids(id);
            kill_pids(&pids);
            pids.is_empty()
                && self
                    .all
                    .iter()
                    .all(|h| read_pids(&self.dir(h, id).join("cgroup.procs")).is_empty())
        })
    }

    fn remove(&self, id: &str) -> io::Result<()> {
        let mut first_error = None;
        for hierarchy in &self.all {
            if let Err(e) = rmdir(&self.dir(hierarchy, id)) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn list(&self) -> Vec<String> {
        sandbox_subdirs(&self.freezer.join(&self.parent))
    }

    fn make_spare(&self, name: &str, resources: &Resources) -> io::Result<()> {
        let made = (|| {
            for hierarchy in self.renamable() {
                mkdir_all(&self.dir(hierarchy, name))?;
            }
            self.set_limits(name, resources)
        })();
        if made.is_err() {
            let _ = self.remove(name);
        }
        made
    }

    fn adopt(&self, spare: &str, id: &str, resources: &Resources) -> io::Result<()> {
        let adopted = (|| {
            for hierarchy in self.renamable() {
                let to = self.dir(hierarchy, id);
                std::fs::rename(self.dir(hierarchy, spare), &to).map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("renaming a spare to {}: {e}", to.display()),
                    )
                })?;
            }
            if let Some(unified) = &self.unified {
                mkdir_all(&self.dir(unified, id))?;
            }
            self.set_limits(id, resources)
        })();
        if adopted.is_err() {
            // Both are empty: nothing has joined them yet.
            let _ = self.remove(spare);
            let _ = self.remove(id);
        }
        adopted
    }

    fn spares(&self) -> Vec<String> {
        spare_subdirs(&self.freezer.join(&self.parent))
    }

    fn hold_freezer(&self) -> io::Result<()> {
        let dir = self.freezer.join(FREEZER_HOLD);
        mkdir_all(&dir)?;
        write_file(&dir.join("freezer.state"), "FROZEN")
    }

    fn usage(&self, id: &str) -> super::Usage {
        // cpuacct is mounted with cpu where the host has it.
        let cpu_ns = super::read_u64(&self.dir(&self.cpu, id).join("cpuacct.usage"));
        super::Usage {
            memory_bytes: super::read_u64(
                &self.dir(&self.memory, id).join("memory.usage_in_bytes"),
            ),
            cpu_usec: cpu_ns.map(|ns| ns / 1000),
        }
    }
}
