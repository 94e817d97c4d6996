//! The application's process: args, env, cwd, user, umask, rlimits, the five
//! capability sets, no_new_privs, hostname/domainname, oomScoreAdj, and what the app inherits
//! (its own pid namespace, no stray fds, a clean signal state).

#[path = "process/caps_refused.rs"]
mod caps_refused;
mod common;
#[path = "process/nnp.rs"]
mod nnp;
#[path = "process/notify.rs"]
mod notify;
#[path = "process/tuning.rs"]
mod tuning;

use std::os::unix::process::CommandExt;

use caps::Capability::{self, *};
use common::{Bundle, Mode, Output};
use serde_json::json;

/// The modes where the spec can name a uid/gid other than 0 (a range is mapped).
fn mapped_range_modes() -> Vec<Mode> {
    let mut modes = common::modes();
    modes.retain(|m| *m != Mode::RootlessSingle);
    modes
}

/// A distinct container id per test and mode (tests run in parallel).
fn id(test: &str, mode: Mode) -> String {
    common::test_id("proc", test, mode)
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

/// Run `bundle` as container `test`-<mode> and assert it exits 0 printing exactly `want`.
fn assert_prints(bundle: Bundle, test: &str, want: &str) {
    let mode = bundle.mode();
    let out = bundle.run(&id(test, mode));
    assert_eq!(
        (out.status, out.stdout.as_str()),
        (0, want),
        "{mode:?}: {out:?}"
    );
}

/// Assert nsboot refused the run (125, the app never ran) with one line naming all of `names`.
fn assert_refused(mode: Mode, out: &Output, names: &[&str]) {
    let named = names.iter().all(|n| out.stderr.contains(n));
    let one_line = out.stderr.trim().lines().count() == 1;
    assert!(
        out.status == 125 && out.stdout.is_empty() && named && one_line,
        "{mode:?}: not a one-line error naming {names:?} (exit 125): {out:?}"
    );
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

fn mask(caps: &[Capability]) -> u64 {
    caps.iter().fold(0, |m, c| m | c.bitmask())
}

/// The five capability masks of a status text, in the order [Inh, Prm, Eff, Bnd, Amb].
fn cap_sets(status: &str) -> [u64; 5] {
    ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"].map(|k| {
        let hex = status_field(status, k);
        u64::from_str_radix(hex, 16).unwrap_or_else(|e| panic!("{k}: {hex}: {e}"))
    })
}

/// The Cap* lines of a status text, for failure messages.
fn cap_lines(status: &str) -> String {
    let lines: Vec<&str> = status.lines().filter(|l| l.starts_with("Cap")).collect();
    lines.join("\n")
}

#[test]
fn args_reach_the_app_exactly() {
    const SCRIPT: &str = r#"for a in "$0" "$@"; do printf '[%s]\n' "$a"; done"#;
    let mut args = vec!["/bin/sh", "-c", SCRIPT];
    args.extend(["zero", "a b", "", "*", "$HOME", "tab\there"]);
    for mode in common::modes() {
        let want = "[zero]\n[a b]\n[]\n[*]\n[$HOME]\n[tab\there]\n";
        assert_prints(Bundle::new(mode).args(&args), "args", want);
    }
}

#[test]
fn env_is_exactly_the_specs() {
    let env = ["EMPTY=", "EQ=a=b", "FOO=bar baz", "PATH=/bin:/usr/bin"]; // sorted
    for mode in common::modes() {
        let bundle = Bundle::new(mode)
            .args(&["/bin/env"])
            .edit(|c| c["process"]["env"] = json!(env));
        // A variable of the caller's own, beside the ones the harness sets (HOME, XDG_RUNTIME_DIR,
        // NSBOOT_TEST_BUNDLE, and as root the whole test environment): none may reach the app.
        let mut cmd = bundle.run_cmd(&id("env", mode));
        let out = common::output(cmd.env("NSBT_CALLER_ONLY", "leak"));
        let mut got: Vec<&str> = out.stdout.lines().collect();
        got.sort_unstable();
        assert_eq!((out.status, got), (0, env.to_vec()), "{mode:?}: {out:?}");
    }
}

#[test]
fn cwd_is_the_specs() {
    for mode in common::modes() {
        let bundle = sh(mode, "pwd", |c| c["process"]["cwd"] = json!("/tmp"));
        assert_prints(bundle, "cwd", "/tmp\n");
    }
}

#[test]
fn missing_cwd_is_a_clear_error() {
    for mode in common::modes() {
        let bundle = sh(mode, "echo started", |c| {
            c["process"]["cwd"] = json!("/no/such/cwd")
        });
        assert_refused(mode, &bundle.run(&id("nocwd", mode)), &["/no/such/cwd"]);
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
    assert_refused(mode, &out, &["process.user.uid", "1000"]);
}

#[test]
fn additional_gids_without_a_gid_range_is_a_clear_error() {
    // A single-id gid map means setgroups=deny: supplementary groups cannot be set.
    let mode = Mode::RootlessSingle;
    let bundle = sh(mode, "echo started", |c| {
        c["process"]["user"] = json!({ "uid": 0, "gid": 0, "additionalGids": [1] })
    });
    let out = bundle.run(&id("addgids", mode));
    assert_refused(mode, &out, &["process.user.additionalGids"]);
}

#[test]
fn umask_is_the_specs_or_0022() {
    for mode in common::modes() {
        let bundle = sh(mode, "umask", |c| {
            c["process"]["user"]["umask"] = json!(0o077)
        });
        assert_prints(bundle, "umask", "0077\n");
        assert_prints(sh(mode, "umask", |_| {}), "umask-default", "0022\n");
    }
}

#[test]
fn rlimits_reach_the_app() {
    for mode in common::modes() {
        let rl = json!([{ "type": "RLIMIT_NOFILE", "soft": 100, "hard": 200 }]);
        let bundle = sh(mode, "ulimit -n; ulimit -Hn", |c| {
            c["process"]["rlimits"] = rl
        });
        assert_prints(bundle, "rlimit", "100\n200\n");
    }
}

#[test]
fn rlimit_soft_above_hard_is_refused() {
    for mode in common::modes() {
        let rl = json!([{ "type": "RLIMIT_NOFILE", "soft": 300, "hard": 200 }]);
        let bundle = sh(mode, "echo started", |c| c["process"]["rlimits"] = rl);
        let out = bundle.run(&id("rlimit-bad", mode));
        assert_refused(mode, &out, &["RLIMIT_NOFILE"]);
    }
}

#[test]
fn default_caps_are_exactly_the_specs() {
    // The harness's spec: AUDIT_WRITE, KILL, NET_BIND_SERVICE in bounding, effective, permitted.
    let caps = mask(&[CAP_AUDIT_WRITE, CAP_KILL, CAP_NET_BIND_SERVICE]);
    for mode in common::modes() {
        let status = app_status(Bundle::new(mode), &id("caps-default", mode));
        let msg = cap_lines(&status);
        assert_eq!(
            cap_sets(&status),
            [0, caps, caps, caps, 0],
            "{mode:?}:\n{msg}"
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
            let msg = format!("{mode:?}, capabilities {what}:\n{}", cap_lines(&status));
            assert_eq!(cap_sets(&status), [0; 5], "{msg}");
        }
    }
}

#[test]
fn ambient_cap_reaches_a_non_root_app() {
    let nbs = json!(["CAP_NET_BIND_SERVICE"]);
    let want = mask(&[CAP_NET_BIND_SERVICE]);
    for mode in mapped_range_modes() {
        let bundle = Bundle::new(mode).edit(|c| {
            c["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
            c["process"]["capabilities"] = json!({ "bounding": nbs, "effective": nbs,
                "permitted": nbs, "inheritable": nbs, "ambient": nbs });
        });
        let status = app_status(bundle, &id("caps-ambient", mode));
        let (uid, msg) = (status_field(&status, "Uid"), format!("{mode:?}:\n{status}"));
        assert_eq!(uid, "1000\t1000\t1000\t1000", "{msg}");
        assert_eq!(cap_sets(&status), [want; 5], "{msg}");
    }
}

#[test]
fn app_has_supervisor_caps_only_when_the_spec_gives_them() {
    // The supervisor holds CHOWN, DAC_OVERRIDE, DAC_READ_SEARCH, FOWNER, FSETID (and, as root of
    // its userns, SYS_ADMIN). A spec giving CHOWN alone must give the app CHOWN and none of those.
    let c = mask(&[CAP_CHOWN]);
    let chown = json!(["CAP_CHOWN"]);
    for mode in common::modes() {
        let bundle = Bundle::new(mode).edit(|c| {
            c["process"]["capabilities"] =
                json!({ "bounding": chown, "effective": chown, "permitted": chown })
        });
        let status = app_status(bundle, &id("caps-chown", mode));
        let msg = cap_lines(&status);
        let why = "CHOWN alone: none of the supervisor's other caps";
        assert_eq!(
            cap_sets(&status),
            [0, c, c, c, 0],
            "{mode:?}: {why}:\n{msg}"
        );
    }
}

#[test]
fn no_new_privileges_follows_the_spec() {
    for mode in common::modes() {
        for (nnp, want) in [(true, "1"), (false, "0")] {
            let bundle = Bundle::new(mode).edit(|c| c["process"]["noNewPrivileges"] = json!(nnp));
            let status = app_status(bundle, &id(&format!("nnp-{nnp}"), mode));
            let got = status_field(&status, "NoNewPrivs");
            assert_eq!(got, want, "{mode:?}: noNewPrivileges {nnp}");
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
        assert_prints(bundle, "uts", "box1\nexample.org\n");
    }
}

#[test]
fn oom_score_adj_is_the_specs() {
    for mode in common::modes() {
        let bundle = sh(mode, "cat /proc/self/oom_score_adj", |c| {
            c["process"]["oomScoreAdj"] = json!(500)
        });
        assert_prints(bundle, "oom", "500\n");
    }
}

/// A foreground run's application runs in the supervisor's address space until its exec (it is
/// vforked): its oomScoreAdj must stay its own, not become the supervisor's as well.
#[test]
fn oom_score_adj_stays_the_applications() {
    let own = std::fs::read_to_string("/proc/self/oom_score_adj").unwrap();
    for mode in common::modes() {
        let bundle = sh(mode, "cat /proc/self/oom_score_adj; read x; exit 0", |c| {
            c["process"]["oomScoreAdj"] = json!(500)
        });
        let mut run = common::Running::start_with_stdin(&bundle, &id("oom-own", mode));
        let timeout = std::time::Duration::from_secs(20);
        run.expect_line("500", timeout, &format!("{mode:?}"));
        let caller = run.pid();
        let children = std::fs::read_to_string(format!("/proc/{caller}/task/{caller}/children"));
        let supervisor = children.unwrap_or_default();
        let supervisor = supervisor
            .split_whitespace()
            .next()
            .unwrap_or("0")
            .to_string();
        let adj = std::fs::read_to_string(format!("/proc/{supervisor}/oom_score_adj"));
        let out = run.finish(timeout);
        assert_eq!(out.status, 0, "{mode:?}: {out:?}");
        assert_eq!(
            adj.ok().as_deref(),
            Some(own.as_str()),
            "{mode:?}: the supervisor {supervisor} took the application's oomScoreAdj"
        );
    }
}

#[test]
fn app_is_pid1_and_cannot_see_the_supervisor() {
    let script = r#"echo $$; tr '\0' ' ' </proc/1/cmdline; echo; ls /proc; exit 0"#;
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
        assert_prints(bundle, "fds", "0\n1\n2\n3\n");
    }
}

#[test]
fn app_starts_with_no_blocked_or_ignored_signals() {
    use nix::sys::signal::{signal, sigprocmask, SigHandler, SigSet, SigmaskHow, Signal};
    let mut leaks = Vec::new();
    for mode in common::modes() {
        for hostile in [false, true] {
            let bundle = Bundle::new(mode).args(&["/bin/cat", "/proc/self/status"]);
            let mut cmd = bundle.run_cmd(&id(&format!("signals-{hostile}"), mode));
            if hostile {
                // A caller that ignores SIGPIPE, SIGUSR1 and a real-time signal and blocks
                // SIGUSR2 and SIGALRM: all of it survives exec into nsboot, and none of it may
                // reach the app.
                // SAFETY: sigprocmask and signal are async-signal-safe; nothing else runs here.
                unsafe {
                    cmd.pre_exec(|| {
                        let set = SigSet::from_iter([Signal::SIGUSR2, Signal::SIGALRM]);
                        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
                        signal(Signal::SIGPIPE, SigHandler::SigIgn)?;
                        signal(Signal::SIGUSR1, SigHandler::SigIgn)?;
                        if libc::signal(libc::SIGRTMIN() + 2, libc::SIG_IGN) == libc::SIG_ERR {
                            return Err(std::io::Error::last_os_error());
                        }
                        Ok(())
                    });
                }
            }
            let out = common::output(&mut cmd);
            let status = stdout_ok(mode, &out);
            let got = ["SigBlk", "SigIgn"].map(|k| status_field(&status, k).to_owned());
            if got != ["0000000000000000", "0000000000000000"] {
                leaks.push(format!("{mode:?}, hostile caller {hostile}: {got:?}"));
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "the app inherited blocked/ignored signals [SigBlk, SigIgn]:\n{}",
        leaks.join("\n")
    );
}
