//! The process supervisor.

use std::sync::Arc;

use crate::AgentConfig;

/// Owns every process the agent started.
#[derive(Clone)]
pub struct Supervisor {
    #[allow(dead_code)]
    config: Arc<AgentConfig>,
}

impl Supervisor {
    /// A supervisor for this configuration.
    pub fn new(config: Arc<AgentConfig>) -> Self {
        Supervisor { config }
    }

    /// Ends every running process group (SIGTERM, then SIGKILL after `grace`).
    pub async fn shutdown(&self, _grace: std::time::Duration) {}
}

/// Makes this process a child subreaper, so orphaned descendants are
/// reparented to it and reaped by the supervisor (PID 1 is one already).
pub fn become_subreaper() {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes an integer flag and
    // touches no memory of ours.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
}
