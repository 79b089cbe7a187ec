//! Prometheus metrics, served at `/metrics` in the text exposition format.
//!
//! Request counts and durations are recorded once, by the [`track`]
//! middleware, labelled with the route *template* (`/v1/sandboxes/{id}`),
//! never the raw path, so that ids do not explode the series count. Proxied
//! agent routes name their agent route through a [`RouteLabel`] response
//! extension. Sandbox counts by state are read from the store at scrape time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{
    exponential_buckets, Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use warren_api::server::SandboxState;

/// Route label of requests that matched no route.
const UNMATCHED: &str = "unmatched";

/// Set on a response to name its route for the metrics (the proxy's agent
/// routes, which the router only knows as a wildcard).
#[derive(Debug, Clone, Copy)]
pub struct RouteLabel(pub &'static str);

struct Inner {
    registry: Registry,
    requests: IntCounterVec,
    request_seconds: HistogramVec,
    create_seconds: Histogram,
    creates: IntCounterVec,
    exec_seconds: Histogram,
    sandboxes: IntGaugeVec,
}

/// The server's metrics; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every series the server exports.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "warren_http_requests_total",
                "API requests by route and status.",
            ),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let request_seconds = HistogramVec::new(
            HistogramOpts::new(
                "warren_http_request_duration_seconds",
                "Time to the response head of API requests, by route.",
            )
            .buckets(exponential_buckets(0.000_25, 2.0, 18).expect("valid buckets")),
            &["route"],
        )
        .expect("valid metric");
        let create_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "warren_sandbox_create_duration_seconds",
                "Time from a create request until the sandbox runs commands.",
            )
            .buckets(exponential_buckets(0.002, 2.0, 18).expect("valid buckets")),
        )
        .expect("valid metric");
        let creates = IntCounterVec::new(
            Opts::new(
                "warren_sandbox_creates_total",
                "Successful creates, by where the sandbox came from: `pool` (the warm pool) or `cold` (started for the create).",
            ),
            &["source"],
        )
        .expect("valid metric");
        let exec_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "warren_exec_duration_seconds",
                "Round trip of processes/run through the server, agent included.",
            )
            .buckets(exponential_buckets(0.000_25, 2.0, 20).expect("valid buckets")),
        )
        .expect("valid metric");
        let sandboxes = IntGaugeVec::new(
            Opts::new("warren_sandboxes", "Sandboxes by state."),
            &["state"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(requests.clone()))
            .expect("unique metric");
        registry
            .register(Box::new(request_seconds.clone()))
            .expect("unique metric");
        registry
            .register(Box::new(create_seconds.clone()))
            .expect("unique metric");
        registry
            .register(Box::new(creates.clone()))
            .expect("unique metric");
        registry
            .register(Box::new(exec_seconds.clone()))
            .expect("unique metric");
        registry
            .register(Box::new(sandboxes.clone()))
            .expect("unique metric");
        Metrics {
            inner: Arc::new(Inner {
                registry,
                requests,
                request_seconds,
                create_seconds,
                creates,
                exec_seconds,
                sandboxes,
            }),
        }
    }

    /// Records how long a successful create took, and whether the warm
    /// pool served it.
    pub fn observe_create(&self, took: Duration, pooled: bool) {
        self.inner.create_seconds.observe(took.as_secs_f64());
        let source = if pooled { "pool" } else { "cold" };
        self.inner.creates.with_label_values(&[source]).inc();
    }

    /// Records how long a proxied `processes/run` took.
    pub fn observe_exec(&self, took: Duration) {
        self.inner.exec_seconds.observe(took.as_secs_f64());
    }

    /// Sets the sandbox gauges; states missing from `counts` are zero.
    pub fn set_sandbox_counts(&self, counts: &[(SandboxState, i64)]) {
        for state in SandboxState::ALL {
            let n = counts
                .iter()
                .filter(|(s, _)| *s == state)
                .map(|(_, n)| *n)
                .sum();
            self.inner
                .sandboxes
                .with_label_values(&[state.as_str()])
                .set(n);
        }
    }

    /// The text exposition of every series.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.inner.registry.gather(), &mut out)
            .expect("encoding to memory cannot fail");
        String::from_utf8(out).expect("the text format is UTF-8")
    }

    fn observe_request(&self, method: &str, route: &str, status: u16, took: Duration) {
        let status_buf = itoa_status(status);
        let status = std::str::from_utf8(&status_buf).expect("digits");
        self.inner
            .requests
            .with_label_values(&[method, route, status])
            .inc();
        self.inner
            .request_seconds
            .with_label_values(&[route])
            .observe(took.as_secs_f64());
    }
}

/// A status code's three digits without allocating.
fn itoa_status(status: u16) -> [u8; 3] {
    let s = status.min(999);
    [
        b'0' + (s / 100) as u8,
        b'0' + (s / 10 % 10) as u8,
        b'0' + (s % 10) as u8,
    ]
}

/// Middleware: counts every request by method, route template and status
/// and times it to its response head.
pub async fn track(State(metrics): State<Metrics>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let matched = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let response = next.run(req).await;
    let route = match response.extensions().get::<RouteLabel>() {
        Some(RouteLabel(label)) => label,
        None => matched.as_deref().unwrap_or(UNMATCHED),
    };
    metrics.observe_request(
        method.as_str(),
        route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_series() {
        let m = Metrics::new();
        m.observe_create(Duration::from_millis(20), true);
        m.observe_exec(Duration::from_millis(1));
        m.observe_request("GET", "/v1/sandboxes/{id}", 404, Duration::from_millis(1));
        m.set_sandbox_counts(&[(SandboxState::Running, 2)]);
        let text = m.render();
        for needle in [
            "warren_http_requests_total{method=\"GET\",route=\"/v1/sandboxes/{id}\",status=\"404\"} 1",
            "warren_sandbox_create_duration_seconds_count 1",
            "warren_sandbox_creates_total{source=\"pool\"} 1",
            "warren_exec_duration_seconds_count 1",
            "warren_sandboxes{state=\"running\"} 2",
            "warren_sandboxes{state=\"stopped\"} 0",
            "warren_http_request_duration_seconds_bucket",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
        assert_eq!(&itoa_status(200), b"200");
    }
}
