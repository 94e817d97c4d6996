//! The supervisor (runsc boot): pid 1 of the sandbox's pid namespace, root inside its user
//! namespace. Its life, top to bottom, is `supervise`: sync userns, set up the root, create
//! the application, seal itself, signal start-sync, wait for start, start, serve, exit.

mod serve;

pub use serve::forwarded_set as forwarded_signals;

use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::control::{self, ControlError, Reply};
pub use crate::process::FdMapping;
use crate::process::{self, caps, AppFds, ProcessError};
use crate::rootfs::{self, RootfsError};
use crate::spec::{self, Spec, SpecError};
use crate::sys::Errno;
use crate::userns::{self, UsernsError};
use crate::wire::{self, FdIo};

/// The fds a supervisor is given (runsc boot's fd contract).
pub struct BootFds {
    pub spec: OwnedFd,
    pub controller: Option<OwnedFd>,
    pub start_sync: OwnedFd,
    pub sync_userns: Option<OwnedFd>,
    pub stdio: Vec<OwnedFd>,
    pub pass: Vec<FdMapping>,
    pub exec: Option<OwnedFd>,
    pub console: Option<OwnedFd>,
}

/// Everything the supervisor needs, whether it was exec'd as `nsboot boot` or cloned in-process.
pub struct BootInput {
    pub id: String,
    pub spec: Spec,
    pub rootfs: PathBuf,
    pub controller: Option<OwnedFd>,
    pub start_sync: OwnedFd,
    pub sync_userns: Option<OwnedFd>,
    pub app: AppFds,
    pub attached: bool,
    pub janitor: Option<Janitor>,
    /// For `create`: see [`Created`].
    pub created: Option<Created>,
    /// The seccomp program the caller compiled for the spec (None: the application compiles it).
    pub seccomp: Option<process::seccomp::bpf::Program>,
    /// The spec's new network namespace is the supervisor's to make (the caller did not clone
    /// into it): a helper makes it while the root is built ([`crate::net::Pending`]).
    pub make_netns: bool,
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

impl Janitor {
    fn caller_died(&self) -> bool {
        crate::sys::pidfd_exited(self.caller.as_fd())
    }
    /// Removes the state when the caller can no longer do it. `suspect`: the supervisor
    /// stopped because the caller's end closed; a dying process closes its files before its
    /// pidfd reports the exit, so give that a moment instead of asking once.
    fn clean_if_orphaned(&self, suspect: bool) {
        let dead = if suspect {
            use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
            let mut fds = [PollFd::new(self.caller.as_fd(), PollFlags::POLLIN)];
            matches!(poll(&mut fds, PollTimeout::from(2000u16)), Ok(n) if n > 0)
        } else {
            self.caller_died()
        };
        let mut b = [0u8; 1];
        let ours = matches!(
            nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(&self.created), &mut b),
            Ok(1)
        );
        if dead && ours {
            crate::state::remove_at(self.state_root.as_fd(), &self.id);
        }
        if dead {
            let private = crate::state::private_name(&self.id, self.caller_pid);
            crate::state::remove_at(self.state_root.as_fd(), &private);
        }
    }
}

/// For `create`: its caller's word that the container's state is written (a byte on a pipe),
/// and a share of its lock on the entry, held until then. A caller killed before the word
/// leaves nothing on disk that names this supervisor: it then ends itself, and a
/// `delete --force` that waits for the lock finds nothing running.
pub struct Created {
    pub confirmed: OwnedFd,
    pub lock: OwnedFd,
}

impl Created {
    /// Waits for the word; false when the caller died first. The lock goes either way.
    fn wait(self) -> bool {
        let mut b = [0u8; 1];
        loop {
            match nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(&self.confirmed), &mut b) {
                Err(nix::errno::Errno::EINTR) => continue,
                Ok(1) => return true,
                _ => return false,
            }
        }
    }
}

#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
pub enum BootError {
    #[error(transparent)]
    Userns(#[from] UsernsError),
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error(transparent)]
    Process(#[from] ProcessError),
    #[error(transparent)]
    Caps(#[from] caps::CapsError),
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Net(#[from] crate::net::NetError),
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error("reading the spec from --spec-fd: {0}")]
    SpecFd(String),
    #[error("{step}: {errno}")]
    Step { step: String, errno: Errno },
}

impl BootError {
    pub fn exit_code(&self) -> i32 {
        match self {
            BootError::Process(e) => e.exit_code(),
            _ => 125,
        }
    }
}

/// What the start-sync fd carries: one byte, READY; or FAILED and the error as a frame.
pub const READY: u8 = 1;
pub const FAILED: u8 = 0;

/// `nsboot boot`: read the spec from its fd, then supervise.
pub fn main_from_fds(fds: BootFds, bundle: &Path, id: &str, attached: bool) -> i32 {
    let spec = read_spec(&fds.spec).and_then(|s| {
        let root = spec::rootfs_path(&s, bundle)?;
        Ok((s, root))
    });
    let (spec, rootfs) = match spec {
        Ok(v) => v,
        Err(e) => {
            report_failure(&fds.start_sync, &e);
            return 125;
        }
    };
    drop(fds.spec);
    supervise(BootInput {
        id: id.into(),
        spec,
        rootfs,
        controller: fds.controller,
        start_sync: fds.start_sync,
        sync_userns: fds.sync_userns,
        app: AppFds {
            stdio: fds.stdio,
            pass: fds.pass,
            exec: fds.exec,
            console: fds.console,
        },
        attached,
        janitor: None,
        created: None,
        seccomp: None,
        // `nsboot boot` is started in every namespace of the spec by its caller.
        make_netns: false,
    })
}

fn read_spec(fd: &OwnedFd) -> Result<Spec, BootError> {
    let mut text = String::new();
    let _ = nix::unistd::lseek(
        std::os::fd::AsRawFd::as_raw_fd(fd),
        0,
        nix::unistd::Whence::SeekSet,
    );
    FdIo(fd.as_fd())
        .read_to_string(&mut text)
        .map_err(|e| BootError::SpecFd(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| BootError::SpecFd(e.to_string()))
}

/// Writes FAILED and the error to the start-sync fd, so the caller prints boot's own error.
fn report_failure(start_sync: &OwnedFd, err: &BootError) {
    let _ = nix::unistd::write(start_sync, &[FAILED]);
    let _ = wire::send(start_sync, err);
}

/// Times one boot phase (shown with --debug).
fn phase<T>(name: &str, f: impl FnOnce() -> T) -> T {
    let r = f();
    crate::log::phase(name);
    r
}

/// The supervisor's life. Returns the exit status: the application's, 128+N for a signal,
/// 125 (or 127/126) when the sandbox could not start.
pub fn supervise(input: BootInput) -> i32 {
    let janitor = input.janitor;
    let code = supervise_app(
        input.id,
        input.spec,
        input.rootfs,
        input.controller,
        input.start_sync,
        input.sync_userns,
        input.app,
        input.attached && janitor.is_none(),
        janitor.as_ref(),
        input.created,
        input.seccomp,
        input.make_netns,
    );
    if let Some(j) = &janitor {
        j.clean_if_orphaned(code == CALLER_GONE);
    }
    if code == CALLER_GONE {
        125
    } else {
        code
    }
}

/// An internal status: the caller's end closed during start-up (it died, or gave up).
const CALLER_GONE: i32 = -1;

#[allow(clippy::too_many_arguments)]
fn supervise_app(
    id: String,
    spec: Spec,
    rootfs: PathBuf,
    controller: Option<OwnedFd>,
    start_sync: OwnedFd,
    sync_userns: Option<OwnedFd>,
    app: AppFds,
    attached: bool,
    janitor: Option<&Janitor>,
    created: Option<Created>,
    seccomp: Option<process::seccomp::bpf::Program>,
    make_netns: bool,
) -> i32 {
    let _span = tracing::debug_span!("boot", id = %id).entered();
    // SIGCHLD and the forwarded signals stay pending until `serve` reads them from a signalfd.
    let mut blocked = serve::forwarded_set();
    blocked.add(nix::sys::signal::Signal::SIGCHLD);
    let _ = blocked.thread_block();
    let booted = (|| -> Result<process::App, BootError> {
        if attached {
            // Die with the caller. If it is already gone, the sync fd reads EOF, the maps are
            // missing and becoming root fails: no sandbox outlives a dead caller.
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).map_err(|e| {
                BootError::Step {
                    step: "setting the parent-death signal".into(),
                    errno: e.into(),
                }
            })?;
        }
        // Started first: it works while we wait for the maps.
        let mut net = if make_netns {
            crate::net::Pending::start()?
        } else {
            crate::net::Pending::none()
        };
        match sync_userns {
            Some(fd) => phase("userns", || userns::wait_for_maps_and_become_root(fd))?,
            None => userns::become_root()?,
        }
        set_names(&spec)?;
        if !make_netns {
            // A network namespace we were cloned into starts with lo down; we are its root now.
            crate::net::setup(&spec)?;
        }
        phase("rootfs", || {
            rootfs::setup_supervisor_root(&spec, &rootfs, &mut net)
        })?;
        // A Start already queued (a foreground run): the application execs as soon as its
        // root is ready, while this supervisor drops its /proc and seals itself.
        let autostart = controller.as_ref().is_some_and(control::take_queued_start);
        let app = phase("app", || process::create(&spec, app, seccomp, autostart))?;
        // The application has its own /proc now; ours would only reveal the sandbox.
        rootfs::drop_supervisor_proc()?;
        seal(&spec)?;
        Ok(app)
    })();
    let app = match booted {
        Ok(app) => app,
        // Without maps (the caller died before writing them) becoming root fails.
        Err(e @ BootError::Userns(_)) => {
            report_failure(&start_sync, &e);
            return CALLER_GONE;
        }
        Err(e) => {
            report_failure(&start_sync, &e);
            return e.exit_code();
        }
    };
    if nix::unistd::write(&start_sync, &[READY]).is_err() {
        let _ = crate::sys::pidfd_signal(app.pidfd.as_fd(), libc::SIGKILL);
        return CALLER_GONE;
    }
    drop(start_sync);
    if created.is_some_and(|c| !c.wait()) {
        tracing::debug!("the caller of create died before writing the state");
        let _ = crate::sys::pidfd_signal(app.pidfd.as_fd(), libc::SIGKILL);
        return CALLER_GONE;
    }
    let Some(controller) = controller else {
        return start_and_serve(&app, None, janitor);
    };
    // Autostart: the Start request was taken already, on this connected socket.
    let conn = if app.autostart {
        Ok(controller)
    } else {
        control::wait_for_start(controller)
    };
    let conn = match conn {
        Ok(c) => c,
        Err(e) => {
            // The caller gave up (or died) before starting us.
            tracing::debug!("no start signal: {e}");
            let _ = crate::sys::pidfd_signal(app.pidfd.as_fd(), libc::SIGKILL);
            return CALLER_GONE;
        }
    };
    start_and_serve(&app, Some(conn), janitor)
}

fn start_and_serve(
    app: &process::App,
    controller: Option<OwnedFd>,
    janitor: Option<&Janitor>,
) -> i32 {
    let started = phase("exec", || app.start());
    if let Some(c) = &controller {
        let reply = match &started {
            Ok(()) => Reply::Started {
                pid: app.pid.as_raw(),
            },
            Err(e) => Reply::StartFailed(clone_err(e)),
        };
        let _ = wire::send(c, &reply);
    }
    if let Err(e) = started {
        let code = e.exit_code();
        let _ = crate::sys::pidfd_wait(app.pidfd.as_fd());
        if controller.is_none() {
            crate::log::fatal(&e.to_string());
        }
        return code;
    }
    serve::serve(app, controller, janitor.map(|j| j.caller.as_fd()))
}

/// ProcessError is not Clone (it holds nested errors); a round trip through serde copies it.
fn clone_err(e: &ProcessError) -> ProcessError {
    serde_json::to_vec(e)
        .ok()
        .and_then(|v| serde_json::from_slice(&v).ok())
        .unwrap_or(ProcessError::Step {
            step: e.to_string(),
            errno: Errno(0),
        })
}

/// hostname and domainname, in the sandbox's UTS namespace.
fn set_names(spec: &Spec) -> Result<(), BootError> {
    if let Some(h) = spec.hostname() {
        nix::unistd::sethostname(h).map_err(|e| BootError::Step {
            step: format!("setting hostname {h:?}"),
            errno: e.into(),
        })?;
    }
    if let Some(d) = spec.domainname() {
        // SAFETY: setdomainname reads len bytes from a valid buffer.
        let r = unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) };
        if r != 0 {
            return Err(BootError::Step {
                step: format!("setting domainname {d:?}"),
                errno: Errno::last(),
            });
        }
    }
    Ok(())
}

/// The supervisor keeps only the spec's caps merged with the file caps, creates exact modes
/// (umask 0) and cannot be ptraced or dumped.
fn seal(spec: &Spec) -> Result<(), BootError> {
    let spec_caps = spec
        .process()
        .as_ref()
        .and_then(|p| p.capabilities().as_ref());
    caps::apply_supervisor(spec_caps)?;
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    nix::sys::prctl::set_dumpable(false).map_err(|e| BootError::Step {
        step: "making the supervisor non-dumpable".into(),
        errno: e.into(),
    })
}
