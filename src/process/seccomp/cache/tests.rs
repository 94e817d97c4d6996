//! The seccomp program cache: keys, the file format and its validation, the caller's lookup,
//! and programs loaded from the cache filtering exactly like libseccomp's own load (in forked
//! children).

use super::*;
use crate::process::creds::tests::in_userns_child;
use crate::process::seccomp::{self as sc, bpf};
use nix::errno::Errno as E;
use serde_json::json;
use std::os::unix::fs::PermissionsExt;

fn profile(v: serde_json::Value) -> LinuxSeccomp {
    serde_json::from_value(v).unwrap()
}

/// Allow everything but mkdir/mkdirat (errnoRet, EPERM by default) and getpid (ENOSYS).
fn deny_mkdir(errno: u32) -> LinuxSeccomp {
    profile(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno},
        {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}))
}

fn env() -> Env {
    Env {
        nsboot: "0.1.0".into(),
        libseccomp: (2, 5, 4),
        arch: "X8664".into(),
        kernel: "6.1.0".into(),
    }
}

fn compiled(spec: &LinuxSeccomp) -> Program {
    let ctx = sc::build(spec).unwrap();
    bpf::export(key(spec).unwrap(), &ctx).unwrap()
}

/// A file with a correct header for `body`, whatever its length.
fn file_for(key: u128, body: &[u8]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&sum(key, body).to_le_bytes());
    out.extend_from_slice(body);
    out
}

#[test]
fn fnv1a_128_matches_the_reference_vectors() {
    let hash = |b: &[u8]| {
        let mut h = Fnv128::new();
        h.write(b);
        h.finish()
    };
    assert_eq!(hash(b""), 0x6c62272e07bb014262b821756295c58d);
    assert_eq!(hash(b"a"), 0xd228cb696f1a8caf78912b704e4a8964);
    assert_eq!(hash(b"foobar"), 0x343e1662793c64bf6f0d3597ba446f18);
}

#[test]
fn same_profile_same_key_any_change_another() {
    let base = json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64"], "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                     {"names": ["close"], "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": 0, "value": 3, "op": "SCMP_CMP_GT"}]}]});
    let k = |v: &serde_json::Value, env: &Env| {
        key_of(&serde_json::to_vec(&profile(v.clone())).unwrap(), env)
    };
    let reference = k(&base, &env());
    // Parsed twice, from text or a value: the same canonical JSON, the same key.
    let reparsed: LinuxSeccomp = serde_json::from_str(&base.to_string()).unwrap();
    assert_eq!(
        reference,
        key_of(&serde_json::to_vec(&reparsed).unwrap(), &env())
    );
    assert_eq!(
        key(&reparsed).unwrap(),
        key(&profile(base.clone())).unwrap()
    );
    assert_eq!(key(&reparsed).unwrap(), key(&reparsed).unwrap());

    // (what, JSON pointer, new value)
    let edits = [
        ("defaultAction", "/defaultAction", json!("SCMP_ACT_KILL")),
        ("defaultErrnoRet", "/defaultErrnoRet", json!(38)),
        ("arch", "/architectures/0", json!("SCMP_ARCH_X86")),
        ("flags", "/flags/0", json!("SECCOMP_FILTER_FLAG_TSYNC")),
        ("name", "/syscalls/0/names/1", json!("pwrite64")),
        ("order", "/syscalls/0/names", json!(["write", "read"])),
        ("action", "/syscalls/0/action", json!("SCMP_ACT_LOG")),
        ("arg", "/syscalls/1/args/0/value", json!(4)),
        ("op", "/syscalls/1/args/0/op", json!("SCMP_CMP_GE")),
    ];
    for (what, pointer, value) in edits {
        let mut v = base.clone();
        *v.pointer_mut(pointer).unwrap() = value;
        assert_ne!(k(&v, &env()), reference, "{what}");
    }
    let envs = [
        Env {
            nsboot: "0.1.1".into(),
            ..env()
        },
        Env {
            libseccomp: (2, 5, 5),
            ..env()
        },
        Env {
            arch: "Aarch64".into(),
            ..env()
        },
        Env {
            kernel: "6.1.1".into(),
            ..env()
        },
    ];
    for e in envs {
        assert_ne!(k(&base, &e), reference, "{e:?}");
    }
}

#[test]
fn the_current_environment_names_this_build() {
    let env = Env::current().unwrap();
    assert_eq!(env.nsboot, env!("CARGO_PKG_VERSION"));
    assert!(env.libseccomp.0 >= 2 && !env.arch.is_empty() && !env.kernel.is_empty());
}

#[test]
fn files_round_trip_and_bad_ones_are_rejected() {
    let p = compiled(&deny_mkdir(1));
    let file = encode(&p);
    assert_eq!(decode(&file, p.key()).unwrap(), p);
    let bad = |bytes: &[u8], key: u128, want: &str| {
        let e = decode(bytes, key).unwrap_err().to_string();
        assert!(e.contains(want), "{want}: {e}");
    };
    // Another key, a flipped bit, a torn write (even a whole number of instructions).
    bad(&file, p.key() ^ 1, "checksum");
    let mut flipped = file.clone();
    flipped[HEADER + 5] ^= 0x10;
    bad(&flipped, p.key(), "checksum");
    bad(&file[..HEADER + 8], p.key(), "checksum");
    bad(&file[..file.len() - 3], p.key(), "checksum");
    bad(&file[..10], p.key(), "header");
    bad(b"", p.key(), "header");
    let mut magic = file.clone();
    magic[0] = b'X';
    bad(&magic, p.key(), "header");
    // With a correct sum, the shape rules still hold: whole instructions, 1 to 4096 of them.
    bad(&file_for(7, &[0; 12]), 7, "whole");
    bad(&file_for(7, &[]), 7, "whole");
    bad(&file_for(7, &vec![0; 8 * 4097]), 7, "too long");
    assert_eq!(
        decode(&file_for(7, &vec![0; 8 * 4096]), 7).unwrap().len(),
        4096
    );
    assert!(Program::new(7, vec![0; 8 * 4097])
        .unwrap_err()
        .to_string()
        .contains("4096"));
}

#[test]
fn only_our_own_unshared_regular_files_are_trusted() {
    assert!(check_owner(true, 1000, 0o100600, 1000).is_ok());
    assert!(check_owner(true, 1000, 0o100644, 1000).is_ok());
    assert!(check_owner(true, 0, 0o100600, 1000)
        .unwrap_err()
        .to_string()
        .contains("owned by uid 0"));
    assert!(check_owner(true, 1000, 0o100620, 1000)
        .unwrap_err()
        .to_string()
        .contains("620"));
    assert!(check_owner(true, 1000, 0o100602, 1000)
        .unwrap_err()
        .to_string()
        .contains("602"));
    assert!(check_owner(false, 1000, 0o40700, 1000)
        .unwrap_err()
        .to_string()
        .contains("regular"));
}

#[test]
fn read_validates_the_file_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let p = compiled(&deny_mkdir(1));
    let path = store(dir.path(), &p).unwrap();
    assert_eq!(path, dir.path().join(file_name(p.key())));
    let meta = fs::metadata(&path).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o600);
    assert_eq!(read(&path, p.key()).unwrap(), p);
    assert_eq!(read(&dir.path().join("nothing.bpf"), 1), Err(Miss::Absent));
    let invalid = |path: &Path| matches!(read(path, p.key()), Err(Miss::Invalid(_)));

    fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
    assert!(invalid(&path), "a world-writable file");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    if nix::unistd::geteuid().is_root() {
        std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
        assert!(invalid(&path), "someone else's file");
        std::os::unix::fs::chown(&path, Some(0), None).unwrap();
    }
    let link = dir.path().join("link.bpf");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    assert!(invalid(&link), "a symlink");
    let fifo = dir.path().join("fifo.bpf");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    assert!(invalid(&fifo), "a FIFO (without blocking)");
    fs::write(&path, &encode(&p)[..40]).unwrap();
    assert!(invalid(&path), "a truncated file");
    // A fresh store replaces it, leaving no temporary file behind.
    store(dir.path(), &p).unwrap();
    assert_eq!(read(&path, p.key()).unwrap(), p);
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
}

#[test]
fn the_callers_lookup_compiles_once_then_reads_the_file() {
    let root = tempfile::tempdir().unwrap();
    let spec = deny_mkdir(1);
    assert!(program(root.path(), None).is_none());
    let first = program(root.path(), Some(&spec)).unwrap();
    let path = root.path().join(DIR).join(file_name(first.key()));
    assert_eq!(
        fs::metadata(root.path().join(DIR)).unwrap().mode() & 0o777,
        0o700
    );
    assert_eq!(read(&path, first.key()).unwrap(), first);
    // The BPF is what libseccomp would have loaded.
    assert_eq!(first, compiled(&spec));
    // A hit: a planted, valid file for the same key is what comes back.
    let planted = Program::new(first.key(), first.bytes()[..8].to_vec()).unwrap();
    fs::write(&path, encode(&planted)).unwrap();
    assert_eq!(program(root.path(), Some(&spec)).unwrap(), planted);
    // A corrupted file is ignored and replaced.
    fs::write(&path, b"garbage").unwrap();
    assert_eq!(program(root.path(), Some(&spec)).unwrap(), first);
    assert_eq!(read(&path, first.key()).unwrap(), first);
    // NOTIFY profiles are never cached.
    let notify = profile(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mknodat"], "action": "SCMP_ACT_NOTIFY"}]}));
    assert!(program(root.path(), Some(&notify)).is_none());
    assert_eq!(fs::read_dir(root.path().join(DIR)).unwrap().count(), 1);
    // A profile error is left to the application's own compile, with today's message.
    let bad = profile(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 70000}]}));
    assert!(program(root.path(), Some(&bad)).is_none());
}

#[test]
fn a_cache_that_cannot_be_written_never_fails_the_lookup() {
    let top = tempfile::tempdir().unwrap();
    // The state root is a file: the cache directory cannot be made.
    let root = top.path().join("file");
    fs::write(&root, b"").unwrap();
    let spec = deny_mkdir(1);
    assert_eq!(program(&root, Some(&spec)).unwrap(), compiled(&spec));
}

#[test]
fn flags_are_libseccomps() {
    let with = |flags: &[&str]| {
        bpf::flags(&profile(json!(
        {"defaultAction": "SCMP_ACT_ALLOW", "flags": flags}))) as libc::c_ulong
    };
    assert_eq!(with(&[]), 0);
    assert_eq!(
        with(&["SECCOMP_FILTER_FLAG_LOG"]),
        libc::SECCOMP_FILTER_FLAG_LOG
    );
    assert_eq!(
        with(&["SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_LOG"]),
        libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW | libc::SECCOMP_FILTER_FLAG_LOG
    );
    // Every kernel nsboot supports (5.7+) has TSYNC_ESRCH, which libseccomp then adds.
    assert_eq!(
        with(&["SECCOMP_FILTER_FLAG_TSYNC"]),
        libc::SECCOMP_FILTER_FLAG_TSYNC | libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH
    );
}

/// What a few syscalls return under the filter loaded by `load` (in a forked child).
fn outcomes(load: impl FnOnce() -> Result<(), String>) -> Result<String, String> {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("d");
    let report = out.path().join("report");
    let (d, r) = (dir.clone(), report.clone());
    in_userns_child(
        |_| Ok(()),
        move || {
            // Written before the filter: the report file exists, only its contents come after.
            let mut f = fs::File::create(&r).map_err(|e| e.to_string())?;
            load()?;
            let mkdir = nix::unistd::mkdir(&d, nix::sys::stat::Mode::S_IRWXU).err();
            // SAFETY: getpid has no arguments and cannot fail but by the filter.
            let pid = E::result(unsafe { libc::syscall(libc::SYS_getpid) }).err();
            let uid = nix::unistd::getuid();
            write!(f, "mkdir {mkdir:?} getpid {pid:?} getuid {}", uid.as_raw())
                .map_err(|e| e.to_string())
        },
    )?;
    Ok(fs::read_to_string(report).unwrap())
}

#[test]
fn a_cached_program_filters_exactly_like_libseccomps_load() {
    let spec = deny_mkdir(1);
    let nnp = || nix::sys::prctl::set_no_new_privs().map_err(|e| e.to_string());
    let by_libseccomp = outcomes(|| {
        nnp()?;
        sc::load(&spec, None).map(drop).map_err(|e| e.to_string())
    })
    .unwrap();
    assert!(
        by_libseccomp.starts_with("mkdir Some(EPERM) getpid Some(ENOSYS)"),
        "{by_libseccomp}"
    );
    let root = tempfile::tempdir().unwrap();
    let _ = program(root.path(), Some(&spec)).unwrap();
    let cached = program(root.path(), Some(&spec)).unwrap();
    let raw = outcomes(|| {
        nnp()?;
        bpf::load(&cached, &spec).map_err(|e| e.to_string())
    });
    assert_eq!(raw.unwrap(), by_libseccomp);
    // Through `seccomp::load`, as the application does with what the caller handed down.
    let handed = outcomes(|| {
        nnp()?;
        sc::load(&spec, Some(&cached))
            .map(drop)
            .map_err(|e| e.to_string())
    });
    assert_eq!(handed.unwrap(), by_libseccomp);
    // One the kernel refuses as invalid (EINVAL) gives way to a compile.
    let broken = Program::new(cached.key(), vec![0; 8]).unwrap();
    let refused = outcomes(|| {
        nnp()?;
        sc::load(&spec, Some(&broken))
            .map(drop)
            .map_err(|e| e.to_string())
    });
    assert_eq!(refused.unwrap(), by_libseccomp);
    // A program that is not this profile's is not loaded: the profile is compiled instead.
    let other = compiled(&deny_mkdir(122));
    let mismatched = outcomes(|| {
        nnp()?;
        sc::load(&spec, Some(&other))
            .map(drop)
            .map_err(|e| e.to_string())
    });
    assert_eq!(mismatched.unwrap(), by_libseccomp);
}

#[test]
fn load_errors_read_as_libseccomps() {
    // Without no_new_privs and without CAP_SYS_ADMIN, the kernel refuses a filter (EACCES).
    let spec = deny_mkdir(1);
    let program = compiled(&spec);
    let spec = &spec;
    let refused = |precompiled: Option<Program>| {
        in_userns_child(
            |_| Ok(()),
            || {
                caps::drop(
                    None,
                    caps::CapSet::Effective,
                    caps::Capability::CAP_SYS_ADMIN,
                )
                .map_err(|e| e.to_string())?;
                match sc::load(spec, precompiled.as_ref()) {
                    Err(e) => Err(e.to_string()),
                    Ok(_) => Ok(()),
                }
            },
        )
        .unwrap_err()
    };
    let today = refused(None);
    assert!(
        today.contains("(EACCES)") && today.contains("noNewPrivileges"),
        "{today}"
    );
    assert_eq!(refused(Some(program)), today);
}
