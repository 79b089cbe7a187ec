//! Extra CA certificates for sandboxes: the host's own trust additions
//! (a corporate TLS proxy's CA, say), handed to every sandbox and template
//! build without touching their disks.
//!
//! A sandbox trusts its image's store (`/etc/ssl/certs/ca-certificates.crt`).
//! When the server has extra certificates, the sandbox's init writes two
//! files into its run directory (a tmpfs): [`EXTRA_PEM`], the extras alone,
//! and [`BUNDLE_PEM`], the image's store followed by the extras; every
//! process gets [`env`], which points OpenSSL, curl, git, Python's requests
//! and pip at the bundle and Node.js at the extras (`NODE_EXTRA_CA_CERTS`
//! adds to Node's own store). A variable the sandbox's env already sets is
//! left alone.

use std::io::Read;
use std::path::Path;

/// The extras, inside the sandbox.
pub const EXTRA_PEM: &str = "/run/warren/extra-ca.pem";
/// The image's store plus the extras, inside the sandbox.
pub const BUNDLE_PEM: &str = "/run/warren/ca-bundle.pem";
/// The image's store, inside the sandbox.
const IMAGE_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// Debian's directory of local CA certificates (`update-ca-certificates`).
pub const HOST_LOCAL_CA_DIR: &str = "/usr/local/share/ca-certificates";
/// Largest set of extra certificates.
pub const MAX_EXTRA: usize = 1 << 20;
/// Largest image store read.
const MAX_IMAGE_BUNDLE: u64 = 8 << 20;

/// Errors reading extra certificates.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// The file or directory cannot be read.
    #[error("reading {path}: {source}")]
    Read {
        /// What was read.
        path: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// Nothing that looks like a PEM certificate.
    #[error("{0} holds no PEM certificate")]
    NoCertificate(String),
    /// Over [`MAX_EXTRA`].
    #[error("the extra certificates are over {MAX_EXTRA} bytes")]
    TooLarge,
}

/// The environment that points programs at the files (see the module docs).
pub fn env() -> [(&'static str, &'static str); 6] {
    [
        ("SSL_CERT_FILE", BUNDLE_PEM),
        ("CURL_CA_BUNDLE", BUNDLE_PEM),
        ("GIT_SSL_CAINFO", BUNDLE_PEM),
        ("REQUESTS_CA_BUNDLE", BUNDLE_PEM),
        ("PIP_CERT", BUNDLE_PEM),
        ("NODE_EXTRA_CA_CERTS", EXTRA_PEM),
    ]
}

/// The PEM certificates in `path`: a file, or every `*.crt` and `*.pem`
/// file of a directory (and its sub-directories), in name order.
pub fn read_extra(path: &Path) -> Result<String, TrustError> {
    let err = |source| TrustError::Read {
        path: path.display().to_string(),
        source,
    };
    let mut files = Vec::new();
    if path.is_dir() {
        collect(path, &mut files).map_err(err)?;
        files.sort();
    } else {
        files.push(path.to_path_buf());
    }
    let mut pem = String::new();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|source| TrustError::Read {
            path: file.display().to_string(),
            source,
        })?;
        if text.contains("-----BEGIN CERTIFICATE-----") {
            pem.push_str(text.trim_end());
            pem.push('\n');
        }
        if pem.len() > MAX_EXTRA {
            return Err(TrustError::TooLarge);
        }
    }
    if pem.is_empty() {
        return Err(TrustError::NoCertificate(path.display().to_string()));
    }
    Ok(pem)
}

fn collect(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "crt" || e == "pem") {
            out.push(path);
        }
    }
    Ok(())
}

/// The host's extra certificates, when it has any in
/// [`HOST_LOCAL_CA_DIR`] (what `--extra-ca-certs auto` uses).
pub fn host_extra() -> Option<String> {
    let dir = Path::new(HOST_LOCAL_CA_DIR);
    dir.is_dir().then(|| read_extra(dir).ok()).flatten()
}

/// In the sandbox's init, after the root is in place: writes
/// [`EXTRA_PEM`] and [`BUNDLE_PEM`]. Paths resolve inside the sandbox.
pub fn install_in_sandbox(extra: &str) -> std::io::Result<()> {
    let mut bundle = Vec::new();
    if let Ok(file) = std::fs::File::open(IMAGE_BUNDLE) {
        file.take(MAX_IMAGE_BUNDLE).read_to_end(&mut bundle)?;
        if !bundle.ends_with(b"\n") && !bundle.is_empty() {
            bundle.push(b'\n');
        }
    }
    bundle.extend_from_slice(extra.as_bytes());
    std::fs::write(EXTRA_PEM, extra)?;
    std::fs::write(BUNDLE_PEM, bundle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_of_certificates_is_read_in_name_order_and_other_files_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let cert =
            |n: &str| format!("-----BEGIN CERTIFICATE-----\n{n}\n-----END CERTIFICATE-----\n");
        std::fs::write(dir.path().join("b.crt"), cert("B")).unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/a.pem"), cert("A")).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        let pem = read_extra(dir.path()).unwrap();
        assert_eq!(pem, format!("{}{}", cert("B"), cert("A")));
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            read_extra(empty.path()),
            Err(TrustError::NoCertificate(_))
        ));
    }
}
