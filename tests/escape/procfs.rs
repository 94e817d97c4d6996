//! Nothing of the spec or the image lands on the container's procfs: a mount destination that
//! resolves inside /proc is refused, as runc's checkProcMount does (CVE-2019-19921,
//! CVE-2023-27561, CVE-2025-52881), and a /proc or /sys that the image made a symlink is
//! refused rather than followed (CVE-2023-28642).

use std::fs;
use std::os::unix::fs::symlink;

use serde_json::{json, Value};

use crate::common::{self, private_rootfs, sh};
use crate::{assert_refused, id};

/// The rootfs's directory `name` replaced by a symlink to `target`.
fn symlink_dir(rootfs: &std::path::Path, name: &str, target: &str) {
    let p = rootfs.join(name);
    if p.is_dir() {
        fs::remove_dir(&p).unwrap();
    }
    symlink(target, &p).unwrap();
}

#[test]
fn mount_destinations_inside_proc_are_refused() {
    // What the app checks if nsboot let it run: its /proc and the files nsboot writes there
    // (oom_score_adj) are procfs, not the spec's mount.
    let script = "stat -f -c %T /proc /proc/self/oom_score_adj /proc/sys/kernel; echo end";
    for mode in common::modes() {
        let tmpfs = |dest: &str| json!({ "destination": dest, "type": "tmpfs", "source": "tmpfs" });
        let cases = [
            "/evil",
            "/evil/self",
            "/evil/sys/kernel",
            "/proc/self/oom_score_adj",
            "/proc/sys",
        ];
        for (i, dest) in cases.into_iter().enumerate() {
            let (bundle, rootfs) = private_rootfs(sh(mode, script), true);
            // A volume whose destination is /proc through a symlink in the image.
            symlink_dir(&rootfs, "evil", "/proc");
            let file = bundle.dir().parent().unwrap().join("fake");
            fs::write(&file, "0\n").unwrap();
            common::give_to(mode, &file);
            // Straight at a procfs file nsboot writes, as a bind; elsewhere a tmpfs.
            let m: Value = if dest.ends_with("oom_score_adj") {
                common::bind(&file, dest, &["bind"])
            } else {
                tmpfs(dest)
            };
            let bundle = bundle.edit(|c| {
                c["process"]["oomScoreAdj"] = json!(100);
                c["mounts"].as_array_mut().unwrap().push(m);
            });
            let out = bundle.run(&id(&format!("inproc{i}"), mode));
            assert_refused(
                &out,
                &["mounts[6]", dest, "/proc"],
                &format!("{mode:?}: {dest}"),
            );
            common::assert_nothing_left(mode, bundle.state_dir());
        }
    }
}

/// A bind onto /proc itself passes only from a procfs (runc's rule, which rootless podman's
/// `--pid host` meets by binding the host's /proc there): a directory bound there, or a procfs
/// bound beneath /proc, is refused.
#[test]
fn only_a_procfs_is_bound_onto_proc_itself() {
    for mode in common::modes() {
        for (i, dest) in ["/proc", "/proc/sys"].into_iter().enumerate() {
            let (bundle, _) = private_rootfs(sh(mode, "echo ran"), true);
            let dir = bundle.dir().parent().unwrap().join("fakeproc");
            fs::create_dir_all(&dir).unwrap();
            common::give_to(mode, &dir);
            let src = match dest {
                "/proc" => dir,
                _ => std::path::PathBuf::from("/proc"),
            };
            let bundle = bundle.edit(|c| {
                let m = common::bind(&src, dest, &["rbind"]);
                c["mounts"].as_array_mut().unwrap().push(m);
            });
            let out = bundle.run(&id(&format!("procbind{i}"), mode));
            assert_refused(
                &out,
                &["mounts[6]", dest, "/proc"],
                &format!("{mode:?}: {} on {dest}", src.display()),
            );
            common::assert_nothing_left(mode, bundle.state_dir());
        }
    }
}

#[test]
fn a_proc_or_sys_that_is_a_symlink_in_the_image_is_refused() {
    for mode in common::modes() {
        for (dir, at) in [("proc", "mounts[0]"), ("sys", "mounts[5]")] {
            let (bundle, rootfs) = private_rootfs(sh(mode, "echo ran"), true);
            let fake = format!("fake{dir}");
            fs::create_dir(rootfs.join(&fake)).unwrap();
            common::give_to(mode, &rootfs.join(&fake));
            symlink_dir(&rootfs, dir, &format!("/{fake}"));
            let out = bundle.run(&id(&format!("symlink-{dir}"), mode));
            assert_refused(
                &out,
                &[at, &format!("/{dir}"), "symlink"],
                &format!("{mode:?}: /{dir}"),
            );
            common::assert_nothing_left(mode, bundle.state_dir());
        }
    }
}

/// nsboot's own writes into /proc (oom_score_adj) go through a verified handle: with a file
/// bound over /proc/self/oom_score_adj, or a tmpfs over /proc, the write refuses instead of
/// landing in what covers it. The container's set-up cannot place a mount there (destinations
/// inside /proc are refused, above), so this pins the helper itself, in a private mount
/// namespace as root.
#[test]
fn a_proc_write_refuses_a_mount_over_its_file() {
    use nix::mount::{mount, umount2, MntFlags, MsFlags};
    use nix::sys::wait::{waitpid, WaitStatus};
    use nix::unistd::{fork, ForkResult};
    use nsboot::sys::procfs::write_self;

    if !common::is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (decoy, report) = (dir.path().join("decoy"), dir.path().join("report"));
    fs::write(&decoy, "decoy\n").unwrap();
    let none = None::<&str>;
    let check = || -> Result<(), String> {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).map_err(|e| e.to_string())?;
        mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none)
            .map_err(|e| e.to_string())?;
        let target = "/proc/self/oom_score_adj";
        mount(Some(&decoy), target, none, MsFlags::MS_BIND, none).map_err(|e| e.to_string())?;
        let over = write_self("oom_score_adj", "100");
        let landed = fs::read_to_string(&decoy).unwrap();
        if !over
            .as_ref()
            .is_err_and(|e| e.to_string().contains("a mount covers it"))
            || landed != "decoy\n"
        {
            return Err(format!(
                "bind over the file: {over:?}, the decoy holds {landed:?}"
            ));
        }
        umount2(target, MntFlags::MNT_DETACH).map_err(|e| e.to_string())?;
        // Uncovered, the same write lands in procfs.
        write_self("oom_score_adj", "100").map_err(|e| format!("uncovered: {e}"))?;
        let now = fs::read_to_string(target).unwrap();
        if now.trim() != "100" {
            return Err(format!("uncovered: oom_score_adj is {now:?}"));
        }
        mount(
            Some("tmpfs"),
            "/proc",
            Some("tmpfs"),
            MsFlags::empty(),
            none,
        )
        .map_err(|e| e.to_string())?;
        let over = write_self("oom_score_adj", "100");
        if !over
            .as_ref()
            .is_err_and(|e| e.to_string().contains("not a procfs root"))
        {
            return Err(format!("tmpfs over /proc: {over:?}"));
        }
        Ok(())
    };
    // SAFETY: the child runs `check` and leaves with _exit; glibc's fork resets the malloc
    // locks, so allocating in the child of the threaded test runner is sound.
    match unsafe { fork() }.unwrap() {
        ForkResult::Child => {
            let code = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(check)) {
                Ok(Ok(())) => 0,
                Ok(Err(e)) => {
                    let _ = fs::write(&report, e);
                    1
                }
                Err(_) => 2,
            };
            // SAFETY: leave without running the test harness's atexit handlers.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => match waitpid(child, None).unwrap() {
            WaitStatus::Exited(_, 0) => {}
            other => panic!(
                "{other:?}: {}",
                fs::read_to_string(&report).unwrap_or_default()
            ),
        },
    }
}
