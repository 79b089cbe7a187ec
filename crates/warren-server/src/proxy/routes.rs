//! Metric labels of proxied agent routes: the agent's route template under
//! `/v1/sandboxes/{id}`, so that process ids and unknown paths do not become
//! label values.

/// `processes/run` through the proxy (its latency is the exec histogram).
pub const RUN: &str = "/v1/sandboxes/{id}/processes/run";

/// Label of paths that are not agent routes.
pub const OTHER: &str = "/v1/sandboxes/{id}/{*agent_path}";

/// The label of an agent path such as `/processes/proc_x/logs`.
pub fn label(agent_path: &str) -> &'static str {
    let segments: Vec<&str> = agent_path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    match segments.as_slice() {
        ["health"] => "/v1/sandboxes/{id}/health",
        ["processes"] => "/v1/sandboxes/{id}/processes",
        ["processes", "run"] => RUN,
        ["processes", _] => "/v1/sandboxes/{id}/processes/{pid}",
        ["processes", _, tail] => match *tail {
            "logs" => "/v1/sandboxes/{id}/processes/{pid}/logs",
            "ws" => "/v1/sandboxes/{id}/processes/{pid}/ws",
            "stdin" => "/v1/sandboxes/{id}/processes/{pid}/stdin",
            "signal" => "/v1/sandboxes/{id}/processes/{pid}/signal",
            "resize" => "/v1/sandboxes/{id}/processes/{pid}/resize",
            _ => OTHER,
        },
        ["files"] => "/v1/sandboxes/{id}/files",
        ["files", tail] => match *tail {
            "list" => "/v1/sandboxes/{id}/files/list",
            "stat" => "/v1/sandboxes/{id}/files/stat",
            "mkdir" => "/v1/sandboxes/{id}/files/mkdir",
            "move" => "/v1/sandboxes/{id}/files/move",
            "edit" => "/v1/sandboxes/{id}/files/edit",
            "upload" => "/v1/sandboxes/{id}/files/upload",
            "download" => "/v1/sandboxes/{id}/files/download",
            "watch" => "/v1/sandboxes/{id}/files/watch",
            _ => OTHER,
        },
        ["agents"] => "/v1/sandboxes/{id}/agents",
        ["agents", _, "install"] => "/v1/sandboxes/{id}/agents/{agent}/install",
        ["transcripts"] => "/v1/sandboxes/{id}/transcripts",
        ["sessions"] => "/v1/sandboxes/{id}/sessions",
        ["sessions", _] => "/v1/sandboxes/{id}/sessions/{sid}",
        ["sessions", _, tail] => match *tail {
            "messages" => "/v1/sandboxes/{id}/sessions/{sid}/messages",
            "events" => "/v1/sandboxes/{id}/sessions/{sid}/events",
            "interrupt" => "/v1/sandboxes/{id}/sessions/{sid}/interrupt",
            "transcript" => "/v1/sandboxes/{id}/sessions/{sid}/transcript",
            _ => OTHER,
        },
        ["desktop", "windows", _, _] => "/v1/sandboxes/{id}/desktop/windows/{window}/{action}",
        ["desktop", ..] => "/v1/sandboxes/{id}/desktop/{*action}",
        ["sessions", _, "permissions", _] => {
            "/v1/sandboxes/{id}/sessions/{sid}/permissions/{permission_id}"
        }
        ["sessions", _, "questions", _] => {
            "/v1/sandboxes/{id}/sessions/{sid}/questions/{question_id}"
        }
        _ => OTHER,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_templates() {
        assert_eq!(label("/processes/run"), RUN);
        assert_eq!(
            label("/processes/proc_abc/logs"),
            "/v1/sandboxes/{id}/processes/{pid}/logs"
        );
        assert_eq!(label("/files"), "/v1/sandboxes/{id}/files");
        assert_eq!(label("/files/stat"), "/v1/sandboxes/{id}/files/stat");
        assert_eq!(label("/etc/passwd"), OTHER);
        assert_eq!(
            label("/desktop/windows/4194307/close"),
            "/v1/sandboxes/{id}/desktop/windows/{window}/{action}"
        );
        assert_eq!(
            label("/desktop/mouse/click"),
            "/v1/sandboxes/{id}/desktop/{*action}"
        );
        assert_eq!(label("/processes/a/b/c"), OTHER);
        assert_eq!(
            label("/sessions/ses_x/permissions/perm_y"),
            "/v1/sandboxes/{id}/sessions/{sid}/permissions/{permission_id}"
        );
        assert_eq!(
            label("/sessions/ses_x/events"),
            "/v1/sandboxes/{id}/sessions/{sid}/events"
        );
        assert_eq!(
            label("/agents/claude/install"),
            "/v1/sandboxes/{id}/agents/{agent}/install"
        );
    }
}
