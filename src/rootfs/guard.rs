//! What the spec may not mount where: nothing over the container's procfs (runc's
//! checkProcMount), no proc or sysfs through a symlink the image planted, and no `dev` mount
//! while linux.resources.devices denies devices (only a cgroup could hold to the rules there).
//!
//! The destination is judged where it resolved inside the root, not as written: `/evil` is
//! `/proc` when the image makes it a symlink there.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::resolve;
use crate::spec::Spec;

#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
pub enum GuardError {
    #[error("{at}: {dest} is a symlink in the rootfs (to {resolved}): a {typ} is only mounted on a real directory; make {dest} a directory in the image")]
    Symlinked {
        at: String,
        dest: PathBuf,
        resolved: PathBuf,
        typ: String,
    },
    #[error("{at}: the destination {dest} lies inside /proc (it resolves to {resolved}): nothing but a proc is mounted over procfs{lxcfs}; remove {at} from config.json")]
    InProc {
        at: String,
        dest: PathBuf,
        resolved: PathBuf,
        lxcfs: String,
    },
    #[error("{at}: option dev on {dest} would let any device node there open, while linux.resources.devices denies some and nsboot has no devices cgroup to enforce that: drop dev, or allow all devices")]
    DevMount { at: String, dest: PathBuf },
}

/// The /proc files lxcfs stands in for, which runc lets a bind cover.
const LXCFS: [&str; 14] = [
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/pressure/cpu",
    "/proc/pressure/io",
    "/proc/pressure/memory",
    "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
    "/proc/sys/crypto/fips_enabled",
];

/// Types mounted only on a real directory, never through a symlink.
pub fn no_symlink(typ: &str) -> bool {
    matches!(typ, "proc" | "sysfs")
}

/// A spec entry of type `typ` whose destination `dest` resolved to `resolved` in the root.
pub fn destination(at: &str, dest: &Path, resolved: &Path, typ: &str) -> Result<(), GuardError> {
    if no_symlink(typ) {
        if resolved != resolve::lexical(dest) {
            return Err(GuardError::Symlinked {
                at: at.into(),
                dest: dest.into(),
                resolved: resolved.into(),
                typ: typ.into(),
            });
        }
        return Ok(());
    }
    if !resolved.starts_with("/proc") {
        return Ok(());
    }
    // The spec's proc is mounted by the application after every other entry, over these:
    // a bind there would be hidden, so it is refused rather than dropped.
    let lxcfs = if LXCFS.iter().any(|p| resolved == Path::new(p)) {
        " (binds over /proc files such as lxcfs's are not supported)"
    } else {
        ""
    };
    Err(GuardError::InProc {
        at: at.into(),
        dest: dest.into(),
        resolved: resolved.into(),
        lxcfs: lxcfs.into(),
    })
}

/// A mount whose options end in `dev`, under device rules that deny anything.
pub fn dev_option(spec: &Spec, at: &str, dest: &Path) -> Result<(), GuardError> {
    let rules = spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| r.devices().clone())
        .unwrap_or_default();
    if crate::spec::devices::deny_any(&rules) {
        return Err(GuardError::DevMount {
            at: at.into(),
            dest: dest.into(),
        });
    }
    Ok(())
}
