//! The caller's side once the sandbox runs: start it, forward signals, wait for its exit.

use std::os::fd::AsFd;

use nix::sys::signal::SigSet;
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::Pid;

use super::{kill_and_reap, step, Sandbox, SandboxError};
use crate::control;
use crate::protocol;
use crate::sys::wire;
use crate::sys::{self, Errno};

impl Sandbox {
    /// Kills the sandbox and reaps it: `create`'s application (this caller's child, so its pid
    /// cannot be reused before it is reaped here), then the supervisor.
    pub fn kill(&self) {
        if self.app > 0 {
            let _ = crate::state::lifecycle::signal(self.app, libc::SIGKILL);
            let _ = nix::sys::wait::waitpid(Pid::from_raw(self.app), None);
        }
        kill_and_reap(&self.pidfd);
    }

    /// Starts the application; Ok once it has exec'd.
    pub fn start(&self) -> Result<i32, SandboxError> {
        let started = match &self.control {
            Some(c) if self.start_sent => control::start_reply(c)?,
            Some(c) => control::send_start(c)?,
            None => {
                return Err(SandboxError::Step(crate::sys::Failed {
                    step: "starting: no controller connection".into(),
                    errno: Errno(libc::ENOTCONN),
                }))
            }
        };
        self.started.set(true);
        Ok(started)
    }

    /// Waits for the supervisor to exit, forwarding the usual signals to it meanwhile; returns
    /// its exit status (the application's, 128+N for a signal).
    /// With a pty `relay`, the terminal is relayed too and a window change resizes the pty.
    /// `exited` runs once the supervisor reports the application's exit, while the supervisor
    /// itself still exits (or, without that report, once it has).
    pub fn wait_forwarding(
        &self,
        signals: &SignalFd,
        mut relay: Option<&mut crate::sandbox::pty::Relay>,
        exited: impl FnOnce(),
    ) -> i32 {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        // The controller connection, until it reports the exit or closes.
        let mut control = self.control.as_ref().map(|c| c.as_fd());
        let mut reported = false;
        loop {
            let mut fds = vec![
                PollFd::new(self.pidfd.as_fd(), PollFlags::POLLIN),
                PollFd::new(signals.as_fd(), PollFlags::POLLIN),
            ];
            let control_at = control.map(|c| {
                fds.push(PollFd::new(c, PollFlags::POLLIN));
                fds.len() - 1
            });
            let relay_at = fds.len();
            if let Some(r) = relay.as_deref() {
                fds.extend(
                    r.poll_fds()
                        .into_iter()
                        .map(|fd| PollFd::new(fd, PollFlags::POLLIN)),
                );
            }
            match poll(&mut fds, PollTimeout::NONE) {
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => break,
                Ok(_) => {}
            }
            let ready: Vec<bool> = fds
                .iter()
                .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
                .collect();
            drop(fds);
            if ready[1] {
                if let Ok(Some(info)) = signals.read_signal() {
                    let signo = info.ssi_signo as i32;
                    match relay.as_deref() {
                        Some(r) if signo == libc::SIGWINCH => r.resize(),
                        _ => {
                            let _ = sys::pidfd_signal(self.pidfd.as_fd(), signo);
                        }
                    }
                }
            }
            if let Some(r) = relay.as_deref_mut() {
                r.pump(&ready[relay_at..]);
            }
            if ready[0] {
                break;
            }
            if let (Some(c), Some(i)) = (control, control_at) {
                if ready[i] {
                    match wire::recv::<control::Reply>(c, "the exit status") {
                        Ok(Some(control::Reply::Exited { .. })) => {
                            reported = true;
                            break;
                        }
                        // Closed, or not what we wait for: the supervisor's exit will tell.
                        _ => control = None,
                    }
                }
            }
        }
        if let Some(r) = relay {
            r.drain_master();
        }
        exited();
        use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
        match waitid(Id::PIDFd(self.pidfd.as_fd()), WaitPidFlag::WEXITED) {
            Ok(WaitStatus::Exited(_, code)) => code,
            // Killed without reporting the application's exit: nsboot's own failure, not the
            // application's signal.
            Ok(WaitStatus::Signaled(_, sig, _)) if self.started.get() && !reported => {
                let e = SandboxError::SupervisorKilled {
                    pid: self.pid.as_raw(),
                    signo: sig as i32,
                };
                crate::sys::log::fatal(&e.to_string());
                125
            }
            Ok(WaitStatus::Signaled(_, sig, _)) => 128 + sig as i32,
            _ => 125,
        }
    }
}

/// Blocks the forwarded signals before spawning, so that none is lost (the supervisor inherits
/// the mask and reads them from its own signalfd).
pub fn block_forwarded_signals() -> Result<(), SandboxError> {
    Ok(step(
        "blocking signals",
        protocol::forwarded_set().thread_block(),
    )?)
}

/// The caller's signalfd for the forwarded signals (after spawning: the supervisor needs none).
pub fn forwarded_signalfd() -> Result<SignalFd, SandboxError> {
    let set: SigSet = protocol::forwarded_set();
    Ok(step(
        "creating a signalfd",
        SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC),
    )?)
}
