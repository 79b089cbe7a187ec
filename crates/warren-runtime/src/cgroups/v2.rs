//! cgroup v2: one directory per sandbox, `<root>/<parent>/<id>`.
//!
//! The cpu, memory and pids controllers are enabled in the root's and the
//! parent's `cgroup.subtree_control`; limits are `cpu.max`, `memory.max`
//! (with `memory.swap.max` 0, so that the limit covers swap too) and
//! `pids.max`. `cgroup.freeze` freezes and `cgroup.kill` (Linux 5.14+) kills.

use std::io;
use std::path::{Path, PathBuf};

use super::{
    cpu_quota_us, kill_pids, mkdir_all, read_pids, rmdir, sandbox_subdirs, wait_until, write_file,
    Backend, Join, CPU_PERIOD_US, FREEZE_TIMEOUT, KILL_TIMEOUT,
};
use crate::Resources;

/// Controllers every sandbox needs.
const CONTROLLERS: [&str; 3] = ["cpu", "memory", "pids"];

/// The unified layout.
#[derive(Debug)]
pub struct V2 {
    root: PathBuf,
    parent: String,
}

impl V2 {
    /// The layout under the cgroup2 mount `root`.
    pub fn new(root: &Path, parent: &str) -> V2 {
        V2 {
            root: root.to_path_buf(),
            parent: parent.to_string(),
        }
    }

    fn dir(&self, id: &str) -> PathBuf {
        self.root.join(&self.parent).join(id)
    }

    /// Enables the controllers for the children of `dir` where not yet done.
    fn enable_controllers(dir: &Path) -> io::Result<()> {
        let available = std::fs::read_to_string(dir.join("cgroup.controllers"))?;
        let enabled = std::fs::read_to_string(dir.join("cgroup.subtree_control"))?;
        let missing: Vec<String> = CONTROLLERS
            .iter()
            .filter(|c| !enabled.split_whitespace().any(|e| e == **c))
            .map(|c| {
                if available.split_whitespace().any(|a| a == *c) {
                    Ok(format!("+{c}"))
                } else {
                    Err(io::Error::new(
                        io::ErrorKind::Unsupported,
                        format!("controller {c} is not available in {}", dir.display()),
                    ))
                }
            })
            .collect::<io::Result<_>>()?;
        if missing.is_empty() {
            return Ok(());
        }
        write_file(&dir.join("cgroup.subtree_control"), &missing.join(" "))
    }

    fn frozen(&self, id: &str) -> bool {
        std::fs::read_to_string(self.dir(id).join("cgroup.events"))
            .map(|events| events.lines().any(|l| l.trim() == "frozen 1"))
            .unwrap_or(false)
    }
}

impl Backend for V2 {
    fn name(&self) -> &'static str {
        "v2"
    }

    fn create(&self, id: &str, resources: &Resources) -> io::Result<()> {
        let parent = self.root.join(&self.parent);
        Self::enable_controllers(&self.root)?;
        mkdir_all(&parent)?;
        Self::enable_controllers(&parent)?;
        mkdir_all(&self.dir(id))?;
        self.set_limits(id, resources)
    }

    fn set_limits(&self, id: &str, resources: &Resources) -> io::Result<()> {
        let dir = self.dir(id);
        write_file(
            &dir.join("cpu.max"),
            &format!("{} {CPU_PERIOD_US}", cpu_quota_us(resources.cpus)),
        )?;
        write_file(
            &dir.join("memory.max"),
            &(resources.memory_mb << 20).to_string(),
        )?;
        let swap = dir.join("memory.swap.max");
        if swap.exists() {
            write_file(&swap, "0")?;
        }
        write_file(&dir.join("pids.max"), &resources.pids.to_string())
    }

    fn join(&self, id: &str) -> Join {
        Join {
            cgroup2: Some(self.dir(id)),
            v1_tasks: Vec::new(),
        }
    }

    fn exists(&self, id: &str) -> bool {
        self.dir(id).is_dir()
    }

    fn pids(&self, id: &str) -> Vec<i32> {
        read_pids(&self.dir(id).join("cgroup.procs"))
    }

    fn freeze(&self, id: &str) -> io::Result<()> {
        write_file(&self.dir(id).join("cgroup.freeze"), "1")?;
        wait_until(FREEZE_TIMEOUT, "freezing", || self.frozen(id))
    }

    fn thaw(&self, id: &str) -> io::Result<()> {
        write_file(&self.dir(id).join("cgroup.freeze"), "0")
    }

    fn is_frozen(&self, id: &str) -> bool {
        let asked = std::fs::read_to_string(self.dir(id).join("cgroup.freeze"))
            .map(|v| v.trim() == "1")
            .unwrap_or(false);
        asked || self.frozen(id)
    }

    fn kill_all(&self, id: &str) -> io::Result<()> {
        let kill = self.dir(id).join("cgroup.kill");
        if kill.exists() {
            write_file(&kill, "1")?;
        } else {
            if let Err(e) = self.freeze(id) {
                tracing::warn!(id, error = %e, "freezing before the kill");
            }
            kill_pids(&self.pids(id));
            self.thaw(id)?;
        }
        wait_until(KILL_TIMEOUT, "emptying the cgroup", || {
            let pids = self.pids(id);
            kill_pids(&pids);
            pids.is_empty()
        })
    }

    fn remove(&self, id: &str) -> io::Result<()> {
        rmdir(&self.dir(id))
    }

    fn list(&self) -> Vec<String> {
        sandbox_subdirs(&self.root.join(&self.parent))
    }

    fn usage(&self, id: &str) -> super::Usage {
        let dir = self.dir(id);
        let cpu_usec = std::fs::read_to_string(dir.join("cpu.stat"))
            .ok()
            .and_then(|stat| {
                stat.lines()
                    .find_map(|l| l.strip_prefix("usage_usec "))
                    .and_then(|v| v.trim().parse().ok())
            });
        super::Usage {
            memory_bytes: super::read_u64(&dir.join("memory.current")),
            cpu_usec,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cgroup2 mount on this host: `/sys/fs/cgroup` itself, or the
    /// controller-less unified hierarchy of a hybrid host (enough for
    /// freeze, kill, list and remove; limits need the controllers).
    fn cgroup2_mount() -> Option<PathBuf> {
        ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| super::super::is_cgroup2(p).unwrap_or(false))
    }

    #[test]
    fn freeze_kill_list_and_remove_on_a_real_cgroup2_tree() {
        let Some(root) = cgroup2_mount() else {
            eprintln!("no cgroup2 mount on this host; skipped");
            return;
        };
        let parent = format!("warren-unit-{}", std::process::id());
        let v2 = V2::new(&root, &parent);
        let id = "sbx_v2";
        mkdir_all(&v2.dir(id)).unwrap();
        let mut sleeper = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        let _cleanup = Cleanup {
            pid: sleeper.id() as i32,
            dirs: vec![v2.dir(id), root.join(&parent)],
        };
        let procs = v2.join(id).cgroup2.unwrap().join("cgroup.procs");
        write_file(&procs, &sleeper.id().to_string()).unwrap();
        assert_eq!(v2.list(), [id]);
        assert_eq!(v2.pids(id), [sleeper.id() as i32]);
        v2.freeze(id).unwrap();
        assert!(v2.frozen(id));
        v2.thaw(id).unwrap();
        assert!(!v2.frozen(id));
        v2.kill_all(id).unwrap();
        assert!(v2.pids(id).is_empty());
        let status = sleeper.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9)
        );
        v2.remove(id).unwrap();
        assert!(!v2.exists(id));
        v2.remove(id).unwrap();
    }

    /// Kills the test process and removes the test cgroups, even on failure.
    struct Cleanup {
        pid: i32,
        dirs: Vec<PathBuf>,
    }

    impl Drop for Cleanup {
        fn drop(&mut self) {
            kill_pids(&[self.pid]);
            for dir in &self.dirs {
                let _ = rmdir(dir);
            }
        }
    }
}
