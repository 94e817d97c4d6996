//! The spec's `mounts` list: binds from the host, tmpfs, sysfs, devpts, mqueue, cgroup, proc.
//!
//! Sources of binds are host paths, resolved inside `host` (the host's root, /oldroot in the
//! supervisor) so that the host's own absolute symlinks keep their meaning; targets are
//! resolved inside the container root and never leave it (see `resolve`).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::mount::MsFlags;
use serde::{Deserialize, Serialize};

use super::resolve::{self, Create, Resolved};
use crate::rootfs::net::creates_netns;
use crate::rootfs::shown::{self, Shown};
use crate::spec::Spec;
use crate::sys::Errno;
use oci_spec::runtime::Mount;

mod kinds;
mod options;
use kinds::{cgroup, devpts, sysfs};
pub use options::MountOptions;

#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
pub enum MountError {
    #[error(
        "mount source {src} for {dest} does not exist: create it or fix {at}.source in config.json"
    )]
    SourceMissing {
        at: String,
        src: PathBuf,
        dest: PathBuf,
    },
    #[error("opening mount source {src} for {dest} ({at}): {errno}: check that the calling user can read it")]
    Source {
        at: String,
        src: PathBuf,
        dest: PathBuf,
        errno: Errno,
    },
    #[error("resolving or creating {dest} inside the container root ({at}): {errno}: {fix}")]
    Target {
        at: String,
        dest: PathBuf,
        errno: Errno,
        fix: String,
    },
    #[error("mounting {what} on {dest} ({at}): {errno}: {fix}")]
    Mount {
        at: String,
        what: String,
        dest: PathBuf,
        errno: Errno,
        fix: String,
    },
    #[error("device {path} ({at}) does not exist on the host: load its driver or remove it from linux.devices in config.json")]
    DeviceMissing { at: String, path: PathBuf },
    #[error("opening {path}: {errno}: the supervisor's root is not set up as expected (a bug in nsboot)")]
    Root { path: PathBuf, errno: Errno },
    /// Boxed: its largest variant would make every Result of the start path bigger.
    #[error(transparent)]
    Node(Box<super::nodes::NodeError>),
    #[error(transparent)]
    Guard(#[from] super::guard::GuardError),
    #[error(transparent)]
    Net(#[from] crate::rootfs::net::NetError),
}

impl From<super::nodes::NodeError> for MountError {
    fn from(e: super::nodes::NodeError) -> Self {
        MountError::Node(Box::new(e))
    }
}

/// The fix to suggest for a failed mount, by errno.
pub(super) fn fix_for(errno: Errno, at: &str) -> String {
    match errno.0 {
        libc::EPERM | libc::EACCES => format!(
            "the kernel refused it inside the user namespace (some filesystems need real root): remove {at} from config.json or run as root"
        ),
        libc::ENODEV => format!("the kernel does not know this filesystem type: load its module or fix {at}.type"),
        libc::ENOTDIR | libc::EISDIR => {
            format!("source and destination must both be directories or both be files: fix {at}")
        }
        libc::EINVAL => format!("check {at}.options in config.json"),
        libc::EROFS => format!("the parent of {at}.destination is read-only: create the mount point in the rootfs"),
        _ => format!("check {at} in config.json"),
    }
}

/// Where a mount comes from, carried into every error about it.
pub(super) struct Ctx<'a> {
    pub at: String,
    pub dest: &'a Path,
    pub root: BorrowedFd<'a>,
}

impl Ctx<'_> {
    /// The destination resolved inside the container root, created per `create`.
    pub fn target(&self, create: Create) -> Result<Resolved, MountError> {
        resolve::resolve(self.root, self.dest, create).map_err(|e| self.target_err(e))
    }

    /// [`Ctx::target`] for an entry of the spec's mounts of type `typ`, refused where it
    /// resolved somewhere the spec may not mount (see `guard`).
    pub fn spec_target(&self, create: Create, typ: &str) -> Result<Resolved, MountError> {
        if super::guard::no_symlink(typ)
            && resolve::through_symlink(self.root, self.dest) == Some(true)
        {
            // Refused before anything is made where the symlink points.
            let resolved = match self.target(Create::No) {
                Ok(r) => r.path,
                Err(MountError::Target { errno, .. }) if errno.0 == libc::ENOENT => {
                    PathBuf::from("a path missing in the rootfs")
                }
                Err(e) => return Err(e),
            };
            return Err(super::guard::GuardError::Symlinked {
                at: self.at.clone(),
                dest: self.dest.to_path_buf(),
                resolved,
                typ: typ.into(),
            }
            .into());
        }
        let r = self.target(create)?;
        super::guard::destination(&self.at, self.dest, &r.path, typ)?;
        Ok(r)
    }

    /// [`Ctx::spec_target`] for a bind of `source`: one of a procfs onto /proc itself passes
    /// (runc's checkProcMount; rootless podman's `--pid host` binds the host's /proc so).
    pub fn bind_target(&self, create: Create, source: BorrowedFd) -> Result<Resolved, MountError> {
        match self.spec_target(create, "bind") {
            Err(MountError::Guard(super::guard::GuardError::InProc { ref resolved, .. }))
                if resolved == Path::new("/proc") && crate::sys::procfs::is_proc(source) =>
            {
                self.target(Create::No)
            }
            other => other,
        }
    }

    /// The host's `src`, resolved inside `host` (the host's own symlinks keep their meaning).
    pub fn host_source(&self, host: BorrowedFd, src: &Path) -> Result<Resolved, MountError> {
        resolve::resolve(host, src, Create::No).map_err(|errno| {
            let (at, src, dest) = (self.at.clone(), src.to_path_buf(), self.dest.to_path_buf());
            match errno.0 {
                libc::ENOENT => MountError::SourceMissing { at, src, dest },
                _ => MountError::Source {
                    at,
                    src,
                    dest,
                    errno,
                },
            }
        })
    }

    pub fn target_err(&self, errno: Errno) -> MountError {
        let dest = self.dest.display();
        let fix = match errno.0 {
            libc::ENOTDIR => format!("a path component of {dest} is a file in the rootfs"),
            libc::ELOOP => format!("{dest} goes through a symlink loop in the rootfs"),
            libc::EROFS | libc::EACCES | libc::EPERM => {
                format!("create {dest} in the rootfs beforehand")
            }
            _ => fix_for(errno, &self.at),
        };
        let (at, dest) = (self.at.clone(), self.dest.to_path_buf());
        MountError::Target {
            at,
            dest,
            errno,
            fix,
        }
    }

    pub fn mount_err(&self, what: &str, errno: Errno) -> MountError {
        MountError::Mount {
            at: self.at.clone(),
            what: what.to_string(),
            dest: self.dest.to_path_buf(),
            fix: fix_for(errno, &self.at),
            errno,
        }
    }

    /// The mount now on top of the destination (the fd from before the mount still points
    /// beneath it), for remounts and propagation changes.
    pub fn mounted(&self) -> Result<OwnedFd, MountError> {
        Ok(self.target(Create::No)?.fd)
    }

    /// Flags and propagation that can only be set once the mount exists. The flags reach the
    /// top mount (runc's remount), but `ro` on an rbind reaches its submounts too: runc leaves
    /// them writable, which a `-v /host:/data:ro` user does not expect (`rro` and the other
    /// recursive options reach every submount).
    pub fn finish_bind(&self, what: &str, o: &MountOptions) -> Result<(), MountError> {
        let ro_rec = o.recursive && o.flags.contains(MsFlags::MS_RDONLY);
        if o.flags.is_empty() && !o.atime && !ro_rec && o.propagation.is_empty() {
            // A plain bind: nothing to set, no need to resolve the new mount again.
            return Ok(());
        }
        let top = self.mounted()?;
        if !o.flags.is_empty() || o.atime {
            resolve::remount_bind(top.as_fd(), o.flags, !o.atime)
                .map_err(|e| self.mount_err(what, e))?;
        }
        if ro_rec {
            resolve::set_readonly_recursive(top.as_fd()).map_err(|e| self.mount_err(what, e))?;
        }
        self.propagate(top.as_fd(), what, o)
    }

    /// The recursive options (`rro`, `rnosuid`...), on the mount now at the destination and
    /// every mount beneath it.
    pub fn recursive(&self, what: &str, o: &MountOptions) -> Result<(), MountError> {
        if o.rec_set == 0 && o.rec_clr == 0 {
            return Ok(());
        }
        let top = self.mounted()?;
        let what = format!("recursive options on {what}");
        resolve::set_recursive(top.as_fd(), o.rec_set, o.rec_clr).map_err(|e| match e.0 {
            // The flags and atime mode a mount of the host had are locked in the user namespace.
            libc::EPERM => MountError::Mount {
                at: self.at.clone(),
                what,
                dest: self.dest.to_path_buf(),
                errno: e,
                fix: format!("the host's mounts keep their nosuid, nodev, noexec, read-only and atime settings inside the user namespace: remove the option that clears or changes one from {}.options", self.at),
            },
            _ => self.mount_err(&what, e),
        })
    }

    pub fn propagate(
        &self,
        top: BorrowedFd<'_>,
        what: &str,
        o: &MountOptions,
    ) -> Result<(), MountError> {
        for p in &o.propagation {
            resolve::set_propagation(top, *p).map_err(|e| self.mount_err(what, e))?;
        }
        Ok(())
    }
}

pub(super) fn open_root(path: &Path) -> Result<OwnedFd, MountError> {
    resolve::open_root(path).map_err(|errno| MountError::Root {
        path: path.to_path_buf(),
        errno,
    })
}

/// Binds the host's `src` onto the destination and applies the options; nodev (the mount and
/// its submounts) unless the options say `dev`.
pub(super) fn bind_from_host(
    ctx: &Ctx,
    host: BorrowedFd,
    src: &Path,
    o: &MountOptions,
) -> Result<(), MountError> {
    let source = ctx.host_source(host, src)?;
    let is_dir = resolve::is_dir(source.fd.as_fd()).map_err(|e| ctx.mount_err("a bind", e))?;
    let create = if is_dir { Create::Dir } else { Create::File };
    let target = ctx.bind_target(create, source.fd.as_fd())?;
    let what = format!("a bind of {}", src.display());
    let (source, target) = (source.fd.as_fd(), target.fd.as_fd());
    let nodev = if o.dev { 0 } else { resolve::MOUNT_ATTR_NODEV };
    match resolve::bind_with(source, target, o.recursive, nodev) {
        // No mount_setattr (Linux < 5.12): the remount of the top mount makes it nodev.
        Err(Errno(libc::ENOSYS)) if nodev != 0 => {
            resolve::bind(source, target, o.recursive).map_err(|e| ctx.mount_err(&what, e))?;
            let mut o = o.clone();
            o.flags |= MsFlags::MS_NODEV;
            ctx.finish_bind(&what, &o)?;
            return ctx.recursive(&what, &o);
        }
        other => other.map_err(|e| ctx.mount_err(&what, e))?,
    }
    ctx.finish_bind(&what, o)?;
    ctx.recursive(&what, o)
}

/// Supervisor side, after the first pivot_root: host paths are under `host`, the container
/// root is `newroot`. Every spec mount except type proc, in order; but from a sysfs while the
/// network namespace it must show is still being made ([`crate::rootfs::net::Pending`]) on,
/// the entries are left for later ([`mount_entries`]), in order, so that the devices go in
/// meanwhile. Returns those entries.
pub fn mount_all(
    spec: &Spec,
    host: &Path,
    newroot: &Path,
    net: &mut crate::rootfs::net::Pending,
    shown: &mut Shown,
) -> Result<Vec<usize>, MountError> {
    let mounts: Vec<&Mount> = spec.mounts().iter().flatten().collect();
    let first_deferred = match net.is_pending() {
        true => (0..mounts.len())
            .find(|&i| mounts[i].typ().as_deref() == Some("sysfs") && may_defer(&mounts, i)),
        false => None,
    };
    let split = first_deferred.unwrap_or(mounts.len());
    let now: Vec<usize> = (0..split).collect();
    mount_entries(spec, host, newroot, &now, net, shown)?;
    Ok((split..mounts.len()).collect())
}

/// The entries from `i` on may be mounted after the devices when none of them is at, above
/// or beneath /dev (the devices would end up beneath it, or it beneath them), and their paths
/// are plain.
fn may_defer(mounts: &[&Mount], i: usize) -> bool {
    let plain = |p: &Path| {
        p.is_absolute()
            && p.components()
                .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
    };
    let dev = Path::new("/dev");
    mounts[i..].iter().all(|m| {
        let d = m.destination();
        plain(d) && !d.starts_with(dev) && !dev.starts_with(d)
    })
}

/// The spec's entries `which` (indices into its mounts), in order: what [`mount_all`] mounts
/// at once, and what it left for after the network namespace is joined.
pub fn mount_entries(
    spec: &Spec,
    host: &Path,
    newroot: &Path,
    which: &[usize],
    net: &mut crate::rootfs::net::Pending,
    shown: &mut Shown,
) -> Result<(), MountError> {
    if which.is_empty() {
        return Ok(());
    }
    let host_fd = open_root(host)?;
    let root = open_root(newroot)?;
    let mounts: Vec<&Mount> = spec.mounts().iter().flatten().collect();
    for &i in which {
        let m = mounts[i];
        let typ = m.typ().as_deref().unwrap_or("");
        let ctx = Ctx {
            at: format!("mounts[{i}]"),
            dest: m.destination(),
            root: root.as_fd(),
        };
        let mut o = MountOptions::parse(m.options().as_deref().unwrap_or_default());
        if o.dev {
            super::guard::dev_option(spec, &ctx.at, ctx.dest)?;
        } else if typ != "devpts" {
            // Only the nodes nsboot binds may open; a devpts holds nothing but its ptys.
            o.flags |= MsFlags::MS_NODEV;
        }
        let source = m
            .source()
            .as_ref()
            .map(|s| s.to_string_lossy().into_owned());
        let source = source.unwrap_or_else(|| typ.to_string());
        match typ {
            // Made by the process that joined the namespace it shows (`shown`).
            "mqueue" | "sysfs" | "proc" if shown.has(i) => {
                let tree = shown.take(i).expect("has");
                let what = format!("a {typ}");
                let target = ctx.spec_target(Create::Dir, typ)?;
                shown::attach(tree.as_fd(), target.fd.as_fd())
                    .map_err(|e| ctx.mount_err(&what, e))?;
                ctx.propagate(ctx.mounted()?.as_fd(), &what, &o)?
            }
            // The application mounts its proc itself: only there is it inside the pid namespace.
            "proc" => {
                ctx.spec_target(Create::Dir, typ)?;
                continue;
            }
            _ if o.bind || typ == "bind" => {
                bind_from_host(&ctx, host_fd.as_fd(), Path::new(&source), &o)?;
            }
            "cgroup" | "cgroup2" => cgroup(&ctx, host_fd.as_fd()),
            "sysfs" => {
                // A new sysfs shows the network namespace it is mounted in.
                net.join()?;
                sysfs(&ctx, host_fd.as_fd(), &source, &o, creates_netns(spec))?
            }
            "devpts" => devpts(&ctx, &source, &o)?,
            _ => new_fs(&ctx, &source, typ, &o)?,
        }
        if !(o.bind || typ == "bind") {
            ctx.recursive(&format!("a {typ}"), &o)?;
        }
    }
    Ok(())
}

fn new_fs(ctx: &Ctx, source: &str, typ: &str, o: &MountOptions) -> Result<(), MountError> {
    let what = format!("a {typ}");
    let target = ctx.spec_target(Create::Dir, typ)?;
    resolve::mount_fs(target.fd.as_fd(), source, typ, o.flags, &o.data())
        .map_err(|e| ctx.mount_err(&what, e))?;
    ctx.propagate(ctx.mounted()?.as_fd(), &what, o)
}

/// Application side, in its own pid and mount namespaces, before its pivot_root: a fresh
/// proc for each type-proc entry.
pub fn mount_procs(spec: &Spec, newroot: &Path) -> Result<(), MountError> {
    if shown::proc_made_by_joiner(spec) {
        // Attached by the supervisor already: we may not mount one of a pid namespace our
        // user namespace does not own.
        return Ok(());
    }
    let root = open_root(newroot)?;
    // The caller's pid namespace (none listed) is not our user namespace's to mount a proc
    // of: the supervisor's, the caller's bound, is the one to show.
    let host = shown::pid_host(spec);
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        if m.typ().as_deref() != Some("proc") {
            continue;
        }
        let ctx = Ctx {
            at: format!("mounts[{i}]"),
            dest: m.destination(),
            root: root.as_fd(),
        };
        let mut o = MountOptions::parse(m.options().as_deref().unwrap_or_default());
        o.flags |= MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
        let target = ctx.target(Create::Dir)?;
        let fresh = match host {
            true => Err(Errno(libc::EPERM)),
            false => resolve::mount_fs(target.fd.as_fd(), "proc", "proc", o.flags, &o.data()),
        };
        match fresh {
            // "Too revealing": the kernel wants a fully visible proc in the namespace, and
            // inside many CI containers the host's /proc has files mounted over it. A
            // supervisor with a pid namespace of its own had its proc refused first, and said so.
            Err(Errno(libc::EPERM)) => {
                tracing::debug!(
                    "a new proc on {} was refused: binding the supervisor's",
                    ctx.dest.display()
                );
                // `create`'s supervisor bound the host's without a word (it has no pid
                // namespace of its own to show): say it here, once.
                use std::sync::atomic::Ordering;
                if !host && !crate::rootfs::NESTED_WARNED.swap(true, Ordering::Relaxed) {
                    let (what, fix) = (crate::rootfs::NESTED_PROC, crate::rootfs::NESTED_PROC_FIX);
                    tracing::warn!("{what}; {fix}");
                }
                let sup = open_root(Path::new("/proc"))?;
                resolve::bind(sup.as_fd(), target.fd.as_fd(), true)
                    .map_err(|e| ctx.mount_err("a bind of /proc", e))?;
            }
            other => other.map_err(|e| ctx.mount_err("a proc", e))?,
        }
        ctx.propagate(ctx.mounted()?.as_fd(), "a proc", &o)?;
        ctx.recursive("a proc", &o)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
