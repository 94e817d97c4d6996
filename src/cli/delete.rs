//! `nsboot delete [--force] ID`: remove a container. Idempotent for what an engine's cleanup
//! meets: a stopped container, a created one (its supervisor is killed: the sandbox's pid
//! namespace dies with it), and, with --force, one that is already gone or half made or
//! half removed by a command killed on the way (see CONTRIBUTING.md, "Crash consistency").
//!
//! Works with an empty environment but XDG_RUNTIME_DIR: it needs no PATH and no HOME.

use std::time::Duration;

use crate::cli::Global;
use crate::sandbox::hooks::{self, HookKind};
use crate::state::lifecycle::{self, LifecycleError, Status};
use crate::state::StateError;

// Delete a container (kill it first with --force, or when it was never started).
#[derive(Debug, clap::Args)]
pub struct DeleteArgs {
    /// Kill a running container; succeed when the id does not exist.
    #[arg(long, short = 'f')]
    pub force: bool,
    /// The container id.
    pub id: String,
}

pub fn run(args: DeleteArgs, global: &Global) -> i32 {
    let deleted = delete(&args, global).and_then(|()| match args.force {
        true => converged(&args.id, global),
        false => Ok(()),
    });
    match deleted {
        Ok(()) => 0,
        Err(e) => {
            crate::sys::log::fatal(&e.to_string());
            125
        }
    }
}

fn delete(args: &DeleteArgs, global: &Global) -> Result<(), LifecycleError> {
    let root = crate::state::root_dir(global.root.as_deref())?;
    let c = match lifecycle::load(&root, &args.id) {
        Ok(c) => c,
        Err(LifecycleError::State(StateError::NotFound { .. } | StateError::Corrupt { .. }))
            if args.force =>
        {
            return match remove_leftover(&root, &args.id)? {
                // A create finished meanwhile: delete what it made.
                true => delete(args, global),
                false => Ok(()),
            };
        }
        Err(e) => return Err(e),
    };
    let hooks = hooks::from_bundle(&c.state.bundle);
    let poststop = hooks.as_ref().and_then(|h| h.poststop().as_ref());
    match c.status {
        Status::Running if !args.force => {
            return Err(LifecycleError::Running {
                id: args.id.clone(),
            })
        }
        Status::Paused if !args.force => {
            return Err(LifecycleError::Paused {
                id: args.id.clone(),
                also: ", or use `delete --force`".into(),
            })
        }
        // A stopped container's supervisor may still be finishing (its application just
        // exited); killing it is harmless and makes sure nothing outlives the delete.
        Status::Running | Status::Paused | Status::Created | Status::Stopped => {
            stop_cgroup(&c);
            // Held before the kill: poststop runs once the application itself is gone.
            let app = c.app.and_then(|p| lifecycle::pidfd_open(p).ok());
            lifecycle::kill_sandbox(&c)?;
            if let Some(fd) = app {
                // Poststop must not see `create`'s application even as a zombie that its
                // engine (or init) has yet to reap: runc too waits until it is gone.
                let seen = c.state.app_start > 0 && poststop.is_some_and(|p| !p.is_empty());
                if lifecycle::wait_exit(&fd, Duration::from_secs(10)) && seen {
                    lifecycle::wait_reaped(&fd, Duration::from_secs(10));
                }
            }
        }
    }
    // A foreground `nsboot run` holds the lock until it has cleaned up after the kill above.
    let entry = match crate::state::lock_existing(&root, &args.id, Duration::from_secs(10)) {
        Ok(e) => Some(e),
        Err(StateError::NotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let mut state = c.state.clone();
    state.status = "stopped".into();
    remove_cgroup(&c)?;
    if let Some(entry) = entry {
        entry.remove();
    }
    // As runc: the container is gone whatever poststop does; its first failure is reported.
    hooks::run(HookKind::Poststop, hooks.as_ref(), &state)
        .map_err(|e| LifecycleError::Poststop(e.to_string()))
}

/// Every process of the container's cgroup killed (a paused one thawed: a frozen v1 task
/// does not die), so that the supervisor's exit waits on none.
fn stop_cgroup(c: &lifecycle::Container) {
    if let Some(cg) = &c.state.cgroup {
        let _ = cg.signal_all(libc::SIGKILL);
    }
}

/// The container's cgroup goes with it (before its state: a delete that fails here can be
/// run again).
fn remove_cgroup(c: &lifecycle::Container) -> Result<(), LifecycleError> {
    let Some(cg) = &c.state.cgroup else {
        return Ok(());
    };
    cg.destroy().map_err(|e| {
        tracing::error!("{e}");
        LifecycleError::Remains {
            id: c.state.id.clone(),
            path: cg.main_dir().into(),
        }
    })
}

/// After --force: what killed commands left of the id goes too, and nothing of it may remain.
fn converged(id: &str, global: &Global) -> Result<(), LifecycleError> {
    let root = crate::state::root_dir(global.root.as_deref())?;
    crate::state::remove_debris(&root, id)?;
    match std::fs::symlink_metadata(root.join(id)) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        _ => Err(LifecycleError::Remains {
            id: id.into(),
            path: crate::state::shown(&root.join(id)),
        }),
    }
}

/// --force on an id without a (readable) state: remove whatever directory is left. True when
/// a create that held the lock has meanwhile written a state (the caller deletes it properly).
fn remove_leftover(root: &std::path::Path, id: &str) -> Result<bool, LifecycleError> {
    // A create in progress holds the lock and has not written state.json yet: wait for it.
    let _lock = match crate::state::lock_existing(root, id, Duration::from_secs(10)) {
        Ok(e) => Some(e),
        Err(StateError::NotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let dir = root.join(id);
    if _lock.is_some() && crate::state::load(root, id).is_ok() {
        return Ok(true);
    }
    match crate::state::remove_path(&dir) {
        Ok(()) => Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(StateError::Io {
            path: dir,
            errno: e.into(),
            hint: String::new(),
        }
        .into()),
    }
}
