//! The process a new scope is made with. systemd makes a scope only around processes it is
//! given (PIDs), and stops it, removing its cgroup, once the cgroup empties. The container's
//! cgroup is made before its application exists, and the supervisor must never be inside it:
//! so neither the caller (the supervisor is cloned from it) nor the supervisor can be the
//! scope's first process. A holder is: a child of the caller that systemd moves into the
//! scope, and that leaves it (exits) as soon as another process is in it (the application,
//! which joins through the cgroup.procs fd the caller opened). It dies with the caller
//! (PR_SET_PDEATHSIG), and stopping the unit kills it too; past a minute alone it exits, and
//! systemd then removes the unused scope.

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::sys::{self, Cloned, Errno};

/// How long a holder waits for the application to join.
const ALONE: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(1);

pub struct Holder {
    pub pid: Pid,
    pidfd: OwnedFd,
    /// Written once: the scope's cgroup directory, followed by a newline.
    told: Option<OwnedFd>,
}

impl Holder {
    pub fn spawn() -> Result<Holder, Errno> {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        match sys::clone_process(nix::sched::CloneFlags::empty())? {
            Cloned::Child => {
                drop(w);
                // SAFETY: _exit ends this forked child without unwinding into the caller's
                // code or running its atexit handlers.
                unsafe { libc::_exit(hold(r)) }
            }
            Cloned::Parent { pid, pidfd } => Ok(Holder {
                pid,
                pidfd,
                told: Some(w),
            }),
        }
    }

    /// Tells the holder its scope's cgroup directory, from which it leaves once another
    /// process is in it.
    pub fn watch(&mut self, dir: &std::path::Path) {
        if let Some(w) = self.told.take() {
            let line = format!("{}\n", dir.display());
            let _ = nix::unistd::write(&w, line.as_bytes());
        }
    }

    /// Ends the holder now (its scope was not made, or is being removed).
    pub fn kill(&self) {
        let _ = sys::pidfd_signal(self.pidfd.as_fd(), Signal::SIGKILL as i32);
        let _ = sys::pidfd_wait(self.pidfd.as_fd());
    }
}

/// Reaps a holder that was this process's child, if it has exited (`Scope::stop` calls it
/// once the unit is gone: a foreground run's holder then leaves no zombie).
pub fn reap(pid: u32) {
    use nix::sys::wait::{waitpid, WaitPidFlag};
    let _ = waitpid(Pid::from_raw(pid as i32), Some(WaitPidFlag::WNOHANG));
}

/// The holder's life: its directory from the pipe, then a look at the directory's processes
/// every millisecond until one is not itself.
fn hold(r: OwnedFd) -> i32 {
    // Above stdio, which /dev/null replaces.
    let r = match r.as_raw_fd() {
        0..=2 => match nix::fcntl::fcntl(r.as_raw_fd(), nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3)) {
            // SAFETY: F_DUPFD_CLOEXEC returned a new fd that nobody else owns.
            Ok(fd) => unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) },
            Err(_) => return 1,
        },
        _ => r,
    };
    // Nothing of the caller's stays open in it: a state lock, a listener, or the pipes an
    // engine reads the caller's output from until they close.
    if let Ok(null) = nix::fcntl::open(
        "/dev/null",
        nix::fcntl::OFlag::O_RDWR,
        nix::sys::stat::Mode::empty(),
    ) {
        for fd in 0..3 {
            let _ = nix::unistd::dup2(null, fd);
        }
    }
    let keep = r.as_raw_fd() as u32;
    let _ = sys::close_range(3, keep - 1);
    let _ = sys::close_range(keep + 1, u32::MAX);
    // The caller's blocked signals and handlers are not the holder's: systemd stops the
    // scope with SIGTERM, which must end it.
    for sig in Signal::iterator().filter(|s| !matches!(s, Signal::SIGKILL | Signal::SIGSTOP)) {
        // SAFETY: SIG_DFL installs no handler of ours; a single-threaded child.
        let _ = unsafe { nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigDfl) };
    }
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    );
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL);
    if nix::unistd::getppid() == Pid::from_raw(1) {
        return 0;
    }
    // Up to its newline: a copy of the pipe's other end may outlive the caller's write.
    let mut told = Vec::new();
    let mut f = std::fs::File::from(r);
    let mut byte = [0u8; 1];
    while !told.ends_with(b"\n") {
        match f.read(&mut byte) {
            Ok(1) if told.len() < 4096 => told.push(byte[0]),
            _ => return 1,
        }
    }
    let told = String::from_utf8_lossy(&told);
    let dir = told.trim_end();
    let me = std::process::id().to_string();
    let procs = std::path::Path::new(dir).join("cgroup.procs");
    let start = Instant::now();
    while start.elapsed() < ALONE {
        match std::fs::read_to_string(&procs) {
            Ok(text) if text.lines().any(|p| p != me) => return 0,
            Ok(_) => std::thread::sleep(POLL),
            Err(_) => return 1,
        }
    }
    0
}
