//! "No way out": attacks from inside the sandbox that must fail. A host file the test
//! creates outside the rootfs must stay unreachable through /proc/PID/root, a leaked fd, a
//! symlinked or `..` mount destination; the supervisor and the nsboot binary must stay out of
//! sight and out of reach; masked and read-only paths must stay so; no_new_privs is on.

#[path = "escape/binary.rs"]
mod binary;
#[path = "escape/caps.rs"]
mod caps;
mod common;
#[path = "escape/devices.rs"]
mod devices;
#[path = "escape/devices_cgroup.rs"]
mod devices_cgroup;
#[path = "escape/fds.rs"]
mod fds;
#[path = "escape/masks.rs"]
mod masks;
#[path = "escape/procfs.rs"]
mod procfs;
#[path = "escape/rootfs.rs"]
mod rootfs;
#[path = "escape/spec_contract.rs"]
mod spec_contract;
#[path = "escape/state_dir.rs"]
mod state_dir;
#[path = "escape/sysctl.rs"]
mod sysctl;

use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use common::{private_rootfs, sh, Bundle, Mode, Output};
use serde_json::{json, Value};

pub(crate) fn id(test: &str, mode: Mode) -> String {
    common::test_id("esc", test, mode)
}

pub(crate) const SECRET: &str = "host-secret-5f1c";

/// A host file outside the rootfs, readable by the mode's user: beside the bundle dir.
pub(crate) fn host_secret(bundle: &Bundle) -> PathBuf {
    let path = bundle.dir().parent().unwrap().join("secret.txt");
    fs::write(&path, SECRET).unwrap();
    path
}

/// Runs `bundle`, asserts exit 0 with exactly `stdout`, and that nothing is left.
fn assert_run(bundle: &Bundle, id: &str, stdout: &str) -> Output {
    let mode = bundle.mode();
    let out = bundle.run(id);
    assert_eq!(
        (out.status, out.stdout.as_str()),
        (0, stdout),
        "{mode:?}: {out:?}"
    );
    common::assert_nothing_left(mode, bundle.state_dir());
    out
}

/// nsboot refused: exit 125, nothing on stdout, one stderr line naming each of `names`.
fn assert_refused(out: &Output, names: &[&str], ctx: &str) {
    let named = names.iter().all(|n| out.stderr.contains(n));
    assert!(
        out.status == 125 && out.stdout.is_empty() && named && out.stderr.lines().count() == 1,
        "{ctx}: want exit 125 and one stderr line naming {names:?}: {out:?}"
    );
}

#[test]
fn host_file_is_unreachable_through_proc_pid_root() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode);
        let s = host_secret(&bundle).display().to_string();
        // Every process the app can see (itself, a child, /proc/self), by root and cwd.
        let script = format!(
            "sleep 100 & cat {s}; for p in /proc/[0-9]* /proc/self /proc/thread-self; do \
             cat $p/root{s} $p/cwd{s} $p/root/../../..{s}; done; kill $!; echo end"
        );
        let bundle = bundle.args(&["/bin/sh", "-c", &script]);
        let out = assert_run(&bundle, &id("procroot", mode), "end\n");
        assert!(!out.stderr.contains(SECRET), "{mode:?}: {out:?}");
    }
}

#[test]
fn supervisor_is_invisible_to_the_app() {
    // Every process in the app's pid namespace is the app or its children: busybox.
    let script = "sleep 100 & for p in /proc/[0-9]*; do readlink $p/exe; done | sort -u; \
                  readlink /proc/1/exe; kill $!";
    for mode in common::modes() {
        let bundle = sh(mode, script);
        assert_run(&bundle, &id("nosup", mode), "/bin/busybox\n/bin/busybox\n");
    }
}

/// A directory fd and a file fd, not close-on-exec, at fds 7 and 8 of nsboot run: what a
/// careless caller (or an engine) leaks.
fn open_leaks(bundle: &Bundle) -> (OwnedFd, OwnedFd) {
    let top = bundle.dir().parent().unwrap();
    let dir = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(top)
        .unwrap();
    let file = fs::File::open(top.join("secret.txt")).unwrap();
    (dir.into(), file.into())
}

#[test]
fn fds_leaked_by_the_caller_do_not_reach_the_app() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode);
        host_secret(&bundle);
        let script = "ls /proc/1/fd; cat /proc/1/fd/8 /proc/1/fd/7/secret.txt; \
                      cat /proc/self/fd/7/secret.txt; echo end";
        let bundle = bundle.args(&["/bin/sh", "-c", script]);
        let (dir, file) = open_leaks(&bundle);
        let (d, f) = (dir.as_raw_fd(), file.as_raw_fd());
        let mut cmd = bundle.run_cmd(&id("leak", mode));
        // SAFETY: only dup2 (async-signal-safe) runs between fork and exec; dup2 leaves the
        // copies without close-on-exec, so they are inherited like a real leak.
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(d, 7) < 0 || libc::dup2(f, 8) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let out = common::output(&mut cmd);
        drop((dir, file));
        assert_eq!(
            (out.status, out.stdout.as_str()),
            (0, "0\n1\n2\nend\n"),
            "{mode:?}: the app holds more than stdio: {out:?}"
        );
        common::assert_nothing_left(mode, bundle.state_dir());
    }
}

/// Replace the directory `name` of the rootfs copy by a symlink to `target`.
fn symlink_dir(rootfs: &Path, name: &str, target: &str) {
    let p = rootfs.join(name);
    if p.is_dir() {
        fs::remove_dir(&p).unwrap();
    }
    std::os::unix::fs::symlink(target, &p).unwrap();
}

/// Mount points of this (the test's) mount namespace at `/`, /proc and /sys.
fn host_top_mounts() -> Vec<String> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines()
        .filter(|l| matches!(l.split(' ').nth(4), Some("/" | "/proc" | "/sys")))
        .map(str::to_owned)
        .collect()
}

#[test]
fn symlinked_proc_or_sys_destination_never_reaches_the_host() {
    let before = host_top_mounts();
    for mode in common::modes() {
        for (dir, target) in [("proc", "/"), ("sys", "/"), ("proc", "../../../../../..")] {
            let ctx = format!("{mode:?}: /{dir} -> {target}");
            let (bundle, rootfs) = private_rootfs(Bundle::new(mode), false);
            symlink_dir(&rootfs, dir, target);
            let s = host_secret(&bundle).display().to_string();
            let script = format!("cat {s} /proc/1/root{s}; echo end");
            let bundle = bundle.args(&["/bin/sh", "-c", &script]);
            let test = format!("symlink-{dir}-{}", target.len());
            let out = bundle.run(&id(&test, mode));
            // Refusing is fine; so is a mount that lands inside the container root (which
            // may leave no /bin/sh to run). Reaching the host file is not.
            let refused = matches!(out.status, 125 | 127)
                && out.stdout.is_empty()
                && out.stderr.lines().count() == 1;
            assert!(
                refused || (out.status == 0 && out.stdout == "end\n"),
                "{ctx}: {out:?}"
            );
            assert!(!out.stderr.contains(SECRET), "{ctx}: {out:?}");
            assert_eq!(fs::read_to_string(&s).unwrap(), SECRET, "{ctx}");
            common::assert_nothing_left(mode, bundle.state_dir());
        }
    }
    assert_eq!(
        host_top_mounts(),
        before,
        "the host's /, /proc or /sys changed"
    );
}

#[test]
fn symlinks_in_mount_destinations_resolve_inside_the_root() {
    // /up climbs far above the rootfs, /abs points at an absolute path: both mean the
    // container's /tmp, so the tmpfs mounts must show up at /tmp/x and /tmp/y inside.
    let script = "awk '$5 == \"/tmp/x\" || $5 == \"/tmp/y\" {print $5, $9}' /proc/self/mountinfo";
    for mode in common::modes() {
        let (bundle, rootfs) = private_rootfs(sh(mode, script), false);
        symlink_dir(&rootfs, "up", "../../../../../../../../../tmp");
        symlink_dir(&rootfs, "abs", "/tmp");
        let bundle = bundle.edit(|c| {
            let mounts = c["mounts"].as_array_mut().unwrap();
            for dest in ["/up/x", "/abs/y"] {
                mounts.push(json!({ "destination": dest, "type": "tmpfs", "source": "tmpfs" }));
            }
        });
        assert_run(
            &bundle,
            &id("symlink-dest", mode),
            "/tmp/x tmpfs\n/tmp/y tmpfs\n",
        );
        // Created in the rootfs copy, nowhere else.
        assert!(rootfs.join("tmp/x").is_dir() && rootfs.join("tmp/y").is_dir());
    }
}

#[test]
fn dotdot_in_a_mount_destination_is_refused() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode).edit(|c| {
            let m = json!({ "destination": "/../../../tmp/x", "type": "tmpfs", "source": "tmpfs" });
            c["mounts"].as_array_mut().unwrap().push(m);
        });
        let out = bundle.run(&id("dotdot", mode));
        assert_refused(
            &out,
            &["mounts[6].destination", "/../../../tmp/x", ".."],
            &format!("{mode:?}"),
        );
        common::assert_nothing_left(mode, bundle.state_dir());
    }
}

#[test]
fn readonly_proc_paths_stay_read_only() {
    // /proc/sysrq-trigger exists only when the kernel has magic SysRq; 'h' only prints help.
    let sysrq = Path::new("/proc/sysrq-trigger").exists();
    let mut script = String::from(
        "mount -o remount,rw /proc/sys; echo remount=$?; \
         mount -o remount,bind,rw /proc/sys; echo bind=$?; \
         echo evil > /proc/sys/kernel/hostname; echo write=$?; hostname",
    );
    let mut want = String::from("remount=1\nbind=1\nwrite=1\nnsboot\n");
    if sysrq {
        script.push_str("; echo h > /proc/sysrq-trigger; echo sysrq=$?");
        want.push_str("sysrq=1\n");
    }
    for mode in common::modes() {
        let bundle = sh(mode, &script);
        let out = assert_run(&bundle, &id("readonly", mode), &want);
        assert!(
            out.stderr.contains("Read-only file system"),
            "{mode:?}: {out:?}"
        );
    }
}

#[test]
fn masked_paths_cannot_be_unmasked_without_cap_sys_admin() {
    // The first masked file of the harness spec this kernel has (kcore needs CONFIG_PROC_KCORE).
    let file = ["/proc/kcore", "/proc/keys", "/proc/timer_list"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("none of /proc/kcore, /proc/keys, /proc/timer_list exists");
    // A masked file is /dev/null (char 1:3); a masked directory an empty read-only tmpfs.
    let script = format!(
        "umount {file}; echo u=$?; umount -l {file}; echo l=$?; stat -c %t:%T {file}; \
         umount /sys/firmware; echo d=$?; ls -A /sys/firmware | wc -l; touch /sys/firmware/x; echo t=$?"
    );
    for mode in common::modes() {
        let bundle = sh(mode, &script);
        assert_run(&bundle, &id("masked", mode), "u=1\nl=1\n1:3\nd=1\n0\nt=1\n");
    }
}

/// Adds `cap` to the bounding, effective and permitted sets of the bundle's process.
fn grant(c: &mut Value, cap: &str) {
    for set in ["bounding", "effective", "permitted"] {
        c["process"]["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!(cap));
    }
}

fn identity(p: &Path) -> (u64, i64, i64) {
    let m = fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (m.len(), m.mtime(), m.mtime_nsec())
}

#[test]
fn nsboot_binary_is_out_of_reach_even_with_cap_sys_ptrace() {
    let bins = [
        common::nsboot_bin().to_path_buf(),
        PathBuf::from(env!("CARGO_BIN_EXE_nsboot")),
    ];
    let before: Vec<_> = bins.iter().map(|b| identity(b)).collect();
    for mode in common::modes() {
        // Every exe the app can see is busybox; none opens for writing; no path to nsboot.
        let mut script = String::from(
            "sleep 100 & for p in /proc/[0-9]*; do readlink $p/exe; \
             (echo >> $p/exe) 2>/dev/null && echo WROTE $p; done | sort -u; kill $!",
        );
        for b in &bins {
            script.push_str(&format!("; test -e {} && echo VISIBLE", b.display()));
        }
        script.push_str("; grep CapEff /proc/self/status");
        let bundle = sh(mode, &script).edit(|c| grant(c, "CAP_SYS_PTRACE"));
        // CAP_SYS_PTRACE (19) is really granted: the test is not vacuous.
        assert_run(
            &bundle,
            &id("ptrace", mode),
            "/bin/busybox\nCapEff:\t0000000020080420\n",
        );
    }
    let after: Vec<_> = bins.iter().map(|b| identity(b)).collect();
    assert_eq!(before, after, "the nsboot binary changed");
}

/// The OCI default: off unless the spec sets it (setuid programs inside then work: the
/// setuid gain that true blocks is tests/process/nnp.rs's).
#[test]
fn no_new_privs_is_set_exactly_when_the_spec_asks() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode)
            .args(&["/bin/grep", "NoNewPrivs", "/proc/self/status"])
            .edit(|c| {
                c["process"]
                    .as_object_mut()
                    .unwrap()
                    .remove("noNewPrivileges");
            });
        assert_run(&bundle, &id("nnp-default", mode), "NoNewPrivs:\t0\n");
        let bundle = bundle.edit(|c| c["process"]["noNewPrivileges"] = json!(true));
        assert_run(&bundle, &id("nnp-true", mode), "NoNewPrivs:\t1\n");
    }
}

#[test]
fn app_gets_none_of_the_supervisors_extra_caps() {
    // The supervisor holds CHOWN, DAC_OVERRIDE, DAC_READ_SEARCH, FOWNER, FSETID on top of the
    // spec's; the app gets the spec's three (AUDIT_WRITE, KILL, NET_BIND_SERVICE) and no more.
    let want = "CapInh:\t0000000000000000\nCapPrm:\t0000000020000420\n\
                CapEff:\t0000000020000420\nCapBnd:\t0000000020000420\n\
                CapAmb:\t0000000000000000\n";
    for mode in common::modes() {
        let bundle = Bundle::new(mode).args(&["/bin/grep", "^Cap", "/proc/self/status"]);
        assert_run(&bundle, &id("caps", mode), want);
    }
}

#[test]
fn old_root_and_host_paths_are_gone() {
    // Nothing of the supervisor's root or the host's survives in the app's mount table.
    let bundle_dir = |b: &Bundle| b.dir().display().to_string();
    for mode in common::modes() {
        let bundle = Bundle::new(mode);
        let dir = bundle_dir(&bundle);
        let script = format!(
            "ls -d /oldroot /newroot {dir} 2>/dev/null; awk '{{print $5}}' /proc/self/mountinfo \
             | grep -e oldroot -e newroot; echo end"
        );
        let bundle = bundle.args(&["/bin/sh", "-c", &script]);
        assert_run(&bundle, &id("oldroot", mode), "end\n");
    }
}
