//! A process as the host's /proc shows it: alive or not, its start time, children and
//! namespaces; the sandbox's processes; pidfds, signals and waits through them, which cannot
//! hit a reused pid.

use std::fs;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

use crate::sys::Errno;

/// Fields of /proc/PID/stat after the command name: [0] is the state, [1] the ppid.
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: it ends at the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// The kernel's flag of a process in exit (PF_EXITING), in /proc/PID/stat's flags field.
const PF_EXITING: u64 = 0x4;

/// Alive: not a zombie (which still answers kill(pid, 0)) and not exiting. A killed
/// supervisor waits in exit, its memory, files and application gone, until every process of
/// its pid namespace is reaped, some perhaps by a parent outside that is slow to do it: dead
/// is dead. A /proc that hides the process (hidepid) leaves kill(pid, 0) to tell.
pub fn is_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    match stat_fields(pid) {
        Some(f) => {
            let state = f.first().map(String::as_str);
            let flags: u64 = f.get(6).and_then(|v| v.parse().ok()).unwrap_or(0);
            !matches!(state, Some("Z" | "X") | None) && flags & PF_EXITING == 0
        }
        None => !matches!(
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
            Err(nix::errno::Errno::ESRCH)
        ),
    }
}

/// `pid` lives and is this container's supervisor: its command line names the id (it is
/// `nsboot boot ... ID` or the `nsboot run ... ID` it was cloned from), so that a reused pid
/// is not taken for the container.
pub fn is_supervisor(pid: i32, id: &str) -> bool {
    if !is_alive(pid) {
        return false;
    }
    let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    cmdline.split(|b| *b == 0).any(|arg| arg == id.as_bytes())
}

/// The start time of `pid` (clock ticks after boot, /proc/PID/stat's 22nd field).
pub fn start_time(pid: i32) -> Option<u64> {
    stat_fields(pid)?.get(19)?.parse().ok()
}

/// `pid` lives and started at `start`: the same process, not one that reused its pid.
pub fn is_app(pid: i32, start: u64) -> bool {
    is_alive(pid) && start_time(pid) == Some(start)
}

/// Our child whose pid is `inner` in the pid namespace of the process that cloned it (the
/// supervisor's: a pid namespace joined by path holds it, where the child's pid is another).
pub fn own_child(inner: i32) -> Option<i32> {
    let me = std::process::id() as i32;
    let ppid = |p: i32| stat_fields(p).and_then(|f| f.get(1).and_then(|s| s.parse::<i32>().ok()));
    if ppid(inner) == Some(me) {
        return Some(inner);
    }
    children(me).into_iter().find(|&c| {
        let status = fs::read_to_string(format!("/proc/{c}/status")).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("NSpid:"))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|p| p.parse::<i32>().ok())
            == Some(inner)
    })
}

/// The supervisor's living child: a foreground run's application.
pub fn app_pid(supervisor: i32) -> Option<i32> {
    children(supervisor).into_iter().find(|&p| is_alive(p))
}

/// Children of `pid`: from /proc/PID/task/*/children (each thread lists its own), else (no
/// CONFIG_PROC_CHILDREN) by scanning every process's ppid.
pub fn children(pid: i32) -> Vec<i32> {
    let tasks: Vec<String> = fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|t| t.path().join("children").to_string_lossy().into_owned())
        .collect();
    let lists: Vec<String> = tasks
        .iter()
        .filter_map(|t| fs::read_to_string(t).ok())
        .collect();
    if !lists.is_empty() {
        return lists
            .iter()
            .flat_map(|l| l.split_whitespace())
            .filter_map(|p| p.parse().ok())
            .collect();
    }
    all_pids()
        .into_iter()
        .filter(|&p| {
            stat_fields(p).and_then(|f| f.get(1).and_then(|s| s.parse::<i32>().ok())) == Some(pid)
        })
        .collect()
}

fn all_pids() -> Vec<i32> {
    fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
        .collect()
}

/// (device, inode) of /proc/PID/ns/NAME.
pub fn ns_id(pid: &str, name: &str) -> Option<(u64, u64)> {
    fs::metadata(format!("/proc/{pid}/ns/{name}"))
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

/// Every living process in the application's pid namespace (the application first): what
/// `kill --all` signals and `ps` lists, `exec`'d processes included.
pub fn sandbox_pids(app: i32) -> Vec<i32> {
    let Some(ns) = ns_id(&app.to_string(), "pid") else {
        return vec![app];
    };
    if !is_pid_ns_init(app) {
        // A pid namespace joined by path is another's too: only the application's own tree.
        return descendants(app);
    }
    let mut pids = vec![app];
    pids.extend(
        all_pids()
            .into_iter()
            .filter(|&p| p != app && ns_id(&p.to_string(), "pid") == Some(ns) && is_alive(p)),
    );
    pids
}

/// `pid` is pid 1 of its own pid namespace (the last of /proc/PID/status's NSpid).
pub(super) fn is_pid_ns_init(pid: i32) -> bool {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .and_then(|l| l.split_whitespace().last())
        == Some("1")
}

/// Stops `app` and its descendants until no new one appears (a stopped process forks no
/// more), then kills them all.
pub(super) fn end_tree(app: i32) {
    let mut seen: Vec<i32> = Vec::new();
    for _ in 0..100 {
        let new: Vec<i32> = descendants(app)
            .into_iter()
            .filter(|p| !seen.contains(p))
            .collect();
        if new.is_empty() {
            break;
        }
        for &p in &new {
            let _ = signal(p, libc::SIGSTOP);
        }
        seen.extend(new);
    }
    for p in seen {
        let _ = signal(p, libc::SIGKILL);
    }
}

/// `pid` and its living descendants, `pid` first.
fn descendants(pid: i32) -> Vec<i32> {
    let mut all = vec![pid];
    let mut i = 0;
    while let Some(&p) = all.get(i) {
        all.extend(children(p).into_iter().filter(|&c| is_alive(c)));
        i += 1;
    }
    all
}

/// pidfd_open(2): signals and waits through it cannot hit a reused pid. ESRCH when the
/// process is gone, also while it is being released: kernel 6.1 says EINVAL for a pid whose
/// process is released but whose number is not yet freed (with no flags and a positive pid,
/// EINVAL means nothing else).
pub fn pidfd_open(pid: i32) -> Result<OwnedFd, Errno> {
    // SAFETY: plain syscall; the returned fd is new and ours alone.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0u32) };
    if r < 0 {
        let e = Errno::last();
        return Err(if e.0 == libc::EINVAL && pid > 0 {
            Errno(libc::ESRCH)
        } else {
            e
        });
    }
    // SAFETY: r is a fresh fd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(r as i32) })
}

/// Sends `signo` to `pid` through a pidfd (ESRCH when it is already gone).
pub fn signal(pid: i32, signo: i32) -> Result<(), Errno> {
    let fd = pidfd_open(pid)?;
    crate::sys::pidfd_signal(std::os::fd::AsFd::as_fd(&fd), signo)
}

/// Waits until the process behind `pidfd` has exited (it need not be our child); false on
/// timeout (`Duration::MAX`: no timeout).
pub fn wait_exit(pidfd: &OwnedFd, timeout: std::time::Duration) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let deadline = std::time::Instant::now().checked_add(timeout);
    loop {
        let left = deadline.map(|d| d.saturating_duration_since(std::time::Instant::now()));
        let ms = match left {
            Some(l) => {
                PollTimeout::try_from(l.as_millis().min(60_000) as i32).unwrap_or(PollTimeout::ZERO)
            }
            None => PollTimeout::NONE,
        };
        let mut fds = [PollFd::new(
            std::os::fd::AsFd::as_fd(pidfd),
            PollFlags::POLLIN,
        )];
        match poll(&mut fds, ms) {
            Ok(n) if n > 0 => return true,
            Err(nix::errno::Errno::EINTR) => continue,
            _ if left.is_some_and(|l| l.is_zero()) => return false,
            _ => {}
        }
    }
}

/// Waits, at most `timeout`, until the exited process behind `pidfd` is reaped by its parent:
/// `create`'s application is the engine's (or init's) to reap, and poststop must not see it,
/// not even as a zombie. A signal 0 reaches a zombie, not a reaped process.
pub fn wait_reaped(pidfd: &OwnedFd, timeout: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match crate::sys::pidfd_signal(std::os::fd::AsFd::as_fd(pidfd), 0) {
            Err(e) if e.0 == libc::ESRCH => return true,
            _ if std::time::Instant::now() > deadline => return false,
            _ => std::thread::sleep(std::time::Duration::from_millis(2)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_and_found_by_its_arguments() {
        let me = std::process::id() as i32;
        assert!(is_alive(me));
        let arg0 = std::env::args().next().unwrap();
        assert!(is_supervisor(me, &arg0));
        assert!(!is_supervisor(me, "no-such-argument-here"));
    }

    #[test]
    fn children_of_this_process_include_a_spawned_child() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        assert!(children(std::process::id() as i32).contains(&pid));
        child.kill().unwrap();
        let ended = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            ended.signal(),
            Some(libc::SIGKILL),
            "sleep ended with {ended}"
        );
        assert!(!is_alive(pid));
    }
}
