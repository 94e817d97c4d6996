//! linux.resources.devices without a devices cgroup.
//!
//! nsboot exposes every device node the container can reach: the standard nodes and
//! linux.devices are bound in from the host, every other mount is nodev unless the spec says
//! `dev`, and a user namespace cannot mknod. So the rule list is applied by evaluating it
//! against each exposed node, as the cgroup would (start from allow-all, later rules override),
//! with the nodes runc appends to every list (the standard ones) allowed at the end.

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

/// What the rules grant one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    pub read: bool,
    pub write: bool,
    pub mknod: bool,
}

/// The nodes runc allows after the spec's rules, whatever they say: (type, major, minor),
/// None for any minor. /dev/null, zero, full, tty, urandom, random, ptmx, the ptys, console,
/// net/tun.
const RUNC_ALLOWED: [(char, i64, Option<i64>); 10] = [
    ('c', 1, Some(3)),
    ('c', 1, Some(5)),
    ('c', 1, Some(7)),
    ('c', 5, Some(0)),
    ('c', 1, Some(9)),
    ('c', 1, Some(8)),
    ('c', 5, Some(2)),
    ('c', 136, None),
    ('c', 5, Some(1)),
    ('c', 10, Some(200)),
];

fn kind(t: Option<LinuxDeviceType>) -> char {
    match t.unwrap_or(LinuxDeviceType::A) {
        LinuxDeviceType::A => 'a',
        LinuxDeviceType::B => 'b',
        LinuxDeviceType::C | LinuxDeviceType::U => 'c',
        LinuxDeviceType::P => 'p',
    }
}

/// A rule's major or minor: absent or negative means any.
fn matches(want: Option<i64>, got: i64) -> bool {
    want.map_or(true, |w| w < 0 || w == got)
}

/// What `rules` grant a node of type `node_kind` ('c', 'b' or 'p') and number major:minor.
pub fn access(rules: &[LinuxDeviceCgroup], node_kind: char, major: i64, minor: i64) -> Access {
    let mut a = Access {
        read: true,
        write: true,
        mknod: true,
    };
    if RUNC_ALLOWED
        .iter()
        .any(|&(k, ma, mi)| k == node_kind && ma == major && matches(mi, minor))
    {
        return a;
    }
    for r in rules {
        let k = kind(r.typ());
        if (k != 'a' && k != node_kind) || !matches(r.major(), major) || !matches(r.minor(), minor)
        {
            continue;
        }
        let access = r.access().clone().unwrap_or_else(|| "rwm".into());
        for c in access.chars() {
            match c {
                'r' => a.read = r.allow(),
                'w' => a.write = r.allow(),
                'm' => a.mknod = r.allow(),
                _ => {}
            }
        }
    }
    a
}

/// Whether the rules deny anything at all: some deny rule comes after the last rule that
/// allows every device everything.
pub fn deny_any(rules: &[LinuxDeviceCgroup]) -> bool {
    let allow_all = |r: &LinuxDeviceCgroup| {
        let access = r.access().clone().unwrap_or_else(|| "rwm".into());
        r.allow()
            && kind(r.typ()) == 'a'
            && matches(r.major(), -1)
            && matches(r.minor(), -1)
            && ['r', 'w', 'm'].iter().all(|c| access.contains(*c))
    };
    let last_allow_all = rules.iter().rposition(allow_all);
    let last_deny = rules.iter().rposition(|r| !r.allow());
    match (last_deny, last_allow_all) {
        (None, _) => false,
        (Some(d), Some(a)) => d > a,
        (Some(_), None) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(json: &str) -> Vec<LinuxDeviceCgroup> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn later_rules_override_earlier_ones_per_access_bit() {
        let r = rules(
            r#"[{"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"},
                {"allow": false, "type": "c", "major": 10, "access": "w"}]"#,
        );
        let fuse = access(&r, 'c', 10, 229);
        assert!(fuse.read && !fuse.write && !fuse.mknod);
        let disk = access(&r, 'b', 8, 0);
        assert!(!disk.read && !disk.write);
        // No rules: the cgroup's default, everything allowed.
        assert!(access(&[], 'b', 8, 0).write);
    }

    #[test]
    fn the_standard_nodes_stay_allowed_under_deny_all() {
        let r = rules(r#"[{"allow": false, "access": "rwm"}]"#);
        assert!(access(&r, 'c', 1, 3).write && access(&r, 'c', 136, 4).read);
        assert!(!access(&r, 'c', 1, 4).read);
    }

    #[test]
    fn deny_any_looks_past_a_later_allow_all() {
        assert!(!deny_any(&[]));
        assert!(deny_any(&rules(r#"[{"allow": false, "access": "rwm"}]"#)));
        let reopened =
            r#"[{"allow": false, "access": "rwm"}, {"allow": true, "type": "a", "access": "rwm"}]"#;
        assert!(!deny_any(&rules(reopened)));
        let partial =
            r#"[{"allow": false, "access": "rwm"}, {"allow": true, "type": "a", "access": "rw"}]"#;
        assert!(deny_any(&rules(partial)));
    }
}
