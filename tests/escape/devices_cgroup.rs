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

/// /dev/kmsg (char 1:11): on every kernel, outside runc's standard nodes; anyone may open it
/// for writing (reading needs CAP_SYSLOG in the host's namespace, so only writes are probed).
fn kmsg() -> Value {
    json!([{ "path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11, "fileMode": 420,
             "uid": 0, "gid": 0 }])
}

fn kmsg_rule(allow: bool, access: &str) -> Value {
    json!({ "allow": allow, "type": "c", "major": 1, "minor": 11, "access": access })
}

/// Prints `<=ok` or `<=EPERM` (`>` for writing) for each of `redirects` on `path`.
fn probe(path: &str, redirects: &str) -> String {
    format!(
        "for a in {redirects}; do if err=$( (eval \"exec 3$a{path}\") 2>&1 ); then echo $a=ok; \
         else case $err in *'not permitted'*) echo $a=EPERM;; *) echo \"$a: $err\";; esac; fi; done"
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
    // Later rules override earlier ones: write allowed then taken back, or taken then given.
    let cases = [
        (
            "taken",
            [kmsg_rule(true, "rw"), kmsg_rule(false, "w")],
            ">=EPERM\n",
        ),
        (
            "given",
            [kmsg_rule(false, "w"), kmsg_rule(true, "w")],
            ">=ok\n",
        ),
    ];
    for mode in common::modes() {
        for (name, rules, want) in &cases {
            let mut all = vec![json!({ "allow": false, "access": "rwm" })];
            all.extend(rules.iter().cloned());
            let test = format!("devcg-{name}");
            let script = probe("/dev/kmsg", "'>'");
            let bundle = in_cgroup(mode, &test, &script, kmsg(), json!(all));
            if mode == Mode::Root {
                assert_run(&bundle, &id(&test, mode), want);
                continue;
            }
            // No devices cgroup rootless: what only one could hold to stays refused.
            let out = bundle.run(&id(&test, mode));
            assert!(
                out.status == 125 && out.stderr.contains("linux.devices[0]"),
                "{mode:?}: {out:?}"
            );
            common::assert_nothing_left(mode, bundle.state_dir());
        }
    }
}

#[test]
fn a_node_made_with_mknod_under_a_dev_mount_does_not_open() {
    if !common::is_root() {
        eprintln!("mknod needs root: not checked");
        return;
    }
    let mode = Mode::Root;
    let script = format!(
        "{}; {}",
        probe("/vol/kmsg", "'>'"),
        probe("/vol/null", "'<' '>'")
    );
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
    assert_run(&bundle, &id("devcg-mknod", mode), ">=EPERM\n<=ok\n>=ok\n");
}

#[test]
fn a_rule_no_devices_cgroup_can_hold_is_refused() {
    if !common::is_root() {
        eprintln!("a devices cgroup is root's only: not checked");
        return;
    }
    let mode = Mode::Root;
    // A write taken back from one minor of a major allowed whole: the kernel keeps whole keys.
    let rules = json!([
        { "allow": false, "access": "rwm" },
        { "allow": true, "type": "c", "major": 1, "access": "rw" },
        kmsg_rule(false, "w"),
    ]);
    let bundle = in_cgroup(mode, "devcg-hole", "echo ran", json!([]), rules);
    let out = bundle.run(&id("devcg-hole", mode));
    crate::assert_refused(&out, &["linux.resources.devices[2]", "c 1:*"], "hole");
    common::assert_nothing_left(mode, bundle.state_dir());
}
