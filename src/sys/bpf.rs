//! The bpf(2) commands a cgroup device program needs: load it, attach it to a cgroup v2
//! directory, list what is attached there, and detach it. Each command's `bpf_attr` member is
//! a `#[repr(C)]` struct of its own, laid out as linux/bpf.h has it; the kernel accepts a
//! shorter attr than its union as long as nothing past it is needed.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::Errno;

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;

pub const PROG_TYPE_CGROUP_DEVICE: u32 = 15;
pub const ATTACH_CGROUP_DEVICE: u32 = 6;
/// Several programs on one cgroup, all of which must allow an access.
pub const F_ALLOW_MULTI: u32 = 2;
const F_REPLACE: u32 = 4;

/// One eBPF instruction (struct bpf_insn): opcode, dst and src registers in one byte, offset,
/// immediate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    pub code: u8,
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    pub const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            regs: (src << 4) | (dst & 0xf),
            off,
            imm,
        }
    }
}

#[repr(C)]
#[derive(Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
#[derive(Default)]
struct Attach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

#[repr(C)]
#[derive(Default)]
struct Query {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

#[repr(C)]
#[derive(Default)]
struct GetFdById {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

/// bpf(cmd, attr, sizeof attr).
fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> Result<libc::c_long, Errno> {
    // SAFETY: attr is a live, initialised #[repr(C)] bpf_attr member of exactly the size
    // passed; every pointer inside it (set by the callers below) points at memory that
    // outlives the call and is as long as the count beside it says.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(r)
    }
}

fn own(fd: libc::c_long) -> OwnedFd {
    // SAFETY: the kernel just returned this new fd to us; nobody else owns it.
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}

/// Loads a program of `prog_type`, named `name` (at most 15 bytes). On a refusal the error
/// carries the verifier's last log line (the load is tried again with a log for it: a log
/// of every load would cost its time, and fail with ENOSPC when too short).
pub fn prog_load(
    prog_type: u32,
    insns: &[Insn],
    license: &std::ffi::CStr,
    name: &str,
) -> Result<OwnedFd, (Errno, String)> {
    let mut attr = ProgLoad {
        prog_type,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..Default::default()
    };
    let n = name.len().min(15);
    attr.prog_name[..n].copy_from_slice(&name.as_bytes()[..n]);
    let e = match bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => return Ok(own(fd)),
        Err(e) => e,
    };
    let mut log = vec![0u8; 1 << 16];
    attr.log_level = 1;
    attr.log_size = log.len() as u32;
    attr.log_buf = log.as_mut_ptr() as u64;
    if let Ok(fd) = bpf(BPF_PROG_LOAD, &mut attr) {
        return Ok(own(fd));
    }
    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
    let text = String::from_utf8_lossy(&log[..end]);
    let last = text.lines().rev().find(|l| !l.trim().is_empty());
    Err((e, last.unwrap_or("").to_string()))
}

/// Attaches `prog` to the cgroup directory `cgroup` (opened O_RDONLY|O_DIRECTORY), in one
/// step in place of `replace` when given (BPF_F_REPLACE, with BPF_F_ALLOW_MULTI in `flags`).
pub fn prog_attach(
    cgroup: BorrowedFd,
    prog: BorrowedFd,
    attach_type: u32,
    flags: u32,
    replace: Option<BorrowedFd>,
) -> Result<(), Errno> {
    let mut attr = Attach {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type,
        attach_flags: flags | if replace.is_some() { F_REPLACE } else { 0 },
        replace_bpf_fd: replace.map_or(0, |fd| fd.as_raw_fd() as u32),
    };
    bpf(BPF_PROG_ATTACH, &mut attr).map(drop)
}

/// Detaches `prog` from `cgroup`.
pub fn prog_detach(cgroup: BorrowedFd, prog: BorrowedFd, attach_type: u32) -> Result<(), Errno> {
    let mut attr = Attach {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type,
        ..Default::default()
    };
    bpf(BPF_PROG_DETACH, &mut attr).map(drop)
}

/// The ids of the programs attached to `cgroup` itself (not inherited) for `attach_type`.
pub fn prog_query(cgroup: BorrowedFd, attach_type: u32) -> Result<Vec<u32>, Errno> {
    let mut ids = vec![0u32; 64];
    let mut attr = Query {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_type,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        ..Default::default()
    };
    bpf(BPF_PROG_QUERY, &mut attr)?;
    ids.truncate(attr.prog_cnt as usize);
    Ok(ids)
}

/// An fd for the loaded program `id`.
pub fn prog_get_fd_by_id(id: u32) -> Result<OwnedFd, Errno> {
    let mut attr = GetFdById {
        prog_id: id,
        ..Default::default()
    };
    bpf(BPF_PROG_GET_FD_BY_ID, &mut attr).map(own)
}
