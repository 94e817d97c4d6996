//! process.scheduler, process.ioPriority, linux.personality, linux.memoryPolicy and
//! linux.timeOffsets (a new time namespace) as the application sees them, and the kernel's
//! refusals (realtime policies need CAP_SYS_NICE of the host's user namespace, which a
//! container in a user namespace never has) as one line, 125.

use serde_json::json;

use super::common::{self, Bundle};
use super::{assert_refused, id, sh};

fn prints(bundle: Bundle, test: &str, want: &str) {
    let mode = bundle.mode();
    let out = bundle.run(&id(test, mode));
    assert_eq!(
        (out.status, out.stdout.as_str()),
        (0, want),
        "{mode:?}: {out:?}"
    );
    common::assert_nothing_left(mode, bundle.state_dir());
}

fn refused(bundle: Bundle, test: &str, names: &[&str]) {
    let mode = bundle.mode();
    let out = bundle.run(&id(test, mode));
    assert_refused(mode, &out, names);
    common::assert_nothing_left(mode, bundle.state_dir());
}

/// Fields 19 (nice) and 41 (policy) of the process's /proc/PID/stat.
const NICE_POLICY: &str = "set -- $(cat /proc/self/stat); echo ${19} ${41}";

#[test]
fn scheduler_policy_and_nice_reach_the_app() {
    for mode in common::modes() {
        let batch = |c: &mut serde_json::Value| {
            c["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 5})
        };
        prints(sh(mode, NICE_POLICY, batch), "sched-batch", "5 3\n");
        let idle = |c: &mut serde_json::Value| {
            c["process"]["scheduler"] =
                json!({"policy": "SCHED_IDLE", "flags": ["SCHED_RESET_ON_FORK"]})
        };
        // cat, a child, keeps SCHED_IDLE (the flag resets only realtime policies and nice < 0).
        let script = format!("{NICE_POLICY}; set -- $(cat /proc/$$/stat); echo ${{41}}");
        prints(sh(mode, &script, idle), "sched-idle", "0 5\n5\n");
    }
}

#[test]
fn scheduler_values_needing_the_hosts_cap_sys_nice_are_one_line_errors_when_rootless() {
    for mode in common::rootless_modes() {
        for (name, sched) in [
            ("fifo", json!({"policy": "SCHED_FIFO", "priority": 10})),
            ("nice", json!({"policy": "SCHED_OTHER", "nice": -5})),
        ] {
            let b = sh(mode, "echo ran", |c| c["process"]["scheduler"] = sched);
            refused(
                b,
                &format!("sched-{name}"),
                &["process.scheduler", "CAP_SYS_NICE"],
            );
        }
    }
    for mode in common::modes() {
        // A value runc's validation refuses never reaches the kernel.
        let b = sh(mode, "echo ran", |c| {
            c["process"]["scheduler"] = json!({"policy": "SCHED_OTHER", "priority": 3})
        });
        refused(b, "sched-prio", &["process.scheduler", "SCHED_FIFO"]);
    }
}

/// Fields 19 (nice), 40 (rt_priority) and 41 (policy) of /proc/`pid`/stat.
fn host_sched(pid: &str) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after_comm.split(' ').collect();
    // after_comm starts at field 3.
    format!("{} {} {}", f[19 - 3], f[40 - 3], f[41 - 3])
}

#[test]
fn realtime_scheduling_as_root_is_lent_to_the_app_alone() {
    if !common::is_root() {
        return;
    }
    let mode = common::Mode::Root;
    let b = Bundle::new(mode)
        .args(&["/bin/sh", "-c", "exec sleep 1000"])
        .edit(|c| {
            c["process"]["scheduler"] = json!({"policy": "SCHED_RR", "priority": 7});
            c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_RT", "priority": 2});
        });
    let cid = id("sched-rr-root", mode);
    let nsb = |args: &[&str]| {
        let mut cmd = b.nsboot();
        cmd.arg("--root").arg(b.state_dir()).args(args);
        common::output_within(&mut cmd, std::time::Duration::from_secs(30))
    };
    let before = host_sched("self");
    let c = nsb(&["create", "--bundle", b.dir().to_str().unwrap(), &cid]);
    assert_eq!(c.status, 0, "{c:?}");
    assert_eq!(nsb(&["start", &cid]).status, 0);
    let ps = nsb(&["ps", "--format", "json", &cid]);
    let pids: Vec<i32> = serde_json::from_str(&ps.stdout).unwrap();
    let app = pids[0].to_string();
    let sup = b.supervisor(&cid).to_string();
    assert_ne!(
        sup, app,
        "the state names the application as its supervisor"
    );
    assert_eq!(host_sched(&app), "0 7 2", "the app is SCHED_RR 7");
    assert_eq!(
        host_sched(&sup),
        "0 0 0",
        "the supervisor took back what it was lent"
    );
    assert_eq!(host_sched("self"), before);
    // exec's process gets it the same way.
    let e = nsb(&[
        "exec",
        &cid,
        "/bin/sh",
        "-c",
        "set -- $(cat /proc/self/stat); echo ${40} ${41}; ionice -p $$",
    ]);
    assert_eq!(
        (e.status, e.stdout.as_str()),
        (0, "7 2\nrealtime: prio 2\n"),
        "{e:?}"
    );
    nsb(&["delete", "--force", &cid]);
    common::assert_nothing_left(mode, b.state_dir());
    // A negative nice too.
    let b = sh(mode, NICE_POLICY, |c| {
        c["process"]["scheduler"] = json!({"policy": "SCHED_OTHER", "nice": -5})
    });
    prints(b, "sched-nice-root", "-5 0\n");
}

#[test]
fn io_priority_reaches_the_app() {
    for mode in common::modes() {
        let set = |class: &'static str, priority: u32| {
            move |c: &mut serde_json::Value| {
                c["process"]["ioPriority"] = json!({"class": class, "priority": priority})
            }
        };
        let script = "ionice -p $$";
        prints(
            sh(mode, script, set("IOPRIO_CLASS_BE", 6)),
            "ioprio-be",
            "best-effort: prio 6\n",
        );
        prints(
            sh(mode, script, set("IOPRIO_CLASS_IDLE", 0)),
            "ioprio-idle",
            "idle\n",
        );
        let rt = sh(mode, script, set("IOPRIO_CLASS_RT", 0));
        if mode.is_rootless() {
            refused(rt, "ioprio-rt", &["process.ioPriority", "IOPRIO_CLASS_BE"]);
        } else {
            prints(rt, "ioprio-rt", "realtime: prio 0\n");
        }
        let bad = sh(mode, script, set("IOPRIO_CLASS_BE", 8));
        refused(
            bad,
            "ioprio-range",
            &["process.ioPriority", "0 (highest) to 7"],
        );
    }
}

#[test]
fn personality_reaches_the_app() {
    for mode in common::modes() {
        let b = sh(mode, "uname -m; cat /proc/self/personality", |c| {
            c["linux"]["personality"] = json!({"domain": "LINUX32", "flags": ["ADDR_NO_RANDOMIZE"]})
        });
        prints(b, "persona32", "i686\n00040008\n");
        let b = sh(mode, "uname -m", |c| {
            c["linux"]["personality"] = json!({"domain": "LINUX", "flags": ["NO_SUCH_FLAG"]})
        });
        refused(b, "persona-bad", &["linux.personality", "NO_SUCH_FLAG"]);
    }
}

#[test]
fn memory_policy_reaches_the_app() {
    let script = "grep -m1 -o -E '(bind|interleave)[=:][a-z:0-9]*' /proc/self/numa_maps";
    for mode in common::modes() {
        let policy =
            |p: serde_json::Value| move |c: &mut serde_json::Value| c["linux"]["memoryPolicy"] = p;
        let b = sh(
            mode,
            script,
            policy(json!({"mode": "MPOL_BIND", "nodes": "0"})),
        );
        prints(b, "mpol-bind", "bind:0\n");
        let b = sh(
            mode,
            script,
            policy(
                json!({"mode": "MPOL_INTERLEAVE", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]}),
            ),
        );
        prints(b, "mpol-interleave", "interleave=static:0\n");
        let b = sh(mode, script, policy(json!({"mode": "MPOL_BIND"})));
        refused(b, "mpol-nonodes", &["linux.memoryPolicy", "nodes"]);
        let b = sh(
            mode,
            script,
            policy(json!({"mode": "MPOL_BIND", "nodes": "63"})),
        );
        refused(b, "mpol-offline", &["linux.memoryPolicy", "set_mempolicy"]);
    }
}

fn with_time_ns(c: &mut serde_json::Value) {
    c["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "time"}));
}

/// The host's uptime in whole seconds.
fn host_uptime() -> u64 {
    let text = std::fs::read_to_string("/proc/uptime").unwrap();
    text.split('.').next().unwrap().parse().unwrap()
}

#[test]
fn time_offsets_shift_the_apps_clocks_in_a_new_time_namespace() {
    const OFFSET: u64 = 50_000_000;
    for mode in common::modes() {
        let b = sh(
            mode,
            "cut -d. -f1 /proc/uptime; readlink /proc/1/ns/time",
            |c| {
                with_time_ns(c);
                c["linux"]["timeOffsets"] = json!({
                    "boottime": {"secs": OFFSET, "nanosecs": 0},
                    "monotonic": {"secs": 7, "nanosecs": 500}
                });
            },
        );
        let before = host_uptime();
        let out = b.run(&id("timens", mode));
        let after = host_uptime();
        assert_eq!(out.status, 0, "{mode:?}: {out:?}");
        let mut lines = out.stdout.lines();
        let uptime: u64 = lines.next().unwrap().parse().unwrap();
        assert!(
            (before + OFFSET..=after + OFFSET).contains(&uptime),
            "{mode:?}: uptime {uptime}, host {before}..{after}"
        );
        let ours = std::fs::read_link("/proc/self/ns/time").unwrap();
        assert_ne!(
            lines.next().unwrap(),
            ours.to_str().unwrap(),
            "{mode:?}: the application itself (pid 1) in a new time namespace"
        );
        common::assert_nothing_left(mode, b.state_dir());
    }
}

#[test]
fn time_offsets_without_a_time_namespace_or_with_a_bad_clock_are_refused() {
    for mode in common::modes() {
        let b = sh(mode, "true", |c| {
            c["linux"]["timeOffsets"] = json!({"boottime": {"secs": 1, "nanosecs": 0}})
        });
        refused(b, "timens-nons", &["linux.timeOffsets", "time namespace"]);
        let b = sh(mode, "true", |c| {
            with_time_ns(c);
            c["linux"]["timeOffsets"] = json!({"realtime": {"secs": 1, "nanosecs": 0}});
        });
        refused(
            b,
            "timens-clock",
            &["linux.timeOffsets.realtime", "monotonic or boottime"],
        );
    }
}
