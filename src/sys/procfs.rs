//! Writes into /proc once the container's mounts may exist go through a verified handle: the
//! proc root checked to be procfs's own root, the file opened below it without crossing a
//! mount or following a symlink, and checked to be procfs too. A mount or symlink over the
//! file (CVE-2025-52881: a write redirected to another procfs file, such as a sysctl) makes
//! the write refuse instead of landing elsewhere.

use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use std::os::unix::fs::OpenOptionsExt;

use nix::fcntl::readlinkat;
use nix::sys::stat::fstat;
use nix::sys::statfs::{fstatfs, PROC_SUPER_MAGIC};
use serde::{Deserialize, Serialize};

use crate::sys::{self, Errno};

/// The inode number of every procfs root.
const PROC_ROOT_INO: u64 = 1;

#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
pub enum ProcfsError {
    #[error("/proc/{file}: {why}: refusing to write it (a mount or symlink the container set up may not redirect nsboot's writes)")]
    Unverified { file: String, why: String },
    #[error("/proc/{file}: {errno}")]
    Io { file: String, errno: Errno },
}

/// Writes `text` to /proc/self/`name` through a verified handle.
pub fn write_self(name: &str, text: &str) -> Result<(), ProcfsError> {
    let file = format!("self/{name}");
    let root = open_root(&file)?;
    let io = io_error(&file);
    // /proc/self is a symlink, which the open refuses to follow: name the pid instead.
    let pid = readlinkat(Some(root.as_raw_fd()), "self").map_err(|e| io(e.into()))?;
    let pid = pid.to_string_lossy();
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return Err(unverified(&file, "/proc/self is not a pid"));
    }
    write_below(&root, &format!("{pid}/{name}"), &file, text)
}

/// Writes `text` to /proc/sys/`path` through a verified handle: the sysctl of the
/// writer's own namespaces (the kernel picks them at open).
pub fn write_sys(path: &str, text: &str) -> Result<(), ProcfsError> {
    let rel = format!("sys/{path}");
    write_below(&open_root(&rel)?, &rel, &rel, text)
}

fn unverified(file: &str, why: &str) -> ProcfsError {
    ProcfsError::Unverified {
        file: file.into(),
        why: why.into(),
    }
}

fn io_error(file: &str) -> impl Fn(Errno) -> ProcfsError + '_ {
    move |errno| ProcfsError::Io {
        file: file.into(),
        errno,
    }
}

/// /proc, checked to be the root of a procfs.
fn open_root(file: &str) -> Result<OwnedFd, ProcfsError> {
    let io = io_error(file);
    let root: OwnedFd = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open("/proc")
        .map_err(|e| io(e.into()))?
        .into();
    if !is_proc(root.as_fd())
        || fstat(root.as_raw_fd()).map_err(|e| io(e.into()))?.st_ino != PROC_ROOT_INO
    {
        return Err(unverified(file, "/proc is not a procfs root"));
    }
    Ok(root)
}

/// Opens `rel` below the proc root without crossing a mount or following a symlink, checks
/// it is procfs, and writes `text` to it.
fn write_below(root: &OwnedFd, rel: &str, file: &str, text: &str) -> Result<(), ProcfsError> {
    let io = io_error(file);
    let rel = CString::new(rel).map_err(|_| io(Errno(libc::EINVAL)))?;
    let flags = libc::O_WRONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    let resolve = libc::RESOLVE_NO_XDEV | libc::RESOLVE_NO_MAGICLINKS | libc::RESOLVE_NO_SYMLINKS;
    let fd = match sys::openat2(root.as_fd(), &rel, flags, resolve) {
        Ok(fd) => fd,
        Err(Errno(libc::EXDEV)) => return Err(unverified(file, "a mount covers it")),
        Err(Errno(libc::ELOOP)) => return Err(unverified(file, "it is a symlink")),
        Err(e) => return Err(io(e)),
    };
    if !is_proc(fd.as_fd()) {
        return Err(unverified(file, "it is not on procfs"));
    }
    std::fs::File::from(fd)
        .write_all(text.as_bytes())
        .map_err(|e| io(e.into()))
}

/// The file is on a procfs.
pub fn is_proc(fd: BorrowedFd<'_>) -> bool {
    fstatfs(fd).is_ok_and(|s| s.filesystem_type() == PROC_SUPER_MAGIC)
}
