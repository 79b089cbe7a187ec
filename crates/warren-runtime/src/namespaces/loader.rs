//! The agent's own dynamic loader and libraries.
//!
//! `warren` is a dynamically linked binary: exec'd inside a sandbox as is,
//! its loader and its libraries (libc, libm, libgcc_s) would be the
//! sandbox's own. That ties the agent to the image's libc (an image with an
//! older glibc, musl or none cannot start it; a sandbox whose user removed
//! libm loses its agent at the next start) and makes every start read them
//! from a root whose page cache is cold: a fork's or a restore's root is a
//! snapshot made a moment ago, and faulting the libraries in from it took
//! 4 ms of a 10 ms start.
//!
//! So the host's copies are used: [`prepare`] copies the loader named by
//! the binary's `PT_INTERP` and every library it lists for the binary
//! (`ld.so --list`, by soname) into a host directory, which each sandbox
//! gets read-only at [`SANDBOX_LIB_DIR`]; the agent is exec'd through that
//! loader ([`exec_argv`]), with that directory as its only library path.
//! Only the agent runs so: what it starts uses the sandbox's libraries, as
//! before. A statically linked binary needs none of this ([`prepare`]
//! answers `None`), nor does a runtime whose preparation failed: the agent
//! is then exec'd directly.

use std::fs;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::SANDBOX_WARREN_BINARY;

/// Where a sandbox sees the agent's loader and libraries.
pub const SANDBOX_LIB_DIR: &str = "/run/warren-bin/lib";

/// The loader's name in that directory.
pub const LOADER: &str = "ld.so";

/// Most libraries a binary may list (ours needs three).
const MAX_LIBRARIES: usize = 32;

/// Fills `dir` (made afresh) with the loader and the libraries `binary`
/// needs; `None` when `binary` is static (it has no loader).
pub fn prepare(dir: &Path, binary: &Path) -> io::Result<Option<PathBuf>> {
    let Some(interpreter) = interpreter(binary)? else {
        return Ok(None);
    };
    let libraries = libraries(&interpreter, binary)?;
    // Made next to `dir`, then renamed over it: a sandbox starting
    // meanwhile never sees half a directory.
    let staged = dir.with_extension(format!("tmp-{}", std::process::id()));
    let _ = fs::remove_dir_all(&staged);
    fs::create_dir_all(&staged)?;
    fs::set_permissions(&staged, fs::Permissions::from_mode(0o755))?;
    let copy = |from: &Path, name: &str| -> io::Result<()> {
        let to = staged.join(name);
        fs::copy(from, &to)?;
        fs::set_permissions(&to, fs::Permissions::from_mode(0o755))
    };
    copy(&interpreter, LOADER)?;
    for (soname, path) in &libraries {
        copy(path, soname)?;
    }
    let _ = fs::remove_dir_all(dir);
    fs::rename(&staged, dir)?;
    Ok(Some(dir.to_path_buf()))
}

/// The `PT_INTERP` of the 64-bit little-endian ELF `binary`, if any.
fn interpreter(binary: &Path) -> io::Result<Option<PathBuf>> {
    let bad = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {what}", binary.display()),
        )
    };
    let mut file = fs::File::open(binary)?;
    let mut header = [0u8; 64];
    file.read_exact(&mut header)?;
    if &header[..4] != b"\x7fELF" || header[4] != 2 || header[5] != 1 {
        return Err(bad("not a 64-bit little-endian ELF file"));
    }
    let u16_at = |b: &[u8], at: usize| u16::from_le_bytes([b[at], b[at + 1]]) as usize;
    let u64_at =
        |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("eight bytes"));
    let (phoff, phentsize, phnum) = (
        u64_at(&header, 0x20),
        u16_at(&header, 0x36),
        u16_at(&header, 0x38),
    );
    if phentsize < 56 || phnum > 256 {
        return Err(bad("odd program headers"));
    }
    let mut headers = vec![0u8; phentsize * phnum];
    file.seek(SeekFrom::Start(phoff))?;
    file.read_exact(&mut headers)?;
    for ph in headers.chunks_exact(phentsize) {
        const PT_INTERP: u32 = 3;
        if u32::from_le_bytes(ph[..4].try_into().expect("four bytes")) != PT_INTERP {
            continue;
        }
        let (offset, size) = (u64_at(ph, 0x08), u64_at(ph, 0x20) as usize);
        if size == 0 || size > 4096 {
            return Err(bad("odd PT_INTERP"));
        }
        let mut path = vec![0u8; size];
        file.seek(SeekFrom::Start(offset))?;
        file.read_exact(&mut path)?;
        let path = path.split(|&b| b == 0).next().unwrap_or_default();
        return Ok(Some(PathBuf::from(
            String::from_utf8_lossy(path).into_owned(),
        )));
    }
    Ok(None)
}

/// `soname => path` of every library `binary` loads, as its loader lists
/// them (`ld.so --list`; the vDSO and the loader itself have no path).
fn libraries(interpreter: &Path, binary: &Path) -> io::Result<Vec<(String, PathBuf)>> {
    let out = Command::new(interpreter)
        .arg("--list")
        .arg(binary)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{} --list {} failed: {}",
            interpreter.display(),
            binary.display(),
            out.status
        )));
    }
    let mut libraries = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some((soname, rest)) = line.trim().split_once(" => ") else {
            continue;
        };
        let path = rest.split(" (").next().unwrap_or_default();
        let plain = !soname.is_empty()
            && !soname.contains('/')
            && !soname.starts_with('.')
            && path.starts_with('/');
        if !plain {
            return Err(io::Error::other(format!(
                "cannot use the library line {line:?}"
            )));
        }
        libraries.push((soname.to_string(), PathBuf::from(path)));
        if libraries.len() > MAX_LIBRARIES {
            return Err(io::Error::other("too many libraries"));
        }
    }
    Ok(libraries)
}

/// The program to exec and the head of its argv: the loader at
/// [`SANDBOX_LIB_DIR`] running the agent binary with that directory as its
/// library path, or (without it) the binary itself. The agent's argv[0]
/// is `warren` either way (its `/proc/1/cmdline` shows the loader's).
pub(crate) fn exec_argv(through_loader: bool) -> (String, Vec<String>) {
    if !through_loader {
        return (
            SANDBOX_WARREN_BINARY.to_string(),
            vec!["warren".to_string()],
        );
    }
    let loader = format!("{SANDBOX_LIB_DIR}/{LOADER}");
    let head = [
        &loader,
        "--argv0",
        "warren",
        "--library-path",
        SANDBOX_LIB_DIR,
        SANDBOX_WARREN_BINARY,
    ]
    .map(String::from)
    .to_vec();
    (loader, head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_test_binary_gets_its_loader_and_libraries() {
        let me = std::env::current_exe().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let libs = dir.path().join("libs");
        let made = prepare(&libs, &me).unwrap().expect("a dynamic binary");
        assert_eq!(made, libs);
        let names: Vec<String> = fs::read_dir(&libs)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.contains(&LOADER.to_string()), "{names:?}");
        assert!(names.iter().any(|n| n.starts_with("libc.so")), "{names:?}");
        // The copies run the binary on their own: the loader, given only
        // that directory, finds everything.
        let out = Command::new(libs.join(LOADER))
            .args(["--library-path"])
            .arg(&libs)
            .arg("--list")
            .arg(&me)
            .output()
            .unwrap();
        assert!(out.status.success());
        let listed = String::from_utf8_lossy(&out.stdout);
        for line in listed.lines().filter(|l| l.contains(" => ")) {
            assert!(
                line.contains(libs.to_str().unwrap()),
                "{line} not from the copies:\n{listed}"
            );
        }
        // Prepared again (a restart), the directory is replaced whole.
        fs::write(libs.join("stale"), "x").unwrap();
        prepare(&libs, &me).unwrap();
        assert!(!libs.join("stale").exists());
    }

    #[test]
    fn a_file_that_is_not_elf_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("script");
        fs::write(
            &script,
            "#!/bin/sh\nexit 0\n-----------------------------------------------------------------",
        )
        .unwrap();
        assert!(prepare(&dir.path().join("libs"), &script).is_err());
    }

    #[test]
    fn the_agent_is_exec_d_through_the_loader_or_directly() {
        let (path, argv) = exec_argv(true);
        assert_eq!(path, "/run/warren-bin/lib/ld.so");
        assert_eq!(
            argv,
            [
                "/run/warren-bin/lib/ld.so",
                "--argv0",
                "warren",
                "--library-path",
                "/run/warren-bin/lib",
                "/run/warren-bin/warren"
            ]
        );
        let (path, argv) = exec_argv(false);
        assert_eq!(path, "/run/warren-bin/warren");
        assert_eq!(argv, ["warren"]);
    }
}
