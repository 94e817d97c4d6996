//! A container's terminal (`process.terminal`): its pty's master is the engine's (sent over the
//! console socket at create), outside the tree CRIU dumps, so CRIU cannot dump the pair. As LXC
//! does with CRIU's command line: at dump, the application's terminal (the pty slave on its
//! stdio) is external, `--external tty[RDEV:DEV]` (CRIU's key: the slave's st_rdev and st_dev
//! in hex), kept in the record; at restore, a new pty's master goes to the restore's console
//! socket and its slave to CRIU as that terminal (`--inherit-fd fd[N]:tty[RDEV:DEV]`), which
//! CRIU makes the restored session's controlling terminal again.
//!
//! The new pty is the host's (the caller's devpts), not the container's: that devpts is made by
//! CRIU itself as it restores the mounts, after it has taken the fds it inherits, and CRIU
//! 3.17's command line cannot hand back a master made there (runc's `--orphan-pts-master` is an
//! RPC notification). The restored terminal then has no /dev/pts name inside the container, as
//! LXC's restored console.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::process::console::{self, ConsoleError, Pty};

/// The fd the restore's criu inherits the new terminal's slave at (after the supervisor's
/// report pipe, fd 3).
pub const INHERITED: i32 = 4;

#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
pub enum TtyError {
    #[error("restore of container {id}: the checkpoint's application has a terminal (process.terminal): pass --console-socket to receive its new pty's master, as to create")]
    NoSocket { id: String },
    #[error("restore of container {id}: --console-socket was given, but the checkpoint's application has no terminal: drop --console-socket")]
    NoTerminal { id: String },
    #[error("restore of container {id}: {error}")]
    Console { id: String, error: ConsoleError },
}

/// Whether `meta` (of an open file) is a Unix98 pty's slave (/dev/pts/N).
pub fn is_pty_slave(meta: &std::fs::Metadata) -> bool {
    // UNIX98_PTY_SLAVE_MAJOR (136) and the 7 majors after it.
    let major = nix::sys::stat::major(meta.rdev());
    meta.file_type().is_char_device() && (136..144).contains(&major)
}

/// CRIU's key of the application `app`'s terminal: the first pty slave on its stdio, as
/// `tty[RDEV:DEV]` (CRIU formats both with PRIx64).
pub fn key(app: i32) -> Option<String> {
    (0..3).find_map(|fd| {
        let meta = std::fs::metadata(format!("/proc/{app}/fd/{fd}")).ok()?;
        is_pty_slave(&meta).then(|| format!("tty[{:x}:{:x}]", meta.rdev(), meta.dev()))
    })
}

/// The restored application's new terminal: a pty whose master goes to the console socket.
pub struct Console {
    sock: OwnedFd,
    pty: Pty,
}

impl Console {
    /// For a checkpoint whose terminal is `key` (the record's), restored with `socket`: the
    /// socket connected and a new pty opened, or the mismatch refused (as runc refuses a
    /// terminal without a console socket).
    pub fn open(
        id: &str,
        key: Option<&str>,
        socket: Option<&Path>,
    ) -> Result<Option<Console>, TtyError> {
        let console = |error| TtyError::Console {
            id: id.into(),
            error,
        };
        match (key, socket) {
            (None, None) => Ok(None),
            (Some(_), None) => Err(TtyError::NoSocket { id: id.into() }),
            (None, Some(_)) => Err(TtyError::NoTerminal { id: id.into() }),
            (Some(_), Some(path)) => {
                let sock = console::connect_socket(path).map_err(console)?;
                // In the caller's devpts: the container's does not exist before CRIU runs.
                // The size is the images' (CRIU restores it).
                let pty = console::open_pty(None).map_err(console)?;
                Ok(Some(Console { sock, pty }))
            }
        }
    }

    /// The slave, for CRIU to inherit.
    pub fn slave(&self) -> std::os::fd::BorrowedFd<'_> {
        self.pty.slave.as_fd()
    }

    /// Once restored: the master to the console socket (runc's message: the fd and a name).
    pub fn send(self, id: &str) -> Result<(), TtyError> {
        console::send_master(self.sock.as_fd(), &self.pty).map_err(|error| TtyError::Console {
            id: id.into(),
            error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pty_slave_is_found_by_its_device_and_keyed_as_criu_does() {
        let pty = console::open_pty(None).expect("a pty on the host");
        let path = format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&pty.slave)
        );
        let meta = std::fs::metadata(&path).unwrap();
        assert!(is_pty_slave(&meta));
        let master = format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&pty.master)
        );
        assert!(!is_pty_slave(&std::fs::metadata(master).unwrap()));
        assert!(!is_pty_slave(&std::fs::metadata("/dev/null").unwrap()));
        let want = format!("tty[{:x}:{:x}]", meta.rdev(), meta.dev());
        assert!(want.starts_with("tty[88"), "pts major 136 is 0x88: {want}");
    }
}
