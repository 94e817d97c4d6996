//! Running a command to completion with a timeout, capturing its output.

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use super::RUN_TIMEOUT;

/// What a finished command did.
#[derive(Debug, Clone)]
pub struct Output {
    /// The exit code, or 128+N when killed by signal N.
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Run `cmd` to completion, capturing its output; kill its process group after [`RUN_TIMEOUT`].
pub fn output(cmd: &mut Command) -> Output {
    output_within(cmd, RUN_TIMEOUT)
}

/// [`output`] with a deadline of the caller's choosing.
pub fn output_within(cmd: &mut Command, timeout: Duration) -> Output {
    let mut child = spawn_piped(cmd);
    let pid = child.id() as i32;
    let out = drain(child.stdout.take().expect("piped stdout"));
    let err = drain(child.stderr.take().expect("piped stderr"));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait()));
    let (status, timed_out) = match rx.recv_timeout(timeout) {
        Ok(status) => (status, false),
        Err(_) => {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::SIGKILL,
            );
            (rx.recv().expect("waiter thread"), true)
        }
    };
    let status = status.unwrap_or_else(|e| panic!("waiting for {cmd:?}: {e}"));
    let mut stderr = err();
    if timed_out {
        stderr.push_str(&format!("\n[harness] killed after {timeout:?}: {cmd:?}\n"));
    }
    Output {
        status: status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
        stdout: out(),
        stderr,
    }
}

/// Starts `cmd` with stdout and stderr piped, in its own process group (no signal meant for
/// the test runner reaches it, and a timeout can kill the whole group).
pub fn spawn_piped(cmd: &mut Command) -> Child {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    cmd.spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"))
}

/// Read a pipe on a thread; the returned closure gives what was read once the writers close it,
/// or after 2 s (a leaked process may hold the pipe open: that must not hang the test).
fn drain(mut pipe: impl Read + Send + 'static) -> impl FnOnce() -> String {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel::<()>();
    let b = Arc::clone(&buf);
    std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        while let Ok(n @ 1..) = pipe.read(&mut chunk) {
            b.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
        drop(tx);
    });
    move || {
        let _ = rx.recv_timeout(Duration::from_secs(2));
        let bytes = buf.lock().unwrap().clone();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// Waits for `child`, SIGKILLing it after `limit`; its exit code, 128+N for signal N.
pub fn wait_code(mut child: Child, limit: Duration) -> i32 {
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().expect("wait");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// The children of `pid`, as the kernel lists them (/proc/PID/task/PID/children).
pub fn children_of(pid: u32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}
