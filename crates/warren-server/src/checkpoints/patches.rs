//! Checkpoint patches: scripts attached to a checkpoint and run, in the
//! order they were added, in every sandbox made from it (`from_checkpoint`
//! or a fork) after its agent answers and before the create returns. A
//! patch that exits non-zero or times out fails the create: the sandbox is
//! destroyed and the problem (`patch_failed`) carries the exit code and the
//! tail of the script's output.
//!
//! A patch runs as an executable file: the agent runs a small `/bin/sh`
//! wrapper that writes the script (given as its stdin) to a private file in
//! the sandbox's `/tmp`, runs it with stdin from `/dev/null` and removes it.
//! A `#!` line picks the interpreter; without one the shell runs it.

use warren_api::agent::{RunRequest, RunResponse};
use warren_api::checkpoint::{CreatePatchRequest, Patch, PatchList};
use warren_api::ids::{self, IdKind};

use super::{checked_name, CheckpointError, Checkpoints};
use crate::auth::Caller;
use crate::proxy::AgentClient;
use crate::sandboxes::SandboxError;
use crate::store::PatchRecord;
use crate::time::{now_ms, rfc3339};

/// Time limit of a patch that does not give one.
pub const DEFAULT_TIMEOUT_MS: u64 = 300_000;

/// Longest time limit of a patch.
pub const MAX_TIMEOUT_MS: u64 = 3_600_000;

/// Largest script.
pub const MAX_SCRIPT_BYTES: usize = 256 * 1024;

/// Most patches on one checkpoint.
pub const MAX_PATCHES: usize = 64;

/// Bytes of each output stream quoted in a failure.
const OUTPUT_TAIL: usize = 4096;

/// Writes the script from stdin to a private file, runs it, removes it.
/// `exec` of a file without `#!` fails with ENOEXEC, on which the shell
/// runs the file itself (POSIX), so both kinds of script work.
const WRAPPER: &str = "p=$(mktemp /tmp/.warren-patch.XXXXXX) || exit 126; \
    cat > \"$p\" && chmod 700 \"$p\" || { rm -f \"$p\"; exit 126; }; \
    \"$p\" </dev/null; s=$?; rm -f \"$p\"; exit $s";

fn view(p: &PatchRecord) -> Patch {
    Patch {
        id: p.id.clone(),
        checkpoint_id: p.checkpoint_id.clone(),
        name: p.name.clone(),
        script: p.script.clone(),
        timeout_ms: p.timeout_ms,
        created_at: rfc3339(p.created_at),
    }
}

impl Checkpoints {
    /// Adds a patch at the end of a checkpoint's list.
    pub async fn add_patch(
        &self,
        caller: &Caller,
        checkpoint_id: &str,
        req: CreatePatchRequest,
    ) -> Result<Patch, CheckpointError> {
        let checkpoint = self.visible(caller, checkpoint_id).await?;
        if req.script.trim().is_empty() || req.script.len() > MAX_SCRIPT_BYTES {
            return Err(CheckpointError::invalid(
                "script",
                format!("a script of 1 to {MAX_SCRIPT_BYTES} bytes"),
            ));
        }
        if req.script.contains('\0') {
            return Err(CheckpointError::invalid(
                "script",
                "a script cannot contain NUL",
            ));
        }
        let name = req.name.map(|n| checked_name(Some(n), "")).transpose()?;
        let timeout_ms = req.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
        if timeout_ms == 0 || timeout_ms > MAX_TIMEOUT_MS {
            return Err(CheckpointError::invalid(
                "timeout_ms",
                format!("between 1 and {MAX_TIMEOUT_MS}"),
            ));
        }
        if self.inner.store.patches(&checkpoint.id).await?.len() >= MAX_PATCHES {
            return Err(CheckpointError::invalid(
                "script",
                format!("a checkpoint has at most {MAX_PATCHES} patches"),
            ));
        }
        let record = PatchRecord {
            seq: 0,
            id: ids::new_id(IdKind::Patch),
            checkpoint_id: checkpoint.id,
            name,
            script: req.script,
            timeout_ms,
            created_at: now_ms(),
        };
        self.inner.store.insert_patch(&record).await?;
        Ok(view(&record))
    }

    /// The patches of a checkpoint, in run order.
    pub async fn patches(
        &self,
        caller: &Caller,
        checkpoint_id: &str,
    ) -> Result<PatchList, CheckpointError> {
        let checkpoint = self.visible(caller, checkpoint_id).await?;
        let patches = self.inner.store.patches(&checkpoint.id).await?;
        Ok(PatchList {
            items: patches.iter().map(view).collect(),
        })
    }

    /// Removes a patch from a checkpoint.
    pub async fn delete_patch(
        &self,
        caller: &Caller,
        checkpoint_id: &str,
        patch_id: &str,
    ) -> Result<(), CheckpointError> {
        let checkpoint = self.visible(caller, checkpoint_id).await?;
        if !self
            .inner
            .store
            .delete_patch(&checkpoint.id, patch_id)
            .await?
        {
            return Err(CheckpointError::PatchNotFound {
                checkpoint: checkpoint.id,
                patch: patch_id.to_string(),
            });
        }
        Ok(())
    }
}

/// Runs `patches` in order in the (running) sandbox `sandbox_id`; the first
/// failure stops and is returned as [`SandboxError::PatchFailed`].
pub async fn apply(
    agent: &AgentClient,
    sandbox_id: &str,
    checkpoint_id: &str,
    patches: &[PatchRecord],
) -> Result<(), SandboxError> {
    for (index, patch) in patches.iter().enumerate() {
        let label = match &patch.name {
            Some(name) => format!("patch {} ({} {name:?})", index + 1, patch.id),
            None => format!("patch {} ({})", index + 1, patch.id),
        };
        let failed =
            |what: String| SandboxError::PatchFailed(format!("{label} of {checkpoint_id} {what}"));
        let result = run(agent, sandbox_id, patch)
            .await
            .map_err(|reason| failed(format!("could not run: {reason}")))?;
        if result.exit_code == Some(0) && !result.timed_out {
            tracing::debug!(sandbox = %sandbox_id, patch = %patch.id, "patch applied");
            continue;
        }
        let how = if result.timed_out {
            format!("timed out after {} ms", patch.timeout_ms)
        } else if let Some(code) = result.exit_code {
            format!("failed with exit code {code}")
        } else {
            format!("was killed by signal {}", result.signal.unwrap_or_default())
        };
        return Err(failed(format!(
            "{how}; stdout: {:?}; stderr: {:?}",
            tail(&result.stdout),
            tail(&result.stderr)
        )));
    }
    Ok(())
}

/// The end of an output stream, at most [`OUTPUT_TAIL`] bytes.
fn tail(text: &str) -> &str {
    let mut start = text.len().saturating_sub(OUTPUT_TAIL);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// One patch through the agent's `processes/run`.
async fn run(
    agent: &AgentClient,
    sandbox_id: &str,
    patch: &PatchRecord,
) -> Result<RunResponse, String> {
    let body = RunRequest {
        argv: Some(vec!["/bin/sh".into(), "-c".into(), WRAPPER.into()]),
        stdin: Some(patch.script.clone()),
        timeout_ms: Some(patch.timeout_ms),
        ..RunRequest::default()
    };
    agent
        .call(
            http::Method::POST,
            sandbox_id,
            "/v1/processes/run",
            Some(&body),
        )
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails_cut_on_char_boundaries() {
        assert_eq!(tail("short"), "short");
        let long = format!("{}é{}", "a".repeat(10), "b".repeat(OUTPUT_TAIL - 1));
        let t = tail(&long);
        assert!(t.len() <= OUTPUT_TAIL);
        assert!(t.ends_with('b'));
    }
}
