//! The container's cgroup (resource control): where it goes, made and removed, the spec's
//! `linux.resources` written to it, and what lifecycle commands do through it (freeze, kill
//! every process, stats). The caller (`sandbox::launch`) makes it and writes the resources,
//! then opens its `cgroup.procs` files, which the application writes "0" to as its first step
//! (`join`): the supervisor stays outside, in the caller's cgroup.
//!
//! A spec without `cgroupsPath` and without resources runs none of this ([`wanted`]).
//!
//! Drivers: the cgroupfs one here (directories under the mounts, [`Driver::Fs`]); the systemd
//! one (`systemd/`, a transient scope over D-Bus) plugs in at [`Cgroup::create`] and
//! [`Cgroup::remove`], and the resources it cannot set as unit properties go through the same
//! files ([`Cgroup::apply`]). Device rules (`devices/`: v1 `devices.allow`/`deny`, v2 an
//! eBPF program) are applied at creation and by `update` ([`Cgroup::apply_devices`]).

pub mod devices;
mod fs;
mod layout;
mod ops;
mod path;
mod stats;
pub mod systemd;
mod v1;
mod v2;
mod view;

pub use view::rewrite as rewrite_mounts;

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

use crate::spec::Spec;
use crate::sys::Errno;

pub use layout::Layout;
pub use ops::Leaf;

#[derive(Debug, Clone, thiserror::Error, Serialize, Deserialize)]
pub enum CgroupError {
    /// A spec value the hierarchy cannot take (the JSON path of the field, why).
    #[error("{field}: {why}")]
    Unsupported { field: String, why: String },
    #[error("cgroup {path}: {what}: {errno}{hint}")]
    Io {
        path: PathBuf,
        what: String,
        errno: Errno,
        hint: String,
    },
    /// Writing a field's value failed (the kernel refused it, or the file is missing).
    #[error("linux.resources.{field}: writing {value:?} to {path}: {errno}")]
    Write {
        field: String,
        value: String,
        path: PathBuf,
        errno: Errno,
    },
    #[error("cgroupsPath {path:?}: {why}")]
    Path { path: String, why: String },
    #[error("no cgroup file system is mounted at /sys/fs/cgroup: mount cgroup2 there, or run without cgroup settings")]
    NoHierarchy,
    #[error("container {id} {why}")]
    State { id: String, why: String },
    #[error(transparent)]
    Systemd(#[from] systemd::SystemdError),
}

/// Which code makes and removes the cgroup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Driver {
    /// Directories made and removed under the cgroup mounts.
    Fs,
    /// A transient scope unit of systemd's (`--systemd-cgroup`), its directory systemd's.
    Systemd(systemd::Scope),
}

/// One directory of the container's cgroup: v2 has one; v1 one per mounted hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dir {
    /// The hierarchy's controllers ("memory", "cpu,cpuacct", "name=systemd"; empty on v2).
    pub controllers: Vec<String>,
    /// The directory (absolute, under the hierarchy's mount point).
    pub path: PathBuf,
}

/// The container's cgroup, as stored in its state: lifecycle commands act through it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cgroup {
    /// The unified hierarchy (one directory) or v1.
    pub unified: bool,
    pub dirs: Vec<Dir>,
    pub driver: Driver,
    /// The path as given or made up (cgroupsPath, or `/<id>`), for messages and systemd.
    pub name: String,
}

/// Whether the spec asks for a cgroup at all: a cgroupsPath, or a resource other than device
/// rules (which nsboot applies as nodes). Nothing else of this part runs when it does not.
pub fn wanted(spec: &Spec) -> bool {
    let Some(linux) = spec.linux() else {
        return false;
    };
    if linux
        .cgroups_path()
        .as_ref()
        .is_some_and(|p| !p.as_os_str().is_empty())
    {
        return true;
    }
    linux.resources().as_ref().is_some_and(has_limits)
}

/// Any resource set besides device rules (a 0 or false counts as unset, as runc reads them).
pub fn has_limits(r: &LinuxResources) -> bool {
    v1::any_set(r)
}

/// Where the spec's cgroup goes (cgroupsPath, or runc's `/<id>`), on this host's hierarchy.
/// None: no cgroup for this container (an unprivileged caller with no delegated cgroup, after
/// one warning line).
/// `systemd`: the systemd driver's scope instead (`--systemd-cgroup`).
pub fn plan(spec: &Spec, id: &str, systemd: bool) -> Result<Option<Cgroup>, CgroupError> {
    let rootless = crate::idmap::is_rootless();
    let layout = match Layout::detect() {
        Ok(l) => l,
        Err(e) if rootless => {
            path::skip(&e.to_string());
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let given = spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().clone())
        .filter(|p| !p.as_os_str().is_empty());
    if systemd {
        return Ok(Some(systemd::plan(&layout, given.as_deref(), id)?));
    }
    path::resolve(&layout, given.as_deref(), id, rootless)
}

impl Cgroup {
    /// Refuses a cgroup that already holds processes (another container's, or the caller's
    /// own): its limits, its freezer and `kill --all` would reach them.
    pub fn check_unused(&self) -> Result<(), CgroupError> {
        if self.dirs.is_empty() {
            // systemd's scope: made by create, and refused there if it exists.
            return Ok(());
        }
        let procs = fs::read(self.main_dir(), "cgroup.procs").unwrap_or_default();
        if procs.trim().is_empty() {
            return Ok(());
        }
        Err(CgroupError::Path {
            path: self.name.clone(),
            why: format!(
                "{} already holds processes: give the container a cgroup of its own",
                self.main_dir().display()
            ),
        })
    }

    /// Makes the cgroup's directories (their parents too), or starts systemd's scope, whose
    /// directory it then holds.
    pub fn create(&mut self) -> Result<(), CgroupError> {
        match &mut self.driver {
            Driver::Fs => fs::create(self),
            Driver::Systemd(scope) => {
                let path = scope.start()?;
                self.dirs = vec![Dir {
                    controllers: Vec::new(),
                    path,
                }];
                Ok(())
            }
        }
    }

    /// Writes the spec's resources: every field the hierarchy supports, or the first it
    /// cannot take (named, for the one-line refusal).
    pub fn apply(&self, r: &LinuxResources) -> Result<(), CgroupError> {
        if let Driver::Systemd(scope) = &self.driver {
            scope.update(r)?;
        }
        if self.unified {
            v2::apply(self, r)
        } else {
            v1::apply(self, r)
        }
    }

    /// The `cgroup.procs` of each directory, opened for writing by the caller: the
    /// application writes "0" to each ([`join`]); the open-time credentials make it legal
    /// for a delegated unprivileged caller too.
    pub fn open_procs(&self) -> Result<Vec<OwnedFd>, CgroupError> {
        self.dirs
            .iter()
            .map(|d| fs::open_write(&d.path.join("cgroup.procs")))
            .collect()
    }

    /// The `cgroup.procs` of a sub-cgroup of each directory (`exec --cgroup`): `PATH` for all,
    /// or `CONTROLLERS:PATH` for those v1 hierarchies; none given: the cgroup's own.
    pub fn open_procs_at(&self, subs: &[String]) -> Result<Vec<OwnedFd>, CgroupError> {
        if subs.is_empty() {
            return self.open_procs();
        }
        let mut out = Vec::new();
        for d in &self.dirs {
            let mut sub = None;
            for s in subs {
                match s.split_once(':') {
                    Some((ctl, p)) if !self.unified => {
                        if ctl.split(',').any(|c| d.controllers.iter().any(|h| h == c)) {
                            sub = Some(p);
                        }
                    }
                    _ => sub = Some(s.as_str()),
                }
            }
            let dir = match sub {
                Some(p) => {
                    let rel = std::path::Path::new(p.trim_start_matches('/'));
                    if rel
                        .components()
                        .any(|c| !matches!(c, std::path::Component::Normal(_)))
                    {
                        return Err(CgroupError::Path {
                            path: p.into(),
                            why: "not a path below the container's cgroup: fix --cgroup".into(),
                        });
                    }
                    d.path.join(rel)
                }
                None => d.path.clone(),
            };
            if !dir.is_dir() {
                return Err(CgroupError::Path {
                    path: dir.display().to_string(),
                    why: "no such sub-cgroup of the container: make it first (--cgroup names an existing one)".into(),
                });
            }
            out.push(fs::open_write(&dir.join("cgroup.procs"))?);
        }
        Ok(out)
    }

    /// Removes the container's directories (its processes gone, or killed first).
    pub fn remove(&self) -> Result<(), CgroupError> {
        match &self.driver {
            Driver::Fs => fs::remove(self),
            Driver::Systemd(scope) => Ok(scope.stop()?),
        }
    }

    /// The directory whose files name the container's processes (the unified one, or v1's
    /// first: every hierarchy holds the same processes).
    pub fn main_dir(&self) -> &std::path::Path {
        let pick = self
            .dirs
            .iter()
            .find(|d| d.controllers.iter().any(|c| c == "pids" || c == "memory"));
        &pick.unwrap_or(&self.dirs[0]).path
    }

    /// The directory of one v1 controller (`memory`, `cpu`, ...), if mounted; the unified one
    /// on v2.
    pub fn dir_of(&self, controller: &str) -> Option<&std::path::Path> {
        if self.unified {
            return self.dirs.first().map(|d| d.path.as_path());
        }
        self.dirs
            .iter()
            .find(|d| d.controllers.iter().any(|c| c == controller))
            .map(|d| d.path.as_path())
    }
}

/// The spec asks for a new cgroup namespace (made by the application once it joined the
/// container's cgroup, when nsboot manages one; else by the supervisor's clone).
pub fn wants_namespace(spec: &Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|n| {
            n.iter().any(|n| {
                n.typ() == oci_spec::runtime::LinuxNamespaceType::Cgroup && n.path().is_none()
            })
        })
}

/// The application's first step: it writes "0" (itself) to each `cgroup.procs` the caller
/// opened, then closes them. Async-signal-safe (a vforked child runs it).
pub fn join(procs: Vec<OwnedFd>) -> Result<(), Errno> {
    for fd in procs {
        nix::unistd::write(&fd, b"0")?;
    }
    Ok(())
}
