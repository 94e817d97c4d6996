//! The OCI lifecycle, command by command, rootless and as root: create / start / state / kill /
//! delete, every status transition, exec (with and without a tty), hooks, pid files, the
//! console socket, list, and teardown with an empty environment.

mod common;
#[path = "lifecycle/exec.rs"]
mod exec;
#[path = "lifecycle/exec_process.rs"]
mod exec_process;
#[path = "lifecycle/hooks.rs"]
mod hooks;
#[path = "lifecycle/pids.rs"]
mod pids;
#[path = "lifecycle/recovery.rs"]
mod recovery;
#[path = "lifecycle/support.rs"]
mod support;

use std::fs;

use common::{Bundle, Mode};
use serde_json::json;
use support::*;

const LOOP: &str = "while :; do sleep 0.05; done";

fn sleeper(mode: Mode) -> Bundle {
    Bundle::new(mode).args(&["/bin/sh", "-c", "echo started; exec sleep 1000"])
}

/// create, then start; fails the test with nsboot's stderr if either fails.
fn create_and_start(b: &Bundle, id: &str) {
    let c = create(b, id, &[]);
    assert_eq!(c.status, 0, "{:?}: create {id}: {}", b.mode(), c.stderr);
    let s = nsb(b, &["start", id]);
    assert_eq!(s.status, 0, "{:?}: start {id}: {}", b.mode(), s.stderr);
}

fn delete_and_check(b: &Bundle, id: &str, force: bool) {
    let args: &[&str] = if force {
        &["delete", "--force", id]
    } else {
        &["delete", id]
    };
    let d = nsb(b, args);
    assert_eq!(d.status, 0, "{:?}: delete {id}: {}", b.mode(), d.stderr);
    common::assert_nothing_left(b.mode(), b.state_dir());
}

#[test]
fn create_then_start_moves_created_to_running_and_the_pid_file_names_the_state_pid() {
    for mode in common::modes() {
        let b = sleeper(mode);
        let pid_file = top(&b).join("pid");
        let c = create(&b, "cs", &["--pid-file", pid_file.to_str().unwrap()]);
        assert_eq!(c.status, 0, "{mode:?}: create: {}", c.stderr);
        let st = state(&b, "cs");
        assert_eq!(st["status"], "created", "{mode:?}: {st}");
        let pid: i64 = fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(
            st["pid"].as_i64(),
            Some(pid),
            "{mode:?}: the pid file's {pid} is not the state's pid: {st}"
        );
        assert_eq!(
            (st["id"].as_str(), st["ociVersion"].is_string()),
            (Some("cs"), true),
            "{st}"
        );
        assert_eq!(st["bundle"], json!(b.dir()), "{mode:?}: {st}");
        assert!(
            !app_output(&b, "cs").contains("started"),
            "{mode:?}: the app ran before start"
        );
        let s = nsb(&b, &["start", "cs"]);
        assert_eq!(s.status, 0, "{mode:?}: start: {}", s.stderr);
        assert_eq!(status(&b, "cs"), "running", "{mode:?}");
        assert!(
            eventually(|| app_output(&b, "cs").contains("started")),
            "{mode:?}: app output: {}",
            app_output(&b, "cs")
        );
        assert_eq!(nsb(&b, &["kill", "cs", "KILL"]).status, 0, "{mode:?}");
        let st = wait_status(&b, "cs", "stopped");
        assert_eq!(
            st["pid"],
            json!(0),
            "{mode:?}: a stopped container reports pid 0: {st}"
        );
        delete_and_check(&b, "cs", false);
    }
}

#[test]
fn state_becomes_stopped_when_the_app_exits_and_delete_removes_it() {
    for mode in common::modes() {
        let b = Bundle::new(mode).args(&["/bin/sh", "-c", "exit 0"]);
        create_and_start(&b, "exits");
        wait_status(&b, "exits", "stopped");
        let again = nsb(&b, &["start", "exits"]);
        assert_ne!(
            again.status, 0,
            "{mode:?}: a stopped container started again"
        );
        delete_and_check(&b, "exits", false);
        let gone = nsb(&b, &["state", "exits"]);
        assert!(
            gone.status != 0 && gone.stderr.contains("does not exist"),
            "{mode:?}: {gone:?}"
        );
    }
}

#[test]
fn kill_delivers_named_numbered_and_real_time_signals() {
    for mode in common::modes() {
        let script =
            format!("trap 'echo got-usr1' USR1; trap 'echo got-37; exit 3' 37; echo ready; {LOOP}");
        let b = Bundle::new(mode).args(&["/bin/sh", "-c", &script]);
        create_and_start(&b, "sig");
        assert!(
            eventually(|| app_output(&b, "sig").contains("ready")),
            "{mode:?}: {}",
            app_output(&b, "sig")
        );
        let usr1 = nsb(&b, &["kill", "sig", "SIGUSR1"]);
        assert_eq!(usr1.status, 0, "{mode:?}: kill USR1: {}", usr1.stderr);
        assert!(
            eventually(|| app_output(&b, "sig").contains("got-usr1")),
            "{mode:?}: {}",
            app_output(&b, "sig")
        );
        let rt = nsb(&b, &["kill", "sig", "37"]);
        assert_eq!(rt.status, 0, "{mode:?}: kill 37: {}", rt.stderr);
        wait_status(&b, "sig", "stopped");
        assert!(
            app_output(&b, "sig").contains("got-37"),
            "{mode:?}: {}",
            app_output(&b, "sig")
        );
        // runc's words: containerd's shim takes "container not running" from `kill` as "the
        // process already finished"; any other failure there fails its task delete, and a pod
        // never stops (tests/engines/cri.rs).
        let late = nsb(&b, &["kill", "sig", "TERM"]);
        assert!(
            late.status != 0 && late.stderr.contains("container not running"),
            "{mode:?}: kill after exit: {late:?}"
        );
        delete_and_check(&b, "sig", false);
    }
}

#[test]
fn delete_of_a_created_sandbox_leaves_nothing_behind() {
    for mode in common::modes() {
        let b = sleeper(mode);
        let c = create(&b, "never", &[]);
        assert_eq!(c.status, 0, "{mode:?}: create: {}", c.stderr);
        delete_and_check(&b, "never", false);
        assert!(
            !app_output(&b, "never").contains("started"),
            "{mode:?}: the app ran"
        );
    }
}

#[test]
fn delete_refuses_a_running_sandbox_unless_forced() {
    for mode in common::modes() {
        let b = sleeper(mode);
        create_and_start(&b, "busy");
        let refused = nsb(&b, &["delete", "busy"]);
        assert!(
            refused.status != 0 && refused.stderr.contains("running"),
            "{mode:?}: {refused:?}"
        );
        assert_eq!(
            status(&b, "busy"),
            "running",
            "{mode:?}: a refused delete changed the container"
        );
        delete_and_check(&b, "busy", true);
    }
}

#[test]
fn delete_of_a_missing_id_fails_unless_forced() {
    for mode in common::modes() {
        let b = Bundle::new(mode);
        let plain = nsb(&b, &["delete", "ghost"]);
        assert!(
            plain.status != 0 && plain.stderr.contains("does not exist"),
            "{mode:?}: {plain:?}"
        );
        let forced = nsb(&b, &["delete", "--force", "ghost"]);
        assert_eq!(forced.status, 0, "{mode:?}: {}", forced.stderr);
        let bad = nsb(&b, &["delete", "--force", "../escape"]);
        assert_ne!(bad.status, 0, "{mode:?}: an id with a slash was accepted");
    }
}

#[test]
fn list_json_shows_every_container_with_its_status() {
    for mode in common::modes() {
        let b = sleeper(mode);
        assert_eq!(create(&b, "la", &[]).status, 0, "{mode:?}");
        create_and_start(&b, "lb");
        let out = nsb(&b, &["list", "--format", "json"]);
        assert_eq!(out.status, 0, "{mode:?}: {}", out.stderr);
        let all: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
        let got: Vec<(String, String)> = all
            .iter()
            .map(|c| {
                (
                    c["id"].as_str().unwrap().into(),
                    c["status"].as_str().unwrap().into(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("la".into(), "created".into()),
                ("lb".into(), "running".into())
            ],
            "{mode:?}"
        );
        assert_eq!(nsb(&b, &["delete", "la"]).status, 0);
        delete_and_check(&b, "lb", true);
    }
}

#[test]
fn kill_and_delete_work_with_only_xdg_runtime_dir_in_the_environment() {
    for mode in common::rootless_modes() {
        let b = sleeper(mode);
        let mut cmd = b.nsboot();
        let xdg = cmd
            .get_envs()
            .find(|(k, _)| *k == "XDG_RUNTIME_DIR")
            .and_then(|(_, v)| v)
            .unwrap()
            .to_owned();
        cmd.args(["create", "--bundle"]).arg(b.dir()).arg("bare");
        assert_eq!(
            run_to_file(&b, "bare", cmd).status,
            0,
            "{mode:?}: {}",
            app_output(&b, "bare")
        );
        let bare = |args: &[&str]| {
            let mut cmd = b.nsboot();
            cmd.env_clear().env("XDG_RUNTIME_DIR", &xdg).args(args);
            common::output(&mut cmd)
        };
        assert_eq!(bare(&["start", "bare"]).status, 0, "{mode:?}");
        let kill = bare(&["kill", "bare", "KILL"]);
        assert_eq!(kill.status, 0, "{mode:?}: kill: {}", kill.stderr);
        let delete = bare(&["delete", "--force", "bare"]);
        assert_eq!(delete.status, 0, "{mode:?}: delete: {}", delete.stderr);
        assert_no_state(&std::path::Path::new(&xdg).join("nsboot"));
        common::assert_nothing_left(mode, b.state_dir());
    }
}
