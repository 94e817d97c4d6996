//! /dev: device nodes bound from the host, linux.devices, the standard symlinks.
//!
//! mknod is refused in a user namespace, so every node is an empty file with the host's
//! node bind-mounted onto it (bubblewrap's --dev does the same), each checked to be the node
//! it stands for (`nodes`). This runs after mount_all, so that a /dev or /dev/pts from the
//! spec is already in place and is not mounted over.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Component, Path, PathBuf};

use nix::mount::MsFlags;

use super::mounts::{open_root, Ctx, MountError};
use super::nodes;
use super::resolve::{self, Create};
use crate::spec::Spec;
use crate::sys::Errno;

/// The nodes every container gets (runc's default set, minus the console, which belongs to
/// the terminal setup), with the char device each must be.
const DEFAULT_NODES: [(&str, nodes::Node); 6] = [
    ("null", nodes::chr(1, 3)),
    ("zero", nodes::chr(1, 5)),
    ("full", nodes::chr(1, 7)),
    ("random", nodes::chr(1, 8)),
    ("urandom", nodes::chr(1, 9)),
    ("tty", nodes::chr(5, 0)),
];

/// `/a/./b/` and `/a/b` name the same mount point.
pub(super) fn clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// The spec's own mount destinations, and of which type each is.
fn spec_mounts(spec: &Spec) -> Vec<(PathBuf, String)> {
    let mounts = spec.mounts().iter().flatten();
    mounts
        .map(|m| (clean(m.destination()), m.typ().clone().unwrap_or_default()))
        .collect()
}

/// The symlinks a /dev holds (runc's list); /dev/ptmx only when /dev/pts is a devpts of our own.
fn symlinks(
    mounted: &[(PathBuf, String)],
    host_has_kcore: bool,
) -> Vec<(&'static str, &'static str)> {
    let mut links = vec![
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ];
    if mounted
        .iter()
        .any(|(d, t)| d == Path::new("/dev/pts") && t == "devpts")
    {
        links.push(("ptmx", "pts/ptmx"));
    }
    if host_has_kcore {
        links.push(("core", "/proc/kcore"));
    }
    links
}

/// Supervisor side, before the spec's mounts (so that /dev comes first in the mount table
/// and its entries beneath /dev land on it): /dev as a tmpfs unless the spec mounts one.
pub fn mount_default(spec: &Spec, newroot: &Path) -> Result<(), MountError> {
    let dev = Path::new("/dev");
    if spec_mounts(spec).iter().any(|(d, _)| d == dev) {
        return Ok(());
    }
    let root = open_root(newroot)?;
    let ctx = Ctx {
        at: "/dev setup".into(),
        dest: dev,
        root: root.as_fd(),
    };
    let target = ctx.target(Create::Dir)?;
    // nodev: the nodes are binds of the host's, which keep their own mount's flags; a
    // node made here (by real root with CAP_MKNOD) must not open.
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_STRICTATIME;
    resolve::mount_fs(
        target.fd.as_fd(),
        "tmpfs",
        "tmpfs",
        flags,
        "mode=755,size=65536k",
    )
    .map_err(|e| ctx.mount_err("a tmpfs", e))
}

/// Supervisor side, after mount_all (and [`mount_default`]): the standard nodes and
/// linux.devices bound from the host (or from `made`, the nodes real root made that the host
/// lacks: `mknod`), and the standard symlinks.
pub fn setup(
    spec: &Spec,
    host: &Path,
    newroot: &Path,
    made: Option<BorrowedFd>,
) -> Result<(), MountError> {
    let host_fd = open_root(host)?;
    let root = open_root(newroot)?;
    let mounted = spec_mounts(spec);
    let is_mounted = |p: &Path| mounted.iter().any(|(d, _)| d == p);
    let dev = Path::new("/dev");

    let linux = spec.linux().as_ref();
    let devices = linux.and_then(|l| l.devices().clone()).unwrap_or_default();
    let rules = linux
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| r.devices().clone())
        .unwrap_or_default();
    let from_spec: Vec<PathBuf> = devices.iter().map(|d| clean(d.path())).collect();
    let ctx = Ctx {
        at: "/dev setup".into(),
        dest: dev,
        root: root.as_fd(),
    };
    let dev_fd = ctx.target(Create::Dir)?.fd;
    for (name, node) in &DEFAULT_NODES {
        let path = dev.join(name);
        if is_mounted(&path) || from_spec.contains(&path) {
            continue;
        }
        let ctx = Ctx {
            at: "/dev setup".into(),
            dest: &path,
            root: root.as_fd(),
        };
        match nodes::host_node(&ctx, host_fd.as_fd(), &path, node) {
            Err(MountError::SourceMissing { .. }) => {
                tracing::warn!(
                    "the host has no {}: the container gets none either",
                    path.display()
                );
            }
            Err(e) => return Err(e),
            Ok((source, _)) => nodes::attach(&ctx, source.as_fd(), dev_fd.as_fd(), name.as_ref())?,
        }
    }
    for (i, (d, path)) in devices.iter().zip(&from_spec).enumerate() {
        if is_mounted(path) {
            continue;
        }
        let at = format!("linux.devices[{i}]");
        let ctx = Ctx {
            at: at.clone(),
            dest: path,
            root: root.as_fd(),
        };
        let (source, st) = spec_node(&ctx, host_fd.as_fd(), made, i, d)?;
        nodes::entry_allowed(&ctx, d, &st, &rules)?;
        let parent = path.parent().unwrap_or(Path::new("/"));
        let dir =
            resolve::resolve(root.as_fd(), parent, Create::Dir).map_err(|e| ctx.target_err(e))?;
        let name = path.file_name().unwrap_or_default();
        nodes::attach(&ctx, source.as_fd(), dir.fd.as_fd(), name)?;
    }

    let kcore = resolve::resolve(host_fd.as_fd(), Path::new("/proc/kcore"), Create::No).is_ok();
    for (name, target) in symlinks(&mounted, kcore) {
        if is_mounted(&dev.join(name)) {
            continue;
        }
        link(&ctx, dev_fd.as_fd(), name, target)?;
    }
    Ok(())
}

/// linux.devices[i]'s node: the host's at its path, checked to be the device it names, or the
/// one real root made for it (`mknod`: the host lacks it, or has it with another mode or owner).
fn spec_node(
    ctx: &Ctx,
    host: BorrowedFd,
    made: Option<BorrowedFd>,
    i: usize,
    d: &oci_spec::runtime::LinuxDevice,
) -> Result<(std::os::fd::OwnedFd, nix::sys::stat::FileStat), MountError> {
    let want = nodes::Node::of(d);
    let missing = || MountError::DeviceMissing {
        at: ctx.at.clone(),
        path: ctx.dest.to_path_buf(),
    };
    let from_host = match nodes::host_node(ctx, host, ctx.dest, &want) {
        Err(MountError::SourceMissing { .. }) => None,
        other => Some(other?),
    };
    let name = PathBuf::from(super::mknod::name(i));
    let made = match made {
        Some(made) => match nodes::host_node(ctx, made, &name, &want) {
            Err(MountError::SourceMissing { .. }) => None,
            other => Some(other?),
        },
        None => None,
    };
    made.or(from_host).ok_or_else(missing)
}

/// One symlink in /dev; whatever already has the name (from the rootfs or the spec) wins.
fn link(ctx: &Ctx, dev: BorrowedFd, name: &str, target: &str) -> Result<(), MountError> {
    match nix::unistd::symlinkat(target, Some(dev.as_raw_fd()), name) {
        Ok(()) | Err(nix::errno::Errno::EEXIST) => Ok(()),
        Err(e) => Err(ctx.mount_err(
            &format!("a symlink /dev/{name} -> {target}"),
            Errno::from(e),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_compare_after_cleaning() {
        assert_eq!(clean(Path::new("/dev/./pts/")), Path::new("/dev/pts"));
        assert_eq!(clean(Path::new("dev/../../dev/shm")), Path::new("/dev/shm"));
    }

    #[test]
    fn ptmx_links_into_pts_only_when_pts_is_a_devpts() {
        let devpts = vec![(PathBuf::from("/dev/pts"), "devpts".to_string())];
        let names =
            |m: &[(PathBuf, String)], k| symlinks(m, k).iter().map(|l| l.0).collect::<Vec<_>>();
        assert_eq!(
            names(&devpts, false),
            ["fd", "stdin", "stdout", "stderr", "ptmx"]
        );
        let bound = vec![(PathBuf::from("/dev/pts"), "bind".to_string())];
        assert_eq!(
            names(&bound, true),
            ["fd", "stdin", "stdout", "stderr", "core"]
        );
    }
}
