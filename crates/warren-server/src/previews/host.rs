//! Preview hosts: `{port}-{sandbox id without sbx_}.{domain}`.

use warren_api::ids::{self, IdKind};

/// The first label of a preview's host.
pub fn label(sandbox_id: &str, port: u16) -> String {
    let bare = sandbox_id
        .strip_prefix(IdKind::Sandbox.prefix())
        .unwrap_or(sandbox_id);
    format!("{port}-{bare}")
}

/// A preview host taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewHost {
    /// The sandbox (`sbx_…`).
    pub sandbox_id: String,
    /// The port.
    pub port: u16,
    /// Everything after the first label, lower case.
    pub domain: String,
}

/// Parses the `Host` header value of a request (port and a trailing dot
/// ignored, case-insensitive); `None` unless it is a preview host.
pub fn parse(host: &str) -> Option<PreviewHost> {
    let host = host.trim();
    // `[v6]:port` is never a preview host; strip `:port` from names.
    if host.starts_with('[') {
        return None;
    }
    let name = host.rsplit_once(':').map_or(host, |(name, _)| name);
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let (first, domain) = name.split_once('.')?;
    let (port, bare) = first.split_once('-')?;
    if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
    let sandbox_id = format!("{}{bare}", IdKind::Sandbox.prefix());
    if !ids::is_valid(IdKind::Sandbox, &sandbox_id) || domain.is_empty() {
        return None;
    }
    Some(PreviewHost {
        sandbox_id,
        port,
        domain: domain.to_string(),
    })
}

/// A domain for preview URLs in canonical form (lower case, no trailing
/// dot), if it is a valid DNS name.
pub fn normalize_domain(domain: &str) -> Option<String> {
    let d = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    let ok = !d.is_empty()
        && d.len() <= 200
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    ok.then_some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_round_trip() {
        let id = ids::new_id(IdKind::Sandbox);
        let l = label(&id, 8000);
        assert!(l.starts_with("8000-") && !l.contains('_'), "{l}");
        let host = format!("{l}.localhost:7070");
        assert_eq!(
            parse(&host),
            Some(PreviewHost {
                sandbox_id: id.clone(),
                port: 8000,
                domain: "localhost".into()
            })
        );
        let upper = format!("{}.Preview.Example.COM.", l.to_ascii_uppercase());
        assert_eq!(parse(&upper).unwrap().domain, "preview.example.com");
        for not_preview in [
            "localhost:7070",
            "127.0.0.1:7070",
            "[::1]:7070",
            "8000-short.localhost",
            &format!("0-{}.localhost", &id[4..]),
            &format!("99999-{}.localhost", &id[4..]),
            &l,
            &format!("x{l}.localhost"),
        ] {
            assert_eq!(parse(not_preview), None, "{not_preview}");
        }
    }

    #[test]
    fn domains_are_checked() {
        assert_eq!(
            normalize_domain("Apps.Example.com."),
            Some("apps.example.com".into())
        );
        assert_eq!(normalize_domain("localhost"), Some("localhost".into()));
        for bad in ["", "a..b", "-a.com", "a_b.com", "a b"] {
            assert_eq!(normalize_domain(bad), None, "{bad}");
        }
    }
}
