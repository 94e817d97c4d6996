//! `nsboot exec`: run another process in a running sandbox. It joins the application's
//! namespaces (`setns`), so that the process is a descendant of the caller (an engine's conmon
//! reaps it), and gets the container's confinement: caps, rlimits, no_new_privs, seccomp,
//! user, cwd, env, through the same exec path as the application.

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use oci_spec::runtime::Process;

use crate::cli::Global;
use crate::process::console;
use crate::process::{FdMapping, ProcessError};
use crate::sandbox::setns::{self, SetnsError, Target};
use crate::spec::Spec;
use crate::state::lifecycle;
use crate::sys::wire;
use crate::sys::{self, Cloned};

mod process_spec;

// Run a process in a running container.
#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// A JSON file holding the OCI process to run (instead of ARGS and the flags below).
    #[arg(long, short = 'p', value_name = "FILE")]
    pub process: Option<PathBuf>,
    /// Return once the process has started, instead of waiting for it.
    #[arg(long, short = 'd')]
    pub detach: bool,
    /// Write the process's host pid to this file.
    #[arg(long = "pid-file", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Give the process a terminal (its master is sent to --console-socket).
    #[arg(long, short = 't')]
    pub tty: bool,
    /// A Unix socket that receives the terminal's master fd (SCM_RIGHTS).
    #[arg(long = "console-socket", value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Working directory inside the container.
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// Set an environment variable (KEY=VALUE; repeatable).
    #[arg(long, short = 'e', value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// UID[:GID] to run as.
    #[arg(long, short = 'u', value_name = "UID[:GID]")]
    pub user: Option<String>,
    /// Add a capability to the bounding, effective and permitted sets (repeatable).
    #[arg(long = "cap", short = 'c', value_name = "CAP")]
    pub caps: Vec<String>,
    /// Pass N more fds (3 .. 3+N-1) to the process.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: i32,
    /// Accepted for runc command lines (nsboot has no SELinux or AppArmor support).
    #[arg(long = "process-label", hide = true)]
    pub process_label: Option<String>,
    #[arg(long = "apparmor", hide = true)]
    pub apparmor: Option<String>,
    /// Run the process in this sub-cgroup of the container's (PATH, or CONTROLLERS:PATH on
    /// cgroup v1; repeatable), which must exist.
    #[arg(long = "cgroup", value_name = "[CONTROLLERS:]PATH")]
    pub cgroup: Vec<String>,
    /// Exec into a paused container (the process starts frozen).
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    /// Set no_new_privs for the process.
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    /// The container id.
    pub id: String,
    /// The command and its arguments (without --process).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
enum ExecError {
    #[error("{0}")]
    Msg(String),
    #[error(transparent)]
    Setns(#[from] SetnsError),
}

impl ExecError {
    fn exit_code(&self) -> i32 {
        match self {
            ExecError::Setns(e) => e.exit_code(),
            ExecError::Msg(_) => 125,
        }
    }
}

/// What the forked child tells the caller before its process runs.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
enum Report {
    Failed(SetnsError),
    /// It hands over to the exec helper (`trampoline::Handover`): its outcome follows.
    Exec {
        program: String,
    },
    /// The seccomp notify fd follows, for the agent (`seccomp::agent`).
    Listener,
}

fn msg(e: impl std::fmt::Display) -> ExecError {
    ExecError::Msg(e.to_string())
}

pub fn run(args: ExecArgs, global: &Global) -> i32 {
    match exec(args, global) {
        Ok(code) => code,
        Err(e) => {
            crate::sys::log::fatal(&e.to_string());
            e.exit_code()
        }
    }
}

fn exec(args: ExecArgs, global: &Global) -> Result<i32, ExecError> {
    // Until it execs the process's own program, the forked child inside the sandbox is this
    // binary: non-dumpable, no process in the sandbox can open its /proc/PID/exe (the runc
    // CVE-2019-5736 class), not even with CAP_SYS_PTRACE in the sandbox's user namespace.
    // The exec of the program resets it.
    let _ = nix::sys::prctl::set_dumpable(false);
    let root = crate::state::root_dir(global.root.as_deref()).map_err(msg)?;
    let c = lifecycle::load(&root, &args.id).map_err(msg)?;
    let app = c.require_app().map_err(msg)?;
    let cgroup = cgroup_procs(&c, &args)?;
    let path = c.state.bundle.join("config.json");
    let bytes = std::fs::read(&path).map_err(|e| {
        msg(format!(
            "reading {}: {e}: the container's bundle is gone",
            path.display()
        ))
    })?;
    let spec = crate::spec::parse(&path, &bytes).map_err(msg)?;
    let process = process_spec::build(&args, &spec).map_err(msg)?;
    // Everything on the host is opened before any namespace changes.
    let console = match (process.terminal().unwrap_or(false), &args.console_socket) {
        (false, _) => None,
        (true, Some(p)) => Some(console::connect_socket(p).map_err(SetnsError::from)?),
        (true, None) => return Err(SetnsError::from(console::ConsoleError::NoSocket).into()),
    };
    let pid_file = args
        .pid_file
        .as_ref()
        .map(|p| {
            std::fs::File::create(p)
                .map_err(|e| msg(format!("creating the pid file {}: {e}", p.display())))
        })
        .transpose()?;
    let agent = crate::process::seccomp::agent::Listener::connect(
        &spec,
        &args.id,
        &c.state.bundle,
        "running",
    )
    .map_err(msg)?;
    let pass = preserved_fds(args.preserve_fds);
    if !args.detach {
        crate::sandbox::block_forwarded_signals().map_err(msg)?;
    }
    // Real root lends the process what only the host's user namespace grants (`lend`).
    let lent = crate::process::tuning::lend(Some(&process));
    let target = setns::join_user_and_pid(&args.id, app)?;
    let (report, report_child) = socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| msg(format!("creating the exec report socket: {e}")))?;
    let (pid, pidfd) = match sys::clone_process(nix::sched::CloneFlags::empty())
        .map_err(|e| msg(format!("forking into the sandbox: {e}")))?
    {
        Cloned::Child => {
            drop(report);
            let mut report_child = report_child;
            let err = match crate::cgroup::join(cgroup)
                .map_err(|errno| {
                    SetnsError::Process(crate::process::ProcessError::Step(crate::sys::Failed {
                        step: "joining the container's cgroup".into(),
                        errno,
                    }))
                })
                .and_then(|()| child(&target, &spec, &process, console, pass, &mut report_child))
            {
                Ok(never) => match never {},
                Err(e) => e,
            };
            let code = err.exit_code();
            let _ = wire::send(&report_child, &Report::Failed(err));
            // SAFETY: _exit in a forked child: none of the parent's destructors may run.
            unsafe { libc::_exit(code) }
        }
        Cloned::Parent { pid, pidfd } => (pid, pidfd),
    };
    lent.restore();
    drop((report_child, console));
    // EOF: the process exec'd (the socket is close-on-exec); a frame: why it could not, or
    // that it handed over to the exec helper, whose outcome follows (or its seccomp notify
    // fd, for the agent, first).
    let started = loop {
        break match wire::recv::<Report>(&report, "the exec'd process to start").map_err(msg)? {
            None => Ok(()),
            Some(Report::Failed(err)) => Err(err),
            Some(Report::Exec { program }) => {
                crate::process::trampoline::outcome(report.as_fd(), program)
                    .map_err(SetnsError::from)
            }
            Some(Report::Listener) => {
                // Its failure reaches the process, which reports it.
                let _ = crate::process::seccomp::agent::Listener::relay(
                    agent.as_ref(),
                    report.as_fd(),
                    pid.as_raw(),
                );
                continue;
            }
        };
    };
    if let Err(err) = started {
        let _ = sys::pidfd_wait(pidfd.as_fd());
        return Err(err.into());
    }
    if let Some(mut f) = pid_file {
        use std::io::Write;
        f.write_all(pid.to_string().as_bytes())
            .map_err(|e| msg(format!("writing the pid file: {e}")))?;
    }
    if args.detach {
        return Ok(0);
    }
    Ok(wait_forwarding(&pidfd))
}

/// The forked child, in the sandbox's pid namespace: join the rest, keep only the fds the
/// process gets (and `report`, moved above them), set up the terminal, exec.
fn child(
    target: &Target,
    spec: &Spec,
    process: &Process,
    mut console: Option<OwnedFd>,
    pass: Vec<FdMapping>,
    report: &mut OwnedFd,
) -> Result<std::convert::Infallible, SetnsError> {
    use crate::process::tuning;
    let affinity = process.exec_cpu_affinity().as_ref();
    // runc 1.2's order: the initial CPUs before the process joins the container, the final
    // ones right before exec.
    tuning::set_affinity(
        affinity.and_then(|a| a.cpu_affinity_initial().as_ref()),
        "initial",
    )
    .map_err(ProcessError::from)?;
    setns::join_rest(target)?;
    tuning::apply(spec, process).map_err(ProcessError::from)?;
    {
        let mut ours = vec![&mut *report];
        ours.extend(console.as_mut());
        crate::process::exec::isolate_fds(Vec::new(), pass, &mut ours)?;
    }
    let program = crate::process::exec::resolve(process, false)?;
    let terminal = match console {
        Some(sock) => {
            // Inside the container's mount namespace: the pty belongs to its devpts.
            let pty = console::open_pty(process.console_size())?;
            console::send_master(sock.as_fd(), &pty)?;
            Some(pty.slave)
        }
        None => None,
    };
    tuning::set_affinity(
        affinity.and_then(|a| a.cpu_affinity_final().as_ref()),
        "final",
    )
    .map_err(ProcessError::from)?;
    Ok(crate::process::exec::exec(
        spec,
        process,
        program,
        report.as_fd(),
        None,
        terminal,
        None,
    )?)
}

/// The cgroup.procs files the process joins through first thing (opened here, on the host):
/// the container's cgroup, or the sub-cgroup --cgroup names. A paused container is refused
/// unless --ignore-paused (runc's rule).
fn cgroup_procs(c: &lifecycle::Container, args: &ExecArgs) -> Result<Vec<OwnedFd>, ExecError> {
    if c.status == lifecycle::Status::Paused && !args.ignore_paused {
        return Err(msg(lifecycle::LifecycleError::Paused {
            id: args.id.clone(),
            also: ", or exec with --ignore-paused".into(),
        }));
    }
    let Some(cg) = &c.state.cgroup else {
        if !args.cgroup.is_empty() {
            return Err(msg(lifecycle::LifecycleError::NoCgroup {
                id: args.id.clone(),
            }));
        }
        return Ok(Vec::new());
    };
    cg.open_procs_at(&args.cgroup).map_err(msg)
}

/// Fds 3 .. 3+n, duplicated so that they survive the exec at the same numbers.
fn preserved_fds(n: i32) -> Vec<FdMapping> {
    (3..3 + n.max(0))
        .filter_map(|fd| {
            let dup = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3 + n)).ok()?;
            // SAFETY: F_DUPFD_CLOEXEC just returned this new fd; we own it alone.
            let host = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(dup) };
            Some(FdMapping { host, app: fd })
        })
        .collect()
}

/// Waits for the process, forwarding the usual signals to it; its status, 128+N for a signal.
fn wait_forwarding(pidfd: &OwnedFd) -> i32 {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let Ok(signals) = crate::sandbox::forwarded_signalfd() else {
        return sys::pidfd_wait(pidfd.as_fd()).unwrap_or(125);
    };
    loop {
        let mut fds = [
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
            PollFd::new(signals.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
            Ok(_) => {}
        }
        if fds[1]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLIN))
        {
            if let Ok(Some(info)) = signals.read_signal() {
                let _ = sys::pidfd_signal(pidfd.as_fd(), info.ssi_signo as i32);
            }
        }
        if fds[0].revents().is_some_and(|r| !r.is_empty()) {
            break;
        }
    }
    sys::pidfd_wait(pidfd.as_fd()).unwrap_or(125)
}
