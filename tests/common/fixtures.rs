//! Bundle fixtures several test files share: container ids, mount entries, host-side sources
//! owned by the mode's user, a private rootfs copy, and a run over a shared host mount.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use super::{assert_nothing_left, is_root, output, rootfs, user, Bundle, Mode, Output};

/// A distinct container id per test file (`prefix`), test and mode (tests run in parallel).
pub fn test_id(prefix: &str, test: &str, mode: Mode) -> String {
    format!("{prefix}-{test}-{mode:?}").to_lowercase()
}

/// A default bundle whose app is `sh -c script`.
pub fn sh(mode: Mode, script: &str) -> Bundle {
    Bundle::new(mode).args(&["/bin/sh", "-c", script])
}

/// Runs `bundle` as `id`, asserts exit 0 and nothing left behind; returns the whole output.
pub fn run_ok(bundle: &Bundle, id: &str) -> Output {
    let mode = bundle.mode();
    let out = bundle.run(id);
    assert_eq!(out.status, 0, "{mode:?}: run failed: {out:?}");
    assert_nothing_left(mode, bundle.state_dir());
    out
}

/// A bind mount entry.
pub fn bind(src: &Path, dest: &str, options: &[&str]) -> Value {
    json!({ "destination": dest, "type": "bind", "source": src, "options": options })
}

/// `bundle` with a tmpfs on /tmp and then `extra` appended to its mounts.
pub fn add_tmp_and(bundle: Bundle, extra: Vec<Value>) -> Bundle {
    bundle.edit(|c| {
        let mounts = c["mounts"].as_array_mut().unwrap();
        mounts.push(
            json!({ "destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
            "options": ["nosuid", "nodev", "mode=1777"] }),
        );
        mounts.extend(extra);
    })
}

/// A default bundle whose app is `sh -c script`, with a tmpfs on /tmp and then `extra`
/// appended to its mounts.
pub fn sh_with_mounts(mode: Mode, script: &str, extra: Vec<Value>) -> Bundle {
    add_tmp_and(sh(mode, script), extra)
}

/// Splits an app's output at lines "--": [mountinfo, section 1, ...].
pub fn sections(out: &str) -> Vec<&str> {
    out.split("--\n").collect()
}

/// The bundle's top dir (beside bundle/ and state/), where host-side sources go.
pub fn top(bundle: &Bundle) -> PathBuf {
    bundle.dir().parent().unwrap().to_path_buf()
}

/// Gives `path` to the mode's user (the container root when rootless).
pub fn give_to(mode: Mode, path: &Path) {
    if is_root() && mode.is_rootless() {
        let u = user(mode);
        std::os::unix::fs::lchown(path, Some(u.uid), Some(u.gid)).unwrap();
    }
}

/// A host dir `<top>/src` holding `hello` ("hi") and an executable `run.sh` (prints "ran").
pub fn host_dir(bundle: &Bundle) -> PathBuf {
    let mode = bundle.mode();
    let dir = top(bundle).join("src");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("hello"), "hi\n").unwrap();
    let script = dir.join("run.sh");
    fs::write(&script, "#!/bin/sh\necho ran\n").unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    for p in [&dir, &dir.join("hello"), &script] {
        give_to(mode, p);
    }
    dir
}

/// A private, writable copy of the harness rootfs at `<bundle>/rootfs`, with root.path set to
/// the relative "rootfs"; returns the bundle and the copy. With `owned`, the copy belongs to
/// the mode's user (container root is that user when rootless); else it stays root's.
pub fn private_rootfs(bundle: Bundle, owned: bool) -> (Bundle, PathBuf) {
    let copy = bundle.dir().join("rootfs");
    let ok = Command::new("cp")
        .arg("-a")
        .arg(rootfs())
        .arg(&copy)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "cp -a {} {}", rootfs().display(), copy.display());
    if owned && is_root() && bundle.mode().is_rootless() {
        let u = user(bundle.mode());
        let ok = Command::new("chown")
            .args(["-R", "-h", &format!("{}:{}", u.uid, u.gid)])
            .arg(&copy)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "chown -R {}", copy.display());
    }
    (bundle.edit(|c| c["root"]["path"] = json!("rootfs")), copy)
}

/// [`private_rootfs`], owned by the mode's user.
pub fn with_private_rootfs(bundle: Bundle) -> Bundle {
    private_rootfs(bundle, true).0
}

/// Runs `bundle` as `id` in a private mount namespace of the test's where `shared` (a host
/// dir) is a shared mount, so that a propagation choice of nsboot shows in the container's
/// mountinfo (this host's mounts are private everywhere). Needs root to unshare; None otherwise.
pub fn run_over_shared_mount(bundle: &Bundle, shared: &Path, id: &str) -> Option<Output> {
    if !is_root() {
        return None;
    }
    let inner = bundle.nsboot();
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "--", "sh", "-c"]);
    cmd.arg(r#"r=$1; shift; mount --bind "$r" "$r" && mount --make-shared "$r" && exec "$@""#);
    cmd.arg("sh").arg(shared).arg(inner.get_program());
    cmd.args(inner.get_args());
    cmd.arg("--root").arg(bundle.state_dir()).arg("run");
    cmd.arg("--bundle").arg(bundle.dir()).arg(id);
    if bundle.mode().is_rootless() {
        cmd.env_clear().env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    }
    for (k, v) in inner.get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    cmd.current_dir(bundle.dir()).stdin(Stdio::null());
    Some(output(&mut cmd))
}

/// A world-writable tmpfs mounted (as root) at a fresh directory; unmounted and removed on
/// drop, also when the test fails. None, with a printed line, when not root.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    pub fn mount(dir: &Path) -> Option<Tmpfs> {
        if !is_root() {
            println!("skipped: mounting a tmpfs at {} needs root", dir.display());
            return None;
        }
        fs::create_dir(dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        let guard = Tmpfs(dir.to_path_buf());
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "mode=1777", "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "mount -t tmpfs {}", dir.display());
        Some(guard)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = fs::remove_dir(&self.0);
    }
}
