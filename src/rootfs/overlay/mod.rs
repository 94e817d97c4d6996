//! `nsboot do --overlay`: the container root made writable through overlayfs whose upper
//! layers live on a tmpfs, so that every write lands in memory and vanishes with the sandbox.
//!
//! The supervisor calls [`apply`] right after the rootfs is bound at /newroot and before the
//! spec's mounts are assembled: those (the working directory, volumes, /proc, /dev, /tmp...)
//! then land on top of the overlay and keep writing through to their own filesystems.
//!
//! Why not one overlay over /newroot: overlayfs clones its lower layer as a private mount,
//! and inside a user namespace the kernel refuses that for a mount with submounts it locked
//! ("failed to clone lowerpath", EINVAL), which the host's root always has. So a root without
//! submounts (`--rootfs DIR`) gets one overlay; the host's root gets a tmpfs skeleton instead:
//! each top-level directory is an overlay of its own, directories holding mount points are
//! recreated on the tmpfs and walked into, symlinks are copied, other files bound read-only.
//! Paths the spec mounts over (/proc, /dev, /sys, /tmp, /run, the working directory) are
//! only created, never walked. A directory overlayfs will not take as a lower layer (some
//! pseudo filesystems) is bound read-only instead, with a warning.
//!
//! Rootless, the kernel still checks permissions against the host's owners: the sandbox's
//! root could write at the top of each overlaid directory (/etc/x, /usr/x) but not into host
//! root's directories below (/etc/ssl/x: Permission denied). So a sandbox that does not map
//! host root uses fuse-overlayfs when it is installed ([`fuse`]), over the whole root, and
//! falls back to the kernel's overlayfs with a warning when it is not.

use std::ffi::OsStr;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use nix::sys::stat::Mode;
use nix::unistd::mkdir;

use super::mounts::MountError;
use super::resolve;
use crate::spec::Spec;
use crate::sys::Errno;

pub mod fuse;

/// The annotation asking for the overlay.
pub use crate::spec::OVERLAY_ANNOTATION as ANNOTATION;

/// The supervisor's private directory for the upper and work layers and the skeleton. It sits
/// in the supervisor's empty root, which the application never sees.
const OVERLAY_DIR: &str = "/overlay";

/// Where the failures point, in the errors' `(at)` part.
const AT: &str = "--overlay";

/// The first kernel that lets a user namespace mount overlayfs.
const MIN_KERNEL: (u32, u32) = (5, 11);

/// Whether the spec asks for the overlay (annotation `nsboot.overlay=true`).
pub fn wanted(spec: &Spec) -> bool {
    spec.annotations()
        .as_ref()
        .and_then(|a| a.get(ANNOTATION))
        .is_some_and(|v| v == "true")
}

/// Mounts the overlay over `newroot` (the rootfs already bound there) when the spec asks for
/// it; does nothing otherwise.
pub fn apply(spec: &Spec, newroot: &Path) -> Result<(), MountError> {
    if !wanted(spec) {
        return Ok(());
    }
    let base = Path::new(OVERLAY_DIR);
    make_dir(base, 0o700)?;
    // A tmpfs of its own rather than the supervisor's root: the layers' lifetime is the
    // overlay's alone.
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    mount(Some("tmpfs"), base, Some("tmpfs"), flags, Some("mode=0700"))
        .map_err(|e| bug("a tmpfs", base, e.into()))?;
    if !fuse::host_root_mapped() {
        match fuse::find(Path::new(super::OLDROOT), std::env::var_os("PATH")) {
            Ok(program) => return fuse::mount(&program, newroot, base, mode_of(newroot)),
            Err(why) => tracing::warn!("{}", fuse::fallback_warning(&why)),
        }
    }
    let mut tree = Tree {
        layers: base.to_path_buf(),
        count: 0,
        mount_points: mount_points_beneath(newroot),
        covered: spec
            .mounts()
            .iter()
            .flatten()
            .map(|m| newroot.join(m.destination().strip_prefix("/").unwrap_or(m.destination())))
            .collect(),
    };
    if tree.mount_points.is_empty() {
        return tree.overlay(newroot, newroot);
    }
    let skeleton = base.join("root");
    make_dir(&skeleton, mode_of(newroot))?;
    let opts = format!("mode={:o}", mode_of(newroot));
    mount(
        Some("tmpfs"),
        &skeleton,
        Some("tmpfs"),
        flags,
        Some(opts.as_str()),
    )
    .map_err(|e| bug("a tmpfs", &skeleton, e.into()))?;
    tree.fill(newroot, &skeleton)?;
    // The skeleton becomes the container root; the host's root stays beneath it, reachable
    // only as the overlays' lower layers.
    mount(
        Some(&skeleton),
        newroot,
        None::<&str>,
        MsFlags::MS_MOVE,
        None::<&str>,
    )
    .map_err(|e| bug("the overlay skeleton", newroot, e.into()))
}

/// The walk over the host's root.
struct Tree {
    layers: PathBuf,
    /// How many overlays so far: each gets its own upper and work directories.
    count: usize,
    /// Mount points strictly beneath the root, as paths under it.
    mount_points: Vec<PathBuf>,
    /// The spec's mount destinations, as paths under the root.
    covered: Vec<PathBuf>,
}

impl Tree {
    /// Recreates the entries of directory `src` in the skeleton directory `dst`.
    fn fill(&mut self, src: &Path, dst: &Path) -> Result<(), MountError> {
        let entries = match std::fs::read_dir(src) {
            Ok(entries) => entries,
            // A directory we may not list (0700, someone else's) cannot be recreated: show it
            // as it is, read-only, like any directory overlayfs refuses.
            Err(e) => {
                let errno = Errno::from(e);
                tracing::warn!(
                    "--overlay: {} is read-only: listing it failed ({errno})",
                    shown(src)
                );
                return bind_readonly(src, dst, true);
            }
        };
        for entry in entries.flatten() {
            let (from, to) = (entry.path(), dst.join(entry.file_name()));
            let Ok(meta) = std::fs::symlink_metadata(&from) else {
                continue; // gone meanwhile: nothing to show
            };
            let kind = meta.file_type();
            if kind.is_symlink() {
                let target =
                    std::fs::read_link(&from).map_err(|e| bug("reading", &from, e.into()))?;
                symlink(target, &to).map_err(|e| bug("a symlink", &to, e.into()))?;
            } else if kind.is_dir() {
                make_dir(&to, meta.permissions().mode() & 0o7777)?;
                if self.covered.contains(&from) {
                    continue; // the spec mounts over it: what is beneath would be hidden
                }
                if self
                    .mount_points
                    .iter()
                    .any(|m| m.starts_with(&from) && m != &from)
                {
                    self.fill(&from, &to)?;
                } else {
                    self.overlay(&from, &to)?;
                }
            } else {
                std::fs::File::create(&to).map_err(|e| bug("a file", &to, e.into()))?;
                bind_readonly(&from, &to, false)?;
            }
        }
        Ok(())
    }

    /// Mounts an overlay of lower directory `lower` on `dst`.
    fn overlay(&mut self, lower: &Path, dst: &Path) -> Result<(), MountError> {
        self.count += 1;
        let dir = self.layers.join(self.count.to_string());
        let (upper, work) = (dir.join("upper"), dir.join("work"));
        make_dir(&dir, 0o700)?;
        // The overlay's root directory takes its mode from the upper one: keep the lower's.
        make_dir(&upper, mode_of(lower))?;
        make_dir(&work, 0o700)?;
        // ',' and ':' separate options and layers; such names are rare enough to just bind.
        let special = |p: &Path| p.as_os_str().as_bytes().iter().any(|b| b",:\\".contains(b));
        if special(lower) {
            return bind_readonly(lower, dst, true);
        }
        // userxattr: a user namespace may not set the trusted.* attributes overlayfs uses by
        // default; user.* ones work on tmpfs since Linux 6.6 (before, overlayfs falls back to
        // fewer features, still correct for a throwaway layer).
        let mut data = OsStr::new("lowerdir=").to_os_string();
        for (key, path) in [("", lower), (",upperdir=", &upper), (",workdir=", &work)] {
            data.push(key);
            data.push(path);
        }
        data.push(",userxattr");
        match mount(
            Some("overlay"),
            dst,
            Some("overlay"),
            MsFlags::empty(),
            Some(data.as_os_str()),
        ) {
            Ok(()) => Ok(()),
            // No overlayfs in a user namespace at all (EPERM before Linux 5.11): say so,
            // rather than show a read-only root.
            Err(e @ (nix::Error::EPERM | nix::Error::ENODEV)) => Err(refused(e.into())),
            // Only the host's root has other directories to try: there, this one stays read-only.
            Err(e) if dst != lower => {
                tracing::warn!(
                    "--overlay: {} is read-only: overlayfs refused it as a lower layer ({})",
                    shown(lower),
                    Errno::from(e)
                );
                bind_readonly(lower, dst, true)
            }
            Err(e) => Err(refused(e.into())),
        }
    }
}

/// The overlay mount refused: one line with the kernel release and what to do.
fn refused(errno: Errno) -> MountError {
    MountError::Mount {
        at: AT.into(),
        what: "an overlayfs".into(),
        dest: "/".into(),
        errno,
        fix: fix(errno, &kernel_release()),
    }
}

/// A path under the supervisor's /newroot, as the sandbox sees it.
fn shown(path: &Path) -> String {
    let inside = path.strip_prefix(super::NEWROOT).unwrap_or(path);
    Path::new("/").join(inside).display().to_string()
}

fn bug(what: &str, dest: &Path, errno: Errno) -> MountError {
    MountError::Mount {
        at: AT.into(),
        what: what.into(),
        dest: dest.to_path_buf(),
        errno,
        fix: "the supervisor's empty root is not set up as expected (a bug in nsboot)".into(),
    }
}

fn make_dir(path: &Path, mode: u32) -> Result<(), MountError> {
    mkdir(path, Mode::from_bits_truncate(mode)).map_err(|e| bug("a directory", path, e.into()))
}

fn mode_of(path: &Path) -> u32 {
    nix::sys::stat::stat(path).map_or(0o755, |st| st.st_mode & 0o7777)
}

/// Binds `src` on `dst` read-only (the host's root is bound writable beneath: nothing shown
/// from it may be).
fn bind_readonly(src: &Path, dst: &Path, recursive: bool) -> Result<(), MountError> {
    let rec = if recursive {
        MsFlags::MS_REC
    } else {
        MsFlags::empty()
    };
    mount(
        Some(src),
        dst,
        None::<&str>,
        MsFlags::MS_BIND | rec,
        None::<&str>,
    )
    .map_err(|e| bug("a bind", dst, e.into()))?;
    // O_PATH: the mount just made, whatever its type, without reading it.
    let top = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_NOFOLLOW)
        .open(dst)
        .map_err(|e| bug("opening", dst, e.into()))?;
    if resolve::set_readonly_recursive(top.as_fd()).is_err() {
        resolve::remount_bind(top.as_fd(), MsFlags::MS_RDONLY, true)
            .map_err(|e| bug("a read-only remount", dst, e))?;
    }
    Ok(())
}

/// Mount points strictly beneath `root`, from /proc/self/mountinfo (the supervisor's own).
pub(super) fn mount_points_beneath(root: &Path) -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    parse_mount_points(&text)
        .into_iter()
        .filter(|p| p.starts_with(root) && p != root)
        .collect()
}

/// The mount point field (the fifth) of each mountinfo line, octal escapes undone.
fn parse_mount_points(mountinfo: &str) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(OsStr::from_bytes(&unescape(p))))
        .collect()
}

/// `\040` and the other octal escapes of mountinfo, back to bytes.
fn unescape(field: &str) -> Vec<u8> {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                out.push(d.iter().fold(0u8, |n, c| n.wrapping_mul(8) + (c - b'0')));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown".into())
}

/// `(major, minor)` of a release string such as "6.1.0-18-amd64".
fn version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// The fix for a refused overlay mount on the kernel `release`.
fn fix(errno: Errno, release: &str) -> String {
    let old = version(release).is_some_and(|v| v < MIN_KERNEL);
    if old {
        return format!(
            "--overlay needs Linux 5.11 or later (overlayfs in a user namespace), this kernel is {release}: run without --overlay"
        );
    }
    let why = match errno.0 {
        libc::EPERM | libc::EACCES => "the kernel or a security module refused overlayfs in a user namespace",
        libc::ENODEV => "the kernel has no overlayfs (CONFIG_OVERLAY_FS): load the overlay module",
        _ => "the root's filesystem may not work as an overlay lower layer (e.g. an overlay nested too deep)",
    };
    format!(
        "--overlay needs Linux 5.11 or later (overlayfs in a user namespace); this kernel is {release} and {why}: run without --overlay"
    )
}

#[cfg(test)]
mod tests;
