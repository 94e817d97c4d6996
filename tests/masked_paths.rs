//! maskedPaths and readonlyPaths (and the cgroup mount, which must never fail
//! the container), checked from inside the sandbox through /proc/self/mountinfo and behaviour.
//!
//! Mounts the tests add go beneath a tmpfs on /tmp: the shared harness rootfs must not be
//! written to.

mod common;

use std::fs;
use std::path::Path;

use common::{
    add_tmp_and, bind, host_dir, mount_at, parse_mountinfo, sections, sh_with_mounts, Bundle, Mode,
    MountLine, Output,
};
use serde_json::json;

/// A distinct container id per test and mode (tests run in parallel).
fn id(test: &str, mode: Mode) -> String {
    common::test_id("masked", test, mode)
}

/// Runs `bundle`, asserts exit 0 and nothing left behind; returns the whole output.
fn run_ok(bundle: &Bundle, test: &str) -> Output {
    common::run_ok(bundle, &id(test, bundle.mode()))
}

/// runc's default masked paths that exist on this host, split into files and dirs with content.
fn host_masked_defaults() -> (Vec<&'static str>, Vec<&'static str>) {
    let defaults = [
        "/proc/acpi",
        "/proc/asound",
        "/proc/kcore",
        "/proc/keys",
        "/proc/latency_stats",
        "/proc/timer_list",
        "/proc/timer_stats",
        "/proc/sched_debug",
        "/proc/scsi",
        "/sys/firmware",
        "/sys/devices/virtual/powercap",
    ];
    let files = defaults.iter().filter(|p| Path::new(p).is_file()).copied();
    let dirs = defaults
        .iter()
        .filter(|p| fs::read_dir(p).is_ok_and(|mut d| d.next().is_some()));
    (files.collect(), dirs.copied().collect())
}

#[test]
fn masked_paths_hide_files_and_dirs() {
    let (files, dirs) = host_masked_defaults();
    for mode in common::modes() {
        let ctx = format!("{mode:?}");
        let bundle = Bundle::new(mode);
        let src = host_dir(&bundle);
        // Each masked path prints "<path>:" then its content; the open binds show the same
        // host content unmasked.
        let mut script = String::from("for f in /tmp/open/hello /tmp/secret/hello");
        for f in &files {
            script += &format!(" {f}");
        }
        script += "; do echo $f:; cat $f || echo fail; done; for d in /tmp/opendir /tmp/secretdir";
        for d in &dirs {
            script += &format!(" {d}");
        }
        script += "; do echo $d:; ls -A $d || echo fail; done";
        let bundle = add_tmp_and(
            bundle.args(&["/bin/sh", "-c", &script]),
            vec![
                bind(&src, "/tmp/open", &["bind"]),
                bind(&src, "/tmp/secret", &["bind"]),
                bind(&src, "/tmp/opendir", &["bind"]),
                bind(&src, "/tmp/secretdir", &["bind"]),
            ],
        )
        .edit(|c| {
            let masked = c["linux"]["maskedPaths"].as_array_mut().unwrap();
            masked.extend([json!("/tmp/secret/hello"), json!("/tmp/secretdir")]);
        });
        let out = run_ok(&bundle, "masked");
        let mut want = String::from("/tmp/open/hello:\nhi\n/tmp/secret/hello:\n");
        for f in &files {
            want += &format!("{f}:\n");
        }
        want += "/tmp/opendir:\nhello\nrun.sh\n/tmp/secretdir:\n";
        for d in &dirs {
            want += &format!("{d}:\n");
        }
        assert_eq!(
            out.stdout, want,
            "{ctx}: masked files {files:?}, dirs {dirs:?}: {out:?}"
        );
    }
}

#[test]
fn readonly_paths_refuse_writes() {
    for mode in common::modes() {
        for readonly in [true, false] {
            let ctx = format!("{mode:?} readonlyPaths={readonly}");
            // ip_forward belongs to the sandbox's network namespace: with CAP_NET_ADMIN there
            // (below) the app may write it, so only a read-only /proc/sys refuses the write.
            let script = "cat /proc/self/mountinfo; echo --; \
                          echo 1 > /proc/sys/net/ipv4/ip_forward; echo sys=$?; \
                          touch /tmp/rw/x; echo rw=$?; touch /tmp/open/x; echo open=$?";
            let tmpfs =
                |dest: &str| json!({ "destination": dest, "type": "tmpfs", "source": "tmpfs" });
            let bundle = sh_with_mounts(mode, script, vec![tmpfs("/tmp/rw"), tmpfs("/tmp/open")])
                .edit(|c| {
                    for set in ["bounding", "effective", "permitted"] {
                        let caps = c["process"]["capabilities"][set].as_array_mut().unwrap();
                        caps.push(json!("CAP_NET_ADMIN"));
                    }
                    let paths = &mut c["linux"]["readonlyPaths"];
                    if readonly {
                        paths.as_array_mut().unwrap().push(json!("/tmp/rw"));
                    } else {
                        *paths = json!([]);
                    }
                });
            let out = run_ok(&bundle, &format!("ro-{readonly}"));
            let s = sections(&out.stdout);
            if readonly {
                assert_eq!(s[1], "sys=1\nrw=1\nopen=0\n", "{ctx}: {out:?}");
                let sys = mount_at(&parse_mountinfo(s[0]), "/proc/sys", &ctx);
                assert!(sys.has("ro"), "{ctx}: {}", sys.line);
                let errors: Vec<&str> = out.stderr.lines().collect();
                assert_eq!(
                    errors,
                    [
                        "/bin/sh: can't create /proc/sys/net/ipv4/ip_forward: Read-only file system",
                        "touch: /tmp/rw/x: Read-only file system"
                    ],
                    "{ctx}: {out:?}"
                );
            } else {
                assert_eq!(s[1], "sys=0\nrw=0\nopen=0\n", "{ctx}: {out:?}");
            }
        }
    }
}

/// Relative maskedPaths and readonlyPaths are taken from the container root, as runc does
/// (it applies them after pivot_root, from "/").
#[test]
fn relative_paths_are_taken_from_the_container_root() {
    for mode in common::modes() {
        let ctx = format!("{mode:?}");
        let script = "wc -c < /tmp/secret/hello; touch /tmp/rw/x; echo rw=$?; \
                      touch /tmp/secret/y; echo open=$?";
        let bundle = Bundle::new(mode).args(&["/bin/sh", "-c", script]);
        let src = host_dir(&bundle);
        let tmpfs = json!({ "destination": "/tmp/rw", "type": "tmpfs", "source": "tmpfs" });
        let bundle =
            add_tmp_and(bundle, vec![bind(&src, "/tmp/secret", &["bind"]), tmpfs]).edit(|c| {
                c["linux"]["maskedPaths"] = json!(["tmp/secret/hello"]);
                c["linux"]["readonlyPaths"] = json!(["proc/sys", "./tmp/rw"]);
            });
        let out = run_ok(&bundle, "relative");
        assert_eq!(out.stdout, "0\nrw=1\nopen=0\n", "{ctx}: {out:?}");
    }
}

/// A ".." in a readonly path stops at the container's root, as securejoin's does in runc:
/// "/proc/../../../tmp/rw" is the container's /tmp/rw, never a host path.
#[test]
fn dotdot_in_a_readonly_path_stays_in_the_root() {
    for mode in common::modes() {
        let ctx = format!("{mode:?}");
        let bundle = Bundle::new(mode).args(&["/bin/sh", "-c", "touch /tmp/rw/x; echo rw=$?"]);
        let tmpfs = json!({ "destination": "/tmp/rw", "type": "tmpfs", "source": "tmpfs" });
        let bundle = add_tmp_and(bundle, vec![tmpfs]).edit(|c| {
            c["linux"]["readonlyPaths"] = json!(["/proc/../../../tmp/rw"]);
        });
        let out = run_ok(&bundle, "dotdot-ro");
        assert_eq!(out.stdout, "rw=1\n", "{ctx}: {out:?}");
    }
}

#[test]
fn cgroup_mount_never_fails_the_container() {
    for mode in common::modes() {
        for netns in [true, false] {
            let ctx = format!("{mode:?} netns={netns}");
            let cgroup = json!({ "destination": "/sys/fs/cgroup", "type": "cgroup",
                "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"] });
            let bundle = Bundle::new(mode)
                .args(&["/bin/cat", "/proc/self/mountinfo"])
                .edit(|c| {
                    c["mounts"].as_array_mut().unwrap().push(cgroup);
                    if !netns {
                        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
                        ns.retain(|n| n["type"] != "network");
                    }
                });
            let test = format!("cgroup-{netns}");
            let out = run_ok(&bundle, &test);
            let cgroups: Vec<MountLine> = parse_mountinfo(&out.stdout)
                .into_iter()
                .filter(|m| {
                    m.mount_point == "/sys/fs/cgroup"
                        || m.mount_point.starts_with("/sys/fs/cgroup/")
                })
                .collect();
            let notices: Vec<&str> = out
                .stderr
                .lines()
                .filter(|l| l.contains("cgroup"))
                .collect();
            if cgroups.is_empty() {
                assert!(
                    notices.len() == 1 && notices[0].contains("/sys/fs/cgroup"),
                    "{ctx}: cgroup skipped without a one-line notice: {out:?}"
                );
            } else {
                for m in &cgroups {
                    assert!(m.has("ro"), "{ctx}: writable cgroup mount: {}", m.line);
                }
                // The entry's own mount is the top one (a sysfs bind may hold another below).
                let m = mount_at(&cgroups, "/sys/fs/cgroup", &ctx);
                let safe = ["nosuid", "nodev", "noexec"].iter().all(|o| m.has(o));
                assert!(safe, "{ctx}: not the entry's mount: {}", m.line);
                assert!(notices.is_empty(), "{ctx}: {out:?}");
            }
        }
    }
}
