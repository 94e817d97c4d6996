//! The contract between the caller (`sandbox`) and the supervisor (`boot`), runsc boot's fd
//! contract: the fds handed over, the user-namespace sync, the start-sync bytes and the error
//! that crosses back as data. The two sides import this, never each other.

pub mod userns;

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use nix::sys::signal::{SigSet, Signal};
use serde::{Deserialize, Serialize};

use crate::control::ControlError;
use crate::process::{caps::CapsError, seccomp::bpf::Program, ProcessError};
pub use crate::process::{AppFds, FdMapping};
use crate::rootfs::RootfsError;
use crate::spec::{Spec, SpecError};
use crate::sys::wire::{self, WireError};
use crate::sys::Errno;
use userns::UsernsError;

/// The supervisor's entry (`boot::main`), which the caller runs in its cloned child. Named by
/// the binary's edge, so that the caller's side never imports the supervisor's.
pub type Entry = fn(Handoff) -> i32;

/// Where the supervisor finds its spec.
pub enum SpecFrom {
    /// An exec'd `nsboot boot`: the validated spec on --spec-fd, root.path relative to the
    /// bundle.
    Fd { fd: OwnedFd, bundle: PathBuf },
    /// A supervisor cloned in-process: the caller's copy, already resolved.
    Cloned {
        spec: Box<Spec>,
        rootfs: PathBuf,
        bundle: PathBuf,
    },
}

/// What the caller hands the supervisor: the same whether it was exec'd as `nsboot boot` (from
/// its flags) or cloned in-process.
pub struct Handoff {
    pub id: String,
    pub spec: SpecFrom,
    /// A stream socket for the control server (listening or connected).
    pub controller: Option<OwnedFd>,
    /// Written once: READY, or FAILED and the error ([`report_ready`], [`report_failure`]).
    pub start_sync: OwnedFd,
    /// Read until EOF: the caller has written the id maps ([`userns`]).
    pub sync_userns: Option<OwnedFd>,
    pub app: AppFds,
    /// Die with the caller (PR_SET_PDEATHSIG).
    pub attached: bool,
    /// What only a cloned supervisor gets (it shares the caller's memory at the clone).
    pub cloned: Cloned,
}

/// The parts of a hand-off that are not fds on a command line.
#[derive(Default)]
pub struct Cloned {
    pub janitor: Option<Janitor>,
    pub created: Option<Created>,
    /// The seccomp program the caller compiled for the spec (None: the application compiles it).
    pub seccomp: Option<Program>,
    /// The spec's new network namespace is the supervisor's to make (the caller did not clone
    /// into it): a helper makes it while the root is built.
    pub make_netns: bool,
    /// The linux.devices nodes the host lacks, made by a caller that is real root: a
    /// detached tmpfs (`rootfs::mknod`).
    pub made_nodes: Option<OwnedFd>,
    /// Mounts that show namespaces joined by path, made by the process that joined them.
    pub shown: crate::rootfs::shown::Shown,
    /// The container's cgroup directories, removed by the supervisor when its caller dies
    /// before it could remove them itself (a killed `run`, or `create` before its state).
    pub cgroup_leaves: Vec<crate::cgroup::Leaf>,
}

/// For a foreground run: the caller's pidfd and its state directory. If the caller is killed,
/// the supervisor kills the application and removes the state itself (SIGKILL leaves nothing).
pub struct Janitor {
    pub caller: OwnedFd,
    pub state_root: OwnedFd,
    pub id: String,
    /// Readable once the caller has created the state (a byte): only then is it ours to remove.
    pub created: OwnedFd,
    /// The caller's pid, which names its private directory while it creates the state.
    pub caller_pid: u32,
}

/// For `create`: its caller's word that the container's state is written (a byte on a pipe),
/// and a share of its lock on the entry, held until then. A caller killed before the word
/// leaves nothing on disk that names this supervisor: it then ends itself, and a
/// `delete --force` that waits for the lock finds nothing running.
pub struct Created {
    pub confirmed: OwnedFd,
    pub lock: OwnedFd,
}

/// Why the supervisor could not start the sandbox: it crosses to the caller on start-sync.
#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
pub enum BootError {
    #[error(transparent)]
    Userns(#[from] UsernsError),
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error(transparent)]
    Caps(#[from] CapsError),
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Net(#[from] crate::rootfs::net::NetError),
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error("reading the spec from --spec-fd: {0}")]
    SpecFd(String),
    #[error(transparent)]
    Step(#[from] crate::sys::Failed),
}

impl BootError {
    pub fn exit_code(&self) -> i32 {
        match self {
            BootError::Process(e) => e.exit_code(),
            _ => 125,
        }
    }
}

#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
pub enum ProtocolError {
    #[error("reading start-sync: {0}")]
    StartSync(Errno),
    #[error(transparent)]
    Wire(#[from] WireError),
}

/// The signals a caller forwards into the sandbox (and the supervisor on to the application).
const FORWARDED: &[Signal] = &[
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGCONT,
    Signal::SIGALRM,
];

/// [`FORWARDED`] as a set: blocked by the caller before the clone, read by both sides from a
/// signalfd.
pub fn forwarded_set() -> SigSet {
    let mut set = SigSet::empty();
    for s in FORWARDED {
        set.add(*s);
    }
    set
}

/// What the start-sync fd carries: READY; or READY_PID and the application's pid (4 bytes, one
/// write: a pipe keeps it whole); or FAILED and the error as a frame.
const READY: u8 = 1;
const READY_PID: u8 = 2;
const FAILED: u8 = 0;

/// Supervisor: the sandbox is built; the caller may start it. `app`: the application's pid
/// when it is the caller's child (`create`), in the caller's pid namespace; else 0.
pub fn report_ready(start_sync: &OwnedFd, app: i32) -> Result<(), Errno> {
    let mut msg = [READY_PID, 0, 0, 0, 0];
    msg[1..].copy_from_slice(&app.to_ne_bytes());
    // A foreground run's caller reads one byte, as before.
    let msg = match app {
        0 => &[READY][..],
        _ => &msg[..],
    };
    nix::unistd::write(start_sync, msg)
        .map(drop)
        .map_err(Errno::from)
}

/// Supervisor (or the cloned child before it exec'd one): FAILED and the error, so the caller
/// prints the supervisor's own error.
pub fn report_failure(start_sync: &OwnedFd, err: &BootError) {
    let _ = nix::unistd::write(start_sync, &[FAILED]);
    let _ = wire::send(start_sync, err);
}

/// What the caller read on start-sync.
pub enum StartSync {
    /// The application's pid, when it is the caller's child (else 0).
    Ready(i32),
    Failed(BootError),
    /// EOF: the supervisor died without a word.
    Closed,
}

/// Caller: waits for the supervisor's one byte (and its error after FAILED).
pub fn read_start_sync(fd: &OwnedFd) -> Result<StartSync, ProtocolError> {
    let mut b = [0u8; 5];
    loop {
        match nix::unistd::read(fd.as_raw_fd(), &mut b[..1]) {
            Ok(0) => return Ok(StartSync::Closed),
            Ok(_) if b[0] == READY => return Ok(StartSync::Ready(0)),
            Ok(_) if b[0] == READY_PID => {
                let pid = match nix::unistd::read(fd.as_raw_fd(), &mut b[1..]) {
                    Ok(4) => i32::from_ne_bytes([b[1], b[2], b[3], b[4]]),
                    Ok(_) => return Err(ProtocolError::StartSync(Errno(libc::EPROTO))),
                    Err(e) => return Err(ProtocolError::StartSync(e.into())),
                };
                return Ok(StartSync::Ready(pid));
            }
            Ok(_) => {
                let err = wire::expect(fd, "the sandbox's start-up error")?;
                return Ok(StartSync::Failed(err));
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(ProtocolError::StartSync(e.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_sync_carries_ready_failure_and_silence() {
        let (r, w) = nix::unistd::pipe().unwrap();
        report_ready(&w, 42).unwrap();
        assert!(matches!(read_start_sync(&r), Ok(StartSync::Ready(42))));
        report_ready(&w, 0).unwrap();
        assert!(matches!(read_start_sync(&r), Ok(StartSync::Ready(0))));
        report_failure(&w, &BootError::SpecFd("bad".into()));
        match read_start_sync(&r) {
            Ok(StartSync::Failed(e)) => {
                assert_eq!(e.to_string(), "reading the spec from --spec-fd: bad")
            }
            _ => panic!("no failure read"),
        }
        drop(w);
        assert!(matches!(read_start_sync(&r), Ok(StartSync::Closed)));
    }
}
