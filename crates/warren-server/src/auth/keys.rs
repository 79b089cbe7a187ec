//! Secret keys: generation and hashing.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Prefix of tenant API keys.
pub const TENANT_KEY_PREFIX: &str = "wsk_";

/// Prefix of generated admin keys.
pub const ADMIN_KEY_PREFIX: &str = "wadm_";

/// How many leading characters of a key are kept to tell keys apart.
pub const DISPLAY_PREFIX_LEN: usize = 10;

/// A new key: `prefix` followed by 256 random bits in unpadded base64url.
pub fn generate(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// Prefix of tenant keys in E2B's form.
pub const E2B_KEY_PREFIX: &str = "e2b_";

/// A new key in E2B's form: `e2b_` followed by 256 random bits as 64
/// lowercase hex digits (E2B's SDKs check for `e2b_` and hex).
pub fn generate_e2b() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{E2B_KEY_PREFIX}{hex}")
}

/// SHA-256 of a key, as stored and looked up.
pub fn hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// The part of a key that may be shown in lists.
pub fn display_prefix(key: &str) -> String {
    key.chars().take(DISPLAY_PREFIX_LEN).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_long_distinct_and_hash_stably() {
        let a = generate(TENANT_KEY_PREFIX);
        let b = generate(TENANT_KEY_PREFIX);
        assert_ne!(a, b);
        assert!(a.starts_with(TENANT_KEY_PREFIX));
        assert_eq!(a.len(), TENANT_KEY_PREFIX.len() + 43);
        assert_eq!(hash(&a), hash(&a));
        assert_ne!(hash(&a), hash(&b));
        assert_eq!(display_prefix(&a).len(), DISPLAY_PREFIX_LEN);
        let e = generate_e2b();
        assert_eq!(e.len(), 4 + 64);
        assert!(
            e.starts_with("e2b_")
                && e[4..]
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_ne!(e, generate_e2b());
    }
}
