//! The rest of E2B's control plane over Warren's domains: snapshots are
//! checkpoints, fork is Warren's fork, metrics come from what Warren knows
//! of the sandbox, logs from its agent's log, network updates are a patch.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;

use warren_api::checkpoint::{CreateCheckpointRequest, ForkRequest as WarrenFork};
use warren_api::server::PatchSandboxRequest;

use super::wire::{
    ForkResult, NetworkConfig, SandboxLog, SandboxLogEntry, SandboxMetric, SnapshotInfo,
};
use super::{network_request, warren_id, E2b, E2bError, DEFAULT_TIMEOUT_SECS};
use crate::auth::Caller;
use crate::paging::Page;
use crate::store::E2bRecord;
use crate::time::{now_ms, rfc3339};

/// Over how long a metrics sample measures CPU use.
const CPU_WINDOW: std::time::Duration = std::time::Duration::from_millis(100);

/// Most of a sandbox's agent log the logs routes read (its end).
const MAX_LOG_BYTES: u64 = 256 << 10;

impl E2b {
    /// `POST /sandboxes/{id}/snapshots`: a checkpoint, whose id is usable
    /// as the `templateID` of a create.
    pub async fn snapshot(
        &self,
        caller: &Caller,
        id: &str,
        name: Option<String>,
    ) -> Result<SnapshotInfo, E2bError> {
        let wid = warren_id(id);
        self.inner
            .sandboxes
            .entry(caller, &wid)
            .map_err(|_| E2bError::sandbox_not_found(id))?;
        let checkpoint = self
            .inner
            .checkpoints
            .create(caller, &wid, CreateCheckpointRequest { name })
            .await?;
        Ok(SnapshotInfo {
            snapshot_id: checkpoint.id,
            names: vec![checkpoint.name],
        })
    }

    /// `GET /snapshots`: a page of the caller's checkpoints (of one
    /// sandbox with `sandboxID`, of one name with `name`).
    pub async fn snapshots(
        &self,
        caller: &Caller,
        sandbox_id: Option<&str>,
        name: Option<&str>,
        limit: Option<u32>,
        next_token: Option<&str>,
    ) -> Result<(Vec<SnapshotInfo>, Option<String>), E2bError> {
        let page = Page::parse(limit, next_token)?;
        let list = self
            .inner
            .checkpoints
            .list(caller, sandbox_id.map(warren_id), page)
            .await?;
        let items = list
            .items
            .into_iter()
            .filter(|c| name.is_none_or(|n| c.name == n))
            .map(|c| SnapshotInfo {
                snapshot_id: c.id,
                names: vec![c.name],
            })
            .collect();
        Ok((items, list.next_cursor))
    }

    /// `DELETE /templates/{id}` of a snapshot: deletes the checkpoint.
    pub async fn delete_snapshot(&self, caller: &Caller, id: &str) -> Result<(), E2bError> {
        self.inner.checkpoints.delete(caller, id).await?;
        Ok(())
    }

    /// `POST /sandboxes/{id}/fork`: Warren's fork (one checkpoint, `count`
    /// sandboxes from it), each new sandbox with E2B's time to live and its
    /// source's E2B settings.
    pub async fn fork(
        &self,
        caller: &Caller,
        id: &str,
        timeout: Option<u64>,
        count: Option<u32>,
    ) -> Result<Vec<ForkResult>, E2bError> {
        let wid = warren_id(id);
        self.inner
            .sandboxes
            .entry(caller, &wid)
            .map_err(|_| E2bError::sandbox_not_found(id))?;
        let source = self.row(&wid);
        let timeout = timeout
            .or_else(|| source.as_ref().map(|r| r.timeout_secs.max(1) as u64))
            .unwrap_or(DEFAULT_TIMEOUT_SECS);
        let forked = self
            .inner
            .checkpoints
            .fork(caller, &wid, WarrenFork { count, name: None })
            .await?;
        let mut results = Vec::with_capacity(forked.items.len());
        for sandbox in forked.items {
            let public = source.as_ref().is_none_or(|r| r.public_traffic);
            let row = E2bRecord {
                sandbox_id: sandbox.id.clone(),
                auto_pause: source.as_ref().is_some_and(|r| r.auto_pause),
                timeout_secs: timeout as i64,
                public_traffic: public,
                traffic_token: (!public).then(super::token::random_token),
            };
            let saved = async {
                self.save_row(row).await?;
                self.inner
                    .store
                    .set_deadline(&sandbox.id, Some(now_ms() + timeout as i64 * 1000))
                    .await?;
                // E2B's time to live, not the idle timeout the fork copied.
                self.inner
                    .store
                    .patch_sandbox(&sandbox.id, None, None, Some(0))
                    .await
            };
            results.push(match saved.await {
                Ok(()) => ForkResult {
                    sandbox: Some(self.created(&sandbox)),
                    error: None,
                },
                Err(e) => ForkResult {
                    sandbox: None,
                    error: Some(E2bError::store(e).body()),
                },
            });
        }
        Ok(results)
    }

    /// `GET /sandboxes/{id}/metrics`: one sample, now, from what the
    /// sandbox's cgroups count: memory charged, and CPU use over
    /// [`CPU_WINDOW`]; the totals are its limits. Disk use is not measured
    /// (0).
    pub async fn metrics(&self, caller: &Caller, id: &str) -> Result<Vec<SandboxMetric>, E2bError> {
        let sandbox = self
            .inner
            .sandboxes
            .get(caller, &warren_id(id))
            .await
            .map_err(|_| E2bError::sandbox_not_found(id))?;
        let node = self.inner.sandboxes.node().clone();
        let wid = sandbox.id.clone();
        let (first, second) = tokio::task::spawn_blocking(move || {
            let first = node.usage(&wid);
            std::thread::sleep(CPU_WINDOW);
            (first, node.usage(&wid))
        })
        .await
        .unwrap_or_default();
        let cpus = sandbox.resources.cpus.max(0.01);
        let cpu_used_pct = match (first.cpu_usec, second.cpu_usec) {
            (Some(a), Some(b)) => {
                let window_usec = CPU_WINDOW.as_micros() as f64;
                ((b.saturating_sub(a)) as f64 / (window_usec * cpus) * 100.0).min(100.0)
            }
            _ => 0.0,
        };
        let now = now_ms();
        let mib = 1u64 << 20;
        Ok(vec![SandboxMetric {
            timestamp: rfc3339(now),
            timestamp_unix: now / 1000,
            cpu_count: sandbox.resources.cpus.ceil().max(1.0) as u64,
            cpu_used_pct: (cpu_used_pct * 100.0).round() / 100.0,
            mem_used: second.memory_bytes.unwrap_or(0),
            mem_total: sandbox.resources.memory_mb * mib,
            mem_cache: 0,
            disk_used: 0,
            disk_total: sandbox.resources.disk_mb.unwrap_or(0) * mib,
        }])
    }

    /// `GET /sandboxes/metrics?sandbox_ids=a,b`: the latest sample of each
    /// (unknown or invisible ids are left out).
    pub async fn metrics_of(
        &self,
        caller: &Caller,
        ids: &[String],
    ) -> Result<BTreeMap<String, SandboxMetric>, E2bError> {
        let mut out = BTreeMap::new();
        for id in ids {
            if let Ok(mut samples) = self.metrics(caller, id).await {
                if let Some(sample) = samples.pop() {
                    out.insert(id.clone(), sample);
                }
            }
        }
        Ok(out)
    }

    /// `GET /sandboxes/{id}/logs`: the end of its agent's log, one entry a
    /// line (timestamps are the time of the call: the log has none).
    pub async fn logs(
        &self,
        caller: &Caller,
        id: &str,
        limit: Option<usize>,
    ) -> Result<Vec<SandboxLogEntry>, E2bError> {
        let wid = warren_id(id);
        self.inner
            .sandboxes
            .entry(caller, &wid)
            .map_err(|_| E2bError::sandbox_not_found(id))?;
        let path = self
            .inner
            .sandboxes
            .node()
            .run_dir(&wid)
            .join(warren_runtime::namespaces::AGENT_LOG);
        let text = tokio::task::spawn_blocking(move || read_tail(&path))
            .await
            .unwrap_or_default();
        let now = rfc3339(now_ms());
        let mut lines: Vec<SandboxLogEntry> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|line| SandboxLogEntry {
                timestamp: now.clone(),
                message: line.to_string(),
                level: level_of(line).into(),
                fields: BTreeMap::new(),
            })
            .collect();
        if let Some(limit) = limit {
            let skip = lines.len().saturating_sub(limit);
            lines.drain(..skip);
        }
        Ok(lines)
    }

    /// The old logs shape of the same entries.
    pub fn old_logs(entries: &[SandboxLogEntry]) -> Vec<SandboxLog> {
        entries
            .iter()
            .map(|e| SandboxLog {
                timestamp: e.timestamp.clone(),
                line: e.message.clone(),
            })
            .collect()
    }

    /// `PUT /sandboxes/{id}/network`: the egress policy replaced (and
    /// whether ports are public).
    pub async fn update_network(
        &self,
        caller: &Caller,
        id: &str,
        config: NetworkConfig,
    ) -> Result<(), E2bError> {
        let wid = warren_id(id);
        self.inner
            .sandboxes
            .entry(caller, &wid)
            .map_err(|_| E2bError::sandbox_not_found(id))?;
        let network = network_request(config.allow_internet_access, Some(&config))?.unwrap_or(
            warren_api::server::NetworkRequest {
                egress: Some(warren_api::server::Egress::Allow),
                allow: None,
            },
        );
        self.inner
            .sandboxes
            .patch(
                caller,
                &wid,
                PatchSandboxRequest {
                    network: Some(network),
                    ..PatchSandboxRequest::default()
                },
            )
            .await?;
        if let (Some(public), Some(row)) = (config.allow_public_traffic, self.row(&wid)) {
            let mut row = (*row).clone();
            row.public_traffic = public;
            if !public && row.traffic_token.is_none() {
                row.traffic_token = Some(super::token::random_token());
            }
            self.save_row(row).await.map_err(E2bError::store)?;
        }
        Ok(())
    }
}

/// The level a log line names, else `info`.
fn level_of(line: &str) -> &'static str {
    let head: String = line
        .chars()
        .take(64)
        .collect::<String>()
        .to_ascii_uppercase();
    if head.contains("ERROR") {
        "error"
    } else if head.contains("WARN") {
        "warn"
    } else if head.contains("DEBUG") || head.contains("TRACE") {
        "debug"
    } else {
        "info"
    }
}

/// The last [`MAX_LOG_BYTES`] of a file in a sandbox's run directory,
/// opened without following links (the sandbox owns that directory).
fn read_tail(path: &std::path::Path) -> String {
    let Ok(mut file) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    else {
        return String::new();
    };
    let Ok(meta) = file.metadata() else {
        return String::new();
    };
    if !meta.is_file() {
        return String::new();
    }
    let start = meta.len().saturating_sub(MAX_LOG_BYTES);
    if file.seek(SeekFrom::Start(start)).is_err() {
        return String::new();
    }
    let mut bytes = Vec::new();
    let _ = file.take(MAX_LOG_BYTES).read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes).into_owned();
    if start > 0 {
        // Drop the partial first line.
        text.split_once('\n')
            .map(|(_, rest)| rest.to_string())
            .unwrap_or_default()
    } else {
        text
    }
}
