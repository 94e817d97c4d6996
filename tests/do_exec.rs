//! `nsboot do -- CMD`, the process: network namespaces, id maps and --user, the environment,
//! exit statuses and the one-line errors; in the modes of do_cmd.rs, and without any
//! subordinate range (nsbt-nosub).

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::do_run::{assert_stderr_line, do_cmd, give, run_do, sh, EROFS};
use common::{Bundle, Mode, Output};

/// `ls /sys/class/net` and lo's flags (hex, IFF_UP = 1) inside.
fn interfaces(bundle: &Bundle, flags: &[&str]) -> (Vec<String>, u32, Output) {
    let out = sh(
        bundle,
        flags,
        "ls /sys/class/net && cat /sys/class/net/lo/flags",
    );
    let mut lines: Vec<String> = out.stdout.lines().map(str::to_owned).collect();
    let lo = lines
        .pop()
        .and_then(|f| u32::from_str_radix(f.trim_start_matches("0x"), 16).ok());
    (lines, lo.unwrap_or(0), out)
}

#[test]
fn network_none_has_only_loopback_and_it_is_up() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode);
        for flags in [&[][..], &["--network", "none"][..]] {
            let (names, lo, out) = interfaces(&bundle, flags);
            assert_eq!(
                (out.status, &names[..]),
                (0, &["lo".to_string()][..]),
                "{mode:?} {flags:?}: {out:?}"
            );
            assert_eq!(lo & 1, 1, "{mode:?} {flags:?}: lo is down: {out:?}");
        }
    }
}

/// The network namespace comes from a helper of the supervisor. When the kernel refuses it
/// (here user.max_net_namespaces is 0 in an outer user namespace), `do` fails with one line
/// that names the limit, exit 125, and leaves nothing behind.
#[test]
fn refused_network_namespace_is_one_line_125_and_leaves_nothing() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode);
        let script = r#"echo 0 > /proc/sys/user/max_net_namespaces && exec "$0" --root "$1" do -- /bin/true"#;
        let mut cmd = common::as_user(mode, "unshare");
        // `do` keeps the caller's working directory: one the mode's user may enter.
        cmd.current_dir(bundle.dir())
            .args(["-Ur", "sh", "-c", script])
            .arg(common::nsboot_bin())
            .arg(bundle.state_dir());
        let out = common::output(&mut cmd);
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(out.status, 125, "{mode:?}: {out:?}");
        assert!(
            lines.len() == 1
                && lines[0].starts_with("nsboot: creating the sandbox's network namespace")
                // The kernel's own refusal, as the helper reported it.
                && lines[0].contains("unshare: No space left on device")
                && lines[0].contains("user.max_net_namespaces"),
            "{mode:?}: not one line naming the limit: {out:?}"
        );
        common::assert_nothing_left(mode, bundle.state_dir());
    }
}

#[test]
fn network_host_sees_the_host_interfaces() {
    let mut host: Vec<String> = fs::read_dir("/sys/class/net")
        .expect("/sys/class/net")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    host.sort();
    for mode in common::modes() {
        let bundle = Bundle::new(mode);
        let (mut names, _, out) = interfaces(&bundle, &["--network", "host"]);
        names.sort();
        assert_eq!((out.status, &names), (0, &host), "{mode:?}: {out:?}");
    }
}

/// /proc/self/uid_map and gid_map inside, one "C H S" string per line.
fn maps(bundle: &Bundle, flags: &[&str]) -> (Vec<String>, Output) {
    let out = sh(bundle, flags, "cat /proc/self/uid_map /proc/self/gid_map");
    let lines = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    (lines, out)
}

#[test]
fn uid_map_and_gid_map_set_the_sandbox_maps() {
    for mode in common::modes() {
        let u = common::user(mode);
        let bundle = Bundle::new(mode);
        let (uids, gids) = match mode {
            Mode::RootlessSingle => (format!("0 {} 1", u.uid), format!("0 {} 1", u.gid)),
            Mode::RootlessSubid => (
                format!("0 {} 1,1 {} 1000", u.uid, u.subuid.unwrap()),
                format!("0 {} 1,1 {} 2000", u.gid, u.subgid.unwrap()),
            ),
            Mode::Root => ("0 0 1,1 100000 10".into(), "0 0 1".into()),
        };
        // RootlessSingle's runs carry exactly these flags already (map_flags).
        let flags = ["--uid-map", uids.as_str(), "--gid-map", gids.as_str()];
        let flags = if mode == Mode::RootlessSingle {
            &[][..]
        } else {
            &flags[..]
        };
        let (lines, out) = maps(&bundle, flags);
        let want: Vec<String> = uids
            .split(',')
            .chain(gids.split(','))
            .map(str::to_owned)
            .collect();
        assert_eq!((out.status, lines), (0, want), "{mode:?}: {out:?}");
    }
}

#[test]
fn user_runs_the_command_as_the_given_ids() {
    let modes = common::modes()
        .into_iter()
        .filter(|m| *m != Mode::RootlessSingle); // a single map has no uid 1000
    for mode in modes {
        let bundle = Bundle::new(mode);
        let out = sh(
            &bundle,
            &["--user", "1000:1000"],
            "id -u && id -g && touch new",
        );
        assert_eq!(
            (out.status, out.stdout.as_str()),
            (1, "1000\n1000\n"),
            "{mode:?}: {out:?}"
        );
        let want = "touch: cannot touch 'new': Permission denied\n";
        assert_eq!(out.stderr, want, "{mode:?}: uid 1000 does not own the cwd");
    }
}

/// `env` inside, run from a caller whose whole environment is `vars`, sorted.
fn env_inside(bundle: &Bundle, flags: &[&str], vars: &[(&str, &str)]) -> (Vec<String>, Output) {
    let mut cmd = do_cmd(bundle, flags, &["/usr/bin/env"]);
    cmd.env_clear().envs(vars.iter().copied());
    // Marks this nsboot as the bundle's for assert_nothing_left.
    cmd.env("NSBOOT_TEST_BUNDLE", bundle.dir().parent().unwrap());
    let out = common::output(&mut cmd);
    let mut lines: Vec<String> = out.stdout.lines().map(str::to_owned).collect();
    lines.sort();
    (lines, out)
}

#[test]
fn env_passes_path_home_term_lang_lc_and_user_only() {
    let vars = [
        ("PATH", "/usr/bin:/bin"),
        ("HOME", "/h"),
        ("USER", "u"),
        ("TERM", "t"),
        ("LANG", "C.UTF-8"),
        ("LC_ALL", "C"),
        ("LC_TIME", "C"),
        ("LOGNAME", "u"),
        ("FOO", "bar"),
    ];
    let base = [
        "HOME=/h",
        "LANG=C.UTF-8",
        "LC_ALL=C",
        "LC_TIME=C",
        "PATH=/usr/bin:/bin",
        "TERM=t",
        "USER=u",
    ];
    for mode in common::modes() {
        let bundle = Bundle::new(mode);
        let (env, out) = env_inside(&bundle, &[], &vars);
        assert_eq!(
            (out.status, env),
            (0, base.map(String::from).to_vec()),
            "{mode:?}: {out:?}"
        );

        let flags = [
            "--env", "FOO", "--env", "K=V", "--env", "HOME=/x", "--env", "UNSET",
        ];
        let (env, out) = env_inside(&bundle, &flags, &vars);
        let mut want: Vec<String> = base
            .iter()
            .filter(|v| !v.starts_with("HOME="))
            .map(|v| v.to_string())
            .collect();
        want.extend(["FOO=bar", "HOME=/x", "K=V"].map(String::from));
        want.sort();
        assert_eq!((out.status, env), (0, want), "{mode:?}: {out:?}");

        let (env, out) = env_inside(&bundle, &["--env-all"], &vars);
        for v in ["FOO=bar", "LOGNAME=u", "PATH=/usr/bin:/bin"] {
            assert!(
                env.contains(&v.to_string()),
                "{mode:?}: --env-all lost {v}: {out:?}"
            );
        }
    }
}

#[test]
fn exit_status_is_the_commands_own() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode);
        for code in [0, 7] {
            let out = sh(&bundle, &[], &format!("exit {code}"));
            assert_eq!(
                (out.status, out.stderr.as_str()),
                (code, ""),
                "{mode:?}: {out:?}"
            );
        }
    }
}

/// The command is pid 1 of its pid namespace: only signals the kernel forces kill it.
#[test]
fn command_killed_by_a_signal_exits_128_plus_n() {
    let cases = [
        ("ulimit -t 1; while :; do :; done", 137),
        ("ulimit -s 64; f() { f; }; f", 139),
    ];
    for mode in common::modes() {
        let bundle = Bundle::new(mode);
        for (script, want) in cases {
            let out = sh(&bundle, &[], script);
            assert_eq!(out.status, want, "{mode:?} `{script}`: {out:?}");
        }
    }
}

#[test]
fn missing_command_exits_127_and_non_executable_126() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode);
        let out = run_do(&bundle, &[], &["no-such-program-nsboot", "arg"]);
        assert_eq!(out.status, 127, "{mode:?}: {out:?}");
        assert_stderr_line(
            &out,
            "nsboot: no-such-program-nsboot: no such file or directory in the container (check process.args and PATH)",
            &format!("{mode:?}"),
        );
        let out = run_do(&bundle, &[], &["/etc/os-release"]);
        assert_eq!(out.status, 126, "{mode:?}: {out:?}");
        // (The "the sandbox refused to start: " before it, if any, is not pinned here.)
        let want = "/etc/os-release: permission denied: not executable by the process user\n";
        let one_line = out.stderr.starts_with("nsboot: ") && out.stderr.lines().count() == 1;
        assert!(one_line && out.stderr.ends_with(want), "{mode:?}: {out:?}");
    }
}

/// nsboot's own failures: 125 and one line naming the flag, the cause and the fix.
#[test]
fn bad_flags_exit_125_with_one_line_naming_the_fix() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode);
        let missing = bundle.dir().join("no-such-dir");
        let m = missing.display();
        let cases: Vec<(Vec<String>, String)> = vec![
            (
                vec!["--cwd".into(), m.to_string()],
                format!("nsboot: --cwd {m}: No such file or directory: give an existing directory"),
            ),
            (
                vec!["--rootfs".into(), m.to_string()],
                format!("nsboot: --rootfs {m}: No such file or directory: give an existing directory"),
            ),
            (
                vec!["--volume".into(), format!("{m}:/tmp/data")],
                format!("nsboot: --volume {m}: source: No such file or directory: create it or fix the path"),
            ),
            (
                vec!["--tmpfs".into(), "/nonexistent-nsboot".into()],
                "nsboot: --tmpfs /nonexistent-nsboot: /nonexistent-nsboot does not exist in the sandbox's root, which is read-only: create it on the host first, or add --overlay".into(),
            ),
            (
                vec!["--volume".into(), format!("{}:/nonexistent-nsboot", bundle.dir().display())],
                format!("nsboot: --volume {}:/nonexistent-nsboot: /nonexistent-nsboot does not exist in the sandbox's root, which is read-only: create it on the host first, or add --overlay", bundle.dir().display()),
            ),
        ];
        for (flags, want) in cases {
            let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
            let out = run_do(&bundle, &flags, &["true"]);
            assert_eq!(out.status, 125, "{mode:?} {flags:?}: {out:?}");
            assert_stderr_line(&out, &want, &format!("{mode:?} {flags:?}"));
        }
        assert!(
            !Path::new("/nonexistent-nsboot").exists(),
            "{mode:?}: created on the host"
        );
        common::assert_nothing_left(mode, bundle.state_dir());
    }
}

#[test]
fn unmapped_user_is_refused_naming_the_map_flag() {
    let bundle = Bundle::new(Mode::RootlessSingle);
    let out = run_do(&bundle, &["--user", "5000"], &["true"]);
    assert_eq!(out.status, 125, "{out:?}");
    assert_stderr_line(
        &out,
        "nsboot: --user 5000: uid 5000 is not mapped by --uid-map: add a range for it to --uid-map, or give --user a mapped id",
        "RootlessSingle",
    );
}

/// nsbt-nosub has no /etc/subuid entry: `do` maps only the caller, and works.
#[test]
fn user_without_subordinate_ids_gets_a_single_map_and_a_writable_cwd() {
    let Some(nosub) = common::nosub_user() else {
        return; // only root can switch to nsbt-nosub
    };
    let bundle = Bundle::new(Mode::RootlessSingle);
    let dir = bundle.dir().parent().unwrap().join("nosub");
    fs::create_dir(&dir).unwrap();
    give(&dir, nosub.uid);
    let mut cmd = common::nsboot_nosub().unwrap();
    cmd.current_dir(&dir)
        .args(["do", "--", "/bin/sh", "-c"])
        .arg("cat /proc/self/uid_map && echo hi > out && touch /etc/x");
    let out = common::output(&mut cmd);
    let map: Vec<String> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        (out.status, map),
        (1, vec![format!("0 {} 1", nosub.uid)]),
        "{out:?}"
    );
    assert_stderr_line(
        &out,
        &format!("touch: cannot touch '/etc/x': {EROFS}"),
        "nosub",
    );
    let written = dir.join("out");
    assert_eq!(fs::read_to_string(&written).ok().as_deref(), Some("hi\n"));
    assert_eq!(fs::metadata(&written).unwrap().uid(), nosub.uid);
}
