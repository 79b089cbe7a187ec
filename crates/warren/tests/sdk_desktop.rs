//! The TypeScript and Python SDKs' desktop suites
//! (`sdks/typescript/test/desktop.test.mjs`, `sdks/python/tests/test_desktop.py`)
//! against a real server that has the `desktop` template of the shared test
//! pool: each suite makes its one desktop sandbox through its SDK.
//!
//! The TypeScript SDK is built first (`npm run build`, its dependencies
//! installed when missing); Python runs from the SDK's test venv
//! (`/var/cache/warren-test/py-sdk-venv`, made by `scripts/install-test-deps.sh`)
//! with this tree's `src` first on its path.

mod server_common;

use std::path::{Path, PathBuf};
use std::process::Command;

use server_common::{playwright, Options, TestServer, ADMIN_KEY};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `cmd` to completion on a blocking thread; asserts it succeeded.
async fn run(mut cmd: Command, what: &'static str) {
    let out = tokio::task::spawn_blocking(move || cmd.output().expect(what))
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{what}: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{what}:\n{}", String::from_utf8_lossy(&out.stdout));
}

async fn desktop_server() -> TestServer {
    TestServer::start_with(Options {
        args: vec!["--no-network".into()],
        templates: vec!["desktop"],
        ..Options::default()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_sdk_desktop_suite() {
    let playwright = playwright();
    let server = desktop_server().await;
    let sdk = repo().join("sdks/typescript");
    if !sdk.join("node_modules/typescript").is_dir() {
        let mut ci = Command::new("npm");
        ci.args(["ci", "--no-audit", "--no-fund"]).current_dir(&sdk);
        run(ci, "npm ci").await;
    }
    let mut build = Command::new("npm");
    build.args(["run", "build"]).current_dir(&sdk);
    run(build, "npm run build").await;
    let mut test = Command::new("node");
    test.args(["--test", "test/desktop.test.mjs"])
        .current_dir(&sdk)
        .env("WARREN_DESKTOP_URL", &server.base)
        .env("WARREN_DESKTOP_API_KEY", ADMIN_KEY)
        .env("WARREN_PLAYWRIGHT_DIR", playwright);
    run(test, "node --test test/desktop.test.mjs").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_desktop_suite() {
    let venv = Path::new("/var/cache/warren-test/py-sdk-venv");
    assert!(
        venv.join("bin/pytest").exists(),
        "{} has no pytest: run scripts/install-test-deps.sh",
        venv.display()
    );
    let server = desktop_server().await;
    let sdk = repo().join("sdks/python");
    let mut test = Command::new(venv.join("bin/pytest"));
    test.args(["-q", "-p", "no:cacheprovider", "tests/test_desktop.py"])
        .current_dir(&sdk)
        .env("PYTHONPATH", sdk.join("src"))
        .env("WARREN_DESKTOP_URL", &server.base)
        .env("WARREN_DESKTOP_API_KEY", ADMIN_KEY);
    run(test, "pytest tests/test_desktop.py").await;
}
