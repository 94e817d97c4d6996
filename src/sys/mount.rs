//! The new mount API's calls that nix does not wrap: a tmpfs made detached (fsopen, fsconfig,
//! fsmount: no path of any mount namespace leads to it), a detached copy of a mount tree
//! (open_tree) and a detached mount attached (move_mount).

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::Errno;

const FSOPEN_CLOEXEC: u32 = 1;
const FSCONFIG_SET_STRING: u32 = 1;
const FSCONFIG_CMD_CREATE: u32 = 6;
const FSMOUNT_CLOEXEC: u32 = 1;
const MOUNT_ATTR_NOSUID: u32 = 0x2;
const MOUNT_ATTR_NOEXEC: u32 = 0x8;

fn fd_or_errno(rc: libc::c_long) -> Result<OwnedFd, Errno> {
    if rc < 0 {
        return Err(Errno::last());
    }
    // SAFETY: a successful fsopen/fsmount/open_tree returned this fd, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(rc as i32) })
}

/// A new tmpfs (mode 0700, nosuid, noexec, devices allowed), as a detached mount: the fd of
/// its root. Its superblock belongs to the caller's user namespace.
pub fn detached_tmpfs() -> Result<OwnedFd, Errno> {
    // SAFETY: fsopen reads the static NUL-terminated name; it returns a new fd or -1.
    let fs =
        fd_or_errno(unsafe { libc::syscall(libc::SYS_fsopen, c"tmpfs".as_ptr(), FSOPEN_CLOEXEC) })?;
    let config = |cmd: u32, key: Option<&std::ffi::CStr>, value: Option<&std::ffi::CStr>| {
        let ptr = |s: Option<&std::ffi::CStr>| s.map_or(std::ptr::null(), |s| s.as_ptr());
        // SAFETY: fsconfig reads the NUL-terminated key and value (or takes NULL), alive for
        // the call, on the open fs context.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fs.as_raw_fd(),
                cmd,
                ptr(key),
                ptr(value),
                0,
            )
        };
        if rc < 0 {
            return Err(Errno::last());
        }
        Ok(())
    };
    config(FSCONFIG_SET_STRING, Some(c"mode"), Some(c"0700"))?;
    config(FSCONFIG_SET_STRING, Some(c"size"), Some(c"64k"))?;
    config(FSCONFIG_CMD_CREATE, None, None)?;
    let attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC;
    // SAFETY: fsmount takes the configured fs context fd and flags; it returns a new fd or -1.
    fd_or_errno(unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, attrs) })
}

/// Attaches the detached mount `tree` onto the directory `target`.
pub fn attach(tree: BorrowedFd<'_>, target: BorrowedFd<'_>) -> Result<(), Errno> {
    let both = libc::MOVE_MOUNT_F_EMPTY_PATH | libc::MOVE_MOUNT_T_EMPTY_PATH;
    // SAFETY: move_mount reads the two static "" paths; both fds are open.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            both,
        )
    };
    if rc < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// A detached copy of the mount at `source` (open_tree with OPEN_TREE_CLONE), and of every
/// mount beneath it when `recursive`: it can be attached elsewhere, in this or another mount
/// namespace ([`attach`]).
pub fn clone_tree(source: BorrowedFd<'_>, recursive: bool) -> Result<OwnedFd, Errno> {
    let rec = if recursive { libc::AT_RECURSIVE } else { 0 } as u32;
    let flags = libc::OPEN_TREE_CLONE | libc::OPEN_TREE_CLOEXEC | libc::AT_EMPTY_PATH as u32 | rec;
    // SAFETY: open_tree reads the static "" path; it returns a new fd or -1.
    fd_or_errno(unsafe {
        libc::syscall(libc::SYS_open_tree, source.as_raw_fd(), c"".as_ptr(), flags)
    })
}
