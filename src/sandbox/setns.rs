//! `exec`'s way into a running sandbox: join the application's namespaces through a pidfd of
//! it, in two steps around a fork, so that the new process is a descendant of the caller
//! (conmon reaps it) and the caller itself keeps the host's file system.
//!
//! 1. The caller joins the user and pid namespaces (`join_user_and_pid`). Joining a pid
//!    namespace needs CAP_SYS_ADMIN in the caller's own user namespace, which an unprivileged
//!    caller has only once inside the sandbox's; and it only decides where the caller's
//!    *children* live. The caller's mount namespace is untouched: --pid-file, --log and the
//!    console socket stay host paths.
//! 2. It forks; the child is in the sandbox's pid namespace and joins the rest
//!    (`join_rest`): mount (which also puts it at the container's root), ipc, uts, and net,
//!    cgroup and time when the sandbox has its own.
//!
//! Namespaces the application joined by path (`nspath`) that its user namespace does not own
//! are joined before step 1, while the caller still has its own capabilities over them.

use std::os::fd::{AsFd, OwnedFd};

use nix::sched::CloneFlags;
use serde::{Deserialize, Serialize};

use crate::process::console::ConsoleError;
use crate::process::ProcessError;
use crate::state::lifecycle;
use crate::sys::Errno;

#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
pub enum SetnsError {
    #[error("opening a pidfd for the application of container {id} (pid {pid}): {errno}")]
    Pidfd { id: String, pid: i32, errno: Errno },
    #[error("joining the {which} namespaces of container {id}: {errno}{hint}")]
    Join {
        id: String,
        which: String,
        errno: Errno,
        hint: String,
    },
    #[error(transparent)]
    Console(#[from] ConsoleError),
    #[error(transparent)]
    Process(#[from] ProcessError),
}

impl SetnsError {
    /// 127 / 126 when the program could not be found or run, else 125.
    pub fn exit_code(&self) -> i32 {
        match self {
            SetnsError::Process(e) => e.exit_code(),
            _ => 125,
        }
    }
}

/// The application, held by a pidfd, and which of its namespaces differ from ours.
pub struct Target {
    pub id: String,
    pub pidfd: OwnedFd,
    rest: CloneFlags,
}

const TIME: CloneFlags = CloneFlags::from_bits_retain(libc::CLONE_NEWTIME);

/// Names of the namespaces in `flags`, for messages.
fn names(flags: CloneFlags) -> String {
    let all = [
        (CloneFlags::CLONE_NEWUSER, "user"),
        (CloneFlags::CLONE_NEWPID, "pid"),
        (CloneFlags::CLONE_NEWNS, "mount"),
        (CloneFlags::CLONE_NEWIPC, "ipc"),
        (CloneFlags::CLONE_NEWUTS, "uts"),
        (CloneFlags::CLONE_NEWNET, "net"),
        (CloneFlags::CLONE_NEWCGROUP, "cgroup"),
        (TIME, "time"),
    ];
    all.iter()
        .filter(|(f, _)| flags.contains(*f))
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The namespaces of `app` that differ from ours. Joining one we are already in fails (the
/// user namespace with EINVAL, the host's net namespace with EPERM), so only differing ones
/// are joined. When /proc/APP/ns cannot be read, nsboot's own: user, mount, pid, ipc, uts.
fn differing(app: i32) -> CloneFlags {
    let kinds = [
        ("user", CloneFlags::CLONE_NEWUSER),
        ("pid", CloneFlags::CLONE_NEWPID),
        ("mnt", CloneFlags::CLONE_NEWNS),
        ("ipc", CloneFlags::CLONE_NEWIPC),
        ("uts", CloneFlags::CLONE_NEWUTS),
        ("net", CloneFlags::CLONE_NEWNET),
        ("cgroup", CloneFlags::CLONE_NEWCGROUP),
        ("time", TIME),
    ];
    let app = app.to_string();
    let mut flags = CloneFlags::empty();
    for (name, flag) in kinds {
        match (lifecycle::ns_id(&app, name), lifecycle::ns_id("self", name)) {
            (Some(theirs), Some(ours)) if theirs == ours => {}
            (None, _) if matches!(name, "net" | "cgroup" | "time") => {}
            _ => flags |= flag,
        }
    }
    flags
}

/// Those of `flags` whose namespace of `app` is owned by another user namespace than the
/// application's (joined by path from outside it).
fn foreign_owned(app: i32, flags: CloneFlags) -> CloneFlags {
    use std::os::unix::fs::MetadataExt;
    let files = [
        (CloneFlags::CLONE_NEWPID, "pid"),
        (CloneFlags::CLONE_NEWNS, "mnt"),
        (CloneFlags::CLONE_NEWIPC, "ipc"),
        (CloneFlags::CLONE_NEWUTS, "uts"),
        (CloneFlags::CLONE_NEWNET, "net"),
        (CloneFlags::CLONE_NEWCGROUP, "cgroup"),
        (TIME, "time"),
    ];
    let Some(user) = lifecycle::ns_id(&app.to_string(), "user") else {
        return CloneFlags::empty();
    };
    let owner = |file: &str| {
        let ns = std::fs::File::open(format!("/proc/{app}/ns/{file}")).ok()?;
        let owner = crate::sys::nsfs::ns_owner(ns.as_fd()).ok()?;
        let m = std::fs::File::from(owner).metadata().ok()?;
        Some((m.dev(), m.ino()))
    };
    files
        .iter()
        .filter(|(f, file)| flags.contains(*f) && owner(file).is_some_and(|o| o != user))
        .fold(CloneFlags::empty(), |acc, (f, _)| acc | *f)
}

fn join(t: &Target, flags: CloneFlags) -> Result<(), SetnsError> {
    if flags.is_empty() {
        return Ok(());
    }
    nix::sched::setns(t.pidfd.as_fd(), flags).map_err(|e| {
        let hint = match e {
            nix::errno::Errno::EPERM => {
                ": only the user who created the container (or root) can exec into it".into()
            }
            nix::errno::Errno::EINVAL => {
                ": this kernel needs setns with a pidfd (Linux >= 5.8)".into()
            }
            _ => String::new(),
        };
        SetnsError::Join {
            id: t.id.clone(),
            which: names(flags),
            errno: e.into(),
            hint,
        }
    })
}

/// Step 1, in the caller (single-threaded): join the user and pid namespaces of the
/// application `app` of container `id`.
pub fn join_user_and_pid(id: &str, app: i32) -> Result<Target, SetnsError> {
    let pidfd = lifecycle::pidfd_open(app).map_err(|errno| SetnsError::Pidfd {
        id: id.into(),
        pid: app,
        errno,
    })?;
    let all = differing(app);
    let foreign = foreign_owned(app, all - CloneFlags::CLONE_NEWUSER);
    let first = (all - foreign) & (CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWPID);
    let target = Target {
        id: id.into(),
        pidfd,
        rest: all - foreign - first,
    };
    join(&target, foreign)?;
    join(&target, first)?;
    Ok(target)
}

/// Step 2, in the forked child: join the remaining namespaces.
pub fn join_rest(t: &Target) -> Result<(), SetnsError> {
    join(t, t.rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_namespaces_are_not_joined() {
        assert_eq!(differing(std::process::id() as i32), CloneFlags::empty());
    }

    #[test]
    fn names_lists_the_namespaces_in_order() {
        assert_eq!(
            names(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUSER),
            "user, mount"
        );
    }
}
