//! A terminal for a foreground sandbox (`run`/`do` with process.terminal): the application
//! makes a pty in the container's devpts (its name resolves inside) and sends the master back;
//! the caller relays between its own terminal (raw while it runs) and the master. Ctrl-C, Ctrl-Z and job
//! control then work inside, through the pty's own line discipline.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::pty::Winsize;
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};
use serde::{Deserialize, Serialize};

use crate::sys::Errno;

#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
pub enum PtyError {
    #[error(
        "receiving the terminal from the sandbox: {0} (does the spec mount a devpts at /dev/pts?)"
    )]
    Open(Errno),
}

nix::ioctl_read_bad!(get_winsize, libc::TIOCGWINSZ, Winsize);
nix::ioctl_write_ptr_bad!(set_winsize, libc::TIOCSWINSZ, Winsize);

/// The caller's half: the master, and the caller's terminal state to restore.
pub struct Relay {
    master: OwnedFd,
    saved: Option<Termios>,
    stdin_open: bool,
}

/// A socket pair for a foreground terminal: the application makes a pty inside the container
/// and sends its master over `app_end` (see `console`); the caller receives it on its end.
pub fn console_pair() -> Result<(OwnedFd, OwnedFd), PtyError> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| PtyError::Open(e.into()))
}

/// Receives the pty master from the application, sizes it like the caller's terminal (when
/// stdin is one, which then wins over process.consoleSize, as with runc) and puts
/// the caller's terminal in raw mode: keys reach the pty untouched and its line discipline acts.
pub fn receive(sock: &OwnedFd) -> Result<Relay, PtyError> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut name = [0u8; 256];
    let mut iov = [std::io::IoSliceMut::new(&mut name)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| PtyError::Open(e.into()))?;
    let fd = msg
        .cmsgs()
        .map_err(|e| PtyError::Open(e.into()))?
        .find_map(|c| match c {
            ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
            _ => None,
        })
        .ok_or(PtyError::Open(Errno(libc::EPROTO)))?;
    // SAFETY: the fd arrived with SCM_RIGHTS just now; nothing else owns it.
    let master = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let relay = Relay {
        master,
        saved: tcgetattr(std::io::stdin()).ok(),
        stdin_open: true,
    };
    relay.resize();
    if let Some(t) = &relay.saved {
        let mut raw = t.clone();
        cfmakeraw(&mut raw);
        let _ = tcsetattr(std::io::stdin(), SetArg::TCSANOW, &raw);
    }
    Ok(relay)
}

fn winsize(fd: BorrowedFd<'_>) -> Option<Winsize> {
    let mut ws = Winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a Winsize into a valid, owned struct.
    unsafe { get_winsize(fd.as_raw_fd(), &mut ws) }
        .ok()
        .map(|_| ws)
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
        let mut fds = [nix::poll::PollFd::new(
            self.master.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
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
