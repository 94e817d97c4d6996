//! Where the container's cgroup goes, as runc places it: an absolute cgroupsPath under each
//! hierarchy's mount point; a relative one (and no cgroupsPath: the container's id) under
//! nsboot's own cgroup (v1), or its parent on v2, whose own cgroup already holds processes and
//! so could enable no controller for a child.
//!
//! Unprivileged: on v2, the cgroup must lie in a subtree delegated to the caller (its nearest
//! existing directory writable by it); elsewhere, and on v1, one warning and no cgroup.

use std::path::{Component, Path};

use super::layout::{own_cgroup, Hierarchy, Layout};
use super::{Cgroup, CgroupError, Dir, Driver};

pub fn resolve(
    layout: &Layout,
    given: Option<&Path>,
    id: &str,
    rootless: bool,
) -> Result<Option<Cgroup>, CgroupError> {
    let name = given.map_or_else(|| id.to_string(), |p| p.display().to_string());
    let inner = given.unwrap_or(Path::new(id));
    for c in inner.components() {
        if matches!(c, Component::ParentDir) {
            return Err(CgroupError::Path {
                path: name,
                why: "\"..\" would leave the cgroup hierarchy: give a path without it".into(),
            });
        }
    }
    let (unified, hierarchies): (bool, Vec<&Hierarchy>) = match layout {
        Layout::Unified(h) => (true, vec![h]),
        Layout::Legacy(v) => (false, v.iter().collect()),
    };
    if rootless && !unified {
        skip("cgroup v1 gives an unprivileged caller no cgroup of its own");
        return Ok(None);
    }
    let mut dirs = Vec::new();
    for h in hierarchies {
        let path = if inner.is_absolute() {
            h.point.join(strip_root(inner))
        } else {
            let own = own_cgroup(h).unwrap_or_else(|| "/".into());
            let own = Path::new(&own);
            let base = if unified {
                own.parent().unwrap_or(Path::new("/"))
            } else {
                own
            };
            h.point.join(strip_root(base)).join(inner)
        };
        dirs.push(Dir {
            controllers: h.controllers.clone(),
            path,
        });
    }
    if rootless && !dirs.iter().all(|d| writable_ancestor(&d.path)) {
        skip("no cgroup is delegated to this unprivileged caller there (its nearest directory is not writable)");
        return Ok(None);
    }
    Ok(Some(Cgroup {
        unified,
        dirs,
        driver: Driver::Fs,
        name,
    }))
}

/// The one warning of a container that runs without its cgroup settings.
pub fn skip(why: &str) {
    tracing::warn!(
        "linux.resources, linux.cgroupsPath: not applied: {why}; the container runs without these limits"
    );
}

fn strip_root(p: &Path) -> &Path {
    p.strip_prefix("/").unwrap_or(p)
}

/// The nearest existing directory at or above `p` is writable by the caller's real ids.
fn writable_ancestor(p: &Path) -> bool {
    let mut cur = Some(p);
    while let Some(d) = cur {
        if d.exists() {
            let leaf_ok = nix::unistd::access(d, nix::unistd::AccessFlags::W_OK).is_ok();
            // An existing cgroup must also take our processes.
            let procs = d.join("cgroup.procs");
            return leaf_ok
                && (d != p || nix::unistd::access(&procs, nix::unistd::AccessFlags::W_OK).is_ok());
        }
        cur = d.parent();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v1() -> Layout {
        Layout::Legacy(vec![Hierarchy {
            controllers: vec!["memory".into()],
            point: "/sys/fs/cgroup/memory".into(),
            root: "/".into(),
        }])
    }

    #[test]
    fn an_absolute_path_lies_under_each_mount_point() {
        let cg = resolve(&v1(), Some(Path::new("/a/b")), "x", false)
            .unwrap()
            .unwrap();
        assert_eq!(cg.dirs[0].path, Path::new("/sys/fs/cgroup/memory/a/b"));
        assert!(!cg.unified);
    }

    #[test]
    fn dot_dot_is_refused() {
        let e = resolve(&v1(), Some(Path::new("/a/../../etc")), "x", false).unwrap_err();
        assert!(e.to_string().contains("\"..\""), "{e}");
    }

    #[test]
    fn rootless_on_v1_has_no_cgroup() {
        assert!(resolve(&v1(), Some(Path::new("/a")), "x", true)
            .unwrap()
            .is_none());
    }
}
