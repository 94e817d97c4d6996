//! linux.maskedPaths and linux.readonlyPaths.
//!
//! Application side, after its own /proc is mounted (most of these paths live in it) and
//! before its pivot_root: the paths are resolved inside the container root, so a symlink in
//! the rootfs can only ever point at something else of the container's.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::mount::MsFlags;

use super::mounts::{open_root, Ctx, MountError};
use super::resolve::{self, Create, Resolved};
use crate::spec::Spec;
use crate::sys::Errno;

/// The path resolved, or None when there is nothing there to mask or protect.
fn existing(ctx: &Ctx) -> Result<Option<Resolved>, MountError> {
    match resolve::resolve(ctx.root, ctx.dest, Create::No) {
        Ok(r) => Ok(Some(r)),
        // A file in the middle means the path cannot exist either.
        Err(Errno(libc::ENOENT | libc::ENOTDIR)) => Ok(None),
        Err(e) => Err(ctx.target_err(e)),
    }
}

pub fn apply(spec: &Spec, newroot: &Path) -> Result<(), MountError> {
    let root = open_root(newroot)?;
    let linux = spec.linux().as_ref();
    let masked = linux
        .and_then(|l| l.masked_paths().clone())
        .unwrap_or_default();
    let readonly = linux
        .and_then(|l| l.readonly_paths().clone())
        .unwrap_or_default();
    let mut masks = Masks::default();
    for (i, p) in masked.iter().enumerate() {
        let ctx = Ctx {
            at: format!("linux.maskedPaths[{i}]"),
            dest: Path::new(p),
            root: root.as_fd(),
        };
        masks.mask(&ctx)?;
    }
    for (i, p) in readonly.iter().enumerate() {
        let ctx = Ctx {
            at: format!("linux.readonlyPaths[{i}]"),
            dest: Path::new(p),
            root: root.as_fd(),
        };
        make_readonly(&ctx)?;
    }
    Ok(())
}

/// What the masks are bound from, opened once: the first masked directory's empty tmpfs and
/// the container's /dev/null, checked to be the null device (a symlink there is not followed).
#[derive(Default)]
struct Masks {
    empty: Option<OwnedFd>,
    null: Option<OwnedFd>,
}

impl Masks {
    /// A directory disappears under an empty read-only tmpfs (one for all of them: the first
    /// is bound onto the others, with its flags); anything else under /dev/null.
    fn mask(&mut self, ctx: &Ctx) -> Result<(), MountError> {
        let Some(target) = existing(ctx)? else {
            return Ok(());
        };
        let is_dir = resolve::is_dir(target.fd.as_fd()).map_err(|e| ctx.mount_err("a mask", e))?;
        if is_dir {
            if let Some(empty) = &self.empty {
                return resolve::bind(empty.as_fd(), target.fd.as_fd(), false)
                    .map_err(|e| ctx.mount_err("an empty read-only tmpfs", e));
            }
            let flags =
                MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
            resolve::mount_fs(
                target.fd.as_fd(),
                "tmpfs",
                "tmpfs",
                flags,
                "size=4k,nr_inodes=1",
            )
            .map_err(|e| ctx.mount_err("an empty read-only tmpfs", e))?;
            self.empty = Some(ctx.mounted()?);
        } else {
            let null = match self.null.take() {
                Some(fd) => fd,
                None => super::nodes::container_null(ctx)?,
            };
            let null = self.null.insert(null);
            resolve::bind(null.as_fd(), target.fd.as_fd(), false)
                .map_err(|e| ctx.mount_err("/dev/null", e))?;
        }
        Ok(())
    }
}

/// Bound onto itself, then made read-only (the submounts too), keeping locked flags.
fn make_readonly(ctx: &Ctx) -> Result<(), MountError> {
    let Some(target) = existing(ctx)? else {
        return Ok(());
    };
    resolve::bind(target.fd.as_fd(), target.fd.as_fd(), true)
        .map_err(|e| ctx.mount_err("a bind onto itself", e))?;
    let top = ctx.mounted()?;
    // One mount_setattr makes the mount and its submounts read-only and leaves every other
    // (locked) flag alone; a kernel without it (< 5.12) gets the classic remount.
    if resolve::set_readonly_recursive(top.as_fd()).is_ok() {
        return Ok(());
    }
    let ro = MsFlags::MS_RDONLY | MsFlags::MS_REC;
    resolve::remount_bind(top.as_fd(), ro, true)
        .map_err(|e| ctx.mount_err("a read-only remount", e))
}

/// The whole assembly, for real: a forked child in new user+mount+pid+ipc namespaces runs
/// mount_all, dev::setup, then (as pid 1 of its pid namespace) mount_procs and apply.
#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::{symlink, FileTypeExt};
    use std::path::Path;

    use nix::sched::{unshare, CloneFlags};
    use nix::sys::statvfs::{statvfs, FsFlags};
    use nix::sys::wait::{waitpid, WaitStatus};
    use nix::unistd::{fork, ForkResult};

    use crate::rootfs::{dev, mounts};

    /// Runs `f` in a forked child; its failure (or panic) comes back as text in `report`.
    fn in_child(report: &Path, f: impl FnOnce() -> Result<(), String>) -> i32 {
        // SAFETY: the child only runs `f` and leaves with _exit; glibc's fork resets the
        // malloc locks, so allocating in the child of a threaded test runner is sound.
        match unsafe { fork() }.unwrap() {
            ForkResult::Child => {
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
                let code = match r {
                    Ok(Ok(())) => 0,
                    Ok(Err(e)) => {
                        let _ = fs::write(report, e);
                        1
                    }
                    Err(p) => {
                        let msg = p
                            .downcast_ref::<String>()
                            .cloned()
                            .or(p.downcast_ref::<&str>().map(|s| s.to_string()));
                        let _ = fs::write(report, msg.unwrap_or_default());
                        1
                    }
                };
                // SAFETY: leave without running the test harness's atexit handlers.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => match waitpid(child, None).unwrap() {
                WaitStatus::Exited(_, code) => code,
                other => panic!("child ended with {other:?}"),
            },
        }
    }

    fn enter_namespaces() -> Result<(), String> {
        let (uid, gid) = (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        );
        let ns = CloneFlags::CLONE_NEWUSER
            | CloneFlags::CLONE_NEWNS
            | CloneFlags::CLONE_NEWPID
            | CloneFlags::CLONE_NEWIPC;
        unshare(ns).map_err(|e| format!("SKIP unshare: {e}"))?;
        // A process may map only its own ids into its new namespace, as an unprivileged caller does.
        fs::write("/proc/self/setgroups", "deny").map_err(|e| format!("setgroups: {e}"))?;
        let (umap, gmap) = (format!("0 {uid} 1"), format!("0 {gid} 1"));
        fs::write("/proc/self/uid_map", umap).map_err(|e| format!("uid_map: {e}"))?;
        fs::write("/proc/self/gid_map", gmap).map_err(|e| format!("gid_map: {e}"))?;
        let none = None::<&str>;
        let private = nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE;
        nix::mount::mount(none, "/", none, private, none).map_err(|e| e.to_string())
    }

    const SPEC: &str = r#"{"ociVersion": "1.0.2", "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/data", "type": "bind", "source": "@T@/src", "options": ["rbind", "ro", "nosuid"]},
        {"destination": "/evil/escaped", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]},
        {"destination": "/etc/app.conf", "type": "bind", "source": "@T@/srcfile", "options": ["bind", "rprivate"]}],
      "linux": {"maskedPaths": ["/proc/kcore", "/proc/acpi", "/nonexistent"], "readonlyPaths": ["/proc/sys", "/data"]}}"#;

    fn spec(t: &Path) -> crate::spec::Spec {
        let json = SPEC.replace("@T@", &t.display().to_string());
        serde_json::from_str(&json).unwrap()
    }

    #[test]
    fn container_root_is_assembled_inside_a_user_namespace() {
        let _ = tracing_subscriber::fmt().with_test_writer().try_init();
        let t = tempfile::tempdir().unwrap();
        let (root, report) = (t.path().join("root"), t.path().join("report"));
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::create_dir_all(t.path().join("src")).unwrap();
        fs::write(t.path().join("src/hello"), "hi").unwrap();
        fs::write(t.path().join("srcfile"), "conf").unwrap();
        symlink("/", root.join("evil")).unwrap();
        let spec = spec(t.path());
        let code = in_child(&report, || {
            enter_namespaces()?;
            mounts::mount_all(
                &spec,
                Path::new("/"),
                &root,
                &mut crate::rootfs::net::Pending::none(),
                &mut Default::default(),
            )
            .map_err(|e| e.to_string())?;
            dev::setup(&spec, Path::new("/"), &root, None).map_err(|e| e.to_string())?;
            // As pid 1 of the new pid namespace, like the application.
            let code = in_child(&t.path().join("report2"), || {
                mounts::mount_procs(&spec, &root).map_err(|e| e.to_string())?;
                super::apply(&spec, &root).map_err(|e| e.to_string())?;
                check(&root)
            });
            let inner = fs::read_to_string(t.path().join("report2")).unwrap_or_default();
            if code == 0 {
                Ok(())
            } else {
                Err(inner)
            }
        });
        let msg = fs::read_to_string(&report).unwrap_or_default();
        if msg.starts_with("SKIP") {
            eprintln!("{msg}");
            return;
        }
        assert_eq!(code, 0, "{msg}");
        assert!(
            !Path::new("/escaped").exists(),
            "a mount escaped the container root"
        );
    }

    fn check(root: &Path) -> Result<(), String> {
        let flags = |p: &str| {
            statvfs(&root.join(p))
                .map(|s| s.flags())
                .map_err(|e| format!("{p}: {e}"))
        };
        let data = flags("data")?;
        assert!(
            data.contains(FsFlags::ST_RDONLY | FsFlags::ST_NOSUID),
            "/data: {data:?}"
        );
        assert_eq!(fs::read_to_string(root.join("data/hello")).unwrap(), "hi");
        assert_eq!(
            fs::read_to_string(root.join("etc/app.conf")).unwrap(),
            "conf"
        );
        assert!(fs::read_dir(root.join("escaped")).is_ok());
        assert!(fs::metadata(root.join("dev/null"))
            .unwrap()
            .file_type()
            .is_char_device());
        fs::write(root.join("dev/null"), "x").map_err(|e| format!("writing /dev/null: {e}"))?;
        assert_eq!(
            fs::read_link(root.join("dev/fd")).unwrap(),
            Path::new("/proc/self/fd")
        );
        assert_eq!(
            fs::read_link(root.join("dev/ptmx")).unwrap(),
            Path::new("pts/ptmx")
        );
        assert!(root.join("dev/pts/ptmx").exists() && root.join("sys/kernel").exists());
        assert!(
            fs::read_link(root.join("proc/self")).is_ok(),
            "no proc at /proc"
        );
        // rbind + ro reaches the submounts (the cgroup v1 hierarchies) too.
        for e in fs::read_dir(root.join("sys/fs/cgroup")).unwrap().flatten() {
            let ro = statvfs(&e.path())
                .unwrap()
                .flags()
                .contains(FsFlags::ST_RDONLY);
            assert!(
                ro || !e.path().is_dir(),
                "{} is writable",
                e.path().display()
            );
        }
        assert!(
            flags("proc/sys")?.contains(FsFlags::ST_RDONLY),
            "/proc/sys is writable"
        );
        assert!(fs::read_dir(root.join("proc/acpi"))
            .map(|d| d.count() == 0)
            .unwrap_or(true));
        if root.join("proc/kcore").exists() {
            assert_eq!(
                fs::metadata(root.join("proc/kcore")).unwrap().len(),
                0,
                "/proc/kcore unmasked"
            );
        }
        Ok(())
    }
}
