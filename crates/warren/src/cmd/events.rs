//! `warren events`: the server's stream of sandbox state changes, one line
//! per change.

use clap::Args;
use futures::StreamExt;
use serde_json::json;
use warren_client::{Client, ServerEvent};

use super::cli::{CliResult, Output};

/// `warren events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Only this sandbox's changes (repeatable).
    #[arg(long = "sandbox", short = 's')]
    sandboxes: Vec<String>,
    #[command(flatten)]
    out: Output,
}

/// Prints each change as it comes (`TIME ID STATE [TENANT]`, or with
/// `--json` one object per line, `event` naming its kind) until the server
/// ends the stream.
pub async fn events(client: &Client, args: EventsArgs) -> CliResult {
    let ids: Vec<&str> = args.sandboxes.iter().map(String::as_str).collect();
    let mut stream = client.events(&ids).await?;
    while let Some(event) = stream.next().await {
        println!("{}", line(&event?, args.out.json)?);
    }
    Ok(0)
}

/// One event as a line of output.
fn line(event: &ServerEvent, json: bool) -> Result<String, serde_json::Error> {
    Ok(match (event, json) {
        (ServerEvent::Sandbox(e), true) => {
            let mut value = serde_json::to_value(e)?;
            value["event"] = json!("sandbox");
            value.to_string()
        }
        (ServerEvent::Lagged { missed }, true) => {
            json!({ "event": "lagged", "missed": missed }).to_string()
        }
        (ServerEvent::Sandbox(e), false) => {
            let mut line = format!("{}  {}  {}", e.time, e.sandbox_id, e.state.as_str());
            if let Some(tenant) = &e.tenant_id {
                line.push_str(&format!("  {tenant}"));
            }
            line
        }
        (ServerEvent::Lagged { missed }, false) => {
            format!("lagged: {missed} changes missed; list the sandboxes again")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use warren_client::{SandboxEvent, SandboxState};

    #[test]
    fn lines_for_people_and_for_programs() {
        let event = ServerEvent::Sandbox(SandboxEvent {
            sandbox_id: "sbx_1".into(),
            state: SandboxState::Stopped,
            time: "2026-12-04T21:00:00.123Z".into(),
            tenant_id: Some("ten_a".into()),
        });
        assert_eq!(
            line(&event, false).unwrap(),
            "2026-12-04T21:00:00.123Z  sbx_1  stopped  ten_a"
        );
        let value: serde_json::Value = serde_json::from_str(&line(&event, true).unwrap()).unwrap();
        assert_eq!(value["event"], "sandbox");
        assert_eq!(value["state"], "stopped");
        assert_eq!(value["tenant_id"], "ten_a");
        let lagged = ServerEvent::Lagged { missed: 3 };
        assert_eq!(
            line(&lagged, true).unwrap(),
            r#"{"event":"lagged","missed":3}"#
        );
    }
}
