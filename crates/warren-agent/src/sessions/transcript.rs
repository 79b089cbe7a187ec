//! Native session files: downloaded (`GET /v1/sessions/{id}/transcript`)
//! and uploaded (`POST /v1/transcripts?agent=`) as gzip.
//!
//! Each agent keeps its conversation in its own file, and resuming reads it
//! from where the agent looks: the mock in `<state>/mock/<id>.jsonl`,
//! Claude Code in `~/.claude/projects/<cwd with / and . as ->/<id>.jsonl`,
//! Codex in `$CODEX_HOME/sessions/YYYY/MM/DD/rollout-…-<id>.jsonl`.
//! An upload is checked (gzip, JSON lines, sizes) before it is written, and
//! its id is the one the agent will look for.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use warren_api::session::AgentKind;

use super::session::SessionEntry;
use super::{mock, Sessions};
use crate::AgentError;

/// Largest gzip upload.
pub const MAX_GZIP: usize = 64 << 20;
/// Largest transcript, uncompressed (both ways).
const MAX_PLAIN: u64 = 256 << 20;

/// The session's native file, gzip-compressed.
pub fn download(sessions: &Sessions, entry: &SessionEntry) -> Result<Vec<u8>, AgentError> {
    let missing = || AgentError::FileNotFound(format!("the transcript of session {}", entry.id));
    let native = entry.native_id().ok_or_else(missing)?;
    let path = native_file(sessions, entry.agent(), &native, Some(&entry.info().cwd))
        .filter(|p| p.is_file())
        .ok_or_else(missing)?;
    let file = std::fs::File::open(&path).map_err(|source| AgentError::Io {
        op: "opening the transcript",
        source,
    })?;
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    let copied =
        std::io::copy(&mut file.take(MAX_PLAIN + 1), &mut gz).map_err(|source| AgentError::Io {
            op: "compressing the transcript",
            source,
        })?;
    if copied > MAX_PLAIN {
        return Err(AgentError::TooLarge {
            what: "the transcript",
            limit: MAX_PLAIN,
        });
    }
    gz.finish().map_err(|source| AgentError::Io {
        op: "compressing the transcript",
        source,
    })
}

/// Stores an uploaded transcript where `kind` looks for it; returns the
/// native id to resume.
pub fn upload(
    sessions: &Sessions,
    kind: AgentKind,
    cwd: Option<&str>,
    gz: &[u8],
) -> Result<String, AgentError> {
    let plain = gunzip(gz)?;
    let lines = json_lines(&plain)?;
    let (native, path) = match kind {
        AgentKind::Mock => {
            let id = format!(
                "mock-{}",
                &warren_api::ids::new_id(warren_api::ids::IdKind::Session)[4..]
            );
            let path = mock::native_path(sessions.state_dir(), &id)
                .ok_or_else(|| AgentError::InvalidTranscript("bad id".into()))?;
            if lines.iter().any(|l| !l["prompt"].is_string()) {
                return Err(AgentError::InvalidTranscript(
                    "a mock transcript is lines of {\"prompt\": ...}".into(),
                ));
            }
            (id, path)
        }
        AgentKind::Claude => {
            let id = lines
                .iter()
                .find_map(|l| l["sessionId"].as_str())
                .filter(|id| is_plain_id(id))
                .ok_or_else(|| {
                    AgentError::InvalidTranscript(
                        "no sessionId in the file: not a Claude Code session".into(),
                    )
                })?
                .to_string();
            let cwd = resolve_cwd(sessions, cwd);
            (id.clone(), claude_file(sessions, &cwd, &id))
        }
        AgentKind::Codex | AgentKind::Opencode => {
            return Err(AgentError::InvalidRequest(format!(
                "transcript upload is not supported for {kind} yet"
            )))
        }
    };
    write_new(&path, &plain)?;
    Ok(native)
}

fn gunzip(gz: &[u8]) -> Result<Vec<u8>, AgentError> {
    if gz.len() < 2 || gz[..2] != [0x1f, 0x8b] {
        return Err(AgentError::InvalidTranscript("the body is not gzip".into()));
    }
    let mut plain = Vec::new();
    GzDecoder::new(gz)
        .take(MAX_PLAIN + 1)
        .read_to_end(&mut plain)
        .map_err(|e| AgentError::InvalidTranscript(format!("the gzip stream is broken: {e}")))?;
    if plain.len() as u64 > MAX_PLAIN {
        return Err(AgentError::TooLarge {
            what: "the uncompressed transcript",
            limit: MAX_PLAIN,
        });
    }
    Ok(plain)
}

fn json_lines(plain: &[u8]) -> Result<Vec<serde_json::Value>, AgentError> {
    let text = std::str::from_utf8(plain)
        .map_err(|_| AgentError::InvalidTranscript("the transcript is not UTF-8".into()))?;
    let lines: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| {
                AgentError::InvalidTranscript(format!("line {} is not JSON: {e}", i + 1))
            })
        })
        .collect::<Result<_, _>>()?;
    if lines.is_empty() {
        return Err(AgentError::InvalidTranscript(
            "the transcript is empty".into(),
        ));
    }
    Ok(lines)
}

fn write_new(path: &Path, data: &[u8]) -> Result<(), AgentError> {
    let io = |op| move |source| AgentError::Io { op, source };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io("creating the transcript's directory"))?;
    }
    let tmp = path.with_extension("upload.tmp");
    let mut file = std::fs::File::create(&tmp).map_err(io("writing the transcript"))?;
    file.write_all(data).map_err(io("writing the transcript"))?;
    std::fs::rename(&tmp, path).map_err(io("writing the transcript"))
}

/// An id that is safe as a file name.
fn is_plain_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn resolve_cwd(sessions: &Sessions, cwd: Option<&str>) -> String {
    let workdir = sessions.workdir();
    match cwd {
        Some(c) if !c.is_empty() => workdir.join(c).display().to_string(),
        _ => workdir.display().to_string(),
    }
}

/// The home directory agents run with.
pub fn home(sessions: &Sessions) -> PathBuf {
    sessions
        .default_env()
        .get("HOME")
        .cloned()
        .or_else(|| std::env::var("HOME").ok())
        .map_or_else(|| PathBuf::from("/root"), PathBuf::from)
}

/// Claude Code's project directory name of a working directory: every
/// character that is not alphanumeric becomes `-`.
pub fn claude_project(cwd: &str) -> String {
    cwd.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

fn claude_file(sessions: &Sessions, cwd: &str, id: &str) -> PathBuf {
    home(sessions)
        .join(".claude/projects")
        .join(claude_project(cwd))
        .join(format!("{id}.jsonl"))
}

/// Where an agent keeps a native session, if the id is a safe one.
fn native_file(
    sessions: &Sessions,
    kind: AgentKind,
    native: &str,
    cwd: Option<&str>,
) -> Option<PathBuf> {
    if !is_plain_id(native) {
        return None;
    }
    match kind {
        AgentKind::Mock => mock::native_path(sessions.state_dir(), native),
        AgentKind::Claude => Some(claude_file(sessions, cwd?, native)),
        AgentKind::Codex | AgentKind::Opencode => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claude_projects_replace_every_non_alphanumeric() {
        assert_eq!(claude_project("/root/my.app"), "-root-my-app");
    }
}
