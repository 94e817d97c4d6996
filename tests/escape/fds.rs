//! Leaked directory fds as a way out (the runc CVE-2024-21626 class): a host directory open in
//! nsboot (its own state fds, or one its caller leaked) must not be reachable through
//! /proc/self/fd/N as the cwd, through a symlink to it, or in the program's path, whether the
//! process comes from `run`, `create` + `start` or `exec` (--cwd, --process).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

use serde_json::{json, Value};

use super::{host_secret, id, SECRET};
use crate::common::{self, private_rootfs, Bundle, Output};

/// The lifecycle tests' helpers (create, start, state, the sandbox's output), for all of
/// tests/escape/.
#[path = "../lifecycle/support.rs"]
#[allow(unused_imports)]
pub(crate) mod support;

/// The fds probed: nsboot's own (state root, sockets, pidfds...) and the caller's leak.
const PROBED: std::ops::RangeInclusive<i32> = 3..=9;
/// Where the caller leaks a host directory (not close-on-exec) into every nsboot command.
const LEAKED: i32 = 9;
/// What a host script reached through a leaked fd prints.
const REACHED: &str = "reached-host-script";

/// The bundle's top dir (holding the secret and a host script) opened as a directory.
fn open_top(b: &Bundle) -> OwnedFd {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(support::top(b))
        .unwrap()
        .into()
}

/// `cmd` with `dir` at fd LEAKED, inherited (not close-on-exec), as a careless engine leaks it.
fn leak_into(cmd: &mut Command, dir: &OwnedFd) {
    inherit_at(cmd, dir, LEAKED);
}

/// `cmd` with `dir` at fd `at`, inherited (not close-on-exec).
fn inherit_at(cmd: &mut Command, dir: &OwnedFd, at: i32) {
    let d = dir.as_raw_fd();
    // SAFETY: only dup2 and fcntl (async-signal-safe) run between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // dup2 onto itself would keep close-on-exec.
            let r = if d == at {
                libc::fcntl(at, libc::F_SETFD, 0)
            } else {
                libc::dup2(d, at)
            };
            if r < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// The bundle's user's nsboot with `--root` and the leak.
fn nsb_leaking(b: &Bundle, dir: &OwnedFd, args: &[&str]) -> Command {
    let mut cmd = b.nsboot();
    cmd.arg("--root").arg(b.state_dir()).args(args);
    leak_into(&mut cmd, dir);
    cmd
}

/// `nsboot create` of `b` as `id` with the leak, the sandbox's output in a file.
fn create_leaking(b: &Bundle, dir: &OwnedFd, id: &str) -> Output {
    let bundle = b.dir().to_str().unwrap();
    support::run_to_file(
        b,
        id,
        nsb_leaking(b, dir, &["create", "--bundle", bundle, id]),
    )
}

/// A way out: the secret or the host script's line in anything the attempt printed.
fn assert_contained(what: &str, out: &Output) {
    assert!(
        !out.stdout.contains(SECRET)
            && !out.stderr.contains(SECRET)
            && !out.stdout.contains(REACHED)
            && !out.stderr.contains(REACHED),
        "{what}: the process reached the host: {out:?}"
    );
}

/// nsboot either refused (one line, 125 / 126 / 127) or the process ran inside the container.
fn assert_refused_or_inside(what: &str, out: &Output) {
    assert_contained(what, out);
    let refused = matches!(out.status, 125..=127) && out.stderr.lines().count() == 1;
    assert!(
        refused || out.status == 0,
        "{what}: want a one-line refusal or a run inside the container: {out:?}"
    );
}

/// Starts the process `over` describes every way nsboot starts one, with a host directory
/// leaked at fd LEAKED: run, create + start, and exec (`--process`, and `--cwd` when `over`
/// sets a cwd) into a running container. Asserts each stays inside.
fn attempt_everywhere(b: Bundle, tag: &str, over: Value) -> Bundle {
    let mode = b.mode();
    let dir = open_top(&b);
    let original = b.config()["process"].clone();
    // exec: into a plain running container.
    let b = b.args(&["/bin/sleep", "1000"]);
    let c = id(&format!("{tag}-x"), mode);
    let created = create_leaking(&b, &dir, &c);
    assert_eq!(created.status, 0, "{mode:?}: create {c}: {created:?}");
    assert_eq!(
        support::nsb(&b, &["start", &c]).status,
        0,
        "{mode:?}: start {c}"
    );
    let file = support::top(&b).join(format!("{tag}.process.json"));
    std::fs::write(
        &file,
        process_with(&b.config()["process"], &over).to_string(),
    )
    .unwrap();
    common::give_to(mode, &file);
    let out = common::output(&mut nsb_leaking(
        &b,
        &dir,
        &["exec", "--process", file.to_str().unwrap(), &c],
    ));
    assert_refused_or_inside(&format!("{mode:?} {tag}: exec --process"), &out);
    if let Some(cwd) = over["cwd"].as_str() {
        let args: Vec<&str> = over["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        let mut all = vec!["exec", "--cwd", cwd, &c];
        all.extend(args);
        let out = common::output(&mut nsb_leaking(&b, &dir, &all));
        assert_refused_or_inside(&format!("{mode:?} {tag}: exec --cwd"), &out);
    }
    assert_eq!(support::nsb(&b, &["delete", "--force", &c]).status, 0);
    common::assert_nothing_left(mode, b.state_dir());
    // run and create + start of the attacker's config.
    let b = b.edit(|cfg| cfg["process"] = process_with(&cfg["process"], &over));
    let r = id(&format!("{tag}-r"), mode);
    let out = common::output(&mut nsb_leaking(
        &b,
        &dir,
        &["run", "--bundle", b.dir().to_str().unwrap(), &r],
    ));
    assert_refused_or_inside(&format!("{mode:?} {tag}: run"), &out);
    common::assert_nothing_left(mode, b.state_dir());
    let s = id(&format!("{tag}-s"), mode);
    let created = create_leaking(&b, &dir, &s);
    let started = common::output(&mut nsb_leaking(&b, &dir, &["start", &s]));
    if created.status == 0 && started.status == 0 {
        support::wait_status(&b, &s, "stopped");
    }
    let app = Output {
        status: started.status,
        stdout: support::app_output(&b, &s),
        stderr: format!("{}{}", created.stderr, started.stderr),
    };
    assert_contained(&format!("{mode:?} {tag}: create + start"), &app);
    let _ = support::nsb(&b, &["delete", "--force", &s]);
    common::assert_nothing_left(mode, b.state_dir());
    b.edit(|cfg| cfg["process"] = original)
}

/// The process `p` with the fields of `over` laid over it.
fn process_with(p: &Value, over: &Value) -> Value {
    let mut p = p.clone();
    for (k, v) in over.as_object().unwrap() {
        p[k] = v.clone();
    }
    p
}

/// Climbs from wherever the cwd is to the host's / and reads the secret there.
fn climb_and_read(secret: &str) -> Value {
    let up = "../".repeat(24);
    json!([
        "/bin/sh",
        "-c",
        format!("cat {up}{secret}; ls {up}; echo end")
    ])
}

#[test]
fn leaked_dir_fd_as_cwd_never_reaches_the_host() {
    for mode in common::modes() {
        let mut b = Bundle::new(mode);
        let secret = host_secret(&b).display().to_string();
        for n in PROBED {
            let over =
                json!({ "cwd": format!("/proc/self/fd/{n}"), "args": climb_and_read(&secret) });
            b = attempt_everywhere(b, &format!("cwd{n}"), over);
        }
    }
}

#[test]
fn symlink_to_a_leaked_dir_fd_as_cwd_never_reaches_the_host() {
    for mode in common::modes() {
        let (mut b, rootfs) = private_rootfs(Bundle::new(mode), false);
        let secret = host_secret(&b).display().to_string();
        for n in PROBED {
            std::os::unix::fs::symlink(format!("/proc/self/fd/{n}"), rootfs.join(format!("fd{n}")))
                .unwrap();
            let over = json!({ "cwd": format!("/fd{n}"), "args": climb_and_read(&secret) });
            b = attempt_everywhere(b, &format!("link{n}"), over);
        }
    }
}

/// A host script beside the bundle, reachable only through a host directory.
fn host_script(b: &Bundle) -> String {
    let top = support::top(b);
    let path = top.join("evil.sh");
    std::fs::write(&path, format!("#!/bin/echo {REACHED}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    common::give_to(b.mode(), &path);
    top.display().to_string()
}

#[test]
fn program_path_through_a_leaked_dir_fd_never_reaches_the_host() {
    let up = "../".repeat(24);
    for mode in common::modes() {
        let mut b = Bundle::new(mode);
        let top = host_script(&b);
        for n in PROBED {
            // args[0] walking out of the fd, then PATH doing the same for a bare name.
            let walk = format!("/proc/self/fd/{n}/{up}{top}/evil.sh");
            b = attempt_everywhere(b, &format!("arg{n}"), json!({ "args": [walk] }));
            let path = format!("PATH=/proc/self/fd/{n}/{up}{top}");
            let over = json!({ "args": ["evil.sh"], "env": [path] });
            b = attempt_everywhere(b, &format!("path{n}"), over);
        }
    }
}

#[test]
fn a_preserved_dir_fd_is_passed_but_refused_as_cwd() {
    for mode in common::modes() {
        let b = Bundle::new(mode);
        let secret = host_secret(&b).display().to_string();
        let dir = open_top(&b);
        let over = json!({ "cwd": "/proc/self/fd/3", "args": climb_and_read(&secret) });
        let b = b.edit(|cfg| cfg["process"] = process_with(&cfg["process"], &over));
        // One error line (a warning that the directory is passed as asked may precede it).
        let refused = |what: &str, out: &Output| {
            assert_contained(what, out);
            assert!(
                out.status == 125
                    && out
                        .stderr
                        .lines()
                        .filter(|l| l.starts_with("nsboot: "))
                        .count()
                        == 1
                    && out.stderr.contains("outside the container root"),
                "{what}: want the cwd refused: {out:?}"
            );
        };
        // create --preserve-fds 1, start: the start fails.
        let s = id("keep-s", mode);
        let mut cmd = b.nsboot();
        cmd.arg("--root").arg(b.state_dir());
        cmd.args([
            "create",
            "--preserve-fds",
            "1",
            "--bundle",
            b.dir().to_str().unwrap(),
            &s,
        ]);
        inherit_at(&mut cmd, &dir, 3);
        let created = support::run_to_file(&b, &s, cmd);
        assert_eq!(created.status, 0, "{mode:?}: create: {created:?}");
        let started = support::nsb(&b, &["start", &s]);
        let mut out = started.clone();
        out.stdout = support::app_output(&b, &s);
        refused(&format!("{mode:?}: create --preserve-fds + start"), &out);
        let _ = support::nsb(&b, &["delete", "--force", &s]);
        common::assert_nothing_left(mode, b.state_dir());
        // exec --preserve-fds 1 --cwd /proc/self/fd/3 into a plain container.
        let b = b
            .edit(|cfg| cfg["process"]["cwd"] = json!("/"))
            .args(&["/bin/sleep", "1000"]);
        let x = id("keep-x", mode);
        assert_eq!(support::create(&b, &x, &[]).status, 0);
        assert_eq!(support::nsb(&b, &["start", &x]).status, 0);
        let mut cmd = b.nsboot();
        cmd.arg("--root").arg(b.state_dir());
        cmd.args([
            "exec",
            "--preserve-fds",
            "1",
            "--cwd",
            "/proc/self/fd/3",
            &x,
        ]);
        cmd.args(
            climb_and_read(&secret)
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap()),
        );
        inherit_at(&mut cmd, &dir, 3);
        refused(
            &format!("{mode:?}: exec --preserve-fds"),
            &common::output(&mut cmd),
        );
        assert_eq!(support::nsb(&b, &["delete", "--force", &x]).status, 0);
        common::assert_nothing_left(mode, b.state_dir());
    }
}

/// A socket pair's first end (not close-on-exec), as a test harness or an engine may leak it.
fn socket() -> OwnedFd {
    let mut fds = [0; 2];
    // SAFETY: socketpair fills two fresh fds; we own both from here on.
    let r = unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, fds.as_mut_ptr()) };
    assert_eq!(r, 0);
    // SAFETY: fresh fds, owned once each.
    let (a, b) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    std::mem::forget(b);
    a
}

/// The shell's own open fds, one a line between markers (ls is forked: its own fds are not
/// listed; no pipe or substitution, whose fds the shell would hold).
const LIST_FDS: &str = "echo fds:; ls /proc/$$/fd; echo end";

/// The fd numbers LIST_FDS printed.
fn listed(out: &str) -> Vec<i32> {
    out.split("fds:")
        .nth(1)
        .and_then(|rest| rest.split("end").next())
        .unwrap_or("")
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect()
}

#[test]
fn only_stdio_and_preserved_fds_reach_the_container_process() {
    for mode in common::modes() {
        let b = Bundle::new(mode).args(&["/bin/sh", "-c", &format!("{LIST_FDS}; exec sleep 1000")]);
        let passed = open_top(&b);
        let leaked = socket();
        let c = id("fdset", mode);
        // create + start, with fd 3 preserved and a socket leaked at fd 4.
        let mut cmd = b.nsboot();
        cmd.arg("--root").arg(b.state_dir());
        cmd.args([
            "create",
            "--preserve-fds",
            "1",
            "--bundle",
            b.dir().to_str().unwrap(),
            &c,
        ]);
        inherit_at(&mut cmd, &passed, 3);
        inherit_at(&mut cmd, &leaked, 4);
        let created = support::run_to_file(&b, &c, cmd);
        assert_eq!(created.status, 0, "{mode:?}: create: {created:?}");
        let mut start = b.nsboot();
        start.arg("--root").arg(b.state_dir()).args(["start", &c]);
        inherit_at(&mut start, &leaked, 4);
        assert_eq!(common::output(&mut start).status, 0, "{mode:?}: start");
        assert!(
            support::eventually(|| support::app_output(&b, &c).contains("end")),
            "{mode:?}: {}",
            support::app_output(&b, &c)
        );
        let seen = support::app_output(&b, &c);
        assert!(
            listed(&seen) == [0, 1, 2, 3],
            "{mode:?}: create + start: the application has fds beyond stdio and --preserve-fds: {seen:?}"
        );
        // exec, with the same fds in its caller.
        let mut exec = b.nsboot();
        exec.arg("--root").arg(b.state_dir());
        exec.args(["exec", "--preserve-fds", "1", &c, "/bin/sh", "-c", LIST_FDS]);
        inherit_at(&mut exec, &passed, 3);
        inherit_at(&mut exec, &leaked, 4);
        let out = common::output(&mut exec);
        assert_eq!(
            (out.status, listed(&out.stdout)),
            (0, vec![0, 1, 2, 3]),
            "{mode:?}: exec: {out:?}"
        );
        let mut plain = b.nsboot();
        plain.arg("--root").arg(b.state_dir());
        plain.args(["exec", &c, "/bin/sh", "-c", LIST_FDS]);
        inherit_at(&mut plain, &leaked, 4);
        let out = common::output(&mut plain);
        assert_eq!(
            (out.status, listed(&out.stdout)),
            (0, vec![0, 1, 2]),
            "{mode:?}: exec without --preserve-fds: {out:?}"
        );
        assert_eq!(support::nsb(&b, &["delete", "--force", &c]).status, 0);
        common::assert_nothing_left(mode, b.state_dir());
    }
}
