//! `create`: boot a sandbox and leave it waiting for `start` (the engine path: podman and
//! conmon call create, then start). The application is this caller's child, as runc's init is
//! runc create's: once create exits, the engine (a subreaper) adopts and reaps it. The pid file
//! and the state's pid name it.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use super::{prepare, Context, LaunchError, Prepared};
use crate::sandbox::hooks::{self, HookKind};
use crate::sandbox::{self, Plan, SandboxError};
use crate::spec::{self, Spec};
use crate::sys::log::fail;
use crate::sys::Errno;
use crate::{control, state};

/// `create`'s own flags.
pub struct CreateOptions<'a> {
    pub id: &'a str,
    pub bundle: &'a Path,
    pub pid_file: Option<&'a Path>,
    pub console_socket: Option<&'a Path>,
    pub preserve_fds: u32,
}

/// Boots the sandbox and leaves it waiting for `start`; its state says "created".
pub fn create(ctx: &Context, mut spec: Spec, args: &CreateOptions) -> i32 {
    if let Err(e) = state::validate_id(args.id) {
        return fail(&e);
    }
    let Prepared {
        bundle,
        rootfs,
        mapping,
    } = match prepare(&mut spec, args.bundle) {
        Ok(p) => p,
        Err(e) => return fail(&e),
    };
    let root = match state::root_dir(ctx.root) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    let entry = match state::create(&root, args.id) {
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
    let (cg, cgroup_fds) = match super::make_cgroup(&mut spec, args.id, ctx.systemd_cgroup) {
        Ok(Some((cg, fds))) => (Some(cg), fds),
        Ok(None) => (None, Vec::new()),
        Err(e) => {
            entry.remove();
            return fail(&e);
        }
    };
    // Every failure below removes the entry and this cgroup.
    let drop_cgroup = || {
        if let Some(cg) = &cg {
            let _ = cg.remove();
        }
    };
    let annotations = spec.annotations().clone();
    let hooks = spec.hooks().clone();
    let terminal = spec::wants_terminal(&spec);
    let console = match (terminal, args.console_socket) {
        (true, Some(path)) => match crate::process::console::connect_socket(path) {
            Ok(c) => Some(c),
            Err(e) => {
                entry.remove();
                drop_cgroup();
                return fail(&e);
            }
        },
        (true, None) => {
            entry.remove();
            drop_cgroup();
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
            drop_cgroup();
            return fail(&e);
        }
    };
    let plan = Plan {
        id: args.id.into(),
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
        boot_flags: ctx.boot_flags.clone(),
        console,
        caller_only: [
            Some(entry.lock_fd()),
            state::root_fd(),
            confirm.as_ref().map(|c| c.as_fd()),
        ]
        .into_iter()
        .flatten()
        .collect(),
        supervisor: ctx.supervisor,
        cgroup: cgroup_fds,
        cgroup_leaves: cg.as_ref().map(|c| c.leaves()).unwrap_or_default(),
    };
    let spawning = match sandbox::begin(plan, seccomp) {
        Ok(s) => s,
        Err(e) => {
            entry.remove();
            drop_cgroup();
            crate::sys::log::fatal(&e.to_string());
            return e.exit_code();
        }
    };
    let sup = spawning.pid.as_raw();
    let undo = |entry: state::Entry| {
        entry.remove();
        if let Some(p) = args.pid_file {
            let _ = std::fs::remove_file(p);
        }
    };
    let sb = match spawning.ready() {
        Ok(sb) => sb,
        Err(e) => {
            undo(entry);
            drop_cgroup();
            crate::sys::log::fatal(&e.to_string());
            return e.exit_code();
        }
    };
    // The application, our child until we exit (its pid cannot be reused before it is
    // reaped): the pid engines wait on and open /proc/PID/ns/*, root and cgroup of, as
    // runc's init. Its start time tells it from a later process of the same pid.
    let mut sb = sb;
    // Reported in the supervisor's pid namespace, which a pid namespace joined by path holds.
    sb.app = state::lifecycle::own_child(sb.app).unwrap_or(sb.app);
    let app = sb.app;
    let Some(app_start) = state::lifecycle::start_time(app) else {
        sb.kill();
        undo(entry);
        drop_cgroup();
        return fail(&format!(
            "the application of container {} (pid {app}) died during create",
            state::cut(args.id)
        ));
    };
    let pid_file = match args.pid_file {
        Some(p) => std::fs::write(p, app.to_string()).map_err(|e| state::StateError::Io {
            path: p.into(),
            errno: e.into(),
            hint: String::new(),
        }),
        None => Ok(()),
    };
    if let Err(e) = pid_file {
        sb.kill();
        undo(entry);
        drop_cgroup();
        return fail(&e);
    }
    let mut st = state::State::new(args.id, "created", app, bundle, rootfs, annotations);
    st.supervisor = sup;
    st.app_start = app_start;
    st.cgroup = cg.clone();
    let saved = entry.save(&st);
    if let (Ok(()), Some(c)) = (&saved, &confirm) {
        let _ = nix::unistd::write(c, &[1]);
    }
    // prestart and createRuntime run in the runtime's namespaces once the sandbox exists,
    // createContainer in the container's (`hooks::run`).
    let done = saved.map_err(LaunchError::from).and_then(|()| {
        [
            HookKind::Prestart,
            HookKind::CreateRuntime,
            HookKind::CreateContainer,
        ]
        .into_iter()
        .try_for_each(|k| hooks::run(k, hooks.as_ref(), &st))
        .map_err(LaunchError::from)
    });
    if let Err(e) = done {
        sb.kill();
        undo(entry);
        drop_cgroup();
        return fail(&e);
    }
    0
}

/// For an in-process supervisor: its part of the confirmation (a pipe's read end and a share
/// of the entry's lock) and the caller's (the write end).
fn confirmation(
    entry: &state::Entry,
    exec_boot: bool,
) -> Result<(Option<crate::protocol::Created>, Option<OwnedFd>), SandboxError> {
    if exec_boot {
        return Ok((None, None));
    }
    let step = |step: &str, errno: Errno| {
        SandboxError::Step(crate::sys::Failed {
            step: step.into(),
            errno,
        })
    };
    let (confirmed, confirm) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| step("creating the create-confirmation pipe", e.into()))?;
    let lock = entry
        .lock_fd()
        .try_clone_to_owned()
        .map_err(|e| step("sharing the state lock", e.into()))?;
    Ok((
        Some(crate::protocol::Created { confirmed, lock }),
        Some(confirm),
    ))
}
