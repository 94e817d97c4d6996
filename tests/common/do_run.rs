//! `nsboot do` from the tests: the mode's user runs it in a fresh bundle directory (used only
//! as the working directory) with that bundle's state dir as --root.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Bundle, Mode, Output};

pub const EROFS: &str = "Read-only file system";

/// The single-map flags RootlessSingle stands for; `--subids` for RootlessSubid (`do` maps one
/// id by default); none as root (the identity map).
pub fn map_flags(mode: Mode) -> Vec<String> {
    let u = super::user(mode);
    match mode {
        Mode::RootlessSingle => vec![
            "--uid-map".into(),
            format!("0 {} 1", u.uid),
            "--gid-map".into(),
            format!("0 {} 1", u.gid),
        ],
        Mode::RootlessSubid => vec!["--subids".into()],
        Mode::Root => Vec::new(),
    }
}

/// `nsboot --root STATE do [map flags] FLAGS -- COMMAND` as the mode's user, in the bundle dir.
pub fn do_cmd(bundle: &Bundle, flags: &[&str], command: &[&str]) -> Command {
    let mut cmd = bundle.nsboot();
    cmd.arg("--root").arg(bundle.state_dir()).arg("do");
    cmd.args(map_flags(bundle.mode()))
        .args(flags)
        .arg("--")
        .args(command);
    cmd
}

pub fn run_do(bundle: &Bundle, flags: &[&str], command: &[&str]) -> Output {
    super::output(&mut do_cmd(bundle, flags, command))
}

pub fn sh(bundle: &Bundle, flags: &[&str], script: &str) -> Output {
    run_do(bundle, flags, &["/bin/sh", "-c", script])
}

/// The working directory of the runs of `bundle`, as the sandbox shows it (the same path).
pub fn cwd(bundle: &Bundle) -> PathBuf {
    fs::canonicalize(bundle.dir()).expect("bundle dir")
}

/// A host path no run has made: `dir/nsboot-do-<what>-<mode>-<pid>`.
pub fn fresh(dir: &Path, what: &str, mode: Mode) -> PathBuf {
    dir.join(format!("nsboot-do-{what}-{mode:?}-{}", std::process::id()))
}

/// A directory beside the bundle dir, owned by the mode's user.
pub fn user_dir(bundle: &Bundle, name: &str) -> PathBuf {
    let dir = bundle.dir().parent().expect("bundle top").join(name);
    fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
    give(&dir, super::user(bundle.mode()).uid);
    dir
}

pub fn give(path: &Path, uid: u32) {
    if super::is_root() {
        std::os::unix::fs::chown(path, Some(uid), None)
            .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
    }
}

/// stderr is exactly `want` and one line.
pub fn assert_stderr_line(out: &Output, want: &str, ctx: &str) {
    assert_eq!(out.stderr, format!("{want}\n"), "{ctx}: {out:?}");
}
