//! Issue item 4, the empty root: the app's / is the rootfs and nothing of the host, its /proc is
//! fresh for its pid namespace, no sandbox mount reaches the host, mounts are not shared back,
//! and root.readonly holds.

mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{Bundle, Mode, Output};
use serde_json::json;

/// A distinct container id per test and mode (tests run in parallel).
fn id(test: &str, mode: Mode) -> String {
    format!("rootfs-{test}-{mode:?}").to_lowercase()
}

/// A default bundle whose app is `sh -c script`.
fn sh(mode: Mode, script: &str) -> Bundle {
    Bundle::new(mode).args(&["/bin/sh", "-c", script])
}

/// Runs `bundle`, asserts exit 0 and nothing left behind, and returns stdout.
fn run_ok(bundle: &Bundle, test: &str) -> String {
    let mode = bundle.mode();
    let out = bundle.run(&id(test, mode));
    assert_eq!(out.status, 0, "{mode:?}: run failed: {out:?}");
    common::assert_nothing_left(mode, bundle.state_dir());
    out.stdout
}

/// One line of /proc/PID/mountinfo.
#[derive(Debug, Clone, PartialEq)]
struct MountLine {
    mount_point: String,
    /// Per-mount options (ro, nosuid, relatime...).
    options: Vec<String>,
    /// The optional fields: shared:N, master:N, ...
    optional: Vec<String>,
    fstype: String,
    line: String,
}

fn parse_mountinfo(text: &str) -> Vec<MountLine> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let f: Vec<&str> = left.split(' ').collect();
            Some(MountLine {
                mount_point: f.get(4)?.to_string(),
                options: f.get(5)?.split(',').map(str::to_owned).collect(),
                optional: f[6..].iter().map(|s| s.to_string()).collect(),
                fstype: right.split(' ').next()?.to_string(),
                line: line.to_string(),
            })
        })
        .collect()
}

/// The topmost mount at `point` in a mountinfo text.
fn mount_at<'a>(mounts: &'a [MountLine], point: &str) -> Option<&'a MountLine> {
    mounts.iter().rev().find(|m| m.mount_point == point)
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
    let u = common::user(bundle.mode());
    if common::is_root() && bundle.mode().is_rootless() {
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
fn app_root_is_the_rootfs_and_nothing_of_the_host() {
    for mode in common::modes() {
        // A file on the host, outside the rootfs, that the app must not be able to find.
        let marker = format!("nsbt-marker-{}-{mode:?}", std::process::id());
        let bundle = sh(
            mode,
            &format!(
                "ls -a /; echo --; find / -name {marker} -o -name group 2>/dev/null; echo --; \
                 for d in /oldroot /newroot; do test -e $d && echo $d; done; echo end; echo --; \
                 cat /proc/self/mountinfo"
            ),
        );
        let host_file = bundle.dir().parent().unwrap().join(&marker);
        fs::write(&host_file, "host").unwrap();
        let mut want: Vec<String> = fs::read_dir(common::rootfs())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        want.extend([".".to_string(), "..".to_string()]);
        want.sort();
        let out = run_ok(&bundle, "root");
        let parts: Vec<&str> = out.split("--\n").collect();
        assert_eq!(parts.len(), 4, "{mode:?}: {out}");
        let mut seen: Vec<&str> = parts[0].lines().collect();
        seen.sort();
        assert_eq!(seen, want, "{mode:?}: / is not the rootfs: {out}");
        // find does search (it finds the rootfs's /etc/group), and not the host's marker.
        assert_eq!(
            parts[1], "/etc/group\n",
            "{mode:?}: the host's {marker} is reachable: {out}"
        );
        assert_eq!(
            parts[2], "end\n",
            "{mode:?}: the supervisor's root shows through: {out}"
        );
        // Exactly one mount at /, the rootfs: no earlier root stays stacked in the table.
        let mounts = parse_mountinfo(parts[3]);
        let roots: Vec<&MountLine> = mounts.iter().filter(|m| m.mount_point == "/").collect();
        let rootfs_name = common::rootfs()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            roots.len() == 1
                && roots[0]
                    .line
                    .split(' ')
                    .nth(3)
                    .unwrap()
                    .ends_with(&rootfs_name),
            "{mode:?}: / is not only the rootfs: {roots:?}"
        );
        let stray = mounts.iter().find(|m| {
            ["/oldroot", "/newroot"]
                .iter()
                .any(|p| m.mount_point.starts_with(p))
        });
        assert!(stray.is_none(), "{mode:?}: {stray:?}");
    }
}

#[test]
fn proc_is_fresh_for_the_sandbox_pid_namespace() {
    for mode in common::modes() {
        // The glob is expanded by sh itself: no other process of the app exists meanwhile.
        let script = "echo $$; set -- /proc/[0-9]*; echo $@; tr '\\0' ' ' </proc/1/cmdline; echo; \
                      cat /proc/self/mountinfo";
        let bundle = sh(mode, script);
        let out = run_ok(&bundle, "proc");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[..2], ["1", "/proc/1"], "{mode:?}: {out}");
        assert_eq!(lines[2], format!("/bin/sh -c {script} "), "{mode:?}: {out}");
        let mounts = parse_mountinfo(&out);
        let proc = mount_at(&mounts, "/proc").unwrap_or_else(|| panic!("{mode:?}: {out}"));
        assert_eq!(proc.fstype, "proc", "{mode:?}: {}", proc.line);
        // The app's own proc: its root is the proc's root, not a bind of a subdirectory.
        assert!(proc.line.split(' ').nth(3) == Some("/"), "{}", proc.line);
    }
}

/// `nsboot run` of `bundle` started in the background with its stdin a pipe; the first stdout
/// line is awaited (the app prints it once it runs), then `during` runs, then stdin is closed
/// and the run awaited.
fn while_running<T>(bundle: &Bundle, test: &str, during: impl FnOnce() -> T) -> (Output, T) {
    let mode = bundle.mode();
    let mut cmd = bundle.nsboot();
    cmd.arg("--root").arg(bundle.state_dir()).arg("run");
    cmd.arg("--bundle").arg(bundle.dir()).arg(id(test, mode));
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn().expect("spawn nsboot run");
    let stdin = child.stdin.take();
    let (tx, rx) = mpsc::channel();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let first = rx.recv_timeout(Duration::from_secs(30));
    let t = during();
    drop(stdin);
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let (wtx, wrx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = wtx.send(child.wait_with_output());
    });
    let done = wrx.recv_timeout(common::RUN_TIMEOUT).unwrap_or_else(|_| {
        let _ = nix::sys::signal::killpg(pid, nix::sys::signal::SIGKILL);
        wrx.recv().unwrap()
    });
    let done = done.expect("wait for nsboot run");
    let mut stdout: Vec<String> = first.into_iter().collect();
    stdout.extend(rx.try_iter());
    let out = Output {
        status: done.status.code().unwrap_or(-1),
        stdout: stdout.join("\n"),
        stderr: String::from_utf8_lossy(&done.stderr).into_owned(),
    };
    (out, t)
}

#[test]
fn sandbox_mounts_never_appear_on_the_host() {
    for mode in common::modes() {
        let before = fs::read_to_string("/proc/self/mountinfo").unwrap();
        let bundle = sh(mode, "echo ready; read x; echo done");
        let (out, during) = while_running(&bundle, "hostmounts", || {
            fs::read_to_string("/proc/self/mountinfo").unwrap()
        });
        assert_eq!(
            (out.status, out.stdout.as_str()),
            (0, "ready\ndone"),
            "{mode:?}: {out:?}"
        );
        let old: Vec<&str> = before.lines().collect();
        let new: Vec<&str> = during.lines().filter(|l| !old.contains(l)).collect();
        assert!(
            new.is_empty(),
            "{mode:?}: mounts appeared on the host during the run:\n{}",
            new.join("\n")
        );
        common::assert_nothing_left(mode, bundle.state_dir());
    }
}

/// Runs `bundle` (as `test`) in a private mount namespace of the test's, where the rootfs is
/// a shared mount: what the container's / then shows is nsboot's propagation choice, not the
/// host's default (which here is private everywhere). Needs root to unshare; None otherwise.
fn run_over_shared_rootfs(bundle: &Bundle, rootfs: &Path, test: &str) -> Option<Output> {
    if !common::is_root() {
        return None;
    }
    let inner = bundle.nsboot();
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "--", "sh", "-c"]);
    cmd.arg(r#"r=$1; shift; mount --bind "$r" "$r" && mount --make-shared "$r" && exec "$@""#);
    cmd.arg("sh").arg(rootfs).arg(inner.get_program());
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
fn container_root_is_not_shared_back_by_default() {
    for mode in common::modes() {
        let bundle = sh(mode, "cat /proc/self/mountinfo");
        let out = run_ok(&bundle, "propdefault");
        let mounts = parse_mountinfo(&out);
        let root = mount_at(&mounts, "/").unwrap_or_else(|| panic!("{mode:?}: {out}"));
        assert!(
            !root.optional.iter().any(|o| o.starts_with("shared:")),
            "{mode:?}: / is shared: {}",
            root.line
        );
        // Over a shared host mount, the default (rslave) receives from the host: master:N.
        let rootfs = common::rootfs();
        if let Some(out) = run_over_shared_rootfs(&bundle, &rootfs, "propdefault-shared") {
            assert_eq!(out.status, 0, "{mode:?}: {out:?}");
            let mounts = parse_mountinfo(&out.stdout);
            let root = mount_at(&mounts, "/").unwrap_or_else(|| panic!("{mode:?}: {out:?}"));
            let kinds: Vec<&str> = root
                .optional
                .iter()
                .map(|o| o.split(':').next().unwrap())
                .collect();
            assert_eq!(
                kinds,
                ["master"],
                "{mode:?}: / is not a slave: {}",
                root.line
            );
        }
    }
}

#[test]
fn rootfs_propagation_rprivate_is_private() {
    for mode in common::modes() {
        let bundle = sh(mode, "cat /proc/self/mountinfo")
            .edit(|c| c["linux"]["rootfsPropagation"] = json!("rprivate"));
        let rootfs = common::rootfs();
        let out = match run_over_shared_rootfs(&bundle, &rootfs, "rprivate") {
            Some(out) => out,
            None => bundle.run(&id("rprivate", mode)),
        };
        assert_eq!(out.status, 0, "{mode:?}: {out:?}");
        let mounts = parse_mountinfo(&out.stdout);
        let root = mount_at(&mounts, "/").unwrap_or_else(|| panic!("{mode:?}: {out:?}"));
        assert!(
            root.optional.is_empty(),
            "{mode:?}: / is not private: {}",
            root.line
        );
        common::assert_nothing_left(mode, bundle.state_dir());
    }
}

#[test]
fn readonly_root_refuses_writes() {
    for mode in common::modes() {
        let bundle = with_private_rootfs(sh(mode, "touch /x; echo $?"))
            .edit(|c| c["root"]["readonly"] = json!(true));
        let out = bundle.run(&id("ro", mode));
        assert_eq!(
            (out.status, out.stdout.as_str(), out.stderr.as_str()),
            (0, "1\n", "touch: /x: Read-only file system\n"),
            "{mode:?}: {out:?}"
        );
        assert!(!bundle.dir().join("rootfs/x").exists(), "{mode:?}");
        common::assert_nothing_left(mode, bundle.state_dir());
    }
}

#[test]
fn writable_root_takes_writes() {
    for mode in common::modes() {
        let bundle = with_private_rootfs(sh(mode, "echo hi > /x && cat /x"))
            .edit(|c| c["root"]["readonly"] = json!(false));
        let out = run_ok(&bundle, "rw");
        assert_eq!(out, "hi\n", "{mode:?}");
        let written: PathBuf = bundle.dir().join("rootfs/x");
        assert_eq!(
            fs::read_to_string(&written).ok().as_deref(),
            Some("hi\n"),
            "{mode:?}: {} not written through",
            written.display()
        );
    }
}
