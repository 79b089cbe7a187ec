//! File operations.

use std::sync::Arc;

use crate::AgentConfig;

/// File operations under the configured workdir and optional root jail.
#[derive(Clone)]
pub struct Files {
    #[allow(dead_code)]
    config: Arc<AgentConfig>,
}

impl Files {
    /// File operations for this configuration.
    pub fn new(config: Arc<AgentConfig>) -> Self {
        Files { config }
    }
}
