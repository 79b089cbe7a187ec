//! Checkpoint imports as a tenant attacker sends them: a gzipped tar that
//! would plant host privilege in the pool (files of host root, setuid
//! binaries, file capabilities, device nodes, links out of the disk), and a
//! `btrfs send` stream, which the kernel would parse as host root. None of
//! it may land; the pool is mounted `nosuid,nodev` and its checkpoints are
//! root's alone.

mod server_common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use serde_json::{json, Value};
use server_common::{list_dir, Options, TestServer};

/// Host id 0 of the sandboxes' range (`SANDBOX_ID_BASE`).
const BASE: u64 = 100_000;

/// One entry of a hostile archive.
enum Entry {
    File {
        path: &'static str,
        uid: u64,
        mode: u32,
    },
    /// A file with a `security.capability` attribute (CAP_DAC_READ_SEARCH).
    CapFile(&'static str),
    Device {
        path: &'static str,
        block: bool,
    },
    Symlink(&'static str, &'static str),
    Hardlink(&'static str, &'static str),
}

/// A gzipped tar of `entries` (directories are added owned by the range).
fn tarball(entries: &[Entry]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let dir = |path: &str, b: &mut tar::Builder<Vec<u8>>| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_uid(BASE);
        h.set_gid(BASE);
        h.set_size(0);
        b.append_data(&mut h, path, std::io::empty()).unwrap();
    };
    for d in ["./", "./root", "./dev", "./usr", "./usr/bin"] {
        dir(d, &mut builder);
    }
    for entry in entries {
        let mut h = tar::Header::new_gnu();
        h.set_uid(BASE);
        h.set_gid(BASE);
        h.set_mode(0o644);
        h.set_size(0);
        match entry {
            Entry::File { path, uid, mode } => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_uid(*uid);
                h.set_gid(*uid);
                h.set_mode(*mode);
                h.set_size(4);
                builder.append_data(&mut h, path, &b"#!x\n"[..]).unwrap();
            }
            Entry::CapFile(path) => {
                // VFS_CAP_REVISION_2 | effective; permitted: CAP_DAC_READ_SEARCH.
                let cap: [u8; 20] = [1, 0, 0, 2, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
                builder
                    .append_pax_extensions([("SCHILY.xattr.security.capability", &cap[..])])
                    .unwrap();
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o755);
                h.set_size(4);
                builder.append_data(&mut h, path, &b"#!x\n"[..]).unwrap();
            }
            Entry::Device { path, block } => {
                h.set_entry_type(if *block {
                    tar::EntryType::Block
                } else {
                    tar::EntryType::Char
                });
                h.set_device_major(if *block { 8 } else { 1 }).unwrap();
                h.set_device_minor(if *block { 0 } else { 3 }).unwrap();
                builder.append_data(&mut h, path, std::io::empty()).unwrap();
            }
            Entry::Symlink(path, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                builder.append_link(&mut h, path, target).unwrap();
            }
            Entry::Hardlink(path, target) => {
                h.set_entry_type(tar::EntryType::Link);
                builder.append_link(&mut h, path, target).unwrap();
            }
        }
    }
    let tar = builder.into_inner().unwrap();
    let mut gzip = std::process::Command::new("gzip")
        .arg("-c")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("gzip");
    {
        use std::io::Write;
        gzip.stdin.take().unwrap().write_all(&tar).unwrap();
    }
    let out = gzip.wait_with_output().unwrap();
    assert!(out.status.success());
    out.stdout
}

/// An import body: the export header, then `payload`.
fn body(format: &str, payload: &[u8]) -> Vec<u8> {
    let header = json!({
        "format": format,
        "id": "ckpt_aaaaaaaaaaaaaaaaaaaa",
        "name": "hostile",
        "sandbox_id": "sbx_aaaaaaaaaaaaaaaaaaaa",
        "template": "base",
        "workdir": "/root",
        "envs": {},
        "created_at": "2026-12-01T00:00:00.000Z",
    });
    let mut out = b"WARREN-CHECKPOINT 1\n".to_vec();
    out.extend(serde_json::to_vec(&header).unwrap());
    out.push(b'\n');
    out.extend_from_slice(payload);
    out
}

async fn import(server: &TestServer, key: &str, body: Vec<u8>) -> (u16, Value) {
    let resp = server
        .req(reqwest::Method::POST, "/v1/checkpoints/import", key)
        .header("content-type", "application/vnd.warren.checkpoint")
        .body(body)
        .send()
        .await
        .expect("import");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// The `security.*` and `trusted.*` attributes of `path`.
fn privileged_xattrs(path: &Path) -> Vec<String> {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import os, sys; print('\\n'.join(a for a in os.listxattr(sys.argv[1], follow_symlinks=False) if a.startswith(('security.', 'trusted.'))))",
        ])
        .arg(path)
        .output()
        .expect("python3");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Every path under `root`, not following symlinks.
fn walk(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if std::fs::symlink_metadata(&path).unwrap().is_dir() {
                stack.push(path.clone());
            }
            out.push(path);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_imports_plant_nothing_on_the_host() {
    let server = TestServer::start_with(Options {
        no_base: true,
        args: vec!["--no-network".into()],
        ..Options::default()
    })
    .await;
    let (_, mallory) = server.tenant("mallory", None).await;
    let checkpoints = server.state_dir.join("pool/checkpoints");
    let before = list_dir(&checkpoints);

    let refused: Vec<(&str, Vec<Entry>, &str)> = vec![
        (
            "a setuid binary of host root",
            vec![Entry::File {
                path: "./usr/bin/rootshell",
                uid: 0,
                mode: 0o4755,
            }],
            "outside the sandboxes' range",
        ),
        (
            "a file of a host user",
            vec![Entry::File {
                path: "./root/mine",
                uid: 70_000,
                mode: 0o644,
            }],
            "outside the sandboxes' range",
        ),
        (
            "a block device",
            vec![Entry::Device {
                path: "./root/sda",
                block: true,
            }],
            "device node",
        ),
        (
            "a character device outside /dev",
            vec![Entry::Device {
                path: "./usr/bin/mem",
                block: false,
            }],
            "device node",
        ),
        (
            "a hard link to a host file",
            vec![Entry::Hardlink("./root/shadow", "/etc/shadow")],
            "",
        ),
        (
            "a write through a symlink out of the disk",
            vec![
                Entry::Symlink("./root/out", "/tmp"),
                Entry::File {
                    path: "./root/out/warren-import-escape",
                    uid: BASE,
                    mode: 0o644,
                },
            ],
            "",
        ),
    ];
    for (what, entries, says) in refused {
        let (status, problem) =
            import(&server, &mallory, body("tar-gzip", &tarball(&entries))).await;
        assert_eq!(status, 400, "{what} was imported: {problem}");
        assert_eq!(problem["code"], "invalid_request", "{what}");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap_or_default()
                .contains(says),
            "{what}: {problem}"
        );
        assert_eq!(list_dir(&checkpoints), before, "{what} left a volume");
    }
    assert!(!Path::new("/tmp/warren-import-escape").exists());
    assert!(std::fs::metadata("/etc/shadow").unwrap().nlink() == 1);

    // A file capability and a device under /dev: the import goes through,
    // without either.
    let entries = vec![
        Entry::CapFile("./usr/bin/reader"),
        Entry::Device {
            path: "./dev/null",
            block: false,
        },
        Entry::File {
            path: "./usr/bin/su",
            uid: BASE,
            mode: 0o4755,
        },
    ];
    let (status, imported) = import(&server, &mallory, body("tar-gzip", &tarball(&entries))).await;
    assert_eq!(status, 201, "{imported}");
    let id = imported["id"].as_str().unwrap();
    let volume = checkpoints.join(id);
    let files = walk(&volume);
    assert!(files.iter().any(|p| p.ends_with("usr/bin/reader")));
    for path in &files {
        let meta = std::fs::symlink_metadata(path).unwrap();
        assert!(
            (BASE..BASE + 65_536).contains(&(meta.uid() as u64)),
            "{} is owned by host uid {}",
            path.display(),
            meta.uid()
        );
        let kind = meta.mode() & libc::S_IFMT;
        assert!(
            kind != libc::S_IFCHR && kind != libc::S_IFBLK,
            "a device node landed in the pool: {}",
            path.display()
        );
        assert_eq!(
            privileged_xattrs(path),
            Vec::<String>::new(),
            "{}",
            path.display()
        );
    }

    // A btrfs send stream is the admin's to import, never a tenant's.
    let (status, problem) = import(&server, &mallory, body("btrfs-send", b"btrfs-stream")).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (403, Some("forbidden")),
        "{problem}"
    );

    // Checkpoints are root's alone.
    let mode = std::fs::metadata(&checkpoints)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o700,
        "pool/checkpoints is {:o}",
        mode & 0o777
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pool_is_mounted_nosuid_and_nodev() {
    let server = TestServer::start_with(Options {
        image_pool: true,
        args: vec!["--no-network".into()],
        ..Options::default()
    })
    .await;
    let pool = server.state_dir.join("pool").canonicalize().unwrap();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = mountinfo
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(pool.to_str().unwrap()))
        .unwrap_or_else(|| panic!("the pool is not a mount point: {mountinfo}"));
    let options: Vec<&str> = line.split(' ').nth(5).unwrap().split(',').collect();
    for wanted in ["nosuid", "nodev"] {
        assert!(
            options.contains(&wanted),
            "pool mounted without {wanted}: {line}"
        );
    }
}
