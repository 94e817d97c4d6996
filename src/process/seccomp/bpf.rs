//! A compiled seccomp filter as plain classic BPF: exported from libseccomp, handed from the
//! caller to the application in memory, and loaded with seccomp(2) itself, so that a launch
//! whose program came from the cache skips libseccomp's compiler altogether.
//!
//! Loading sets the seccomp(2) flags exactly as libseccomp 2.5 does for a filter without
//! NOTIFY rules (profiles with them never come here: they keep libseccomp's own path, which
//! also makes the listener fd).

use std::io::{Read, Seek};

use libseccomp::ScmpFilterContext;
use nix::errno::Errno;
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompFilterFlag as Flag};

/// The kernel refuses programs longer than BPF_MAXINSNS instructions.
pub const MAX_INSNS: usize = libc::BPF_MAXINSNS as usize;
/// One `struct sock_filter`: code (u16), jt (u8), jf (u8), k (u32), in native byte order.
pub const INSN_BYTES: usize = std::mem::size_of::<libc::sock_filter>();

/// Why a program cannot be had: a shape the kernel refuses, or libseccomp's export failed.
#[derive(Debug, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum ProgramError {
    #[error("{len} bytes is not a whole, non-zero number of {INSN_BYTES}-byte BPF instructions")]
    Shape { len: usize },
    #[error("{insns} BPF instructions, more than the kernel's limit of {MAX_INSNS}")]
    TooLong { insns: usize },
    #[error("{step}: {why}")]
    Export { step: String, why: String },
}

fn export_err(step: &str) -> impl FnOnce(&dyn std::fmt::Display) -> ProgramError + '_ {
    move |why| ProgramError::Export {
        step: step.into(),
        why: why.to_string(),
    }
}

/// A seccomp program (1 to MAX_INSNS instructions) and the cache key of the profile it was
/// compiled from.
#[derive(Clone, PartialEq, Eq)]
pub struct Program {
    key: u128,
    bytes: Vec<u8>,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Program({:032x}, {} instructions)", self.key, self.len())
    }
}

impl Program {
    /// Checks the shape the kernel insists on: whole instructions, at least one, at most
    /// MAX_INSNS. (Whether the code itself is sound is the kernel's check, at load.)
    pub fn new(key: u128, bytes: Vec<u8>) -> Result<Program, ProgramError> {
        if bytes.is_empty() || bytes.len() % INSN_BYTES != 0 {
            return Err(ProgramError::Shape { len: bytes.len() });
        }
        let n = bytes.len() / INSN_BYTES;
        if n > MAX_INSNS {
            return Err(ProgramError::TooLong { insns: n });
        }
        Ok(Program { key, bytes })
    }

    pub fn key(&self) -> u128 {
        self.key
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The number of instructions.
    pub fn len(&self) -> usize {
        self.bytes.len() / INSN_BYTES
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn filters(&self) -> Vec<libc::sock_filter> {
        self.bytes
            .chunks_exact(INSN_BYTES)
            .map(|c| libc::sock_filter {
                code: u16::from_ne_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect()
    }
}

/// The BPF libseccomp generated for `ctx` (what its load would hand the kernel).
pub fn export(key: u128, ctx: &ScmpFilterContext) -> Result<Program, ProgramError> {
    use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
    let fd = memfd_create(c"nsboot-bpf", MemFdCreateFlag::MFD_CLOEXEC)
        .map_err(|e| export_err("creating a memfd for the BPF")(&e))?;
    let mut file = std::fs::File::from(fd);
    ctx.export_bpf(&mut file)
        .map_err(|e| export_err("exporting the BPF")(&e))?;
    let mut bytes = Vec::new();
    file.rewind()
        .and_then(|_| file.read_to_end(&mut bytes))
        .map_err(|e| export_err("reading the exported BPF")(&e))?;
    Program::new(key, bytes)
}

/// seccomp(SECCOMP_SET_MODE_FILTER, flags, prog); a null `prog` is libseccomp's probe for
/// whether the kernel knows a flag (EFAULT: it does; EINVAL: it does not).
fn set_mode_filter(
    flags: libc::c_ulong,
    prog: Option<&libc::sock_fprog>,
) -> Result<libc::c_long, Errno> {
    let ptr = prog.map_or(std::ptr::null(), |p| p as *const libc::sock_fprog);
    // SAFETY: seccomp(2) only reads: the sock_fprog and the `len` instructions it points at,
    // which the caller's borrow keeps alive for the call (or null, refused with EFAULT).
    let r = unsafe { libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, flags, ptr) };
    Errno::result(r)
}

/// The flags libseccomp 2.5 passes for the spec's linux.seccomp.flags: TSYNC comes with
/// TSYNC_ESRCH when the kernel has it (5.7+), as libseccomp probes for and does.
pub fn flags(spec: &LinuxSeccomp) -> libc::c_ulong {
    let mut flags = 0;
    for flag in spec.flags().iter().flatten() {
        flags |= match flag {
            Flag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            Flag::SeccompFilterFlagSpecAllow => libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW,
            Flag::SeccompFilterFlagTsync => {
                let esrch = libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
                let known = set_mode_filter(esrch, None) == Err(Errno::EFAULT);
                libc::SECCOMP_FILTER_FLAG_TSYNC | if known { esrch } else { 0 }
            }
        };
    }
    flags
}

/// Loads `program` into the calling thread with the spec's flags. The error is the kernel's
/// errno, or ESRCH when TSYNC could not synchronise a thread (as libseccomp reports it).
pub fn load(program: &Program, spec: &LinuxSeccomp) -> Result<(), Errno> {
    let mut filters = program.filters();
    let prog = libc::sock_fprog {
        // Program::new caps the length at BPF_MAXINSNS, which fits.
        len: filters.len() as libc::c_ushort,
        filter: filters.as_mut_ptr(),
    };
    match set_mode_filter(flags(spec), Some(&prog))? {
        0 => Ok(()),
        // Without TSYNC_ESRCH the kernel names the thread that could not synchronise.
        _ => Err(Errno::ESRCH),
    }
}
