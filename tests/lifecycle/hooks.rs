//! OCI hooks around the lifecycle: order, state on stdin, failure semantics.

use std::fs;

use serde_json::json;

use crate::common::{self, Bundle};
use crate::support::*;
use crate::{create_and_start, delete_and_check, sleeper};

/// A hook that appends "NAME <how many times the id appears in its stdin>" to `log`.
fn hook(name: &str, log: &std::path::Path, id: &str) -> serde_json::Value {
    let script = format!(
        "echo {name} $(grep -c '\"id\":\"{id}\"') >> {}",
        log.display()
    );
    json!({"path": "/bin/sh", "args": ["sh", "-c", script], "env": ["PATH=/usr/bin:/bin"], "timeout": 10})
}

#[test]
fn runtime_hooks_run_in_lifecycle_order_with_the_state_on_stdin() {
    for mode in common::modes() {
        let b = sleeper(mode);
        let log = top(&b).join("hooks.log");
        let hooks = json!({
            "prestart": [hook("prestart", &log, "hk")],
            "createRuntime": [hook("createRuntime", &log, "hk")],
            "poststart": [hook("poststart", &log, "hk")],
            "poststop": [hook("poststop", &log, "hk")],
        });
        let b = b.edit(|c| c["hooks"] = hooks);
        create_and_start(&b, "hk");
        delete_and_check(&b, "hk", true);
        let text = fs::read_to_string(&log).unwrap_or_default();
        assert_eq!(
            text, "prestart 1\ncreateRuntime 1\npoststart 1\npoststop 1\n",
            "{mode:?}"
        );
    }
}

#[test]
fn a_failing_create_runtime_hook_fails_create_and_leaves_nothing() {
    for mode in common::modes() {
        let failing =
            json!({"path": "/bin/sh", "args": ["sh", "-c", "echo hook-said-no >&2; exit 1"]});
        let b = sleeper(mode).edit(|c| c["hooks"] = json!({"createRuntime": [failing]}));
        let c = create(&b, "hookfail", &[]);
        assert_ne!(
            c.status, 0,
            "{mode:?}: create succeeded despite the failing hook"
        );
        assert!(
            c.stderr.contains("createRuntime") && c.stderr.contains("hook-said-no"),
            "{mode:?}: {}",
            c.stderr
        );
        assert!(!c.stderr.contains("started"), "{mode:?}: the app ran");
        common::assert_nothing_left(mode, b.state_dir());
    }
}

/// A foreground run with hooks between create and start keeps the application waiting until
/// they ran (without such hooks the application execs as soon as its root is ready).
#[test]
fn a_foreground_run_starts_its_application_after_the_start_hooks() {
    for mode in common::modes() {
        let b = Bundle::new(mode);
        let shared = top(&b).join("shared");
        fs::create_dir(&shared).unwrap();
        common::give_to(mode, &shared);
        let order = shared.join("order");
        // Slow hooks: an application started too early would write first.
        // startContainer runs in the container, where the shared dir is /tmp/shared (as root
        // only: an unprivileged user cannot join the application before it execs).
        let hook = |name: &str| {
            let dest = match name {
                "startContainer" => "/tmp/shared/order".into(),
                _ => order.display().to_string(),
            };
            let script = format!("sleep 0.2; echo {name} >> {dest}");
            json!({"path": "/bin/sh", "args": ["sh", "-c", script]})
        };
        let last = match mode.is_rootless() {
            true => "createRuntime",
            false => "startContainer",
        };
        let hooks = json!({"prestart": [hook("prestart")], last: [hook(last)]});
        let b = b.args(&["/bin/sh", "-c", "echo app >> /tmp/shared/order"]);
        let b = common::add_tmp_and(
            b,
            vec![common::bind(&shared, "/tmp/shared", &["rbind", "rw"])],
        )
        .edit(|c| c["hooks"] = hooks);
        let out = b.run("hkrun");
        assert_eq!(out.status, 0, "{mode:?}: {out:?}");
        let text = fs::read_to_string(&order).unwrap_or_default();
        assert_eq!(text, format!("prestart\n{last}\napp\n"), "{mode:?}");
        common::assert_nothing_left(mode, b.state_dir());
    }
}

/// A shared dir the bundle's user can write, mounted at /tmp/shared in the container.
fn with_shared(b: Bundle) -> (Bundle, std::path::PathBuf) {
    let shared = top(&b).join("shared");
    fs::create_dir(&shared).unwrap();
    common::give_to(b.mode(), &shared);
    let b = common::add_tmp_and(
        b,
        vec![common::bind(&shared, "/tmp/shared", &["rbind", "rw"])],
    );
    (b, shared)
}

fn sh_hook(script: &str) -> serde_json::Value {
    json!({"path": "/bin/sh", "args": ["sh", "-c", script], "env": ["PATH=/usr/bin:/bin", "HOOKVAR=from-the-spec"], "timeout": 10})
}

#[test]
fn container_hooks_run_in_the_containers_namespaces_with_their_env() {
    for mode in common::modes() {
        if mode.is_rootless() {
            // Refused with one line: the application cannot be joined before it execs.
            let b =
                sleeper(mode).edit(|c| c["hooks"] = json!({"startContainer": [sh_hook("true")]}));
            let c = create(&b, "hkns", &[]);
            assert_eq!(c.status, 0, "{mode:?}: create: {}", c.stderr);
            let s = nsb(&b, &["start", "hkns"]);
            assert!(
                s.status == 125 && s.stderr.contains("cannot join"),
                "{mode:?}: {s:?}"
            );
            delete_and_check(&b, "hkns", true);
            continue;
        }
        let (b, shared) = with_shared(sleeper(mode).edit(|c| c["hostname"] = json!("hookbox")));
        let log = shared.join("log");
        let hooks = json!({
            // Its path resolves in the runtime's mount namespace: the log is a host path.
            "createContainer": [sh_hook(&format!("echo create $(hostname) $HOOKVAR >> {}", log.display()))],
            // Its path resolves in the container's: /bin/sh is the container's busybox.
            "startContainer": [sh_hook("echo start $(hostname) $HOOKVAR $(ls /tmp/shared) >> /tmp/shared/log")],
            "prestart": [sh_hook(&format!("echo prestart $(hostname) >> {}", log.display()))],
        });
        let b = b.edit(|c| c["hooks"] = hooks);
        create_and_start(&b, "hkns");
        let host = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        let text = fs::read_to_string(&log).unwrap_or_default();
        assert_eq!(
            text,
            format!(
                "prestart {}\ncreate hookbox from-the-spec\nstart hookbox from-the-spec log\n",
                host.trim()
            ),
            "{mode:?}"
        );
        delete_and_check(&b, "hkns", true);
    }
}

#[test]
fn a_failing_poststart_hook_fails_start_and_stops_the_container() {
    for mode in common::modes() {
        let b = sleeper(mode).edit(|c| {
            c["hooks"] = json!({"poststart": [sh_hook("echo poststart-said-no >&2; exit 1")]})
        });
        let c = create(&b, "psfail", &[]);
        assert_eq!(c.status, 0, "{mode:?}: create: {}", c.stderr);
        let s = nsb(&b, &["start", "psfail"]);
        assert!(
            s.status != 0
                && s.stderr.contains("poststart")
                && s.stderr.contains("poststart-said-no"),
            "{mode:?}: start with a failing poststart hook: {s:?}"
        );
        wait_status(&b, "psfail", "stopped");
        delete_and_check(&b, "psfail", false);
    }
}

#[test]
fn delete_reports_a_failing_poststop_hook_after_the_process_is_gone() {
    for mode in common::modes() {
        let (b, shared) = with_shared(sleeper(mode));
        let log = shared.join("log");
        // The state on stdin names the application: it must be gone when poststop runs.
        let probe = format!(
            "pid=$(sed 's/.*\"pid\":\\([0-9]*\\).*/\\1/'); if [ -e /proc/$pid ]; then echo alive; else echo gone; fi >> {}",
            log.display()
        );
        let hooks = json!({"poststop": [sh_hook(&probe), sh_hook("echo poststop-said-no >&2; exit 1"), sh_hook(&format!("echo last >> {}", log.display()))]});
        let b = b.edit(|c| c["hooks"] = hooks);
        create_and_start(&b, "pstop");
        let app = state(&b, "pstop")["pid"].as_i64().unwrap();
        assert!(app > 0, "{mode:?}");
        let d = nsb(&b, &["delete", "--force", "pstop"]);
        assert!(
            d.status != 0 && d.stderr.contains("poststop") && d.stderr.contains("poststop-said-no"),
            "{mode:?}: delete with a failing poststop hook: {d:?}"
        );
        common::assert_nothing_left(mode, b.state_dir());
        let text = fs::read_to_string(&log).unwrap_or_default();
        assert_eq!(
            text, "gone\nlast\n",
            "{mode:?}: poststop saw the application (pid {app})"
        );
    }
}
