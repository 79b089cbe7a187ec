//! Evaluating a parsed Dockerfile over its parent template: variables
//! substituted, `ARG`, `ENV`, `WORKDIR` and `USER` tracked, the steps that
//! change files listed with what they see, `CMD` and `ENTRYPOINT` combined
//! into the start command.

use std::collections::BTreeMap;

use super::words::{expand_one, is_name, split_words, split_words_raw};
use super::{Dockerfile, DockerfileError, Form, Kind};
use crate::template::StartCommand;

/// What a step of an evaluated Dockerfile does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A shell command.
    Run {
        /// The command line (an exec form quoted for `sh`).
        cmd: String,
        /// The user it runs as; root when `None`.
        user: Option<String>,
    },
    /// Context files into the rootfs.
    Copy {
        /// `ADD`.
        add: bool,
        /// The sources, relative to the context.
        sources: Vec<String>,
        /// The destination, absolute.
        dest: String,
        /// Whether the destination names a directory (a trailing `/`).
        dest_is_dir: bool,
        /// `--chown`.
        chown: Option<String>,
        /// `--chmod`.
        chmod: Option<u32>,
    },
    /// A working directory made.
    Workdir {
        /// Absolute path.
        path: String,
        /// Owner of what is made.
        user: Option<String>,
    },
}

/// A step of an evaluated Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalStep {
    /// The instruction's line.
    pub line: usize,
    /// What it does.
    pub action: Action,
    /// The environment it runs with (the parent's, `ENV`s, `ARG`s).
    pub env: BTreeMap<String, String>,
    /// The working directory it runs in.
    pub workdir: String,
}

/// A Dockerfile evaluated over a parent template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluated {
    /// The steps, in order.
    pub steps: Vec<EvalStep>,
    /// The template's environment (`ARG`s are not kept).
    pub env: BTreeMap<String, String>,
    /// The template's working directory.
    pub workdir: String,
    /// `Some` when `CMD` or `ENTRYPOINT` set the start command (`Some(None)`:
    /// an empty one, none); `None` keeps the parent's.
    pub start: Option<Option<StartCommand>>,
    /// The template's user, when `USER` set one.
    pub user: Option<String>,
    /// Build arguments no `ARG` declared.
    pub unused_args: Vec<String>,
}

/// What a Dockerfile is evaluated over.
#[derive(Debug, Clone, Default)]
pub struct Parent {
    /// Its environment.
    pub env: BTreeMap<String, String>,
    /// Its working directory.
    pub workdir: String,
    /// Its user.
    pub user: Option<String>,
}

impl Dockerfile {
    /// The image of `FROM`, with the `ARG`s before it substituted.
    pub fn base_image(
        &self,
        build_args: &BTreeMap<String, String>,
    ) -> Result<(usize, String), DockerfileError> {
        let vars = self.global_values(build_args)?;
        let (line, raw) = &self.from;
        let image = expand_one(raw, &vars).map_err(|reason| DockerfileError::Invalid {
            line: *line,
            instruction: "FROM".into(),
            reason,
        })?;
        Ok((*line, image))
    }

    /// The values of the `ARG`s before `FROM`.
    fn global_values(
        &self,
        build_args: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, DockerfileError> {
        let mut vars = BTreeMap::new();
        for arg in &self.global_args {
            if let Kind::Arg(raw) = &arg.kind {
                declare_args(arg.line, raw, build_args, &BTreeMap::new(), &mut vars)?;
            }
        }
        Ok(vars)
    }

    /// The steps and the template's configuration, over `parent`.
    pub fn evaluate(
        &self,
        build_args: &BTreeMap<String, String>,
        parent: &Parent,
    ) -> Result<Evaluated, DockerfileError> {
        let globals = self.global_values(build_args)?;
        let mut env = parent.env.clone();
        let mut args: BTreeMap<String, String> = BTreeMap::new();
        let mut declared: Vec<String> = self
            .global_args
            .iter()
            .filter_map(|a| match &a.kind {
                Kind::Arg(raw) => Some(arg_names(raw)),
                _ => None,
            })
            .flatten()
            .collect();
        let mut workdir = parent.workdir.clone();
        let mut user = parent.user.clone();
        let mut user_set = false;
        let (mut cmd, mut entrypoint): (Option<Form>, Option<Form>) = (None, None);
        let mut steps = Vec::new();
        for ins in &self.instructions {
            let line = ins.line;
            let invalid = |instruction: &str, reason: String| DockerfileError::Invalid {
                line,
                instruction: instruction.into(),
                reason,
            };
            // What substitution sees: ARGs, then ENV over them.
            let mut vars = args.clone();
            vars.extend(env.clone());
            match &ins.kind {
                Kind::From(_) => unreachable!("parse keeps one FROM apart"),
                Kind::Ignored => {}
                Kind::Arg(raw) => {
                    declared.extend(arg_names(raw));
                    declare_args(line, raw, build_args, &globals, &mut args)?;
                }
                Kind::Env(raw) => {
                    for (k, v) in key_values(raw, &vars).map_err(|e| invalid("ENV", e))? {
                        env.insert(k, v);
                    }
                }
                Kind::Workdir(raw) => {
                    let dir = expand_one(raw, &vars).map_err(|e| invalid("WORKDIR", e))?;
                    let path = clean_join(&workdir, &dir).map_err(|e| invalid("WORKDIR", e))?;
                    workdir = path.clone();
                    steps.push(EvalStep {
                        line,
                        action: Action::Workdir {
                            path,
                            user: user.clone(),
                        },
                        env: run_env(&env, &args),
                        workdir: workdir.clone(),
                    });
                }
                Kind::User(raw) => {
                    let name = expand_one(raw, &vars).map_err(|e| invalid("USER", e))?;
                    crate::template::build::check_user(&name).map_err(|e| invalid("USER", e))?;
                    user = Some(name);
                    user_set = true;
                }
                Kind::Run(form) => {
                    let cmd = match form {
                        Form::Shell(cmd) => cmd.clone(),
                        Form::Exec(argv) if argv.is_empty() => {
                            return Err(invalid("RUN", "an empty command".into()))
                        }
                        Form::Exec(argv) => exec_line(argv),
                    };
                    if cmd.contains('\0') {
                        return Err(invalid("RUN", "a NUL byte".into()));
                    }
                    steps.push(EvalStep {
                        line,
                        action: Action::Run {
                            cmd,
                            user: user.clone().filter(|u| !is_root(u)),
                        },
                        env: run_env(&env, &args),
                        workdir: workdir.clone(),
                    });
                }
                Kind::Cmd(form) => cmd = Some(form.clone()),
                Kind::Entrypoint(form) => {
                    entrypoint = Some(form.clone());
                    // Docker: ENTRYPOINT resets a CMD set before it.
                    cmd = None;
                }
                Kind::Copy {
                    add,
                    chown,
                    chmod,
                    args: form,
                } => {
                    let name = if *add { "ADD" } else { "COPY" };
                    let mut words = match form {
                        Form::Exec(words) => words
                            .iter()
                            .map(|w| expand_one(w, &vars))
                            .collect::<Result<Vec<_>, _>>(),
                        Form::Shell(raw) => split_words(raw, &vars),
                    }
                    .map_err(|e| invalid(name, e))?;
                    if words.len() < 2 {
                        return Err(invalid(name, "needs sources and a destination".into()));
                    }
                    let raw_dest = words.pop().unwrap_or_default();
                    for source in &words {
                        check_source(*add, source).map_err(|(what, why)| {
                            DockerfileError::Unsupported {
                                line,
                                instruction: format!("{name} {what}"),
                                why,
                            }
                        })?;
                    }
                    let dest_is_dir =
                        raw_dest.ends_with('/') || raw_dest == "." || raw_dest.ends_with("/.");
                    if words.len() > 1 && !dest_is_dir {
                        return Err(invalid(
                            name,
                            "with more than one source the destination must end with /".into(),
                        ));
                    }
                    let dest = clean_join(&workdir, &raw_dest).map_err(|e| invalid(name, e))?;
                    let chown = chown
                        .as_deref()
                        .map(|c| expand_one(c, &vars))
                        .transpose()
                        .map_err(|e| invalid(name, e))?;
                    if let Some(c) = &chown {
                        crate::template::build::check_user(c).map_err(|e| invalid(name, e))?;
                    }
                    steps.push(EvalStep {
                        line,
                        action: Action::Copy {
                            add: *add,
                            sources: words,
                            dest,
                            dest_is_dir,
                            chown,
                            chmod: *chmod,
                        },
                        env: run_env(&env, &args),
                        workdir: workdir.clone(),
                    });
                }
            }
        }
        let start = if cmd.is_some() || entrypoint.is_some() {
            Some(start_command(entrypoint, cmd))
        } else {
            None
        };
        let mut unused_args: Vec<String> = build_args
            .keys()
            .filter(|k| !declared.contains(k))
            .cloned()
            .collect();
        unused_args.sort();
        Ok(Evaluated {
            steps,
            env,
            workdir,
            start,
            user: if user_set { user } else { parent.user.clone() },
            unused_args,
        })
    }
}

fn is_root(user: &str) -> bool {
    matches!(user, "root" | "0" | "root:root" | "0:0")
}

/// The environment of a step: `ARG`s, with `ENV` over them.
fn run_env(
    env: &BTreeMap<String, String>,
    args: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut out = args.clone();
    out.extend(env.clone());
    out
}

/// The start command of `ENTRYPOINT` and `CMD` as Docker combines them.
fn start_command(entrypoint: Option<Form>, cmd: Option<Form>) -> Option<StartCommand> {
    let shell = |c: String| vec!["/bin/sh".to_string(), "-c".to_string(), c];
    match (entrypoint, cmd) {
        (Some(Form::Shell(e)), _) => Some(StartCommand::Shell(e)),
        (Some(Form::Exec(e)), cmd) => {
            let mut argv = e;
            match cmd {
                Some(Form::Exec(c)) => argv.extend(c),
                Some(Form::Shell(c)) => argv.extend(shell(c)),
                None => {}
            }
            (!argv.is_empty()).then_some(StartCommand::Exec(argv))
        }
        (None, Some(Form::Shell(c))) => Some(StartCommand::Shell(c)),
        (None, Some(Form::Exec(c))) => (!c.is_empty()).then_some(StartCommand::Exec(c)),
        (None, None) => None,
    }
}

/// An argv as a shell command line that execs it, untouched by the shell.
fn exec_line(argv: &[String]) -> String {
    let quoted: Vec<String> = argv
        .iter()
        .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
        .collect();
    format!("exec {}", quoted.join(" "))
}

/// Refuses sources `ADD` would fetch or unpack.
fn check_source(add: bool, source: &str) -> Result<(), (String, String)> {
    let remote = ["http://", "https://", "git@", "git://", "ssh://"];
    if remote.iter().any(|p| source.starts_with(p)) {
        return Err((
            source.to_string(),
            "fetching over the network: RUN curl (or git clone) it instead".to_string(),
        ));
    }
    let archive = [
        ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar.zst",
    ];
    if add && archive.iter().any(|s| source.ends_with(s)) {
        return Err((
            source.to_string(),
            "ADD unpacks archives, which Warren does not do: COPY it and RUN tar".to_string(),
        ));
    }
    Ok(())
}

/// `path` made absolute against `base` and normalised (`.` and `..`
/// resolved lexically, never above `/`); a trailing `/` is dropped.
fn clean_join(base: &str, path: &str) -> Result<String, String> {
    if path.is_empty() || path.contains('\0') {
        return Err(format!("{path:?} is not a path"));
    }
    let joined = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{base}/{path}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    Ok(format!("/{}", parts.join("/")))
}

/// The names `ARG` declares.
fn arg_names(raw: &str) -> Vec<String> {
    raw.split_whitespace()
        .map(|w| w.split_once('=').map_or(w, |(k, _)| k).to_string())
        .collect()
}

/// Declares the `ARG`s of `raw` into `vars`: a build argument, else the
/// default (substituted), else the value of a same-named `ARG` before
/// `FROM` (`globals`), else nothing.
fn declare_args(
    line: usize,
    raw: &str,
    build_args: &BTreeMap<String, String>,
    globals: &BTreeMap<String, String>,
    vars: &mut BTreeMap<String, String>,
) -> Result<(), DockerfileError> {
    let invalid = |reason: String| DockerfileError::Invalid {
        line,
        instruction: "ARG".into(),
        reason,
    };
    for word in split_words_raw(raw).map_err(invalid)? {
        let (name, default) = match word.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (word.clone(), None),
        };
        if !is_name(&name) {
            return Err(invalid(format!("{name:?} is not a variable name")));
        }
        if let Some(value) = build_args.get(&name) {
            vars.insert(name, value.clone());
        } else if let Some(default) = default {
            let value = expand_one(&default, vars).map_err(invalid)?;
            vars.insert(name, value);
        } else if let Some(value) = globals.get(&name) {
            vars.insert(name, value.clone());
        }
    }
    Ok(())
}

/// `ENV`'s pairs: `k=v ...`, or the legacy `k v with spaces`.
fn key_values(raw: &str, vars: &BTreeMap<String, String>) -> Result<Vec<(String, String)>, String> {
    let first = raw.split_whitespace().next().unwrap_or_default();
    if !first.contains('=') {
        let value = raw[first.len()..].trim_start();
        if !is_name(first) {
            return Err(format!("{first:?} is not a variable name"));
        }
        if value.is_empty() {
            return Err(format!("{first} has no value (ENV {first}=value)"));
        }
        return Ok(vec![(first.to_string(), expand_one(value, vars)?)]);
    }
    split_words(raw, vars)?
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if is_name(k) => Ok((k.to_string(), v.to_string())),
            _ => Err(format!("{w:?} is not name=value")),
        })
        .collect()
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::parse;
    use super::*;

    /// Parses and evaluates `text` over a parent with a PATH, in `/root`.
    pub(crate) fn eval(text: &str, args: &[(&str, &str)]) -> Result<Evaluated, DockerfileError> {
        let args: BTreeMap<String, String> = args
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let parent = Parent {
            env: BTreeMap::from([("PATH".to_string(), "/usr/bin:/bin".to_string())]),
            workdir: "/root".into(),
            user: None,
        };
        parse(text)?.evaluate(&args, &parent)
    }

    #[test]
    fn parses_the_common_subset() {
        let text = r#"# syntax=docker/dockerfile:1
# escape=\
ARG BASE=base
FROM ${BASE}
# a comment
LABEL org.opencontainers.image.title="demo" \
      version=1
ARG PY=3
ENV APP_HOME=/srv/app MODE="dev mode"
ENV LEGACY some value
WORKDIR $APP_HOME
RUN apt-get update && \
    # a comment inside a continuation
    apt-get install -y \
      jq
RUN ["python3", "-c", "print('hi')"]
COPY --chown=user:user requirements.txt ./
COPY src/ lib/*.py ${APP_HOME}/code/
USER user
EXPOSE 8000
CMD python${PY} -m http.server 8000
"#;
        let df = parse(text).unwrap();
        assert_eq!(df.from, (4, "${BASE}".to_string()));
        assert_eq!(
            df.base_image(&BTreeMap::new()).unwrap(),
            (4, "base".to_string())
        );
        let args = BTreeMap::from([("BASE".to_string(), "other".to_string())]);
        assert_eq!(df.base_image(&args).unwrap().1, "other");

        let ev = eval(text, &[("PY", "3.11"), ("NOPE", "x")]).unwrap();
        // An ARG before FROM is in scope after it once declared again.
        let again = eval("ARG V=1\nFROM base\nARG V\nRUN echo $V\n", &[]).unwrap();
        assert_eq!(again.steps[0].env["V"], "1");
        let unset = eval("ARG V=1\nFROM base\nRUN echo $V\n", &[]).unwrap();
        assert!(!unset.steps[0].env.contains_key("V"));
        assert_eq!(ev.env["APP_HOME"], "/srv/app");
        assert_eq!(ev.env["MODE"], "dev mode");
        assert_eq!(ev.env["LEGACY"], "some value");
        assert!(!ev.env.contains_key("PY"), "ARGs are not kept");
        assert_eq!(ev.workdir, "/srv/app");
        assert_eq!(ev.user.as_deref(), Some("user"));
        assert_eq!(ev.unused_args, ["NOPE"]);
        assert_eq!(
            ev.start,
            Some(Some(StartCommand::Shell(
                "python${PY} -m http.server 8000".into()
            )))
        );
        let lines: Vec<usize> = ev.steps.iter().map(|s| s.line).collect();
        assert_eq!(lines, [11, 12, 16, 17, 18]);
        assert_eq!(
            ev.steps[1].action,
            Action::Run {
                cmd: "apt-get update &&     apt-get install -y       jq".into(),
                user: None
            }
        );
        assert_eq!(ev.steps[1].env["PY"], "3.11", "ARGs are in RUN's env");
        assert_eq!(ev.steps[1].workdir, "/srv/app");
        assert_eq!(
            ev.steps[2].action,
            Action::Run {
                cmd: "exec 'python3' '-c' 'print('\\''hi'\\'')'".into(),
                user: None
            }
        );
        assert_eq!(
            ev.steps[3].action,
            Action::Copy {
                add: false,
                sources: vec!["requirements.txt".into()],
                dest: "/srv/app".into(),
                dest_is_dir: true,
                chown: Some("user:user".into()),
                chmod: None,
            }
        );
        match &ev.steps[4].action {
            Action::Copy { sources, dest, .. } => {
                assert_eq!(sources, &["src/", "lib/*.py"]);
                assert_eq!(dest, "/srv/app/code");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn entrypoint_and_cmd_combine_as_docker_does() {
        let start = |body: &str| eval(&format!("FROM base\n{body}"), &[]).unwrap().start;
        assert_eq!(start("RUN true"), None);
        assert_eq!(
            start("ENTRYPOINT [\"tini\", \"--\"]\nCMD [\"serve\", \"-p\", \"1\"]"),
            Some(Some(StartCommand::Exec(
                ["tini", "--", "serve", "-p", "1"]
                    .map(String::from)
                    .to_vec()
            )))
        );
        assert_eq!(
            start("CMD [\"ignored\"]\nENTRYPOINT [\"only\"]"),
            Some(Some(StartCommand::Exec(vec!["only".into()])))
        );
        assert_eq!(
            start("ENTRYPOINT [\"e\"]\nCMD serve"),
            Some(Some(StartCommand::Exec(
                ["e", "/bin/sh", "-c", "serve"].map(String::from).to_vec()
            )))
        );
        assert_eq!(start("CMD []"), Some(None));
    }

    #[test]
    fn user_applies_to_later_runs_and_workdirs() {
        let ev = eval(
            "FROM base\nRUN a\nUSER app:staff\nWORKDIR /w\nRUN b\nUSER root\nRUN c\n",
            &[],
        )
        .unwrap();
        let users: Vec<Option<String>> = ev
            .steps
            .iter()
            .map(|s| match &s.action {
                Action::Run { user, .. } | Action::Workdir { user, .. } => user.clone(),
                Action::Copy { .. } => None,
            })
            .collect();
        assert_eq!(
            users,
            [
                None,
                Some("app:staff".into()),
                Some("app:staff".into()),
                None
            ]
        );
        assert_eq!(ev.user.as_deref(), Some("root"));
    }

    #[test]
    fn add_refuses_urls_and_archives_and_copy_checks_its_destination() {
        let err = |text: &str| eval(text, &[]).unwrap_err();
        assert!(matches!(
            err("FROM base\nADD https://example.com/x /x\n"),
            DockerfileError::Unsupported { line: 2, .. }
        ));
        assert!(matches!(
            err("FROM base\n\nADD app.tar.gz /srv/\n"),
            DockerfileError::Unsupported { line: 3, .. }
        ));
        assert!(matches!(
            err("FROM base\nCOPY a b /dest\n"),
            DockerfileError::Invalid { line: 2, .. }
        ));
        assert!(matches!(
            err("FROM base\nCOPY onlyone\n"),
            DockerfileError::Invalid { line: 2, .. }
        ));
        assert!(matches!(
            err("FROM base\nUSER a b\n"),
            DockerfileError::Invalid { line: 2, .. }
        ));
        assert!(matches!(
            parse("FROM base\nCOPY --chmod=9z a /b\n"),
            Err(DockerfileError::Invalid { line: 2, .. })
        ));
        // ADD of a plain file is a COPY.
        let ev = eval("FROM base\nADD --chmod=755 run.sh /usr/local/bin/\n", &[]).unwrap();
        assert!(matches!(
            &ev.steps[0].action,
            Action::Copy {
                add: true,
                chmod: Some(0o755),
                ..
            }
        ));
    }
}
