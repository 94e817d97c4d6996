//! `exec --process FILE` with the process fields the application gets too (scheduler,
//! ioPriority), exec's own execCPUAffinity (initial, then final right before exec), and the
//! container's linux.personality, memoryPolicy and time namespace.

use std::fs;

use serde_json::{json, Value};

use crate::common::{self, Bundle, Mode};
use crate::support::*;
use crate::{create_and_start, delete_and_check};

const OFFSET: u64 = 40_000_000;

/// A sleeping container with a new time namespace shifted by OFFSET, LINUX32 and MPOL_BIND.
fn container(mode: Mode) -> Bundle {
    Bundle::new(mode)
        .args(&["/bin/sh", "-c", "exec sleep 1000"])
        .edit(|c| {
            c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "time"}));
            c["linux"]["timeOffsets"] = json!({"boottime": {"secs": OFFSET, "nanosecs": 0}});
            c["linux"]["personality"] = json!({"domain": "LINUX32"});
            c["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND", "nodes": "0"});
        })
}

/// Writes `process` (the container's with `fields` over it) as a --process file.
fn process_file(b: &Bundle, name: &str, script: &str, fields: Value) -> String {
    let mut p = b.config()["process"].clone();
    p["args"] = json!(["/bin/sh", "-c", script]);
    for (k, v) in fields.as_object().unwrap() {
        p[k] = v.clone();
    }
    let path = top(b).join(format!("{name}.json"));
    fs::write(&path, p.to_string()).unwrap();
    common::give_to(b.mode(), &path);
    path.to_str().unwrap().to_string()
}

const SCRIPT: &str = "set -- $(cat /proc/self/stat); echo ${19} ${41}; ionice -p $$; \
    grep Cpus_allowed_list /proc/self/status; uname -m; \
    grep -m1 -o 'bind:0' /proc/self/numa_maps; cut -d. -f1 /proc/uptime";

#[test]
fn exec_process_applies_the_process_fields_and_the_containers_settings() {
    for mode in common::modes() {
        let b = container(mode);
        create_and_start(&b, "xp");
        let file = process_file(
            &b,
            "xp",
            SCRIPT,
            json!({
                "scheduler": {"policy": "SCHED_BATCH", "nice": 7},
                "ioPriority": {"class": "IOPRIO_CLASS_IDLE", "priority": 0},
                "execCPUAffinity": {"initial": "0-1", "final": "1"}
            }),
        );
        let before = host_uptime();
        let e = nsb(&b, &["exec", "--process", &file, "xp"]);
        let after = host_uptime();
        assert_eq!(e.status, 0, "{mode:?}: {e:?}");
        let lines: Vec<&str> = e.stdout.lines().collect();
        assert_eq!(
            lines[..5],
            ["7 3", "idle", "Cpus_allowed_list:\t1", "i686", "bind:0"],
            "{mode:?}: {e:?}"
        );
        let uptime: u64 = lines[5].parse().unwrap();
        assert!(
            (before + OFFSET..=after + OFFSET).contains(&uptime),
            "{mode:?}: exec's uptime {uptime} is not in the container's time namespace"
        );
        // initial alone stays the process's affinity (no cgroup moves it here).
        let file = process_file(
            &b,
            "xp-initial",
            "grep Cpus_allowed_list /proc/self/status",
            json!({"execCPUAffinity": {"initial": "0"}}),
        );
        let e = nsb(&b, &["exec", "--process", &file, "xp"]);
        assert_eq!(
            (e.status, e.stdout.as_str()),
            (0, "Cpus_allowed_list:\t0\n"),
            "{mode:?}"
        );
        // Rootless, the kernel's refusal, one line, 125; real root lends it.
        let file = process_file(
            &b,
            "xp-fifo",
            "echo ran",
            json!({"scheduler": {"policy": "SCHED_RR", "priority": 5}}),
        );
        let e = nsb(&b, &["exec", "--process", &file, "xp"]);
        if mode.is_rootless() {
            assert!(
                e.status == 125
                    && e.stdout.is_empty()
                    && e.stderr.trim().lines().count() == 1
                    && e.stderr.contains("process.scheduler"),
                "{mode:?}: {e:?}"
            );
        } else {
            assert_eq!(
                (e.status, e.stdout.as_str()),
                (0, "ran\n"),
                "{mode:?}: {e:?}"
            );
        }
        let file = process_file(
            &b,
            "xp-bad",
            "echo ran",
            json!({"execCPUAffinity": {"final": "5000"}}),
        );
        let e = nsb(&b, &["exec", "--process", &file, "xp"]);
        assert!(
            e.status == 125 && e.stdout.is_empty() && e.stderr.contains("execCPUAffinity.final"),
            "{mode:?}: {e:?}"
        );
        nsb(&b, &["kill", "xp", "KILL"]);
        wait_status(&b, "xp", "stopped");
        delete_and_check(&b, "xp", false);
    }
}

fn host_uptime() -> u64 {
    let text = fs::read_to_string("/proc/uptime").unwrap();
    text.split('.').next().unwrap().parse().unwrap()
}
