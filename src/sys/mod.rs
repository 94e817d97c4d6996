//! The foundation every part stands on: raw syscalls that nix does not wrap, and errors of
//! system calls as data (an errno that can cross a process boundary and prints as the
//! kernel's own words); the fd wire format, Unix sockets at paths, logging and the hint for
//! exhausted limits.

pub mod bpf;
pub mod limits;
pub mod log;
pub mod mount;
pub mod nsfs;
pub mod procfs;
pub mod sched;
pub mod socket;
pub mod wire;

use std::fmt;

use serde::{Deserialize, Serialize};

/// A named step that failed with an errno ("setting hostname \"x\": Operation not
/// permitted"): the one `Step` of every part's error enum.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[error("{step}: {errno}")]
pub struct Failed {
    pub step: String,
    pub errno: Errno,
}

/// `r`, its error named by the step `what` (`?` turns it into the part's own error).
pub fn step<T>(what: impl Into<String>, r: nix::Result<T>) -> Result<T, Failed> {
    r.map_err(|e| Failed {
        step: what.into(),
        errno: e.into(),
    })
}

/// An errno, serialised as its number so that a supervisor's error reaches the caller intact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Errno(pub i32);

impl Errno {
    pub fn last() -> Self {
        Errno(nix::errno::Errno::last_raw())
    }
    pub fn nix(self) -> nix::errno::Errno {
        nix::errno::Errno::from_raw(self.0)
    }
}

impl From<nix::errno::Errno> for Errno {
    fn from(e: nix::errno::Errno) -> Self {
        Errno(e as i32)
    }
}

impl From<std::io::Error> for Errno {
    fn from(e: std::io::Error) -> Self {
        Errno(e.raw_os_error().unwrap_or(libc::EIO))
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.nix().desc())
    }
}

impl std::error::Error for Errno {}

/// The result of `clone_process`: like fork's, plus a pidfd for the parent.
pub enum Cloned {
    Child,
    Parent {
        pid: nix::unistd::Pid,
        pidfd: std::os::fd::OwnedFd,
    },
}

/// clone(2) with fork semantics (no new stack: the child continues on a copy of ours) into
/// the namespaces in `flags`, returning a pidfd (CLONE_PIDFD) so that waiting and signalling
/// cannot hit a recycled pid. Only call while single-threaded.
pub fn clone_process(flags: nix::sched::CloneFlags) -> Result<Cloned, Errno> {
    use std::os::fd::FromRawFd;
    let mut pidfd: libc::c_int = -1;
    let all = flags.bits() as libc::c_ulong
        | libc::CLONE_PIDFD as libc::c_ulong
        | libc::SIGCHLD as libc::c_ulong;
    // SAFETY: a raw clone without CLONE_VM and with a null stack behaves as fork(): the child
    // gets a copy of the address space and continues here. nsboot is single-threaded at every
    // call, so no lock can be held by a thread that does not exist in the child. parent_tid
    // points at a live c_int that receives the pidfd (CLONE_PIDFD).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            all,
            std::ptr::null_mut::<libc::c_void>(),
            &mut pidfd as *mut libc::c_int,
            std::ptr::null_mut::<libc::c_int>(),
            0 as libc::c_ulong,
        )
    };
    match ret {
        -1 => Err(Errno::last()),
        0 => Ok(Cloned::Child),
        pid => Ok(Cloned::Parent {
            pid: nix::unistd::Pid::from_raw(pid as i32),
            // SAFETY: the kernel just created this fd for us (CLONE_PIDFD); we own it alone.
            pidfd: unsafe { std::os::fd::OwnedFd::from_raw_fd(pidfd) },
        }),
    }
}

/// The stack a vfork'd child runs on: 1 MiB, allocated lazily, over a guard page that turns an
/// overflow into SIGSEGV instead of a write into whatever lies below.
const VFORK_STACK: usize = 1 << 20;
const GUARD: usize = 4096;

/// clone(2) with vfork semantics into the namespaces in `flags`: the child runs `child` on a
/// stack of its own, in this address space, while this process is suspended until the child
/// execs or exits (CLONE_VM | CLONE_VFORK, as posix_spawn does). No copy of the address space
/// is made, and the exec drops a reference instead of tearing a copy down. Returns the pid and
/// a pidfd (CLONE_PIDFD).
///
/// `child` must end in a successful execve or by returning its exit status (`_exit`ed here,
/// with no atexit handler or destructor of ours run). Until then it shares our memory: what it
/// frees, allocates or leaves behind is ours; it must not drop what we will use after it. Only
/// call while single-threaded: nobody else may touch this memory meanwhile.
pub fn clone_vfork(
    flags: nix::sched::CloneFlags,
    child: &mut dyn FnMut() -> i32,
) -> Result<(nix::unistd::Pid, std::os::fd::OwnedFd), Errno> {
    use std::os::fd::FromRawFd;
    extern "C" fn trampoline(arg: *mut libc::c_void) -> libc::c_int {
        // SAFETY: `arg` is the `&mut dyn FnMut` below, alive for the whole clone call: the
        // parent is suspended until this child execs or exits.
        let child = unsafe { &mut *(arg as *mut &mut dyn FnMut() -> i32) };
        let code = child();
        // SAFETY: _exit ends the child without running the parent's atexit handlers or
        // destructors, which would act on the memory it shares with the parent.
        unsafe { libc::_exit(code) }
    }
    let size = VFORK_STACK + GUARD;
    // SAFETY: a fresh private anonymous mapping; nothing else refers to it.
    let stack = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK,
            -1,
            0,
        )
    };
    if stack == libc::MAP_FAILED {
        return Err(Errno::last());
    }
    // SAFETY: the range lies within the mapping just made; the lowest page stays PROT_NONE.
    let rw = unsafe {
        libc::mprotect(
            stack.cast::<u8>().add(GUARD).cast(),
            VFORK_STACK,
            libc::PROT_READ | libc::PROT_WRITE,
        )
    };
    let mut pidfd: libc::c_int = -1;
    let mut arg: &mut dyn FnMut() -> i32 = child;
    let all = flags.bits() | libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD | libc::SIGCHLD;
    let pid = if rw == 0 {
        // SAFETY: the stack's top is the end of the mapping (the stack grows down, 16-byte
        // aligned as a page end is); `arg` outlives the call, which returns only once the child
        // has execed or exited; parent_tid points at a live c_int for the pidfd (CLONE_PIDFD).
        unsafe {
            libc::clone(
                trampoline,
                stack.cast::<u8>().add(size).cast(),
                all,
                (&mut arg as *mut &mut dyn FnMut() -> i32).cast(),
                &mut pidfd as *mut libc::c_int,
            )
        }
    } else {
        -1
    };
    let err = Errno::last();
    // SAFETY: the child no longer runs on this stack: it has execed (its own address space now)
    // or exited; the mapping is ours alone.
    unsafe { libc::munmap(stack, size) };
    if pid < 0 {
        return Err(err);
    }
    Ok((
        nix::unistd::Pid::from_raw(pid),
        // SAFETY: the kernel just created this fd for us (CLONE_PIDFD); we own it alone.
        unsafe { std::os::fd::OwnedFd::from_raw_fd(pidfd) },
    ))
}

/// pidfd_send_signal(2).
pub fn pidfd_signal(pidfd: std::os::fd::BorrowedFd<'_>, sig: i32) -> Result<(), Errno> {
    use std::os::fd::AsRawFd;
    // SAFETY: plain syscall on a valid borrowed fd; null siginfo means "as kill(2)".
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            0usize,
            0u32,
        )
    };
    if r == -1 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// Waits for the process behind `pidfd` and returns its exit status the shell's way:
/// the exit code, or 128+N when killed by signal N.
pub fn pidfd_wait(pidfd: std::os::fd::BorrowedFd<'_>) -> Result<i32, Errno> {
    use std::os::fd::AsRawFd;
    loop {
        // SAFETY: siginfo is plain data, zeroed, and filled by the kernel.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid on a valid pidfd (P_PIDFD = 3) with a valid siginfo pointer.
        let r = unsafe {
            libc::waitid(
                3 as libc::idtype_t,
                pidfd.as_raw_fd() as libc::id_t,
                &mut info,
                libc::WEXITED,
            )
        };
        if r == -1 {
            let e = Errno::last();
            if e.0 == libc::EINTR {
                continue;
            }
            return Err(e);
        }
        // SAFETY: after a successful waitid with WEXITED, si_status is the valid union member.
        let status = unsafe { info.si_status() };
        return Ok(if info.si_code == libc::CLD_EXITED {
            status
        } else {
            128 + status
        });
    }
}

/// pivot_root(2), which nix does not wrap on every version.
pub fn pivot_root(new_root: &std::path::Path, put_old: &std::path::Path) -> Result<(), Errno> {
    nix::unistd::pivot_root(new_root, put_old).map_err(Errno::from)
}

/// prctl(PR_CAPBSET_DROP, cap): removes `cap` from the bounding set (EINVAL: a capability
/// this kernel does not know).
pub fn capbset_drop(cap: u8) -> Result<(), Errno> {
    // SAFETY: PR_CAPBSET_DROP takes an integer argument and touches no memory of ours.
    let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0) };
    if r == -1 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// close_range(first, last, 0): every fd from `first` to `last` closed now. Only for fds no
/// OwnedFd of this process will close again.
pub fn close_range(first: u32, last: u32) -> Result<(), Errno> {
    // SAFETY: close_range only closes fds in the given range; the caller owns them all.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) };
    if r == -1 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// pidfd_open(2) for our own process (pidfds are always close-on-exec): lets the supervisor
/// notice the caller's death.
pub fn pidfd_self() -> Result<std::os::fd::OwnedFd, Errno> {
    use std::os::fd::FromRawFd;
    // SAFETY: plain syscall; the returned fd is new and ours alone.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, libc::getpid(), 0u32) };
    if r < 0 {
        return Err(Errno::last());
    }
    // SAFETY: r is a fresh fd owned by nobody else.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(r as i32) })
}

/// Whether the process behind a pidfd has exited (its pidfd polls readable).
pub fn pidfd_exited(pidfd: std::os::fd::BorrowedFd<'_>) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut fds = [PollFd::new(pidfd, PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
}

/// Executes /proc/self/exe (this very binary, even if its path changed) with `args` (argv[0]
/// included) and the current environment. Returns only on failure.
pub fn exec_self(args: Vec<String>) -> Errno {
    use std::ffi::CString;
    let argv: Vec<CString> = args
        .into_iter()
        .filter_map(|a| CString::new(a).ok())
        .collect();
    let env: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            CString::new([k.as_encoded_bytes(), b"=", v.as_encoded_bytes()].concat()).ok()
        })
        .collect();
    nix::unistd::execve(c"/proc/self/exe", &argv, &env)
        .unwrap_err()
        .into()
}

/// openat2(2) of `path` below `dir` with open flags `flags` and RESOLVE_* flags `resolve`.
pub fn openat2(
    dir: std::os::fd::BorrowedFd<'_>,
    path: &std::ffi::CStr,
    flags: i32,
    resolve: u64,
) -> Result<std::os::fd::OwnedFd, Errno> {
    use std::os::fd::{AsRawFd, FromRawFd};
    // SAFETY: open_how is plain data; all-zero is its valid "no flags" value.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = flags as u64;
    how.resolve = resolve;
    // SAFETY: openat2 reads a NUL-terminated path and `size_of::<open_how>()` bytes from `how`,
    // both alive for the call; it returns a new fd or -1.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            path.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: fd is a fresh fd owned by nobody else.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}
