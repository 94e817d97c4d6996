//! The state root of a user without XDG_RUNTIME_DIR lies in a shared directory
//! (/tmp/nsboot-UID). Another local user who makes it first must not get the victim's `start`
//! or `delete` to run their hooks: a root the caller does not own, one others may write, or a
//! symlink, is refused with one line naming it. `do` needs no state root at all.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use serde_json::json;

use crate::common::{self, Output, TestUser};

/// The cases below share one path, the victim's /tmp/nsboot-UID.
static SHARED_ROOT: Mutex<()> = Mutex::new(());

fn victim() -> &'static TestUser {
    common::user(common::Mode::RootlessSingle)
}

/// The victim's default state root without XDG_RUNTIME_DIR (nor /run/user/UID, nor TMPDIR).
fn default_root() -> PathBuf {
    let uid = victim().uid;
    assert!(
        !Path::new(&format!("/run/user/{uid}")).exists(),
        "/run/user/{uid} exists: these cases need the /tmp fallback"
    );
    PathBuf::from(format!("/tmp/nsboot-{uid}"))
}

/// nsboot as the victim, with no XDG_RUNTIME_DIR and no TMPDIR.
fn as_victim(args: &[&str]) -> Output {
    let u = victim();
    let mut cmd = Command::new("setpriv");
    cmd.arg(format!("--reuid={}", u.uid))
        .arg(format!("--regid={}", u.gid))
        .args(["--init-groups", "--"])
        .arg(common::nsboot_bin())
        .args(args)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("HOME", &u.home)
        .current_dir("/");
    common::output(&mut cmd)
}

fn chown(path: &Path, u: &TestUser, mode: u32) {
    std::os::unix::fs::lchown(path, Some(u.uid), Some(u.gid)).unwrap();
    if !path.is_symlink() {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }
}

/// Removes the shared root (and what a case put beside it) when the case ends.
struct Cleanup(Vec<PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = fs::remove_dir_all(p).or_else(|_| fs::remove_file(p));
        }
    }
}

/// The attacker's plant: the victim's state root, made first and owned by the attacker, with
/// an entry `victim` (created, its supervisor "gone", its lock and ctl.sock usable by anyone)
/// whose bundle's hooks append the uid they run as to `marker`.
fn plant(attacker: &TestUser, root: &Path, marker: &Path) -> UnixListener {
    fs::create_dir(root).unwrap();
    chown(root, attacker, 0o755);
    let bundle = root.join("evil");
    fs::create_dir(&bundle).unwrap();
    let hook = json!({ "path": "/bin/sh", "args": ["sh", "-c", format!("id -u >> {}", marker.display())] });
    let config = json!({
        "ociVersion": "1.0.2",
        "root": { "path": "rootfs" },
        "hooks": { "startContainer": [hook], "poststop": [hook] }
    });
    fs::write(bundle.join("config.json"), config.to_string()).unwrap();
    let entry = root.join("victim");
    fs::create_dir(&entry).unwrap();
    let state = json!({
        "ociVersion": "1.0.2", "id": "victim", "status": "created", "pid": i32::MAX - 1,
        "bundle": bundle, "rootfs": bundle.join("rootfs"), "created": "2026-01-01T00:00:00Z",
        "owner": attacker.uid.to_string()
    });
    fs::write(entry.join("state.json"), state.to_string()).unwrap();
    fs::write(entry.join("lock"), "").unwrap();
    let listener = UnixListener::bind(entry.join("ctl.sock")).unwrap();
    for p in [
        entry.join("lock"),
        entry.join("ctl.sock"),
        entry.join("state.json"),
        bundle.join("config.json"),
    ] {
        chown(&p, attacker, 0o666);
    }
    for p in [&entry, &bundle] {
        chown(p, attacker, 0o755);
    }
    // The victim's `start` connects, runs startContainer, then asks: answer by hanging up.
    let accepting = listener.try_clone().unwrap();
    std::thread::spawn(move || {
        while let Ok((conn, _)) = accepting.accept() {
            drop(conn);
        }
    });
    listener
}

/// A 0777 directory the victim's hooks (if any ran) write their marker in.
fn marker_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nsbt-{name}.{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    dir
}

fn assert_refused_naming(out: &Output, root: &Path, ctx: &str) {
    let one_line = out.stderr.lines().count() == 1;
    let named = out.stderr.contains(&root.display().to_string());
    assert!(
        out.status == 125 && one_line && named,
        "{ctx}: want exit 125 and one line naming {}: {out:?}",
        root.display()
    );
}

#[test]
fn state_root_planted_by_another_user_runs_none_of_their_hooks() {
    let Some(attacker) = common::nosub_user() else {
        eprintln!("skipped: needs root to act as two users");
        return;
    };
    let _one = SHARED_ROOT.lock().unwrap_or_else(|e| e.into_inner());
    let root = default_root();
    let marks = marker_dir("plant");
    let _clean = Cleanup(vec![root.clone(), marks.clone()]);
    let _ = fs::remove_dir_all(&root);
    let marker = marks.join("hook-ran-as");
    let _listener = plant(attacker, &root, &marker);
    for cmd in [
        &["start", "victim"][..],
        &["delete", "victim"],
        &["state", "victim"],
        &["list"],
    ] {
        let out = as_victim(cmd);
        let ran = fs::read_to_string(&marker).unwrap_or_default();
        assert!(
            ran.is_empty(),
            "{cmd:?}: the attacker's hook ran as uid {ran}: {out:?}"
        );
        assert_refused_naming(&out, &root, &format!("{cmd:?}"));
    }
}

#[test]
fn state_root_others_can_write_or_a_symlink_is_refused() {
    if !common::is_root() {
        eprintln!("skipped: needs root to act as the victim");
        return;
    }
    let _one = SHARED_ROOT.lock().unwrap_or_else(|e| e.into_inner());
    let root = default_root();
    let elsewhere = marker_dir("elsewhere");
    let _clean = Cleanup(vec![root.clone(), elsewhere.clone()]);
    // The victim's own directory, but writable by others: a plant could be inside.
    let _ = fs::remove_dir_all(&root);
    fs::create_dir(&root).unwrap();
    chown(&root, victim(), 0o777);
    assert_refused_naming(&as_victim(&["list"]), &root, "a 0777 root");
    // A symlink to a directory of the victim's own: not followed.
    fs::remove_dir(&root).unwrap();
    chown(&elsewhere, victim(), 0o700);
    symlink(&elsewhere, &root).unwrap();
    chown(&root, victim(), 0o700);
    let out = as_victim(&["create", "--bundle", "/nonexistent", "x"]);
    assert_eq!(out.status, 125, "{out:?}");
    assert_refused_naming(&as_victim(&["list"]), &root, "a symlinked root");
    assert_eq!(
        fs::read_dir(&elsewhere).unwrap().count(),
        0,
        "written through the link"
    );
    // None there: made for the victim alone.
    fs::remove_file(&root).unwrap();
    let out = as_victim(&["list"]);
    assert_eq!(out.status, 0, "{out:?}");
    let meta = fs::symlink_metadata(&root).expect("the state root was made");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        (meta.is_dir(), meta.uid(), meta.mode() & 0o7777),
        (true, victim().uid, 0o700)
    );
}

#[test]
fn do_runs_without_a_usable_state_root() {
    let Some(attacker) = common::nosub_user() else {
        eprintln!("skipped: needs root to act as two users");
        return;
    };
    let _one = SHARED_ROOT.lock().unwrap_or_else(|e| e.into_inner());
    let root = default_root();
    let _clean = Cleanup(vec![root.clone()]);
    let _ = fs::remove_dir_all(&root);
    fs::create_dir(&root).unwrap();
    chown(&root, attacker, 0o755);
    // bubblewrap needs no state: neither does `do` (its seccomp cache is skipped too).
    let out = as_victim(&["do", "--", "/bin/echo", "ran"]);
    assert_eq!((out.status, out.stdout.as_str()), (0, "ran\n"), "{out:?}");
    assert_eq!(fs::read_dir(&root).unwrap().count(), 0, "{out:?}");
}
