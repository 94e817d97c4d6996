//! The check that a run left nothing behind: processes, mounts, state.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::*;

/// `text` names `path` or something beneath it (`/x/a` is not mentioned by `/x/ab`).
fn mentions(text: &str, path: &str) -> bool {
    text.match_indices(path).any(|(i, _)| {
        matches!(
            text[i + path.len()..].chars().next(),
            None | Some('/' | ' ' | ':' | '\n')
        )
    })
}

/// Lines of this process's mountinfo that mention `path` or anything beneath it.
pub(super) fn mounts_under(path: &Path) -> Vec<String> {
    let path = path.to_string_lossy();
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter(|l| mentions(l, &path))
        .map(str::to_owned)
        .collect()
}

/// Processes of `uid` running nsboot (by cmdline or exe) that belong to `scope` (mention it in
/// cmdline or environment, or run in it): other tests' sandboxes, running in parallel, do not.
/// Returns (pid, cmdline) pairs.
pub(super) fn nsboot_processes(uid: u32, scope: &Path) -> Vec<(i32, String)> {
    let bins = [
        nsboot_bin().to_path_buf(),
        PathBuf::from(env!("CARGO_BIN_EXE_nsboot")),
    ];
    let scope = scope.to_string_lossy().into_owned();
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let p = entry.path();
        let read =
            |f: &str| fs::read(p.join(f)).map(|b| String::from_utf8_lossy(&b).replace('\0', " "));
        let Ok(status) = read("status") else { continue };
        let real_uid: Option<u32> = status.lines().find_map(|l| {
            l.strip_prefix("Uid:")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        });
        let (Some(real_uid), Ok(cmdline)) = (real_uid, read("cmdline")) else {
            continue;
        };
        let exe = fs::read_link(p.join("exe")).ok();
        let is_nsboot = bins
            .iter()
            .any(|b| cmdline.contains(b.to_string_lossy().as_ref()) || exe.as_ref() == Some(b));
        let cwd = fs::read_link(p.join("cwd")).ok();
        let ours = mentions(&cmdline, &scope)
            || read("environ").is_ok_and(|e| mentions(&e, &scope))
            || cwd.is_some_and(|c| c.starts_with(&scope));
        let pid = entry.file_name().to_string_lossy().parse().ok();
        if let (Some(pid), true) = (pid, real_uid == uid && is_nsboot && ours) {
            found.push((pid, cmdline.trim_end().to_owned()));
        }
    }
    found
}

/// After a run: no nsboot process of the mode's user left (waits up to 2 s), no mount of the
/// bundle's or state dir in this mount namespace, and the state dir empty or gone.
pub fn assert_nothing_left(mode: Mode, state_dir: &Path) {
    // A harness bundle keeps its state dir beside the bundle dir: check the pair.
    let parent = state_dir.parent().filter(|p| {
        p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("nsbt-bundle-"))
    });
    let scope = parent.unwrap_or(state_dir);
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let left = nsboot_processes(user(mode).uid, scope);
        if left.is_empty() {
            break;
        }
        let list: Vec<String> = left
            .iter()
            .map(|(pid, cmd)| format!("{pid}: {cmd}"))
            .collect();
        assert!(
            Instant::now() < deadline,
            "nsboot processes still running 2 s after the run:\n{}",
            list.join("\n")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mounts = mounts_under(scope);
    assert!(
        mounts.is_empty(),
        "mounts left behind:\n{}",
        mounts.join("\n")
    );
    match fs::read_dir(state_dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("cannot read state dir {}: {e}", state_dir.display()),
        Ok(entries) => {
            // .seccomp is the cache of compiled seccomp programs, kept across runs on purpose;
            // a temp file a killed writer left in it would still show as a leftover below.
            let names: Vec<_> = entries
                .flatten()
                .map(|e| e.file_name())
                .filter(|n| n != ".seccomp")
                .collect();
            assert!(
                names.is_empty(),
                "state dir {} not empty: {names:?}",
                state_dir.display()
            );
        }
    }
}
