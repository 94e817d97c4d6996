//! cgroup v1: each controller's files in its own hierarchy's directory.

use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources, LinuxThrottleDevice};

use super::fs::{self, set, unsupported};
use super::{Cgroup, CgroupError};

/// Any resource set besides device rules: 0, false and empty lists count as unset (runc
/// leaves a file alone for them).
pub fn any_set(r: &LinuxResources) -> bool {
    let nz = |v: Option<i64>| v.is_some_and(|v| v != 0);
    let nzu = |v: Option<u64>| v.is_some_and(|v| v != 0);
    let mem = r.memory().is_some_and(|m| {
        nz(m.limit())
            || nz(m.reservation())
            || nz(m.swap())
            || nz(m.kernel())
            || nz(m.kernel_tcp())
            || m.swappiness().is_some()
            || m.disable_oom_killer() == Some(true)
            || m.use_hierarchy() == Some(true)
    });
    let cpu = r.cpu().as_ref().is_some_and(|c| {
        nzu(c.shares())
            || nz(c.quota())
            || nzu(c.period())
            || nz(c.realtime_runtime())
            || nzu(c.realtime_period())
            || c.cpus().as_ref().is_some_and(|s| !s.is_empty())
            || c.mems().as_ref().is_some_and(|s| !s.is_empty())
            || nz(c.idle())
            || nzu(c.burst())
    });
    let pids = r.pids().is_some_and(|p| p.limit() != 0);
    let blkio = r.block_io().as_ref().is_some_and(|b| {
        b.weight().is_some_and(|w| w != 0)
            || b.leaf_weight().is_some_and(|w| w != 0)
            || [
                b.throttle_read_bps_device(),
                b.throttle_write_bps_device(),
                b.throttle_read_iops_device(),
                b.throttle_write_iops_device(),
            ]
            .iter()
            .any(|v| v.as_ref().is_some_and(|v| !v.is_empty()))
            || b.weight_device().as_ref().is_some_and(|v| !v.is_empty())
    });
    let hugetlb = r.hugepage_limits().as_ref().is_some_and(|v| !v.is_empty());
    let net = r.network().as_ref().is_some_and(|n| {
        n.class_id().is_some_and(|c| c != 0)
            || n.priorities().as_ref().is_some_and(|p| !p.is_empty())
    });
    let rdma = r.rdma().as_ref().is_some_and(|m| !m.is_empty());
    let unified = r.unified().as_ref().is_some_and(|m| !m.is_empty());
    mem || cpu || pids || blkio || hugetlb || net || rdma || unified
}

/// -1 is "no limit" to the spec; v1 files take -1 too.
fn limit(v: i64) -> String {
    v.to_string()
}

pub fn apply(cg: &Cgroup, r: &LinuxResources) -> Result<(), CgroupError> {
    if let Some(m) = r.memory() {
        memory(cg.dir_of("memory"), m)?;
    }
    if let Some(c) = r.cpu() {
        cpu(cg, c)?;
    }
    if let Some(p) = r.pids().filter(|p| p.limit() != 0) {
        let v = if p.limit() < 0 {
            "max".to_string()
        } else {
            p.limit().to_string()
        };
        set(cg.dir_of("pids"), "pids.limit", "pids.max", v)?;
    }
    if let Some(b) = r.block_io() {
        blkio(cg.dir_of("blkio"), b)?;
    }
    for (i, h) in r.hugepage_limits().iter().flatten().enumerate() {
        let file = format!("hugetlb.{}.limit_in_bytes", h.page_size());
        let field = format!("hugepageLimits[{i}]");
        set(cg.dir_of("hugetlb"), &field, &file, h.limit())?;
    }
    if let Some(n) = r.network() {
        if let Some(id) = n.class_id().filter(|c| *c != 0) {
            set(
                cg.dir_of("net_cls"),
                "network.classID",
                "net_cls.classid",
                id,
            )?;
        }
        for (i, p) in n.priorities().iter().flatten().enumerate() {
            let field = format!("network.priorities[{i}]");
            let v = format!("{} {}", p.name(), p.priority());
            set(cg.dir_of("net_prio"), &field, "net_prio.ifpriomap", v)?;
        }
    }
    for (dev, l) in r.rdma().iter().flatten() {
        let mut v = dev.clone();
        if let Some(h) = l.hca_handles() {
            v += &format!(" hca_handle={h}");
        }
        if let Some(o) = l.hca_objects() {
            v += &format!(" hca_object={o}");
        }
        set(cg.dir_of("rdma"), &format!("rdma.{dev}"), "rdma.max", v)?;
    }
    if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        return Err(unsupported(
            "unified",
            "cgroup v2 keys, and this host's controllers are on cgroup v1: remove them, or use the v1 fields",
        ));
    }
    Ok(())
}

fn memory(dir: Option<&Path>, m: &LinuxMemory) -> Result<(), CgroupError> {
    let nz = |v: Option<i64>| v.filter(|v| *v != 0);
    let (lim, swap) = (nz(m.limit()), nz(m.swap()));
    if let (Some(d), Some(_)) = (dir, swap) {
        if !fs::has(d, "memory.memsw.limit_in_bytes") {
            return Err(unsupported(
                "memory.swap",
                "the kernel accounts no swap (memory.memsw files are missing: boot with swapaccount=1): remove it",
            ));
        }
    }
    // memory.limit <= memory.memsw.limit at every instant: raise the one that must go first.
    let current_swap = dir
        .and_then(|d| fs::read(d, "memory.memsw.limit_in_bytes").ok())
        .and_then(|s| s.trim().parse::<i64>().ok());
    let swap_first = match (lim, swap, current_swap) {
        (Some(l), Some(_), Some(cur)) => l == -1 || l > cur,
        (_, Some(-1), _) => true,
        _ => false,
    };
    let set_swap = |s: i64| set(dir, "memory.swap", "memory.memsw.limit_in_bytes", limit(s));
    if swap_first {
        if let Some(s) = swap {
            set_swap(s)?;
        }
    }
    if let Some(l) = lim {
        set(dir, "memory.limit", "memory.limit_in_bytes", limit(l))?;
    }
    if !swap_first {
        if let Some(s) = swap {
            set_swap(s)?;
        }
    }
    if let Some(v) = nz(m.reservation()) {
        set(
            dir,
            "memory.reservation",
            "memory.soft_limit_in_bytes",
            limit(v),
        )?;
    }
    if let Some(v) = nz(m.kernel()) {
        set(dir, "memory.kernel", "memory.kmem.limit_in_bytes", limit(v))?;
        // Linux 6.x takes the write and ignores it (the limit is deprecated): never drop
        // it silently.
        let now = dir.and_then(|d| fs::read(d, "memory.kmem.limit_in_bytes").ok());
        if v > 0 && now.as_deref().map(str::trim) != Some(v.to_string().as_str()) {
            return Err(unsupported(
                "memory.kernel",
                "this kernel ignores a kernel memory limit (memory.kmem.limit_in_bytes is deprecated): remove it",
            ));
        }
    }
    if let Some(v) = nz(m.kernel_tcp()) {
        set(
            dir,
            "memory.kernelTCP",
            "memory.kmem.tcp.limit_in_bytes",
            limit(v),
        )?;
    }
    if let Some(v) = m.swappiness() {
        if v > 100 {
            return Err(unsupported(
                "memory.swappiness",
                &format!("{v}: a swappiness is 0 to 100: lower it"),
            ));
        }
        set(dir, "memory.swappiness", "memory.swappiness", v)?;
    }
    if m.disable_oom_killer() == Some(true) {
        set(dir, "memory.disableOOMKiller", "memory.oom_control", 1)?;
    }
    if m.use_hierarchy() == Some(true) {
        set(dir, "memory.useHierarchy", "memory.use_hierarchy", 1)?;
    }
    Ok(())
}

fn cpu(cg: &Cgroup, c: &LinuxCpu) -> Result<(), CgroupError> {
    let dir = cg.dir_of("cpu");
    if let Some(v) = c.shares().filter(|v| *v != 0) {
        set(dir, "cpu.shares", "cpu.shares", v)?;
    }
    // The period first: a quota is checked against the period in place.
    if let Some(v) = c.period().filter(|v| *v != 0) {
        set(dir, "cpu.period", "cpu.cfs_period_us", v)?;
    }
    if let Some(v) = c.quota().filter(|v| *v != 0) {
        set(dir, "cpu.quota", "cpu.cfs_quota_us", v)?;
    }
    if let Some(v) = c.burst().filter(|v| *v != 0) {
        set(dir, "cpu.burst", "cpu.cfs_burst_us", v)?;
    }
    if let Some(v) = c.realtime_period().filter(|v| *v != 0) {
        set(dir, "cpu.realtimePeriod", "cpu.rt_period_us", v)?;
    }
    if let Some(v) = c.realtime_runtime().filter(|v| *v != 0) {
        set(dir, "cpu.realtimeRuntime", "cpu.rt_runtime_us", v)?;
    }
    if let Some(v) = c.idle().filter(|v| *v != 0) {
        set(dir, "cpu.idle", "cpu.idle", v)?;
    }
    let cpuset = cg.dir_of("cpuset");
    if let Some(v) = c.cpus().as_deref().filter(|v| !v.is_empty()) {
        set(cpuset, "cpu.cpus", "cpuset.cpus", v)?;
    }
    if let Some(v) = c.mems().as_deref().filter(|v| !v.is_empty()) {
        set(cpuset, "cpu.mems", "cpuset.mems", v)?;
    }
    Ok(())
}

fn blkio(dir: Option<&Path>, b: &LinuxBlockIo) -> Result<(), CgroupError> {
    // runc: blkio.weight, or BFQ's file where CFQ's is gone.
    let weight_file = match dir {
        Some(d) if !fs::has(d, "blkio.weight") && fs::has(d, "blkio.bfq.weight") => {
            "blkio.bfq.weight"
        }
        _ => "blkio.weight",
    };
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        set(dir, "blockIO.weight", weight_file, w)?;
    }
    if let Some(w) = b.leaf_weight().filter(|w| *w != 0) {
        set(dir, "blockIO.leafWeight", "blkio.leaf_weight", w)?;
    }
    for (i, d) in b.weight_device().iter().flatten().enumerate() {
        if let Some(w) = d.weight() {
            let field = format!("blockIO.weightDevice[{i}]");
            let file = format!("{weight_file}_device");
            let file = if weight_file == "blkio.bfq.weight" {
                "blkio.bfq.weight".to_string()
            } else {
                file
            };
            set(
                dir,
                &field,
                &file,
                format!("{}:{} {w}", d.major(), d.minor()),
            )?;
        }
        if let Some(w) = d.leaf_weight() {
            let field = format!("blockIO.weightDevice[{i}].leafWeight");
            let v = format!("{}:{} {w}", d.major(), d.minor());
            set(dir, &field, "blkio.leaf_weight_device", v)?;
        }
    }
    let throttles: [(&str, &str, &Option<Vec<LinuxThrottleDevice>>); 4] = [
        (
            "throttleReadBpsDevice",
            "blkio.throttle.read_bps_device",
            b.throttle_read_bps_device(),
        ),
        (
            "throttleWriteBpsDevice",
            "blkio.throttle.write_bps_device",
            b.throttle_write_bps_device(),
        ),
        (
            "throttleReadIOPSDevice",
            "blkio.throttle.read_iops_device",
            b.throttle_read_iops_device(),
        ),
        (
            "throttleWriteIOPSDevice",
            "blkio.throttle.write_iops_device",
            b.throttle_write_iops_device(),
        ),
    ];
    for (name, file, list) in throttles {
        for (i, d) in list.iter().flatten().enumerate() {
            let field = format!("blockIO.{name}[{i}]");
            set(
                dir,
                &field,
                file,
                format!("{}:{} {}", d.major(), d.minor(), d.rate()),
            )?;
        }
    }
    Ok(())
}

/// A new v1 cpuset cgroup has no cpus and no mems, and takes no process until it has: each
/// directory made below the hierarchy's root gets its parent's (runc's `ensureParent`).
pub fn fill_cpuset(root: &Path, leaf: &Path) -> Result<(), CgroupError> {
    let rel = leaf.strip_prefix(root).unwrap_or(leaf);
    let mut cur = root.to_path_buf();
    for part in rel.components() {
        let parent = cur.clone();
        cur.push(part);
        for file in ["cpuset.cpus", "cpuset.mems"] {
            let mine = fs::read(&cur, file).unwrap_or_default();
            if mine.trim().is_empty() {
                let theirs = fs::read(&parent, file)?;
                fs::write(&cur, file, theirs.trim())?;
            }
        }
    }
    Ok(())
}
