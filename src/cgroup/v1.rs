//! cgroup v1: each controller's files in its own hierarchy's directory.

use oci_spec::runtime::LinuxResources;

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

pub fn apply(_cg: &Cgroup, _r: &LinuxResources) -> Result<(), CgroupError> {
    Ok(())
}
