//! A foreground run (`run`, `do`): spawn, write the state while the supervisor builds the
//! root, start at once, forward signals and wait; the state goes with the application.

use std::path::{Path, PathBuf};

use super::{prepare, Context, Prepared};
use crate::idmap;
use crate::sandbox::{self, Plan};
use crate::spec::{self, Spec};
use crate::state;
use crate::sys::log::fail;

pub fn open_dir(p: &Path) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(p)?;
    Ok(f.into())
}

/// The one path from a spec to an exit status, shared by `run` and `do` (`stateless_ok`: `do`
/// runs unlisted when it has no state root).
pub fn run(
    ctx: &Context,
    id: &str,
    mut spec: Spec,
    bundle: &Path,
    pid_file: Option<&Path>,
    stateless_ok: bool,
) -> i32 {
    if let Err(e) = state::validate_id(id) {
        return fail(&e);
    }
    crate::sys::log::phase("spec");
    let Prepared {
        bundle,
        rootfs,
        mapping,
    } = match prepare(&mut spec, bundle) {
        Ok(p) => p,
        Err(e) => return fail(&e),
    };
    crate::sys::log::phase("prepare");
    let root = match state::root_dir(ctx.root) {
        Ok(r) => Some(r),
        // `do` needs no state (bubblewrap keeps none): it runs unlisted.
        Err(e) if stateless_ok => {
            tracing::debug!("{e}: running without a state entry");
            None
        }
        Err(e) => return fail(&e),
    };
    run_in(
        ctx,
        root.as_deref(),
        id,
        spec,
        rootfs,
        bundle,
        mapping,
        pid_file,
    )
}

#[allow(clippy::too_many_arguments)]
fn run_in(
    ctx: &Context,
    root: Option<&Path>,
    id: &str,
    mut spec: Spec,
    rootfs: PathBuf,
    bundle: PathBuf,
    mapping: idmap::Mapping,
    pid_file: Option<&Path>,
) -> i32 {
    if let Err(e) = sandbox::block_forwarded_signals() {
        return fail(&e);
    }
    let (cg, cgroup_fds) = match super::make_cgroup(&mut spec, id, ctx.systemd_cgroup) {
        Ok(Some((cg, fds))) => (Some(cg), fds),
        Ok(None) => (None, Vec::new()),
        Err(e) => return fail(&e),
    };
    let code = run_in_cgroup(
        ctx, root, id, spec, rootfs, bundle, mapping, pid_file, &cg, cgroup_fds,
    );
    // The application and every process of its pid namespace are gone (or going: `remove`
    // waits a little for the kernel to let the cgroup go).
    if let Some(cg) = &cg {
        if let Err(e) = cg.remove() {
            tracing::warn!("{e}");
        }
    }
    code
}

#[allow(clippy::too_many_arguments)]
fn run_in_cgroup(
    ctx: &Context,
    root: Option<&Path>,
    id: &str,
    spec: Spec,
    rootfs: PathBuf,
    bundle: PathBuf,
    mapping: idmap::Mapping,
    pid_file: Option<&Path>,
    cg: &Option<crate::cgroup::Cgroup>,
    cgroup_fds: Vec<std::os::fd::OwnedFd>,
) -> i32 {
    let annotations = spec.annotations().clone();
    let hooks = spec.hooks().clone();
    let terminal = spec::wants_terminal(&spec);
    let (console_caller, console) = if terminal {
        match crate::sandbox::pty::console_pair() {
            Ok((a, b)) => (Some(a), Some(b)),
            Err(e) => return fail(&e),
        }
    } else {
        (None, None)
    };
    let (exec_boot, seccomp) = sandbox::supervisor_kind(root, &spec);
    // The supervisor removes the state if this caller is killed once the state exists
    // (`created` tells it that it does, and that it is ours).
    let (created_r, created_w) =
        match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK) {
            Ok(p) => p,
            Err(e) => {
                return fail(&sandbox::SandboxError::Step(crate::sys::Failed {
                    step: "creating the state-created pipe".into(),
                    errno: e.into(),
                }))
            }
        };
    let janitor = match (crate::sys::pidfd_self(), root.map(open_dir)) {
        (Ok(caller), Some(Ok(state_root))) => Some(crate::protocol::Janitor {
            caller,
            state_root,
            id: id.into(),
            created: created_r,
            caller_pid: std::process::id(),
        }),
        _ => None,
    };
    let plan = Plan {
        id: id.into(),
        spec,
        rootfs: rootfs.clone(),
        mapping,
        attached: true,
        exec_boot,
        bundle: bundle.clone(),
        janitor,
        created: None,
        listener: None,
        preserve_fds: 0,
        boot_flags: ctx.boot_flags.clone(),
        console,
        // The supervisor reaches the state through the janitor's fd only.
        caller_only: state::root_fd().into_iter().collect(),
        supervisor: ctx.supervisor,
        cgroup: cgroup_fds,
        cgroup_leaves: cg.as_ref().map(|c| c.leaves()).unwrap_or_default(),
    };
    let mut spawning = match sandbox::begin(plan, seccomp) {
        Ok(s) => s,
        Err(e) => {
            crate::sys::log::fatal(&e.to_string());
            return e.exit_code();
        }
    };
    // The state comes after the spawn, so that from its first instant a supervisor exists to
    // remove it should this caller be killed. The supervisor is told before the state appears
    // (it removes it only while nobody holds its lock: never another run's). It is written
    // while the supervisor builds the root, off the start-up's critical path.
    let _ = nix::unistd::write(&created_w, &[1]);
    let pid = spawning.pid.as_raw();
    // One write: the app starts right away (a foreground run is never seen "created").
    // "running" once the supervisor says the application exec'd (`state::lifecycle::inspect`).
    let mut st = state::State::new(id, "running", pid, bundle, rootfs, annotations);
    st.supervisor = pid;
    st.cgroup = cg.clone();
    let entry = match root
        .map(|r| state::create_foreground(r, id, &st))
        .transpose()
    {
        Ok(e) => e,
        Err(e) => {
            spawning.kill();
            return fail(&e);
        }
    };
    if let Some(p) = pid_file {
        let _ = std::fs::write(p, pid.to_string());
    }
    // Without a hook to run between create and start, nothing else of ours has to happen
    // before the application execs: the supervisor gets the Start request now, while it still
    // builds the root, and goes on alone. Not before the id is ours: a run that loses its id
    // to another must never start its application.
    // With a terminal, not before this caller has sized the pty (`pty::receive`): an
    // application started early could read its size as 0x0.
    if !terminal && !has_start_hooks(hooks.as_ref()) {
        spawning.start_early();
    }
    crate::sys::log::phase("state");
    let sb = match spawning.ready() {
        Ok(sb) => sb,
        Err(e) => {
            if let Some(e) = entry {
                e.remove();
            }
            if let Some(p) = pid_file {
                let _ = std::fs::remove_file(p);
            }
            crate::sys::log::fatal(&e.to_string());
            return e.exit_code();
        }
    };
    run_started(&sb, root, entry, st, hooks, console_caller)
}

/// Hooks that run after the sandbox is created and before its application starts.
fn has_start_hooks(hooks: Option<&oci_spec::runtime::Hooks>) -> bool {
    hooks.is_some_and(|h| {
        [
            h.prestart(),
            h.create_runtime(),
            h.create_container(),
            h.start_container(),
        ]
        .iter()
        .any(|l| l.as_ref().is_some_and(|v| !v.is_empty()))
    })
}

/// From start-sync to the end; the state goes once the application has exited (while the
/// supervisor exits), at the latest before returning.
fn run_started(
    sb: &sandbox::Sandbox,
    root: Option<&Path>,
    entry: Option<state::Entry>,
    mut st: state::State,
    hooks: Option<oci_spec::runtime::Hooks>,
    console_caller: Option<std::os::fd::OwnedFd>,
) -> i32 {
    // The app sent its pty master while it was being created (before start-sync).
    let mut entry = entry;
    let mut remove = || {
        if let Some(e) = entry.take() {
            e.remove();
        }
    };
    let mut relay = match console_caller
        .as_ref()
        .map(crate::sandbox::pty::receive)
        .transpose()
    {
        Ok(r) => r,
        Err(e) => {
            sb.kill();
            remove();
            return fail(&e);
        }
    };
    let signals = match sandbox::forwarded_signalfd() {
        Ok(s) => s,
        Err(e) => {
            sb.kill();
            remove();
            return fail(&e);
        }
    };
    use crate::sandbox::hooks::{run as hook, HookKind::*};
    let hooks = hooks.as_ref();
    if hooks.is_some() {
        // The hooks' state names the application, whose namespaces the container's hooks
        // join (once ready, it is the supervisor's only child).
        st.pid = crate::state::lifecycle::app_pid(sb.pid.as_raw()).unwrap_or(st.pid);
    }
    let before = [Prestart, CreateRuntime, CreateContainer, StartContainer];
    if let Err(e) = before.into_iter().try_for_each(|k| hook(k, hooks, &st)) {
        let _ = crate::sys::pidfd_signal(std::os::fd::AsFd::as_fd(&sb.pidfd), libc::SIGKILL);
        let _ = sb.wait_forwarding(&signals, None, &mut remove);
        return fail(&e);
    }
    let code = match sb.start() {
        Err(e) => {
            crate::sys::log::fatal(&e.to_string());
            let _ = sb.wait_forwarding(&signals, relay.as_mut(), &mut remove);
            e.exit_code()
        }
        Ok(_) => {
            crate::sys::log::phase("start");
            if let Err(e) = hook(Poststart, hooks, &st) {
                // As runc: a failing poststart hook stops the container and fails the run.
                crate::sys::log::fatal(&e.to_string());
                let _ =
                    crate::sys::pidfd_signal(std::os::fd::AsFd::as_fd(&sb.pidfd), libc::SIGKILL);
                let _ = sb.wait_forwarding(&signals, relay.as_mut(), &mut remove);
                return finish(125, remove, hooks, st);
            }
            // Housekeeping while the application runs, off the start-up path: the state of
            // runs killed together with their supervisor.
            if let Some(root) = root {
                state::sweep(root, &st.id);
            }
            sb.wait_forwarding(&signals, relay.as_mut(), &mut remove)
        }
    };
    finish(code, remove, hooks, st)
}

/// The state goes, then the poststop hooks run (their failures are warnings: the exit status
/// is the application's).
fn finish(
    code: i32,
    mut remove: impl FnMut(),
    hooks: Option<&oci_spec::runtime::Hooks>,
    mut st: state::State,
) -> i32 {
    remove();
    if hooks.is_some() {
        st.status = "stopped".into();
        let _ = crate::sandbox::hooks::run(crate::sandbox::hooks::HookKind::Poststop, hooks, &st);
    }
    code
}
