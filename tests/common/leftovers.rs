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
    if let Some(top) = parent {
        let left = cgroups_left(&top.join("bundle/config.json"));
        assert!(left.is_empty(), "cgroups left behind: {left:?}");
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

/// The cgroup a bundle's config.json names (linux.cgroupsPath), wherever it could have been
/// made: a directory of its last name under the cgroup mounts (a few levels deep: a relative
/// path lies below nsboot's own cgroup). The kernel lets one go only once its last process is
/// reaped: give it a moment.
fn cgroups_left(config: &Path) -> Vec<PathBuf> {
    // Hostile-input tests make config.json a FIFO, /dev/zero or a directory: read only a
    // regular file (nsboot's own limit is 4 MiB).
    let regular = fs::symlink_metadata(config).is_ok_and(|m| m.is_file() && m.len() <= 8 << 20);
    let text = match regular {
        true => fs::read_to_string(config).unwrap_or_default(),
        false => String::new(),
    };
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let Some(name) = v["linux"]["cgroupsPath"]
        .as_str()
        .and_then(|p| Path::new(p).file_name())
        .map(|n| n.to_string_lossy().into_owned())
    else {
        return Vec::new();
    };
    fn walk(d: &Path, name: &str, depth: u32, out: &mut Vec<PathBuf>) {
        for e in fs::read_dir(d).into_iter().flatten().flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if e.file_name().to_string_lossy() == name {
                out.push(e.path());
            }
            if depth > 0 {
                walk(&e.path(), name, depth - 1, out);
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let mut out = Vec::new();
        walk(Path::new("/sys/fs/cgroup"), &name, 6, &mut out);
        if out.is_empty() || Instant::now() > deadline {
            return out;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
