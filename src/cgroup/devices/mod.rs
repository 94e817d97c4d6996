//! linux.resources.devices enforced by the kernel: the v1 devices cgroup (`v1.rs`) or, on the
//! unified hierarchy, an eBPF cgroup-device program (`ebpf.rs`). Both are built from one
//! [`Policy`]: the spec's rules applied in order over runc's default (deny everything), then
//! the nodes runc allows every container, as the v1 kernel keeps them: a default and a list of
//! exceptions. A request is allowed when one exception covers it (default deny) or when no
//! exception touches it (default allow), so v1 and v2 give the same answers.
//!
//! A rule is applied exactly or refused: a deny cannot punch a hole in a wider allow listed
//! before it (nor an allow in a wider deny), because the v1 kernel drops only exceptions of
//! the very same key and an exception list has no room for "10:* but 10:229" (runc refuses it
//! alike). A rule of type `a` with every access and no numbers resets the list, as the kernel
//! does; with numbers or fewer accesses it stands for the same rule on `c` and on `b`.

pub mod ebpf;
pub mod v1;

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};
use serde::{Deserialize, Serialize};

use crate::sys::Errno;

#[derive(Debug, Clone, thiserror::Error, Serialize, Deserialize)]
pub enum DevicesError {
    #[error("linux.resources.devices[{index}]: {why}")]
    Rule { index: usize, why: String },
    #[error("devices cgroup {path}: {what}: {errno}")]
    Io {
        path: PathBuf,
        what: String,
        errno: Errno,
    },
    #[error("devices cgroup {path}: the kernel refused the device program ({errno}{log}): nsboot needs a kernel with BPF_PROG_TYPE_CGROUP_DEVICE (4.15 or later)")]
    Load {
        path: PathBuf,
        errno: Errno,
        log: String,
    },
}

/// Access bits, valued as the kernel's BPF_DEVCG_ACC_*.
pub const MKNOD: u8 = 1;
pub const READ: u8 = 2;
pub const WRITE: u8 = 4;
pub const ALL: u8 = MKNOD | READ | WRITE;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Char,
    Block,
}

/// One exception of the list: a device key (None is any number) and its access bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exception {
    pub kind: Kind,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u8,
}

/// What the rules leave: a default and the exceptions to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub default_allow: bool,
    pub exceptions: Vec<Exception>,
}

/// The nodes runc allows after the spec's rules: mknod of any node, then /dev/null, random,
/// full, tty, zero, urandom, console, the ptys, ptmx, net/tun.
const STANDARD: [(Kind, Option<u32>, Option<u32>, u8); 12] = [
    (Kind::Char, None, None, MKNOD),
    (Kind::Block, None, None, MKNOD),
    (Kind::Char, Some(1), Some(3), ALL),
    (Kind::Char, Some(1), Some(8), ALL),
    (Kind::Char, Some(1), Some(7), ALL),
    (Kind::Char, Some(5), Some(0), ALL),
    (Kind::Char, Some(1), Some(5), ALL),
    (Kind::Char, Some(1), Some(9), ALL),
    (Kind::Char, Some(5), Some(1), ALL),
    (Kind::Char, Some(136), None, ALL),
    (Kind::Char, Some(5), Some(2), ALL),
    (Kind::Char, Some(10), Some(200), ALL),
];

fn number(n: Option<i64>, field: &str) -> Result<Option<u32>, String> {
    match n {
        None => Ok(None),
        Some(n) if n < 0 => Ok(None),
        Some(n) => u32::try_from(n)
            .map(Some)
            .map_err(|_| format!("{field} {n} is not a device number")),
    }
}

fn bits(access: Option<&str>) -> Result<u8, String> {
    let mut b = 0;
    for c in access.unwrap_or("rwm").chars() {
        b |= match c {
            'r' => READ,
            'w' => WRITE,
            'm' => MKNOD,
            _ => {
                return Err(format!(
                    "access {access:?} holds {c:?}: only r, w and m exist"
                ))
            }
        };
    }
    Ok(b)
}

impl Exception {
    /// Whether every device `self` names is one `other` names too.
    fn within(&self, other: &Exception) -> bool {
        let num = |mine: Option<u32>, theirs: Option<u32>| theirs.is_none() || mine == theirs;
        self.kind == other.kind && num(self.major, other.major) && num(self.minor, other.minor)
    }

    fn overlaps(&self, other: &Exception) -> bool {
        let num = |a: Option<u32>, b: Option<u32>| a.is_none() || b.is_none() || a == b;
        self.kind == other.kind && num(self.major, other.major) && num(self.minor, other.minor)
    }

    /// As the kernel writes it: "c 1:3 rwm", "b *:* m".
    pub fn line(&self) -> String {
        let n = |v: Option<u32>| v.map_or("*".to_string(), |v| v.to_string());
        let kind = if self.kind == Kind::Char { 'c' } else { 'b' };
        let mut acc = String::new();
        for (bit, c) in [(READ, 'r'), (WRITE, 'w'), (MKNOD, 'm')] {
            if self.access & bit != 0 {
                acc.push(c);
            }
        }
        format!("{kind} {}:{} {acc}", n(self.major), n(self.minor))
    }
}

impl Policy {
    /// The policy of `rules` (the spec's linux.resources.devices), or the first rule that
    /// cannot be applied exactly.
    pub fn from_rules(rules: &[LinuxDeviceCgroup]) -> Result<Policy, DevicesError> {
        let mut p = Policy {
            default_allow: false,
            exceptions: Vec::new(),
        };
        for (index, r) in rules.iter().enumerate() {
            p.rule(r).map_err(|why| DevicesError::Rule { index, why })?;
        }
        for (kind, major, minor, access) in STANDARD {
            let e = Exception {
                kind,
                major,
                minor,
                access,
            };
            p.apply(true, e)
                .expect("an allow over default deny always applies");
        }
        Ok(p)
    }

    fn rule(&mut self, r: &LinuxDeviceCgroup) -> Result<(), String> {
        let (major, minor) = (number(r.major(), "major")?, number(r.minor(), "minor")?);
        let access = bits(r.access().as_deref())?;
        let kinds: &[Kind] = match r.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A if major.is_none() && minor.is_none() && access == ALL => {
                self.default_allow = r.allow();
                self.exceptions.clear();
                return Ok(());
            }
            LinuxDeviceType::A => &[Kind::Char, Kind::Block],
            LinuxDeviceType::C | LinuxDeviceType::U => &[Kind::Char],
            LinuxDeviceType::B => &[Kind::Block],
            LinuxDeviceType::P => {
                return Err("type p: a devices cgroup governs char and block devices only (FIFOs need no rule): remove the rule".into())
            }
        };
        for &kind in kinds {
            let e = Exception {
                kind,
                major,
                minor,
                access,
            };
            self.apply(r.allow(), e)?;
        }
        Ok(())
    }

    fn apply(&mut self, allow: bool, rule: Exception) -> Result<(), String> {
        if rule.access == 0 {
            return Ok(());
        }
        if allow != self.default_allow {
            match self
                .exceptions
                .iter_mut()
                .find(|e| (e.kind, e.major, e.minor) == (rule.kind, rule.major, rule.minor))
            {
                Some(e) => e.access |= rule.access,
                None => self.exceptions.push(rule),
            }
            return Ok(());
        }
        if let Some(wider) = self
            .exceptions
            .iter()
            .find(|e| !e.within(&rule) && e.overlaps(&rule) && e.access & rule.access != 0)
        {
            let verb = if allow { "allow" } else { "deny" };
            return Err(format!(
                "{verb} {} cuts into the wider rule {} before it, which a devices cgroup cannot hold (its exceptions are whole keys): list the narrower devices instead of the wider one",
                rule.line(),
                wider.line()
            ));
        }
        for e in &mut self.exceptions {
            if e.within(&rule) {
                e.access &= !rule.access;
            }
        }
        self.exceptions.retain(|e| e.access != 0);
        Ok(())
    }

    /// Whether a request of `access` bits on a node is allowed, as the kernel decides.
    pub fn allows(&self, kind: Kind, major: u32, minor: u32, access: u8) -> bool {
        let node = Exception {
            kind,
            major: Some(major),
            minor: Some(minor),
            access,
        };
        let mut matching = self.exceptions.iter().filter(|e| node.within(e));
        if self.default_allow {
            !matching.any(|e| e.access & access != 0)
        } else {
            matching.any(|e| access & !e.access == 0)
        }
    }
}

/// Applies `rules` to the container's devices cgroup `dir`: v1's devices hierarchy, or the
/// unified directory (`unified`). `update`: the cgroup holds processes already, which must
/// not meet a moment where every device is denied (v1 then writes the difference only).
pub fn apply(
    unified: bool,
    dir: &Path,
    rules: &[LinuxDeviceCgroup],
    update: bool,
) -> Result<(), DevicesError> {
    let policy = Policy::from_rules(rules)?;
    if unified {
        ebpf::apply(dir, &policy)
    } else {
        v1::apply(dir, &policy, update)
    }
}

impl super::Cgroup {
    /// Whether this cgroup enforces device rules: as real root (an unprivileged caller can
    /// load no device program, and a delegated v1 devices cgroup would not exist), on the
    /// unified hierarchy or with the v1 devices one mounted. Then the supervisor's checks on
    /// nodes step aside for it (`rootfs::nodes`, `rootfs::guard`).
    pub fn enforces_devices(&self) -> bool {
        !crate::idmap::is_rootless() && self.dir_of("devices").is_some()
    }

    /// The spec's device rules (none: runc's default, every device denied but the standard
    /// nodes), on the cgroup that [`enforces_devices`](Self::enforces_devices).
    pub fn apply_devices(
        &self,
        rules: &[LinuxDeviceCgroup],
        update: bool,
    ) -> Result<(), super::CgroupError> {
        match self.dir_of("devices") {
            Some(dir) if self.enforces_devices() => {
                apply(self.unified, dir, rules, update).map_err(Into::into)
            }
            _ => Ok(()),
        }
    }
}

/// The supervisor's copy of a spec whose device rules a cgroup enforces
/// ([`enforces_devices`](super::Cgroup::enforces_devices)): without them. The supervisor
/// reads them only to refuse what nothing but a devices cgroup could hold to (a bound node
/// allowed less than read and write, a `dev` mount under deny rules: `rootfs::nodes`,
/// `rootfs::guard`); with the cgroup there, those checks step aside for it.
pub fn hand_over(spec: &mut crate::spec::Spec) {
    if let Some(r) = spec
        .linux_mut()
        .as_mut()
        .and_then(|l| l.resources_mut().as_mut())
    {
        r.set_devices(None);
    }
}

impl From<DevicesError> for super::CgroupError {
    fn from(e: DevicesError) -> Self {
        match e {
            DevicesError::Rule { index, why } => super::CgroupError::Unsupported {
                field: format!("linux.resources.devices[{index}]"),
                why,
            },
            DevicesError::Io { path, what, errno } => super::CgroupError::Io {
                path,
                what,
                errno,
                hint: String::new(),
            },
            e @ DevicesError::Load { .. } => super::CgroupError::Unsupported {
                field: "linux.resources.devices".into(),
                why: e.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests;
