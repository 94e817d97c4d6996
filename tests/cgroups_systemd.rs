//! The systemd cgroup driver (`--systemd-cgroup`), in the VM environment `systemd` (systemd as
//! pid 1, nsbt's lingering user manager): the container's cgroup is a transient scope of its
//! own, `prefix-name.scope` in the cgroupsPath's slice, with Delegate=yes and the resources as
//! unit properties and files; the application is in it, the supervisor and the scope's first
//! process are not; delete stops the unit and nothing is left. As root on the system bus and
//! rootless on the user's bus. Elsewhere (no systemd) the tests say so and pass.

mod common;
#[path = "lifecycle/support.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Bundle, Mode, Output};
use serde_json::json;
use support::*;

fn in_systemd_vm() -> bool {
    if std::env::var("NSBOOT_VM_ENV").as_deref() == Ok("systemd") {
        return true;
    }
    eprintln!("not in the VM environment systemd: not checked");
    false
}

/// The user's bus for a rootless mode (the harness gives nsboot a fresh XDG_RUNTIME_DIR).
fn user_bus(mode: Mode) -> Option<String> {
    mode.is_rootless()
        .then(|| format!("unix:path=/run/user/{}/bus", common::user(mode).uid))
}

/// `nsboot --systemd-cgroup --root STATE ARGS` as the bundle's user. Rootless, in a scope of
/// the user's manager (`systemd-run --user --scope`), as conmon is under podman: the
/// application joins its scope through a cgroup.procs the caller opened, which the kernel
/// allows only below a cgroup the user owns that holds both (the harness runs in a root
/// service's cgroup). Elsewhere, as the harness runs it.
fn sd_cmd(b: &Bundle, args: &[&str]) -> Command {
    let base = b.nsboot();
    let mut cmd = Command::new(base.get_program());
    let mut given: Vec<_> = base.get_args().map(|a| a.to_os_string()).collect();
    let vm = std::env::var("NSBOOT_VM_ENV").as_deref() == Ok("systemd");
    if let Some(bus) = user_bus(b.mode()).filter(|_| vm) {
        let at = given
            .iter()
            .position(|a| a == "--")
            .expect("setpriv ... -- nsboot");
        let run = ["systemd-run", "--user", "--scope", "--quiet", "--"];
        given.splice(at + 1..at + 1, run.iter().map(|s| s.into()));
        cmd.env_clear().env("DBUS_SESSION_BUS_ADDRESS", bus);
    }
    cmd.args(given);
    for (k, v) in base.get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    cmd.stdin(std::process::Stdio::null());
    cmd.arg("--systemd-cgroup")
        .arg("--root")
        .arg(b.state_dir())
        .args(args);
    cmd
}

fn sd(b: &Bundle, args: &[&str]) -> Output {
    common::output(&mut sd_cmd(b, args))
}

/// systemctl (--user for a rootless mode, on its manager) `show -p PROP --value UNIT`.
fn show(mode: Mode, unit: &str, prop: &str) -> String {
    let mut cmd = Command::new("systemctl");
    if mode.is_rootless() {
        let u = common::user(mode);
        cmd.arg("--user").arg("-M").arg(format!("{}@", u.name));
    }
    let out = cmd
        .args(["show", "-p", prop, "--value", unit])
        .output()
        .expect("systemctl runs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn procs(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect()
}

fn ppid(pid: i32) -> i32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("PPid:")).unwrap();
    line[5..].trim().parse().unwrap()
}

fn cgroup_of(pid: i32) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or("")
        .to_string()
}

#[test]
fn the_container_is_a_scope_of_its_own_and_delete_stops_it() {
    if !in_systemd_vm() {
        return;
    }
    for mode in common::modes() {
        let name = format!(
            "sd{}{}",
            std::process::id(),
            format!("{mode:?}").to_lowercase()
        );
        let unit = format!("nsbt-{name}.scope");
        let slice = if mode.is_rootless() {
            "user.slice"
        } else {
            "system.slice"
        };
        let b = Bundle::new(mode)
            .args(&["/bin/sh", "-c", "echo started; exec sleep 1000"])
            .edit(|c| {
                c["linux"]["cgroupsPath"] = json!(format!("{slice}:nsbt:{name}"));
                c["linux"]["resources"] =
                    json!({ "memory": { "limit": 67108864 }, "pids": { "limit": 20 } });
            });
        let id = format!("sd-{name}");
        let out = run_to_file(&b, &id, {
            let mut c = sd_cmd(&b, &["create", "--bundle"]);
            c.arg(b.dir()).arg(&id);
            c
        });
        assert_eq!(out.status, 0, "{mode:?}: create: {}", out.stderr);
        let ctx = format!("{mode:?} {unit}");
        assert_eq!(show(mode, &unit, "ActiveState"), "active", "{ctx}");
        assert_eq!(show(mode, &unit, "Delegate"), "yes", "{ctx}");
        assert_eq!(show(mode, &unit, "MemoryMax"), "67108864", "{ctx}");
        assert_eq!(show(mode, &unit, "TasksMax"), "20", "{ctx}");
        let cg = show(mode, &unit, "ControlGroup");
        assert!(cg.ends_with(&format!("/{slice}/{unit}")), "{ctx}: {cg}");
        let dir = PathBuf::from("/sys/fs/cgroup").join(cg.trim_start_matches('/'));
        let mem = std::fs::read_to_string(dir.join("memory.max")).unwrap_or_default();
        assert_eq!(mem.trim(), "67108864", "{ctx}: memory.max");
        let app = app_pid(&b, &id);
        // The scope's first process leaves once the application is in: only it remains.
        assert!(
            eventually(|| procs(&dir) == [app]),
            "{ctx}: {:?} != [{app}]",
            procs(&dir)
        );
        let sup = ppid(app);
        assert!(
            !cgroup_of(sup).ends_with(&unit),
            "{ctx}: the supervisor is in the scope"
        );
        let s = sd(&b, &["start", &id]);
        assert_eq!(s.status, 0, "{ctx}: start: {}", s.stderr);
        // update: the unit's properties (which survive systemd's reloads) and the files.
        let u = sd(
            &b,
            &["update", "--memory", "33554432", "--pids-limit", "30", &id],
        );
        assert_eq!(u.status, 0, "{ctx}: update: {}", u.stderr);
        assert_eq!(show(mode, &unit, "MemoryMax"), "33554432", "{ctx}");
        assert_eq!(show(mode, &unit, "TasksMax"), "30", "{ctx}");
        let mem = std::fs::read_to_string(dir.join("memory.max")).unwrap_or_default();
        assert_eq!(mem.trim(), "33554432", "{ctx}: memory.max after update");
        let pids = std::fs::read_to_string(dir.join("pids.max")).unwrap_or_default();
        assert_eq!(pids.trim(), "30", "{ctx}: pids.max after update");
        // pause/resume: the scope's own cgroup.freeze (a delegated scope's file is ours).
        let frozen = || {
            let ev = std::fs::read_to_string(dir.join("cgroup.events")).unwrap_or_default();
            ev.lines().any(|l| l == "frozen 1")
        };
        let p = sd(&b, &["pause", &id]);
        assert_eq!(p.status, 0, "{ctx}: pause: {}", p.stderr);
        assert!(eventually(frozen), "{ctx}: not frozen after pause");
        assert_eq!(status(&b, &id), "paused", "{ctx}");
        let r = sd(&b, &["resume", &id]);
        assert_eq!(r.status, 0, "{ctx}: resume: {}", r.stderr);
        assert!(eventually(|| !frozen()), "{ctx}: still frozen after resume");
        let k = sd(&b, &["kill", &id, "KILL"]);
        assert_eq!(k.status, 0, "{ctx}: kill: {}", k.stderr);
        wait_status(&b, &id, "stopped");
        let d = sd(&b, &["delete", &id]);
        assert_eq!(d.status, 0, "{ctx}: delete: {}", d.stderr);
        assert!(!dir.exists(), "{ctx}: {} is left", dir.display());
        assert_ne!(
            show(mode, &unit, "ActiveState"),
            "active",
            "{ctx}: still active"
        );
        common::assert_nothing_left(mode, b.state_dir());
    }
}

#[test]
fn a_run_in_a_scope_ends_with_the_unit_gone() {
    if !in_systemd_vm() {
        return;
    }
    for mode in common::modes() {
        let name = format!(
            "run{}{}",
            std::process::id(),
            format!("{mode:?}").to_lowercase()
        );
        let unit = format!("nsbt-{name}.scope");
        let b = Bundle::new(mode)
            .args(&["/bin/sh", "-c", "cat /proc/self/cgroup"])
            .edit(|c| c["linux"]["cgroupsPath"] = json!(format!(":nsbt:{name}")));
        let mut cmd = sd_cmd(&b, &["run", "--bundle"]);
        cmd.arg(b.dir()).arg(format!("sd-{name}"));
        let out = common::output(&mut cmd);
        assert_eq!(out.status, 0, "{mode:?}: {out:?}");
        // Its own cgroup: the root of its cgroup namespace, or the scope without one.
        let own = out.stdout.trim_end();
        assert!(own == "0::/" || own.ends_with(&unit), "{mode:?}: {own}");
        assert_ne!(
            show(mode, &unit, "ActiveState"),
            "active",
            "{mode:?}: {unit}"
        );
        common::assert_nothing_left(mode, b.state_dir());
    }
}

/// A killed `run`: its supervisor kills the application, the emptied scope stops (systemd's
/// own rule for scopes; the supervisor's removal of the directory is the cgroupfs driver's
/// part) and no unit, cgroup or process is left.
#[test]
fn a_killed_run_leaves_no_scope() {
    if !in_systemd_vm() {
        return;
    }
    for mode in common::modes() {
        let name = format!(
            "killed{}{}",
            std::process::id(),
            format!("{mode:?}").to_lowercase()
        );
        let unit = format!("nsbt-{name}.scope");
        let b = Bundle::new(mode)
            .args(&["/bin/sh", "-c", "echo started; exec sleep 1000"])
            .edit(|c| {
                c["linux"]["cgroupsPath"] = json!(format!(":nsbt:{name}"));
                c["linux"]["resources"] = json!({ "pids": { "limit": 20 } });
            });
        let mut cmd = sd_cmd(&b, &["run", "--bundle"]);
        cmd.arg(b.dir()).arg(format!("sd-{name}"));
        cmd.stdout(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("nsboot run");
        let mut out = child.stdout.take().unwrap();
        let mut buf = [0u8; 8];
        let _ = std::io::Read::read(&mut out, &mut buf);
        let ctx = format!("{mode:?} {unit}");
        assert_eq!(
            show(mode, &unit, "ActiveState"),
            "active",
            "{ctx}: while it runs"
        );
        let cg = show(mode, &unit, "ControlGroup");
        let dir = PathBuf::from("/sys/fs/cgroup").join(cg.trim_start_matches('/'));
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = child.wait();
        assert!(
            eventually(|| show(mode, &unit, "ActiveState") != "active"),
            "{ctx}: still active after the caller's SIGKILL"
        );
        assert!(
            eventually(|| !dir.exists()),
            "{ctx}: {} is left",
            dir.display()
        );
        common::assert_nothing_left(mode, b.state_dir());
    }
}

#[test]
fn a_cgroups_path_systemd_cannot_take_is_refused() {
    if !in_systemd_vm() {
        return;
    }
    let b = Bundle::new(Mode::Root)
        .args(&["true"])
        .edit(|c| c["linux"]["cgroupsPath"] = json!("/not/a/slice/triple"));
    let out = sd(
        &b,
        &["run", "--bundle", &b.dir().display().to_string(), "sd-bad"],
    );
    assert!(
        out.status == 125
            && out.stderr.lines().count() == 1
            && out.stderr.contains("slice:prefix:name"),
        "{out:?}"
    );
    common::assert_nothing_left(Mode::Root, b.state_dir());
}

#[test]
fn on_cgroup_v1_the_systemd_driver_is_refused() {
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        eprintln!("a unified hierarchy: not checked");
        return;
    }
    for mode in common::modes() {
        let b = Bundle::new(mode)
            .args(&["true"])
            .edit(|c| c["linux"]["cgroupsPath"] = json!("system.slice:nsbt:v1"));
        let out = sd(
            &b,
            &["run", "--bundle", &b.dir().display().to_string(), "sd-v1"],
        );
        assert!(
            out.status == 125 && out.stderr.contains("unified hierarchy") && out.stdout.is_empty(),
            "{mode:?}: {out:?}"
        );
        common::assert_nothing_left(mode, b.state_dir());
    }
}
