//! `nsboot update [--resources FILE|-] [runc's flags] ID`: write new limits to a running
//! container's cgroup. The JSON is a `linux.resources` object (what podman and containerd's
//! shim pipe in); each flag sets one field over it, as runc's do.

use std::io::Read;
use std::path::PathBuf;

use oci_spec::runtime::LinuxResources;
use serde_json::{json, Value};

use crate::cli::Global;
use crate::state::lifecycle::{LifecycleError, Status};

// Update a running container's resource limits.
#[derive(Debug, clap::Args)]
pub struct UpdateArgs {
    /// A JSON file with a linux.resources object ("-": standard input).
    #[arg(long, short = 'r', value_name = "FILE")]
    pub resources: Option<PathBuf>,
    /// Memory limit in bytes (suffixes k, m, g; -1: none).
    #[arg(long, value_parser = bytes, allow_hyphen_values = true)]
    pub memory: Option<i64>,
    /// Memory soft limit in bytes.
    #[arg(long = "memory-reservation", value_parser = bytes, allow_hyphen_values = true)]
    pub memory_reservation: Option<i64>,
    /// Memory plus swap limit in bytes (-1: unlimited swap).
    #[arg(long = "memory-swap", value_parser = bytes, allow_hyphen_values = true)]
    pub memory_swap: Option<i64>,
    /// Kernel memory limit (cgroup v1).
    #[arg(long = "kernel-memory", value_parser = bytes, allow_hyphen_values = true)]
    pub kernel_memory: Option<i64>,
    /// Kernel TCP buffer limit (cgroup v1).
    #[arg(long = "kernel-memory-tcp", value_parser = bytes, allow_hyphen_values = true)]
    pub kernel_memory_tcp: Option<i64>,
    /// CPU shares (relative weight).
    #[arg(long = "cpu-share")]
    pub cpu_share: Option<u64>,
    /// CPU CFS quota in microseconds per period (-1: none).
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPU CFS period in microseconds.
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    /// CPU CFS burst in microseconds.
    #[arg(long = "cpu-burst")]
    pub cpu_burst: Option<u64>,
    /// Realtime period in microseconds (cgroup v1).
    #[arg(long = "cpu-rt-period")]
    pub cpu_rt_period: Option<u64>,
    /// Realtime runtime in microseconds (cgroup v1).
    #[arg(long = "cpu-rt-runtime")]
    pub cpu_rt_runtime: Option<i64>,
    /// SCHED_IDLE for the cgroup (1) or not (0).
    #[arg(long = "cpu-idle")]
    pub cpu_idle: Option<i64>,
    /// CPUs allowed (0-3, 0,1).
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes allowed.
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Maximum number of processes (-1: none).
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Block IO weight (10 to 1000).
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    /// The container id.
    pub id: String,
}

/// "64m", "1g", "1024", "-1" -> bytes (runc's RAMInBytes units: powers of 1024).
fn bytes(s: &str) -> Result<i64, String> {
    if s == "-1" {
        return Ok(-1);
    }
    let lower = s.to_ascii_lowercase();
    let t = lower.trim_end_matches('b');
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size: give bytes, or a number with k, m, g or t"))?;
    Ok((n * mult as f64) as i64)
}

pub fn run(args: UpdateArgs, global: &Global) -> i32 {
    match update(&args, global) {
        Ok(()) => 0,
        Err(e) => {
            crate::sys::log::fatal(&e);
            125
        }
    }
}

fn update(args: &UpdateArgs, global: &Global) -> Result<(), String> {
    let (c, cg) = super::pause::load_with_cgroup(&args.id, global)?;
    if !matches!(c.status, Status::Running | Status::Paused | Status::Created) {
        return Err(LifecycleError::NotRunning {
            id: args.id.clone(),
            status: c.status.as_str().into(),
        }
        .to_string());
    }
    let r = resources(args)?;
    // Device rules only when given (runc's update leaves them as they are).
    if let Some(d) = r.devices() {
        cg.apply_devices(d, true).map_err(|e| e.to_string())?;
    }
    cg.apply(&r).map_err(|e| e.to_string())
}

/// The --resources JSON (or none), with each flag laid over it.
fn resources(args: &UpdateArgs) -> Result<LinuxResources, String> {
    let mut r: Value = match &args.resources {
        None => json!({}),
        Some(p) => {
            let mut text = String::new();
            let read = if p.as_os_str() == "-" {
                std::io::stdin().read_to_string(&mut text)
            } else {
                std::fs::File::open(p).and_then(|mut f| f.read_to_string(&mut text))
            };
            read.map_err(|e| format!("reading --resources {}: {e}", p.display()))?;
            serde_json::from_str(&text).map_err(|e| {
                format!(
                    "--resources {}: not a linux.resources object: {e}",
                    p.display()
                )
            })?
        }
    };
    if !r.is_object() {
        return Err("--resources: not a linux.resources object (a JSON object)".into());
    }
    let mut over = |section: &str, key: &str, v: Option<Value>| {
        if let Some(v) = v {
            let s = r
                .as_object_mut()
                .map(|o| o.entry(section).or_insert_with(|| json!({})));
            if let Some(Value::Object(o)) = s {
                o.insert(key.into(), v);
            }
        }
    };
    let j = |v: Option<i64>| v.map(Value::from);
    let u = |v: Option<u64>| v.map(Value::from);
    let s = |v: &Option<String>| v.clone().map(Value::from);
    over("memory", "limit", j(args.memory));
    over("memory", "reservation", j(args.memory_reservation));
    over("memory", "swap", j(args.memory_swap));
    over("memory", "kernel", j(args.kernel_memory));
    over("memory", "kernelTCP", j(args.kernel_memory_tcp));
    over("cpu", "shares", u(args.cpu_share));
    over("cpu", "quota", j(args.cpu_quota));
    over("cpu", "period", u(args.cpu_period));
    over("cpu", "burst", u(args.cpu_burst));
    over("cpu", "realtimePeriod", u(args.cpu_rt_period));
    over("cpu", "realtimeRuntime", j(args.cpu_rt_runtime));
    over("cpu", "idle", j(args.cpu_idle));
    over("cpu", "cpus", s(&args.cpuset_cpus));
    over("cpu", "mems", s(&args.cpuset_mems));
    over("pids", "limit", j(args.pids_limit));
    over("blockIO", "weight", args.blkio_weight.map(Value::from));
    serde_json::from_value(r).map_err(|e| format!("--resources: {e}"))
}

#[cfg(test)]
mod tests {
    use super::bytes;

    #[test]
    fn sizes_take_runcs_units() {
        assert_eq!(bytes("64m"), Ok(64 << 20));
        assert_eq!(bytes("1g"), Ok(1 << 30));
        assert_eq!(bytes("1024"), Ok(1024));
        assert_eq!(bytes("-1"), Ok(-1));
        assert!(bytes("lots").is_err());
    }
}
