//! Checkpoint through CRIU's command line (`criu dump`), as runc drives it over RPC.
//!
//! What is dumped: the application's process tree, rooted at the application (pid 1 of its own
//! pid namespace), with the namespaces it does not share with the host (user, mount, pid, net,
//! ipc, uts). The supervisor is not dumped: it holds only nsboot's own state (the controller
//! socket, the start-sync pipes), which a restore makes anew by nsboot's create path.
//!
//! Mounts whose source CRIU cannot see inside the container's mount namespace (nsboot binds
//! /dev/null & co. from the host, the spec's bind mounts) are declared external under their
//! destination, as runc declares them (`--ext-mount-map DEST:DEST`); a restore maps them back.

use std::path::{Path, PathBuf};

mod restore;
pub use restore::{restore, RestoreOptions};
use std::process::{Command, Stdio};

use oci_spec::runtime::LinuxNamespaceType;
use serde::{Deserialize, Serialize};

/// runc's checkpoint flags, as `criu dump` takes them.
#[derive(Debug, Clone, Default)]
pub struct DumpOptions {
    pub image_path: PathBuf,
    /// Where CRIU writes dump.log (and its work files); the image directory when absent.
    pub work_path: Option<PathBuf>,
    pub leave_running: bool,
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    pub pre_dump: bool,
    pub parent_path: Option<PathBuf>,
    pub manage_cgroups_mode: Option<String>,
    /// Namespace types (`network`, ...) whose contents are not dumped (runc's --empty-ns).
    pub empty_ns: Vec<String>,
    /// The namespaces the spec joined by path: not the container's to dump.
    pub joined: Vec<(LinuxNamespaceType, PathBuf)>,
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
    #[error("checkpoint of container {id}: its {typ} namespace was joined by path ({path}): CRIU dumps only namespaces of the container's own user namespace, and would restore it as a new one")]
    Joined {
        id: String,
        typ: String,
        path: PathBuf,
    },
}

/// `--manage-cgroups-mode` values CRIU knows.
pub(crate) const CGROUP_MODES: &[&str] = &["soft", "full", "strict", "ignore"];
/// `--empty-ns` values, runc's names for CRIU's.
const EMPTY_NS: &[&str] = &["network"];

/// Dumps the tree of `app` (the container's application, a host pid) into the image
/// directory; unless `leave_running`, CRIU kills the tree once dumped.
pub fn dump(id: &str, app: i32, rootfs: &Path, o: &DumpOptions) -> Result<(), CriuError> {
    let criu = find_criu().ok_or(CriuError::Missing)?;
    if let Some(m) = &o.manage_cgroups_mode {
        if !CGROUP_MODES.contains(&m.as_str()) {
            return Err(flag("manage-cgroups-mode", m, CGROUP_MODES));
        }
    }
    for ns in &o.empty_ns {
        if !EMPTY_NS.contains(&ns.as_str()) {
            return Err(flag("empty-ns", ns, EMPTY_NS));
        }
    }
    // A namespace joined by path is someone else's (a pod's network): CRIU requires every
    // namespace it dumps to be owned by the container's user namespace (nsboot always has
    // one), and would restore it as a new one.
    if let Some((typ, path)) = o.joined.first() {
        return Err(CriuError::Joined {
            id: id.into(),
            typ: format!("{typ:?}").to_lowercase(),
            path: path.clone(),
        });
    }
    let dir_err = |what: &str, path: &Path, e: std::io::Error| CriuError::Dir {
        id: id.into(),
        what: what.into(),
        path: path.into(),
        why: e.to_string(),
    };
    std::fs::create_dir_all(&o.image_path)
        .map_err(|e| dir_err("image directory", &o.image_path, e))?;
    let work = o.work_path.clone().unwrap_or_else(|| o.image_path.clone());
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
    let shell_job = o.shell_job;
    for (on, flag) in [
        (o.leave_running, "--leave-running"),
        (o.tcp_established, "--tcp-established"),
        (o.ext_unix_sk, "--ext-unix-sk"),
        (shell_job, "--shell-job"),
        (o.file_locks, "--file-locks"),
    ] {
        if on {
            cmd.arg(flag);
        }
    }
    if let Some(p) = &o.parent_path {
        cmd.arg("--prev-images-dir").arg(p);
    }
    if let Some(m) = &o.manage_cgroups_mode {
        cmd.arg(format!("--manage-cgroups={m}"));
    } else {
        cmd.arg("--manage-cgroups");
    }
    if !o.empty_ns.is_empty() {
        cmd.args(["--empty-ns", "net"]);
    }
    let externals = external_mounts(&mountinfo);
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
    let record = Record {
        shell_job,
        mounts: externals,
        stdio,
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

/// CRIU's name for the application's fd `fd`: `pipe:[N]` and `socket:[N]` as they are, a
/// file on a mount outside the container as `file[MNT_ID:INODE]` (hex); "" for what CRIU
/// dumps by itself (a file inside) or what is not there.
fn stdio_key(app: i32, fd: i32, mountinfo: &str) -> String {
    use std::os::unix::fs::MetadataExt;
    let link = format!("/proc/{app}/fd/{fd}");
    let Ok(target) = std::fs::read_link(&link) else {
        return String::new();
    };
    let target = target.to_string_lossy().into_owned();
    if target.starts_with("pipe:") || target.starts_with("socket:") {
        return target;
    }
    let mnt_id = std::fs::read_to_string(format!("/proc/{app}/fdinfo/{fd}"))
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("mnt_id:").map(|v| v.trim().to_string()))
        });
    let inside = |id: &str| mountinfo.lines().any(|l| l.split(' ').next() == Some(id));
    match (mnt_id, std::fs::metadata(&link)) {
        (Some(id), Ok(meta)) if !inside(&id) => {
            let id: u64 = id.parse().unwrap_or(0);
            format!("file[{id:x}:{:x}]", meta.ino())
        }
        _ => String::new(),
    }
}

/// The file nsboot adds to a checkpoint's images (runc's `descriptors.json` holds the stdio).
pub const RECORD: &str = "nsboot.json";

/// What nsboot adds to CRIU's images.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Record {
    /// Dumped with --shell-job (the session and process group lie outside the container).
    #[serde(default)]
    pub shell_job: bool,
    pub mounts: Vec<External>,
    /// /proc/APP/fd/{0,1,2} at dump (`pipe:[123]`, a path).
    pub stdio: Vec<String>,
}

/// An external mount: its destination, and its file system's type and root (the path inside
/// that file system), from which a restore finds its source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct External {
    pub dest: String,
    pub fstype: String,
    pub root: String,
}

/// Mount points (other than the root) whose file system has no mount of its own root in the
/// same namespace: binds from outside, which CRIU can only take as external mounts.
pub fn external_mounts(mountinfo: &str) -> Vec<External> {
    // (device, root, destination, fstype)
    let mounts: Vec<(&str, &str, &str, &str)> = mountinfo
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let sep = f.iter().position(|x| *x == "-")?;
            (f.len() > sep + 1 && sep > 4).then(|| (f[2], f[3], f[4], f[sep + 1]))
        })
        .collect();
    mounts
        .iter()
        .filter(|(dev, root, dest, _)| {
            *dest != "/" && *root != "/" && !mounts.iter().any(|(d, r, ..)| d == dev && *r == "/")
        })
        .map(|(_, root, dest, fstype)| External {
            dest: unescape(dest),
            fstype: (*fstype).into(),
            root: unescape(root),
        })
        .collect()
}

/// mountinfo's octal escapes (`\040` for a space) decoded.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "\
50 46 254:0 /b/rootfs / ro,nodev - ext4 /dev/vda rw
51 50 0:43 / /dev rw - tmpfs tmpfs rw
55 51 0:6 /null /dev/null rw - devtmpfs devtmpfs rw
61 50 0:46 / /sys ro - sysfs sysfs ro
99 50 0:47 / /proc rw - proc proc rw
101 99 0:6 /null /proc/keys rw - devtmpfs devtmpfs rw
104 99 0:47 /bus /proc/bus ro - proc proc rw
110 50 254:0 /etc/my\\040hosts /etc/hosts ro - ext4 /dev/vda rw
";

    #[test]
    fn binds_from_outside_are_external_and_binds_within_are_not() {
        let found: Vec<String> = external_mounts(INFO).into_iter().map(|m| m.dest).collect();
        assert_eq!(found, vec!["/dev/null", "/proc/keys", "/etc/hosts"]);
        assert_eq!(external_mounts(INFO)[2].root, "/etc/my hosts");
        assert_eq!(external_mounts(INFO)[1].fstype, "devtmpfs");
        assert_eq!(unescape("/a\\040b"), "/a b");
    }

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
