//! The build context of `warren template build -f Dockerfile`: a directory
//! packed as an uncompressed tar archive, without what its `.dockerignore`
//! excludes. Symlinks are packed as symlinks, never followed.
//!
//! `.dockerignore` lines are patterns relative to the context (`#`
//! comments, a leading `/` ignored, `*` and `?` within a component, `**`
//! for any number of components, `!` to take an exclusion back); the last
//! pattern that matches a path decides, and a pattern that matches a
//! directory excludes what is in it.

use std::fs;
use std::io;
use std::path::Path;

/// Packs `dir` into `out` (a tar archive), leaving out what `.dockerignore`
/// excludes except `keep` (the Dockerfile, which the build must read).
pub fn pack(dir: &Path, out: fs::File, keep: &str) -> io::Result<()> {
    let patterns = match fs::read_to_string(dir.join(".dockerignore")) {
        Ok(text) => parse_ignore(&text),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    let mut tar = tar::Builder::new(io::BufWriter::new(out));
    tar.follow_symlinks(false);
    walk(dir, "", &patterns, keep, &mut tar)?;
    tar.into_inner()?.into_inner().map_err(|e| e.into_error())?;
    Ok(())
}

fn walk(
    dir: &Path,
    rel: &str,
    patterns: &[(bool, Vec<String>)],
    keep: &str,
    tar: &mut tar::Builder<io::BufWriter<fs::File>>,
) -> io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir.join(rel))?.collect::<io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let child = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let is_dir = entry.file_type()?.is_dir();
        // An excluded directory may hold a file taken back by `!`.
        if ignored(patterns, &child) && child != keep && !(is_dir && has_negation(patterns)) {
            continue;
        }
        if !ignored(patterns, &child) || child == keep {
            tar.append_path_with_name(entry.path(), &child)?;
        }
        if is_dir {
            walk(dir, &child, patterns, keep, tar)?;
        }
    }
    Ok(())
}

fn has_negation(patterns: &[(bool, Vec<String>)]) -> bool {
    patterns.iter().any(|(exclude, _)| !exclude)
}

/// The patterns of a `.dockerignore`: (excludes, components).
fn parse_ignore(text: &str) -> Vec<(bool, Vec<String>)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (exclude, p) = match l.strip_prefix('!') {
                Some(rest) => (false, rest.trim()),
                None => (true, l),
            };
            let parts = p
                .split('/')
                .filter(|c| !c.is_empty() && *c != ".")
                .map(str::to_string)
                .collect();
            (exclude, parts)
        })
        .filter(|(_, parts): &(bool, Vec<String>)| !parts.is_empty())
        .collect()
}

/// Whether `rel` is excluded: the last pattern matching it or one of its
/// parent directories decides.
fn ignored(patterns: &[(bool, Vec<String>)], rel: &str) -> bool {
    let path: Vec<&str> = rel.split('/').collect();
    let mut out = false;
    for (exclude, pattern) in patterns {
        if (1..=path.len()).any(|n| matches(pattern, &path[..n])) {
            out = *exclude;
        }
    }
    out
}

fn matches(pattern: &[String], path: &[&str]) -> bool {
    match pattern.first() {
        None => path.is_empty(),
        Some(p) if p == "**" => (0..=path.len()).any(|skip| matches(&pattern[1..], &path[skip..])),
        Some(p) => !path.is_empty() && component(p, path[0]) && matches(&pattern[1..], &path[1..]),
    }
}

fn component(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some('*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some('?'), Some(_)) => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerignore_patterns() {
        let p = parse_ignore("# c\nnode_modules\n*.log\n/build/\n**/__pycache__\n!keep.log\n");
        assert!(ignored(&p, "node_modules"));
        assert!(ignored(&p, "node_modules/x/y.js"));
        assert!(ignored(&p, "debug.log"));
        assert!(!ignored(&p, "keep.log"));
        assert!(!ignored(&p, "src/debug.log"), "* stays in one component");
        assert!(ignored(&p, "build/out"));
        assert!(ignored(&p, "a/b/__pycache__/m.pyc"));
        assert!(!ignored(&p, "src/main.py"));
    }

    #[test]
    fn packs_without_ignored_files_and_keeps_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(".dockerignore"), "secret\nDockerfile\n").unwrap();
        fs::write(dir.path().join("Dockerfile"), "FROM base\n").unwrap();
        fs::write(dir.path().join("secret"), "x").unwrap();
        fs::create_dir(dir.path().join("src")).unwrap();
        fs::write(dir.path().join("src/app.py"), "print()").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link")).unwrap();
        let out = tempfile::NamedTempFile::new().unwrap();
        pack(dir.path(), out.reopen().unwrap(), "Dockerfile").unwrap();
        let mut archive = tar::Archive::new(fs::File::open(out.path()).unwrap());
        let mut names = Vec::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let kind = entry.header().entry_type();
            names.push((entry.path().unwrap().display().to_string(), kind));
        }
        let just: Vec<&str> = names.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            just,
            [".dockerignore", "Dockerfile", "link", "src", "src/app.py"]
        );
        assert_eq!(names[2].1, tar::EntryType::Symlink);
    }
}
