//! The container state store: one entry per id under the state root, locked while a command
//! works on it. A created container's entry is a directory: state.json, its lock, the start
//! marker and the controller socket. A foreground run's (`run`, `do`) is one file, its
//! state.json, which is also its lock: it needs nothing else, and a directory is dear on a
//! disk file system (ext4 gives it a block at mkdir and frees it at rmdir, with `-o discard` a
//! device discard the caller waits for, on the start-up path).

pub mod lifecycle;

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::sys::Errno;

mod entry;
mod procs;
mod read;
mod root;
mod sweep;
pub use entry::{create, create_foreground, lock_existing, open, private_name, remove_at, Entry};
use read::with_started;
pub use read::{list, load};
pub use root::{fd as root_fd, path as default_root, shown, tmp_dir};
pub use sweep::{remove_debris, sweep};

#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
pub enum StateError {
    #[error("container {0} already exists in {root}: pick another id or `nsboot delete {0}`", cut(.id))]
    Exists { id: String, root: PathBuf },
    #[error("container {} does not exist in {root}", cut(.id))]
    NotFound { id: String, root: PathBuf },
    #[error("state directory {path}: {errno}{hint}")]
    Io {
        path: PathBuf,
        errno: Errno,
        hint: String,
    },
    #[error(
        "state directory {path} {why}: remove it, or choose another with --root or XDG_RUNTIME_DIR"
    )]
    UnsafeRoot { path: PathBuf, why: String },
    #[error("invalid container id {:?}: {why}: use letters, digits and + - . _ (at most 1024)", cut(.id))]
    InvalidId { id: String, why: String },
    #[error("container {} runs in the foreground (nsboot run or do): only a created container can be started", cut(.id))]
    Foreground { id: String },
    #[error("container {} is busy: another nsboot command holds its lock in {root}; retry when it is done", cut(.id))]
    Busy { id: String, root: PathBuf },
    #[error("the state of container {0} in {path} is unreadable ({why}): `nsboot delete --force {0}` removes it", cut(.id))]
    Corrupt {
        id: String,
        path: PathBuf,
        why: String,
    },
}

/// The OCI state (plus nsboot's own fields).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub id: String,
    pub status: String,
    pub pid: i32,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<std::collections::HashMap<String, String>>,
    /// A foreground run's (`run`, `do`): removed by a later run should its caller and
    /// supervisor both be killed (`sweep`). Not part of the OCI state shown.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub foreground: bool,
    /// The container's cgroup, when nsboot made one: `delete` removes it, `pause`, `update`,
    /// `events` and `kill --all` act through it. Not part of the OCI state shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<crate::cgroup::Cgroup>,
    /// The supervisor's host pid; `pid` is the application's once known. 0 in a state written
    /// before this field: `pid` is then the supervisor's. Not part of the OCI state shown.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub supervisor: i32,
    /// `create`'s application (the `--pid-file` pid, the engine's child, not the supervisor's
    /// descendant): its start time (/proc/PID/stat's 22nd field), which tells it from a process
    /// that reused its pid. 0: a foreground run's, found as the supervisor's child. Not part of
    /// the OCI state shown.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub app_start: u64,
}

fn is_zero(v: &i32) -> bool {
    *v == 0
}

fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

impl State {
    /// A new container's state, created now by the current user.
    pub fn new(
        id: &str,
        status: &str,
        pid: i32,
        bundle: PathBuf,
        rootfs: PathBuf,
        annotations: Option<std::collections::HashMap<String, String>>,
    ) -> State {
        State {
            oci_version: "1.0.2".into(),
            id: id.into(),
            status: status.into(),
            pid,
            bundle,
            rootfs,
            created: crate::sys::log::now_rfc3339(),
            owner: nix::unistd::geteuid().to_string(),
            annotations,
            foreground: false,
            cgroup: None,
            supervisor: 0,
            app_start: 0,
        }
    }

    /// The supervisor's host pid: what lives as long as the container and is killed to end it.
    pub fn supervisor_pid(&self) -> i32 {
        if self.supervisor > 0 {
            self.supervisor
        } else {
            self.pid
        }
    }
}

/// The state root (see `root::path` for which), made if needed and checked: the path that
/// reaches it through its opened fd, or why it cannot be used.
pub fn root_dir(flag: Option<&Path>) -> Result<PathBuf, StateError> {
    root::open(flag)
}

fn io(path: &Path, e: impl Into<Errno>) -> StateError {
    let errno = e.into();
    let hint = match errno.0 {
        libc::EACCES | libc::EROFS => {
            ": make it writable for you or choose another with --root".into()
        }
        libc::ENOSPC => ": the file system is full".into(),
        libc::EMFILE | libc::ENFILE => crate::sys::limits::hint(&errno),
        _ => ": choose a writable state directory with --root".into(),
    };
    StateError::Io {
        path: shown(path),
        errno,
        hint,
    }
}

/// An id as printed back in a message (one is up to 1024 characters, a rejected one any).
pub fn cut(id: &str) -> String {
    crate::sys::log::cut(id, 64)
}

/// Refuses ids that could escape the state root or confuse a shell (runc's rule).
pub fn validate_id(id: &str) -> Result<(), StateError> {
    crate::spec::validate_id(id).map_err(|e| {
        let why = match e {
            // runc's words, which engines and suites look for.
            _ if id.is_empty() => "container id cannot be empty".into(),
            crate::spec::SpecError::Id { why, .. } => why,
            other => other.to_string(),
        };
        StateError::InvalidId { id: id.into(), why }
    })
}

/// `id`'s NotFound when `e` says `path` does not exist, else the I/O error on `path`.
fn missing_or_io(root: &Path, id: &str, path: &Path, e: std::io::Error) -> StateError {
    if e.kind() == std::io::ErrorKind::NotFound {
        StateError::NotFound {
            id: id.into(),
            root: shown(root),
        }
    } else {
        io(path, e)
    }
}

/// The files of the entry at `path`: its state.json and its lock. A foreground run's entry is
/// one file, both at once.
fn files(path: &Path) -> (PathBuf, PathBuf) {
    if path.is_dir() {
        (path.join("state.json"), path.join("lock"))
    } else {
        (path.into(), path.into())
    }
}

/// Removes an entry of either kind, or a private one still being built.
pub fn remove_path(path: &Path) -> std::io::Result<()> {
    if fs::symlink_metadata(path)?.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    }
}
