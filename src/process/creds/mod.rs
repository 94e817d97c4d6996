//! The application's credentials and limits, applied in runc's order between a set-up root and
//! execve: rlimits, oomScoreAdj, (seccomp, when it needs privilege), keepcaps, bounding set,
//! groups, gid, uid, the capability sets, cwd, umask, no_new_privs, (seccomp, otherwise).
//!
//! Everything that needs privilege comes while the process is still root of its user namespace;
//! the capability sets are narrowed to the spec's only after the uid switch (which keepcaps
//! survives); what must be judged as the user (cwd) comes after; seccomp is loaded as late as
//! its own needs allow, so that the profile has to permit as few of our syscalls as possible.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use nix::errno::Errno as NixErrno;
use nix::sys::stat::{umask, Mode};
use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
use oci_spec::runtime::{LinuxSeccomp, Process, User};
use serde::{Deserialize, Serialize};

use super::caps::{self, CapSets, CapsError};
use super::rlimits::{self, RlimitError};
use super::seccomp::{self, bpf::Program, SeccompError};
use crate::sys::Errno;

#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
pub enum CredsError {
    #[error(transparent)]
    Rlimit(#[from] RlimitError),
    #[error(transparent)]
    Caps(#[from] CapsError),
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
    #[error("process.oomScoreAdj {value} is out of range: use -1000 to 1000")]
    OomRange { value: i32 },
    #[error("process.oomScoreAdj {value}: writing /proc/self/oom_score_adj failed: {errno}{}", oom_hint(*.errno))]
    Oom { value: i32, errno: Errno },
    #[error("process.oomScoreAdj {value}: {err}")]
    OomUnverified {
        value: i32,
        err: crate::sys::procfs::ProcfsError,
    },
    #[error("linux.sysctl[{key:?}]: {err}{}", sysctl_hint(err))]
    Sysctl {
        key: String,
        err: crate::sys::procfs::ProcfsError,
    },
    #[error("process.user.additionalGids {gids:?} need a gid map written by newgidmap: this user namespace denies setgroups (a single-id gid map); give the caller a range in /etc/subgid or remove additionalGids")]
    SetgroupsDenied { gids: Vec<u32> },
    #[error("process.user.{field} {id} is not mapped in the user namespace ({map} cover {ranges}): add a mapping or run with a subordinate range")]
    NotMapped {
        field: String,
        id: u32,
        map: String,
        ranges: String,
    },
    #[error("setgroups({gids:?}) for process.user.additionalGids: {errno}")]
    Setgroups { gids: Vec<u32>, errno: Errno },
    #[error("switching to process.user.{field} {id}: {errno}")]
    SetId {
        field: String,
        id: u32,
        errno: Errno,
    },
    #[error("process.cwd {}: cannot enter it as uid {uid}: {errno}{}", .cwd.display(), chdir_hint(*.errno))]
    Chdir {
        cwd: PathBuf,
        uid: u32,
        errno: Errno,
    },
    #[error("process.cwd {}: it lies outside the container root (a host directory, reached through /proc/self/fd or a symlink): refusing to start; set process.cwd to a directory of the rootfs", .cwd.display())]
    CwdOutside { cwd: PathBuf },
    #[error("setting no_new_privs: {errno}")]
    NoNewPrivs { errno: Errno },
    #[error("linux.seccomp uses SCMP_ACT_NOTIFY but nothing here receives its listener fd: set linux.seccomp.listenerPath or remove the NOTIFY rules")]
    NotifyUnhandled,
    #[error(transparent)]
    Listener(#[from] super::seccomp::agent::AgentError),
}

fn oom_hint(errno: Errno) -> &'static str {
    match errno.nix() {
        NixErrno::EACCES | NixErrno::EPERM => ": lowering the OOM score needs CAP_SYS_RESOURCE on the host; raise the value or remove process.oomScoreAdj",
        NixErrno::ENOENT => ": /proc is not mounted in the container; add a proc mount to the spec",
        _ => "",
    }
}

fn sysctl_hint(err: &crate::sys::procfs::ProcfsError) -> &'static str {
    let crate::sys::procfs::ProcfsError::Io { errno, .. } = err else {
        return "";
    };
    match errno.nix() {
        // The kernel hands a namespace's sysctl files to its owner only for net and ipc.
        NixErrno::EACCES | NixErrno::EPERM => {
            ": the kernel lets only the host's root write it; run as root or remove it"
        }
        NixErrno::ENOENT => ": this kernel has no such sysctl; check the name or remove it",
        NixErrno::EINVAL => ": the kernel refused the value; fix it",
        _ => "",
    }
}

fn chdir_hint(errno: Errno) -> &'static str {
    match errno.nix() {
        NixErrno::ENOENT => ": create it in the rootfs or fix process.cwd",
        NixErrno::EACCES => {
            ": the user lacks search permission on it or a parent; fix the modes or process.user"
        }
        NixErrno::ENOTDIR => ": it (or a parent) is not a directory; fix process.cwd",
        _ => "",
    }
}

/// rlimits, oomScoreAdj, user/groups, caps, cwd, umask, no_new_privs, seccomp: everything
/// between a set-up root and execve. A profile with NOTIFY rules needs `apply_with_listener`.
/// `precompiled`: the profile's program, compiled by the caller (None: compiled here).
pub fn apply(
    process: &Process,
    seccomp: Option<&LinuxSeccomp>,
    precompiled: Option<&Program>,
) -> Result<(), CredsError> {
    if seccomp.is_some_and(seccomp::uses_notify) {
        return Err(CredsError::NotifyUnhandled);
    }
    apply_with_listener(process, seccomp, precompiled, |_| {
        Err(CredsError::NotifyUnhandled)
    })
}

/// `apply`, handing the seccomp user-notification fd (if the profile makes one) to
/// `send_listener` right after the filter is loaded; any syscall it makes must be allowed by
/// the profile.
pub fn apply_with_listener(
    process: &Process,
    seccomp: Option<&LinuxSeccomp>,
    precompiled: Option<&Program>,
    send_listener: impl FnOnce(OwnedFd) -> Result<(), CredsError>,
) -> Result<(), CredsError> {
    // A spec mistake is reported before anything changes.
    let sets = CapSets::from_spec(process.capabilities().as_ref())?;
    sets.validate()?;
    // The OCI default: off unless the spec sets it, so that setuid programs inside work.
    let nnp = process.no_new_privileges().unwrap_or(false);
    let user = process.user();
    let mut send_listener = Some(send_listener);
    let mut load_seccomp = |spec: &LinuxSeccomp| -> Result<(), CredsError> {
        if let Some(fd) = seccomp::load(spec, precompiled)? {
            send_listener.take().ok_or(CredsError::NotifyUnhandled)?(fd)?;
        }
        Ok(())
    };

    rlimits::apply(process.rlimits().as_deref().unwrap_or_default())?;
    // Without no_new_privs the kernel lets only CAP_SYS_ADMIN load a filter: load it now.
    if let Some(spec) = seccomp.filter(|_| !nnp) {
        load_seccomp(spec)?;
    }
    // The permitted set must survive the switch away from uid 0, to be narrowed below.
    caps::set_keepcaps(true)?;
    caps::drop_bounding(&sets.bounding)?;
    set_groups(user)?;
    set_ids(user)?;
    caps::set_process(&sets)?;
    caps::set_keepcaps(false)?;
    // As the user, with the user's capabilities: a cwd the user cannot enter is an error.
    nix::unistd::chdir(process.cwd()).map_err(|e| CredsError::Chdir {
        cwd: process.cwd().clone(),
        uid: user.uid(),
        errno: e.into(),
    })?;
    refuse_cwd_outside_root(process.cwd())?;
    umask(Mode::from_bits_truncate(
        user.umask().unwrap_or(0o022) as libc::mode_t
    ));
    if nnp {
        nix::sys::prctl::set_no_new_privs()
            .map_err(|e| CredsError::NoNewPrivs { errno: e.into() })?;
        if let Some(spec) = seccomp {
            load_seccomp(spec)?;
        }
    }
    Ok(())
}

/// runc's check after chdir: a cwd outside the process's root (reached through a host fd, or
/// a symlink to one) has no path from that root: the kernel's getcwd then answers
/// "(unreachable)..." or ENOENT.
fn refuse_cwd_outside_root(cwd: &std::path::Path) -> Result<(), CredsError> {
    match nix::unistd::getcwd() {
        Ok(p) if p.is_absolute() => Ok(()),
        _ => Err(CredsError::CwdOutside { cwd: cwd.into() }),
    }
}

/// Called by the application when it is created, before it makes itself non-dumpable (which
/// hands its /proc files to the host's root).
pub fn set_oom_score_adj(value: Option<i32>) -> Result<(), CredsError> {
    let Some(value) = value else {
        return Ok(());
    };
    if !(-1000..=1000).contains(&value) {
        return Err(CredsError::OomRange { value });
    }
    use crate::sys::procfs::{self, ProcfsError};
    procfs::write_self("oom_score_adj", &value.to_string()).map_err(|err| match err {
        ProcfsError::Io { errno, .. } => CredsError::Oom { value, errno },
        err => CredsError::OomUnverified { value, err },
    })
}

/// linux.sysctl, written by the application in all its namespaces while it is still root of
/// its user namespace, which owns them (validation let only those sysctls through).
pub fn set_sysctls(sysctl: Option<&HashMap<String, String>>) -> Result<(), CredsError> {
    for (key, value) in sysctl.into_iter().flatten() {
        let path = crate::spec::sysctl::proc_path(key);
        crate::sys::procfs::write_sys(&path, value).map_err(|err| CredsError::Sysctl {
            key: key.clone(),
            err,
        })?;
    }
    Ok(())
}

/// The supplementary groups are exactly additionalGids. A user namespace whose gid map was
/// written with setgroups=deny refuses setgroups(2) outright; that is fine when nothing beyond
/// the primary group was asked for.
fn set_groups(user: &User) -> Result<(), CredsError> {
    let gids = user.additional_gids().clone().unwrap_or_default();
    let list: Vec<Gid> = gids.iter().map(|g| Gid::from_raw(*g)).collect();
    match setgroups(&list) {
        Ok(()) => Ok(()),
        Err(NixErrno::EPERM) if setgroups_denied() => {
            if gids.is_empty() || gids == [user.gid()] {
                Ok(())
            } else {
                Err(CredsError::SetgroupsDenied { gids })
            }
        }
        Err(NixErrno::EINVAL) => {
            let map = read_map("gid_map");
            let id = first_unmapped(&gids, &map)
                .or(gids.first().copied())
                .unwrap_or(0);
            Err(not_mapped("additionalGids", id, "gidMappings", &map))
        }
        Err(e) => Err(CredsError::Setgroups {
            gids,
            errno: e.into(),
        }),
    }
}

fn setgroups_denied() -> bool {
    std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny")
}

/// gid before uid: after the uid switch there is no CAP_SETGID left to switch the gid.
fn set_ids(user: &User) -> Result<(), CredsError> {
    let (uid, gid) = (user.uid(), user.gid());
    let g = Gid::from_raw(gid);
    setresgid(g, g, g).map_err(|e| id_error("gid", gid, e))?;
    let u = Uid::from_raw(uid);
    setresuid(u, u, u).map_err(|e| id_error("uid", uid, e))
}

fn id_error(field: &str, id: u32, e: NixErrno) -> CredsError {
    if e != NixErrno::EINVAL {
        return CredsError::SetId {
            field: field.into(),
            id,
            errno: e.into(),
        };
    }
    let (file, name) = if field == "uid" {
        ("uid_map", "uidMappings")
    } else {
        ("gid_map", "gidMappings")
    };
    not_mapped(field, id, name, &read_map(file))
}

fn not_mapped(field: &str, id: u32, map: &str, ranges: &[(u64, u64)]) -> CredsError {
    CredsError::NotMapped {
        field: field.into(),
        id,
        map: map.into(),
        ranges: describe_ranges(ranges),
    }
}

/// The inside ranges of /proc/self/{uid,gid}_map as (first id, count).
fn read_map(file: &str) -> Vec<(u64, u64)> {
    parse_map(&std::fs::read_to_string(format!("/proc/self/{file}")).unwrap_or_default())
}

/// Lines of "inside outside count" -> (inside, count).
pub fn parse_map(text: &str) -> Vec<(u64, u64)> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<u64> = line
                .split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect();
            (f.len() == 3).then(|| (f[0], f[2]))
        })
        .collect()
}

/// "0-0, 1-65536", or "nothing" for an unwritten map.
pub fn describe_ranges(ranges: &[(u64, u64)]) -> String {
    if ranges.is_empty() {
        return "nothing".into();
    }
    let parts: Vec<String> = ranges
        .iter()
        .map(|(s, n)| format!("{s}-{}", s + n.saturating_sub(1)))
        .collect();
    parts.join(", ")
}

/// The first id that no range covers.
pub fn first_unmapped(ids: &[u32], ranges: &[(u64, u64)]) -> Option<u32> {
    ids.iter().copied().find(|id| {
        !ranges
            .iter()
            .any(|(s, n)| (*s..s + n).contains(&u64::from(*id)))
    })
}

#[cfg(test)]
pub(crate) mod tests;
