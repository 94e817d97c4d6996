//! The environments only a VM shows (scripts/vmtest sets NSBOOT_VM_ENV): AppArmor's
//! restriction of unprivileged user namespaces, and user namespaces switched off. Elsewhere
//! each test prints a skip line; where NSBOOT_VM_ENV names its environment and the refusal is
//! absent, it fails.

use std::process::Command;

use super::{check_do_run, common, one_line, output, Bundle, Mode};

/// Whether NSBOOT_VM_ENV names `env` (the VM matrix); otherwise a skip line.
fn in_vm_env(env: &str) -> bool {
    let named = std::env::var("NSBOOT_VM_ENV").is_ok_and(|v| v == env);
    if !named {
        eprintln!("skipping: NSBOOT_VM_ENV is not {env:?} (scripts/vmtest sets it)");
    }
    named
}

/// In a VM environment that refuses unprivileged user namespaces: `check` fails on a line
/// holding every part of `parts`, and `do` and `run` end with exit 125 and one line that does.
fn refused_alike(parts: &[&str]) {
    let bundle = Bundle::new(Mode::RootlessSingle);
    let (check, do_, run) = check_do_run(&bundle, &|_| {});
    assert_eq!(check.status, 1, "check must fail here: {check:?}");
    let named = |l: &str| parts.iter().all(|p| l.contains(p));
    assert!(
        check
            .stdout
            .lines()
            .any(|l| l.starts_with("fail  ") && named(l)),
        "check names none of {parts:?}: {check:?}"
    );
    for (what, out) in [("do", &do_), ("run", &run)] {
        let line = one_line(out, what);
        assert!(named(&line), "{what}: want {parts:?} in: {line}");
    }
    common::assert_nothing_left(Mode::RootlessSingle, bundle.state_dir());
}

const APPARMOR_PARTS: [&str; 3] = [
    "AppArmor",
    "kernel.apparmor_restrict_unprivileged_userns",
    "setup apparmor",
];

#[test]
fn vm_apparmor_profile_restriction_is_named_with_its_fix() {
    if in_vm_env("apparmor-profile") {
        refused_alike(&APPARMOR_PARTS);
    }
}

#[test]
fn vm_apparmor_denied_capabilities_are_named_with_their_fix() {
    if in_vm_env("apparmor-caps") {
        refused_alike(&APPARMOR_PARTS);
    }
}

#[test]
fn vm_setup_apparmor_lets_do_work() {
    if !in_vm_env("apparmor-caps") {
        return;
    }
    let mut setup = Command::new(common::nsboot_bin());
    setup.args(["setup", "apparmor"]);
    let out = output(&mut setup);
    assert_eq!(out.status, 0, "setup apparmor: {out:?}");
    let bundle = Bundle::new(Mode::RootlessSingle);
    let (check, do_, run) = check_do_run(&bundle, &|_| {});
    let profile = std::path::Path::new("/etc/apparmor.d").join(
        common::nsboot_bin()
            .to_string_lossy()
            .trim_start_matches('/')
            .replace('/', "."),
    );
    // Leave the VM as it was: the other tests of this environment expect the restriction.
    let _ = Command::new("apparmor_parser")
        .arg("-R")
        .arg(&profile)
        .status();
    let _ = std::fs::remove_file(&profile);
    for (what, out) in [("check", &check), ("do", &do_), ("run", &run)] {
        assert_eq!(out.status, 0, "{what}: {out:?}");
    }
}

#[test]
fn vm_userns_off_is_named_with_its_sysctl() {
    if in_vm_env("userns-off") {
        // Debian's switch, else the count: whichever the VM turned off.
        let clone_off = std::fs::read_to_string("/proc/sys/kernel/unprivileged_userns_clone")
            .is_ok_and(|v| v.trim() == "0");
        let parts: &[&str] = if clone_off {
            &["kernel.unprivileged_userns_clone=1"]
        } else {
            &["user.max_user_namespaces=15000"]
        };
        refused_alike(parts);
    }
}
