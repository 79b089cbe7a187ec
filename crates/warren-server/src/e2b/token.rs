//! envd access tokens: HMAC-SHA256 of the sandbox id under a server secret
//! kept in the state directory (`e2b.key`, 0600, made at first start). Every
//! sandbox has one (Warren-created ones too, so `connect` works on them);
//! they survive restarts, differ per sandbox, and are compared in constant
//! time. Nothing is stored per sandbox.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// File name of the secret in the state directory.
pub const FILE_NAME: &str = "e2b.key";

/// The secret tokens are made with; cheap to clone.
#[derive(Clone)]
pub struct TokenKey {
    secret: std::sync::Arc<[u8]>,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

impl TokenKey {
    /// The secret of `state_dir`, made (32 random bytes, hex, mode 0600) if
    /// it is not there yet.
    pub fn load_or_create(state_dir: &Path) -> std::io::Result<TokenKey> {
        let path = state_dir.join(FILE_NAME);
        match std::fs::read_to_string(&path) {
            Ok(text) if !text.trim().is_empty() => {
                return Ok(TokenKey::from_secret(text.trim().as_bytes()))
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let tmp = path.with_extension("key.tmp");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(hex.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        Ok(TokenKey::from_secret(hex.as_bytes()))
    }

    /// A key over `secret` (tests).
    pub fn from_secret(secret: &[u8]) -> TokenKey {
        TokenKey {
            secret: secret.into(),
        }
    }

    /// The envd access token of sandbox `id` (`sbx_…`): 64 hex digits.
    pub fn envd_token(&self, id: &str) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes any key length");
        mac.update(b"envd-access-token:");
        mac.update(id.as_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// HMAC-SHA256 of `message` under the secret, in `domain` (so each use
    /// of the secret signs its own kind of message).
    pub fn sign(&self, domain: &[u8], message: &[u8]) -> [u8; 32] {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes any key length");
        mac.update(domain);
        mac.update(message);
        mac.finalize().into_bytes().into()
    }

    /// Whether `given` is the envd access token of `id`, in constant time.
    pub fn check_envd_token(&self, id: &str, given: &str) -> bool {
        bool::from(self.envd_token(id).as_bytes().ct_eq(given.as_bytes()))
    }
}

/// 32 random bytes, hex: a traffic access token.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_differ_per_sandbox_and_key_and_survive_reload() {
        let dir = tempfile::tempdir().unwrap();
        let key = TokenKey::load_or_create(dir.path()).unwrap();
        let a = key.envd_token("sbx_a");
        assert_eq!(a.len(), 64);
        assert_ne!(a, key.envd_token("sbx_b"));
        let again = TokenKey::load_or_create(dir.path()).unwrap();
        assert_eq!(again.envd_token("sbx_a"), a);
        assert!(again.check_envd_token("sbx_a", &a));
        assert!(!again.check_envd_token("sbx_b", &a));
        assert!(!again.check_envd_token("sbx_a", ""));
        let other = TokenKey::from_secret(b"other");
        assert_ne!(other.envd_token("sbx_a"), a);
    }
}
