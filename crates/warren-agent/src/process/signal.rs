//! Signal names and numbers as clients give them.

use warren_api::agent::SignalSpec;

use crate::AgentError;

/// Names without the `SIG` prefix, with their numbers.
const NAMES: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("IOT", libc::SIGIOT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("POLL", libc::SIGPOLL),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// The signal number of a name (`SIGTERM`, `TERM`, `sigterm`, `15`) or a
/// number (1 up to `SIGRTMAX`).
pub fn parse(spec: &SignalSpec) -> Result<i32, AgentError> {
    let number = match spec {
        SignalSpec::Number(n) => Some(*n),
        SignalSpec::Name(name) => {
            let upper = name.trim().to_ascii_uppercase();
            let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
            NAMES
                .iter()
                .find(|(n, _)| *n == bare)
                .map(|(_, num)| *num)
                .or_else(|| bare.parse().ok())
        }
    };
    match number {
        Some(n) if (1..=libc::SIGRTMAX()).contains(&n) => Ok(n),
        _ => Err(AgentError::UnknownSignal(match spec {
            SignalSpec::Number(n) => n.to_string(),
            SignalSpec::Name(name) => format!("{name:?}"),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> Result<i32, AgentError> {
        parse(&SignalSpec::Name(s.into()))
    }

    #[test]
    fn parses_names_and_numbers() {
        assert_eq!(name("SIGTERM").unwrap(), libc::SIGTERM);
        assert_eq!(name("term").unwrap(), libc::SIGTERM);
        assert_eq!(name("KILL").unwrap(), libc::SIGKILL);
        assert_eq!(name("9").unwrap(), 9);
        assert_eq!(parse(&SignalSpec::Number(2)).unwrap(), libc::SIGINT);
        assert!(name("SIGNOPE").is_err());
        assert!(name("").is_err());
        assert!(parse(&SignalSpec::Number(0)).is_err());
        assert!(parse(&SignalSpec::Number(-9)).is_err());
        assert!(parse(&SignalSpec::Number(999)).is_err());
    }
}
