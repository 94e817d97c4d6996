//! The one-line errors of `nsboot run` a user can cause or meet, pinned as the user sees
//! them (docs/troubleshooting.md quotes these lines): what failed, on what, and the fix.
//! Exit status and cleanup of the same failures are pinned in exit_signals.rs and cleanup.rs.

mod common;

use std::fs;

use serde_json::json;

use common::{Bundle, Mode, Output};

fn id(what: &str, mode: Mode) -> String {
    common::test_id("er", what, mode)
}

/// Exit 125 and stderr exactly `want`, one line.
fn assert_fails_with(out: &Output, want: &str, ctx: &str) {
    assert_eq!(
        (out.status, out.stderr.as_str()),
        (125, format!("{want}\n").as_str()),
        "{ctx}: {out:?}"
    );
}

fn config_path(bundle: &Bundle) -> String {
    bundle.dir().join("config.json").display().to_string()
}

#[test]
fn missing_bundle_names_the_dir_and_the_flag() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode);
        let missing = bundle.dir().join("no-such-bundle");
        let mut cmd = bundle.run_cmd_for(&missing, &id("nobundle", mode));
        let out = common::output(&mut cmd);
        let want = format!(
            "nsboot: bundle {}: no such directory: pass --bundle DIR naming the directory that holds config.json",
            missing.display()
        );
        assert_fails_with(&out, &want, &format!("{mode:?}"));
    }
}

#[test]
fn missing_rootfs_names_root_path() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode);
        let missing = bundle.dir().join("no-such-rootfs");
        let bundle = bundle.edit(|c| c["root"]["path"] = json!(missing));
        let out = bundle.run(&id("norootfs", mode));
        let want = format!(
            "nsboot: root.path {}: no such directory: create the rootfs or fix root.path in config.json",
            missing.display()
        );
        assert_fails_with(&out, &want, &format!("{mode:?}"));
    }
}

#[test]
fn invalid_config_names_the_json_path_and_why() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode).edit(|c| c["process"]["user"]["uid"] = json!("zero"));
        let out = bundle.run(&id("badtype", mode));
        let want = format!(
            "nsboot: {}: process.user.uid: invalid type: string \"zero\", expected u32",
            config_path(&bundle)
        );
        assert_fails_with(&out, &want, &format!("{mode:?}"));

        let bundle = bundle.edit(|c| c["mounts"][1]["destination"] = json!(5));
        let out = bundle.run(&id("badmount", mode));
        let want = format!(
            "nsboot: {}: mounts[1].destination: invalid type: integer `5`, expected a string",
            config_path(&bundle)
        );
        assert_fails_with(&out, &want, &format!("{mode:?}"));

        // Root writes it, 0644: readable by the mode's user.
        fs::write(bundle.dir().join("config.json"), "{ \"ociVersion\": ").unwrap();
        let out = bundle.run(&id("truncated", mode));
        let head = format!(
            "nsboot: {}: line 1 column 16 (in ociVersion): ",
            config_path(&bundle)
        );
        let tail = "the file ends in the middle of a value (truncated?): rewrite it\n";
        let one_line = out.stderr.lines().count() == 1;
        assert!(
            out.status == 125
                && one_line
                && out.stderr.starts_with(&head)
                && out.stderr.ends_with(tail),
            "{mode:?}: want {head:?}...{tail:?}: {out:?}"
        );
    }
}

#[test]
fn missing_mount_source_names_the_entry() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode);
        let missing = bundle.dir().join("no-such-source");
        let index = bundle.config()["mounts"].as_array().unwrap().len();
        let bundle = bundle.edit(|c| {
            let m = json!({ "destination": "/data", "type": "bind", "source": missing,
                            "options": ["rbind"] });
            c["mounts"].as_array_mut().unwrap().push(m);
        });
        let out = bundle.run(&id("nosource", mode));
        let want = format!(
            "nsboot: mount source {} for /data does not exist: create it or fix mounts[{index}].source in config.json",
            missing.display()
        );
        assert_fails_with(&out, &want, &format!("{mode:?}"));
    }
}

#[test]
fn unmapped_process_user_names_the_mapping() {
    // The harness's RootlessSingle bundle maps uid 0 alone.
    let bundle = Bundle::new(Mode::RootlessSingle)
        .edit(|c| c["process"]["user"] = json!({ "uid": 1000, "gid": 0 }));
    let out = bundle.run("er-unmapped");
    let want = format!(
        "nsboot: {}: process.user.uid: 1000 is not mapped by linux.uidMappings: map it or run as a mapped user",
        config_path(&bundle)
    );
    assert_fails_with(&out, &want, "RootlessSingle");
}

#[test]
fn program_not_found_exits_127_naming_it() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode).args(&["/no/such-program"]);
        let out = bundle.run(&id("noprog", mode));
        let want = "nsboot: /no/such-program: no such file or directory in the container (check process.args and PATH)\n";
        assert_eq!(
            (out.status, out.stderr.as_str()),
            (127, want),
            "{mode:?}: {out:?}"
        );
    }
}

const NO_NEWUIDMAP: &str = "nsboot: the spec maps several id ranges but NSBOOT_NEWUIDMAP=/nonexistent does not exist: unset NSBOOT_NEWUIDMAP, or run: sudo apt-get install uidmap, or map only your own id";

#[test]
fn ranges_without_newuidmap_say_install_uidmap() {
    if !common::rootless_modes().contains(&Mode::RootlessSubid) {
        return; // no subordinate range here: nothing maps ranges
    }
    let bundle = Bundle::new(Mode::RootlessSubid);
    let mut cmd = bundle.nsboot();
    cmd.env("NSBOOT_NEWUIDMAP", "/nonexistent");
    cmd.arg("--root").arg(bundle.state_dir()).arg("run");
    cmd.arg("--bundle").arg(bundle.dir()).arg("er-nonewuidmap");
    let out = common::output(&mut cmd);
    assert_fails_with(&out, NO_NEWUIDMAP, "run");

    // `do` with ranges given by flag: the same line.
    let u = common::user(Mode::RootlessSubid);
    let uids = format!("0 {} 1,1 {} 65536", u.uid, u.subuid.unwrap());
    let mut cmd = bundle.nsboot();
    cmd.env("NSBOOT_NEWUIDMAP", "/nonexistent");
    cmd.arg("--root").arg(bundle.state_dir());
    cmd.args(["do", "--uid-map", &uids, "--", "true"]);
    let out = common::output(&mut cmd);
    assert_fails_with(&out, NO_NEWUIDMAP, "do");
    common::assert_nothing_left(Mode::RootlessSubid, bundle.state_dir());
}

/// nsbt-nosub has no /etc/subuid entry; a spec mapping ranges cannot work for it, and the
/// line should say that, with the fix `nsboot check` gives (usermod --add-subuids).
#[test]
fn ranges_without_a_subuid_entry_name_the_file_and_the_fix() {
    let Some(nosub) = common::nosub_user() else {
        return; // only root can switch to nsbt-nosub
    };
    let sub = common::user(Mode::RootlessSubid).subuid.unwrap_or(165536);
    let ranges = |own: u32| {
        json!([
            { "containerID": 0, "hostID": own, "size": 1 },
            { "containerID": 1, "hostID": sub, "size": 65536 }
        ])
    };
    let bundle = Bundle::new(Mode::RootlessSingle).edit(|c| {
        c["linux"]["uidMappings"] = ranges(nosub.uid);
        c["linux"]["gidMappings"] = ranges(nosub.gid);
    });
    let mut cmd = common::nsboot_nosub().unwrap();
    cmd.args(["run", "--bundle"])
        .arg(bundle.dir())
        .arg("er-nosub");
    let out = common::output(&mut cmd);
    let line = out.stderr.trim_end();
    assert!(
        out.status == 125 && !line.contains('\n'),
        "want one line and 125: {out:?}"
    );
    for part in ["/etc/subuid", "nsbt-nosub", "usermod --add-subuids"] {
        assert!(
            line.contains(part),
            "the line does not name {part:?}: {line}"
        );
    }
    assert_suggests_a_free_range(line);
}

/// The range a fix proposes (`--add-subuids START-END`) overlaps no range of /etc/subuid or
/// /etc/subgid: it is one `usermod` can hand out.
fn assert_suggests_a_free_range(line: &str) {
    let range = line
        .split("--add-subuids ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no range in: {line}"));
    let (start, end) = range.split_once('-').expect("START-END");
    let (start, end): (u64, u64) = (start.parse().unwrap(), end.parse().unwrap());
    for file in ["/etc/subuid", "/etc/subgid"] {
        for l in fs::read_to_string(file).unwrap_or_default().lines() {
            let f: Vec<&str> = l.split(':').collect();
            let (Some(s), Some(c)) = (f.get(1), f.get(2)) else {
                continue;
            };
            let (s, c): (u64, u64) = (s.parse().unwrap_or(0), c.parse().unwrap_or(0));
            assert!(
                end < s || start >= s + c,
                "{range} overlaps {l} of {file}: {line}"
            );
        }
    }
}
