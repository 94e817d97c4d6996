//! Paths resolved inside a root without ever leaving it, and the mount(2) calls made on what
//! was resolved.
//!
//! Why a manual walk rather than openat2(RESOLVE_IN_ROOT): a mount target may not exist yet,
//! so missing components are created as the walk goes (mkdir -p, with a file at the end when
//! a file is bound), and a single openat2 cannot create directories. The walk opens one
//! component at a time with O_PATH|O_NOFOLLOW; a symlink is read and its target spliced into
//! the remaining components (an absolute target restarts at the root), and `..` pops the
//! stack of open directories, so it stops at the root exactly like RESOLVE_IN_ROOT does.
//! A container's `/proc -> /` therefore lands on the container root, never on the host.
//!
//! Most paths have no symlink in them: one openat2(RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS)
//! resolves those in a single call. It fails (ELOOP) at the first symlink, and then the walk
//! takes over; so does it for anything missing that is to be created, or on kernels without
//! openat2.
//!
//! Mounting then goes through `/proc/self/fd/N` (a proc is visible at /proc on both the
//! supervisor and the application side when these run): mount(2) follows that magic link to
//! the very object we opened, so no path is walked a second time by the kernel.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Component, Path, PathBuf};

use nix::fcntl::{openat, readlinkat, OFlag};
use nix::mount::{mount, MsFlags};
use nix::sys::stat::{fstat, mkdirat, Mode, SFlag};
use nix::sys::statvfs::{fstatvfs, FsFlags};

use crate::sys::Errno;

/// Linux's own limit on symlinks followed in one lookup (MAXSYMLINKS).
const MAX_SYMLINKS: usize = 40;

/// What to do with a missing last component; missing parents are always created as
/// directories when this is not `No`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    No,
    Dir,
    File,
}

/// An O_PATH fd on the object a path resolved to, and where that is inside the root.
#[derive(Debug)]
pub struct Resolved {
    pub fd: OwnedFd,
    pub path: PathBuf,
}

pub(super) fn own(fd: RawFd) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful open call and nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Opens a directory to serve as a root for `resolve` (the path itself is trusted).
pub fn open_root(path: &Path) -> Result<OwnedFd, Errno> {
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    Ok(own(nix::fcntl::open(path, flags, Mode::empty())?))
}

/// The magic link through which mount(2) reaches exactly the object behind `fd`.
pub fn fd_path(fd: BorrowedFd<'_>) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

pub fn is_dir(fd: BorrowedFd<'_>) -> Result<bool, Errno> {
    let st = fstat(fd.as_raw_fd())?;
    Ok(SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR)
}

fn components(path: &Path) -> impl Iterator<Item = OsString> + '_ {
    path.components().filter_map(|c| match c {
        Component::Normal(n) => Some(n.to_os_string()),
        Component::ParentDir => Some(OsString::from("..")),
        Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
    })
}

fn open_nofollow(dir: BorrowedFd<'_>, name: &OsStr) -> Result<OwnedFd, Errno> {
    let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    Ok(own(openat(
        Some(dir.as_raw_fd()),
        name,
        flags,
        Mode::empty(),
    )?))
}

fn create_at(dir: BorrowedFd<'_>, name: &OsStr, what: Create) -> Result<(), Errno> {
    let made = match what {
        Create::Dir => mkdirat(Some(dir.as_raw_fd()), name, Mode::from_bits_truncate(0o755)),
        Create::File => {
            let flags = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY;
            let flags = flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            let mode = Mode::from_bits_truncate(0o644);
            openat(Some(dir.as_raw_fd()), name, flags, mode).map(|fd| drop(own(fd)))
        }
        Create::No => return Err(Errno(libc::ENOENT)),
    };
    match made {
        // Someone made it between our open and our create: fine, the caller opens it again.
        Ok(()) | Err(nix::errno::Errno::EEXIST) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Where `path` is inside the root when it holds no symlink: `..` pops a component and stops at
/// the root, as in the walk.
pub(super) fn lexical(path: &Path) -> PathBuf {
    let mut names: Vec<OsString> = Vec::new();
    for c in components(path) {
        if c == ".." {
            names.pop();
        } else {
            names.push(c);
        }
    }
    std::iter::once(OsStr::new("/").to_os_string())
        .chain(names)
        .collect()
}

/// One openat2 for a path without symlinks. `None`: walk instead (a symlink on the way, a
/// missing component, no openat2...); `Some(Err(ENOENT))` only when nothing is to be created.
fn resolve_fast(
    root: BorrowedFd<'_>,
    path: &Path,
    create: Create,
) -> Option<Result<Resolved, Errno>> {
    // The path as given, `..` included: the kernel looks every component up (and refuses
    // symlinks), so `a/..` is only taken lexically once `a` is known to be no symlink.
    let rel: PathBuf = components(path).collect();
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel.as_path()
    };
    let c_rel = std::ffi::CString::new(rel.as_os_str().as_encoded_bytes()).ok()?;
    let flags = libc::O_PATH | libc::O_CLOEXEC;
    let resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
    match crate::sys::openat2(root, &c_rel, flags, resolve) {
        Ok(fd) => Some(Ok(Resolved {
            fd,
            path: lexical(path),
        })),
        // No symlink came before the missing component, so the walk would stop there too.
        Err(Errno(libc::ENOENT)) if create == Create::No => Some(Err(Errno(libc::ENOENT))),
        Err(_) => None,
    }
}

/// Whether `path` goes through a symlink inside `root` before anything missing in it:
/// `Some(true)` then, `Some(false)` when not, None when the kernel cannot tell (no openat2).
/// What is to be refused at a symlink is refused before anything is created beyond it.
pub fn through_symlink(root: BorrowedFd<'_>, path: &Path) -> Option<bool> {
    let rel: PathBuf = components(path).collect();
    if rel.as_os_str().is_empty() {
        return Some(false);
    }
    let c_rel = std::ffi::CString::new(rel.as_os_str().as_encoded_bytes()).ok()?;
    let resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_SYMLINKS;
    match crate::sys::openat2(root, &c_rel, libc::O_PATH | libc::O_CLOEXEC, resolve) {
        Ok(_) | Err(Errno(libc::ENOENT | libc::ENOTDIR)) => Some(false),
        Err(Errno(libc::ELOOP)) => Some(true),
        Err(_) => None,
    }
}

/// Resolves `path` (absolute or not, it is taken from `root`) inside `root`, following
/// symlinks as if `root` were `/`, creating what is missing according to `create`.
pub fn resolve(root: BorrowedFd<'_>, path: &Path, create: Create) -> Result<Resolved, Errno> {
    if let Some(r) = resolve_fast(root, path, create) {
        return r;
    }
    walk(root, path, create)
}

/// The component-by-component walk behind [`resolve`].
fn walk(root: BorrowedFd<'_>, path: &Path, create: Create) -> Result<Resolved, Errno> {
    let mut stack: Vec<(OwnedFd, OsString)> = Vec::new();
    let mut todo: VecDeque<OsString> = components(path).collect();
    let mut links = 0;
    while let Some(name) = todo.pop_front() {
        if name == ".." {
            stack.pop();
            continue;
        }
        let last = todo.is_empty();
        let dir = stack.last().map_or(root, |(fd, _)| fd.as_fd());
        let fd = match open_nofollow(dir, &name) {
            Err(Errno(libc::ENOENT)) if create != Create::No => {
                create_at(dir, &name, if last { create } else { Create::Dir })?;
                open_nofollow(dir, &name)?
            }
            other => other?,
        };
        let kind = SFlag::from_bits_truncate(fstat(fd.as_raw_fd())?.st_mode) & SFlag::S_IFMT;
        if kind == SFlag::S_IFLNK {
            links += 1;
            if links > MAX_SYMLINKS {
                return Err(Errno(libc::ELOOP));
            }
            let target = PathBuf::from(readlinkat(Some(fd.as_raw_fd()), "")?);
            if target.is_absolute() {
                stack.clear();
            }
            for c in components(&target).collect::<Vec<_>>().into_iter().rev() {
                todo.push_front(c);
            }
        } else if kind == SFlag::S_IFDIR {
            stack.push((fd, name));
        } else if last {
            let mut path: PathBuf = std::iter::once(OsStr::new("/").to_os_string())
                .chain(stack.iter().map(|(_, n)| n.clone()))
                .collect();
            path.push(name);
            return Ok(Resolved { fd, path });
        } else {
            return Err(Errno(libc::ENOTDIR));
        }
    }
    let path = std::iter::once(OsStr::new("/").to_os_string())
        .chain(stack.iter().map(|(_, n)| n.clone()))
        .collect();
    let fd = match stack.pop() {
        Some((fd, _)) => fd,
        None => root.try_clone_to_owned()?,
    };
    Ok(Resolved { fd, path })
}

/// mount(2) of a new filesystem onto the object behind `target`.
pub fn mount_fs(
    target: BorrowedFd<'_>,
    source: &str,
    fstype: &str,
    flags: MsFlags,
    data: &str,
) -> Result<(), Errno> {
    let data = (!data.is_empty()).then_some(data);
    mount(Some(source), &fd_path(target), Some(fstype), flags, data)?;
    Ok(())
}

/// A bind mount (recursive or not) of `source` onto `target`, both as opened fds: a clone of
/// the source's mount (open_tree) moved onto the target (move_mount, Linux >= 5.2). Unlike
/// mount(2) through two /proc/self/fd paths, it walks no procfs: ~2 % of a `run`.
pub fn bind(source: BorrowedFd<'_>, target: BorrowedFd<'_>, recursive: bool) -> Result<(), Errno> {
    bind_with(source, target, recursive, 0)
}

/// [`bind`], with the mount attributes `attrs` (MOUNT_ATTR_NODEV...) set on the clone and all
/// its submounts before it is attached: no moment exists where the mount is there without
/// them. `Err(ENOSYS)` (no mount_setattr, Linux < 5.12) comes before anything is mounted.
pub fn bind_with(
    source: BorrowedFd<'_>,
    target: BorrowedFd<'_>,
    recursive: bool,
    attrs: u64,
) -> Result<(), Errno> {
    bind_tree(source, target, recursive, |tree| match attrs {
        0 => Ok(()),
        _ => set_attrs(tree, attrs),
    })
}

/// A recursive [`bind_with`] for a read-only root: the clone and every mount beneath it get
/// `attrs` and read-only before it is attached, then its top mount gets the source's own
/// read-only state back: mount points are still made in it until the root is done, when it
/// is remounted read-only. One syscall more than [`bind_with`], and no moment where a
/// submount is attached writable. `Err(ENOSYS)` (Linux < 5.12) comes before anything is mounted.
pub fn bind_readonly_below(
    source: BorrowedFd<'_>,
    target: BorrowedFd<'_>,
    attrs: u64,
) -> Result<(), Errno> {
    let source_ro = fstatvfs(source)?.flags().contains(FsFlags::ST_RDONLY);
    bind_tree(source, target, true, |tree| {
        set_attrs(tree, attrs | MOUNT_ATTR_RDONLY)?;
        match source_ro {
            true => Ok(()),
            false => mount_setattr(tree, 0, MOUNT_ATTR_RDONLY, 0),
        }
    })
}

/// Clones the mount (tree) at `source`, lets `prepare` set its attributes while it is still
/// detached, and moves it onto `target`.
fn bind_tree(
    source: BorrowedFd<'_>,
    target: BorrowedFd<'_>,
    recursive: bool,
    prepare: impl FnOnce(BorrowedFd<'_>) -> Result<(), Errno>,
) -> Result<(), Errno> {
    let tree = crate::sys::mount::clone_tree(source, recursive)?;
    prepare(tree.as_fd())?;
    crate::sys::mount::attach(tree.as_fd(), target)
}

/// Sets a propagation type (MS_PRIVATE, MS_SLAVE... possibly with MS_REC) on a mount.
pub fn set_propagation(target: BorrowedFd<'_>, flags: MsFlags) -> Result<(), Errno> {
    mount(
        None::<&str>,
        &fd_path(target),
        None::<&str>,
        flags,
        None::<&str>,
    )?;
    Ok(())
}

/// The atime mode a mount has now, as the mount flags that keep it on a remount.
fn atime_of(st: FsFlags) -> MsFlags {
    let mut f = if st.contains(FsFlags::ST_NOATIME) {
        MsFlags::MS_NOATIME
    } else if st.contains(FsFlags::ST_RELATIME) {
        MsFlags::MS_RELATIME
    } else {
        MsFlags::MS_STRICTATIME
    };
    if st.contains(FsFlags::ST_NODIRATIME) {
        f |= MsFlags::MS_NODIRATIME;
    }
    f
}

/// Remounts the bind mount whose root is `target` with `flags` (MS_RDONLY, MS_NOSUID...).
/// Inside a user namespace the kernel locks nosuid/nodev/noexec/ro and the atime mode of
/// mounts inherited from a more privileged namespace, and refuses (EPERM) a remount that
/// would clear them; they are read with statvfs and kept. With `keep_atime` false the caller
/// chose an atime mode itself; if that is refused, the mount's own mode is kept instead.
pub fn remount_bind(target: BorrowedFd<'_>, flags: MsFlags, keep_atime: bool) -> Result<(), Errno> {
    let st = fstatvfs(target)?.flags();
    let mut locked = MsFlags::empty();
    for (s, m) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
    ] {
        if st.contains(s) {
            locked |= m;
        }
    }
    let base = flags | locked | MsFlags::MS_REMOUNT | MsFlags::MS_BIND;
    let first = if keep_atime {
        base | atime_of(st)
    } else {
        base
    };
    let path = fd_path(target);
    let remount = |f: MsFlags| mount(None::<&str>, &path, None::<&str>, f, None::<&str>);
    match remount(first) {
        Err(nix::errno::Errno::EPERM) => {
            // Last resort: also keep read-only and the atime mode exactly as they are.
            let atime = MsFlags::MS_NOATIME | MsFlags::MS_RELATIME | MsFlags::MS_STRICTATIME;
            let mut f = (base - atime - MsFlags::MS_NODIRATIME) | atime_of(st);
            if st.contains(FsFlags::ST_RDONLY) {
                f |= MsFlags::MS_RDONLY;
            }
            remount(f)?;
            Ok(())
        }
        other => Ok(other?),
    }
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;

/// Makes the mount at `target` and every mount beneath it read-only (mount_setattr with
/// AT_RECURSIVE, Linux >= 5.12): a remount only reaches the top mount of an rbind.
/// Setting read-only never clears a locked flag, so this is allowed in a user namespace.
pub fn set_readonly_recursive(target: BorrowedFd<'_>) -> Result<(), Errno> {
    set_attrs(target, MOUNT_ATTR_RDONLY)
}

/// Sets `set` and clears `clr` (MOUNT_ATTR_*) on the mount at `target` and every mount
/// beneath it: the spec's recursive options (`rro`, `rnosuid`...).
pub fn set_recursive(target: BorrowedFd<'_>, set: u64, clr: u64) -> Result<(), Errno> {
    mount_setattr(target, set, clr, libc::AT_RECURSIVE)
}

/// Sets `attrs` on the mount at `target` and every mount beneath it; nothing is cleared.
fn set_attrs(target: BorrowedFd<'_>, attrs: u64) -> Result<(), Errno> {
    mount_setattr(target, attrs, 0, libc::AT_RECURSIVE)
}

/// mount_setattr: sets `set` and clears `clr` on the mount at `target` (`flags`: AT_RECURSIVE
/// for every mount beneath it too, or 0).
fn mount_setattr(target: BorrowedFd<'_>, set: u64, clr: u64, flags: i32) -> Result<(), Errno> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clr,
        propagation: 0,
        userns_fd: 0,
    };
    let flags = libc::AT_EMPTY_PATH | flags;
    // SAFETY: mount_setattr reads `size_of::<MountAttr>()` bytes from `attr`, which is a live
    // repr(C) struct laid out as the kernel's struct mount_attr; the path is a static "".
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            target.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

#[cfg(test)]
mod tests;
