//! `warren template build NAME -f Dockerfile` against a real server: the
//! context packed by the CLI, each instruction a cached layer, a sandbox
//! with the Dockerfile's environment, working directory, files, user and
//! start command, and errors that name the line.

mod server_common;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use server_common::{TestServer, ADMIN_KEY};

async fn build(server: &TestServer, name: &str, file: &Path, extra: &[&str]) -> Value {
    let mut args = vec![
        "template",
        "build",
        name,
        "-f",
        file.to_str().unwrap(),
        "--json",
    ];
    args.extend(extra);
    let out = server.cli(ADMIN_KEY, &args).await;
    assert!(
        out.status.success(),
        "warren {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

/// Polls `cmd` in sandbox `id` until it prints `want` (a minute at most).
async fn until_prints(server: &TestServer, id: &str, cmd: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, out) = server.sh(ADMIN_KEY, id, cmd).await;
        if out == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{cmd:?} printed {out:?}, not {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

const DOCKERFILE: &str = r#"# syntax=docker/dockerfile:1
FROM base
ARG GREETING=hello
ENV APP_HOME=/srv/app \
    GREETING_ENV=${GREETING}
WORKDIR $APP_HOME
# The user the start command runs as.
RUN echo "$GREETING from RUN" > built.txt && useradd -m -u 1500 app
COPY --chown=app:app app.py ./
COPY data/ ./data/
COPY . /opt/ctx/
USER app
RUN id -un > "$HOME/whoami.txt"
EXPOSE 8000
LABEL org.example.demo="yes"
CMD ["python3", "app.py"]
"#;

const APP: &str = r#"import http.server, os
open(os.path.expanduser("~/started"), "w").write(os.environ["GREETING_ENV"])
os.chdir("/srv/app")
http.server.ThreadingHTTPServer(("127.0.0.1", 8000), http.server.SimpleHTTPRequestHandler).serve_forever()
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_dockerfile_builds_a_template_whose_sandboxes_have_its_env_files_user_and_start_command()
{
    let server = TestServer::start().await;
    let ctx = tempfile::tempdir().unwrap();
    let dir = ctx.path();
    std::fs::write(dir.join("Dockerfile"), DOCKERFILE).unwrap();
    std::fs::write(dir.join("app.py"), APP).unwrap();
    std::fs::create_dir(dir.join("data")).unwrap();
    std::fs::write(dir.join("data/x.txt"), "data file\n").unwrap();
    std::fs::write(dir.join("secret.txt"), "not for the server\n").unwrap();
    std::fs::write(dir.join(".dockerignore"), "secret.txt\n").unwrap();
    let dockerfile = dir.join("Dockerfile");

    let built = build(
        &server,
        "tpl-docker",
        &dockerfile,
        &["--build-arg", "GREETING=hi"],
    )
    .await;
    assert_eq!(built["name"], "tpl-docker");
    assert_eq!(built["workdir"], "/srv/app");
    assert_eq!(built["env"]["GREETING_ENV"], "hi");
    assert!(
        built["env"].get("GREETING").is_none(),
        "ARGs are not kept: {built}"
    );
    assert_eq!(
        built["start"],
        json!({"argv": ["python3", "app.py"], "user": "app"})
    );
    let layers = built["layers"].as_array().unwrap();
    let steps: Vec<&str> = layers.iter().map(|l| l["step"].as_str().unwrap()).collect();
    assert_eq!(steps.len(), 6, "WORKDIR, RUN, three COPYs, RUN: {steps:?}");
    assert!(layers.iter().any(|l| l["cached"] == false), "{built}");

    // Nothing changed: every layer comes from the cache.
    let again = build(
        &server,
        "tpl-docker",
        &dockerfile,
        &["--build-arg", "GREETING=hi"],
    )
    .await;
    let cached: Vec<&Value> = again["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| &l["cached"])
        .collect();
    assert_eq!(cached.len(), 6);
    assert!(
        cached.iter().all(|c| **c == true),
        "a rebuild is all cached: {again}"
    );

    let sandbox = server
        .create(ADMIN_KEY, json!({"template": "tpl-docker"}))
        .await;
    let id = sandbox["id"].as_str().unwrap().to_string();
    let (code, out) = server
        .sh(
            ADMIN_KEY,
            &id,
            "echo \"$GREETING_ENV [$GREETING]\"; pwd; cat built.txt; stat -c %U app.py; \
             cat data/x.txt; cat /home/app/whoami.txt; ls -A /opt/ctx",
        )
        .await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out,
        "hi []\n/srv/app\nhi from RUN\napp\ndata file\napp\n\
         .dockerignore\nDockerfile\napp.py\ndata\n"
    );
    // The start command runs as the Dockerfile's user, serving its port.
    until_prints(
        &server,
        &id,
        "curl -sf http://127.0.0.1:8000/built.txt",
        "hi from RUN\n",
    )
    .await;
    until_prints(
        &server,
        &id,
        "stat -c '%U' /home/app/started; cat /home/app/started",
        "app\nhi",
    )
    .await;

    // A Dockerfile elsewhere, with its context named.
    let other = tempfile::tempdir().unwrap();
    let file = other.path().join("e2b.Dockerfile");
    std::fs::write(&file, "FROM tpl-docker\nCOPY data/x.txt /x\n").unwrap();
    let out = server
        .cli(
            ADMIN_KEY,
            &[
                "template",
                "build",
                "tpl-outside",
                "-f",
                file.to_str().unwrap(),
                "--context",
                dir.to_str().unwrap(),
            ],
        )
        .await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not inside the build context"));
    std::fs::write(
        dir.join("child.Dockerfile"),
        "FROM tpl-docker\nUSER root\nRUN cat /x 2>/dev/null; true\n",
    )
    .unwrap();
    let child = build(&server, "tpl-child", &dir.join("child.Dockerfile"), &[]).await;
    // Its parent's start command is inherited, and USER root overrides the user.
    assert_eq!(
        child["start"],
        json!({"argv": ["python3", "app.py"], "user": "root"})
    );

    // Errors name the line.
    let bad = dir.join("bad.Dockerfile");
    for (text, want) in [
        (
            "FROM base\nRUN true\nVOLUME /data\n",
            "line 3: VOLUME is not supported",
        ),
        ("FROM ubuntu:22.04\n", "warren template import"),
        ("FROM base\nCOPY missing.txt /x\n", "line 2: COPY"),
        ("FROM base\nRUN exit 7\n", "line 2: run exit 7 failed"),
        (
            "FROM base\nUSER ghost\nRUN true\n",
            "line 3: run (as ghost) true: no user",
        ),
    ] {
        std::fs::write(&bad, text).unwrap();
        let out = server
            .cli(
                ADMIN_KEY,
                &["template", "build", "tpl-bad", "-f", bad.to_str().unwrap()],
            )
            .await;
        assert!(!out.status.success(), "{text}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("invalid_request"), "{text}: {stderr}");
        assert!(stderr.contains(want), "{text}: {stderr}");
    }
}
