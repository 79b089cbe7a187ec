//! The Rust client and the CLI over TLS: a real server behind a real
//! TLS-terminating proxy (rustls, a certificate signed by a throw-away CA
//! made with `openssl`), trusted through `SSL_CERT_FILE` as a user behind a
//! corporate proxy would. Requests go over https:// and the PTY's WebSocket
//! over wss://.

mod server_common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use server_common::{TestServer, ADMIN_KEY};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::ServerConfig;
use warren_client::{Client, CreateSandboxRequest, PtyEvent};

/// Makes a CA and a certificate for 127.0.0.1 signed by it, in `dir`;
/// returns (CA PEM path, server certificate DER, server key DER).
fn make_certificates(dir: &Path) -> (std::path::PathBuf, Vec<u8>, Vec<u8>) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("running openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=warren test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-outform",
        "DER",
        "-out",
        "server.der",
    ]);
    run(&[
        "pkcs8",
        "-topk8",
        "-nocrypt",
        "-in",
        "server.key",
        "-outform",
        "DER",
        "-out",
        "server.key.der",
    ]);
    (
        dir.join("ca.pem"),
        std::fs::read(dir.join("server.der")).unwrap(),
        std::fs::read(dir.join("server.key.der")).unwrap(),
    )
}

/// A TLS-terminating proxy on a loopback port in front of `upstream`
/// (`HOST:PORT`); returns its `https://` URL. It runs until the test's
/// runtime ends.
async fn tls_proxy(cert: Vec<u8>, key: Vec<u8>, upstream: String) -> String {
    let config = ServerConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![CertificateDer::from(cert)],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
    )
    .expect("server certificate");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut plain) = TcpStream::connect(&upstream).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread")]
async fn the_client_and_the_cli_speak_tls() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = make_certificates(dir.path());
    let upstream = server.base.trim_start_matches("http://").to_string();
    let url = tls_proxy(cert, key, upstream).await;

    // Without the CA, the certificate is refused: TLS really is in the way.
    let cli = |trust: bool, args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_warren"));
        cmd.args(args)
            .env("WARREN_URL", &url)
            .env("WARREN_API_KEY", ADMIN_KEY)
            .env("HOME", dir.path())
            .env_remove("SSL_CERT_DIR");
        if trust {
            cmd.env("SSL_CERT_FILE", &ca);
        } else {
            cmd.env("SSL_CERT_FILE", dir.path().join("no-such-bundle.pem"));
        }
        cmd.output().expect("running the CLI")
    };
    let refused = cli(false, &["ls", "--json"]);
    assert!(
        !refused.status.success(),
        "an untrusted certificate was accepted"
    );

    // The CLI over https://.
    let created = cli(true, &["create"]);
    assert!(
        created.status.success(),
        "warren create over TLS: {}",
        String::from_utf8_lossy(&created.stderr)
    );
    let id = String::from_utf8(created.stdout)
        .unwrap()
        .trim()
        .to_string();
    assert!(id.starts_with("sbx_"), "{id:?}");
    let exec = cli(
        true,
        &["exec", &id, "--", "sh", "-c", "echo over-tls; exit 3"],
    );
    assert_eq!(exec.status.code(), Some(3), "{exec:?}");
    assert!(String::from_utf8_lossy(&exec.stdout).contains("over-tls"));

    // The Rust client over https:// and its PTY over wss://.
    std::env::set_var("SSL_CERT_FILE", &ca);
    let client = Client::new(&url, Some(ADMIN_KEY)).expect("client");
    let sandbox = client
        .create(&CreateSandboxRequest::default())
        .await
        .expect("create over TLS");
    let run = sandbox.run("echo $((6*7))").await.expect("run over TLS");
    assert_eq!(run.stdout.trim(), "42");
    let mut pty = sandbox.pty(Some("sh"), 80, 24).await.expect("pty over wss");
    pty.send(b"echo pty-$((2+3)); exit 4\n").await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut screen = String::new();
    let status = loop {
        match tokio::time::timeout_at(deadline, pty.recv())
            .await
            .expect("pty output in time")
            .expect("pty event")
        {
            Some(PtyEvent::Output(bytes)) => screen.push_str(&String::from_utf8_lossy(&bytes)),
            Some(PtyEvent::Exit(status)) => break status,
            Some(_) => {}
            None => panic!("the pty ended before its exit; screen: {screen:?}"),
        }
    };
    assert!(screen.contains("pty-5"), "{screen:?}");
    assert_eq!(status.exit_code, Some(4), "{status:?}");
    sandbox.delete().await.expect("delete over TLS");
    client.sandbox(&id).delete().await.expect("delete over TLS");
}
