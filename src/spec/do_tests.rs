//! Tests of the `nsboot do` spec.

use std::path::Path;

use oci_spec::runtime::LinuxNamespaceType;

use super::*;

fn do_opts(cwd: &Path) -> DoOptions {
    DoOptions {
        command: vec!["id".into(), "-u".into()],
        rootfs: "/".into(),
        cwd: cwd.to_path_buf(),
        host_env: vec![
            ("PATH".into(), "/usr/bin:/bin".into()),
            ("HOME".into(), "/home/u".into()),
            ("LC_ALL".into(), "C".into()),
            ("SECRET".into(), "s".into()),
        ],
        ..Default::default()
    }
}

fn mount_of<'a>(spec: &'a Spec, dst: &Path) -> Option<&'a oci_spec::runtime::Mount> {
    spec.mounts()
        .iter()
        .flatten()
        .find(|m| m.destination() == dst)
}

#[test]
fn do_spec_binds_cwd_over_a_read_only_host_root() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = std::fs::canonicalize(dir.path()).unwrap();
    let spec = do_spec(&do_opts(&cwd)).unwrap();
    let root = spec.root().as_ref().unwrap();
    assert_eq!(
        (root.path().as_path(), root.readonly()),
        (Path::new("/"), Some(true))
    );
    let process = spec.process().as_ref().unwrap();
    assert_eq!(process.cwd(), &cwd);
    let bind = mount_of(&spec, &cwd).expect("cwd is bound");
    assert_eq!(
        bind.options().as_deref(),
        Some(&["rbind".to_string(), "rw".to_string()][..])
    );
    for dst in ["/proc", "/dev", "/dev/pts", "/dev/shm", "/tmp", "/run"] {
        assert!(mount_of(&spec, Path::new(dst)).is_some(), "{dst}");
    }
    let ns: Vec<_> = spec
        .linux()
        .as_ref()
        .unwrap()
        .namespaces()
        .as_ref()
        .unwrap()
        .iter()
        .map(|n| n.typ())
        .collect();
    assert!(ns.contains(&LinuxNamespaceType::User) && ns.contains(&LinuxNamespaceType::Network));
    let env = process.env().as_ref().unwrap();
    assert_eq!(env, &["PATH=/usr/bin:/bin", "HOME=/home/u", "LC_ALL=C"]);
    assert!(
        process
            .capabilities()
            .as_ref()
            .unwrap()
            .bounding()
            .as_ref()
            .unwrap()
            .len()
            == 3
    );
}

#[test]
fn do_spec_options() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = std::fs::canonicalize(dir.path()).unwrap();
    let mut o = do_opts(&cwd);
    o.ro_cwd = true;
    o.network = Network::Host;
    o.user = Some((1000, Some(1000)));
    o.env = vec![
        "A=1".into(),
        "HOME=/x".into(),
        "SECRET".into(),
        "UNSET".into(),
    ];
    o.volumes = vec![parse_volume(&format!("{}:/data:ro", cwd.display()), &cwd).unwrap()];
    o.tmpfs = vec!["/scratch/".into()];
    o.overlay = true;
    let spec = do_spec(&o).unwrap();
    let process = spec.process().as_ref().unwrap();
    assert_eq!(
        mount_of(&spec, &cwd).unwrap().options().as_ref().unwrap()[1],
        "ro"
    );
    assert_eq!(
        mount_of(&spec, Path::new("/data"))
            .unwrap()
            .source()
            .as_deref(),
        Some(cwd.as_path())
    );
    assert_eq!(
        mount_of(&spec, Path::new("/scratch"))
            .unwrap()
            .typ()
            .as_deref(),
        Some("tmpfs")
    );
    let ns = spec
        .linux()
        .as_ref()
        .unwrap()
        .namespaces()
        .as_ref()
        .unwrap();
    assert!(!ns.iter().any(|n| n.typ() == LinuxNamespaceType::Network));
    assert_eq!((process.user().uid(), process.user().gid()), (1000, 1000));
    assert!(process
        .capabilities()
        .as_ref()
        .unwrap()
        .bounding()
        .as_ref()
        .unwrap()
        .is_empty());
    let env = process.env().as_ref().unwrap();
    assert_eq!(
        env,
        &[
            "PATH=/usr/bin:/bin",
            "HOME=/x",
            "LC_ALL=C",
            "A=1",
            "SECRET=s"
        ]
    );
    assert_eq!(
        spec.annotations().as_ref().unwrap()["nsboot.overlay"],
        "true"
    );
}

#[test]
fn do_spec_env_all_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = std::fs::canonicalize(dir.path()).unwrap();
    let mut o = do_opts(&cwd);
    o.env_all = true;
    let spec = do_spec(&o).unwrap();
    assert!(spec
        .process()
        .as_ref()
        .unwrap()
        .env()
        .as_ref()
        .unwrap()
        .contains(&"SECRET=s".to_string()));

    let mut o = do_opts(&cwd);
    o.volumes = vec![parse_volume("/nonexistent/src", &cwd).unwrap()];
    assert!(do_spec(&o)
        .unwrap_err()
        .to_string()
        .starts_with("--volume /nonexistent/src: source: "));
    let mut o = do_opts(&cwd);
    o.command.clear();
    assert!(do_spec(&o)
        .unwrap_err()
        .to_string()
        .contains("no command given"));
    let mut o = do_opts(&cwd);
    o.uid_map = parse_id_map("--uid-map", "0 1000 1").unwrap();
    o.user = Some((5, Some(0)));
    assert!(do_spec(&o)
        .unwrap_err()
        .to_string()
        .starts_with("--user 5:0: uid 5 is not mapped by --uid-map"));
    let o = do_opts(Path::new("/"));
    let spec = do_spec(&o).unwrap();
    assert!(
        mount_of(&spec, Path::new("/")).is_none(),
        "/ is never bound read-write"
    );
}

#[test]
fn do_spec_overlay_leaves_the_root_writable_for_the_supervisor_to_layer() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = std::fs::canonicalize(dir.path()).unwrap();
    let mut o = do_opts(&cwd);
    o.overlay = true;
    let spec = do_spec(&o).unwrap();
    assert_eq!(spec.root().as_ref().unwrap().readonly(), Some(false));
    assert!(crate::rootfs::overlay::wanted(&spec));
    o.overlay = false;
    assert!(!crate::rootfs::overlay::wanted(&do_spec(&o).unwrap()));
}

#[test]
fn do_spec_sysfs_is_fresh_only_in_its_own_network_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = std::fs::canonicalize(dir.path()).unwrap();
    let mut o = do_opts(&cwd);
    let sys = |spec: &Spec| {
        let m = mount_of(spec, Path::new("/sys")).expect("/sys is mounted");
        (
            m.typ().clone().unwrap_or_default(),
            m.options().clone().unwrap_or_default(),
        )
    };
    let (typ, options) = sys(&do_spec(&o).unwrap());
    assert_eq!(
        (typ.as_str(), options.contains(&"ro".to_string())),
        ("sysfs", true)
    );
    o.network = Network::Host;
    let (typ, options) = sys(&do_spec(&o).unwrap());
    assert_eq!(
        (typ.as_str(), &options[..]),
        ("bind", &["rbind".to_string(), "ro".to_string()][..])
    );
}

#[test]
fn do_spec_refuses_mount_points_it_would_have_to_create_on_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = std::fs::canonicalize(dir.path()).unwrap();
    let mut o = do_opts(&cwd);
    o.tmpfs = vec!["/nonexistent-nsboot".into()];
    let e = do_spec(&o).unwrap_err().to_string();
    assert_eq!(
        e,
        "--tmpfs /nonexistent-nsboot: /nonexistent-nsboot does not exist in the sandbox's root, which is read-only: create it on the host first, or add --overlay"
    );
    // Beneath an earlier mount (the working directory, /tmp), or with --overlay: created
    // where the sandbox may write.
    o.tmpfs = vec![cwd.join("new"), "/tmp/new".into()];
    o.volumes = vec![parse_volume(&format!("{}:/run/x", cwd.display()), &cwd).unwrap()];
    do_spec(&o).unwrap();
    o.tmpfs = vec!["/nonexistent-nsboot".into()];
    o.overlay = true;
    do_spec(&o).unwrap();
}

#[test]
fn do_spec_unmapped_user_names_the_flags() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = std::fs::canonicalize(dir.path()).unwrap();
    let mut o = do_opts(&cwd);
    o.uid_map = parse_id_map("--uid-map", "0 1000 1").unwrap();
    o.gid_map = parse_id_map("--gid-map", "0 1000 1").unwrap();
    do_spec(&o).unwrap();
    o.user = Some((5000, Some(0)));
    assert_eq!(
        do_spec(&o).unwrap_err().to_string(),
        "--user 5000:0: uid 5000 is not mapped by --uid-map: add a range for it to --uid-map, or give --user a mapped id"
    );
    o.user = None;
    o.gid_map = parse_id_map("--gid-map", "1 1000 1").unwrap();
    assert_eq!(
        do_spec(&o).unwrap_err().to_string(),
        "--gid-map \"1 1000 1\": gid 0 is not mapped by --gid-map: add a range for it to --gid-map, or give --user a mapped id"
    );
}

#[test]
fn do_spec_has_the_default_seccomp_profile() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = std::fs::canonicalize(dir.path()).unwrap();
    let spec = do_spec(&do_opts(&cwd)).unwrap();
    let linux = spec.linux().as_ref().unwrap();
    let seccomp = linux.seccomp().as_ref().expect("a seccomp profile");
    assert!(!seccomp.syscalls().as_ref().unwrap().is_empty());
}
