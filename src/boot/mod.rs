//! The supervisor (runsc boot): pid 1 of the sandbox's pid namespace, root inside its user
//! namespace. Its life, top to bottom, is `supervise_app`: sync userns, set up the root, create
//! the application, seal itself, signal start-sync, wait for start, start, serve, exit. Both
//! entries, the exec'd `nsboot boot` and the in-process clone, come in through [`main`] with a
//! [`Handoff`].

mod janitor;
mod orphans;
mod seal;
mod serve;

use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use crate::control::{self, Reply};
use crate::process::{self, AppFds};
use crate::protocol::userns;
use crate::protocol::{self, BootError, Created, Handoff, Janitor, SpecFrom};
use crate::rootfs;
use crate::spec::{self, Spec};
use crate::sys::wire::FdIo;
use seal::{seal, set_names};

/// The supervisor's input, once its spec is read.
struct BootInput {
    id: String,
    spec: Spec,
    rootfs: PathBuf,
    bundle: PathBuf,
    controller: Option<OwnedFd>,
    start_sync: OwnedFd,
    sync_userns: Option<OwnedFd>,
    app: AppFds,
    attached: bool,
    /// `create`'s: the application becomes the caller's child (`process::create`).
    app_to_caller: bool,
    janitor: Option<Janitor>,
    created: Option<Created>,
    seccomp: Option<process::seccomp::bpf::Program>,
    make_netns: bool,
    made_nodes: Option<OwnedFd>,
    shown: rootfs::shown::Shown,
    cgroup_leaves: Vec<crate::cgroup::Leaf>,
}

/// Both entries: read the spec the hand-off names, then supervise. Returns the exit status.
pub fn main(h: Handoff) -> i32 {
    let (spec, rootfs, bundle) = match h.spec {
        SpecFrom::Cloned {
            spec,
            rootfs,
            bundle,
        } => (*spec, rootfs, bundle),
        SpecFrom::Fd { fd, bundle } => {
            let read = read_spec(&fd).and_then(|s| {
                let root = spec::rootfs_path(&s, &bundle)?;
                Ok((s, root, bundle))
            });
            match read {
                Ok(v) => v,
                Err(e) => {
                    protocol::report_failure(&h.start_sync, &e);
                    return 125;
                }
            }
        }
    };
    supervise(BootInput {
        id: h.id,
        spec,
        rootfs,
        bundle,
        controller: h.controller,
        start_sync: h.start_sync,
        sync_userns: h.sync_userns,
        app: h.app,
        attached: h.attached,
        app_to_caller: !h.attached,
        janitor: h.cloned.janitor,
        created: h.cloned.created,
        seccomp: h.cloned.seccomp,
        make_netns: h.cloned.make_netns,
        made_nodes: h.cloned.made_nodes,
        shown: h.cloned.shown,
        cgroup_leaves: h.cloned.cgroup_leaves,
    })
}

/// An exec'd `nsboot boot` started before its maps existed: waits for them and becomes root,
/// or reports why not on start-sync. Its caller then execs itself again (runsc's order: an
/// exec done before the maps existed left it without capabilities in the new namespace).
/// Gives `start_sync` back for the next image.
pub fn sync_userns_before_reexec(sync: OwnedFd, start_sync: OwnedFd) -> Result<OwnedFd, i32> {
    let synced = userns::wait_for_maps_and_become_root(sync);
    crate::sys::log::phase("userns");
    match synced {
        Ok(()) => Ok(start_sync),
        Err(e) => {
            protocol::report_failure(&start_sync, &BootError::from(e));
            Err(125)
        }
    }
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

/// Times one boot phase (shown with --debug).
fn phase<T>(name: &str, f: impl FnOnce() -> T) -> T {
    let r = f();
    crate::sys::log::phase(name);
    r
}

/// The supervisor's life. Returns the exit status: the application's, 128+N for a signal,
/// 125 (or 127/126) when the sandbox could not start.
fn supervise(mut input: BootInput) -> i32 {
    let janitor = input.janitor.take();
    let leaves = std::mem::take(&mut input.cgroup_leaves);
    // A foreground run's supervisor outlives a killed caller long enough to clean up.
    input.attached &= janitor.is_none();
    let code = supervise_app(input, janitor.as_ref());
    let orphaned = janitor
        .as_ref()
        .is_some_and(|j| j.clean_if_orphaned(code == CALLER_GONE));
    if orphaned || code == CALLER_GONE {
        // The application is dead: nobody else will remove its cgroup.
        for leaf in &leaves {
            leaf.remove();
        }
    }
    if code == CALLER_GONE {
        125
    } else {
        code
    }
}

/// An internal status: the caller's end closed during start-up (it died, or gave up).
const CALLER_GONE: i32 = -1;

fn supervise_app(input: BootInput, janitor: Option<&Janitor>) -> i32 {
    let BootInput {
        id,
        spec,
        rootfs,
        bundle,
        controller,
        start_sync,
        sync_userns,
        app,
        attached,
        app_to_caller,
        created,
        seccomp,
        make_netns,
        made_nodes,
        mut shown,
        ..
    } = input;
    let _span = tracing::debug_span!("boot", id = %id).entered();
    // SIGCHLD and the forwarded signals stay pending until `serve` reads them from a signalfd.
    let mut blocked = protocol::forwarded_set();
    blocked.add(nix::sys::signal::Signal::SIGCHLD);
    let _ = blocked.thread_block();
    let booted = (|| -> Result<(process::App, Option<orphans::Orphans>), BootError> {
        if attached {
            // Die with the caller. If it is already gone, the sync fd reads EOF, the maps are
            // missing and becoming root fails: no sandbox outlives a dead caller.
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).map_err(|e| {
                BootError::Step(crate::sys::Failed {
                    step: "setting the parent-death signal".into(),
                    errno: e.into(),
                })
            })?;
        }
        // In a pid namespace of our own, whose init we are (not `create`'s, nor one joined by
        // path, where the pid namespace's init is another's).
        let own_pidns = !app_to_caller && !rootfs::shown::pid_shared(&spec);
        // Started first: it works while we wait for the maps.
        let mut net = if make_netns {
            crate::rootfs::net::Pending::start(own_pidns)?
        } else {
            crate::rootfs::net::Pending::none()
        };
        match sync_userns {
            Some(fd) => phase("userns", || userns::wait_for_maps_and_become_root(fd))?,
            None => userns::become_root()?,
        }
        set_names(&spec)?;
        // While the host is in sight (the root's pivot hides it), as the namespace's root.
        let agent = process::seccomp::agent::Listener::connect(&spec, &id, &bundle, "creating")
            .map_err(process::ProcessError::from)?;
        if !make_netns {
            // A network namespace we were cloned into starts with lo down; we are its root now.
            crate::rootfs::net::setup(&spec)?;
        }
        phase("rootfs", || {
            rootfs::setup_supervisor_root(
                &spec, &rootfs, &mut net, made_nodes, &mut shown, own_pidns,
            )
        })?;
        // A Start already queued (a foreground run): the application execs as soon as its
        // root is ready, while this supervisor drops its /proc and seals itself.
        let autostart = controller.as_ref().is_some_and(control::take_queued_start);
        // In the caller's pid namespace, a foreground run's application leaves its
        // descendants to us (`orphans`); `create`'s, the caller's child, to the engine.
        let orphans = match !app_to_caller && rootfs::shown::pid_host(&spec) {
            true => Some(orphans::Orphans::adopt()?),
            false => None,
        };
        let app = phase("app", || {
            process::create(&spec, app, seccomp, autostart, agent, app_to_caller)
        })?;
        process::tuning::return_lent(spec.process().as_ref());
        // The application has its own /proc now; ours would only reveal the sandbox.
        rootfs::drop_supervisor_proc()?;
        seal(&spec)?;
        Ok((app, orphans))
    })();
    let (app, orphans) = match booted {
        Ok(booted) => booted,
        // Without maps (the caller died before writing them) becoming root fails.
        Err(e @ BootError::Userns(_)) => {
            protocol::report_failure(&start_sync, &e);
            return CALLER_GONE;
        }
        Err(e) => {
            protocol::report_failure(&start_sync, &e);
            return e.exit_code();
        }
    };
    // The caller's child: its pid here is the caller's too (no pid namespace of our own).
    let for_caller = if app.ours { 0 } else { app.pid.as_raw() };
    if protocol::report_ready(&start_sync, for_caller).is_err() {
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
        return start_and_serve(&app, None, janitor, orphans.as_ref());
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
    start_and_serve(&app, Some(conn), janitor, orphans.as_ref())
}

fn start_and_serve(
    app: &process::App,
    controller: Option<OwnedFd>,
    janitor: Option<&Janitor>,
    orphans: Option<&orphans::Orphans>,
) -> i32 {
    if let Err(e) = phase("exec", || app.start()) {
        let code = e.exit_code();
        // With a controller the error goes to the caller, who prints it.
        let unsent = match &controller {
            Some(c) => {
                let _ = crate::sys::wire::send(c, &Reply::StartFailed(e));
                None
            }
            None => Some(e.to_string()),
        };
        let _ = app.wait();
        if let Some(o) = orphans {
            o.end();
        }
        if let Some(msg) = unsent {
            crate::sys::log::fatal(&msg);
        }
        return code;
    }
    // Seen by `state` (/proc/PID/comm): the application has exec'd, the container runs.
    let _ = nix::sys::prctl::set_name(crate::state::lifecycle::STARTED_NAME_C);
    if let Some(c) = &controller {
        let pid = app.pid.as_raw();
        let _ = crate::sys::wire::send(c, &Reply::Started { pid });
    }
    serve::serve(app, controller, janitor.map(|j| j.caller.as_fd()), orphans)
}
