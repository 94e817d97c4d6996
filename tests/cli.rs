//! The command line (issue items 1 and 2): version and help, the internal `boot` subcommand's
//! fd contract, the runc-style global flags, `--debug` timing, the JSON error log, `nsboot spec`,
//! the default state directory, and the exec'd `nsboot boot` path.

// The harness re-exports helpers this binary does not use.
#[allow(unused_imports)]
mod common;

use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
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
fn run_cmd(bundle: &Bundle, global: &[&str], id: &str) -> Command {
    let mut cmd = bundle.nsboot();
    cmd.args(global).arg("--root").arg(bundle.state_dir());
    cmd.args(["run", "--bundle"]).arg(bundle.dir()).arg(id);
    cmd
}

fn run_with(bundle: &Bundle, global: &[&str], id: &str) -> Output {
    output(&mut run_cmd(bundle, global, id))
}

/// The XDG_RUNTIME_DIR that [`Bundle::nsboot`] gives nsboot (owned by the mode's user).
fn xdg_of(bundle: &Bundle) -> PathBuf {
    bundle.dir().with_file_name("xdg")
}

#[test]
fn version_prints_the_crate_version() {
    let out = nsboot_plain(&["--version"]);
    let want = format!("nsboot {}\n", env!("CARGO_PKG_VERSION"));
    assert_eq!((out.status, &out.stdout), (0, &want), "{out:?}");
}

#[test]
fn usage_errors_are_one_failure_of_nsboots_own_125() {
    for args in [&["bogus"][..], &["run", "--no-such-flag", "x"], &["--root"]] {
        let out = nsboot_plain(args);
        assert_eq!(out.status, 125, "{args:?}: {out:?}");
        assert!(out.stdout.is_empty(), "{args:?}: {out:?}");
        assert!(
            out.stderr.starts_with("nsboot: ")
                && out.stderr.ends_with(": see 'nsboot --help'\n")
                && out.stderr.lines().count() == 1,
            "{args:?}: {out:?}"
        );
    }
    let help = nsboot_plain(&["--help"]);
    assert_eq!(help.status, 0, "{help:?}");
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
    let flags = "--spec-fd --start-sync-fd --sync-userns-fd --stdio-fds --pass-fd --exec-fd \
                 --setup-root --apply-caps --attached --bundle --controller-fd";
    for flag in flags.split_whitespace() {
        let has = |l: &&str| l.trim_start().split([' ', ',', '=']).any(|w| w == flag);
        let line = out.stdout.lines().find(has).unwrap_or_default();
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
        let mut cmd = run_cmd(&bundle, &["--debug"], &format!("cli-debug-exec-{mode:?}"));
        let out = output(cmd.env("NSBOOT_EXEC_BOOT", "1"));
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
        // The bundle is missing its config.json: nsboot fails before any sandbox exists.
        let missing = bundle.dir().join("config.json");
        fs::remove_file(&missing).unwrap();
        let global = ["--log", log.to_str().unwrap(), "--log-format", "json"];
        let mut cmd = run_cmd(&bundle, &global, &format!("cli-json-{mode:?}"));
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
            "{mode:?}: msg does not name the missing config.json: {obj}"
        );
        assert!(!msg.contains('\n'), "{mode:?}: msg is not one line: {obj}");
        assert_nothing_left(mode, bundle.state_dir());
    }
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
    // Made runnable as the brief of `runc spec` says: our rootfs, a non-interactive app.
    let path = bundle.dir().join("config.json");
    let mut v: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    v["root"]["path"] = json!(common::rootfs());
    v["process"]["args"] = json!(["/bin/sh", "-c", "id -u; echo spec-ok"]);
    v["process"]["terminal"] = json!(false);
    fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap(); // keeps the owner
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

/// `nsboot GLOBAL... spec FLAGS...` in each of `modes` writes a rootless config that runs.
fn assert_spec_is_rootless_and_runs(modes: Vec<Mode>, global: &[&str], flags: &[&str]) {
    for mode in modes {
        let bundle = Bundle::new(mode);
        let config = spec_into(&bundle, global, flags);
        assert_maps_caller_to_root(&config, mode);
        assert_spec_runs(&bundle, &format!("cli-spec-{mode:?}"));
    }
}

#[test]
fn spec_rootless_writes_a_config_the_user_can_run() {
    assert_spec_is_rootless_and_runs(common::modes(), &[], &["--rootless"]);
}

#[test]
fn spec_as_non_root_is_rootless_by_default() {
    assert_spec_is_rootless_and_runs(common::rootless_modes(), &[], &[]);
}

#[test]
fn global_rootless_true_makes_spec_rootless() {
    assert_spec_is_rootless_and_runs(common::modes(), &["--rootless", "true"], &[]);
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
        let one_line = out.stderr.lines().count() == 1;
        let clear = out.stderr.contains("config.json already exists");
        assert!(one_line && clear, "{mode:?}: {}", out.stderr);
        assert_eq!(fs::read(&config).unwrap(), before, "{mode:?}: overwritten");
    }
}

/// Runs `cmd` to completion (see [`output`]) with its stdin a pipe: `during` runs meanwhile
/// (given the pipe and whether the run has ended), then the pipe is closed (an app reading
/// stdin then finishes).
fn run_while<T>(
    mut cmd: Command,
    during: impl FnOnce(&mut fs::File, &dyn Fn() -> bool) -> T,
) -> (Output, T) {
    // O_CLOEXEC: the write end must not leak into nsboot, or the app never sees EOF.
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe");
    cmd.stdin(Stdio::from(r));
    let runner = std::thread::spawn(move || output(&mut cmd));
    let mut w = fs::File::from(w);
    let t = during(&mut w, &|| runner.is_finished());
    drop(w);
    (runner.join().expect("runner thread"), t)
}

/// Polls `cond` until it holds or [`POLL`] passes.
fn poll(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + POLL;
    while !cond() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

#[test]
fn default_state_dir_is_xdg_runtime_dir_when_rootless_and_run_nsboot_as_root() {
    for mode in common::modes() {
        let id = format!("cli-default-root-{mode:?}-{}", std::process::id());
        // The app waits for its stdin to close: the sandbox runs for as long as we look.
        let bundle = Bundle::new(mode).args(&["/bin/cat"]);
        let root = match mode {
            Mode::Root => PathBuf::from("/run/nsboot"),
            _ => xdg_of(&bundle).join("nsboot"),
        };
        let dir = root.join(&id);
        let mut cmd = bundle.nsboot();
        cmd.args(["run", "--bundle"]).arg(bundle.dir()).arg(&id);
        let (out, appeared) = run_while(cmd, |_, ended| {
            poll(|| dir.exists() || ended()) && dir.exists()
        });
        let shown = dir.display();
        assert!(appeared, "{mode:?}: {shown} never appeared: {}", out.stderr);
        assert_eq!(
            (out.status, out.stdout.as_str()),
            (0, ""),
            "{mode:?}: {}",
            out.stderr
        );
        assert!(!dir.exists(), "{mode:?}: {shown} left after the run");
        assert_nothing_left(mode, bundle.state_dir());
    }
}

/// The command lines of the processes started for `bundle` (by its NSBOOT_TEST_BUNDLE mark).
fn bundle_cmdlines(bundle: &Bundle) -> Vec<Vec<String>> {
    let top = bundle.dir().parent().unwrap().display().to_string();
    let mark = format!("NSBOOT_TEST_BUNDLE={top}");
    let split = |b: Vec<u8>| -> Vec<String> {
        b.split(|c| *c == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect()
    };
    let procs = fs::read_dir("/proc").unwrap().flatten().map(|e| e.path());
    procs
        .filter(|p| fs::read(p.join("environ")).is_ok_and(|e| split(e).contains(&mark)))
        .filter_map(|p| fs::read(p.join("cmdline")).ok().map(split))
        .collect()
}

#[test]
fn exec_boot_runs_the_same_bundle_with_the_same_output() {
    for mode in common::modes() {
        let script = "read x; echo \"got $x\"; id -u; echo err >&2; exit 7";
        let bundle = Bundle::new(mode).args(&["/bin/sh", "-c", script]);
        for exec in [false, true] {
            let mut cmd = run_cmd(&bundle, &[], &format!("cli-exec-{mode:?}-{exec}"));
            if exec {
                cmd.env("NSBOOT_EXEC_BOOT", "1");
            }
            // While the app waits for its input: the caller and its supervisor both carry the
            // harness's mark in their environment; only an exec'd supervisor runs `nsboot boot`.
            let (out, (seen, procs)) = run_while(cmd, |stdin, ended| {
                let mut procs = Vec::new();
                let mut seen = false;
                poll(|| {
                    procs = bundle_cmdlines(&bundle);
                    seen = procs.len() >= 2 && (!exec || procs.iter().any(|a| is_boot(a)));
                    seen || ended()
                });
                let _ = stdin.write_all(b"hello\n");
                (seen, procs)
            });
            let what = format!("{mode:?} NSBOOT_EXEC_BOOT={exec}");
            assert!(seen, "{what}: no supervisor seen: {procs:?} {}", out.stderr);
            let booted = procs.iter().any(|a| is_boot(a));
            assert_eq!(booted, exec, "{what}: supervisor command lines {procs:?}");
            assert_eq!(
                (out.status, out.stdout.as_str(), out.stderr.as_str()),
                (7, "got hello\n0\n", "err\n"),
                "{what}"
            );
            assert_nothing_left(mode, bundle.state_dir());
        }
    }
}

fn is_boot(args: &[String]) -> bool {
    args.get(1).is_some_and(|s| s == "boot")
}
