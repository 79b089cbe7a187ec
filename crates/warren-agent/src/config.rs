//! Agent configuration: what `warren agent` flags set.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Everything the agent needs to know at start. Built by the CLI; tests build
/// it directly with [`AgentConfig::for_tests`].
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Bearer token every request must carry; `None` means `--no-token`.
    pub token: Option<String>,
    /// Directory relative paths (file paths and `cwd`) resolve against.
    pub workdir: PathBuf,
    /// Default environment of every process (request `env` is merged over it).
    pub env: DefaultEnv,
    /// Optional jail: file routes refuse any path that resolves outside it.
    pub root: Option<PathBuf>,
    /// Where the agent keeps what must outlive it (coding-agent sessions).
    /// Inside a sandbox it is on the sandbox's disk, so checkpoints carry it.
    pub state_dir: PathBuf,
    /// Limits that protect the agent.
    pub limits: Limits,
}

/// Resource limits. Going over one is a 429 or 413 problem, never a crash.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Default `timeout_ms` of `processes/run`.
    pub default_run_timeout: Duration,
    /// Largest `timeout_ms` a request may ask for.
    pub max_run_timeout: Duration,
    /// Default `max_output_bytes` per stream of `processes/run`.
    pub default_max_output: u64,
    /// Largest `max_output_bytes` a request may ask for.
    pub max_output_cap: u64,
    /// Size of each managed process's output ring.
    pub ring_bytes: usize,
    /// Processes (run and managed, running) at once.
    pub max_processes: usize,
    /// Exited managed processes kept for `get`/`logs` before being forgotten.
    pub max_exited_kept: usize,
    /// How long an exited managed process is kept.
    pub exited_ttl: Duration,
    /// Largest JSON body.
    pub max_json_body: usize,
    /// Largest stdin payload of one request (decoded bytes).
    pub max_stdin_bytes: usize,
    /// Largest tar upload.
    pub max_upload_bytes: u64,
    /// Concurrent file watches.
    pub max_watches: usize,
    /// How long a session's permission or question request waits for an
    /// answer before it counts as rejected (a session may ask for less).
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            default_run_timeout: Duration::from_secs(60),
            max_run_timeout: Duration::from_secs(24 * 3600),
            default_max_output: 1 << 20,
            max_output_cap: 64 << 20,
            ring_bytes: 1 << 20,
            max_processes: 1024,
            max_exited_kept: 256,
            exited_ttl: Duration::from_secs(600),
            max_json_body: 4 << 20,
            max_stdin_bytes: 1 << 20,
            max_upload_bytes: 64 << 30,
            max_watches: 64,
            request_timeout: Duration::from_secs(600),
        }
    }
}

impl AgentConfig {
    /// No token, the given workdir, default limits, empty default env, no
    /// jail, state in `<workdir>/.warren`.
    pub fn for_tests(workdir: impl Into<PathBuf>) -> Self {
        let workdir = workdir.into();
        AgentConfig {
            token: None,
            state_dir: workdir.join(".warren"),
            workdir,
            env: DefaultEnv::default(),
            root: None,
            limits: Limits::default(),
        }
    }
}

/// Most bytes of names and values (each entry counted as `NAME=value` with
/// its NUL) the default environment may hold after `PATCH /v1/environment`.
pub const MAX_ENV_BYTES: usize = 1024 * 1024;

/// Bytes an environment takes in `execve`'s argument space.
fn env_bytes(env: &BTreeMap<String, String>) -> usize {
    env.iter().map(|(k, v)| k.len() + v.len() + 2).sum()
}

/// The default environment of every process the agent starts: set by
/// `--env` at start, and extended through `PATCH /v1/environment` (how the
/// server gives a pooled sandbox its owner's `envs`). Processes already
/// running keep the environment they started with. Cheap to clone; clones
/// share one map.
#[derive(Debug, Clone, Default)]
pub struct DefaultEnv(Arc<RwLock<Arc<BTreeMap<String, String>>>>);

impl DefaultEnv {
    /// The environment now (a snapshot: later changes do not show in it).
    pub fn get(&self) -> Arc<BTreeMap<String, String>> {
        self.0.read().expect("environment lock").clone()
    }

    /// Sets `vars` over the environment and returns the result.
    pub fn extend(&self, vars: BTreeMap<String, String>) -> Arc<BTreeMap<String, String>> {
        let mut env = self.0.write().expect("environment lock");
        let mut next = (**env).clone();
        next.extend(vars);
        *env = Arc::new(next);
        env.clone()
    }

    /// Like [`DefaultEnv::extend`], but refuses (and changes nothing) when
    /// the result would hold more than [`MAX_ENV_BYTES`] of names and values:
    /// the environment is copied into every process the agent starts, and
    /// `execve` refuses one much larger anyway. Returns the size it would
    /// have had on refusal.
    pub fn try_extend(
        &self,
        vars: BTreeMap<String, String>,
    ) -> Result<Arc<BTreeMap<String, String>>, usize> {
        let mut env = self.0.write().expect("environment lock");
        let mut next = (**env).clone();
        next.extend(vars);
        let bytes = env_bytes(&next);
        if bytes > MAX_ENV_BYTES {
            return Err(bytes);
        }
        *env = Arc::new(next);
        Ok(env.clone())
    }

    /// Sets `name` to `value` (removes it for `None`) and returns the value
    /// it had.
    pub fn swap(&self, name: &str, value: Option<String>) -> Option<String> {
        let mut env = self.0.write().expect("environment lock");
        let mut next = (**env).clone();
        let previous = match value {
            Some(value) => next.insert(name.to_string(), value),
            None => next.remove(name),
        };
        *env = Arc::new(next);
        previous
    }

    /// Like [`DefaultEnv::swap`], but only while `name` is `expected` (a
    /// value someone set since is kept); whether it swapped.
    pub fn swap_if(&self, name: &str, expected: Option<&str>, value: Option<String>) -> bool {
        let mut env = self.0.write().expect("environment lock");
        if env.get(name).map(String::as_str) != expected {
            return false;
        }
        let mut next = (**env).clone();
        match value {
            Some(value) => next.insert(name.to_string(), value),
            None => next.remove(name),
        };
        *env = Arc::new(next);
        true
    }
}

impl From<BTreeMap<String, String>> for DefaultEnv {
    fn from(env: BTreeMap<String, String>) -> Self {
        DefaultEnv(Arc::new(RwLock::new(Arc::new(env))))
    }
}
