//! The server's log as an operator's tooling reads it: no ANSI colour codes
//! when stderr is not a terminal, and `--log-format json` writes one JSON
//! object per line.

mod server_common;

use std::time::Duration;

use server_common::{Options, TestServer, ADMIN_KEY};

/// Starts a copy-driver server logging to a file, makes a few requests so
/// that request-time lines are written too, stops it and returns its log.
async fn log_of(format_args: &[&str]) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("server.log");
    let mut args = vec!["--no-network".to_string()];
    args.extend(format_args.iter().map(|s| s.to_string()));
    let mut server = TestServer::start_with(Options {
        copy_driver: true,
        args,
        stderr_file: Some(log.clone()),
        ..Options::default()
    })
    .await;
    for path in ["/v1/health", "/v1/sandboxes", "/v1/sandboxes/sbx_missing"] {
        let resp = server
            .req(reqwest::Method::GET, path, ADMIN_KEY)
            .send()
            .await
            .expect("request");
        assert!(resp.status().as_u16() < 500, "{path}: {}", resp.status());
    }
    tokio::task::block_in_place(|| server.terminate(Duration::from_secs(30)));
    std::fs::read_to_string(&log).expect("reading the server's log")
}

#[tokio::test(flavor = "multi_thread")]
async fn text_logs_carry_no_colour_codes_off_a_terminal() {
    let log = log_of(&[]).await;
    assert!(
        log.lines().count() >= 2,
        "expected start-up lines in the log, got {log:?}"
    );
    assert!(
        !log.contains('\u{1b}'),
        "ANSI escape in a piped log: {log:?}"
    );
    assert!(log.contains("INFO"), "no level in the text log: {log:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_are_one_object_per_line() {
    let log = log_of(&["--log-format", "json"]).await;
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 2, "expected start-up lines, got {log:?}");
    assert!(
        !log.contains('\u{1b}'),
        "ANSI escape in a JSON log: {log:?}"
    );
    for line in lines {
        let value: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {line:?}"));
        assert!(value.is_object(), "{line:?}");
        assert!(value["level"].is_string(), "no level: {line:?}");
        assert!(value["timestamp"].is_string(), "no timestamp: {line:?}");
        assert!(value["message"].is_string(), "no message: {line:?}");
    }
}
