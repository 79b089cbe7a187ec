//! Finding the host's Debian mirror in its apt sources.
//!
//! Reads `sources.list` and `sources.list.d/*.list` (one-line format) and
//! `sources.list.d/*.sources` (deb822), skipping `deb-src`, disabled entries
//! and non-network/file URIs. The Debian mirror is the first `deb` source
//! listing the wanted suite, else the first whose URI ends in `/debian`; the
//! security mirror is the one listing `<suite>-security`.

use std::fs;
use std::path::Path;

/// The mirrors a Debian rootfs is built from and pointed at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirrors {
    /// Main archive, e.g. `http://deb.debian.org/debian`.
    pub debian: String,
    /// Security archive, if the host has one configured.
    pub security: Option<String>,
}

#[derive(Debug, PartialEq)]
struct Source {
    uri: String,
    suites: Vec<String>,
}

/// The mirrors for `suite` configured under `apt_dir` (normally `/etc/apt`).
pub fn detect_mirrors(apt_dir: &Path, suite: &str) -> Option<Mirrors> {
    let sources = read_sources(apt_dir);
    let debian = sources
        .iter()
        .find(|s| s.suites.iter().any(|x| x == suite))
        .or_else(|| {
            sources
                .iter()
                .find(|s| s.uri.trim_end_matches('/').ends_with("/debian"))
        })?
        .uri
        .clone();
    let security_suite = format!("{suite}-security");
    let security = sources
        .iter()
        .find(|s| s.suites.contains(&security_suite))
        .map(|s| s.uri.clone());
    Some(Mirrors { debian, security })
}

fn read_sources(apt_dir: &Path) -> Vec<Source> {
    let mut out = Vec::new();
    if let Ok(text) = fs::read_to_string(apt_dir.join("sources.list")) {
        out.extend(parse_one_line(&text));
    }
    let mut files: Vec<_> = fs::read_dir(apt_dir.join("sources.list.d"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    for file in files {
        let Ok(text) = fs::read_to_string(&file) else {
            continue;
        };
        match file.extension().and_then(|e| e.to_str()) {
            Some("list") => out.extend(parse_one_line(&text)),
            Some("sources") => out.extend(parse_deb822(&text)),
            _ => {}
        }
    }
    out.retain(|s| {
        ["http://", "https://", "ftp://", "file:/"]
            .iter()
            .any(|p| s.uri.starts_with(p))
    });
    out
}

/// `deb [opts] uri suite [component...]` lines.
fn parse_one_line(text: &str) -> Vec<Source> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let Some(rest) = line
            .strip_prefix("deb ")
            .or_else(|| line.strip_prefix("deb\t"))
        else {
            continue;
        };
        let mut rest = rest.trim_start();
        if rest.starts_with('[') {
            match rest.find(']') {
                Some(end) => rest = rest[end + 1..].trim_start(),
                None => continue,
            }
        }
        let mut words = rest.split_whitespace();
        let (Some(uri), Some(suite)) = (words.next(), words.next()) else {
            continue;
        };
        out.push(Source {
            uri: uri.to_string(),
            suites: vec![suite.to_string()],
        });
    }
    out
}

/// deb822 stanzas: `Types:`, `URIs:`, `Suites:`, `Enabled:`.
fn parse_deb822(text: &str) -> Vec<Source> {
    let mut out = Vec::new();
    for stanza in text.split("\n\n") {
        let mut fields: Vec<(String, String)> = Vec::new();
        for line in stanza.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            if line.starts_with([' ', '\t']) {
                if let Some((_, value)) = fields.last_mut() {
                    value.push(' ');
                    value.push_str(line.trim());
                }
                continue;
            }
            if let Some((key, value)) = line.split_once(':') {
                fields.push((key.trim().to_ascii_lowercase(), value.trim().to_string()));
            }
        }
        let field = |k: &str| {
            fields
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        let is_deb = field("types").is_some_and(|t| t.split_whitespace().any(|x| x == "deb"));
        let enabled = field("enabled").is_none_or(|e| !e.eq_ignore_ascii_case("no"));
        if !is_deb || !enabled {
            continue;
        }
        let suites: Vec<String> = field("suites")
            .unwrap_or("")
            .split_whitespace()
            .map(str::to_string)
            .collect();
        for uri in field("uris").unwrap_or("").split_whitespace() {
            out.push(Source {
                uri: uri.to_string(),
                suites: suites.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deb822_with_security_and_foreign_repos() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("sources.list.d")).unwrap();
        fs::write(
            dir.path().join("sources.list.d/debian.sources"),
            "Types: deb\n# comment\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\n\
             Types: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\nComponents: main\n",
        )
        .unwrap();
        fs::write(
            dir.path().join("sources.list.d/node.sources"),
            "Types: deb\nURIs: https://deb.nodesource.com/node_20.x\nSuites: nodistro\n",
        )
        .unwrap();
        fs::write(
            dir.path().join("sources.list.d/gcloud.list.disabled"),
            "deb http://ignored.example/debian bookworm main\n",
        )
        .unwrap();
        let m = detect_mirrors(dir.path(), "bookworm").unwrap();
        assert_eq!(m.debian, "http://mirror.example/debian");
        assert_eq!(
            m.security.as_deref(),
            Some("http://security.example/debian-security")
        );
    }

    #[test]
    fn one_line_format_with_options() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("sources.list"),
            "# deb http://commented.example/debian bookworm main\n\
             deb-src http://src.example/debian bookworm main\n\
             deb [arch=amd64 signed-by=/k.gpg] http://ftp.example/debian/ trixie main\n",
        )
        .unwrap();
        let m = detect_mirrors(dir.path(), "bookworm").unwrap();
        assert_eq!(
            m.debian, "http://ftp.example/debian/",
            "falls back to a /debian URI"
        );
        assert_eq!(m.security, None);
        assert!(detect_mirrors(&dir.path().join("missing"), "bookworm").is_none());
    }

    #[test]
    fn disabled_stanzas_are_skipped() {
        let parsed = parse_deb822(
            "Types: deb\nURIs: http://a.example/debian\nSuites: bookworm\nEnabled: no\n\n\
             Types: deb deb-src\nURIs: http://b.example/debian\n  http://c.example/debian\nSuites: bookworm\n",
        );
        let uris: Vec<_> = parsed.iter().map(|s| s.uri.as_str()).collect();
        assert_eq!(uris, ["http://b.example/debian", "http://c.example/debian"]);
    }
}
