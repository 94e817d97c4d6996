//! The command line (issue items 1 and 2): version and help, the internal `boot` subcommand's
//! fd contract, the runc-style global flags, `--debug` timing, the JSON error log, `nsboot spec`,
//! the default state directory, and the exec'd `nsboot boot` path.

// The harness re-exports helpers this binary does not use.
#[allow(unused_imports)]
mod common;

use std::fs;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::{assert_nothing_left, output, Bundle, Mode, Output};

/// How long a bounded poll waits for a running sandbox to show itself.
const POLL: Duration = Duration::from_secs(20);

/// `nsboot ARGS` as this test process, without a sandbox.
fn nsboot_plain(args: &[&str]) -> Output {
    output(Command::new(common::nsboot_bin()).args(args))
}

/// `nsboot GLOBAL... --root <state> run --bundle <dir> ID` as the bundle's user.
fn run_with(bundle: &Bundle, global: &[&str], id: &str) -> Output {
    let mut cmd = bundle.nsboot();
    cmd.args(global)
        .arg("--root")
        .arg(bundle.state_dir())
        .arg("run")
        .arg("--bundle")
        .arg(bundle.dir())
        .arg(id);
    output(&mut cmd)
}

/// The XDG_RUNTIME_DIR that [`Bundle::nsboot`] gives nsboot (owned by the mode's user).
fn xdg_of(bundle: &Bundle) -> PathBuf {
    bundle
        .dir()
        .parent()
        .expect("bundle has a top dir")
        .join("xdg")
}

/// The value of `flag`'s line in a help text, or a panic showing the whole text.
fn help_line<'a>(help: &'a str, flag: &str) -> &'a str {
    help.lines()
        .find(|l| {
            l.trim_start()
                .split([' ', ','])
                .any(|w| w == flag || w.starts_with(&format!("{flag}=")))
        })
        .unwrap_or_else(|| panic!("no {flag} in help:\n{help}"))
}

#[test]
fn version_prints_the_crate_version() {
    let out = nsboot_plain(&["--version"]);
    assert_eq!(
        (out.status, out.stdout.as_str()),
        (
            0,
            format!("nsboot {}\n", env!("CARGO_PKG_VERSION")).as_str()
        ),
        "{out:?}"
    );
}

#[test]
fn help_lists_run_spec_do_and_check() {
    let out = nsboot_plain(&["--help"]);
    assert_eq!(out.status, 0, "{out:?}");
    let commands: Vec<&str> = out
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for c in ["run", "spec", "do", "check"] {
        assert!(
            commands.contains(&c),
            "{c} not listed: {commands:?}\n{}",
            out.stdout
        );
    }
}

#[test]
fn boot_help_says_internal_and_documents_the_fd_contract() {
    let out = nsboot_plain(&["boot", "--help"]);
    assert_eq!(out.status, 0, "{out:?}");
    let first = out.stdout.lines().next().unwrap_or_default();
    assert!(
        first.to_lowercase().contains("internal"),
        "first line of boot --help does not say internal: {first:?}"
    );
    for flag in [
        "--spec-fd",
        "--start-sync-fd",
        "--sync-userns-fd",
        "--stdio-fds",
        "--pass-fd",
        "--exec-fd",
        "--setup-root",
        "--apply-caps",
        "--attached",
        "--bundle",
        "--controller-fd",
    ] {
        let line = help_line(&out.stdout, flag);
        // Documented: the flag's line says something beyond its own name and value.
        let words = line.split_whitespace().count();
        assert!(words >= 3, "{flag} is not documented: {line:?}");
    }
}

#[test]
fn global_flags_are_accepted_before_the_subcommand() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode).args(&["/bin/sh", "-c", "echo ran"]);
        let log = xdg_of(&bundle).join("nsboot.log");
        let log = log.to_str().unwrap();
        let combos: [&[&str]; 6] = [
            &["--rootless", "true", "--log-format", "text"],
            &["--rootless", "auto", "--log-format", "json"],
            &["--rootless", "false"],
            &["--log", log, "--log-format", "json"],
            &["--log", log],
            &["--debug"],
        ];
        for (i, global) in combos.iter().enumerate() {
            let out = run_with(&bundle, global, &format!("cli-global-{mode:?}-{i}"));
            assert_eq!(
                (out.status, out.stdout.as_str()),
                (0, "ran\n"),
                "{mode:?} {global:?}: {}",
                out.stderr
            );
        }
        assert_nothing_left(mode, bundle.state_dir());
    }
}

#[test]
fn bad_global_flag_values_are_refused() {
    for global in [["--rootless", "maybe"], ["--log-format", "xml"]] {
        let out = nsboot_plain(&[global[0], global[1], "--version"]);
        assert_eq!(out.status, 2, "{global:?}: {out:?}");
        assert!(
            out.stderr.contains(global[1]),
            "{global:?}: error does not name the value: {}",
            out.stderr
        );
    }
}

#[test]
fn debug_prints_a_timing_line_per_boot_phase() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode).args(&["/bin/true"]);
        let out = run_with(&bundle, &["--debug"], &format!("cli-debug-{mode:?}"));
        assert_eq!(out.status, 0, "{mode:?}: {}", out.stderr);
        assert_phase_lines(&out.stderr, &format!("{mode:?}"));
        let quiet = run_with(&bundle, &[], &format!("cli-nodebug-{mode:?}"));
        assert_eq!(quiet.status, 0, "{mode:?}: {}", quiet.stderr);
        assert!(
            !quiet.stderr.contains("boot phase"),
            "{mode:?}: timing lines without --debug:\n{}",
            quiet.stderr
        );
        assert_nothing_left(mode, bundle.state_dir());
    }
}

/// The `boot phase NAME done ... elapsed_us=N` lines of stderr, in order, or a panic.
fn assert_phase_lines(stderr: &str, what: &str) {
    let mut last = 0;
    for phase in ["userns", "rootfs", "app", "exec"] {
        let (at, line) = stderr
            .lines()
            .enumerate()
            .find(|(_, l)| l.contains(&format!("boot phase {phase} done")))
            .unwrap_or_else(|| panic!("{what}: no timing line for {phase}:\n{stderr}"));
        assert!(
            line.contains("elapsed_us="),
            "{what}: {phase} line has no timing: {line}"
        );
        assert!(at >= last, "{what}: phase {phase} out of order:\n{stderr}");
        last = at;
    }
}

#[test]
fn debug_timing_lines_also_come_from_an_execd_boot() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode).args(&["/bin/true"]);
        let mut cmd = bundle.nsboot();
        cmd.env("NSBOOT_EXEC_BOOT", "1")
            .args(["--debug", "--root"])
            .arg(bundle.state_dir())
            .args(["run", "--bundle"])
            .arg(bundle.dir())
            .arg(format!("cli-debug-exec-{mode:?}"));
        let out = output(&mut cmd);
        assert_eq!(out.status, 0, "{mode:?}: {}", out.stderr);
        assert_phase_lines(&out.stderr, &format!("{mode:?} NSBOOT_EXEC_BOOT=1"));
        assert_nothing_left(mode, bundle.state_dir());
    }
}

#[test]
fn json_log_holds_one_error_object_for_a_failed_run() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode);
        let log = xdg_of(&bundle).join("nsboot.json");
        let missing = bundle.dir().join("missing");
        let mut cmd = bundle.nsboot();
        cmd.arg("--log")
            .arg(&log)
            .args(["--log-format", "json", "--root"])
            .arg(bundle.state_dir())
            .args(["run", "--bundle"])
            .arg(&missing)
            .arg(format!("cli-json-{mode:?}"));
        let out = output(&mut cmd);
        assert_eq!(out.status, 125, "{mode:?}: {out:?}");
        let text = fs::read_to_string(&log)
            .unwrap_or_else(|e| panic!("{mode:?}: no log {}: {e}; {out:?}", log.display()));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "{mode:?}: log is not one line:\n{text}");
        let obj: Value = serde_json::from_str(lines[0])
            .unwrap_or_else(|e| panic!("{mode:?}: log line is not JSON ({e}): {}", lines[0]));
        assert_eq!(obj["level"], json!("error"), "{mode:?}: {obj}");
        let time = obj["time"].as_str().unwrap_or_default();
        let b = time.as_bytes();
        assert!(
            b.len() >= 20 && b[4] == b'-' && b[10] == b'T' && b[13] == b':',
            "{mode:?}: time is not RFC 3339: {obj}"
        );
        let msg = obj["msg"].as_str().unwrap_or_default();
        assert!(
            msg.contains(missing.to_str().unwrap()),
            "{mode:?}: msg does not name the bundle: {obj}"
        );
        assert!(!msg.contains('\n'), "{mode:?}: msg is not one line: {obj}");
        assert_nothing_left(mode, bundle.state_dir());
    }
}

/// Points a config.json written by `nsboot spec` at the harness rootfs, with a
/// non-interactive app, keeping the file's owner.
fn make_runnable(config: &Path, script: &str) {
    let text = fs::read_to_string(config).expect("spec wrote config.json");
    let mut v: Value = serde_json::from_str(&text).expect("config.json is JSON");
    v["root"]["path"] = json!(common::rootfs());
    v["process"]["args"] = json!(["/bin/sh", "-c", script]);
    v["process"]["terminal"] = json!(false);
    fs::write(config, serde_json::to_string_pretty(&v).unwrap()).expect("rewrite config.json");
}

/// Replaces the bundle's config.json by what `nsboot GLOBAL... spec FLAGS... --bundle DIR`
/// writes, and returns that config.
fn spec_into(bundle: &Bundle, global: &[&str], flags: &[&str]) -> Value {
    let config = bundle.dir().join("config.json");
    fs::remove_file(&config).unwrap();
    let mut cmd = bundle.nsboot();
    cmd.args(global)
        .arg("spec")
        .args(flags)
        .arg("--bundle")
        .arg(bundle.dir());
    let out = output(&mut cmd);
    let mode = bundle.mode();
    assert_eq!(out.status, 0, "{mode:?} {global:?} spec {flags:?}: {out:?}");
    let text = fs::read_to_string(&config).expect("spec wrote config.json");
    serde_json::from_str(&text).expect("config.json is JSON")
}

/// The rootless spec maps container root to the caller alone, as `runc spec --rootless` does.
fn assert_maps_caller_to_root(config: &Value, mode: Mode) {
    let u = common::user(mode);
    let linux = &config["linux"];
    assert_eq!(
        (&linux["uidMappings"], &linux["gidMappings"]),
        (
            &json!([{ "containerID": 0, "hostID": u.uid, "size": 1 }]),
            &json!([{ "containerID": 0, "hostID": u.gid, "size": 1 }])
        ),
        "{mode:?}: not a rootless spec"
    );
}

/// Runs the bundle's (spec-written) config with a non-interactive app as the mode's user.
fn assert_spec_runs(bundle: &Bundle, id: &str) {
    make_runnable(&bundle.dir().join("config.json"), "id -u; echo spec-ok");
    let out = bundle.run(id);
    assert_eq!(
        (out.status, out.stdout.as_str()),
        (0, "0\nspec-ok\n"),
        "{:?}: {}",
        bundle.mode(),
        out.stderr
    );
    assert_nothing_left(bundle.mode(), bundle.state_dir());
}

#[test]
fn spec_rootless_writes_a_config_the_user_can_run() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode);
        let config = spec_into(&bundle, &[], &["--rootless"]);
        assert_maps_caller_to_root(&config, mode);
        assert_spec_runs(&bundle, &format!("cli-spec-rootless-{mode:?}"));
    }
}

#[test]
fn spec_as_non_root_is_rootless_by_default() {
    for mode in common::rootless_modes() {
        let bundle = Bundle::new(mode);
        let config = spec_into(&bundle, &[], &[]);
        assert_maps_caller_to_root(&config, mode);
        assert_spec_runs(&bundle, &format!("cli-spec-default-{mode:?}"));
    }
}

#[test]
fn global_rootless_true_makes_spec_rootless() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode);
        let config = spec_into(&bundle, &["--rootless", "true"], &[]);
        assert_maps_caller_to_root(&config, mode);
        assert_spec_runs(&bundle, &format!("cli-spec-global-{mode:?}"));
    }
}

#[test]
fn spec_refuses_to_overwrite_config_json() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode);
        let config = bundle.dir().join("config.json");
        let before = fs::read(&config).unwrap();
        let mut cmd = bundle.nsboot();
        cmd.args(["spec", "--bundle"]).arg(bundle.dir());
        let out = output(&mut cmd);
        assert_ne!(out.status, 0, "{mode:?}: {out:?}");
        assert_eq!(
            out.stderr.lines().count(),
            1,
            "{mode:?}: not one line: {}",
            out.stderr
        );
        assert!(
            out.stderr.contains("config.json already exists"),
            "{mode:?}: {}",
            out.stderr
        );
        assert_eq!(fs::read(&config).unwrap(), before, "{mode:?}: overwritten");
    }
}

/// Spawns `cmd` with a piped stdin in its own process group (to kill it whole on failure).
fn spawn_holding_stdin(cmd: &mut Command) -> Child {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    cmd.spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"))
}

/// Polls `cond` until it holds or [`POLL`] passes.
fn poll(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + POLL;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Closes the child's stdin (its app then exits) and waits, killing it after [`POLL`].
fn finish(mut child: Child) -> (i32, String, String) {
    drop(child.stdin.take());
    let deadline = Instant::now() + POLL;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let pg = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::killpg(pg, nix::sys::signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn default_state_dir_is_xdg_runtime_dir_when_rootless_and_run_nsboot_as_root() {
    for mode in common::modes() {
        let id = format!("cli-default-root-{mode:?}-{}", std::process::id());
        // The app waits for its stdin to close: the sandbox runs for as long as we look.
        let bundle = Bundle::new(mode).args(&["/bin/cat"]);
        let root = if mode.is_rootless() {
            xdg_of(&bundle).join("nsboot")
        } else {
            PathBuf::from("/run/nsboot")
        };
        let mut cmd = bundle.nsboot();
        cmd.args(["run", "--bundle"]).arg(bundle.dir()).arg(&id);
        let child = spawn_holding_stdin(&mut cmd);
        let appeared = poll(|| root.join(&id).is_dir());
        let (status, stdout, stderr) = finish(child);
        assert!(
            appeared,
            "{mode:?}: {} never appeared while running: {stderr}",
            root.join(&id).display()
        );
        assert_eq!((status, stdout.as_str()), (0, ""), "{mode:?}: {stderr}");
        assert!(
            !root.join(&id).exists(),
            "{mode:?}: {} left after the run",
            root.join(&id).display()
        );
        assert_nothing_left(mode, bundle.state_dir());
    }
}

/// The command lines of the processes started for `bundle` (by its NSBOOT_TEST_BUNDLE mark).
fn bundle_cmdlines(bundle: &Bundle) -> Vec<Vec<String>> {
    let top = bundle
        .dir()
        .parent()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let mark = format!("NSBOOT_TEST_BUNDLE={top}");
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let p = entry.path();
        let Ok(env) = fs::read(p.join("environ")) else {
            continue;
        };
        if !env.split(|b| *b == 0).any(|v| v == mark.as_bytes()) {
            continue;
        }
        if let Ok(cmdline) = fs::read(p.join("cmdline")) {
            let args = cmdline
                .split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            found.push(args);
        }
    }
    found
}

#[test]
fn exec_boot_runs_the_same_bundle_with_the_same_output() {
    for mode in common::modes() {
        let script = "read x; echo \"got $x\"; id -u; echo err >&2; exit 7";
        let bundle = Bundle::new(mode).args(&["/bin/sh", "-c", script]);
        let mut results = Vec::new();
        for exec in [false, true] {
            let mut cmd = bundle.nsboot();
            if exec {
                cmd.env("NSBOOT_EXEC_BOOT", "1");
            }
            cmd.arg("--root")
                .arg(bundle.state_dir())
                .args(["run", "--bundle"])
                .arg(bundle.dir())
                .arg(format!("cli-exec-{mode:?}-{exec}"));
            let mut child = spawn_holding_stdin(&mut cmd);
            // The caller and its supervisor: both carry the harness's mark in their environment.
            let mut procs = Vec::new();
            let both = poll(|| {
                procs = bundle_cmdlines(&bundle);
                procs.len() >= 2
            });
            let _ = child.stdin.as_mut().unwrap().write_all(b"hello\n");
            let (status, stdout, stderr) = finish(child);
            assert!(
                both,
                "{mode:?} exec={exec}: no supervisor seen: {procs:?} {stderr}"
            );
            let booted = procs.iter().any(|a| a.get(1).is_some_and(|s| s == "boot"));
            assert_eq!(
                booted, exec,
                "{mode:?} NSBOOT_EXEC_BOOT={exec}: supervisor command lines {procs:?}"
            );
            assert_eq!(
                (status, stdout.as_str(), stderr.as_str()),
                (7, "got hello\n0\n", "err\n"),
                "{mode:?} NSBOOT_EXEC_BOOT={exec}"
            );
            results.push((status, stdout, stderr));
            assert_nothing_left(mode, bundle.state_dir());
        }
        assert_eq!(results[0], results[1], "{mode:?}");
    }
}
