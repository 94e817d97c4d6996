//! The last exec into the container goes through a tiny sealed helper, so that no process in
//! the container is ever the host's nsboot binary (the runc CVE-2019-5736 class).
//!
//! Until its final exec, the process entering the container (the application, or the child of
//! `nsboot exec`) is nsboot: its /proc/self/exe is the host binary. An image whose program is
//! `/proc/self/exe`, or a script with `#!/proc/self/exe`, would make that exec run the host
//! binary inside the container, dumpable; a container process could then hold its
//! /proc/PID/exe and write the binary once it is no longer running. So the process execs this
//! helper instead (`exec-helper.S`, a static program of a few hundred bytes, in a memfd sealed
//! against any write, shrink or grow), and the helper execs the program: /proc/self/exe is then
//! the sealed memfd. runc and crun copy their whole binary into a sealed memfd and re-exec it;
//! copying this helper instead costs a few microseconds, not a copy of megabytes.
//!
//! The helper's command line: `[MARKER, REPORT_FD, PROGRAM, ARGS...]`. It marks REPORT_FD
//! close-on-exec and execs PROGRAM with ARGS; if that fails it writes the errno (4 bytes,
//! little-endian) to REPORT_FD and exits 127. Run any other way (as `/proc/self/exe` from
//! inside), it says so on stderr and exits 126.
//!
//! The process tells its parent first with an [`Handover`] frame; the parent then reads the
//! outcome with [`outcome`]. Should the helper itself not run (a seccomp profile that denies
//! execveat), the process writes that errno negated.

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use serde::{Deserialize, Serialize};

use super::ProcessError;
use crate::sys::Errno;

#[cfg(not(target_arch = "x86_64"))]
compile_error!("the exec helper (src/process/exec-helper.S) exists for x86_64 only: write it for this architecture");

/// argv[0] the helper insists on.
const MARKER: &str = "nsboot-exec";

/// The helper, built from `exec-helper.S` by build.rs: a static position-independent ELF of
/// one read+execute segment.
const ELF: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/exec-helper"));

/// Sent by the process to its parent right before it hands over to the helper; the parent's
/// message enum has a variant of the same name and shape (`Exec { program }`).
#[derive(Debug, Serialize, Deserialize)]
pub enum Handover {
    Exec { program: String },
}

/// The helper in a sealed memfd (close-on-exec), made before seccomp is loaded.
pub struct Trampoline(OwnedFd);

fn step(what: &str, errno: Errno) -> ProcessError {
    ProcessError::Step(crate::sys::Failed {
        step: format!("{what} (the sealed exec helper)"),
        errno,
    })
}

impl Trampoline {
    pub fn create() -> Result<Self, ProcessError> {
        const MFD_EXEC: libc::c_uint = 0x10;
        let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
        let make = |flags: libc::c_uint| {
            // SAFETY: memfd_create reads the NUL-terminated name and returns a new fd or -1.
            let fd = unsafe { libc::memfd_create(c"nsboot-exec".as_ptr(), flags) };
            (fd >= 0)
                .then(|| {
                    // SAFETY: a new fd, owned by nobody else.
                    unsafe { OwnedFd::from_raw_fd(fd) }
                })
                .ok_or_else(Errno::last)
        };
        // MFD_EXEC (Linux 6.3): executable even under vm.memfd_noexec=1. Older kernels refuse
        // the flag, and every memfd is executable there.
        let fd = match make(flags | MFD_EXEC) {
            Err(Errno(libc::EINVAL)) => make(flags),
            r => r,
        }
        .map_err(|e| step("creating", e))?;
        let mut done = 0;
        while done < ELF.len() {
            match nix::unistd::write(&fd, &ELF[done..]) {
                Ok(n) => done += n,
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(step("writing", e.into())),
            }
        }
        let seals =
            libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
        // SAFETY: F_ADD_SEALS takes an int argument and touches no memory of ours.
        if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
            return Err(step("sealing", Errno::last()));
        }
        Ok(Trampoline(fd))
    }

    /// Execs `program` with `argv` and `envp` through the helper; `report` (close-on-exec until
    /// now, and again in the helper) receives the errno if the program's exec fails. Returns
    /// only if the helper itself could not be executed, having written that errno to `report`
    /// too: the parent reads an errno after a [`Handover`], not a frame.
    pub fn exec(
        &self,
        report: BorrowedFd<'_>,
        program: &CString,
        argv: &[CString],
        envp: &[CString],
    ) -> Errno {
        let fd = CString::new(report.as_raw_fd().to_string()).expect("digits");
        let marker = CString::new(MARKER).expect("no NUL");
        let mut args: Vec<&std::ffi::CStr> = vec![&marker, &fd, program];
        args.extend(argv.iter().map(CString::as_c_str));
        let keep = nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty());
        let err = match nix::fcntl::fcntl(report.as_raw_fd(), keep) {
            Err(e) => e,
            Ok(_) => nix::unistd::execveat(
                Some(self.0.as_raw_fd()),
                c"",
                &args,
                envp,
                nix::fcntl::AtFlags::AT_EMPTY_PATH,
            )
            .unwrap_err(),
        };
        let _ = nix::fcntl::fcntl(
            report.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        );
        // Negative: the helper itself did not run (the program's own failures are positive).
        let _ = nix::unistd::write(report, &(-(err as i32)).to_le_bytes());
        err.into()
    }
}

/// The parent's side, after a [`Handover`]: EOF means the program was executed; 4 bytes are
/// the errno its exec failed with.
pub fn outcome(sock: BorrowedFd<'_>, program: String) -> Result<(), ProcessError> {
    use std::io::Read;
    let mut buf = [0u8; 4];
    let mut got = 0;
    let mut io = crate::sys::wire::FdIo(sock);
    while got < 4 {
        match io.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(()),
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => return Err(step("reading the exec outcome", e.into())),
        }
    }
    match i32::from_le_bytes(buf) {
        errno if errno < 0 => Err(ProcessError::Helper {
            program,
            errno: Errno(-errno),
        }),
        errno => Err(super::exec::exec_error(program, Errno(errno))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The built helper, run from its sealed memfd with `arg0` as argv[0] and no environment.
    fn helper(t: &Trampoline, arg0: &str) -> std::process::Command {
        use std::os::unix::process::CommandExt;
        let mut cmd = std::process::Command::new(format!("/proc/self/fd/{}", t.0.as_raw_fd()));
        cmd.arg0(arg0).env_clear();
        cmd
    }

    fn exited(status: std::process::ExitStatus) -> Option<i32> {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), None, "the helper was killed: {status}");
        status.code()
    }

    #[test]
    fn the_helper_is_a_static_pie_with_no_writable_segment() {
        let u16_at = |at: usize| u16::from_le_bytes([ELF[at], ELF[at + 1]]);
        let u32_at = |at: usize| u32::from_le_bytes(ELF[at..at + 4].try_into().unwrap());
        assert_eq!(&ELF[..4], b"\x7fELF");
        assert_eq!((u16_at(16), u16_at(18)), (3, 0x3e), "ET_DYN, x86-64");
        let phoff = u64::from_le_bytes(ELF[32..40].try_into().unwrap()) as usize;
        let (size, count) = (usize::from(u16_at(54)), usize::from(u16_at(56)));
        let phdrs: Vec<(u32, u32)> = (0..count)
            .map(|i| phoff + i * size)
            .map(|p| (u32_at(p), u32_at(p + 4)))
            .collect();
        // PT_LOAD R+X, PT_GNU_STACK R+W: no interpreter, no dynamic section, no W+X.
        assert_eq!(phdrs, [(1, 5), (0x6474_e551, 6)]);
    }

    #[test]
    fn run_any_other_way_the_helper_refuses_in_one_line() {
        let t = Trampoline::create().unwrap();
        let program = ["1", "/bin/true", "true"];
        let cases: [(&str, &[&str]); 4] = [
            ("/proc/self/exe", &program),
            ("nsboot-exe", &program),
            ("nsboot-exec2", &program),
            (MARKER, &["1"]),
        ];
        for (arg0, args) in cases {
            let out = helper(&t, arg0).args(args).output().unwrap();
            assert_eq!(exited(out.status), Some(126), "{arg0} {args:?}");
            assert_eq!(
                String::from_utf8_lossy(&out.stderr),
                "nsboot: not a program to run in the container (it is the runtime's exec helper)\n"
            );
            assert!(out.stdout.is_empty());
        }
    }

    #[test]
    fn a_failed_exec_writes_its_errno_to_the_report_fd_and_exits_127() {
        use std::io::Read;
        let t = Trampoline::create().unwrap();
        let (r, w) = nix::unistd::pipe().unwrap();
        // Inherited (not close-on-exec), with several digits.
        let fd = nix::fcntl::fcntl(w.as_raw_fd(), nix::fcntl::FcntlArg::F_DUPFD(100)).unwrap();
        // SAFETY: F_DUPFD just returned this new fd; we own it alone.
        let report = unsafe { OwnedFd::from_raw_fd(fd) };
        let out = helper(&t, MARKER)
            .args([&fd.to_string(), "/nonexistent/program", "program"])
            .output()
            .unwrap();
        drop((report, w));
        assert_eq!(exited(out.status), Some(127));
        let mut errno = [0u8; 4];
        std::fs::File::from(r).read_exact(&mut errno).unwrap();
        assert_eq!(i32::from_le_bytes(errno), libc::ENOENT);
    }

    #[test]
    fn the_program_gets_its_args_and_environment_but_not_the_report_fd() {
        let t = Trampoline::create().unwrap();
        // Exit 3 only if fd 2, the report fd here, is closed in the program.
        let script = r#"echo "$NSBT_VAR $0 $1"; if true >&2; then exit 9; fi; exit 3"#;
        let out = helper(&t, MARKER)
            .env("NSBT_VAR", "from-env")
            .args(["2", "/bin/sh", "sh", "-c", script, "zero", "one"])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "from-env zero one\n");
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(exited(out.status), Some(3));
    }

    #[test]
    fn handover_reads_as_the_parents_exec_variant() {
        #[derive(Deserialize)]
        enum Parent {
            #[allow(dead_code)]
            Other,
            Exec {
                program: String,
            },
        }
        let frame = serde_json::to_string(&Handover::Exec {
            program: "/bin/x".into(),
        })
        .unwrap();
        let Parent::Exec { program } = serde_json::from_str(&frame).unwrap() else {
            panic!("{frame}");
        };
        assert_eq!(program, "/bin/x");
    }
}
