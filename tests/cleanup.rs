//! Nothing is left behind (no stray process, no mount in the caller's mount
//! namespace, no state directory) after a normal exit, a failure at any step, or SIGKILL of the
//! caller; and a container id is free again once its run is over.

mod common;

use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use serde_json::json;

use common::{Bundle, Mode, Running};

/// How long a sandbox may take to print its first line (boot under a loaded, 2-core machine).
const READY_TIMEOUT: Duration = Duration::from_secs(30);

fn id(what: &str, mode: Mode) -> String {
    common::test_id("cl", what, mode)
}

/// Runs `bundle` to completion, checks its status and that stderr holds `err` (is empty for
/// "") — a run that fails for another reason than the one set up proves nothing about cleaning
/// up after it — then that it left nothing behind.
fn run_and_assert_nothing_left(bundle: &Bundle, id: &str, status: i32, err: &str) {
    let mode = bundle.mode();
    let out = bundle.run(id);
    let stderr_ok = if err.is_empty() {
        out.stderr.is_empty()
    } else {
        out.stderr.contains(err)
    };
    assert!(
        out.status == status && stderr_ok,
        "{mode:?}: want status {status} and stderr with {err:?}: {out:?}"
    );
    common::assert_nothing_left(mode, bundle.state_dir());
}

#[test]
fn normal_exit_leaves_nothing() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode).args(&["/bin/sh", "-c", "echo hi"]);
        run_and_assert_nothing_left(&bundle, &id("normal", mode), 0, "");
    }
}

#[test]
fn app_failure_leaves_nothing() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode).args(&["/bin/sh", "-c", "exit 3"]);
        run_and_assert_nothing_left(&bundle, &id("exit3", mode), 3, "");
    }
}

#[test]
fn program_not_found_leaves_nothing() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode).args(&["/no/such-program"]);
        run_and_assert_nothing_left(&bundle, &id("notfound", mode), 127, "/no/such-program");
    }
}

/// The supervisor fails half-way through assembling the root (after /proc, /dev, ... are
/// mounted): none of it may show in the caller's namespace.
#[test]
fn bad_bind_mount_leaves_nothing() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode);
        let missing = bundle.dir().join("no-such-source");
        let bundle = bundle.edit(|c| {
            let m = json!({ "destination": "/mnt", "type": "bind", "source": missing,
                            "options": ["rbind"] });
            c["mounts"].as_array_mut().unwrap().push(m);
        });
        let src = missing.to_string_lossy();
        run_and_assert_nothing_left(&bundle, &id("badmount", mode), 125, &src);
    }
}

/// Only the rootless modes have unmapped ids (real root maps them all).
#[test]
fn unmapped_user_leaves_nothing() {
    for mode in common::rootless_modes() {
        // Beyond both the single map and the 65536-id subordinate range.
        let bundle = Bundle::new(mode).edit(|c| c["process"]["user"]["uid"] = json!(100000));
        run_and_assert_nothing_left(&bundle, &id("unmapped", mode), 125, "100000");
    }
}

#[test]
fn missing_rootfs_leaves_nothing() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode);
        let missing = bundle.dir().join("no-such-rootfs");
        let bundle = bundle.edit(|c| c["root"]["path"] = json!(missing));
        let src = missing.to_string_lossy();
        run_and_assert_nothing_left(&bundle, &id("norootfs", mode), 125, &src);
    }
}

/// Starts a run of `sleep 1000`, waits until the application runs, SIGKILLs the caller.
fn run_and_kill_caller(bundle: &Bundle, id: &str) {
    let ctx = format!("{:?}", bundle.mode());
    let mut run = Running::start_with_stdin(bundle, id);
    run.expect_line("ready", READY_TIMEOUT, &ctx);
    kill(run.pid(), Signal::SIGKILL).unwrap();
    let out = run.finish(Duration::from_secs(10));
    assert_eq!(out.status, 137, "{ctx}: {out:?}");
}

const SLEEPER: [&str; 3] = ["/bin/sh", "-c", "echo ready; exec sleep 1000"];

#[test]
fn caller_sigkill_leaves_nothing() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode).args(&SLEEPER);
        run_and_kill_caller(&bundle, &id("sigkill", mode));
        common::assert_nothing_left(mode, bundle.state_dir());
    }
}

#[test]
fn same_id_is_reusable_after_caller_sigkill() {
    for mode in common::modes() {
        let id = id("reuse-killed", mode);
        let bundle = Bundle::new(mode).args(&SLEEPER);
        run_and_kill_caller(&bundle, &id);
        let bundle = bundle.args(&["/bin/sh", "-c", "echo again"]);
        let out = bundle.run(&id);
        assert_eq!(
            (out.status, out.stdout.as_str()),
            (0, "again\n"),
            "{mode:?}: second run of {id}: {out:?}"
        );
        common::assert_nothing_left(mode, bundle.state_dir());
    }
}

#[test]
fn same_id_is_refused_while_running_and_reusable_after() {
    for mode in common::modes() {
        let ctx = format!("{mode:?}");
        let id = id("twice", mode);
        let bundle = Bundle::new(mode).args(&["/bin/sh", "-c", "echo ready; read x; echo done"]);
        let mut first = Running::start_with_stdin(&bundle, &id);
        first.expect_line("ready", READY_TIMEOUT, &ctx);
        let second = bundle.run(&id);
        assert!(
            second.status == 125 && second.stderr.contains("already exists"),
            "{ctx}: a second run of {id} while the first runs: {second:?}"
        );
        // Closing its stdin ends the first run's `read`.
        let out = first.finish(Duration::from_secs(20));
        assert_eq!(
            (out.status, out.stdout.as_str()),
            (0, "ready\ndone\n"),
            "{ctx}: first run: {out:?}"
        );
        let third = bundle.run(&id);
        assert_eq!(
            (third.status, third.stdout.as_str()),
            (0, "ready\ndone\n"),
            "{ctx}: a run of {id} after the first ended: {third:?}"
        );
        common::assert_nothing_left(mode, bundle.state_dir());
    }
}
