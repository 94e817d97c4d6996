//! Resource control: the container's cgroup made where cgroupsPath says, its resources written
//! (v1 here as root, v2 in the VM matrix: cgv2-root, cgv2-delegated), the application in it
//! and the supervisor outside, limits enforced, nothing left after a run, a delete or a
//! failure; an unprivileged caller without a delegated cgroup warns once and runs without.
//! The lifecycle commands that act through the cgroup are in cgroups/commands.rs.

#[path = "cgroups/commands.rs"]
mod commands;
mod common;
#[path = "cgroups/fields.rs"]
mod fields;
#[path = "cgroups/host.rs"]
mod host;
#[path = "lifecycle/support.rs"]
mod support;

use std::path::Path;

use common::{Bundle, Mode};
use serde_json::{json, Value};
use support::*;

/// A cgroup name unique to this test, mode and test process.
pub fn cg_name(test: &str, mode: Mode) -> String {
    format!("nsbt-cg-{test}-{mode:?}-{}", std::process::id()).to_lowercase()
}

/// Whether `mode` gets a cgroup here: root does; an unprivileged caller only in a v2 subtree
/// delegated to it (the parent of its own cgroup writable: cgv2-delegated).
pub fn managed(mode: Mode) -> bool {
    if !mode.is_rootless() {
        return true;
    }
    if !host::unified() || common::is_root() {
        return false;
    }
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let own = own
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or("/");
    let parent = Path::new(host::MOUNT).join(
        Path::new(own)
            .parent()
            .unwrap_or(Path::new("/"))
            .strip_prefix("/")
            .unwrap_or(Path::new("")),
    );
    nix::unistd::access(&parent, nix::unistd::AccessFlags::W_OK).is_ok()
}

/// `b` with a relative cgroupsPath `name` and these resources.
pub fn limited(b: Bundle, name: &str, resources: Value) -> Bundle {
    b.edit(|c| {
        c["linux"]["cgroupsPath"] = json!(name);
        c["linux"]["resources"] = resources;
    })
}

/// The one warning of an unprivileged caller that gets no cgroup.
pub fn assert_one_warning(stderr: &str, ctx: &str) {
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("not applied"))
        .collect();
    assert_eq!(lines.len(), 1, "{ctx}: want one warning line: {stderr}");
    assert!(
        lines[0].contains("linux.resources") && lines[0].contains("without these limits"),
        "{ctx}: {}",
        lines[0]
    );
}

const SLEEP: &[&str] = &["/bin/sh", "-c", "echo started; exec sleep 1000"];

/// Kills, deletes, and checks that nothing is left, the cgroup included.
pub fn finish(b: &Bundle, id: &str, name: &str) {
    let k = nsb(b, &["kill", id, "KILL"]);
    assert_eq!(k.status, 0, "kill: {}", k.stderr);
    wait_status(b, id, "stopped");
    let d = nsb(b, &["delete", id]);
    assert_eq!(d.status, 0, "delete: {}", d.stderr);
    host::assert_no_cgroup(name, &format!("{:?} {id}", b.mode()));
    common::assert_nothing_left(b.mode(), b.state_dir());
}

#[test]
fn limits_are_written_and_the_application_alone_is_in_the_cgroup() {
    for mode in common::modes() {
        let name = cg_name("limits", mode);
        let res = json!({
            "memory": { "limit": 67108864 },
            "pids": { "limit": 50 },
            "cpu": { "shares": 512, "quota": 50000, "period": 100000 }
        });
        let b = limited(Bundle::new(mode).args(SLEEP), &name, res);
        let id = format!("lim-{mode:?}").to_lowercase();
        let c = create(&b, &id, &[]);
        assert_eq!(c.status, 0, "{mode:?}: create: {}", c.stderr);
        let s = nsb(&b, &["start", &id]);
        assert_eq!(s.status, 0, "{mode:?}: start: {}", s.stderr);
        assert!(eventually(|| app_output(&b, &id).contains("started")));
        let app = app_pid(&b, &id);
        assert_eq!(
            state(&b, &id)["pid"].as_i64(),
            Some(app as i64),
            "{mode:?}: state pid"
        );
        let sup = b.supervisor(&id);
        assert_ne!(
            sup, app,
            "{mode:?}: the state names the application as its supervisor"
        );
        let in_it = |pid: i32| {
            host::dirs_of(pid)
                .iter()
                .any(|(_, d)| d.file_name().is_some_and(|n| n == name.as_str()))
        };
        // The VM's delegated environment must be seen as delegated, or nothing here is shown.
        let delegated_vm = std::env::var("NSBOOT_VM_ENV").is_ok_and(|e| e == "cgv2-delegated");
        assert!(
            managed(mode) || !delegated_vm,
            "{mode:?}: no delegated cgroup in cgv2-delegated"
        );
        if !managed(mode) {
            assert_one_warning(&c.stderr, &format!("{mode:?}"));
            assert!(!in_it(app), "{mode:?}: the app is in a cgroup nobody made");
            finish(&b, &id, &name);
            continue;
        }
        assert!(
            in_it(app),
            "{mode:?}: app {app} not in {name}: {:?}",
            host::dirs_of(app)
        );
        assert!(
            !in_it(sup),
            "{mode:?}: the supervisor {sup} is in the container's cgroup"
        );
        let procs = host::read(&host::dir(app, "pids"), "cgroup.procs");
        assert_eq!(procs, app.to_string(), "{mode:?}: cgroup.procs");
        let mem = host::dir(app, "memory");
        let cpu = host::dir(app, "cpu");
        if host::unified() {
            assert_eq!(host::read(&mem, "memory.max"), "67108864");
            assert_eq!(
                host::read(&cpu, "cpu.weight"),
                "20",
                "shares 512 as runc converts them"
            );
            assert_eq!(host::read(&cpu, "cpu.max"), "50000 100000");
        } else {
            assert_eq!(host::read(&mem, "memory.limit_in_bytes"), "67108864");
            assert_eq!(host::read(&cpu, "cpu.shares"), "512");
            assert_eq!(host::read(&cpu, "cpu.cfs_quota_us"), "50000");
            assert_eq!(host::read(&cpu, "cpu.cfs_period_us"), "100000");
        }
        assert_eq!(host::read(&host::dir(app, "pids"), "pids.max"), "50");
        finish(&b, &id, &name);
    }
}

#[test]
fn a_memory_hog_is_killed_at_the_limit() {
    for mode in common::modes() {
        let name = cg_name("hog", mode);
        // 64 MB in a shell variable, under a 16 MB limit.
        let hog = "x=$(head -c 67108864 /dev/zero | tr '\\0' a); echo survived ${#x}";
        let res = json!({ "memory": { "limit": 16777216 } });
        let b = limited(Bundle::new(mode).args(&["/bin/sh", "-c", hog]), &name, res);
        let out = b.run(&format!("hog-{mode:?}").to_lowercase());
        if managed(mode) {
            assert_eq!(
                out.status, 137,
                "{mode:?}: the hog was not OOM-killed: {out:?}"
            );
        } else {
            assert_eq!(out.status, 0, "{mode:?}: {out:?}");
            assert!(out.stdout.contains("survived 67108864"), "{out:?}");
            assert_one_warning(&out.stderr, &format!("{mode:?}"));
        }
        host::assert_no_cgroup(&name, &format!("{mode:?}"));
        common::assert_nothing_left(mode, b.state_dir());
    }
}

#[test]
fn a_fork_bomb_stops_at_the_pids_limit() {
    for mode in common::modes() {
        let name = cg_name("pids", mode);
        // Each started child's count goes to a file with builtins only: the shell that
        // cannot fork any more dies, the outer one reads the count without forking.
        let bomb = "(i=0; while [ $i -lt 30 ]; do sleep 5 & i=$((i+1)); echo $i >/dev/shm/n; done) 2>/dev/null; read n </dev/shm/n; echo started=$n";
        let res = json!({ "pids": { "limit": 10 } });
        let b = limited(Bundle::new(mode).args(&["/bin/sh", "-c", bomb]), &name, res);
        let out = b.run(&format!("pids-{mode:?}").to_lowercase());
        let n: u32 = out
            .stdout
            .trim()
            .strip_prefix("started=")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{mode:?}: {out:?}"));
        if managed(mode) {
            assert!(n < 10, "{mode:?}: {n} children under pids.max 10");
        } else {
            assert_eq!(n, 30, "{mode:?}: {out:?}");
        }
        host::assert_no_cgroup(&name, &format!("{mode:?}"));
        common::assert_nothing_left(mode, b.state_dir());
    }
}

#[test]
fn a_value_the_hierarchy_cannot_take_is_refused_by_name_and_leaves_no_cgroup() {
    for mode in common::modes().into_iter().filter(|m| managed(*m)) {
        let name = cg_name("refused", mode);
        for (res, field) in [
            (
                json!({ "memory": { "swappiness": 200 } }),
                "linux.resources.memory.swappiness",
            ),
            (
                json!({ "network": { "classID": 1048577 } }),
                "linux.resources.network",
            ),
            (
                json!({ "unified": { "memory.nosuch": "1" } }),
                "linux.resources.unified",
            ),
        ] {
            let b = limited(Bundle::new(mode), &name, res.clone());
            let out = b.run(&format!("ref-{mode:?}").to_lowercase());
            assert_eq!(out.status, 125, "{mode:?} {res}: {out:?}");
            let lines: Vec<&str> = out.stderr.lines().collect();
            assert_eq!(lines.len(), 1, "{mode:?}: one line: {out:?}");
            assert!(
                lines[0].contains(field),
                "{mode:?}: {field} not named: {}",
                lines[0]
            );
            host::assert_no_cgroup(&name, &format!("{mode:?} {res}"));
            common::assert_nothing_left(mode, b.state_dir());
        }
    }
}

#[test]
fn a_failed_start_leaves_no_cgroup() {
    for mode in common::modes() {
        let name = cg_name("failed", mode);
        let res = json!({ "pids": { "limit": 20 } });
        let b = limited(Bundle::new(mode).args(&["/nonexistent"]), &name, res);
        let out = b.run(&format!("fail-{mode:?}").to_lowercase());
        assert_eq!(out.status, 127, "{mode:?}: {out:?}");
        host::assert_no_cgroup(&name, &format!("{mode:?}"));
        common::assert_nothing_left(mode, b.state_dir());
    }
}

#[test]
fn without_cgroup_settings_the_application_stays_in_the_callers_cgroup() {
    for mode in common::modes() {
        let b = Bundle::new(mode).args(&["/bin/cat", "/proc/self/cgroup"]);
        let out = b.run(&format!("none-{mode:?}").to_lowercase());
        assert_eq!(out.status, 0, "{mode:?}: {out:?}");
        let mine = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        assert_eq!(
            out.stdout, mine,
            "{mode:?}: the app moved without cgroup settings"
        );
        assert!(!out.stderr.contains("not applied"), "{mode:?}: {out:?}");
        common::assert_nothing_left(mode, b.state_dir());
    }
}

#[test]
fn a_cgroup_namespace_is_rooted_at_the_containers_cgroup() {
    for mode in common::modes().into_iter().filter(|m| managed(*m)) {
        let name = cg_name("cgns", mode);
        let b = limited(
            Bundle::new(mode).args(&["/bin/cat", "/proc/self/cgroup"]),
            &name,
            json!({ "pids": { "limit": 20 } }),
        )
        .edit(|c| {
            c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({ "type": "cgroup" }))
        });
        let out = b.run(&format!("cgns-{mode:?}").to_lowercase());
        assert_eq!(out.status, 0, "{mode:?}: {out:?}");
        for l in out.stdout.lines() {
            assert!(
                l.ends_with(":/"),
                "{mode:?}: not rooted at its cgroup: {}",
                out.stdout
            );
        }
        host::assert_no_cgroup(&name, &format!("{mode:?}"));
        common::assert_nothing_left(mode, b.state_dir());
    }
}

#[test]
fn the_cgroup_mount_shows_the_containers_own_cgroup_read_only() {
    for mode in common::modes().into_iter().filter(|m| managed(*m)) {
        let name = cg_name("view", mode);
        let file = if host::unified() {
            "/sys/fs/cgroup/memory.max"
        } else {
            "/sys/fs/cgroup/memory/memory.limit_in_bytes"
        };
        let script = format!("cat {file}; echo 1 >{file} 2>/dev/null && echo writable; mkdir /sys/fs/cgroup/x 2>/dev/null && echo tmpfs-writable; true");
        let b = limited(
            Bundle::new(mode).args(&["/bin/sh", "-c", &script]),
            &name,
            json!({ "memory": { "limit": 33554432 } }),
        )
        .edit(|c| {
            c["mounts"].as_array_mut().unwrap().push(json!({
                "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                "options": ["nosuid", "noexec", "nodev", "relatime", "ro"] }))
        });
        let out = b.run(&format!("view-{mode:?}").to_lowercase());
        assert_eq!(out.status, 0, "{mode:?}: {out:?}");
        assert_eq!(
            out.stdout, "33554432\n",
            "{mode:?}: not the container's cgroup, or writable: {out:?}"
        );
        host::assert_no_cgroup(&name, &format!("{mode:?}"));
        common::assert_nothing_left(mode, b.state_dir());
    }
}

#[test]
fn a_killed_caller_leaves_no_cgroup() {
    for mode in common::modes().into_iter().filter(|m| managed(*m)) {
        let name = cg_name("killed", mode);
        let b = limited(
            Bundle::new(mode).args(&["/bin/sh", "-c", "echo started; exec sleep 1000"]),
            &name,
            json!({ "pids": { "limit": 20 } }),
        );
        let mut cmd = b.run_cmd(&format!("killed-{mode:?}").to_lowercase());
        cmd.stdout(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("nsboot run");
        let mut out = child.stdout.take().unwrap();
        let mut buf = [0u8; 8];
        let _ = std::io::Read::read(&mut out, &mut buf);
        assert!(
            !host::find_named(&name).is_empty(),
            "{mode:?}: no cgroup while it runs"
        );
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = child.wait();
        host::assert_no_cgroup(&name, &format!("{mode:?}: after the caller's SIGKILL"));
        common::assert_nothing_left(mode, b.state_dir());
    }
}
