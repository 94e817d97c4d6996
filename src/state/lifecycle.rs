//! What the lifecycle commands (state, kill, delete, list, ps, exec) share: a container's
//! stored state, its live status, and its processes, all read from the host's /proc.
//!
//! The state file holds the application's host pid (`pid`, as runc's holds its init's) and
//! the supervisor's (`supervisor`). The application is pid 1 of its own pid namespace, where
//! every process of the sandbox lives (unless the spec lists none, or one by path: then only its
//! own tree is the sandbox's). A foreground run's is the supervisor's only child;
//! `create`'s is the caller's child (then the engine's), known by its start time
//! (`app_start`), and alone says whether the container lives, as runc's init does. Status is
//! never trusted from the file alone: a process that died (or a pid that was reused) means
//! "stopped", whatever state.json says.

use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::procs::{end_tree, is_pid_ns_init};
use crate::state::{self, State, StateError};

use crate::sys::Errno;

pub use super::procs::{
    app_pid, children, is_alive, is_app, is_supervisor, ns_id, own_child, pidfd_open, sandbox_pids,
    signal, start_time, wait_exit, wait_reaped,
};

#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
pub enum LifecycleError {
    #[error(transparent)]
    State(#[from] StateError),
    /// Ends with runc's words, which containerd's shim matches (a kill of a finished task).
    #[error("container {} is not running (status {status}): container not running", state::cut(.id))]
    NotRunning { id: String, status: String },
    #[error("container {0} is running: stop it first (`nsboot kill {0} KILL`) or use `delete --force`", state::cut(.id))]
    Running { id: String },
    #[error("{what} of container {id} (pid {pid}): {errno}")]
    Signal {
        what: String,
        id: String,
        pid: i32,
        errno: Errno,
    },
    #[error(
        "the supervisor of container {id} (pid {pid}) did not exit within {secs} s of SIGKILL"
    )]
    Stuck { id: String, pid: i32, secs: u64 },
    #[error("the container was deleted, but {0}")]
    Poststop(String),
    #[error("container {} could not be removed: {path} remains; remove it by hand", state::cut(.id))]
    Remains { id: String, path: PathBuf },
    #[error("container {} is paused: resume it first (`nsboot resume {0}`){also}", state::cut(.id))]
    Paused { id: String, also: String },
    #[error("container {} is not paused", state::cut(.id))]
    NotPaused { id: String },
    #[error("container {} has no cgroup of its own: nsboot made none (no cgroupsPath and no resources, or an unprivileged caller without a delegated one)", state::cut(.id))]
    NoCgroup { id: String },
}

/// The OCI statuses nsboot reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    /// Running, its cgroup frozen (`nsboot pause`).
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// A container as found in the state root, with its status as of now.
#[derive(Debug, Clone)]
pub struct Container {
    pub root: PathBuf,
    pub state: State,
    pub status: Status,
    /// The application's host pid, while it lives.
    pub app: Option<i32>,
}

/// Loads `id` from the state root and finds out how it is doing.
pub fn load(root: &Path, id: &str) -> Result<Container, LifecycleError> {
    let state = state::load(root, id)?;
    Ok(inspect(root, state))
}

/// The live status of a stored state. The supervisor must live and be this container's (a
/// reused pid is not). A created container's application must live too; a foreground run is
/// "created" until its supervisor has seen the application exec (`STARTED_NAME`).
pub fn inspect(root: &Path, state: State) -> Container {
    if state.app_start > 0 {
        let app = is_app(state.pid, state.app_start).then_some(state.pid);
        let status = match app {
            None => Status::Stopped,
            Some(_) if state.status == "created" => Status::Created,
            _ if state.cgroup.as_ref().is_some_and(|c| c.is_frozen()) => Status::Paused,
            _ => Status::Running,
        };
        return Container {
            root: root.into(),
            state,
            status,
            app,
        };
    }
    let sup_pid = state.supervisor_pid();
    let sup = (sup_pid > 0 && is_supervisor(sup_pid, &state.id)).then_some(sup_pid);
    let started = state.status != "created" && (!state.foreground || sup.is_some_and(has_started));
    let app = match sup {
        // A foreground run's application may not be in its root yet: nothing to join or signal.
        Some(_) if state.foreground && !started => None,
        // The stored application pid, while it is still the supervisor's child.
        Some(s) if state.pid > 0 && state.pid != s => {
            (is_alive(state.pid) && children(s).contains(&state.pid)).then_some(state.pid)
        }
        Some(s) => app_pid(s),
        None => None,
    };
    let status = match (sup, app) {
        (None, _) => Status::Stopped,
        (Some(_), _) if !started && state.foreground => Status::Created,
        (Some(_), None) => Status::Stopped,
        (Some(_), Some(_)) if !started => Status::Created,
        _ if state.cgroup.as_ref().is_some_and(|c| c.is_frozen()) => Status::Paused,
        _ => Status::Running,
    };
    Container {
        root: root.into(),
        state,
        status,
        app,
    }
}

/// The supervisor's name once its application has exec'd (set by the supervisor, read here
/// from /proc/PID/comm, which anyone may read).
pub const STARTED_NAME: &str = "nsboot-started";
pub const STARTED_NAME_C: &std::ffi::CStr = c"nsboot-started";

/// Whether the supervisor `pid` has seen its application exec.
fn has_started(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim_end() == STARTED_NAME)
}

impl Container {
    /// The OCI state document (`nsboot state`): pid 0 once stopped, as runc reports it.
    pub fn oci_state(&self) -> serde_json::Value {
        let mut st = self.state.clone();
        st.status = self.status.as_str().into();
        // The application's host pid, as runc reports its init's; the supervisor's only while
        // a foreground run's application is not yet known.
        st.pid = match (self.status, self.app) {
            (Status::Stopped, _) => 0,
            (_, Some(app)) => app,
            _ => st.supervisor_pid(),
        };
        st.foreground = false;
        st.cgroup = None;
        st.supervisor = 0;
        st.app_start = 0;
        let mut v = serde_json::to_value(&st).unwrap_or_default();
        if v.get("annotations").is_none() {
            v["annotations"] = serde_json::json!({});
        }
        v
    }

    /// The application's pid, or NotRunning.
    pub fn require_app(&self) -> Result<i32, LifecycleError> {
        match (self.status, self.app) {
            (Status::Created | Status::Running | Status::Paused, Some(pid)) => Ok(pid),
            _ => Err(LifecycleError::NotRunning {
                id: self.state.id.clone(),
                status: self.status.as_str().into(),
            }),
        }
    }
}

/// Kills the sandbox: `create`'s application (its pid namespace and every process in it die
/// with it), then the supervisor (a foreground run's application is in its pid namespace), and
/// waits for the supervisor to be gone.
pub fn kill_sandbox(c: &Container) -> Result<(), LifecycleError> {
    if c.state.app_start > 0 {
        kill_app(c)?;
    }
    kill_supervisor(c)
}

/// SIGKILL for `create`'s application, through a pidfd checked to be the one started at
/// `app_start`.
fn kill_app(c: &Container) -> Result<(), LifecycleError> {
    let (pid, start) = (c.state.pid, c.state.app_start);
    // Without a pid namespace of its own, what it started would outlive it.
    let tree = || {
        if !is_pid_ns_init(pid) {
            end_tree(pid);
        }
    };
    kill_checked(&c.state.id, pid, "application", || is_app(pid, start), tree).map(drop)
}

/// SIGKILL for the `who` of container `id`, `pid`, through a pidfd: None when it is gone, or
/// when `is_it` (asked once the fd cannot point at a reused pid) says the pid is another's by
/// now. `first` runs just before the signal.
fn kill_checked(
    id: &str,
    pid: i32,
    who: &str,
    is_it: impl FnOnce() -> bool,
    first: impl FnOnce(),
) -> Result<Option<OwnedFd>, LifecycleError> {
    let failed = |what: &str, errno| LifecycleError::Signal {
        what: format!("{what} the {who}"),
        id: id.into(),
        pid,
        errno,
    };
    let fd = match pidfd_open(pid) {
        Ok(fd) => fd,
        Err(e) if e.0 == libc::ESRCH => return Ok(None),
        Err(e) => return Err(failed("opening", e)),
    };
    if !is_it() {
        return Ok(None);
    }
    first();
    match crate::sys::pidfd_signal(fd.as_fd(), libc::SIGKILL) {
        Ok(()) => Ok(Some(fd)),
        Err(e) if e.0 == libc::ESRCH => Ok(None),
        Err(e) => Err(failed("killing", e)),
    }
}

/// Kills the supervisor and waits for it to be gone.
fn kill_supervisor(c: &Container) -> Result<(), LifecycleError> {
    let pid = c.state.supervisor_pid();
    let id = c.state.id.clone();
    let is_it = || is_supervisor(pid, &id);
    let Some(fd) = kill_checked(&id, pid, "supervisor", is_it, || {})? else {
        return Ok(());
    };
    // Gone once its pidfd says so, or once it is exiting (see `is_alive`).
    let secs = 10;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        if wait_exit(&fd, std::time::Duration::from_millis(20)) || !is_alive(pid) {
            return Ok(());
        }
    }
    Err(LifecycleError::Stuck { id, pid, secs })
}

/// println! to stdout, where a closed pipe (`nsboot list | head`) is not a panic.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

/// print! to stdout, ignoring a closed pipe.
macro_rules! out_raw {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($t)*);
    }};
}
pub(crate) use {out, out_raw};
