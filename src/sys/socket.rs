//! Unix stream sockets at host paths (the controller socket, the engine's console socket),
//! reached even when the path is longer than sun_path.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sys::socket::SockFlag;

use super::Errno;

/// A Unix stream socket at `path`: `bind`+`listen` (create) or `connect` (start, and the
/// engine's console socket).
pub fn unix_socket(path: &Path, listening: bool) -> Result<OwnedFd, Errno> {
    use nix::sys::socket::{
        bind, connect, listen, socket, AddressFamily, Backlog, SockType, UnixAddr,
    };
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // sun_path holds 107 bytes: a longer path is reached through its directory's fd in /proc.
    let (_dir, short);
    let path = if path.as_os_str().len() >= 108 {
        let (d, p) = via_proc_fd(path)?;
        (_dir, short) = (d, p);
        short.as_path()
    } else {
        path
    };
    let addr = UnixAddr::new(path)?;
    if listening {
        bind(fd.as_raw_fd(), &addr)?;
        listen(&fd, Backlog::new(4)?)?;
    } else {
        connect(fd.as_raw_fd(), &addr)?;
    }
    Ok(fd)
}

/// `path` as /proc/self/fd/N/NAME, N an O_PATH fd of its directory (kept open by the caller).
fn via_proc_fd(path: &Path) -> Result<(OwnedFd, PathBuf), Errno> {
    use std::os::unix::fs::OpenOptionsExt;
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(Errno(libc::ENAMETOOLONG));
    };
    let dir: OwnedFd = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(parent)
        .map_err(Errno::from)?
        .into();
    let short = Path::new("/proc/self/fd")
        .join(dir.as_raw_fd().to_string())
        .join(name);
    Ok((dir, short))
}
