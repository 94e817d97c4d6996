//! The cache of compiled seccomp programs in the state root (`<root>/.seccomp`): a
//! second run with the same profile loads the cached program and filters the same; a corrupted,
//! truncated or foreign cache file is ignored and replaced; a cache that cannot be written never
//! fails a run; `list` never shows the cache; an exec'd supervisor compiles in the application.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;

use common::{Bundle, Mode, Output};
use serde_json::json;

fn id(test: &str, mode: Mode) -> String {
    common::test_id("scc", test, mode)
}

/// mkdir where the rootfs would allow it (/dev/shm, a tmpfs), under a profile that denies it
/// with errnoRet 1 (EPERM).
fn denying(mode: Mode, args: &[&str]) -> Bundle {
    Bundle::new(mode).args(args).edit(|c| {
        c["linux"]["seccomp"] = json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            { "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 }] })
    })
}

const MKDIR: [&str; 3] = ["/bin/sh", "-c", "mkdir /dev/shm/d; echo $?"];

/// `nsboot --debug --root <state> run <id>`, with the cache's debug lines.
fn run_debug(b: &Bundle, id: &str) -> Output {
    let mut cmd = b.nsboot();
    cmd.arg("--debug").arg("--root").arg(b.state_dir());
    cmd.arg("run").arg("--bundle").arg(b.dir()).arg(id);
    common::output(&mut cmd)
}

/// The run succeeded and mkdir inside failed with EPERM.
fn assert_denied(out: &Output, ctx: &str) {
    assert_eq!(
        (out.status, out.stdout.as_str()),
        (0, "1\n"),
        "{ctx}: {out:?}"
    );
    assert!(
        out.stderr.contains("Operation not permitted"),
        "{ctx}: {out:?}"
    );
}

fn cache_dir(b: &Bundle) -> PathBuf {
    b.state_dir().join(".seccomp")
}

/// The cache's program files (temporary files would start with a dot).
fn cache_files(b: &Bundle) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(cache_dir(b))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

/// The one cache file of this bundle's profile, ours and private.
fn the_cache_file(b: &Bundle, ctx: &str) -> PathBuf {
    let files = cache_files(b);
    assert_eq!(files.len(), 1, "{ctx}: {files:?}");
    let f = files[0].clone();
    assert!(f.extension().is_some_and(|e| e == "bpf"), "{ctx}: {f:?}");
    let meta = fs::metadata(&f).unwrap();
    assert_eq!(meta.uid(), common::user(b.mode()).uid, "{ctx}");
    assert_eq!(meta.mode() & 0o777, 0o600, "{ctx}");
    f
}

/// Only the cache is left in the state dir; then the usual check, without it.
fn assert_only_the_cache_left(b: &Bundle) {
    let names: Vec<_> = fs::read_dir(b.state_dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        names.iter().all(|n| n == ".seccomp"),
        "{:?}: {names:?}",
        b.mode()
    );
    let _ = fs::remove_dir_all(cache_dir(b));
    common::assert_nothing_left(b.mode(), b.state_dir());
}

#[test]
fn a_second_run_loads_the_cached_program_and_filters_the_same() {
    for mode in common::modes() {
        let b = denying(mode, &MKDIR);
        let first = run_debug(&b, &id("first", mode));
        assert_denied(&first, &format!("{mode:?} first run"));
        assert!(
            first.stderr.contains("compiled and cached"),
            "{mode:?}: {first:?}"
        );
        let file = the_cache_file(&b, &format!("{mode:?}"));
        let ino = fs::metadata(&file).unwrap().ino();
        for n in 0..2 {
            let again = run_debug(&b, &id(&format!("again{n}"), mode));
            assert_denied(&again, &format!("{mode:?} run {n} from the cache"));
            assert!(
                again.stderr.contains("from the cache"),
                "{mode:?}: {again:?}"
            );
            assert!(!again.stderr.contains("compiling"), "{mode:?}: {again:?}");
        }
        // Read, never rewritten.
        assert_eq!(fs::metadata(&file).unwrap().ino(), ino, "{mode:?}");
        assert_only_the_cache_left(&b);
    }
}

#[test]
fn a_corrupted_truncated_or_foreign_cache_file_is_ignored_and_replaced() {
    for mode in common::modes() {
        let b = denying(mode, &MKDIR);
        assert_denied(&b.run(&id("seed", mode)), &format!("{mode:?} seed"));
        let file = the_cache_file(&b, &format!("{mode:?}"));
        let good = fs::read(&file).unwrap();
        let mut flipped = good.clone();
        *flipped.last_mut().unwrap() ^= 0x20;
        let damage: [(&str, Vec<u8>); 5] = [
            ("truncated", good[..good.len() / 2].to_vec()),
            ("cut at an instruction", good[..good.len() - 8].to_vec()),
            ("flipped", flipped),
            ("garbage", b"not a program".to_vec()),
            ("empty", Vec::new()),
        ];
        for (what, bytes) in damage {
            fs::write(&file, &bytes).unwrap();
            let out = run_debug(&b, &id("damaged", mode));
            assert_denied(&out, &format!("{mode:?} {what}"));
            assert!(out.stderr.contains("ignored"), "{mode:?} {what}: {out:?}");
            assert_eq!(
                fs::read(&file).unwrap(),
                good,
                "{mode:?} {what}: not replaced"
            );
        }
        // A valid file that others may write is not trusted either.
        fs::set_permissions(&file, fs::Permissions::from_mode(0o666)).unwrap();
        let out = run_debug(&b, &id("shared", mode));
        assert_denied(&out, &format!("{mode:?} world-writable"));
        assert!(
            out.stderr.contains("lets others write it"),
            "{mode:?}: {out:?}"
        );
        the_cache_file(&b, &format!("{mode:?} replaced"));
        assert_only_the_cache_left(&b);
    }
}

#[test]
fn a_cache_that_cannot_be_written_never_fails_a_run() {
    for mode in common::modes() {
        let b = denying(mode, &MKDIR);
        // The cache's place is taken by a file: no directory, no cache.
        fs::write(cache_dir(&b), b"").unwrap();
        common::give_to(mode, &cache_dir(&b));
        let out = run_debug(&b, &id("blocked", mode));
        assert_denied(&out, &format!("{mode:?} blocked"));
        assert!(out.stderr.contains("not cached"), "{mode:?}: {out:?}");
        fs::remove_file(cache_dir(&b)).unwrap();
        if mode.is_rootless() {
            // A read-only cache directory (root would write it anyway).
            fs::create_dir(cache_dir(&b)).unwrap();
            common::give_to(mode, &cache_dir(&b));
            fs::set_permissions(cache_dir(&b), fs::Permissions::from_mode(0o500)).unwrap();
            let out = run_debug(&b, &id("readonly", mode));
            assert_denied(&out, &format!("{mode:?} read-only"));
            assert!(out.stderr.contains("not cached"), "{mode:?}: {out:?}");
            assert!(cache_files(&b).is_empty(), "{mode:?}");
        }
        assert_only_the_cache_left(&b);
    }
}

#[test]
fn list_never_shows_the_cache() {
    for mode in common::modes() {
        // A foreground run fills the cache; then a created container sits beside it.
        let b = denying(mode, &MKDIR);
        assert_denied(&b.run(&id("fill", mode)), &format!("{mode:?} fill"));
        the_cache_file(&b, &format!("{mode:?}"));
        let b = b.args(&["/bin/sh", "-c", "exec sleep 1000"]);
        let nsb = |args: &[&str]| {
            let mut cmd = b.nsboot();
            cmd.arg("--root").arg(b.state_dir()).args(args);
            common::output(&mut cmd)
        };
        let cid = id("listed", mode);
        let created = nsb(&["create", "--bundle", b.dir().to_str().unwrap(), &cid]);
        assert_eq!(created.status, 0, "{mode:?}: {created:?}");
        let json = nsb(&["list", "--format", "json"]);
        let all: Vec<serde_json::Value> = serde_json::from_str(&json.stdout).unwrap();
        let ids: Vec<&str> = all.iter().map(|c| c["id"].as_str().unwrap()).collect();
        assert_eq!(ids, [cid.as_str()], "{mode:?}: {json:?}");
        let quiet = nsb(&["list", "-q"]);
        assert_eq!(quiet.stdout, format!("{cid}\n"), "{mode:?}: {quiet:?}");
        let table = nsb(&["list"]);
        assert!(!table.stdout.contains("seccomp"), "{mode:?}: {table:?}");
        let deleted = nsb(&["delete", "--force", &cid]);
        assert_eq!(deleted.status, 0, "{mode:?}: {deleted:?}");
        assert_eq!(nsb(&["list", "-q"]).stdout, "", "{mode:?}");
        assert_only_the_cache_left(&b);
    }
}

#[test]
fn an_execd_supervisor_compiles_in_the_application() {
    for mode in common::modes() {
        let b = denying(mode, &MKDIR);
        let mut cmd = b.run_cmd(&id("exec", mode));
        cmd.env("NSBOOT_EXEC_BOOT", "1");
        assert_denied(&common::output(&mut cmd), &format!("{mode:?} exec boot"));
        assert!(cache_files(&b).is_empty(), "{mode:?}");
        assert_only_the_cache_left(&b);
    }
}
