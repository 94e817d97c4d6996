//! `nsboot kill [--all] ID [SIGNAL]`: signal the application (or every process of the
//! sandbox) directly by its host pid, through a pidfd.
//!
//! The application is pid 1 of its pid namespace: from outside, the kernel delivers only the
//! signals it handles (and SIGKILL), exactly as for runc's and crun's container init.

use crate::cli::Global;
use crate::state::lifecycle::{self, LifecycleError, Status};

// Send a signal to a container's application.
#[derive(Debug, clap::Args)]
pub struct KillArgs {
    /// Signal every process of the sandbox, not only the application.
    #[arg(long, short = 'a')]
    pub all: bool,
    /// The container id.
    pub id: String,
    /// A signal name (TERM, SIGTERM, RTMIN+3) or number (15, 37).
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

pub fn run(args: KillArgs, global: &Global) -> i32 {
    match kill(&args, global) {
        Ok(()) => 0,
        Err(e) => {
            crate::sys::log::fatal(&e);
            125
        }
    }
}

fn kill(args: &KillArgs, global: &Global) -> Result<(), String> {
    let signo = parse_signal(&args.signal)?;
    let root = crate::state::root_dir(global.root.as_deref()).map_err(|e| e.to_string())?;
    let c = lifecycle::load(&root, &args.id).map_err(|e| e.to_string())?;
    // A created sandbox has not exec'd its application yet: SIGKILL ends the whole sandbox,
    // application and supervisor, so that the engine sees it exit.
    if c.status == Status::Created && signo == libc::SIGKILL {
        return lifecycle::kill_sandbox(&c).map_err(|e| e.to_string());
    }
    let app = c.require_app().map_err(|e| e.to_string())?;
    if let (true, Some(cg)) = (args.all, &c.state.cgroup) {
        return cg.signal_all(signo).map_err(|e| e.to_string());
    }
    let signalled = signal_pids(args, app, signo);
    thaw_killed(&c, signo);
    signalled
}

/// A paused container's SIGKILL takes effect once it is thawed (runc thaws it too).
fn thaw_killed(c: &lifecycle::Container, signo: i32) {
    if let (Status::Paused, libc::SIGKILL, Some(cg)) = (c.status, signo, &c.state.cgroup) {
        let _ = cg.freeze(false);
    }
}

fn signal_pids(args: &KillArgs, app: i32, signo: i32) -> Result<(), String> {
    let targets = if args.all {
        lifecycle::sandbox_pids(app)
    } else {
        vec![app]
    };
    for pid in targets {
        match lifecycle::signal(pid, signo) {
            Ok(()) => {}
            // Exited meanwhile: a process that is gone has nothing left to receive.
            Err(e) if e.0 == libc::ESRCH && pid != app => {}
            Err(e) if e.0 == libc::ESRCH => {
                let err = LifecycleError::NotRunning {
                    id: args.id.clone(),
                    status: "stopped".into(),
                };
                return Err(err.to_string());
            }
            Err(errno) => {
                let what = format!("sending signal {signo} to a process");
                return Err(LifecycleError::Signal {
                    what,
                    id: args.id.clone(),
                    pid,
                    errno,
                }
                .to_string());
            }
        }
    }
    Ok(())
}

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
    ("CLD", libc::SIGCHLD),
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

/// The kernel's real-time range (glibc keeps 32 and 33 for itself, but the kernel does not:
/// an engine may send any of them).
const RTMIN: i32 = 32;
const RTMAX: i32 = 64;

/// "TERM", "SIGTERM", "sigterm", "15", "37", "RTMIN+3", "SIGRTMAX-1" -> the signal number.
pub fn parse_signal(s: &str) -> Result<i32, String> {
    let bad = || {
        format!(
            "unknown signal {s:?}: use a name such as TERM or KILL, or a number from 1 to {RTMAX}"
        )
    };
    if let Ok(n) = s.parse::<i32>() {
        return if (1..=RTMAX).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    let upper = s.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(&(_, n)) = NAMES.iter().find(|(n, _)| *n == name) {
        return Ok(n);
    }
    let rt = |base: i32, rest: &str| -> Option<i32> {
        let n = match rest.chars().next() {
            None => base,
            Some('+') => base + rest[1..].parse::<i32>().ok()?,
            Some('-') => base - rest[1..].parse::<i32>().ok()?,
            _ => return None,
        };
        (RTMIN..=RTMAX).contains(&n).then_some(n)
    };
    let parsed = if let Some(rest) = name.strip_prefix("RTMIN") {
        rt(RTMIN, rest)
    } else if let Some(rest) = name.strip_prefix("RTMAX") {
        rt(RTMAX, rest)
    } else {
        None
    };
    parsed.ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::parse_signal;

    #[test]
    fn names_with_and_without_prefix_and_any_case() {
        assert_eq!(parse_signal("TERM"), Ok(15));
        assert_eq!(parse_signal("SIGTERM"), Ok(15));
        assert_eq!(parse_signal("sigkill"), Ok(9));
        assert_eq!(parse_signal("hup"), Ok(1));
    }

    #[test]
    fn numbers_include_real_time_signals() {
        assert_eq!(parse_signal("9"), Ok(9));
        assert_eq!(parse_signal("37"), Ok(37));
        assert_eq!(parse_signal("64"), Ok(64));
        assert_eq!(parse_signal("RTMIN+3"), Ok(35));
        assert_eq!(parse_signal("SIGRTMAX-1"), Ok(63));
        assert_eq!(parse_signal("SIGRTMIN"), Ok(32));
    }

    #[test]
    fn nonsense_is_refused() {
        for s in ["0", "65", "-1", "FOO", "RTMIN+40", "RTMAXX", ""] {
            assert!(parse_signal(s).is_err(), "{s}");
        }
    }
}
