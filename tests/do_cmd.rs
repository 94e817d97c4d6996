//! `nsboot do -- CMD`, its file system: the host's own root read-only, the working directory
//! writable, --ro-cwd, --volume, --tmpfs and --overlay; as an unprivileged user with a single map
//! (RootlessSingle), with its subordinate range (RootlessSubid), and as real root.
//! The rest of `do` (network, ids, environment, exit statuses, errors) is in do_exec.rs.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::do_run::{cwd, fresh, sh, user_dir, EROFS};
use common::{Bundle, Mode, Tmpfs};

#[test]
fn do_sees_the_host_root_read_only() {
    let host = fs::read_to_string("/etc/os-release").expect("host /etc/os-release");
    for mode in common::modes() {
        let bundle = Bundle::new(mode);
        let etc = fresh(Path::new("/etc"), "rofs", mode);
        let home = fresh(&common::user(mode).home, "rofs", mode);
        let script = format!(
            "cat /etc/os-release && touch {} {}",
            etc.display(),
            home.display()
        );
        let out = sh(&bundle, &[], &script);
        assert_eq!(
            (out.status, out.stdout.as_str()),
            (1, host.as_str()),
            "{mode:?}: {out:?}"
        );
        for path in [&etc, &home] {
            let want = format!("touch: cannot touch '{}': {EROFS}", path.display());
            assert!(out.stderr.contains(&want), "{mode:?}: no {want:?}: {out:?}");
            assert!(
                !path.exists(),
                "{mode:?}: {} reached the host",
                path.display()
            );
        }
    }
}

/// A mount below the host's root (here a world-writable tmpfs) is read-only too, while the
/// working directory and a --volume stay writable.
#[test]
fn do_sees_host_submounts_read_only() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode);
        let dir = fresh(Path::new("/var/tmp"), "subro", mode);
        let Some(_tmpfs) = Tmpfs::mount(&dir) else {
            return;
        };
        let sub = dir.join("f");
        let vol = user_dir(&bundle, "vol");
        let volume = vol.display().to_string();
        let script = format!(
            "touch {}; echo $?; touch in-cwd {}/in-vol",
            sub.display(),
            vol.display()
        );
        let out = sh(&bundle, &["--volume", &volume], &script);
        assert_eq!(
            (out.status, out.stdout.as_str()),
            (0, "1\n"),
            "{mode:?}: {out:?}"
        );
        let want = format!("touch: cannot touch '{}': {EROFS}\n", sub.display());
        assert_eq!(out.stderr, want, "{mode:?}");
        assert!(
            !sub.exists(),
            "{mode:?}: {} reached the host",
            sub.display()
        );
        assert!(cwd(&bundle).join("in-cwd").exists(), "{mode:?}");
        assert!(vol.join("in-vol").exists(), "{mode:?}");
        common::assert_nothing_left(mode, bundle.state_dir());
    }
}

#[test]
fn do_writes_in_cwd_land_on_the_host() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode);
        let out = sh(&bundle, &[], "pwd && echo hi > out");
        let here = cwd(&bundle);
        assert_eq!(
            (out.status, out.stdout.clone()),
            (0, format!("{}\n", here.display())),
            "{mode:?}: {out:?}"
        );
        let written = here.join("out");
        assert_eq!(
            fs::read_to_string(&written).ok().as_deref(),
            Some("hi\n"),
            "{mode:?}"
        );
        let owner = fs::metadata(&written).unwrap().uid();
        assert_eq!(
            owner,
            common::user(mode).uid,
            "{mode:?}: the caller owns what it wrote"
        );
        common::assert_nothing_left(mode, bundle.state_dir());
    }
}

#[test]
fn ro_cwd_makes_the_working_directory_read_only() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode);
        fs::write(bundle.dir().join("seen"), "seen\n").unwrap();
        let out = sh(&bundle, &["--ro-cwd"], "cat seen && touch new");
        assert_eq!(
            (out.status, out.stdout.as_str()),
            (1, "seen\n"),
            "{mode:?}: {out:?}"
        );
        let want = format!("touch: cannot touch 'new': {EROFS}\n");
        assert_eq!(out.stderr, want, "{mode:?}");
        assert!(!bundle.dir().join("new").exists(), "{mode:?}");
    }
}

#[test]
fn volumes_bind_host_dirs_read_write_and_read_only() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode);
        let (rw, ro, same) = (
            user_dir(&bundle, "vol-rw"),
            user_dir(&bundle, "vol-ro"),
            user_dir(&bundle, "vol-same"),
        );
        fs::write(ro.join("in"), "from the host\n").unwrap();
        let flags = [
            format!("{}:/tmp/rw", rw.display()),
            format!("{}:/tmp/ro:ro", ro.display()),
            same.display().to_string(),
        ];
        let flags: Vec<&str> = flags
            .iter()
            .flat_map(|v| ["--volume", v.as_str()])
            .collect();
        let script = format!(
            "echo w > /tmp/rw/out && echo s > {}/out && cat /tmp/ro/in && touch /tmp/ro/new",
            same.display()
        );
        let out = sh(&bundle, &flags, &script);
        assert_eq!(
            (out.status, out.stdout.as_str()),
            (1, "from the host\n"),
            "{mode:?}: {out:?}"
        );
        assert_eq!(
            out.stderr,
            format!("touch: cannot touch '/tmp/ro/new': {EROFS}\n"),
            "{mode:?}"
        );
        assert_eq!(
            fs::read_to_string(rw.join("out")).ok().as_deref(),
            Some("w\n"),
            "{mode:?}"
        );
        assert_eq!(
            fs::read_to_string(same.join("out")).ok().as_deref(),
            Some("s\n"),
            "{mode:?}"
        );
        assert!(!ro.join("new").exists(), "{mode:?}");
        common::assert_nothing_left(mode, bundle.state_dir());
    }
}

#[test]
fn tmpfs_mounts_an_empty_dir_whose_writes_vanish() {
    let dir = Path::new("/var/tmp");
    assert!(dir.is_dir(), "the host has no /var/tmp");
    for mode in common::modes() {
        let bundle = Bundle::new(mode);
        let file = fresh(dir, "tmpfs", mode);
        let script = format!("ls -A /var/tmp && echo t > {0} && cat {0}", file.display());
        let out = sh(&bundle, &["--tmpfs", "/var/tmp"], &script);
        assert_eq!(
            (out.status, out.stdout.as_str()),
            (0, "t\n"),
            "{mode:?}: {out:?}"
        );
        assert!(
            !file.exists(),
            "{mode:?}: {} reached the host",
            file.display()
        );
    }
}

#[test]
fn overlay_discards_writes_anywhere_on_the_root() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode);
        let etc = fresh(Path::new("/etc"), "overlay", mode);
        let top = fresh(Path::new("/"), "overlay", mode);
        // Below host root's directories too: /etc/ssl and /usr/lib are not the overlaid tops.
        let deep = fresh(Path::new("/etc/ssl"), "overlay", mode);
        let lib = fresh(Path::new("/usr/lib"), "overlay", mode);
        let script = format!(
            "echo o > {0} && cat {0} && mkdir {1} && rm /etc/os-release && echo hi > out && \
             {{ echo d > {2} && cat {2} && mkdir {3}; }} 2>/dev/null; true",
            etc.display(),
            top.display(),
            deep.display(),
            lib.display(),
        );
        let out = sh(&bundle, &["--overlay"], &script);
        if mode == Mode::Root || fuse_route(mode) {
            assert_eq!(
                (out.status, out.stdout.as_str(), out.stderr.as_str()),
                (0, "o\nd\n", ""),
                "{mode:?}: {out:?}"
            );
        } else {
            // Without fuse-overlayfs: the kernel's overlayfs, its limit said in one warning.
            assert_eq!(
                (out.status, out.stdout.as_str()),
                (0, "o\n"),
                "{mode:?}: {out:?}"
            );
            assert!(
                out.stderr.contains("--overlay: ") && out.stderr.lines().count() == 1,
                "{mode:?}: {out:?}"
            );
        }
        for path in [&etc, &top, &deep, &lib] {
            assert!(
                !path.exists(),
                "{mode:?}: an overlay write reached the host: {}",
                path.display()
            );
        }
        assert!(
            Path::new("/etc/os-release").exists(),
            "{mode:?}: a removal reached the host"
        );
        let out_file = bundle.dir().join("out");
        assert_eq!(
            fs::read_to_string(out_file).ok().as_deref(),
            Some("hi\n"),
            "{mode:?}: cwd writes still land on the host"
        );
        common::assert_nothing_left(mode, bundle.state_dir());
        assert_no_fuse_daemon(mode);
    }
}

#[test]
fn rootless_overlay_is_fuse_overlayfs_and_root_the_kernels() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode);
        let out = sh(
            &bundle,
            &["--overlay"],
            "grep -c ' - fuse.fuse-overlayfs ' /proc/self/mountinfo; grep -c ' - overlay ' /proc/self/mountinfo",
        );
        let counts: Vec<u32> = out.stdout.lines().filter_map(|l| l.parse().ok()).collect();
        let (fuse, kernel) = (counts.first().copied(), counts.get(1).copied());
        if mode == Mode::Root {
            assert!(
                fuse == Some(0) && kernel.is_some_and(|n| n > 0),
                "{mode:?}: real root uses the kernel's overlayfs: {out:?}"
            );
        } else if fuse_route(mode) {
            assert_eq!(
                (fuse, kernel),
                (Some(1), Some(0)),
                "{mode:?}: one fuse-overlayfs over the whole root: {out:?}"
            );
        } else {
            assert!(
                fuse == Some(0) && kernel.is_some_and(|n| n > 0),
                "{mode:?}: without fuse-overlayfs, the kernel's overlayfs: {out:?}"
            );
        }
        common::assert_nothing_left(mode, bundle.state_dir());
        assert_no_fuse_daemon(mode);
    }
}

/// Whether a rootless `--overlay` takes the fuse-overlayfs route here: scripts/setup.sh
/// installs it and opens /dev/fuse to users, as Debian's udev rule does; a machine where that
/// failed gets the kernel's overlayfs and a warning, which the tests then check instead.
fn fuse_route(mode: Mode) -> bool {
    let installed = ["/usr/bin/fuse-overlayfs", "/usr/local/bin/fuse-overlayfs"]
        .iter()
        .any(|p| Path::new(p).exists());
    let usable = fs::metadata("/dev/fuse").is_ok_and(|m| m.mode() & 0o006 == 0o006);
    mode != Mode::Root && installed && usable
}

/// No fuse-overlayfs of the mode's user survives its sandbox. The kernel kills it with the
/// sandbox's pid namespace, in its own time: up to 20 s is allowed (a loaded machine or a VM
/// without KVM takes seconds). Only this file's overlay tests start one, in turn.
fn assert_no_fuse_daemon(mode: Mode) {
    let uid = common::user(mode).uid;
    let daemons = || -> Vec<String> {
        fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| fs::metadata(e.path()).is_ok_and(|m| m.uid() == uid))
            .filter_map(|e| fs::read(e.path().join("cmdline")).ok())
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .filter(|c| c.starts_with("fuse-overlayfs"))
            .collect()
    };
    for _ in 0..400 {
        if daemons().is_empty() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{mode:?}: fuse-overlayfs still running: {:?}", daemons());
}
