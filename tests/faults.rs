//! Faults: SIGKILL of the caller at each start-up phase, of the supervisor and of the
//! application while it runs; newuidmap/newgidmap failing; the state directory read-only or
//! full. After each: the right exit status, nothing left behind, and the id usable again.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use common::{Bundle, Mode, Running};

/// How long a sandbox may take to reach a phase (boot under a loaded, 2-core machine).
const PHASE_TIMEOUT: Duration = Duration::from_secs(30);

fn id(what: &str, mode: Mode) -> String {
    common::test_id("flt", what, mode)
}

const SLEEPER: [&str; 3] = ["/bin/sh", "-c", "echo ready; exec sleep 1000"];

/// The children of `pid` (by /proc/*/stat), polled until there is one (up to 10 s).
fn children(pid: i32) -> Vec<i32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let kids: Vec<i32> = fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| {
                let stat = fs::read_to_string(e.path().join("stat")).ok()?;
                // pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
                let ppid: i32 = stat
                    .rsplit_once(')')?
                    .1
                    .split_whitespace()
                    .nth(1)?
                    .parse()
                    .ok()?;
                (ppid == pid).then(|| e.file_name().to_string_lossy().parse().ok())?
            })
            .collect();
        if !kids.is_empty() || Instant::now() > deadline {
            return kids;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The same id runs again, to completion, in the same state dir.
fn assert_id_reusable(bundle: Bundle, id: &str) {
    let mode = bundle.mode();
    let bundle = bundle.args(&["/bin/sh", "-c", "echo again"]);
    let out = bundle.run(id);
    assert_eq!(
        (out.status, out.stdout.as_str()),
        (0, "again\n"),
        "{mode:?}: a new run of {id}: {out:?}"
    );
    common::assert_nothing_left(mode, bundle.state_dir());
}

/// Where to kill the caller: right after spawning it, after a boot phase's --debug line, or
/// once the application runs.
const MOMENTS: [&str; 6] = [
    "",
    "boot phase userns done",
    "boot phase rootfs done",
    "boot phase app done",
    "boot phase exec done",
    "ready",
];

#[test]
fn caller_sigkill_at_each_phase_leaves_nothing() {
    for mode in common::modes() {
        for (n, moment) in MOMENTS.iter().enumerate() {
            let ctx = format!("{mode:?}, caller killed at {moment:?}");
            let id = id(&format!("caller{n}"), mode);
            let bundle = Bundle::new(mode).args(&SLEEPER);
            let mut run = Running::start_debug(&bundle, &id);
            if !moment.is_empty() {
                run.wait_for(moment, PHASE_TIMEOUT, &ctx);
            }
            kill(run.pid(), Signal::SIGKILL).unwrap();
            let out = run.finish(Duration::from_secs(20));
            assert_eq!(out.status, 137, "{ctx}: {out:?}");
            common::assert_nothing_left(mode, bundle.state_dir());
            assert_id_reusable(bundle, &id);
        }
    }
}

#[test]
fn caller_sigkill_after_short_delays_leaves_nothing() {
    // Moments between the phase lines: a spread of delays after the spawn.
    for mode in common::modes() {
        for (n, ms) in [1u64, 3, 6, 10, 15, 25].into_iter().enumerate() {
            let ctx = format!("{mode:?}, caller killed after {ms} ms");
            let id = id(&format!("delay{n}"), mode);
            let bundle = Bundle::new(mode).args(&SLEEPER);
            let mut run = Running::start(&bundle, &id);
            std::thread::sleep(Duration::from_millis(ms));
            kill(run.pid(), Signal::SIGKILL).unwrap();
            let out = run.finish(Duration::from_secs(20));
            assert_eq!(out.status, 137, "{ctx}: {out:?}");
            common::assert_nothing_left(mode, bundle.state_dir());
            assert_id_reusable(bundle, &id);
        }
    }
}

/// Starts the sleeper, waits until it runs, and returns the run with the supervisor's pid.
fn running_sleeper(bundle: &Bundle, id: &str, ctx: &str) -> (Running, i32) {
    sleeper(Running::start(bundle, id), &["ready"], ctx)
}

/// Like [`running_sleeper`], once the caller has the supervisor's start reply too (`--debug`'s
/// start phase): the application execs (and may print) before its supervisor has reported the
/// start, and a supervisor killed in between is a start-up failure (125), not the killed
/// sandbox (137) that a test of the running sandbox is about.
fn started_sleeper(bundle: &Bundle, id: &str, ctx: &str) -> (Running, i32) {
    let run = Running::start_debug(bundle, id);
    sleeper(run, &["ready", "phase=\"start\""], ctx)
}

fn sleeper(mut run: Running, lines: &[&str], ctx: &str) -> (Running, i32) {
    run.wait_for_all(lines, PHASE_TIMEOUT, ctx);
    let sup = children(run.pid().as_raw());
    assert_eq!(sup.len(), 1, "{ctx}: children of the caller: {sup:?}");
    (run, sup[0])
}

#[test]
fn supervisor_sigkill_is_nsboots_failure_125_with_one_line() {
    for mode in common::modes() {
        let ctx = format!("{mode:?}");
        let id = id("sup", mode);
        let bundle = Bundle::new(mode).args(&SLEEPER);
        let (mut run, sup) = started_sleeper(&bundle, &id, &ctx);
        let app = children(sup);
        kill(Pid::from_raw(sup), Signal::SIGKILL).unwrap();
        let out = run.finish(Duration::from_secs(20));
        // nsboot's own failure, not the application's SIGKILL.
        let errors: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| l.starts_with("nsboot:"))
            .collect();
        assert!(
            out.status == 125
                && errors.len() == 1
                && errors[0].contains("supervisor")
                && errors[0].contains("signal 9"),
            "{ctx}: want 125 and one line on the supervisor's death: {out:?}"
        );
        // The app died with its pid namespace's init.
        for pid in app {
            assert!(
                !Path::new(&format!("/proc/{pid}")).exists()
                    || fs::read_to_string(format!("/proc/{pid}/stat"))
                        .is_ok_and(|s| s.contains(") Z")),
                "{ctx}: app {pid} survived its supervisor"
            );
        }
        common::assert_nothing_left(mode, bundle.state_dir());
        assert_id_reusable(bundle, &id);
    }
}

/// `pkill -9 nsboot`: the caller and its supervisor die at the same instant (both stopped
/// first, so that neither can clean up after the other). Their state is left, but `list`
/// never shows a dead foreground run: it removes it.
#[test]
fn caller_and_supervisor_killed_together_are_never_listed() {
    for mode in common::modes() {
        let ctx = format!("{mode:?}");
        let id = id("both", mode);
        let bundle = Bundle::new(mode).args(&SLEEPER);
        let (mut run, sup) = running_sleeper(&bundle, &id, &ctx);
        // The supervisor first: killing the caller first orphans the supervisor's process group
        // while it is stopped, and the kernel then sends it SIGCONT (with SIGHUP), which would
        // let it clean up after its dead caller before its own SIGKILL lands.
        let pids = [Pid::from_raw(sup), run.pid()];
        for sig in [Signal::SIGSTOP, Signal::SIGKILL] {
            for pid in pids {
                kill(pid, sig).unwrap();
            }
        }
        let out = run.finish(Duration::from_secs(20));
        assert_eq!(out.status, 137, "{ctx}: {out:?}");
        let mut list = bundle.nsboot();
        list.arg("--root").arg(bundle.state_dir()).arg("list");
        let listed = common::output(&mut list);
        assert!(
            listed.status == 0 && !listed.stdout.contains(&id),
            "{ctx}: a dead run is listed: {listed:?}"
        );
        common::assert_nothing_left(mode, bundle.state_dir());
        assert_id_reusable(bundle, &id);
    }
}

#[test]
fn app_sigkill_exits_137_and_leaves_nothing() {
    for mode in common::modes() {
        let ctx = format!("{mode:?}");
        let id = id("app", mode);
        let bundle = Bundle::new(mode).args(&SLEEPER);
        let (mut run, sup) = running_sleeper(&bundle, &id, &ctx);
        let app = children(sup);
        assert_eq!(app.len(), 1, "{ctx}: children of the supervisor: {app:?}");
        kill(Pid::from_raw(app[0]), Signal::SIGKILL).unwrap();
        let out = run.finish(Duration::from_secs(20));
        assert_eq!(
            (out.status, out.stdout.as_str(), out.stderr.as_str()),
            (137, "ready\n", ""),
            "{ctx}: {out:?}"
        );
        common::assert_nothing_left(mode, bundle.state_dir());
        assert_id_reusable(bundle, &id);
    }
}

/// A stand-in for a uidmap helper that fails like a misconfigured one. Setuid root (the test
/// runs as root): nsboot runs only a helper that looks able to work (the kernel ignores the bit
/// on a script).
fn failing_helper(bundle: &Bundle, name: &str) -> String {
    let path = bundle.dir().parent().unwrap().join(name);
    let script = format!("#!/bin/sh\necho \"{name}: fake failure $$\" >&2\nexit 1\n");
    fs::write(&path, script).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o4755)).unwrap();
    path.display().to_string()
}

#[test]
fn failing_newuidmap_or_newgidmap_is_one_line_125() {
    if !common::rootless_modes().contains(&Mode::RootlessSubid) || !common::is_root() {
        return; // without a subordinate range (or a setuid root stand-in) no helper runs
    }
    let mode = Mode::RootlessSubid;
    for (var, tool) in [
        ("NSBOOT_NEWUIDMAP", "newuidmap"),
        ("NSBOOT_NEWGIDMAP", "newgidmap"),
    ] {
        let id = id(tool, mode);
        let bundle = Bundle::new(mode).args(&["/bin/true"]);
        let helper = failing_helper(&bundle, tool);
        let mut cmd = bundle.nsboot();
        cmd.env(var, &helper).arg("--root").arg(bundle.state_dir());
        cmd.arg("run").arg("--bundle").arg(bundle.dir()).arg(&id);
        let out = common::output(&mut cmd);
        let want = format!("{tool}: fake failure");
        assert!(
            out.status == 125
                && out.stderr.lines().count() == 1
                && out.stderr.contains(&want)
                && out.stderr.contains(&helper),
            "{var}: want one line with the helper's path and stderr, exit 125: {out:?}"
        );
        common::assert_nothing_left(mode, bundle.state_dir());
        assert_id_reusable(bundle, &id);
    }
}

/// `cmd` run in a new mount namespace where `dir` is a fresh tmpfs with `opts`: a read-only
/// or full state dir, without touching the host's mounts. Needs root (for the mount).
fn with_tmpfs(cmd: &Command, dir: &Path, opts: &str) -> Command {
    let mut wrapped = Command::new("unshare");
    wrapped.args(["-m", "--propagation", "private", "--", "sh", "-c"]);
    wrapped.arg("mount -t tmpfs -o \"$0\" tmpfs \"$1\" && shift && exec \"$@\"");
    wrapped
        .arg(opts)
        .arg(dir)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    wrapped.env_clear();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            wrapped.env(k, v);
        }
    }
    if let Some(d) = cmd.get_current_dir() {
        wrapped.current_dir(d);
    }
    wrapped
}

#[test]
fn unwritable_or_full_state_dir_is_one_line_125() {
    if !common::is_root() {
        return; // mounting the read-only / full tmpfs needs root
    }
    let cases = [
        ("ro", "ro", "Read-only file system"),
        ("full", "nr_inodes=1", "No space left on device"),
    ];
    for mode in common::modes() {
        // The user's own 0700 directory: only the state root's owner may use it.
        let u = common::user(mode);
        for (what, opts, cause) in cases {
            let opts = &format!("{opts},mode=0700,uid={},gid={}", u.uid, u.gid);
            let id = id(&format!("state-{what}"), mode);
            let bundle = Bundle::new(mode).args(&["/bin/true"]);
            let dir = bundle.dir().parent().unwrap().join("state-tmpfs");
            fs::create_dir(&dir).unwrap();
            let mut cmd = bundle.nsboot();
            cmd.arg("--root").arg(&dir).arg("run");
            cmd.arg("--bundle").arg(bundle.dir()).arg(&id);
            let out = common::output(&mut with_tmpfs(&cmd, &dir, opts));
            let shown = dir.display().to_string();
            assert!(
                out.status == 125
                    && out.stdout.is_empty()
                    && out.stderr.lines().count() == 1
                    && out.stderr.contains(cause)
                    && out.stderr.contains(&shown),
                "{mode:?} {what}: want one line naming {shown} and {cause:?}: {out:?}"
            );
            common::assert_nothing_left(mode, bundle.state_dir());
            assert_id_reusable(bundle, &id);
        }
    }
}

#[test]
fn state_dir_without_permission_is_one_line_125() {
    // A root-owned 0555 dir: only the rootless modes lack the permission.
    if !common::is_root() {
        return; // the dir would be the user's own
    }
    for mode in common::rootless_modes() {
        let id = id("state-perm", mode);
        let bundle = Bundle::new(mode).args(&["/bin/true"]);
        let dir = bundle.dir().parent().unwrap().join("locked");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o555)).unwrap();
        let mut cmd = bundle.nsboot();
        cmd.arg("--root").arg(dir.join("st")).arg("run");
        cmd.arg("--bundle").arg(bundle.dir()).arg(&id);
        let out = common::output(&mut cmd);
        assert!(
            out.status == 125
                && out.stderr.lines().count() == 1
                && out.stderr.contains("Permission denied")
                && out.stderr.contains("--root"),
            "{mode:?}: {out:?}"
        );
        assert!(fs::read_dir(&dir).unwrap().next().is_none());
        common::assert_nothing_left(mode, bundle.state_dir());
        assert_id_reusable(bundle, &id);
    }
}

/// `nsboot --root STATE run --bundle DIR ID` as the mode's user, under `prlimit LIMIT` (set
/// after the switch to that user: setresuid over RLIMIT_NPROC would fail the exec).
fn run_limited(bundle: &Bundle, limit: &str, id: &str) -> common::Output {
    let mut cmd = common::as_user(bundle.mode(), "prlimit");
    cmd.arg(limit).arg("--").arg(common::nsboot_bin());
    cmd.arg("--root").arg(bundle.state_dir()).arg("run");
    cmd.arg("--bundle").arg(bundle.dir()).arg(id);
    common::output(&mut cmd)
}

#[test]
fn exhausted_limits_are_named_with_their_fix() {
    for mode in common::modes() {
        // No process.rlimits: a hard limit above the caller's would be refused first.
        let bundle = Bundle::new(mode).args(&["/bin/true"]).edit(|c| {
            c["process"].as_object_mut().unwrap().remove("rlimits");
        });
        let mut cases = vec![("--nofile=5:5", "RLIMIT_NOFILE", "ulimit -n")];
        // Root is exempt from RLIMIT_NPROC.
        if mode.is_rootless() {
            cases.push(("--nproc=1:1", "RLIMIT_NPROC", "ulimit -u"));
        }
        for (limit, name, fix) in cases {
            let out = run_limited(&bundle, limit, &id("limit", mode));
            assert!(
                out.status == 125
                    && out.stderr.lines().count() == 1
                    && out.stderr.contains(name)
                    && out.stderr.contains(fix),
                "{mode:?} {limit}: want one line naming {name} and {fix:?}: {out:?}"
            );
            common::assert_nothing_left(mode, bundle.state_dir());
        }
    }
}
