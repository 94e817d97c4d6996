//! A container's resource usage in runc's `events` shapes (`types.Stats`: cpu, memory,
//! pids, blkio, hugetlb), read from either hierarchy, and its OOM-kill count.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{json, Map, Value};

use super::fs::read;
use super::Cgroup;

/// USER_HZ: cpuacct.stat counts in these ticks.
const TICKS_NS: u64 = 1_000_000_000 / 100;

fn num(dir: Option<&Path>, file: &str) -> u64 {
    dir.and_then(|d| read(d, file).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// "max" is no limit: runc reports it as the largest u64.
fn limit(dir: Option<&Path>, file: &str) -> u64 {
    match dir.and_then(|d| read(d, file).ok()) {
        Some(s) if s.trim() == "max" => u64::MAX,
        Some(s) => s.trim().parse().unwrap_or(0),
        None => 0,
    }
}

/// "key value" lines (memory.stat, cpu.stat, memory.events).
fn keyed(dir: Option<&Path>, file: &str) -> BTreeMap<String, u64> {
    dir.and_then(|d| read(d, file).ok())
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

impl Cgroup {
    /// runc's `events --stats` data object.
    pub fn stats(&self) -> Value {
        let mut data = Map::new();
        data.insert("cpu".into(), self.cpu_stats());
        data.insert("memory".into(), self.memory_stats());
        let pids = self.dir_of("pids");
        let max = limit(pids, "pids.max");
        data.insert(
            "pids".into(),
            json!({ "current": num(pids, "pids.current"), "limit": if max == u64::MAX { 0 } else { max } }),
        );
        data.insert("blkio".into(), self.blkio_stats());
        data.insert("hugetlb".into(), self.hugetlb_stats());
        Value::Object(data)
    }

    fn cpu_stats(&self) -> Value {
        if self.unified {
            let s = keyed(self.dir_of("cpu"), "cpu.stat");
            let g = |k: &str| s.get(k).copied().unwrap_or(0);
            return json!({
                "usage": { "total": g("usage_usec") * 1000, "kernel": g("system_usec") * 1000,
                    "user": g("user_usec") * 1000 },
                "throttling": { "periods": g("nr_periods"), "throttled_periods": g("nr_throttled"),
                    "throttled_time": g("throttled_usec") * 1000 }
            });
        }
        let acct = self.dir_of("cpuacct");
        let percpu: Vec<u64> = acct
            .and_then(|d| read(d, "cpuacct.usage_percpu").ok())
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        let st = keyed(acct, "cpuacct.stat");
        let t = keyed(self.dir_of("cpu"), "cpu.stat");
        let g = |m: &BTreeMap<String, u64>, k: &str| m.get(k).copied().unwrap_or(0);
        json!({
            "usage": { "total": num(acct, "cpuacct.usage"), "percpu": percpu,
                "kernel": g(&st, "system") * TICKS_NS, "user": g(&st, "user") * TICKS_NS },
            "throttling": { "periods": g(&t, "nr_periods"), "throttled_periods": g(&t, "nr_throttled"),
                "throttled_time": g(&t, "throttled_time") }
        })
    }

    fn memory_stats(&self) -> Value {
        let d = self.dir_of("memory");
        let raw = keyed(d, "memory.stat");
        if self.unified {
            let events = keyed(d, "memory.events");
            return json!({
                "cache": raw.get("file").copied().unwrap_or(0),
                "usage": { "usage": num(d, "memory.current"), "max": num(d, "memory.peak"),
                    "limit": limit(d, "memory.max"), "failcnt": events.get("max").copied().unwrap_or(0) },
                "swap": { "usage": num(d, "memory.swap.current"), "limit": limit(d, "memory.swap.max") },
                "raw": raw
            });
        }
        let entry = |p: &str| {
            json!({ "usage": num(d, &format!("{p}.usage_in_bytes")),
                "max": num(d, &format!("{p}.max_usage_in_bytes")),
                "limit": num(d, &format!("{p}.limit_in_bytes")),
                "failcnt": num(d, &format!("{p}.failcnt")) })
        };
        json!({
            "cache": raw.get("cache").copied().unwrap_or(0),
            "usage": entry("memory"),
            "swap": entry("memory.memsw"),
            "kernel": entry("memory.kmem"),
            "kernelTCP": entry("memory.kmem.tcp"),
            "use_hierarchy": num(d, "memory.use_hierarchy") == 1,
            "raw": raw
        })
    }

    fn blkio_stats(&self) -> Value {
        let mut bytes = Vec::new();
        let mut ios = Vec::new();
        let dev = |s: &str| -> Option<(u64, u64)> {
            let (a, b) = s.split_once(':')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        };
        if self.unified {
            let text = self
                .dir_of("io")
                .and_then(|d| read(d, "io.stat").ok())
                .unwrap_or_default();
            for l in text.lines() {
                let mut it = l.split_whitespace();
                let Some((major, minor)) = it.next().and_then(dev) else {
                    continue;
                };
                for kv in it {
                    let Some((k, v)) = kv.split_once('=') else {
                        continue;
                    };
                    let v: u64 = v.parse().unwrap_or(0);
                    let e =
                        |op: &str| json!({"major": major, "minor": minor, "op": op, "value": v});
                    match k {
                        "rbytes" => bytes.push(e("Read")),
                        "wbytes" => bytes.push(e("Write")),
                        "rios" => ios.push(e("Read")),
                        "wios" => ios.push(e("Write")),
                        _ => {}
                    }
                }
            }
        } else {
            let d = self.dir_of("blkio");
            for (file, out) in [
                ("blkio.throttle.io_service_bytes_recursive", &mut bytes),
                ("blkio.throttle.io_serviced_recursive", &mut ios),
            ] {
                let text = d.and_then(|d| read(d, file).ok()).unwrap_or_default();
                for l in text.lines() {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    if let (3, Some((major, minor))) = (f.len(), f.first().and_then(|s| dev(s))) {
                        let v: u64 = f[2].parse().unwrap_or(0);
                        out.push(json!({"major": major, "minor": minor, "op": f[1], "value": v}));
                    }
                }
            }
        }
        json!({ "ioServiceBytesRecursive": bytes, "ioServicedRecursive": ios })
    }

    fn hugetlb_stats(&self) -> Value {
        let mut out = Map::new();
        let Some(d) = self.dir_of("hugetlb") else {
            return Value::Object(out);
        };
        let (usage, max, fail) = if self.unified {
            ("current", "max", "events")
        } else {
            ("usage_in_bytes", "max_usage_in_bytes", "failcnt")
        };
        let Ok(rd) = std::fs::read_dir(d) else {
            return Value::Object(out);
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(size) = name
                .strip_prefix("hugetlb.")
                .and_then(|r| r.strip_suffix(&format!(".{usage}")))
            else {
                continue;
            };
            let failcnt = if self.unified {
                keyed(Some(d), &format!("hugetlb.{size}.events"))
                    .get("max")
                    .copied()
                    .unwrap_or(0)
            } else {
                num(Some(d), &format!("hugetlb.{size}.{fail}"))
            };
            out.insert(
                size.into(),
                json!({ "usage": num(Some(d), &name),
                    "max": if self.unified { 0 } else { num(Some(d), &format!("hugetlb.{size}.{max}")) },
                    "failcnt": failcnt }),
            );
        }
        Value::Object(out)
    }

    /// How many processes the OOM killer has killed in the cgroup so far.
    pub fn oom_kills(&self) -> u64 {
        let d = self.dir_of("memory");
        let file = if self.unified {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        keyed(d, file).get("oom_kill").copied().unwrap_or(0)
    }
}
