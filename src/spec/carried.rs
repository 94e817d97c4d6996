//! Two linux fields that oci-spec 0.7 does not model as the runtime spec writes them, carried
//! inside the typed `Spec` so that they travel wherever it goes (the exec'd `nsboot boot` gets
//! the spec as JSON):
//! - `linux.timeOffsets` (`{"monotonic": {"secs": 10, "nanosecs": 0}}`): oci-spec types the
//!   values as strings, so decoding the spec's objects fails. Each object becomes the string
//!   "SECS NANOSECS" (a line of /proc/self/timens_offsets without the clock);
//! - `linux.memoryPolicy`: oci-spec has no such field (serde would drop it). It is kept, as
//!   JSON, in the annotation `nsboot.memoryPolicy`, which is also how one may give it;
//! - `process.execCPUAffinity` with `initial` and `final`: oci-spec reads it as
//!   `execCpuAffinity` with `cpu_affinity_initial` and `cpu_affinity_final`, and would drop
//!   the spec's.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Spec, SpecError};

/// The annotation that carries linux.memoryPolicy.
pub const MEMORY_POLICY_ANNOTATION: &str = "nsboot.memoryPolicy";

/// Whether the raw config may hold a field `normalize` rewrites (the fast decode skips it).
pub fn needs_normalize(bytes: &[u8]) -> bool {
    const KEYS: [&[u8]; 3] = [b"timeOffsets\"", b"memoryPolicy\"", b"execCPUAffinity\""];
    // One pass: a key starts after a quote.
    (0..bytes.len()).any(|i| bytes[i] == b'"' && KEYS.iter().any(|k| bytes[i + 1..].starts_with(k)))
}

/// execCPUAffinity as oci-spec reads it.
pub fn normalize_process(p: &mut Value) {
    let Some(obj) = p.as_object_mut() else {
        return;
    };
    let Some(mut a) = obj.remove("execCPUAffinity") else {
        return;
    };
    if let Some(a) = a.as_object_mut() {
        for (spec, ours) in [
            ("initial", "cpu_affinity_initial"),
            ("final", "cpu_affinity_final"),
        ] {
            if let Some(list) = a.remove(spec) {
                a.insert(ours.into(), list);
            }
        }
    }
    obj.insert("execCpuAffinity".into(), a);
}

/// Rewrites the fields into their carried form (see the module's comment).
pub fn normalize(v: &mut Value) -> Result<(), SpecError> {
    if let Some(p) = v.get_mut("process") {
        normalize_process(p);
    }
    let Some(linux) = v.get_mut("linux").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    if let Some(Value::Object(offsets)) = linux.get_mut("timeOffsets") {
        for (clock, off) in offsets.iter_mut() {
            if off.is_string() {
                continue;
            }
            let at = format!("linux.timeOffsets.{clock}");
            let parsed = TimeOffset::deserialize(&*off).map_err(|e| {
                SpecError::invalid(&at, format!("{e}: write {{\"secs\": N, \"nanosecs\": N}}"))
            })?;
            *off = Value::String(format!("{} {}", parsed.secs, parsed.nanosecs));
        }
    }
    match linux.remove("memoryPolicy") {
        None | Some(Value::Null) => Ok(()),
        Some(policy) => {
            MemoryPolicy::deserialize(&policy)
                .map_err(|e| SpecError::invalid("linux.memoryPolicy", e.to_string()))?;
            let annotations = v
                .as_object_mut()
                .expect("an object: it has linux")
                .entry("annotations")
                .or_insert_with(|| Value::Object(Default::default()));
            if let Some(map) = annotations.as_object_mut() {
                map.insert(MEMORY_POLICY_ANNOTATION.into(), policy.to_string().into());
            }
            Ok(())
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TimeOffset {
    #[serde(default)]
    secs: i64,
    #[serde(default)]
    nanosecs: u32,
}

/// linux.memoryPolicy as the runtime spec defines it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryPolicy {
    pub mode: String,
    #[serde(default)]
    pub nodes: Option<String>,
    #[serde(default)]
    pub flags: Option<Vec<String>>,
}

/// The spec's memory policy, if any (validated by `check`).
pub fn memory_policy(spec: &Spec) -> Option<MemoryPolicy> {
    let text = spec.annotations().as_ref()?.get(MEMORY_POLICY_ANNOTATION)?;
    serde_json::from_str(text).ok()
}

/// One clock's offset: (clock, seconds, nanoseconds).
pub type Offset = (String, i64, u32);

/// The spec's time offsets (validated by `check`).
pub fn time_offsets(spec: &Spec) -> Vec<Offset> {
    let Some(map) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.time_offsets().as_ref())
    else {
        return Vec::new();
    };
    let mut all: Vec<Offset> = map
        .iter()
        .filter_map(|(clock, text)| {
            let (s, n) = text.split_once(' ')?;
            Some((clock.clone(), s.parse().ok()?, n.parse().ok()?))
        })
        .collect();
    all.sort();
    all
}

/// The values the kernel would refuse, refused now with the field's path.
pub fn check(spec: &Spec) -> Result<(), SpecError> {
    if let Some(map) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.time_offsets().as_ref())
    {
        let new_time_ns = spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .is_some_and(|ns| {
                ns.iter().any(|n| {
                    n.typ() == oci_spec::runtime::LinuxNamespaceType::Time && n.path().is_none()
                })
            });
        if !map.is_empty() && !new_time_ns {
            return Err(SpecError::invalid(
                "linux.timeOffsets",
                "set, but the spec makes no new time namespace: add {\"type\": \"time\"} to linux.namespaces",
            ));
        }
        for (clock, text) in map {
            let at = format!("linux.timeOffsets.{clock}");
            if clock != "monotonic" && clock != "boottime" {
                return Err(SpecError::invalid(
                    at,
                    "not a clock a time namespace offsets: use monotonic or boottime",
                ));
            }
            let ok = text
                .split_once(' ')
                .and_then(|(s, n)| Some((s.parse::<i64>().ok()?, n.parse::<u32>().ok()?)));
            match ok {
                Some((_, n)) if n < 1_000_000_000 => {}
                _ => {
                    return Err(SpecError::invalid(
                        at,
                        "nanosecs must be below 1000000000 (and secs an integer)",
                    ))
                }
            }
        }
    }
    if let Some(text) = spec
        .annotations()
        .as_ref()
        .and_then(|a| a.get(MEMORY_POLICY_ANNOTATION))
    {
        let policy: MemoryPolicy = serde_json::from_str(text)
            .map_err(|e| SpecError::invalid("linux.memoryPolicy", e.to_string()))?;
        super::tuning::mempolicy(&policy)
            .map_err(|msg| SpecError::invalid("linux.memoryPolicy", msg))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// config.json as the runtime spec writes these fields, decoded, then serialised and
    /// decoded again (as the exec'd `nsboot boot` gets it): the values survive both.
    #[test]
    fn spec_forms_decode_and_survive_a_round_trip() {
        let json = serde_json::json!({
            "ociVersion": "1.2.0",
            "process": {"cwd": "/", "user": {"uid": 0, "gid": 0}, "args": ["sh"],
                        "execCPUAffinity": {"initial": "0-1", "final": "1"}},
            "root": {"path": "rootfs"},
            "linux": {
                "namespaces": [{"type": "time"}],
                "timeOffsets": {"monotonic": {"secs": -5, "nanosecs": 7}, "boottime": {"secs": 9}},
                "memoryPolicy": {"mode": "MPOL_BIND", "nodes": "0"}
            }
        });
        let path = std::path::Path::new("config.json");
        let first = crate::spec::parse(path, json.to_string().as_bytes()).unwrap();
        let again = crate::spec::parse(path, &serde_json::to_vec(&first).unwrap()).unwrap();
        for spec in [&first, &again] {
            check(spec).unwrap();
            assert_eq!(
                time_offsets(spec),
                [("boottime".into(), 9, 0), ("monotonic".into(), -5, 7)]
            );
            let policy = memory_policy(spec).unwrap();
            assert_eq!(
                (policy.mode.as_str(), policy.nodes.as_deref()),
                ("MPOL_BIND", Some("0"))
            );
            let a = spec
                .process()
                .as_ref()
                .unwrap()
                .exec_cpu_affinity()
                .clone()
                .unwrap();
            assert_eq!(a.cpu_affinity_initial().as_deref(), Some("0-1"));
            assert_eq!(a.cpu_affinity_final().as_deref(), Some("1"));
        }
    }

    #[test]
    fn malformed_offsets_and_policies_are_refused_with_their_path() {
        let decode = |linux: serde_json::Value| {
            let json = serde_json::json!({"ociVersion": "1.2.0", "linux": linux});
            crate::spec::parse(std::path::Path::new("c.json"), json.to_string().as_bytes())
                .unwrap_err()
                .to_string()
        };
        let e = decode(serde_json::json!({"timeOffsets": {"boottime": {"seconds": 1}}}));
        assert!(e.contains("linux.timeOffsets.boottime"), "{e}");
        let e = decode(serde_json::json!({"memoryPolicy": {"nodes": "0"}}));
        assert!(
            e.contains("linux.memoryPolicy") && e.contains("mode"),
            "{e}"
        );
    }
}
