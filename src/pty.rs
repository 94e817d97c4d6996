//! A terminal for a foreground sandbox (`run`/`do` with process.terminal and no console
//! socket): a pty whose slave is the application's stdio and controlling terminal, and a relay
//! between the caller's terminal (raw while it runs) and the master. Ctrl-C, Ctrl-Z and job
//! control then work inside, through the pty's own line discipline.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::pty::{openpty, Winsize};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};
use serde::{Deserialize, Serialize};

use crate::sys::Errno;

#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
pub enum PtyError {
    #[error("allocating a pseudo-terminal: {0} (is /dev/pts mounted and /dev/ptmx usable?)")]
    Open(Errno),
    #[error("duplicating the terminal for stdio: {0}")]
    Dup(Errno),
}

nix::ioctl_read_bad!(get_winsize, libc::TIOCGWINSZ, Winsize);
nix::ioctl_write_ptr_bad!(set_winsize, libc::TIOCSWINSZ, Winsize);

/// The caller's half: the master, and the caller's terminal state to restore.
pub struct Relay {
    master: OwnedFd,
    saved: Option<Termios>,
    stdin_open: bool,
}

/// Opens a pty sized like the caller's terminal. Returns the relay and three copies of the
/// slave for the application's stdin, stdout and stderr.
pub fn open() -> Result<(Relay, Vec<OwnedFd>), PtyError> {
    let size = winsize(std::io::stdin().as_fd());
    let pty = openpty(size.as_ref(), None).map_err(|e| PtyError::Open(e.into()))?;
    let mut stdio = Vec::with_capacity(3);
    for _ in 0..2 {
        stdio.push(pty.slave.try_clone().map_err(|e| PtyError::Dup(e.into()))?);
    }
    stdio.push(pty.slave);
    // The caller's terminal goes raw: keys reach the pty untouched, its line discipline acts.
    let saved = tcgetattr(std::io::stdin()).ok();
    if let Some(t) = &saved {
        let mut raw = t.clone();
        cfmakeraw(&mut raw);
        let _ = tcsetattr(std::io::stdin(), SetArg::TCSANOW, &raw);
    }
    set_cloexec(pty.master.as_fd());
    Ok((Relay { master: pty.master, saved, stdin_open: true }, stdio))
}

fn set_cloexec(fd: BorrowedFd<'_>) {
    let _ = nix::fcntl::fcntl(fd.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC));
}

fn winsize(fd: BorrowedFd<'_>) -> Option<Winsize> {
    let mut ws = Winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ writes a Winsize into a valid, owned struct.
    unsafe { get_winsize(fd.as_raw_fd(), &mut ws) }.ok().map(|_| ws)
}

impl Relay {
    /// The fds to poll: the master, and the caller's stdin while it is open.
    pub fn poll_fds(&self) -> Vec<BorrowedFd<'_>> {
        let mut v = vec![self.master.as_fd()];
        if self.stdin_open {
            // SAFETY: fd 0 stays open for the whole life of the caller.
            v.push(unsafe { BorrowedFd::borrow_raw(0) });
        }
        v
    }

    /// Copies what is readable: master -> stdout, stdin -> master. `ready[i]` says whether
    /// `poll_fds()[i]` polled readable (or hung up).
    pub fn pump(&mut self, ready: &[bool]) {
        if ready.first() == Some(&true) {
            self.drain_master();
        }
        if self.stdin_open && ready.get(1) == Some(&true) {
            let mut buf = [0u8; 4096];
            match nix::unistd::read(0, &mut buf) {
                Ok(0) | Err(_) => self.stdin_open = false,
                Ok(n) => write_all(self.master.as_fd(), &buf[..n]),
            }
        }
    }

    /// Copies everything the master has now to stdout (also at the end: the last output).
    pub fn drain_master(&mut self) {
        let mut buf = [0u8; 8192];
        let mut fds = [nix::poll::PollFd::new(self.master.as_fd(), nix::poll::PollFlags::POLLIN)];
        while matches!(nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO), Ok(n) if n > 0) {
            match nix::unistd::read(self.master.as_raw_fd(), &mut buf) {
                Ok(n) if n > 0 => write_all(std::io::stdout().as_fd(), &buf[..n]),
                _ => break,
            }
        }
    }

    /// The caller's terminal changed size: the pty follows (and signals its foreground group).
    pub fn resize(&self) {
        if let Some(ws) = winsize(std::io::stdin().as_fd()) {
            // SAFETY: TIOCSWINSZ reads a valid Winsize.
            let _ = unsafe { set_winsize(self.master.as_raw_fd(), &ws) };
        }
    }
}

fn write_all(fd: BorrowedFd<'_>, mut buf: &[u8]) {
    while !buf.is_empty() {
        match nix::unistd::write(fd, buf) {
            Ok(n) => buf = &buf[n..],
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = tcsetattr(std::io::stdin(), SetArg::TCSANOW, t);
        }
    }
}

/// Application side: a new session whose controlling terminal is stdin (the pty slave).
pub fn make_controlling_terminal() -> Result<(), Errno> {
    nix::unistd::setsid().map_err(Errno::from)?;
    // SAFETY: TIOCSCTTY on fd 0 with argument 0 (do not steal from another session).
    let r = unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) };
    if r == -1 {
        return Err(Errno::last());
    }
    Ok(())
}
