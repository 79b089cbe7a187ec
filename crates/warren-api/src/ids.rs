//! Prefixed identifiers.
//!
//! Every id is a prefix naming its kind (`sbx_`, `ckpt_`, `proc_`, `tpl_`,
//! `key_`, `ten_`, `ses_`, ...) followed by 20 lowercase base32 characters (100 random
//! bits). Lowercase keeps ids valid inside DNS labels (preview URLs).

use rand::Rng;

/// Alphabet of the random part: lowercase RFC 4648 base32 without padding.
const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// Length of the random part of an id.
pub const RANDOM_LEN: usize = 20;

/// Kinds of ids, each with its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    /// A sandbox: `sbx_`.
    Sandbox,
    /// A checkpoint: `ckpt_`.
    Checkpoint,
    /// A managed process inside a sandbox: `proc_`.
    Process,
    /// A template: `tpl_`.
    Template,
    /// An API key: `key_`.
    Key,
    /// A tenant: `ten_`.
    Tenant,
    /// A preview URL: `prv_`.
    Preview,
    /// A checkpoint patch: `pat_`.
    Patch,
    /// A coding-agent session inside a sandbox: `ses_`.
    Session,
    /// A permission request of a session: `perm_`.
    Permission,
    /// A question of a session: `q_`.
    Question,
    /// A desktop recording: `rec_`.
    Recording,
}

impl IdKind {
    /// The prefix, underscore included.
    pub fn prefix(self) -> &'static str {
        match self {
            IdKind::Sandbox => "sbx_",
            IdKind::Checkpoint => "ckpt_",
            IdKind::Process => "proc_",
            IdKind::Template => "tpl_",
            IdKind::Key => "key_",
            IdKind::Tenant => "ten_",
            IdKind::Preview => "prv_",
            IdKind::Patch => "pat_",
            IdKind::Session => "ses_",
            IdKind::Permission => "perm_",
            IdKind::Question => "q_",
            IdKind::Recording => "rec_",
        }
    }
}

/// A new random id of the given kind.
pub fn new_id(kind: IdKind) -> String {
    let mut rng = rand::thread_rng();
    let mut s = String::with_capacity(kind.prefix().len() + RANDOM_LEN);
    s.push_str(kind.prefix());
    for _ in 0..RANDOM_LEN {
        s.push(ALPHABET[rng.gen_range(0..32)] as char);
    }
    s
}

/// Whether `id` is well formed for `kind` (right prefix, right alphabet and length).
/// Handlers use it to answer 404 early without touching storage.
pub fn is_valid(kind: IdKind, id: &str) -> bool {
    match id.strip_prefix(kind.prefix()) {
        Some(rest) => rest.len() == RANDOM_LEN && rest.bytes().all(|b| ALPHABET.contains(&b)),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_prefix_and_validate() {
        let id = new_id(IdKind::Sandbox);
        assert!(id.starts_with("sbx_"));
        assert!(is_valid(IdKind::Sandbox, &id));
        assert!(!is_valid(IdKind::Process, &id));
        assert!(!is_valid(IdKind::Sandbox, "sbx_../../etc"));
        assert_ne!(new_id(IdKind::Sandbox), id);
    }
}
