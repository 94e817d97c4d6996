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
        let hook = |name: &str| {
            let script = format!("sleep 0.2; echo {name} >> {}", order.display());
            json!({"path": "/bin/sh", "args": ["sh", "-c", script]})
        };
        let hooks =
            json!({"prestart": [hook("prestart")], "startContainer": [hook("startContainer")]});
        let b = b.args(&["/bin/sh", "-c", "echo app >> /tmp/shared/order"]);
        let b = common::add_tmp_and(
            b,
            vec![common::bind(&shared, "/tmp/shared", &["rbind", "rw"])],
        )
        .edit(|c| c["hooks"] = hooks);
        let out = b.run("hkrun");
        assert_eq!(out.status, 0, "{mode:?}: {out:?}");
        let text = fs::read_to_string(&order).unwrap_or_default();
        assert_eq!(text, "prestart\nstartContainer\napp\n", "{mode:?}");
        common::assert_nothing_left(mode, b.state_dir());
    }
}
