//! A large file streams through `PUT` and `GET` (and a large tree through
//! `upload` and `download`) without the process's peak RSS growing by its
//! size: bodies are streamed, never held whole.

mod common;

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use common::TestAgent;
use futures::StreamExt;

const MIB: usize = 1 << 20;
/// Size of the file streamed through `PUT` and `GET`.
const SIZE_MIB: usize = 1024;
/// Size of the file carried through tar `download` and `upload`.
const TAR_MIB: usize = 256;
/// Peak RSS may grow by less than this over the whole test.
const RSS_BOUND_MIB: u64 = 100;

/// Block `i` of the test file: its index in the first 8 bytes, then a fill
/// that differs between neighbours, so a lost, repeated or reordered block
/// shows.
fn block(i: usize) -> Bytes {
    let mut b = vec![(i % 251) as u8; MIB];
    b[..8].copy_from_slice(&(i as u64).to_le_bytes());
    Bytes::from(b)
}

/// `VmHWM` (peak resident set) of this process, in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Checks a streamed body block by block against [`block`]; returns its length.
async fn verify_stream(
    mut body: impl futures::Stream<Item = reqwest::Result<Bytes>> + Unpin,
    blocks: usize,
) -> usize {
    let mut pending = BytesMut::new();
    let mut index = 0;
    let mut total = 0;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.unwrap();
        total += chunk.len();
        pending.extend_from_slice(&chunk);
        while pending.len() >= MIB {
            let got = pending.split_to(MIB);
            assert!(got[..] == block(index)[..], "block {index} differs");
            index += 1;
        }
    }
    assert!(pending.is_empty());
    assert_eq!(index, blocks);
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_file_streams_in_bounded_memory() {
    let agent = TestAgent::start().await;
    let before = peak_rss_kib();
    let started = Instant::now();

    let body = futures::stream::iter((0..SIZE_MIB).map(|i| Ok::<_, std::io::Error>(block(i))));
    let resp = agent
        .http
        .put(agent.url("/v1/files"))
        .query(&[("path", "big/file.bin")])
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let written: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(written["bytes"], SIZE_MIB * MIB);
    let on_disk = std::fs::metadata(agent.dir.path().join("big/file.bin")).unwrap();
    assert_eq!(on_disk.len() as usize, SIZE_MIB * MIB);

    let resp = agent
        .http
        .get(agent.url("/v1/files"))
        .query(&[("path", "big/file.bin")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-length"].to_str().unwrap(),
        (SIZE_MIB * MIB).to_string()
    );
    assert_eq!(
        verify_stream(resp.bytes_stream(), SIZE_MIB).await,
        SIZE_MIB * MIB
    );

    // A smaller file through tar download and upload (the same code path
    // whatever the size; this keeps the test quick).
    std::fs::create_dir(agent.dir.path().join("tree")).unwrap();
    let mut file = std::fs::File::create(agent.dir.path().join("tree/part.bin")).unwrap();
    for i in 0..TAR_MIB {
        std::io::Write::write_all(&mut file, &block(i)).unwrap();
    }
    drop(file);
    let resp = agent
        .http
        .get(agent.url("/v1/files/download"))
        .query(&[("path", "tree")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = agent
        .http
        .post(agent.url("/v1/files/upload"))
        .query(&[("path", "copy")])
        .body(reqwest::Body::wrap_stream(resp.bytes_stream()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let copied: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(copied["bytes"], TAR_MIB * MIB);
    let resp = agent
        .http
        .get(agent.url("/v1/files"))
        .query(&[("path", "copy/part.bin")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        verify_stream(resp.bytes_stream(), TAR_MIB).await,
        TAR_MIB * MIB
    );

    let grown_mib = peak_rss_kib().saturating_sub(before) / 1024;
    eprintln!(
        "{SIZE_MIB} MiB up and down, {TAR_MIB} MiB as tar down, up and back in {:?}; \
         peak RSS grew by {grown_mib} MiB",
        started.elapsed()
    );
    assert!(
        grown_mib < RSS_BOUND_MIB,
        "peak RSS grew by {grown_mib} MiB while streaming {SIZE_MIB} MiB"
    );
    assert!(started.elapsed() < Duration::from_secs(120));
}
