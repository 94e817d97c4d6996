//! The last exec into the container goes through a tiny sealed helper, so that no process in
//! the container is ever the host's nsboot binary (the runc CVE-2019-5736 class).
//!
//! Until its final exec, the process entering the container (the application, or the child of
//! `nsboot exec`) is nsboot: its /proc/self/exe is the host binary. An image whose program is
//! `/proc/self/exe`, or a script with `#!/proc/self/exe`, would make that exec run the host
//! binary inside the container, dumpable; a container process could then hold its
//! /proc/PID/exe and write the binary once it is no longer running. So the process execs this
//! helper instead (a 400-byte static program in a memfd sealed against any write, shrink or
//! grow), and the helper execs the program: /proc/self/exe is then the sealed memfd. runc and
//! crun copy their whole binary into a sealed memfd and re-exec it; copying this helper instead
//! costs a few microseconds, not a copy of megabytes.
//!
//! The helper's command line: `[MARKER, REPORT_FD, PROGRAM, ARGS...]`. It marks REPORT_FD
//! close-on-exec and execs PROGRAM with ARGS; if that fails it writes the errno (4 bytes,
//! little-endian) to REPORT_FD and exits 127. Run any other way (as `/proc/self/exe` from
//! inside), it says so on stderr and exits 126.
//!
//! The process tells its parent first with an [`Handover`] frame; the parent then reads the
//! outcome with [`outcome`].

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use serde::{Deserialize, Serialize};

use super::ProcessError;
use crate::sys::Errno;

#[cfg(not(target_arch = "x86_64"))]
compile_error!("the exec helper (src/process/trampoline.rs) exists for x86_64 only: add this architecture's machine code");

/// argv[0] the helper insists on.
const MARKER: &str = "nsboot-exec";

/// The helper's code, position-independent (x86_64, Intel syntax):
/// ```text
///     mov r13, [rsp]            ; argc
///     cmp r13, 3
///     jb  refuse
///     mov rsi, [rsp+8]          ; argv[0] must be MARKER
///     lea rdi, [rip+marker]
/// 1:  mov al, [rsi]
///     cmp al, [rdi]
///     jne refuse
///     inc rsi
///     inc rdi
///     test al, al
///     jnz 1b
///     mov rsi, [rsp+16]         ; argv[1]: the report fd, in decimal
///     xor r12d, r12d
/// 2:  movzx eax, byte [rsi]
///     test eax, eax
///     jz 3f
///     imul r12d, r12d, 10
///     lea r12d, [r12+rax-48]
///     inc rsi
///     jmp 2b
/// 3:  fcntl(r12d, F_SETFD, FD_CLOEXEC)          ; mov edi/esi/edx, mov eax 72, syscall
///     execve(argv[2], &argv[3], &argv[argc+1]) ; mov rdi [rsp+24], lea rsi [rsp+32],
///                                              ; lea rdx [rsp+r13*8+16], mov eax 59, syscall
///     neg eax                                  ; failed: -errno
///     mov [rsp-8], eax
///     write(r12d, rsp-8, 4)                    ; mov eax 1, syscall
///     mov edi, 127
///     jmp 4f
/// refuse:
///     write(2, msg, 80)
///     mov edi, 126
/// 4:  exit_group(edi)                          ; mov eax 231, syscall
/// marker: .asciz "nsboot-exec"
/// msg:    .ascii "nsboot: not a program to run in the container (it is the runtime's exec helper)\n"
/// ```
#[rustfmt::skip]
const CODE: [u8; 274] = [
    0x4c, 0x8b, 0x2c, 0x24, 0x49, 0x83, 0xfd, 0x03, 0x0f, 0x82, 0x84, 0x00, 0x00, 0x00, 0x48, 0x8b,
    0x74, 0x24, 0x08, 0x48, 0x8d, 0x3d, 0x9c, 0x00, 0x00, 0x00, 0x8a, 0x06, 0x3a, 0x07, 0x75, 0x72,
    0x48, 0xff, 0xc6, 0x48, 0xff, 0xc7, 0x84, 0xc0, 0x75, 0xf0, 0x48, 0x8b, 0x74, 0x24, 0x10, 0x45,
    0x31, 0xe4, 0x0f, 0xb6, 0x06, 0x85, 0xc0, 0x74, 0x0e, 0x45, 0x6b, 0xe4, 0x0a, 0x45, 0x8d, 0x64,
    0x04, 0xd0, 0x48, 0xff, 0xc6, 0xeb, 0xeb, 0x44, 0x89, 0xe7, 0xbe, 0x02, 0x00, 0x00, 0x00, 0xba,
    0x01, 0x00, 0x00, 0x00, 0xb8, 0x48, 0x00, 0x00, 0x00, 0x0f, 0x05, 0x48, 0x8b, 0x7c, 0x24, 0x18,
    0x48, 0x8d, 0x74, 0x24, 0x20, 0x4a, 0x8d, 0x54, 0xec, 0x10, 0xb8, 0x3b, 0x00, 0x00, 0x00, 0x0f,
    0x05, 0xf7, 0xd8, 0x89, 0x44, 0x24, 0xf8, 0x44, 0x89, 0xe7, 0x48, 0x8d, 0x74, 0x24, 0xf8, 0xba,
    0x04, 0x00, 0x00, 0x00, 0xb8, 0x01, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xbf, 0x7f, 0x00, 0x00, 0x00,
    0xeb, 0x1d, 0xbf, 0x02, 0x00, 0x00, 0x00, 0x48, 0x8d, 0x35, 0x24, 0x00, 0x00, 0x00, 0xba, 0x50,
    0x00, 0x00, 0x00, 0xb8, 0x01, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xbf, 0x7e, 0x00, 0x00, 0x00, 0xb8,
    0xe7, 0x00, 0x00, 0x00, 0x0f, 0x05,
    // marker (0xb6) and msg (0xc2), as the code's rip-relative leas expect them.
    b'n', b's', b'b', b'o', b'o', b't', b'-', b'e', b'x', b'e', b'c', 0,
    b'n', b's', b'b', b'o', b'o', b't', b':', b' ', b'n', b'o', b't', b' ', b'a', b' ',
    b'p', b'r', b'o', b'g', b'r', b'a', b'm', b' ', b't', b'o', b' ', b'r', b'u', b'n', b' ', b'i',
    b'n', b' ', b't', b'h', b'e', b' ', b'c', b'o', b'n', b't', b'a', b'i', b'n', b'e', b'r', b' ',
    b'(', b'i', b't', b' ', b'i', b's', b' ', b't', b'h', b'e', b' ', b'r', b'u', b'n', b't', b'i',
    b'm', b'e', b'\'', b's', b' ', b'e', b'x', b'e', b'c', b' ', b'h', b'e', b'l', b'p', b'e', b'r',
    b')', b'\n',
];

/// Where the helper's one segment is loaded (above any mmap_min_addr).
const BASE: u64 = 0x40_0000;
const EHDR: usize = 64;
const PHDR: usize = 56;

/// The helper as a static ELF executable: the file header, one read+execute PT_LOAD of the
/// whole file, the code. Built at compile time.
const ELF: [u8; EHDR + PHDR + CODE.len()] = elf();

const fn put(buf: &mut [u8; EHDR + PHDR + CODE.len()], at: usize, bytes: &[u8]) {
    let mut i = 0;
    while i < bytes.len() {
        buf[at + i] = bytes[i];
        i += 1;
    }
}

const fn elf() -> [u8; EHDR + PHDR + CODE.len()] {
    let size = (EHDR + PHDR + CODE.len()) as u64;
    let mut b = [0u8; EHDR + PHDR + CODE.len()];
    // e_ident: ELF, 64-bit, little-endian, version 1, System V.
    put(&mut b, 0, &[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
    put(&mut b, 16, &2u16.to_le_bytes()); // e_type: ET_EXEC
    put(&mut b, 18, &0x3eu16.to_le_bytes()); // e_machine: x86-64
    put(&mut b, 20, &1u32.to_le_bytes()); // e_version
    put(&mut b, 24, &(BASE + (EHDR + PHDR) as u64).to_le_bytes()); // e_entry: the code
    put(&mut b, 32, &(EHDR as u64).to_le_bytes()); // e_phoff
    put(&mut b, 52, &(EHDR as u16).to_le_bytes()); // e_ehsize
    put(&mut b, 54, &(PHDR as u16).to_le_bytes()); // e_phentsize
    put(&mut b, 56, &1u16.to_le_bytes()); // e_phnum
    let p = EHDR;
    put(&mut b, p, &1u32.to_le_bytes()); // p_type: PT_LOAD
    put(&mut b, p + 4, &5u32.to_le_bytes()); // p_flags: R + X
    put(&mut b, p + 16, &BASE.to_le_bytes()); // p_vaddr (p_offset 0)
    put(&mut b, p + 24, &BASE.to_le_bytes()); // p_paddr
    put(&mut b, p + 32, &size.to_le_bytes()); // p_filesz
    put(&mut b, p + 40, &size.to_le_bytes()); // p_memsz
    put(&mut b, p + 48, &0x1000u64.to_le_bytes()); // p_align
    put(&mut b, EHDR + PHDR, &CODE);
    b
}

/// Sent by the process to its parent right before it hands over to the helper; the parent's
/// message enum has a variant of the same name and shape (`Exec { program }`).
#[derive(Debug, Serialize, Deserialize)]
pub enum Handover {
    Exec { program: String },
}

/// The helper in a sealed memfd (close-on-exec), made before seccomp is loaded.
pub struct Trampoline(OwnedFd);

fn step(what: &str, errno: Errno) -> ProcessError {
    ProcessError::Step {
        step: format!("{what} (the sealed exec helper)"),
        errno,
    }
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
        let _ = nix::unistd::write(report, &(err as i32).to_le_bytes());
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
    Err(super::exec::exec_error(
        program,
        Errno(i32::from_le_bytes(buf)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_helpers_strings_sit_where_its_code_loads_them() {
        assert_eq!(&CODE[0xb6..0xc2], b"nsboot-exec\0");
        assert_eq!(CODE.len() - 0xc2, 0x50);
        assert!(CODE.ends_with(b"exec helper)\n"));
        assert_eq!(MARKER.as_bytes(), &CODE[0xb6..0xc1]);
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
