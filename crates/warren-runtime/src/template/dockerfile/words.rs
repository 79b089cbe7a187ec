//! Docker's word processing of instruction arguments: quotes, escapes and
//! variable substitution.

use std::collections::BTreeMap;

/// Whether `name` is a variable name.
pub(super) fn is_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Words of `raw`, quotes removed, without substitution (for `ARG`, whose
/// defaults are substituted one by one).
pub(super) fn split_words_raw(raw: &str) -> Result<Vec<String>, String> {
    Lexer::new(raw, None).words()
}

/// Words of `raw` with quotes removed and variables substituted.
pub(super) fn split_words(
    raw: &str,
    vars: &BTreeMap<String, String>,
) -> Result<Vec<String>, String> {
    Lexer::new(raw, Some(vars)).words()
}

/// `raw` as one word (whitespace kept), quotes removed, variables
/// substituted.
pub(super) fn expand_one(raw: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    Lexer::new(raw.trim(), Some(vars)).word()
}

/// Docker's word processing: `'…'` literal, `"…"` with substitution, `\`
/// escaping the next character, `$V`, `${V}`, `${V:-x}`, `${V-x}`,
/// `${V:+x}`, `${V+x}`.
struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    vars: Option<&'a BTreeMap<String, String>>,
}

impl<'a> Lexer<'a> {
    fn new(text: &'a str, vars: Option<&'a BTreeMap<String, String>>) -> Self {
        Lexer {
            chars: text.chars().peekable(),
            vars,
        }
    }

    fn words(mut self) -> Result<Vec<String>, String> {
        let mut words = Vec::new();
        loop {
            while self.chars.peek().is_some_and(|c| c.is_whitespace()) {
                self.chars.next();
            }
            if self.chars.peek().is_none() {
                return Ok(words);
            }
            words.push(self.until(|c| c.is_whitespace())?);
        }
    }

    fn word(mut self) -> Result<String, String> {
        self.until(|_| false)
    }

    /// Reads up to an unquoted character for which `stop` holds.
    fn until(&mut self, stop: impl Fn(char) -> bool) -> Result<String, String> {
        let mut out = String::new();
        while let Some(&c) = self.chars.peek() {
            if stop(c) {
                break;
            }
            self.chars.next();
            match c {
                '\\' => {
                    if let Some(next) = self.chars.next() {
                        out.push(next);
                    }
                }
                '\'' => loop {
                    match self.chars.next() {
                        Some('\'') => break,
                        Some(ch) => out.push(ch),
                        None => return Err("an unterminated ' quote".into()),
                    }
                },
                '"' => loop {
                    match self.chars.next() {
                        Some('"') => break,
                        Some('\\') => match self.chars.next() {
                            Some(ch @ ('"' | '\\' | '$')) => out.push(ch),
                            Some(ch) => {
                                out.push('\\');
                                out.push(ch);
                            }
                            None => return Err("an unterminated \" quote".into()),
                        },
                        Some('$') => out.push_str(&self.dollar()?),
                        Some(ch) => out.push(ch),
                        None => return Err("an unterminated \" quote".into()),
                    }
                },
                '$' => out.push_str(&self.dollar()?),
                c => out.push(c),
            }
        }
        Ok(out)
    }

    /// After a `$`: the substitution (or `$` itself when none follows).
    fn dollar(&mut self) -> Result<String, String> {
        let Some(vars) = self.vars else {
            return Ok("$".to_string() + &self.raw_dollar());
        };
        match self.chars.peek() {
            Some('{') => {
                self.chars.next();
                let mut name = String::new();
                while let Some(&c) = self.chars.peek() {
                    if c.is_ascii_alphanumeric() || c == '_' {
                        name.push(c);
                        self.chars.next();
                    } else {
                        break;
                    }
                }
                if !is_name(&name) {
                    return Err(format!("${{{name}…}} is not a variable"));
                }
                let value = vars.get(&name);
                let unsupported =
                    || format!("${{{name}…}}: only ${{V}}, ${{V:-x}} and ${{V:+x}} are supported");
                match self.chars.next() {
                    Some('}') => Ok(value.cloned().unwrap_or_default()),
                    Some(first @ (':' | '-' | '+')) => {
                        let (colon, op) = if first == ':' {
                            match self.chars.next() {
                                Some(op @ ('-' | '+')) => (true, op),
                                _ => return Err(unsupported()),
                            }
                        } else {
                            (false, first)
                        };
                        let word = self.braced_word()?;
                        // With `:`, an empty value counts as unset.
                        let set = value.is_some_and(|v| !colon || !v.is_empty());
                        Ok(match (op, set) {
                            ('-', true) => value.cloned().unwrap_or_default(),
                            ('-', false) => word,
                            (_, true) => word,
                            (_, false) => String::new(),
                        })
                    }
                    _ => Err(unsupported()),
                }
            }
            Some(&c) if c.is_ascii_alphabetic() || c == '_' => {
                let mut name = String::new();
                while let Some(&c) = self.chars.peek() {
                    if c.is_ascii_alphanumeric() || c == '_' {
                        name.push(c);
                        self.chars.next();
                    } else {
                        break;
                    }
                }
                Ok(vars.get(&name).cloned().unwrap_or_default())
            }
            _ => Ok("$".to_string()),
        }
    }

    /// Without substitution: the `{…}` after a `$`, kept as written.
    fn raw_dollar(&mut self) -> String {
        let mut out = String::new();
        if self.chars.peek() == Some(&'{') {
            for c in self.chars.by_ref() {
                out.push(c);
                if c == '}' {
                    break;
                }
            }
        }
        out
    }

    /// The word of `${V:-word}` up to its `}` (substituted, quotes kept
    /// literal inside, as in Docker).
    fn braced_word(&mut self) -> Result<String, String> {
        let mut out = String::new();
        loop {
            match self.chars.next() {
                Some('}') => return Ok(out),
                Some('$') => out.push_str(&self.dollar()?),
                Some('\\') => {
                    if let Some(c) = self.chars.next() {
                        out.push(c);
                    }
                }
                Some(c) => out.push(c),
                None => return Err("an unterminated ${".into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitution_follows_docker() {
        let vars = BTreeMap::from([
            ("A".to_string(), "x".to_string()),
            ("E".to_string(), String::new()),
        ]);
        let one = |s: &str| expand_one(s, &vars).unwrap();
        assert_eq!(one("$A/${A}"), "x/x");
        assert_eq!(
            one("${E:-d} ${E-d} ${U:-d} ${A:+set} ${U:+set}"),
            "d  d set "
        );
        assert_eq!(one(r"\$A '$A' "), "$A $A");
        assert_eq!(one("\"$A b\""), "x b");
        assert!(expand_one("${A#x}", &vars).is_err());
        assert!(expand_one("'open", &vars).is_err());
    }
}
