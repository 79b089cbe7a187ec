//! `--extra-ca-certs`: sandboxes trust the host's extra CA certificates
//! (a TLS-intercepting proxy's) besides their image's store, without a
//! byte of them on the sandbox's disk. Checked with a real TLS handshake
//! inside the sandbox, against a server whose certificate only the extra
//! CA signed.

mod server_common;

use std::path::Path;
use std::process::Command;

use serde_json::json;
use server_common::{Options, TestServer, ADMIN_KEY};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA in `dir/ca/test-ca.crt` and a `localhost` certificate it signed.
fn make_ca(dir: &Path) {
    std::fs::create_dir_all(dir.join("ca")).unwrap();
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=Warren Test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca/test-ca.crt",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca/test-ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
            "-out",
            "leaf.crt",
        ],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sandboxes_trust_the_extra_ca_certificates_and_keep_their_own() {
    let dir = tempfile::tempdir().unwrap();
    make_ca(dir.path());
    let server = TestServer::start_with(Options {
        args: vec![
            "--no-network".into(),
            "--extra-ca-certs".into(),
            dir.path().join("ca").display().to_string(),
        ],
        ..Options::default()
    })
    .await;
    let id = server.create(ADMIN_KEY, json!({})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    for name in ["leaf.crt", "leaf.key"] {
        let res = server
            .req(
                reqwest::Method::PUT,
                &format!("/v1/sandboxes/{id}/files?path=/tmp/{name}"),
                ADMIN_KEY,
            )
            .body(std::fs::read(dir.path().join(name)).unwrap())
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{}", res.text().await.unwrap());
    }
    let ca = std::fs::read_to_string(dir.path().join("ca/test-ca.crt")).unwrap();
    let (code, out) = server
        .sh(
            ADMIN_KEY,
            &id,
            "echo $SSL_CERT_FILE $NODE_EXTRA_CA_CERTS $PIP_CERT",
        )
        .await;
    assert_eq!(
        (code, out.trim()),
        (
            0,
            "/run/warren/ca-bundle.pem /run/warren/extra-ca.pem /run/warren/ca-bundle.pem"
        )
    );
    let (_, extra) = server
        .sh(ADMIN_KEY, &id, "cat /run/warren/extra-ca.pem")
        .await;
    assert_eq!(extra.trim(), ca.trim());
    // The bundle is the image's store, then the extras.
    let (_, counts) = server
        .sh(ADMIN_KEY, &id, "grep -c BEGIN /etc/ssl/certs/ca-certificates.crt; grep -c BEGIN /run/warren/ca-bundle.pem")
        .await;
    let counts: Vec<u64> = counts.lines().map(|l| l.parse().unwrap()).collect();
    assert!(counts[0] > 10 && counts[1] == counts[0] + 1, "{counts:?}");
    // One bundle, made once, shared read-only by every sandbox whose store
    // is the same file.
    let (code, out) = server
        .sh(ADMIN_KEY, &id, "echo x >> /run/warren/ca-bundle.pem")
        .await;
    assert_ne!(code, 0, "the shared bundle is writable: {out}");
    let second = server.create(ADMIN_KEY, json!({})).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, again) = server
        .sh(
            ADMIN_KEY,
            &second,
            "grep -c BEGIN /run/warren/ca-bundle.pem",
        )
        .await;
    assert_eq!(again.trim(), counts[1].to_string());
    let bundles = server.state_dir.join("pool").join("ca-bundles");
    let shared: Vec<_> = std::fs::read_dir(&bundles)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(shared.len(), 1, "{shared:?}");
    // A store changed inside a sandbox is its own: a fork of it trusts
    // what it added, the others do not.
    let (code, out) = server
        .sh(
            ADMIN_KEY,
            &second,
            "cat /run/warren/extra-ca.pem >> /etc/ssl/certs/ca-certificates.crt",
        )
        .await;
    assert_eq!(code, 0, "{out}");
    let fork = server
        .req(
            reqwest::Method::POST,
            &format!("/v1/sandboxes/{second}/fork"),
            ADMIN_KEY,
        )
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert!(fork.status().is_success(), "{}", fork.text().await.unwrap());
    let fork: serde_json::Value = fork.json().await.unwrap();
    let fork = fork["items"][0]["id"].as_str().unwrap();
    let (_, forked) = server
        .sh(ADMIN_KEY, fork, "grep -c BEGIN /run/warren/ca-bundle.pem")
        .await;
    assert_eq!(forked.trim(), (counts[1] + 1).to_string());
    let (_, first) = server
        .sh(ADMIN_KEY, &id, "grep -c BEGIN /run/warren/ca-bundle.pem")
        .await;
    assert_eq!(first.trim(), counts[1].to_string());
    let (code, _) = server
        .sh(
            ADMIN_KEY,
            &id,
            "grep -rl 'Warren Test CA' /etc /root /usr/local 2>/dev/null | head -1 | grep -q .",
        )
        .await;
    assert_ne!(code, 0, "the extra CA was written to the sandbox's disk");

    // A real handshake: trusted with the defaults, refused without them.
    server
        .sh(ADMIN_KEY, &id, "cd /tmp && (setsid openssl s_server -quiet -accept 8443 -cert leaf.crt -key leaf.key -www >/dev/null 2>&1 &) ; sleep 1")
        .await;
    let verify = "echo | openssl s_client -connect 127.0.0.1:8443 -servername localhost -verify_return_error 2>&1 | grep -E 'Verify return code'";
    let (_, trusted) = server.sh(ADMIN_KEY, &id, verify).await;
    assert!(trusted.contains("Verify return code: 0 (ok)"), "{trusted}");
    let (_, refused) = server
        .sh(
            ADMIN_KEY,
            &id,
            &format!("env -u SSL_CERT_FILE sh -c \"{verify}\""),
        )
        .await;
    assert!(
        !refused.contains("return code: 0 (ok)"),
        "the image alone trusted the test CA: {refused}"
    );
}
