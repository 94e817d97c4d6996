//! Issue item 5, the whole `mounts` list of config.json, checked from inside the sandbox through
//! /proc/self/mountinfo and behaviour: binds and their options, tmpfs, proc, sysfs, devpts,
//! mqueue, cgroup, maskedPaths, readonlyPaths, /dev and linux.devices, and mount destinations
//! that go through symlinks.
//!
//! Mounts the tests add go beneath a tmpfs on /tmp (or into a private rootfs copy): a missing
//! mount point is created, and the shared harness rootfs must not be written to.

mod common;

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{Bundle, Mode, Output};
use serde_json::{json, Value};

/// A distinct container id per test and mode (tests run in parallel).
fn id(test: &str, mode: Mode) -> String {
    format!("mounts-{test}-{mode:?}").to_lowercase()
}

/// A default bundle whose app is `sh -c script`, with a tmpfs on /tmp and then `extra`
/// appended to its mounts.
fn sh_with_mounts(mode: Mode, script: &str, extra: Vec<Value>) -> Bundle {
    add_tmp_and(Bundle::new(mode).args(&["/bin/sh", "-c", script]), extra)
}

/// A bind mount entry.
fn bind(src: &Path, dest: &str, options: &[&str]) -> Value {
    json!({ "destination": dest, "type": "bind", "source": src, "options": options })
}

/// Runs `bundle`, asserts exit 0 and nothing left behind; returns the whole output.
fn run_ok(bundle: &Bundle, test: &str) -> Output {
    let mode = bundle.mode();
    let out = bundle.run(&id(test, mode));
    assert_eq!(out.status, 0, "{mode:?}: run failed: {out:?}");
    common::assert_nothing_left(mode, bundle.state_dir());
    out
}

/// The bundle's top dir (beside bundle/ and state/), where host-side sources go.
fn top(bundle: &Bundle) -> PathBuf {
    bundle.dir().parent().unwrap().to_path_buf()
}

/// Gives `path` to the mode's user (the container root when rootless).
fn give(mode: Mode, path: &Path) {
    if common::is_root() && mode.is_rootless() {
        let u = common::user(mode);
        std::os::unix::fs::lchown(path, Some(u.uid), Some(u.gid)).unwrap();
    }
}

/// A host dir `<top>/src` holding `hello` ("hi") and an executable `run.sh` (prints "ran").
fn host_dir(bundle: &Bundle) -> PathBuf {
    let mode = bundle.mode();
    let dir = top(bundle).join("src");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("hello"), "hi\n").unwrap();
    let script = dir.join("run.sh");
    fs::write(&script, "#!/bin/sh\necho ran\n").unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    for p in [&dir, &dir.join("hello"), &script] {
        give(mode, p);
    }
    dir
}

/// One line of /proc/PID/mountinfo.
#[derive(Debug, Clone)]
struct MountLine {
    root: String,
    mount_point: String,
    /// Per-mount options (ro, nosuid, relatime...).
    options: Vec<String>,
    /// The optional fields: shared:N, master:N...
    optional: Vec<String>,
    fstype: String,
    super_options: Vec<String>,
    line: String,
}

impl MountLine {
    fn has(&self, option: &str) -> bool {
        self.options.iter().any(|o| o == option)
    }
}

fn parse_mountinfo(text: &str) -> Vec<MountLine> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let f: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            Some(MountLine {
                root: f.get(3)?.to_string(),
                mount_point: f.get(4)?.to_string(),
                options: f.get(5)?.split(',').map(str::to_owned).collect(),
                optional: f.get(6..)?.iter().map(|s| s.to_string()).collect(),
                fstype: r.first()?.to_string(),
                super_options: r.get(2)?.split(',').map(str::to_owned).collect(),
                line: line.to_string(),
            })
        })
        .collect()
}

/// The topmost mount at `point`; panics with the whole table when there is none.
fn mount_at(mounts: &[MountLine], point: &str, ctx: &str) -> MountLine {
    mounts
        .iter()
        .rev()
        .find(|m| m.mount_point == point)
        .cloned()
        .unwrap_or_else(|| {
            let all: Vec<&str> = mounts.iter().map(|m| m.line.as_str()).collect();
            panic!("{ctx}: nothing mounted at {point}:\n{}", all.join("\n"))
        })
}

/// Splits an app's output at lines "--": [mountinfo, section 1, ...].
fn sections(out: &str) -> Vec<&str> {
    out.split("--\n").collect()
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
        for option in ["ro", "nosuid", "nodev", "noexec"] {
            assert!(
                !plain.has(option),
                "{ctx}: plain bind is {option}: {}",
                plain.line
            );
        }
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

/// `bundle` with a tmpfs on /tmp and then `extra` appended to its mounts.
fn add_tmp_and(bundle: Bundle, extra: Vec<Value>) -> Bundle {
    bundle.edit(|c| {
        let mounts = c["mounts"].as_array_mut().unwrap();
        mounts.push(
            json!({ "destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
            "options": ["nosuid", "nodev", "mode=1777"] }),
        );
        mounts.extend(extra);
    })
}

/// The host's mount points strictly beneath `dir`, as seen by this process.
fn host_submounts(dir: &str) -> Vec<String> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mut subs: Vec<String> = parse_mountinfo(&info)
        .into_iter()
        .filter_map(|m| {
            m.mount_point
                .strip_prefix(dir)?
                .strip_prefix('/')
                .map(str::to_owned)
        })
        .collect();
    subs.dedup();
    subs
}

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
        let bundle = add_tmp_and(
            Bundle::new(mode).args(&["/bin/cat", "/proc/self/mountinfo"]),
            vec![bind(Path::new("/dev"), "/tmp/rdev", &options)],
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
            let m = mount_at(&mounts, &format!("/tmp/rdev/{sub}"), &ctx);
            // Read-only reaches the submounts too, or they would stay writable.
            assert!(m.has("ro"), "{ctx}: submount {sub} is writable: {}", m.line);
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
        give(mode, &conf);
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

/// Runs `bundle` in a private mount namespace of the test's where `shared` (a host dir) is a
/// shared mount, so that a propagation option's effect shows in the container's mountinfo
/// (this host's mounts are private everywhere). Needs root to unshare; None otherwise.
fn run_with_shared_source(bundle: &Bundle, shared: &Path, test: &str) -> Option<Output> {
    if !common::is_root() {
        return None;
    }
    let inner = bundle.nsboot();
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "--", "sh", "-c"]);
    cmd.arg(r#"r=$1; shift; mount --bind "$r" "$r" && mount --make-shared "$r" && exec "$@""#);
    cmd.arg("sh").arg(shared).arg(inner.get_program());
    cmd.args(inner.get_args());
    cmd.arg("--root").arg(bundle.state_dir()).arg("run");
    cmd.arg("--bundle")
        .arg(bundle.dir())
        .arg(id(test, bundle.mode()));
    if bundle.mode().is_rootless() {
        cmd.env_clear().env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    }
    for (k, v) in inner.get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    cmd.current_dir(bundle.dir()).stdin(Stdio::null());
    Some(common::output(&mut cmd))
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
        let out = match run_with_shared_source(&bundle, &src, "propagation") {
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
                   the container shares the host's network namespace";
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
fn devpts_is_a_new_instance_with_ptmxmode_mode_and_gid() {
    for mode in common::modes() {
        let ctx = format!("{mode:?}");
        // Opening /dev/ptmx makes pty 0 of this instance: its mode and group come from the
        // options (gid 5 is unmapped with a single map, and nsboot then leaves gid= out).
        let script = "cat /proc/self/mountinfo; echo --; ls -A /dev/pts; readlink /dev/ptmx; stat -c %a /dev/pts/ptmx; \
                      exec 3<>/dev/ptmx && stat -c '%a %g' /dev/pts/0";
        let bundle = Bundle::new(mode)
            .args(&["/bin/sh", "-c", script])
            .edit(|c| {
                let pts = c["mounts"]
                    .as_array_mut()
                    .unwrap()
                    .iter_mut()
                    .find(|m| m["type"] == "devpts")
                    .unwrap();
                pts["options"] = json!([
                    "nosuid",
                    "noexec",
                    "newinstance",
                    "ptmxmode=0666",
                    "mode=0620",
                    "gid=5"
                ]);
            });
        let out = run_ok(&bundle, "devpts");
        let s = sections(&out.stdout);
        let pts = mount_at(&parse_mountinfo(s[0]), "/dev/pts", &ctx);
        let has = |o: &str| pts.super_options.iter().any(|x| x == o);
        assert!(
            pts.fstype == "devpts" && has("mode=620") && has("ptmxmode=666"),
            "{ctx}: {}",
            pts.line
        );
        let gid = if mode == Mode::RootlessSingle { 0 } else { 5 };
        assert_eq!(
            s[1],
            format!("ptmx\npts/ptmx\n666\n620 {gid}\n"),
            "{ctx}: {out:?}"
        );
    }
}

#[test]
fn mqueue_is_a_fresh_mqueue_at_dev_mqueue() {
    for mode in common::modes() {
        let ctx = format!("{mode:?}");
        // touch in an mqueue creates a message queue; cat shows its counters.
        let script = "cat /proc/self/mountinfo; echo --; ls -A /dev/mqueue; \
                      touch /dev/mqueue/q && cut -d' ' -f1 /dev/mqueue/q";
        let out = run_ok(
            &Bundle::new(mode).args(&["/bin/sh", "-c", script]),
            "mqueue",
        );
        let s = sections(&out.stdout);
        assert_eq!(s[1], "QSIZE:0\n", "{ctx}: {out:?}");
        let m = mount_at(&parse_mountinfo(s[0]), "/dev/mqueue", &ctx);
        assert_eq!(m.fstype, "mqueue", "{ctx}: {}", m.line);
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

#[test]
fn dev_has_the_standard_nodes_and_symlinks() {
    for mode in common::modes() {
        let ctx = format!("{mode:?}");
        // Each node: its type and major/minor (hex), then each one used for what it is.
        let script = "for n in null zero full random urandom tty; do \
                        stat -c \"$n %F %t %T\" /dev/$n; done; \
                      echo discarded > /dev/null && echo null=ok; \
                      head -c 4 /dev/zero | od -An -tx1; \
                      echo x > /dev/full; echo full=$?; \
                      head -c 16 /dev/urandom | wc -c; head -c 16 /dev/random | wc -c; \
                      for l in fd stdin stdout stderr; do echo $l=$(readlink /dev/$l); done; \
                      echo through | cat /dev/stdin";
        let out = run_ok(&Bundle::new(mode).args(&["/bin/sh", "-c", script]), "dev");
        let want = "null character special file 1 3\n\
                    zero character special file 1 5\n\
                    full character special file 1 7\n\
                    random character special file 1 8\n\
                    urandom character special file 1 9\n\
                    tty character special file 5 0\n\
                    null=ok\n 00 00 00 00\nfull=1\n16\n16\n\
                    fd=/proc/self/fd\nstdin=/proc/self/fd/0\nstdout=/proc/self/fd/1\n\
                    stderr=/proc/self/fd/2\nthrough\n";
        assert_eq!(out.stdout, want, "{ctx}: {out:?}");
        assert!(
            out.stderr.contains("No space left on device"),
            "{ctx}: /dev/full took a write: {out:?}"
        );
    }
}

#[test]
fn linux_devices_entry_is_bound_from_the_host() {
    if !Path::new("/dev/fuse").exists() {
        eprintln!("the host has no /dev/fuse: linux.devices not checked");
        return;
    }
    for mode in common::modes() {
        let ctx = format!("{mode:?}");
        let fuse = json!({ "path": "/dev/fuse", "type": "c", "major": 10, "minor": 229,
            "fileMode": 438, "uid": 0, "gid": 0 });
        let script = "stat -c '%F %t %T' /dev/fuse; (exec 3<>/dev/fuse) 2>/dev/null && echo opened || echo refused";
        let bundle = Bundle::new(mode)
            .args(&["/bin/sh", "-c", script])
            .edit(|c| c["linux"]["devices"] = json!([fuse]));
        let out = run_ok(&bundle, "devices");
        // The host's node itself: the container opens it exactly when the caller can.
        let host = common::output(common::as_user(mode, "sh").args([
            "-c",
            "(exec 3<>/dev/fuse) 2>/dev/null && echo opened || echo refused",
        ]));
        assert_eq!(
            out.stdout,
            format!("character special file a e5\n{}", host.stdout),
            "{ctx}: {out:?}"
        );
    }
}

#[test]
fn missing_linux_device_is_one_line_naming_it() {
    for mode in common::modes() {
        let dev = json!({ "path": "/dev/nsbt-no-such-device", "type": "c", "major": 1,
            "minor": 3 });
        let bundle = Bundle::new(mode)
            .args(&["/bin/echo", "ran"])
            .edit(|c| c["linux"]["devices"] = json!([dev]));
        let out = bundle.run(&id("nodevice", mode));
        let lines: Vec<&str> = out.stderr.trim().lines().collect();
        assert!(
            out.status == 125
                && out.stdout.is_empty()
                && lines.len() == 1
                && lines[0].contains("/dev/nsbt-no-such-device")
                && lines[0].contains("linux.devices[0]"),
            "{mode:?}: not one line naming the device and linux.devices[0]: {out:?}"
        );
        common::assert_nothing_left(mode, bundle.state_dir());
    }
}

/// A private, writable copy of the harness rootfs at `<bundle>/rootfs`, owned by the mode's
/// user (container root is that user when rootless); root.path set to the relative "rootfs".
fn with_private_rootfs(bundle: Bundle) -> Bundle {
    let copy = bundle.dir().join("rootfs");
    let ok = Command::new("cp")
        .arg("-a")
        .arg(common::rootfs())
        .arg(&copy)
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "cp -a {} {}",
        common::rootfs().display(),
        copy.display()
    );
    if common::is_root() && bundle.mode().is_rootless() {
        let u = common::user(bundle.mode());
        let ok = Command::new("chown")
            .args(["-R", "-h", &format!("{}:{}", u.uid, u.gid)])
            .arg(&copy)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "chown -R {}", copy.display());
    }
    bundle.edit(|c| c["root"]["path"] = json!("rootfs"))
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
            give(mode, &rootfs.join(link));
        }
        let conf = top(&bundle).join("conf");
        fs::write(&conf, "c\n").unwrap();
        give(mode, &conf);
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
