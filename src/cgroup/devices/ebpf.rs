//! The unified hierarchy's device rules: a BPF_PROG_TYPE_CGROUP_DEVICE program built from the
//! [`Policy`], attached to the container's cgroup (BPF_F_ALLOW_MULTI, as runc and crun do, so
//! that a program systemd put on a parent still applies). An update replaces the program in
//! one step (BPF_F_REPLACE) when nsboot's is the only one there, else attaches the new one
//! before detaching the old (meanwhile both must allow an access: never more than either).
//!
//! The program reads the request (struct bpf_cgroup_dev_ctx: access_type = access << 16 |
//! type, major, minor) into r2..r5, then tests each exception in turn:
//!   type, major, minor: each one the exception names, compared (jne to the next exception);
//!   default deny:  r0 = access & ~allowed; if r0 == 0 return 1 (this exception covers it);
//!   default allow: r0 = access & denied;   if r0 != 0 return 0 (this exception touches it);
//! and after the last one returns the default.

use std::ffi::CStr;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use super::{DevicesError, Exception, Kind, Policy, ALL};
use crate::sys::bpf::{self, Insn};

// Opcodes (linux/bpf_common.h, linux/bpf.h): class | op | source.
const LDX_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const AND32_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const RSH32_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const MOV32_K: u8 = 0xb4; // BPF_ALU | BPF_MOV | BPF_K
const MOV32_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const JEQ32_K: u8 = 0x16; // BPF_JMP32 | BPF_JEQ | BPF_K
const JNE32_K: u8 = 0x56; // BPF_JMP32 | BPF_JNE | BPF_K
const EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

// The request's registers; r1 is the context.
const R0: u8 = 0;
const CTX: u8 = 1;
const TYPE: u8 = 2;
const ACCESS: u8 = 3;
const MAJOR: u8 = 4;
const MINOR: u8 = 5;

/// BPF_DEVCG_DEV_BLOCK and BPF_DEVCG_DEV_CHAR.
fn dev_type(k: Kind) -> i32 {
    match k {
        Kind::Block => 1,
        Kind::Char => 2,
    }
}

/// The instructions of one exception: its key tests, then the verdict when they all match.
fn exception(e: &Exception, default_allow: bool) -> Vec<Insn> {
    let mut tests = vec![(TYPE, dev_type(e.kind))];
    tests.extend(e.major.map(|m| (MAJOR, m as i32)));
    tests.extend(e.minor.map(|m| (MINOR, m as i32)));
    let verdict = if default_allow {
        [
            Insn::new(MOV32_X, R0, ACCESS, 0, 0),
            Insn::new(AND32_K, R0, 0, 0, i32::from(e.access)),
            Insn::new(JEQ32_K, R0, 0, 2, 0),
            Insn::new(MOV32_K, R0, 0, 0, 0),
            Insn::new(EXIT, 0, 0, 0, 0),
        ]
    } else {
        [
            Insn::new(MOV32_X, R0, ACCESS, 0, 0),
            Insn::new(AND32_K, R0, 0, 0, i32::from(!e.access & ALL)),
            Insn::new(JNE32_K, R0, 0, 2, 0),
            Insn::new(MOV32_K, R0, 0, 0, 1),
            Insn::new(EXIT, 0, 0, 0, 0),
        ]
    };
    let mut out = Vec::new();
    let n = tests.len();
    for (i, (reg, value)) in tests.into_iter().enumerate() {
        // Past the remaining tests and the verdict: the next exception.
        let skip = (n - i - 1 + verdict.len()) as i16;
        out.push(Insn::new(JNE32_K, reg, 0, skip, value));
    }
    out.extend(verdict);
    out
}

/// The whole program for `policy`.
pub fn program(policy: &Policy) -> Vec<Insn> {
    let mut p = vec![
        Insn::new(LDX_W, TYPE, CTX, 0, 0),
        Insn::new(AND32_K, TYPE, 0, 0, 0xffff),
        Insn::new(LDX_W, ACCESS, CTX, 0, 0),
        Insn::new(RSH32_K, ACCESS, 0, 0, 16),
        Insn::new(LDX_W, MAJOR, CTX, 4, 0),
        Insn::new(LDX_W, MINOR, CTX, 8, 0),
    ];
    for e in &policy.exceptions {
        p.extend(exception(e, policy.default_allow));
    }
    p.push(Insn::new(
        MOV32_K,
        R0,
        0,
        0,
        i32::from(policy.default_allow),
    ));
    p.push(Insn::new(EXIT, 0, 0, 0, 0));
    p
}

const LICENSE: &CStr = c"Apache-2.0";

/// Loads the program of `policy` and attaches it to the cgroup `dir`, in place of any
/// device program attached there before.
pub fn apply(dir: &Path, policy: &Policy) -> Result<(), DevicesError> {
    let io = |what: &str| {
        let (path, what) = (dir.to_path_buf(), what.to_string());
        move |errno: crate::sys::Errno| DevicesError::Io { path, what, errno }
    };
    // O_RDONLY: the kernel attaches to a directory opened for reading, not an O_PATH one.
    let cg = std::fs::File::open(dir).map_err(|e| io("opening it")(e.into()))?;
    let insns = program(policy);
    let prog = bpf::prog_load(
        bpf::PROG_TYPE_CGROUP_DEVICE,
        &insns,
        LICENSE,
        "nsboot_devices",
    )
    .map_err(|(errno, log)| DevicesError::Load {
        path: dir.into(),
        errno,
        log: if log.is_empty() {
            log
        } else {
            format!(": {log}")
        },
    })?;
    let kind = bpf::ATTACH_CGROUP_DEVICE;
    let old = bpf::prog_query(cg.as_fd(), kind).map_err(io("listing its device programs"))?;
    let old: Vec<OwnedFd> = old
        .into_iter()
        .map(bpf::prog_get_fd_by_id)
        .collect::<Result<_, _>>()
        .map_err(io("opening its device program"))?;
    let replace = match old.as_slice() {
        [one] => Some(one.as_fd()),
        _ => None,
    };
    bpf::prog_attach(cg.as_fd(), prog.as_fd(), kind, bpf::F_ALLOW_MULTI, replace)
        .map_err(io("attaching the device program"))?;
    if replace.is_none() {
        for o in &old {
            bpf::prog_detach(cg.as_fd(), o.as_fd(), kind)
                .map_err(io("detaching its previous device program"))?;
        }
    }
    Ok(())
}
