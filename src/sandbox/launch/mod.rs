//! The caller's life, top to bottom, as bubblewrap's main reads: prepare the spec, spawn the
//! supervisor, write the state while it builds the root, run the hooks, start it, wait. `run`
//! and `do` come in through [`run`], `create` through [`create`]; `cli` only parses.

mod create;
mod foreground;

pub use create::{create, CreateOptions};
pub use foreground::run;

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cgroup::{self, Cgroup, CgroupError};
use crate::idmap::{self, Caller, IdRange, IdmapError};
use crate::protocol;
use crate::sandbox::hooks::HookError;
use crate::spec::{self, Spec, SpecError};
use crate::state::StateError;

/// What every launch is given besides its spec: from the global flags, and the supervisor
/// the binary's edge names.
pub struct Context<'a> {
    /// --root: the state root (None: by the state part's rule).
    pub root: Option<&'a Path>,
    /// The logging flags, for an exec'd `nsboot boot` to log the same way.
    pub boot_flags: Vec<String>,
    pub supervisor: protocol::Entry,
    /// `--systemd-cgroup` (or crun's `--cgroup-manager systemd`): the systemd driver.
    pub systemd_cgroup: bool,
}

/// What stops a launch before or after the sandbox's own start-up (whose errors are
/// `SandboxError`s).
#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
pub enum LaunchError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Idmap(#[from] IdmapError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Hook(#[from] HookError),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Rlimit(#[from] crate::process::rlimits::RlimitError),
}

/// The container's cgroup, made and its resources written before the supervisor exists, and
/// its cgroup.procs opened for the application to join. None when the spec asks for no
/// cgroup (then nothing of the cgroup part runs) or an unprivileged caller has none. When
/// the cgroup enforces the device rules, `spec` (the supervisor's copy) loses them: its
/// checks that stand in for a devices cgroup step aside ([`cgroup::devices::hand_over`]).
pub fn make_cgroup(
    spec: &mut Spec,
    id: &str,
    systemd: bool,
) -> Result<Option<(Cgroup, Vec<OwnedFd>)>, LaunchError> {
    if !cgroup::wanted(spec) {
        return Ok(None);
    }
    let Some(mut cg) = cgroup::plan(spec, id, systemd)? else {
        return Ok(None);
    };
    cg.check_unused()?;
    cg.create()?;
    let filled = (|| {
        let r = spec.linux().as_ref().and_then(|l| l.resources().as_ref());
        // Without rules too: runc's default, every device denied but the standard nodes.
        cg.apply_devices(
            r.and_then(|r| r.devices().as_deref()).unwrap_or_default(),
            false,
        )?;
        if let Some(r) = r {
            cg.apply(r)?;
        }
        cg.open_procs()
    })();
    match filled {
        Ok(fds) => {
            if cg.enforces_devices() {
                cgroup::devices::hand_over(spec);
            }
            // The spec's cgroup mount shows this cgroup, not the host's hierarchy.
            cgroup::rewrite_mounts(&cg, spec);
            Ok(Some((cg, fds)))
        }
        Err(e) => {
            let _ = cg.remove();
            Err(e.into())
        }
    }
}

fn ranges(m: Option<&Vec<oci_spec::runtime::LinuxIdMapping>>) -> Vec<IdRange> {
    m.map(|v| {
        v.iter()
            .map(|r| IdRange {
                container: r.container_id(),
                host: r.host_id(),
                size: r.size(),
            })
            .collect()
    })
    .unwrap_or_default()
}

/// What every launch works out first: the absolute bundle, the rootfs, and the id mapping.
pub struct Prepared {
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub mapping: idmap::Mapping,
}

pub fn prepare(spec: &mut Spec, bundle: &Path) -> Result<Prepared, LaunchError> {
    let bundle = std::path::absolute(bundle).unwrap_or_else(|_| bundle.into());
    absolute_bind_sources(spec, &bundle);
    let rootfs = spec::rootfs_path(spec, &bundle)?;
    let linux = spec.linux().as_ref();
    let uids = ranges(linux.and_then(|l| l.uid_mappings().as_ref()));
    let gids = ranges(linux.and_then(|l| l.gid_mappings().as_ref()));
    let user_joined = linux
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|n| {
            n.iter().any(|n| {
                n.typ() == oci_spec::runtime::LinuxNamespaceType::User && n.path().is_some()
            })
        });
    let mapping = if user_joined {
        // A user namespace joined by path has its maps (the spec's must agree: `nspath`).
        idmap::Mapping {
            uids,
            gids,
            writer: idmap::Writer::Direct {
                deny_setgroups: false,
            },
            notice: None,
        }
    } else {
        idmap::choose(&uids, &gids, &Caller::current())?
    };
    if let Some(limits) = spec.process().as_ref().and_then(|p| p.rlimits().as_ref()) {
        crate::process::rlimits::check_inherited(limits, idmap::is_rootless())?;
    }
    Ok(Prepared {
        bundle,
        rootfs,
        mapping,
    })
}

/// Relative bind sources are relative to the bundle (runtime-spec); the supervisor only
/// sees the host at /oldroot, so make them absolute here.
fn absolute_bind_sources(spec: &mut Spec, bundle: &Path) {
    let Some(mounts) = spec.mounts().clone() else {
        return;
    };
    let fixed: Vec<_> = mounts
        .into_iter()
        .map(|mut m| {
            if let Some(src) = m.source().clone().filter(|s| s.is_relative()) {
                let is_bind = m.typ().as_deref() == Some("bind")
                    || m.options()
                        .iter()
                        .flatten()
                        .any(|o| o == "bind" || o == "rbind");
                if is_bind {
                    m.set_source(Some(bundle.join(src)));
                }
            }
            m
        })
        .collect();
    spec.set_mounts(Some(fixed));
}
