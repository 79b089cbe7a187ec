//! The admin key: from `WARREN_ADMIN_KEY`, else from `STATE_DIR/admin.key`,
//! else generated at first start and written there (mode 0600).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::keys;

/// Failures reading or writing the admin key.
#[derive(Debug, thiserror::Error)]
pub enum AdminKeyError {
    /// The key file exists but could not be read.
    #[error("reading the admin key {path}: {source}")]
    Read {
        /// The key file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A new key could not be written.
    #[error("writing the admin key {path}: {source}")]
    Write {
        /// The key file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The given or stored key is empty.
    #[error("the admin key from {0} is empty")]
    Empty(String),
}

/// Where the admin key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The environment (`WARREN_ADMIN_KEY`); nothing is written.
    Environment,
    /// An existing key file.
    File(PathBuf),
    /// Generated now and written to this file: show it once.
    Generated(PathBuf),
}

/// The admin key and where it came from.
#[derive(Debug, Clone)]
pub struct AdminKey {
    /// The secret.
    pub key: String,
    /// Its origin.
    pub source: Source,
}

/// File name of the admin key in the state directory.
pub const FILE_NAME: &str = "admin.key";

/// Resolves the admin key: `from_env` wins, then the key file, else a new key
/// is generated and written with mode 0600 (never replacing an existing file).
pub fn resolve(from_env: Option<&str>, state_dir: &Path) -> Result<AdminKey, AdminKeyError> {
    if let Some(key) = from_env {
        let key = key.trim();
        if key.is_empty() {
            return Err(AdminKeyError::Empty("WARREN_ADMIN_KEY".into()));
        }
        return Ok(AdminKey {
            key: key.to_string(),
            source: Source::Environment,
        });
    }
    let path = state_dir.join(FILE_NAME);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let key = text.trim();
            if key.is_empty() {
                return Err(AdminKeyError::Empty(path.display().to_string()));
            }
            return Ok(AdminKey {
                key: key.to_string(),
                source: Source::File(path),
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(AdminKeyError::Read { path, source }),
    }
    let key = keys::generate(keys::ADMIN_KEY_PREFIX);
    let write_err = |source| AdminKeyError::Write {
        path: path.clone(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(write_err)?;
    file.write_all(format!("{key}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(write_err)?;
    Ok(AdminKey {
        key,
        source: Source::Generated(path),
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn generates_once_then_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let first = resolve(None, dir.path()).unwrap();
        assert!(matches!(first.source, Source::Generated(_)));
        let mode = std::fs::metadata(dir.path().join(FILE_NAME))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let second = resolve(None, dir.path()).unwrap();
        assert_eq!(second.key, first.key);
        assert!(matches!(second.source, Source::File(_)));
        let env = resolve(Some("from-env"), dir.path()).unwrap();
        assert_eq!(env.key, "from-env");
        assert!(resolve(Some("  "), dir.path()).is_err());
    }
}
