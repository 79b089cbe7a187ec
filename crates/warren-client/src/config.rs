//! Where a client finds its server: explicit arguments, then `WARREN_URL`
//! and `WARREN_API_KEY`, then `~/.config/warren/config.toml`
//! (`$XDG_CONFIG_HOME/warren/config.toml` when that is set), then
//! [`DEFAULT_URL`], the address `warren server` listens on by default (as
//! in the TypeScript and Python SDKs).

use std::path::PathBuf;

use serde::Deserialize;

use crate::error::{Error, Result};

/// The server URL when nothing else names one.
pub const DEFAULT_URL: &str = "http://127.0.0.1:7070";

/// The keys of `config.toml`.
#[derive(Debug, Default, Deserialize)]
struct FileConfig {
    url: Option<String>,
    api_key: Option<String>,
}

/// The path of the config file (whether or not it exists).
pub fn config_path() -> PathBuf {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from(".config"));
    base.join("warren").join("config.toml")
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The server URL and API key from the environment, falling back to the
/// config file for whichever is missing, and to [`DEFAULT_URL`]. The key
/// may be absent (a server without auth).
pub fn resolve() -> Result<(String, Option<String>)> {
    let (mut url, mut key) = (env("WARREN_URL"), env("WARREN_API_KEY"));
    if url.is_none() || key.is_none() {
        let path = config_path();
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let file: FileConfig = toml::from_str(&text).map_err(|e| Error::ConfigFile {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?;
                url = url.or(file.url);
                key = key.or(file.api_key);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::ConfigFile {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })
            }
        }
    }
    Ok((url.unwrap_or_else(|| DEFAULT_URL.to_string()), key))
}
