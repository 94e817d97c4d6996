//! Mount destinations are resolved once, inside the root, by fd, and mounted onto that fd: a
//! symlink swapped into a destination while nsboot mounts (CVE-2021-30465) can only ever send
//! the mount somewhere inside the container root.

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::json;

use crate::common::{self, private_rootfs, sh};
use crate::id;

/// renameat2(RENAME_EXCHANGE): the two names swap atomically.
fn exchange(a: &Path, b: &Path) {
    let (a, b) = (
        CString::new(a.as_os_str().as_bytes()).unwrap(),
        CString::new(b.as_os_str().as_bytes()).unwrap(),
    );
    // SAFETY: both paths are NUL-terminated and alive for the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    assert_eq!(rc, 0, "renameat2: {}", std::io::Error::last_os_error());
}

/// Host mount points under `dir`.
fn mounts_under(dir: &Path) -> Vec<String> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let dir = dir.display().to_string();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| p.starts_with(&dir))
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_destination_swapped_for_a_symlink_mid_mount_stays_inside_the_root() {
    for mode in common::modes() {
        let (bundle, _) = private_rootfs(sh(mode, "echo ran"), true);
        let top = bundle.dir().parent().unwrap().to_path_buf();
        // The host dir the attacker wants a mount on, and a volume the attacker controls
        // (another container writes into it) in which the destination's parent is swapped
        // between a directory and a symlink to that host dir.
        let target = top.join("host-target");
        let shared = top.join("shared");
        for d in [&target, &shared, &shared.join("d"), &shared.join("d/x")] {
            fs::create_dir(d).unwrap();
            common::give_to(mode, d);
        }
        symlink(&target, shared.join("alt")).unwrap();
        let bundle = bundle.edit(|c| {
            let mounts = c["mounts"].as_array_mut().unwrap();
            mounts.push(common::bind(&shared, "/shared", &["rbind"]));
            mounts
                .push(json!({ "destination": "/shared/d/x", "type": "tmpfs", "source": "tmpfs" }));
        });
        let stop = Arc::new(AtomicBool::new(false));
        let swapper = {
            let (stop, d, alt) = (stop.clone(), shared.join("d"), shared.join("alt"));
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    exchange(&d, &alt);
                    n += 1;
                }
                n
            })
        };
        for i in 0..20 {
            let out = bundle.run(&id(&format!("race{i}"), mode));
            // Whichever name the walk met, the tmpfs went inside the root (or nsboot refused).
            let ok = (out.status == 0 && out.stdout == "ran\n")
                || (out.status == 125 && out.stderr.lines().count() == 1);
            assert!(ok, "{mode:?}: run {i}: {out:?}");
            assert_eq!(
                mounts_under(&top),
                Vec::<String>::new(),
                "{mode:?}: run {i}"
            );
            assert!(
                fs::read_dir(&target).unwrap().next().is_none(),
                "{mode:?}: run {i}"
            );
        }
        stop.store(true, Ordering::Relaxed);
        assert!(swapper.join().unwrap() > 0, "the swap never ran");
        common::assert_nothing_left(mode, bundle.state_dir());
    }
}
