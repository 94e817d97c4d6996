use super::*;

fn resources(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

#[test]
fn cgroups_path_names_a_scope_in_a_slice_as_runc_reads_it() {
    let s = scope_of(Some("machine.slice:libpod:abc"), "id", false).unwrap();
    assert_eq!(
        (s.unit.as_str(), s.slice.as_str()),
        ("libpod-abc.scope", "machine.slice")
    );
    let s = scope_of(None, "c1", false).unwrap();
    assert_eq!(
        (s.unit.as_str(), s.slice.as_str()),
        ("nsboot-c1.scope", "system.slice")
    );
    let s = scope_of(Some("::c1"), "x", true).unwrap();
    assert_eq!(
        (s.unit.as_str(), s.slice.as_str()),
        ("c1.scope", "user.slice")
    );
    for bad in [
        "/a/b",
        "a:b",
        "x.slice:p:n.slice",
        "nope:p:n",
        "s.slice:p:n/x",
        "s.slice:p:",
    ] {
        let e = scope_of(Some(bad), "id", false).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("linux.cgroupsPath {bad:?}: ")),
            "{e}"
        );
    }
}

#[test]
fn resources_become_the_properties_systemd_has() {
    let r = resources(
        r#"{"memory": {"limit": 67108864}, "pids": {"limit": -1},
            "cpu": {"shares": 1024, "quota": 50001, "period": 100000, "cpus": "0-2,9"}}"#,
    );
    let p = properties(&r);
    let get = |n: &str| p.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    assert_eq!(get("MemoryMax"), Some(Value::U64(67108864)));
    assert_eq!(get("TasksMax"), Some(Value::U64(u64::MAX)));
    assert_eq!(get("CPUWeight"), Some(Value::U64(39)));
    // 500010 us a second, rounded up to whole 10 ms.
    assert_eq!(get("CPUQuotaPerSecUSec"), Some(Value::U64(510_000)));
    assert_eq!(get("CPUQuotaPeriodUSec"), Some(Value::U64(100_000)));
    assert_eq!(
        get("AllowedCPUs"),
        Some(Value::Bytes(vec![0b0000_0111, 0b0000_0010]))
    );
    assert!(properties(&resources(r#"{"cpu": {"cpus": "3-1"}}"#)).is_empty());
    let m = properties(&resources(
        r#"{"memory": {"limit": 67108864, "reservation": 33554432, "swap": 134217728}}"#,
    ));
    let get = |n: &str| m.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    assert_eq!(get("MemoryLow"), Some(Value::U64(33554432)));
    assert_eq!(get("MemorySwapMax"), Some(Value::U64(67108864)));
    let unlimited = properties(&resources(r#"{"memory": {"limit": 67108864, "swap": -1}}"#));
    assert!(unlimited.contains(&("MemorySwapMax".to_string(), Value::U64(u64::MAX))));
}
