//! Masked paths are bound from the real null device only (CVE-2025-31133), and /dev nodes are
//! never bound through a symlink the image or a volume placed in /dev (CVE-2025-31133,
//! CVE-2025-52565): the container's /dev/null pointing at /proc/sys/kernel/core_pattern must
//! never turn the masks into a writable core_pattern.

use std::fs;
use std::os::unix::fs::symlink;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;

use serde_json::json;

use crate::common::{self, private_rootfs, sh, Bundle, Output};
use crate::id;

const CORE_PATTERN: &str = "/proc/sys/kernel/core_pattern";

/// What the masked files show, then whether writing the host's own core_pattern back through
/// one of them works (the same text: harmless if the attack succeeds).
fn probe() -> String {
    format!(
        "cat /proc/keys /proc/timer_list; echo --; \
         cat {CORE_PATTERN} > /proc/timer_list 2>/dev/null; echo w=$?"
    )
}

/// Runs `bundle` as `test`: either nsboot refused (one line, 125) or the masks are empty and
/// unwritable; and the host's core_pattern is still `pattern`.
fn assert_blocked(bundle: &Bundle, test: &str, pattern: &str) {
    let mode = bundle.mode();
    let out = bundle.run(&id(test, mode));
    let refused = out.status == 125 && out.stdout.is_empty() && out.stderr.lines().count() == 1;
    let masked = out.status == 0 && out.stdout == "--\nw=1\n";
    assert!(refused || masked, "{mode:?}: {test}: {out:?}");
    assert_eq!(fs::read_to_string(CORE_PATTERN).unwrap(), pattern, "{test}");
    common::assert_nothing_left(mode, bundle.state_dir());
}

/// A host dir for /dev (the mode's user's) whose `name` is a symlink to `target`.
fn dev_dir(bundle: &Bundle, name: &str, target: &str) -> PathBuf {
    let dir = bundle.dir().parent().unwrap().join("devsrc");
    fs::create_dir(&dir).unwrap();
    symlink(target, dir.join(name)).unwrap();
    common::give_to(bundle.mode(), &dir);
    common::give_to(bundle.mode(), &dir.join(name));
    dir
}

#[test]
fn masks_never_come_from_a_dev_null_symlink() {
    let pattern = fs::read_to_string(CORE_PATTERN).unwrap();
    for mode in common::modes() {
        // A private rootfs: a vulnerable nsboot creates the symlink's target in it.
        let (bundle, _) = private_rootfs(sh(mode, &probe()), true);
        let dev = dev_dir(&bundle, "null", CORE_PATTERN);
        let bundle = bundle.edit(|c| {
            c["mounts"][1] = common::bind(&dev, "/dev", &["rbind", "nosuid"]);
        });
        // `create` builds the same root, in a supervisor that outlives it: refused there too.
        let out = create(&bundle, &id("nullsym-create", mode));
        let refused = out.status == 125 && out.stderr.lines().count() == 1;
        assert!(refused, "{mode:?}: create: {out:?}");
        common::assert_nothing_left(mode, bundle.state_dir());
        assert_blocked(&bundle, "nullsym", &pattern);
    }
}

/// `nsboot create`, its output in a file (a created sandbox would hold a pipe open).
fn create(bundle: &Bundle, id: &str) -> Output {
    let out = bundle.dir().parent().unwrap().join(format!("{id}.out"));
    let file = fs::File::create(&out).unwrap();
    let mut cmd = bundle.nsboot();
    cmd.arg("--root").arg(bundle.state_dir()).arg("create");
    cmd.arg("--bundle").arg(bundle.dir()).arg(id);
    cmd.stdout(file.try_clone().unwrap()).stderr(file);
    let status = cmd.status().unwrap();
    Output {
        status: status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
        stdout: String::new(),
        stderr: fs::read_to_string(&out).unwrap_or_default(),
    }
}

#[test]
fn masks_refuse_a_dev_null_that_is_not_the_null_device() {
    let pattern = fs::read_to_string(CORE_PATTERN).unwrap();
    for mode in common::modes() {
        let bundle = sh(mode, &probe());
        let leak = bundle.dir().parent().unwrap().join("leak");
        fs::write(&leak, "LEAKED\n").unwrap();
        common::give_to(mode, &leak);
        let bundle = bundle.edit(|c| {
            let m = common::bind(&leak, "/dev/null", &["bind"]);
            c["mounts"].as_array_mut().unwrap().push(m);
        });
        // A mask showing LEAKED is caught too: the masks' output must be empty.
        assert_blocked(&bundle, "nullfile", &pattern);
    }
}

#[test]
fn dev_console_symlink_in_a_bound_dev_is_never_followed() {
    // runc bound the terminal onto the image's /dev/console, following a symlink there to
    // core_pattern (CVE-2025-52565). nsboot must not bind or write anything through it.
    let pattern = fs::read_to_string(CORE_PATTERN).unwrap();
    for mode in common::modes() {
        let (bundle, _) = private_rootfs(Bundle::new(mode), true);
        let dev = dev_dir(&bundle, "console", CORE_PATTERN);
        let script = format!("stat -f -c %T {CORE_PATTERN}; readlink /dev/console; echo end");
        let bundle = bundle.args(&["/bin/sh", "-c", &script]).edit(|c| {
            c["mounts"][1] = common::bind(&dev, "/dev", &["rbind", "nosuid"]);
            c["process"]["env"]
                .as_array_mut()
                .unwrap()
                .push(json!("TERM=dumb"));
        });
        let out = bundle.run(&id("console", mode));
        let want = format!("proc\n{CORE_PATTERN}\nend\n");
        assert_eq!(
            (out.status, out.stdout.as_str()),
            (0, want.as_str()),
            "{mode:?}: {out:?}"
        );
        assert_eq!(fs::read_to_string(CORE_PATTERN).unwrap(), pattern);
        common::assert_nothing_left(mode, bundle.state_dir());
    }
}
