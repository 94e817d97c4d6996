//! Each `linux.resources` field: written to the file the hierarchy has for it (with runc's
//! conversions on v2), or refused with one line naming the field where the hierarchy cannot
//! take it. Which of the two is the host's: a field whose controller or file this kernel
//! lacks (a realtime group scheduler, BFQ's weight, hugetlb, rdma) must be refused by name.

use serde_json::{json, Value};

use crate::common::{self, Bundle, Mode};
use crate::support::*;
use crate::{cg_name, finish, host, limited, managed};

/// What a field must come to on this host.
enum Want {
    /// (controller, file, content) on v1, and on v2; None: refused on that hierarchy.
    Files(
        Option<(&'static str, &'static str, &'static str)>,
        Option<(&'static str, &'static str, &'static str)>,
    ),
    /// Applied where the file exists (then its content), else refused naming the field.
    IfPresent(&'static str, &'static str, &'static str, &'static str),
    /// Refused by name, or (a kernel that still honours it) applied: the v1 kernel memory
    /// limit, which Linux 6.x accepts and ignores.
    Either(&'static str, &'static str, &'static str),
    /// blockIO.weight: v1's blkio.weight where present; on v2 the io controller's file where
    /// the container's cgroup has it (BFQ's io.bfq.weight as is, else io.weight converted as
    /// runc converts it), else refused by name.
    IoWeight,
    /// Applied, (controller, file, content) on v1, and on v2, holding it, or refused naming
    /// the field: whether a cgroup has the file depends on the kernel (hugetlb), which the
    /// host shows only in a cgroup with the controller enabled.
    AppliedOrRefused(
        (&'static str, &'static str, &'static str),
        (&'static str, &'static str, &'static str),
    ),
}

/// The first block device's "major:minor" (a throttle must name a real one).
fn block_device() -> Option<String> {
    let rd = std::fs::read_dir("/sys/block").ok()?;
    let mut names: Vec<String> = rd
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let name = names
        .into_iter()
        .find(|n| !n.starts_with("loop") && !n.starts_with("zram") && !n.starts_with("ram"))?;
    Some(
        std::fs::read_to_string(format!("/sys/block/{name}/dev"))
            .ok()?
            .trim()
            .to_string(),
    )
}

fn cases() -> Vec<(&'static str, Value, &'static str, Want)> {
    use Want::*;
    let mut v = vec![
        (
            "reservation",
            json!({"memory": {"reservation": 33554432}}),
            "memory.reservation",
            Files(
                Some(("memory", "memory.soft_limit_in_bytes", "33554432")),
                Some(("memory", "memory.low", "33554432")),
            ),
        ),
        (
            "swap",
            json!({"memory": {"limit": 67108864, "swap": 134217728}}),
            "memory.swap",
            Files(
                Some(("memory", "memory.memsw.limit_in_bytes", "134217728")),
                Some(("memory", "memory.swap.max", "67108864")),
            ),
        ),
        (
            "swappiness",
            json!({"memory": {"swappiness": 30}}),
            "memory.swappiness",
            Files(Some(("memory", "memory.swappiness", "30")), None),
        ),
        (
            "oomkiller",
            json!({"memory": {"disableOOMKiller": true}}),
            "memory.disableOOMKiller",
            Files(
                Some(("memory", "memory.oom_control", "oom_kill_disable 1")),
                None,
            ),
        ),
        (
            "hierarchy",
            json!({"memory": {"useHierarchy": true}}),
            "memory.useHierarchy",
            Files(
                Some(("memory", "memory.use_hierarchy", "1")),
                Some(("memory", "cgroup.procs", "")),
            ),
        ),
        (
            "kerneltcp",
            json!({"memory": {"kernelTCP": 16777216}}),
            "memory.kernelTCP",
            Files(
                Some(("memory", "memory.kmem.tcp.limit_in_bytes", "16777216")),
                None,
            ),
        ),
        (
            "kernel",
            json!({"memory": {"kernel": 16777216}}),
            "memory.kernel",
            Either("memory", "memory.kmem.limit_in_bytes", "16777216"),
        ),
        (
            "shares",
            json!({"cpu": {"shares": 2048}}),
            "cpu.shares",
            Files(
                Some(("cpu", "cpu.shares", "2048")),
                Some(("cpu", "cpu.weight", "79")),
            ),
        ),
        (
            "burst",
            json!({"cpu": {"quota": 50000, "period": 100000, "burst": 10000}}),
            "cpu.burst",
            Files(
                Some(("cpu", "cpu.cfs_burst_us", "10000")),
                Some(("cpu", "cpu.max.burst", "10000")),
            ),
        ),
        (
            "idle",
            json!({"cpu": {"idle": 1}}),
            "cpu.idle",
            Files(
                Some(("cpu", "cpu.idle", "1")),
                Some(("cpu", "cpu.idle", "1")),
            ),
        ),
        (
            "realtime",
            json!({"cpu": {"realtimePeriod": 1000000, "realtimeRuntime": 10000}}),
            "cpu.realtime",
            IfPresent("cpu", "cpu.rt_runtime_us", "10000", "v1"),
        ),
        (
            "cpus",
            json!({"cpu": {"cpus": "0"}}),
            "cpu.cpus",
            Files(
                Some(("cpuset", "cpuset.cpus", "0")),
                Some(("cpuset", "cpuset.cpus", "0")),
            ),
        ),
        (
            "mems",
            json!({"cpu": {"mems": "0"}}),
            "cpu.mems",
            Files(
                Some(("cpuset", "cpuset.mems", "0")),
                Some(("cpuset", "cpuset.mems", "0")),
            ),
        ),
        (
            "blkweight",
            json!({"blockIO": {"weight": 500}}),
            "blockIO.weight",
            IoWeight,
        ),
        (
            "hugetlb",
            json!({"hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}]}),
            "hugepageLimits",
            AppliedOrRefused(
                ("hugetlb", "hugetlb.2MB.limit_in_bytes", "2097152"),
                ("hugetlb", "hugetlb.2MB.max", "2097152"),
            ),
        ),
        (
            "classid",
            json!({"network": {"classID": 1048577}}),
            "network",
            IfPresent("net_cls", "net_cls.classid", "1048577", "v1"),
        ),
        (
            "rdma",
            json!({"rdma": {"nosuchdev": {"hcaHandles": 2}}}),
            "rdma",
            Files(None, None),
        ),
        (
            "unified",
            json!({"unified": {"pids.max": "33"}}),
            "unified",
            Files(None, Some(("pids", "pids.max", "33"))),
        ),
    ];
    if let Some(dev) = block_device() {
        let (maj, min) = dev.split_once(':').unwrap();
        let (maj, min): (i64, i64) = (maj.parse().unwrap(), min.parse().unwrap());
        let v1: &'static str = Box::leak(format!("{dev} 1048576").into_boxed_str());
        let v2: &'static str =
            Box::leak(format!("{dev} rbps=1048576 wbps=max riops=max wiops=max").into_boxed_str());
        v.push(("throttle", json!({"blockIO": {"throttleReadBpsDevice": [{"major": maj, "minor": min, "rate": 1048576}]}}),
            "blockIO.throttleReadBpsDevice", Files(Some(("blkio", "blkio.throttle.read_bps_device", v1)), Some(("io", "io.max", v2)))));
    }
    v
}

#[test]
fn every_resource_field_is_written_or_refused_by_name() {
    for mode in common::modes().into_iter().filter(|m| managed(*m)) {
        for (short, res, field, want) in cases() {
            check(mode, short, res, field, want);
        }
    }
}

fn check(mode: Mode, short: &str, res: Value, field: &str, want: Want) {
    let ctx = format!("{mode:?} {field}");
    let name = cg_name(&format!("f-{short}"), mode);
    let b = limited(
        Bundle::new(mode).args(&["/bin/sh", "-c", "echo started; exec sleep 1000"]),
        &name,
        res,
    );
    let id = format!("f-{short}-{mode:?}").to_lowercase();
    let v2 = host::unified();
    // (controller, file, content) to find, or None: refused.
    let expect = match want {
        Want::Files(a, b) => {
            if v2 {
                b
            } else {
                a
            }
        }
        Want::Either(..) | Want::IoWeight if v2 => None,
        Want::IoWeight => host::find_named_file("blkio", "blkio.weight").then_some((
            "blkio",
            "blkio.weight",
            "500",
        )),
        Want::Either(..) | Want::AppliedOrRefused(..) => None,
        Want::IfPresent(ctl, file, content, on) => {
            let on_this = (on == "v1") != v2;
            let present = on_this && host::find_named_file(ctl, file);
            present.then_some((ctl, file, content))
        }
    };
    let c = create(&b, &id, &[]);
    let expect = match want {
        Want::Either(ctl, file, content) if !v2 && c.status == 0 => Some((ctl, file, content)),
        Want::AppliedOrRefused(a, b) if c.status == 0 => Some(if v2 { b } else { a }),
        Want::IoWeight if v2 && c.status == 0 => match host::find_named_file("io", "io.bfq.weight")
        {
            true => Some(("io", "io.bfq.weight", "default 500")),
            false => Some(("io", "io.weight", "default 4950")),
        },
        _ => expect,
    };
    let Some((ctl, file, content)) = expect else {
        assert_eq!(c.status, 125, "{ctx}: applied where refused: {c:?}");
        let lines: Vec<&str> = c.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{ctx}: one line: {}", c.stderr);
        assert!(
            lines[0].contains(&format!("linux.resources.{field}")),
            "{ctx}: {}",
            lines[0]
        );
        host::assert_no_cgroup(&name, &ctx);
        common::assert_nothing_left(mode, b.state_dir());
        return;
    };
    assert_eq!(c.status, 0, "{ctx}: create: {}", c.stderr);
    assert_eq!(nsb(&b, &["start", &id]).status, 0, "{ctx}: start");
    assert!(eventually(|| app_output(&b, &id).contains("started")));
    let app = app_pid(&b, &id);
    let got = host::read(&host::dir(app, ctl), file);
    let ok = if content.is_empty() {
        true
    } else {
        got == content || got.lines().any(|l| l == content)
    };
    assert!(ok, "{ctx}: {file} is {got:?}, want {content:?}");
    finish(&b, &id, &name);
}
