//! What a killed container left once `delete --force` ran: processes, mounts, state entries,
//! and what `list` shows.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use super::{finish, nsboot};
use crate::common::{self, Bundle};

/// The ids `list` shows as stopped: for a foreground run, a dead one (a created container
/// stays until deleted, as with runc). Asked again after a moment: a run's supervisor may be
/// cleaning up after its killed caller.
fn listed_dead(b: &Bundle) -> Vec<String> {
    let ask = || {
        let out = b
            .nsboot()
            .arg("--root")
            .arg(b.state_dir())
            .args(["list", "--format", "json"])
            .output()
            .unwrap();
        let all: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap_or_default();
        all.iter()
            .filter(|c| c["status"] == "stopped")
            .map(|c| c["id"].as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
    };
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut dead = ask();
    while !dead.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        dead = ask();
    }
    dead
}

/// What the container left after `delete --force`, one line per kind; empty when nothing.
/// `foreground`: it was a run's, which `list` must never show dead.
pub fn leftovers(b: &Bundle, id: &str, foreground: bool) -> Vec<String> {
    let mut found = Vec::new();
    if foreground {
        let dead = listed_dead(b);
        if !dead.is_empty() {
            found.push(format!("list shows dead runs {dead:?}"));
        }
    }
    let forced = finish(nsboot(b, &["delete", "--force", id]).spawn().unwrap());
    if forced != 0 {
        found.push(format!("delete --force exited {forced}"));
    }
    let scope = b.dir().parent().unwrap();
    let uid = common::user(b.mode()).uid;
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut procs = processes(uid, scope);
    while !procs.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        procs = processes(uid, scope);
    }
    if !procs.is_empty() {
        found.push(format!("processes {procs:?}"));
        for p in procs {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), nix::sys::signal::SIGKILL);
        }
    }
    let mounts = common::host_submounts(&scope.to_string_lossy());
    if !mounts.is_empty() {
        found.push(format!("mounts {mounts:?}"));
    }
    let entries = state_entries(b.state_dir());
    if !entries.is_empty() {
        found.push(format!("state entries {entries:?}"));
        for e in entries {
            let p = b.state_dir().join(e);
            let _ = fs::remove_dir_all(&p).or_else(|_| fs::remove_file(&p));
        }
    }
    let list = b
        .nsboot()
        .arg("--root")
        .arg(b.state_dir())
        .args(["list", "--quiet"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&list.stdout).into_owned();
    if !list.status.success() || !listed.trim().is_empty() {
        found.push(format!("list shows {listed:?} ({})", list.status));
    }
    found
}

/// Processes of `uid` that belong to the bundle `scope`: nsboot commands and supervisors
/// carry its path in their environment (NSBOOT_TEST_BUNDLE) or command line.
fn processes(uid: u32, scope: &Path) -> Vec<i32> {
    use std::os::unix::fs::MetadataExt;
    let scope = scope.to_string_lossy().into_owned();
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            if e.metadata().ok()?.uid() != uid {
                return None;
            }
            let stat = fs::read_to_string(e.path().join("stat")).ok()?;
            let zombie = stat
                .rsplit_once(") ")
                .is_some_and(|(_, r)| r.starts_with('Z'));
            let text = |f: &str| fs::read(e.path().join(f)).unwrap_or_default();
            let mentions = |b: Vec<u8>| String::from_utf8_lossy(&b).contains(&scope);
            (!zombie && (mentions(text("environ")) || mentions(text("cmdline")))).then_some(pid)
        })
        .collect()
}

/// Names in the state dir but the seccomp cache, and temporary files in the cache.
fn state_entries(dir: &Path) -> Vec<String> {
    let names = |d: &Path| -> Vec<String> {
        fs::read_dir(d)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    };
    let mut left: Vec<String> = names(dir).into_iter().filter(|n| n != ".seccomp").collect();
    left.extend(
        names(&dir.join(".seccomp"))
            .into_iter()
            .filter(|n| n.ends_with(".tmp"))
            .map(|n| format!(".seccomp/{n}")),
    );
    left
}
