//! `process.terminal`: a pty made inside the container (its own devpts), whose master goes to
//! the engine over `--console-socket` with SCM_RIGHTS, and whose slave becomes the process's
//! controlling terminal and stdio.
//!
//! The socket path is a host path: connect to it before leaving the host's mount namespace
//! (`connect`), open the pty after entering the container's (`open_pty`), send the master
//! (`send_master`), and in the process itself, just before exec, `make_controlling`.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{open, OFlag};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use nix::sys::stat::Mode;
use serde::{Deserialize, Serialize};

use crate::sys::Errno;

#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
pub enum ConsoleError {
    #[error("connecting to the console socket {path}: {errno}: check --console-socket")]
    Connect { path: PathBuf, errno: Errno },
    #[error("{step}: {errno}{hint}")]
    Pty {
        step: String,
        errno: Errno,
        hint: String,
    },
    #[error("sending the terminal to the console socket: {errno}")]
    Send { errno: Errno },
    #[error("process.terminal is true but no --console-socket was given: pass one, or set terminal to false")]
    NoSocket,
}

/// A new pty pair. `name` is the slave's path inside the container (/dev/pts/N).
pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
    pub name: String,
}

/// Connects to the engine's console socket (a Unix stream socket path on the host).
pub fn connect_socket(path: &Path) -> Result<OwnedFd, ConsoleError> {
    crate::sys::socket::unix_socket(path, false).map_err(|errno| ConsoleError::Connect {
        path: path.into(),
        errno,
    })
}

fn pty_err(step: &str, e: nix::errno::Errno) -> ConsoleError {
    let hint = if e == nix::errno::Errno::ENOENT {
        ": the container has no /dev/ptmx: mount a devpts at /dev/pts (newinstance, ptmxmode=0666)"
            .into()
    } else {
        String::new()
    };
    ConsoleError::Pty {
        step: step.into(),
        errno: e.into(),
        hint,
    }
}

/// Opens a new pty in the current mount namespace's devpts (call it inside the container),
/// sized `size` (process.consoleSize; unset or zero leaves the kernel's) before anyone sees it.
pub fn open_pty(size: Option<oci_spec::runtime::Box>) -> Result<Pty, ConsoleError> {
    let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let master = open("/dev/ptmx", flags, Mode::empty())
        .or_else(|_| open("/dev/pts/ptmx", flags, Mode::empty()))
        .map_err(|e| pty_err("opening /dev/ptmx", e))?;
    // SAFETY: `master` is a valid open fd that nothing else owns.
    let master = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(master) };
    let mut unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads an int from a valid pointer.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &mut unlock) } != 0 {
        return Err(pty_err("unlocking the pty", nix::errno::Errno::last()));
    }
    // TIOCGPTPEER opens the slave through the master: no path lookup in a devpts that another
    // mount could shadow.
    // SAFETY: TIOCGPTPEER takes open flags by value and returns a new fd.
    let slave = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if slave < 0 {
        return Err(pty_err(
            "opening the pty's slave",
            nix::errno::Errno::last(),
        ));
    }
    // SAFETY: the kernel just returned this fd; we own it alone.
    let slave = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(slave) };
    if let Some(b) = size.filter(|b| b.height() != 0 || b.width() != 0) {
        // Within u16: the spec's contract refuses larger sizes.
        let ws = libc::winsize {
            ws_row: b.height() as u16,
            ws_col: b.width() as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads a winsize from a valid pointer.
        if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) } != 0 {
            return Err(pty_err(
                "setting the terminal's process.consoleSize",
                nix::errno::Errno::last(),
            ));
        }
    }
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes an unsigned int to a valid pointer.
    let name = if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) } == 0 {
        format!("/dev/pts/{n}")
    } else {
        String::new()
    };
    Ok(Pty {
        master,
        slave,
        name,
    })
}

/// Sends the pty master over the console socket (SCM_RIGHTS), with the slave's name as the
/// message, as runc does; conmon and podman take the fd.
pub fn send_master(sock: BorrowedFd<'_>, pty: &Pty) -> Result<(), ConsoleError> {
    let fds = [pty.master.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let name = if pty.name.is_empty() {
        "/dev/ptmx"
    } else {
        &pty.name
    };
    let iov = [std::io::IoSlice::new(name.as_bytes())];
    loop {
        match sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None) {
            Ok(_) => return Ok(()),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(ConsoleError::Send { errno: e.into() }),
        }
    }
}

/// In the process, just before exec: a new session with the slave as its controlling terminal
/// and as stdin, stdout and stderr.
pub fn make_controlling(slave: impl AsFd) -> Result<(), ConsoleError> {
    let fd = slave.as_fd().as_raw_fd();
    nix::unistd::setsid().map_err(|e| pty_err("starting a session for the terminal", e))?;
    // SAFETY: TIOCSCTTY takes an int argument by value (0: do not steal).
    if unsafe { libc::ioctl(fd, libc::TIOCSCTTY, 0) } != 0 {
        return Err(pty_err(
            "making the pty the controlling terminal",
            nix::errno::Errno::last(),
        ));
    }
    for target in 0..3 {
        nix::unistd::dup2(fd, target).map_err(|e| pty_err("putting the pty on stdio", e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::{
        recvmsg, socketpair, AddressFamily, ControlMessageOwned, SockFlag, SockType,
    };

    #[test]
    fn master_crosses_the_socket_and_talks_to_the_slave() {
        let pty = open_pty(None).expect("a pty on the host");
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap();
        send_master(a.as_fd(), &pty).unwrap();
        let mut buf = [0u8; 64];
        let mut cbuf = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let msg =
            recvmsg::<()>(b.as_raw_fd(), &mut iov, Some(&mut cbuf), MsgFlags::empty()).unwrap();
        let fd = msg
            .cmsgs()
            .unwrap()
            .find_map(|c| match c {
                ControlMessageOwned::ScmRights(v) => v.first().copied(),
                _ => None,
            })
            .expect("an fd");
        let n = msg.bytes;
        assert_eq!(std::str::from_utf8(&buf[..n]).unwrap(), pty.name);
        nix::unistd::write(&pty.slave, b"hi\n").unwrap();
        let mut got = [0u8; 8];
        let k = nix::unistd::read(fd, &mut got).unwrap();
        assert!(got[..k].starts_with(b"hi"), "{:?}", &got[..k]);
        nix::unistd::close(fd).unwrap();
    }
}
