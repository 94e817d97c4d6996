//! Checkpoint and restore through CRIU's command line (`criu dump`, `criu restore`), as runc
//! drives it over RPC.
//!
//! What is dumped: the application's process tree, rooted at the application (pid 1 of its own
//! pid namespace), with the namespaces it does not share with the host (user, mount, pid, net,
//! ipc, uts). A network, ipc or uts namespace joined by path (a pod's) is left out: CRIU runs
//! inside it, and a restore puts the application back into the namespace at the spec's path
//! (`joined.rs`); another type joined by path is refused. The supervisor is not dumped: it
//! holds only nsboot's own state, which a restore makes anew (`restore.rs`).
//!
//! Mounts whose source CRIU cannot see inside the container's mount namespace (nsboot binds
//! /dev/null & co. from the host, the spec's bind mounts) are declared external under their
//! destination, as runc declares them (`--ext-mount-map DEST:DEST`); a restore maps them back
//! (`record.rs`: what nsboot keeps beside CRIU's images). A terminal's pty is external too, and
//! a restore gives the application a new one (`tty.rs`).

use std::path::{Path, PathBuf};

mod joined;
mod record;
mod restore;
mod tty;
pub use joined::ExternalNs;
use record::stdio_key;
pub use record::{external_mounts, External, Record, RECORD};
pub use restore::{restore, RestoreOptions};
use std::process::{Command, Stdio};
pub use tty::TtyError;

use oci_spec::runtime::LinuxNamespaceType;
use serde::{Deserialize, Serialize};

/// The flags `checkpoint` and `restore` share (runc's), handed to CRIU as they are.
#[derive(Debug, Clone, Default)]
pub struct Shared {
    /// Where CRIU writes its log and work files; the image directory when absent.
    pub work_path: Option<PathBuf>,
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    pub auto_dedup: bool,
    pub manage_cgroups_mode: Option<String>,
}

impl Shared {
    /// A cgroup mode, when given, is one CRIU knows.
    fn check(&self) -> Result<(), CriuError> {
        match &self.manage_cgroups_mode {
            Some(m) if !CGROUP_MODES.contains(&m.as_str()) => {
                Err(flag("manage-cgroups-mode", m, CGROUP_MODES))
            }
            _ => Ok(()),
        }
    }

    /// CRIU's work directory: --work-path, else the images'.
    fn work_dir(&self, images: &Path) -> PathBuf {
        self.work_path.clone().unwrap_or_else(|| images.into())
    }

    /// The flags that are set, on `cmd`; --shell-job also when `shell_job` (the images').
    fn add_to(&self, cmd: &mut Command, shell_job: bool) {
        for (on, f) in [
            (self.tcp_established, "--tcp-established"),
            (self.ext_unix_sk, "--ext-unix-sk"),
            (self.shell_job || shell_job, "--shell-job"),
            (self.file_locks, "--file-locks"),
            (self.auto_dedup, "--auto-dedup"),
        ] {
            if on {
                cmd.arg(f);
            }
        }
    }
}

/// runc's checkpoint flags, as `criu dump` takes them.
#[derive(Debug, Clone, Default)]
pub struct DumpOptions {
    pub image_path: PathBuf,
    pub shared: Shared,
    pub leave_running: bool,
    /// runc's --tcp-skip-in-flight and --link-remap, handed to CRIU as is.
    pub tcp_skip_in_flight: bool,
    pub link_remap: bool,
    pub pre_dump: bool,
    pub parent_path: Option<PathBuf>,
    /// Namespace types (`network`, ...) whose contents are not dumped (runc's --empty-ns).
    pub empty_ns: Vec<String>,
    /// The namespaces the spec joined by path: not the container's to dump.
    pub joined: Vec<(LinuxNamespaceType, PathBuf)>,
    /// The spec lists no pid namespace: the container runs in the runtime's.
    pub host_pid: bool,
}

#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
pub enum CriuError {
    #[error("checkpoint and restore need CRIU: `criu` was not found in PATH: install it (Debian: apt-get install criu)")]
    Missing,
    #[error("container {id}: {what} {path}: {why}")]
    Dir {
        id: String,
        what: String,
        path: PathBuf,
        why: String,
    },
    #[error("container {id}: running criu: {why}")]
    Spawn { id: String, why: String },
    #[error("criu {action} of container {id} failed ({how}): {error}; see {log}")]
    Failed {
        id: String,
        action: String,
        how: String,
        error: String,
        log: PathBuf,
    },
    #[error("--{flag} {value:?} is not one of {allowed}")]
    Flag {
        flag: String,
        value: String,
        allowed: String,
    },
    #[error("container {id}: the application's mounts (/proc/{pid}/mountinfo): {why}")]
    Mounts { id: String, pid: i32, why: String },
    #[error("restore of container {id}: {why}")]
    Restore { id: String, why: String },
    #[error("checkpoint of container {id}: it runs in the runtime's pid namespace (its spec lists none), and nsboot restores a container as pid 1 of a pid namespace of its own: add {{\"type\":\"pid\"}} to linux.namespaces to checkpoint it")]
    HostPid { id: String },
    #[error("checkpoint of container {id}: its {typ} namespace was joined by path ({path}): CRIU dumps only namespaces the container's user namespace owns, and restores them as new ones (nsboot takes only joined network, ipc and uts namespaces as external): give the container a {typ} namespace of its own to checkpoint it")]
    Joined {
        id: String,
        typ: String,
        path: PathBuf,
    },
    #[error(transparent)]
    Tty(#[from] TtyError),
}

/// `--manage-cgroups-mode` values CRIU knows.
pub(crate) const CGROUP_MODES: &[&str] = &["soft", "full", "strict", "ignore"];
/// `--empty-ns` values, runc's names for CRIU's.
const EMPTY_NS: &[&str] = &["network"];

/// Dumps the tree of `app` (the container's application, a host pid) into the image
/// directory; unless `leave_running`, CRIU kills the tree once dumped.
pub fn dump(id: &str, app: i32, rootfs: &Path, o: &DumpOptions) -> Result<(), CriuError> {
    let criu = find_criu().ok_or(CriuError::Missing)?;
    o.shared.check()?;
    for ns in &o.empty_ns {
        if !EMPTY_NS.contains(&ns.as_str()) {
            return Err(flag("empty-ns", ns, EMPTY_NS));
        }
    }
    // A namespace joined by path is someone else's (a pod's network): CRIU requires every
    // namespace it dumps to be owned by the container's user namespace (nsboot always has
    // one), and would restore it as a new one.
    if o.host_pid {
        return Err(CriuError::HostPid { id: id.into() });
    }
    // A network, ipc or uts namespace joined by path (a pod's) is left out of the images, and a
    // restore puts the application back into the spec's (`joined`).
    let mut external_ns = Vec::new();
    for (typ, path) in &o.joined {
        let Some(ns) = ExternalNs::of(*typ) else {
            return Err(CriuError::Joined {
                id: id.into(),
                typ: format!("{typ:?}").to_lowercase(),
                path: path.clone(),
            });
        };
        external_ns.push(ns);
    }
    let dir_err = |what: &str, path: &Path, e: std::io::Error| CriuError::Dir {
        id: id.into(),
        what: what.into(),
        path: path.into(),
        why: e.to_string(),
    };
    std::fs::create_dir_all(&o.image_path)
        .map_err(|e| dir_err("image directory", &o.image_path, e))?;
    let work = o.shared.work_dir(&o.image_path);
    std::fs::create_dir_all(&work).map_err(|e| dir_err("work directory", &work, e))?;

    let mountinfo = std::fs::read_to_string(format!("/proc/{app}/mountinfo")).map_err(|e| {
        CriuError::Mounts {
            id: id.into(),
            pid: app,
            why: e.to_string(),
        }
    })?;
    let action = if o.pre_dump { "pre-dump" } else { "dump" };
    let log_name = format!("{action}.log");
    let mut cmd = Command::new(criu);
    cmd.arg(action)
        .arg("--tree")
        .arg(app.to_string())
        .arg("--images-dir")
        .arg(&o.image_path)
        .arg("--work-dir")
        .arg(&work)
        .args(["--log-file", &log_name, "-v4"])
        .arg("--root")
        .arg(rootfs);
    let shell_job = o.shared.shell_job;
    o.shared.add_to(&mut cmd, false);
    for (on, flag) in [
        (o.leave_running, "--leave-running"),
        (o.tcp_skip_in_flight, "--tcp-skip-in-flight"),
        (o.link_remap, "--link-remap"),
    ] {
        if on {
            cmd.arg(flag);
        }
    }
    if let Some(p) = &o.parent_path {
        cmd.arg("--prev-images-dir").arg(p);
    }
    if let Some(m) = &o.shared.manage_cgroups_mode {
        cmd.arg(format!("--manage-cgroups={m}"));
    } else {
        cmd.arg("--manage-cgroups");
    }
    if !o.empty_ns.is_empty() {
        cmd.args(["--empty-ns", "net"]);
    }
    // CRIU runs inside them, and so leaves them out of the images as the host's.
    joined::enter_app(app, &external_ns)
        .map_err(|(file, e)| dir_err("entering the namespace", &file, e))?;
    let mut externals = external_mounts(&mountinfo);
    let shown = joined::shown_mounts(&mountinfo, &external_ns, &externals);
    externals.extend(shown);
    for m in &externals {
        cmd.arg("--ext-mount-map").arg(format!("{0}:{0}", m.dest));
    }
    // What a restore needs besides CRIU's images: where each external mount came from, and
    // what the application's stdio was (the engine's pipes, a file outside the container),
    // which a restore hands over anew (`--inherit-fd`).
    let stdio: Vec<String> = (0..3).map(|fd| stdio_key(app, fd, &mountinfo)).collect();
    let mut declared = Vec::new();
    for key in stdio.iter().filter(|k| k.starts_with("file[")) {
        if !declared.contains(key) {
            cmd.arg("--external").arg(key);
            declared.push(key.clone());
        }
    }
    // The terminal's master is the engine's, outside the tree: the pty is external.
    let tty = tty::key(app);
    if let Some(key) = &tty {
        cmd.arg("--external").arg(key);
    }
    let record = Record {
        shell_job,
        mounts: externals,
        stdio,
        external_ns,
        tty,
    };
    let body = serde_json::to_vec_pretty(&record).unwrap_or_default();
    let rec = o.image_path.join(RECORD);
    std::fs::write(&rec, body).map_err(|e| dir_err("writing", &rec, e))?;
    run(id, action, cmd, &work.join(&log_name))
}

pub(crate) fn flag(flag: &str, value: &str, allowed: &[&str]) -> CriuError {
    CriuError::Flag {
        flag: flag.into(),
        value: value.into(),
        allowed: allowed.join(", "),
    }
}

/// Runs criu with its output in the log, and turns a failure into one line: the first
/// `Error` line CRIU logged (the cause; the later ones are its consequences).
pub(crate) fn run(id: &str, action: &str, mut cmd: Command, log: &Path) -> Result<(), CriuError> {
    // A restore's criu keeps the caller's stdio (`output` would make pipes of it):
    // `--inherit-fd fd[N]:..` names its own fds.
    if action == "restore" {
        cmd.stdin(Stdio::inherit())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit());
    } else {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
    }
    let out = cmd.output().map_err(|e| CriuError::Spawn {
        id: id.into(),
        why: e.to_string(),
    })?;
    if out.status.success() {
        return Ok(());
    }
    let logged = std::fs::read_to_string(log).unwrap_or_default();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let error = first_error(&logged)
        .or_else(|| first_error(&stderr))
        .or_else(|| {
            stderr
                .lines()
                .find(|l| !l.trim().is_empty())
                .map(str::to_string)
        })
        .unwrap_or_else(|| "no error logged".into());
    Err(CriuError::Failed {
        id: id.into(),
        action: action.into(),
        how: exit_how(&out.status),
        error,
        log: log.into(),
    })
}

fn exit_how(status: &std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit {c}"),
        (_, Some(s)) => format!("killed by signal {s}"),
        _ => "unknown status".into(),
    }
}

/// The first `Error (file:line): text` line of a CRIU log, as `text`; else the first line
/// naming an error (the tools CRIU runs, `ip` among them, log theirs bare, and harmless ones).
fn first_error(log: &str) -> Option<String> {
    let line = log
        .lines()
        .find(|l| l.contains("Error ("))
        .or_else(|| log.lines().find(|l| l.contains("Error")))?;
    let text = match line.find("): ") {
        Some(i) if line[..i].contains("Error (") => &line[i + 3..],
        _ => line.trim(),
    };
    Some(crate::sys::log::cut(text.trim(), 300))
}

/// The criu binary: `criu` in PATH (as runc finds it).
pub(crate) fn find_criu() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join("criu"))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_error_line_is_the_message() {
        let log = "(00.1) x\n(00.2) Error (criu/vdso.c:381): vdso: Unexpected rt vDSO area bounds\n\
                   (00.3) Error (criu/crtools.c:260): Could not initialize kernel features detection.\n";
        assert_eq!(
            first_error(log).as_deref(),
            Some("vdso: Unexpected rt vDSO area bounds")
        );
        assert_eq!(first_error("all good\n"), None);
        let log = "(00.1) Running ip addr restore\nError: ipv4: Address already assigned.\n\
                   (00.4) 1: Error (criu/mount.c:3): mnt: x\n(00.5) Error (criu/cr-restore.c:1): Restoring FAILED.\n";
        assert_eq!(first_error(log).as_deref(), Some("mnt: x"));
    }
}
