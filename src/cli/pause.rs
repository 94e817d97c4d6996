//! `nsboot pause ID` and `nsboot resume ID`: freeze and thaw every process of the container's
//! cgroup (v1 freezer, v2 cgroup.freeze). The supervisor is outside the cgroup: `state`,
//! `kill` and `delete` keep working while the container is paused.

use crate::cgroup::Cgroup;
use crate::cli::Global;
use crate::state::lifecycle::{self, Container, LifecycleError, Status};

// Pause a running container: freeze its processes.
#[derive(Debug, clap::Args)]
pub struct PauseArgs {
    /// The container id.
    pub id: String,
}

pub fn pause(args: PauseArgs, global: &Global) -> i32 {
    finish(act(&args.id, global, true))
}

pub fn resume(args: PauseArgs, global: &Global) -> i32 {
    finish(act(&args.id, global, false))
}

fn finish(r: Result<(), String>) -> i32 {
    match r {
        Ok(()) => 0,
        Err(e) => {
            crate::sys::log::fatal(&e);
            125
        }
    }
}

/// The container and its cgroup, for a command that acts through it.
pub fn load_with_cgroup(id: &str, global: &Global) -> Result<(Container, Cgroup), String> {
    let root = crate::state::root_dir(global.root.as_deref()).map_err(|e| e.to_string())?;
    let c = lifecycle::load(&root, id).map_err(|e| e.to_string())?;
    let cg = c
        .state
        .cgroup
        .clone()
        .ok_or_else(|| LifecycleError::NoCgroup { id: id.into() }.to_string())?;
    Ok((c, cg))
}

fn act(id: &str, global: &Global, freeze: bool) -> Result<(), String> {
    let (c, cg) = load_with_cgroup(id, global)?;
    match (c.status, freeze) {
        (Status::Running, true) | (Status::Paused, false) => {}
        (Status::Paused, true) => {
            return Err(LifecycleError::Paused {
                id: id.into(),
                also: String::new(),
            }
            .to_string())
        }
        (Status::Running | Status::Created, false) => {
            return Err(LifecycleError::NotPaused { id: id.into() }.to_string())
        }
        (status, _) => {
            return Err(LifecycleError::NotRunning {
                id: id.into(),
                status: status.as_str().into(),
            }
            .to_string())
        }
    }
    cg.freeze(freeze).map_err(|e| e.to_string())
}
