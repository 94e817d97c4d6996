//! cgroup v2: one directory, the unified files, runc's conversions from the spec's v1 values
//! (shares to weight, blkio weight to io.weight, memory+swap to swap alone).

use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};

use super::fs::{self, set, unsupported};
use super::{Cgroup, CgroupError};

/// -1 (no limit) is "max" to v2.
fn max(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

/// runc's cpu.shares (2..262144) to cpu.weight (1..10000).
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.saturating_sub(2) * 9999) / 262142
}

/// runc's blkio weight (10..1000) to io.weight (1..10000).
pub fn blkio_to_io_weight(w: u16) -> u64 {
    if w == 0 {
        return 0;
    }
    1 + (u64::from(w).saturating_sub(10) * 9999) / 990
}

/// The spec's memory+swap limit as v2's swap alone (runc's rule).
pub fn swap_value(swap: i64, limit: Option<i64>) -> Result<String, CgroupError> {
    if swap == -1 {
        return Ok("max".into());
    }
    match limit {
        None | Some(0) | Some(-1) => Err(unsupported(
            "memory.swap",
            "a memory+swap limit needs a memory limit on cgroup v2: set memory.limit too",
        )),
        Some(l) if swap < l => Err(unsupported(
            "memory.swap",
            &format!(
                "{swap} is below memory.limit {l}: memory+swap must be at least the memory limit"
            ),
        )),
        Some(l) => Ok((swap - l).to_string()),
    }
}

pub fn apply(cg: &Cgroup, r: &LinuxResources) -> Result<(), CgroupError> {
    let dir = cg.dirs.first().map(|d| d.path.as_path());
    if let Some(m) = r.memory() {
        memory(dir, m)?;
    }
    if let Some(c) = r.cpu() {
        cpu(dir, c)?;
    }
    if let Some(p) = r.pids().filter(|p| p.limit() != 0) {
        set(dir, "pids.limit", "pids.max", max(p.limit()))?;
    }
    if let Some(b) = r.block_io() {
        io(dir, b)?;
    }
    for (i, h) in r.hugepage_limits().iter().flatten().enumerate() {
        let file = format!("hugetlb.{}.max", h.page_size());
        set(dir, &format!("hugepageLimits[{i}]"), &file, max(h.limit()))?;
    }
    if let Some(n) = r.network() {
        if n.class_id().is_some_and(|c| c != 0)
            || n.priorities().as_ref().is_some_and(|p| !p.is_empty())
        {
            return Err(unsupported(
                "network",
                "net_cls and net_prio are cgroup v1 controllers, absent on this cgroup v2 host: remove it",
            ));
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
        set(dir, &format!("rdma.{dev}"), "rdma.max", v)?;
    }
    if let (Some(d), Some(u)) = (dir, r.unified()) {
        let mut keys: Vec<_> = u.iter().collect();
        keys.sort();
        for (k, v) in keys {
            unified(d, k, v)?;
        }
    }
    Ok(())
}

/// A raw v2 key: one file of the cgroup's own directory (no path), of a controller it has.
fn unified(dir: &Path, key: &str, value: &str) -> Result<(), CgroupError> {
    let field = format!("unified.{key}");
    let bad = |why: String| unsupported(&field, &why);
    let Some((controller, _)) = key.split_once('.') else {
        return Err(bad(
            "not a cgroup file name (controller.file): fix the key".into()
        ));
    };
    if key.contains('/')
        || key.starts_with("cgroup.")
            && !matches!(
                key,
                "cgroup.freeze" | "cgroup.max.depth" | "cgroup.max.descendants" | "cgroup.type"
            )
    {
        return Err(bad(
            "not a resource file of the container's cgroup: remove it".into(),
        ));
    }
    if !fs::has(dir, key) {
        let have = fs::read(dir, "cgroup.controllers").unwrap_or_default();
        let why = if controller != "cgroup" && !have.split_whitespace().any(|c| c == controller) {
            format!("the {controller} controller is not enabled for this cgroup: remove it")
        } else {
            "no such file in the cgroup: fix the key".into()
        };
        return Err(bad(why));
    }
    set(Some(dir), &field, key, value)
}

fn memory(dir: Option<&Path>, m: &LinuxMemory) -> Result<(), CgroupError> {
    let nz = |v: Option<i64>| v.filter(|v| *v != 0);
    let lim = nz(m.limit());
    // Swap first when lowering, limit first when raising: any order is legal on v2 (the two
    // are independent), so follow the spec's order.
    if let Some(l) = lim {
        set(dir, "memory.limit", "memory.max", max(l))?;
    }
    if let Some(s) = nz(m.swap()) {
        // An update may change the swap alone: against the limit in place.
        let current = || {
            dir.and_then(|d| fs::read(d, "memory.max").ok())
                .and_then(|v| v.trim().parse().ok())
        };
        let v = swap_value(s, lim.or_else(current))?;
        if dir.is_some_and(|d| !fs::has(d, "memory.swap.max")) {
            return Err(unsupported(
                "memory.swap",
                "the kernel accounts no swap (memory.swap.max is missing): remove it",
            ));
        }
        set(dir, "memory.swap", "memory.swap.max", v)?;
    }
    if let Some(v) = nz(m.reservation()) {
        set(dir, "memory.reservation", "memory.low", max(v))?;
    }
    if nz(m.kernel()).is_some() {
        return Err(unsupported(
            "memory.kernel",
            "cgroup v2 has no kernel memory limit: remove it",
        ));
    }
    if nz(m.kernel_tcp()).is_some() {
        return Err(unsupported(
            "memory.kernelTCP",
            "cgroup v2 has no kernel TCP memory limit: remove it",
        ));
    }
    if m.swappiness().is_some() {
        return Err(unsupported(
            "memory.swappiness",
            "cgroup v2 has no per-cgroup swappiness: remove it",
        ));
    }
    if m.disable_oom_killer() == Some(true) {
        return Err(unsupported(
            "memory.disableOOMKiller",
            "cgroup v2 cannot disable the OOM killer for a cgroup: remove it",
        ));
    }
    // useHierarchy: v2 is always hierarchical, which is what true asks for.
    Ok(())
}

fn cpu(dir: Option<&Path>, c: &LinuxCpu) -> Result<(), CgroupError> {
    if let Some(s) = c.shares().filter(|v| *v != 0) {
        set(dir, "cpu.shares", "cpu.weight", shares_to_weight(s))?;
    }
    let quota = c.quota().unwrap_or(0);
    let period = c.period().unwrap_or(0);
    if quota != 0 || period != 0 {
        let mut v = if quota > 0 {
            quota.to_string()
        } else {
            "max".into()
        };
        if period != 0 {
            v += &format!(" {period}");
        }
        let field = if quota != 0 {
            "cpu.quota"
        } else {
            "cpu.period"
        };
        set(dir, field, "cpu.max", v)?;
    }
    if let Some(b) = c.burst().filter(|v| *v != 0) {
        set(dir, "cpu.burst", "cpu.max.burst", b)?;
    }
    if c.realtime_runtime().is_some_and(|v| v != 0) || c.realtime_period().is_some_and(|v| v != 0) {
        return Err(unsupported(
            "cpu.realtimeRuntime",
            "cgroup v2 has no realtime CPU controller: remove realtimeRuntime and realtimePeriod",
        ));
    }
    if let Some(i) = c.idle().filter(|v| *v != 0) {
        set(dir, "cpu.idle", "cpu.idle", i)?;
    }
    if let Some(v) = c.cpus().as_deref().filter(|v| !v.is_empty()) {
        set(dir, "cpu.cpus", "cpuset.cpus", v)?;
    }
    if let Some(v) = c.mems().as_deref().filter(|v| !v.is_empty()) {
        set(dir, "cpu.mems", "cpuset.mems", v)?;
    }
    Ok(())
}

fn io(dir: Option<&Path>, b: &LinuxBlockIo) -> Result<(), CgroupError> {
    // runc: BFQ's io.bfq.weight takes the blkio value as is; io.weight its conversion.
    let bfq = dir.is_some_and(|d| fs::has(d, "io.bfq.weight"));
    let conv = |w: u16| {
        if bfq {
            u64::from(w)
        } else {
            blkio_to_io_weight(w)
        }
    };
    let file = if bfq { "io.bfq.weight" } else { "io.weight" };
    if let Some(w) = b.weight().filter(|w| *w != 0) {
        set(dir, "blockIO.weight", file, conv(w))?;
    }
    if b.leaf_weight().is_some_and(|w| w != 0) {
        return Err(unsupported(
            "blockIO.leafWeight",
            "cgroup v2 has no leaf weight: remove it",
        ));
    }
    for (i, d) in b.weight_device().iter().flatten().enumerate() {
        if let Some(w) = d.weight() {
            let v = format!("{}:{} {}", d.major(), d.minor(), conv(w));
            set(dir, &format!("blockIO.weightDevice[{i}]"), file, v)?;
        }
    }
    let throttles = [
        (
            "throttleReadBpsDevice",
            "rbps",
            b.throttle_read_bps_device(),
        ),
        (
            "throttleWriteBpsDevice",
            "wbps",
            b.throttle_write_bps_device(),
        ),
        (
            "throttleReadIOPSDevice",
            "riops",
            b.throttle_read_iops_device(),
        ),
        (
            "throttleWriteIOPSDevice",
            "wiops",
            b.throttle_write_iops_device(),
        ),
    ];
    for (name, key, list) in throttles {
        for (i, d) in list.iter().flatten().enumerate() {
            let v = format!("{}:{} {key}={}", d.major(), d.minor(), d.rate());
            set(dir, &format!("blockIO.{name}[{i}]"), "io.max", v)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_are_runcs() {
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262144), 10000);
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(1000), 10000);
        assert_eq!(blkio_to_io_weight(500), 4950);
        assert_eq!(swap_value(-1, Some(100)).unwrap(), "max");
        assert_eq!(swap_value(300, Some(100)).unwrap(), "200");
        assert!(swap_value(50, Some(100)).is_err());
    }
}
