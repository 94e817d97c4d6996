//! The empty root: the app's / is the rootfs and nothing of the host, its /proc is
//! fresh for its pid namespace, no sandbox mount reaches the host, mounts are not shared back,
//! and root.readonly holds.

mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use common::{
    add_tmp_and, find_mount, parse_mountinfo, run_over_shared_mount, sh, with_private_rootfs,
    Bundle, Mode, MountLine, Output, Tmpfs,
};
use serde_json::json;

/// A distinct container id per test and mode (tests run in parallel).
fn id(test: &str, mode: Mode) -> String {
    common::test_id("rootfs", test, mode)
}

/// Runs `bundle`, asserts exit 0 and nothing left behind, and returns stdout.
fn run_ok(bundle: &Bundle, test: &str) -> String {
    common::run_ok(bundle, &id(test, bundle.mode())).stdout
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
        let proc = find_mount(&mounts, "/proc").unwrap_or_else(|| panic!("{mode:?}: {out}"));
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
    let mut cmd = bundle.run_cmd(&id(test, mode));
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn().expect("spawn nsboot run");
    let stdin = child.stdin.take();
    let (tx, rx) = mpsc::channel();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let reader = std::thread::spawn(move || {
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
    // Every line the sandbox wrote, not just those the reader had passed on by now: it ends at
    // EOF, once nsboot and everything it started are gone.
    let _ = reader.join();
    let mut stdout: Vec<String> = first.into_iter().collect();
    stdout.extend(rx.try_iter());
    let out = Output {
        status: done.status.code().unwrap_or_else(|| {
            use std::os::unix::process::ExitStatusExt;
            128 + done.status.signal().unwrap_or(0)
        }),
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

#[test]
fn container_root_is_not_shared_back_by_default() {
    for mode in common::modes() {
        let bundle = sh(mode, "cat /proc/self/mountinfo");
        let out = run_ok(&bundle, "propdefault");
        let mounts = parse_mountinfo(&out);
        let root = find_mount(&mounts, "/").unwrap_or_else(|| panic!("{mode:?}: {out}"));
        assert!(
            !root.optional.iter().any(|o| o.starts_with("shared:")),
            "{mode:?}: / is shared: {}",
            root.line
        );
        // Over a shared host mount, the default (rslave) receives from the host: master:N.
        let rootfs = common::rootfs();
        if let Some(out) = run_over_shared_mount(&bundle, &rootfs, &id("propdefault-shared", mode))
        {
            assert_eq!(out.status, 0, "{mode:?}: {out:?}");
            let mounts = parse_mountinfo(&out.stdout);
            let root = find_mount(&mounts, "/").unwrap_or_else(|| panic!("{mode:?}: {out:?}"));
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
        let out = match run_over_shared_mount(&bundle, &rootfs, &id("rprivate", mode)) {
            Some(out) => out,
            None => bundle.run(&id("rprivate", mode)),
        };
        assert_eq!(out.status, 0, "{mode:?}: {out:?}");
        let mounts = parse_mountinfo(&out.stdout);
        let root = find_mount(&mounts, "/").unwrap_or_else(|| panic!("{mode:?}: {out:?}"));
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

/// root.readonly reaches the mounts below the rootfs (a world-writable tmpfs here), while
/// the spec's own writable mounts (/tmp) stay writable on top.
#[test]
fn readonly_root_reaches_rootfs_submounts() {
    for mode in common::modes() {
        let script = "touch /sub/x; echo $?; touch /tmp/x && echo tmp";
        let bundle = add_tmp_and(with_private_rootfs(sh(mode, script)), vec![])
            .edit(|c| c["root"]["readonly"] = json!(true));
        let Some(tmpfs) = Tmpfs::mount(&bundle.dir().join("rootfs/sub")) else {
            return;
        };
        let out = bundle.run(&id("rosub", mode));
        let written = bundle.dir().join("rootfs/sub/x").exists();
        drop(tmpfs); // the test's own mount, not one nsboot left
        assert_eq!(
            (out.status, out.stdout.as_str(), out.stderr.as_str()),
            (0, "1\ntmp\n", "touch: /sub/x: Read-only file system\n"),
            "{mode:?}: {out:?}"
        );
        assert!(!written, "{mode:?}: /sub/x reached the host");
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
