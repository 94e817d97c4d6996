//! The lifecycle commands that act through the container's cgroup: pause and resume, update,
//! events, kill --all, delete --force, exec joining it.

use serde_json::{json, Value};

use crate::common::{self, Bundle, Mode};
use crate::support::*;
use crate::{cg_name, finish, host, limited, managed};

/// A created and started container in cgroup `name` whose app loops, printing a tick.
fn started(mode: Mode, test: &str, res: Value) -> (Bundle, String, String) {
    let name = cg_name(test, mode);
    let script = "echo started; while :; do sleep 0.05; done";
    let b = limited(
        Bundle::new(mode).args(&["/bin/sh", "-c", script]),
        &name,
        res,
    );
    let id = format!("{test}-{mode:?}").to_lowercase();
    let c = create(&b, &id, &[]);
    assert_eq!(c.status, 0, "{mode:?}: create: {}", c.stderr);
    let s = nsb(&b, &["start", &id]);
    assert_eq!(s.status, 0, "{mode:?}: start: {}", s.stderr);
    assert!(eventually(|| app_output(&b, &id).contains("started")));
    (b, id, name)
}

#[test]
fn pause_freezes_the_container_and_resume_thaws_it() {
    for mode in common::modes().into_iter().filter(|m| managed(*m)) {
        let (b, id, name) = started(mode, "pause", json!({ "pids": { "limit": 100 } }));
        let p = nsb(&b, &["pause", &id]);
        assert_eq!(p.status, 0, "{mode:?}: pause: {}", p.stderr);
        assert_eq!(status(&b, &id), "paused", "{mode:?}");
        let app = app_pid(&b, &id);
        let cg = host::dir(app, "freezer");
        if host::unified() {
            assert!(host::read(&cg, "cgroup.events").contains("frozen 1"));
        } else {
            assert_eq!(host::read(&cg, "freezer.state"), "FROZEN");
        }
        // Paused: exec is refused unless --ignore-paused, pause again too.
        let e = nsb(&b, &["exec", &id, "true"]);
        assert_eq!(e.status, 125, "{mode:?}: exec on a paused container: {e:?}");
        assert!(e.stderr.contains("is paused"), "{mode:?}: {}", e.stderr);
        let again = nsb(&b, &["pause", &id]);
        assert!(
            again.status != 0 && again.stderr.contains("is paused"),
            "{again:?}"
        );
        let r = nsb(&b, &["resume", &id]);
        assert_eq!(r.status, 0, "{mode:?}: resume: {}", r.stderr);
        assert_eq!(status(&b, &id), "running", "{mode:?}");
        let r2 = nsb(&b, &["resume", &id]);
        assert!(
            r2.status != 0 && r2.stderr.contains("is not paused"),
            "{r2:?}"
        );
        finish(&b, &id, &name);
    }
}

#[test]
fn a_paused_container_is_deleted_with_force() {
    for mode in common::modes().into_iter().filter(|m| managed(*m)) {
        let (b, id, name) = started(mode, "pausedel", json!({ "pids": { "limit": 100 } }));
        assert_eq!(nsb(&b, &["pause", &id]).status, 0);
        let d = nsb(&b, &["delete", &id]);
        assert!(
            d.status != 0 && d.stderr.contains("is paused"),
            "{mode:?}: {d:?}"
        );
        let f = nsb(&b, &["delete", "--force", &id]);
        assert_eq!(f.status, 0, "{mode:?}: delete --force: {}", f.stderr);
        host::assert_no_cgroup(&name, &format!("{mode:?}"));
        common::assert_nothing_left(mode, b.state_dir());
    }
}

#[test]
fn pause_without_a_cgroup_says_so() {
    for mode in common::modes().into_iter().filter(|m| !managed(*m)) {
        let name = cg_name("nocg", mode);
        let b = limited(
            Bundle::new(mode).args(&["/bin/sh", "-c", "echo started; exec sleep 1000"]),
            &name,
            json!({ "pids": { "limit": 100 } }),
        );
        let id = format!("nocg-{mode:?}").to_lowercase();
        assert_eq!(create(&b, &id, &[]).status, 0);
        let p = nsb(&b, &["pause", &id]);
        assert_eq!(p.status, 125, "{mode:?}: {p:?}");
        assert!(p.stderr.contains("has no cgroup"), "{mode:?}: {}", p.stderr);
        let f = nsb(&b, &["delete", "--force", &id]);
        assert_eq!(f.status, 0, "{}", f.stderr);
        common::assert_nothing_left(mode, b.state_dir());
    }
}

#[test]
fn update_writes_new_limits_from_flags_and_from_json() {
    for mode in common::modes().into_iter().filter(|m| managed(*m)) {
        let res = json!({ "memory": { "limit": 67108864 }, "pids": { "limit": 100 } });
        let (b, id, name) = started(mode, "update", res);
        let u = nsb(
            &b,
            &["update", "--memory", "32m", "--pids-limit", "42", &id],
        );
        assert_eq!(u.status, 0, "{mode:?}: update: {}", u.stderr);
        let app = app_pid(&b, &id);
        let (mem, file) = (
            host::dir(app, "memory"),
            if host::unified() {
                "memory.max"
            } else {
                "memory.limit_in_bytes"
            },
        );
        assert_eq!(host::read(&mem, file), "33554432", "{mode:?}");
        assert_eq!(host::read(&host::dir(app, "pids"), "pids.max"), "42");
        let json_file = top(&b).join("res.json");
        std::fs::write(&json_file, r#"{"pids":{"limit":7},"cpu":{"shares":1024}}"#).unwrap();
        let u = nsb(
            &b,
            &["update", "--resources", json_file.to_str().unwrap(), &id],
        );
        assert_eq!(u.status, 0, "{mode:?}: update --resources: {}", u.stderr);
        assert_eq!(host::read(&host::dir(app, "pids"), "pids.max"), "7");
        let bad = nsb(&b, &["update", "--memory", "lots", &id]);
        assert_ne!(bad.status, 0, "{mode:?}: {bad:?}");
        finish(&b, &id, &name);
    }
}

#[test]
fn events_stats_prints_runcs_shape_once() {
    for mode in common::modes().into_iter().filter(|m| managed(*m)) {
        let res = json!({ "memory": { "limit": 67108864 }, "pids": { "limit": 100 } });
        let (b, id, name) = started(mode, "events", res);
        let e = nsb(&b, &["events", "--stats", &id]);
        assert_eq!(e.status, 0, "{mode:?}: events: {}", e.stderr);
        let v: Value = serde_json::from_str(e.stdout.trim()).expect("one JSON object");
        assert_eq!(
            (v["type"].as_str(), v["id"].as_str()),
            (Some("stats"), Some(id.as_str()))
        );
        let d = &v["data"];
        assert!(d["pids"]["current"].as_u64().is_some_and(|n| n >= 1), "{v}");
        assert_eq!(d["pids"]["limit"], 100, "{v}");
        assert_eq!(d["memory"]["usage"]["limit"], 67108864u64, "{v}");
        assert!(
            d["memory"]["usage"]["usage"]
                .as_u64()
                .is_some_and(|n| n > 0),
            "{v}"
        );
        assert!(d["cpu"]["usage"]["total"].as_u64().is_some(), "{v}");
        finish(&b, &id, &name);
    }
}

#[test]
fn events_stream_reports_an_oom_kill() {
    for mode in common::modes().into_iter().filter(|m| managed(*m)) {
        let res = json!({ "memory": { "limit": 16777216 } });
        let (b, id, name) = started(mode, "oom", res);
        let mut cmd = b.nsboot();
        cmd.arg("--root")
            .arg(b.state_dir())
            .args(["events", "--interval", "1h", &id]);
        cmd.stdout(std::process::Stdio::piped());
        let child = cmd.spawn().expect("events");
        std::thread::sleep(std::time::Duration::from_millis(500));
        let hog = "x=$(head -c 67108864 /dev/zero | tr '\\0' a)";
        let x = nsb(&b, &["exec", &id, "/bin/sh", "-c", hog]);
        assert_eq!(x.status, 137, "{mode:?}: the hog was not OOM-killed: {x:?}");
        std::thread::sleep(std::time::Duration::from_millis(500));
        finish(&b, &id, &name);
        let out = child
            .wait_with_output()
            .expect("events ends with the container");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.lines().any(|l| l.contains(r#""type":"oom""#)),
            "{mode:?}: {text}"
        );
    }
}

#[test]
fn kill_all_reaches_every_process_of_the_cgroup() {
    for mode in common::modes().into_iter().filter(|m| managed(*m)) {
        let (b, id, name) = started(mode, "killall", json!({ "pids": { "limit": 100 } }));
        let app = app_pid(&b, &id);
        let k = nsb(&b, &["kill", "--all", &id, "KILL"]);
        assert_eq!(k.status, 0, "{mode:?}: kill --all: {}", k.stderr);
        assert!(
            eventually(|| !alive(app)),
            "{mode:?}: the app survived kill --all"
        );
        wait_status(&b, &id, "stopped");
        let d = nsb(&b, &["delete", &id]);
        assert_eq!(d.status, 0, "{}", d.stderr);
        host::assert_no_cgroup(&name, &format!("{mode:?}"));
        common::assert_nothing_left(mode, b.state_dir());
    }
}

#[test]
fn exec_joins_the_containers_cgroup_and_a_sub_cgroup() {
    for mode in common::modes().into_iter().filter(|m| managed(*m)) {
        let (b, id, name) = started(mode, "execcg", json!({ "pids": { "limit": 100 } }));
        let app = app_pid(&b, &id);
        let x = nsb(&b, &["exec", &id, "cat", "/proc/self/cgroup"]);
        assert_eq!(x.status, 0, "{mode:?}: {x:?}");
        let want = std::fs::read_to_string(format!("/proc/{app}/cgroup")).unwrap();
        assert_eq!(x.stdout, want, "{mode:?}: exec is not in the app's cgroup");
        // A sub-cgroup made on the host, joined with --cgroup.
        let pids_dir = host::dir(app, "pids");
        std::fs::create_dir(pids_dir.join("sub")).unwrap();
        if host::unified() {
            let x = nsb(
                &b,
                &["exec", "--cgroup", "sub", &id, "cat", "/proc/self/cgroup"],
            );
            assert_eq!(x.status, 0, "{mode:?}: {x:?}");
            assert!(
                x.stdout.trim_end().ends_with("/sub"),
                "{mode:?}: {}",
                x.stdout
            );
        } else {
            let x = nsb(
                &b,
                &[
                    "exec",
                    "--cgroup",
                    "pids:sub",
                    &id,
                    "cat",
                    "/proc/self/cgroup",
                ],
            );
            assert_eq!(x.status, 0, "{mode:?}: {x:?}");
            assert!(
                x.stdout
                    .lines()
                    .any(|l| l.contains(":pids:") && l.ends_with("/sub")),
                "{}",
                x.stdout
            );
        }
        let missing = nsb(&b, &["exec", "--cgroup", "nosuch", &id, "true"]);
        assert_eq!(missing.status, 125, "{mode:?}: {missing:?}");
        finish(&b, &id, &name);
    }
}
