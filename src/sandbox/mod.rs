//! The caller's side of the boot flow: spawn the supervisor in new namespaces, write its id
//! maps, release it through the userns sync fd, read start-sync, start it, forward signals
//! and wait.

pub mod criu;
pub mod hooks;
pub mod launch;
pub mod nspath;
pub mod pty;
pub mod setns;

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::unistd::{pipe2, Pid};
use oci_spec::runtime::LinuxNamespaceType;
use serde::{Deserialize, Serialize};

use crate::control::{self, ControlError};
use crate::idmap::{self, IdmapError, Mapping};
use crate::process::seccomp::bpf::Program;
use crate::protocol::{
    self, AppFds, BootError, Cloned as InProcess, Handoff, ProtocolError, SpecFrom, StartSync,
};
use crate::spec::Spec;
use crate::sys::wire::WireError;
use crate::sys::{self, limits, step, Cloned, Errno};

mod exec_boot;
pub mod hint;
mod wait;
use exec_boot::{exec_boot, spec_memfd};
use hint::clone_hint;
pub use wait::{block_forwarded_signals, forwarded_signalfd};

#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
pub enum SandboxError {
    #[error("{failed}{hint}", failed = .0, hint = limits::hint(&.0.errno))]
    Step(#[from] crate::sys::Failed),
    #[error("creating the sandbox's namespaces: {errno}{hint}")]
    Clone { errno: Errno, hint: String },
    #[error(transparent)]
    Idmap(#[from] IdmapError),
    #[error(transparent)]
    Boot(#[from] BootError),
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error(transparent)]
    NsPath(#[from] nspath::NsPathError),
    #[error("the sandbox supervisor died during start-up ({how}) without reporting an error")]
    Died { how: String },
    /// A step refused by a security layer whose cause is known (`hint::step_refused`).
    #[error("{error}: {cause}")]
    Refused {
        error: Box<SandboxError>,
        cause: String,
    },
    #[error("the sandbox supervisor (pid {pid}) was killed by signal {signo} while the application ran, which died with it: look for what killed it (the OOM killer, a `kill -9`)")]
    SupervisorKilled { pid: i32, signo: i32 },
}

impl SandboxError {
    /// The error, with its cause and fix when a security layer refused the step.
    fn explained(self) -> SandboxError {
        if matches!(self, SandboxError::Clone { .. }) {
            return self;
        }
        match hint::step_refused(&self.to_string()) {
            Some(cause) => SandboxError::Refused {
                error: Box::new(self),
                cause,
            },
            None => self,
        }
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            SandboxError::Boot(e) => e.exit_code(),
            SandboxError::Refused { error, .. } => error.exit_code(),
            SandboxError::Control(ControlError::Start(e)) => e.exit_code(),
            _ => 125,
        }
    }
}

/// What to start.
pub struct Plan<'a> {
    pub id: String,
    pub spec: Spec,
    pub rootfs: PathBuf,
    pub mapping: Mapping,
    /// Kill the sandbox when the caller dies.
    pub attached: bool,
    /// Exec `nsboot boot` (the fd contract) in the new namespaces instead of running the
    /// supervisor in the cloned process (NSBOOT_EXEC_BOOT=1: a fresh process image).
    pub exec_boot: bool,
    /// The bundle directory (for `nsboot boot --bundle`).
    pub bundle: PathBuf,
    /// For a foreground run: who cleans up if the caller is killed.
    pub janitor: Option<protocol::Janitor>,
    /// For `create`: the word that its state is written, and a share of its lock.
    pub created: Option<protocol::Created>,
    /// A listening controller socket (`create`); None: a socket pair to this caller (`run`).
    pub listener: Option<OwnedFd>,
    /// Fds 3 .. 3+N of the caller pass to the application as they are (--preserve-fds).
    pub preserve_fds: u32,
    /// Global flags for an exec'd `nsboot boot` (--debug, --log, --log-format).
    pub boot_flags: Vec<String>,
    /// process.terminal: a connected socket that receives the pty master (SCM_RIGHTS).
    pub console: Option<OwnedFd>,
    /// The caller's own fds the supervisor must not keep (an exec would close them): the lock
    /// of `create`'s state directory, which would otherwise stay held as long as the sandbox.
    pub caller_only: Vec<BorrowedFd<'a>>,
    /// The supervisor, run in the cloned child when it is not exec'd.
    pub supervisor: protocol::Entry,
    /// The container's cgroup.procs files (empty: nsboot manages no cgroup for it): the
    /// application joins through them, and makes the cgroup namespace itself.
    pub cgroup: Vec<OwnedFd>,
    /// The same cgroup's directories, for the supervisor to remove if this caller dies.
    pub cgroup_leaves: Vec<crate::cgroup::Leaf>,
}

/// A booted supervisor, waiting for its start signal.
pub struct Sandbox {
    pub pid: Pid,
    pub pidfd: OwnedFd,
    /// `create`'s application, this caller's child (0: a foreground run's, the supervisor's).
    pub app: i32,
    /// Connected to the supervisor's controller (a foreground run only).
    pub control: Option<OwnedFd>,
    /// The Start request is already queued on `control` ([`Spawning::start_early`]).
    start_sent: bool,
    /// The application was started: from then on only its exit, reported by the supervisor,
    /// ends the sandbox ([`Sandbox::wait_forwarding`]).
    started: std::cell::Cell<bool>,
}

/// The namespaces of the supervisor: a new mount namespace always; user, pid, ipc, uts, net and
/// cgroup as the spec lists them without a path (a new net only with `net`: otherwise the
/// supervisor makes it, see [`crate::rootfs::net::Pending`]). Listed with a path: joined
/// ([`nspath`]); not listed: the caller's. With a cgroup of its own, the application makes
/// the cgroup namespace once in its cgroup.
fn clone_flags(spec: &Spec, net: bool, cgroup_managed: bool) -> CloneFlags {
    let mut f = CloneFlags::CLONE_NEWNS;
    let nss = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    for ns in nss.iter().filter(|n| n.path().is_none()) {
        f |= match ns.typ() {
            LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
            LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
            LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
            LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
            LinuxNamespaceType::Network if net => CloneFlags::CLONE_NEWNET,
            LinuxNamespaceType::Cgroup if !cgroup_managed => CloneFlags::CLONE_NEWCGROUP,
            _ => CloneFlags::empty(),
        };
    }
    f
}

/// How a caller starts the supervisor: exec'd as `nsboot boot` when NSBOOT_EXEC_BOOT=1 (its
/// application then compiles the seccomp profile), else cloned in-process with the profile's
/// program from the cache in the state root `root`, which the sandbox cannot see.
pub fn supervisor_kind(root: Option<&std::path::Path>, spec: &Spec) -> (bool, Option<Program>) {
    let exec_boot = std::env::var_os("NSBOOT_EXEC_BOOT").is_some_and(|v| v == "1");
    let profile = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    // Without a state root (`do` may run without one), the application compiles the profile.
    let program = match root {
        Some(root) if !exec_boot => crate::process::seccomp::cache::program(root, profile),
        _ => None,
    };
    (exec_boot, program)
}

/// Spawns the supervisor, writes its maps and waits until it reports ready (start-sync).
/// `seccomp`: the spec's program for an in-process supervisor (an exec'd `nsboot boot` drops
/// it: its application compiles the profile).
pub fn spawn(plan: Plan<'_>, seccomp: Option<Program>) -> Result<Sandbox, SandboxError> {
    begin(plan, seccomp)?.ready()
}

/// A supervisor cloned and mapped, released from the userns sync and now building the root:
/// its caller may do its own work meanwhile, then wait with [`Spawning::ready`].
pub struct Spawning {
    pub pid: Pid,
    pub pidfd: OwnedFd,
    control: Option<OwnedFd>,
    start_r: OwnedFd,
    start_sent: bool,
    /// The maps being written and the userns sync fd, until [`Spawning::release`].
    userns: Option<(idmap::Pending, OwnedFd)>,
}

/// Clones the supervisor, writes its maps and releases it; does not wait for start-sync.
pub fn begin(plan: Plan<'_>, seccomp: Option<Program>) -> Result<Spawning, SandboxError> {
    if let Some(n) = &plan.mapping.notice {
        tracing::info!("{n}");
    }
    begin_mapped(plan, seccomp).map_err(SandboxError::explained)
}

fn begin_mapped(mut plan: Plan<'_>, seccomp: Option<Program>) -> Result<Spawning, SandboxError> {
    let (userns_r, userns_w) = step("creating the userns sync pipe", pipe2(OFlag::O_CLOEXEC))?;
    let (start_r, start_w) = step("creating the start-sync pipe", pipe2(OFlag::O_CLOEXEC))?;
    let (ctl, ctl_boot) = match plan.listener.take() {
        Some(l) => (None, l),
        None => {
            let (a, b) = step(
                "creating the controller socket",
                socketpair(
                    AddressFamily::Unix,
                    SockType::Stream,
                    None,
                    SockFlag::SOCK_CLOEXEC,
                ),
            )?;
            (Some(a), b)
        }
    };
    let spec_fd = if plan.exec_boot {
        Some(spec_memfd(&plan.spec)?)
    } else {
        None
    };
    // An exec'd `nsboot boot` keeps runsc's contract: it is cloned into every namespace.
    let make_netns = !plan.exec_boot && crate::rootfs::net::creates_netns(&plan.spec);
    let mut flags = clone_flags(&plan.spec, !make_netns, !plan.cgroup.is_empty());
    if !plan.attached {
        // `create`: the supervisor clones the application as this caller's child, as runc's
        // init is (the engine's once create exits), which a pid namespace's init may not do
        // (CLONE_PARENT). The application is born in its own pid namespace all the same.
        flags.remove(CloneFlags::CLONE_NEWPID);
    }
    // Real root makes the linux.devices nodes the host lacks; the supervisor cannot.
    let made_nodes = match plan.exec_boot {
        false => crate::rootfs::mknod::make(&plan.spec, &plan.mapping),
        true => None,
    };
    // process.terminal in `create`: the application gets the pty, and nothing of the sandbox
    // may keep the caller's stdio, which an engine reads until EOF (go-runc under containerd
    // and Docker waits on create's output pipe).
    let null_stdio = match plan.console.is_some() && !plan.attached {
        true => Some(step(
            "opening /dev/null for the supervisor's stdio",
            nix::fcntl::open(
                "/dev/null",
                OFlag::O_RDWR | OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            ),
        )?),
        false => None,
    };
    let mut joins = nspath::Joins::open(&plan.spec)?;
    // The application enters it, not the joining child: see `rootfs::joined`.
    let mount_ns = joins.take_mount();
    // Real root lends the spec's scheduler and I/O priority to the clone, then takes them back.
    let lent = crate::process::tuning::lend(plan.spec.process().as_ref());
    // Joined by path, or none listed (the caller's: only with a mount namespace joined by
    // path, `spec::adjust`): no maps to write.
    let user_joined =
        joins.joins_user() || !crate::spec::lists(&plan.spec, LinuxNamespaceType::User);
    let cloned = if joins.is_empty() {
        let shown = nspath::inherited_mounts(&plan.spec);
        sys::clone_process(flags)
            .map_err(|errno| SandboxError::Clone {
                errno,
                hint: clone_hint(errno) + &limits::hint(&errno),
            })
            .map(|cloned| (cloned, shown))
    } else {
        joins
            .clone_supervisor(&plan.spec, flags)
            .map_err(SandboxError::from)
    };
    if matches!(cloned, Ok((Cloned::Parent { .. }, _)) | Err(_)) {
        lent.restore();
    }
    let (cloned, shown) = cloned?;
    let (pid, pidfd) = match cloned {
        Cloned::Child => {
            drop((userns_w, start_r, ctl));
            if let Some(null) = &null_stdio {
                for fd in 0..3 {
                    let _ = nix::unistd::dup2(null.as_raw_fd(), fd);
                }
            }
            // This process's copies only: the caller keeps its own (the fd table was copied).
            for fd in &plan.caller_only {
                let _ = nix::unistd::close(fd.as_raw_fd());
            }
            if let Some(spec_fd) = spec_fd {
                exec_boot(
                    &plan,
                    spec_fd,
                    ctl_boot,
                    start_w,
                    userns_r,
                    &shown,
                    mount_ns.as_ref(),
                );
            }
            let code = (plan.supervisor)(Handoff {
                id: plan.id,
                spec: SpecFrom::Cloned {
                    spec: Box::new(plan.spec),
                    rootfs: plan.rootfs,
                    bundle: plan.bundle,
                },
                controller: Some(ctl_boot),
                start_sync: start_w,
                sync_userns: Some(userns_r),
                app: AppFds {
                    stdio: Vec::new(),
                    pass: preserved_fds(plan.preserve_fds),
                    exec: None,
                    console: plan.console.take(),
                    cgroup: std::mem::take(&mut plan.cgroup),
                    mount_ns,
                },
                attached: plan.attached,
                cloned: InProcess {
                    janitor: plan.janitor,
                    created: plan.created,
                    seccomp,
                    make_netns,
                    made_nodes,
                    shown,
                    cgroup_leaves: std::mem::take(&mut plan.cgroup_leaves),
                },
            });
            // SAFETY: _exit ends the cloned child without running the caller's destructors.
            unsafe { libc::_exit(code) }
        }
        Cloned::Parent { pid, pidfd } => (pid, pidfd),
    };
    crate::sys::log::phase("spawn");
    drop((
        made_nodes,
        mount_ns,
        userns_r,
        start_w,
        ctl_boot,
        plan.console.take(),
        plan.created,
        std::mem::take(&mut plan.cgroup),
    ));
    if user_joined {
        // Its maps are its own: EOF on the sync fd releases the supervisor at once.
        drop(userns_w);
        return Ok(Spawning {
            pid,
            pidfd,
            control: ctl,
            start_r,
            start_sent: false,
            userns: None,
        });
    }
    let maps = match idmap::start_writing(pid, &plan.mapping) {
        Ok(p) => p,
        Err(e) => {
            kill_and_reap(&pidfd);
            return Err(e.into());
        }
    };
    let mut spawning = Spawning {
        pid,
        pidfd,
        control: ctl,
        start_r,
        start_sent: false,
        userns: Some((maps, userns_w)),
    };
    if spawning.userns.as_ref().is_some_and(|(m, _)| m.is_done()) {
        // Written already: release the supervisor now. Helpers still running are waited for
        // in `ready`, after the caller's own work.
        spawning.release()?;
    }
    Ok(spawning)
}

impl Spawning {
    /// Queues the Start request on the controller socket now, while the supervisor still
    /// builds the root: once ready it execs the application at once, without waiting for this
    /// caller to wake up and ask (a foreground run with no hook between create and start).
    /// A supervisor that already failed closed its end: the send fails and `ready` reports
    /// the supervisor's own error; `start` would ask again.
    pub fn start_early(&mut self) {
        if let Some(c) = &self.control {
            self.start_sent = control::request_start(c).is_ok();
        }
    }

    /// Waits for the maps to be written, then releases the supervisor from the userns sync
    /// (EOF on the sync fd). A failed map kills the supervisor.
    fn release(&mut self) -> Result<(), SandboxError> {
        let Some((maps, sync)) = self.userns.take() else {
            return Ok(());
        };
        if let Err(e) = maps.finish() {
            kill_and_reap(&self.pidfd);
            return Err(e.into());
        }
        drop(sync);
        crate::sys::log::phase("map");
        Ok(())
    }

    /// Waits until the supervisor reports ready (start-sync), or its error.
    pub fn ready(self) -> Result<Sandbox, SandboxError> {
        self.ready_or_error().map_err(SandboxError::explained)
    }

    fn ready_or_error(mut self) -> Result<Sandbox, SandboxError> {
        self.release()?;
        let Spawning {
            pid,
            pidfd,
            control,
            start_r,
            start_sent,
            userns: _,
        } = self;
        match protocol::read_start_sync(&start_r) {
            Ok(StartSync::Ready(app)) => {
                crate::sys::log::phase("sync");
                Ok(Sandbox {
                    pid,
                    pidfd,
                    app,
                    control,
                    start_sent,
                    started: Default::default(),
                })
            }
            Ok(StartSync::Closed) => {
                let how = match sys::pidfd_wait(pidfd.as_fd()) {
                    Ok(c) if c > 128 => format!("killed by signal {}", c - 128),
                    Ok(c) => format!("exit status {c}"),
                    Err(e) => format!("wait failed: {e}"),
                };
                Err(SandboxError::Died { how })
            }
            Ok(StartSync::Failed(e)) => {
                let _ = sys::pidfd_wait(pidfd.as_fd());
                Err(e.into())
            }
            Err(e) => {
                let _ = sys::pidfd_wait(pidfd.as_fd());
                Err(e.into())
            }
        }
    }

    /// Kills the supervisor (and so the sandbox) and reaps it, and any helper still running.
    pub fn kill(self) {
        kill_and_reap(&self.pidfd);
        if let Some((maps, _)) = self.userns {
            let _ = maps.finish();
        }
    }
}

/// SIGKILL for the supervisor (and so the sandbox), then its exit status collected.
fn kill_and_reap(pidfd: &OwnedFd) {
    let _ = sys::pidfd_signal(pidfd.as_fd(), libc::SIGKILL);
    let _ = sys::pidfd_wait(pidfd.as_fd());
}

/// --preserve-fds: the caller's fds 3 .. 3+n, each passed at its own number.
fn preserved_fds(n: u32) -> Vec<crate::process::FdMapping> {
    (3..3 + n as i32)
        .filter_map(|fd| {
            let host = nix::unistd::dup(fd).ok()?;
            // SAFETY: dup returned a new fd that only this mapping owns.
            let host = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(host) };
            Some(crate::process::FdMapping { host, app: fd })
        })
        .collect()
}
