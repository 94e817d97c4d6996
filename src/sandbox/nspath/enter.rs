//! The joining child's side: into each namespace given by path, then what only it can do
//! there (the joined user namespace's maps checked, the joined uts namespace's names, the
//! mounts that show joined ipc, network and pid namespaces).

use std::os::fd::AsFd;

use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use oci_spec::runtime::Spec;

use super::{inherited_mounts, Joins, NsPathError, TYPES};
use crate::rootfs::shown::Shown;
use crate::sys::{self, Cloned, Errno};

impl Joins {
    /// In the joining child: setns into each, the user namespace first (then its maps
    /// checked against the spec's). Then, unless the sandbox is in the joined user namespace
    /// (which owns what it joins), the mqueue of a joined ipc namespace and the sysfs of a
    /// joined network namespace, which only we can mount.
    pub(super) fn enter(&self, spec: &Spec) -> Result<Shown, NsPathError> {
        for j in &self.joins {
            nix::sched::setns(j.fd.as_fd(), j.flag).map_err(|e| {
                let kind = TYPES.iter().find(|x| x.1 == j.flag).map_or("", |x| x.2);
                let hint = match e {
                    nix::errno::Errno::EPERM => ": nsboot's caller lacks CAP_SYS_ADMIN over the user namespace that owns it: run nsboot as that namespace's owner (root for the host's), or list that user namespace by path too".into(),
                    _ => String::new(),
                };
                NsPathError::Join {
                    index: j.index,
                    path: j.path.clone(),
                    kind: kind.into(),
                    errno: e.into(),
                    hint,
                }
            })?;
            if j.flag == CloneFlags::CLONE_NEWUSER {
                self.check_maps()?;
            }
        }
        if self.joins_user() {
            return Ok(Shown::default());
        }
        let joined = |f: CloneFlags| self.joins.iter().any(|j| j.flag == f);
        if joined(CloneFlags::CLONE_NEWUTS) {
            set_names(spec)?;
        }
        let mut types = Vec::new();
        if joined(CloneFlags::CLONE_NEWIPC) {
            types.push("mqueue");
        }
        if joined(CloneFlags::CLONE_NEWNET) {
            types.push("sysfs");
        }
        let mut shown = Shown::make(spec, &types).map_err(|(index, errno)| {
            let fstype = spec
                .mounts()
                .iter()
                .flatten()
                .nth(index)
                .and_then(|m| m.typ().clone())
                .unwrap_or_default();
            let kind = if fstype == "mqueue" { "ipc" } else { "network" };
            NsPathError::Shown {
                index,
                fstype,
                kind: kind.into(),
                errno,
            }
        })?;
        if joined(CloneFlags::CLONE_NEWPID) {
            shown.extend(proc_of_joined_pidns(spec)?);
        }
        shown.extend(inherited_mounts(spec));
        Ok(shown)
    }

    /// The joined user namespace's maps, as its own member reads them (relative to its
    /// parent), equal the spec's, if it has any.
    fn check_maps(&self) -> Result<(), NsPathError> {
        for (which, ours) in &self.maps {
            if ours.is_empty() {
                continue;
            }
            let text =
                std::fs::read_to_string(format!("/proc/self/{which}_map")).unwrap_or_default();
            let mut theirs: Vec<String> = text
                .lines()
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
                .collect();
            let mut sorted = ours.clone();
            sorted.sort();
            theirs.sort();
            if sorted != theirs {
                return Err(NsPathError::Maps {
                    which: (*which).into(),
                    ours: ours.join(", "),
                    theirs: theirs.join(", "),
                });
            }
        }
        Ok(())
    }
}

/// A proc of the pid namespace joined (by setns: our children's), for each proc entry of the
/// spec: only a process inside a pid namespace mounts its proc, so a child of ours makes them,
/// in our fd table (CLONE_FILES), and names them on a pipe.
fn proc_of_joined_pidns(spec: &Spec) -> Result<Shown, NsPathError> {
    type Made = Result<Vec<(usize, i32)>, (usize, Errno)>;
    let failed = |step: &str, errno: Errno| NsPathError::Clone {
        step: step.into(),
        errno,
    };
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)
        .map_err(|e| failed("creating the proc maker's pipe", e.into()))?;
    let pidfd = match sys::clone_process(CloneFlags::CLONE_FILES) {
        Err(e) => return Err(failed("starting the proc maker", e)),
        Ok(Cloned::Child) => {
            let made: Made = Shown::make(spec, &["proc"]).map(Shown::into_raw);
            let sent = sys::wire::send(&w, &made);
            // SAFETY: _exit leaves the fds it made open in the table it shares with its parent.
            unsafe { libc::_exit(i32::from(sent.is_err())) }
        }
        Ok(Cloned::Parent { pidfd, .. }) => pidfd,
    };
    // Our fd table is the maker's: close nothing (the pipe's write end) until it is gone.
    let _ = sys::pidfd_wait(pidfd.as_fd());
    drop(w);
    let made = sys::wire::expect::<Made>(&r, "the proc of the joined pid namespace")
        .map_err(|e| failed(&e.to_string(), Errno(libc::EPIPE)))?;
    let made = made.map_err(|(index, errno)| NsPathError::Shown {
        index,
        fstype: "proc".into(),
        kind: "pid".into(),
        errno,
    })?;
    // SAFETY: the maker made these fds in our shared table and left them to us alone.
    Ok(unsafe { Shown::from_raw(made) })
}

/// hostname and domainname in a joined uts namespace (the supervisor leaves them to us).
fn set_names(spec: &Spec) -> Result<(), NsPathError> {
    let failed = |field: &str, e: Errno| NsPathError::Names {
        field: field.into(),
        errno: e,
    };
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        nix::unistd::sethostname(h).map_err(|e| failed("hostname", e.into()))?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        // SAFETY: setdomainname reads len bytes from a valid buffer.
        let r = unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) };
        if r != 0 {
            return Err(failed("domainname", Errno::last()));
        }
    }
    Ok(())
}
