//! `nsboot check` on this machine: it passes for the rootless test user, and its newuidmap and
//! /etc/subuid lines carry their fixes when the helper is hidden or the user has no range.

// The harness re-exports helpers this binary does not use.
#[allow(unused_imports)]
mod common;

use common::{nsboot, output, Mode, Output};

fn check(mut cmd: std::process::Command) -> Output {
    output(cmd.arg("check"))
}

/// The line of item `name` ("ok    name: ..."), or a panic showing the whole report.
fn line<'a>(out: &'a Output, name: &str) -> &'a str {
    let find = |l: &&str| {
        l.get(6..)
            .is_some_and(|rest| rest.starts_with(&format!("{name}: ")))
    };
    out.stdout
        .lines()
        .find(find)
        .unwrap_or_else(|| panic!("no {name} line in:\n{}{}", out.stdout, out.stderr))
}

#[test]
fn passes_for_the_rootless_test_user() {
    let out = check(nsboot(Mode::RootlessSingle));
    assert_eq!(out.status, 0, "{}{}", out.stdout, out.stderr);
    assert!(line(&out, "caller").ends_with("rootless"), "{}", out.stdout);
    assert!(
        line(&out, "user namespace probe").starts_with("ok "),
        "{}",
        out.stdout
    );
    assert!(
        line(&out, "state directory").starts_with("ok "),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("\nnsboot run can work here ("),
        "{}",
        out.stdout
    );
    // scripts/setup.sh installs fuse-overlayfs and opens /dev/fuse to users, as Debian does;
    // where that failed, the line is a warning that names the fix.
    let fuse_open = std::fs::metadata("/dev/fuse")
        .is_ok_and(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o006 == 0o006);
    let fuse = line(&out, "overlay writes");
    if fuse_open && std::path::Path::new("/usr/bin/fuse-overlayfs").exists() {
        assert_eq!(
            fuse,
            "ok    overlay writes: /usr/bin/fuse-overlayfs and /dev/fuse usable: --overlay writes anywhere",
            "{}",
            out.stdout
        );
    } else {
        assert!(
            fuse.starts_with("warn  overlay writes: ") && fuse.contains("fuse"),
            "{}",
            out.stdout
        );
    }
}

#[test]
fn passes_as_root() {
    if !common::is_root() {
        return;
    }
    let out = check(nsboot(Mode::Root));
    assert_eq!(out.status, 0, "{}{}", out.stdout, out.stderr);
    assert!(line(&out, "caller").ends_with(", root"), "{}", out.stdout);
    assert_eq!(
        line(&out, "overlay writes"),
        "ok    overlay writes: real root: --overlay uses the kernel's overlayfs",
        "{}",
        out.stdout
    );
}

#[test]
fn hidden_newuidmap_shows_the_fix() {
    let mut cmd = nsboot(Mode::RootlessSingle);
    cmd.env("NSBOOT_NEWUIDMAP", "/nonexistent");
    let out = check(cmd);
    // Only the single map is left: a warning, not a failure.
    assert_eq!(out.status, 0, "{}{}", out.stdout, out.stderr);
    let l = line(&out, "newuidmap");
    assert!(
        l.starts_with("warn  newuidmap: NSBOOT_NEWUIDMAP=/nonexistent does not exist"),
        "{l}"
    );
    assert!(l.contains("apt-get install uidmap"), "{l}");
    assert!(line(&out, "newgidmap").starts_with("ok "), "{}", out.stdout);
}

#[test]
fn user_without_subordinate_ids_gets_the_usermod_fix() {
    let Some(cmd) = common::nsboot_nosub() else {
        return; // only root can switch to nsbt-nosub
    };
    let out = check(cmd);
    assert_eq!(out.status, 0, "{}{}", out.stdout, out.stderr);
    for file in ["/etc/subuid", "/etc/subgid"] {
        let l = line(&out, file);
        assert!(
            l.starts_with(&format!("warn  {file}: no range for nsbt-nosub")),
            "{l}"
        );
        assert!(
            l.contains("usermod --add-subuids ") && l.ends_with(" nsbt-nosub"),
            "{l}"
        );
    }
}

#[test]
fn json_has_every_item_with_a_fix_for_each_problem() {
    let mut cmd = nsboot(Mode::RootlessSingle);
    cmd.args(["check", "--json"])
        .env("NSBOOT_NEWGIDMAP", "/nonexistent");
    let out = output(&mut cmd);
    let v: serde_json::Value =
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout));
    assert_eq!(
        v["ready"],
        serde_json::Value::Bool(out.status == 0),
        "{}",
        out.stdout
    );
    let items = v["items"].as_array().expect("items");
    assert!(items.len() >= 10, "{}", out.stdout);
    for item in items {
        let status = item["status"].as_str().expect("status");
        assert!(["ok", "warn", "fail"].contains(&status), "{item}");
        assert!(
            item["name"].is_string() && item["detail"].is_string(),
            "{item}"
        );
        assert_eq!(item["fix"].is_string(), status != "ok", "{item}");
    }
    let gid = items
        .iter()
        .find(|i| i["name"] == "newgidmap")
        .expect("newgidmap item");
    assert_eq!(gid["status"], "warn");
}

/// nsboot takes the setuid helpers from fixed directories, never from PATH: a PATH without
/// them changes nothing (and a PATH entry cannot slip in another newuidmap).
#[test]
fn helpers_hidden_from_path_are_still_found_where_nsboot_takes_them() {
    // A PATH holding setpriv alone (the harness switches users through it, found on PATH).
    let bundle = common::Bundle::new(Mode::RootlessSingle);
    std::os::unix::fs::symlink("/usr/bin/setpriv", bundle.dir().join("setpriv")).unwrap();
    let mut cmd = nsboot(Mode::RootlessSingle);
    cmd.env("PATH", bundle.dir());
    let out = check(cmd);
    assert_eq!(out.status, 0, "{}{}", out.stdout, out.stderr);
    for tool in ["newuidmap", "newgidmap"] {
        let l = line(&out, tool);
        assert!(
            l.starts_with(&format!("ok    {tool}: /usr/bin/{tool} (")),
            "{l}"
        );
    }
}

#[test]
fn unusable_state_directory_fails_with_exit_1_and_the_fix() {
    let mut cmd = nsboot(Mode::RootlessSingle);
    cmd.env("XDG_RUNTIME_DIR", "/proc");
    let out = check(cmd);
    assert_eq!(out.status, 1, "{}{}", out.stdout, out.stderr);
    let l = line(&out, "state directory");
    assert!(
        l.starts_with(
            "fail  state directory: /proc/nsboot cannot be created: /proc is not writable by you"
        ),
        "{l}"
    );
    assert!(
        l.ends_with("or pass --root DIR with a directory of yours"),
        "{l}"
    );
    assert!(
        out.stdout
            .contains("\nnsboot run cannot work here: 1 failure(s)"),
        "{}",
        out.stdout
    );
}

#[test]
fn global_root_is_the_state_directory_checked() {
    for mode in [Mode::RootlessSingle, Mode::Root] {
        if !common::modes().contains(&mode) {
            continue;
        }
        let mut cmd = nsboot(mode);
        cmd.args(["--root", "/proc/nsboot-state"]);
        let out = check(cmd);
        assert_eq!(out.status, 1, "{mode:?}: {}{}", out.stdout, out.stderr);
        let l = line(&out, "state directory");
        assert!(
            l.starts_with("fail  state directory: /proc/nsboot-state cannot be created"),
            "{mode:?}: {l}"
        );
    }
}
