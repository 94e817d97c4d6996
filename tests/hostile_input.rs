//! Bad input: malformed, truncated, huge and strange config.json files, absurd
//! rlimits, unknown capabilities, invalid container ids and paths. Each gives exit 125, exactly
//! one stderr line naming the cause, and leaves nothing behind.

mod common;

use std::fs;
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Bundle, Mode, Output};
use serde_json::{json, Value};

fn id(test: &str, mode: Mode) -> String {
    common::test_id("hi", test, mode)
}

/// Exit 125, nothing on stdout, exactly one stderr line, naming each of `names`.
fn assert_one_line_125(out: &Output, names: &[&str], ctx: &str) {
    let named = names.iter().all(|n| out.stderr.contains(n));
    assert!(
        out.status == 125 && out.stdout.is_empty() && named && out.stderr.lines().count() == 1,
        "{ctx}: want exit 125 and one stderr line naming {names:?}: {out:?}"
    );
}

/// Runs the bundle and checks the one-line refusal and that nothing is left.
fn assert_refused(bundle: &Bundle, test: &str, names: &[&str]) {
    let mode = bundle.mode();
    let out = bundle.run(&id(test, mode));
    assert_one_line_125(&out, names, &format!("{mode:?} {test}"));
    common::assert_nothing_left(mode, bundle.state_dir());
}

/// Replaces config.json by `bytes` (as written, not through the harness's JSON).
fn raw_config(bundle: &Bundle, bytes: &[u8]) {
    fs::write(bundle.dir().join("config.json"), bytes).unwrap();
}

fn valid_text(bundle: &Bundle) -> String {
    serde_json::to_string_pretty(bundle.config()).unwrap()
}

#[test]
fn malformed_config_is_refused() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode);
        raw_config(&bundle, b"{\"ociVersion\": \"1.0.2\", \"process\": }}{");
        assert_refused(&bundle, "malformed", &["config.json", "line 1"]);
    }
}

#[test]
fn truncated_config_is_refused() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode);
        let text = valid_text(&bundle);
        raw_config(&bundle, &text.as_bytes()[..text.len() / 2]);
        assert_refused(&bundle, "truncated", &["config.json", "truncated"]);
    }
}

#[test]
fn empty_config_is_refused() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode);
        raw_config(&bundle, b"");
        assert_refused(&bundle, "empty", &["config.json"]);
    }
}

#[test]
fn huge_config_is_refused_unread() {
    for mode in common::modes() {
        // Valid JSON, just too big: an annotation of 5 MiB.
        let bundle = Bundle::new(mode);
        let mut config = bundle.config().clone();
        config["annotations"] = json!({ "pad": "x".repeat(5 << 20) });
        raw_config(&bundle, &serde_json::to_vec(&config).unwrap());
        assert_refused(&bundle, "huge", &["config.json", "4 MiB"]);
    }
}

#[test]
fn endless_config_is_refused() {
    for mode in common::modes() {
        // A config.json that never ends (a symlink to /dev/zero).
        let bundle = Bundle::new(mode);
        let path = bundle.dir().join("config.json");
        fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
        assert_refused(
            &bundle,
            "zero",
            &["config.json", "device, not a regular file"],
        );
    }
}

#[test]
fn deeply_nested_config_is_refused() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode);
        let mut text = String::from("{\"ociVersion\": \"1.0.2\", \"annotations\": ");
        text.push_str(&"[".repeat(100_000));
        raw_config(&bundle, text.as_bytes());
        assert_refused(&bundle, "nested", &["config.json", "recursion limit"]);
    }
}

#[test]
fn config_that_is_a_directory_is_refused() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode);
        let path = bundle.dir().join("config.json");
        fs::remove_file(&path).unwrap();
        fs::create_dir(&path).unwrap();
        assert_refused(&bundle, "dir", &["config.json", "directory"]);
    }
}

/// `cmd` run to completion, killed (process group) if it is still running after `limit`.
fn output_within(cmd: &mut std::process::Command, limit: Duration) -> (Output, bool) {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + limit;
    let mut hung = false;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            hung = true;
            let pg = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::killpg(pg, nix::sys::signal::Signal::SIGKILL);
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (mut stdout, mut stderr) = (String::new(), String::new());
    let _ = child.stdout.take().unwrap().read_to_string(&mut stdout);
    let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
    let code = status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    let out = Output {
        status: code,
        stdout,
        stderr,
    };
    (out, hung)
}

#[test]
fn config_that_is_a_fifo_does_not_block() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode);
        let path = bundle.dir().join("config.json");
        fs::remove_file(&path).unwrap();
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o666)).unwrap();
        let mut cmd = bundle.run_cmd(&id("fifo", mode));
        // Nobody ever writes the FIFO: reading it would wait forever.
        let (out, hung) = output_within(&mut cmd, Duration::from_secs(5));
        assert!(
            !hung,
            "{mode:?}: nsboot run blocked opening a FIFO config.json: {out:?}"
        );
        assert_one_line_125(&out, &["config.json"], &format!("{mode:?} fifo"));
        common::assert_nothing_left(mode, bundle.state_dir());
    }
}

#[test]
fn missing_bundle_is_refused() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode);
        let missing = bundle.dir().join("nope");
        let mut cmd = bundle.run_cmd_for(&missing, &id("nobundle", mode));
        let out = common::output(&mut cmd);
        let shown = missing.display().to_string();
        assert_one_line_125(&out, &[&shown], &format!("{mode:?}"));
        common::assert_nothing_left(mode, bundle.state_dir());
    }
}

/// Spec edits that nsboot must refuse, each with what the one line must name.
type Case = (&'static str, fn(&mut Value), &'static [&'static str]);

fn refuse_all(cases: &[Case]) {
    for mode in common::modes() {
        for (name, edit, names) in cases {
            let bundle = Bundle::new(mode).edit(edit);
            assert_refused(&bundle, name, names);
        }
    }
}

#[test]
fn absurd_rlimits_are_refused() {
    refuse_all(&[
        (
            "soft-over-hard",
            |c| {
                c["process"]["rlimits"] =
                    json!([{ "type": "RLIMIT_NOFILE", "soft": 2048, "hard": 1024 }])
            },
            &["process.rlimits[0]", "RLIMIT_NOFILE", "2048"],
        ),
        (
            "unknown-rlimit",
            |c| c["process"]["rlimits"] = json!([{ "type": "RLIMIT_BOGUS", "soft": 1, "hard": 1 }]),
            &["process.rlimits[0]", "RLIMIT_BOGUS"],
        ),
        (
            "twice",
            |c| {
                let r = json!({ "type": "RLIMIT_NOFILE", "soft": 64, "hard": 64 });
                c["process"]["rlimits"] = json!([r, r]);
            },
            &["process.rlimits[1]", "RLIMIT_NOFILE"],
        ),
        (
            "negative",
            |c| {
                c["process"]["rlimits"] =
                    json!([{ "type": "RLIMIT_NOFILE", "soft": -1, "hard": 1 }])
            },
            &["process.rlimits[0]"],
        ),
        (
            // Above the kernel's nr_open: only setrlimit inside the sandbox can say no.
            "beyond-kernel",
            |c| {
                let max = u64::MAX;
                c["process"]["rlimits"] =
                    json!([{ "type": "RLIMIT_NOFILE", "soft": max, "hard": max }]);
            },
            &["RLIMIT_NOFILE"],
        ),
    ]);
}

#[test]
fn unknown_capability_is_refused() {
    refuse_all(&[
        (
            "unknown-cap",
            |c| c["process"]["capabilities"]["bounding"] = json!(["CAP_KILL", "CAP_BOGUS"]),
            &["process.capabilities.bounding", "CAP_BOGUS"],
        ),
        (
            "cap-number",
            |c| c["process"]["capabilities"]["effective"] = json!([42]),
            &["process.capabilities.effective"],
        ),
    ]);
}

#[test]
fn malformed_fields_are_refused() {
    refuse_all(&[
        (
            "no-process",
            |c| {
                c.as_object_mut().unwrap().remove("process");
            },
            &["process"],
        ),
        (
            "args-type",
            |c| c["process"]["args"] = json!("/bin/true"),
            &["process.args"],
        ),
        (
            "nul-arg",
            |c| c["process"]["args"] = json!(["/bin/echo", "a\u{0}b"]),
            &["process.args[1]", "NUL"],
        ),
        (
            "env-no-equals",
            |c| c["process"]["env"] = json!(["PATH"]),
            &["process.env[0]"],
        ),
        (
            "oci-2",
            |c| c["ociVersion"] = json!("2.0.0"),
            &["ociVersion", "2.0.0"],
        ),
        (
            "map-size-0",
            |c| {
                c["linux"]["uidMappings"] = json!([{ "containerID": 0, "hostID": 1000, "size": 0 }])
            },
            &["linux.uidMappings[0].size"],
        ),
        (
            "map-overflow",
            |c| {
                let m = json!([{ "containerID": 0, "hostID": 4294967295u32, "size": 2 }]);
                c["linux"]["uidMappings"] = m;
            },
            &["linux.uidMappings[0]", "4294967295"],
        ),
    ]);
}

#[test]
fn relative_and_dotdot_paths_are_refused() {
    refuse_all(&[
        (
            "rel-dest",
            |c| push_mount(c, "tmp/x"),
            &["mounts[6].destination", "tmp/x"],
        ),
        (
            "dotdot-dest",
            |c| push_mount(c, "/tmp/../../x"),
            &["mounts[6].destination", ".."],
        ),
        (
            "rel-cwd",
            |c| c["process"]["cwd"] = json!("tmp"),
            &["process.cwd", "tmp"],
        ),
        (
            "rel-ns-path",
            |c| c["linux"]["namespaces"][0] = json!({ "type": "pid", "path": "proc/1/ns/pid" }),
            &["linux.namespaces[0].path"],
        ),
    ]);
}

fn push_mount(c: &mut Value, dest: &str) {
    let m = json!({ "destination": dest, "type": "tmpfs", "source": "tmpfs" });
    c["mounts"].as_array_mut().unwrap().push(m);
}

#[test]
fn invalid_ids_are_refused() {
    let long = "a".repeat(2000);
    let ids = [
        "../x",
        "",
        "a/b",
        &long,
        ".",
        "..",
        "a b",
        "x\ny",
        "\u{e9}t\u{e9}",
    ];
    for mode in common::modes() {
        let bundle = Bundle::new(mode).args(&["/bin/true"]);
        for bad in ids {
            let out = bundle.run(bad);
            let ctx = format!("{mode:?} id {bad:?}");
            assert_one_line_125(&out, &["invalid container id"], &ctx);
            common::assert_nothing_left(mode, bundle.state_dir());
        }
        // The escape attempts created nothing beside the state dir either.
        let top = bundle.dir().parent().unwrap();
        let mut names: Vec<String> = fs::read_dir(top)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["bundle", "state", "xdg"], "{mode:?}");
    }
}

/// A field nsboot refuses stays refused however the JSON spells it: a key written with
/// escapes, a second copy of the key after an empty one (decoders differ on which wins), a
/// NUL written as \u0000.
#[test]
fn refused_fields_cannot_hide_behind_escapes_or_duplicate_keys() {
    let cases: [(&str, &str, &[&str]); 4] = [
        (
            "escaped-key",
            r#""linux": {"sys\u0063tl": {"kernel.panic": "1"},"#,
            &[
                "linux.sysctl[\"kernel.panic\"]",
                "separate kernel namespace",
            ],
        ),
        (
            "duplicate-key",
            r#""linux": {"sysctl": {}, "sysctl": {"kernel.panic": "1"},"#,
            &[
                "linux.sysctl[\"kernel.panic\"]",
                "separate kernel namespace",
            ],
        ),
        (
            "escaped-ns-path",
            r#""linux": {"namespaces": [{"type": "network", "p\u0061th": "/proc/1/ns/net"}, {"type": "mount"}, {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "user"}],"#,
            &["linux.namespaces[0].path"],
        ),
        (
            "escaped-nul",
            r#""linux": {"mountLabel": "", "maskedPaths": ["/proc/kcore\u0000x"],"#,
            &["linux.maskedPaths[0]", "NUL"],
        ),
    ];
    for mode in common::modes() {
        for (name, linux, names) in cases {
            let bundle = Bundle::new(mode).edit(|c| {
                let l = c["linux"].as_object_mut().unwrap();
                l.remove("namespaces");
                l.remove("maskedPaths");
            });
            let mut text = valid_text(&bundle);
            if !name.contains("ns-path") {
                // The namespaces removed above, back in their usual place.
                let ns = r#""namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "user"}],"#;
                text = text.replacen(r#""linux": {"#, &format!(r#""linux": {{{ns}"#), 1);
            }
            assert!(text.contains(r#""linux": {"#), "{text}");
            let text = text.replacen(r#""linux": {"#, linux, 1);
            raw_config(&bundle, text.as_bytes());
            assert_refused(&bundle, name, names);
        }
    }
}
