//! `linux.namespaces`: a type listed with a path is joined (exactly that namespace, never the
//! host's), listed without one is new, not listed is the caller's; `exec` lands in the same
//! ones; a path of the wrong type, a dead one or no namespace at all is refused with one line.
//! Rootless joins go through a user namespace the test user owns (`unshare --user`).

mod common;
#[path = "namespaces/mount.rs"]
mod mount;
#[path = "lifecycle/support.rs"]
mod support;

use std::process::{Child, Command, Stdio};

use common::{Bundle, Mode};
use serde_json::{json, Value};
use support::{create, eventually, nsb};

/// A process holding namespaces of its own (net, ipc, uts, cgroup, or those `unshare` flags
/// given; and a user namespace mapping its owner to root when rootless or asked), as a donor
/// for paths.
struct Donor {
    child: Child,
    pid: u32,
}

impl Donor {
    fn new(mode: Mode, user: bool) -> Donor {
        Donor::of(mode, &["--net", "--ipc", "--uts", "--cgroup"], user)
    }

    fn of(mode: Mode, flags: &[&str], user: bool) -> Donor {
        let mut args = flags.to_vec();
        if user || mode.is_rootless() {
            args.extend(["--user", "--map-root-user"]);
        }
        args.extend(["sleep", "1000"]);
        let mut cmd = if mode.is_rootless() {
            common::as_user(mode, "unshare")
        } else {
            Command::new("unshare")
        };
        let child = cmd
            .args(&args)
            .stdin(Stdio::null())
            .spawn()
            .expect("start unshare");
        let pid = child.id();
        // unshare execs sleep once its namespaces exist.
        let ready = eventually(|| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c == "sleep\n")
        });
        assert!(ready, "unshare {args:?} did not start");
        Donor { child, pid }
    }

    fn path(&self, file: &str) -> String {
        format!("/proc/{}/ns/{file}", self.pid)
    }

    fn ns(&self, file: &str) -> String {
        ns_of(&self.pid.to_string(), file)
    }
}

impl Drop for Donor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let status = self.child.wait().expect("reap the donor");
        assert!(!status.success(), "the donor ended before it was killed");
    }
}

fn ns_of(pid: &str, file: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{file}"))
        .unwrap_or_else(|e| panic!("readlink /proc/{pid}/ns/{file}: {e}"))
        .display()
        .to_string()
}

const PRINT_NS: &str = "for n in net ipc uts user cgroup; do readlink /proc/self/ns/$n; done";

/// The spec's `type` entry gets `path`; a user namespace joined by path brings its maps.
fn join(c: &mut Value, typ: &str, path: &str) {
    let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
    match ns.iter_mut().find(|n| n["type"] == typ) {
        Some(entry) => entry["path"] = json!(path),
        None => ns.push(json!({"type": typ, "path": path})),
    }
    if typ == "user" {
        let linux = c["linux"].as_object_mut().unwrap();
        linux.remove("uidMappings");
        linux.remove("gidMappings");
    }
}

/// Joins the donor's net, ipc, uts and cgroup (and its user namespace when it has one of its own).
fn joining(mode: Mode, d: &Donor, args: &[&str]) -> Bundle {
    let own_user = mode.is_rootless();
    Bundle::new(mode).args(args).edit(|c| {
        for (typ, file) in [
            ("network", "net"),
            ("ipc", "ipc"),
            ("uts", "uts"),
            ("cgroup", "cgroup"),
        ] {
            join(c, typ, &d.path(file));
        }
        if own_user {
            join(c, "user", &d.path("user"));
        }
    })
}

#[test]
fn joined_namespaces_are_exactly_the_given_ones_never_the_hosts() {
    for mode in common::modes() {
        let ctx = format!("{mode:?}");
        let d = Donor::new(mode, false);
        let script = format!(
            "{PRINT_NS}; hostname; ls /sys/class/net; grep -c ' /dev/mqueue ' /proc/self/mountinfo"
        );
        let b = joining(mode, &d, &["/bin/sh", "-c", &script]);
        let out = b.run(&format!("nsj-{}", mode as u8));
        assert_eq!(out.status, 0, "{ctx}: {out:?}");
        common::assert_nothing_left(mode, b.state_dir());
        let lines: Vec<&str> = out.stdout.lines().collect();
        for (i, file) in ["net", "ipc", "uts"].iter().enumerate() {
            assert_eq!(lines[i], d.ns(file), "{ctx}: {file}: {out:?}");
            assert_ne!(lines[i], ns_of("self", file), "{ctx}: the host's {file}");
        }
        if mode.is_rootless() {
            assert_eq!(lines[3], d.ns("user"), "{ctx}: user: {out:?}");
        } else {
            // A user namespace of its own still, as real root (identity-mapped).
            assert_ne!(lines[3], ns_of("self", "user"), "{ctx}: {out:?}");
        }
        // The spec's hostname, set in the joined namespace; its sysfs and mqueue are the
        // joined namespaces' own (only the donor's loopback), not binds of the host's.
        assert_eq!(lines[4], d.ns("cgroup"), "{ctx}: cgroup: {out:?}");
        assert_eq!(&lines[5..], ["nsboot", "lo", "1"], "{ctx}: {out:?}");
        assert!(!out.stderr.contains("WARN"), "{ctx}: {out:?}");
    }
}

/// A network namespace joined by path that is not the caller's is the container's own for
/// net.* sysctls (a pod's containers joining its sandbox's), as runc checks it; the host's
/// value is untouched.
#[test]
fn sysctls_apply_in_namespaces_joined_by_path() {
    const KEY: &str = "/proc/sys/net/ipv4/ip_unprivileged_port_start";
    for mode in common::modes() {
        let ctx = format!("{mode:?}");
        let host = std::fs::read_to_string(KEY).unwrap();
        let d = Donor::new(mode, false);
        let b = joining(mode, &d, &["cat", KEY]).edit(|c| {
            c["linux"]["sysctl"] = json!({"net.ipv4.ip_unprivileged_port_start": "123"});
        });
        let out = b.run("nssysctl");
        assert_eq!(out.status, 0, "{ctx}: {out:?}");
        assert_eq!(out.stdout, "123\n", "{ctx}: {out:?}");
        assert_eq!(
            std::fs::read_to_string(KEY).unwrap(),
            host,
            "{ctx}: the host's changed"
        );
        common::assert_nothing_left(mode, b.state_dir());
    }
}

#[test]
fn exec_lands_in_the_joined_namespaces() {
    for mode in common::modes() {
        let ctx = format!("{mode:?}");
        let d = Donor::new(mode, false);
        let b = joining(mode, &d, &["sleep", "1000"]);
        let c = create(&b, "nsx", &[]);
        assert_eq!(c.status, 0, "{ctx}: create: {}", c.stderr);
        let s = nsb(&b, &["start", "nsx"]);
        assert_eq!(s.status, 0, "{ctx}: start: {}", s.stderr);
        let out = nsb(&b, &["exec", "nsx", "sh", "-c", PRINT_NS]);
        let del = nsb(&b, &["delete", "--force", "nsx"]);
        assert_eq!(out.status, 0, "{ctx}: exec: {out:?}");
        assert_eq!(del.status, 0, "{ctx}: delete: {del:?}");
        common::assert_nothing_left(mode, b.state_dir());
        let lines: Vec<&str> = out.stdout.lines().collect();
        for (i, file) in ["net", "ipc", "uts", "user", "cgroup"].iter().enumerate() {
            if *file != "user" {
                assert_eq!(lines[i], d.ns(file), "{ctx}: {file}: {out:?}");
            }
        }
    }
}

/// One line, 125, naming the field and the path; nothing left behind.
fn assert_refused(b: &Bundle, id: &str, want: &[&str], ctx: &str) {
    let out = b.run(id);
    assert_eq!(out.status, 125, "{ctx}: {out:?}");
    assert_eq!(out.stderr.trim().lines().count(), 1, "{ctx}: {out:?}");
    for w in want {
        assert!(out.stderr.contains(w), "{ctx}: no {w:?} in {out:?}");
    }
    common::assert_nothing_left(b.mode(), b.state_dir());
}

#[test]
fn a_path_of_the_wrong_type_a_dead_one_or_no_namespace_is_refused_in_one_line() {
    for mode in common::modes() {
        let d = Donor::new(mode, false);
        let mut gone = Command::new("true").spawn().unwrap();
        let dead = format!("/proc/{}/ns/net", gone.id());
        assert!(gone.wait().unwrap().success());
        let other = Bundle::new(mode);
        let config = other.dir().join("config.json");
        let config = config.to_str().unwrap().to_string();
        // A FIFO nobody writes to: a blocking open would hang nsboot.
        let fifo = other.dir().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        let fifo = fifo.to_str().unwrap().to_string();
        let cases = [
            (d.path("ipc"), "is of type ipc, not network"),
            (dead, "No such file or directory"),
            (config, "is no namespace file, not network"),
            (fifo, "is no namespace file, not network"),
        ];
        for (i, (path, why)) in cases.iter().enumerate() {
            let ctx = format!("{mode:?}: {path}");
            let b = Bundle::new(mode).edit(|c| join(c, "network", path));
            let field = "linux.namespaces[5].path";
            assert_refused(&b, &format!("nsw{i}"), &[field, path, why], &ctx);
        }
    }
}

#[test]
fn namespaces_not_listed_are_the_callers() {
    for mode in common::modes() {
        let ctx = format!("{mode:?}");
        let b = Bundle::new(mode)
            .args(&["/bin/sh", "-c", PRINT_NS])
            .edit(|c| {
                let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
                ns.retain(|n| !["network", "ipc", "uts"].contains(&n["type"].as_str().unwrap()));
                c.as_object_mut().unwrap().remove("hostname");
                if mode.is_rootless() {
                    // Only a caller with power over its ipc namespace can show its mqueue
                    // (runc alike); engines bind the host's /dev/mqueue instead.
                    let mounts = c["mounts"].as_array_mut().unwrap();
                    mounts.retain(|m| m["type"] != "mqueue");
                }
            });
        let out = b.run(&format!("nsi-{}", mode as u8));
        assert_eq!(out.status, 0, "{ctx}: {out:?}");
        common::assert_nothing_left(mode, b.state_dir());
        let lines: Vec<&str> = out.stdout.lines().collect();
        for (i, file) in ["net", "ipc", "uts"].iter().enumerate() {
            assert_eq!(lines[i], ns_of("self", file), "{ctx}: {file}: {out:?}");
        }
        assert_ne!(lines[3], ns_of("self", "user"), "{ctx}: {out:?}");
    }
}

/// A run's id, the edit of the default config, a word of its refusal.
type Edit = (&'static str, fn(&mut Value), &'static str);

#[test]
fn mount_stays_new() {
    let mode = common::modes()[0];
    let edits: [Edit; 1] = [("nsm0", |c| drop_ns(c, "mount"), "no mount namespace")];
    for (id, edit, want) in edits {
        let b = Bundle::new(mode).edit(edit);
        assert_refused(&b, id, &[want], &format!("{mode:?}: {id}"));
    }
}

/// No pid namespace listed (`--pid host`, Kubernetes' hostPID): the application is in the
/// caller's, its /proc shows it, the state's pid is its pid there; what it leaves running
/// when it ends dies with `run`, as a pid namespace's end would make it, and `delete` ends a
/// created one. Nothing is left.
#[test]
fn a_spec_without_a_pid_namespace_shares_the_callers() {
    let host = ns_of("self", "pid");
    for mode in common::modes() {
        let ctx = format!("{mode:?}");
        // Host processes are in sight, not in reach: reading pid 1's environment takes
        // ptrace rights, which capabilities of the sandbox's user namespace do not give.
        let script = "readlink /proc/self/ns/pid; sleep 1000 >/dev/null 2>&1 & echo $!; \
                      cat /proc/1/environ >/dev/null 2>&1 && echo pid-1-environ-read; exit 3";
        let b = Bundle::new(mode)
            .args(&["/bin/sh", "-c", script])
            .edit(|c| drop_ns(c, "pid"));
        let out = b.run(&format!("nsh-{}", mode as u8));
        assert_eq!(out.status, 3, "{ctx}: run: {out:?}");
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(lines.first(), Some(&host.as_str()), "{ctx}: run: {out:?}");
        assert_eq!(lines.len(), 2, "{ctx}: run: {out:?}");
        let bg: i32 = lines[1]
            .parse()
            .unwrap_or_else(|_| panic!("{ctx}: {out:?}"));
        let alive = std::fs::read_to_string(format!("/proc/{bg}/cmdline"))
            .is_ok_and(|c| c.contains("1000"));
        assert!(!alive, "{ctx}: the application's sleep ({bg}) outlived run");
        common::assert_nothing_left(mode, b.state_dir());

        // A killed caller: its supervisor ends the application and what it started.
        let b = b.args(&["/bin/sh", "-c", "sleep 1093 & exec sleep 1094"]);
        let id = format!("nshk-{}", mode as u8);
        let mut run = b.run_cmd(&id);
        let mut caller = run
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let sleeps = || {
            let mut found = Vec::new();
            for e in std::fs::read_dir("/proc").unwrap().flatten() {
                let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
                if cmd == b"sleep\x001093\x00" || cmd == b"sleep\x001094\x00" {
                    found.push(e.file_name().to_string_lossy().into_owned());
                }
            }
            found
        };
        assert!(
            eventually(|| sleeps().len() == 2),
            "{ctx}: the sleeps did not start"
        );
        caller.kill().unwrap();
        let ended = caller.wait().unwrap();
        assert!(!ended.success(), "{ctx}: the killed run ended with {ended}");
        assert!(
            eventually(|| sleeps().is_empty()),
            "{ctx}: left after a killed run: {:?}",
            sleeps()
        );
        common::assert_nothing_left(mode, b.state_dir());

        // create: the state's pid is the application's here; delete ends what it started.
        let b = b.args(&["/bin/sh", "-c", "sleep 1093 & exec sleep 1094"]);
        let id = format!("nshc-{}", mode as u8);
        let c = create(&b, &id, &[]);
        assert_eq!(c.status, 0, "{ctx}: create: {}", c.stderr);
        let pid = support::state(&b, &id)["pid"].as_i64().unwrap();
        assert_eq!(
            ns_of(&pid.to_string(), "pid"),
            host,
            "{ctx}: state pid {pid}"
        );
        let started = nsb(&b, &["start", &id]);
        assert_eq!(started.status, 0, "{ctx}: start: {started:?}");
        assert!(
            eventually(|| sleeps().len() == 2),
            "{ctx}: the sleeps did not start"
        );
        let del = nsb(&b, &["delete", "--force", &id]);
        assert_eq!(del.status, 0, "{ctx}: delete: {del:?}");
        assert!(
            eventually(|| sleeps().is_empty()),
            "{ctx}: left after delete: {:?}",
            sleeps()
        );
        common::assert_nothing_left(mode, b.state_dir());
    }
}

/// Rootless podman's `--pid host`: no proc mount, the host's /proc bound onto /proc instead
/// (a procfs may be bound there, as runc allows).
#[test]
fn the_hosts_proc_bound_onto_proc_shows_the_callers_pid_namespace() {
    let host = ns_of("self", "pid");
    for mode in common::modes() {
        let b = Bundle::new(mode)
            .args(&["/bin/sh", "-c", "readlink /proc/self/ns/pid"])
            .edit(|c| {
                drop_ns(c, "pid");
                let mounts = c["mounts"].as_array_mut().unwrap();
                mounts.retain(|m| m["type"] != "proc");
                mounts.push(
                    json!({"destination": "/proc", "type": "bind", "source": "/proc",
                    "options": ["rbind", "nosuid", "noexec", "nodev"]}),
                );
            });
        let out = b.run(&format!("nshb-{}", mode as u8));
        assert_eq!(out.status, 0, "{mode:?}: {out:?}");
        assert_eq!(out.stdout.trim(), host, "{mode:?}: {out:?}");
        common::assert_nothing_left(mode, b.state_dir());
    }
}

fn drop_ns(c: &mut Value, typ: &str) {
    let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
    ns.retain(|n| n["type"] != typ);
}

/// A pid namespace of another's (as `--pid container:X` gives): the application is born in it
/// (the donor's init is its pid 1), its /proc shows it, by `run` and by `create` (whose
/// application is the caller's child); nothing is left.
#[test]
fn a_pid_namespace_joined_by_path_is_the_applications_with_its_proc() {
    for mode in common::modes() {
        let ctx = format!("{mode:?}");
        let mut args = vec!["--pid", "--fork", "--kill-child"];
        if mode.is_rootless() {
            args.extend(["--user", "--map-root-user"]);
        }
        args.extend(["sleep", "1000"]);
        let mut cmd = match mode.is_rootless() {
            true => common::as_user(mode, "unshare"),
            false => Command::new("unshare"),
        };
        let unshare = cmd.args(&args).stdin(Stdio::null()).spawn().unwrap();
        // Killed even when an assertion below fails (its child dies with it: --kill-child).
        let mut unshare = KillOnDrop(unshare);
        let parent = unshare.0.id();
        let mut init = 0;
        assert!(
            eventually(|| {
                init = common::children_of(parent).first().copied().unwrap_or(0);
                init > 0
                    && std::fs::read_to_string(format!("/proc/{init}/comm"))
                        .is_ok_and(|c| c == "sleep\n")
            }),
            "{ctx}: unshare {args:?} did not start"
        );
        let path = format!("/proc/{init}/ns/pid");
        let theirs = ns_of(&init.to_string(), "pid");
        let script = "readlink /proc/self/ns/pid; cat /proc/1/comm";
        let b = Bundle::new(mode)
            .args(&["/bin/sh", "-c", script])
            .edit(|c| {
                join(c, "pid", &path);
                if mode.is_rootless() {
                    // The caller may join only what its user namespace owns, as runc's.
                    join(c, "user", &format!("/proc/{init}/ns/user"));
                }
            });
        let out = b.run(&format!("nsp-{}", mode as u8));
        assert_eq!(out.status, 0, "{ctx}: run: {out:?}");
        assert_eq!(
            out.stdout,
            format!("{theirs}\nsleep\n"),
            "{ctx}: run: {out:?}"
        );
        common::assert_nothing_left(mode, b.state_dir());
        let id = format!("nspc-{}", mode as u8);
        let mut create = b.nsboot();
        create.arg("--root").arg(b.state_dir());
        create.args(["create", "--bundle"]).arg(b.dir()).arg(&id);
        let out_file = b.dir().parent().unwrap().join("nspc.out");
        let file = std::fs::File::create(&out_file).unwrap();
        create.stdout(file.try_clone().unwrap()).stderr(file);
        let created = create.status().unwrap();
        assert!(
            created.success(),
            "{ctx}: create: {}",
            std::fs::read_to_string(&out_file).unwrap_or_default()
        );
        let mut start = b.nsboot();
        start.arg("--root").arg(b.state_dir()).args(["start", &id]);
        assert!(start.status().unwrap().success(), "{ctx}: start");
        let shown = || std::fs::read_to_string(&out_file).unwrap_or_default();
        assert!(
            eventually(|| shown().contains("sleep\n")),
            "{ctx}: create: {}",
            shown()
        );
        assert_eq!(shown(), format!("{theirs}\nsleep\n"), "{ctx}: create");
        let mut del = b.nsboot();
        del.arg("--root")
            .arg(b.state_dir())
            .args(["delete", "--force", &id]);
        let del = del.output().unwrap();
        assert!(del.status.success(), "{ctx}: delete: {del:?}");
        common::assert_nothing_left(mode, b.state_dir());
        let _ = unshare.0.kill();
        let ended = unshare.0.wait().unwrap();
        assert!(
            !ended.success(),
            "{ctx}: the donor ended before it was killed"
        );
    }
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_user_namespace_joined_by_path_brings_its_maps_and_the_specs_must_agree() {
    for mode in common::modes() {
        let ctx = format!("{mode:?}");
        let d = Donor::new(mode, true);
        let uid = common::user(mode).uid;
        let b = Bundle::new(mode)
            .args(&[
                "/bin/sh",
                "-c",
                "readlink /proc/self/ns/user; cat /proc/self/uid_map; id -u",
            ])
            .edit(|c| {
                join(c, "user", &d.path("user"));
                join(c, "network", &d.path("net"));
            });
        let out = b.run(&format!("nsu-{}", mode as u8));
        assert_eq!(out.status, 0, "{ctx}: {out:?}");
        common::assert_nothing_left(mode, b.state_dir());
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(lines[0], d.ns("user"), "{ctx}: {out:?}");
        let map: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(map, ["0", &uid.to_string(), "1"], "{ctx}: {out:?}");
        assert_eq!(lines[2], "0", "{ctx}: {out:?}");
        // The spec's maps must agree with the namespace's.
        let maps = |host: u32| {
            move |c: &mut Value| {
                c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": host, "size": 1}]);
            }
        };
        let agree = Bundle::new(mode).edit(|c| {
            join(c, "user", &d.path("user"));
            maps(uid)(c);
        });
        let out = agree.run(&format!("nsa-{}", mode as u8));
        assert_eq!(out.status, 0, "{ctx}: agreeing maps: {out:?}");
        common::assert_nothing_left(mode, agree.state_dir());
        let disagree = Bundle::new(mode).edit(|c| {
            join(c, "user", &d.path("user"));
            maps(uid + 1)(c);
        });
        let want = ["linux.uidMappings", "remove uidMappings or make them agree"];
        assert_refused(&disagree, &format!("nsd-{}", mode as u8), &want, &ctx);
    }
}

#[test]
fn rootless_join_of_a_namespace_owned_elsewhere_is_refused_with_the_fix() {
    for mode in common::rootless_modes() {
        let d = Donor::new(mode, true);
        let b = Bundle::new(mode).edit(|c| join(c, "network", &d.path("net")));
        let want = [
            "linux.namespaces[5].path",
            "Operation not permitted",
            "list that user namespace by path too",
        ];
        assert_refused(
            &b,
            &format!("nse-{}", mode as u8),
            &want,
            &format!("{mode:?}"),
        );
    }
}

/// The donor's time namespace is named by time_for_children: kernels before 6.2 move the
/// unsharing process itself into it only at its next fork, not when it execs `sleep`.
#[test]
fn a_time_namespace_joined_by_path_gives_its_clocks_to_run_and_exec() {
    for mode in common::modes() {
        let ctx = format!("{mode:?}");
        let mut args = vec!["--time", "--boottime", "1000000"];
        if mode.is_rootless() {
            args.extend(["--user", "--map-root-user"]);
        }
        args.extend(["sleep", "1000"]);
        let mut cmd = if mode.is_rootless() {
            common::as_user(mode, "unshare")
        } else {
            Command::new("unshare")
        };
        let child = cmd.args(&args).stdin(Stdio::null()).spawn().unwrap();
        let pid = child.id();
        let ready = eventually(|| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c == "sleep\n")
        });
        let d = Donor { child, pid };
        assert!(ready, "{ctx}: unshare --time did not start");
        let b = Bundle::new(mode).args(&["sleep", "1000"]).edit(|c| {
            let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
            ns.push(json!({"type": "time", "path": d.path("time_for_children")}));
            if mode.is_rootless() {
                join(c, "user", &d.path("user"));
            }
        });
        let c = create(&b, "nst", &[]);
        assert_eq!(c.status, 0, "{ctx}: create: {}", c.stderr);
        let s = nsb(&b, &["start", "nst"]);
        assert_eq!(s.status, 0, "{ctx}: start: {}", s.stderr);
        let app = support::app_pid(&b, "nst").to_string();
        assert_eq!(
            ns_of(&app, "time"),
            d.ns("time_for_children"),
            "{ctx}: the application's"
        );
        let script = "readlink /proc/self/ns/time; cut -d. -f1 /proc/uptime";
        let out = nsb(&b, &["exec", "nst", "sh", "-c", script]);
        let del = nsb(&b, &["delete", "--force", "nst"]);
        assert_eq!((out.status, del.status), (0, 0), "{ctx}: {out:?} {del:?}");
        common::assert_nothing_left(mode, b.state_dir());
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(lines[0], d.ns("time_for_children"), "{ctx}: {out:?}");
        let uptime: u64 = lines[1].parse().unwrap();
        assert!(
            uptime >= 1_000_000,
            "{ctx}: not the donor's boot time: {out:?}"
        );
    }
}
