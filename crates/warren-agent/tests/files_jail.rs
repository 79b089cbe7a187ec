//! The `--root` jail: every `/v1/files` route refuses paths that resolve
//! outside the root, through `..`, absolute or relative symlinks, symlinked
//! directories or dangling links, and nothing outside is read or changed.

mod common;
mod files_support;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use common::TestAgent;
use files_support::*;
use serde_json::json;

/// An agent jailed in `<tmp>/jail` (also its workdir), with `<tmp>/outside`
/// holding a secret and symlinks in the jail that point out of it.
struct Jailed {
    agent: TestAgent,
    jail: PathBuf,
    outside: PathBuf,
}

async fn jailed() -> Jailed {
    let agent = TestAgent::start_with(|c| {
        let jail = c.workdir.join("jail");
        std::fs::create_dir_all(&jail).unwrap();
        c.root = Some(jail.clone());
        c.workdir = jail;
    })
    .await;
    let base = agent.dir.path();
    let jail = base.join("jail");
    let outside = base.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret"), "secret").unwrap();
    std::fs::create_dir_all(jail.join("sub")).unwrap();
    std::fs::write(jail.join("sub/f"), "inside").unwrap();
    std::fs::write(jail.join("inside.txt"), "inside").unwrap();
    symlink(&outside, jail.join("abs_out")).unwrap();
    symlink("../outside", jail.join("rel_out")).unwrap();
    symlink(outside.join("secret"), jail.join("secret_link")).unwrap();
    symlink("../outside/new-file", jail.join("dangling_out")).unwrap();
    symlink("../../outside", jail.join("sub/deep_out")).unwrap();
    // An absolute symlink that stays inside the jail is fine.
    symlink(jail.join("sub"), jail.join("abs_in")).unwrap();
    Jailed {
        agent,
        jail,
        outside,
    }
}

impl Jailed {
    /// Paths that name the secret through every kind of escape.
    fn escapes(&self) -> Vec<String> {
        vec![
            "../outside/secret".into(),
            self.outside.join("secret").to_str().unwrap().into(),
            "abs_out/secret".into(),
            "rel_out/secret".into(),
            "secret_link".into(),
            "sub/deep_out/secret".into(),
            "sub/../../outside/secret".into(),
            format!("{}/../outside/secret", self.jail.display()),
        ]
    }

    /// Directories outside, through every kind of escape.
    fn outside_dirs(&self) -> Vec<String> {
        vec![
            "..".into(),
            "/".into(),
            "../outside".into(),
            self.outside.to_str().unwrap().into(),
            "abs_out".into(),
            "rel_out".into(),
            "sub/deep_out".into(),
        ]
    }

    /// Targets to create that would land outside.
    fn outside_targets(&self) -> Vec<String> {
        vec![
            "../outside/new-file".into(),
            self.outside.join("new-file").to_str().unwrap().into(),
            "abs_out/new-file".into(),
            "rel_out/new-file".into(),
            "dangling_out".into(),
            "sub/deep_out/new-file".into(),
            "rel_out/newdir/new-file".into(),
        ]
    }

    /// The outside directory is exactly as it was made.
    fn assert_outside_untouched(&self) {
        assert_eq!(names(&self.outside), vec!["secret"]);
        assert_eq!(
            std::fs::read_to_string(self.outside.join("secret")).unwrap(),
            "secret"
        );
    }
}

fn refused(answer: &(u16, serde_json::Value), what: &str) {
    assert_eq!(answer.0, 403, "{what}: {answer:?}");
    assert_eq!(answer.1["code"], "path_not_allowed", "{what}: {answer:?}");
}

#[tokio::test]
async fn reads_refuse_escapes() {
    let j = jailed().await;
    let agent = &j.agent;
    for path in j.escapes() {
        let p = path.as_str();
        refused(
            &get_json(agent, "/v1/files", &[("path", p)]).await,
            &format!("GET {p}"),
        );
        refused(
            &get_json(agent, "/v1/files/stat", &[("path", p)]).await,
            &format!("stat {p}"),
        );
        let download = get_json(agent, "/v1/files/download", &[("path", p)]).await;
        refused(&download, &format!("download {p}"));
        let edit = json!({"path": p, "old_text": "secret", "new_text": "pwned"});
        let answer = post_json(agent, "/v1/files/edit", &[], Some(edit)).await;
        refused(&answer, &format!("edit {p}"));
        // `move` and `DELETE` act on the name itself: the link
        // `secret_link` is inside the jail, so it may be moved or removed.
        if p != "secret_link" {
            let mv = json!({"from": p, "to": "stolen"});
            let answer = post_json(agent, "/v1/files/move", &[], Some(mv)).await;
            refused(&answer, &format!("move from {p}"));
        }
    }
    for dir in j.outside_dirs() {
        let d = dir.as_str();
        refused(
            &get_json(agent, "/v1/files/list", &[("path", d)]).await,
            &format!("list {d}"),
        );
        refused(
            &get_json(agent, "/v1/files/watch", &[("path", d)]).await,
            &format!("watch {d}"),
        );
        let download = get_json(agent, "/v1/files/download", &[("path", d)]).await;
        refused(&download, &format!("download {d}"));
    }
    assert!(!j.jail.join("stolen").exists());
    j.assert_outside_untouched();
}

#[tokio::test]
async fn writes_refuse_escapes() {
    let j = jailed().await;
    let agent = &j.agent;
    for target in j.outside_targets() {
        let t = target.as_str();
        refused(&put(agent, t, "pwned").await, &format!("PUT {t}"));
        refused(
            &post_json(agent, "/v1/files/mkdir", &[("path", t)], None).await,
            &format!("mkdir {t}"),
        );
        // Moving onto the dangling link replaces the link itself (inside
        // the jail), so only the other targets are escapes for `move`.
        if t != "dangling_out" {
            let answer = post_json(
                agent,
                "/v1/files/move",
                &[],
                Some(json!({"from": "inside.txt", "to": t, "overwrite": true})),
            )
            .await;
            refused(&answer, &format!("move to {t}"));
        }
        let answer = agent
            .http
            .post(agent.url("/v1/files/upload"))
            .query(&[("path", t)])
            .body(tar_of_one("x", b"pwned"))
            .send()
            .await
            .unwrap();
        refused(&json(answer).await, &format!("upload to {t}"));
    }
    for path in j.escapes().iter().filter(|p| *p != "secret_link") {
        let p = path.as_str();
        refused(&delete(agent, &[("path", p)]).await, &format!("DELETE {p}"));
    }
    let abs_outside = j.outside.to_str().unwrap().to_string();
    for dir in ["../outside", abs_outside.as_str(), "abs_out/../outside"] {
        let answer = delete(agent, &[("path", dir), ("recursive", "true")]).await;
        refused(&answer, &format!("DELETE -r {dir}"));
    }
    assert!(j.jail.join("inside.txt").exists());
    j.assert_outside_untouched();
    // Deleting a link to outside (even spelled as a directory) removes the
    // link, never what it points to.
    for link in ["rel_out/", "abs_out/."] {
        let answer = delete(agent, &[("path", link), ("recursive", "true")]).await;
        assert_eq!(answer.0, 200, "{link}: {answer:?}");
    }
    assert!(!j.jail.join("rel_out").is_symlink());
    j.assert_outside_untouched();
}

#[tokio::test]
async fn upload_cannot_pass_through_symlinks_in_the_target() {
    let j = jailed().await;
    let agent = &j.agent;
    // The entry `rel_out/x` would be written through the existing symlink.
    let answer = agent
        .http
        .post(agent.url("/v1/files/upload"))
        .query(&[("path", ".")])
        .body(tar_of_one("rel_out/x", b"pwned"))
        .send()
        .await
        .unwrap();
    refused(&json(answer).await, "upload through rel_out");
    j.assert_outside_untouched();
}

#[tokio::test]
async fn paths_inside_the_jail_work() {
    let j = jailed().await;
    let agent = &j.agent;
    assert_eq!(get(agent, "inside.txt").await, (200, b"inside".to_vec()));
    let abs = j.jail.join("inside.txt");
    assert_eq!(get(agent, abs.to_str().unwrap()).await.0, 200);
    // Through `..` that stays inside, and an absolute symlink into the jail.
    assert_eq!(get(agent, "sub/../inside.txt").await.0, 200);
    assert_eq!(get(agent, "abs_in/f").await, (200, b"inside".to_vec()));
    assert_eq!(put(agent, "abs_in/new", "n").await.0, 200);
    assert_eq!(
        std::fs::read_to_string(j.jail.join("sub/new")).unwrap(),
        "n"
    );
    let (status, list) = get_json(agent, "/v1/files/list", &[("path", "/")]).await;
    assert_eq!(status, 403, "{list}");
    let (status, list) = get_json(agent, "/v1/files/list", &[("path", ".")]).await;
    assert_eq!(status, 200);
    // Links out of the jail are listed as links, without their targets' details.
    let item = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "abs_out")
        .unwrap()
        .clone();
    assert_eq!(item["is_symlink"], true);
    assert_eq!(item["is_dir"], false);
    // A symlink pointing out can itself be deleted: it is inside.
    assert_eq!(delete(agent, &[("path", "secret_link")]).await.0, 200);
    assert!(!Path::new(&j.jail.join("secret_link")).exists());
    // The jail's root cannot be deleted.
    let answer = delete(agent, &[("path", "."), ("recursive", "true")]).await;
    assert_problem(&answer, 400, "invalid_request");
    j.assert_outside_untouched();
}

/// A tar holding one regular file.
fn tar_of_one(name: &str, data: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    builder.append_data(&mut header, name, data).unwrap();
    builder.into_inner().unwrap()
}
