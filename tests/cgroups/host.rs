//! The host's view of a container's cgroup: the hierarchy (v2 unified, or v1 with one mount
//! per controller), a process's cgroup directories read from /proc/PID/cgroup, and the
//! check that none of a test's cgroups is left.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

pub const MOUNT: &str = "/sys/fs/cgroup";

/// cgroup2 at /sys/fs/cgroup (else v1, hybrid or not).
pub fn unified() -> bool {
    Path::new(MOUNT).join("cgroup.controllers").exists()
}

/// A process's cgroup directories: (controllers, host directory), from /proc/PID/cgroup. On
/// v1 the hybrid's controller-less line ("0::") is left out.
pub fn dirs_of(pid: i32) -> Vec<(String, PathBuf)> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let v2 = unified();
    text.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let (_, ctl, path) = (it.next()?, it.next()?, it.next()?);
            let rel = path.trim_start_matches('/');
            if v2 {
                return (ctl.is_empty()).then(|| (String::new(), Path::new(MOUNT).join(rel)));
            }
            if ctl.is_empty() {
                return None;
            }
            let mount = mount_of(ctl)?;
            Some((ctl.to_string(), mount.join(rel)))
        })
        .collect()
}

/// The v1 mount point of the hierarchy with these controllers ("cpu,cpuacct").
fn mount_of(ctl: &str) -> Option<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut want: Vec<&str> = ctl.split(',').collect();
    want.sort_unstable();
    info.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        let r: Vec<&str> = right.split(' ').collect();
        if r.first() != Some(&"cgroup") {
            return None;
        }
        let mut have: Vec<&str> = r
            .get(2)?
            .split(',')
            .filter(|o| {
                *o != "rw"
                    && *o != "ro"
                    && !o.starts_with("release_agent")
                    && *o != "clone_children"
                    && *o != "xattr"
            })
            .collect();
        have.sort_unstable();
        (have == want).then(|| PathBuf::from(left.split(' ').nth(4).unwrap_or("")))
    })
}

/// The directory of `pid`'s cgroup that holds `controller`'s files (v2: the one directory).
pub fn dir(pid: i32, controller: &str) -> PathBuf {
    let dirs = dirs_of(pid);
    if unified() {
        return dirs.into_iter().next().expect("a v2 cgroup line").1;
    }
    dirs.into_iter()
        .find(|(c, _)| c.split(',').any(|c| c == controller))
        .unwrap_or_else(|| panic!("pid {pid} has no {controller} hierarchy"))
        .1
}

/// A cgroup file's content, trimmed ("" when unreadable).
pub fn read(dir: &Path, file: &str) -> String {
    fs::read_to_string(dir.join(file))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The cgroup directories named `name` (a test's unique cgroupsPath leaf) anywhere under the
/// cgroup mounts, up to a few levels deep: none may be left after a test.
pub fn find_named(name: &str) -> Vec<PathBuf> {
    fn walk(d: &Path, name: &str, depth: u32, out: &mut Vec<PathBuf>) {
        let Ok(rd) = fs::read_dir(d) else { return };
        for e in rd.flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let p = e.path();
            if e.file_name().to_string_lossy() == name {
                out.push(p.clone());
            }
            if depth > 0 {
                walk(&p, name, depth - 1, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(Path::new(MOUNT), name, 6, &mut out);
    out
}

pub fn assert_no_cgroup(name: &str, ctx: &str) {
    // The kernel lets a cgroup go once its last process is reaped: give it a moment.
    for _ in 0..100 {
        if find_named(name).is_empty() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("{ctx}: cgroup left behind: {:?}", find_named(name));
}

/// Whether this host's hierarchy for `controller` has `file` at its top (a kernel feature).
pub fn find_named_file(controller: &str, file: &str) -> bool {
    if unified() {
        return Path::new(MOUNT).join(file).exists()
            || fs::read_dir(MOUNT)
                .into_iter()
                .flatten()
                .flatten()
                .any(|e| e.path().join(file).exists());
    }
    mount_of(controller).is_some_and(|m| m.join(file).exists())
}
