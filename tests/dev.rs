//! /dev: the standard nodes and symlinks, devpts, mqueue, and linux.devices,
//! checked from inside the sandbox through /proc/self/mountinfo and behaviour.

mod common;

use std::path::Path;

use common::{mount_at, parse_mountinfo, sections, Bundle, Mode, Output};
use serde_json::json;

/// A distinct container id per test and mode (tests run in parallel).
fn id(test: &str, mode: Mode) -> String {
    common::test_id("dev", test, mode)
}

/// Runs `bundle`, asserts exit 0 and nothing left behind; returns the whole output.
fn run_ok(bundle: &Bundle, test: &str) -> Output {
    common::run_ok(bundle, &id(test, bundle.mode()))
}

#[test]
fn dev_has_the_standard_nodes_and_symlinks() {
    for mode in common::modes() {
        let ctx = format!("{mode:?}");
        // Each node: its type and major/minor (hex), then each one used for what it is.
        let script = "for n in null zero full random urandom tty; do \
                        stat -c \"$n %F %t %T\" /dev/$n; done; \
                      echo discarded > /dev/null && echo null=ok; \
                      head -c 4 /dev/zero | od -An -tx1; \
                      echo x > /dev/full; echo full=$?; \
                      head -c 16 /dev/urandom | wc -c; head -c 16 /dev/random | wc -c; \
                      for l in fd stdin stdout stderr; do echo $l=$(readlink /dev/$l); done; \
                      echo through | cat /dev/stdin";
        let out = run_ok(&Bundle::new(mode).args(&["/bin/sh", "-c", script]), "dev");
        let want = "null character special file 1 3\n\
                    zero character special file 1 5\n\
                    full character special file 1 7\n\
                    random character special file 1 8\n\
                    urandom character special file 1 9\n\
                    tty character special file 5 0\n\
                    null=ok\n 00 00 00 00\nfull=1\n16\n16\n\
                    fd=/proc/self/fd\nstdin=/proc/self/fd/0\nstdout=/proc/self/fd/1\n\
                    stderr=/proc/self/fd/2\nthrough\n";
        assert_eq!(out.stdout, want, "{ctx}: {out:?}");
        assert!(
            out.stderr.contains("No space left on device"),
            "{ctx}: /dev/full took a write: {out:?}"
        );
    }
}

/// A /dev the spec binds from a host dir: a node's name that is there already is bound onto
/// as it is (the file keeps its content on the host), the missing ones are made in it.
#[test]
fn nodes_go_onto_the_files_a_bound_dev_already_has() {
    for mode in common::modes() {
        let ctx = format!("{mode:?}");
        let script = "stat -c '%n %F %t %T' /dev/null /dev/zero; \
                      echo discarded > /dev/null; wc -c < /dev/null";
        let bundle = Bundle::new(mode).args(&["/bin/sh", "-c", script]);
        let dev = common::top(&bundle).join("dev");
        std::fs::create_dir(&dev).unwrap();
        std::fs::write(dev.join("null"), "the host's file\n").unwrap();
        for p in [dev.clone(), dev.join("null")] {
            common::give_to(mode, &p);
        }
        let bundle = bundle.edit(|c| {
            let mounts = c["mounts"].as_array_mut().unwrap();
            let at = mounts
                .iter()
                .position(|m| m["destination"] == "/dev")
                .unwrap();
            mounts[at] = common::bind(&dev, "/dev", &["rbind"]);
        });
        let out = run_ok(&bundle, "bound-dev");
        assert_eq!(
            out.stdout,
            "/dev/null character special file 1 3\n\
             /dev/zero character special file 1 5\n0\n",
            "{ctx}: {out:?}"
        );
        let null = std::fs::read_to_string(dev.join("null")).unwrap();
        assert_eq!(null, "the host's file\n", "{ctx}");
    }
}

#[test]
fn devpts_is_a_new_instance_with_ptmxmode_mode_and_gid() {
    for mode in common::modes() {
        let ctx = format!("{mode:?}");
        // Opening /dev/ptmx makes pty 0 of this instance: its mode and group come from the
        // options (gid 5 is unmapped with a single map, and nsboot then leaves gid= out).
        let script = "cat /proc/self/mountinfo; echo --; ls -A /dev/pts; readlink /dev/ptmx; stat -c %a /dev/pts/ptmx; \
                      exec 3<>/dev/ptmx && stat -c '%a %g' /dev/pts/0";
        let bundle = Bundle::new(mode)
            .args(&["/bin/sh", "-c", script])
            .edit(|c| {
                let pts = c["mounts"]
                    .as_array_mut()
                    .unwrap()
                    .iter_mut()
                    .find(|m| m["type"] == "devpts")
                    .unwrap();
                pts["options"] = json!([
                    "nosuid",
                    "noexec",
                    "newinstance",
                    "ptmxmode=0666",
                    "mode=0620",
                    "gid=5"
                ]);
            });
        let out = run_ok(&bundle, "devpts");
        let s = sections(&out.stdout);
        let pts = mount_at(&parse_mountinfo(s[0]), "/dev/pts", &ctx);
        let has = |o: &str| pts.super_options.iter().any(|x| x == o);
        assert!(
            pts.fstype == "devpts" && has("mode=620") && has("ptmxmode=666"),
            "{ctx}: {}",
            pts.line
        );
        let gid = if mode == Mode::RootlessSingle { 0 } else { 5 };
        assert_eq!(
            s[1],
            format!("ptmx\npts/ptmx\n666\n620 {gid}\n"),
            "{ctx}: {out:?}"
        );
    }
}

#[test]
fn mqueue_is_a_fresh_mqueue_at_dev_mqueue() {
    for mode in common::modes() {
        let ctx = format!("{mode:?}");
        // touch in an mqueue creates a message queue; cat shows its counters.
        let script = "cat /proc/self/mountinfo; echo --; ls -A /dev/mqueue; \
                      touch /dev/mqueue/q && cut -d' ' -f1 /dev/mqueue/q";
        let out = run_ok(
            &Bundle::new(mode).args(&["/bin/sh", "-c", script]),
            "mqueue",
        );
        let s = sections(&out.stdout);
        assert_eq!(s[1], "QSIZE:0\n", "{ctx}: {out:?}");
        let m = mount_at(&parse_mountinfo(s[0]), "/dev/mqueue", &ctx);
        assert_eq!(m.fstype, "mqueue", "{ctx}: {}", m.line);
    }
}

#[test]
fn linux_devices_entry_is_bound_from_the_host() {
    if !Path::new("/dev/fuse").exists() {
        eprintln!("the host has no /dev/fuse: linux.devices not checked");
        return;
    }
    for mode in common::modes() {
        let ctx = format!("{mode:?}");
        let fuse = json!({ "path": "/dev/fuse", "type": "c", "major": 10, "minor": 229,
            "fileMode": 438, "uid": 0, "gid": 0 });
        let script = "stat -c '%F %t %T' /dev/fuse; (exec 3<>/dev/fuse) 2>/dev/null && echo opened || echo refused";
        let bundle = Bundle::new(mode)
            .args(&["/bin/sh", "-c", script])
            .edit(|c| c["linux"]["devices"] = json!([fuse]));
        let out = run_ok(&bundle, "devices");
        // The host's node itself: the container opens it exactly when the caller can.
        let host = common::output(common::as_user(mode, "sh").args([
            "-c",
            "(exec 3<>/dev/fuse) 2>/dev/null && echo opened || echo refused",
        ]));
        assert_eq!(
            out.stdout,
            format!("character special file a e5\n{}", host.stdout),
            "{ctx}: {out:?}"
        );
    }
}

/// Rootless: no node can be made (as root it is, below).
#[test]
fn missing_linux_device_is_one_line_naming_it() {
    for mode in common::rootless_modes() {
        let dev = json!({ "path": "/dev/nsbt-no-such-device", "type": "c", "major": 1,
            "minor": 3 });
        let bundle = Bundle::new(mode)
            .args(&["/bin/echo", "ran"])
            .edit(|c| c["linux"]["devices"] = json!([dev]));
        let out = bundle.run(&id("nodevice", mode));
        let lines: Vec<&str> = out.stderr.trim().lines().collect();
        assert!(
            out.status == 125
                && out.stdout.is_empty()
                && lines.len() == 1
                && lines[0].contains("/dev/nsbt-no-such-device")
                && lines[0].contains("linux.devices[0]"),
            "{mode:?}: not one line naming the device and linux.devices[0]: {out:?}"
        );
        common::assert_nothing_left(mode, bundle.state_dir());
    }
}

/// As real root, a linux.devices node the host lacks is made (mknod) with the entry's
/// fileMode (0666 when absent), uid and gid, as runc does; it opens as the device it claims.
/// Rootless, the kernel allows no mknod: still one line naming the entry (above).
#[test]
fn as_root_a_missing_device_is_made_with_its_mode_and_owner() {
    if !common::is_root() {
        eprintln!("not root: no node is made");
        return;
    }
    let mode = Mode::Root;
    let devices = json!([
        { "path": "/dev/nsbt-null", "type": "c", "major": 1, "minor": 3,
          "fileMode": 400, "uid": 0, "gid": 2 },
        { "path": "/dev/nsbt-zero", "type": "c", "major": 1, "minor": 5 },
        { "path": "/dev/sub/nsbt-fifo", "type": "p", "fileMode": 384, "uid": 3, "gid": 4 },
        // The host has it, with another mode and group: a bind would keep the host's.
        { "path": "/dev/full", "type": "c", "major": 1, "minor": 7, "fileMode": 416, "gid": 5 },
        // Nothing said: 0666 and root's, as runc makes it (the host's is 0644 here).
        { "path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11 }
    ]);
    let script =
        "stat -c '%n %F %t %T %a %u %g' /dev/nsbt-null /dev/nsbt-zero /dev/sub/nsbt-fifo /dev/full /dev/kmsg; \
                  echo x > /dev/nsbt-null && echo null=ok; head -c 3 /dev/nsbt-zero | wc -c; \
                  grep -c -e nsbt- -e /dev/full /proc/self/mountinfo";
    let bundle = Bundle::new(mode)
        .args(&["/bin/sh", "-c", script])
        .edit(|c| c["linux"]["devices"] = devices);
    if std::env::var_os("NSBOOT_EXEC_BOOT").is_some_and(|v| v == "1") {
        // An exec'd `nsboot boot` gets no nodes from its caller: the device is missing.
        let out = bundle.run(&id("mknod", mode));
        assert!(
            out.status == 125 && out.stderr.contains("does not exist on the host"),
            "{out:?}"
        );
        common::assert_nothing_left(mode, bundle.state_dir());
        return;
    }
    let out = run_ok(&bundle, "mknod");
    assert_eq!(
        out.stdout,
        "/dev/nsbt-null character special file 1 3 620 0 2\n\
         /dev/nsbt-zero character special file 1 5 666 0 0\n\
         /dev/sub/nsbt-fifo fifo 0 0 600 3 4\n\
         /dev/full character special file 1 7 640 0 5\n\
         /dev/kmsg character special file 1 b 666 0 0\n\
         null=ok\n3\n4\n",
        "{out:?}"
    );
    assert!(
        !Path::new("/dev/nsbt-null").exists(),
        "a node was made on the host's /dev"
    );
    let full = std::fs::metadata("/dev/full").unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        (full.mode() & 0o777, full.gid()),
        (0o666, 0),
        "the host's /dev/full changed"
    );
}
