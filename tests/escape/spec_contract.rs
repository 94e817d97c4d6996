//! The spec is a contract: every config.json field nsboot does not apply exactly is refused
//! with one line naming its JSON path and exit 125 (never dropped), and values that mean
//! something else to the kernel than to the spec (uid 4294967295 is "unchanged" to setresuid,
//! a NUL ends a C string) are refused rather than run.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{self, Bundle, Mode, Output};

fn id(test: &str, mode: Mode) -> String {
    common::test_id("spec", test, mode)
}

/// Exit 125, nothing on stdout, one stderr line naming each of `names`; nothing left behind.
fn assert_refused(bundle: &Bundle, out: &Output, names: &[&str], ctx: &str) {
    let named = names.iter().all(|n| out.stderr.contains(n));
    assert!(
        out.status == 125 && out.stdout.is_empty() && named && out.stderr.lines().count() == 1,
        "{ctx}: want exit 125 and one stderr line naming {names:?}: {out:?}"
    );
    common::assert_nothing_left(bundle.mode(), bundle.state_dir());
}

/// A case: its name, the edit of the default config, the words the refusal must name.
type Case<'a> = (&'a str, fn(&mut Value), &'a [&'a str]);

/// Runs a default bundle edited by each case's `edit`, in every mode; each must be refused
/// naming the case's words.
fn refuse_all(test: &str, cases: &[Case]) {
    for mode in common::modes() {
        for (name, edit, names) in cases {
            let bundle = Bundle::new(mode)
                .args(&["/bin/sh", "-c", "echo ran; id -u"])
                .edit(edit);
            let out = bundle.run(&id(&format!("{test}-{name}"), mode));
            assert_refused(&bundle, &out, names, &format!("{mode:?} {name}"));
        }
    }
}

fn without_maps(c: &mut Value) {
    let linux = c["linux"].as_object_mut().unwrap();
    linux.remove("uidMappings");
    linux.remove("gidMappings");
}

/// (uid_t)-1 means "leave it unchanged" to setresuid: a container asking for that uid must not
/// keep running as uid 0. (Without explicit mappings: nsboot chooses them, so nothing else
/// stops the value.)
#[test]
fn uid_and_gid_4294967295_are_refused_not_run_as_root() {
    refuse_all(
        "id-max",
        &[
            (
                "uid",
                |c| {
                    without_maps(c);
                    c["process"]["user"]["uid"] = json!(4294967295u32);
                },
                &["process.user.uid", "4294967295"],
            ),
            (
                "gid",
                |c| {
                    without_maps(c);
                    c["process"]["user"]["gid"] = json!(4294967295u32);
                },
                &["process.user.gid", "4294967295"],
            ),
            (
                "extra-gid",
                |c| {
                    without_maps(c);
                    c["process"]["user"]["additionalGids"] = json!([4294967295u32]);
                },
                &["process.user.additionalGids[0]", "4294967295"],
            ),
            (
                "umask",
                |c| c["process"]["user"]["umask"] = json!(0o10022),
                &["process.user.umask"],
            ),
        ],
    );
}

/// A NUL ends the string where the kernel reads it: what is checked is not what is applied.
#[test]
fn nul_bytes_are_refused_wherever_they_reach_a_syscall() {
    refuse_all(
        "nul",
        &[
            (
                "hostname",
                |c| c["hostname"] = json!("box\u{0}evil"),
                &["hostname", "NUL"],
            ),
            (
                "domainname",
                |c| c["domainname"] = json!("d\u{0}x"),
                &["domainname", "NUL"],
            ),
            (
                "cwd",
                |c| c["process"]["cwd"] = json!("/\u{0}/etc"),
                &["process.cwd", "NUL"],
            ),
            (
                "mount-option",
                |c| c["mounts"][1]["options"][3] = json!("size=65536k\u{0},nr_inodes=1"),
                &["mounts[1].options[3]", "NUL"],
            ),
            (
                "mount-dest",
                |c| c["mounts"][1]["destination"] = json!("/dev\u{0}/x"),
                &["mounts[1].destination", "NUL"],
            ),
            (
                "hook-path",
                |c| c["hooks"] = json!({"poststop": [{"path": "/bin/true\u{0}x"}]}),
                &["hooks.poststop[0].path", "NUL"],
            ),
            (
                "annotation-key",
                |c| c["annotations"] = json!({"a\u{0}b": "x"}),
                &["annotations", "NUL"],
            ),
        ],
    );
}

/// `unshare -n sleep` (with -r when rootless) as the mode's user: a process in a network
/// namespace of its own. Returns it once /proc/PID/ns/net is no longer the host's.
fn process_in_another_netns(mode: Mode) -> Child {
    let mut cmd = common::as_user(mode, "unshare");
    if mode.is_rootless() {
        cmd.arg("-r");
    }
    let mut child = cmd
        .args(["-n", "sleep", "60"])
        .stdin(Stdio::null())
        .spawn()
        .expect("unshare");
    let host = std::fs::read_link("/proc/self/ns/net").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let theirs = std::fs::read_link(format!("/proc/{}/ns/net", child.id()));
        if theirs.is_ok_and(|l| l != host) {
            return child;
        }
        assert!(child.try_wait().unwrap().is_none(), "unshare -n ended");
        assert!(Instant::now() < deadline, "unshare -n did not unshare");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn host_interfaces() -> Vec<String> {
    let dev = std::fs::read_to_string("/proc/net/dev").unwrap();
    let mut names: Vec<String> = dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next().map(|n| n.trim().to_string()))
        .collect();
    names.sort();
    names
}

/// A container asked to join another network namespace runs in exactly that one (its
/// interfaces: only the other namespace's loopback), never in the host's. Rootless, the path's
/// user namespace is listed too: a namespace is joined through the user namespace owning it.
#[test]
fn namespace_path_is_joined_never_the_host_netns() {
    let host = host_interfaces();
    assert!(host.len() > 1, "the host has only {host:?}");
    for mode in common::modes() {
        let mut other = process_in_another_netns(mode);
        let path = format!("/proc/{}/ns/net", other.id());
        let user = format!("/proc/{}/ns/user", other.id());
        let bundle = Bundle::new(mode)
            .args(&[
                "/bin/sh",
                "-c",
                "tail -n +3 /proc/net/dev | cut -d: -f1; readlink /proc/self/ns/net",
            ])
            .edit(|c| {
                let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
                let net = ns.iter_mut().find(|n| n["type"] == "network").unwrap();
                net["path"] = json!(path);
                if mode.is_rootless() {
                    let u = ns.iter_mut().find(|n| n["type"] == "user").unwrap();
                    u["path"] = json!(user);
                    let linux = c["linux"].as_object_mut().unwrap();
                    linux.remove("uidMappings");
                    linux.remove("gidMappings");
                }
            });
        let out = bundle.run(&id("netns-path", mode));
        let theirs = std::fs::read_link(&path).unwrap().display().to_string();
        let _ = other.kill();
        let _ = other.wait();
        common::assert_nothing_left(mode, bundle.state_dir());
        let seen: Vec<String> = out.stdout.lines().map(|l| l.trim().to_string()).collect();
        assert_eq!(out.status, 0, "{mode:?}: {out:?}");
        assert_eq!(
            seen,
            ["lo", theirs.as_str()],
            "{mode:?}: not the given netns: {out:?}"
        );
    }
}

/// The spec's `typ` namespace moved to the end of the list, with a path.
fn with_path(c: &mut Value, typ: &str) {
    let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
    ns.retain(|n| n["type"] != typ);
    ns.push(json!({ "type": typ, "path": "/proc/1/ns/x" }));
}

/// Every namespace type with a path that names no namespace, mount by any path (nsboot makes
/// it), and a new time namespace (none is made): refused, not replaced by a fresh namespace or
/// the runtime's own.
#[test]
fn namespace_paths_of_every_type_are_refused() {
    refuse_all(
        "ns",
        &[
            (
                "pid",
                |c| with_path(c, "pid"),
                &["linux.namespaces[5].path"],
            ),
            (
                "ipc",
                |c| with_path(c, "ipc"),
                &["linux.namespaces[5].path"],
            ),
            (
                "uts",
                |c| with_path(c, "uts"),
                &["linux.namespaces[5].path"],
            ),
            (
                "mount",
                |c| with_path(c, "mount"),
                &["linux.namespaces[5].path"],
            ),
            (
                "user",
                |c| with_path(c, "user"),
                &["linux.namespaces[5].path"],
            ),
            (
                "cgroup",
                |c| with_path(c, "cgroup"),
                &["linux.namespaces[6].path"],
            ),
        ],
    );
}

/// Each field nsboot does not apply, set to a real value: refused naming its JSON path.
#[test]
fn every_field_nsboot_does_not_apply_is_refused() {
    refuse_all(
        "unapplied",
        &[
            (
                "apparmor",
                |c| c["process"]["apparmorProfile"] = json!("docker-default"),
                &["process.apparmorProfile"],
            ),
            (
                "selinux",
                |c| c["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0"),
                &["process.selinuxLabel"],
            ),
            (
                "mount-label",
                |c| c["linux"]["mountLabel"] = json!("system_u:object_r:container_file_t:s0"),
                &["linux.mountLabel"],
            ),
            // Applied fields with values the kernel would take otherwise than the spec means.
            (
                "io-priority",
                |c| {
                    c["process"]["ioPriority"] =
                        json!({"class": "IOPRIO_CLASS_IDLE", "priority": 8})
                },
                &["process.ioPriority"],
            ),
            (
                "scheduler",
                |c| c["process"]["scheduler"] = json!({"policy": "SCHED_ISO"}),
                &["process.scheduler"],
            ),
            (
                "cpu-affinity",
                |c| c["process"]["execCPUAffinity"] = json!({"final": "99999"}),
                &["process.execCPUAffinity.final"],
            ),
            (
                "console-size",
                |c| {
                    c["process"]["terminal"] = json!(true);
                    c["process"]["consoleSize"] = json!({"height": 10, "width": 70000});
                },
                &["process.consoleSize"],
            ),
            (
                "personality",
                |c| c["linux"]["personality"] = json!({"domain": "LINUX32", "flags": ["X"]}),
                &["linux.personality"],
            ),
            (
                "intel-rdt",
                |c| c["linux"]["intelRdt"] = json!({"closID": "x"}),
                &["linux.intelRdt"],
            ),
            (
                "memory-policy",
                |c| c["linux"]["memoryPolicy"] = json!({"mode": "MPOL_BIND"}),
                &["linux.memoryPolicy"],
            ),
            (
                "time-offsets",
                |c| c["linux"]["timeOffsets"] = json!({"monotonic": {"secs": 1}}),
                &["linux.timeOffsets"],
            ),
            (
                "net-devices",
                |c| c["linux"]["netDevices"] = json!({"eth9": {}}),
                &["linux.netDevices"],
            ),
            (
                "seccomp-notify-default",
                |c| {
                    c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/run/agent.sock"})
                },
                &["linux.seccomp.defaultAction", "SCMP_ACT_NOTIFY"],
            ),
            (
                "seccomp-notify",
                |c| {
                    c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
                        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]})
                },
                &["linux.seccomp.syscalls[0].action", "SCMP_ACT_NOTIFY"],
            ),
            (
                "rootfs-propagation",
                |c| c["linux"]["rootfsPropagation"] = json!("rshared-please"),
                &["linux.rootfsPropagation"],
            ),
            (
                "mount-idmap",
                |c| {
                    let m = json!({"destination": "/mnt", "type": "bind", "source": "/tmp",
                        "options": ["rbind"], "uidMappings": [{"containerID": 0, "hostID": 1, "size": 1}]});
                    c["mounts"].as_array_mut().unwrap().push(m);
                },
                &["mounts[6].uidMappings"],
            ),
            (
                "bind-ridmap",
                |c| {
                    let m = json!({"destination": "/mnt", "type": "bind", "source": "/tmp",
                        "options": ["rbind", "ridmap"]});
                    c["mounts"].as_array_mut().unwrap().push(m);
                },
                &["mounts[6].options[1]", "ridmap"],
            ),
            (
                "user-name",
                |c| c["process"]["user"]["username"] = json!("root"),
                &["process.user.username"],
            ),
            (
                "vm",
                |c| c["vm"] = json!({"hypervisor": {"path": "/x"}}),
                &["vm"],
            ),
            (
                "windows",
                |c| c["windows"] = json!({"layerFolders": ["x"]}),
                &["windows"],
            ),
            (
                "solaris",
                |c| c["solaris"] = json!({"milestone": "x"}),
                &["solaris"],
            ),
        ],
    );
}

/// The empty values engines always write mean "absent": podman's `resources: {}`, empty
/// apparmorProfile, mountLabel and sysctl run with nothing on stderr.
#[test]
fn empty_values_engines_write_are_absent_not_refused() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode)
            .args(&["/bin/sh", "-c", "echo ok"])
            .edit(|c| {
                c["process"]["apparmorProfile"] = json!("");
                c["process"]["selinuxLabel"] = json!("");
                c["linux"]["mountLabel"] = json!("");
                c["linux"]["sysctl"] = json!({});
                c["linux"]["resources"] = json!({});
                c["linux"]["seccomp"] = Value::Null;
            });
        let out = bundle.run(&id("empty", mode));
        assert_eq!(
            (out.status, out.stdout.as_str(), out.stderr.as_str()),
            (0, "ok\n", ""),
            "{mode:?}"
        );
        common::assert_nothing_left(mode, bundle.state_dir());
    }
}

/// Cgroup resources: runc's and crun's rootless convention (one warning, then run) as an
/// unprivileged caller without a delegated cgroup; applied as root, silently (tests/cgroups
/// checks the limits), and the cgroup removed with the container.
#[test]
fn cgroup_resources_warn_once_rootless_and_are_applied_as_root() {
    for mode in common::modes() {
        let path = format!("/nsboot-test-{}", std::process::id());
        let bundle = Bundle::new(mode)
            .args(&["/bin/sh", "-c", "echo ok"])
            .edit(|c| {
                c["linux"]["resources"] =
                    json!({"pids": {"limit": 2048}, "memory": {"limit": 1 << 30}});
            })
            .edit(move |c| c["linux"]["cgroupsPath"] = json!(path.clone()));
        let out = bundle.run(&id("resources", mode));
        let ctx = format!("{mode:?}");
        let lines: Vec<&str> = out.stderr.lines().collect();
        if mode.is_rootless() {
            assert!(
                out.status == 0
                    && out.stdout == "ok\n"
                    && lines.len() == 1
                    && lines[0].contains("WARN")
                    && lines[0].contains("linux.resources"),
                "{ctx}: want the run and exactly one warning line: {out:?}"
            );
        } else {
            assert!(
                out.status == 0 && out.stdout == "ok\n" && lines.is_empty(),
                "{ctx}: want the run, nothing on stderr: {out:?}"
            );
        }
        common::assert_nothing_left(mode, bundle.state_dir());
    }
}

/// `exec` takes a process of its own: the same fail-open ids are refused there.
#[test]
fn exec_as_uid_4294967295_is_refused() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode)
            .args(&["/bin/sleep", "30"])
            .edit(without_maps);
        let id = id("exec-uid", mode);
        let mut create = bundle.nsboot();
        create.arg("--root").arg(bundle.state_dir()).arg("create");
        create.arg("--bundle").arg(bundle.dir()).arg(&id);
        // The sandbox keeps its stdio: none of it may be a pipe this test waits on.
        let created = create.stdout(Stdio::null()).stderr(Stdio::null()).status();
        assert!(created.is_ok_and(|s| s.success()), "{mode:?}: create");
        let state = |cmd: &str| -> Command {
            let mut c = bundle.nsboot();
            c.arg("--root").arg(bundle.state_dir()).arg(cmd);
            c
        };
        let started = common::output(state("start").arg(&id));
        assert_eq!(started.status, 0, "{mode:?}: start: {started:?}");
        let mut exec = state("exec");
        exec.args(["--user", "4294967295", &id, "/bin/id", "-u"]);
        let out = common::output(&mut exec);
        let mut delete = state("delete");
        delete.args(["--force", &id]);
        let deleted = common::output(&mut delete);
        assert_eq!(deleted.status, 0, "{mode:?}: delete: {deleted:?}");
        let named = out.stderr.contains("process.user.uid") && out.stderr.contains("4294967295");
        assert!(
            out.status == 125 && out.stdout.is_empty() && named && out.stderr.lines().count() == 1,
            "{mode:?}: exec as uid 4294967295: {out:?}"
        );
        common::assert_nothing_left(mode, bundle.state_dir());
    }
}
