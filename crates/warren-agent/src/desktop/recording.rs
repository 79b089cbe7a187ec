//! Screen recordings: one ffmpeg (x11grab to H.264 in MP4) at a time, a
//! managed process stopped with SIGINT so it finishes the file. Files live
//! in `<state_dir>/recordings/<id>.mp4`, so they outlive the desktop and
//! the agent; each is bounded in length and size, and their number too.
//! A recording whose ffmpeg ended by itself (its cap, or a crash) is reaped
//! on the next look: `done` if ffmpeg finished the file, else `failed`
//! (marked by an empty `<id>.failed` beside it).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::PoisonError;
use std::time::{Duration, SystemTime};

use warren_api::agent::{ProcessState, SignalSpec, StartRequest};
use warren_api::desktop::{Recording, RecordingList, RecordingStartRequest, RecordingStatus};
use warren_api::ids::{self, IdKind};

use super::Desktop;
use crate::process::rfc3339;
use crate::AgentError;

/// Frames per second when none is given, and the most allowed.
const DEFAULT_FRAMERATE: u32 = 10;
const MAX_FRAMERATE: u32 = 30;
/// Longest recording (ffmpeg stops by itself there), and the default cap.
const MAX_SECONDS: u32 = 3600;
/// Largest recording file.
const MAX_BYTES: u64 = 1 << 30;
/// Most recordings kept; delete some to record more.
const MAX_RECORDINGS: usize = 32;
/// How long ffmpeg gets to finish the file after SIGINT.
const FINISH_WAIT: Duration = Duration::from_secs(15);
/// How long a new ffmpeg must live to count as started.
const START_CHECK: Duration = Duration::from_millis(300);

/// The recording being made: its id and ffmpeg's managed process id.
#[derive(Debug, Clone)]
pub struct Current {
    id: String,
    process: String,
}

impl Desktop {
    fn recordings_dir(&self) -> PathBuf {
        self.state_dir.join("recordings")
    }

    fn recording_path(&self, id: &str) -> Result<PathBuf, AgentError> {
        if !ids::is_valid(IdKind::Recording, id) {
            return Err(AgentError::RecordingNotFound(id.to_string()));
        }
        Ok(self.recordings_dir().join(format!("{id}.mp4")))
    }

    fn failed_marker(&self, id: &str) -> Result<PathBuf, AgentError> {
        Ok(self.recording_path(id)?.with_extension("failed"))
    }

    fn current_recording(&self) -> Option<Current> {
        self.recording
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether ffmpeg ended by itself and, if it did, whether it exited
    /// cleanly (its file finished) rather than failed or was killed.
    async fn ended(&self, current: &Current) -> Option<bool> {
        match self.processes().get(&current.process, None).await {
            Ok(p) if p.status == ProcessState::Running => None,
            Ok(p) => Some(p.exit_code == Some(0)),
            // Forgotten by the supervisor: its end is unknown.
            Err(_) => Some(false),
        }
    }

    /// Forgets the recording being made if its ffmpeg ended by itself.
    async fn reap(&self) {
        let Some(current) = self.current_recording() else {
            return;
        };
        let Some(clean) = self.ended(&current).await else {
            return;
        };
        {
            let mut slot = self
                .recording
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            // Stopped (or reaped) meanwhile by another call.
            if slot.as_ref().map(|c| &c.process) != Some(&current.process) {
                return;
            }
            *slot = None;
        }
        self.settle(&current, Some(clean)).await;
    }

    /// Ends a recording taken out of the slot: marks it failed when ffmpeg
    /// had ended by itself without finishing the file, or left an empty or
    /// no file (then an empty one, so the failure is listed).
    async fn settle(&self, current: &Current, ended: Option<bool>) {
        self.finish(current).await;
        let (Ok(path), Ok(marker)) = (
            self.recording_path(&current.id),
            self.failed_marker(&current.id),
        ) else {
            return;
        };
        let empty = std::fs::metadata(&path).map_or(true, |m| m.len() == 0);
        if ended == Some(false) || empty {
            let marked = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(&path)
                .and_then(|_| std::fs::write(&marker, b""));
            if let Err(e) = marked {
                tracing::warn!(recording = %current.id, error = %e, "marking a failed recording");
            }
        }
    }

    /// Starts recording the screen.
    pub async fn start_recording(
        &self,
        req: RecordingStartRequest,
    ) -> Result<Recording, AgentError> {
        let framerate = req.framerate.unwrap_or(DEFAULT_FRAMERATE);
        if !(1..=MAX_FRAMERATE).contains(&framerate) {
            return Err(AgentError::InvalidRequest(format!(
                "framerate must be between 1 and {MAX_FRAMERATE}"
            )));
        }
        let max_seconds = req.max_seconds.unwrap_or(MAX_SECONDS);
        if !(1..=MAX_SECONDS).contains(&max_seconds) {
            return Err(AgentError::InvalidRequest(format!(
                "max_seconds must be between 1 and {MAX_SECONDS}"
            )));
        }
        let _held = self.lifecycle.lock().await;
        let screen = self.screen().await?;
        self.reap().await;
        if let Some(current) = self.current_recording() {
            return Err(AgentError::DesktopConflict(format!(
                "recording {} is running: stop it first",
                current.id
            )));
        }
        if self.recordings().await?.items.len() >= MAX_RECORDINGS {
            return Err(AgentError::DesktopConflict(format!(
                "{MAX_RECORDINGS} recordings are kept already: delete some first"
            )));
        }
        let dir = self.recordings_dir();
        std::fs::create_dir_all(&dir).map_err(|source| AgentError::Io {
            op: "creating the recordings directory",
            source,
        })?;
        let id = ids::new_id(IdKind::Recording);
        let path = self.recording_path(&id)?;
        let mut argv: Vec<String> = [
            "ffmpeg",
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-f",
            "x11grab",
            "-draw_mouse",
            "1",
            "-framerate",
        ]
        .map(String::from)
        .to_vec();
        argv.push(framerate.to_string());
        argv.push("-video_size".into());
        argv.push(format!("{}x{}", screen.width, screen.height));
        argv.push("-i".into());
        argv.push(screen.display.clone());
        argv.extend(["-t".into(), max_seconds.to_string()]);
        argv.extend(["-fs".into(), MAX_BYTES.to_string()]);
        argv.extend(
            [
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-pix_fmt",
                "yuv420p",
                // Even sizes, which yuv420p needs.
                "-vf",
                "crop=trunc(iw/2)*2:trunc(ih/2)*2",
                "-y",
            ]
            .map(String::from),
        );
        argv.push(path.display().to_string());
        let info = self.processes().start(StartRequest {
            argv: Some(argv),
            env: Some(BTreeMap::from([("DISPLAY".into(), screen.display)])),
            ..StartRequest::default()
        })?;
        let current = Current {
            id: id.clone(),
            process: info.id.clone(),
        };
        tokio::time::sleep(START_CHECK).await;
        if !self.alive(&info.id).await {
            let _ = self.processes().remove(&info.id, true).await;
            let _ = std::fs::remove_file(&path);
            return Err(AgentError::ToolFailed {
                tool: "ffmpeg".into(),
                detail: "the recording ended as it started".into(),
            });
        }
        *self
            .recording
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(current);
        self.describe(&id, true)
    }

    /// Stops the recording being made and finishes its file.
    pub async fn stop_recording(&self) -> Result<Recording, AgentError> {
        let _held = self.lifecycle.lock().await;
        let current = self
            .recording
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .ok_or_else(|| AgentError::DesktopConflict("no recording is running".into()))?;
        let ended = self.ended(&current).await;
        self.settle(&current, ended).await;
        self.describe(&current.id, false)
    }

    /// SIGINT (ffmpeg writes the MP4's index and exits), then SIGKILL
    /// after a grace; the process is forgotten.
    async fn finish(&self, current: &Current) {
        let processes = self.processes();
        let _ = processes.signal(&current.process, &SignalSpec::Name("INT".into()));
        let _ = processes.get(&current.process, Some(FINISH_WAIT)).await;
        if let Err(e) = processes.remove(&current.process, true).await {
            tracing::warn!(process = %current.process, error = %e, "ffmpeg did not end");
        }
    }

    /// Ends the recording being made, if any (the desktop is stopping).
    pub(super) async fn end_recording(&self) {
        let current = self
            .recording
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(current) = current {
            let ended = self.ended(&current).await;
            self.settle(&current, ended).await;
        }
    }

    fn describe(&self, id: &str, recording: bool) -> Result<Recording, AgentError> {
        let (size_bytes, modified) = match std::fs::metadata(self.recording_path(id)?) {
            Ok(meta) => (
                meta.len(),
                meta.modified().unwrap_or_else(|_| SystemTime::now()),
            ),
            // ffmpeg creates the file once its input is open.
            Err(_) if recording => (0, SystemTime::now()),
            Err(_) => return Err(AgentError::RecordingNotFound(id.to_string())),
        };
        let status = if recording {
            RecordingStatus::Recording
        } else if self.failed_marker(id)?.exists() {
            RecordingStatus::Failed
        } else {
            RecordingStatus::Done
        };
        Ok(Recording {
            id: id.to_string(),
            status,
            size_bytes,
            modified_at: rfc3339(modified),
        })
    }

    /// Every recording on disk, oldest first (the one being made included).
    pub async fn recordings(&self) -> Result<RecordingList, AgentError> {
        self.reap().await;
        let current = self.current_recording().map(|c| c.id);
        let entries = match std::fs::read_dir(self.recordings_dir()) {
            Ok(entries) => entries.filter_map(|e| e.ok()?.file_name().into_string().ok()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(RecordingList { items: Vec::new() })
            }
            Err(source) => {
                return Err(AgentError::Io {
                    op: "listing recordings",
                    source,
                })
            }
        };
        let mut ids: Vec<String> = entries
            .filter_map(|name| Some(name.strip_suffix(".mp4")?.to_string()))
            .collect();
        // ffmpeg creates the file only once its input is open.
        if let Some(id) = current.as_ref().filter(|id| !ids.contains(id)) {
            ids.push(id.clone());
        }
        let mut items: Vec<Recording> = ids
            .iter()
            .filter_map(|id| self.describe(id, current.as_ref() == Some(id)).ok())
            .collect();
        items.sort_by(|a, b| (&a.modified_at, &a.id).cmp(&(&b.modified_at, &b.id)));
        Ok(RecordingList { items })
    }

    /// A finished recording's file, to send.
    pub async fn recording_file(&self, id: &str) -> Result<(tokio::fs::File, u64), AgentError> {
        self.reap().await;
        self.check_not_current(id)?;
        let path = self.recording_path(id)?;
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|_| AgentError::RecordingNotFound(id.to_string()))?;
        let len = file
            .metadata()
            .await
            .map_err(|source| AgentError::Io {
                op: "reading a recording",
                source,
            })?
            .len();
        Ok((file, len))
    }

    /// Deletes a finished (or failed) recording.
    pub async fn delete_recording(&self, id: &str) -> Result<(), AgentError> {
        self.reap().await;
        self.check_not_current(id)?;
        std::fs::remove_file(self.recording_path(id)?)
            .map_err(|_| AgentError::RecordingNotFound(id.to_string()))?;
        let _ = std::fs::remove_file(self.failed_marker(id)?);
        Ok(())
    }

    fn check_not_current(&self, id: &str) -> Result<(), AgentError> {
        let current = self
            .recording
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if current.as_ref().is_some_and(|c| c.id == id) {
            return Err(AgentError::DesktopConflict(format!(
                "recording {id} is still being made: stop it first"
            )));
        }
        Ok(())
    }
}
