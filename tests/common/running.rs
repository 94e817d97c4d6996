//! `nsboot run` started in the background, its stdout and stderr read line by line, for tests
//! that act on a sandbox while it runs (signals, SIGKILL at a phase, a second run of the id).

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::{spawn_piped, Bundle, Output};

/// A background `nsboot run`.
pub struct Running {
    child: Child,
    stdin: Option<ChildStdin>,
    /// (from stderr?, line)
    lines: Receiver<(bool, String)>,
    seen: Vec<(bool, String)>,
}

impl Running {
    /// Starts `nsboot run` of `bundle` as `id`, stdin from the harness (/dev/null).
    pub fn start(bundle: &Bundle, id: &str) -> Running {
        Running::spawn(bundle, id, false, false)
    }

    /// Like [`Running::start`], with a pipe as stdin (the application's: [`Running::finish`]
    /// closes it, which ends a `read`).
    pub fn start_with_stdin(bundle: &Bundle, id: &str) -> Running {
        Running::spawn(bundle, id, false, true)
    }

    /// Like [`Running::start`], as `nsboot --debug run` (phase lines on stderr).
    pub fn start_debug(bundle: &Bundle, id: &str) -> Running {
        Running::spawn(bundle, id, true, false)
    }

    fn spawn(bundle: &Bundle, id: &str, debug: bool, stdin: bool) -> Running {
        let mut cmd = bundle.nsboot();
        cmd.arg("--root").arg(bundle.state_dir());
        if debug {
            cmd.arg("--debug");
        }
        cmd.arg("run").arg("--bundle").arg(bundle.dir()).arg(id);
        if stdin {
            cmd.stdin(Stdio::piped());
        }
        let mut child = spawn_piped(&mut cmd);
        let (tx, lines) = mpsc::channel();
        let stdout = Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>;
        for (is_err, pipe) in [
            (false, stdout),
            (true, Box::new(child.stderr.take().unwrap())),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let _ = tx.send((is_err, line));
                }
            });
        }
        Running {
            stdin: child.stdin.take(),
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The pid of the nsboot run process (setpriv execs it, so it is the child itself).
    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// Waits for a stdout line equal to `want`; panics (with what was seen) after `timeout`.
    pub fn expect_line(&mut self, want: &str, timeout: Duration, ctx: &str) {
        if !self.wait_until(timeout, |(is_err, line)| !is_err && line == want) {
            let out = self.kill_and_finish();
            panic!("{ctx}: no line {want:?} within {timeout:?}: {out:?}");
        }
    }

    /// Waits for a line containing `want` (on stdout or stderr); panics after `timeout`.
    pub fn wait_for(&mut self, want: &str, timeout: Duration, ctx: &str) {
        if !self.wait_until(timeout, |(_, line)| line.contains(want)) {
            let out = self.kill_and_finish();
            panic!("{ctx}: no line with {want:?} within {timeout:?}: {out:?}");
        }
    }

    /// Waits until a line containing each of `wants` has been seen, in any order (lines seen
    /// before the call count); panics after `timeout`.
    pub fn wait_for_all(&mut self, wants: &[&str], timeout: Duration, ctx: &str) {
        let deadline = Instant::now() + timeout;
        while let Some(want) = wants
            .iter()
            .find(|w| !self.seen.iter().any(|(_, l)| l.contains(**w)))
        {
            self.wait_for(
                want,
                deadline.saturating_duration_since(Instant::now()),
                ctx,
            );
        }
    }

    /// Records lines until one matches `hit` (true) or `timeout` passes (false).
    fn wait_until(&mut self, timeout: Duration, hit: impl Fn(&(bool, String)) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            let found = hit(&line);
            self.seen.push(line);
            if found {
                return true;
            }
        }
        false
    }

    fn kill_and_finish(&mut self) -> Output {
        let _ = kill(self.pid(), Signal::SIGKILL);
        self.finish(Duration::from_secs(10))
    }

    /// Closes stdin, waits for nsboot to exit (SIGKILL after `timeout`); returns what it did.
    pub fn finish(&mut self, timeout: Duration) -> Output {
        self.stdin = None;
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                break s;
            }
            if Instant::now() > deadline {
                let _ = kill(self.pid(), Signal::SIGKILL);
                self.seen
                    .push((true, "[test] killed: no exit in time".into()));
                break self.child.wait().expect("wait");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        // The pipes close when every holder is gone; a leaked holder must not hang the test.
        let until = Instant::now() + Duration::from_secs(2);
        while let Ok(line) = self
            .lines
            .recv_timeout(until.saturating_duration_since(Instant::now()))
        {
            self.seen.push(line);
        }
        let pick = |err: bool| -> String {
            let lines = self.seen.iter().filter(|(e, _)| *e == err);
            lines.map(|(_, l)| format!("{l}\n")).collect()
        };
        Output {
            status: status
                .code()
                .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
            stdout: pick(false),
            stderr: pick(true),
        }
    }
}
