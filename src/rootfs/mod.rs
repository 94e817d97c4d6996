//! The empty root (runsc's setUpChroot, bubblewrap's shape).
//!
//! Supervisor: mounts made slave/private, a fresh tmpfs pivot_root'ed as an empty root with
//! the host at /oldroot, its own /proc, the container root assembled at /newroot from the
//! rootfs and the spec's mounts, then the old root detached: no host path stays reachable.
//! Application: its own /proc (while the supervisor's keeps proc "fully visible"), masked and
//! read-only paths, pivot_root into /newroot, the root made read-only when the spec says so;
//! a copy of /newroot carried into a mount namespace joined by path first (`joined`).

pub mod net;

pub mod dev;
pub mod guard;
pub mod joined;
pub mod mknod;
pub mod mounts;
pub mod nodes;
pub mod overlay;
pub mod paths;
pub mod resolve;
pub mod shown;

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;
use nix::unistd::{chdir, mkdir};
use serde::{Deserialize, Serialize};

use crate::spec::Spec;
use crate::sys::{self, step, Errno};
pub use mounts::MountError;

/// Where the supervisor assembles the container root, inside its own tmpfs root.
pub const NEWROOT: &str = "/newroot";
/// Where the host's root stays visible until it is detached.
pub const OLDROOT: &str = "/oldroot";

#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
pub enum RootfsError {
    #[error(transparent)]
    Step(#[from] crate::sys::Failed),
    #[error("opening the rootfs {path}: {errno}: check root.path in config.json")]
    OpenRootfs { path: String, errno: Errno },
    #[error(transparent)]
    Mount(#[from] MountError),
    #[error(transparent)]
    Net(#[from] crate::rootfs::net::NetError),
}

/// linux.rootfsPropagation as mount flags, None when absent. runc applies it to the container's
/// "/" once pivoted into it (before, a shared root would make pivot_root fail, and sharing the
/// host's "/" would let mounts propagate back to it).
fn root_propagation(spec: &Spec) -> Option<MsFlags> {
    let p = spec
        .linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().clone());
    let (rec, name) = match p.as_deref()? {
        "" => return None,
        p => match p.strip_prefix('r') {
            Some(rest) if !rest.is_empty() => (MsFlags::MS_REC, rest),
            _ => (MsFlags::empty(), p),
        },
    };
    let kind = match name {
        "private" => MsFlags::MS_PRIVATE,
        "shared" => MsFlags::MS_SHARED,
        "slave" => MsFlags::MS_SLAVE,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        _ => return None,
    };
    Some(kind | rec)
}

/// Makes "/" and everything beneath it a slave (events from the host still reach the
/// container), private when the spec asks for it: nothing mounted here may propagate back to
/// the host, and pivot_root needs a root that is not shared.
fn unshare_root(spec: &Spec, what: &str) -> Result<(), RootfsError> {
    let private = MsFlags::MS_PRIVATE;
    let flags = match root_propagation(spec) {
        Some(p) if p.contains(private) => private,
        _ => MsFlags::MS_SLAVE,
    };
    let none = None::<&str>;
    Ok(step(
        what,
        mount(none, "/", none, flags | MsFlags::MS_REC, none),
    )?)
}

/// Supervisor: from the host's mount namespace copy to an empty root holding /proc and the
/// assembled container root at /newroot.
/// `net`: the sandbox's network namespace, joined before the first sysfs (which shows the
/// network namespace of whoever mounts it) and at the latest when the root is done.
/// `made`: the linux.devices nodes the host lacks, made by a caller that is real root
/// ([`mknod`]).
/// `shown`: the mounts made for namespaces joined by path, attached at their entries.
/// `own_pidns`: the supervisor was cloned into a pid namespace of its own (not `create`'s).
pub fn setup_supervisor_root(
    spec: &Spec,
    rootfs: &Path,
    net: &mut crate::rootfs::net::Pending,
    made: Option<std::os::fd::OwnedFd>,
    shown: &mut shown::Shown,
    own_pidns: bool,
) -> Result<(), RootfsError> {
    unshare_root(spec, "making / a slave mount")?;
    // Open the rootfs before a tmpfs may hide it (it may live under /tmp).
    let rootfs_fd = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(rootfs)
        .map_err(|e| RootfsError::OpenRootfs {
            path: rootfs.display().to_string(),
            errno: e.into(),
        })?;
    let base = Path::new("/tmp");
    let opts = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    step(
        "mounting the tmpfs for the empty root on /tmp",
        mount(Some("tmpfs"), base, Some("tmpfs"), opts, Some("mode=0755")),
    )?;
    for (dir, mode) in [("newroot", 0o755), ("oldroot", 0o700), ("proc", 0o555)] {
        step(
            format!("creating /{dir} in the empty root"),
            mkdir(&base.join(dir), Mode::from_bits_truncate(mode)),
        )?;
    }
    // The host moves to /oldroot: bind sources stay reachable there (also those under /tmp).
    step(
        "pivot_root into the empty root",
        sys::pivot_root(base, &base.join("oldroot")).map_err(|e| e.nix()),
    )?;
    step("chdir /", chdir("/"))?;
    let made = match made {
        Some(tree) => Some(step(
            "attaching the linux.devices nodes made by root",
            mknod::attach(tree).map_err(|e| e.nix()),
        )?),
        None => None,
    };
    mount_supervisor_proc(own_pidns)?;
    bind_rootfs(&rootfs_fd, rootfs, root_readonly(spec))?;
    drop(rootfs_fd);
    // Before the spec's mounts, so that cwd, volumes, /proc, /tmp... land on top of it.
    overlay::apply(spec, Path::new(NEWROOT))?;
    let host = Path::new(OLDROOT);
    dev::mount_default(spec, Path::new(NEWROOT))?;
    let later = mounts::mount_all(spec, host, Path::new(NEWROOT), net, shown)?;
    dev::setup(
        spec,
        host,
        Path::new(NEWROOT),
        made.as_ref().map(std::os::fd::AsFd::as_fd),
    )?;
    if made.is_some() {
        drop(made);
        mknod::detach();
    }
    net.finish()?;
    mounts::mount_entries(spec, host, Path::new(NEWROOT), &later, net, shown)?;
    step(
        "detaching the old root",
        umount2(OLDROOT, MntFlags::MNT_DETACH),
    )?;
    let _ = std::fs::remove_dir(OLDROOT);
    Ok(())
}

/// The rootfs bound (with its submounts) at NEWROOT, nodev: a device node shipped in the image
/// must not open (the container's nodes are binds of the host's, with their own flags).
/// `readonly`: its submounts read-only from the start (the spec's mounts land on top and keep
/// their own flags); the top follows in [`setup_app_root`], once the mount points are made.
fn bind_rootfs(
    rootfs_fd: &std::fs::File,
    rootfs: &Path,
    readonly: bool,
) -> Result<(), RootfsError> {
    use std::os::fd::AsFd;
    let what = format!("binding the rootfs {} to {NEWROOT}", rootfs.display());
    let err = |errno: Errno| {
        RootfsError::Step(crate::sys::Failed {
            step: what.clone(),
            errno,
        })
    };
    let target = resolve::open_root(Path::new(NEWROOT)).map_err(err)?;
    let (src, dst) = (rootfs_fd.as_fd(), target.as_fd());
    let bound = match readonly {
        true => resolve::bind_readonly_below(src, dst, resolve::MOUNT_ATTR_NODEV),
        false => resolve::bind_with(src, dst, true, resolve::MOUNT_ATTR_NODEV),
    };
    match bound {
        // No mount_setattr (Linux < 5.12): bind, then remount the top nodev and each submount
        // read-only.
        Err(Errno(libc::ENOSYS)) => {
            resolve::bind(src, dst, true).map_err(err)?;
            let flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_NODEV;
            let flags = flags | locked_flags(Path::new(NEWROOT));
            step(
                &what,
                mount(None::<&str>, NEWROOT, None::<&str>, flags, None::<&str>),
            )?;
            if readonly {
                for sub in overlay::mount_points_beneath(Path::new(NEWROOT)) {
                    remount_readonly(&sub)?;
                }
            }
            Ok(())
        }
        other => other.map_err(err),
    }
}

/// Why a fresh proc is refused inside another container, what the sandbox then sees, and the fix.
pub const NESTED_PROC: &str = "nested container: the outer container's overmounts on /proc and /sys make the kernel refuse a fresh /proc, so the sandbox sees this container's /proc (its processes and their command lines)";
pub const NESTED_PROC_FIX: &str = "for a /proc of the sandbox's own, unmask /proc and /sys in the outer container (podman: --security-opt unmask=ALL, docker: --security-opt systempaths=unconfined)";

/// root.readonly, false when absent.
fn root_readonly(spec: &Spec) -> bool {
    spec.root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
}

/// Set once the nested-container line is out: the refusals that follow from it (the app's
/// proc, a sysfs) say nothing more.
pub(crate) static NESTED_WARNED: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// A fresh proc for the supervisor's pid namespace. The kernel refuses it ("too revealing")
/// when no fully visible proc exists in this mount namespace, as inside CI containers whose
/// /proc has overmounts; then the host's proc is bound recursively instead. Without a pid
/// namespace of its own (`create`'s, which the application's is born beside), the host's is
/// bound at once: only the host's user namespace may mount a proc of the host's pid namespace.
/// Either keeps a proc fully visible for the application's own mount, and goes once it is made.
fn mount_supervisor_proc(own_pidns: bool) -> Result<(), RootfsError> {
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let fresh = match own_pidns {
        true => mount(Some("proc"), "/proc", Some("proc"), flags, None::<&str>),
        false => Err(nix::errno::Errno::EPERM),
    };
    match fresh {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EPERM) => {
            if own_pidns {
                tracing::warn!("{NESTED_PROC}; {NESTED_PROC_FIX}");
                NESTED_WARNED.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            let old = format!("{OLDROOT}/proc");
            Ok(step(
                "binding the host's /proc",
                mount(
                    Some(old.as_str()),
                    "/proc",
                    None::<&str>,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None::<&str>,
                ),
            )?)
        }
        Err(e) => Ok(step("mounting /proc for the supervisor", Err(e))?),
    }
}

/// Supervisor: its /proc is no longer needed once the application has mounted its own.
pub fn drop_supervisor_proc() -> Result<(), RootfsError> {
    Ok(step(
        "unmounting the supervisor's /proc",
        umount2("/proc", MntFlags::MNT_DETACH),
    )?)
}

/// Application, in its own pid and mount namespaces (or the mount namespace `joined` by path,
/// [`joined`]): own /proc, masked and read-only paths, pivot_root into the container root, and
/// the root read-only per root.readonly.
pub fn setup_app_root(
    spec: &Spec,
    joined: Option<std::os::fd::OwnedFd>,
) -> Result<(), RootfsError> {
    let newroot = Path::new(NEWROOT);
    mounts::mount_procs(spec, newroot)?;
    paths::apply(spec, newroot)?;
    match joined {
        Some(ns) => joined::enter(spec, ns)?,
        None => step("chdir to the container root", chdir(newroot))?,
    }
    // pivot_root(".", "."): the old root is stacked on top and detached right away.
    let pivoted = sys::pivot_root(Path::new("."), Path::new("."));
    if pivoted.is_err() {
        // The root goes with the failure: in a joined namespace, the copy stacked over its
        // root (in one of the application's own, it goes with the namespace anyway).
        let _ = umount2(".", MntFlags::MNT_DETACH);
    }
    step(
        "pivot_root into the container root",
        pivoted.map_err(|e| e.nix()),
    )?;
    step("detaching the old root", umount2(".", MntFlags::MNT_DETACH))?;
    step("chdir /", chdir("/"))?;
    if let Some(p) = root_propagation(spec) {
        step(
            "applying linux.rootfsPropagation to /",
            mount(None::<&str>, "/", None::<&str>, p, None::<&str>),
        )?;
    }
    if root_readonly(spec) {
        remount_readonly(Path::new("/"))?;
    }
    Ok(())
}

/// Remounts a bind mount read-only, keeping the flags a user namespace may not drop.
pub fn remount_readonly(path: &Path) -> Result<(), RootfsError> {
    let locked = locked_flags(path);
    let flags = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | locked;
    Ok(step(
        format!("making {} read-only", path.display()),
        mount(None::<&str>, path, None::<&str>, flags, None::<&str>),
    )?)
}

/// nosuid/nodev/noexec/atime flags of the mount at `path`, which a remount must repeat.
pub fn locked_flags(path: &Path) -> MsFlags {
    use nix::sys::statvfs::{statvfs, FsFlags};
    let Ok(st) = statvfs(path) else {
        return MsFlags::empty();
    };
    let f = st.flags();
    let mut m = MsFlags::empty();
    for (fs, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(fs) {
            m |= ms;
        }
    }
    m
}
