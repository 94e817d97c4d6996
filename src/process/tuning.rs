//! What the process sets on itself before exec besides credentials: process.ioPriority,
//! process.scheduler, linux.personality, linux.memoryPolicy (`apply`), a new time namespace
//! with linux.timeOffsets (`enter_time_namespace`, the application only: `exec` joins it) and
//! `exec`'s process.execCPUAffinity (`set_affinity`). The values come checked from
//! `spec::tuning`; the kernel's refusals are reported with the field and the fix.
//!
//! Each setting is inherited across fork and exec, and none is run when the spec leaves the
//! field out.

use oci_spec::runtime::Process;
use serde::{Deserialize, Serialize};

use crate::spec::{carried, tuning, Spec};
use crate::sys::{sched, Errno};

#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
pub enum TuningError {
    #[error("{field}: {msg}")]
    Invalid { field: String, msg: String },
    #[error("{field}: {call}: {errno}{hint}")]
    Kernel {
        field: String,
        call: String,
        errno: Errno,
        hint: String,
    },
    #[error("linux.timeOffsets: {0}")]
    Offsets(crate::sys::procfs::ProcfsError),
}

fn invalid(field: &str) -> impl Fn(String) -> TuningError + '_ {
    move |msg| TuningError::Invalid {
        field: field.into(),
        msg,
    }
}

fn kernel(field: &str, call: &str, errno: Errno, hint: &str) -> TuningError {
    TuningError::Kernel {
        field: field.into(),
        call: call.into(),
        errno,
        hint: hint.into(),
    }
}

const HOST_ONLY: &str = ": the kernel grants it only with a capability in the host's user namespace, which a container never has (nsboot always runs it in a user namespace of its own, as root too)";

/// ioPriority, scheduler, personality and memory policy, in runc's order.
pub fn apply(spec: &Spec, process: &Process) -> Result<(), TuningError> {
    if let Some(s) = process.scheduler() {
        let field = "process.scheduler";
        let v = tuning::scheduler(s).map_err(invalid(field))?;
        let attr = sched::SchedAttr {
            policy: v.policy,
            flags: v.flags,
            nice: v.nice,
            priority: v.priority,
            runtime: v.runtime,
            deadline: v.deadline,
            period: v.period,
            ..Default::default()
        };
        sched::set_sched_attr(&attr).map_err(|errno| {
            let hint = match errno.nix() {
                nix::errno::Errno::EPERM if v.needs_host_privilege() => format!(
                    "{HOST_ONLY} (CAP_SYS_NICE, for {} and nice < 0): use SCHED_OTHER, SCHED_BATCH or SCHED_IDLE with nice 0 to 19",
                    "SCHED_FIFO, SCHED_RR, SCHED_DEADLINE"
                ),
                _ => String::new(),
            };
            kernel(field, "sched_setattr", errno, &hint)
        })?;
    }
    if let Some(io) = process.io_priority() {
        let field = "process.ioPriority";
        let (class, level) = tuning::ioprio(io).map_err(invalid(field))?;
        // Already lent by real root (`Lent`): setting IOPRIO_CLASS_RT again would need it here.
        let already = sched::get_ioprio().is_ok_and(|p| p == (class << 13 | level));
        if !already {
            sched::set_ioprio(class, level).map_err(|errno| {
            let hint = match errno.nix() {
                nix::errno::Errno::EPERM if class == 1 => format!(
                    "{HOST_ONLY} (CAP_SYS_ADMIN or CAP_SYS_NICE, for IOPRIO_CLASS_RT): use IOPRIO_CLASS_BE or IOPRIO_CLASS_IDLE"
                ),
                _ => String::new(),
            };
            kernel(field, "ioprio_set", errno, &hint)
            })?;
        }
    }
    if let Some(p) = spec.linux().as_ref().and_then(|l| l.personality().as_ref()) {
        let field = "linux.personality";
        let persona = tuning::personality(p).map_err(invalid(field))?;
        sched::set_personality(persona).map_err(|e| kernel(field, "personality", e, ""))?;
    }
    if let Some(policy) = carried::memory_policy(spec) {
        let field = "linux.memoryPolicy";
        let (mode, nodes) = tuning::mempolicy(&policy).map_err(invalid(field))?;
        sched::set_mempolicy(mode, &nodes).map_err(|errno| {
            let hint = match errno.nix() {
                nix::errno::Errno::EINVAL => ": a node is not online here (see /sys/devices/system/node/online) or the mode refuses these flags",
                nix::errno::Errno::ENOSYS => ": this kernel has no NUMA support; remove it",
                _ => "",
            };
            kernel(field, "set_mempolicy", errno, hint)
        })?;
    }
    Ok(())
}

/// A new time namespace for what the application execs (and its children), with the spec's
/// offsets, written before any process is in it (the kernel refuses them afterwards).
pub fn enter_time_namespace(spec: &Spec) -> Result<(), TuningError> {
    if !wants_time_namespace(spec) {
        return Ok(());
    }
    sched::unshare_time().map_err(|errno| {
        let hint = match errno.nix() {
            nix::errno::Errno::EINVAL => ": this kernel has no time namespaces (Linux >= 5.6 with CONFIG_TIME_NS); remove {\"type\": \"time\"}",
            _ => "",
        };
        kernel("linux.namespaces (time)", "unshare(CLONE_NEWTIME)", errno, hint)
    })?;
    let offsets = carried::time_offsets(spec);
    if !offsets.is_empty() {
        let text: String = offsets
            .iter()
            .map(|(clock, s, ns)| format!("{clock} {s} {ns}\n"))
            .collect();
        crate::sys::procfs::write_self("timens_offsets", &text).map_err(TuningError::Offsets)?;
    }
    // Kernels before 6.2 do not move a process into its time namespace at exec: enter it
    // now, so the application itself (not only its children) sees the offsets everywhere.
    sched::enter_time_for_children().map_err(|errno| {
        kernel(
            "linux.namespaces (time)",
            "setns(time_for_children)",
            errno,
            "",
        )
    })
}

/// Whether the spec asks for a new time namespace (a `time` entry without a path). Its
/// application is then forked, not vforked: entering a time namespace takes a process that
/// shares its memory with no other.
pub fn wants_time_namespace(spec: &Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter().any(|n| {
                n.typ() == oci_spec::runtime::LinuxNamespaceType::Time && n.path().is_none()
            })
        })
}

/// process.execCPUAffinity's `initial` or `final` list (`which`), if given.
pub fn set_affinity(list: Option<&String>, which: &str) -> Result<(), TuningError> {
    let Some(list) = list else {
        return Ok(());
    };
    let field = format!("process.execCPUAffinity.{which}");
    let cpus = tuning::id_list(list).map_err(invalid(&field))?;
    sched::set_affinity(&cpus).map_err(|errno| {
        let hint = match errno.nix() {
            nix::errno::Errno::EINVAL => ": none of these CPUs is online and allowed here (see /sys/devices/system/cpu/online and the cgroup's cpuset)",
            _ => "",
        };
        kernel(&field, "sched_setaffinity", errno, hint)
    })
}

/// What real root sets on itself for the container, to be taken back (`restore`).
#[derive(Default)]
pub struct Lent {
    sched: Option<sched::SchedAttr>,
    ioprio: Option<u32>,
}

/// Realtime policies, nice < 0 and IOPRIO_CLASS_RT need a capability of the host's user
/// namespace, which no process in the container's has, as root too. Real root sets them on
/// itself right before it clones into the container's namespaces, so that the processes made
/// there inherit them (the process's own call then asks for nothing new), and takes them back
/// right after (`restore`). Rootless, nothing happens: the process meets the kernel's refusal.
/// Not SCHED_DEADLINE: a deadline task cannot fork.
pub fn lend(process: Option<&Process>) -> Lent {
    let mut lent = Lent::default();
    let Some(process) = process else {
        return lent;
    };
    // No syscall unless the spec asks for what needs lending.
    let root = || nix::unistd::geteuid().is_root();
    if let Some(v) = process
        .scheduler()
        .as_ref()
        .and_then(|s| tuning::scheduler(s).ok())
    {
        if v.needs_host_privilege() && v.policy != 6 && root() {
            if let Ok(old) = sched::get_sched_attr() {
                let attr = sched::SchedAttr {
                    policy: v.policy,
                    nice: v.nice,
                    priority: v.priority,
                    ..Default::default()
                };
                if sched::set_sched_attr(&attr).is_ok() {
                    lent.sched = Some(old);
                }
            }
        }
    }
    let io = process
        .io_priority()
        .as_ref()
        .and_then(|p| tuning::ioprio(p).ok());
    if let Some((1, level)) = io.filter(|_| root()) {
        if let Ok(old) = sched::get_ioprio() {
            if sched::set_ioprio(1, level).is_ok() {
                lent.ioprio = Some(old);
            }
        }
    }
    lent
}

impl Lent {
    /// Takes back what `lend` set (lowering needs no privilege).
    pub fn restore(self) {
        if let Some(old) = self.sched {
            let _ = sched::set_sched_attr(&old);
        }
        if let Some(old) = self.ioprio {
            let _ = sched::set_ioprio(old >> 13, old & 0x1fff);
        }
    }
}

/// The supervisor, once the application is made: back to the default scheduling if real root
/// lent it what the application asked for (it asks for nothing the kernel would refuse).
pub fn return_lent(process: Option<&Process>) {
    let Some(process) = process else {
        return;
    };
    let sched_lent = process
        .scheduler()
        .as_ref()
        .and_then(|s| tuning::scheduler(s).ok())
        .is_some_and(|v| v.needs_host_privilege() && v.policy != 6);
    if sched_lent {
        let _ = sched::set_sched_attr(&sched::SchedAttr::default());
    }
    let io_lent = process
        .io_priority()
        .as_ref()
        .and_then(|p| tuning::ioprio(p).ok())
        .is_some_and(|(class, _)| class == 1);
    if io_lent {
        // IOPRIO_CLASS_NONE: the default, derived from the nice value.
        let _ = sched::set_ioprio(0, 0);
    }
}
