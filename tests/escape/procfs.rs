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
