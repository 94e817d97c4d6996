//! The `mounts` list of config.json, checked from inside the sandbox through
//! /proc/self/mountinfo and behaviour: binds and their options, tmpfs, proc, sysfs, and mount
//! destinations that go through symlinks. /dev is in dev.rs; maskedPaths, readonlyPaths and
//! cgroup in masked_paths.rs.
//!
//! Mounts the tests add go beneath a tmpfs on /tmp (or into a private rootfs copy): a missing
//! mount point is created, and the shared harness rootfs must not be written to.

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use common::{
    add_tmp_and, bind, give_to, host_dir, host_submounts, mount_at, parse_mountinfo,
    run_over_shared_mount, sections, sh_with_mounts, top, with_private_rootfs, Bundle, Mode,
    Output,
};
use serde_json::json;

/// A distinct container id per test and mode (tests run in parallel).
fn id(test: &str, mode: Mode) -> String {
    common::test_id("mounts", test, mode)
}

/// Runs `bundle`, asserts exit 0 and nothing left behind; returns the whole output.
fn run_ok(bundle: &Bundle, test: &str) -> Output {
    common::run_ok(bundle, &id(test, bundle.mode()))
}

#[test]
fn bind_of_a_host_dir_applies_each_option() {
    for mode in common::modes() {
        let ctx = format!("{mode:?}");
        let script = "cat /proc/self/mountinfo; echo --; \
            cat /tmp/ro/hello; touch /tmp/ro/x; echo ro=$?; \
            /tmp/noexec/run.sh; echo noexec=$?; /tmp/plain/run.sh; \
            echo w > /tmp/plain/written; echo plain=$?";
        let bundle = Bundle::new(mode);
        let src = host_dir(&bundle);
        let bundle = {
            let b = bundle.args(&["/bin/sh", "-c", script]);
            let extra = vec![
                bind(&src, "/tmp/ro", &["bind", "ro"]),
                bind(&src, "/tmp/nosuid", &["bind", "nosuid"]),
                bind(&src, "/tmp/nodev", &["bind", "nodev"]),
                bind(&src, "/tmp/noexec", &["bind", "noexec"]),
                bind(&src, "/tmp/relatime", &["bind", "relatime"]),
                bind(&src, "/tmp/plain", &["bind"]),
            ];
            add_tmp_and(b, extra)
        };
        let out = run_ok(&bundle, "bindopts");
        let s = sections(&out.stdout);
        let mounts = parse_mountinfo(s[0]);
        for (point, option) in [
            ("/tmp/ro", "ro"),
            ("/tmp/nosuid", "nosuid"),
            ("/tmp/nodev", "nodev"),
            ("/tmp/noexec", "noexec"),
            ("/tmp/relatime", "relatime"),
        ] {
            let m = mount_at(&mounts, point, &ctx);
            assert!(m.has(option), "{ctx}: {point} lacks {option}: {}", m.line);
            assert!(
                m.root.ends_with("/src"),
                "{ctx}: not the host dir: {}",
                m.line
            );
        }
        let plain = mount_at(&mounts, "/tmp/plain", &ctx);
        for option in ["ro", "nosuid", "noexec"] {
            assert!(
                !plain.has(option),
                "{ctx}: plain bind is {option}: {}",
                plain.line
            );
        }
        // nodev unless the entry says dev: a device node in a volume must not open.
        assert!(
            plain.has("nodev"),
            "{ctx}: plain bind is not nodev: {}",
            plain.line
        );
        assert_eq!(
            s[1], "hi\nro=1\nnoexec=126\nran\nplain=0\n",
            "{ctx}: {out:?}"
        );
        assert!(
            out.stderr
                .contains("touch: /tmp/ro/x: Read-only file system"),
            "{ctx}: {out:?}"
        );
        assert_eq!(
            fs::read_to_string(src.join("written")).unwrap(),
            "w\n",
            "{ctx}"
        );
    }
}

/// `nosuid` and the other flags reach the top mount of an rbind only (runc's remount), but `ro`
/// reaches every submount (stricter than runc: a read-only volume has no writable corner); the
/// recursive options (`rro`, `rnosuid`...) reach every submount (mount_setattr, AT_RECURSIVE).
#[test]
fn rbind_of_a_host_dir_brings_its_submounts_with_the_options() {
    let subs = host_submounts("/dev");
    assert!(
        !subs.is_empty(),
        "the host's /dev has no submounts to test rbind with"
    );
    for mode in common::modes() {
        let ctx = format!("{mode:?}");
        let options = ["rbind", "ro", "nosuid", "nodev", "noexec", "relatime"];
        // Not the atime mode: in nsboot's user namespace the kernel locks it on the host's
        // mounts (a tmpfs of the container's own takes it, below).
        let recursive = ["rbind", "rro", "rnosuid", "rnodev", "rnoexec"];
        let bundle = add_tmp_and(
            Bundle::new(mode).args(&["/bin/cat", "/proc/self/mountinfo"]),
            vec![
                bind(Path::new("/dev"), "/tmp/rdev", &options),
                bind(Path::new("/dev"), "/tmp/rrdev", &recursive),
            ],
        );
        let out = run_ok(&bundle, "rbind");
        let mounts = parse_mountinfo(&out.stdout);
        let top = mount_at(&mounts, "/tmp/rdev", &ctx);
        for option in &options[1..] {
            assert!(
                top.has(option),
                "{ctx}: /tmp/rdev lacks {option}: {}",
                top.line
            );
        }
        for sub in &subs {
            // Unlike runc, a plain `ro` on an rbind leaves no submount writable.
            let m = mount_at(&mounts, &format!("/tmp/rdev/{sub}"), &ctx);
            assert!(
                m.has("ro"),
                "{ctx}: submount {sub} of a read-only rbind is writable: {}",
                m.line
            );
            let m = mount_at(&mounts, &format!("/tmp/rrdev/{sub}"), &ctx);
            for option in recursive[1..].iter().map(|o| &o[1..]) {
                assert!(
                    m.has(option),
                    "{ctx}: submount {sub} lacks {option}: {}",
                    m.line
                );
            }
        }
        let top = mount_at(&mounts, "/tmp/rrdev", &ctx);
        for option in recursive[1..].iter().map(|o| &o[1..]) {
            assert!(
                top.has(option),
                "{ctx}: /tmp/rrdev lacks {option}: {}",
                top.line
            );
        }
    }
}

/// Recursive options on a file system of its own, and their opposites after them.
#[test]
fn recursive_options_apply_to_any_mount_and_later_ones_win() {
    for mode in common::modes() {
        let ctx = format!("{mode:?}");
        let tmpfs = |dest: &str, opts: &[&str]| json!({ "destination": dest, "type": "tmpfs", "source": "tmpfs", "options": opts });
        let script = "cat /proc/self/mountinfo; echo --; touch /tmp/a/x; echo a=$?; \
                      touch /tmp/b/x; echo b=$?";
        let bundle = sh_with_mounts(
            mode,
            script,
            vec![
                tmpfs("/tmp/a", &["rro", "rnosymfollow", "rstrictatime"]),
                tmpfs(
                    "/tmp/b",
                    &["rro", "rrw", "rnosuid", "rsuid", "rnoatime", "ratime"],
                ),
            ],
        );
        let out = run_ok(&bundle, "rtmpfs");
        let s = sections(&out.stdout);
        assert_eq!(s[1], "a=1\nb=0\n", "{ctx}: {out:?}");
        let mounts = parse_mountinfo(s[0]);
        let a = mount_at(&mounts, "/tmp/a", &ctx);
        assert!(
            a.has("ro") && a.has("nosymfollow") && !a.has("relatime") && !a.has("noatime"),
            "{ctx}: {}",
            a.line
        );
        let b = mount_at(&mounts, "/tmp/b", &ctx);
        assert!(
            b.has("rw") && !b.has("nosuid") && b.has("relatime"),
            "{ctx}: {}",
            b.line
        );
    }
}

/// No id-mapped mounts: refused with one line rather than made as a plain bind.
#[test]
fn idmap_mount_options_are_refused() {
    for mode in common::modes() {
        for o in ["idmap", "ridmap"] {
            let bundle = Bundle::new(mode).args(&["/bin/true"]);
            let src = host_dir(&bundle);
            let bundle = add_tmp_and(bundle, vec![bind(&src, "/tmp/m", &["rbind", o])]);
            let out = bundle.run(&id("idmap", mode));
            assert!(
                out.status == 125
                    && out.stderr.trim().lines().count() == 1
                    && out.stderr.contains("id-mapped"),
                "{mode:?}: {o}: {out:?}"
            );
            common::assert_nothing_left(mode, bundle.state_dir());
        }
    }
}

/// Spec order in the mount table: nsboot's own /dev (the spec has none) first, so that the
/// spec's entries beneath /dev land on it, and a sysfs (which waits for the network namespace)
/// before the entries after it.
#[test]
fn mounts_appear_in_spec_order() {
    for mode in common::modes() {
        let ctx = format!("{mode:?}");
        let script = "cat /proc/self/mountinfo; echo --; touch /dev/mqueue/q && cut -d' ' -f1 /dev/mqueue/q; ls /tmp/data";
        let bundle = Bundle::new(mode).args(&["/bin/sh", "-c", script]);
        let src = host_dir(&bundle);
        let bundle = add_tmp_and(bundle, vec![bind(&src, "/tmp/data", &["rbind"])]).edit(|c| {
            let m = c["mounts"].as_array_mut().unwrap();
            m.retain(|m| m["destination"] != "/dev");
        });
        let out = run_ok(&bundle, "order");
        let s = sections(&out.stdout);
        assert_eq!(s[1], "QSIZE:0\nhello\nrun.sh\n", "{ctx}: {out:?}");
        let mounts = parse_mountinfo(s[0]);
        let dests: Vec<String> = bundle.config()["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["destination"].as_str().unwrap().to_string())
            // The application mounts its proc itself, in its own pid namespace, at the end.
            .filter(|d| d != "/proc")
            .collect();
        let mut order = vec!["/dev".to_string()];
        order.extend(dests);
        let at: Vec<usize> = order
            .iter()
            .map(|d| {
                mounts
                    .iter()
                    .position(|m| &m.mount_point == d)
                    .unwrap_or_else(|| panic!("{ctx}: {d} not mounted: {}", s[0]))
            })
            .collect();
        let mut sorted = at.clone();
        sorted.sort();
        assert_eq!(at, sorted, "{ctx}: {order:?} out of order:\n{}", s[0]);
    }
}

/// linux.rootfsPropagation, on the container's "/" as runc applies it (after pivot_root).
#[test]
fn rootfs_propagation_applies_to_the_container_root() {
    for mode in common::modes() {
        for (p, want) in [
            ("shared", Some("shared")),
            ("rshared", Some("shared")),
            ("private", None),
            ("rprivate", None),
            ("slave", None),
            ("rslave", None),
            ("unbindable", Some("unbindable")),
            ("runbindable", Some("unbindable")),
        ] {
            let ctx = format!("{mode:?} {p}");
            let bundle = Bundle::new(mode)
                .args(&["/bin/cat", "/proc/self/mountinfo"])
                .edit(|c| c["linux"]["rootfsPropagation"] = json!(p));
            let out = run_ok(&bundle, &format!("propagation-{p}"));
            let root = mount_at(&parse_mountinfo(&out.stdout), "/", &ctx);
            let kinds: Vec<&str> = root
                .optional
                .iter()
                .map(|o| o.split(':').next().unwrap())
                .collect();
            match want {
                Some(k) => assert!(kinds.contains(&k), "{ctx}: {}", root.line),
                None => assert!(
                    !kinds.contains(&"shared") && !kinds.contains(&"unbindable"),
                    "{ctx}: {}",
                    root.line
                ),
            }
        }
    }
}

#[test]
fn file_bind_shows_the_host_file() {
    for mode in common::modes() {
        let ctx = format!("{mode:?}");
        let bundle = Bundle::new(mode).args(&[
            "/bin/sh",
            "-c",
            "cat /tmp/app.conf /etc/group; test -f /tmp/app.conf && echo file",
        ]);
        let conf = top(&bundle).join("app.conf");
        fs::write(&conf, "key=value\n").unwrap();
        give_to(mode, &conf);
        let bundle = add_tmp_and(
            bundle,
            vec![
                // A new mount point (created as a file), and one the rootfs has.
                bind(&conf, "/tmp/app.conf", &["bind", "ro"]),
                bind(&conf, "/etc/group", &["bind", "ro"]),
            ],
        );
        let out = run_ok(&bundle, "filebind");
        assert_eq!(out.stdout, "key=value\nkey=value\nfile\n", "{ctx}: {out:?}");
    }
}

#[test]
fn missing_bind_source_is_one_line_naming_it_and_the_entry() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode).args(&["/bin/echo", "ran"]);
        let missing = top(&bundle).join("no-such-dir");
        let index = bundle.config()["mounts"].as_array().unwrap().len();
        let bundle = bundle.edit(|c| {
            let m = c["mounts"].as_array_mut().unwrap();
            m.push(bind(&missing, "/data", &["rbind", "ro"]));
        });
        let out = bundle.run(&id("missing", mode));
        let lines: Vec<&str> = out.stderr.trim().lines().collect();
        let missing = missing.display().to_string();
        let at = format!("mounts[{index}]");
        assert!(
            out.status == 125
                && out.stdout.is_empty()
                && lines.len() == 1
                && lines[0].contains(&missing)
                && lines[0].contains(&at),
            "{mode:?}: not one line naming {missing} and {at} (exit 125): {out:?}"
        );
        common::assert_nothing_left(mode, bundle.state_dir());
    }
}

#[test]
fn bind_propagation_options_are_applied() {
    for mode in common::modes() {
        let ctx = format!("{mode:?}");
        let bundle = Bundle::new(mode).args(&["/bin/cat", "/proc/self/mountinfo"]);
        let src = host_dir(&bundle);
        let bundle = add_tmp_and(
            bundle,
            vec![
                bind(&src, "/tmp/rprivate", &["rbind", "rprivate"]),
                bind(&src, "/tmp/private", &["bind", "private"]),
                bind(&src, "/tmp/rslave", &["rbind", "rslave"]),
                bind(&src, "/tmp/slave", &["bind", "slave"]),
            ],
        );
        let out = match run_over_shared_mount(&bundle, &src, &id("propagation", mode)) {
            Some(out) => out,
            None => bundle.run(&id("propagation", mode)),
        };
        assert_eq!(out.status, 0, "{ctx}: {out:?}");
        common::assert_nothing_left(mode, bundle.state_dir());
        let mounts = parse_mountinfo(&out.stdout);
        let kinds = |point: &str| -> Vec<String> {
            let m = mount_at(&mounts, point, &ctx);
            m.optional
                .iter()
                .map(|o| o.split(':').next().unwrap().to_string())
                .collect()
        };
        for point in ["/tmp/rprivate", "/tmp/private"] {
            assert!(
                kinds(point).is_empty(),
                "{ctx}: {point} is not private: {out:?}"
            );
        }
        // Over a shared source (as root, above), a slave receives from it: master:N. Without
        // root the source's own propagation is the host's: only "never shared" can be said.
        for point in ["/tmp/rslave", "/tmp/slave"] {
            let kinds = kinds(point);
            if common::is_root() {
                assert_eq!(kinds, ["master"], "{ctx}: {point}: {out:?}");
            } else {
                assert!(
                    !kinds.contains(&"shared".to_string()),
                    "{ctx}: {point}: {out:?}"
                );
            }
        }
    }
}

#[test]
fn tmpfs_takes_size_and_mode() {
    for mode in common::modes() {
        let ctx = format!("{mode:?}");
        let script = "cat /proc/self/mountinfo; echo --; stat -c %a /tmp/a /tmp/b; \
                      df -k /tmp/a /tmp/b | tail -n 2";
        let tmpfs = |dest: &str, opts: &[&str]| json!({ "destination": dest, "type": "tmpfs", "source": "tmpfs", "options": opts });
        let bundle = sh_with_mounts(
            mode,
            script,
            vec![
                tmpfs("/tmp/a", &["nosuid", "size=1m", "mode=1777"]),
                tmpfs("/tmp/b", &["noexec", "size=2m", "mode=0700"]),
            ],
        );
        let out = run_ok(&bundle, "tmpfs");
        let s = sections(&out.stdout);
        let lines: Vec<&str> = s[1].lines().collect();
        assert_eq!(lines[..2], ["1777", "700"], "{ctx}: {out:?}");
        let sizes: Vec<&str> = lines[2..]
            .iter()
            .map(|l| l.split_whitespace().nth(1).unwrap_or(""))
            .collect();
        assert_eq!(sizes, ["1024", "2048"], "{ctx}: {out:?}");
        let mounts = parse_mountinfo(s[0]);
        let a = mount_at(&mounts, "/tmp/a", &ctx);
        let b = mount_at(&mounts, "/tmp/b", &ctx);
        assert!(a.fstype == "tmpfs" && a.has("nosuid"), "{ctx}: {}", a.line);
        assert!(b.fstype == "tmpfs" && b.has("noexec"), "{ctx}: {}", b.line);
    }
}

#[test]
fn second_proc_mount_shows_the_sandbox_pid_namespace() {
    for mode in common::modes() {
        let ctx = format!("{mode:?}");
        let proc = json!({ "destination": "/tmp/p", "type": "proc", "source": "proc" });
        let script = "cat /proc/self/mountinfo; echo --; set -- /tmp/p/[0-9]*; echo $@";
        let out = run_ok(&sh_with_mounts(mode, script, vec![proc]), "proc2");
        let s = sections(&out.stdout);
        assert_eq!(s[1], "/tmp/p/1\n", "{ctx}: {out:?}");
        let m = mount_at(&parse_mountinfo(s[0]), "/tmp/p", &ctx);
        let safe = ["nosuid", "nodev", "noexec"].iter().all(|o| m.has(o));
        assert!(m.fstype == "proc" && safe, "{ctx}: {}", m.line);
    }
}

/// The network interfaces the host's sysfs lists.
fn host_interfaces() -> String {
    let mut names: Vec<String> = fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names.join("\n") + "\n"
}

#[test]
fn sysfs_with_a_network_namespace_is_a_fresh_sysfs() {
    for mode in common::modes() {
        let ctx = format!("{mode:?}");
        // The harness's default config has a network namespace and a ro sysfs on /sys.
        let bundle = Bundle::new(mode).args(&[
            "/bin/sh",
            "-c",
            "cat /proc/self/mountinfo; echo --; ls /sys/class/net",
        ]);
        let out = run_ok(&bundle, "sysfs-netns");
        let s = sections(&out.stdout);
        // Only the namespace's own loopback: not the host's interfaces.
        assert_eq!(s[1], "lo\n", "{ctx}: {out:?}");
        let m = mount_at(&parse_mountinfo(s[0]), "/sys", &ctx);
        assert!(m.fstype == "sysfs" && m.has("ro"), "{ctx}: {}", m.line);
        assert_eq!(out.stderr, "", "{ctx}: a warning for a real sysfs");
    }
}

#[test]
fn sysfs_without_a_network_namespace_is_a_readonly_bind_with_a_warning() {
    let warning = "WARN sysfs on /sys is a read-only bind of the host's /sys: \
                   the container has no network namespace of its own (the host's, or one joined by path)";
    for mode in common::modes() {
        let ctx = format!("{mode:?}");
        let bundle = Bundle::new(mode)
            .args(&[
                "/bin/sh",
                "-c",
                "cat /proc/self/mountinfo; echo --; ls /sys/class/net; touch /sys/x",
            ])
            .edit(|c| {
                let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
                ns.retain(|n| n["type"] != "network");
            });
        let out = bundle.run(&id("sysfs-bind", mode));
        assert_eq!(out.status, 1, "{ctx}: touch /sys/x did not fail: {out:?}");
        common::assert_nothing_left(mode, bundle.state_dir());
        let s = sections(&out.stdout);
        assert_eq!(s[1], host_interfaces(), "{ctx}: {out:?}");
        let m = mount_at(&parse_mountinfo(s[0]), "/sys", &ctx);
        assert!(m.fstype == "sysfs" && m.has("ro"), "{ctx}: {}", m.line);
        // Printed by default (nsboot logs at WARN unless told otherwise), on one line.
        let lines: Vec<&str> = out.stderr.lines().map(str::trim).collect();
        assert_eq!(
            lines,
            [warning, "touch: /sys/x: Read-only file system"],
            "{ctx}: {out:?}"
        );
    }
}

#[test]
fn symlinked_destination_lands_inside_the_root() {
    let escapes = [
        "/nsbt-escaped-abs",
        "/nsbt-escaped-rel",
        "/nsbt-escaped-file",
    ];
    for mode in common::modes() {
        let ctx = format!("{mode:?}");
        let bundle =
            with_private_rootfs(Bundle::new(mode).args(&["/bin/cat", "/proc/self/mountinfo"]));
        let rootfs = bundle.dir().join("rootfs");
        // An absolute and a relative link that both name the root (or, naively, the host's).
        for (link, target) in [("evil", "/"), ("etc/up", "../../..")] {
            symlink(target, rootfs.join(link)).unwrap();
            give_to(mode, &rootfs.join(link));
        }
        let conf = top(&bundle).join("conf");
        fs::write(&conf, "c\n").unwrap();
        give_to(mode, &conf);
        let tmpfs = |dest: &str| json!({ "destination": dest, "type": "tmpfs", "source": "tmpfs" });
        let bundle = bundle.edit(|c| {
            c["mounts"].as_array_mut().unwrap().extend([
                tmpfs("/evil/nsbt-escaped-abs"),
                tmpfs("/etc/up/nsbt-escaped-rel"),
                bind(&conf, "/evil/nsbt-escaped-file", &["bind"]),
            ]);
        });
        let out = run_ok(&bundle, "symlinkdest");
        let mounts = parse_mountinfo(&out.stdout);
        for e in escapes {
            let m = mount_at(&mounts, e, &ctx);
            assert!(
                rootfs.join(&e[1..]).exists(),
                "{ctx}: {e} not created in the rootfs: {}",
                m.line
            );
            assert!(!Path::new(e).exists(), "{ctx}: {e} created on the host");
        }
    }
}

/// A /proc or /sys that the image made a symlink (to a dir, to "/", to nothing, to itself) is
/// refused at once, with one line, whatever it points to.
#[test]
fn proc_or_sys_symlinks_are_refused_promptly() {
    for mode in common::modes() {
        for (dir, target) in [
            ("proc", "/"),
            ("proc", "nowhere"),
            ("proc", "proc"),
            ("proc", "/dev/null"),
            ("sys", "/sys"),
            ("sys", "../../tmp"),
            ("sys", "/dev/null"),
        ] {
            let ctx = format!("{mode:?}: /{dir} -> {target}");
            let (bundle, rootfs) =
                common::private_rootfs(Bundle::new(mode).args(&["/bin/echo", "ran"]), true);
            let p = rootfs.join(dir);
            if p.is_dir() {
                fs::remove_dir(&p).unwrap();
            }
            symlink(target, &p).unwrap();
            give_to(mode, &p);
            let started = std::time::Instant::now();
            let mut cmd = bundle.run_cmd(&id("symlinked", mode));
            let out = common::output_within(&mut cmd, std::time::Duration::from_secs(20));
            let took = started.elapsed();
            assert!(
                out.status == 125
                    && out.stdout.is_empty()
                    && out.stderr.trim().lines().count() == 1
                    && out.stderr.contains(&format!("/{dir}")),
                "{ctx}: {out:?}"
            );
            assert!(took.as_secs() < 10, "{ctx}: refused after {took:?}");
            // Nothing was made where the symlink points.
            assert!(
                !rootfs.join("nowhere").exists(),
                "{ctx}: /nowhere made in the rootfs"
            );
            common::assert_nothing_left(mode, bundle.state_dir());
        }
    }
}
