//! seccomp: the mappings, filters compiled and inspected as PFC, and real loads in forked
//! children.

use super::*;
use std::io::{Read, Seek};

fn pfc(ctx: &ScmpFilterContext) -> String {
    let mut f = tempfile::tempfile().unwrap();
    ctx.export_pfc(&mut f).unwrap();
    let mut s = String::new();
    f.rewind().unwrap();
    f.read_to_string(&mut s).unwrap();
    s
}

fn profile(v: serde_json::Value) -> LinuxSeccomp {
    serde_json::from_value(v).unwrap()
}

#[test]
fn actions_map_with_their_errno() {
    assert_eq!(
        action(Act::ScmpActErrno, None, "x").unwrap(),
        ScmpAction::Errno(libc::EPERM)
    );
    assert_eq!(
        action(Act::ScmpActErrno, Some(38), "x").unwrap(),
        ScmpAction::Errno(38)
    );
    assert_eq!(
        action(Act::ScmpActTrace, Some(7), "x").unwrap(),
        ScmpAction::Trace(7)
    );
    assert_eq!(
        action(Act::ScmpActKill, None, "x").unwrap(),
        ScmpAction::KillThread
    );
    assert_eq!(
        action(Act::ScmpActKillProcess, None, "x").unwrap(),
        ScmpAction::KillProcess
    );
    assert_eq!(
        action(Act::ScmpActNotify, None, "x").unwrap(),
        ScmpAction::Notify
    );
    let err = action(Act::ScmpActErrno, Some(70000), "linux.seccomp.syscalls[3]").unwrap_err();
    assert!(
        err.to_string()
            .contains("errnoRet 70000 of linux.seccomp.syscalls[3]"),
        "{err}"
    );
}

#[test]
fn operators_map_with_mask_and_datum() {
    let arg = |op: &str, value_two| {
        serde_json::from_value(serde_json::json!(
        {"index": 2, "value": 0x70, "valueTwo": value_two, "op": op}))
        .unwrap()
    };
    let cond = |op, value_two| condition(0, &arg(op, value_two)).unwrap();
    let new = |op| ScmpArgCompare::new(2, op, 0x70);
    assert_eq!(cond("SCMP_CMP_NE", 0), new(ScmpCompareOp::NotEqual));
    assert_eq!(cond("SCMP_CMP_LT", 0), new(ScmpCompareOp::Less));
    assert_eq!(cond("SCMP_CMP_LE", 0), new(ScmpCompareOp::LessOrEqual));
    assert_eq!(cond("SCMP_CMP_EQ", 0), new(ScmpCompareOp::Equal));
    assert_eq!(cond("SCMP_CMP_GE", 0), new(ScmpCompareOp::GreaterEqual));
    assert_eq!(cond("SCMP_CMP_GT", 0), new(ScmpCompareOp::Greater));
    // (arg & value) == valueTwo
    assert_eq!(
        cond("SCMP_CMP_MASKED_EQ", 0x10),
        ScmpArgCompare::new(2, ScmpCompareOp::MaskedEqual(0x70), 0x10)
    );
}

#[test]
fn arches_map() {
    assert_eq!(arch(Arch::ScmpArchX86_64), ScmpArch::X8664);
    assert_eq!(arch(Arch::ScmpArchX32), ScmpArch::X32);
    assert_eq!(arch(Arch::ScmpArchAarch64), ScmpArch::Aarch64);
    assert_eq!(arch(Arch::ScmpArchMips64n32), ScmpArch::Mips64N32);
}

#[test]
fn unknown_names_are_refused_by_the_spec_parser() {
    let bad = |v| serde_json::from_value::<LinuxSeccomp>(v).is_err();
    assert!(bad(serde_json::json!({"defaultAction": "SCMP_ACT_FLY"})));
    assert!(bad(
        serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]})
    ));
    assert!(bad(
        serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ABOUT"}]}]})
    ));
}

#[test]
fn every_action_operator_and_arch_compiles() {
    let ops = ["NE", "LT", "LE", "EQ", "GE", "GT", "MASKED_EQ"];
    let acts = [
        "KILL",
        "KILL_PROCESS",
        "KILL_THREAD",
        "TRAP",
        "ERRNO",
        "TRACE",
        "LOG",
        "NOTIFY",
    ];
    let syscalls: Vec<_> = ops.iter().zip(["read", "write", "openat", "close", "dup", "dup3", "lseek"])
        .map(|(op, name)| serde_json::json!({"names": [name], "action": "SCMP_ACT_ERRNO",
            "args": [{"index": 1, "value": 4, "valueTwo": 4, "op": format!("SCMP_CMP_{op}")}]}))
        .chain(acts.iter().zip(["getpid", "getppid", "gettid", "getuid", "geteuid", "getgid", "getegid", "uname"])
            .map(|(a, name)| serde_json::json!({"names": [name], "action": format!("SCMP_ACT_{a}")})))
        .collect();
    let p = profile(serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
        "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
        "syscalls": syscalls,
    }));
    assert!(uses_notify(&p));
    let text = pfc(&build(&p).unwrap());
    let notify = "action 0x7fc00000;"; // SCMP_ACT_NOTIFY, which PFC prints by number
    let wants = [
        "\"read\"",
        "\"openat\"",
        "\"lseek\"",
        "& 0x00000004 == 4",
        "action TRAP;",
        "action TRACE(1);",
        "action LOG;",
        notify,
        "action KILL_PROCESS;",
        "action KILL;",
    ];
    for want in wants {
        assert!(text.contains(want), "{want} missing from\n{text}");
    }
    assert!(text.contains("filter for arch aarch64"));
}

#[test]
fn default_action_rules_and_unknown_syscalls_are_skipped() {
    let p = profile(serde_json::json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [
            {"names": ["read", "not_a_syscall_anywhere"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["write"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["close"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
        ]
    }));
    let text = pfc(&build(&p).unwrap());
    assert!(
        text.contains("\"read\"") && text.contains("ERRNO(38)") && !text.contains("\"write\""),
        "{text}"
    );
}

#[test]
fn conditions_on_one_argument_become_alternatives() {
    let p = profile(
        serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "args": [
                {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 9, "op": "SCMP_CMP_EQ"}]},
            {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}
        ]}),
    );
    let args = p.syscalls().as_ref().unwrap()[0].args().clone().unwrap();
    assert_eq!(rule_conditions(0, &args).unwrap().len(), 2);
    let err = build(&p).unwrap_err().to_string();
    assert!(err.contains("syscalls[1]: argument index 6"), "{err}");
}

#[test]
fn default_profile_blocks_namespaces_and_io_uring_when_loaded() {
    use nix::errno::Errno as E;
    let profile = default_profile();
    let r = crate::process::creds::tests::in_userns_child(
        |_| Ok(()),
        || {
            nix::sys::prctl::set_no_new_privs().map_err(|e| e.to_string())?;
            load(&profile, None).map_err(|e| e.to_string())?;
            let check = |what: &str, got: E, want: E| {
                (got == want).then_some(()).ok_or(format!("{what}: {got}"))
            };
            let flags = nix::sched::CloneFlags::CLONE_NEWUSER;
            check("unshare", nix::sched::unshare(flags).unwrap_err(), E::EPERM)?;
            // SAFETY: raw syscalls with null arguments, refused by the filter before the kernel reads them.
            check(
                "clone3",
                E::result(unsafe { libc::syscall(libc::SYS_clone3, 0, 0) }).unwrap_err(),
                E::ENOSYS,
            )?;
            // SAFETY: as above.
            check(
                "io_uring_setup",
                E::result(unsafe { libc::syscall(libc::SYS_io_uring_setup, 0, 0) }).unwrap_err(),
                E::ENOSYS,
            )?;
            nix::unistd::getcwd()
                .map(|_| ())
                .map_err(|e| format!("getcwd: {e}"))
        },
    );
    r.unwrap();
}

#[test]
fn notify_rules_hand_back_the_listener_fd() {
    let p = profile(
        serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mknodat"], "action": "SCMP_ACT_NOTIFY"}]}),
    );
    crate::process::creds::tests::in_userns_child(
        |_| Ok(()),
        || {
            nix::sys::prctl::set_no_new_privs().map_err(|e| e.to_string())?;
            let fd = load(&p, None)
                .map_err(|e| e.to_string())?
                .ok_or("no listener fd")?;
            nix::fcntl::fcntl(
                std::os::fd::AsRawFd::as_raw_fd(&fd),
                nix::fcntl::FcntlArg::F_GETFD,
            )
            .map(|_| ())
            .map_err(|e| format!("listener fd: {e}"))
        },
    )
    .unwrap();
}

#[test]
fn default_profile_compiles_with_this_libseccomp() {
    build(&default_profile()).unwrap();
    let no_caps = oci_spec::runtime::Capabilities::new();
    build(&crate::spec::seccomp_profile::default_profile_for(&no_caps)).unwrap();
}
