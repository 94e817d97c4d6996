//! /proc/PID/mountinfo, parsed: what a sandbox shows of its mounts (its app cats the file).

use std::fs;

/// One line of /proc/PID/mountinfo.
#[derive(Debug, Clone, PartialEq)]
pub struct MountLine {
    pub root: String,
    pub mount_point: String,
    /// Per-mount options (ro, nosuid, relatime...).
    pub options: Vec<String>,
    /// The optional fields: shared:N, master:N...
    pub optional: Vec<String>,
    pub fstype: String,
    pub super_options: Vec<String>,
    pub line: String,
}

impl MountLine {
    pub fn has(&self, option: &str) -> bool {
        self.options.iter().any(|o| o == option)
    }
}

pub fn parse_mountinfo(text: &str) -> Vec<MountLine> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let f: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            Some(MountLine {
                root: f.get(3)?.to_string(),
                mount_point: f.get(4)?.to_string(),
                options: f.get(5)?.split(',').map(str::to_owned).collect(),
                optional: f.get(6..)?.iter().map(|s| s.to_string()).collect(),
                fstype: r.first()?.to_string(),
                super_options: r
                    .get(2)
                    .map(|o| o.split(',').map(str::to_owned).collect())
                    .unwrap_or_default(),
                line: line.to_string(),
            })
        })
        .collect()
}

/// The topmost mount at `point`, if any.
pub fn find_mount<'a>(mounts: &'a [MountLine], point: &str) -> Option<&'a MountLine> {
    mounts.iter().rev().find(|m| m.mount_point == point)
}

/// The topmost mount at `point`; panics with the whole table when there is none.
pub fn mount_at(mounts: &[MountLine], point: &str, ctx: &str) -> MountLine {
    find_mount(mounts, point).cloned().unwrap_or_else(|| {
        let all: Vec<&str> = mounts.iter().map(|m| m.line.as_str()).collect();
        panic!("{ctx}: nothing mounted at {point}:\n{}", all.join("\n"))
    })
}

/// The host's mount points strictly beneath `dir`, as seen by this process.
pub fn host_submounts(dir: &str) -> Vec<String> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mut subs: Vec<String> = parse_mountinfo(&info)
        .into_iter()
        .filter_map(|m| {
            m.mount_point
                .strip_prefix(dir)?
                .strip_prefix('/')
                .map(str::to_owned)
        })
        .collect();
    subs.dedup();
    subs
}
