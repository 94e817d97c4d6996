//! The state root: chosen by one rule, made for the caller alone (0700), opened without
//! following a symlink and checked on the opened fd (owner, mode). From then on every entry
//! is reached through that fd (`/proc/self/fd/N/ID`): the path is never walked again, so a
//! directory swapped in meanwhile is never used.
//!
//! Without XDG_RUNTIME_DIR the root lies in a directory every local user can write (/tmp):
//! another user who makes `/tmp/nsboot-UID` first could plant entries whose hooks a `start`
//! or `delete` would run. A root the caller does not own, or that others may write, is
//! refused.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::StateError;

/// The opened root of this process: its fd, the path that reaches entries through it, and
/// the path it was opened as (for messages).
struct Opened {
    _fd: OwnedFd,
    at: PathBuf,
    shown: PathBuf,
}

static OPENED: OnceLock<Opened> = OnceLock::new();

/// Where the state root is: `--root` as given; for real root /run/nsboot; else
/// $XDG_RUNTIME_DIR/nsboot, /run/user/UID/nsboot when that directory is the caller's,
/// $TMPDIR/nsboot-UID, /tmp/nsboot-UID, the first that applies.
pub fn path(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.into();
    }
    if !crate::idmap::is_rootless() {
        return "/run/nsboot".into();
    }
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(x) = var("XDG_RUNTIME_DIR") {
        return Path::new(&x).join("nsboot");
    }
    let euid = nix::unistd::geteuid().as_raw();
    let run_user = PathBuf::from(format!("/run/user/{euid}"));
    let mine = std::fs::symlink_metadata(&run_user).is_ok_and(|m| m.is_dir() && m.uid() == euid);
    if mine {
        return run_user.join("nsboot");
    }
    tmp_dir().join(format!("nsboot-{euid}"))
}

/// The directory for temporary files: $TMPDIR when set and not empty, else /tmp (the state
/// root's last resort, and `check`'s probe).
pub fn tmp_dir() -> PathBuf {
    std::env::var_os("TMPDIR")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from("/tmp"), PathBuf::from)
}

/// Opens (making it, 0700, if needed) the state root and checks it; returns the path through
/// which its entries are reached. Once per process: later calls return the same.
pub fn open(flag: Option<&Path>) -> Result<PathBuf, StateError> {
    if let Some(o) = OPENED.get() {
        return Ok(o.at.clone());
    }
    let shown = path(flag);
    let mut mkdir = std::fs::DirBuilder::new();
    // --root may name a new tree (runc makes it); the default's parent must exist.
    mkdir.mode(0o700).recursive(flag.is_some());
    match mkdir.create(&shown) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(super::io(&shown, e)),
    }
    let fd = nix::fcntl::open(
        &shown,
        nix::fcntl::OFlag::O_RDONLY
            | nix::fcntl::OFlag::O_DIRECTORY
            | nix::fcntl::OFlag::O_NOFOLLOW
            | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| match e {
        nix::errno::Errno::ELOOP | nix::errno::Errno::ENOTDIR => {
            unsafe_root(&shown, "is a symlink or not a directory")
        }
        e => super::io(&shown, e),
    })?;
    // SAFETY: open just returned this fd; nothing else owns it.
    let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let st = nix::sys::stat::fstat(fd.as_raw_fd()).map_err(|e| super::io(&shown, e))?;
    check(st.st_uid, st.st_mode, nix::unistd::geteuid().as_raw())
        .map_err(|why| unsafe_root(&shown, &why))?;
    let at = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    let opened = OPENED.get_or_init(|| Opened { _fd: fd, at, shown });
    Ok(opened.at.clone())
}

/// The fd of the opened root, for a process cloned from this one that must close it.
pub fn fd() -> Option<std::os::fd::BorrowedFd<'static>> {
    use std::os::fd::AsFd;
    OPENED.get().map(|o| o._fd.as_fd())
}

/// Only the caller's own directory, writable by nobody else, may hold the state.
fn check(uid: u32, mode: u32, euid: u32) -> Result<(), String> {
    if uid != euid {
        return Err(format!(
            "belongs to uid {uid}, not to you (uid {euid}): another user may have made it"
        ));
    }
    if mode & 0o022 != 0 {
        return Err(format!(
            "is writable by others (mode {:o}): entries in it may be anyone's",
            mode & 0o7777
        ));
    }
    Ok(())
}

fn unsafe_root(path: &Path, why: &str) -> StateError {
    StateError::UnsafeRoot {
        path: path.into(),
        why: why.into(),
    }
}

/// `path` as the user knows it: the opened root's path in place of `/proc/self/fd/N`.
pub fn shown(path: &Path) -> PathBuf {
    match OPENED
        .get()
        .and_then(|o| Some((o, path.strip_prefix(&o.at).ok()?)))
    {
        Some((o, rest)) if rest.as_os_str().is_empty() => o.shown.clone(),
        Some((o, rest)) => o.shown.join(rest),
        None => path.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn only_the_callers_own_unshared_root_passes() {
        assert!(check(1000, 0o40700, 1000).is_ok());
        assert!(check(1000, 0o40755, 1000).is_ok());
        assert!(check(1001, 0o40700, 1000).unwrap_err().contains("uid 1001"));
        assert!(check(1000, 0o40770, 1000).unwrap_err().contains("770"));
        assert!(check(1000, 0o41777, 1000).unwrap_err().contains("1777"));
    }
}
