//! Which cgroup hierarchies this host has, read at run time: the unified one alone (v2), or
//! v1 hierarchies (one per mount of type `cgroup`), with the hybrid's controller-less v2 mount
//! beside them.

use std::path::{Path, PathBuf};

use super::CgroupError;

pub const MOUNT: &str = "/sys/fs/cgroup";

/// One mounted hierarchy.
#[derive(Debug, Clone)]
pub struct Hierarchy {
    /// Its controllers ("cpu", "cpuacct", "name=systemd"); empty: the unified one.
    pub controllers: Vec<String>,
    /// Its mount point.
    pub point: PathBuf,
    /// The cgroup mounted there (mountinfo's root: "/" on a host).
    pub root: String,
}

#[derive(Debug, Clone)]
pub enum Layout {
    /// cgroup2 at /sys/fs/cgroup.
    Unified(Hierarchy),
    /// v1: the `cgroup` mounts, plus the hybrid's cgroup2 one (no controllers) if mounted.
    Legacy(Vec<Hierarchy>),
}

impl Layout {
    pub fn detect() -> Result<Layout, CgroupError> {
        let st = nix::sys::statfs::statfs(MOUNT).map_err(|_| CgroupError::NoHierarchy)?;
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mounts = parse_mountinfo(&info);
        if st.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC {
            let root = mounts
                .into_iter()
                .find(|h| h.point == Path::new(MOUNT) && h.controllers.is_empty())
                .map(|h| h.root)
                .unwrap_or_else(|| "/".into());
            return Ok(Layout::Unified(Hierarchy {
                controllers: Vec::new(),
                point: MOUNT.into(),
                root,
            }));
        }
        let v1: Vec<_> = mounts
            .into_iter()
            .filter(|h| h.point.starts_with(MOUNT) && h.point != Path::new(MOUNT))
            .collect();
        if v1.is_empty() {
            return Err(CgroupError::NoHierarchy);
        }
        Ok(Layout::Legacy(v1))
    }

    pub fn unified(&self) -> bool {
        matches!(self, Layout::Unified(_))
    }
}

/// The cgroup mounts of mountinfo: `cgroup2` (no controllers) and `cgroup` (its super options
/// name its controllers). A point mounted twice keeps its last mount.
pub fn parse_mountinfo(info: &str) -> Vec<Hierarchy> {
    let mut out: Vec<Hierarchy> = Vec::new();
    for line in info.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let l: Vec<&str> = left.split(' ').collect();
        let r: Vec<&str> = right.split(' ').collect();
        if l.len() < 5 || r.len() < 3 {
            continue;
        }
        let controllers = match r[0] {
            "cgroup2" => Vec::new(),
            "cgroup" => r[2]
                .split(',')
                .filter(|o| is_controller(o))
                .map(String::from)
                .collect(),
            _ => continue,
        };
        let point = PathBuf::from(unescape(l[4]));
        out.retain(|h| h.point != point);
        out.push(Hierarchy {
            controllers,
            point,
            root: unescape(l[3]),
        });
    }
    out
}

/// A v1 super option that names a controller (the rest are mount flags).
fn is_controller(o: &str) -> bool {
    !matches!(
        o,
        "rw" | "ro" | "noprefix" | "clone_children" | "xattr" | "cpuset_v2_mode" | "none"
    ) && !o.starts_with("release_agent=")
}

/// mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(v as char);
                i += 4;
                continue;
            }
        }
        out.push(b[i] as char);
        i += 1;
    }
    out
}

/// This process's cgroup in the hierarchy with these controllers (from /proc/self/cgroup:
/// `0::/path` for the unified one), as a path under the hierarchy's root.
pub fn own_cgroup(h: &Hierarchy) -> Option<String> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    own_in(&text, h)
}

pub fn own_in(text: &str, h: &Hierarchy) -> Option<String> {
    for line in text.lines() {
        let mut it = line.splitn(3, ':');
        let (_, list, path) = (it.next()?, it.next()?, it.next()?);
        let mut names: Vec<&str> = list.split(',').filter(|s| !s.is_empty()).collect();
        let mut want: Vec<&str> = h.controllers.iter().map(String::as_str).collect();
        names.sort_unstable();
        want.sort_unstable();
        if names == want {
            return Some(path.to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_names_each_hierarchy_and_its_controllers() {
        let info = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n\
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd\n\
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        let h = parse_mountinfo(info);
        assert_eq!(h.len(), 3);
        assert_eq!(h[0].controllers, ["cpu", "cpuacct"]);
        assert_eq!(h[1].controllers, ["name=systemd"]);
        assert!(h[2].controllers.is_empty());
        let own = "9:name=systemd:/a\n1:cpuacct,cpu:/b\n0::/c\n";
        assert_eq!(own_in(own, &h[0]).as_deref(), Some("/b"));
        assert_eq!(own_in(own, &h[1]).as_deref(), Some("/a"));
        assert_eq!(own_in(own, &h[2]).as_deref(), Some("/c"));
    }
}
