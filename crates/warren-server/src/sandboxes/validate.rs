//! Checks of create and patch requests, before anything is written.

use std::collections::BTreeMap;

use warren_api::server::{CreateSandboxRequest, PatchSandboxRequest, ResourcesRequest};
use warren_runtime::{NetworkPolicy, Resources};

use super::SandboxError;
use crate::config::Limits;
use crate::host::HostLimits;

/// Template used when a create request names none.
pub const DEFAULT_TEMPLATE: &str = "base";

/// Smallest memory limit: below it the agent itself does not fit.
pub const MIN_MEMORY_MB: u64 = 32;

/// Smallest pids limit: the agent and a shell need a few.
pub const MIN_PIDS: u64 = 16;

/// Smallest CPU share.
pub const MIN_CPUS: f64 = 0.01;

/// Smallest `auto_checkpoint_keep`.
pub const MIN_AUTO_CHECKPOINT_KEEP: u32 = 1;

/// Largest `auto_checkpoint_keep`.
pub const MAX_AUTO_CHECKPOINT_KEEP: u32 = 10_000;

/// `auto_checkpoint_keep` of sandboxes that do not give one.
pub const DEFAULT_AUTO_CHECKPOINT_KEEP: u32 = 100;

/// A create request, checked and with every default filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct CreatePlan {
    /// Template name. With `from_checkpoint`, the template asked for, if
    /// any (empty: the checkpoint's); it must be the checkpoint's.
    pub template: String,
    /// Idle timeout (0: none).
    pub timeout_secs: u64,
    /// Lifetime, if any.
    pub ttl_secs: Option<u64>,
    /// Default environment.
    pub envs: BTreeMap<String, String>,
    /// Metadata.
    pub metadata: BTreeMap<String, String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Limits.
    pub resources: Resources,
    /// Disk limit, MiB beyond the template (`None`: none).
    pub disk_mb: Option<u64>,
    /// Egress policy.
    pub network: NetworkPolicy,
    /// Checkpoint after every `processes/run`.
    pub auto_checkpoint: bool,
    /// Automatic checkpoints kept.
    pub auto_checkpoint_keep: u32,
    /// Wake on an agent call while hibernated.
    pub auto_wake: bool,
    /// Make the disk from this checkpoint.
    pub from_checkpoint: Option<String>,
}

/// Checks a create request against the server's limits and the host's size.
pub fn create_plan(
    req: CreateSandboxRequest,
    limits: &Limits,
    host: &HostLimits,
) -> Result<CreatePlan, SandboxError> {
    let auto_checkpoint_keep = req
        .auto_checkpoint_keep
        .unwrap_or(DEFAULT_AUTO_CHECKPOINT_KEEP);
    if !(MIN_AUTO_CHECKPOINT_KEEP..=MAX_AUTO_CHECKPOINT_KEEP).contains(&auto_checkpoint_keep) {
        return Err(SandboxError::invalid(
            "auto_checkpoint_keep",
            format!("must be between {MIN_AUTO_CHECKPOINT_KEEP} and {MAX_AUTO_CHECKPOINT_KEEP}"),
        ));
    }
    let network = super::network::resolve(
        req.network,
        limits.default_egress,
        limits.allow_private_egress,
    )?;
    let timeout_secs = req.timeout_secs.unwrap_or(limits.default_timeout_secs);
    check_timeout(timeout_secs, limits)?;
    if let Some(ttl) = req.ttl_secs {
        if ttl == 0 || ttl > limits.max_ttl_secs {
            return Err(SandboxError::invalid(
                "ttl_secs",
                format!("must be between 1 and {}", limits.max_ttl_secs),
            ));
        }
    }
    let envs = req.envs.unwrap_or_default();
    check_envs(&envs, limits)?;
    let metadata = req.metadata.unwrap_or_default();
    check_map("metadata", &metadata, limits)?;
    let labels = req.labels.unwrap_or_default();
    check_map("labels", &labels, limits)?;
    let requested = req.resources.unwrap_or_default();
    let disk_mb = disk(requested.disk_mb, limits)?;
    let resources = resources(requested, limits, host)?;
    let template = match (&req.from_checkpoint, req.template) {
        (None, template) => template.unwrap_or_else(|| DEFAULT_TEMPLATE.to_string()),
        (Some(_), template) => template.unwrap_or_default(),
    };
    Ok(CreatePlan {
        template,
        auto_checkpoint: req.auto_checkpoint.unwrap_or(false),
        auto_checkpoint_keep,
        auto_wake: req.auto_wake.unwrap_or(false),
        from_checkpoint: req.from_checkpoint,
        timeout_secs,
        ttl_secs: req.ttl_secs,
        envs,
        metadata,
        labels,
        resources,
        disk_mb,
        network,
    })
}

/// Smallest `disk_mb`.
pub const MIN_DISK_MB: u64 = 16;

/// The disk limit of a create request: its own, else the server's default;
/// never over the server's maximum.
fn disk(asked: Option<u64>, limits: &Limits) -> Result<Option<u64>, SandboxError> {
    let disk = asked.or(limits.default_disk_mb);
    match (disk, limits.max_disk_mb) {
        (Some(d), _) if d < MIN_DISK_MB => Err(SandboxError::invalid(
            "resources.disk_mb",
            format!("must be at least {MIN_DISK_MB}"),
        )),
        (Some(d), Some(max)) if d > max => Err(SandboxError::invalid(
            "resources.disk_mb",
            format!("{d} MiB is more than this server's maximum of {max} MiB per sandbox"),
        )),
        (None, Some(max)) => Ok(Some(max)),
        (disk, _) => Ok(disk),
    }
}

/// Checks a patch request.
pub fn patch(req: &PatchSandboxRequest, limits: &Limits) -> Result<(), SandboxError> {
    if let Some(metadata) = &req.metadata {
        check_map("metadata", metadata, limits)?;
    }
    if let Some(labels) = &req.labels {
        check_map("labels", labels, limits)?;
    }
    if let Some(timeout) = req.timeout_secs {
        check_timeout(timeout, limits)?;
    }
    if let Some(network) = &req.network {
        super::network::resolve(
            Some(network.clone()),
            limits.default_egress,
            limits.allow_private_egress,
        )?;
    }
    Ok(())
}

/// Checks the seconds of an extension.
pub fn extension(seconds: u64, limits: &Limits) -> Result<(), SandboxError> {
    if seconds == 0 || seconds > limits.max_ttl_secs {
        return Err(SandboxError::invalid(
            "seconds",
            format!("must be between 1 and {}", limits.max_ttl_secs),
        ));
    }
    Ok(())
}

fn check_timeout(timeout: u64, limits: &Limits) -> Result<(), SandboxError> {
    if timeout > limits.max_timeout_secs {
        return Err(SandboxError::invalid(
            "timeout_secs",
            format!(
                "must be at most {} (0 disables it)",
                limits.max_timeout_secs
            ),
        ));
    }
    Ok(())
}

fn resources(
    req: ResourcesRequest,
    limits: &Limits,
    host: &HostLimits,
) -> Result<Resources, SandboxError> {
    // Defaults never exceed the maxima (a server started with a small
    // --max-cpus still creates sandboxes that ask for nothing).
    let d = limits.default_resources;
    let max = server_maxima(limits, host);
    let r = Resources {
        cpus: req.cpus.unwrap_or(d.cpus.min(max.cpus)),
        memory_mb: req.memory_mb.unwrap_or(d.memory_mb.min(max.memory_mb)),
        pids: req.pids.unwrap_or(d.pids.min(max.pids)),
    };
    if !r.cpus.is_finite() || r.cpus < MIN_CPUS {
        return Err(SandboxError::invalid(
            "resources.cpus",
            format!("must be at least {MIN_CPUS}"),
        ));
    }
    if r.memory_mb < MIN_MEMORY_MB {
        return Err(SandboxError::invalid(
            "resources.memory_mb",
            format!("must be at least {MIN_MEMORY_MB}"),
        ));
    }
    if r.pids < MIN_PIDS {
        return Err(SandboxError::invalid(
            "resources.pids",
            format!("must be at least {MIN_PIDS}"),
        ));
    }
    if r.cpus > host.cpus {
        return Err(SandboxError::OverHostLimits(format!(
            "resources.cpus: {} is more than the host's {} CPUs",
            r.cpus, host.cpus
        )));
    }
    if r.memory_mb > host.memory_mb {
        return Err(SandboxError::OverHostLimits(format!(
            "resources.memory_mb: {} MiB is more than the host's {} MiB",
            r.memory_mb, host.memory_mb
        )));
    }
    if r.pids > host.pids {
        return Err(SandboxError::OverHostLimits(format!(
            "resources.pids: {} is more than the host's pid_max of {}",
            r.pids, host.pids
        )));
    }
    if r.cpus > max.cpus {
        return Err(SandboxError::invalid(
            "resources.cpus",
            format!(
                "{} is more than this server's maximum of {} per sandbox",
                r.cpus, max.cpus
            ),
        ));
    }
    if r.memory_mb > max.memory_mb {
        return Err(SandboxError::invalid(
            "resources.memory_mb",
            format!(
                "{} MiB is more than this server's maximum of {} MiB per sandbox",
                r.memory_mb, max.memory_mb
            ),
        ));
    }
    if r.pids > max.pids {
        return Err(SandboxError::invalid(
            "resources.pids",
            format!(
                "{} is more than this server's maximum of {} per sandbox",
                r.pids, max.pids
            ),
        ));
    }
    Ok(r)
}

/// The most one sandbox may ask for on this server: its flags, else the
/// host's CPUs, half its memory, and 4096 tasks.
pub fn server_maxima(limits: &Limits, host: &HostLimits) -> Resources {
    Resources {
        cpus: limits.max_cpus.unwrap_or(host.cpus).min(host.cpus),
        memory_mb: limits
            .max_memory_mb
            .unwrap_or(host.memory_mb / 2)
            .min(host.memory_mb),
        pids: limits.max_pids.min(host.pids),
    }
}

fn check_map(
    field: &'static str,
    map: &BTreeMap<String, String>,
    limits: &Limits,
) -> Result<(), SandboxError> {
    if map.len() > limits.max_map_entries {
        return Err(SandboxError::invalid(
            field,
            format!("at most {} entries", limits.max_map_entries),
        ));
    }
    for (key, value) in map {
        if key.is_empty() || key.len() > limits.max_key_len || key.chars().any(char::is_control) {
            return Err(SandboxError::invalid(
                field,
                format!(
                    "key {key:?}: keys are 1 to {} bytes without control characters",
                    limits.max_key_len
                ),
            ));
        }
        if value.len() > limits.max_value_len {
            return Err(SandboxError::invalid(
                field,
                format!(
                    "value of {key:?} is longer than {} bytes",
                    limits.max_value_len
                ),
            ));
        }
    }
    Ok(())
}

fn check_envs(envs: &BTreeMap<String, String>, limits: &Limits) -> Result<(), SandboxError> {
    check_map("envs", envs, limits)?;
    for (key, value) in envs {
        if key.contains('=') || key.contains('\0') || value.contains('\0') {
            return Err(SandboxError::invalid(
                "envs",
                format!("{key:?}: names cannot contain '=' and neither part can contain NUL"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> HostLimits {
        HostLimits {
            cpus: 2.0,
            memory_mb: 4096,
            pids: 32768,
        }
    }

    #[test]
    fn defaults_fill_an_empty_request() {
        let plan =
            create_plan(CreateSandboxRequest::default(), &Limits::default(), &host()).unwrap();
        assert_eq!(plan.template, "base");
        assert_eq!(plan.timeout_secs, 300);
        assert_eq!(plan.ttl_secs, None);
        assert_eq!(plan.resources, Resources::default());
        assert_eq!(plan.network, NetworkPolicy::allow_all());
    }

    #[test]
    fn over_host_limits_and_bad_fields_are_refused() {
        let limits = Limits::default();
        let with = |r: ResourcesRequest| CreateSandboxRequest {
            resources: Some(r),
            ..Default::default()
        };
        for (req, over_host) in [
            (
                with(ResourcesRequest {
                    cpus: Some(3.0),
                    ..Default::default()
                }),
                true,
            ),
            (
                with(ResourcesRequest {
                    memory_mb: Some(1 << 20),
                    ..Default::default()
                }),
                true,
            ),
            (
                with(ResourcesRequest {
                    pids: Some(1 << 30),
                    ..Default::default()
                }),
                true,
            ),
            (
                with(ResourcesRequest {
                    cpus: Some(0.0),
                    ..Default::default()
                }),
                false,
            ),
            (
                with(ResourcesRequest {
                    memory_mb: Some(1),
                    ..Default::default()
                }),
                false,
            ),
            (
                CreateSandboxRequest {
                    ttl_secs: Some(0),
                    ..Default::default()
                },
                false,
            ),
            (
                CreateSandboxRequest {
                    envs: Some([("A=B".to_string(), "x".to_string())].into()),
                    ..Default::default()
                },
                false,
            ),
        ] {
            let err = create_plan(req, &limits, &host()).unwrap_err();
            assert_eq!(
                matches!(err, SandboxError::OverHostLimits(_)),
                over_host,
                "{err}"
            );
        }
    }
}
