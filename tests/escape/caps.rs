//! Inheritable and ambient capabilities (the runc CVE-2022-29162 class): the process nsboot
//! starts has exactly the spec's inheritable and ambient sets (empty by default), whether it
//! comes from `run`, `create` + `start` or `exec` (with --cap too), and whatever the caller
//! itself holds.

use std::process::Command;

use serde_json::json;

use super::id;
use crate::common::{self, Bundle, Mode, Output};

use super::fds::support;

const SHOW: [&str; 3] = ["/bin/grep", "^Cap[IA][nm][hb]", "/proc/self/status"];

/// The caller as root holding inheritable and ambient CAP_NET_RAW and CAP_SYS_ADMIN: none of
/// it may reach the process. (An unprivileged caller cannot hold any.)
fn nsboot_cmd(b: &Bundle, args: &[&str]) -> Command {
    let mut cmd = if b.mode() == Mode::Root {
        let mut cmd = Command::new("setpriv");
        cmd.args([
            "--inh-caps=+net_raw,+sys_admin",
            "--ambient-caps=+net_raw,+sys_admin",
            "--",
        ]);
        cmd.arg(common::nsboot_bin());
        cmd.current_dir(b.dir())
            .env("NSBOOT_TEST_BUNDLE", support::top(b));
        cmd
    } else {
        b.nsboot()
    };
    cmd.arg("--root").arg(b.state_dir()).args(args);
    cmd
}

fn want(inh: &str, amb: &str) -> String {
    format!("CapInh:\t{inh}\nCapAmb:\t{amb}\n")
}

fn assert_caps(what: &str, out: &Output, want: &str) {
    assert_eq!(
        (out.status, out.stdout.as_str()),
        (0, want),
        "{what}: {out:?}"
    );
}

/// run, create + start, exec and exec --cap of `b`, each showing `expected`.
fn check_everywhere(b: &Bundle, tag: &str, expected: &str) {
    let mode = b.mode();
    let dir = b.dir().to_str().unwrap().to_string();
    let r = id(&format!("{tag}-r"), mode);
    let out = common::output(&mut nsboot_cmd(b, &["run", "--bundle", &dir, &r]));
    assert_caps(&format!("{mode:?} {tag}: run"), &out, expected);
    common::assert_nothing_left(mode, b.state_dir());

    let s = id(&format!("{tag}-s"), mode);
    let c = support::run_to_file(b, &s, nsboot_cmd(b, &["create", "--bundle", &dir, &s]));
    assert_eq!(c.status, 0, "{mode:?} {tag}: create: {c:?}");
    let st = common::output(&mut nsboot_cmd(b, &["start", &s]));
    assert_eq!(st.status, 0, "{mode:?} {tag}: start: {st:?}");
    support::wait_status(b, &s, "stopped");
    let app = Output {
        status: 0,
        stdout: support::app_output(b, &s),
        stderr: String::new(),
    };
    assert_caps(&format!("{mode:?} {tag}: create + start"), &app, expected);
    assert_eq!(support::nsb(b, &["delete", &s]).status, 0);

    // exec into a running copy of the same spec (its process sleeps).
    let x = id(&format!("{tag}-x"), mode);
    let mut sleeper = b.config().clone();
    sleeper["process"]["args"] = json!(["/bin/sleep", "1000"]);
    let file = support::top(b).join(format!("{tag}.config.json"));
    std::fs::write(&file, sleeper.to_string()).unwrap();
    let bundle2 = support::top(b).join(format!("{tag}-bundle"));
    std::fs::create_dir(&bundle2).unwrap();
    std::fs::rename(&file, bundle2.join("config.json")).unwrap();
    common::give_to(mode, &bundle2);
    common::give_to(mode, &bundle2.join("config.json"));
    let b2 = bundle2.to_str().unwrap();
    let c = support::run_to_file(b, &x, nsboot_cmd(b, &["create", "--bundle", b2, &x]));
    assert_eq!(c.status, 0, "{mode:?} {tag}: create for exec: {c:?}");
    assert_eq!(
        nsboot_cmd(b, &["start", &x]).status().unwrap().code(),
        Some(0)
    );
    let mut args = vec!["exec", x.as_str()];
    args.extend(SHOW);
    let out = common::output(&mut nsboot_cmd(b, &args));
    assert_caps(&format!("{mode:?} {tag}: exec"), &out, expected);
    let mut args = vec!["exec", "--cap", "CAP_NET_RAW", x.as_str()];
    args.extend(SHOW);
    let out = common::output(&mut nsboot_cmd(b, &args));
    assert_caps(&format!("{mode:?} {tag}: exec --cap"), &out, expected);
    assert_eq!(support::nsb(b, &["delete", "--force", &x]).status, 0);
    common::assert_nothing_left(mode, b.state_dir());
}

#[test]
fn inheritable_and_ambient_caps_are_empty_by_default() {
    let zero = "0000000000000000";
    for mode in common::modes() {
        let b = Bundle::new(mode).args(&SHOW);
        check_everywhere(&b, "capdef", &want(zero, zero));
    }
}

#[test]
fn ambient_caps_are_not_gained_beyond_the_specs_inheritable() {
    let zero = "0000000000000000";
    for mode in common::modes() {
        // Ambient CAP_KILL without it in inheritable: the kernel cannot raise it, and nothing
        // else may appear.
        let b = Bundle::new(mode).args(&SHOW).edit(|c| {
            c["process"]["capabilities"]["ambient"] = json!(["CAP_KILL"]);
        });
        check_everywhere(&b, "capamb", &want(zero, zero));
        // Inheritable and ambient CAP_KILL: exactly that (bit 5), nothing more.
        let b = b.edit(|c| {
            c["process"]["capabilities"]["inheritable"] = json!(["CAP_KILL"]);
        });
        let kill = "0000000000000020";
        check_everywhere(&b, "capinh", &want(kill, kill));
    }
}
