//! The podman + runc peer: the base template's root file system imported as
//! an image, and containers of it timed until their first command answers.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// The image the peer runs: the base template's seed archive, imported.
pub const PODMAN_IMAGE: &str = "localhost/warren-bench-base:latest";

/// `podman run` arguments shared by the benchmarks: runc, no network, the
/// same file and process limits a sandbox gets.
pub const PODMAN_RUN_ARGS: [&str; 10] = [
    "--runtime",
    "runc",
    "run",
    "--rm",
    "--network",
    "none",
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=1024:1024",
];

/// Imports the base template's seed archive (the same root file system the
/// sandboxes run; made by the first sandbox of any server) into podman once.
pub fn ensure_podman_image() -> anyhow::Result<()> {
    let exists = Command::new("podman")
        .args(["image", "exists", PODMAN_IMAGE])
        .status()
        .context("podman (install podman and runc)")?;
    if exists.success() {
        return Ok(());
    }
    let seed = std::fs::read_dir("/var/cache/warren/seeds")
        .context("the base template's seed (created by the first sandbox)")?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "tar"))
        .context("no base seed archive")?;
    let status = Command::new("podman")
        .arg("import")
        .arg(&seed)
        .arg(PODMAN_IMAGE)
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("podman import failed");
    }
    Ok(())
}

/// Runs `podman run --rm IMAGE echo ready` and times it until `ready` is
/// printed: the container's first command answered. The removal that
/// follows is waited for but not timed.
pub fn podman_first_answer() -> anyhow::Result<Duration> {
    let start = Instant::now();
    let mut child = Command::new("podman")
        .args(PODMAN_RUN_ARGS)
        .args([PODMAN_IMAGE, "echo", "ready"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("podman run")?;
    let stdout = child.stdout.take().context("podman's stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let took = start.elapsed();
    let out = child.wait_with_output()?;
    if line.trim() != "ready" || !out.status.success() {
        bail!(
            "podman run failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(took)
}

/// Starts `n` detached `sleep infinity` containers labelled `label`.
pub fn start_idle_containers(n: usize, label: &str) -> anyhow::Result<()> {
    for _ in 0..n {
        let out = Command::new("podman")
            .args(PODMAN_RUN_ARGS.iter().filter(|&&a| a != "--rm"))
            .args(["-d", "--label", label, PODMAN_IMAGE, "sleep", "infinity"])
            .output()?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr).replace('\n', " ");
            bail!("podman run -d: {}", err.trim());
        }
    }
    Ok(())
}

/// Removes every container labelled `label` (`key=value`), at once.
pub fn remove_containers(label: &str) {
    let Ok(out) = Command::new("podman")
        .args(["ps", "-aq", "--filter", &format!("label={label}")])
        .stderr(Stdio::null())
        .output()
    else {
        return;
    };
    let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(String::from)
        .collect();
    if !ids.is_empty() {
        let _ = Command::new("podman")
            .args(["rm", "-f", "-t", "0"])
            .args(&ids)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
