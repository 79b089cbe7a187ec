//! The web console's files, embedded at build time from `ui/dist` (see
//! `build.rs`; a placeholder page when the console was not built).
//! `warren-server` serves them at `/ui`.

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// Path under `ui/dist`, with `/` separators (`index.html`, `assets/app-3F2A.js`).
    pub path: &'static str,
    /// The `Content-Type` to serve it with.
    pub content_type: &'static str,
    /// A strong ETag of its bytes, quoted.
    pub etag: &'static str,
    /// Whether its name carries a hash of its content (cacheable forever).
    pub hashed: bool,
    /// Its content.
    pub bytes: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// The file at `path` (relative, no leading `/`), if embedded.
pub fn get(path: &str) -> Option<&'static Asset> {
    ASSETS
        .binary_search_by(|asset| asset.path.cmp(path))
        .ok()
        .map(|i| &ASSETS[i])
}

/// The single page every client-side route falls back to.
pub fn index() -> &'static Asset {
    get("index.html").expect("build.rs always embeds an index.html")
}

/// Whether the real console is embedded (not the placeholder page).
pub fn is_built() -> bool {
    ASSETS.len() > 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_are_sorted_and_index_exists() {
        assert!(ASSETS.windows(2).all(|w| w[0].path < w[1].path));
        assert_eq!(index().content_type, "text/html; charset=utf-8");
        assert!(get("no/such/file").is_none());
    }
}
