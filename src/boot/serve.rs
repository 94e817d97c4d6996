//! The supervisor after start: forward signals to the application, reap, and exit with the
//! application's status (128+N for a signal). `create`'s application is the engine's child,
//! not ours: the supervisor sees it exit through its pidfd, and the engine has its status.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use nix::sys::signal::Signal;
use nix::sys::signalfd::{SfdFlags, SignalFd};

use super::orphans::Orphans;
use crate::process::App;
use crate::protocol::forwarded_set;
use crate::sys;

/// Serves until the application exits; returns its status. With `caller` (a foreground run),
/// the caller's death kills the application (the caller can no longer report its status).
/// The status also goes to `controller`, if still connected (a foreground run), ahead of the
/// supervisor's own exit: the caller can clean up meanwhile. `orphans`: what the application
/// leaves running is killed before its status goes out.
pub fn serve(
    app: &App,
    controller: Option<OwnedFd>,
    caller: Option<BorrowedFd<'_>>,
    orphans: Option<&Orphans>,
) -> i32 {
    let end = |status: i32| {
        if let Some(o) = orphans {
            o.end();
        }
        status
    };
    let mut set = forwarded_set();
    set.add(Signal::SIGCHLD);
    // Blocked signals are delivered to pid 1 of a pid namespace even from outside it; read them
    // from a signalfd.
    let _ = set.thread_block();
    let sfd = match SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK) {
        Ok(s) => s,
        Err(_) => return end(app.wait().unwrap_or(125)),
    };
    loop {
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        // Another's child sends us no SIGCHLD: its pidfd tells its exit.
        if !app.ours {
            fds.push(PollFd::new(app.pidfd.as_fd(), PollFlags::POLLIN));
        }
        if let Some(c) = caller {
            fds.push(PollFd::new(c, PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return end(app.wait().unwrap_or(125)),
            Ok(_) => {}
        }
        let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
        if !app.ours && fds.get(1).is_some_and(ready) {
            // Its status is the engine's, which reaps it; nobody waits on ours.
            return 0;
        }
        if caller.is_some() && fds.last().is_some_and(ready) {
            let _ = sys::pidfd_signal(app.pidfd.as_fd(), libc::SIGKILL);
            return end(app.wait().unwrap_or(137));
        }
        while let Ok(Some(info)) = sfd.read_signal() {
            let signo = info.ssi_signo as i32;
            if signo != libc::SIGCHLD {
                let _ = sys::pidfd_signal(app.pidfd.as_fd(), signo);
            } else if let Some(status) = reap(app) {
                let status = end(status);
                if let Some(c) = &controller {
                    let _ = crate::sys::wire::send(c, &crate::control::Reply::Exited { status });
                }
                return status;
            }
        }
    }
}

/// Reaps every exited child; the application's status when it is among them.
fn reap(app: &App) -> Option<i32> {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    let mut result = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == app.pid => result = Some(code),
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == app.pid => {
                result = Some(128 + sig as i32)
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return result,
            Ok(_) => continue,
        }
    }
}
