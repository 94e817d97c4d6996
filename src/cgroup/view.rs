//! The spec's `cgroup` mount, when nsboot manages the container's cgroup: the container sees
//! its own cgroup there, not the host's hierarchy. Rewritten in the spec before the
//! supervisor builds the root: v2, a bind of the cgroup's directory; v1, a tmpfs holding a
//! bind of each hierarchy's directory under the hierarchy's name, made read-only afterwards
//! (`readonlyPaths`), as runc lays it out.

use oci_spec::runtime::{Mount, MountBuilder};

use super::layout::MOUNT;
use super::Cgroup;
use crate::spec::Spec;

fn mount(dest: &std::path::Path, typ: &str, source: &str, options: &[&str]) -> Option<Mount> {
    MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()
        .ok()
}

/// Replaces each `cgroup`/`cgroup2` entry of the spec's mounts by the container's own view.
pub fn rewrite(cg: &Cgroup, spec: &mut Spec) {
    let Some(mounts) = spec.mounts().clone() else {
        return;
    };
    let is_cgroup = |m: &Mount| {
        let t = m.typ().as_deref().unwrap_or("");
        let bind = m
            .options()
            .iter()
            .flatten()
            .any(|o| o == "bind" || o == "rbind");
        !bind && (t == "cgroup" || t == "cgroup2")
    };
    if !mounts.iter().any(is_cgroup) {
        return;
    }
    let mut out = Vec::new();
    let mut readonly = Vec::new();
    for m in mounts {
        if !is_cgroup(&m) {
            out.push(m);
            continue;
        }
        let dest = m.destination().clone();
        let ro = ["rbind", "ro", "nosuid", "nodev", "noexec"];
        if cg.unified {
            let src = cg.dirs[0].path.display().to_string();
            out.extend(mount(&dest, "bind", &src, &ro));
            continue;
        }
        out.extend(mount(
            &dest,
            "tmpfs",
            "tmpfs",
            &["nosuid", "nodev", "noexec", "mode=755"],
        ));
        for d in &cg.dirs {
            let Some(name) = d
                .path
                .strip_prefix(MOUNT)
                .ok()
                .and_then(|r| r.components().next())
                .map(|c| c.as_os_str().to_owned())
            else {
                continue;
            };
            let src = d.path.display().to_string();
            out.extend(mount(&dest.join(name), "bind", &src, &ro));
        }
        readonly.push(dest.display().to_string());
    }
    spec.set_mounts(Some(out));
    if !readonly.is_empty() {
        if let Some(linux) = spec.linux_mut() {
            let mut paths = linux.readonly_paths().clone().unwrap_or_default();
            paths.extend(readonly);
            linux.set_readonly_paths(Some(paths));
        }
    }
}
