//! What every engine test shares: the two runtimes, a step run with each of them and compared
//! (and recorded for scripts/engines-table), a temp dir of the test's own that everything lives
//! in, a daemon started with a deadline, and the check that nothing is left at the end.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::common::{self, Output};

/// A command of a step that takes longer is killed: a hang is a failed step, not a hung suite.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(25);
/// How long a daemon may take to answer on its socket.
const START_TIMEOUT: Duration = Duration::from_secs(30);
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

/// A temp dir of one test's own (short: sockets live below it), and the daemons it runs.
pub struct Sandbox {
    pub top: PathBuf,
    daemons: Vec<Daemon>,
    /// Cgroup parents (relative to each hierarchy's root) the test's containers go below.
    cgroups: Vec<String>,
    finished: bool,
}

struct Daemon {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Sandbox {
    pub fn new(engine: &str) -> Sandbox {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let top = std::env::temp_dir().join(format!("nsbt-{engine}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&top);
        fs::create_dir_all(&top).unwrap_or_else(|e| panic!("mkdir {}: {e}", top.display()));
        Sandbox {
            top,
            daemons: Vec::new(),
            cgroups: Vec::new(),
            finished: false,
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.top.join(rel)
    }

    /// The test's containers go below cgroup `parent` (in every hierarchy): removed at the end.
    pub fn own_cgroup(&mut self, parent: &str) {
        self.cgroups.push(parent.trim_matches('/').to_string());
    }

    /// Start `cmd` as a daemon (its own process group, output to a log below top) and wait
    /// until `ready` holds; panics with the log when it does not within the deadline.
    pub fn start_daemon(&mut self, name: &str, cmd: &mut Command, mut ready: impl FnMut() -> bool) {
        let log = self.top.join(format!("{name}.log"));
        let file = fs::File::create(&log).unwrap();
        cmd.stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .env("PATH", PATH);
        std::os::unix::process::CommandExt::process_group(cmd, 0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        self.daemons.push(Daemon {
            name: name.to_string(),
            child,
            log,
        });
        let d = self.daemons.last_mut().unwrap();
        let up = wait_until(START_TIMEOUT, || {
            matches!(d.child.try_wait(), Ok(None)) && ready()
        });
        assert!(
            up,
            "{name} did not come up within {START_TIMEOUT:?}: {:?}\n{}",
            d.child.try_wait(),
            tail(&d.log)
        );
    }

    /// Stop the daemons (SIGTERM, then SIGKILL after a grace period), end whatever still runs
    /// on our behalf, unmount, remove top; then require that nothing was left.
    pub fn finish(mut self) {
        let left = self.teardown();
        self.finished = true;
        assert!(left.is_empty(), "left behind: {left:?}");
    }

    /// The teardown, returning what had to be cleaned up by force (empty when the engine
    /// removed everything itself).
    fn teardown(&mut self) -> Vec<String> {
        let mut left = Vec::new();
        for d in self.daemons.iter_mut().rev() {
            let pid = Pid::from_raw(d.child.id() as i32);
            let _ = kill(pid, Signal::SIGTERM);
            let gone = wait_until(Duration::from_secs(15), || {
                matches!(d.child.try_wait(), Ok(Some(_)))
            });
            if !gone {
                left.push(format!("{} ignored SIGTERM", d.name));
                let _ = kill(pid, Signal::SIGKILL);
                let _ = d.child.wait();
            }
        }
        // The engines' own cleanup (conmon's exit command, a shim's last exit) may still run.
        wait_until(Duration::from_secs(10), || {
            processes_of(&self.top).is_empty()
        });
        let procs = processes_of(&self.top);
        if !procs.is_empty() {
            left.push(format!("processes {procs:?}"));
            for (pid, cmdline) in &procs {
                let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
                // A shim killed leaves its socket in containerd's fixed dir: remove it.
                if let Some(sock) = shim_socket(cmdline) {
                    let _ = fs::remove_file(sock);
                }
            }
            wait_until(Duration::from_secs(5), || {
                processes_of(&self.top).is_empty()
            });
        }
        let mounts = mounts_under(&self.top);
        if !mounts.is_empty() {
            left.push(format!("mounts {mounts:?}"));
            for m in mounts.iter().rev() {
                let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
            }
        }
        for parent in &self.cgroups {
            let dirs = cgroup_dirs(parent);
            // Deepest first: a cgroup dir is removed with rmdir once its children are.
            for d in dirs.iter().rev() {
                let _ = fs::remove_dir(d);
            }
            let kept: Vec<_> = dirs.iter().filter(|d| d.exists()).collect();
            if !kept.is_empty() {
                left.push(format!("cgroups {kept:?}"));
            }
        }
        if let Err(e) = fs::remove_dir_all(&self.top) {
            left.push(format!("cannot remove {}: {e}", self.top.display()));
        }
        left
    }

    /// The last lines of every daemon's log (for a failure message).
    pub fn logs(&self) -> String {
        self.daemons
            .iter()
            .map(|d| format!("--- {} ---\n{}", d.name, tail(&d.log)))
            .collect()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
        let left = self.teardown();
        if !left.is_empty() {
            eprintln!("cleaned up by force: {left:?}");
        }
    }
}

fn tail(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// What is left of a sandbox whose top was `top`: its dir, its processes, its mounts.
pub fn leftovers_of(top: &Path) -> Vec<String> {
    let mut left: Vec<String> = processes_of(top)
        .into_iter()
        .map(|(pid, cmd)| format!("process {pid} {cmd}"))
        .collect();
    left.extend(mounts_under(top).into_iter().map(|m| format!("mount {m}")));
    if top.exists() {
        left.push(format!("dir {}", top.display()));
    }
    left
}

/// The socket a containerd runc v2 shim listens on, from its command line: containerd 1.6
/// names it by the sha256 of "ADDRESS/NAMESPACE/ID", in /run/containerd/s whatever its root.
pub fn shim_socket(cmdline: &str) -> Option<PathBuf> {
    let words: Vec<&str> = cmdline.split_whitespace().collect();
    if !words.first()?.ends_with("containerd-shim-runc-v2") {
        return None;
    }
    let flag = |f: &str| Some(*words.get(words.iter().position(|w| *w == f)? + 1)?);
    let key = format!(
        "{}/{}/{}",
        flag("-address")?,
        flag("-namespace")?,
        flag("-id")?
    );
    let mut sum = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    sum.stdin.take()?.write_all(key.as_bytes()).ok()?;
    let out = sum.wait_with_output().ok()?;
    let hex = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()?
        .to_string();
    Some(Path::new("/run/containerd/s").join(hex))
}

/// The dirs of cgroup `parent` and below it, in every hierarchy, parents first.
fn cgroup_dirs(parent: &str) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir("/sys/fs/cgroup")
        .into_iter()
        .flatten()
        .flatten()
        .map(|h| h.path().join(parent))
        .filter(|d| d.is_dir())
        .collect();
    let mut i = 0;
    while i < dirs.len() {
        let subdirs: Vec<PathBuf> = fs::read_dir(&dirs[i])
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        dirs.extend(subdirs);
        i += 1;
    }
    dirs
}

/// Mount points at or below `dir`, from our mountinfo.
fn mounts_under(dir: &Path) -> Vec<String> {
    let dir = dir.to_string_lossy();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|m| m == &*dir || m.starts_with(&format!("{dir}/")))
        .collect()
}

/// Processes that name `dir` in their command line (daemons, shims, conmon), and all their
/// descendants (the containers): what a test left running.
fn processes_of(dir: &Path) -> Vec<(i32, String)> {
    // With the slash: top `...-1` must not match a sibling test's `...-10`.
    let dir = format!("{}/", dir.display());
    let me = std::process::id() as i32;
    let all: Vec<(i32, i32, String)> = fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| *pid != me)
        .filter_map(|pid| {
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let ppid = stat
                .rsplit(')')
                .next()?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            let cmd = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            Some((pid, ppid, String::from_utf8_lossy(&cmd).replace('\0', " ")))
        })
        .collect();
    let mut ours: Vec<i32> = all
        .iter()
        .filter(|(_, _, cmd)| cmd.contains(&dir))
        .map(|(pid, _, _)| *pid)
        .collect();
    let mut i = 0;
    while i < ours.len() {
        let parent = ours[i];
        ours.extend(
            all.iter()
                .filter(|(pid, ppid, _)| *ppid == parent && !ours.contains(pid))
                .map(|(pid, _, _)| *pid)
                .collect::<Vec<_>>(),
        );
        i += 1;
    }
    all.into_iter()
        .filter(|(pid, _, _)| ours.contains(pid))
        .map(|(pid, _, cmd)| (pid, cmd))
        .collect()
}
