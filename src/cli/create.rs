//! `nsboot create`: boot a sandbox and leave it waiting for `start` (the engine path:
//! podman/conmon call create, then start; the supervisor's pid is the container's pid).

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use crate::cli::run::{fail, prepare, Prepared};
use crate::cli::Global;
use crate::hooks::{self, HookKind};
use crate::sandbox::{self, Plan};
use crate::{control, spec, state};

// Create a container: boot it and leave it waiting for `start`.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The bundle directory (holding config.json).
    #[arg(long, short = 'b', default_value = ".")]
    pub bundle: PathBuf,
    /// Write the container's pid (the supervisor's host pid) to this file.
    #[arg(long = "pid-file", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket to send the pty master to when process.terminal is true.
    #[arg(long = "console-socket", value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Pass fds 3 .. 3+N to the application.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Accepted for runc command lines.
    #[arg(long = "no-pivot", hide = true)]
    pub no_pivot: bool,
    /// Accepted for runc command lines.
    #[arg(long = "no-new-keyring", hide = true)]
    pub no_new_keyring: bool,
    /// The container id.
    pub id: String,
}

pub fn run(args: CreateArgs, global: &Global) -> i32 {
    let mut spec = match spec::load(&args.bundle) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    if let Err(e) = state::validate_id(&args.id) {
        return fail(&e);
    }
    let Prepared {
        bundle,
        rootfs,
        mapping,
    } = match prepare(&mut spec, &args.bundle) {
        Ok(p) => p,
        Err(e) => return fail(&e),
    };
    let root = match state::root_dir(global.root.as_deref()) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    let entry = match state::create(&root, &args.id) {
        Ok(e) => e,
        Err(e) => return fail(&e),
    };
    let listener = match control::listen(&entry.path.join("ctl.sock")) {
        Ok(l) => l,
        Err(e) => {
            entry.remove();
            return fail(&e);
        }
    };
    let annotations = spec.annotations().clone();
    let hooks = spec.hooks().clone();
    let terminal = spec::wants_terminal(&spec);
    let console = match (terminal, &args.console_socket) {
        (true, Some(path)) => match crate::console::connect_socket(path) {
            Ok(c) => Some(c),
            Err(e) => {
                entry.remove();
                return fail(&e);
            }
        },
        (true, None) => {
            entry.remove();
            return fail(&"process.terminal is true but no --console-socket was given: pass one, or set terminal to false");
        }
        _ => None,
    };
    // Cloned in-process as for `run`: it must not keep this command's lock on the state dir.
    let (exec_boot, seccomp) = sandbox::supervisor_kind(Some(&root), &spec);
    // The supervisor's share of the lock and the word that the state is written: a killed
    // create never leaves a supervisor that nothing on disk names (an exec'd `nsboot boot`
    // has neither: it dies writing start-sync to a dead caller, its only window).
    let (created, confirm) = match confirmation(&entry, exec_boot) {
        Ok(c) => c,
        Err(e) => {
            entry.remove();
            return fail(&e);
        }
    };
    let plan = Plan {
        id: args.id.clone(),
        spec,
        rootfs: rootfs.clone(),
        mapping,
        attached: false,
        exec_boot,
        bundle: bundle.clone(),
        janitor: None,
        created,
        listener: Some(listener),
        preserve_fds: args.preserve_fds,
        boot_flags: global.boot_flags(),
        console,
        caller_only: [
            Some(entry.lock_fd()),
            state::root_fd(),
            confirm.as_ref().map(|c| c.as_fd()),
        ]
        .into_iter()
        .flatten()
        .collect(),
        supervisor: crate::boot::main,
    };
    let spawning = match sandbox::begin(plan, seccomp) {
        Ok(s) => s,
        Err(e) => {
            entry.remove();
            crate::log::fatal(&e.to_string());
            return e.exit_code();
        }
    };
    // Written while the supervisor builds the root (and the uidmap helpers run): the pid is
    // the supervisor's from here on; engines read the state once create returns, and a failed
    // start removes it.
    let st = state::State::new(
        &args.id,
        "created",
        spawning.pid.as_raw(),
        bundle,
        rootfs,
        annotations,
    );
    let saved = entry.save(&st).and_then(|()| match &args.pid_file {
        Some(p) => std::fs::write(p, spawning.pid.to_string()).map_err(|e| state::StateError::Io {
            path: p.clone(),
            errno: e.into(),
            hint: String::new(),
        }),
        None => Ok(()),
    });
    if let (Ok(()), Some(c)) = (&saved, &confirm) {
        let _ = nix::unistd::write(c, &[1]);
    }
    let sb = match spawning.ready() {
        Ok(sb) => sb,
        Err(e) => {
            entry.remove();
            if let Some(p) = &args.pid_file {
                let _ = std::fs::remove_file(p);
            }
            crate::log::fatal(&e.to_string());
            return e.exit_code();
        }
    };
    // prestart and createRuntime run in the runtime's namespaces once the sandbox exists;
    // createContainer runs here too (nsboot does not enter the container for it).
    let created_hooks = [
        HookKind::Prestart,
        HookKind::CreateRuntime,
        HookKind::CreateContainer,
    ]
    .into_iter()
    .try_for_each(|k| hooks::run(k, hooks.as_ref(), &st).map_err(|e| e.to_string()));
    if let Err(e) = saved.map_err(|e| e.to_string()).and(created_hooks) {
        sb.kill();
        entry.remove();
        return fail(&e);
    }
    0
}

/// For an in-process supervisor: its part of the confirmation (a pipe's read end and a share
/// of the entry's lock) and the caller's (the write end).
fn confirmation(
    entry: &state::Entry,
    exec_boot: bool,
) -> Result<(Option<crate::protocol::Created>, Option<OwnedFd>), String> {
    if exec_boot {
        return Ok((None, None));
    }
    let (confirmed, confirm) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| {
        let hint = crate::sandbox::limits::hint(&e.into());
        format!("creating the create-confirmation pipe: {e}{hint}")
    })?;
    let lock = entry
        .lock_fd()
        .try_clone_to_owned()
        .map_err(|e| format!("sharing the state lock: {e}"))?;
    Ok((
        Some(crate::protocol::Created { confirmed, lock }),
        Some(confirm),
    ))
}
