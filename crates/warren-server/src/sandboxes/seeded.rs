//! The first boot of a new sandbox: its disk a snapshot of the template
//! (made by [`crate::node::Node::prepare`]), of a checkpoint (then its
//! patches run, before the create returns) or of the sandbox it forks. A
//! failure here fails the create, which removes every trace of the sandbox.

use super::{blocking, SandboxError, Sandboxes};
use crate::checkpoints::disk::is_missing;
use crate::checkpoints::fork::OneFork;
use crate::checkpoints::patches;
use crate::checkpoints::seed::Seed;
use crate::store::SandboxRecord;

/// Where a new sandbox's disk comes from.
pub(crate) enum Origin {
    /// Its template (or a spare root of it, when one is ready).
    Template,
    /// A checkpoint, whose patches then run.
    Checkpoint(Box<Seed>),
    /// The sandbox a fork of one sandbox forks ([`OneFork`]).
    Fork(OneFork),
}

impl Origin {
    /// The checkpoint the sandbox is made from, if any.
    pub(crate) fn seed(&self) -> Option<&Seed> {
        match self {
            Origin::Template => None,
            Origin::Checkpoint(seed) => Some(seed),
            Origin::Fork(fork) => Some(fork.seed()),
        }
    }
}

impl Sandboxes {
    /// Makes the disk (from `origin`), starts the sandbox, runs the seed's
    /// patches; returns the pid of its init.
    pub(super) async fn boot_new(
        &self,
        record: &SandboxRecord,
        origin: &Origin,
    ) -> Result<i32, SandboxError> {
        match origin {
            Origin::Template => return self.boot(record).await,
            Origin::Checkpoint(seed) => {
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
            Origin::Fork(fork) => {
                // The child starts while its root is made: everything up to
                // staging its root overlaps the snapshot's commit.
                let (gate, opener) = warren_runtime::gate::root_gate();
                let (made, booted) = tokio::join!(
                    fork.make_root(&record.id, record.disk_mb, opener),
                    self.boot_forked(record, fork, gate)
                );
                // A root that was not made fails the start too; its own
                // error tells more.
                made?;
                return booted;
            }
        }
        let pid = self.boot(record).await?;
        self.inner.node.read_root_ahead(&record.id);
        if let Origin::Checkpoint(seed) = origin {
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
