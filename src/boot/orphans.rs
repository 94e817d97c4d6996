//! Without a pid namespace of its own (the spec lists none: the caller's), nothing ends the
//! application's descendants with it. A foreground run's supervisor is then their subreaper
//! and, once the application has exited, kills and reaps every one left, as the end of a pid
//! namespace would.

use std::io::Read as _;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::fcntl::{openat, OFlag};
use nix::sys::signal::{kill, Signal};
use nix::sys::stat::Mode;
use nix::unistd::Pid;

use crate::protocol::BootError;

/// The subreaper's hold on the caller's /proc (its own is dropped once the application runs).
pub struct Orphans {
    proc: std::fs::File,
}

impl Orphans {
    /// Becomes the subreaper of what the application leaves; keeps /proc (the caller's,
    /// bound) open to find those children later.
    pub fn adopt() -> Result<Orphans, BootError> {
        let failed = |step: &str, errno: crate::sys::Errno| {
            BootError::Step(crate::sys::Failed {
                step: step.into(),
                errno,
            })
        };
        // SAFETY: plain prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
            return Err(failed(
                "becoming the subreaper of the application's processes",
                crate::sys::Errno::last(),
            ));
        }
        let proc = std::fs::File::open("/proc").map_err(|e| {
            failed(
                "opening /proc to find the application's orphans",
                crate::sys::Errno(e.raw_os_error().unwrap_or(libc::EIO)),
            )
        })?;
        Ok(Orphans { proc })
    }

    /// Kills and reaps every child left, until none is: the children of each one killed
    /// become ours as it dies.
    pub fn end(&self) {
        loop {
            let children = self.children();
            if children.is_empty() {
                return;
            }
            for &pid in &children {
                // Our child, not reaped yet: its pid cannot be another process's.
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            for pid in children {
                let _ = nix::sys::wait::waitpid(Pid::from_raw(pid), None);
            }
        }
    }

    /// Every thread's children (a child belongs to the thread that forked it).
    fn children(&self) -> Vec<i32> {
        let Ok(mut tasks) = nix::dir::Dir::openat(
            Some(self.proc.as_raw_fd()),
            "self/task",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) else {
            return Vec::new();
        };
        let tids: Vec<String> = tasks
            .iter()
            .flatten()
            .filter_map(|e| e.file_name().to_str().ok().map(str::to_owned))
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
            .collect();
        let mut all = Vec::new();
        for tid in tids {
            let path = format!("self/task/{tid}/children");
            let Ok(fd) = openat(
                Some(self.proc.as_raw_fd()),
                path.as_str(),
                OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                Mode::empty(),
            ) else {
                continue;
            };
            // SAFETY: fd was just opened and is owned by nothing else.
            let file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
            let mut text = String::new();
            let _ = (&file).read_to_string(&mut text);
            all.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<i32>().ok()),
            );
        }
        all
    }
}
