//! Filesystems that show a namespace the sandbox joined by path: an mqueue shows its ipc
//! namespace, a sysfs its network namespace. The kernel mounts one only for a process with
//! CAP_SYS_ADMIN over the namespace's owner, which the supervisor, in a user namespace of its
//! own, lacks over namespaces made outside it. So the joining child (`sandbox::nspath`), in
//! those namespaces with the caller's capabilities, makes each as a detached mount (fsopen,
//! fsmount: it appears nowhere yet), and the supervisor, cloned from it with the fds, attaches
//! them at the spec's destinations (move_mount) in the spec's order.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::mount::MsFlags;
use oci_spec::runtime::Spec;

use super::mounts::MountOptions;
use crate::sys::Errno;

/// Detached mounts by the index of their spec entry.
#[derive(Default)]
pub struct Shown {
    mounts: Vec<(usize, OwnedFd)>,
}

impl Shown {
    /// In the process that joined the namespaces: a new instance for each spec mount of a
    /// type in `types` ("mqueue", "sysfs"), with the entry's attributes.
    pub fn make(spec: &Spec, types: &[&str]) -> Result<Shown, (usize, Errno)> {
        let mut mounts = Vec::new();
        for (i, m) in spec.mounts().iter().flatten().enumerate() {
            let typ = m.typ().as_deref().unwrap_or("");
            if !types.contains(&typ) {
                continue;
            }
            let mut o = MountOptions::parse(m.options().as_deref().unwrap_or_default());
            if o.bind {
                continue;
            }
            if typ == "proc" {
                // As the application's own proc (`mounts::mount_procs`).
                o.flags |= MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC;
                o.dev = false;
            }
            mounts.push((i, new_detached(typ, attrs(&o)).map_err(|e| (i, e))?));
        }
        Ok(Shown { mounts })
    }

    /// From `nsboot boot --mount-fd I:FD`.
    pub fn from_fds(mounts: Vec<(usize, OwnedFd)>) -> Shown {
        Shown { mounts }
    }

    /// Each detached mount and its entry's index, for an exec'd `nsboot boot`.
    pub fn fds(&self) -> impl Iterator<Item = (usize, &OwnedFd)> {
        self.mounts.iter().map(|(i, fd)| (*i, fd))
    }

    /// The fds as numbers, left open: for a child that shares its fd table with its parent
    /// (CLONE_FILES), which takes them with [`Shown::from_raw`].
    pub fn into_raw(self) -> Vec<(usize, i32)> {
        use std::os::fd::IntoRawFd;
        self.mounts
            .into_iter()
            .map(|(i, fd)| (i, fd.into_raw_fd()))
            .collect()
    }

    /// Takes the fds [`Shown::into_raw`] left open in this fd table.
    ///
    /// # Safety
    /// Each fd must be open and owned by nobody else.
    pub unsafe fn from_raw(mounts: Vec<(usize, i32)>) -> Shown {
        let mounts = mounts
            .into_iter()
            // SAFETY: as the caller promises.
            .map(|(i, fd)| (i, unsafe { OwnedFd::from_raw_fd(fd) }))
            .collect();
        Shown { mounts }
    }

    pub fn extend(&mut self, other: Shown) {
        self.mounts.extend(other.mounts);
    }

    pub fn has(&self, i: usize) -> bool {
        self.mounts.iter().any(|(j, _)| *j == i)
    }

    /// The detached mount made for spec entry `i`, if any.
    pub fn take(&mut self, i: usize) -> Option<OwnedFd> {
        let at = self.mounts.iter().position(|(j, _)| *j == i)?;
        Some(self.mounts.swap_remove(at).1)
    }
}

/// The pid namespace is joined by path and the user namespace is not: the application, in a
/// user namespace of its own, may not mount a proc of it, so the joining child makes it (in
/// that pid namespace) and the supervisor attaches it (`mounts::mount_entries`).
pub fn proc_made_by_joiner(spec: &Spec) -> bool {
    use oci_spec::runtime::LinuxNamespaceType as Ns;
    let nss = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_deref());
    let by_path = |t: Ns| {
        nss.unwrap_or_default()
            .iter()
            .any(|n| n.typ() == t && n.path().is_some())
    };
    by_path(Ns::Pid) && !by_path(Ns::User)
}

/// The spec's pid namespace entry, if it lists one.
fn pid_entry(spec: &Spec) -> Option<&oci_spec::runtime::LinuxNamespace> {
    use oci_spec::runtime::LinuxNamespaceType as Ns;
    let nss = spec.linux().as_ref()?.namespaces().as_deref()?;
    nss.iter().find(|n| n.typ() == Ns::Pid)
}

/// The pid namespace is not the sandbox's own: joined by path, or not listed (the caller's, as
/// `--pid host` asks). The application is born in it (no new one).
pub fn pid_shared(spec: &Spec) -> bool {
    pid_entry(spec).map_or(true, |n| n.path().is_some())
}

/// No pid namespace listed: the application is in the caller's.
pub fn pid_host(spec: &Spec) -> bool {
    pid_entry(spec).is_none()
}

/// MOUNT_ATTR_* of an entry's flags; nodev unless the entry says `dev`, as for every mount.
fn attrs(o: &MountOptions) -> u64 {
    const ATTRS: [(MsFlags, u64); 6] = [
        (MsFlags::MS_RDONLY, 0x1),
        (MsFlags::MS_NOSUID, 0x2),
        (MsFlags::MS_NOEXEC, 0x8),
        (MsFlags::MS_NOATIME, 0x10),
        (MsFlags::MS_STRICTATIME, 0x20),
        (MsFlags::MS_NODIRATIME, 0x80),
    ];
    let nodev = if o.dev { 0 } else { 0x4 };
    ATTRS
        .iter()
        .filter(|(f, _)| o.flags.contains(*f))
        .fold(nodev, |acc, (_, a)| acc | a)
}

/// fsopen(fstype), create, fsmount with `attrs`: a new instance for the caller's namespaces.
fn new_detached(fstype: &str, attrs: u64) -> Result<OwnedFd, Errno> {
    const FSOPEN_CLOEXEC: u32 = 1;
    const FSCONFIG_CMD_CREATE: u32 = 6;
    const FSMOUNT_CLOEXEC: u32 = 1;
    let name = std::ffi::CString::new(fstype).map_err(|_| Errno(libc::EINVAL))?;
    // SAFETY: fsopen reads a NUL-terminated name; it returns a new fd or -1.
    let fs = unsafe { libc::syscall(libc::SYS_fsopen, name.as_ptr(), FSOPEN_CLOEXEC) };
    if fs < 0 {
        return Err(Errno::last());
    }
    // SAFETY: fsopen just made this fd; it is ours alone.
    let fs = unsafe { OwnedFd::from_raw_fd(fs as i32) };
    let null = std::ptr::null::<libc::c_char>();
    // SAFETY: FSCONFIG_CMD_CREATE takes no key or value (null pointers, 0).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            null,
            null,
            0,
        )
    };
    if rc < 0 {
        return Err(Errno::last());
    }
    // SAFETY: fsmount takes the configured context fd and flags; it returns a new fd or -1.
    let mnt = unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, attrs) };
    if mnt < 0 {
        return Err(Errno::last());
    }
    // SAFETY: fsmount just made this fd; it is ours alone.
    Ok(unsafe { OwnedFd::from_raw_fd(mnt as i32) })
}

/// Moves the detached mount `tree` onto `target`.
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
