//! Raw calls that set the calling process's scheduling, I/O priority, CPU affinity, execution
//! domain, NUMA memory policy and time namespace (libc wraps few of them). Each acts on the
//! caller only and is inherited across fork and exec.

use super::Errno;

fn check(r: libc::c_long) -> Result<(), Errno> {
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// ioprio_set(IOPRIO_WHO_PROCESS, self, class << 13 | level).
pub fn set_ioprio(class: u32, level: u32) -> Result<(), Errno> {
    const IOPRIO_WHO_PROCESS: libc::c_long = 1;
    let prio = libc::c_long::from((class << 13) | level);
    // SAFETY: ioprio_set takes three integers and touches no memory of ours.
    check(unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, prio) })
}

/// The kernel's struct sched_attr (SCHED_ATTR_SIZE_VER1, with the utilization clamps).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct SchedAttr {
    pub size: u32,
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
    pub util_min: u32,
    pub util_max: u32,
}

/// sched_getattr(self): the caller's scheduling attributes.
pub fn get_sched_attr() -> Result<SchedAttr, Errno> {
    let mut attr = SchedAttr::default();
    let size = std::mem::size_of::<SchedAttr>() as u32;
    // SAFETY: the kernel writes at most `size` bytes into `attr`, which lives across the call.
    check(unsafe {
        libc::syscall(
            libc::SYS_sched_getattr,
            0,
            &mut attr as *mut SchedAttr,
            size,
            0,
        )
    })?;
    Ok(attr)
}

/// ioprio_get(IOPRIO_WHO_PROCESS, self): class << 13 | level.
pub fn get_ioprio() -> Result<u32, Errno> {
    // SAFETY: ioprio_get takes two integers and touches no memory of ours.
    let r = unsafe { libc::syscall(libc::SYS_ioprio_get, 1, 0) };
    check(r).map(|()| r as u32)
}

/// sched_setattr(self, attr, 0).
pub fn set_sched_attr(attr: &SchedAttr) -> Result<(), Errno> {
    let mut attr = *attr;
    attr.size = std::mem::size_of::<SchedAttr>() as u32;
    // SAFETY: the kernel reads `size` bytes of a live, properly laid out sched_attr.
    check(unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) })
}

/// sched_setaffinity(self) to exactly `cpus`.
pub fn set_affinity(cpus: &[usize]) -> Result<(), Errno> {
    let words = cpus.iter().max().map_or(1, |m| m / 64 + 1);
    let mut mask = vec![0u64; words];
    for &c in cpus {
        mask[c / 64] |= 1 << (c % 64);
    }
    // SAFETY: the kernel reads `words * 8` bytes of `mask`, which lives across the call.
    check(unsafe { libc::syscall(libc::SYS_sched_setaffinity, 0, words * 8, mask.as_ptr()) })
}

/// personality(persona).
pub fn set_personality(persona: libc::c_ulong) -> Result<(), Errno> {
    // SAFETY: personality takes an integer and touches no memory of ours.
    check(libc::c_long::from(unsafe { libc::personality(persona) }))
}

/// set_mempolicy(mode | flags, nodes, maxnode): `nodes` is a bit mask of NUMA nodes.
pub fn set_mempolicy(mode: i32, nodes: &[u64]) -> Result<(), Errno> {
    // The kernel reads maxnode - 1 bits.
    let maxnode = nodes.len() * 64 + 1;
    let ptr = if nodes.is_empty() {
        std::ptr::null()
    } else {
        nodes.as_ptr()
    };
    // SAFETY: the kernel reads at most nodes.len() words from `ptr` (or nothing from null).
    check(unsafe { libc::syscall(libc::SYS_set_mempolicy, mode, ptr, maxnode) })
}

/// unshare(CLONE_NEWTIME): the caller's children (and the caller itself, at its next exec)
/// enter a new time namespace.
pub fn unshare_time() -> Result<(), Errno> {
    // SAFETY: unshare takes a flag word and touches no memory of ours.
    check(libc::c_long::from(unsafe {
        libc::unshare(libc::CLONE_NEWTIME)
    }))
}

/// Moves the caller into the time namespace its children would be born in (after
/// `unshare_time`). The kernel takes only a process that shares its memory with no other.
pub fn enter_time_for_children() -> Result<(), Errno> {
    let ns = std::fs::File::open("/proc/thread-self/ns/time_for_children")
        .map_err(|e| Errno(e.raw_os_error().unwrap_or(libc::EIO)))?;
    // The kernel checks that the file is a time namespace's (CLONE_NEWTIME).
    nix::sched::setns(
        ns,
        nix::sched::CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    )
    .map_err(Errno::from)
}
