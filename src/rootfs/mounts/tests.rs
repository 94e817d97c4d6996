//! mounts: the mount plan of a spec and the errors that name its entry.

use super::*;

fn mounts(dests: &[&str]) -> Vec<Mount> {
    let list: Vec<serde_json::Value> = dests
        .iter()
        .map(|d| serde_json::json!({"destination": d, "type": "tmpfs"}))
        .collect();
    serde_json::from_value(serde_json::Value::Array(list)).unwrap()
}

#[test]
fn a_sysfs_waits_with_what_follows_it_unless_that_touches_dev() {
    let defer = |dests: &[&str]| {
        let owned = mounts(dests);
        let refs: Vec<&Mount> = owned.iter().collect();
        may_defer(&refs, 0)
    };
    // Later entries beneath it, elsewhere or above it: they wait with it, in order.
    assert!(defer(&["/sys", "/sys/fs/cgroup", "/tmp", "/home/me"]));
    assert!(defer(&["/sys"]));
    // /dev, what lies above it or beneath it go in before the devices.
    assert!(!defer(&["/sys", "/tmp", "/"]));
    assert!(!defer(&["/sys", "/dev/shm"]));
    assert!(!defer(&["/sys", "/dev"]));
    // Paths that are not plain are not reasoned about.
    assert!(!defer(&["/sys", "/a/../sys/x"]));
    assert!(!defer(&["sys", "/tmp"]));
}

#[test]
fn missing_bind_source_names_the_entry() {
    let t = tempfile::tempdir().unwrap();
    let json = r#"{"ociVersion": "1.0.2", "mounts": [{"destination": "/proc", "type": "proc"},
        {"destination": "/data", "type": "none", "source": "/nonexistent/x", "options": ["rbind"]}]}"#;
    let spec: Spec = serde_json::from_str(json).unwrap();
    let none = &mut crate::rootfs::net::Pending::none();
    let e = mount_all(
        &spec,
        Path::new("/"),
        t.path(),
        none,
        &mut Default::default(),
    )
    .unwrap_err();
    let want = "mount source /nonexistent/x for /data does not exist: create it or fix mounts[1].source in config.json";
    assert_eq!(e.to_string(), want);
}

#[test]
fn errors_name_the_entry_and_the_fix() {
    let e = MountError::SourceMissing {
        at: "mounts[3]".into(),
        src: "/x".into(),
        dest: "/data".into(),
    };
    let want = "mount source /x for /data does not exist: create it or fix mounts[3].source in config.json";
    assert_eq!(e.to_string(), want);
    assert!(fix_for(Errno(libc::ENODEV), "mounts[1]").contains("mounts[1].type"));
}
