//! The `codex` driver.

use tokio::sync::mpsc;

use super::session::{Command, Ending};
use super::DriverStart;

/// Runs a codex session until its command channel closes.
pub async fn run(_start: DriverStart, _commands: mpsc::UnboundedReceiver<Command>) -> Ending {
    Ending {
        reason: "error",
        exit_code: None,
        message: Some("not yet".into()),
    }
}
