//! Which process is which, as engines see them: the state's pid is the application (its host
//! pid, as runc reports its init's), the pid file names the supervisor (the engine's child,
//! which exits with the application's status), and "running" means the application has
//! exec'd. With a terminal, `create` leaves nobody holding the caller's stdio.

use std::fs;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::{self, Bundle, Mode};
use crate::support::*;

fn sleeper(mode: Mode) -> Bundle {
    Bundle::new(mode).args(&["/bin/sleep", "1000"])
}

/// The parent pid of `pid` (/proc/PID/stat's fourth field).
fn ppid(pid: i32) -> i32 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    rest.split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0)
}

fn cmdline(pid: i32) -> String {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

fn ns(pid: i32, name: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{name}"))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

#[test]
fn state_pid_is_the_application_and_the_pid_file_names_its_supervisor() {
    for mode in common::modes() {
        let b = sleeper(mode);
        let pid_file = top(&b).join("pid");
        let c = create(&b, "pids", &["--pid-file", pid_file.to_str().unwrap()]);
        assert_eq!(c.status, 0, "{mode:?}: create: {}", c.stderr);
        let sup: i32 = fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let st = state(&b, "pids");
        let app = st["pid"].as_i64().unwrap() as i32;
        assert_ne!(app, sup, "{mode:?}: the state pid is the supervisor: {st}");
        assert_eq!(
            ppid(app),
            sup,
            "{mode:?}: the state pid {app} is not the supervisor's child"
        );
        let s = nsb(&b, &["start", "pids"]);
        assert_eq!(s.status, 0, "{mode:?}: start: {}", s.stderr);
        let st = state(&b, "pids");
        assert_eq!(st["status"], "running", "{mode:?}: {st}");
        assert_eq!(
            st["pid"].as_i64(),
            Some(app as i64),
            "{mode:?}: the pid changed at start: {st}"
        );
        assert_eq!(
            cmdline(app).trim_end(),
            "/bin/sleep 1000",
            "{mode:?}: a running container's state pid is not its application"
        );
        // Read once it runs the image's program: until then it is nsboot, which an
        // unprivileged caller may not inspect (the VM's delegated run is one).
        let own = ns(app, "pid");
        assert!(
            !own.is_empty() && own != ns(std::process::id() as i32, "pid"),
            "{mode:?}: the state pid is not in the container's own pid namespace: {own:?}"
        );
        assert!(
            st.get("supervisor").is_none(),
            "{mode:?}: nsboot's own field shown in the OCI state: {st}"
        );
        // kill reaches the application itself; the supervisor exits with its status.
        assert_eq!(nsb(&b, &["kill", "pids", "KILL"]).status, 0, "{mode:?}");
        wait_status(&b, "pids", "stopped");
        delete_and_check(&b, "pids");
    }
}

#[test]
fn a_foreground_run_is_running_only_once_its_application_has_execed() {
    for mode in common::modes() {
        let b = sleeper(mode);
        let mut run = b.run_cmd("fg");
        run.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = run.spawn().expect("nsboot run");
        let mut seen = None;
        let deadline = Instant::now() + Duration::from_secs(30);
        while seen.is_none() && Instant::now() < deadline {
            let out = nsb(&b, &["state", "fg"]);
            if let Ok(st) = serde_json::from_str::<serde_json::Value>(&out.stdout) {
                if st["status"] == "running" {
                    seen = Some(st);
                }
            }
        }
        let st = seen.unwrap_or_else(|| panic!("{mode:?}: run fg never ran"));
        let pid = st["pid"].as_i64().unwrap() as i32;
        // The first "running" already names the exec'd application: an exec joins it at once.
        assert_eq!(
            cmdline(pid).trim_end(),
            "/bin/sleep 1000",
            "{mode:?}: \"running\" before the application exec'd: {st}"
        );
        let exec = nsb(&b, &["exec", "fg", "/bin/true"]);
        assert_eq!(exec.status, 0, "{mode:?}: exec: {}", exec.stderr);
        assert_eq!(nsb(&b, &["kill", "fg", "KILL"]).status, 0, "{mode:?}");
        let code = common::wait_code(child, common::RUN_TIMEOUT);
        assert_eq!(code, 137, "{mode:?}: run ended with {code}");
        common::assert_nothing_left(b.mode(), b.state_dir());
    }
}

#[test]
fn kill_and_delete_of_an_unknown_or_empty_id_fail_with_runcs_words() {
    for mode in common::modes() {
        let b = Bundle::new(mode);
        for cmd in ["kill", "delete", "state", "start"] {
            let unknown = nsb(&b, &[cmd, "ghost"]);
            assert!(
                unknown.status != 0 && unknown.stderr.contains("does not exist"),
                "{mode:?}: {cmd} ghost: {unknown:?}"
            );
            let empty = nsb(&b, &[cmd, ""]);
            assert!(
                empty.status != 0 && empty.stderr.contains("container id cannot be empty"),
                "{mode:?}: {cmd} \"\": {empty:?}"
            );
        }
        let forced = nsb(&b, &["delete", "--force", ""]);
        assert_ne!(forced.status, 0, "{mode:?}: delete --force \"\" succeeded");
    }
}

#[test]
fn kill_of_a_stopped_container_fails_and_delete_of_a_running_one_without_force() {
    for mode in common::modes() {
        let b = sleeper(mode);
        let c = create(&b, "ks", &[]);
        assert_eq!(c.status, 0, "{mode:?}: create: {}", c.stderr);
        assert_eq!(nsb(&b, &["start", "ks"]).status, 0, "{mode:?}");
        let refused = nsb(&b, &["delete", "ks"]);
        assert!(
            refused.status != 0 && refused.stderr.contains("is running"),
            "{mode:?}: delete of a running container: {refused:?}"
        );
        assert_eq!(nsb(&b, &["kill", "ks", "KILL"]).status, 0, "{mode:?}");
        wait_status(&b, "ks", "stopped");
        let late = nsb(&b, &["kill", "ks", "TERM"]);
        assert!(
            late.status != 0 && late.stderr.contains("is not running"),
            "{mode:?}: kill of a stopped container: {late:?}"
        );
        delete_and_check(&b, "ks");
    }
}

/// A pipe: (read end, write end), both owned.
fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fds that we own from here on.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both are fresh fds.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

#[test]
fn create_with_a_terminal_leaves_nobody_holding_the_callers_stdio() {
    for mode in common::modes() {
        let b = Bundle::new(mode)
            .args(&["/bin/sh", "-c", "tty; exit 6"])
            .edit(|c| c["process"]["terminal"] = serde_json::json!(true));
        let console = ConsoleSocket::new(&b, "console.sock");
        let (r, w) = pipe();
        let mut cmd = b.nsboot();
        cmd.arg("--root")
            .arg(b.state_dir())
            .args(["create", "--console-socket", console.arg(), "--bundle"])
            .arg(b.dir())
            .arg("tty")
            .stdin(Stdio::null())
            .stdout(fs::File::from(w.try_clone().unwrap()))
            .stderr(fs::File::from(w));
        let child = cmd.spawn().expect("nsboot create");
        // Our copies of the write end go with the command.
        drop(cmd);
        assert_eq!(
            common::wait_code(child, common::RUN_TIMEOUT),
            0,
            "{mode:?}: create failed"
        );
        // go-runc reads create's output until EOF: nothing of the sandbox may hold it.
        let (tx, rx) = std::sync::mpsc::channel();
        let mut reader = fs::File::from(r);
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = reader.read_to_string(&mut text);
            let _ = tx.send(text);
        });
        let eof = rx.recv_timeout(Duration::from_secs(10));
        assert_eq!(
            status(&b, "tty"),
            "created",
            "{mode:?}: the container did not stay created"
        );
        let (master, _) = console
            .receive()
            .unwrap_or_else(|| panic!("{mode:?}: no pty master"));
        assert_eq!(nsb(&b, &["start", "tty"]).status, 0, "{mode:?}");
        let screen = read_pty(&master);
        wait_status(&b, "tty", "stopped");
        delete_and_check(&b, "tty");
        let out = eof.unwrap_or_else(|_| {
            panic!("{mode:?}: create's stdout still held by the sandbox (no EOF in 10 s)")
        });
        assert_eq!(out, "", "{mode:?}: create printed {out:?}");
        assert!(
            screen.contains("/dev/pts/"),
            "{mode:?}: the app is not on the pty: {screen:?}"
        );
    }
}

fn delete_and_check(b: &Bundle, id: &str) {
    let d = nsb(b, &["delete", id]);
    assert_eq!(d.status, 0, "{:?}: delete {id}: {}", b.mode(), d.stderr);
    common::assert_nothing_left(b.mode(), b.state_dir());
}

#[test]
fn an_rlimit_above_nsboots_own_fails_create_and_says_rootless_only_when_it_is() {
    use std::os::unix::process::CommandExt;
    for mode in common::modes() {
        let b = sleeper(mode).edit(|c| {
            c["process"]["rlimits"] =
                serde_json::json!([{"type": "RLIMIT_CORE", "soft": 0, "hard": 2000}])
        });
        let mut cmd = b.nsboot();
        cmd.arg("--root")
            .arg(b.state_dir())
            .args(["create", "--bundle"])
            .arg(b.dir())
            .arg("rl");
        // SAFETY: only setrlimit (async-signal-safe) runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                let lim = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 1000,
                };
                match libc::setrlimit(libc::RLIMIT_CORE, &lim) {
                    0 => Ok(()),
                    _ => Err(std::io::Error::last_os_error()),
                }
            });
        }
        let out = common::output(&mut cmd);
        assert!(
            out.status == 125
                && out
                    .stderr
                    .contains("RLIMIT_CORE: hard limit 2000 is above nsboot's own 1000"),
            "{mode:?}: create with a raised hard limit: {out:?}"
        );
        assert_eq!(
            out.stderr.contains("rootless"),
            mode.is_rootless(),
            "{mode:?}: {}",
            out.stderr
        );
        common::assert_nothing_left(b.mode(), b.state_dir());
    }
}
