//! exec into a running sandbox (status, namespaces, detach, tty), kill --all over exec'd
//! processes, and the console socket of create.

use std::fs;

use serde_json::json;

use crate::common::{self, Bundle, Mode};
use crate::support::*;
use crate::{create_and_start, delete_and_check, sleeper};

#[test]
fn kill_all_reaches_exec_processes_too() {
    for mode in common::modes() {
        let b = sleeper(mode);
        create_and_start(&b, "all");
        let pid_file = top(&b).join("exec.pid");
        let e = nsb(
            &b,
            &[
                "exec",
                "--detach",
                "--pid-file",
                pid_file.to_str().unwrap(),
                "all",
                "sleep",
                "1000",
            ],
        );
        assert_eq!(e.status, 0, "{mode:?}: exec -d: {}", e.stderr);
        let pid: i32 = fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(
            alive(pid),
            "{mode:?}: the detached exec'd process is not running"
        );
        let ps = nsb(&b, &["ps", "--format", "json", "all"]);
        let pids: Vec<i32> = serde_json::from_str(&ps.stdout).unwrap();
        assert!(
            pids.len() == 2 && pids.contains(&pid),
            "{mode:?}: ps lists {pids:?}, exec'd {pid}"
        );
        assert_eq!(
            nsb(&b, &["kill", "--all", "all", "KILL"]).status,
            0,
            "{mode:?}"
        );
        wait_status(&b, "all", "stopped");
        assert!(
            eventually(|| !alive(pid)),
            "{mode:?}: the exec'd process survived kill --all"
        );
        delete_and_check(&b, "all", false);
    }
}

#[test]
fn exec_runs_in_the_sandbox_and_returns_the_process_status() {
    for mode in common::modes() {
        let b = sleeper(mode);
        create_and_start(&b, "ex");
        let out = nsb(
            &b,
            &[
                "exec",
                "ex",
                "sh",
                "-c",
                "hostname; tr '\\0' ' ' < /proc/1/cmdline; echo; id -u; pwd",
            ],
        );
        assert_eq!(out.status, 0, "{mode:?}: exec: {}", out.stderr);
        assert_eq!(
            out.stdout, "nsboot\nsleep 1000 \n0\n/\n",
            "{mode:?}: stderr {}",
            out.stderr
        );
        let code = nsb(
            &b,
            &[
                "exec",
                "--cwd",
                "/tmp",
                "--env",
                "X=y",
                "ex",
                "sh",
                "-c",
                "test \"$(pwd)$X\" = /tmpy && exit 3",
            ],
        );
        assert_eq!(code.status, 3, "{mode:?}: exec status: {}", code.stderr);
        let missing = nsb(&b, &["exec", "ex", "/no/such/program"]);
        assert_eq!(missing.status, 127, "{mode:?}: {}", missing.stderr);
        assert!(
            missing.stderr.contains("/no/such/program"),
            "{mode:?}: {}",
            missing.stderr
        );
        if mode != Mode::RootlessSingle {
            let user = nsb(&b, &["exec", "--user", "1000:1000", "ex", "id", "-u"]);
            assert_eq!(
                (user.status, user.stdout.as_str()),
                (0, "1000\n"),
                "{mode:?}: {}",
                user.stderr
            );
        }
        delete_and_check(&b, "ex", true);
    }
}

#[test]
fn exec_detach_leaves_the_process_in_the_apps_pid_namespace() {
    for mode in common::modes() {
        let b = sleeper(mode);
        create_and_start(&b, "det");
        let pid_file = top(&b).join("det.pid");
        let e = nsb(
            &b,
            &[
                "exec",
                "-d",
                "--pid-file",
                pid_file.to_str().unwrap(),
                "det",
                "sleep",
                "1000",
            ],
        );
        assert_eq!(e.status, 0, "{mode:?}: {}", e.stderr);
        let pid: i32 = fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let ns = |p: i32| fs::read_link(format!("/proc/{p}/ns/pid")).unwrap();
        assert_eq!(
            ns(pid),
            ns(app_pid(&b, "det")),
            "{mode:?}: the exec'd process is in another pid namespace"
        );
        let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let nspid = status
            .lines()
            .find(|l| l.starts_with("NSpid:"))
            .unwrap_or_default()
            .to_string();
        assert!(nspid.split_whitespace().count() >= 3, "{mode:?}: {nspid}");
        delete_and_check(&b, "det", true);
    }
}

#[test]
fn exec_tty_sends_the_pty_master_to_the_console_socket() {
    for mode in common::modes() {
        let b = sleeper(mode);
        create_and_start(&b, "tty");
        let sock = ConsoleSocket::new(&b, "console.sock");
        let mut cmd = b.nsboot();
        cmd.arg("--root").arg(b.state_dir());
        cmd.args([
            "exec",
            "--tty",
            "--console-socket",
            sock.arg(),
            "tty",
            "sh",
            "-c",
            "tty; test -t 0 && echo in-a-tty; exit 4",
        ]);
        let child = std::thread::spawn(move || common::output(&mut cmd));
        let (master, name) = sock
            .receive()
            .unwrap_or_else(|| panic!("{mode:?}: no pty master arrived"));
        let text = read_pty(&master);
        let out = child.join().unwrap();
        assert_eq!(out.status, 4, "{mode:?}: {}", out.stderr);
        assert!(
            text.contains(&name) && name.starts_with("/dev/pts/"),
            "{mode:?}: tty printed {text:?}, name {name:?}"
        );
        assert!(text.contains("in-a-tty"), "{mode:?}: {text:?}");
        delete_and_check(&b, "tty", true);
    }
}

#[test]
fn create_with_terminal_sends_a_pty_sized_by_console_size_to_the_console_socket() {
    for mode in common::modes() {
        let b = Bundle::new(mode)
            .args(&["/bin/sh", "-c", "tty; stty size; exit 4"])
            .edit(|c| {
                c["process"]["terminal"] = json!(true);
                c["process"]["consoleSize"] = json!({"height": 33, "width": 101});
            });
        let sock = ConsoleSocket::new(&b, "console.sock");
        let c = create(&b, "term", &["--console-socket", sock.arg()]);
        assert_eq!(c.status, 0, "{mode:?}: create: {}", c.stderr);
        let (master, _) = sock
            .receive()
            .unwrap_or_else(|| panic!("{mode:?}: no pty master arrived"));
        assert_eq!(nsb(&b, &["start", "term"]).status, 0, "{mode:?}");
        let text = read_pty(&master);
        assert!(
            text.contains("/dev/pts/0"),
            "{mode:?}: the app's tty: {text:?}"
        );
        assert!(text.contains("33 101"), "{mode:?}: stty size: {text:?}");
        wait_status(&b, "term", "stopped");
        delete_and_check(&b, "term", false);
    }
}
