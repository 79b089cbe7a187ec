//! The server's stream of sandbox state changes ([`crate::Client::events`]).

use std::collections::VecDeque;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use warren_api::server::{EventsLagged, SandboxEvent};

use crate::error::Result;
use crate::sse::{SseEvent, SseParser};
use crate::Client;

/// One item of [`Client::events`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    /// A sandbox changed state (`destroyed`: it is gone).
    Sandbox(SandboxEvent),
    /// The subscriber fell behind and this many changes were dropped: list
    /// the sandboxes again. The stream goes on.
    Lagged {
        /// How many changes were dropped.
        missed: u64,
    },
}

impl ServerEvent {
    /// The event of one SSE message; `None` for names this client does not
    /// know (newer servers may send more).
    fn parse(sse: &SseEvent) -> Option<Result<ServerEvent>> {
        Some(match sse.event.as_str() {
            "sandbox" => serde_json::from_str(&sse.data)
                .map(ServerEvent::Sandbox)
                .map_err(Into::into),
            "lagged" => serde_json::from_str::<EventsLagged>(&sse.data)
                .map(|l| ServerEvent::Lagged { missed: l.missed })
                .map_err(Into::into),
            _ => return None,
        })
    }
}

impl Client {
    /// Subscribes to the state changes of the sandboxes this key may see
    /// (all of them with the admin key, each event then naming its
    /// tenant), only those of `sandbox_ids` unless it is empty.
    ///
    /// Returns once the server has subscribed, so that a list made after
    /// this misses nothing: subscribe, then [`Client::list`], then apply
    /// the events. The stream ends when the server closes it (it is
    /// stopping); a broken connection is an error and then the end. There
    /// is no resuming: subscribe and list again.
    pub async fn events(
        &self,
        sandbox_ids: &[&str],
    ) -> Result<BoxStream<'static, Result<ServerEvent>>> {
        let http = self.http();
        let query: Vec<(&str, &str)> = sandbox_ids.iter().map(|id| ("sandbox_id", *id)).collect();
        let req = http
            .get("/v1/events")
            .query(&query)
            .header("accept", "text/event-stream");
        let body = http.send(req).await?.bytes_stream().boxed();
        let follow = Follow {
            body: Some(body),
            parser: SseParser::default(),
            pending: VecDeque::new(),
        };
        Ok(futures::stream::unfold(follow, |mut f| async move {
            let item = f.next().await?;
            Some((item, f))
        })
        .boxed())
    }
}

struct Follow {
    body: Option<BoxStream<'static, reqwest::Result<Bytes>>>,
    parser: SseParser,
    pending: VecDeque<Result<ServerEvent>>,
}

impl Follow {
    async fn next(&mut self) -> Option<Result<ServerEvent>> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(item);
            }
            match self.body.as_mut()?.next().await {
                Some(Ok(chunk)) => {
                    let events = self.parser.feed(&chunk);
                    self.pending
                        .extend(events.iter().filter_map(ServerEvent::parse));
                }
                Some(Err(e)) => {
                    self.body = None;
                    return Some(Err(e.into()));
                }
                None => self.body = None,
            }
        }
    }
}
