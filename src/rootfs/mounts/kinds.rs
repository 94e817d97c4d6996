//! The spec's mounts that need more than one mount(2): sysfs (the host's, read-only, when the
//! kernel refuses a new one), devpts (without an unmapped gid=), and cgroup (the host's).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use super::{bind_from_host, Ctx, MountError, MountOptions};
use crate::rootfs::resolve::{self, Create};
use crate::sys::Errno;

/// A new sysfs needs the network namespace to belong to our user namespace, and (like proc)
/// a fully visible sysfs in the mount namespace, which a nested container's masks on /sys
/// deny. Either way the kernel says EPERM and the host's /sys is bound read-only instead.
pub(super) fn sysfs(
    ctx: &Ctx,
    host: BorrowedFd,
    source: &str,
    o: &MountOptions,
    own_netns: bool,
) -> Result<(), MountError> {
    let target = ctx.spec_target(Create::Dir, "sysfs")?;
    match resolve::mount_fs(target.fd.as_fd(), source, "sysfs", o.flags, &o.data()) {
        Err(Errno(libc::EPERM)) => {
            let dest = ctx.dest.display();
            if !own_netns {
                tracing::warn!("sysfs on {dest} is a read-only bind of the host's /sys: the container has no network namespace of its own (the host's, or one joined by path)");
            } else if crate::rootfs::NESTED_WARNED.load(std::sync::atomic::Ordering::Relaxed) {
                tracing::debug!("sysfs on {dest} refused: binding the host's /sys read-only");
            } else {
                tracing::warn!("sysfs on {dest} is a read-only bind of this container's /sys: nested container: the outer container's overmounts on /sys make the kernel refuse a fresh one");
            }
            let mut ro = MountOptions::parse(&["rbind", "ro", "rro", "nosuid", "nodev", "noexec"]);
            ro.propagation = o.propagation.clone();
            bind_from_host(ctx, host, Path::new("/sys"), &ro)
        }
        Err(e) => Err(ctx.mount_err("a sysfs", e)),
        Ok(()) => ctx.propagate(ctx.mounted()?.as_fd(), "a sysfs", o),
    }
}

/// gid=5 (tty) may be unmapped in the user namespace, which devpts reports as EINVAL.
pub(super) fn devpts(ctx: &Ctx, source: &str, o: &MountOptions) -> Result<(), MountError> {
    let target = ctx.spec_target(Create::Dir, "devpts")?;
    let mount = |data: &str| resolve::mount_fs(target.fd.as_fd(), source, "devpts", o.flags, data);
    let mut result = mount(&o.data());
    if result == Err(Errno(libc::EINVAL)) && o.data.iter().any(|d| d.starts_with("gid=")) {
        let data: Vec<&str> = o
            .data
            .iter()
            .map(String::as_str)
            .filter(|d| !d.starts_with("gid="))
            .collect();
        tracing::debug!(
            "devpts on {}: gid= refused, mounting without it",
            ctx.dest.display()
        );
        result = mount(&data.join(","));
    }
    result.map_err(|e| ctx.mount_err("a devpts", e))?;
    ctx.propagate(ctx.mounted()?.as_fd(), "a devpts", o)
}

/// Cgroups are the host's business here: show its hierarchy read-only if we can, and never
/// fail the container over it.
pub(super) fn cgroup(ctx: &Ctx, host: BorrowedFd) {
    let ro = MountOptions::parse(&["rbind", "ro", "rro", "nosuid", "nodev", "noexec"]);
    if let Some(there) = host_cgroups_already_there(ctx, host) {
        // The host's /sys was bound recursively (no sysfs of our own), so its cgroup hierarchy
        // is here already: give that mount the flags a bind would get (its submounts are
        // read-only with the rest of /sys) rather than stack a second copy of it.
        if resolve::remount_bind(there.as_fd(), ro.flags, true).is_ok() {
            return;
        }
    }
    if let Err(e) = bind_from_host(ctx, host, Path::new("/sys/fs/cgroup"), &ro) {
        tracing::warn!("cgroup mount on {} skipped: {e}", ctx.dest.display());
    }
}

/// The destination when it is, already, the root of the host's /sys/fs/cgroup mount (same
/// file system and inode, read-only): what the rbind of the host's /sys brought.
fn host_cgroups_already_there(ctx: &Ctx, host: BorrowedFd) -> Option<OwnedFd> {
    use nix::sys::stat::fstat;
    use nix::sys::statvfs::{fstatvfs, FsFlags};
    use std::os::fd::AsRawFd;
    let there = resolve::resolve(ctx.root, ctx.dest, Create::No).ok()?.fd;
    let theirs = resolve::resolve(host, Path::new("/sys/fs/cgroup"), Create::No)
        .ok()?
        .fd;
    let (a, b) = (
        fstat(there.as_raw_fd()).ok()?,
        fstat(theirs.as_raw_fd()).ok()?,
    );
    let readonly = fstatvfs(&there).is_ok_and(|v| v.flags().contains(FsFlags::ST_RDONLY));
    ((a.st_dev, a.st_ino) == (b.st_dev, b.st_ino) && readonly).then_some(there)
}
