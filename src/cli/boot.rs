//! `nsboot boot`: the supervisor, with runsc boot's fd contract. Internal: nsboot starts it.
//!
//! Every fd is donated by the caller. This is the only place where fds are bare integers: they
//! are turned into `OwnedFd` here, once, and owned from then on.

use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

use crate::boot;
use crate::protocol::{AppFds, Cloned, FdMapping, Handoff, SpecFrom};

// INTERNAL: the sandbox supervisor. nsboot starts it; do not call it directly.
//
// It is started in the spec's namespaces (new, or joined by path), waits on --sync-userns-fd
// until EOF (the caller has written its id maps), becomes root inside the user namespace,
// sets up an empty root, writes one byte to --start-sync-fd, waits for the start signal on
// --controller-fd, starts the application and exits with its status.
#[derive(Debug, clap::Args)]
pub struct BootArgs {
    /// Path to the bundle directory (for relative root.path).
    #[arg(long, value_name = "DIR")]
    pub bundle: PathBuf,
    /// Required: fd to read the (validated) spec from.
    #[arg(long = "spec-fd", value_name = "FD")]
    pub spec_fd: RawFd,
    /// Fd of a stream socket for the control server (listening or connected).
    #[arg(long = "controller-fd", value_name = "FD")]
    pub controller_fd: Option<RawFd>,
    /// Required: fd to write one byte to once the sandbox is ready (or its error).
    #[arg(long = "start-sync-fd", value_name = "FD")]
    pub start_sync_fd: RawFd,
    /// Fd to block on until EOF: the caller has written the id maps.
    #[arg(long = "sync-userns-fd", value_name = "FD")]
    pub sync_userns_fd: Option<RawFd>,
    /// Stdin, stdout and stderr for the application, in that order.
    #[arg(long = "stdio-fds", value_name = "FD,FD,FD", value_delimiter = ',')]
    pub stdio_fds: Vec<RawFd>,
    /// Host fd M becomes fd N of the application (repeatable).
    #[arg(long = "pass-fd", value_name = "M:N", value_parser = parse_fd_mapping)]
    pub pass_fd: Vec<(RawFd, RawFd)>,
    /// Fd of the program to execute (instead of looking up process.args[0]).
    #[arg(long = "exec-fd", value_name = "FD")]
    pub exec_fd: Option<RawFd>,
    /// Set up an empty pivot_root'ed root (always on; accepted for runsc command lines).
    #[arg(long = "setup-root", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub setup_root: bool,
    /// Apply the spec's capabilities (always on; accepted for runsc command lines).
    #[arg(long = "apply-caps", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub apply_caps: bool,
    /// Connected socket to send the pty master to when process.terminal is true.
    #[arg(long = "console-fd", value_name = "FD")]
    pub console_fd: Option<RawFd>,
    /// Fd of a cgroup.procs opened for writing (repeatable): the application writes "0" to
    /// each as its first step (the container's cgroup, made by the caller).
    #[arg(long = "cgroup-fd", value_name = "FD")]
    pub cgroup_fd: Vec<RawFd>,
    /// A detached mount (fd FD) to attach at the spec's mounts[I]: one that shows a namespace
    /// joined by path, made by the process that joined it (repeatable).
    #[arg(long = "mount-fd", value_name = "I:FD", value_parser = parse_fd_mapping)]
    pub mount_fd: Vec<(RawFd, RawFd)>,
    /// Fd of a mount namespace joined by path, which the application enters with the
    /// container root.
    #[arg(long = "mount-ns-fd", value_name = "FD")]
    pub mount_ns_fd: Option<RawFd>,
    /// Die with the parent (PR_SET_PDEATHSIG).
    #[arg(long)]
    pub attached: bool,
    /// The container id.
    pub id: String,
}

/// Parses `M:N` (host fd M becomes application fd N).
pub fn parse_fd_mapping(s: &str) -> Result<(RawFd, RawFd), String> {
    let (m, n) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?}: expected M:N (host fd : application fd)"))?;
    let parse = |x: &str| -> Result<RawFd, String> {
        x.parse::<RawFd>()
            .ok()
            .filter(|v| *v >= 0)
            .ok_or_else(|| format!("{x:?} in {s:?} is not a file descriptor number"))
    };
    Ok((parse(m)?, parse(n)?))
}

/// Takes ownership of a donated fd.
fn own(fd: RawFd) -> OwnedFd {
    // SAFETY: the fd was donated to this process by its caller on the command line; nothing else
    // in this process knows it, so taking exclusive ownership here is sound.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

pub fn run(args: BootArgs, _global: &crate::cli::Global) -> i32 {
    if !matches!(args.stdio_fds.len(), 0 | 3) {
        crate::sys::log::fatal("--stdio-fds takes three fds: stdin,stdout,stderr");
        return 125;
    }
    if let Some(fd) = args.sync_userns_fd {
        return match boot::sync_userns_before_reexec(own(fd), own(args.start_sync_fd)) {
            // Left open, as every fd of the contract, for the next image.
            Ok(start_sync) => {
                let _ = start_sync.into_raw_fd();
                reexec_without_sync_fd()
            }
            Err(code) => code,
        };
    }
    // The supervisor's own 0, 1, 2 stay open for its messages; the application gets copies.
    let stdio = if args.stdio_fds == [0, 1, 2] {
        Vec::new()
    } else {
        args.stdio_fds.clone()
    };
    boot::main(Handoff {
        id: args.id,
        spec: SpecFrom::Fd {
            fd: own(args.spec_fd),
            bundle: args.bundle,
        },
        controller: args.controller_fd.map(own),
        start_sync: own(args.start_sync_fd),
        // Done before the re-exec above.
        sync_userns: None,
        app: AppFds {
            stdio: stdio.iter().map(|&fd| own(fd)).collect(),
            pass: args
                .pass_fd
                .iter()
                .map(|&(m, n)| FdMapping {
                    host: own(m),
                    app: n,
                })
                .collect(),
            exec: args.exec_fd.map(own),
            console: args.console_fd.map(own),
            cgroup: args.cgroup_fd.iter().map(|fd| own(*fd)).collect(),
            mount_ns: args.mount_ns_fd.map(own),
        },
        attached: args.attached,
        // `nsboot boot` is started in every namespace of the spec by its caller.
        cloned: Cloned {
            shown: crate::rootfs::shown::Shown::from_fds(
                args.mount_fd
                    .iter()
                    .map(|&(i, fd)| (i as usize, own(fd)))
                    .collect(),
            ),
            ..Cloned::default()
        },
    })
}

/// Execs /proc/self/exe with the same arguments minus --sync-userns-fd (now done).
fn reexec_without_sync_fd() -> i32 {
    let mut args: Vec<String> = Vec::new();
    let mut it = std::env::args();
    while let Some(a) = it.next() {
        if a == "--sync-userns-fd" {
            it.next();
        } else if !a.starts_with("--sync-userns-fd=") {
            args.push(a);
        }
    }
    let err = crate::sys::exec_self(args);
    crate::sys::log::fatal(&format!("re-executing nsboot boot: {err}"));
    125
}

#[cfg(test)]
mod tests {
    use super::parse_fd_mapping;

    #[test]
    fn fd_mapping_parses_host_and_app_fds() {
        assert_eq!(parse_fd_mapping("7:3"), Ok((7, 3)));
    }

    #[test]
    fn fd_mapping_rejects_garbage() {
        assert!(parse_fd_mapping("7").is_err());
        assert!(parse_fd_mapping("-1:3").is_err());
        assert!(parse_fd_mapping("a:b").is_err());
        assert!(parse_fd_mapping("3:").is_err());
    }
}
