//! The application's last steps: its fds, a clean signal state, credentials and confinement
//! (`creds`), and execve. Before the program is looked up or the cwd entered, every fd but
//! stdio, the --pass-fd targets and nsboot's own few is closed (`isolate_fds`).

use std::convert::Infallible;
use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{fcntl, FcntlArg};
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::unistd::dup2;
use oci_spec::runtime::Process;

use super::seccomp::bpf::Program;
use super::trampoline::{Handover, Trampoline};
use super::{creds, FdMapping, ProcessError};
use crate::spec::Spec;
use crate::sys::{self, step, Errno};

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The program to execute: args[0] looked up in the process's PATH inside the container root
/// (as given when it is executed from --exec-fd).
pub fn resolve(process: &Process, from_fd: bool) -> Result<PathBuf, ProcessError> {
    let args = process
        .args()
        .as_ref()
        .filter(|a| !a.is_empty())
        .ok_or(ProcessError::NoProcess)?;
    if from_fd {
        return Ok(PathBuf::from(&args[0]));
    }
    resolve_program(&args[0], process.env().as_deref().unwrap_or_default())
}

/// `seccomp`: the profile's program as the caller compiled it (None: compiled here). The fds
/// are those `isolate_fds` left; `report` is the socket to the parent (close-on-exec).
/// `exec_fd`, the caller's own program, is executed directly; `program` through the sealed
/// helper (`trampoline`), so that the container never runs the host's nsboot.
pub fn exec(
    spec: &Spec,
    process: &Process,
    program: PathBuf,
    report: BorrowedFd<'_>,
    exec_fd: Option<OwnedFd>,
    terminal: Option<OwnedFd>,
    seccomp: Option<Program>,
) -> Result<Infallible, ProcessError> {
    if let Some(slave) = terminal {
        crate::process::console::make_controlling(&slave).map_err(ProcessError::Console)?;
    }
    reset_signals()?;
    let args = process
        .args()
        .as_ref()
        .filter(|a| !a.is_empty())
        .ok_or(ProcessError::NoProcess)?;
    let env: Vec<String> = process.env().clone().unwrap_or_default();
    let argv = cstrings(args)?;
    let envp = cstrings(&env)?;
    let path = cstring(program.as_os_str().as_encoded_bytes())?;
    let name = program.display().to_string();
    // What the last exec goes through: the caller's fd, or the sealed helper, made before
    // seccomp (the profile need not allow memfd_create).
    enum Last {
        Fd(OwnedFd),
        Helper(Trampoline),
    }
    let last = match exec_fd {
        Some(fd) => Last::Fd(fd),
        None => Last::Helper(Trampoline::create()?),
    };
    let profile = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    creds::apply_with_listener(process, profile, seccomp.as_ref(), |fd| {
        Ok(super::seccomp::agent::hand_over(report, fd)?)
    })?;
    let errno = match last {
        Last::Fd(fd) => nix::unistd::fexecve(fd.as_raw_fd(), &argv, &envp).unwrap_err(),
        Last::Helper(helper) => {
            let handover = Handover::Exec {
                program: name.clone(),
            };
            crate::sys::wire::send(report, &handover)?;
            helper.exec(report, &path, &argv, &envp).nix()
        }
    };
    Err(exec_error(name, errno.into()))
}

/// The error of a failed exec of `program`.
pub fn exec_error(program: String, errno: Errno) -> ProcessError {
    match errno.nix() {
        nix::errno::Errno::ENOENT => ProcessError::NotFound { program },
        nix::errno::Errno::EACCES => ProcessError::NotExecutable { program },
        _ => ProcessError::Exec { program, errno },
    }
}

/// stdio onto 0-2, each --pass-fd onto its target, `ours` (nsboot's own fds needed until exec:
/// the report socket, the console socket, the exec fd; close-on-exec) moved above them, and
/// every other fd CLOSED, not only marked close-on-exec: until exec, a host directory open here
/// is reachable through /proc/self/fd/N as the cwd, in the program's path or in PATH (the runc
/// CVE-2024-21626 class). A directory among what is left is refused.
///
/// Nothing may use a closed fd afterwards: OwnedFds in the frames above are never dropped in
/// this process (it execs or _exits), and the log file is muted.
pub fn isolate_fds(
    stdio: Vec<OwnedFd>,
    pass: Vec<FdMapping>,
    ours: &mut [&mut OwnedFd],
) -> Result<(), ProcessError> {
    // Move the pass-fd sources and ours above every target first, so that no dup2 clobbers them.
    let floor = pass.iter().map(|m| m.app).max().unwrap_or(0).max(3) + 1;
    let mut moved = Vec::with_capacity(pass.len());
    for m in pass {
        let high = step(
            "moving a --pass-fd",
            fcntl(m.host.as_raw_fd(), FcntlArg::F_DUPFD_CLOEXEC(floor)),
        )?;
        moved.push((high, m.app));
    }
    for fd in ours.iter_mut() {
        let high = step(
            "moving nsboot's own fds",
            fcntl(fd.as_raw_fd(), FcntlArg::F_DUPFD_CLOEXEC(floor)),
        )?;
        // SAFETY: F_DUPFD_CLOEXEC just returned this new fd; we own it alone.
        **fd = unsafe { OwnedFd::from_raw_fd(high) };
    }
    for (i, fd) in stdio.into_iter().enumerate() {
        if fd.as_raw_fd() != i as i32 {
            step("setting up stdio", dup2(fd.as_raw_fd(), i as i32))?;
        } else {
            // Already in place: keep it open across exec.
            let _ = fd.into_raw_fd();
            step(
                "setting up stdio",
                fcntl(i as i32, FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty())),
            )?;
        }
    }
    let mut keep: Vec<RawFd> = ours.iter().map(|fd| fd.as_raw_fd()).collect();
    for &(high, app) in &moved {
        step("placing a --pass-fd", dup2(high, app))?;
        keep.push(app);
    }
    crate::sys::log::mute_file();
    close_all_but(&keep)?;
    if let Some(fd) = ours.iter().map(|fd| fd.as_raw_fd()).find(|&fd| is_dir(fd)) {
        return Err(ProcessError::LeakedDir {
            fd,
            target: link_target(fd),
        });
    }
    let passed: Vec<RawFd> = moved.iter().map(|&(_, app)| app).collect();
    refuse_leaked_dirs(&passed)
}

/// Closes every fd from 3 up but those in `keep`.
fn close_all_but(keep: &[RawFd]) -> Result<(), ProcessError> {
    let mut keep: Vec<u32> = keep
        .iter()
        .filter(|&&fd| fd >= 3)
        .map(|&fd| fd as u32)
        .collect();
    keep.sort_unstable();
    keep.dedup();
    let close = |first: u32, last: u32| {
        sys::close_range(first, last).map_err(|errno| {
            ProcessError::Step(crate::sys::Failed {
                step: "closing the fds the process does not get".into(),
                errno,
            })
        })
    };
    let mut first = 3u32;
    for fd in keep {
        if fd > first {
            close(first, fd - 1)?;
        }
        first = fd + 1;
    }
    close(first, u32::MAX)
}

fn is_dir(fd: RawFd) -> bool {
    nix::sys::stat::fstat(fd).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
}

fn link_target(fd: RawFd) -> String {
    std::fs::read_link(format!("/proc/self/fd/{fd}"))
        .unwrap_or_default()
        .display()
        .to_string()
}

/// runsc's validateOpenFDs, for the fds that survive exec: a directory fd other than a
/// --pass-fd target is a way out of the root (the runc CVE-2024-21626 class): refuse to start.
/// After `isolate_fds` only stdio and the --pass-fd targets survive exec, so those are all
/// there is to look at: no walk of /proc/self/fd.
fn refuse_leaked_dirs(passed: &[i32]) -> Result<(), ProcessError> {
    use nix::fcntl::FdFlag;
    for fd in (0..3).chain(passed.iter().copied()) {
        let survives = fcntl(fd, FcntlArg::F_GETFD)
            .is_ok_and(|f| !FdFlag::from_bits_truncate(f).contains(FdFlag::FD_CLOEXEC));
        if survives && is_dir(fd) {
            let target = link_target(fd);
            if passed.contains(&fd) {
                tracing::warn!("the application gets fd {fd}, a directory ({target}), as asked");
                continue;
            }
            return Err(ProcessError::LeakedDir { fd, target });
        }
    }
    Ok(())
}

/// An empty signal mask and default dispositions: nsboot blocks the signals it forwards,
/// and Rust ignores SIGPIPE; neither may leak into the application.
fn reset_signals() -> Result<(), ProcessError> {
    step("unblocking signals", SigSet::empty().thread_set_mask())?;
    let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for sig in Signal::iterator() {
        if sig != Signal::SIGKILL && sig != Signal::SIGSTOP {
            // SAFETY: installing SIG_DFL is always sound.
            let _ = unsafe { sigaction(sig, &dfl) };
        }
    }
    // Real-time signals (32..=SIGRTMAX) too; glibc's sigaction refuses 32 and 33, which it
    // keeps for itself, so use the raw syscall with a kernel sigaction of SIG_DFL.
    for sig in 32..=libc::SIGRTMAX() {
        // SAFETY: a zeroed kernel sigaction is SIG_DFL with no flags and an empty mask; the
        // old-action pointer may be null; 8 is the kernel's sigset size on Linux.
        let r = unsafe {
            let act: [libc::c_ulong; 4] = [0; 4];
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                act.as_ptr(),
                std::ptr::null_mut::<libc::c_void>(),
                8usize,
            )
        };
        let _ = r;
    }
    Ok(())
}

/// args[0] as execvp would find it, with the process's own PATH, inside the container root.
fn resolve_program(arg0: &str, env: &[String]) -> Result<PathBuf, ProcessError> {
    if arg0.contains('/') {
        // Checked now so that a missing program fails `create`; execve has the last word.
        if std::fs::symlink_metadata(arg0).is_err() {
            return Err(ProcessError::NotFound {
                program: arg0.into(),
            });
        }
        return Ok(PathBuf::from(arg0));
    }
    let path = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    let mut denied = None;
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(arg0);
        match nix::unistd::access(&candidate, nix::unistd::AccessFlags::X_OK) {
            Ok(()) if candidate.is_file() => return Ok(candidate),
            Err(nix::errno::Errno::EACCES) => denied = Some(candidate),
            _ => {}
        }
    }
    match denied {
        Some(p) => Err(ProcessError::NotExecutable {
            program: p.display().to_string(),
        }),
        None => Err(ProcessError::NotFound {
            program: arg0.into(),
        }),
    }
}

fn cstring(b: &[u8]) -> Result<CString, ProcessError> {
    CString::new(b).map_err(|_| {
        ProcessError::Step(crate::sys::Failed {
            step: "an argument or variable contains a NUL byte".into(),
            errno: Errno(libc::EINVAL),
        })
    })
}

fn cstrings(v: &[String]) -> Result<Vec<CString>, ProcessError> {
    v.iter().map(|s| cstring(s.as_bytes())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn leaked_dir_fd_is_refused_and_a_passed_one_allowed() {
        let dir = std::fs::File::open("/").unwrap();
        // A directory as stdin, as a careless caller would leak it (fds from 3 up are
        // close-on-exec by then, unless passed).
        let saved = nix::unistd::dup(0).unwrap();
        nix::unistd::dup2(dir.as_raw_fd(), 0).unwrap();
        let refused = refuse_leaked_dirs(&[]);
        nix::unistd::dup2(saved, 0).unwrap();
        nix::unistd::close(saved).unwrap();
        match refused {
            Err(ProcessError::LeakedDir { fd: 0, target }) => assert_eq!(target, "/"),
            other => panic!("a leaked directory fd must be refused: {other:?}"),
        }
        let passed = nix::unistd::dup(dir.as_raw_fd()).unwrap();
        assert!(
            refuse_leaked_dirs(&[passed]).is_ok(),
            "a --pass-fd directory is the caller's choice"
        );
        nix::unistd::close(passed).unwrap();
        assert!(refuse_leaked_dirs(&[]).is_ok());
    }
}
