//! seccomp: linux.seccomp is enforced on the application (ERRNO with errnoRet, the kill
//! actions, a default ERRNO with an allow-list, argument conditions with each operator), unknown
//! syscall names are skipped, unknown actions refused, and the default profile that `nsboot
//! spec` writes and `nsboot do` applies blocks a nested user namespace.

mod common;

use std::fs;
use std::os::unix::fs::{chown, PermissionsExt};

use common::{Bundle, Mode, Output};
use serde_json::{json, Value};

fn id(test: &str, mode: Mode) -> String {
    common::test_id("sc", test, mode)
}

/// A bundle running `sh -c script` under the seccomp profile `profile`.
fn filtered(mode: Mode, script: &str, profile: Value) -> Bundle {
    Bundle::new(mode)
        .args(&["/bin/sh", "-c", script])
        .edit(|c| c["linux"]["seccomp"] = profile)
}

/// A default-ALLOW profile with the given rules.
fn allow_but(rules: Value) -> Value {
    json!({ "defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules })
}

/// Runs `bundle`, asserts the exit status and stdout, and that nothing is left.
fn assert_run(bundle: &Bundle, id: &str, status: i32, stdout: &str) -> Output {
    let mode = bundle.mode();
    let out = bundle.run(id);
    assert_eq!(
        (out.status, out.stdout.as_str()),
        (status, stdout),
        "{mode:?}: {out:?}"
    );
    common::assert_nothing_left(mode, bundle.state_dir());
    out
}

/// /dev/shm is a writable tmpfs in the harness bundle (the rootfs itself is read-only): a
/// mkdir there fails only when the filter says so.
const MKDIR: &str = "mkdir /dev/shm/d && echo made";

#[test]
fn mkdir_works_without_a_filter() {
    // The control for the tests below: the denial comes from the filter, not the rootfs.
    for mode in common::modes() {
        let bundle = Bundle::new(mode).args(&["/bin/sh", "-c", MKDIR]);
        assert_run(&bundle, &id("control", mode), 0, "made\n");
    }
}

#[test]
fn errno_rule_fails_the_syscall_with_errno_ret() {
    for (errno, text) in [(1, "Operation not permitted"), (122, "Disk quota exceeded")] {
        let rule = json!([{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                            "errnoRet": errno }]);
        for mode in common::modes() {
            let bundle = filtered(mode, &format!("{MKDIR}; echo $?"), allow_but(rule.clone()));
            let out = assert_run(&bundle, &id(&format!("errno{errno}"), mode), 0, "1\n");
            assert!(
                out.stderr.contains(text),
                "{mode:?}: errnoRet {errno}: {out:?}"
            );
        }
    }
}

#[test]
fn kill_process_rule_kills_the_app_with_sigsys() {
    let rule = json!([{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL_PROCESS" }]);
    for mode in common::modes() {
        // mkdir is the application itself (pid 1): its death is the sandbox's status.
        let bundle = Bundle::new(mode)
            .args(&["/bin/mkdir", "/dev/shm/d"])
            .edit(|c| c["linux"]["seccomp"] = allow_but(rule.clone()));
        assert_run(&bundle, &id("killproc", mode), 128 + libc::SIGSYS, "");
    }
}

#[test]
fn kill_rule_kills_the_calling_child_with_sigsys() {
    let rule = json!([{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL" }]);
    for mode in common::modes() {
        let bundle = filtered(mode, &format!("{MKDIR}; echo $?"), allow_but(rule.clone()));
        assert_run(&bundle, &id("kill", mode), 0, "159\n");
    }
}

/// What busybox `sh -c 'echo ...; mkdir ...'` and nsboot's exec path need (from strace), with
/// room to spare; mkdir and mkdirat are not among them.
const ALLOWED: &[&str] = &[
    "access",
    "arch_prctl",
    "brk",
    "chdir",
    "clock_gettime",
    "clock_nanosleep",
    "clone",
    "clone3",
    "close",
    "dup",
    "dup2",
    "dup3",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fcntl",
    "fork",
    "fstat",
    "futex",
    "getcwd",
    "getdents64",
    "getegid",
    "geteuid",
    "getgid",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getrandom",
    "getrlimit",
    "gettid",
    "gettimeofday",
    "getuid",
    "ioctl",
    "kill",
    "lseek",
    "lstat",
    "madvise",
    "mmap",
    "mprotect",
    "mremap",
    "munmap",
    "nanosleep",
    "newfstatat",
    "open",
    "openat",
    "pipe",
    "pipe2",
    "poll",
    "ppoll",
    "prctl",
    "prlimit64",
    "pselect6",
    "read",
    "readlink",
    "readlinkat",
    "readv",
    "rseq",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "sched_getaffinity",
    "sched_yield",
    "sendfile",
    "set_robust_list",
    "set_tid_address",
    "setpgid",
    "sigaltstack",
    "stat",
    "statx",
    "sysinfo",
    "tgkill",
    "time",
    "umask",
    "uname",
    "vfork",
    "wait4",
    "waitid",
    "write",
    "writev",
];

fn allow_list(extra: &[&str]) -> Value {
    let names: Vec<&str> = ALLOWED.iter().chain(extra).copied().collect();
    json!({ "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
            "syscalls": [{ "names": names, "action": "SCMP_ACT_ALLOW" }] })
}

#[test]
fn default_errno_denies_what_the_allow_list_leaves_out() {
    let script = format!("echo start; {MKDIR}; echo $?");
    for mode in common::modes() {
        let bundle = filtered(mode, &script, allow_list(&[]));
        let out = assert_run(&bundle, &id("deflist", mode), 0, "start\n1\n");
        // defaultErrnoRet 38 is ENOSYS.
        assert!(
            out.stderr.contains("Function not implemented"),
            "{mode:?}: {out:?}"
        );
        // The same list with mkdir on it: the denial above was the default action's.
        let bundle = filtered(mode, &script, allow_list(&["mkdir", "mkdirat"]));
        assert_run(&bundle, &id("deflist-mkdir", mode), 0, "start\nmade\n0\n");
    }
}

/// `linux32 true` calls personality(8), `linux64 true` personality(0): a condition on argument
/// 0 denies exactly the calls it matches.
fn personality_rule(op: &str, value: u64, value_two: u64) -> Value {
    allow_but(
        json!([{ "names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
        "args": [{ "index": 0, "op": op, "value": value, "valueTwo": value_two }] }]),
    )
}

#[test]
fn argument_conditions_match_with_each_operator() {
    // (operator, value, valueTwo, personality(8) denied, personality(0) denied)
    let cases = [
        ("SCMP_CMP_EQ", 8, 0, true, false),
        ("SCMP_CMP_NE", 8, 0, false, true),
        ("SCMP_CMP_LT", 8, 0, false, true),
        ("SCMP_CMP_LE", 0, 0, false, true),
        ("SCMP_CMP_GT", 0, 0, true, false),
        ("SCMP_CMP_GE", 8, 0, true, false),
        ("SCMP_CMP_MASKED_EQ", 8, 8, true, false),
    ];
    let script = "linux32 true; echo 32=$?; linux64 true; echo 64=$?";
    for mode in common::modes() {
        for (op, value, two, deny32, deny64) in cases {
            let bundle = filtered(mode, script, personality_rule(op, value, two));
            let want = format!("32={}\n64={}\n", u8::from(deny32), u8::from(deny64));
            let test = op.trim_start_matches("SCMP_CMP_");
            let out = bundle.run(&id(test, mode));
            assert_eq!(
                (out.status, out.stdout.as_str()),
                (0, want.as_str()),
                "{mode:?}: {op} {value} {two}: {out:?}"
            );
            common::assert_nothing_left(mode, bundle.state_dir());
        }
    }
}

#[test]
fn conditions_on_two_arguments_must_both_hold() {
    // socket(AF_INET, SOCK_STREAM [| flags], ...) denied with EACCES; nc makes exactly that call.
    let rule = json!([{ "names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
        "args": [{ "index": 0, "op": "SCMP_CMP_EQ", "value": 2 },
                 { "index": 1, "op": "SCMP_CMP_MASKED_EQ", "value": 15, "valueTwo": 1 }] }]);
    // The same family with another type (SOCK_DGRAM) must pass the filter.
    let other = json!([{ "names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
        "args": [{ "index": 0, "op": "SCMP_CMP_EQ", "value": 2 },
                 { "index": 1, "op": "SCMP_CMP_MASKED_EQ", "value": 15, "valueTwo": 2 }] }]);
    let script = "nc 127.0.0.1 1 </dev/null; echo $?";
    for mode in common::modes() {
        let bundle = filtered(mode, script, allow_but(rule.clone()));
        let out = assert_run(&bundle, &id("socket", mode), 0, "1\n");
        assert!(
            out.stderr.contains("nc: socket: Permission denied"),
            "{mode:?}: {out:?}"
        );
        let bundle = filtered(mode, script, allow_but(other.clone()));
        let out = assert_run(&bundle, &id("socket-dgram", mode), 0, "1\n");
        assert!(
            !out.stderr.contains("socket: Permission denied") && out.stderr.contains("nc: "),
            "{mode:?}: a SOCK_STREAM socket was denied by a SOCK_DGRAM rule: {out:?}"
        );
    }
}

#[test]
fn unknown_syscall_names_are_skipped() {
    let rule = json!([{ "names": ["no_such_syscall_nsboot", "mkdir", "mkdirat"],
                        "action": "SCMP_ACT_ERRNO", "errnoRet": 1 }]);
    for mode in common::modes() {
        let bundle = filtered(mode, &format!("{MKDIR}; echo $?"), allow_but(rule.clone()));
        // The known names of the rule still apply.
        let out = assert_run(&bundle, &id("unknown-name", mode), 0, "1\n");
        assert_eq!(
            out.stderr.trim(),
            "mkdir: can't create directory '/dev/shm/d': Operation not permitted",
            "{mode:?}: {out:?}"
        );
    }
}

#[test]
fn unknown_action_is_refused_with_one_line() {
    let rule = json!([{ "names": ["mkdir"], "action": "SCMP_ACT_SOMETIMES" }]);
    for mode in common::modes() {
        let bundle = filtered(mode, MKDIR, allow_but(rule.clone()));
        let out = bundle.run(&id("bad-action", mode));
        assert!(
            out.status == 125
                && out.stdout.is_empty()
                && out.stderr.lines().count() == 1
                && out.stderr.contains("SCMP_ACT_SOMETIMES")
                && out.stderr.contains("linux.seccomp.syscalls[0]"),
            "{mode:?}: want one line naming the action and where it is: {out:?}"
        );
        common::assert_nothing_left(mode, bundle.state_dir());
    }
}

#[test]
fn filter_is_loaded_without_no_new_privileges_too() {
    // Then it is loaded while the app still has CAP_SYS_ADMIN in its user namespace.
    let rule = json!([{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO" }]);
    let script = format!("grep NoNewPrivs /proc/self/status; {MKDIR}; echo $?");
    for mode in common::modes() {
        let bundle = filtered(mode, &script, allow_but(rule.clone()))
            .edit(|c| c["process"]["noNewPrivileges"] = json!(false));
        assert_run(&bundle, &id("nnp-off", mode), 0, "NoNewPrivs:\t0\n1\n");
    }
}

/// The linux.seccomp that `nsboot spec` writes for the mode's user.
fn spec_profile(bundle: &Bundle) -> Value {
    let mode = bundle.mode();
    let dir = bundle.dir().join("generated");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    let u = common::user(mode);
    chown(&dir, Some(u.uid), Some(u.gid)).unwrap();
    let out = common::output(bundle.nsboot().arg("spec").arg("--bundle").arg(&dir));
    assert_eq!(out.status, 0, "{mode:?}: nsboot spec: {out:?}");
    let text = fs::read_to_string(dir.join("config.json")).unwrap();
    let config: Value = serde_json::from_str(&text).unwrap();
    let profile = config["linux"]["seccomp"].clone();
    assert!(
        profile.is_object(),
        "{mode:?}: nsboot spec wrote no linux.seccomp:\n{text}"
    );
    profile
}

const UNSHARE: &str = "unshare -U true; echo $?";

#[test]
fn spec_default_profile_blocks_nested_user_namespaces() {
    for mode in common::modes() {
        // Without a filter a nested user namespace is created (the control).
        let bundle = Bundle::new(mode).args(&["/bin/sh", "-c", UNSHARE]);
        assert_run(&bundle, &id("unshare-control", mode), 0, "0\n");
        let profile = spec_profile(&bundle);
        let bundle = bundle.edit(|c| c["linux"]["seccomp"] = profile);
        let out = assert_run(&bundle, &id("unshare", mode), 0, "1\n");
        assert!(
            out.stderr.contains("Operation not permitted"),
            "{mode:?}: {out:?}"
        );
    }
}

#[test]
fn do_applies_the_default_profile() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode);
        let mut cmd = bundle.nsboot();
        cmd.arg("--root")
            .arg(bundle.state_dir())
            .arg("do")
            .arg("--");
        let script = "grep '^Seccomp:' /proc/self/status; unshare -U true; echo $?";
        let out = common::output(cmd.args(["/bin/sh", "-c", script]));
        assert!(
            out.status == 0
                && out.stdout.starts_with("Seccomp:\t2\n")
                && out.stdout.ends_with("\n1\n")
                && out.stderr.contains("Operation not permitted"),
            "{mode:?}: nsboot do ran without the default profile: {out:?}"
        );
        common::assert_nothing_left(mode, bundle.state_dir());
    }
}

#[test]
fn architectures_with_compat_tables_keep_the_native_rules() {
    if !cfg!(target_arch = "x86_64") {
        return; // the architecture names below are x86's
    }
    let profile = json!({ "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{ "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO" }] });
    for mode in common::modes() {
        let bundle = filtered(mode, &format!("{MKDIR}; echo $?"), profile.clone());
        assert_run(&bundle, &id("arches", mode), 0, "1\n");
    }
}

#[test]
fn filter_without_no_new_privileges_binds_a_non_root_user() {
    // Loaded before the caps drop and the uid switch: the profile must allow those calls
    // (as with runc), and the filter still binds the process after them.
    let creds = ["setgroups", "setresgid", "setresuid", "capget", "capset"];
    let script = format!("id -u; grep NoNewPrivs /proc/self/status; {MKDIR}; echo $?");
    for mode in common::modes() {
        if mode == Mode::RootlessSingle {
            continue;
        }
        let bundle = filtered(mode, &script, allow_list(&creds)).edit(|c| {
            c["process"]
                .as_object_mut()
                .unwrap()
                .remove("noNewPrivileges");
            c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        });
        let out = assert_run(
            &bundle,
            &id("nnp-user", mode),
            0,
            "1000\nNoNewPrivs:\t0\n1\n",
        );
        assert!(
            out.stderr.contains("Function not implemented"),
            "{mode:?}: {out:?}"
        );
        // Without them the uid switch is denied: one line, 125, the app never ran.
        let bundle = filtered(mode, &script, allow_list(&[])).edit(|c| {
            c["process"]
                .as_object_mut()
                .unwrap()
                .remove("noNewPrivileges");
            c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        });
        let out = bundle.run(&id("nnp-user-denied", mode));
        assert!(
            out.status == 125 && out.stdout.is_empty() && out.stderr.trim().lines().count() == 1,
            "{mode:?}: {out:?}"
        );
        common::assert_nothing_left(mode, bundle.state_dir());
    }
}

#[test]
fn a_profile_denying_execveat_is_named_as_the_cause() {
    // The last exec goes through nsboot's sealed helper, run from a memfd with execveat.
    let rule = json!([{ "names": ["execveat"], "action": "SCMP_ACT_ERRNO" }]);
    for mode in common::modes() {
        for nnp in [true, false] {
            let bundle = filtered(mode, "echo ran", allow_but(rule.clone()))
                .edit(|c| c["process"]["noNewPrivileges"] = json!(nnp));
            let out = bundle.run(&id(&format!("no-execveat-{nnp}"), mode));
            assert!(
                out.status == 125
                    && out.stdout.is_empty()
                    && out.stderr.trim().lines().count() == 1
                    && out.stderr.contains("execveat"),
                "{mode:?}: {out:?}"
            );
            common::assert_nothing_left(mode, bundle.state_dir());
        }
    }
}
