//! What lifecycle commands do through a container's cgroup: freeze and thaw it, list and
//! signal every process in it (`cgroup.kill` where the kernel has it), and tear it down.

use std::path::Path;
use std::time::{Duration, Instant};

use super::fs;
use super::{Cgroup, CgroupError};

/// How long a freeze may take before it is reported as failed.
const FREEZE_WAIT: Duration = Duration::from_secs(10);

impl Cgroup {
    fn freezer_dir(&self) -> Option<&Path> {
        self.dir_of("freezer")
    }

    /// Freezes (`true`) or thaws every process of the cgroup, waiting until the kernel says
    /// it is done.
    pub fn freeze(&self, frozen: bool) -> Result<(), CgroupError> {
        let dir = self.freezer_dir().ok_or_else(|| CgroupError::Unsupported {
            field: "pause".into(),
            why: "no freezer cgroup controller on this host".into(),
        })?;
        let deadline = Instant::now() + FREEZE_WAIT;
        if self.unified {
            fs::write(dir, "cgroup.freeze", if frozen { "1" } else { "0" })?;
            loop {
                if self.is_frozen() == frozen {
                    return Ok(());
                }
                if Instant::now() > deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        } else {
            let want = if frozen { "FROZEN" } else { "THAWED" };
            // v1 may stay FREEZING while a task sleeps uninterruptibly: write again until it
            // settles (as runc does).
            loop {
                fs::write(dir, "freezer.state", want)?;
                if fs::read(dir, "freezer.state")?.trim() == want {
                    return Ok(());
                }
                if Instant::now() > deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        if frozen {
            let _ = self.freeze(false);
        }
        Err(CgroupError::Io {
            path: dir.into(),
            what: if frozen { "freezing it" } else { "thawing it" }.into(),
            errno: crate::sys::Errno(libc::ETIMEDOUT),
            hint: String::new(),
        })
    }

    /// Whether the cgroup is frozen (paused).
    pub fn is_frozen(&self) -> bool {
        let Some(dir) = self.freezer_dir() else {
            return false;
        };
        if self.unified {
            fs::read(dir, "cgroup.events")
                .unwrap_or_default()
                .lines()
                .any(|l| l == "frozen 1")
        } else {
            let s = fs::read(dir, "freezer.state").unwrap_or_default();
            matches!(s.trim(), "FROZEN" | "FREEZING")
        }
    }

    /// Every process of the cgroup and of its sub-cgroups (`exec --cgroup`), as host pids.
    pub fn pids(&self) -> Vec<i32> {
        let mut out = Vec::new();
        collect_pids(self.main_dir(), &mut out);
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Sends `signo` to every process of the cgroup: SIGKILL through `cgroup.kill` where the
    /// kernel has it (no pid can be reused meanwhile); otherwise each pid, frozen meanwhile so
    /// that none forks past the list, as runc does.
    pub fn signal_all(&self, signo: i32) -> Result<(), CgroupError> {
        let dir = self.main_dir();
        if signo == libc::SIGKILL && self.unified && fs::has(dir, "cgroup.kill") {
            return fs::write(dir, "cgroup.kill", "1");
        }
        let was_frozen = self.is_frozen();
        let froze = !was_frozen && self.freeze(true).is_ok();
        for pid in self.pids() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::try_from(signo).ok(),
            );
        }
        if froze || (was_frozen && signo == libc::SIGKILL) {
            // A frozen v1 task dies of SIGKILL only once thawed.
            let _ = self.freeze(false);
        }
        Ok(())
    }

    /// Kills whatever is left in the cgroup and removes it (delete, a failed launch).
    pub fn destroy(&self) -> Result<(), CgroupError> {
        if !self.pids().is_empty() {
            let _ = self.signal_all(libc::SIGKILL);
        } else if self.is_frozen() {
            let _ = self.freeze(false);
        }
        self.remove()
    }
}

/// One directory of a container's cgroup as its parent's fd and its name: what a supervisor,
/// whose mount namespace no longer reaches the host's cgroup mounts, needs to remove it when
/// its caller died before it could (`protocol::Cloned::cgroup_leaves`).
pub struct Leaf {
    parent: std::os::fd::OwnedFd,
    name: std::ffi::CString,
}

impl Cgroup {
    /// Its directories as [`Leaf`]s (those whose parent cannot be opened are left out).
    /// None for systemd's scope: systemd stops a scope once it empties, and a directory
    /// removed under it first keeps it from seeing that (the unit then stays active).
    pub fn leaves(&self) -> Vec<Leaf> {
        use std::os::unix::ffi::OsStrExt;
        use std::os::unix::fs::OpenOptionsExt;
        if matches!(self.driver, super::Driver::Systemd(_)) {
            return Vec::new();
        }
        self.dirs
            .iter()
            .filter_map(|d| {
                let parent = std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
                    .open(d.path.parent()?)
                    .ok()?;
                let name = std::ffi::CString::new(d.path.file_name()?.as_bytes()).ok()?;
                Some(Leaf {
                    parent: parent.into(),
                    name,
                })
            })
            .collect()
    }
}

impl Leaf {
    /// Removes the directory, waiting a little while the kernel still counts exiting
    /// processes in it. Best effort: a caller that outlives us removes it too.
    pub fn remove(&self) {
        for _ in 0..100 {
            match nix::unistd::unlinkat(
                Some(std::os::fd::AsRawFd::as_raw_fd(&self.parent)),
                self.name.as_c_str(),
                nix::unistd::UnlinkatFlags::RemoveDir,
            ) {
                Err(nix::errno::Errno::EBUSY) => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                _ => return,
            }
        }
    }
}

fn collect_pids(dir: &Path, out: &mut Vec<i32>) {
    out.extend(
        fs::read(dir, "cgroup.procs")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse::<i32>().ok()),
    );
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                collect_pids(&e.path(), out);
            }
        }
    }
}
