//! The busybox image, built locally (no registry is reachable) as a docker-archive tarball that
//! `docker load`, `podman load` and `ctr images import` all take: the shared busybox rootfs
//! (scripts/mkrootfs.sh) plus what the steps need:
//!   /pause        a pod's infra command: waits, exits on SIGTERM
//!   /suid/su      busybox setuid root, and root's password empty, so that `su` as user 1000
//!                 works exactly when noNewPrivileges is off (it fails with "must be suid")

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common;

pub const IMAGE: &str = "localhost/nsboot-busybox:test";
/// The same layer with /pause as its entrypoint: a pod's sandbox image (CRI).
pub const PAUSE_IMAGE: &str = "localhost/nsboot-pause:test";
const PAUSE: &str = "#!/bin/sh\ntrap 'exit 0' TERM INT\nsleep 2147483647 & wait\n";

/// Build the image archive below `dir`; returns its path.
pub fn archive(dir: &Path) -> PathBuf {
    archive_of(dir, false)
}

/// The archive with [`PAUSE_IMAGE`] in it too (for `ctr images import`).
pub fn archive_with_pause(dir: &Path) -> PathBuf {
    archive_of(dir, true)
}

fn archive_of(dir: &Path, pause: bool) -> PathBuf {
    let rootfs = dir.join("image-rootfs");
    let img = dir.join("image");
    sh(Command::new("cp")
        .arg("-a")
        .arg(common::rootfs())
        .arg(&rootfs));
    fs::create_dir_all(&img).unwrap();
    fs::write(rootfs.join("pause"), PAUSE).unwrap();
    fs::set_permissions(rootfs.join("pause"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::create_dir(rootfs.join("suid")).unwrap();
    fs::copy(rootfs.join("bin/busybox"), rootfs.join("suid/busybox")).unwrap();
    fs::set_permissions(
        rootfs.join("suid/busybox"),
        fs::Permissions::from_mode(0o4755),
    )
    .unwrap();
    symlink("busybox", rootfs.join("suid/su")).unwrap();
    let passwd = fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    fs::write(
        rootfs.join("etc/passwd"),
        passwd.replacen("root:x:", "root::", 1),
    )
    .unwrap();

    let layer = img.join("layer.tar");
    sh(Command::new("tar")
        .args(["--numeric-owner", "--owner=0", "--group=0", "-C"])
        .arg(&rootfs)
        .arg("-cf")
        .arg(&layer)
        .arg("."));
    fs::remove_dir_all(&rootfs).unwrap();
    let layer_id = sha256(&layer);
    fs::create_dir(img.join(&layer_id)).unwrap();
    fs::rename(&layer, img.join(&layer_id).join("layer.tar")).unwrap();
    let mut images = vec![(IMAGE, None)];
    if pause {
        images.push((PAUSE_IMAGE, Some(["/pause"])));
    }
    let manifest: Vec<serde_json::Value> = images
        .into_iter()
        .map(|(tag, entrypoint)| {
            let config = serde_json::json!({
                "architecture": "amd64",
                "os": "linux",
                "config": {
                    "Env": [format!("PATH={}", crate::harness::PATH)],
                    "Cmd": if entrypoint.is_some() { serde_json::Value::Null } else { serde_json::json!(["sh"]) },
                    "Entrypoint": entrypoint,
                },
                "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{layer_id}")]},
            });
            let config_path = img.join("config.json");
            fs::write(&config_path, config.to_string()).unwrap();
            let config_id = sha256(&config_path);
            fs::rename(&config_path, img.join(format!("{config_id}.json"))).unwrap();
            serde_json::json!({
                "Config": format!("{config_id}.json"),
                "RepoTags": [tag],
                "Layers": [format!("{layer_id}/layer.tar")],
            })
        })
        .collect();
    fs::write(
        img.join("manifest.json"),
        serde_json::Value::from(manifest).to_string(),
    )
    .unwrap();
    let tar = dir.join("image.tar");
    sh(Command::new("tar")
        .arg("-C")
        .arg(&img)
        .arg("-cf")
        .arg(&tar)
        .arg("."));
    fs::remove_dir_all(&img).unwrap();
    tar
}

fn sha256(file: &Path) -> String {
    let out = common::output(Command::new("sha256sum").arg(file));
    assert_eq!(
        out.status,
        0,
        "sha256sum {}: {}",
        file.display(),
        out.stderr
    );
    out.stdout.split_whitespace().next().unwrap().to_string()
}

fn sh(cmd: &mut Command) {
    let out = common::output(cmd);
    assert_eq!(out.status, 0, "{cmd:?}: {}", out.stderr);
}
