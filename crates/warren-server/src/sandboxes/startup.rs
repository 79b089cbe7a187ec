//! A template's start command (`start` in a spec.toml, `CMD`/`ENTRYPOINT`
//! in a Dockerfile): started on every boot of a sandbox (create, start after
//! a stop, wake, fork, restore) as a managed process of its agent, right
//! after the agent answers, so its output is read through the process
//! routes like any other's.
//!
//! The boot waits for the agent to accept the process and, when the
//! template names a `ready_port`, for that port to accept connections (at
//! most [`READY_TIMEOUT`], polled through the agent's port tunnel): E2B's
//! SDKs call the code interpreter's server the moment create returns.
//! Without a ready port the boot never waits for the program.
//! A start command that fails does not fail the boot: it is an exited
//! process with its exit code and output. When the agent refuses it
//! outright (a program that is not there, a user the sandbox does not
//! have), a stand-in process that prints the reason and exits 127 takes its
//! place, so the failure is visible the same way.
//!
//! The command is looked up in the template at each boot (the sandbox's row
//! names its template): a rebuilt template's new command is what its
//! sandboxes start next time, and a sandbox whose template was deleted
//! starts nothing.

use http::Method;
use warren_api::agent::{ProcessInfo, StartRequest};
use warren_runtime::template::StartCommand;

use std::time::Duration;

use super::Sandboxes;
use crate::previews::tunnel::port_accepts;
use crate::proxy::AgentClient;
use crate::templates::BootCommand;

impl Sandboxes {
    /// Starts the start command of `template` in the (running) sandbox
    /// `id`, if it has one. Failures are logged, never returned.
    pub(super) async fn launch_start_command(&self, id: &str, template: &str) {
        let found = self.start_command_of(id, template).await;
        self.launch_found_start_command(id, found).await;
    }

    /// The start command of `template` (`None` if it has none, or cannot
    /// be read, which is logged), looked up for sandbox `id`'s boot: a
    /// boot looks it up while the sandbox starts.
    pub(super) async fn start_command_of(&self, id: &str, template: &str) -> Option<BootCommand> {
        match self.inner.templates.start_of(template).await {
            Ok(found) => found,
            Err(e) => {
                tracing::error!(%id, template = %template, error = %e,
                    "looking up the template's start command");
                None
            }
        }
    }

    /// [`Sandboxes::launch_start_command`] with the command already looked
    /// up ([`Sandboxes::start_command_of`]).
    pub(super) async fn launch_found_start_command(&self, id: &str, found: Option<BootCommand>) {
        let Some(boot) = found else {
            return;
        };
        let agent = &self.inner.agent;
        match start(
            agent,
            id,
            request(&boot.command, boot.user.as_deref(), &boot.workdir),
        )
        .await
        {
            Ok(info) => {
                tracing::info!(%id, process = %info.id, "start command started");
                if let Some(port) = boot.ready_port {
                    self.wait_ready(id, &info.id, port).await;
                }
            }
            Err(reason) => {
                tracing::warn!(%id, %reason, "the start command could not be started");
                let standin = StartRequest {
                    argv: Some(vec![
                        "/bin/sh".into(),
                        "-c".into(),
                        "printf 'warren: the start command could not be started: %s\\n' \"$1\" >&2; exit 127".into(),
                        "warren-start".into(),
                        reason,
                    ]),
                    ..StartRequest::default()
                };
                if let Err(e) = start(agent, id, standin).await {
                    tracing::error!(%id, error = %e, "starting the stand-in of a failed start command");
                }
            }
        }
    }
}

impl Sandboxes {
    /// Waits until `port` accepts connections in sandbox `id`, the start
    /// command `process` exits, or [`READY_TIMEOUT`] passes; never fails
    /// the boot (what is not ready is logged).
    async fn wait_ready(&self, id: &str, process: &str, port: u16) {
        let node = &self.inner.node;
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        let mut pause = Duration::from_millis(5);
        loop {
            match port_accepts(node, id, port).await {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(%id, port, error = %e, "waiting for the start command's port");
                    return;
                }
            }
            if tokio::time::Instant::now() + pause > deadline {
                tracing::warn!(%id, port, %process, "the start command's port is not ready; the boot goes on");
                return;
            }
            if exited(&self.inner.agent, id, process).await {
                tracing::warn!(%id, port, %process, "the start command exited before its port was ready");
                return;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }
}

/// Whether the agent reports managed process `process` as exited (or
/// cannot say: then waiting longer is pointless too).
async fn exited(agent: &AgentClient, sandbox_id: &str, process: &str) -> bool {
    let path = format!("/v1/processes/{process}");
    agent
        .call::<ProcessInfo>(Method::GET, sandbox_id, &path, None::<&()>)
        .await
        .map_or(true, |info| info.exited_at.is_some())
}

/// The longest a boot waits for a start command's ready port.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The agent request of a start command run as `user` (`name[:group]`: the
/// agent takes the user, whose primary group it uses).
fn request(command: &StartCommand, user: Option<&str>, workdir: &str) -> StartRequest {
    let (cmd, argv) = match command {
        StartCommand::Shell(cmd) => (Some(cmd.clone()), None),
        StartCommand::Exec(argv) => (None, Some(argv.clone())),
    };
    StartRequest {
        cmd,
        argv,
        user: user
            .map(|u| u.split(':').next().unwrap_or(u).to_string())
            .filter(|u| u != "root" && u != "0"),
        cwd: Some(workdir.to_string()),
        ..StartRequest::default()
    }
}

/// `POST /v1/processes` to the sandbox's agent; the problem's detail when
/// it refuses.
async fn start(
    agent: &AgentClient,
    sandbox_id: &str,
    body: StartRequest,
) -> Result<ProcessInfo, String> {
    agent
        .call(Method::POST, sandbox_id, "/v1/processes", Some(&body))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_the_command_and_the_user_without_its_group() {
        let r = request(
            &StartCommand::Shell("serve".into()),
            Some("app:staff"),
            "/srv",
        );
        assert_eq!(r.cmd.as_deref(), Some("serve"));
        assert_eq!(r.user.as_deref(), Some("app"));
        assert_eq!(r.cwd.as_deref(), Some("/srv"));
        let r = request(
            &StartCommand::Exec(vec!["a".into(), "b".into()]),
            Some("root"),
            "/",
        );
        assert_eq!(r.argv, Some(vec!["a".to_string(), "b".to_string()]));
        assert_eq!(r.user, None);
    }
}
