//! Tests of load / parse / validate / generate / do_spec.

use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxNamespaceType;
use serde_json::json;

use super::*;

fn parse_str(text: &str) -> Result<Spec, SpecError> {
    parse(Path::new("config.json"), text.as_bytes())
}

fn valid_json() -> serde_json::Value {
    serde_json::from_str(&to_json(&generate(true, 1000, 1000))).unwrap()
}

/// `generate`'s rootless spec with one change, decoded and validated; the error's text.
fn error_with(edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut v = valid_json();
    edit(&mut v);
    match parse_str(&v.to_string()).and_then(|s| validate(&s)) {
        Ok(()) => panic!("accepted: {v}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn generated_specs_round_trip_and_validate() {
    for rootless in [true, false] {
        let spec = generate(rootless, 1000, 1001);
        let text = to_json(&spec);
        let mut back = parse_str(&text).unwrap();
        assert_eq!(back, spec);
        assert_eq!(text, to_json(&back), "to_json is deterministic");
        // runc's rootful example has no user namespace: `load` adds it before validating.
        adjust(&mut back);
        validate(&back).unwrap_or_else(|e| panic!("rootless={rootless}: {e}"));
    }
}

#[test]
fn rootless_spec_maps_caller_to_root_and_keeps_host_network() {
    let spec = generate(true, 1000, 1001);
    let linux = spec.linux().as_ref().unwrap();
    let (u, g) = (
        &linux.uid_mappings().as_ref().unwrap()[0],
        &linux.gid_mappings().as_ref().unwrap()[0],
    );
    assert_eq!((u.container_id(), u.host_id(), u.size()), (0, 1000, 1));
    assert_eq!((g.container_id(), g.host_id(), g.size()), (0, 1001, 1));
    let types: Vec<_> = linux
        .namespaces()
        .as_ref()
        .unwrap()
        .iter()
        .map(|n| n.typ())
        .collect();
    assert!(
        types.contains(&LinuxNamespaceType::User) && !types.contains(&LinuxNamespaceType::Network)
    );
    let mounts = |spec: &Spec| serde_json::to_string(spec.mounts()).unwrap();
    let text = mounts(&spec);
    assert!(!text.contains("gid=5") && !text.contains("/sys/fs/cgroup") && !text.contains("sysfs"));
    assert!(text.contains("\"rbind\""));
    let rootful = generate(false, 0, 0);
    let text = mounts(&rootful);
    assert!(text.contains("gid=5") && text.contains("/sys/fs/cgroup") && text.contains("sysfs"));
    let ns = rootful
        .linux()
        .as_ref()
        .unwrap()
        .namespaces()
        .as_ref()
        .unwrap();
    assert!(ns.iter().any(|n| n.typ() == LinuxNamespaceType::Network));
    assert!(linux.seccomp().is_some(), "nsboot's default profile");
}

#[test]
fn to_json_keeps_runc_field_order_and_sorted_capabilities() {
    let text = to_json(&generate(true, 1000, 1000));
    let pos = |s: &str| text.find(s).unwrap_or_else(|| panic!("{s} missing"));
    assert!(pos("\"ociVersion\"") < pos("\"root\"") && pos("\"root\"") < pos("\"linux\""));
    assert!(
        pos("\"CAP_AUDIT_WRITE\"") < pos("\"CAP_KILL\"")
            && pos("\"CAP_KILL\"") < pos("\"CAP_NET_BIND_SERVICE\"")
    );
}

#[test]
fn type_error_names_the_json_path() {
    let e = error_with(|v| v["process"]["args"] = json!("x"));
    assert_eq!(
        e,
        "config.json: process.args: invalid type: string \"x\", expected a sequence"
    );
    let e = error_with(|v| v["mounts"][2]["options"][1] = json!(5));
    assert!(
        e.starts_with("config.json: mounts[2].options[1]: invalid type: integer `5`"),
        "{e}"
    );
    let e = error_with(|v| v["linux"]["uidMappings"][0]["size"] = json!(-1));
    assert!(
        e.starts_with("config.json: linux.uidMappings[0].size: invalid value"),
        "{e}"
    );
}

#[test]
fn missing_required_field_names_it() {
    let e = error_with(|v| {
        v["process"].as_object_mut().unwrap().remove("cwd");
    });
    assert_eq!(
        e,
        "config.json: process.cwd: required field is missing: add it"
    );
}

#[test]
fn unknown_capability_is_refused_with_its_path() {
    let e = error_with(|v| v["process"]["capabilities"]["bounding"][2] = json!("CAP_FOO"));
    assert!(e.starts_with("config.json: process.capabilities.bounding[2]: unknown capability CAP_FOO: use a CAP_*"), "{e}");
}

#[test]
fn unknown_rlimit_and_namespace_are_refused() {
    let e = error_with(|v| v["process"]["rlimits"][0]["type"] = json!("RLIMIT_FOO"));
    assert!(
        e.contains("process.rlimits[0].type: unknown rlimit type RLIMIT_FOO"),
        "{e}"
    );
    let e = error_with(|v| v["linux"]["namespaces"][1]["type"] = json!("bogus"));
    assert!(
        e.contains("linux.namespaces[1].type: unknown namespace type bogus"),
        "{e}"
    );
}

#[test]
fn truncated_file_is_reported_with_its_position_and_path() {
    let text = to_json(&generate(true, 1000, 1000));
    let cut = text.find("\"CAP_KILL\"").unwrap();
    let e = parse_str(&text[..cut]).unwrap_err().to_string();
    assert!(e.starts_with("config.json: line "), "{e}");
    assert!(e.contains("(in process.capabilities.bounding[1])"), "{e}");
    assert!(e.contains("truncated"), "{e}");
}

#[test]
fn malformed_json_is_reported_with_its_path() {
    let e = parse_str("{\"process\": {\"args\": [\"sh\",, ]}}")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("config.json: line 1 column 28 (in process.args[1]): expected value: fix the JSON syntax"), "{e}");
}

#[test]
fn relative_cwd_is_refused() {
    let e = error_with(|v| v["process"]["cwd"] = json!("work"));
    assert!(
        e.starts_with("process.cwd: \"work\" is not absolute"),
        "{e}"
    );
}

type Edit = Box<dyn FnOnce(&mut serde_json::Value)>;

#[test]
fn validation_errors_name_path_and_fix() {
    let cases: Vec<(Edit, &str)> = vec![
        (Box::new(|v| v["ociVersion"] = json!("2.0.0")), "ociVersion: \"2.0.0\" is not supported"),
        (Box::new(|v| v["process"]["args"] = json!([])), "process.args: empty"),
        (Box::new(|v| v["process"]["env"][0] = json!("NOEQUALS")), "process.env[0]: \"NOEQUALS\" is not KEY=VALUE"),
        (Box::new(|v| v["root"]["path"] = json!("")), "root.path: empty"),
        (Box::new(|v| v["mounts"][1]["destination"] = json!("dev")), "mounts[1].destination: \"dev\" is not absolute"),
        (Box::new(|v| v["mounts"][1]["destination"] = json!("/dev/../etc")), "mounts[1].destination: \"/dev/../etc\" has a .. component"),
        (Box::new(|v| v["linux"]["namespaces"][1] = json!({"type": "pid"})), "linux.namespaces[1]: duplicate pid namespace"),
        (
            Box::new(|v| v["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "uts"}])),
            "linux.namespaces: no user namespace: nsboot always runs in one; add {\"type\":\"user\"}",
        ),
        (
            Box::new(|v| v["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "user"}])),
            "hostname: set, but linux.namespaces has no uts namespace",
        ),
        (
            Box::new(|v| v["process"]["rlimits"][0] = json!({"type": "RLIMIT_NOFILE", "soft": 2048, "hard": 1024})),
            "process.rlimits[0]: soft limit 2048 is above hard limit 1024 for RLIMIT_NOFILE",
        ),
        (Box::new(|v| v["linux"]["uidMappings"][0]["size"] = json!(0)), "linux.uidMappings[0].size: 0"),
        (
            Box::new(|v| {
                v["linux"]["uidMappings"] =
                    json!([{"containerID": 0, "hostID": 1000, "size": 1}, {"containerID": 1, "hostID": 1000, "size": 10}])
            }),
            "linux.uidMappings[1]: host ids 1000-1009 overlap linux.uidMappings[0]",
        ),
        (
            Box::new(|v| {
                v["linux"]["gidMappings"] =
                    json!([{"containerID": 0, "hostID": 1000, "size": 5}, {"containerID": 4, "hostID": 2000, "size": 1}])
            }),
            "linux.gidMappings[1]: container ids 4-4 overlap linux.gidMappings[0]",
        ),
        (
            Box::new(|v| v["linux"]["uidMappings"][0]["hostID"] = json!(4294967295u32)),
            "linux.uidMappings[0]: hostID 4294967295 + size 1 is over 4294967295",
        ),
        (Box::new(|v| v["process"]["user"]["uid"] = json!(5)), "process.user.uid: 5 is not mapped by linux.uidMappings"),
    ];
    for (edit, want) in cases {
        let e = error_with(edit);
        assert!(e.starts_with(want), "want {want:?}\n got {e:?}");
    }
}

#[test]
fn container_ids_follow_runc() {
    for ok in ["a", "my-ctr_1.2+x", &"x".repeat(1024)] {
        validate_id(ok).unwrap_or_else(|e| panic!("{e}"));
    }
    for bad in [
        "",
        ".",
        "..",
        ".seccomp",
        "a/b",
        "a b",
        "a,b",
        "ä",
        &"x".repeat(1025),
    ] {
        let e = validate_id(bad).unwrap_err().to_string();
        assert!(e.starts_with("invalid container id"), "{e}");
    }
}

fn bundle_with(config: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), config).unwrap();
    dir
}

#[test]
fn load_adds_a_user_namespace_and_validates() {
    let mut v = valid_json();
    v["linux"]["namespaces"] =
        json!([{"type": "mount"}, {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}]);
    v["linux"].as_object_mut().unwrap().remove("uidMappings");
    v["linux"].as_object_mut().unwrap().remove("gidMappings");
    let dir = bundle_with(v.to_string().as_bytes());
    let spec = load(dir.path()).unwrap();
    let ns = spec
        .linux()
        .as_ref()
        .unwrap()
        .namespaces()
        .as_ref()
        .unwrap();
    assert!(ns.iter().any(|n| n.typ() == LinuxNamespaceType::User));
}

#[test]
fn load_errors_name_the_file() {
    let missing = Path::new("/nonexistent/bundle");
    assert!(load(missing)
        .unwrap_err()
        .to_string()
        .starts_with("bundle /nonexistent/bundle: no such directory"));
    let empty = tempfile::tempdir().unwrap();
    let e = load(empty.path()).unwrap_err();
    assert!(matches!(e, SpecError::NoConfig { .. }), "{e}");
    let dir =
        bundle_with(b"{\"ociVersion\": \"1.0.2\", \"process\": {\"cwd\": \"/\", \"user\": {}");
    let e = load(dir.path()).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!(
            "{}: line 1",
            dir.path().join("config.json").display()
        )),
        "{e}"
    );
    let mut v = valid_json();
    v["process"]["cwd"] = json!("rel");
    let dir = bundle_with(v.to_string().as_bytes());
    let e = load(dir.path()).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!(
            "{}: process.cwd:",
            dir.path().join("config.json").display()
        )),
        "{e}"
    );
}

#[test]
fn huge_config_is_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    let f = std::fs::File::create(dir.path().join("config.json")).unwrap();
    f.set_len(MAX_CONFIG_BYTES + 1).unwrap();
    let e = load(dir.path()).unwrap_err();
    assert!(
        matches!(e, SpecError::TooLarge { size, .. } if size == MAX_CONFIG_BYTES + 1),
        "{e}"
    );
    assert!(e.to_string().contains("over nsboot's 4 MiB limit"), "{e}");
}

#[test]
fn rootfs_path_is_canonical_or_explained() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("rootfs")).unwrap();
    let spec = generate(true, 1000, 1000);
    let got = rootfs_path(&spec, &dir.path().join(".")).unwrap();
    assert_eq!(
        got,
        std::fs::canonicalize(dir.path().join("rootfs")).unwrap()
    );
    let mut spec = spec;
    spec.root_mut()
        .as_mut()
        .unwrap()
        .set_path(PathBuf::from("/nonexistent/x"));
    let e = rootfs_path(&spec, dir.path()).unwrap_err().to_string();
    assert_eq!(e, "root.path /nonexistent/x: no such directory: create the rootfs or fix root.path in config.json");
}

#[test]
fn empty_file_says_so() {
    let e = parse_str(" \n").unwrap_err().to_string();
    assert!(e.contains(": the file is empty: "), "{e}");
}

/// oci-spec checks execCPUAffinity with a regex, served by shim/regex (regex-lite): lists
/// and ranges pass, anything else is refused while decoding.
#[test]
fn exec_cpu_affinity_is_checked_through_the_regex_shim() {
    let with = |list: &str| {
        let mut v = valid_json();
        // oci-spec 0.7 spells these execCpuAffinity and cpu_affinity_initial/_final.
        v["process"]["execCpuAffinity"] =
            json!({"cpu_affinity_initial": list, "cpu_affinity_final": "0"});
        parse_str(&v.to_string())
    };
    for good in ["0", "0-3", "0-1,3,5-7"] {
        with(good).unwrap_or_else(|e| panic!("{good:?} refused: {e}"));
    }
    for bad in ["", "x", "0-", "1,,2", "٣"] {
        let err = with(bad).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            err.contains("Invalid execCPUAffinity format"),
            "{bad:?} must be refused, got {err:?}"
        );
    }
}
