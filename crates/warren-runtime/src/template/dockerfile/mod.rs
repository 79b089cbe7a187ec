//! Dockerfiles, the common subset: parsed into instructions that keep
//! their line numbers ([`parse`]), then evaluated against build arguments
//! and the parent template's environment ([`Dockerfile::evaluate`]) into
//! the steps a build runs (`super::dockerbuild` turns them into cached
//! layers).
//!
//! Supported: `FROM` (one stage), `RUN`, `CMD` and `ENTRYPOINT` (shell and
//! exec forms), `ENV` and `LABEL` (`k=v` forms and the legacy `ENV k v`),
//! `ARG` (defaults, build arguments, `ARG`s before `FROM` for `FROM`),
//! `WORKDIR`, `USER`, `COPY`/`ADD` (`--chown`, `--chmod`, `--link`),
//! `EXPOSE` and `MAINTAINER` (accepted, ignored), comments, line
//! continuations and the `syntax`/`escape`/`check` parser directives.
//! Variables are substituted as Docker does (`$V`, `${V}`, `${V:-x}`,
//! `${V:+x}`) in every instruction but `RUN`, `CMD` and `ENTRYPOINT`, whose
//! shell does it. Anything else is an error naming its line.

mod eval;
mod words;

pub use eval::{Action, EvalStep, Evaluated, Parent};

/// What is wrong with a Dockerfile; every error but a missing `FROM`
/// names the line its instruction starts on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DockerfileError {
    /// An instruction (or a form of one) Warren does not build.
    #[error("line {line}: {instruction} is not supported: {why}")]
    Unsupported {
        /// Line of the instruction.
        line: usize,
        /// The instruction, e.g. `VOLUME` or `COPY --from`.
        instruction: String,
        /// Why, and what to do instead.
        why: String,
    },
    /// A word that is no Dockerfile instruction.
    #[error("line {line}: unknown instruction {instruction:?}")]
    Unknown {
        /// Line of the instruction.
        line: usize,
        /// The word.
        instruction: String,
    },
    /// A malformed instruction.
    #[error("line {line}: {instruction}: {reason}")]
    Invalid {
        /// Line of the instruction.
        line: usize,
        /// The instruction.
        instruction: String,
        /// What is wrong.
        reason: String,
    },
    /// No `FROM` at all.
    #[error("no FROM instruction: a Dockerfile starts FROM a template")]
    NoFrom,
}

/// A command in shell form (`RUN make`) or exec form (`RUN ["make"]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Form {
    /// Run by `/bin/sh -c`.
    Shell(String),
    /// Exec'd directly.
    Exec(Vec<String>),
}

/// One instruction, as written (variables not yet substituted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `FROM image`.
    From(String),
    /// `RUN`.
    Run(Form),
    /// `CMD`.
    Cmd(Form),
    /// `ENTRYPOINT`.
    Entrypoint(Form),
    /// `ENV` (its arguments).
    Env(String),
    /// `ARG` (its arguments).
    Arg(String),
    /// `WORKDIR` (its argument).
    Workdir(String),
    /// `USER` (its argument).
    User(String),
    /// `COPY` or `ADD`.
    Copy {
        /// `ADD` rather than `COPY`.
        add: bool,
        /// `--chown` (unsubstituted).
        chown: Option<String>,
        /// `--chmod`, octal.
        chmod: Option<u32>,
        /// Sources then destination: exec (JSON) form, or the raw rest.
        args: Form,
    },
    /// `LABEL`, `EXPOSE`, `MAINTAINER`: accepted, without effect.
    Ignored,
}

/// An instruction and the line it starts on (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// Line number.
    pub line: usize,
    /// The instruction.
    pub kind: Kind,
}

/// A parsed Dockerfile: `ARG`s before `FROM`, `FROM`, the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// `ARG` instructions before `FROM` (in scope for `FROM` only).
    pub global_args: Vec<Instruction>,
    /// Line of `FROM` and its image, as written.
    pub from: (usize, String),
    /// Every instruction after `FROM`.
    pub instructions: Vec<Instruction>,
}

/// Parses Dockerfile text.
pub fn parse(text: &str) -> Result<Dockerfile, DockerfileError> {
    let mut global_args = Vec::new();
    let mut from = None;
    let mut instructions = Vec::new();
    for (line, keyword, args) in logical_lines(text)? {
        let upper = keyword.to_ascii_uppercase();
        let kind = instruction(line, &upper, args.trim())?;
        match (kind, &from) {
            (Kind::From(image), None) => from = Some((line, image)),
            (Kind::From(_), Some(_)) => {
                return Err(DockerfileError::Unsupported {
                    line,
                    instruction: "a second FROM".into(),
                    why: "multi-stage builds are not supported: build the first stage as a \
                          template of its own and start FROM it"
                        .into(),
                })
            }
            (kind @ Kind::Arg(_), None) => global_args.push(Instruction { line, kind }),
            (_, None) => {
                return Err(DockerfileError::Invalid {
                    line,
                    instruction: upper,
                    reason: "only ARG may come before FROM".into(),
                })
            }
            (kind, Some(_)) => instructions.push(Instruction { line, kind }),
        }
    }
    let from = from.ok_or(DockerfileError::NoFrom)?;
    Ok(Dockerfile {
        global_args,
        from,
        instructions,
    })
}

/// The instructions of `text` as (first line, keyword, arguments):
/// directives read, comments dropped, continuations joined.
fn logical_lines(text: &str) -> Result<Vec<(usize, String, String)>, DockerfileError> {
    let mut escape = '\\';
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    let mut directives = true;
    for (i, raw) in text.lines().enumerate() {
        let number = i + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let trimmed = line.trim();
        if directives {
            if let Some((key, value)) = directive(trimmed) {
                // `syntax` names a BuildKit frontend and `check` configures
                // its linter: neither changes what this builder does.
                if key == "escape" {
                    escape = match value {
                        "\\" => '\\',
                        "`" => '`',
                        other => {
                            return Err(DockerfileError::Invalid {
                                line: number,
                                instruction: "# escape".into(),
                                reason: format!("{other:?} is not \\ or `"),
                            })
                        }
                    };
                }
                continue;
            }
            directives = false;
        }
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let body = line.trim_end();
        let (body, continues) = match body.strip_suffix(escape) {
            Some(rest) => (rest, true),
            None => (body, false),
        };
        let (start, mut joined) = pending.take().unwrap_or((number, String::new()));
        joined.push_str(body);
        if continues {
            pending = Some((start, joined));
        } else {
            out.push((start, joined));
        }
    }
    out.extend(pending);
    Ok(out
        .into_iter()
        .map(|(line, joined)| {
            let joined = joined.trim_start();
            let (keyword, args) = joined
                .split_once(char::is_whitespace)
                .unwrap_or((joined, ""));
            (line, keyword.to_string(), args.to_string())
        })
        .collect())
}

/// A parser directive line (`# key=value`).
fn directive(line: &str) -> Option<(String, &str)> {
    let rest = line.strip_prefix('#')?.trim_start();
    let (key, value) = rest.split_once('=')?;
    let key = key.trim();
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    Some((key.to_ascii_lowercase(), value.trim()))
}

/// A command's form: exec when the arguments are a JSON array of strings.
fn form(args: &str) -> Form {
    if args.starts_with('[') {
        if let Ok(argv) = serde_json::from_str::<Vec<String>>(args) {
            return Form::Exec(argv);
        }
    }
    Form::Shell(args.to_string())
}

/// Whether `args` holds a heredoc (`<<EOF`, `<<-"EOF"`).
fn has_heredoc(args: &str) -> bool {
    args.match_indices("<<").any(|(i, _)| {
        let rest = args[i + 2..].trim_start_matches('-');
        let rest = rest.trim_start_matches(['"', '\'']);
        rest.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
    })
}

fn instruction(line: usize, keyword: &str, args: &str) -> Result<Kind, DockerfileError> {
    let invalid = |reason: &str| DockerfileError::Invalid {
        line,
        instruction: keyword.to_string(),
        reason: reason.to_string(),
    };
    let unsupported = |instruction: &str, why: &str| DockerfileError::Unsupported {
        line,
        instruction: instruction.to_string(),
        why: why.to_string(),
    };
    if matches!(keyword, "RUN" | "COPY" | "ADD") && has_heredoc(args) {
        return Err(unsupported(
            &format!("{keyword} with a heredoc"),
            "write the script into a file of the build context and COPY it, or RUN it on one line",
        ));
    }
    let needs_args = || {
        if args.is_empty() {
            Err(invalid("needs arguments"))
        } else {
            Ok(())
        }
    };
    Ok(match keyword {
        "FROM" => {
            let words: Vec<&str> = args.split_whitespace().collect();
            match words.as_slice() {
                [flag, ..] if flag.starts_with("--") => {
                    let flag = flag.split('=').next().unwrap_or(flag);
                    return Err(unsupported(
                        &format!("FROM {flag}"),
                        "templates are built for this host's platform",
                    ));
                }
                [image] => Kind::From(image.to_string()),
                [_, as_, _] if as_.eq_ignore_ascii_case("as") => {
                    return Err(unsupported(
                        "FROM ... AS",
                        "multi-stage builds are not supported: build a stage as a template \
                         of its own and start FROM it",
                    ))
                }
                _ => return Err(invalid("expects one image: FROM image")),
            }
        }
        "RUN" => {
            needs_args()?;
            if args.starts_with("--") {
                let flag = args.split_whitespace().next().unwrap_or(args);
                let flag = flag.split('=').next().unwrap_or(flag);
                return Err(unsupported(
                    &format!("RUN {flag}"),
                    "RUN takes no flags here (mounts, network and security modes are BuildKit's)",
                ));
            }
            Kind::Run(form(args))
        }
        "CMD" => {
            needs_args()?;
            Kind::Cmd(form(args))
        }
        "ENTRYPOINT" => {
            needs_args()?;
            Kind::Entrypoint(form(args))
        }
        "ENV" => {
            needs_args()?;
            Kind::Env(args.to_string())
        }
        "ARG" => {
            needs_args()?;
            Kind::Arg(args.to_string())
        }
        "WORKDIR" => {
            needs_args()?;
            Kind::Workdir(args.to_string())
        }
        "USER" => {
            needs_args()?;
            Kind::User(args.to_string())
        }
        "COPY" | "ADD" => {
            needs_args()?;
            let add = keyword == "ADD";
            let (mut chown, mut chmod) = (None, None);
            let mut rest = args;
            while let Some(flag_and_more) = rest.strip_prefix("--") {
                let end = flag_and_more
                    .find(char::is_whitespace)
                    .unwrap_or(flag_and_more.len());
                let flag = &flag_and_more[..end];
                rest = flag_and_more[end..].trim_start();
                let (name, value) = flag.split_once('=').unwrap_or((flag, ""));
                match name {
                    "chown" if !value.is_empty() => chown = Some(value.to_string()),
                    "chmod" => {
                        let mode = u32::from_str_radix(value, 8)
                            .ok()
                            .filter(|m| *m <= 0o7777)
                            .ok_or_else(|| invalid("--chmod takes an octal mode, e.g. 755"))?;
                        chmod = Some(mode);
                    }
                    // A caching hint of BuildKit's: the result is the same.
                    "link" if value.is_empty() || value == "true" => {}
                    "from" => {
                        return Err(unsupported(
                            &format!("{keyword} --from"),
                            "multi-stage builds are not supported, nor copies out of images",
                        ))
                    }
                    _ => {
                        return Err(unsupported(
                            &format!("{keyword} --{name}"),
                            "an unknown flag",
                        ))
                    }
                }
            }
            if rest.is_empty() {
                return Err(invalid("needs sources and a destination"));
            }
            Kind::Copy {
                add,
                chown,
                chmod,
                args: form(rest),
            }
        }
        "LABEL" | "EXPOSE" | "MAINTAINER" => Kind::Ignored,
        "HEALTHCHECK" => {
            return Err(unsupported(
                keyword,
                "sandboxes have no health checks; poll the start command's port instead",
            ))
        }
        "ONBUILD" => return Err(unsupported(keyword, "there are no deferred build steps")),
        "VOLUME" => {
            return Err(unsupported(
                keyword,
                "a sandbox's whole disk is kept across stops and checkpoints; drop the line",
            ))
        }
        "SHELL" => {
            return Err(unsupported(
                keyword,
                "shell forms run with /bin/sh -c; use the exec form to run another shell",
            ))
        }
        "STOPSIGNAL" => {
            return Err(unsupported(
                keyword,
                "start commands are stopped with SIGTERM, then SIGKILL",
            ))
        }
        other => {
            return Err(DockerfileError::Unknown {
                line,
                instruction: other.to_string(),
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::eval::tests::eval;
    use super::*;

    #[test]
    fn unsupported_instructions_name_their_line() {
        let cases = [
            (
                "FROM base\nRUN true\nHEALTHCHECK CMD true\n",
                3,
                "HEALTHCHECK",
            ),
            ("FROM base\n\nONBUILD RUN x\n", 3, "ONBUILD"),
            ("FROM base\nVOLUME /data\n", 2, "VOLUME"),
            ("FROM base AS build\n", 1, "FROM ... AS"),
            ("FROM base\nFROM base\n", 2, "a second FROM"),
            ("FROM base\nCOPY --from=build /a /b\n", 2, "COPY --from"),
            ("FROM --platform=linux/arm64 base\n", 1, "FROM --platform"),
            (
                "FROM base\nRUN --mount=type=cache,target=/x true\n",
                2,
                "RUN --mount",
            ),
            ("FROM base\nSHELL [\"bash\", \"-c\"]\n", 2, "SHELL"),
            ("FROM base\nRUN <<EOF\necho\nEOF\n", 2, "RUN with a heredoc"),
        ];
        for (text, line, what) in cases {
            match parse(text) {
                Err(DockerfileError::Unsupported {
                    line: l,
                    instruction,
                    ..
                }) => {
                    assert_eq!((l, instruction.as_str()), (line, what), "{text}")
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        assert!(matches!(
            parse("FROM base\nFROBNICATE x\n"),
            Err(DockerfileError::Unknown { line: 2, .. })
        ));
        assert!(matches!(
            parse("RUN true\nFROM base\n"),
            Err(DockerfileError::Invalid { line: 1, .. })
        ));
        assert_eq!(parse("# only a comment\n"), Err(DockerfileError::NoFrom));
        let err = parse("FROM base\nVOLUME /data\n").unwrap_err().to_string();
        assert!(err.starts_with("line 2: VOLUME is not supported"), "{err}");
    }

    #[test]
    fn backtick_escapes_and_crlf() {
        let text = "# escape=`\r\nFROM base\r\nRUN echo a `\r\n  b\r\n";
        let ev = eval(text, &[]).unwrap();
        assert_eq!(
            ev.steps[0].action,
            Action::Run {
                cmd: "echo a   b".into(),
                user: None
            }
        );
        assert!(parse("# escape=x\nFROM base\n").is_err());
    }
}
