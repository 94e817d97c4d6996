//! Issue item 8: nothing is left behind (no stray process, no mount in the caller's mount
//! namespace, no state directory) after a normal exit, a failure at any step, or SIGKILL of the
//! caller; and a container id is free again once its run is over.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::json;

use common::{Bundle, Mode, Output};

/// How long a sandbox may take to print its first line (boot under a loaded, 2-core machine).
const READY_TIMEOUT: Duration = Duration::from_secs(30);

fn id(what: &str, mode: Mode) -> String {
    format!("cl-{what}-{mode:?}").to_lowercase()
}

/// Runs `bundle` to completion, checks its status and that stderr holds `err` (is empty for
/// "") — a run that fails for another reason than the one set up proves nothing about cleaning
/// up after it — then that it left nothing behind.
fn run_and_assert_nothing_left(bundle: &Bundle, id: &str, status: i32, err: &str) {
    let mode = bundle.mode();
    let out = bundle.run(id);
    let stderr_ok = if err.is_empty() {
        out.stderr.is_empty()
    } else {
        out.stderr.contains(err)
    };
    assert!(
        out.status == status && stderr_ok,
        "{mode:?}: want status {status} and stderr with {err:?}: {out:?}"
    );
    common::assert_nothing_left(mode, bundle.state_dir());
}

#[test]
fn normal_exit_leaves_nothing() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode).args(&["/bin/sh", "-c", "echo hi"]);
        run_and_assert_nothing_left(&bundle, &id("normal", mode), 0, "");
    }
}

#[test]
fn app_failure_leaves_nothing() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode).args(&["/bin/sh", "-c", "exit 3"]);
        run_and_assert_nothing_left(&bundle, &id("exit3", mode), 3, "");
    }
}

#[test]
fn program_not_found_leaves_nothing() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode).args(&["/no/such-program"]);
        run_and_assert_nothing_left(&bundle, &id("notfound", mode), 127, "/no/such-program");
    }
}

/// The supervisor fails half-way through assembling the root (after /proc, /dev, ... are
/// mounted): none of it may show in the caller's namespace.
#[test]
fn bad_bind_mount_leaves_nothing() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode);
        let missing = bundle.dir().join("no-such-source");
        let bundle = bundle.edit(|c| {
            let m = json!({ "destination": "/mnt", "type": "bind", "source": missing,
                            "options": ["rbind"] });
            c["mounts"].as_array_mut().unwrap().push(m);
        });
        let src = missing.to_string_lossy();
        run_and_assert_nothing_left(&bundle, &id("badmount", mode), 125, &src);
    }
}

/// Only the rootless modes have unmapped ids (real root maps them all).
#[test]
fn unmapped_user_leaves_nothing() {
    for mode in common::rootless_modes() {
        // Beyond both the single map and the 65536-id subordinate range.
        let bundle = Bundle::new(mode).edit(|c| c["process"]["user"]["uid"] = json!(100000));
        run_and_assert_nothing_left(&bundle, &id("unmapped", mode), 125, "100000");
    }
}

#[test]
fn missing_rootfs_leaves_nothing() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode);
        let missing = bundle.dir().join("no-such-rootfs");
        let bundle = bundle.edit(|c| c["root"]["path"] = json!(missing));
        let src = missing.to_string_lossy();
        run_and_assert_nothing_left(&bundle, &id("norootfs", mode), 125, &src);
    }
}

/// `nsboot run` started in the background, its stdout read line by line.
struct Running {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stdout: String,
    stderr: Arc<Mutex<String>>,
}

impl Running {
    /// Starts `nsboot run`, with a pipe as stdin (the application's: closing it ends a `read`).
    fn start(bundle: &Bundle, id: &str) -> Running {
        let mut cmd = bundle.nsboot();
        cmd.arg("--root").arg(bundle.state_dir()).arg("run");
        cmd.arg("--bundle").arg(bundle.dir()).arg(id);
        // Its own process group: no signal meant for the test runner reaches it.
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let (tx, lines) = mpsc::channel();
        let out = BufReader::new(child.stdout.take().unwrap());
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let (err, sink) = (child.stderr.take().unwrap(), Arc::clone(&stderr));
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                sink.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        Running {
            stdin: child.stdin.take(),
            child,
            lines,
            stdout: String::new(),
            stderr,
        }
    }

    /// The pid of the nsboot run process (setpriv execs it, so it is the child itself).
    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// Waits for a stdout line equal to `want`; panics (with what was seen) after `timeout`.
    fn expect_line(&mut self, want: &str, timeout: Duration, ctx: &str) {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.stdout.push_str(&line);
                    self.stdout.push('\n');
                    if line == want {
                        return;
                    }
                }
                Err(_) => {
                    let _ = kill(self.pid(), Signal::SIGKILL);
                    let out = self.finish(Duration::from_secs(10));
                    panic!("{ctx}: no line {want:?} within {timeout:?}: {out:?}");
                }
            }
        }
    }

    /// Waits for nsboot to exit (SIGKILL after `timeout`); returns what it did.
    fn finish(&mut self, timeout: Duration) -> Output {
        self.stdin = None;
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                break s;
            }
            if Instant::now() > deadline {
                let _ = kill(self.pid(), Signal::SIGKILL);
                let mut err = self.stderr.lock().unwrap();
                err.push_str("[test] killed: no exit in time\n");
                drop(err);
                break self.child.wait().expect("wait");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // The pipes close when every holder is gone; a leaked holder must not hang the test.
        let drain_until = Instant::now() + Duration::from_secs(2);
        while let Ok(line) = self
            .lines
            .recv_timeout(drain_until.saturating_duration_since(Instant::now()))
        {
            self.stdout.push_str(&line);
            self.stdout.push('\n');
        }
        Output {
            status: status
                .code()
                .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
            stdout: self.stdout.clone(),
            stderr: self.stderr.lock().unwrap().clone(),
        }
    }
}

/// Starts a run of `sleep 1000`, waits until the application runs, SIGKILLs the caller.
fn run_and_kill_caller(bundle: &Bundle, id: &str) {
    let ctx = format!("{:?}", bundle.mode());
    let mut run = Running::start(bundle, id);
    run.expect_line("ready", READY_TIMEOUT, &ctx);
    kill(run.pid(), Signal::SIGKILL).unwrap();
    let out = run.finish(Duration::from_secs(10));
    assert_eq!(out.status, 137, "{ctx}: {out:?}");
}

const SLEEPER: [&str; 3] = ["/bin/sh", "-c", "echo ready; exec sleep 1000"];

#[test]
fn caller_sigkill_leaves_nothing() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode).args(&SLEEPER);
        run_and_kill_caller(&bundle, &id("sigkill", mode));
        common::assert_nothing_left(mode, bundle.state_dir());
    }
}

#[test]
fn same_id_is_reusable_after_caller_sigkill() {
    for mode in common::modes() {
        let id = id("reuse-killed", mode);
        let bundle = Bundle::new(mode).args(&SLEEPER);
        run_and_kill_caller(&bundle, &id);
        let bundle = bundle.args(&["/bin/sh", "-c", "echo again"]);
        let out = bundle.run(&id);
        assert_eq!(
            (out.status, out.stdout.as_str()),
            (0, "again\n"),
            "{mode:?}: second run of {id}: {out:?}"
        );
        common::assert_nothing_left(mode, bundle.state_dir());
    }
}

#[test]
fn same_id_is_refused_while_running_and_reusable_after() {
    for mode in common::modes() {
        let ctx = format!("{mode:?}");
        let id = id("twice", mode);
        let bundle = Bundle::new(mode).args(&["/bin/sh", "-c", "echo ready; read x; echo done"]);
        let mut first = Running::start(&bundle, &id);
        first.expect_line("ready", READY_TIMEOUT, &ctx);
        let second = bundle.run(&id);
        assert!(
            second.status == 125 && second.stderr.contains("already exists"),
            "{ctx}: a second run of {id} while the first runs: {second:?}"
        );
        // Closing its stdin ends the first run's `read`.
        let out = first.finish(Duration::from_secs(20));
        assert_eq!(
            (out.status, out.stdout.as_str()),
            (0, "ready\ndone\n"),
            "{ctx}: first run: {out:?}"
        );
        let third = bundle.run(&id);
        assert_eq!(
            (third.status, third.stdout.as_str()),
            (0, "ready\ndone\n"),
            "{ctx}: a run of {id} after the first ended: {third:?}"
        );
        common::assert_nothing_left(mode, bundle.state_dir());
    }
}
