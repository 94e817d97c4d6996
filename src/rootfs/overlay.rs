//! `nsboot do --overlay`: the container root made writable through an overlayfs whose upper
//! layer is a tmpfs, so that every write lands in memory and vanishes with the sandbox.
//!
//! The supervisor calls [`apply`] right after the rootfs is bound at /newroot and before the
//! spec's mounts are assembled: those (the working directory, volumes, /proc, /dev, /tmp...)
//! then land on top of the overlay and keep writing through to their own filesystems.
//!
//! What the overlay shows: overlayfs takes its lower layer from the one mount at /newroot,
//! never from the mounts beneath it. With the host's root bound recursively, the host's
//! submounts (a separate /home, /boot, /var...) show as the empty directories they are mounted
//! on. /proc, /dev, /dev/pts, /dev/shm, /tmp, /run and /sys come from the spec's own mounts,
//! and the working directory and volumes are binds, so these look as without --overlay.

use std::path::Path;

use nix::mount::{mount, MsFlags};
use nix::sys::stat::Mode;
use nix::unistd::mkdir;

use super::mounts::MountError;
use crate::spec::Spec;
use crate::sys::Errno;

/// The annotation asking for the overlay: `nsboot do --overlay` sets it to "true".
pub const ANNOTATION: &str = "nsboot.overlay";

/// The supervisor's private directory for the overlay's upper and work layers. It sits in the
/// supervisor's empty root, which the application never sees.
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
    let step = |what: &str, dest: &Path, e: nix::Error| MountError::Mount {
        at: AT.into(),
        what: what.into(),
        dest: dest.to_path_buf(),
        errno: e.into(),
        fix: "the supervisor's empty root is not set up as expected (a bug in nsboot)".into(),
    };
    mkdir(base, Mode::from_bits_truncate(0o700)).map_err(|e| step("a directory", base, e))?;
    // A tmpfs of its own rather than the supervisor's root: the upper layer's size and
    // lifetime are the overlay's alone.
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    mount(Some("tmpfs"), base, Some("tmpfs"), flags, Some("mode=0700"))
        .map_err(|e| step("a tmpfs", base, e))?;
    let (upper, work) = (base.join("upper"), base.join("work"));
    // The overlay's root directory takes its mode from the upper one: keep the rootfs's.
    let root_mode = nix::sys::stat::stat(newroot).map_or(0o755, |st| st.st_mode & 0o7777);
    mkdir(&upper, Mode::from_bits_truncate(root_mode)).map_err(|e| step("a directory", &upper, e))?;
    mkdir(&work, Mode::from_bits_truncate(0o700)).map_err(|e| step("a directory", &work, e))?;
    let lower = newroot.display();
    let (upper, work) = (upper.display(), work.display());
    // userxattr: a user namespace may not set the trusted.* attributes overlayfs uses by
    // default; user.* ones work on tmpfs since Linux 6.6 (before, overlayfs falls back to
    // fewer features, still correct for a throwaway layer).
    let data = format!("lowerdir={lower},upperdir={upper},workdir={work},userxattr");
    let mount_overlay = |data: &str| {
        mount(Some("overlay"), newroot, Some("overlay"), MsFlags::empty(), Some(data))
    };
    mount_overlay(&data).map_err(|e| MountError::Mount {
        at: AT.into(),
        what: "an overlayfs".into(),
        dest: "/".into(),
        errno: e.into(),
        fix: fix(Errno::from(e), &kernel_release()),
    })
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
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn versions_parse_from_distribution_releases() {
        assert_eq!(version("6.1.0-18-amd64"), Some((6, 1)));
        assert_eq!(version("5.11.0"), Some((5, 11)));
        assert_eq!(version("4.19.282+"), Some((4, 19)));
        assert_eq!(version("weird"), None);
    }

    #[test]
    fn fix_names_the_kernel_and_5_11() {
        let old = fix(Errno(libc::EPERM), "5.10.0-28-amd64");
        assert_eq!(
            old,
            "--overlay needs Linux 5.11 or later (overlayfs in a user namespace), this kernel is 5.10.0-28-amd64: run without --overlay"
        );
        let new = fix(Errno(libc::EINVAL), "6.1.0");
        assert!(new.contains("5.11") && new.contains("this kernel is 6.1.0"), "{new}");
        assert!(new.ends_with("run without --overlay"), "{new}");
        assert!(!new.contains('\n'));
    }

    #[test]
    fn wanted_only_with_the_annotation_set_to_true() {
        let mut spec = Spec::default();
        assert!(!wanted(&spec));
        let a = |v: &str| HashMap::from([(ANNOTATION.to_string(), v.to_string())]);
        spec.set_annotations(Some(a("false")));
        assert!(!wanted(&spec));
        spec.set_annotations(Some(a("true")));
        assert!(wanted(&spec));
    }

    #[test]
    fn apply_without_the_annotation_touches_nothing() {
        apply(&Spec::default(), Path::new("/nonexistent")).unwrap();
    }
}
