//! Signal names and numbers as runc accepts them.

use crate::error::RuntimeError;

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
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// The kernel's real-time range, as glibc exposes it to programs (glibc
/// keeps 32 and 33 for itself).
const RTMIN: i32 = 34;
const RTMAX: i32 = 64;

/// Parses `9`, `KILL`, `SIGKILL`, `sigkill`, `RTMIN+3` or `SIGRTMAX-1`.
pub fn parse(text: &str) -> Result<i32, RuntimeError> {
    let bad = || RuntimeError::UnknownSignal(text.to_owned());
    if let Ok(n) = text.parse::<i32>() {
        return if (1..=RTMAX).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(&(_, n)) = NAMES.iter().find(|(k, _)| *k == name) {
        return Ok(n);
    }
    let rt = |base: i32, rest: &str, sign: i32| -> Result<i32, RuntimeError> {
        let off: i32 = if rest.is_empty() {
            0
        } else {
            rest.parse().map_err(|_| bad())?
        };
        let n = base + sign * off;
        if (RTMIN..=RTMAX).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        }
    };
    if let Some(rest) = name.strip_prefix("RTMIN") {
        return match rest.strip_prefix('+') {
            Some(off) => rt(RTMIN, off, 1),
            None if rest.is_empty() => Ok(RTMIN),
            None => Err(bad()),
        };
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        return match rest.strip_prefix('-') {
            Some(off) => rt(RTMAX, off, -1),
            None if rest.is_empty() => Ok(RTMAX),
            None => Err(bad()),
        };
    }
    Err(bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse("9").unwrap(), 9);
        assert_eq!(parse("KILL").unwrap(), 9);
        assert_eq!(parse("SIGKILL").unwrap(), 9);
        assert_eq!(parse("sigterm").unwrap(), 15);
        assert_eq!(parse("RTMIN+3").unwrap(), 37);
        assert_eq!(parse("SIGRTMIN+3").unwrap(), 37);
        assert_eq!(parse("RTMAX-1").unwrap(), 63);
        assert_eq!(parse("RTMIN").unwrap(), 34);
    }

    #[test]
    fn nonsense_is_refused() {
        for bad in ["0", "65", "-1", "FOO", "RTMIN+40", "RTMAX+1", "SIG", ""] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
