//! The controller socket (runsc's --controller-fd): how a caller drives a booted supervisor.
//! Typed requests and replies as `wire` frames over a Unix stream socket.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use nix::sys::socket::{accept4, SockFlag};

use serde::{Deserialize, Serialize};

use crate::process::ProcessError;
use crate::sys::wire::{self, WireError};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum Request {
    /// Start the application (the supervisor is waiting for it).
    Start,
    /// Send a signal to the application (`all`: to every process of the sandbox).
    Signal { signo: i32, all: bool },
}

#[derive(Debug, Serialize, Deserialize)]
pub enum Reply {
    Started {
        pid: i32,
    },
    /// The application exited with this status (the supervisor's own exit follows).
    Exited {
        status: i32,
    },
    StartFailed(ProcessError),
    Signalled,
    Failed(String),
}

#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
pub enum ControlError {
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("{0}")]
    Start(ProcessError),
    #[error("unexpected reply from the sandbox: {0}")]
    Unexpected(String),
}

/// Caller: asks the supervisor to start the application; the reply says whether it exec'd.
pub fn send_start(sock: impl AsFd) -> Result<i32, ControlError> {
    request_start(&sock)?;
    start_reply(sock)
}

/// Caller: queues the Start request; the supervisor reads it once its application is ready.
pub fn request_start(sock: impl AsFd) -> Result<(), ControlError> {
    Ok(wire::send(&sock, &Request::Start)?)
}

/// Caller: the reply to a Start request sent earlier: the application's pid once it exec'd.
pub fn start_reply(sock: impl AsFd) -> Result<i32, ControlError> {
    match wire::expect::<Reply>(&sock, "the start reply from the sandbox")? {
        Reply::Started { pid } => Ok(pid),
        Reply::StartFailed(e) => Err(ControlError::Start(e)),
        other => Err(ControlError::Unexpected(format!("{other:?}"))),
    }
}

/// Supervisor: waits for the start request. `sock` is either connected (a foreground run)
/// or listening (`create`: `start` connects later); returns the connection to reply on.
pub fn wait_for_start(sock: OwnedFd) -> Result<OwnedFd, ControlError> {
    let conn = if is_listening(&sock) {
        loop {
            match accept4(sock.as_raw_fd(), SockFlag::SOCK_CLOEXEC) {
                // SAFETY: accept4 returned a new fd that nothing else owns.
                Ok(fd) => break unsafe { OwnedFd::from_raw_fd(fd) },
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    return Err(ControlError::Wire(WireError::Io {
                        expected: "a start connection".into(),
                        errno: e.into(),
                    }))
                }
            }
        }
    } else {
        sock
    };
    match wire::expect::<Request>(&conn, "the start signal from the caller")? {
        Request::Start => Ok(conn),
        other => Err(ControlError::Unexpected(format!("{other:?} before Start"))),
    }
}

/// Supervisor: takes a Start request the caller already queued on a connected controller
/// (a foreground run with no hook before start), without waiting. True: the application may
/// exec as soon as its root is ready.
pub fn take_queued_start(sock: &OwnedFd) -> bool {
    use nix::sys::socket::{recv, MsgFlags};
    if is_listening(sock) {
        return false;
    }
    let Ok(frame) = wire::encode(&Request::Start) else {
        return false;
    };
    let mut buf = vec![0u8; frame.len()];
    let peek = MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT;
    if recv(sock.as_raw_fd(), &mut buf, peek) != Ok(frame.len()) || buf != frame {
        return false;
    }
    recv(sock.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) == Ok(frame.len())
}

fn is_listening(sock: &OwnedFd) -> bool {
    nix::sys::socket::getsockopt(sock, nix::sys::socket::sockopt::AcceptConn).unwrap_or(false)
}

/// The controller socket of a created container: `<state dir>/ctl.sock`, listening.
pub fn listen(path: &std::path::Path) -> Result<OwnedFd, WireError> {
    crate::sys::socket::unix_socket(path, true).map_err(|errno| WireError::Io {
        expected: format!("a controller socket at {}", path.display()),
        errno,
    })
}

/// `start`: connects to a created container's controller socket.
pub fn connect(path: &std::path::Path) -> Result<OwnedFd, WireError> {
    crate::sys::socket::unix_socket(path, false).map_err(|errno| WireError::Io {
        expected: format!("the sandbox's controller at {}", path.display()),
        errno,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockets_at_paths_longer_than_sun_path_still_listen_and_connect() {
        let tmp = tempfile::tempdir().unwrap();
        let deep = tmp.path().join("d".repeat(60)).join("e".repeat(60));
        std::fs::create_dir_all(&deep).unwrap();
        let path = deep.join("ctl.sock");
        assert!(path.as_os_str().len() > 108);
        let listener = listen(&path).unwrap();
        assert!(path.exists(), "the socket is bound at the long path itself");
        let client = connect(&path).unwrap();
        wire::send(&client, &Request::Start).unwrap();
        let conn = wait_for_start(listener).unwrap();
        wire::send(&conn, &Reply::Started { pid: 7 }).unwrap();
        assert_eq!(start_reply(&client).unwrap(), 7);
    }
}
