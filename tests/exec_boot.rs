//! The exec'd supervisor (`nsboot boot`, NSBOOT_EXEC_BOOT=1) behaves as the cloned one: the
//! same exit statuses and lines for the application's and the supervisor's own failures, and
//! a whole create / start / delete. (tests/cli.rs pins its stdio and --debug lines; the whole
//! suite runs through it with `NSBOOT_EXEC_BOOT=1 cargo test`.)

mod common;

use std::fs::{self, File};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use common::{assert_nothing_left, Bundle, Mode, Output};

fn id(what: &str, mode: Mode, exec: bool) -> String {
    common::test_id("xb", &format!("{what}{}", u8::from(exec)), mode)
}

fn run(bundle: &Bundle, what: &str, exec: bool) -> Output {
    let mut cmd = bundle.run_cmd(&id(what, bundle.mode(), exec));
    if exec {
        cmd.env("NSBOOT_EXEC_BOOT", "1");
    }
    common::output(&mut cmd)
}

/// Runs the bundle through both supervisors: the same status, stdout and stderr, and nothing
/// left behind. Returns what the exec'd one did.
fn same_through_both(bundle: &Bundle, what: &str) -> Output {
    let cloned = run(bundle, what, false);
    let execd = run(bundle, what, true);
    let mode = bundle.mode();
    assert_eq!(
        (execd.status, &execd.stdout, &execd.stderr),
        (cloned.status, &cloned.stdout, &cloned.stderr),
        "{mode:?} {what}: exec'd (left) and cloned (right) supervisors differ"
    );
    assert_nothing_left(mode, bundle.state_dir());
    execd
}

#[test]
fn execd_supervisor_passes_on_the_applications_status_and_output() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode).args(&["/bin/sh", "-c", "echo out; id -u; exit 3"]);
        let out = same_through_both(&bundle, "status");
        assert_eq!(
            (out.status, out.stdout.as_str()),
            (3, "out\n0\n"),
            "{mode:?}"
        );
    }
}

#[test]
fn execd_supervisor_reports_a_missing_program_as_127() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode).args(&["/no/such-program"]);
        let out = same_through_both(&bundle, "noprog");
        assert_eq!(out.status, 127, "{mode:?}: {out:?}");
    }
}

#[test]
fn execd_supervisor_sends_its_root_setup_error_over_start_sync() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode);
        let missing = bundle.dir().join("no-such-source");
        let bundle = bundle.edit(|c| {
            let m = json!({ "destination": "/data", "type": "bind", "source": missing,
                            "options": ["rbind"] });
            c["mounts"].as_array_mut().unwrap().push(m);
        });
        let out = same_through_both(&bundle, "nosource");
        assert_eq!(out.status, 125, "{mode:?}: {out:?}");
        assert!(
            out.stderr.contains("does not exist") && out.stderr.lines().count() == 1,
            "{mode:?}: {out:?}"
        );
    }
}

/// `nsboot --root STATE ARGS` with NSBOOT_EXEC_BOOT=1, output to `file` (a created sandbox
/// keeps its stdout open past `create`, so no pipe may be waited on).
fn lifecycle(bundle: &Bundle, args: &[&str], file: &File) -> i32 {
    let mut cmd: Command = bundle.nsboot();
    cmd.env("NSBOOT_EXEC_BOOT", "1")
        .arg("--root")
        .arg(bundle.state_dir())
        .args(args)
        .stdin(Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file.try_clone().unwrap());
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    common::wait_code(child, common::RUN_TIMEOUT)
}

#[test]
fn execd_supervisor_is_created_started_and_deleted() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode).args(&["/bin/sh", "-c", "echo started; exit 0"]);
        let id = id("life", mode, true);
        let path = bundle.dir().parent().unwrap().join("life.out");
        let file = File::create(&path).unwrap();
        let dir = bundle.dir().display().to_string();
        let ctx = |what: &str| format!("{mode:?} {what}: {}", fs::read_to_string(&path).unwrap());
        assert_eq!(
            lifecycle(&bundle, &["create", "--bundle", &dir, &id], &file),
            0,
            "{}",
            ctx("create")
        );
        assert_eq!(
            lifecycle(&bundle, &["start", &id], &file),
            0,
            "{}",
            ctx("start")
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while !fs::read_to_string(&path).unwrap().contains("started") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            fs::read_to_string(&path).unwrap().contains("started"),
            "{}",
            ctx("output")
        );
        assert_eq!(
            lifecycle(&bundle, &["delete", "--force", &id], &file),
            0,
            "{}",
            ctx("delete")
        );
        assert_nothing_left(mode, bundle.state_dir());
    }
}
