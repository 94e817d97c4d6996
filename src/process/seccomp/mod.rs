//! linux.seccomp, compiled and loaded with libseccomp (as runc, crun and youki do), and the
//! default profile for sandboxes whose spec brings none.
//!
//! Unknown action, operator and architecture names never reach this module: oci-spec's enums
//! reject them when config.json is parsed. Unknown *syscall* names are different: a profile
//! written for a newer kernel or another architecture names syscalls this libseccomp cannot
//! resolve, and those rules are skipped with a debug line, as every runtime does.

use std::os::fd::{FromRawFd, OwnedFd};

use libseccomp::{
    error::SeccompErrno, ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext,
    ScmpSyscall,
};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction as Act, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator as Op,
};
use serde::{Deserialize, Serialize};

pub mod agent;
pub mod bpf;
pub mod cache;
pub use crate::spec::seccomp_profile::{default_profile, default_profile_for};

#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
pub enum SeccompError {
    #[error("linux.seccomp: errnoRet {value} of {what} is out of range: use 1-65535 (an errno such as 1 for EPERM)")]
    ErrnoRange { what: String, value: u32 },
    #[error("linux.seccomp.syscalls[{rule}]: argument index {index} is out of range: system calls have arguments 0-5")]
    ArgIndex { rule: usize, index: usize },
    #[error("linux.seccomp: {what}: {reason}")]
    Filter { what: String, reason: String },
    #[error("linux.seccomp.syscalls[{rule}] {name}: adding the rule failed: {reason}")]
    Rule {
        rule: usize,
        name: String,
        reason: String,
    },
    #[error("loading the seccomp filter: {reason}")]
    Load { reason: String },
}

const EPERM: u32 = libc::EPERM as u32;

/// A spec action as libseccomp's. ERRNO and TRACE carry `errno_ret`, EPERM when absent (runc's
/// default); SCMP_ACT_KILL is the historical name of KILL_THREAD.
pub fn action(act: Act, errno_ret: Option<u32>, what: &str) -> Result<ScmpAction, SeccompError> {
    let ret = || {
        let value = errno_ret.unwrap_or(EPERM);
        u16::try_from(value).map_err(|_| SeccompError::ErrnoRange {
            what: what.into(),
            value,
        })
    };
    Ok(match act {
        Act::ScmpActKill | Act::ScmpActKillThread => ScmpAction::KillThread,
        Act::ScmpActKillProcess => ScmpAction::KillProcess,
        Act::ScmpActTrap => ScmpAction::Trap,
        Act::ScmpActErrno => ScmpAction::Errno(ret()?.into()),
        Act::ScmpActTrace => ScmpAction::Trace(ret()?),
        Act::ScmpActNotify => ScmpAction::Notify,
        Act::ScmpActLog => ScmpAction::Log,
        Act::ScmpActAllow => ScmpAction::Allow,
    })
}

/// A spec architecture as libseccomp's.
pub fn arch(arch: Arch) -> ScmpArch {
    match arch {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
    }
}

/// A spec argument condition as libseccomp's. For MASKED_EQ the spec's `value` is the mask and
/// `valueTwo` the datum: (arg & value) == valueTwo.
pub fn condition(rule: usize, arg: &LinuxSeccompArg) -> Result<ScmpArgCompare, SeccompError> {
    let index = arg.index();
    if index > 5 {
        return Err(SeccompError::ArgIndex { rule, index });
    }
    let op = match arg.op() {
        Op::ScmpCmpNe => ScmpCompareOp::NotEqual,
        Op::ScmpCmpLt => ScmpCompareOp::Less,
        Op::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        Op::ScmpCmpEq => ScmpCompareOp::Equal,
        Op::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        Op::ScmpCmpGt => ScmpCompareOp::Greater,
        Op::ScmpCmpMaskedEq => ScmpCompareOp::MaskedEqual(arg.value()),
    };
    let datum = match arg.op() {
        Op::ScmpCmpMaskedEq => arg.value_two().unwrap_or(0),
        _ => arg.value(),
    };
    Ok(ScmpArgCompare::new(index as u32, op, datum))
}

/// The rules one syscall entry becomes. Conditions on distinct arguments form one rule (all
/// must hold); if one argument is named twice, libseccomp cannot AND them, so each condition
/// becomes a rule of its own (any may hold), which is runc's long-standing reading.
fn rule_conditions(
    rule: usize,
    args: &[LinuxSeccompArg],
) -> Result<Vec<Vec<ScmpArgCompare>>, SeccompError> {
    let conds = args
        .iter()
        .map(|a| condition(rule, a))
        .collect::<Result<Vec<_>, _>>()?;
    let mut seen = [false; 6];
    let repeated = args
        .iter()
        .any(|a| std::mem::replace(&mut seen[a.index()], true));
    Ok(if repeated {
        conds.into_iter().map(|c| vec![c]).collect()
    } else {
        vec![conds]
    })
}

/// Whether the profile hands syscalls to a user-space listener (then `load` returns its fd).
pub fn uses_notify(spec: &LinuxSeccomp) -> bool {
    spec.syscalls()
        .iter()
        .flatten()
        .any(|s| s.action() == Act::ScmpActNotify)
}

fn filter_err(what: &'static str) -> impl Fn(libseccomp::error::SeccompError) -> SeccompError {
    move |e| SeccompError::Filter {
        what: what.into(),
        reason: e.to_string(),
    }
}

/// Compile the profile into a filter context without loading it. Returns whether any NOTIFY
/// rule made it into the filter.
fn compile(spec: &LinuxSeccomp) -> Result<(ScmpFilterContext, bool), SeccompError> {
    let default = action(
        spec.default_action(),
        spec.default_errno_ret(),
        "defaultAction",
    )?;
    let mut ctx =
        ScmpFilterContext::new_filter(default).map_err(filter_err("creating the filter"))?;
    // no_new_privs is the spec's decision, made by creds; libseccomp would set it on its own.
    ctx.set_ctl_nnp(false)
        .map_err(filter_err("clearing the no_new_privs attribute"))?;
    // The kernel's own errno on load (EACCES, ...) instead of libseccomp's ECANCELED.
    ctx.set_api_sysrawrc(true)
        .map_err(filter_err("asking for raw errors"))?;
    // A binary search over syscall numbers instead of a linear list: on load the kernel runs
    // the filter once per syscall number and architecture to build its action cache, so a
    // shorter path per syscall is a faster load (and a faster filter). Best effort: older
    // libseccomp lacks it.
    if let Err(e) = ctx.set_ctl_optimize(2) {
        tracing::debug!("seccomp: no binary-tree filter ({e}): a linear one");
    }
    for a in spec.architectures().iter().flatten() {
        ctx.add_arch(arch(*a)).map_err(|e| SeccompError::Filter {
            what: format!("adding architecture {a}"),
            reason: format!("{e}: remove it from linux.seccomp.architectures"),
        })?;
    }
    for flag in spec.flags().iter().flatten() {
        match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => ctx.set_ctl_log(true),
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => ctx.set_ctl_ssb(true),
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => ctx.set_ctl_tsync(true),
        }
        .map_err(|e| SeccompError::Filter {
            what: format!("setting flag {flag}"),
            reason: e.to_string(),
        })?;
    }
    let mut notify = false;
    for (i, sc) in spec.syscalls().iter().flatten().enumerate() {
        let act = action(
            sc.action(),
            sc.errno_ret(),
            &format!("linux.seccomp.syscalls[{i}]"),
        )?;
        if act == default {
            // libseccomp refuses a rule that repeats the default action; it would be a no-op.
            continue;
        }
        let groups = rule_conditions(i, sc.args().as_deref().unwrap_or_default())?;
        for name in sc.names() {
            let Ok(nr) = ScmpSyscall::from_name(name) else {
                tracing::debug!(syscall = %name, "seccomp rule skipped: libseccomp does not know this syscall here");
                continue;
            };
            for conds in &groups {
                let added = if conds.is_empty() {
                    ctx.add_rule(act, nr)
                } else {
                    ctx.add_rule_conditional(act, nr, conds)
                };
                added.map_err(|e| SeccompError::Rule {
                    rule: i,
                    name: name.clone(),
                    reason: e.to_string(),
                })?;
            }
            notify |= act == ScmpAction::Notify;
        }
    }
    Ok((ctx, notify))
}

/// Compile the profile into a filter context without loading it (for inspection and tests).
pub fn build(spec: &LinuxSeccomp) -> Result<ScmpFilterContext, SeccompError> {
    compile(spec).map(|(ctx, _)| ctx)
}

/// Compile and load the profile into the calling thread (the application is single-threaded
/// here; the TSYNC flag covers other cases). Returns the user-notification fd when the profile
/// has NOTIFY rules: the caller hands it to linux.seccomp.listenerPath.
///
/// `precompiled`, the program the caller compiled for this profile (from the cache), is
/// loaded as it is instead; should the kernel refuse it as invalid, the profile is
/// compiled here after all.
pub fn load(
    spec: &LinuxSeccomp,
    precompiled: Option<&bpf::Program>,
) -> Result<Option<OwnedFd>, SeccompError> {
    if let Some(program) = precompiled.filter(|_| !uses_notify(spec)) {
        match cache::key(spec) {
            Ok(key) if key == program.key() => match bpf::load(program, spec) {
                Ok(()) => return Ok(None),
                Err(nix::errno::Errno::EINVAL) => {
                    tracing::debug!("the kernel refused the precompiled seccomp program (EINVAL): compiling the profile")
                }
                Err(e) => {
                    return Err(SeccompError::Load {
                        reason: load_reason(seccomp_errno(e), || {
                            // The binding's words for an errno it has no name for.
                            format!("libseccomp-rs error: errno {} not handled.", -(e as i32))
                        }),
                    });
                }
            },
            _ => tracing::debug!(
                "the precompiled seccomp program is not this profile's: compiling it"
            ),
        }
    }
    let (ctx, notify) = compile(spec)?;
    ctx.load().map_err(|e| SeccompError::Load {
        reason: load_reason(e.errno(), || e.to_string()),
    })?;
    if !notify {
        return Ok(None);
    }
    let raw = ctx.get_notify_fd().map_err(|e| SeccompError::Load {
        reason: format!("getting the notify fd: {e}"),
    })?;
    // SAFETY: libseccomp opened this fd in load() above for this filter and keeps only a copy of
    // its number in its global state, which nothing here uses again (we never reset that state);
    // ownership passes to the caller.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(raw) }))
}

/// The binding's name for a raw errno, as its `SeccompError::errno` gives it.
fn seccomp_errno(e: nix::errno::Errno) -> Option<SeccompErrno> {
    use nix::errno::Errno as E;
    Some(match e {
        E::EACCES => SeccompErrno::EACCES,
        E::ECANCELED => SeccompErrno::ECANCELED,
        E::EDOM => SeccompErrno::EDOM,
        E::EEXIST => SeccompErrno::EEXIST,
        E::EFAULT => SeccompErrno::EFAULT,
        E::EINVAL => SeccompErrno::EINVAL,
        E::ENOENT => SeccompErrno::ENOENT,
        E::ENOMEM => SeccompErrno::ENOMEM,
        E::EOPNOTSUPP => SeccompErrno::EOPNOTSUPP,
        E::ERANGE => SeccompErrno::ERANGE,
        E::ESRCH => SeccompErrno::ESRCH,
        _ => return None,
    })
}

/// Why a load failed, worded alike whichever path loaded the filter.
fn load_reason(errno: Option<SeccompErrno>, other: impl FnOnce() -> String) -> String {
    match errno {
        Some(SeccompErrno::EACCES) => "the kernel refused it (EACCES): without process.noNewPrivileges a filter can only be loaded while CAP_SYS_ADMIN is effective; set noNewPrivileges to true".into(),
        Some(e) => e.to_string(),
        None => other(),
    }
}

#[cfg(test)]
mod tests;
