//! `linux.namespaces[].path`: namespaces the sandbox joins instead of making. The caller opens
//! each path (a host path) and checks that it names a namespace of the listed type; a
//! short-lived child of the caller joins them, the user namespace first, and clones the
//! supervisor into the remaining new ones with CLONE_PARENT, so that the supervisor is the
//! caller's child as in every other launch.
//!
//! Why before the clone, and why in a child: joining a namespace needs CAP_SYS_ADMIN over the
//! user namespace that owns it. The supervisor, once in its new user namespace, holds that
//! only over its own, never over the host's (or an engine's) namespaces; the caller holds it
//! but must keep its own namespaces (its state, the id maps it writes, the hooks it runs).

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespaceType as Ns, Spec};
use serde::{Deserialize, Serialize};

use crate::rootfs::shown::Shown;
use crate::spec::{lists, namespaces};

mod enter;
use crate::sys::{self, Cloned, Errno};

#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
pub enum NsPathError {
    #[error("linux.namespaces[{index}].path {path:?}: {errno}: give the path of a live {kind} namespace (/proc/PID/ns/{file} of a running process, or a bind mount of one)")]
    Open {
        index: usize,
        path: PathBuf,
        errno: Errno,
        kind: String,
        file: String,
    },
    #[error("linux.namespaces[{index}].path {path:?}: {what}, not {kind}: give the path of a {kind} namespace (/proc/PID/ns/{file})")]
    WrongType {
        index: usize,
        path: PathBuf,
        what: String,
        kind: String,
        file: String,
    },
    #[error(
        "linux.namespaces[{index}].path {path:?}: joining the {kind} namespace: {errno}{hint}"
    )]
    Join {
        index: usize,
        path: PathBuf,
        kind: String,
        errno: Errno,
        hint: String,
    },
    #[error("linux.namespaces[{index}].path {path:?}: the caller's own mount namespace: pivoting the container's root into it would move every process of it there: give a mount namespace made for the container (unshare --mount)")]
    OwnMount { index: usize, path: PathBuf },
    #[error("linux.{which}Mappings: the user namespace joined by path maps {theirs:?}, the spec {ours:?}: its maps are the joined namespace's: remove {which}Mappings or make them agree")]
    Maps {
        which: String,
        ours: String,
        theirs: String,
    },
    #[error("mounts[{index}]: a {fstype} for the {kind} namespace joined by path: {errno}")]
    Shown {
        index: usize,
        fstype: String,
        kind: String,
        errno: Errno,
    },
    #[error("{field}: setting it in the uts namespace joined by path: {errno}")]
    Names { field: String, errno: Errno },
    #[error(
        "creating the sandbox's namespaces after joining linux.namespaces paths: {step}: {errno}"
    )]
    Clone { step: String, errno: Errno },
}

/// Each type: the spec's enum, its clone flag, its name in the spec and under /proc/PID/ns.
const TYPES: [(Ns, CloneFlags, &str, &str); 8] = [
    (Ns::User, CloneFlags::CLONE_NEWUSER, "user", "user"),
    (Ns::Mount, CloneFlags::CLONE_NEWNS, "mount", "mnt"),
    (Ns::Pid, CloneFlags::CLONE_NEWPID, "pid", "pid"),
    (Ns::Network, CloneFlags::CLONE_NEWNET, "network", "net"),
    (Ns::Ipc, CloneFlags::CLONE_NEWIPC, "ipc", "ipc"),
    (Ns::Uts, CloneFlags::CLONE_NEWUTS, "uts", "uts"),
    (Ns::Cgroup, CloneFlags::CLONE_NEWCGROUP, "cgroup", "cgroup"),
    (
        Ns::Time,
        CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
        "time",
        "time",
    ),
];

fn type_of(typ: Ns) -> (CloneFlags, &'static str, &'static str) {
    let (_, flag, kind, file) = TYPES
        .iter()
        .find(|(t, ..)| *t == typ)
        .expect("every namespace type is listed");
    (*flag, kind, file)
}

/// One namespace to join: its spec entry and an fd of it, opened by the caller.
struct Joined {
    index: usize,
    path: PathBuf,
    flag: CloneFlags,
    fd: OwnedFd,
}

/// The spec's namespaces given by path, opened and checked; the user namespace first.
pub struct Joins {
    joins: Vec<Joined>,
    /// The spec's uid and gid mappings, each line "container host size", which a joined user
    /// namespace's must equal (when the spec has any).
    maps: [(&'static str, Vec<String>); 2],
}

/// The clone flags of the types the spec lists with a path.
pub fn joined_flags(spec: &Spec) -> CloneFlags {
    namespaces(spec)
        .iter()
        .filter(|n| n.path().is_some())
        .fold(CloneFlags::empty(), |f, n| f | type_of(n.typ()).0)
}

/// The mqueue of the caller's ipc namespace, which a spec without one shares: made here, where
/// the caller's capabilities reach it (as real root or an engine's root), as runc mounts it.
/// Without them (rootless), none: the supervisor's own attempt then says why.
pub fn inherited_mounts(spec: &Spec) -> Shown {
    if lists(spec, Ns::Ipc) {
        return Shown::default();
    }
    Shown::make(spec, &["mqueue"]).unwrap_or_default()
}

impl Joins {
    /// Opens every `path` of `linux.namespaces` and checks its type (NS_GET_NSTYPE).
    pub fn open(spec: &Spec) -> Result<Joins, NsPathError> {
        let mut joins = Vec::new();
        if joined_flags(spec).is_empty() {
            return Ok(Joins {
                joins,
                maps: Default::default(),
            });
        }
        for (index, ns) in namespaces(spec).iter().enumerate() {
            let Some(path) = ns.path() else { continue };
            let (flag, kind, file) = type_of(ns.typ());
            // Non-blocking, no controlling tty: a FIFO or a terminal named here must not hang
            // or adopt the caller; only an nsfs file passes the type check below.
            let fd = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
                .open(path)
                .map(OwnedFd::from)
                .map_err(|e| NsPathError::Open {
                    index,
                    path: path.clone(),
                    errno: e.into(),
                    kind: kind.into(),
                    file: file.into(),
                })?;
            let what = match sys::nsfs::ns_type(fd.as_fd()) {
                Ok(t) if t == flag => None,
                Ok(t) => Some(format!(
                    "is of type {}",
                    TYPES.iter().find(|x| x.1 == t).map_or("other", |x| x.2)
                )),
                Err(Errno(libc::ENOTTY)) => Some("is no namespace file".into()),
                Err(e) => Some(format!("reading its type: {e}")),
            };
            if let Some(what) = what {
                return Err(NsPathError::WrongType {
                    index,
                    path: path.clone(),
                    what,
                    kind: kind.into(),
                    file: file.into(),
                });
            }
            if flag == CloneFlags::CLONE_NEWNS && is_own_mount_ns(fd.as_fd()) {
                return Err(NsPathError::OwnMount {
                    index,
                    path: path.clone(),
                });
            }
            joins.push(Joined {
                index,
                path: path.clone(),
                flag,
                fd,
            });
        }
        // The user namespace first: it gives the capabilities over what it owns.
        joins.sort_by_key(|j| j.flag != CloneFlags::CLONE_NEWUSER);
        let lines = |m: Option<&Vec<oci_spec::runtime::LinuxIdMapping>>| -> Vec<String> {
            m.into_iter()
                .flatten()
                .map(|r| format!("{} {} {}", r.container_id(), r.host_id(), r.size()))
                .collect()
        };
        let linux = spec.linux().as_ref();
        Ok(Joins {
            joins,
            maps: [
                ("uid", lines(linux.and_then(|l| l.uid_mappings().as_ref()))),
                ("gid", lines(linux.and_then(|l| l.gid_mappings().as_ref()))),
            ],
        })
    }

    /// The mount namespace's fd, taken out: the application enters it, not the joining child
    /// (`rootfs::joined`), since the supervisor builds the root in a namespace of its own.
    pub fn take_mount(&mut self) -> Option<OwnedFd> {
        let at = self
            .joins
            .iter()
            .position(|j| j.flag == CloneFlags::CLONE_NEWNS)?;
        Some(self.joins.remove(at).fd)
    }

    pub fn is_empty(&self) -> bool {
        self.joins.is_empty()
    }

    /// Whether the user namespace is joined (no maps to write: they are its own).
    pub fn joins_user(&self) -> bool {
        self.joins
            .iter()
            .any(|j| j.flag == CloneFlags::CLONE_NEWUSER)
    }

    /// Clones the supervisor into `flags`' new namespaces and the joined ones: a child joins,
    /// clones it as the caller's own child (CLONE_PARENT), reports its pid and exits. Returns
    /// as `sys::clone_process` does, in the supervisor and in the caller; the supervisor also
    /// gets the mounts that show joined namespaces it could not mount itself.
    pub fn clone_supervisor(
        self,
        spec: &Spec,
        flags: CloneFlags,
    ) -> Result<(Cloned, Shown), NsPathError> {
        let failed = |step: &str, errno: Errno| NsPathError::Clone {
            step: step.into(),
            errno,
        };
        let (report, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)
            .map_err(|e| failed("creating the report pipe", e.into()))?;
        let joiner = sys::clone_process(CloneFlags::empty())
            .map_err(|e| failed("starting the joining child", e))?;
        let Cloned::Parent { pidfd: joiner, .. } = joiner else {
            drop(report);
            let cloned = self.enter(spec).and_then(|shown| {
                sys::clone_process(flags | CloneFlags::CLONE_PARENT)
                    .map(|c| (c, shown))
                    .map_err(|e| failed("clone", e))
            });
            let pid = match cloned {
                Ok((Cloned::Child, shown)) => return Ok((Cloned::Child, shown)),
                Ok((Cloned::Parent { pid, .. }, _)) => Ok(pid.as_raw()),
                Err(e) => Err(e),
            };
            let sent = sys::wire::send(&w, &pid);
            // SAFETY: _exit ends the joining child without running the caller's destructors.
            unsafe { libc::_exit(i32::from(sent.is_err() || pid.is_err())) }
        };
        drop((w, self));
        let pid = sys::wire::expect::<Result<i32, NsPathError>>(&report, "the joining child");
        let _ = sys::pidfd_wait(joiner.as_fd());
        let pid = pid.map_err(|e| failed(&e.to_string(), Errno(libc::EPIPE)))??;
        // The supervisor is our child (CLONE_PARENT) and not reaped: its pid is still its own.
        let pidfd = crate::state::lifecycle::pidfd_open(pid)
            .map_err(|e| failed("opening a pidfd of the supervisor", e))?;
        let cloned = Cloned::Parent {
            pid: nix::unistd::Pid::from_raw(pid),
            pidfd,
        };
        Ok((cloned, Shown::default()))
    }
}

/// `ns` is the caller's own mount namespace (the same nsfs inode). Unknown counts as own: a
/// caller that cannot stat its own cannot tell the host's apart.
fn is_own_mount_ns(ns: std::os::fd::BorrowedFd<'_>) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Ok(own), Ok(given)) = (
        std::fs::metadata("/proc/self/ns/mnt"),
        nix::sys::stat::fstat(std::os::fd::AsRawFd::as_raw_fd(&ns)),
    ) else {
        return true;
    };
    own.dev() == given.st_dev && own.ino() == given.st_ino
}
