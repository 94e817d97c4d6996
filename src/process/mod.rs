//! The application: created by the supervisor in its own pid and mount namespaces (pid 1
//! there; it cannot see the supervisor), its root set up, then held until the start signal;
//! then fds, credentials, caps, no_new_privs, seccomp, and exec.
//!
//! Supervisor and application talk over a stream socket pair: the application reports
//! `Ready` (root set up) or its error, waits for `Go`, and either execs (the close-on-exec
//! socket closes: EOF means success) or reports why it could not.

pub mod console;

pub mod caps;
pub mod creds;
pub mod exec;
pub mod rlimits;
pub mod seccomp;
pub mod trampoline;
pub mod tuning;

use std::convert::Infallible;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use nix::sched::CloneFlags;
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::rootfs::{self, RootfsError};
use crate::spec::Spec;
use crate::sys::wire::{self, WireError};
use crate::sys::{self, Cloned, Errno};

#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
pub enum ProcessError {
    #[error("{program}: no such file or directory in the container (check process.args and PATH)")]
    NotFound { program: String },
    #[error("{program}: permission denied: not executable by the process user")]
    NotExecutable { program: String },
    #[error("executing {program}: {errno}")]
    Exec { program: String, errno: Errno },
    #[error("executing {program}: running nsboot's exec helper from its sealed memfd (execveat): {errno}{}", helper_hint(*.errno))]
    Helper { program: String, errno: Errno },
    #[error("fd {fd} is an open directory ({target}) that would survive into the application: refusing to start (it would reach outside the container root); close it or pass it with --pass-fd")]
    LeakedDir { fd: i32, target: String },
    #[error("the spec has no process to run: add process.args to config.json")]
    NoProcess,
    #[error(transparent)]
    Step(#[from] crate::sys::Failed),
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error(transparent)]
    Creds(#[from] creds::CredsError),
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error(transparent)]
    Console(crate::process::console::ConsoleError),
    #[error(transparent)]
    Tuning(#[from] tuning::TuningError),
    #[error(transparent)]
    Agent(#[from] seccomp::agent::AgentError),
}

fn helper_hint(errno: Errno) -> &'static str {
    match errno.0 {
        libc::EPERM | libc::EACCES | libc::ENOSYS => ": the seccomp profile must allow execveat, which every exec into the container goes through; allow it in linux.seccomp",
        _ => "",
    }
}

impl ProcessError {
    /// The exit status a shell would give: 127 not found, 126 not executable, 125 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            ProcessError::NotFound { .. } => 127,
            ProcessError::NotExecutable { .. } => 126,
            _ => 125,
        }
    }
}

/// A host fd that becomes the application's fd `app`.
#[derive(Debug)]
pub struct FdMapping {
    pub host: OwnedFd,
    pub app: RawFd,
}

/// What the application inherits.
#[derive(Default)]
pub struct AppFds {
    /// stdin, stdout, stderr (empty: keep the supervisor's 0, 1, 2).
    pub stdio: Vec<OwnedFd>,
    pub pass: Vec<FdMapping>,
    pub exec: Option<OwnedFd>,
    /// process.terminal: a connected socket to send the master of a pty made inside the
    /// container to (runc's console socket); the slave becomes the app's terminal.
    pub console: Option<OwnedFd>,
    /// The container's `cgroup.procs` files, opened for writing by the caller: the
    /// application joins its cgroup through them first thing (`crate::cgroup::join`).
    pub cgroup: Vec<OwnedFd>,
    /// A mount namespace joined by path (`linux.namespaces`), opened by the caller: the
    /// application enters it with the container root (`rootfs::joined`).
    pub mount_ns: Option<OwnedFd>,
}

#[derive(Debug, Serialize, Deserialize)]
enum AppMsg {
    Ready,
    Failed(ProcessError),
    /// It hands over to the exec helper (`trampoline::Handover`): its outcome follows.
    Exec {
        program: String,
    },
    /// The seccomp notify fd follows, for the agent (`seccomp::agent`).
    Listener,
}

/// The created, not yet started application, seen from the supervisor.
pub struct App {
    /// In the supervisor's pid namespace (the caller's, when the application is its child).
    pub pid: Pid,
    pub pidfd: OwnedFd,
    /// The supervisor's child (a foreground run's), whose status it collects; else the
    /// caller's (`create`'s), which the engine reaps: the supervisor only sees it exit.
    pub ours: bool,
    sock: OwnedFd,
    /// Created to exec without a start signal, as soon as its root is ready.
    pub autostart: bool,
    /// The seccomp agent that gets the filter's notify fd.
    agent: Option<seccomp::agent::Listener>,
}

/// Supervisor: clones the application into new pid and mount namespaces and waits until its
/// root is set up. `program`: the seccomp profile's program, compiled by the caller (None: the
/// application compiles it). `autostart`: it goes on to exec without waiting for `start`.
/// `agent`: linux.seccomp.listenerPath, connected while the host was in sight.
/// `to_caller`: the application becomes the caller's child (CLONE_PARENT), as runc's init is
/// runc create's: the engine, a subreaper, adopts and reaps it once create exits.
pub fn create(
    spec: &Spec,
    fds: AppFds,
    program: Option<seccomp::bpf::Program>,
    autostart: bool,
    agent: Option<seccomp::agent::Listener>,
    to_caller: bool,
) -> Result<App, ProcessError> {
    let (sup, app) = socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| {
        ProcessError::Step(crate::sys::Failed {
            step: "creating the application socket".into(),
            errno: e.into(),
        })
    })?;
    // Born in a pid namespace joined by path (the supervisor's, for its children) or in the
    // caller's when the spec lists none, else in a new one.
    let flags = match crate::rootfs::shown::pid_shared(spec) {
        false => CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS,
        true => CloneFlags::CLONE_NEWNS,
    };
    let given = Given { app, fds, program };
    // A vforked application suspends the supervisor until it execs: none that needs the
    // supervisor meanwhile (to relay its seccomp notify fd to the agent), nor one that enters
    // a time namespace (which takes memory of its own).
    let mut ours = true;
    let started = if autostart && agent.is_none() && !tuning::wants_time_namespace(spec) {
        start_vforked(spec, &sup, given, flags)
    } else if to_caller {
        ours = false;
        match start_forked(
            spec,
            &sup,
            given,
            flags | CloneFlags::CLONE_PARENT,
            autostart,
        ) {
            // A pid namespace's init may not (an exec'd `nsboot boot` cloned into a new pid
            // namespace by a caller of its own): the application is then ours.
            Err((Errno(libc::EINVAL), Some(given))) => {
                ours = true;
                start_forked(spec, &sup, *given, flags, autostart)
            }
            other => other,
        }
    } else {
        start_forked(spec, &sup, given, flags, autostart)
    };
    let (pid, pidfd) = started.map_err(|(errno, _)| {
        ProcessError::Step(crate::sys::Failed {
            step: "starting the application".into(),
            errno,
        })
    })?;
    match wire::expect::<AppMsg>(&sup, "the application's root to be ready")? {
        AppMsg::Ready => Ok(App {
            pid,
            pidfd,
            ours,
            sock: sup,
            autostart,
            agent,
        }),
        AppMsg::Failed(e) => {
            let _ = wait_exit(pidfd.as_fd(), ours);
            Err(e)
        }
        AppMsg::Exec { .. } | AppMsg::Listener => Err(ProcessError::Step(crate::sys::Failed {
            step: "creating the application: it execed before it was ready".into(),
            errno: Errno(libc::EPROTO),
        })),
    }
}

/// Why the application was not started, and what it would have taken when nothing of it ran
/// (to try again another way).
type NotStarted = (Errno, Option<Box<Given>>);

/// What the supervisor hands the application: its end of the socket, its fds, its seccomp
/// program.
struct Given {
    app: OwnedFd,
    fds: AppFds,
    program: Option<seccomp::bpf::Program>,
}

/// An application that waits for the start signal (`create`, a run with hooks before start),
/// or needs its supervisor before it execs: a forked copy of the supervisor, which goes on
/// meanwhile.
fn start_forked(
    spec: &Spec,
    sup: &OwnedFd,
    given: Given,
    flags: CloneFlags,
    autostart: bool,
) -> Result<(Pid, OwnedFd), NotStarted> {
    let cloned = match sys::clone_process(flags) {
        Ok(c) => c,
        // Not cloned: all of it is still ours, to try again.
        Err(e) => return Err((e, Some(Box::new(given)))),
    };
    match cloned {
        Cloned::Child => {
            let code = app_child(spec, sup.as_raw_fd(), given, autostart);
            // SAFETY: _exit in a forked child: no destructors or atexit handlers of the parent's run.
            unsafe { libc::_exit(code) }
        }
        Cloned::Parent { pid, pidfd } => {
            drop(given);
            Ok((pid, pidfd))
        }
    }
}

/// A foreground run's application (autostart): nothing happens between its creation and its
/// exec, so the supervisor stays suspended meanwhile and the application runs in its address
/// space (`sys::clone_vfork`): no copy of it is made or torn down.
fn start_vforked(
    spec: &Spec,
    sup: &OwnedFd,
    given: Given,
    flags: CloneFlags,
) -> Result<(Pid, OwnedFd), NotStarted> {
    // The child's fd table is a copy: ours of what it takes stay open here, to be closed once
    // it has execed or exited.
    let fds = &given.fds;
    let mut ours: Vec<RawFd> = vec![given.app.as_raw_fd()];
    ours.extend(fds.stdio.iter().map(|f| f.as_raw_fd()));
    ours.extend(fds.pass.iter().map(|m| m.host.as_raw_fd()));
    ours.extend(fds.exec.iter().chain(&fds.console).map(|f| f.as_raw_fd()));
    ours.extend(fds.cgroup.iter().map(|f| f.as_raw_fd()));
    let sup_fd = sup.as_raw_fd();
    let mut given = Some(given);
    let started = sys::clone_vfork(flags, &mut || match given.take() {
        Some(given) => app_child(spec, sup_fd, given, true),
        None => 125,
    });
    match given.take() {
        // The child never ran: all of it is still ours.
        Some(unused) => drop(unused),
        // The child took them: it execed (their memory stays with us, unused) or dropped them.
        None => {
            for fd in ours {
                let _ = nix::unistd::close(fd);
            }
        }
    }
    started.map_err(|e| (e, None))
}

/// Waits until the application has exited: its status when it is `ours` (the supervisor's
/// child), else only that it is gone (waitid on another's child gives ECHILD; its pidfd polls
/// readable at its exit).
pub fn wait_exit(pidfd: std::os::fd::BorrowedFd<'_>, ours: bool) -> Option<i32> {
    if ours {
        return sys::pidfd_wait(pidfd).ok();
    }
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    loop {
        let mut fds = [PollFd::new(pidfd, PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            _ => return None,
        }
    }
}

/// The application from its first instant: its copy of the supervisor's end `sup` closed, its
/// oom_score_adj, no dumping, its root, exec (`app_main`). Returns only on failure, with the
/// exit status, after reporting the error.
fn app_child(spec: &Spec, sup: RawFd, given: Given, autostart: bool) -> i32 {
    // The application must see EOF when the supervisor goes.
    let _ = nix::unistd::close(sup);
    let Given {
        mut app,
        mut fds,
        program,
    } = given;
    // First: into the container's cgroup, before it allocates or forks anything.
    if !fds.cgroup.is_empty() {
        let err = join_cgroup(spec, std::mem::take(&mut fds.cgroup));
        if let Err(e) = err {
            let _ = wire::send(&app, &AppMsg::Failed(e));
            return 125;
        }
    }
    let oom = spec.process().as_ref().and_then(|p| p.oom_score_adj());
    let sysctl = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref());
    let err = match creds::set_oom_score_adj(oom)
        .and_then(|()| creds::set_sysctls(sysctl))
        .map_err(ProcessError::from)
        // Its /proc/self/timens_offsets too must be written while the process is dumpable.
        .and_then(|()| Ok(tuning::enter_time_namespace(spec)?))
        .and_then(|()| {
            // Until it execs, this process is nsboot: keep others from its /proc/PID/exe. (A
            // vforked one shares the supervisor's mm, which `seal` makes undumpable anyway.)
            let _ = nix::sys::prctl::set_dumpable(false);
            app_main(spec, &mut app, fds, program, autostart)
        }) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let code = err.exit_code();
    let _ = wire::send(&app, &AppMsg::Failed(err));
    code
}

/// Writes "0" to each cgroup.procs, then makes the spec's cgroup namespace, rooted at the
/// cgroup just joined (the supervisor made none: it stays in the caller's cgroup).
fn join_cgroup(spec: &Spec, procs: Vec<OwnedFd>) -> Result<(), ProcessError> {
    let failed = |step: &str, errno: Errno| {
        ProcessError::Step(crate::sys::Failed {
            step: step.into(),
            errno,
        })
    };
    crate::cgroup::join(procs).map_err(|e| failed("joining the container's cgroup", e))?;
    if crate::cgroup::wants_namespace(spec) {
        nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP)
            .map_err(|e| failed("making the cgroup namespace", e.into()))?;
    }
    Ok(())
}

impl App {
    /// Waits until the application has exited ([`wait_exit`]).
    pub fn wait(&self) -> Option<i32> {
        wait_exit(self.pidfd.as_fd(), self.ours)
    }

    /// Releases the application: it execs, or reports why it could not (then it has exited).
    pub fn start(&self) -> Result<(), ProcessError> {
        if !self.autostart {
            wire::send(&self.sock, &())?;
        }
        loop {
            return match wire::recv::<AppMsg>(&self.sock, "the application to exec")? {
                None => Ok(()),
                Some(AppMsg::Failed(e)) => Err(e),
                Some(AppMsg::Exec { program }) => trampoline::outcome(self.sock.as_fd(), program),
                Some(AppMsg::Listener) => {
                    let pid = self.pid.as_raw();
                    // Its failure reaches the application, which reports it.
                    let _ = seccomp::agent::Listener::relay(
                        self.agent.as_ref(),
                        self.sock.as_fd(),
                        pid,
                    );
                    continue;
                }
                Some(AppMsg::Ready) => Err(ProcessError::Step(crate::sys::Failed {
                    step: "starting the application: unexpected Ready".into(),
                    errno: Errno(libc::EPROTO),
                })),
            };
        }
    }
}

/// The application's side, up to exec; returns only on error. `sock` is moved above the fds
/// the application gets.
fn app_main(
    spec: &Spec,
    sock: &mut OwnedFd,
    fds: AppFds,
    seccomp: Option<seccomp::bpf::Program>,
    autostart: bool,
) -> Result<Infallible, ProcessError> {
    let AppFds {
        stdio,
        pass,
        mut exec,
        mut console,
        cgroup: _,
        mount_ns,
    } = fds;
    rootfs::setup_app_root(spec, mount_ns)?;
    let process = spec.process().as_ref().ok_or(ProcessError::NoProcess)?;
    {
        let mut ours = vec![&mut *sock];
        ours.extend(exec.as_mut());
        ours.extend(console.as_mut());
        exec::isolate_fds(stdio, pass, &mut ours)?;
    }
    let sock: &OwnedFd = sock;
    // Resolve the program now, so that a missing one fails `create`, as with runc and crun.
    let program = exec::resolve(process, exec.is_some())?;
    // The pty comes from the container's own devpts, so that its name resolves inside.
    let terminal = match console.take() {
        Some(sock) => {
            let pty = crate::process::console::open_pty(process.console_size())
                .map_err(ProcessError::Console)?;
            crate::process::console::send_master(sock.as_fd(), &pty)
                .map_err(ProcessError::Console)?;
            Some(pty.slave)
        }
        // A created container's process leads a session of its own, as runc's init does: a
        // session led from outside its pid namespace cannot be checkpointed (CRIU).
        None if !autostart => {
            nix::unistd::setsid().map_err(|e| {
                ProcessError::Step(crate::sys::Failed {
                    step: "starting a session for the application".into(),
                    errno: e.into(),
                })
            })?;
            None
        }
        None => None,
    };
    // Before `create` returns, so that a value the kernel refuses fails it, as with runc
    // (whose init meets these before it waits for `start`).
    tuning::apply(spec, process)?;
    caps::CapSets::from_spec(process.capabilities().as_ref())
        .and_then(|sets| sets.validate())
        .map_err(creds::CredsError::from)?;
    wire::send(sock, &AppMsg::Ready)?;
    if !autostart && wire::recv::<()>(sock, "the start signal")?.is_none() {
        // The supervisor went away before starting us: nothing to report to.
        // SAFETY: _exit in a forked child.
        unsafe { libc::_exit(125) }
    }
    exec::exec(
        spec,
        process,
        program,
        sock.as_fd(),
        exec,
        terminal,
        seccomp,
    )
}
