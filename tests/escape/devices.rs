//! Device nodes: only the nodes nsboot exposes open in the container. A node shipped in the
//! image or in a volume is dead (nodev) unless the spec's mount says `dev`; linux.devices
//! names a real host node of the type and number it claims; linux.resources.devices decides
//! what each exposed node allows, and what only a devices cgroup could enforce is refused.

use std::fs;
use std::path::Path;

use nix::sys::stat::{makedev, mknod, Mode as Perm, SFlag};
use serde_json::{json, Value};

use crate::common::{self, private_rootfs, sh, Bundle};
use crate::{assert_refused, assert_run, id};

/// A node `name` in `dir`, of `kind` and number `major:minor`, mode 0666, given to the
/// mode's user.
fn node(bundle: &Bundle, dir: &Path, name: &str, kind: SFlag, major: u64, minor: u64) {
    let path = dir.join(name);
    mknod(
        &path,
        kind,
        Perm::from_bits_truncate(0o666),
        makedev(major, minor),
    )
    .unwrap_or_else(|e| panic!("mknod {}: {e}", path.display()));
    common::give_to(bundle.mode(), &path);
}

/// A host dir beside the bundle holding a copy of the null device and of loop0.
fn node_dir(bundle: &Bundle, name: &str) -> std::path::PathBuf {
    let dir = bundle.dir().parent().unwrap().join(name);
    fs::create_dir(&dir).unwrap();
    common::give_to(bundle.mode(), &dir);
    node(bundle, &dir, "img-null", SFlag::S_IFCHR, 1, 3);
    node(bundle, &dir, "img-loop0", SFlag::S_IFBLK, 7, 0);
    dir
}

/// Prints NAME=open or NAME=denied for each node, opened for reading.
const PROBE: &str =
    "for n in /img-null /img-loop0 /vol/img-null /vol/img-loop0 /devvol/img-null; do \
     if (: < $n) 2>/dev/null; then echo $n=open; else echo $n=denied; fi; done";

#[test]
fn device_nodes_in_the_image_or_a_volume_do_not_open() {
    if !common::is_root() {
        eprintln!("mknod needs root: not checked");
        return;
    }
    for mode in common::modes() {
        let (bundle, rootfs) = private_rootfs(sh(mode, PROBE), true);
        node(&bundle, &rootfs, "img-null", SFlag::S_IFCHR, 1, 3);
        node(&bundle, &rootfs, "img-loop0", SFlag::S_IFBLK, 7, 0);
        let (vol, devvol) = (node_dir(&bundle, "vol"), node_dir(&bundle, "devvol"));
        let bundle = bundle.edit(|c| {
            let mounts = c["mounts"].as_array_mut().unwrap();
            mounts.push(common::bind(&vol, "/vol", &["rbind"]));
            // The spec asks for device nodes on this one: they work (the null one does).
            mounts.push(common::bind(&devvol, "/devvol", &["rbind", "dev"]));
        });
        // loop0 (7:0) is the host's first loop device; `dev` makes it as reachable as the
        // host's own node, which only real root may open (its mode is 0600 on the host, but
        // this copy is 0666): none of that must depend on nodev being forgotten.
        let want = "/img-null=denied\n/img-loop0=denied\n/vol/img-null=denied\n\
                    /vol/img-loop0=denied\n/devvol/img-null=open\n";
        assert_run(&bundle, &id("imgdev", mode), want);
    }
}

fn with_devices(mode: common::Mode, devices: Value, rules: Option<Value>, script: &str) -> Bundle {
    sh(mode, script).edit(|c| {
        c["linux"]["devices"] = devices;
        if let Some(r) = rules {
            c["linux"]["resources"] = json!({ "devices": r });
        }
    })
}

#[test]
fn a_linux_device_must_be_the_host_node_it_claims_to_be() {
    let cases = [
        // Not a device at all: a host file reached through `..`.
        json!({ "path": "/dev/../etc/hostname", "type": "c", "major": 1, "minor": 3 }),
        // A device, but another one than claimed.
        json!({ "path": "/dev/null", "type": "c", "major": 1, "minor": 5 }),
        json!({ "path": "/dev/zero", "type": "b", "major": 1, "minor": 5 }),
    ];
    for mode in common::modes() {
        for (i, dev) in cases.iter().enumerate() {
            let bundle = with_devices(mode, json!([dev]), None, "cat /etc/hostname; echo ran");
            let out = bundle.run(&id(&format!("baddev{i}"), mode));
            assert_refused(&out, &["linux.devices[0]"], &format!("{mode:?}: {dev}"));
            common::assert_nothing_left(mode, bundle.state_dir());
        }
    }
}

/// podman's shape: deny everything, then allow what --device added.
fn deny_all_then(allow: &[Value]) -> Value {
    let mut rules = vec![json!({ "allow": false, "access": "rwm" })];
    rules.extend(allow.iter().cloned());
    json!(rules)
}

#[test]
fn device_rules_decide_what_each_exposed_node_allows() {
    if !Path::new("/dev/fuse").exists() {
        eprintln!("the host has no /dev/fuse: device rules not checked");
        return;
    }
    let fuse = json!([{ "path": "/dev/fuse", "type": "c", "major": 10, "minor": 229,
        "fileMode": 438, "uid": 0, "gid": 0 }]);
    let rule = |access: &str| json!({ "allow": true, "type": "c", "major": 10, "minor": 229, "access": access });
    // The standard nodes stay usable under deny-all, as runc appends them to every rule list.
    let probe = "echo x > /dev/null && head -c 1 /dev/zero | wc -c; \
                 if (: < /dev/fuse) 2>/dev/null; then echo r=ok; else echo r=no; fi; \
                 if (: > /dev/fuse) 2>/dev/null; then echo w=ok; else echo w=no; fi";
    for mode in common::modes() {
        let full = with_devices(
            mode,
            fuse.clone(),
            Some(deny_all_then(&[rule("rwm")])),
            probe,
        );
        assert_run(&full, &id("rules-rwm", mode), "1\nr=ok\nw=ok\n");
        // Denied, or narrower than read and write (a read-only mount still lets a device
        // open for writing): only a cgroup could hold a bound node to that: refused.
        for (name, allow) in [
            ("deny", vec![]),
            ("r", vec![rule("r")]),
            ("w", vec![rule("w")]),
        ] {
            let b = with_devices(mode, fuse.clone(), Some(deny_all_then(&allow)), probe);
            let out = b.run(&id(&format!("rules-{name}"), mode));
            let ctx = format!("{mode:?}: {name}");
            assert_refused(&out, &["linux.devices[0]", "linux.resources.devices"], &ctx);
            common::assert_nothing_left(mode, b.state_dir());
        }
        let denied = with_devices(mode, json!([]), None, "true");
        // A `dev` mount could hold any node the rules deny: only a cgroup could hold to them.
        let dir = denied.dir().parent().unwrap().join("devvol");
        fs::create_dir(&dir).unwrap();
        common::give_to(mode, &dir);
        let devmount = with_devices(mode, json!([]), Some(deny_all_then(&[])), "true").edit(|c| {
            c["mounts"].as_array_mut().unwrap().push(common::bind(
                &dir,
                "/devvol",
                &["rbind", "dev"],
            ));
        });
        let out = devmount.run(&id("rules-devmount", mode));
        assert_refused(
            &out,
            &["mounts[6]", "dev", "linux.resources.devices"],
            &format!("{mode:?}"),
        );
        common::assert_nothing_left(mode, devmount.state_dir());
    }
}
