//! Device rules held by a devices cgroup: as real root with a cgroup (cgroupsPath), the v1
//! devices hierarchy (this host) or the eBPF program (v2, the VM's cgv2-root) enforces
//! linux.resources.devices on every node, so a bound node may be allowed less than read and
//! write, and a `dev` mount may stand under deny rules: what the rules deny does not open
//! (EPERM), whoever made the node. Rootless there is no devices cgroup, and nsboot keeps
//! refusing what only one could hold to.

use std::fs;

use nix::sys::stat::{makedev, mknod, Mode as Perm, SFlag};
use serde_json::{json, Value};

use crate::common::{self, sh, Bundle, Mode};
use crate::{assert_run, id};

/// /dev/kmsg (char 1:11): on every kernel, outside runc's standard nodes.
fn kmsg() -> Value {
    json!([{ "path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11, "fileMode": 420,
             "uid": 0, "gid": 0 }])
}

fn kmsg_rule(allow: bool, access: &str) -> Value {
    json!({ "allow": allow, "type": "c", "major": 1, "minor": 11, "access": access })
}

/// Prints r=ok|no and w=ok|no for `path`, and EPERM when a denial said so.
fn probe(path: &str) -> String {
    format!(
        "for a in '<' '>'; do if eval \"exec 3$a{path}\" 2>/tmp/err; then echo $a=ok; exec 3>&-; \
         else grep -q 'not permitted' /tmp/err && echo $a=EPERM || cat /tmp/err; fi; done"
    )
}

/// A bundle with a cgroup of its own, the devices and rules given.
fn in_cgroup(mode: Mode, name: &str, script: &str, devices: Value, rules: Value) -> Bundle {
    let path = format!("/nsboot-test-{}", id(name, mode));
    sh(mode, script).edit(|c| {
        c["linux"]["devices"] = devices;
        c["linux"]["resources"] = json!({ "devices": rules });
        c["linux"]["cgroupsPath"] = json!(path);
    })
}

#[test]
fn a_bound_node_is_held_to_rules_narrower_than_read_and_write() {
    // Later rules override earlier ones: allowed rw, then write taken back.
    let rules = json!([
        { "allow": false, "access": "rwm" },
        kmsg_rule(true, "rw"),
        kmsg_rule(false, "w"),
    ]);
    for mode in common::modes() {
        let bundle = in_cgroup(
            mode,
            "devcg-kmsg",
            &probe("/dev/kmsg"),
            kmsg(),
            rules.clone(),
        );
        if mode == Mode::Root {
            assert_run(&bundle, &id("devcg-kmsg", mode), "<=ok\n>=EPERM\n");
            continue;
        }
        // No devices cgroup rootless: what only one could hold to stays refused.
        let out = bundle.run(&id("devcg-kmsg", mode));
        assert!(
            out.status == 125 && out.stderr.contains("linux.devices[0]"),
            "{mode:?}: {out:?}"
        );
        common::assert_nothing_left(mode, bundle.state_dir());
    }
}

#[test]
fn a_node_made_with_mknod_under_a_dev_mount_does_not_open() {
    if !common::is_root() {
        eprintln!("mknod needs root: not checked");
        return;
    }
    let mode = Mode::Root;
    let script = format!("{}; {}", probe("/vol/kmsg"), probe("/vol/null"));
    let bundle = in_cgroup(
        mode,
        "devcg-mknod",
        &script,
        json!([]),
        json!([{ "allow": false, "access": "rwm" }]),
    );
    let dir = bundle.dir().parent().unwrap().join("vol");
    fs::create_dir(&dir).unwrap();
    for (name, minor) in [("kmsg", 11), ("null", 3)] {
        let perm = Perm::from_bits_truncate(0o666);
        mknod(&dir.join(name), SFlag::S_IFCHR, perm, makedev(1, minor)).unwrap();
    }
    let bundle = bundle.edit(|c| {
        let m = common::bind(&dir, "/vol", &["rbind", "dev"]);
        c["mounts"].as_array_mut().unwrap().push(m);
    });
    // The copy of /dev/null is a standard node: allowed; kmsg's copy is denied.
    assert_run(
        &bundle,
        &id("devcg-mknod", mode),
        "<=EPERM\n>=EPERM\n<=ok\n>=ok\n",
    );
}
