//! Embeds `ui/dist` (built by `scripts/build-ui.sh`) as a table of
//! `Asset`s in `$OUT_DIR/assets.rs`. When the folder is missing, a small
//! placeholder page says how to build the console, so `cargo build` never
//! needs Node.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs};

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let dist = manifest.join("../../ui/dist");
    println!("cargo:rerun-if-changed=placeholder.html");
    let mut files = Vec::new();
    if dist.join("index.html").is_file() {
        collect(&dist, &dist, &mut files);
    } else {
        // `ui/` changes when `ui/dist` appears (a missing path would rerun
        // this script on every build).
        println!(
            "cargo:rerun-if-changed={}",
            manifest.join("../../ui").display()
        );
        files.push(("index.html".to_string(), manifest.join("placeholder.html")));
    }
    files.sort();
    let mut out = String::from(
        "/// Every embedded file, sorted by path.\npub static ASSETS: &[Asset] = &[\n",
    );
    for (path, file) in &files {
        let bytes = fs::read(file).expect("read an asset");
        writeln!(
            out,
            "    Asset {{ path: {path:?}, content_type: {:?}, etag: \"\\\"{:016x}\\\"\", hashed: {}, bytes: include_bytes!({:?}) }},",
            content_type(path),
            fnv1a(&bytes),
            is_hashed(path),
            file.canonicalize().expect("canonical asset path"),
        )
        .expect("write to a string");
    }
    out.push_str("];\n");
    let dest = PathBuf::from(env::var("OUT_DIR").expect("cargo sets it")).join("assets.rs");
    fs::write(dest, out).expect("write assets.rs");
}

/// Files under `dir`, as (path relative to `root` with `/`, file).
fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) {
    // Each directory too, so a file added under it reruns the script.
    println!("cargo:rerun-if-changed={}", dir.display());
    for entry in fs::read_dir(dir).expect("read ui/dist") {
        let path = entry.expect("read ui/dist").path();
        if path.is_dir() {
            collect(root, &path, out);
        } else {
            println!("cargo:rerun-if-changed={}", path.display());
            let rel = path.strip_prefix(root).expect("under root");
            let rel = rel.to_string_lossy().replace('\\', "/");
            out.push((rel, path));
        }
    }
}

/// Names built with a content hash (`app-3F2A9C1B.js`) never change content.
fn is_hashed(path: &str) -> bool {
    path.starts_with("assets/")
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// FNV-1a, 64 bits: an ETag only needs to change when the bytes do.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
