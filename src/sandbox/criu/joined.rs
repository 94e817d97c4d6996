//! Namespaces the container joined by path (a pod's network, ipc and uts): not the container's
//! to dump. CRIU runs inside them, at dump (`nsboot checkpoint` enters the application's) and
//! at restore (the supervisor enters the spec's), and so takes them as it takes the host's:
//! left out of the images, the restored application put back into them.
//!
//! Why not runc's `--external net[INODE]:extRootNetNS` (and `--join-ns`): CRIU 3.17 refuses to
//! dump a tree whose namespaces its user namespace does not own ("One or more namespaces
//! doesn't belong to the target user namespace"; nsboot always makes one), and its restored
//! root task, inside the new user namespace, could not setns into the pod's either.
//!
//! The file systems that show such a namespace (sysfs the network's, mqueue the ipc's) can be
//! mounted only with CAP_SYS_ADMIN over its owner, which the restored container lacks: they
//! are external mounts, mounted by the restore's supervisor and bound by CRIU.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use serde::{Deserialize, Serialize};

use super::External;

/// A namespace type taken as external when joined by path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExternalNs {
    Network,
    Ipc,
    Uts,
}

impl ExternalNs {
    /// The type of the spec's `typ`, when CRIU can leave it out (not pid, user, mount,
    /// cgroup or time: CRIU would dump those as the container's own).
    pub fn of(typ: LinuxNamespaceType) -> Option<ExternalNs> {
        match typ {
            LinuxNamespaceType::Network => Some(ExternalNs::Network),
            LinuxNamespaceType::Ipc => Some(ExternalNs::Ipc),
            LinuxNamespaceType::Uts => Some(ExternalNs::Uts),
            _ => None,
        }
    }

    /// Its name under /proc/PID/ns.
    pub fn proc_name(self) -> &'static str {
        match self {
            ExternalNs::Network => "net",
            ExternalNs::Ipc => "ipc",
            ExternalNs::Uts => "uts",
        }
    }

    /// Its clone flag (what NS_GET_NSTYPE says of it).
    pub fn flag(self) -> CloneFlags {
        match self {
            ExternalNs::Network => CloneFlags::CLONE_NEWNET,
            ExternalNs::Ipc => CloneFlags::CLONE_NEWIPC,
            ExternalNs::Uts => CloneFlags::CLONE_NEWUTS,
        }
    }

    fn spec_type(self) -> LinuxNamespaceType {
        match self {
            ExternalNs::Network => LinuxNamespaceType::Network,
            ExternalNs::Ipc => LinuxNamespaceType::Ipc,
            ExternalNs::Uts => LinuxNamespaceType::Uts,
        }
    }

    /// The file system that shows it, which only its owner's root may mount.
    fn shown_by(self) -> Option<&'static str> {
        match self {
            ExternalNs::Network => Some("sysfs"),
            ExternalNs::Ipc => Some("mqueue"),
            ExternalNs::Uts => None,
        }
    }
}

/// Enters (this process, before it runs CRIU) the namespaces `joined` of the application
/// `app`; on failure, the namespace file and the error.
pub fn enter_app(app: i32, joined: &[ExternalNs]) -> Result<(), (PathBuf, std::io::Error)> {
    for ns in joined {
        let file = PathBuf::from(format!("/proc/{app}/ns/{}", ns.proc_name()));
        std::fs::File::open(&file)
            .and_then(|f| nix::sched::setns(f, ns.flag()).map_err(std::io::Error::from))
            .map_err(|e| (file, e))?;
    }
    Ok(())
}

/// The mounts of the file systems showing the `joined` namespaces, not yet in `known`.
pub fn shown_mounts(mountinfo: &str, joined: &[ExternalNs], known: &[External]) -> Vec<External> {
    let types: Vec<&str> = joined.iter().filter_map(|ns| ns.shown_by()).collect();
    mountinfo
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let sep = f.iter().position(|x| *x == "-")?;
            let fstype = *f.get(sep + 1)?;
            (sep > 4 && types.contains(&fstype)).then(|| External {
                dest: super::record::unescape(f[4]),
                fstype: fstype.into(),
                root: super::record::unescape(f[3]),
            })
        })
        .filter(|m| !known.iter().any(|k| k.dest == m.dest))
        .collect()
}

/// The namespace of type `ns` at the spec's path, opened and checked, for the supervisor.
pub fn open_spec(spec: &Spec, ns: ExternalNs) -> Result<(ExternalNs, OwnedFd), String> {
    let name = ns.proc_name();
    let path = crate::spec::namespaces(spec)
        .iter()
        .find(|n| n.typ() == ns.spec_type())
        .and_then(|n| n.path().clone())
        .ok_or_else(|| format!("the checkpoint's {name} namespace was joined by path and the bundle's config.json gives none: add the path of the {name} namespace to restore into to linux.namespaces"))?;
    let what = |e: &dyn std::fmt::Display| {
        format!(
            "the {name} namespace to restore into, {}: {e}: give the path of a live one (/proc/PID/ns/{name})",
            path.display()
        )
    };
    let file = std::fs::File::open(&path).map_err(|e| what(&e))?;
    let flag = crate::sys::nsfs::ns_type(file.as_fd()).map_err(|e| what(&e))?;
    if flag != ns.flag() {
        return Err(what(&format!("not a {name} namespace")));
    }
    Ok((ns, file.into()))
}

/// Where the supervisor mounts, for CRIU to bind, the file systems of the joined namespaces
/// that the images hold as external mounts: `WORK/.nsboot-FSTYPE`.
pub struct Shown(Vec<(&'static str, PathBuf)>);

impl Shown {
    /// The directories for `mounts` (the images' external mounts), made.
    pub fn new(work: &Path, joined: &[ExternalNs], mounts: &[External]) -> Result<Shown, String> {
        let mut dirs = Vec::new();
        for fstype in joined.iter().filter_map(|ns| ns.shown_by()) {
            if mounts.iter().any(|m| m.fstype == fstype) {
                let dir = work.join(format!(".nsboot-{fstype}"));
                std::fs::create_dir_all(&dir)
                    .map_err(|e| format!("creating {}: {e}", dir.display()))?;
                dirs.push((fstype, dir));
            }
        }
        Ok(Shown(dirs))
    }

    /// The source of the external mount `m`, when it is one of these.
    pub fn source(&self, m: &External) -> Option<String> {
        let (_, dir) = self.0.iter().find(|(t, _)| *t == m.fstype)?;
        Some(
            dir.join(m.root.trim_start_matches('/'))
                .to_string_lossy()
                .into(),
        )
    }

    /// The supervisor, inside the joined namespaces and its own private mount namespace,
    /// mounts each file system on its directory.
    pub fn mount(&self) -> Result<(), String> {
        let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        for (fstype, dir) in &self.0 {
            mount(Some(*fstype), dir, Some(*fstype), flags, None::<&str>).map_err(|e| {
                format!(
                    "mounting the joined namespace's {fstype} for CRIU at {}: {e}",
                    dir.display()
                )
            })?;
        }
        Ok(())
    }

    /// Once CRIU has bound them (or failed): the mounts and directories are not kept.
    pub fn remove(&self) {
        for (_, dir) in &self.0 {
            let _ = nix::mount::umount2(dir, nix::mount::MntFlags::MNT_DETACH);
            let _ = std::fs::remove_dir(dir);
        }
    }
}
