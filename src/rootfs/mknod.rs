//! linux.devices nodes the host lacks, made as runc makes them when nsboot runs as real root.
//!
//! Only the initial user namespace may make a node that opens, so the caller makes them,
//! before it clones the supervisor: in a tmpfs of its own that no path leads to (a detached
//! mount), with the entry's fileMode (0666 when absent), uid and gid. The supervisor attaches
//! that tmpfs in its empty root ([`attach`]), checks each node as it checks the host's
//! (`nodes`: type and number by fstat) and binds it into the container like a host node.
//! Rootless, nothing is made: a missing node stays an error.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::sys::stat::{fchmodat, makedev, mknodat, FchmodatFlags, Mode, SFlag};
use nix::unistd::{fchownat, Gid, Uid};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use crate::idmap::{IdRange, Mapping};
use crate::spec::Spec;
use crate::sys::{self, Errno};

/// Where the supervisor attaches the caller's tmpfs, in its empty root.
pub const MADE: &str = "/nodes";

/// The name of linux.devices[i]'s node in the tmpfs.
pub fn name(i: usize) -> String {
    format!("n{i}")
}

/// Caller side: the tmpfs holding a node for each linux.devices entry whose path the host
/// lacks, or has as the device named but with another mode or owner than the entry's (a bind
/// would keep the host's); None when there is none, when nsboot is not real root, or when a
/// node cannot be made (the supervisor then binds the host's, or reports it missing).
pub fn make(spec: &Spec, mapping: &Mapping) -> Option<OwnedFd> {
    let devices = spec.linux().as_ref()?.devices().clone()?;
    if devices.is_empty() || crate::idmap::is_rootless() {
        return None;
    }
    let missing: Vec<(usize, &LinuxDevice)> = devices
        .iter()
        .enumerate()
        .filter(|(_, d)| wanted(d, mapping))
        .collect();
    if missing.is_empty() {
        return None;
    }
    let made = (|| -> Result<OwnedFd, Errno> {
        let tree = sys::mount::detached_tmpfs()?;
        for (i, d) in missing {
            make_one(tree.as_fd(), &name(i), d, mapping)?;
        }
        Ok(tree)
    })();
    made.map_err(|e| tracing::debug!("making the linux.devices nodes the host lacks: {e}"))
        .ok()
}

/// Whether linux.devices entry `d` needs a node of its own: the host has none at its path, or
/// has the very device named there with another mode, uid or gid (the entry's, or runc's
/// defaults when it leaves them out). Another device, or no
/// device, at the path is left for the supervisor to refuse.
fn wanted(d: &LinuxDevice, mapping: &Mapping) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let Ok(st) = std::fs::metadata(super::dev::clean(d.path())) else {
        return true;
    };
    let t = st.file_type();
    let same_device = match d.typ() {
        LinuxDeviceType::P => t.is_fifo(),
        typ => {
            let kind = if typ == LinuxDeviceType::B {
                t.is_block_device()
            } else {
                t.is_char_device()
            };
            let num = (
                nix::sys::stat::major(st.rdev()),
                nix::sys::stat::minor(st.rdev()),
            );
            kind && i64::try_from(num.0) == Ok(d.major()) && i64::try_from(num.1) == Ok(d.minor())
        }
    };
    // runc's defaults for what the entry leaves out: 0666, owned by the container's root.
    let mode = d.file_mode().unwrap_or(0o666) & 0o7777;
    let uid = host_id(&mapping.uids, d.uid().unwrap_or(0));
    let gid = host_id(&mapping.gids, d.gid().unwrap_or(0));
    let differs = mode != st.mode() & 0o7777 || uid != Some(st.uid()) || gid != Some(st.gid());
    same_device && differs
}

/// The host id of container id `id`, per `ranges`.
fn host_id(ranges: &[IdRange], id: u32) -> Option<u32> {
    ranges
        .iter()
        .find(|r| id >= r.container && id - r.container < r.size)
        .map(|r| r.host + (id - r.container))
}

fn make_one(dir: BorrowedFd, name: &str, d: &LinuxDevice, mapping: &Mapping) -> Result<(), Errno> {
    let kind = match d.typ() {
        LinuxDeviceType::B => SFlag::S_IFBLK,
        LinuxDeviceType::P => SFlag::S_IFIFO,
        _ => SFlag::S_IFCHR,
    };
    let num = |n: i64| u64::try_from(n).map_err(|_| Errno(libc::EINVAL));
    let dev = match kind {
        SFlag::S_IFIFO => 0,
        _ => makedev(num(d.major())?, num(d.minor())?),
    };
    let mode = Mode::from_bits_truncate(d.file_mode().unwrap_or(0o666) & 0o7777);
    let fd = Some(dir.as_raw_fd());
    mknodat(fd, name, kind, Mode::empty(), dev)?;
    let uid = host_id(&mapping.uids, d.uid().unwrap_or(0)).ok_or(Errno(libc::EOVERFLOW))?;
    let gid = host_id(&mapping.gids, d.gid().unwrap_or(0)).ok_or(Errno(libc::EOVERFLOW))?;
    let nofollow = nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW;
    fchownat(
        fd,
        name,
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
        nofollow,
    )?;
    // After the chown (which may clear set-id bits), and exactly: mknod's mode met the umask.
    fchmodat(fd, name, mode, FchmodatFlags::FollowSymlink)?;
    Ok(())
}

/// Supervisor side, in its empty root: the caller's tmpfs attached at [`MADE`].
pub fn attach(tree: OwnedFd) -> Result<OwnedFd, Errno> {
    let at = Path::new(MADE);
    nix::unistd::mkdir(at, Mode::from_bits_truncate(0o700))?;
    let dir = super::resolve::open_root(at)?;
    sys::mount::attach(tree.as_fd(), dir.as_fd())?;
    super::resolve::open_root(at)
}

/// Supervisor side, once the nodes are bound: the tmpfs detached (the binds keep their nodes).
pub fn detach() {
    let _ = nix::mount::umount2(MADE, nix::mount::MntFlags::MNT_DETACH);
    let _ = std::fs::remove_dir(MADE);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_ids_map_to_host_ids_by_range() {
        let r = |container, host, size| IdRange {
            container,
            host,
            size,
        };
        let ranges = [r(0, 1000, 1), r(1, 100000, 65536)];
        assert_eq!(host_id(&ranges, 0), Some(1000));
        assert_eq!(host_id(&ranges, 1), Some(100000));
        assert_eq!(host_id(&ranges, 65536), Some(165535));
        assert_eq!(host_id(&ranges, 65537), None);
        assert_eq!(host_id(&[r(0, 0, u32::MAX)], 7), Some(7));
    }
}
