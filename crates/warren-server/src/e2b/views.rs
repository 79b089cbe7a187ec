//! `GET /sandboxes/{id}` and the lists (`GET /v2/sandboxes`, `GET
//! /sandboxes`) in E2B's shapes, over Warren's get and list.
//!
//! States: `running` is Warren's running (and creating); `paused` is
//! hibernated, stopped or failed (a `connect` starts each of them again).
//! Warren's paging cursor is E2B's `nextToken` (`x-next-token`).

use warren_api::envd::ENVD_VERSION;
use warren_api::server::{Egress, Sandbox, SandboxState};

use super::wire::{Lifecycle, SandboxDetail};
use super::{e2b_id, warren_id, E2b, E2bError, CLIENT_ID};
use crate::auth::Caller;
use crate::paging::Page;
use crate::sandboxes::ListQuery;

/// `endAt` of a sandbox without a deadline (paused ones, Warren's own).
const NO_END: &str = "2999-12-31T23:59:59.000Z";

/// E2B's state of a Warren state; `None` for one E2B does not show.
fn e2b_state(state: SandboxState) -> Option<&'static str> {
    match state {
        SandboxState::Running | SandboxState::Creating => Some("running"),
        SandboxState::Hibernated | SandboxState::Stopped | SandboxState::Error => Some("paused"),
        SandboxState::Destroyed => None,
    }
}

/// A parsed list query.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct E2bListQuery {
    /// `metadata=k%3Dv%26k2%3Dv2`, decoded.
    pub metadata: Vec<(String, String)>,
    /// `state=running,paused` (empty: both).
    pub states: Vec<String>,
    /// Page size.
    pub limit: Option<u32>,
    /// `nextToken`.
    pub next_token: Option<String>,
}

/// Parses a list's query pairs (already percent-decoded once).
pub fn parse_list_query(pairs: &[(String, String)]) -> Result<E2bListQuery, E2bError> {
    let mut q = E2bListQuery::default();
    for (key, value) in pairs {
        match key.as_str() {
            "metadata" => {
                // The SDKs encode each key and value, join them as a query
                // string, and send that as one (encoded again) parameter.
                for (k, v) in form_urlencoded::parse(value.as_bytes()) {
                    let decode = |s: &str| {
                        percent_decode(s).ok_or_else(|| {
                            E2bError::invalid(format!("metadata {s:?} is not valid"))
                        })
                    };
                    q.metadata.push((decode(&k)?, decode(&v)?));
                }
            }
            "state" => {
                for s in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    if s != "running" && s != "paused" {
                        return Err(E2bError::invalid(format!(
                            "state {s:?} is not running or paused"
                        )));
                    }
                    q.states.push(s.to_string());
                }
            }
            "limit" => {
                q.limit =
                    Some(value.parse().map_err(|_| {
                        E2bError::invalid(format!("limit {value:?} is not a number"))
                    })?)
            }
            "nextToken" => q.next_token = Some(value.clone()).filter(|t| !t.is_empty()),
            // Accepted and not applied: order, startedAfter, template.
            _ => {}
        }
    }
    Ok(q)
}

/// `%XX` sequences decoded (no `+` handling: the form parser did that).
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl E2b {
    /// E2B's detail of a Warren sandbox; `full` adds what only `GET
    /// /sandboxes/{id}` shows.
    fn detail(&self, s: &Sandbox, full: bool) -> Option<SandboxDetail> {
        let state = e2b_state(s.state)?;
        let row = self.row(&s.id);
        Some(SandboxDetail {
            template_id: s.template.clone(),
            sandbox_id: e2b_id(&s.id),
            client_id: CLIENT_ID.into(),
            started_at: s.created_at.clone(),
            end_at: s.expires_at.clone().unwrap_or_else(|| NO_END.into()),
            envd_version: ENVD_VERSION.into(),
            cpu_count: s.resources.cpus.ceil().max(1.0) as u64,
            memory_mb: s.resources.memory_mb,
            disk_size_mb: s.resources.disk_mb.unwrap_or(0),
            state: state.into(),
            metadata: s.metadata.clone(),
            envd_access_token: full.then(|| self.inner.key.envd_token(&s.id)),
            allow_internet_access: full.then_some(s.network.egress == Egress::Allow),
            domain: None,
            lifecycle: full.then(|| Lifecycle {
                on_timeout: if row.as_ref().is_some_and(|r| r.auto_pause) {
                    "pause".into()
                } else {
                    "kill".into()
                },
                auto_resume: s.auto_wake,
            }),
        })
    }

    /// `GET /sandboxes/{id}`.
    pub async fn get(&self, caller: &Caller, id: &str) -> Result<SandboxDetail, E2bError> {
        let sandbox = self
            .inner
            .sandboxes
            .get(caller, &warren_id(id))
            .await
            .map_err(|_| E2bError::sandbox_not_found(id))?;
        self.detail(&sandbox, true)
            .ok_or_else(|| E2bError::sandbox_not_found(id))
    }

    /// `GET /v2/sandboxes` (and the old `GET /sandboxes`, with `states`
    /// running only): a page and the token of the next one.
    pub async fn list(
        &self,
        caller: &Caller,
        query: E2bListQuery,
    ) -> Result<(Vec<SandboxDetail>, Option<String>), E2bError> {
        let page = Page::parse(query.limit, query.next_token.as_deref())?;
        let wants = |s: &str| query.states.is_empty() || query.states.iter().any(|x| x == s);
        let state = match (wants("running"), wants("paused")) {
            (true, false) => Some(SandboxState::Running),
            (false, true) => Some(SandboxState::Hibernated),
            _ => None,
        };
        let list = self
            .inner
            .sandboxes
            .list(
                caller,
                ListQuery {
                    state,
                    metadata: query.metadata,
                    ..ListQuery::default()
                },
                page,
            )
            .await?;
        let items = list
            .items
            .iter()
            .filter_map(|s| self.detail(s, false))
            .filter(|d| wants(&d.state))
            .collect();
        Ok((items, list.next_cursor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn list_queries_parse_as_the_sdks_send_them() {
        // {"a b": "c&d", "user": "x"} as the SDKs encode it, decoded once.
        let q = parse_list_query(&pairs(&[
            ("metadata", "a%2520b=c%2526d&user=x"),
            ("state", "running,paused"),
            ("limit", "5"),
            ("nextToken", "tok"),
            ("order", "asc"),
        ]))
        .unwrap();
        assert_eq!(
            q.metadata,
            vec![("a b".into(), "c&d".into()), ("user".into(), "x".into())]
        );
        assert_eq!(q.states, vec!["running", "paused"]);
        assert_eq!(q.limit, Some(5));
        assert_eq!(q.next_token.as_deref(), Some("tok"));
        assert!(parse_list_query(&pairs(&[("state", "sleeping")])).is_err());
        assert!(parse_list_query(&pairs(&[("limit", "x")])).is_err());
    }
}
