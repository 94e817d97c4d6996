//! The user-namespace sync (runsc's --sync-userns-fd), the child's half: block until the
//! caller has written our id maps and closed its end, then become root inside the namespace.
//! The caller's half is `idmap::start_writing`, `Pending::finish`, then dropping the write end
//! (`sandbox::Spawning`).

use std::os::fd::{AsRawFd, OwnedFd};

use nix::unistd::{setresgid, setresuid, Gid, Uid};
use serde::{Deserialize, Serialize};

use crate::sys::Errno;

#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
pub enum UsernsError {
    #[error("waiting for the id maps on the sync fd: {0}")]
    Sync(Errno),
    #[error("the caller sent data on the sync fd instead of closing it")]
    UnexpectedData,
    #[error("becoming root in the user namespace: setresgid(0): {0}{hint}", hint = unmapped(*.0, "gid"))]
    Setgid(Errno),
    #[error("becoming root in the user namespace: setresuid(0): {0}{hint}", hint = unmapped(*.0, "uid"))]
    Setuid(Errno),
}

/// EINVAL: the id is not mapped. EPERM is no mapping's fault (no capability in the namespace:
/// the caller names the cause).
fn unmapped(errno: Errno, what: &str) -> String {
    if errno.0 == libc::EINVAL {
        format!(" ({what} 0 is not mapped: check {what}Mappings)")
    } else {
        String::new()
    }
}

/// Blocks on `sync` until EOF (the maps are written), then setresgid/setresuid to 0.
pub fn wait_for_maps_and_become_root(sync: OwnedFd) -> Result<(), UsernsError> {
    let mut b = [0u8; 1];
    loop {
        match nix::unistd::read(sync.as_raw_fd(), &mut b) {
            Ok(0) => break,
            Ok(_) => return Err(UsernsError::UnexpectedData),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(UsernsError::Sync(e.into())),
        }
    }
    drop(sync);
    become_root()
}

/// setresgid then setresuid to 0 (gid first: after the uid change we could no longer).
pub fn become_root() -> Result<(), UsernsError> {
    let root_g = Gid::from_raw(0);
    setresgid(root_g, root_g, root_g).map_err(|e| UsernsError::Setgid(e.into()))?;
    // Supplementary groups from the host mean nothing here; drop them where setgroups is
    // allowed (maps written by newgidmap or as real root). EPERM means setgroups=deny: fine.
    let _ = nix::unistd::setgroups(&[]);
    let root_u = Uid::from_raw(0);
    setresuid(root_u, root_u, root_u).map_err(|e| UsernsError::Setuid(e.into()))
}
