//! The device rules as the kernel enforces them, through `cgroup::devices` on a real cgroup:
//! the v1 devices hierarchy (this host, as root) and the eBPF program on a cgroup2 directory
//! (the hybrid's controller-less v2 mount here, `/sys/fs/cgroup` in the VM's cgv2-root). A
//! shell joins the cgroup, then opens /dev/kmsg (char 1:11, outside runc's standard nodes)
//! for reading or writing. Root only: nobody else may attach a device program or write
//! devices.allow.

mod common;
#[path = "lifecycle/support.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use std::os::fd::AsFd;

use nsboot::cgroup::devices;
use nsboot::sys::bpf;
use oci_spec::runtime::LinuxDeviceCgroup;

/// A fresh cgroup directory under `mount`, removed at drop (its processes are gone by then).
struct TestCgroup(PathBuf);

impl TestCgroup {
    fn new(mount: &str, test: &str) -> Option<TestCgroup> {
        let base = Path::new(mount);
        if !base.join("cgroup.procs").exists() {
            eprintln!("skipped: no cgroup hierarchy at {mount}");
            return None;
        }
        let dir = base.join(format!("nsboot-test-{test}-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        Some(TestCgroup(dir))
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Where a device program can be attached: the unified mount (pure v2) or the hybrid's.
fn unified_mount() -> &'static str {
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "/sys/fs/cgroup"
    } else {
        "/sys/fs/cgroup/unified"
    }
}

fn rules(json: &str) -> Vec<LinuxDeviceCgroup> {
    serde_json::from_str(json).unwrap()
}

/// Opens `dev` from a shell inside `cg` (`<` to read, `>` to write): true when it opened.
fn opens(cg: &TestCgroup, dev: &str, redirect: &str) -> bool {
    let procs = cg.0.join("cgroup.procs");
    let script = format!("echo 0 >{} && exec 3{redirect}{dev}", procs.display());
    let out = Command::new("/bin/sh")
        .args(["-c", &script])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => true,
        Some(_) if err.contains("Operation not permitted") => false,
        _ => panic!("sh in {}: {:?}: {err}", cg.0.display(), out.status),
    }
}

const READ_NOT_WRITE: &str = r#"[{"allow": false, "access": "rwm"},
    {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "rw"},
    {"allow": false, "type": "c", "major": 1, "minor": 11, "access": "w"}]"#;

fn check_rules_in_order(unified: bool, cg: &TestCgroup) {
    devices::apply(unified, &cg.0, &rules(READ_NOT_WRITE), false).unwrap();
    assert!(opens(cg, "/dev/kmsg", "<"), "the later rule took read too");
    assert!(
        !opens(cg, "/dev/kmsg", ">"),
        "write allowed despite the later deny"
    );
    assert!(opens(cg, "/dev/null", ">"), "a standard node was denied");
    devices::apply(unified, &cg.0, &rules(r#"[{"allow": false}]"#), true).unwrap();
    assert!(!opens(cg, "/dev/kmsg", "<"), "the update left read allowed");
    assert!(opens(cg, "/dev/null", "<"));
    devices::apply(unified, &cg.0, &[], true).unwrap();
    assert!(
        !opens(cg, "/dev/kmsg", "<"),
        "no rules must deny all but the standard nodes"
    );
}

#[test]
fn v1_devices_cgroup_applies_rules_in_order() {
    if !common::is_root() {
        eprintln!("skipped: root only");
        return;
    }
    let Some(cg) = TestCgroup::new("/sys/fs/cgroup/devices", "v1-order") else {
        return;
    };
    check_rules_in_order(false, &cg);
}

#[test]
fn ebpf_device_program_applies_rules_in_order() {
    if !common::is_root() {
        eprintln!("skipped: root only");
        return;
    }
    let Some(cg) = TestCgroup::new(unified_mount(), "ebpf-order") else {
        return;
    };
    check_rules_in_order(true, &cg);
}

/// An update replaces the program: a wider policy after a narrower one opens again (two
/// programs attached side by side would both have to allow), and one program stays.
#[test]
fn ebpf_update_replaces_the_program() {
    if !common::is_root() {
        eprintln!("skipped: root only");
        return;
    }
    let Some(cg) = TestCgroup::new(unified_mount(), "ebpf-update") else {
        return;
    };
    let allow_rw = r#"[{"allow": true, "type": "c", "major": 1, "minor": 11, "access": "rw"}]"#;
    devices::apply(true, &cg.0, &rules(r#"[]"#), false).unwrap();
    assert!(!opens(&cg, "/dev/kmsg", "<"));
    devices::apply(true, &cg.0, &rules(allow_rw), true).unwrap();
    assert!(opens(&cg, "/dev/kmsg", "<"), "the old program still denies");
    assert!(opens(&cg, "/dev/kmsg", ">"));
    let dir = std::fs::File::open(&cg.0).unwrap();
    let attached = bpf::prog_query(dir.as_fd(), bpf::ATTACH_CGROUP_DEVICE).unwrap();
    assert_eq!(attached.len(), 1, "programs attached: {attached:?}");
}

/// `nsboot update` replaces the device rules when given them, and leaves them otherwise (as
/// runc's update does): a later rule list is the one in force, not the default.
#[test]
fn update_replaces_device_rules_only_when_given() {
    use serde_json::json;
    use support::{create, nsb, wait_status};
    if !common::is_root() {
        eprintln!("skipped: root only");
        return;
    }
    let mode = common::Mode::Root;
    let name = format!("nsbt-devupd-{}", std::process::id());
    let kmsg = json!({ "allow": true, "type": "c", "major": 1, "minor": 11, "access": "rw" });
    let deny_all = json!({ "allow": false, "access": "rwm" });
    let b = common::Bundle::new(mode)
        .args(&["sleep", "1000"])
        .edit(|c| {
            c["linux"]["cgroupsPath"] = json!(name);
            c["linux"]["devices"] = json!([{ "path": "/dev/kmsg", "type": "c", "major": 1,
                "minor": 11, "fileMode": 420, "uid": 0, "gid": 0 }]);
            c["linux"]["resources"] = json!({ "devices": [deny_all, kmsg] });
        });
    let id = name.clone();
    let c = create(&b, &id, &[]);
    assert_eq!(c.status, 0, "create: {}", c.stderr);
    assert_eq!(nsb(&b, &["start", &id]).status, 0);
    let write = || {
        let probe = "exec 3>/dev/kmsg && echo ok";
        let out = nsb(&b, &["exec", &id, "/bin/sh", "-c", probe]);
        (out.stdout.trim().to_string(), out.stderr)
    };
    assert_eq!(write().0, "ok", "{:?}", write());
    let u = nsb(&b, &["update", "--pids-limit", "50", &id]);
    assert_eq!(u.status, 0, "update: {}", u.stderr);
    assert_eq!(
        write().0,
        "ok",
        "an update without device rules changed them"
    );
    let file = b.dir().join("res.json");
    let read_only = json!({ "devices": [deny_all, { "allow": true, "type": "c", "major": 1,
        "minor": 11, "access": "r" }] });
    std::fs::write(&file, read_only.to_string()).unwrap();
    let u = nsb(&b, &["update", "--resources", file.to_str().unwrap(), &id]);
    assert_eq!(u.status, 0, "update --resources: {}", u.stderr);
    let (out, err) = write();
    assert!(
        out.is_empty() && err.contains("not permitted"),
        "{out} {err}"
    );
    assert_eq!(nsb(&b, &["kill", &id, "KILL"]).status, 0);
    wait_status(&b, &id, "stopped");
    assert_eq!(nsb(&b, &["delete", &id]).status, 0);
    common::assert_nothing_left(mode, b.state_dir());
}
