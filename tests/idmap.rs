//! The id-mapping table of DESIGN.md, row by row: who calls, what the spec maps,
//! which maps the sandbox ends up with, and the clear errors when a mapping cannot be had.

// The harness re-exports helpers this binary does not use.
#[allow(unused_imports)]
mod common;

use std::fs;
use std::path::PathBuf;

use serde_json::{json, Value};

use common::{assert_nothing_left, output, Bundle, Mode, Output};

/// Prints the app's view of its user namespace, one section a line-group, then `id`.
const SHOW: &str = "cat /proc/self/uid_map; echo --; cat /proc/self/gid_map; echo --; \
                    cat /proc/self/setgroups; echo --; id -u; id -g; id -G";

/// What [`SHOW`] printed.
#[derive(Debug, PartialEq, Eq)]
struct View {
    uid_map: Vec<String>,
    gid_map: Vec<String>,
    setgroups: String,
    ids: Vec<String>,
}

/// Parses [`SHOW`]'s output, normalising the maps' column padding; panics (showing the run)
/// unless the run succeeded.
fn view(out: &Output, what: &str) -> View {
    assert_eq!(out.status, 0, "{what}: {out:?}");
    let parts: Vec<&str> = out.stdout.split("--\n").collect();
    assert_eq!(parts.len(), 4, "{what}: unexpected output: {out:?}");
    let lines = |s: &str| -> Vec<String> {
        s.lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    };
    View {
        uid_map: lines(parts[0]),
        gid_map: lines(parts[1]),
        setgroups: parts[2].trim().to_owned(),
        ids: lines(parts[3]),
    }
}

fn show(mode: Mode) -> Bundle {
    Bundle::new(mode).args(&["/bin/sh", "-c", SHOW])
}

fn without_mappings(c: &mut Value) {
    let linux = c["linux"].as_object_mut().unwrap();
    linux.remove("uidMappings");
    linux.remove("gidMappings");
}

fn map(lines: &[(u32, u32, u32)]) -> Vec<String> {
    lines
        .iter()
        .map(|(c, h, s)| format!("{c} {h} {s}"))
        .collect()
}

/// `bundle.run(id)`, with extra environment for nsboot.
fn run_env(bundle: &Bundle, id: &str, env: &[(&str, &str)], global: &[&str]) -> Output {
    let mut cmd = bundle.nsboot();
    cmd.envs(env.iter().copied())
        .args(global)
        .arg("--root")
        .arg(bundle.state_dir())
        .args(["run", "--bundle"])
        .arg(bundle.dir())
        .arg(id);
    output(&mut cmd)
}

/// The single non-empty line of stderr, or a panic showing it all.
fn one_line(out: &Output, what: &str) -> String {
    let lines: Vec<&str> = out.stderr.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 1, "{what}: stderr is not one line: {out:?}");
    lines[0].to_owned()
}

#[test]
fn rootless_single_maps_only_the_caller_with_setgroups_denied() {
    let u = common::user(Mode::RootlessSingle);
    let bundle = show(Mode::RootlessSingle);
    let out = bundle.run("idmap-single");
    let v = view(&out, "RootlessSingle");
    assert_eq!(v.uid_map, map(&[(0, u.uid, 1)]), "{out:?}");
    assert_eq!(v.gid_map, map(&[(0, u.gid, 1)]), "{out:?}");
    assert_eq!(v.setgroups, "deny");
    assert_eq!(v.ids, ["0", "0", "0"]);
    assert_nothing_left(Mode::RootlessSingle, bundle.state_dir());
}

#[test]
fn rootless_subid_maps_the_caller_and_its_range_with_newuidmap() {
    if !common::rootless_modes().contains(&Mode::RootlessSubid) {
        return; // a developer without a subordinate range: nothing to map
    }
    let u = common::user(Mode::RootlessSubid);
    let bundle = show(Mode::RootlessSubid);
    let out = bundle.run("idmap-subid");
    let v = view(&out, "RootlessSubid");
    let (su, sg) = (u.subuid.unwrap(), u.subgid.unwrap());
    assert_eq!(v.uid_map, map(&[(0, u.uid, 1), (1, su, 65536)]), "{out:?}");
    assert_eq!(v.gid_map, map(&[(0, u.gid, 1), (1, sg, 65536)]), "{out:?}");
    // newgidmap leaves setgroups allowed (only a direct unprivileged write must deny it).
    assert_eq!(v.setgroups, "allow");
    assert_eq!(v.ids, ["0", "0", "0"]);
    assert_nothing_left(Mode::RootlessSubid, bundle.state_dir());
}

#[test]
fn subid_process_user_runs_as_its_uid_with_additional_gids() {
    if !common::rootless_modes().contains(&Mode::RootlessSubid) {
        return;
    }
    let bundle = Bundle::new(Mode::RootlessSubid)
        .args(&["/bin/sh", "-c", "id -u; id -g; id -G"])
        .edit(|c| {
            c["process"]["user"] =
                json!({ "uid": 1000, "gid": 1000, "additionalGids": [2000, 3000] })
        });
    let out = bundle.run("idmap-subid-user");
    assert_eq!(
        (out.status, out.stdout.as_str()),
        (0, "1000\n1000\n1000 2000 3000\n"),
        "{}",
        out.stderr
    );
    assert_nothing_left(Mode::RootlessSubid, bundle.state_dir());
}

#[test]
fn spec_without_mappings_maps_the_caller_and_its_first_subid_range() {
    if !common::rootless_modes().contains(&Mode::RootlessSubid) {
        return;
    }
    let u = common::user(Mode::RootlessSubid);
    let bundle = show(Mode::RootlessSubid).edit(without_mappings);
    let out = bundle.run("idmap-nomap-subid");
    let v = view(&out, "no mappings");
    let (su, sg) = (u.subuid.unwrap(), u.subgid.unwrap());
    assert_eq!(v.uid_map, map(&[(0, u.uid, 1), (1, su, 65536)]), "{out:?}");
    assert_eq!(v.gid_map, map(&[(0, u.gid, 1), (1, sg, 65536)]), "{out:?}");
    assert_eq!(v.setgroups, "allow");
    assert_nothing_left(Mode::RootlessSubid, bundle.state_dir());
}

#[test]
fn spec_without_mappings_and_no_newuidmap_gets_a_single_map_and_a_notice() {
    let mode = Mode::RootlessSingle;
    let u = common::user(mode);
    let bundle = show(mode).edit(without_mappings);
    let hide = ("NSBOOT_NEWUIDMAP", "/nonexistent");
    // The notice is logged at info level: shown with NSBOOT_LOG=info, or with --debug.
    for (i, how) in ["NSBOOT_LOG=info", "--debug"].into_iter().enumerate() {
        let (env, global) = match how {
            "--debug" => (vec![hide], vec![how]),
            _ => (vec![hide, ("NSBOOT_LOG", "info")], vec![]),
        };
        let out = run_env(&bundle, &format!("idmap-nohelper-{i}"), &env, &global);
        let v = view(&out, how);
        assert_eq!(v.uid_map, map(&[(0, u.uid, 1)]), "{out:?}");
        assert_eq!(v.gid_map, map(&[(0, u.gid, 1)]), "{out:?}");
        assert_eq!(v.setgroups, "deny");
        let notices: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| l.contains("NEWUIDMAP") && l.contains("only your own id"))
            .collect();
        assert_eq!(notices.len(), 1, "{how}: no single notice:\n{}", out.stderr);
        assert_nothing_left(mode, bundle.state_dir());
    }
}

#[test]
fn user_without_subids_gets_a_single_map() {
    let Some(u) = common::nosub_user() else {
        return; // only root has a second user to switch to
    };
    // The bundle is the test user's, readable by everyone; nosub keeps its state in its own
    // XDG_RUNTIME_DIR.
    let bundle = show(Mode::RootlessSingle).edit(without_mappings);
    let mut cmd = common::nsboot_nosub().unwrap();
    let xdg = cmd
        .get_envs()
        .find(|(k, _)| *k == "XDG_RUNTIME_DIR")
        .and_then(|(_, v)| v.map(PathBuf::from))
        .expect("nsboot_nosub sets XDG_RUNTIME_DIR");
    cmd.args(["run", "--bundle"])
        .arg(bundle.dir())
        .arg("idmap-nosub");
    let out = output(&mut cmd);
    let v = view(&out, "nsbt-nosub");
    assert_eq!(v.uid_map, map(&[(0, u.uid, 1)]), "{out:?}");
    assert_eq!(v.gid_map, map(&[(0, u.gid, 1)]), "{out:?}");
    assert_eq!(v.setgroups, "deny");
    assert_eq!(v.ids, ["0", "0", "0"]);
    let left: Vec<_> = fs::read_dir(xdg.join("nsboot"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "state left in {}: {left:?}", xdg.display());
    let _ = fs::remove_dir_all(&xdg);
}

#[test]
fn root_without_mappings_gets_the_identity_map() {
    if !common::is_root() {
        return;
    }
    let bundle = show(Mode::Root);
    let out = bundle.run("idmap-root");
    let v = view(&out, "Root");
    assert_eq!(v.uid_map, ["0 0 4294967295"], "{out:?}");
    assert_eq!(v.gid_map, ["0 0 4294967295"], "{out:?}");
    assert_eq!(v.ids, ["0", "0", "0"]);
    assert_nothing_left(Mode::Root, bundle.state_dir());
}

#[test]
fn unowned_ranges_fail_with_one_line_naming_the_helper() {
    for mode in common::rootless_modes() {
        let u = common::user(mode);
        let unowned = json!([
            { "containerID": 0, "hostID": u.uid, "size": 1 },
            { "containerID": 1, "hostID": 1, "size": 1000 }
        ]);
        let owned_gids = json!([{ "containerID": 0, "hostID": u.gid, "size": 1 }]);
        let owned_uids = json!([{ "containerID": 0, "hostID": u.uid, "size": 1 }]);
        let unowned_gids = json!([
            { "containerID": 0, "hostID": u.gid, "size": 1 },
            { "containerID": 1, "hostID": 1, "size": 1000 }
        ]);
        let cases = [
            ("newuidmap", "/etc/subuid", unowned, owned_gids),
            ("newgidmap", "/etc/subgid", owned_uids, unowned_gids),
        ];
        for (tool, file, uids, gids) in cases {
            let bundle = Bundle::new(mode).edit(|c| {
                c["linux"]["uidMappings"] = uids;
                c["linux"]["gidMappings"] = gids;
            });
            let out = bundle.run(&format!("idmap-unowned-{mode:?}-{tool}"));
            assert_eq!(out.status, 125, "{mode:?} {tool}: {out:?}");
            let line = one_line(&out, tool);
            assert!(
                line.contains(tool) && line.contains(file),
                "{mode:?}: error does not name {tool} and {file}: {line}"
            );
            assert!(!line.contains("EOF"), "{mode:?}: {line}");
            assert_nothing_left(mode, bundle.state_dir());
        }
    }
}

#[test]
fn unmapped_process_uid_is_refused_naming_the_uid() {
    // RootlessSubid maps 1000 (from the subordinate range): not a case of this test.
    let modes = common::modes()
        .into_iter()
        .filter(|m| *m != Mode::RootlessSubid);
    for mode in modes {
        let bundle = Bundle::new(mode)
            .args(&["/bin/true"])
            .edit(|c| c["process"]["user"] = json!({ "uid": 1000, "gid": 0 }));
        // Root's identity map covers every uid: give it a single map too.
        let bundle = if mode.is_rootless() {
            bundle
        } else {
            bundle.edit(|c| {
                c["linux"]["uidMappings"] = json!([{ "containerID": 0, "hostID": 0, "size": 1 }]);
                c["linux"]["gidMappings"] = json!([{ "containerID": 0, "hostID": 0, "size": 1 }]);
            })
        };
        let out = bundle.run(&format!("idmap-unmapped-{mode:?}"));
        assert_eq!(out.status, 125, "{mode:?}: {out:?}");
        let line = one_line(&out, "unmapped uid");
        assert!(
            line.contains("1000") && line.contains("uid") && line.contains("uidMappings"),
            "{mode:?}: error does not name uid 1000 and the mapping: {line}"
        );
        assert!(!line.contains("EOF"), "{mode:?}: {line}");
        assert_nothing_left(mode, bundle.state_dir());
    }
}
