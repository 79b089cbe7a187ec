//! `/v1/ports/{port}/tunnel` over real sockets: the upgrade, bytes both ways
//! to a real listener, and the refusals.

mod common;

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Sends a raw HTTP/1.1 request and returns the response head and the
/// still-open connection.
async fn request(agent: &common::TestAgent, head: &str) -> (String, TcpStream) {
    let mut stream = TcpStream::connect(agent.addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut byte))
            .await
            .expect("response head in time")
            .unwrap();
        assert_eq!(
            n,
            1,
            "connection closed mid-head: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.push(byte[0]);
    }
    (String::from_utf8(buf).unwrap(), stream)
}

fn tunnel_request(port: &str) -> String {
    format!(
        "GET /v1/ports/{port}/tunnel HTTP/1.1\r\nHost: agent\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
    )
}

#[tokio::test]
async fn tunnel_pipes_bytes_both_ways() {
    let agent = common::TestAgent::start().await;
    let app = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = app.local_addr().unwrap().port();
    // An echo server that upper-cases what it reads.
    let server = tokio::spawn(async move {
        let (mut conn, _) = app.accept().await.unwrap();
        let mut buf = [0u8; 1024];
        loop {
            let n = conn.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            conn.write_all(&buf[..n].to_ascii_uppercase())
                .await
                .unwrap();
        }
    });
    let (head, mut tunnel) = request(&agent, &tunnel_request(&port.to_string())).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.to_ascii_lowercase().contains("upgrade: tcp"), "{head}");
    for message in ["hello", "through the agent"] {
        tunnel.write_all(message.as_bytes()).await.unwrap();
        let mut got = vec![0u8; message.len()];
        tokio::time::timeout(Duration::from_secs(10), tunnel.read_exact(&mut got))
            .await
            .expect("echo in time")
            .unwrap();
        assert_eq!(got, message.to_ascii_uppercase().as_bytes());
    }
    // Closing our side ends the application's connection too.
    tunnel.shutdown().await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the app sees the close")
        .unwrap();
}

#[tokio::test]
async fn closed_ports_and_plain_requests_are_refused() {
    let agent = common::TestAgent::start().await;
    // A port nothing listens on: bind one, note it, close it.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (head, _) = request(&agent, &tunnel_request(&port.to_string())).await;
    assert!(head.starts_with("HTTP/1.1 502"), "{head}");
    let resp = agent
        .http
        .get(agent.url(&format!("/v1/ports/{port}/tunnel")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let problem: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(problem["code"], "invalid_request");
    for bad in ["0", "65536", "http"] {
        let (head, _) = request(&agent, &tunnel_request(bad)).await;
        assert!(head.starts_with("HTTP/1.1 400"), "{bad}: {head}");
    }
}
