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

const APPARMOR_PARTS: [&str; 2] = ["AppArmor", "setup apparmor"];

#[test]
fn vm_apparmor_profile_restriction_is_named_with_its_fix() {
    if in_vm_env("apparmor-profile") {
        refused_alike(&APPARMOR_PARTS);
    }
}

/// Ubuntu's unprivileged_userns shape, then `nsboot setup apparmor`. Debian's kernel has no
/// transition on userns creation, so the VM attaches the restricting profile to nsboot's path
/// (and it confines nsboot as root too): the test removes it before the setup, then checks that
/// the profile nsboot installs is the one in force and lets check, do and run work. One test,
/// so that nothing runs while the restriction is lifted.
#[test]
fn vm_apparmor_denied_capabilities_are_named_and_setup_apparmor_lets_do_work() {
    if !in_vm_env("apparmor-nocaps") {
        return;
    }
    refused_alike(&APPARMOR_PARTS);

    std::fs::write("/sys/kernel/security/apparmor/.remove", "nsboot-nocaps")
        .expect("removing the VM's restricting profile");
    let mut setup = Command::new(common::nsboot_bin());
    setup.args(["setup", "apparmor"]);
    let out = output(&mut setup);
    assert_eq!(out.status, 0, "setup apparmor: {out:?}");
    let name = common::nsboot_bin()
        .to_string_lossy()
        .trim_start_matches('/')
        .replace('/', ".");
    let loaded = std::fs::read_to_string("/sys/kernel/security/apparmor/profiles").unwrap();
    assert!(
        loaded.lines().any(|l| l.starts_with(&format!("{name} "))),
        "setup's profile {name} is not loaded: {loaded}"
    );
    let bundle = Bundle::new(Mode::RootlessSingle);
    let (check, do_, run) = check_do_run(&bundle, &|_| {});
    let mut label = bundle.nsboot();
    label.args(["--root"]).arg(bundle.state_dir());
    label.args(["do", "--", "cat", "/proc/self/attr/current"]);
    let label = output(&mut label);
    let _ = std::fs::write("/sys/kernel/security/apparmor/.remove", &name);
    let _ = std::fs::remove_file(std::path::Path::new("/etc/apparmor.d").join(&name));
    for (what, out) in [("check", &check), ("do", &do_), ("run", &run)] {
        assert_eq!(out.status, 0, "{what}: {out:?}");
    }
    assert!(
        label.stdout.starts_with(&name),
        "the sandbox runs under {:?}, not setup's profile {name}",
        label.stdout
    );
    common::assert_nothing_left(Mode::RootlessSingle, bundle.state_dir());
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
