//! A mount namespace joined by path (`linux.namespaces[].path` of type mount), entered as runc
//! enters one: the container's root, assembled as for any container (by the supervisor at
//! /newroot, then the application's /proc and masks in a namespace of its own, where a /proc
//! that shows it is at hand), is copied whole (a detached, recursive clone); the application
//! joins the given namespace, attaches the copy over that namespace's root and pivots into
//! it. pivot_root moves every process of that namespace whose root was the old one into the
//! container's root, as runc's does: the namespace is the container's from then on.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use nix::sched::{setns, CloneFlags};

use super::resolve::open_root;
use super::{unshare_root, RootfsError, NEWROOT};
use crate::spec::Spec;
use crate::sys::{self, step};

/// Application, its root complete but for pivot_root: moves into `ns` with a copy of the
/// container root attached over that namespace's root and made its working directory.
pub fn enter(spec: &Spec, ns: OwnedFd) -> Result<(), RootfsError> {
    let newroot = step(
        "opening the container root",
        open_root(Path::new(NEWROOT)).map_err(|e| e.nix()),
    )?;
    let tree = step(
        "copying the container root for the mount namespace joined by path",
        sys::mount::clone_tree(newroot.as_fd(), true).map_err(|e| e.nix()),
    )?;
    step(
        "joining the mount namespace given by path (linux.namespaces)",
        setns(ns.as_fd(), CloneFlags::CLONE_NEWNS),
    )?;
    drop(ns);
    // As in a new one: nothing attached here may reach the namespace's peers (the host's, for
    // a namespace that shares with it).
    unshare_root(spec, "making the joined mount namespace's / a slave mount")?;
    let root = step(
        "opening the joined mount namespace's /",
        open_root(Path::new("/")).map_err(|e| e.nix()),
    )?;
    step(
        "attaching the container root over the joined mount namespace's /",
        sys::mount::attach(tree.as_fd(), root.as_fd()).map_err(|e| e.nix()),
    )?;
    // The root attached over "/" is reached only through its own fd: no path walk from the
    // old root enters a mount stacked on that root itself.
    step(
        "entering the container root in the joined mount namespace",
        nix::unistd::fchdir(tree.as_raw_fd()),
    )?;
    Ok(())
}
