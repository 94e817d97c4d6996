//! Creating, opening, locking and removing one container's entry in the state root.

use std::fs::{self, File};
use std::io::Write;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use super::{
    files, io, missing_or_io, remove_path, sweep, validate_id, with_started, State, StateError,
};
use crate::sys::Errno;

/// A container's entry, locked for as long as this value lives.
pub struct Entry {
    pub root: PathBuf,
    /// A created container's directory, or a foreground run's state file.
    pub path: PathBuf,
    _lock: Flock<File>,
}

/// Creates the directory of a new (detached) container; fails if the id is taken. The
/// directory is built with its lock held under a private name and renamed into place
/// (RENAME_NOREPLACE), so that nobody ever sees the id without its lock: of two commands
/// racing for one id, one wins.
pub fn create(root: &Path, id: &str) -> Result<Entry, StateError> {
    let (path, tmp) = claim(root, id)?;
    fs::create_dir(&tmp).map_err(|e| io(&tmp, e))?;
    match lock(&tmp) {
        Ok(lock) => place(root, id, &tmp, path, lock),
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp);
            Err(e)
        }
    }
}

/// The entry of a foreground run: one file, its state.json (marked `foreground`, which lets
/// later runs remove it should this run's caller and supervisor both be killed), written and
/// locked under the private name and renamed into place like `create`'s directory: it appears
/// whole, with its lock held.
pub fn create_foreground(root: &Path, id: &str, state: &State) -> Result<Entry, StateError> {
    let state = State {
        foreground: true,
        ..state.clone()
    };
    let (path, tmp) = claim(root, id)?;
    let written = File::options()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(&serde_json::to_vec(&state).unwrap_or_default())?;
            Ok(f)
        })
        .map_err(|e| io(&tmp, e))
        .and_then(|f| Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, e)| io(&tmp, e)));
    match written {
        Ok(lock) => place(root, id, &tmp, path, lock),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// The path of `id`'s new entry and the private name to build it under, after creating the
/// root and removing a stale entry there (so that the private one lives only for an instant)
/// and a leftover under the private name; fails if the id is taken.
fn claim(root: &Path, id: &str) -> Result<(PathBuf, PathBuf), StateError> {
    fs::create_dir_all(root).map_err(|e| io(root, e))?;
    let path = root.join(id);
    if fs::symlink_metadata(&path).is_ok() && !sweep::remove_if_stale(root, &path) {
        return Err(StateError::Exists {
            id: id.into(),
            root: super::shown(root),
        });
    }
    let tmp = root.join(private_name(id, std::process::id()));
    let _ = remove_path(&tmp);
    Ok((path, tmp))
}

/// Renames the private `tmp`, locked, to `path` unless the id was taken meanwhile.
fn place(
    root: &Path,
    id: &str,
    tmp: &Path,
    path: PathBuf,
    lock: Flock<File>,
) -> Result<Entry, StateError> {
    let placed = nix::fcntl::renameat2(
        None,
        tmp,
        None,
        &path,
        nix::fcntl::RenameFlags::RENAME_NOREPLACE,
    );
    match placed {
        Ok(()) => Ok(Entry {
            root: root.into(),
            path,
            _lock: lock,
        }),
        Err(e) => {
            let _ = remove_path(tmp);
            Err(if e == nix::errno::Errno::EEXIST {
                StateError::Exists {
                    id: id.into(),
                    root: super::shown(root),
                }
            } else {
                io(&path, e)
            })
        }
    }
}

/// The private name under which `pid` builds the entry of `id` before renaming it.
pub fn private_name(id: &str, pid: u32) -> String {
    format!(".{id}.{pid}.new")
}

/// Opens and locks an existing created container's directory.
pub fn open(root: &Path, id: &str) -> Result<Entry, StateError> {
    let dir = root.join(id);
    if !dir.join("state.json").exists() {
        if dir.is_file() {
            return Err(StateError::Foreground { id: id.into() });
        }
        return Err(StateError::NotFound {
            id: id.into(),
            root: super::shown(root),
        });
    }
    let lock = lock(&dir)?;
    Ok(Entry {
        root: root.into(),
        path: dir,
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

    /// Writes a created container's state.json atomically.
    pub fn save(&self, state: &State) -> Result<(), StateError> {
        let tmp = self.path.join("state.json.tmp");
        let mut f = File::create(&tmp).map_err(|e| io(&tmp, e))?;
        let body = serde_json::to_vec(state).unwrap_or_default();
        f.write_all(&body).map_err(|e| io(&tmp, e))?;
        fs::rename(&tmp, self.path.join("state.json")).map_err(|e| io(&self.path, e))
    }

    /// Reads state.json.
    pub fn load(&self) -> Result<State, StateError> {
        let (path, _) = files(&self.path);
        let body = fs::read(&path).map_err(|e| io(&path, e))?;
        let st = serde_json::from_slice(&body).map_err(|_| io(&path, Errno(libc::EINVAL)))?;
        Ok(with_started(&self.path, st))
    }

    /// Records that a created container was started: one empty file rather than a rewrite of
    /// state.json (whose status then reads "running" through `load`).
    pub fn mark_started(&self) -> Result<(), StateError> {
        let path = self.path.join(super::read::STARTED);
        File::create(&path).map(drop).map_err(|e| io(&path, e))
    }

    /// Removes the entry (the lock goes with it). A directory is first renamed to a private
    /// name, while its lock is held: the id is free at once, and a removal killed halfway
    /// leaves only that name (`.stale.PID.ID`), never a half entry under the id.
    pub fn remove(self) {
        if self.path.is_dir() {
            let id = self
                .path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("x");
            let trash = self.root.join(sweep::trash_name(std::process::id(), id));
            if fs::rename(&self.path, &trash).is_ok() {
                let _ = remove_path(&trash);
                return;
            }
        }
        let _ = remove_path(&self.path);
    }
}

/// Removes `id`'s entry below the state root given as a directory fd, unless somebody holds
/// its lock: the supervisor does this when its caller was killed, from an empty root where no
/// host path exists.
pub fn remove_at(root: std::os::fd::BorrowedFd<'_>, id: &str) {
    use nix::fcntl::{openat, OFlag};
    use nix::sys::stat::{fstat, fstatat, Mode, SFlag};
    use nix::unistd::{unlinkat, UnlinkatFlags};
    use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
    let nofollow = OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK;
    let fd = match openat(Some(root.as_raw_fd()), id, nofollow, Mode::empty()) {
        Ok(fd) => fd,
        Err(e) => {
            tracing::debug!("removing the state of {id}: {e}");
            return;
        }
    };
    // SAFETY: openat just returned this fd; the File owns it from here on.
    let entry = unsafe { File::from_raw_fd(fd) };
    let Ok(st) = fstat(entry.as_raw_fd()) else {
        return;
    };
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFDIR {
        // A foreground run's file, its own lock: ours to remove once nobody holds it, and
        // while the name is still this file.
        let Ok(_held) = Flock::lock(entry, FlockArg::LockExclusiveNonblock) else {
            return;
        };
        let same = fstatat(
            Some(root.as_raw_fd()),
            id,
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .is_ok_and(|now| (now.st_ino, now.st_dev) == (st.st_ino, st.st_dev));
        if same {
            if let Err(e) = unlinkat(Some(root.as_raw_fd()), id, UnlinkatFlags::NoRemoveDir) {
                tracing::debug!("removing the state of {id}: {e}");
            }
        }
        return;
    }
    let Ok(mut dir) = nix::dir::Dir::from_fd(entry.into_raw_fd()) else {
        return;
    };
    // A lock somebody holds is a live command's: not a dead caller's leftover.
    let lock = openat(Some(dir.as_raw_fd()), "lock", nofollow, Mode::empty());
    let _held = match lock {
        // SAFETY: openat just returned this fd; the File owns it from here on.
        Ok(lock) => match Flock::lock(
            unsafe { File::from_raw_fd(lock) },
            FlockArg::LockExclusiveNonblock,
        ) {
            Ok(held) => Some(held),
            Err(_) => return,
        },
        Err(_) => None,
    };
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
    if let Err(e) = unlinkat(Some(root.as_raw_fd()), id, UnlinkatFlags::RemoveDir) {
        tracing::debug!("removing the state of {id}: {e}");
    }
}

/// Locks an existing container's entry, waiting at most `timeout` for another command.
pub fn lock_existing(
    root: &Path,
    id: &str,
    timeout: std::time::Duration,
) -> Result<Entry, StateError> {
    validate_id(id)?;
    let path = root.join(id);
    let (_, lock) = files(&path);
    // A directory's lock is made if missing (nothing else of such an entry would let it go).
    let mut f = File::options()
        .write(true)
        .create(lock != path)
        .truncate(false)
        .open(&lock)
        .map_err(|e| missing_or_io(root, id, &path, e))?;
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => {
                return Ok(Entry {
                    root: root.into(),
                    path,
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
                    root: super::shown(root),
                })
            }
            Err((_, e)) => return Err(io(&path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::time::Duration;

    fn state(id: &str) -> State {
        State::new(id, "running", 1, "/b".into(), "/r".into(), None)
    }

    #[test]
    fn a_foreground_run_is_one_locked_file_that_readers_see() {
        let root = tempfile::tempdir().unwrap();
        let entry = create_foreground(root.path(), "fg", &state("fg")).unwrap();
        assert!(root.path().join("fg").is_file());
        assert!(entry.load().unwrap().foreground);
        assert_eq!(super::super::load(root.path(), "fg").unwrap().id, "fg");
        assert_eq!(super::super::list(root.path()).unwrap(), ["fg"]);
        assert!(matches!(
            create_foreground(root.path(), "fg", &state("fg")),
            Err(StateError::Exists { .. })
        ));
        assert!(matches!(
            lock_existing(root.path(), "fg", Duration::ZERO),
            Err(StateError::Busy { .. })
        ));
        assert!(matches!(
            open(root.path(), "fg"),
            Err(StateError::Foreground { .. })
        ));
        // Only the entry is left: no private name.
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 1);
        entry.remove();
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_created_container_is_a_directory() {
        let root = tempfile::tempdir().unwrap();
        let entry = create(root.path(), "c").unwrap();
        entry.save(&state("c")).unwrap();
        assert!(root.path().join("c/state.json").is_file());
        assert!(matches!(
            lock_existing(root.path(), "c", Duration::ZERO),
            Err(StateError::Busy { .. })
        ));
        entry.remove();
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 0);
    }

    #[test]
    fn remove_at_leaves_a_held_entry_and_removes_a_free_one() {
        let root = tempfile::tempdir().unwrap();
        let dir = File::open(root.path()).unwrap();
        for made in [
            create(root.path(), "d"),
            create_foreground(root.path(), "f", &state("f")),
        ] {
            let entry = made.unwrap();
            let id = entry.path.file_name().unwrap().to_str().unwrap().to_owned();
            remove_at(dir.as_fd(), &id);
            assert!(entry.path.exists(), "{id} removed while its lock was held");
            let path = entry.path.clone();
            drop(entry);
            remove_at(dir.as_fd(), &id);
            assert!(!path.exists(), "{id} left once free");
        }
    }
}
