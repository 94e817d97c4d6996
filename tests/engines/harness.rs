//! What every engine test shares: the two runtimes, a step run with each of them and compared
//! (and recorded for scripts/engines-table), and the checks steps make of what they saw.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{self, Output};

/// A command of a step that takes longer is killed: a hang is a failed step, not a hung suite.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(25);
/// Where each step's outcome is appended (one tab-separated line) when the variable is set.
const TABLE_ENV: &str = "NSBOOT_ENGINES_TABLE";
pub const PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// The OCI runtime an engine drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    Runc,
    Nsboot,
}

impl Runtime {
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Runc => "runc",
            Runtime::Nsboot => "nsboot",
        }
    }

    /// The binary: Debian's runc, and the nsboot cargo built.
    pub fn path(self) -> PathBuf {
        match self {
            Runtime::Runc => PathBuf::from("/usr/sbin/runc"),
            Runtime::Nsboot => PathBuf::from(env!("CARGO_BIN_EXE_nsboot")),
        }
    }
}

/// A step's outcome with one runtime: Err says what differed from the expectation.
pub type Step = Result<(), String>;

/// Run `step` with runc, then with nsboot, record both, and require both to pass: runc's
/// failure means the setup is broken (so it cannot pass by accident), nsboot's is a gap.
pub fn compare(engine: &str, name: &str, mut step: impl FnMut(Runtime) -> Step) {
    let runc = step(Runtime::Runc);
    let nsboot = step(Runtime::Nsboot);
    record(engine, name, &runc, &nsboot);
    if let Err(e) = &runc {
        panic!("{engine} {name} fails with runc, so the test setup is broken: {e}");
    }
    if let Err(e) = &nsboot {
        panic!("{engine} {name} passes with runc but fails with nsboot: {e}");
    }
}

fn record(engine: &str, name: &str, runc: &Step, nsboot: &Step) {
    let cell = |r: &Step| match r {
        Ok(()) => "ok".to_string(),
        Err(e) => format!("FAIL: {}", e.replace(['\n', '\t', '|'], " ")),
    };
    eprintln!(
        "{engine} {name}: runc {} / nsboot {}",
        cell(runc),
        cell(nsboot)
    );
    let Ok(path) = std::env::var(TABLE_ENV) else {
        return;
    };
    let line = format!("{engine}\t{name}\t{}\t{}\n", cell(runc), cell(nsboot));
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("{TABLE_ENV}={path}: {e}"));
    // One write of one short line: O_APPEND keeps the lines of parallel tests whole.
    f.write_all(line.as_bytes()).unwrap();
}

/// A container name for `step` with `rt` that every engine takes (`exec -t` is `exec-t-runc`).
pub fn container_name(step: &str, rt: Runtime) -> String {
    step.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .chain([rt.name()])
        .collect::<Vec<_>>()
        .join("-")
}

/// The engines need root and Debian's packages; None (skip, with one printed line) otherwise.
/// As root in CI a missing package is a broken setup, not a skip.
pub fn available(engine: &str, binaries: &[&str]) -> bool {
    let missing: Vec<&str> = binaries
        .iter()
        .copied()
        .filter(|b| !Path::new(b).exists())
        .collect();
    if !common::is_root() {
        eprintln!("{engine}: the engine tests run as root only: skipping");
        return false;
    }
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{engine}: {missing:?} missing: run scripts/engines-setup.sh as root"
    );
    eprintln!("{engine}: {missing:?} missing: skipping (scripts/engines-setup.sh installs it)");
    false
}

/// `cmd` run to completion within [`STEP_TIMEOUT`], stdin closed.
pub fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null());
    common::output_within(cmd, STEP_TIMEOUT)
}

/// `args` run under `script`, which gives them a pty as their terminal (for -t, -it).
pub fn run_in_pty(cmd: &mut Command, args: &[String]) -> Output {
    let line = args
        .iter()
        .map(|s| format!("'{}'", s.replace('\'', r"'\''")))
        .collect::<Vec<_>>()
        .join(" ");
    run(cmd.args(["-qec", &line, "/dev/null"]))
}

/// What an exec into a running `sleep 1000` runs: it must see the app as its pid 1 and have its
/// exit status (5) passed back.
pub const EXEC_SCRIPT: &str =
    "echo $((6 * 7)); ps -o pid,args | grep -q '^ *1 sleep 1000' && echo init-is-pid-1; exit 5";
pub const EXEC_PRINTS: &str = "42\ninit-is-pid-1\n";

/// Err unless `out` printed `want` exactly.
pub fn expect_stdout(out: &Output, want: &str, what: &str) -> Step {
    match out.stdout == want {
        true => Ok(()),
        false => Err(format!("{what} printed {:?}, not {want:?}", out.stdout)),
    }
}

/// Err unless `out` printed a pty's name (`tty` in a container with a terminal).
pub fn on_a_pty(out: &Output, what: &str) -> Step {
    match out.stdout.contains("/dev/pts/") {
        true => Ok(()),
        false => Err(format!("{what}: no terminal: {:?}", out.stdout.trim())),
    }
}

/// Err naming `what` unless `out` ended with `status`.
pub fn status(out: &Output, want: i32, what: &str) -> Step {
    if out.status == want {
        return Ok(());
    }
    Err(format!(
        "{what}: exit status {} (want {want}): {}{}",
        out.status,
        first_lines(&out.stderr),
        if out.stderr.trim().is_empty() {
            first_lines(&out.stdout)
        } else {
            String::new()
        }
    ))
}

/// Err naming `what` unless `out` succeeded with `want` in its stdout.
pub fn prints(out: &Output, want: &str, what: &str) -> Step {
    status(out, 0, what)?;
    if out.stdout.contains(want) {
        return Ok(());
    }
    Err(format!(
        "{what}: printed {:?}, not {want:?}",
        out.stdout.trim()
    ))
}

/// The first two lines of `text`, trimmed: enough to name a failure in a table cell.
pub fn first_lines(text: &str) -> String {
    let lines: Vec<&str> = text.trim().lines().take(2).collect();
    let s = lines.join(" / ");
    match s.char_indices().nth(240) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s,
    }
}

/// Wait until `ready` holds, up to `timeout`.
pub fn wait_until(timeout: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if ready() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Err unless `out` printed the namespace `want` (a `readlink /proc/self/ns/KIND` in the
/// container that joined) and that is not the host's: a runtime that drops the path and stays
/// in the host's namespace must not pass because two containers both see the host's.
pub fn joined_ns(out: &Output, want: &str, what: &str) -> Step {
    let kind = want.split(':').next().unwrap_or_default();
    let host = fs::read_link(format!("/proc/self/ns/{kind}")).map(|p| p.display().to_string());
    if host.as_deref().is_ok_and(|h| h == want) {
        return Err(format!(
            "{what}: the container joined runs in the host's namespace {want}"
        ));
    }
    prints(out, want, what)?;
    match out.stdout.trim() == want {
        true => Ok(()),
        false => Err(format!("{what}: in {:?}, not {want}", out.stdout.trim())),
    }
}

/// The host pid's process as the state reports it: its command line, and whether it lives in
/// a pid namespace other than ours (the container's init does; a runtime's supervisor does not
/// have the container's command line).
pub fn describe_pid(pid: i32) -> (String, bool) {
    let cmdline = fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .replace('\0', " ")
                .trim()
                .to_string()
        })
        .unwrap_or_default();
    let ns = |p: &str| fs::read_link(format!("/proc/{p}/ns/pid")).ok();
    let own = ns(&pid.to_string()).is_some_and(|n| Some(n) != ns("self"));
    (cmdline, own)
}

/// Err unless host pid `pid` is the container's `sleep` in a pid namespace of its own.
pub fn is_container_init(pid: i32, what: &str) -> Step {
    let (cmdline, own_ns) = describe_pid(pid);
    if cmdline.starts_with("sleep") && own_ns {
        return Ok(());
    }
    // The program and its first two arguments name it well enough for a table cell.
    let short: Vec<&str> = cmdline.split_whitespace().take(3).collect();
    Err(format!(
        "{what}: pid {pid} is `{} ...` (own pid namespace: {own_ns}), not the container's sleep",
        short.join(" ")
    ))
}
