//! The exec'd supervisor (NSBOOT_EXEC_BOOT=1): the spec in a memfd and `nsboot boot` with the
//! fd contract, in the cloned child.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use super::{step, Plan, SandboxError};
use crate::protocol::{self, BootError};
use crate::spec::Spec;
use crate::sys;
use crate::sys::wire;

/// The validated spec in a memfd, for `nsboot boot --spec-fd`.
pub(super) fn spec_memfd(spec: &Spec) -> Result<OwnedFd, SandboxError> {
    use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
    let fd = step(
        "creating the spec memfd",
        memfd_create(c"nsboot-spec", MemFdCreateFlag::MFD_CLOEXEC),
    )?;
    let body = serde_json::to_vec(spec).unwrap_or_default();
    wire::FdIo(fd.as_fd())
        .write_all_checked(&body)
        .map_err(|errno| {
            SandboxError::Step(crate::sys::Failed {
                step: "writing the spec memfd".into(),
                errno,
            })
        })?;
    Ok(fd)
}

/// In the cloned child: exec `nsboot boot` with the fd contract. Returns only on failure
/// (then boot's error goes to start-sync and the child exits).
pub(super) fn exec_boot(
    plan: &Plan,
    spec: OwnedFd,
    ctl: OwnedFd,
    start: OwnedFd,
    userns: OwnedFd,
    shown: &crate::rootfs::shown::Shown,
    mount_ns: Option<&OwnedFd>,
) -> ! {
    let keep = |fd: &OwnedFd| {
        let _ = nix::fcntl::fcntl(
            fd.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
        );
        fd.as_raw_fd().to_string()
    };
    let mut args: Vec<String> = vec!["nsboot".into()];
    args.extend(plan.boot_flags.iter().cloned());
    args.push("boot".into());
    args.extend(["--bundle".into(), plan.bundle.display().to_string()]);
    args.extend(["--spec-fd".into(), keep(&spec)]);
    args.extend(["--controller-fd".into(), keep(&ctl)]);
    args.extend(["--start-sync-fd".into(), keep(&start)]);
    args.extend(["--sync-userns-fd".into(), keep(&userns)]);
    args.extend(["--stdio-fds".into(), "0,1,2".into()]);
    if let Some(c) = &plan.console {
        args.extend(["--console-fd".into(), keep(c)]);
    }
    for fd in 3..3 + plan.preserve_fds as i32 {
        let _ = nix::fcntl::fcntl(
            fd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
        );
        args.extend(["--pass-fd".into(), format!("{fd}:{fd}")]);
    }
    for (i, fd) in shown.fds() {
        args.extend(["--mount-fd".into(), format!("{i}:{}", keep(fd))]);
    }
    for fd in &plan.cgroup {
        args.extend(["--cgroup-fd".into(), keep(fd)]);
    }
    if let Some(fd) = mount_ns {
        args.extend(["--mount-ns-fd".into(), keep(fd)]);
    }
    if plan.attached {
        args.push("--attached".into());
    }
    args.push(plan.id.clone());
    let err = sys::exec_self(args);
    let e = BootError::Step(crate::sys::Failed {
        step: "executing nsboot boot (/proc/self/exe)".into(),
        errno: err,
    });
    protocol::report_failure(&start, &e);
    // SAFETY: _exit in the cloned child.
    unsafe { libc::_exit(125) }
}
