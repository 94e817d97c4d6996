//! Device nodes, each checked to be the node it stands for before anything is bound from it
//! or onto it: the host's standard nodes and linux.devices (type and major:minor compared
//! with fstat), their targets in the container (never through a symlink the image or a bound
//! /dev placed there), and the container's /dev/null that masks are bound from.

use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fstat, major, minor, FileStat, Mode, SFlag};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType};
use serde::{Deserialize, Serialize};

use super::mounts::{Ctx, MountError};
use super::resolve::{self, Create};
use crate::spec::devices;

#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
pub enum NodeError {
    #[error(
        "{at}: {path} on the host is {found}, not the {want} it names: fix {at} in config.json"
    )]
    NotDevice {
        at: String,
        path: String,
        found: String,
        want: String,
    },
    #[error("{at}: {path} in the container is {found}: a device is only bound onto a plain file or node; remove it from the image or the bound /dev")]
    Target {
        at: String,
        path: String,
        found: String,
    },
    #[error("{at}: the container's /dev/null is {found}, not the null device (char 1:3), and masks are bound from it: give the container a real /dev/null")]
    NotNull { at: String, found: String },
    #[error("{at}: {path} on the host has {field} {got}, and a bound node keeps it ({want} asked): set {at}.{field} to {got} or leave it out")]
    Attribute {
        at: String,
        path: String,
        field: String,
        got: String,
        want: String,
    },
    #[error("{at}: linux.resources.devices {what} {path}, which only a devices cgroup could enforce on a bound node and nsboot has none: allow it read and write, or remove it from linux.devices")]
    Rules {
        at: String,
        path: String,
        what: String,
    },
}

/// A device node as a type (S_IFCHR, S_IFBLK, S_IFIFO) and a number.
pub struct Node {
    kind: SFlag,
    major: u64,
    minor: u64,
}

pub const fn chr(major: u64, minor: u64) -> Node {
    Node {
        kind: SFlag::S_IFCHR,
        major,
        minor,
    }
}

const NULL: Node = chr(1, 3);
/// The kernel's id for a host id outside the user namespace.
const OVERFLOW_ID: u32 = 65534;

fn kind_of(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT
}

/// What an inode is, in words, for errors.
fn describe(st: &FileStat) -> String {
    let k = kind_of(st);
    let (ma, mi) = (major(st.st_rdev), minor(st.st_rdev));
    match k {
        SFlag::S_IFCHR => format!("char device {ma}:{mi}"),
        SFlag::S_IFBLK => format!("block device {ma}:{mi}"),
        SFlag::S_IFIFO => "a FIFO".into(),
        SFlag::S_IFREG => "a regular file".into(),
        SFlag::S_IFDIR => "a directory".into(),
        SFlag::S_IFLNK => "a symlink".into(),
        _ => "a socket".into(),
    }
}

impl Node {
    fn is(&self, st: &FileStat) -> bool {
        let numbered = (major(st.st_rdev), minor(st.st_rdev)) == (self.major, self.minor);
        kind_of(st) == self.kind && (self.kind == SFlag::S_IFIFO || numbered)
    }

    fn describe(&self) -> String {
        match self.kind {
            SFlag::S_IFBLK => format!("block device {}:{}", self.major, self.minor),
            SFlag::S_IFIFO => "FIFO".into(),
            _ => format!("char device {}:{}", self.major, self.minor),
        }
    }

    /// The node a linux.devices entry names.
    pub fn of(d: &LinuxDevice) -> Node {
        let kind = match d.typ() {
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            _ => SFlag::S_IFCHR,
        };
        let num = |n: i64| u64::try_from(n).unwrap_or(u64::MAX);
        Node {
            kind,
            major: num(d.major()),
            minor: num(d.minor()),
        }
    }
}

fn open_nofollow(dir: BorrowedFd, name: &OsStr) -> nix::Result<OwnedFd> {
    let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    openat(Some(dir.as_raw_fd()), name, flags, Mode::empty()).map(resolve::own)
}

/// The host's node at `path` (the host's symlinks followed: /dev/disk/by-id/...), opened
/// O_PATH and checked to be `want`.
pub(super) fn host_node(
    ctx: &Ctx,
    host: BorrowedFd,
    path: &Path,
    want: &Node,
) -> Result<(OwnedFd, FileStat), MountError> {
    let source = ctx.host_source(host, path)?;
    let st = fstat(source.fd.as_raw_fd()).map_err(|e| ctx.mount_err("a device node", e.into()))?;
    if !want.is(&st) {
        return Err(NodeError::NotDevice {
            at: ctx.at.clone(),
            path: path.display().to_string(),
            found: describe(&st),
            want: want.describe(),
        }
        .into());
    }
    Ok((source.fd, st))
}

/// Binds `source` onto `name` in the container directory `dir`: a new empty file, or a file
/// or node already there (a bound /dev), never through a symlink.
pub(super) fn attach(
    ctx: &Ctx,
    source: BorrowedFd,
    dir: BorrowedFd,
    name: &OsStr,
) -> Result<(), MountError> {
    let flags =
        OFlag::O_RDONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let made = openat(
        Some(dir.as_raw_fd()),
        name,
        flags,
        Mode::from_bits_truncate(0o644),
    );
    let target = match made {
        Ok(fd) => resolve::own(fd),
        Err(nix::errno::Errno::EEXIST) => {
            let fd = open_nofollow(dir, name).map_err(|e| ctx.target_err(e.into()))?;
            let st = fstat(fd.as_raw_fd()).map_err(|e| ctx.target_err(e.into()))?;
            let plain = [
                SFlag::S_IFREG,
                SFlag::S_IFCHR,
                SFlag::S_IFBLK,
                SFlag::S_IFIFO,
            ];
            if !plain.contains(&kind_of(&st)) {
                return Err(NodeError::Target {
                    at: ctx.at.clone(),
                    path: ctx.dest.display().to_string(),
                    found: describe(&st),
                }
                .into());
            }
            fd
        }
        Err(e) => return Err(ctx.target_err(e.into())),
    };
    resolve::bind(source, target.as_fd(), false)
        .map_err(|e| ctx.mount_err("a bind of the host's node", e))
}

/// The container's /dev/null for the masks: `null` in its /dev, not followed if a symlink,
/// and only if it is the null device.
pub(super) fn container_null(ctx: &Ctx) -> Result<OwnedFd, MountError> {
    let what = "/dev/null (the container has none to mask files with)";
    let dev = resolve::resolve(ctx.root, Path::new("/dev"), Create::No)
        .map_err(|e| ctx.mount_err(what, e))?;
    let null = open_nofollow(dev.fd.as_fd(), OsStr::new("null"))
        .map_err(|e| ctx.mount_err(what, e.into()))?;
    let st = fstat(null.as_raw_fd()).map_err(|e| ctx.mount_err(what, e.into()))?;
    if !NULL.is(&st) {
        return Err(NodeError::NotNull {
            at: ctx.at.clone(),
            found: describe(&st),
        }
        .into());
    }
    Ok(null)
}

/// Checks a linux.devices node before it is bound: the entry's fileMode, uid and gid must be
/// the host node's (a bind cannot change them; an owner outside the user namespace is left as
/// it is, with a warning), and the device rules must allow it read and write: a mount cannot
/// make a device read-only (the kernel opens a node for writing on a read-only mount), so
/// anything narrower needs a devices cgroup.
pub(super) fn entry_allowed(
    ctx: &Ctx,
    d: &LinuxDevice,
    st: &FileStat,
    rules: &[LinuxDeviceCgroup],
) -> Result<(), MountError> {
    let (at, path) = (ctx.at.clone(), ctx.dest.display().to_string());
    if kind_of(st) != SFlag::S_IFIFO {
        let kind = if kind_of(st) == SFlag::S_IFBLK {
            'b'
        } else {
            'c'
        };
        let (ma, mi) = (major(st.st_rdev) as i64, minor(st.st_rdev) as i64);
        let a = devices::access(rules, kind, ma, mi);
        let what = match (a.read, a.write) {
            (true, true) => None,
            (true, false) => Some("allows reading but not writing"),
            (false, true) => Some("allows writing but not reading"),
            (false, false) => Some("denies all access to"),
        };
        if let Some(what) = what {
            let what = what.into();
            return Err(NodeError::Rules { at, path, what }.into());
        }
    }
    let attr = |field: &str, got: String, want: String| {
        let (at, path, field) = (at.clone(), path.clone(), field.into());
        MountError::from(NodeError::Attribute {
            at,
            path,
            field,
            got,
            want,
        })
    };
    if let Some(m) = d.file_mode() {
        if m & 0o777 != st.st_mode & 0o777 {
            let got = format!("{:o}", st.st_mode & 0o777);
            return Err(attr("fileMode", got, format!("{:o}", m & 0o777)));
        }
    }
    let mut unmapped = Vec::new();
    for (field, want, got) in [("uid", d.uid(), st.st_uid), ("gid", d.gid(), st.st_gid)] {
        match want {
            Some(w) if w != got && got == OVERFLOW_ID => unmapped.push(format!("{field} {w}")),
            Some(w) if w != got => return Err(attr(field, got.to_string(), w.to_string())),
            _ => {}
        }
    }
    if !unmapped.is_empty() {
        tracing::warn!(
            "{at}: {path} stays owned by nobody ({} asked): its host owner has no id in the user namespace",
            unmapped.join(", ")
        );
    }
    Ok(())
}
