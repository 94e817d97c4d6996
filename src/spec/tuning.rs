//! process.ioPriority, process.scheduler, process.execCPUAffinity, linux.personality and
//! linux.memoryPolicy as the values the kernel takes, checked as runc checks them (a value
//! the kernel would refuse is refused at load, naming the field). `process::tuning` applies
//! them.

use oci_spec::runtime::{
    IOPriorityClass, LinuxIOPriority, LinuxPersonality, LinuxPersonalityDomain,
    LinuxSchedulerFlag as Flag, LinuxSchedulerPolicy as Policy, Process, Scheduler, Spec,
};

use super::carried::MemoryPolicy;
use super::SpecError;

/// (class, level) for ioprio_set.
pub fn ioprio(p: &LinuxIOPriority) -> Result<(u32, u32), String> {
    let class = match p.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    match u32::try_from(p.priority()) {
        Ok(level) if level <= 7 => Ok((class, level)),
        _ => Err(format!(
            "priority {} is out of range: use 0 (highest) to 7",
            p.priority()
        )),
    }
}

/// What sched_setattr gets: (policy, flags, nice, priority, runtime, deadline, period).
#[derive(Debug, PartialEq, Eq)]
pub struct Sched {
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
}

impl Sched {
    /// Whether the kernel asks for CAP_SYS_NICE in the host's user namespace to set it.
    pub fn needs_host_privilege(&self) -> bool {
        matches!(self.policy, 1 | 2 | 6) || self.nice < 0
    }
}

pub fn scheduler(s: &Scheduler) -> Result<Sched, String> {
    let policy = match s.policy() {
        Policy::SchedOther => 0,
        Policy::SchedFifo => 1,
        Policy::SchedRr => 2,
        Policy::SchedBatch => 3,
        Policy::SchedIso => {
            return Err(
                "policy SCHED_ISO is not in the Linux kernel: use SCHED_OTHER, SCHED_BATCH, SCHED_IDLE, SCHED_FIFO, SCHED_RR or SCHED_DEADLINE".into(),
            )
        }
        Policy::SchedIdle => 5,
        Policy::SchedDeadline => 6,
    };
    let nice = s.nice().unwrap_or(0);
    if !(-20..=19).contains(&nice) {
        return Err(format!("nice {nice} is out of range: use -20 to 19"));
    }
    let priority = s.priority().unwrap_or(0);
    let realtime = matches!(policy, 1 | 2);
    if realtime && !(1..=99).contains(&priority) {
        return Err(format!(
            "priority {priority} is out of range for {}: use 1 to 99",
            s.policy()
        ));
    }
    if !realtime && priority != 0 {
        return Err(format!(
            "priority {priority} is for SCHED_FIFO and SCHED_RR only: remove it"
        ));
    }
    let (runtime, deadline, period) = (
        s.runtime().unwrap_or(0),
        s.deadline().unwrap_or(0),
        s.period().unwrap_or(0),
    );
    if policy != 6 && (runtime, deadline, period) != (0, 0, 0) {
        return Err("runtime, deadline and period are for SCHED_DEADLINE only: remove them".into());
    }
    let mut flags = 0;
    for f in s.flags().iter().flatten() {
        flags |= match f {
            Flag::SchedResetOnFork => 0x01,
            Flag::SchedFlagReclaim => 0x02,
            Flag::SchedFlagDLOverrun => 0x04,
            Flag::SchedFlagKeepPolicy => 0x08,
            Flag::SchedFlagKeepParams => 0x10,
            Flag::SchedFlagUtilClampMin => 0x20,
            Flag::SchedFlagUtilClampMax => 0x40,
        };
    }
    Ok(Sched {
        policy,
        flags,
        nice,
        priority: priority as u32,
        runtime,
        deadline,
        period,
    })
}

/// "0-3,7" as the CPUs (or NUMA nodes) it names, in order.
pub fn id_list(text: &str) -> Result<Vec<usize>, String> {
    const MAX: usize = 8192;
    let bad = || format!("{text:?} is not a list such as \"0-3,7\"");
    let mut ids = Vec::new();
    for part in text.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (usize, usize) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
        if a > b || b >= MAX {
            return Err(bad());
        }
        ids.extend(a..=b);
    }
    Ok(ids)
}

const PERSONALITY_FLAGS: &[(&str, libc::c_ulong)] = &[
    ("UNAME26", 0x002_0000),
    ("ADDR_NO_RANDOMIZE", 0x004_0000),
    ("FDPIC_FUNCPTRS", 0x008_0000),
    ("MMAP_PAGE_ZERO", 0x010_0000),
    ("ADDR_COMPAT_LAYOUT", 0x020_0000),
    ("READ_IMPLIES_EXEC", 0x040_0000),
    ("ADDR_LIMIT_32BIT", 0x080_0000),
    ("SHORT_INODE", 0x100_0000),
    ("WHOLE_SECONDS", 0x200_0000),
    ("STICKY_TIMEOUTS", 0x400_0000),
    ("ADDR_LIMIT_3GB", 0x800_0000),
];

/// The persona for personality(2): the domain (LINUX 0, LINUX32 8) and personality(2)'s flags.
pub fn personality(p: &LinuxPersonality) -> Result<libc::c_ulong, String> {
    let mut persona = match p.domain() {
        LinuxPersonalityDomain::PerLinux => 0,
        LinuxPersonalityDomain::PerLinux32 => 0x0008,
    };
    for flag in p.flags().iter().flatten() {
        let Some((_, bit)) = PERSONALITY_FLAGS.iter().find(|(n, _)| n == flag) else {
            let names: Vec<&str> = PERSONALITY_FLAGS.iter().map(|(n, _)| *n).collect();
            return Err(format!(
                "unknown flag {flag:?}: use personality(2)'s, e.g. {}",
                names.join(", ")
            ));
        };
        persona |= bit;
    }
    Ok(persona)
}

pub const MPOL_MODES: &[(&str, i32)] = &[
    ("MPOL_DEFAULT", 0),
    ("MPOL_PREFERRED", 1),
    ("MPOL_BIND", 2),
    ("MPOL_INTERLEAVE", 3),
    ("MPOL_LOCAL", 4),
    ("MPOL_PREFERRED_MANY", 5),
    ("MPOL_WEIGHTED_INTERLEAVE", 6),
];
pub const MPOL_FLAGS: &[(&str, i32)] = &[
    ("MPOL_F_NUMA_BALANCING", 1 << 13),
    ("MPOL_F_RELATIVE_NODES", 1 << 14),
    ("MPOL_F_STATIC_NODES", 1 << 15),
];

/// (mode | flags, node mask) for set_mempolicy(2).
pub fn mempolicy(p: &MemoryPolicy) -> Result<(i32, Vec<u64>), String> {
    let names = |t: &[(&str, i32)]| t.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ");
    let Some(&(_, mode)) = MPOL_MODES.iter().find(|(n, _)| *n == p.mode) else {
        return Err(format!(
            "unknown mode {:?}: use one of {}",
            p.mode,
            names(MPOL_MODES)
        ));
    };
    let mut word = mode;
    for flag in p.flags.iter().flatten() {
        let Some((_, bit)) = MPOL_FLAGS.iter().find(|(n, _)| n == flag) else {
            return Err(format!("unknown flag {flag:?}: use {}", names(MPOL_FLAGS)));
        };
        word |= bit;
    }
    let nodes = p.nodes.as_deref().filter(|n| !n.is_empty());
    let mask = match (mode, nodes) {
        (0 | 4, None) => Vec::new(),
        (0 | 4, Some(_)) => return Err(format!("{} takes no nodes: remove nodes", p.mode)),
        (_, None) => return Err(format!("{} needs nodes, such as \"0\" or \"0-1\"", p.mode)),
        (_, Some(text)) => {
            let ids = id_list(text).map_err(|e| format!("nodes {e}"))?;
            let mut mask = vec![0u64; ids.iter().max().map_or(1, |m| m / 64 + 1)];
            for id in ids {
                mask[id / 64] |= 1 << (id % 64);
            }
            mask
        }
    };
    Ok((word, mask))
}

/// The checks of a process's own fields (the container's, or `exec --process`'s).
pub fn check_process(p: &Process, at: &str) -> Result<(), SpecError> {
    let bad = |field: &str, msg: String| SpecError::invalid(format!("{at}.{field}"), msg);
    if let Some(io) = p.io_priority() {
        ioprio(io).map_err(|m| bad("ioPriority", m))?;
    }
    if let Some(s) = p.scheduler() {
        scheduler(s).map_err(|m| bad("scheduler", m))?;
    }
    if let Some(a) = p.exec_cpu_affinity() {
        for (name, list) in [
            ("initial", a.cpu_affinity_initial()),
            ("final", a.cpu_affinity_final()),
        ] {
            if let Some(list) = list {
                id_list(list).map_err(|m| bad(&format!("execCPUAffinity.{name}"), m))?;
            }
        }
    }
    Ok(())
}

/// The checks of the whole spec's fields here.
pub fn check(spec: &Spec) -> Result<(), SpecError> {
    if let Some(p) = spec.process() {
        check_process(p, "process")?;
    }
    if let Some(p) = spec.linux().as_ref().and_then(|l| l.personality().as_ref()) {
        personality(p).map_err(|m| SpecError::invalid("linux.personality", m))?;
    }
    super::carried::check(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_lists_parse_as_the_kernel_writes_them() {
        assert_eq!(id_list("0-2,5").unwrap(), [0, 1, 2, 5]);
        assert_eq!(id_list("3").unwrap(), [3]);
        for bad in ["", "2-1", "a", "1,", "0-99999"] {
            assert!(id_list(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn scheduler_values_are_checked_as_runc_does() {
        let s = |v: serde_json::Value| scheduler(&serde_json::from_value(v).unwrap());
        let batch = s(serde_json::json!({"policy": "SCHED_BATCH", "nice": 5})).unwrap();
        assert_eq!((batch.policy, batch.nice), (3, 5));
        assert!(!batch.needs_host_privilege());
        assert!(
            s(serde_json::json!({"policy": "SCHED_FIFO", "priority": 10}))
                .unwrap()
                .needs_host_privilege()
        );
        for bad in [
            serde_json::json!({"policy": "SCHED_OTHER", "nice": 20}),
            serde_json::json!({"policy": "SCHED_OTHER", "priority": 1}),
            serde_json::json!({"policy": "SCHED_FIFO"}),
            serde_json::json!({"policy": "SCHED_BATCH", "runtime": 10}),
            serde_json::json!({"policy": "SCHED_ISO"}),
        ] {
            assert!(s(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn memory_policies_become_mode_flags_and_a_mask() {
        let p = |v: serde_json::Value| mempolicy(&serde_json::from_value(v).unwrap());
        assert_eq!(
            p(serde_json::json!({"mode": "MPOL_BIND", "nodes": "0,65", "flags": ["MPOL_F_STATIC_NODES"]})).unwrap(),
            (2 | 1 << 15, vec![1, 2])
        );
        assert_eq!(
            p(serde_json::json!({"mode": "MPOL_LOCAL"})).unwrap(),
            (4, vec![])
        );
        assert!(p(serde_json::json!({"mode": "MPOL_BIND"})).is_err());
        assert!(p(serde_json::json!({"mode": "MPOL_DEFAULT", "nodes": "0"})).is_err());
        assert!(p(serde_json::json!({"mode": "MPOL_NOPE", "nodes": "0"})).is_err());
    }

    #[test]
    fn personality_takes_the_domain_and_known_flags() {
        let p = |v: serde_json::Value| personality(&serde_json::from_value(v).unwrap());
        assert_eq!(p(serde_json::json!({"domain": "LINUX32"})).unwrap(), 8);
        assert_eq!(
            p(serde_json::json!({"domain": "LINUX", "flags": ["ADDR_NO_RANDOMIZE"]})).unwrap(),
            0x40000
        );
        assert!(p(serde_json::json!({"domain": "LINUX", "flags": ["NOPE"]})).is_err());
    }
}
