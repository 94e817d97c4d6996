//! A temp dir of one test's own that everything of an engine lives in, the daemons it runs
//! (started with a deadline, stopped with a grace period), and the teardown that ends, unmounts
//! and removes whatever is left, reporting it: after a test, no process, mount, cgroup or dir.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::harness::{wait_until, PATH};

/// How long a daemon may take to answer on its socket.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A temp dir of one test's own (short: sockets live below it), and the daemons it runs.
pub struct Sandbox {
    pub top: PathBuf,
    daemons: Vec<Daemon>,
    /// Cgroup parents (relative to each hierarchy's root) the test's containers go below.
    cgroups: Vec<String>,
    /// Pid files of helpers an engine leaves running on purpose (rootless podman's pause).
    pid_files: Vec<PathBuf>,
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
            pid_files: Vec::new(),
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

    /// The process whose pid `pid_file` holds (if it exists then) is ended at teardown.
    pub fn kill_at_teardown(&mut self, pid_file: PathBuf) {
        self.pid_files.push(pid_file);
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
        for f in &self.pid_files {
            let pid = fs::read_to_string(f)
                .ok()
                .and_then(|s| s.trim().parse().ok());
            if let Some(pid) = pid {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
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
            // Deepest first: a cgroup dir is removed with rmdir once its children are. The
            // kernel lets one go only once its last process is released: give it a moment.
            wait_until(Duration::from_secs(2), || {
                for d in dirs.iter().rev() {
                    let _ = fs::remove_dir(d);
                }
                dirs.iter().all(|d| !d.exists())
            });
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

    /// The pid of daemon `name`, while it runs.
    pub fn daemon_pid(&self, name: &str) -> Option<i32> {
        let d = self.daemons.iter().find(|d| d.name == name)?;
        Some(d.child.id() as i32)
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
