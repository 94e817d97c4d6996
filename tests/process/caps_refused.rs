//! Capability sets the kernel refuses (effective beyond permitted, inheritable beyond
//! bounding) fail `create`, as with runc, whose init meets the kernel's refusal before it
//! waits for `start`: one line with the kernel's words, 125, nothing left.

use std::time::Duration;

use serde_json::json;

use super::common::{self, Bundle};
use super::id;

#[test]
fn capability_sets_the_kernel_refuses_fail_create_in_one_line() {
    for mode in common::modes() {
        for (name, caps, set) in [
            (
                "eff",
                json!({"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": []}),
                "effective",
            ),
            (
                "inh",
                json!({"bounding": ["CAP_KILL"], "inheritable": ["CAP_CHOWN"], "permitted": ["CAP_KILL"]}),
                "inheritable",
            ),
        ] {
            let b = Bundle::new(mode).edit(|c| c["process"]["capabilities"] = caps);
            let cid = id(&format!("caps-{name}"), mode);
            let mut cmd = b.nsboot();
            cmd.arg("--root")
                .arg(b.state_dir())
                .args(["create", "--bundle"])
                .arg(b.dir())
                .arg(&cid);
            let out = common::output_within(&mut cmd, Duration::from_secs(30));
            let mut del = b.nsboot();
            del.arg("--root")
                .arg(b.state_dir())
                .args(["delete", "--force", &cid]);
            let _ = common::output(&mut del);
            assert!(
                out.status == 125
                    && out.stderr.trim().lines().count() == 1
                    && out.stderr.contains(&format!("process.capabilities.{set}"))
                    && out.stderr.contains("Operation not permitted"),
                "{mode:?}: {name}: create must fail in one line with the kernel's words: {out:?}"
            );
            common::assert_nothing_left(mode, b.state_dir());
        }
    }
}
