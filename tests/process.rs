//! Issue item 6, the application's process: args, env, cwd, user, umask, rlimits, the five
//! capability sets, no_new_privs, hostname/domainname, oomScoreAdj, and what the app inherits
//! (its own pid namespace, no stray fds, a clean signal state).

mod common;

use std::os::unix::process::CommandExt;

use common::{Bundle, Mode, Output};
use serde_json::json;

/// The modes where the spec can name a uid/gid other than 0 (a range is mapped).
fn mapped_range_modes() -> Vec<Mode> {
    common::modes()
        .into_iter()
        .filter(|m| *m != Mode::RootlessSingle)
        .collect()
}

/// A distinct container id per test and mode (tests run in parallel).
fn id(test: &str, mode: Mode) -> String {
    format!("proc-{test}-{mode:?}").to_lowercase()
}

/// `script` run by /bin/sh -c in a default bundle changed by `edit`.
fn sh(mode: Mode, script: &str, edit: impl FnOnce(&mut serde_json::Value)) -> Bundle {
    Bundle::new(mode)
        .args(&["/bin/sh", "-c", script])
        .edit(edit)
}

/// Assert a run exited 0 and return its stdout.
fn stdout_ok(mode: Mode, out: &Output) -> String {
    assert_eq!(out.status, 0, "{mode:?}: run failed: {out:?}");
    out.stdout.clone()
}

/// The value of `key:` in a /proc/PID/status text, trimmed.
fn status_field<'a>(status: &'a str, key: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {key} in /proc/self/status:\n{status}"))
        .trim()
}

/// The app's own /proc/self/status (cat is the app itself: its values are what exec gave it).
fn app_status(bundle: Bundle, id: &str) -> String {
    let mode = bundle.mode();
    let bundle = bundle.args(&["/bin/cat", "/proc/self/status"]);
    stdout_ok(mode, &bundle.run(id))
}

// Capability numbers from linux/capability.h.
const CHOWN: u32 = 0;
const DAC_OVERRIDE: u32 = 1;
const DAC_READ_SEARCH: u32 = 2;
const FOWNER: u32 = 3;
const FSETID: u32 = 4;
const KILL: u32 = 5;
const NET_BIND_SERVICE: u32 = 10;
const SYS_ADMIN: u32 = 21;
const AUDIT_WRITE: u32 = 29;

fn mask(caps: &[u32]) -> u64 {
    caps.iter().fold(0, |m, c| m | 1 << c)
}

/// The five capability masks of a status text, as (CapInh, CapPrm, CapEff, CapBnd, CapAmb).
fn cap_sets(status: &str) -> [(&'static str, u64); 5] {
    ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"].map(|k| {
        let hex = status_field(status, k);
        let v = u64::from_str_radix(hex, 16).unwrap_or_else(|e| panic!("{k}: {hex}: {e}"));
        (k, v)
    })
}

fn expect_caps(inh: u64, prm: u64, eff: u64, bnd: u64, amb: u64) -> [(&'static str, u64); 5] {
    [
        ("CapInh", inh),
        ("CapPrm", prm),
        ("CapEff", eff),
        ("CapBnd", bnd),
        ("CapAmb", amb),
    ]
}

#[test]
fn args_reach_the_app_exactly() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode).args(&[
            "/bin/sh",
            "-c",
            r#"for a in "$0" "$@"; do printf '[%s]\n' "$a"; done"#,
            "zero",
            "a b",
            "",
            "*",
            "$HOME",
            "tab\there",
        ]);
        let out = bundle.run(&id("args", mode));
        assert_eq!(
            stdout_ok(mode, &out),
            "[zero]\n[a b]\n[]\n[*]\n[$HOME]\n[tab\there]\n",
            "{mode:?}: {out:?}"
        );
    }
}

#[test]
fn env_is_exactly_the_specs() {
    let env = ["PATH=/bin:/usr/bin", "FOO=bar baz", "EMPTY=", "EQ=a=b"];
    for mode in common::modes() {
        let bundle = Bundle::new(mode)
            .args(&["/bin/env"])
            .edit(|c| c["process"]["env"] = json!(env));
        // A variable of the caller's own, beside the ones the harness sets (HOME, XDG_RUNTIME_DIR,
        // NSBOOT_TEST_BUNDLE, and as root the whole test environment): none may reach the app.
        let mut cmd = bundle.nsboot();
        cmd.env("NSBT_CALLER_ONLY", "leak")
            .arg("--root")
            .arg(bundle.state_dir())
            .arg("run")
            .arg("--bundle")
            .arg(bundle.dir())
            .arg(id("env", mode));
        let out = common::output(&mut cmd);
        let mut got: Vec<&str> = out.stdout.lines().collect();
        got.sort_unstable();
        let mut want = env.to_vec();
        want.sort_unstable();
        assert_eq!((out.status, got), (0, want), "{mode:?}: {out:?}");
    }
}

#[test]
fn cwd_is_the_specs() {
    for mode in common::modes() {
        let bundle = sh(mode, "pwd", |c| c["process"]["cwd"] = json!("/tmp"));
        let out = bundle.run(&id("cwd", mode));
        assert_eq!(stdout_ok(mode, &out), "/tmp\n", "{mode:?}: {out:?}");
    }
}

#[test]
fn missing_cwd_is_a_clear_error() {
    for mode in common::modes() {
        let bundle = sh(mode, "echo started", |c| {
            c["process"]["cwd"] = json!("/no/such/cwd")
        });
        let out = bundle.run(&id("nocwd", mode));
        assert_eq!(out.status, 125, "{mode:?}: {out:?}");
        assert!(
            out.stderr.contains("/no/such/cwd") && out.stdout.is_empty(),
            "{mode:?}: the error does not name the cwd: {out:?}"
        );
        assert_eq!(
            out.stderr.trim().lines().count(),
            1,
            "{mode:?}: not one line: {out:?}"
        );
    }
}

#[test]
fn user_ids_and_groups_reach_the_app() {
    for mode in mapped_range_modes() {
        let bundle = sh(mode, "id -u; id -g; id -G; cat /proc/self/status", |c| {
            c["process"]["user"] = json!({ "uid": 1000, "gid": 1000, "additionalGids": [1001] })
        });
        let out = bundle.run(&id("user", mode));
        let text = stdout_ok(mode, &out);
        let ids: Vec<&str> = text.lines().take(3).collect();
        assert_eq!(ids, ["1000", "1000", "1000 1001"], "{mode:?}: {out:?}");
        let ids = ["Uid", "Gid", "Groups"].map(|k| status_field(&text, k));
        assert_eq!(
            ids,
            ["1000\t1000\t1000\t1000", "1000\t1000\t1000\t1000", "1001"],
            "{mode:?}: {out:?}"
        );
    }
}

#[test]
fn unmapped_user_is_a_clear_error() {
    // A single-id map has only container uid 0: uid 1000 cannot be switched to.
    let mode = Mode::RootlessSingle;
    let bundle = sh(mode, "echo started", |c| {
        c["process"]["user"] = json!({ "uid": 1000, "gid": 0 })
    });
    let out = bundle.run(&id("unmapped", mode));
    assert_eq!(out.status, 125, "{out:?}");
    assert!(
        out.stderr.contains("process.user.uid 1000") && out.stdout.is_empty(),
        "the error does not name process.user.uid: {out:?}"
    );
}

#[test]
fn additional_gids_without_a_gid_range_is_a_clear_error() {
    // A single-id gid map means setgroups=deny: supplementary groups cannot be set.
    let mode = Mode::RootlessSingle;
    let bundle = sh(mode, "echo started", |c| {
        c["process"]["user"] = json!({ "uid": 0, "gid": 0, "additionalGids": [0] })
    });
    let out = bundle.run(&id("addgids", mode));
    assert_eq!(out.status, 125, "{out:?}");
    assert!(
        out.stderr.contains("additionalGids") && out.stdout.is_empty(),
        "the error does not name process.user.additionalGids: {out:?}"
    );
}

#[test]
fn umask_is_the_specs_or_0022() {
    for mode in common::modes() {
        let bundle = sh(mode, "umask", |c| {
            c["process"]["user"]["umask"] = json!(0o077)
        });
        let out = bundle.run(&id("umask", mode));
        assert_eq!(stdout_ok(mode, &out), "0077\n", "{mode:?}: {out:?}");

        let bundle = sh(mode, "umask", |_| {});
        let out = bundle.run(&id("umask-default", mode));
        assert_eq!(stdout_ok(mode, &out), "0022\n", "{mode:?}: {out:?}");
    }
}

#[test]
fn rlimits_reach_the_app() {
    for mode in common::modes() {
        let bundle =
            sh(
                mode,
                "ulimit -n; ulimit -Hn",
                |c| {
                    c["process"]["rlimits"] =
                        json!([{ "type": "RLIMIT_NOFILE", "soft": 100, "hard": 200 }])
                },
            );
        let out = bundle.run(&id("rlimit", mode));
        assert_eq!(stdout_ok(mode, &out), "100\n200\n", "{mode:?}: {out:?}");
    }
}

#[test]
fn rlimit_soft_above_hard_is_refused() {
    for mode in common::modes() {
        let bundle =
            sh(
                mode,
                "echo started",
                |c| {
                    c["process"]["rlimits"] =
                        json!([{ "type": "RLIMIT_NOFILE", "soft": 300, "hard": 200 }])
                },
            );
        let out = bundle.run(&id("rlimit-bad", mode));
        assert_eq!(out.status, 125, "{mode:?}: {out:?}");
        assert!(
            out.stderr.contains("RLIMIT_NOFILE") && out.stdout.is_empty(),
            "{mode:?}: the error does not name the rlimit: {out:?}"
        );
    }
}

#[test]
fn default_caps_are_exactly_the_specs() {
    // The harness's spec: AUDIT_WRITE, KILL, NET_BIND_SERVICE in bounding, effective, permitted.
    let caps = mask(&[AUDIT_WRITE, KILL, NET_BIND_SERVICE]);
    for mode in common::modes() {
        let status = app_status(Bundle::new(mode), &id("caps-default", mode));
        assert_eq!(
            cap_sets(&status),
            expect_caps(0, caps, caps, caps, 0),
            "{mode:?}:\n{status}"
        );
    }
}

#[test]
fn empty_caps_give_the_app_none() {
    let empty = json!({ "bounding": [], "effective": [], "permitted": [],
                        "inheritable": [], "ambient": [] });
    for mode in common::modes() {
        for (what, caps) in [("empty", Some(&empty)), ("absent", None)] {
            let bundle = Bundle::new(mode).edit(|c| match caps {
                Some(caps) => c["process"]["capabilities"] = caps.clone(),
                None => {
                    c["process"].as_object_mut().unwrap().remove("capabilities");
                }
            });
            let status = app_status(bundle, &id(&format!("caps-{what}"), mode));
            assert_eq!(
                cap_sets(&status),
                expect_caps(0, 0, 0, 0, 0),
                "{mode:?}, capabilities {what}:\n{status}"
            );
        }
    }
}

#[test]
fn ambient_cap_reaches_a_non_root_app() {
    let nbs = json!(["CAP_NET_BIND_SERVICE"]);
    let want = mask(&[NET_BIND_SERVICE]);
    for mode in mapped_range_modes() {
        let bundle = Bundle::new(mode).edit(|c| {
            c["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
            c["process"]["capabilities"] = json!({ "bounding": nbs, "effective": nbs,
                "permitted": nbs, "inheritable": nbs, "ambient": nbs });
        });
        let status = app_status(bundle, &id("caps-ambient", mode));
        assert_eq!(status_field(&status, "Uid"), "1000\t1000\t1000\t1000");
        assert_eq!(
            cap_sets(&status),
            expect_caps(want, want, want, want, want),
            "{mode:?}:\n{status}"
        );
    }
}

#[test]
fn app_has_supervisor_caps_only_when_the_spec_gives_them() {
    // The supervisor holds CHOWN, DAC_OVERRIDE, DAC_READ_SEARCH, FOWNER, FSETID (and, as root of
    // its userns, SYS_ADMIN). A spec giving CHOWN alone must give the app CHOWN and none of those.
    let extra = mask(&[DAC_OVERRIDE, DAC_READ_SEARCH, FOWNER, FSETID, SYS_ADMIN]);
    let chown = json!(["CAP_CHOWN"]);
    for mode in common::modes() {
        let bundle = Bundle::new(mode).edit(|c| {
            c["process"]["capabilities"] =
                json!({ "bounding": chown, "effective": chown, "permitted": chown })
        });
        let status = app_status(bundle, &id("caps-chown", mode));
        for (set, value) in cap_sets(&status) {
            assert_eq!(
                value & extra,
                0,
                "{mode:?}: {set} has supervisor caps:\n{status}"
            );
        }
        let c = mask(&[CHOWN]);
        assert_eq!(
            cap_sets(&status),
            expect_caps(0, c, c, c, 0),
            "{mode:?}:\n{status}"
        );
    }
}

#[test]
fn no_new_privileges_follows_the_spec() {
    for mode in common::modes() {
        for (nnp, want) in [(true, "1"), (false, "0")] {
            let bundle = Bundle::new(mode).edit(|c| c["process"]["noNewPrivileges"] = json!(nnp));
            let status = app_status(bundle, &id(&format!("nnp-{nnp}"), mode));
            assert_eq!(
                status_field(&status, "NoNewPrivs"),
                want,
                "{mode:?}: noNewPrivileges {nnp}:\n{status}"
            );
        }
    }
}

#[test]
fn hostname_and_domainname_are_the_specs() {
    for mode in common::modes() {
        let bundle = sh(mode, "hostname; cat /proc/sys/kernel/domainname", |c| {
            c["hostname"] = json!("box1");
            c["domainname"] = json!("example.org");
        });
        let out = bundle.run(&id("uts", mode));
        assert_eq!(
            stdout_ok(mode, &out),
            "box1\nexample.org\n",
            "{mode:?}: {out:?}"
        );
    }
}

#[test]
fn oom_score_adj_is_the_specs() {
    for mode in common::modes() {
        let bundle = sh(mode, "cat /proc/self/oom_score_adj", |c| {
            c["process"]["oomScoreAdj"] = json!(500)
        });
        let out = bundle.run(&id("oom", mode));
        assert_eq!(stdout_ok(mode, &out), "500\n", "{mode:?}: {out:?}");
    }
}

#[test]
fn app_is_pid1_and_cannot_see_the_supervisor() {
    let script = r#"echo $$; tr '\0' ' ' </proc/1/cmdline; echo; ls /proc"#;
    for mode in common::modes() {
        let bundle = Bundle::new(mode).args(&["/bin/sh", "-c", script]);
        let out = bundle.run(&id("pid1", mode));
        let text = stdout_ok(mode, &out);
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("1"), "{mode:?}: $$ is not 1: {out:?}");
        assert_eq!(
            lines.next(),
            Some(format!("/bin/sh -c {script} ").as_str()),
            "{mode:?}: /proc/1 is not the app: {out:?}"
        );
        // Only the shell (1) and the ls it runs: no supervisor, nothing of the host.
        let pids: Vec<u32> = lines.filter_map(|l| l.parse().ok()).collect();
        assert!(
            pids.len() == 2 && pids[0] == 1,
            "{mode:?}: /proc shows other processes {pids:?}: {out:?}"
        );
    }
}

#[test]
fn only_stdio_fds_reach_the_app() {
    for mode in common::modes() {
        // ls is the app itself; its own fd 3 is the directory it lists.
        let bundle = Bundle::new(mode).args(&["/bin/ls", "/proc/self/fd"]);
        let out = bundle.run(&id("fds", mode));
        assert_eq!(
            stdout_ok(mode, &out),
            "0\n1\n2\n3\n",
            "{mode:?}: fds beyond stdio reached the app: {out:?}"
        );
    }
}

#[test]
fn app_starts_with_no_blocked_or_ignored_signals() {
    use nix::sys::signal::{signal, sigprocmask, SigHandler, SigSet, SigmaskHow, Signal};
    for mode in common::modes() {
        for hostile in [false, true] {
            let bundle = Bundle::new(mode).args(&["/bin/cat", "/proc/self/status"]);
            let mut cmd = bundle.nsboot();
            cmd.arg("--root")
                .arg(bundle.state_dir())
                .arg("run")
                .arg("--bundle")
                .arg(bundle.dir())
                .arg(id(&format!("signals-{hostile}"), mode));
            if hostile {
                // A caller that ignores SIGPIPE and SIGUSR1 and blocks SIGUSR2 and SIGALRM: all
                // of it survives exec into nsboot, and none of it may reach the app.
                // SAFETY: sigprocmask and signal are async-signal-safe; nothing else runs here.
                unsafe {
                    cmd.pre_exec(|| {
                        let mut set = SigSet::empty();
                        set.add(Signal::SIGUSR2);
                        set.add(Signal::SIGALRM);
                        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
                        signal(Signal::SIGPIPE, SigHandler::SigIgn)?;
                        signal(Signal::SIGUSR1, SigHandler::SigIgn)?;
                        Ok(())
                    });
                }
            }
            let out = common::output(&mut cmd);
            let status = stdout_ok(mode, &out);
            let got = ["SigBlk", "SigIgn"].map(|k| status_field(&status, k));
            assert_eq!(
                got,
                ["0000000000000000", "0000000000000000"],
                "{mode:?}, hostile caller {hostile}:\n{status}"
            );
        }
    }
}
