//! Tar upload and download: a round trip of a tree with nested files and a
//! symlink, and the entries an upload must refuse.

mod common;
mod files_support;

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use common::TestAgent;
use files_support::*;

async fn download(agent: &TestAgent, path: &str) -> (u16, String, Vec<u8>) {
    let resp = agent
        .http
        .get(agent.url("/v1/files/download"))
        .query(&[("path", path)])
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let ctype = resp.headers()["content-type"].to_str().unwrap().to_string();
    (status, ctype, resp.bytes().await.unwrap().to_vec())
}

async fn upload(agent: &TestAgent, path: &str, tar: Vec<u8>) -> (u16, serde_json::Value) {
    let resp = agent
        .http
        .post(agent.url("/v1/files/upload"))
        .query(&[("path", path)])
        .header("content-type", "application/x-tar")
        .body(tar)
        .send()
        .await
        .unwrap();
    json(resp).await
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

#[tokio::test]
async fn directory_round_trip() {
    let agent = TestAgent::start().await;
    let src = agent.dir.path().join("src");
    std::fs::create_dir_all(src.join("nested/deeper")).unwrap();
    std::fs::create_dir_all(src.join("emptydir")).unwrap();
    let all: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    std::fs::write(src.join("a.txt"), "alpha\n").unwrap();
    std::fs::write(src.join("nested/b.bin"), &all).unwrap();
    std::fs::write(src.join("nested/deeper/run.sh"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(
        src.join("nested/deeper/run.sh"),
        PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    symlink("nested/b.bin", src.join("link")).unwrap();
    let long = "l".repeat(120);
    std::fs::write(src.join("nested").join(&long), "long name").unwrap();

    let (status, ctype, tar) = download(&agent, "src").await;
    assert_eq!(status, 200);
    assert_eq!(ctype, "application/x-tar");
    let mut names: Vec<String> = tar::Archive::new(tar.as_slice())
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let expected = [
        "a.txt",
        "emptydir",
        "link",
        "nested",
        "nested/b.bin",
        "nested/deeper",
        "nested/deeper/run.sh",
    ];
    for name in expected {
        assert!(
            names.iter().any(|n| n.trim_end_matches('/') == name),
            "{name} in {names:?}"
        );
    }

    let (status, body) = upload(&agent, "copy/here", tar).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["path"], "copy/here");
    let copy = agent.dir.path().join("copy/here");
    assert_eq!(std::fs::read(copy.join("a.txt")).unwrap(), b"alpha\n");
    assert_eq!(std::fs::read(copy.join("nested/b.bin")).unwrap(), all);
    assert_eq!(
        std::fs::read(copy.join("nested").join(&long)).unwrap(),
        b"long name"
    );
    assert_eq!(mode(&copy.join("nested/deeper/run.sh")), 0o755);
    assert!(copy.join("emptydir").is_dir());
    assert_eq!(
        std::fs::read_link(copy.join("link")).unwrap(),
        Path::new("nested/b.bin")
    );
    assert_eq!(std::fs::read(copy.join("link")).unwrap(), all);
    let file_bytes = 6 + all.len() + 10 + 9;
    assert_eq!(body["bytes"], file_bytes);
    // No temporary files left anywhere.
    assert_eq!(names_in(&copy), names_in(&src));
}

#[tokio::test]
async fn single_file_download() {
    let agent = TestAgent::start().await;
    std::fs::create_dir(agent.dir.path().join("d")).unwrap();
    std::fs::write(agent.dir.path().join("d/one.txt"), "just me").unwrap();
    let (status, _, tar) = download(&agent, "d/one.txt").await;
    assert_eq!(status, 200);
    let mut archive = tar::Archive::new(tar.as_slice());
    let mut entries = archive.entries().unwrap();
    let mut entry = entries.next().unwrap().unwrap();
    assert_eq!(entry.path().unwrap(), Path::new("one.txt"));
    let mut content = String::new();
    std::io::Read::read_to_string(&mut entry, &mut content).unwrap();
    assert_eq!(content, "just me");
    assert!(entries.next().is_none());

    assert_problem(
        &get_json(&agent, "/v1/files/download", &[("path", "nope")]).await,
        404,
        "file_not_found",
    );
}

#[tokio::test]
async fn upload_refuses_escaping_entries() {
    let agent = TestAgent::start().await;
    let root = agent.dir.path();
    std::fs::create_dir(root.join("up")).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("dot-dot", raw_tar(&[Raw::file("../escaped", b"x")])),
        (
            "nested dot-dot",
            raw_tar(&[Raw::file("a/../../escaped", b"x")]),
        ),
        (
            "absolute",
            raw_tar(&[Raw::file("/tmp/warren-escaped", b"x")]),
        ),
        (
            "through a symlink entry",
            raw_tar(&[Raw::symlink("ln", ".."), Raw::file("ln/escaped", b"x")]),
        ),
        (
            "through an absolute symlink entry",
            raw_tar(&[
                Raw::symlink("abs", root.to_str().unwrap()),
                Raw::file("abs/escaped", b"x"),
            ]),
        ),
        (
            "hard link out",
            raw_tar(&[Raw::hardlink("h", "../escaped")]),
        ),
    ];
    for (what, tar) in cases {
        let answer = upload(&agent, "up", tar).await;
        assert_problem(&answer, 403, "path_not_allowed");
        assert!(!root.join("escaped").exists(), "{what}");
        assert!(!Path::new("/tmp/warren-escaped").exists(), "{what}");
    }
    // Nothing but the refused symlinks landed in the target.
    for name in names(&root.join("up")) {
        assert!(
            std::fs::symlink_metadata(root.join("up").join(&name))
                .unwrap()
                .is_symlink(),
            "{name}"
        );
    }
}

#[tokio::test]
async fn upload_problems() {
    let agent = TestAgent::start_with(|c| c.limits.max_upload_bytes = 16 << 10).await;
    let answer = upload(&agent, "u", vec![0x42; 4096]).await;
    assert_problem(&answer, 400, "invalid_request");
    let big = raw_tar(&[Raw::file("big", &vec![0u8; 64 << 10])]);
    let answer = upload(&agent, "u", big.clone()).await;
    assert_problem(&answer, 413, "payload_too_large");
    // Without Content-Length the limit holds while streaming.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        big.chunks(4096).map(|c| Ok(c.to_vec())).collect();
    let resp = agent
        .http
        .post(agent.url("/v1/files/upload"))
        .query(&[("path", "u")])
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_problem(&json(resp).await, 413, "payload_too_large");
    std::fs::write(agent.dir.path().join("file"), "x").unwrap();
    let answer = upload(&agent, "file", raw_tar(&[Raw::file("a", b"a")])).await;
    assert_problem(&answer, 400, "not_a_directory");
    // A truncated archive is invalid, not a silent partial success.
    let tar = raw_tar(&[Raw::file("t", &[7u8; 3000])]);
    let answer = upload(&agent, "u", tar[..1500].to_vec()).await;
    assert_problem(&answer, 400, "invalid_request");
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            out.push(
                path.strip_prefix(base)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            );
            if entry.file_type().unwrap().is_dir() {
                walk(base, &path, out);
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// One entry of a hand-made archive (the `tar` crate refuses to write the
/// hostile names these tests need).
struct Raw<'a> {
    name: &'a str,
    kind: tar::EntryType,
    data: &'a [u8],
    link: &'a str,
}

impl<'a> Raw<'a> {
    fn file(name: &'a str, data: &'a [u8]) -> Self {
        Raw {
            name,
            kind: tar::EntryType::Regular,
            data,
            link: "",
        }
    }
    fn symlink(name: &'a str, link: &'a str) -> Self {
        Raw {
            name,
            kind: tar::EntryType::Symlink,
            data: b"",
            link,
        }
    }
    fn hardlink(name: &'a str, link: &'a str) -> Self {
        Raw {
            name,
            kind: tar::EntryType::Link,
            data: b"",
            link,
        }
    }
}

fn raw_tar(entries: &[Raw]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let mut header = tar::Header::new_gnu();
        let gnu = header.as_gnu_mut().unwrap();
        gnu.name[..e.name.len()].copy_from_slice(e.name.as_bytes());
        gnu.linkname[..e.link.len()].copy_from_slice(e.link.as_bytes());
        header.set_entry_type(e.kind);
        header.set_size(e.data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(e.data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}
