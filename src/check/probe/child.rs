//! The probes' children. Each probe runs in a forked child that `_exit`s, so the checker's own
//! process keeps its namespaces and mounts (as real root too). A child reports the first
//! failing step and its errno as an 8-byte record on a pipe; no record and exit status 0 means
//! every step worked.

use std::fmt;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;

use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};
use serde::{Deserialize, Serialize};

use crate::check::Caller;
use crate::sys::Errno;

/// The probes' steps, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Step {
    Unshare,
    Setgroups,
    UidMap,
    GidMap,
    Private,
    Tmpfs,
    OverlayDirs,
    Overlay,
    OverlayWrite,
    Pid1Fork,
    Proc,
    Hostname,
}

impl Step {
    const ALL: [Step; 12] = [
        Step::Unshare,
        Step::Setgroups,
        Step::UidMap,
        Step::GidMap,
        Step::Private,
        Step::Tmpfs,
        Step::OverlayDirs,
        Step::Overlay,
        Step::OverlayWrite,
        Step::Pid1Fork,
        Step::Proc,
        Step::Hostname,
    ];
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Unshare => "unshare(CLONE_NEWUSER|CLONE_NEWNS)",
            Step::Setgroups => "write /proc/self/setgroups \"deny\"",
            Step::UidMap => "write /proc/self/uid_map",
            Step::GidMap => "write /proc/self/gid_map",
            Step::Private => "make / rprivate",
            Step::Tmpfs => "mount tmpfs",
            Step::OverlayDirs => "mkdir overlay dirs on the tmpfs",
            Step::Overlay => "mount overlay",
            Step::OverlayWrite => "write a file through the overlay",
            Step::Pid1Fork => "fork pid 1 of the new pid namespace",
            Step::Proc => "mount proc",
            Step::Hostname => "sethostname in a new UTS namespace",
        })
    }
}

#[derive(Debug, Clone, thiserror::Error, Serialize, Deserialize)]
pub enum ProbeError {
    #[error("{step}: {errno} ({name})", name = format!("{:?}", errno.nix()))]
    Step { step: Step, errno: Errno },
    #[error("preparing the probe ({what}): {errno}")]
    Setup { what: String, errno: Errno },
    #[error("the probe child {status} before reporting (a seccomp filter killing unshare or mount does this)")]
    Died { status: String },
}

/// Leaves a probe child without running the checker's atexit handlers or flushing its
/// buffered stdout (which would print the parent's pending output twice).
fn exit_now(code: i32) -> ! {
    // SAFETY: _exit(2) only terminates the calling process; it touches no Rust state.
    unsafe { libc::_exit(code) }
}

type StepResult = Result<(), (Step, Errno)>;

fn at<E: Into<Errno>>(step: Step) -> impl FnOnce(E) -> (Step, Errno) {
    move |e| (step, e.into())
}

/// Sends a failure record: the step's index and the errno.
fn report(w: BorrowedFd, step: Step, errno: Errno) {
    let idx = Step::ALL.iter().position(|s| *s == step).unwrap_or(0) as u8;
    let mut rec = [idx, 0, 0, 0, 0, 0, 0, 0];
    rec[4..].copy_from_slice(&errno.0.to_le_bytes());
    let _ = nix::unistd::write(w, &rec);
}

/// Runs `body` in a forked child; its `Err` comes back as `ProbeError::Step`.
fn in_child(body: impl FnOnce(BorrowedFd) -> StepResult) -> Result<(), ProbeError> {
    let setup = |what: &str| {
        let what = what.to_string();
        move |e: nix::errno::Errno| ProbeError::Setup {
            what,
            errno: e.into(),
        }
    };
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(setup("pipe"))?;
    // SAFETY: `nsboot check` is single-threaded (it starts no threads), so the child is a full
    // copy of a consistent process; it runs only the probe's syscalls and leaves by `_exit`
    // (a panic is caught first), never returning into the checker.
    match unsafe { fork() }.map_err(setup("fork"))? {
        ForkResult::Child => {
            drop(r);
            let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(w.as_fd())));
            let code = match res {
                Ok(Ok(())) => 0,
                Ok(Err((step, errno))) => {
                    report(w.as_fd(), step, errno);
                    1
                }
                Err(_) => 101,
            };
            exit_now(code)
        }
        ForkResult::Parent { child } => {
            drop(w);
            let mut rec = Vec::new();
            let _ = File::from(r).read_to_end(&mut rec);
            let status = loop {
                match waitpid(child, None) {
                    Err(nix::errno::Errno::EINTR) => continue,
                    other => break other.map_err(setup("waitpid"))?,
                }
            };
            if rec.len() >= 8 {
                let step = Step::ALL[usize::from(rec[0]).min(Step::ALL.len() - 1)];
                let errno = Errno(i32::from_le_bytes([rec[4], rec[5], rec[6], rec[7]]));
                return Err(ProbeError::Step { step, errno });
            }
            match status {
                WaitStatus::Exited(_, 0) => Ok(()),
                WaitStatus::Exited(_, c) => Err(ProbeError::Died {
                    status: format!("exited with {c}"),
                }),
                WaitStatus::Signaled(_, sig, _) => Err(ProbeError::Died {
                    status: format!("was killed by {sig}"),
                }),
                s => Err(ProbeError::Died {
                    status: format!("stopped ({s:?})"),
                }),
            }
        }
    }
}

/// Everything a child needs, built before the fork so that the child allocates nothing.
struct Plan {
    uid_map: String,
    gid_map: String,
    dir: PathBuf,
    overlay: [PathBuf; 4],
    overlay_opts: String,
    probe_file: PathBuf,
}

impl Plan {
    fn new(caller: &Caller, dir: PathBuf) -> Plan {
        let overlay = ["l", "u", "w", "m"].map(|d| dir.join(d));
        let [l, u, w, m] = &overlay;
        Plan {
            uid_map: format!("0 {} 1\n", caller.uid),
            gid_map: format!("0 {} 1\n", caller.gid),
            overlay_opts: format!(
                "lowerdir={},upperdir={},workdir={}",
                l.display(),
                u.display(),
                w.display()
            ),
            probe_file: m.join("probe"),
            overlay,
            dir,
        }
    }
}

fn write_proc(path: &str, text: &str) -> Result<(), std::io::Error> {
    // One write(2): the kernel takes a map only whole.
    let n = std::fs::OpenOptions::new()
        .write(true)
        .open(path)?
        .write(text.as_bytes())?;
    if n == text.len() {
        Ok(())
    } else {
        Err(std::io::Error::from_raw_os_error(libc::EIO))
    }
}

/// New user + mount (+ `extra`) namespaces with a single-id map of the caller, as
/// `nsboot run` does without subordinate ranges; / private so that nothing propagates out.
fn enter_userns(plan: &Plan, extra: CloneFlags) -> StepResult {
    unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS | extra)
        .map_err(at(Step::Unshare))?;
    write_proc("/proc/self/setgroups", "deny").map_err(at(Step::Setgroups))?;
    write_proc("/proc/self/uid_map", &plan.uid_map).map_err(at(Step::UidMap))?;
    write_proc("/proc/self/gid_map", &plan.gid_map).map_err(at(Step::GidMap))?;
    let none = None::<&str>;
    mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none).map_err(at(Step::Private))
}

/// The user-namespace probe, continued by the overlay probe on the same tmpfs: a failure at
/// or before `Step::Tmpfs` is the user namespace's, a later one the overlay's.
fn userns_and_overlay(plan: &Plan) -> StepResult {
    enter_userns(plan, CloneFlags::empty())?;
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    mount(
        Some("tmpfs"),
        &plan.dir,
        Some("tmpfs"),
        flags,
        Some("mode=0755"),
    )
    .map_err(at(Step::Tmpfs))?;
    for d in &plan.overlay {
        std::fs::create_dir(d).map_err(at(Step::OverlayDirs))?;
    }
    let opts = Some(plan.overlay_opts.as_str());
    mount(
        Some("overlay"),
        &plan.overlay[3],
        Some("overlay"),
        MsFlags::empty(),
        opts,
    )
    .map_err(at(Step::Overlay))?;
    std::fs::write(&plan.probe_file, b"x").map_err(at(Step::OverlayWrite))
}

/// A fresh proc needs a process inside the new pid namespace: the first child becomes pid 1.
fn fresh_proc(plan: &Plan, w: BorrowedFd) -> StepResult {
    enter_userns(plan, CloneFlags::CLONE_NEWPID)?;
    // SAFETY: as in `in_child`: single-threaded, and the grandchild leaves by `_exit`.
    match unsafe { fork() }.map_err(at(Step::Pid1Fork))? {
        ForkResult::Child => {
            let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
            let code = match mount(Some("proc"), &plan.dir, Some("proc"), flags, None::<&str>) {
                Ok(()) => 0,
                Err(e) => {
                    report(w, Step::Proc, e.into());
                    1
                }
            };
            exit_now(code)
        }
        ForkResult::Parent { child } => match waitpid(child, None) {
            // The grandchild's record, if any, is already in the pipe; pass its status on.
            Ok(WaitStatus::Exited(_, code)) => exit_now(code),
            Ok(_) => exit_now(102),
            Err(e) => Err((Step::Pid1Fork, e.into())),
        },
    }
}

/// sethostname in a UTS namespace of our own: only a seccomp filter (a container's profile)
/// refuses it there.
fn hostname(plan: &Plan) -> StepResult {
    enter_userns(plan, CloneFlags::CLONE_NEWUTS)?;
    nix::unistd::sethostname("nsboot").map_err(at(Step::Hostname))
}

/// A scratch directory for the probes' mounts (they happen in the children's own mount
/// namespaces, so the directory itself stays empty).
fn scratch() -> Result<PathBuf, ProbeError> {
    nix::unistd::mkdtemp(&crate::state::tmp_dir().join("nsboot-check-XXXXXX")).map_err(|e| {
        ProbeError::Setup {
            what: "mkdtemp in the temp dir".into(),
            errno: e.into(),
        }
    })
}

/// The outcomes of the probes.
pub struct Probes {
    pub userns: Result<(), ProbeError>,
    pub proc: Result<(), ProbeError>,
    pub hostname: Result<(), ProbeError>,
}

/// Runs the user-namespace (+ overlay) probe, the fresh-/proc probe and the hostname probe.
pub fn run(caller: &Caller) -> Probes {
    let dir = match scratch() {
        Ok(dir) => dir,
        Err(e) => {
            return Probes {
                userns: Err(e.clone()),
                proc: Err(e.clone()),
                hostname: Err(e),
            }
        }
    };
    let plan = Plan::new(caller, dir);
    let probes = Probes {
        userns: in_child(|_| userns_and_overlay(&plan)),
        proc: in_child(|w| fresh_proc(&plan, w)),
        hostname: in_child(|_| hostname(&plan)),
    };
    let _ = std::fs::remove_dir(&plan.dir);
    probes
}

/// Whether sethostname works in the sandbox's UTS namespace: Some(false) when a filter
/// refuses it, None when the probe could not tell (no user namespace here).
pub fn hostname_allowed(caller: &Caller) -> Option<bool> {
    let plan = Plan::new(caller, crate::state::tmp_dir());
    match in_child(|_| hostname(&plan)) {
        Ok(()) => Some(true),
        Err(ProbeError::Step {
            step: Step::Hostname,
            ..
        }) => Some(false),
        Err(_) => None,
    }
}
