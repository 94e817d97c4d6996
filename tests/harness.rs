//! Self-tests of the integration-test harness (tests/common): they need only a built nsboot
//! that answers `--version`, not a working sandbox.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::process::Command;

use common::{Bundle, Mode};

#[test]
fn rootfs_has_busybox_and_a_shell() {
    let root = common::rootfs();
    assert!(root.is_absolute(), "{}", root.display());
    assert!(root.join("bin/busybox").is_file());
    assert_eq!(
        fs::read_link(root.join("bin/sh")).unwrap().to_str(),
        Some("busybox")
    );
    let tmp = fs::metadata(root.join("tmp")).unwrap();
    assert_eq!(tmp.mode() & 0o7777, 0o1777);
    assert_eq!(fs::metadata(&root).unwrap().mode() & 0o777, 0o755);
    assert!(fs::read_to_string(root.join("etc/passwd"))
        .unwrap()
        .contains("nobody:x:65534:"));
}

#[test]
fn rootless_single_bundle_maps_root_to_the_user() {
    let bundle = Bundle::new(Mode::RootlessSingle).args(&["/bin/sh", "-c", "exit 3"]);
    let text = fs::read_to_string(bundle.dir().join("config.json")).unwrap();
    let config: serde_json::Value = serde_json::from_str(&text).unwrap();
    let u = common::user(Mode::RootlessSingle);
    let want = serde_json::json!([{ "containerID": 0, "hostID": u.uid, "size": 1 }]);
    assert_eq!(config["linux"]["uidMappings"], want);
    assert_eq!(
        config["process"]["args"],
        serde_json::json!(["/bin/sh", "-c", "exit 3"])
    );
    assert_eq!(config["root"]["path"], serde_json::json!(common::rootfs()));
    // The spec the harness writes is one nsboot's own parser accepts field by field.
    assert_eq!(config["ociVersion"], "1.0.2");
    let dir_owner = fs::metadata(bundle.dir()).unwrap().uid();
    assert_eq!(
        dir_owner, u.uid,
        "bundle dir is not owned by the mode's user"
    );
}

#[test]
fn subid_bundle_maps_the_whole_subordinate_range() {
    if !common::rootless_modes().contains(&Mode::RootlessSubid) {
        return; // a developer without /etc/subuid range: nothing to check
    }
    let bundle = Bundle::new(Mode::RootlessSubid);
    let u = common::user(Mode::RootlessSubid);
    let gids = &bundle.config()["linux"]["gidMappings"];
    assert_eq!(gids[0]["hostID"], u.gid);
    assert_eq!(
        gids[1],
        serde_json::json!({ "containerID": 1, "hostID": u.subgid.unwrap(), "size": 65536 })
    );
}

#[test]
fn root_bundle_has_no_mappings() {
    let bundle = Bundle::new(Mode::Root);
    assert!(bundle.config()["linux"].get("uidMappings").is_none());
    assert!(bundle.config()["linux"].get("gidMappings").is_none());
}

#[test]
fn commands_run_as_the_modes_user() {
    for mode in common::modes() {
        let u = common::user(mode);
        let out = common::output(common::as_user(mode, "id").arg("-u"));
        assert_eq!(
            (out.status, out.stdout.trim()),
            (0, u.uid.to_string().as_str()),
            "{mode:?}: {out:?}"
        );
        if mode.is_rootless() {
            let mut env = common::as_user(mode, "sh");
            let out = common::output(env.args([
                "-c",
                "test -O \"$XDG_RUNTIME_DIR\" && stat -c %a \"$XDG_RUNTIME_DIR\"",
            ]));
            assert_eq!(
                out.stdout.trim(),
                "700",
                "{mode:?}: XDG_RUNTIME_DIR: {out:?}"
            );
        }
    }
}

#[test]
fn nsboot_version_runs_as_each_mode() {
    for mode in common::modes() {
        let out = common::output(common::nsboot(mode).arg("--version"));
        assert_eq!(out.status, 0, "{mode:?}: {out:?}");
        assert!(out.stdout.starts_with("nsboot "), "{mode:?}: {out:?}");
    }
}

#[test]
fn output_reports_signals_as_128_plus_n() {
    let out =
        common::output(Command::new("sh").args(["-c", "echo out; echo err >&2; kill -TERM $$"]));
    assert_eq!(
        (out.status, out.stdout.as_str(), out.stderr.as_str()),
        (143, "out\n", "err\n")
    );
}

#[test]
fn fresh_bundle_leaves_nothing_and_is_removed_on_drop() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode);
        common::assert_nothing_left(mode, bundle.state_dir());
        let top = bundle.dir().parent().unwrap().to_path_buf();
        drop(bundle);
        assert!(!top.exists(), "{} survived drop", top.display());
    }
}

#[test]
fn nosub_user_has_no_subordinate_ids() {
    // Only root has a second user to switch to.
    let Some(u) = common::nosub_user() else {
        return;
    };
    let out = common::output(common::nsboot_nosub().unwrap().arg("--version"));
    assert_eq!(out.status, 0, "{out:?}");
    assert!(u.subuid.is_none() && u.uid != 0);
}
