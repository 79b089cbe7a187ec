//! Coding-agent sessions in a sandbox: [`Agents`] (from
//! [`crate::Sandbox::agent`]) starts and lists them; an [`AgentSession`]
//! sends prompts, answers permissions and questions, and streams its
//! events, resuming from the last sequence it saw when a connection drops.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use warren_api::session::{
    AgentInfo, AgentList, CreateSession, Event, PermissionAnswer, PermissionDecision,
    QuestionAnswer, SendMessage, Session, SessionList, TranscriptUploaded,
};

use crate::error::{Error, Result};
use crate::sse::SseParser;
use crate::Client;

/// Reconnections of an event stream in a row before giving up.
const MAX_RECONNECTS: u32 = 5;

/// The coding agents of one sandbox.
#[derive(Debug, Clone)]
pub struct Agents {
    client: Client,
    sandbox_id: String,
}

impl Agents {
    pub(crate) fn new(client: Client, sandbox_id: String) -> Agents {
        Agents { client, sandbox_id }
    }

    fn path(&self, rest: &str) -> String {
        format!("/v1/sandboxes/{}{rest}", self.sandbox_id)
    }

    /// Which agents are installed, their versions and capabilities.
    pub async fn agents(&self) -> Result<Vec<AgentInfo>> {
        let http = self.client.http();
        let list: AgentList = http.json(http.get(&self.path("/agents"))).await?;
        Ok(list.items)
    }

    /// Starts a session.
    pub async fn start(&self, request: &CreateSession) -> Result<AgentSession> {
        let http = self.client.http();
        let info: Session = http
            .json(http.post(&self.path("/sessions")).json(request))
            .await?;
        Ok(self.session(info))
    }

    /// A session by id.
    pub async fn get(&self, id: &str) -> Result<AgentSession> {
        let http = self.client.http();
        let info: Session = http
            .json(http.get(&self.path(&format!("/sessions/{id}"))))
            .await?;
        Ok(self.session(info))
    }

    /// Every session on the sandbox's disk, oldest first.
    pub async fn list(&self) -> Result<Vec<Session>> {
        let http = self.client.http();
        let list: SessionList = http.json(http.get(&self.path("/sessions"))).await?;
        Ok(list.items)
    }

    /// Uploads a gzip transcript (from [`AgentSession::transcript`]) for
    /// `agent`; returns the native session id to pass as `resume`.
    pub async fn upload_transcript(
        &self,
        agent: &str,
        gzip: Bytes,
        cwd: Option<&str>,
    ) -> Result<String> {
        let http = self.client.http();
        let mut query = vec![("agent", agent.to_string())];
        if let Some(cwd) = cwd {
            query.push(("cwd", cwd.to_string()));
        }
        let req = http
            .post(&self.path("/transcripts"))
            .query(&query)
            .header("content-type", "application/gzip")
            .body(gzip);
        let uploaded: TranscriptUploaded = http.json(req).await?;
        Ok(uploaded.native_session_id)
    }

    fn session(&self, info: Session) -> AgentSession {
        AgentSession {
            client: self.client.clone(),
            sandbox_id: self.sandbox_id.clone(),
            info,
        }
    }
}

/// One coding-agent session.
#[derive(Debug, Clone)]
pub struct AgentSession {
    client: Client,
    sandbox_id: String,
    info: Session,
}

impl AgentSession {
    fn path(&self, rest: &str) -> String {
        format!(
            "/v1/sandboxes/{}/sessions/{}{rest}",
            self.sandbox_id, self.info.id
        )
    }

    /// `ses_…`.
    pub fn id(&self) -> &str {
        &self.info.id
    }

    /// The session as last fetched.
    pub fn info(&self) -> &Session {
        &self.info
    }

    /// Fetches the session again.
    pub async fn refresh(&mut self) -> Result<&Session> {
        let http = self.client.http();
        self.info = http.json(http.get(&self.path(""))).await?;
        Ok(&self.info)
    }

    /// Sends a follow-up prompt (resuming the agent if it is not running).
    pub async fn send(&self, text: &str) -> Result<()> {
        let http = self.client.http();
        let body = SendMessage {
            text: text.to_string(),
            env: None,
        };
        http.empty(http.post(&self.path("/messages")).json(&body))
            .await
    }

    /// Stops the current turn.
    pub async fn interrupt(&self) -> Result<()> {
        let http = self.client.http();
        http.empty(http.post(&self.path("/interrupt"))).await
    }

    /// Answers a permission request.
    pub async fn respond(&self, permission_id: &str, decision: PermissionDecision) -> Result<()> {
        let http = self.client.http();
        http.empty(
            http.post(&self.path(&format!("/permissions/{permission_id}")))
                .json(&PermissionAnswer { decision }),
        )
        .await
    }

    /// Answers a question (`None`: refuse to answer).
    pub async fn answer(&self, question_id: &str, answers: Option<Vec<String>>) -> Result<()> {
        let http = self.client.http();
        let body = QuestionAnswer {
            reject: answers.is_none().then_some(true),
            answers,
        };
        http.empty(
            http.post(&self.path(&format!("/questions/{question_id}")))
                .json(&body),
        )
        .await
    }

    /// Kills the agent and ends the session.
    pub async fn kill(&mut self) -> Result<&Session> {
        let http = self.client.http();
        self.info = http.json(http.delete(&self.path(""))).await?;
        Ok(&self.info)
    }

    /// The agent's native session file, gzip.
    pub async fn transcript(&self) -> Result<Bytes> {
        let http = self.client.http();
        Ok(http
            .send(http.get(&self.path("/transcript")))
            .await?
            .bytes()
            .await?)
    }

    /// The events after sequence `after`, then live ones, until the session
    /// ends. A dropped connection is resumed from the last event received.
    pub fn events(&self, after: u64) -> BoxStream<'static, Result<Event>> {
        let follow = Follow {
            session: self.clone(),
            after,
            failures: 0,
            body: None,
            parser: SseParser::default(),
            pending: VecDeque::new(),
            done: false,
        };
        futures::stream::unfold(follow, |mut f| async move {
            let item = f.next().await?;
            Some((item, f))
        })
        .boxed()
    }
}

struct Follow {
    session: AgentSession,
    after: u64,
    failures: u32,
    body: Option<BoxStream<'static, reqwest::Result<Bytes>>>,
    parser: SseParser,
    pending: VecDeque<Event>,
    done: bool,
}

impl Follow {
    async fn next(&mut self) -> Option<Result<Event>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                self.after = event.sequence;
                if event.type_ == "session.ended" {
                    self.done = true;
                    self.pending.clear();
                }
                return Some(Ok(event));
            }
            if self.done {
                return None;
            }
            let Some(body) = self.body.as_mut() else {
                if self.failures > 0 {
                    tokio::time::sleep(Duration::from_millis(250 << self.failures)).await;
                }
                let http = self.session.client.http();
                let req = http
                    .get(&self.session.path("/events"))
                    .query(&[
                        ("follow", "true".to_string()),
                        ("after", self.after.to_string()),
                    ])
                    .header("accept", "text/event-stream");
                match http.send(req).await {
                    Ok(resp) => self.body = Some(resp.bytes_stream().boxed()),
                    Err(e @ Error::Api { .. }) => {
                        self.done = true;
                        return Some(Err(e));
                    }
                    Err(_) => {
                        if let Some(e) = self.broke() {
                            return Some(Err(e));
                        }
                    }
                }
                continue;
            };
            match body.next().await {
                Some(Ok(chunk)) => {
                    for event in self.parser.feed(&chunk) {
                        match serde_json::from_str::<Event>(&event.data) {
                            Ok(e) => {
                                self.failures = 0;
                                self.pending.push_back(e);
                            }
                            Err(e) => {
                                self.done = true;
                                return Some(Err(e.into()));
                            }
                        }
                    }
                }
                // The agent ends the stream only once the session has
                // ended and everything was sent; anything else is a drop.
                Some(Err(_)) | None => {
                    self.body = None;
                    self.parser = SseParser::default();
                    if let Some(e) = self.broke() {
                        return Some(Err(e));
                    }
                }
            }
        }
    }

    fn broke(&mut self) -> Option<Error> {
        self.failures += 1;
        if self.failures > MAX_RECONNECTS {
            self.done = true;
            return Some(Error::StreamBroken(self.session.info.id.clone()));
        }
        None
    }
}
