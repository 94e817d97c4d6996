//! Helpers of tests/lifecycle.rs: nsboot's lifecycle commands on a harness bundle, a sandbox's
//! output in a file (its supervisor outlives `create`, so no pipe may be waited on), bounded
//! polls, and a console socket that receives a pty master.

#![allow(dead_code)]

use std::fs::{self, File};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{self, Bundle, Output};

/// Where a bundle's extra files go: its top dir, beside bundle/ and state/.
pub fn top(b: &Bundle) -> PathBuf {
    b.dir()
        .parent()
        .expect("a bundle dir has a parent")
        .to_path_buf()
}

/// `nsboot --root <state> ARGS` as the bundle's user.
pub fn nsb(b: &Bundle, args: &[&str]) -> Output {
    let mut cmd = b.nsboot();
    cmd.arg("--root").arg(b.state_dir()).args(args);
    common::output(&mut cmd)
}

/// Runs `cmd` with stdout and stderr in `top/NAME.out` (the sandbox inherits them), waiting at
/// most a minute; returns the exit status and what the command itself wrote to stderr.
pub fn run_to_file(b: &Bundle, name: &str, mut cmd: Command) -> Output {
    let out = top(b).join(format!("{name}.out"));
    let file = File::create(&out).expect("create the output file");
    cmd.stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file);
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    Output {
        status: common::wait_code(child, common::RUN_TIMEOUT),
        stdout: String::new(),
        stderr: fs::read_to_string(&out).unwrap_or_default(),
    }
}

/// `nsboot create --bundle DIR EXTRA... ID`, the sandbox's output in `top/ID.out`.
pub fn create(b: &Bundle, id: &str, extra: &[&str]) -> Output {
    let mut cmd = b.nsboot();
    cmd.arg("--root")
        .arg(b.state_dir())
        .arg("create")
        .arg("--bundle")
        .arg(b.dir());
    cmd.args(extra).arg(id);
    run_to_file(b, id, cmd)
}

/// What the sandbox `id` has printed so far.
pub fn app_output(b: &Bundle, id: &str) -> String {
    fs::read_to_string(top(b).join(format!("{id}.out"))).unwrap_or_default()
}

/// Polls (10 s at most) until `f` holds; returns whether it did.
pub fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

/// `nsboot state ID` as JSON (panics with stderr when it fails).
pub fn state(b: &Bundle, id: &str) -> Value {
    let out = nsb(b, &["state", id]);
    assert_eq!(out.status, 0, "state {id} failed: {}", out.stderr);
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("state {id} is not JSON ({e}): {}", out.stdout))
}

pub fn status(b: &Bundle, id: &str) -> String {
    state(b, id)["status"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Waits until the container reports `want`; panics with the last state otherwise.
pub fn wait_status(b: &Bundle, id: &str, want: &str) -> Value {
    let ok = eventually(|| status(b, id) == want);
    let st = state(b, id);
    assert!(
        ok,
        "{:?}: container {id} never became {want}: {st}",
        b.mode()
    );
    st
}

/// The application's host pid (`nsboot ps --format json` lists it first).
pub fn app_pid(b: &Bundle, id: &str) -> i32 {
    let out = nsb(b, &["ps", "--format", "json", id]);
    let pids: Vec<i32> = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("ps --format json: {e}: {out:?}"));
    *pids
        .first()
        .unwrap_or_else(|| panic!("ps lists no process: {out:?}"))
}

/// Alive and not a zombie.
pub fn alive(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().chars().next())
        })
        .is_some_and(|state| state != Some('Z') && state != Some('X'))
}

/// A Unix socket the bundle's user can connect to, receiving one pty master.
pub struct ConsoleSocket {
    pub path: PathBuf,
    listener: UnixListener,
}

impl ConsoleSocket {
    pub fn new(b: &Bundle, name: &str) -> ConsoleSocket {
        let path = top(b).join(name);
        let listener =
            UnixListener::bind(&path).unwrap_or_else(|e| panic!("bind {}: {e}", path.display()));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o777)).unwrap();
        listener.set_nonblocking(true).unwrap();
        ConsoleSocket { path, listener }
    }

    pub fn arg(&self) -> &str {
        self.path.to_str().expect("utf-8 path")
    }

    /// The master fd sent over the socket (10 s at most), and the name that came with it.
    pub fn receive(&self) -> Option<(OwnedFd, String)> {
        use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
        let mut conn = None;
        eventually(|| {
            conn = self.listener.accept().ok().map(|(c, _)| c);
            conn.is_some()
        });
        let conn = conn?;
        conn.set_nonblocking(false).ok()?;
        let mut buf = [0u8; 256];
        let mut cbuf = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut cbuf),
            MsgFlags::empty(),
        )
        .ok()?;
        let fd = msg.cmsgs().ok()?.find_map(|c| match c {
            ControlMessageOwned::ScmRights(v) => v.first().copied(),
            _ => None,
        })?;
        let n = msg.bytes;
        // SAFETY: SCM_RIGHTS just installed this fd in our table; nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Some((fd, String::from_utf8_lossy(&buf[..n]).into_owned()))
    }
}

/// Everything readable from a pty master until the other side is closed (EIO) or 10 s pass.
pub fn read_pty(master: &OwnedFd) -> String {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        if poll(&mut fds, PollTimeout::from(100u16)).unwrap_or(0) == 0 {
            continue;
        }
        let mut chunk = [0u8; 4096];
        match nix::unistd::read(master.as_raw_fd(), &mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The state dir has no entry left (the lifecycle's own check; processes and mounts are
/// common::assert_nothing_left's).
pub fn assert_no_state(dir: &Path) {
    let left: Vec<_> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "state left in {}: {left:?}", dir.display());
}
