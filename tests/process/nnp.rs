//! process.noNewPrivileges: absent means false (the OCI default), so that setuid programs
//! inside (su, ping) gain their owner's ids; true keeps them from it.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};

use serde_json::json;

use super::common::{self, private_rootfs, Bundle, Mode};
use super::{app_status, id, mapped_range_modes, status_field};

#[test]
fn no_new_privileges_absent_means_off() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode).edit(|c| {
            c["process"]
                .as_object_mut()
                .unwrap()
                .remove("noNewPrivileges");
        });
        let status = app_status(bundle, &id("nnp-absent", mode));
        assert_eq!(status_field(&status, "NoNewPrivs"), "0", "{mode:?}");
    }
}

/// A private rootfs with /suid/su, busybox setuid to the rootfs's owner (container root), and
/// root's password empty: `su -c 'id -u' root` as user 1000 prints 0 exactly when the setuid
/// bit takes effect (busybox su refuses with "must be suid" otherwise).
fn suid_bundle(mode: Mode, nnp: Option<bool>) -> Bundle {
    let bundle = Bundle::new(mode).edit(|c| {
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        c["process"]["args"] = json!(["/suid/su", "-c", "id -u", "root"]);
        // su sets groups and ids once setuid made it root: its bounding set must allow that.
        let bounding = c["process"]["capabilities"]["bounding"]
            .as_array_mut()
            .unwrap();
        bounding.extend([json!("CAP_SETUID"), json!("CAP_SETGID")]);
        match nnp {
            Some(v) => c["process"]["noNewPrivileges"] = json!(v),
            None => {
                c["process"]
                    .as_object_mut()
                    .unwrap()
                    .remove("noNewPrivileges");
            }
        }
    });
    let (bundle, rootfs) = private_rootfs(bundle, true);
    let suid = rootfs.join("suid");
    fs::create_dir(&suid).unwrap();
    fs::copy(rootfs.join("bin/busybox"), suid.join("busybox")).unwrap();
    let owner = fs::metadata(rootfs.join("bin")).unwrap();
    use std::os::unix::fs::MetadataExt;
    std::os::unix::fs::chown(suid.join("busybox"), Some(owner.uid()), Some(owner.gid())).unwrap();
    fs::set_permissions(suid.join("busybox"), fs::Permissions::from_mode(0o4755)).unwrap();
    symlink("busybox", suid.join("su")).unwrap();
    let passwd = fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    fs::write(
        rootfs.join("etc/passwd"),
        passwd.replacen("root:x:", "root::", 1),
    )
    .unwrap();
    bundle
}

#[test]
fn setuid_programs_work_unless_no_new_privileges_is_set() {
    for mode in mapped_range_modes() {
        for (nnp, name) in [(None, "absent"), (Some(false), "false")] {
            let bundle = suid_bundle(mode, nnp);
            let out = bundle.run(&id(&format!("suid-{name}"), mode));
            assert_eq!(
                (out.status, out.stdout.as_str()),
                (0, "0\n"),
                "{mode:?}: noNewPrivileges {name}: su must gain root: {out:?}"
            );
            common::assert_nothing_left(mode, bundle.state_dir());
        }
    }
}

#[test]
fn no_new_privileges_true_blocks_a_setuid_gain() {
    for mode in mapped_range_modes() {
        let bundle = suid_bundle(mode, Some(true));
        let out = bundle.run(&id("suid-nnp", mode));
        assert!(
            out.status != 0 && out.stdout.is_empty() && out.stderr.contains("must be suid"),
            "{mode:?}: with noNewPrivileges su must not gain root: {out:?}"
        );
        common::assert_nothing_left(mode, bundle.state_dir());
    }
}
