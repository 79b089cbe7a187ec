//! `GET /v1/events`: sandbox state changes as server-sent events, over
//! [`crate::events`].

use std::collections::HashSet;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use utoipa_axum::{router::OpenApiRouter, routes};
use warren_api::extract::Query;
use warren_api::server::{EventsLagged, SandboxEvent};
use warren_api::Problem;

use crate::auth::Caller;
use crate::events::{Item, MAX_FILTER_IDS};
use crate::AppState;

/// How often an idle stream carries a `: keep-alive` comment.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Longest `sandbox_id` a filter takes (ids are much shorter).
const MAX_ID_LEN: usize = 64;

/// Routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(events))
}

/// Sandbox state changes, as server-sent events.
///
/// From the moment of the call, every change committed for a sandbox the key may see (a tenant
/// key its tenant's, the admin key all, with `tenant_id`) is an event
/// `sandbox` (data: `SandboxEvent`), `destroyed` when the sandbox is gone
/// (a create served by the warm pool starts at `running`).
/// A subscriber too slow to keep up gets `lagged` (data: `EventsLagged`)
/// and should list its sandboxes again; the stream goes on. An idle stream
/// carries a `: keep-alive` comment every 15 s. To follow a list without a
/// gap: subscribe, then list, then apply the events. At most 16 streams per
/// tenant (and for the admin key) are open at once.
#[utoipa::path(get, path = "/v1/events", tag = "sandboxes",
    params(("sandbox_id" = Option<Vec<String>>, Query,
        description = "Only this sandbox's changes; repeatable, up to 100")),
    responses(
        (status = 200, description = "An SSE stream of `sandbox` events (and `lagged`, data: `EventsLagged`)",
            content_type = "text/event-stream", body = SandboxEvent),
        (status = 400, description = "A bad filter", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No key, or an unknown one", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`too_many_requests`: the tenant has 16 streams open", body = Problem, content_type = "application/problem+json")))]
async fn events(
    State(app): State<AppState>,
    caller: Caller,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Response, Problem> {
    let sandbox_ids = parse_filter(pairs)?;
    let subscription = app.store.events().subscribe(&caller, sandbox_ids)?;
    let stream = futures::stream::unfold(
        (subscription, caller),
        |(mut subscription, caller)| async move {
            let event = match subscription.next().await? {
                Item::Change(change) => json_event("sandbox", &change.view(&caller)),
                Item::Lagged(missed) => json_event("lagged", &EventsLagged { missed }),
            };
            Some((Ok::<_, Infallible>(event), (subscription, caller)))
        },
    );
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive"))
        .into_response())
}

/// The `sandbox_id` filters of the query string.
fn parse_filter(pairs: Vec<(String, String)>) -> Result<HashSet<String>, Problem> {
    let mut ids = HashSet::new();
    for (key, value) in pairs {
        match key.as_str() {
            "sandbox_id" => {
                if value.is_empty() || value.len() > MAX_ID_LEN {
                    return Err(Problem::invalid(format!(
                        "sandbox_id {value:?} is not a sandbox id"
                    )));
                }
                ids.insert(value);
                if ids.len() > MAX_FILTER_IDS {
                    return Err(Problem::invalid(format!(
                        "at most {MAX_FILTER_IDS} sandbox_id filters"
                    )));
                }
            }
            "access_token" => {}
            other => {
                return Err(Problem::invalid(format!(
                    "unknown query parameter {other:?}"
                )))
            }
        }
    }
    Ok(ids)
}

/// An SSE event named `name` carrying `data` as JSON.
fn json_event(name: &str, data: &impl serde::Serialize) -> Event {
    // The API's plain structs always serialize.
    let json = serde_json::to_string(data).expect("an event serializes");
    Event::default().event(name).data(json)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn filters_are_repeatable_and_bounded() {
        let ids = parse_filter(pairs(&[
            ("sandbox_id", "sbx_a"),
            ("access_token", "k"),
            ("sandbox_id", "sbx_b"),
        ]))
        .unwrap();
        assert_eq!(ids, HashSet::from(["sbx_a".into(), "sbx_b".into()]));
        assert!(parse_filter(pairs(&[("state", "running")])).is_err());
        assert!(parse_filter(pairs(&[("sandbox_id", "")])).is_err());
        let many: Vec<(String, String)> = (0..=MAX_FILTER_IDS)
            .map(|i| ("sandbox_id".to_string(), format!("sbx_{i}")))
            .collect();
        assert!(parse_filter(many).is_err());
    }
}
