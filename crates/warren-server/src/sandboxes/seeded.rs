//! The first boot of a new sandbox: its disk a snapshot of the template
//! (made by [`crate::node::Node::prepare`]) or, for a sandbox made from a
//! checkpoint, of the checkpoint; then the checkpoint's patches, before the
//! create returns. A failure here fails the create, which removes every
//! trace of the sandbox.

use super::{blocking, SandboxError, Sandboxes};
use crate::checkpoints::disk::is_missing;
use crate::checkpoints::patches;
use crate::checkpoints::seed::Seed;
use crate::store::SandboxRecord;

impl Sandboxes {
    /// Makes the disk (from `seed` if given), starts the sandbox, runs the
    /// seed's patches; returns the pid of its init.
    pub(super) async fn boot_new(
        &self,
        record: &SandboxRecord,
        seed: Option<&Seed>,
    ) -> Result<i32, SandboxError> {
        if let Some(seed) = seed {
            let node = self.inner.node.clone();
            let (id, ckpt) = (record.id.clone(), seed.checkpoint.id.clone());
            blocking("seed the disk", move || node.seed_root(&id, &ckpt))
                .await
                .map_err(|e| match e {
                    SandboxError::Node(e) if is_missing(&e) => {
                        SandboxError::CheckpointNotFound(seed.checkpoint.id.clone())
                    }
                    other => other,
                })?;
        }
        let pid = self.boot(record).await?;
        if let Some(seed) = seed {
            self.inner.node.read_root_ahead(&record.id);
            patches::apply(
                &self.inner.agent,
                &record.id,
                &seed.checkpoint.id,
                &seed.patches,
            )
            .await?;
        }
        Ok(pid)
    }
}
