//! What killed runs leave in the state root, removed by later ones.
//!
//! A foreground run's state goes with its caller, or with its supervisor when the caller is
//! killed. When both die at once (`pkill -9 nsboot`), nobody is left to remove it. Such
//! entries are marked `"foreground": true` in their state.json: a later `run` or `do` removes
//! them once nobody holds their lock and their supervisor is gone. A detached container
//! (`create`) has no mark: a stopped one stays until `nsboot delete`, as with runc. Private
//! names of killed writers go too: `.ID.PID.new` (an entry being created),
//! `.stale.PID.NAME` (one being removed) and `.seccomp/.KEY.PID.tmp` (a cache file being
//! written), once PID is gone.

use std::fs;
use std::path::Path;

/// Removes the leftovers of killed runs under `root`; the entry `own` (the caller's run, live
/// by definition) is not even read. Never fails: this is housekeeping.
pub fn sweep(root: &Path, own: &str) {
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str().filter(|n| *n != own) else {
            continue;
        };
        let path = entry.path();
        if name == ".seccomp" {
            sweep_temp_files(&path);
        } else if let Some(pid) = writer_pid(name) {
            if !alive(pid) {
                tracing::debug!("removing {}, left by a killed nsboot", path.display());
                let _ = super::remove_path(&path);
            }
        } else if !name.starts_with('.') && is_foreground(&path) {
            remove_if_stale(root, &path);
        }
    }
}

/// Whether the entry is a foreground run's (its state.json says so).
fn is_foreground(entry: &Path) -> bool {
    fs::read(super::files(entry).0)
        .ok()
        .and_then(|b| serde_json::from_slice::<super::State>(&b).ok())
        .is_some_and(|s| s.foreground)
}

/// Removes an entry left by a sandbox killed with SIGKILL: nobody holds its lock and its
/// supervisor is gone. It is first renamed away while its lock is held, so that a concurrent
/// command never removes a fresh one.
pub(super) fn remove_if_stale(root: &Path, entry: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (state, lock) = super::files(entry);
    let Ok(f) = fs::File::open(&lock) else {
        return false;
    };
    let Ok(held) = nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock) else {
        return false;
    };
    let stored = fs::read(&state)
        .ok()
        .and_then(|b| serde_json::from_slice::<super::State>(&b).ok());
    // `create`'s application outlives a killed supervisor once started, as runc's init does.
    let alive = stored.is_some_and(|s| {
        alive(s.supervisor_pid())
            || (s.app_start > 0 && super::lifecycle::is_app(s.pid, s.app_start))
    });
    // Still the same entry whose lock we hold?
    let same = match (held.metadata(), fs::metadata(&lock)) {
        (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
        _ => false,
    };
    if alive || !same {
        return false;
    }
    tracing::info!("removing the stale state in {}", entry.display());
    let trash = root.join(trash_name(
        std::process::id(),
        entry.file_name().and_then(|n| n.to_str()).unwrap_or("x"),
    ));
    if fs::rename(entry, &trash).is_err() {
        return false;
    }
    let _ = super::remove_path(&trash);
    true
}

/// The private name under which `pid` removes the entry `id`.
pub(super) fn trash_name(pid: u32, id: &str) -> String {
    format!(".stale.{pid}.{id}")
}

/// Removes what killed commands left of `id` (`delete --force`): a create's `.ID.PID.new`, a
/// removal's `.stale.PID.ID`, once PID is gone. Fails only on what could not be removed.
pub fn remove_debris(root: &Path, id: &str) -> Result<(), super::StateError> {
    let Ok(entries) = fs::read_dir(root) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(pid) = writer_pid(name) else {
            continue;
        };
        let ours =
            name == super::private_name(id, pid as u32) || name == trash_name(pid as u32, id);
        if !ours || alive(pid) {
            continue;
        }
        match super::remove_path(&entry.path()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(super::io(&entry.path(), e))
            }
            _ => tracing::debug!("removed {name}, left by a killed nsboot"),
        }
    }
    Ok(())
}

/// `.KEY.PID.tmp` files of the seccomp cache whose writer is gone.
fn sweep_temp_files(dir: &Path) {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.strip_suffix(".tmp"))
            .and_then(|n| n.rsplit('.').next())
            .and_then(|p| p.parse().ok());
        if pid.is_some_and(|p| !alive(p)) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// The pid in a private name of the state root: `.ID.PID.new` or `.stale.PID.NAME`.
pub fn writer_pid(name: &str) -> Option<i32> {
    if let Some(rest) = name.strip_prefix(".stale.") {
        return rest.split('.').next()?.parse().ok();
    }
    let rest = name.strip_prefix('.')?.strip_suffix(".new")?;
    rest.rsplit('.').next()?.parse().ok()
}

/// Whether `pid` runs (see `lifecycle::is_alive`: a zombie or an exiting process does not).
pub(super) fn alive(pid: i32) -> bool {
    pid > 0 && crate::state::lifecycle::is_alive(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_no_pid_is_not() {
        assert!(alive(std::process::id() as i32));
        assert!(!alive(0));
        assert!(!alive(i32::MAX - 1));
    }

    #[test]
    fn private_names_give_their_writers_pid() {
        assert_eq!(writer_pid(".my.ctr.1234.new"), Some(1234));
        assert_eq!(writer_pid(".stale.77.do-5"), Some(77));
        assert_eq!(writer_pid(".seccomp"), None);
        assert_eq!(writer_pid("ctr"), None);
        assert_eq!(writer_pid(".x.new"), None);
    }

    #[test]
    fn sweep_removes_what_dead_writers_left_and_keeps_the_rest() {
        let root = tempfile::tempdir().unwrap();
        let dead = i32::MAX - 1; // no such pid
        let me = std::process::id();
        for d in [
            format!(".a.{dead}.new"),
            format!(".stale.{dead}.b"),
            format!(".c.{me}.new"),
            "detached".into(),
            ".seccomp".into(),
        ] {
            fs::create_dir(root.path().join(d)).unwrap();
        }
        fs::write(root.path().join(format!(".f.{dead}.new")), "{}").unwrap();
        // Foreground runs' states, one file each (and one directory, as older nsboot wrote
        // them): those whose supervisor is gone, one whose is alive (us), and the sweeping
        // run's own (kept unread, whatever its state says).
        for (name, pid) in [
            ("fg-dead", dead),
            ("fg-own", dead),
            ("fg-alive", me as i32),
            ("dir-dead", dead),
        ] {
            let mut st =
                super::super::State::new(name, "running", pid, "/b".into(), "/r".into(), None);
            st.foreground = true;
            let body = serde_json::to_vec(&st).unwrap();
            let path = root.path().join(name);
            if name.starts_with("dir") {
                fs::create_dir(&path).unwrap();
                fs::write(path.join("state.json"), body).unwrap();
                fs::write(path.join("lock"), "").unwrap();
            } else {
                fs::write(path, body).unwrap();
            }
        }
        let cache = root.path().join(".seccomp");
        fs::write(cache.join(format!(".k.{dead}.tmp")), "").unwrap();
        fs::write(cache.join(format!(".k.{me}.tmp")), "").unwrap();
        fs::write(cache.join("k.bpf"), "").unwrap();
        sweep(root.path(), "fg-own");
        let names = |dir: &Path| {
            let mut v: Vec<String> = fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            v.sort();
            v
        };
        let want = [
            format!(".c.{me}.new"),
            ".seccomp".into(),
            "detached".into(),
            "fg-alive".into(),
            "fg-own".into(),
        ];
        assert_eq!(names(root.path()), want);
        assert_eq!(names(&cache), [format!(".k.{me}.tmp"), "k.bpf".into()]);
    }
}
