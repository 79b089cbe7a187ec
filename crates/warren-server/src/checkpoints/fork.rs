//! Forks: one checkpoint of a sandbox, then `count` independent sandboxes
//! made from it, started side by side.
//!
//! A fork is the same machine at that moment: same template, environment,
//! metadata, labels, resources, network policy, timeouts and time-travel
//! options; its own id, disk (a snapshot), processes and lifetime. The
//! checkpoint is kept (named `fork_<unix ms>` unless named) and can be
//! deleted without touching the forks. Forks are all or nothing: if one
//! cannot be made (quota, a failing start), the others are destroyed and the
//! error is returned.

use tokio::task::JoinSet;
use warren_api::checkpoint::{ForkRequest, ForkResponse};
use warren_api::server::Sandbox;

use super::{checked_name, CheckpointError, Checkpoints};
use crate::auth::Caller;
use crate::sandboxes::validate::CreatePlan;
use crate::sandboxes::SandboxError;

/// Most sandboxes one fork call makes.
pub const MAX_FORKS: u32 = 64;

impl Checkpoints {
    /// Checkpoints sandbox `id` once and makes `count` sandboxes from it.
    pub async fn fork(
        &self,
        caller: &Caller,
        id: &str,
        req: ForkRequest,
    ) -> Result<ForkResponse, CheckpointError> {
        let count = req.count.unwrap_or(1);
        if !(1..=MAX_FORKS).contains(&count) {
            return Err(CheckpointError::invalid(
                "count",
                format!("between 1 and {MAX_FORKS}"),
            ));
        }
        let name = checked_name(req.name, "fork")?;
        let entry = self.inner.sandboxes.entry(caller, id)?;
        entry.touch();
        let checkpoint = self.take(entry, name, None).await?;
        let source = self
            .inner
            .store
            .sandbox(id)
            .await?
            .ok_or_else(|| SandboxError::NotFound(id.to_string()))?;
        let plan = CreatePlan {
            template: checkpoint.template.clone(),
            timeout_secs: source.timeout_secs,
            ttl_secs: source.ttl_secs,
            // The checkpoint carries the source's environment.
            envs: Default::default(),
            metadata: source.metadata,
            labels: source.labels,
            resources: source.resources,
            disk_mb: source.disk_mb,
            network: source.network,
            auto_checkpoint: source.auto_checkpoint,
            auto_checkpoint_keep: source.auto_checkpoint_keep,
            auto_wake: source.auto_wake,
            from_checkpoint: Some(checkpoint.id.clone()),
        };
        let mut tasks = JoinSet::new();
        for _ in 0..count {
            let (sandboxes, caller, plan) =
                (self.inner.sandboxes.clone(), caller.clone(), plan.clone());
            tasks.spawn(async move { sandboxes.create_planned(&caller, plan).await });
        }
        let mut made: Vec<Sandbox> = Vec::with_capacity(count as usize);
        let mut failure: Option<CheckpointError> = None;
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(Ok(sandbox)) => made.push(sandbox),
                Ok(Err(e)) => failure = failure.or(Some(e.into())),
                Err(source) => {
                    failure = failure.or(Some(CheckpointError::Task { op: "fork", source }))
                }
            }
        }
        if let Some(err) = failure {
            for sandbox in &made {
                if let Err(e) = self.inner.sandboxes.delete(caller, &sandbox.id).await {
                    tracing::error!(id = %sandbox.id, error = %e, "destroying a fork after another failed");
                }
            }
            return Err(err);
        }
        made.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        tracing::info!(source = %id, checkpoint = %checkpoint.id, count, "sandbox forked");
        Ok(ForkResponse {
            items: made,
            checkpoint_id: checkpoint.id,
        })
    }
}
