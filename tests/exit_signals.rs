//! Exit statuses and signals: `nsboot run` exits with the application's status (128+N for a signal, 127/126
//! for a missing or non-executable program, 125 for nsboot's own failure), forwards the usual
//! signals to the application, and takes the sandbox down when the caller dies.

mod common;

use std::fs;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use serde_json::json;

use common::{Bundle, Mode, Output, Running};

/// How long a sandbox may take to print its first line (boot under a loaded, 2-core machine).
const READY_TIMEOUT: Duration = Duration::from_secs(30);

fn id(what: &str, mode: Mode) -> String {
    common::test_id("es", what, mode)
}

/// The message is one line, and it names `what`.
fn assert_one_line_naming(out: &Output, what: &str, ctx: &str) {
    let lines: Vec<&str> = out.stderr.trim_end().lines().collect();
    assert!(
        lines.len() == 1 && lines[0].contains(what),
        "{ctx}: stderr should be one line naming {what}: {out:?}"
    );
}

#[test]
fn app_exit_status_passes_through() {
    for mode in common::modes() {
        for code in [3, 0] {
            let script = format!("exit {code}");
            let bundle = Bundle::new(mode).args(&["/bin/sh", "-c", &script]);
            let out = bundle.run(&id(&format!("status{code}"), mode));
            assert_eq!(out.status, code, "{mode:?} `{script}`: {out:?}");
            assert_eq!(out.stderr, "", "{mode:?} `{script}`: {out:?}");
        }
    }
}

/// A pid-1 application cannot be killed by a signal it sends itself (`kill -9 $$` is ignored by
/// the kernel), so these die of signals the kernel forces on them: a real stack overflow
/// (SIGSEGV) and the hard CPU limit (SIGKILL).
#[test]
fn app_killed_by_signal_exits_128_plus_n() {
    let cases = [
        ("sigkill", "ulimit -t 1; while :; do :; done", 137),
        ("sigsegv", "ulimit -s 64; f() { f; }; f", 139),
    ];
    for mode in common::modes() {
        for (name, script, want) in cases {
            let bundle = Bundle::new(mode).args(&["/bin/sh", "-c", script]);
            let out = bundle.run(&id(name, mode));
            assert_eq!(out.status, want, "{mode:?} `{script}`: {out:?}");
        }
    }
}

#[test]
fn missing_program_exits_127_naming_it() {
    for mode in common::modes() {
        for prog in ["/no/such-program", "no-such-program"] {
            let bundle = Bundle::new(mode).args(&[prog, "arg"]);
            let out = bundle.run(&id("missing", mode));
            assert_eq!(out.status, 127, "{mode:?} {prog}: {out:?}");
            assert_one_line_naming(&out, prog, &format!("{mode:?}"));
        }
    }
}

#[test]
fn non_executable_program_exits_126() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode).args(&["/etc/passwd"]);
        let out = bundle.run(&id("noexec", mode));
        assert_eq!(out.status, 126, "{mode:?}: {out:?}");
        assert_one_line_naming(&out, "/etc/passwd", &format!("{mode:?}"));
    }
}

#[test]
fn missing_bundle_exits_125() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode);
        let missing = bundle.dir().join("no-such-bundle");
        let mut cmd = bundle.run_cmd_for(&missing, &id("nobundle", mode));
        let out = common::output(&mut cmd);
        assert_eq!(out.status, 125, "{mode:?}: {out:?}");
        assert_one_line_naming(&out, &missing.to_string_lossy(), &format!("{mode:?}"));
    }
}

#[test]
fn missing_rootfs_exits_125() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode);
        let missing = bundle.dir().join("no-such-rootfs");
        let bundle = bundle.edit(|c| c["root"]["path"] = json!(missing));
        let out = bundle.run(&id("norootfs", mode));
        assert_eq!(out.status, 125, "{mode:?}: {out:?}");
        assert_one_line_naming(&out, &missing.to_string_lossy(), &format!("{mode:?}"));
    }
}

#[test]
fn invalid_config_exits_125() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode);
        // Root writes it, 0644: readable by the mode's user.
        fs::write(bundle.dir().join("config.json"), "{ \"ociVersion\": ").unwrap();
        let out = bundle.run(&id("badjson", mode));
        assert_eq!(out.status, 125, "{mode:?}: {out:?}");
        assert_one_line_naming(&out, "config.json", &format!("{mode:?}"));
    }
}

/// `sig` sent to the `nsboot run` process reaches the pid-1 application, which handles it.
fn signal_reaches_app(sig: Signal) {
    let name = sig.as_str().trim_start_matches("SIG");
    let script = format!(
        "trap \"echo got-{name}; exit 42\" {name}; echo ready; while :; do sleep 0.1; done"
    );
    for mode in common::modes() {
        let ctx = format!("{mode:?} {sig}");
        let bundle = Bundle::new(mode).args(&["/bin/sh", "-c", &script]);
        let mut run = Running::start(&bundle, &id(name, mode));
        run.expect_line("ready", READY_TIMEOUT, &ctx);
        kill(run.pid(), sig).unwrap_or_else(|e| panic!("{ctx}: kill: {e}"));
        let out = run.finish(Duration::from_secs(20));
        assert_eq!(
            (out.status, out.stdout.as_str()),
            (42, format!("ready\ngot-{name}\n").as_str()),
            "{ctx}: {out:?}"
        );
        common::assert_nothing_left(mode, bundle.state_dir());
    }
}

#[test]
fn sigint_reaches_pid1_app() {
    signal_reaches_app(Signal::SIGINT);
}

#[test]
fn sigterm_reaches_pid1_app() {
    signal_reaches_app(Signal::SIGTERM);
}

#[test]
fn sighup_reaches_pid1_app() {
    signal_reaches_app(Signal::SIGHUP);
}

#[test]
fn sigquit_reaches_pid1_app() {
    signal_reaches_app(Signal::SIGQUIT);
}

#[test]
fn sigusr1_reaches_pid1_app() {
    signal_reaches_app(Signal::SIGUSR1);
}

#[test]
fn sigusr2_reaches_pid1_app() {
    signal_reaches_app(Signal::SIGUSR2);
}

/// (pid, start time) of every live descendant of `root`: the supervisor and the application.
fn descendants(root: i32) -> Vec<(i32, u64)> {
    let procs: Vec<(i32, i32, u64)> = fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let (ppid, start, _) = stat(pid)?;
            Some((pid, ppid, start))
        })
        .collect();
    let mut found: Vec<(i32, u64)> = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for &(pid, ppid, start) in &procs {
            if ppid == parent {
                found.push((pid, start));
                frontier.push(pid);
            }
        }
    }
    found
}

/// (ppid, start time, state) from /proc/PID/stat.
fn stat(pid: i32) -> Option<(i32, u64, char)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: the fields follow the last ')'.
    let rest: Vec<&str> = text[text.rfind(')')? + 2..].split(' ').collect();
    let state = rest.first()?.chars().next()?;
    Some((
        rest.get(1)?.parse().ok()?,
        rest.get(19)?.parse().ok()?,
        state,
    ))
}

/// The process still runs: same pid, same start time, not a zombie.
fn alive(pid: i32, start: u64) -> bool {
    stat(pid).is_some_and(|(_, s, state)| s == start && state != 'Z')
}

#[test]
fn caller_death_kills_the_sandbox() {
    for mode in common::modes() {
        let ctx = format!("{mode:?}");
        let bundle = Bundle::new(mode).args(&["/bin/sh", "-c", "echo ready; exec sleep 1000"]);
        let mut run = Running::start(&bundle, &id("callerdeath", mode));
        run.expect_line("ready", READY_TIMEOUT, &ctx);
        let tree = descendants(run.pid().as_raw());
        // At least the supervisor and the application: else there is nothing to watch die.
        assert!(tree.len() >= 2, "{ctx}: sandbox processes: {tree:?}");
        kill(run.pid(), Signal::SIGKILL).unwrap();
        let out = run.finish(Duration::from_secs(10));
        assert_eq!(out.status, 137, "{ctx}: {out:?}");
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut left: Vec<(i32, u64)> = tree.clone();
        while !left.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            left.retain(|&(pid, start)| alive(pid, start));
        }
        assert!(
            left.is_empty(),
            "{ctx}: sandbox processes alive 10 s after the caller died: {left:?} of {tree:?}"
        );
    }
}
