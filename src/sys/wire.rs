//! Typed messages between nsboot's processes: length-prefixed JSON frames over pipes and
//! sockets. An unexpected message or a peer that went away is a typed error naming what was
//! expected, never a bare "EOF".

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::sys::Errno;

/// Frames larger than this are refused (a spec is at most 4 MiB).
const MAX_FRAME: u32 = 8 << 20;

#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
pub enum WireError {
    #[error("waiting for {expected}: the other side went away")]
    Closed { expected: String },
    #[error("waiting for {expected}: {errno}")]
    Io { expected: String, errno: Errno },
    #[error("waiting for {expected}: malformed message: {msg}")]
    Malformed { expected: String, msg: String },
}

/// A borrowed fd as std's Read/Write, without taking ownership.
pub struct FdIo<'a>(pub BorrowedFd<'a>);

impl Read for FdIo<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            match nix::unistd::read(self.0.as_raw_fd(), buf) {
                Err(nix::errno::Errno::EINTR) => continue,
                r => return r.map_err(std::io::Error::from),
            }
        }
    }
}

impl Write for FdIo<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        loop {
            match nix::unistd::write(self.0, buf) {
                Err(nix::errno::Errno::EINTR) => continue,
                r => return r.map_err(std::io::Error::from),
            }
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl FdIo<'_> {
    /// write_all, reporting the errno.
    pub fn write_all_checked(&mut self, buf: &[u8]) -> Result<(), Errno> {
        self.write_all(buf).map_err(Errno::from)
    }
}

/// One frame: the body's length (u32, little-endian), then the body (JSON).
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, WireError> {
    let body = serde_json::to_vec(msg).map_err(|e| WireError::Malformed {
        expected: "a message to send".into(),
        msg: e.to_string(),
    })?;
    let mut buf = Vec::with_capacity(body.len() + 4);
    buf.extend_from_slice(&(body.len() as u32).to_le_bytes());
    buf.extend_from_slice(&body);
    Ok(buf)
}

/// Sends one frame. A single write, so a frame on a pipe or a seqpacket socket is atomic
/// for small messages.
pub fn send<T: Serialize>(fd: impl AsFd, msg: &T) -> Result<(), WireError> {
    let buf = encode(msg)?;
    FdIo(fd.as_fd()).write_all(&buf).map_err(|e| WireError::Io {
        expected: "the peer to take a message".into(),
        errno: e.into(),
    })
}

/// Receives one frame; `Ok(None)` when the peer closed its end before sending anything.
pub fn recv<T: DeserializeOwned>(fd: impl AsFd, expected: &str) -> Result<Option<T>, WireError> {
    let mut io = FdIo(fd.as_fd());
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match io.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => {
                return Err(WireError::Closed {
                    expected: expected.into(),
                })
            }
            Ok(n) => got += n,
            Err(e) => {
                return Err(WireError::Io {
                    expected: expected.into(),
                    errno: e.into(),
                })
            }
        }
    }
    let len = u32::from_le_bytes(len);
    if len > MAX_FRAME {
        return Err(WireError::Malformed {
            expected: expected.into(),
            msg: format!("frame of {len} bytes"),
        });
    }
    let mut body = vec![0u8; len as usize];
    io.read_exact(&mut body).map_err(|_| WireError::Closed {
        expected: expected.into(),
    })?;
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| WireError::Malformed {
            expected: expected.into(),
            msg: e.to_string(),
        })
}

/// Receives one frame and insists on it.
pub fn expect<T: DeserializeOwned>(fd: impl AsFd, expected: &str) -> Result<T, WireError> {
    recv(fd, expected)?.ok_or_else(|| WireError::Closed {
        expected: expected.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_eof_is_none() {
        let (r, w) = nix::unistd::pipe().unwrap();
        send(&w, &vec!["a".to_string(), "b".to_string()]).unwrap();
        drop(w);
        let got: Vec<String> = expect(&r, "a list").unwrap();
        assert_eq!(got, ["a", "b"]);
        assert!(recv::<Vec<String>>(&r, "more").unwrap().is_none());
    }

    #[test]
    fn truncated_frame_is_a_typed_error() {
        let (r, w) = nix::unistd::pipe().unwrap();
        nix::unistd::write(&w, &[10, 0, 0, 0, b'{']).unwrap();
        drop(w);
        let err = recv::<Vec<String>>(&r, "the ready message").unwrap_err();
        assert!(err.to_string().contains("the ready message"), "{err}");
    }
}
