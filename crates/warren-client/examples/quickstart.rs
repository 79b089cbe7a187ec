//! The Rust quickstart (docs/quickstart-rust.md), runnable against any
//! server: `WARREN_URL=http://127.0.0.1:8080 WARREN_API_KEY=... cargo run -p
//! warren-client --example quickstart`. The test suite runs it too.

use futures::StreamExt;
use warren_client::{Client, CreateSandboxRequest, OutputEvent, PtyEvent, StreamKind};

#[tokio::main]
async fn main() -> warren_client::Result<()> {
    // WARREN_URL and WARREN_API_KEY, else ~/.config/warren/config.toml.
    let client = Client::from_env()?;
    quickstart(&client).await
}

/// Every step of the quickstart, on `client`.
pub async fn quickstart(client: &Client) -> warren_client::Result<()> {
    // A sandbox, running when `create` returns.
    let request = CreateSandboxRequest {
        labels: Some([("project".to_string(), "demo".to_string())].into()),
        ..CreateSandboxRequest::default()
    };
    let sandbox = client.create(&request).await?;
    println!("created {}", sandbox.id());

    // Run a command to completion: a non-zero exit is a result, not an error.
    let out = sandbox.run("echo hello from $(hostname)").await?;
    assert_eq!(out.stdout, format!("hello from {}\n", sandbox.id()));
    assert_eq!(sandbox.run("exit 3").await?.exit_code, Some(3));

    // Start a process and consume its output as a Stream while it runs.
    let process = sandbox
        .spawn("for i in 1 2 3; do echo line $i; sleep 0.2; done; echo done >&2")
        .await?;
    let mut output = process.output();
    let mut stdout = String::new();
    while let Some(event) = output.next().await {
        match event? {
            OutputEvent::Output {
                stream: StreamKind::Stdout,
                data,
                ..
            } => {
                stdout.push_str(&String::from_utf8_lossy(&data));
            }
            OutputEvent::Output { data, .. } => eprint!("{}", String::from_utf8_lossy(&data)),
            OutputEvent::Dropped { bytes } => eprintln!("{bytes} bytes lost"),
            OutputEvent::Exit(status) => assert_eq!(status.exit_code, Some(0)),
        }
    }
    assert_eq!(stdout, "line 1\nline 2\nline 3\n");

    // Files.
    let files = sandbox.files();
    files.write("/root/notes.txt", "first draft\n").await?;
    files.edit("/root/notes.txt", "first", "second").await?;
    assert_eq!(files.read_text("/root/notes.txt").await?, "second draft\n");
    let names: Vec<String> = files
        .list("/root")
        .await?
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert!(names.contains(&"notes.txt".to_string()));

    // A terminal.
    let mut pty = sandbox.pty(None, 100, 30).await?;
    pty.send(b"echo $((6*7)); exit\n").await?;
    let mut screen = String::new();
    while let Some(event) = pty.recv().await? {
        match event {
            PtyEvent::Output(bytes) => screen.push_str(&String::from_utf8_lossy(&bytes)),
            PtyEvent::Dropped { .. } => {}
            PtyEvent::Exit(status) => assert_eq!(status.exit_code, Some(0)),
        }
    }
    assert!(screen.contains("42"));

    // Time travel: checkpoint, break things, restore; fork a copy.
    let mut sandbox = sandbox;
    let checkpoint = sandbox.checkpoint(Some("notes")).await?;
    sandbox.run("rm /root/notes.txt").await?;
    sandbox.restore(&checkpoint.id).await?;
    assert!(sandbox.files().exists("/root/notes.txt").await?);
    let (forks, _) = sandbox.fork(1).await?;
    assert_eq!(
        forks[0].files().read_text("/root/notes.txt").await?,
        "second draft\n"
    );

    // Errors carry the problem code.
    for fork in &forks {
        fork.delete().await?;
    }
    sandbox.delete().await?;
    let gone = client.get(sandbox.id()).await.unwrap_err();
    assert_eq!(gone.code(), Some(warren_client::ErrorCode::SandboxNotFound));
    println!("quickstart done");
    Ok(())
}
