//! The default seccomp profile, for sandboxes whose spec brings none (`nsboot do`, bare bundles).
//!
//! What it blocks is what podman's default (containers/common seccomp.json) and Docker's
//! (moby profiles/seccomp) block for a container without the matching capability: kernel
//! modules and kexec, keyrings, swap, bpf and perf, mount and namespace creation, ptrace-like
//! access to other processes, raw I/O ports, the clock, and the like.
//!
//! The form differs on purpose: default ALLOW with a deny list, not podman's default
//! ERRNO(ENOSYS) with a ~370-name allow list. The two agree on every syscall listed here; for a
//! syscall neither lists (a newer one) podman answers ENOSYS and this profile lets the kernel's
//! own checks decide. A deny list needs no per-architecture allow entries and stays valid as
//! libseccomp learns new names. Deliberate differences from podman:
//! - mount and the new mount API, umount, pivot_root, reboot, unshare/clone creating namespaces
//!   are denied without CAP_SYS_ADMIN / CAP_SYS_BOOT, as Docker does (podman allows them and
//!   relies on the kernel): a nested user namespace would otherwise hand the application a
//!   full capability set over a fresh namespace. clone3 answers ENOSYS, so that libc falls
//!   back to clone, whose flags can be checked;
//! - io_uring answers ENOSYS (absent from podman's allow list; Docker blocks it too);
//! - personality() is not restricted (podman allows five values): it cannot grant privilege;
//! - membarrier, vmsplice, nice and io_pgetevents stay allowed (podman denies them; Docker
//!   allows them): they grant nothing the kernel does not already check.

use oci_spec::runtime::{
    Arch, Capabilities, Capability as Cap, LinuxSeccomp, LinuxSeccompAction as Act,
    LinuxSeccompArg, LinuxSeccompArgBuilder, LinuxSeccompOperator as Op, LinuxSyscall,
};

struct Group {
    /// Allowed when the container has any of these capabilities; denied always when empty.
    unless: &'static [Cap],
    errno: i32,
    names: &'static [&'static str],
}

#[rustfmt::skip]
const GROUPS: &[Group] = &[
    Group { unless: &[], errno: libc::EPERM, names: &[
        "add_key", "request_key", "keyctl", "bdflush", "create_module", "get_kernel_syms",
        "kexec_file_load", "kexec_load", "nfsservctl", "pciconfig_iobase", "pciconfig_read",
        "pciconfig_write", "swapon", "swapoff", "sysfs", "_sysctl", "uselib", "userfaultfd",
        "ustat", "vm86", "vm86old", "migrate_pages", "move_pages",
    ] },
    Group { unless: &[], errno: libc::ENOSYS, names: &[
        "io_uring_setup", "io_uring_enter", "io_uring_register",
    ] },
    Group { unless: &[Cap::SysAdmin], errno: libc::EPERM, names: &[
        "fanotify_init", "lookup_dcookie", "quotactl", "quotactl_fd", "setdomainname",
        "sethostname", "setns", "mount", "mount_setattr", "move_mount", "open_tree", "fsopen",
        "fsconfig", "fsmount", "fspick", "umount", "umount2", "pivot_root",
    ] },
    Group { unless: &[Cap::SysAdmin], errno: libc::ENOSYS, names: &["clone3"] },
    Group { unless: &[Cap::SysAdmin, Cap::Bpf], errno: libc::EPERM, names: &["bpf"] },
    Group { unless: &[Cap::SysAdmin, Cap::Perfmon], errno: libc::EPERM, names: &["perf_event_open"] },
    Group { unless: &[Cap::SysAdmin, Cap::Syslog], errno: libc::EPERM, names: &["syslog"] },
    Group { unless: &[Cap::SysBoot], errno: libc::EPERM, names: &["reboot"] },
    Group { unless: &[Cap::SysChroot], errno: libc::EPERM, names: &["chroot"] },
    Group { unless: &[Cap::SysModule], errno: libc::EPERM, names: &[
        "init_module", "finit_module", "delete_module", "query_module",
    ] },
    Group { unless: &[Cap::SysPacct], errno: libc::EPERM, names: &["acct"] },
    Group { unless: &[Cap::SysPtrace], errno: libc::EPERM, names: &[
        "kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace",
    ] },
    Group { unless: &[Cap::SysRawio], errno: libc::EPERM, names: &["iopl", "ioperm"] },
    Group { unless: &[Cap::SysTime], errno: libc::EPERM, names: &[
        "settimeofday", "stime", "clock_settime", "clock_settime64",
    ] },
    Group { unless: &[Cap::SysTtyConfig], errno: libc::EPERM, names: &["vhangup"] },
    Group { unless: &[Cap::SysNice], errno: libc::EPERM, names: &[
        "get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node",
    ] },
    Group { unless: &[Cap::DacReadSearch], errno: libc::EPERM, names: &["open_by_handle_at"] },
];

/// The namespace flags of clone(2); unshare(2) also takes CLONE_NEWTIME, which in clone's
/// flags is part of the exit-signal byte and must not be matched there.
const CLONE_NS_FLAGS: [i32; 7] = [
    libc::CLONE_NEWNS,
    libc::CLONE_NEWCGROUP,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
];

/// clone's flags are its first argument, except on s390 where the stack comes first.
const CLONE_FLAGS_ARG: usize = if cfg!(target_arch = "s390x") { 1 } else { 0 };

/// podman's default capability set (containers.conf default_capabilities).
const PODMAN_DEFAULT_CAPS: [Cap; 11] = [
    Cap::Chown,
    Cap::DacOverride,
    Cap::Fowner,
    Cap::Fsetid,
    Cap::Kill,
    Cap::NetBindService,
    Cap::Setfcap,
    Cap::Setgid,
    Cap::Setpcap,
    Cap::Setuid,
    Cap::SysChroot,
];

/// The default profile for a container with podman's default capability set.
pub fn default_profile() -> LinuxSeccomp {
    default_profile_for(&PODMAN_DEFAULT_CAPS.into_iter().collect())
}

fn deny(names: &[&str], errno: i32, args: Vec<LinuxSeccompArg>) -> LinuxSyscall {
    let mut rule = LinuxSyscall::default();
    rule.set_names(names.iter().map(|n| n.to_string()).collect());
    rule.set_action(Act::ScmpActErrno);
    rule.set_errno_ret(Some(errno as u32));
    rule.set_args((!args.is_empty()).then_some(args));
    rule
}

fn arg(index: usize, op: Op, value: u64, value_two: u64) -> LinuxSeccompArg {
    LinuxSeccompArgBuilder::default()
        .index(index)
        .op(op)
        .value(value)
        .value_two(value_two)
        .build()
        .expect("every field of LinuxSeccompArg has a default")
}

/// One rule per namespace flag: the rules of one syscall are alternatives, so any flag set
/// denies the call. ((flags & FLAG) == FLAG)
fn namespace_rules<'a>(
    name: &'a str,
    index: usize,
    flags: &'a [i32],
) -> impl Iterator<Item = LinuxSyscall> + 'a {
    flags.iter().map(move |f| {
        let f = *f as u32 as u64;
        deny(
            &[name],
            libc::EPERM,
            vec![arg(index, Op::ScmpCmpMaskedEq, f, f)],
        )
    })
}

/// The default profile for a container whose capabilities (its bounding set) are `caps`:
/// a group gated by a capability is denied only when `caps` lacks it.
pub fn default_profile_for(caps: &Capabilities) -> LinuxSeccomp {
    let has = |any: &[Cap]| any.iter().any(|c| caps.contains(c));
    let mut rules: Vec<LinuxSyscall> = GROUPS
        .iter()
        .filter(|g| g.unless.is_empty() || !has(g.unless))
        .map(|g| deny(g.names, g.errno, Vec::new()))
        .collect();
    if !has(&[Cap::SysAdmin]) {
        rules.extend(namespace_rules("clone", CLONE_FLAGS_ARG, &CLONE_NS_FLAGS));
        rules.extend(namespace_rules("unshare", 0, &CLONE_NS_FLAGS));
        rules.extend(namespace_rules("unshare", 0, &[libc::CLONE_NEWTIME]));
    }
    if !has(&[Cap::AuditWrite]) {
        // socket(AF_NETLINK, *, NETLINK_AUDIT): EINVAL, as podman answers.
        let audit = vec![
            arg(0, Op::ScmpCmpEq, libc::AF_NETLINK as u64, 0),
            arg(2, Op::ScmpCmpEq, 9 /* NETLINK_AUDIT */, 0),
        ];
        rules.push(deny(&["socket"], libc::EINVAL, audit));
    }
    let mut profile = LinuxSeccomp::default();
    profile.set_default_action(Act::ScmpActAllow);
    profile.set_architectures(native_and_compat());
    profile.set_syscalls(Some(rules));
    profile
}

/// The native architecture and the compat ones its kernel runs, so that a 32-bit binary meets
/// the same rules instead of libseccomp's bad-architecture kill.
fn native_and_compat() -> Option<Vec<Arch>> {
    if cfg!(target_arch = "x86_64") {
        Some(vec![
            Arch::ScmpArchX86_64,
            Arch::ScmpArchX86,
            Arch::ScmpArchX32,
        ])
    } else if cfg!(target_arch = "aarch64") {
        Some(vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm])
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(p: &LinuxSeccomp) -> Vec<String> {
        p.syscalls()
            .iter()
            .flatten()
            .flat_map(|s| s.names().clone())
            .collect()
    }

    #[test]
    fn default_profile_denies_the_dangerous_calls() {
        let p = default_profile();
        assert_eq!(p.default_action(), Act::ScmpActAllow);
        let n = names(&p);
        for want in [
            "kexec_load",
            "init_module",
            "bpf",
            "mount",
            "setns",
            "keyctl",
            "ptrace",
            "clone3",
        ] {
            assert!(n.iter().any(|x| x == want), "{want} not denied");
        }
        // podman's default capabilities include SYS_CHROOT.
        assert!(!n.iter().any(|x| x == "chroot"));
    }

    #[test]
    fn capabilities_lift_their_groups() {
        let caps: Capabilities = [Cap::SysAdmin, Cap::SysPtrace].into_iter().collect();
        let n = names(&default_profile_for(&caps));
        for gone in [
            "mount", "setns", "clone3", "unshare", "clone", "ptrace", "bpf",
        ] {
            assert!(!n.iter().any(|x| x == gone), "{gone} still denied");
        }
        assert!(n.iter().any(|x| x == "chroot") && n.iter().any(|x| x == "kexec_load"));
    }

    #[test]
    fn clone_rules_match_each_namespace_flag() {
        let p = default_profile();
        let clone: Vec<_> = p
            .syscalls()
            .iter()
            .flatten()
            .filter(|s| s.names() == &["clone"])
            .collect();
        assert_eq!(clone.len(), CLONE_NS_FLAGS.len());
        let a = clone[4].args().as_ref().unwrap()[0];
        assert_eq!(
            (a.op(), a.value(), a.value_two()),
            (Op::ScmpCmpMaskedEq, 0x1000_0000, Some(0x1000_0000))
        );
    }
}
