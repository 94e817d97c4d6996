//! The container state store: one directory per id under the state root, holding state.json,
//! locked while a command works on it.

use std::fs::{self, File};
use std::io::Write;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::sys::Errno;

mod read;
mod sweep;
use read::with_started;
pub use read::{list, load};
pub use sweep::sweep;

#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
pub enum StateError {
    #[error("container {id} already exists in {root}: pick another id or `nsboot delete {id}`")]
    Exists { id: String, root: PathBuf },
    #[error("container {id} does not exist in {root}")]
    NotFound { id: String, root: PathBuf },
    #[error("state directory {path}: {errno}{hint}")]
    Io {
        path: PathBuf,
        errno: Errno,
        hint: String,
    },
    #[error("container id {id:?} is invalid: {why}: use letters, digits, '+', '-', '.' and '_'")]
    InvalidId { id: String, why: String },
    #[error("container {id} is busy: another nsboot command holds its lock in {root}; retry when it is done")]
    Busy { id: String, root: PathBuf },
    #[error("the state of container {id} in {path} is unreadable ({why}): `nsboot delete --force {id}` removes it")]
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
            created: crate::log::now_rfc3339(),
            owner: nix::unistd::geteuid().to_string(),
            annotations,
            foreground: false,
        }
    }
}

/// The state root: --root, else $XDG_RUNTIME_DIR/nsboot when rootless (/tmp/nsboot-UID
/// without XDG_RUNTIME_DIR), else /run/nsboot.
pub fn root_dir(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.into();
    }
    if !crate::idmap::is_rootless() {
        return "/run/nsboot".into();
    }
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        Some(x) => Path::new(&x).join("nsboot"),
        None => format!("/tmp/nsboot-{}", nix::unistd::geteuid()).into(),
    }
}

fn io(path: &Path, e: impl Into<Errno>) -> StateError {
    let errno = e.into();
    let hint = match errno.0 {
        libc::EACCES | libc::EROFS => {
            ": make it writable for you or choose another with --root".into()
        }
        libc::ENOSPC => ": the file system is full".into(),
        _ => ": choose a writable state directory with --root".into(),
    };
    StateError::Io {
        path: path.into(),
        errno,
        hint,
    }
}

/// A container's state directory, locked for as long as this value lives.
pub struct Entry {
    pub root: PathBuf,
    pub dir: PathBuf,
    _lock: Flock<File>,
}

/// Creates the directory of a new container; fails if the id is taken. The directory is built
/// with its lock held under a private name and renamed into place (RENAME_NOREPLACE), so that
/// nobody ever sees the id without its lock: of two commands racing for one id, one wins.
pub fn create(root: &Path, id: &str) -> Result<Entry, StateError> {
    create_with(root, id, None)
}

/// `create` for a foreground run, its state.json (marked `foreground`, which lets later runs
/// remove it should this run's caller and supervisor both be killed) written in the private
/// directory: it appears with the directory, whole, and no rewrite is needed.
pub fn create_foreground(root: &Path, id: &str, state: &State) -> Result<Entry, StateError> {
    let state = State {
        foreground: true,
        ..state.clone()
    };
    create_with(root, id, Some(&state))
}

fn create_with(root: &Path, id: &str, state: Option<&State>) -> Result<Entry, StateError> {
    fs::create_dir_all(root).map_err(|e| io(root, e))?;
    let dir = root.join(id);
    // A stale directory goes first, so that the private one below lives only for an instant.
    if dir.exists() && !sweep::remove_if_stale(root, &dir) {
        return Err(StateError::Exists {
            id: id.into(),
            root: root.into(),
        });
    }
    let tmp = root.join(private_name(id, std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir(&tmp).map_err(|e| io(&tmp, e))?;
    let marked = match state {
        Some(st) => fs::write(
            tmp.join("state.json"),
            serde_json::to_vec(st).unwrap_or_default(),
        ),
        None => Ok(()),
    };
    let lock = match marked.map_err(|e| io(&tmp, e)).and_then(|()| lock(&tmp)) {
        Ok(l) => l,
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    let placed = nix::fcntl::renameat2(
        None,
        &tmp,
        None,
        &dir,
        nix::fcntl::RenameFlags::RENAME_NOREPLACE,
    );
    match placed {
        Ok(()) => Ok(Entry {
            root: root.into(),
            dir,
            _lock: lock,
        }),
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            Err(if e == nix::errno::Errno::EEXIST {
                StateError::Exists {
                    id: id.into(),
                    root: root.into(),
                }
            } else {
                io(&dir, e)
            })
        }
    }
}

/// The private name under which `pid` builds the directory of `id` before renaming it.
pub fn private_name(id: &str, pid: u32) -> String {
    format!(".{id}.{pid}.new")
}

/// Opens and locks an existing container's directory.
pub fn open(root: &Path, id: &str) -> Result<Entry, StateError> {
    let dir = root.join(id);
    if !dir.join("state.json").exists() {
        return Err(StateError::NotFound {
            id: id.into(),
            root: root.into(),
        });
    }
    let lock = lock(&dir)?;
    Ok(Entry {
        root: root.into(),
        dir,
        _lock: lock,
    })
}

fn lock(dir: &Path) -> Result<Flock<File>, StateError> {
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("lock"))
        .map_err(|e| io(dir, e))?;
    Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, e)| io(dir, e))
}

impl Entry {
    /// The fd holding the lock (a process cloned while it is held must close its copy).
    pub fn lock_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self._lock.as_fd()
    }

    /// Writes state.json atomically.
    pub fn save(&self, state: &State) -> Result<(), StateError> {
        let tmp = self.dir.join("state.json.tmp");
        let mut f = File::create(&tmp).map_err(|e| io(&tmp, e))?;
        let body = serde_json::to_vec(state).unwrap_or_default();
        f.write_all(&body).map_err(|e| io(&tmp, e))?;
        let _ = f.as_fd();
        fs::rename(&tmp, self.dir.join("state.json")).map_err(|e| io(&self.dir, e))
    }

    /// Reads state.json.
    pub fn load(&self) -> Result<State, StateError> {
        let path = self.dir.join("state.json");
        let body = fs::read(&path).map_err(|e| io(&path, e))?;
        let st = serde_json::from_slice(&body).map_err(|_| io(&path, Errno(libc::EINVAL)))?;
        Ok(with_started(&self.dir, st))
    }

    /// Records that the container was started: one empty file rather than a rewrite of
    /// state.json (whose status then reads "running" through `load`).
    pub fn mark_started(&self) -> Result<(), StateError> {
        let path = self.dir.join(read::STARTED);
        File::create(&path).map(drop).map_err(|e| io(&path, e))
    }

    /// Removes the directory (the lock goes with it).
    pub fn remove(self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Removes `id`'s directory below the state root given as a directory fd: the supervisor
/// does this when its caller was killed, from an empty root where no host path exists.
pub fn remove_at(root: std::os::fd::BorrowedFd<'_>, id: &str) {
    use nix::dir::Dir;
    use nix::fcntl::{openat, OFlag};
    use nix::sys::stat::Mode;
    use nix::unistd::{unlinkat, UnlinkatFlags};
    use std::os::fd::AsRawFd;
    let fd = match openat(
        Some(root.as_raw_fd()),
        id,
        OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(e) => {
            tracing::debug!("removing the state of {id}: {e}");
            return;
        }
    };
    // A lock somebody holds is a live command's: not a dead caller's leftover.
    let lock = openat(
        Some(fd),
        "lock",
        OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::empty(),
    );
    if let Ok(lock) = lock {
        // SAFETY: openat just returned this fd; the File owns it from here on.
        let file = unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(lock) };
        if Flock::lock(file, FlockArg::LockExclusiveNonblock).is_err() {
            let _ = nix::unistd::close(fd);
            return;
        }
    }
    if let Ok(mut dir) = Dir::from_fd(fd) {
        let names: Vec<std::ffi::CString> = dir
            .iter()
            .flatten()
            .map(|e| e.file_name().to_owned())
            .filter(|n| n.as_bytes() != b"." && n.as_bytes() != b"..")
            .collect();
        for n in names {
            let _ = unlinkat(
                Some(dir.as_raw_fd()),
                n.as_c_str(),
                UnlinkatFlags::NoRemoveDir,
            );
        }
    }
    if let Err(e) = unlinkat(Some(root.as_raw_fd()), id, UnlinkatFlags::RemoveDir) {
        tracing::debug!("removing the state of {id}: {e}");
    }
}

/// Refuses ids that could escape the state root or confuse a shell (runc's rule).
pub fn validate_id(id: &str) -> Result<(), StateError> {
    crate::spec::validate_id(id).map_err(|e| {
        let why = match e {
            crate::spec::SpecError::Id { why, .. } => why,
            other => other.to_string(),
        };
        StateError::InvalidId { id: id.into(), why }
    })
}

/// Locks an existing container's directory, waiting at most `timeout` for another command.
pub fn lock_existing(
    root: &Path,
    id: &str,
    timeout: std::time::Duration,
) -> Result<Entry, StateError> {
    validate_id(id)?;
    let dir = root.join(id);
    let f = match File::options().write(true).open(dir.join("lock")) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(StateError::NotFound {
                id: id.into(),
                root: root.into(),
            })
        }
        Err(e) => return Err(io(&dir, e)),
    };
    let deadline = std::time::Instant::now() + timeout;
    let mut f = f;
    loop {
        match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => {
                return Ok(Entry {
                    root: root.into(),
                    dir,
                    _lock: lock,
                })
            }
            Err((back, nix::errno::Errno::EWOULDBLOCK)) if std::time::Instant::now() < deadline => {
                f = back;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                return Err(StateError::Busy {
                    id: id.into(),
                    root: root.into(),
                })
            }
            Err((_, e)) => return Err(io(&dir, e)),
        }
    }
}
