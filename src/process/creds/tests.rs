//! creds: pure helpers, then `apply` for real in forked children that enter a user namespace.

use super::*;
use nix::sys::wait::WaitStatus;
use oci_spec::runtime::{Capabilities, LinuxCapabilities, LinuxSeccompAction, LinuxSyscall};
use std::io::{Read, Write};

#[test]
fn maps_parse_and_describe() {
    let map = parse_map("         0       1000          1\n         1     100000      65536\n");
    assert_eq!(map, vec![(0, 1), (1, 65536)]);
    assert_eq!(describe_ranges(&map), "0-0, 1-65536");
    assert_eq!(describe_ranges(&[]), "nothing");
    assert_eq!(first_unmapped(&[0, 5, 70000], &map), Some(70000));
    assert_eq!(first_unmapped(&[0, 5], &map), None);
}

#[test]
fn unmapped_uid_message_names_the_fix() {
    let e = not_mapped("uid", 1000, "uidMappings", &[(0, 1)]);
    assert_eq!(
        e.to_string(),
        "process.user.uid 1000 is not mapped in the user namespace (uidMappings cover 0-0): add a mapping or run with a subordinate range"
    );
}

#[test]
fn errors_cross_processes_as_data() {
    let e = CredsError::Chdir {
        cwd: "/srv/x".into(),
        uid: 1000,
        errno: Errno(libc::ENOENT),
    };
    let back: CredsError = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
    assert_eq!(back.to_string(), e.to_string());
    assert!(e.to_string().contains("/srv/x") && e.to_string().contains("create it"));
}

/// Run `f` in a forked child; its Err (or panic) comes back as the test's Err, and so does any
/// end but exit status 0 (a signal, say: a seccomp filter's SIGSYS). `map` is called in the
/// parent with the child's pid once the child has unshared its user namespace.
pub(crate) fn in_userns_child(
    map: impl FnOnce(i32) -> Result<(), String>,
    f: impl FnOnce() -> Result<(), String>,
) -> Result<(), String> {
    let (mut to_parent_r, mut to_parent_w) = pipe();
    let (mut to_child_r, mut to_child_w) = pipe();
    // SAFETY: the child only runs `f`, which makes syscalls and allocates (glibc's malloc is
    // fork-safe), then leaves with _exit without running the parent's destructors.
    match unsafe { nix::unistd::fork() }.unwrap() {
        nix::unistd::ForkResult::Child => {
            drop((to_parent_r, to_child_w));
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER)
                    .map_err(|e| format!("unshare: {e}"))?;
                to_parent_w.write_all(b"u").unwrap();
                let mut b = [0u8];
                to_child_r
                    .read_exact(&mut b)
                    .map_err(|e| format!("waiting for the map: {e}"))?;
                f()
            }));
            let msg = match r {
                Ok(Ok(())) => String::new(),
                Ok(Err(m)) => m,
                Err(_) => "child panicked".into(),
            };
            let code = i32::from(!msg.is_empty());
            let _ = to_parent_w.write_all(msg.as_bytes());
            // SAFETY: leaving the forked child without unwinding into the test harness.
            unsafe { libc::_exit(code) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop((to_parent_w, to_child_r));
            let mut b = [0u8];
            let mapped = match to_parent_r.read_exact(&mut b) {
                Ok(()) => map(child.as_raw()),
                Err(e) => Err(format!("child did not unshare: {e}")),
            };
            if mapped.is_ok() {
                to_child_w.write_all(b"m").unwrap();
            }
            drop(to_child_w);
            let mut msg = String::new();
            to_parent_r.read_to_string(&mut msg).unwrap();
            let ended = nix::sys::wait::waitpid(child, None).unwrap();
            mapped?;
            match ended {
                WaitStatus::Exited(_, 0) if msg.is_empty() => Ok(()),
                WaitStatus::Exited(..) if !msg.is_empty() => Err(msg),
                other => Err(format!("the child ended with {other:?}: {msg}")),
            }
        }
    }
}

#[test]
fn a_child_that_dies_or_fails_silently_fails_the_helper() {
    // A seccomp filter's kill: SIGSYS (no core file).
    let sigsys = in_userns_child(single_map, || {
        let none = 0;
        nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, none, none)
            .map_err(|e| e.to_string())?;
        nix::sys::signal::raise(nix::sys::signal::Signal::SIGSYS).map_err(|e| e.to_string())
    })
    .unwrap_err();
    assert!(sigsys.contains("SIGSYS"), "{sigsys}");
    // A non-zero exit with nothing to say.
    let silent = in_userns_child(single_map, || {
        // SAFETY: leaving the forked child at once, as a crash in libc would.
        unsafe { libc::_exit(3) }
    })
    .unwrap_err();
    assert!(
        silent.contains("Exited") && silent.contains('3'),
        "{silent}"
    );
    assert_eq!(in_userns_child(single_map, || Ok(())), Ok(()));
}

fn pipe() -> (std::fs::File, std::fs::File) {
    let (r, w) = nix::unistd::pipe().unwrap();
    (r.into(), w.into())
}

/// The caller's own ids as root of the namespace, with setgroups denied: what an unprivileged
/// user can write.
pub(crate) fn single_map(pid: i32) -> Result<(), String> {
    let w = |f: &str, s: String| {
        std::fs::write(format!("/proc/{pid}/{f}"), s).map_err(|e| format!("{f}: {e}"))
    };
    w("setgroups", "deny".into())?;
    w("uid_map", format!("0 {} 1", Uid::effective()))?;
    w("gid_map", format!("0 {} 1", Gid::effective()))
}

fn status_field(name: &str) -> String {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = s
        .lines()
        .find(|l| l.starts_with(&format!("{name}:")))
        .unwrap()
        .to_string();
    line[name.len() + 1..].trim().to_string()
}

fn expect(name: &str, want: &str) -> Result<(), String> {
    let got = status_field(name);
    (got == want)
        .then_some(())
        .ok_or(format!("{name}: got {got}, want {want}"))
}

fn caps_of(names: &[&str]) -> Option<Capabilities> {
    Some(
        names
            .iter()
            .map(|n| serde_json::from_value(serde_json::json!(n)).unwrap())
            .collect(),
    )
}

fn process(
    uid: u32,
    gid: u32,
    bounding: &[&str],
    eff: &[&str],
    amb: &[&str],
    nnp: bool,
) -> Process {
    let mut c = LinuxCapabilities::default();
    c.set_bounding(caps_of(bounding));
    c.set_effective(caps_of(eff));
    c.set_permitted(caps_of(eff));
    c.set_inheritable(caps_of(amb));
    c.set_ambient(caps_of(amb));
    let mut p = Process::default();
    p.set_capabilities(Some(c));
    p.user_mut().set_uid(uid);
    p.user_mut().set_gid(gid);
    p.set_no_new_privileges(Some(nnp));
    p.set_rlimits(None);
    p
}

#[test]
fn root_app_gets_exactly_the_spec_caps_and_seccomp_without_nnp() {
    // close(9999) answers EXDEV, any other close is untouched: a filter with a condition,
    // loaded before the caps drop because no_new_privs is off.
    let mut rule = LinuxSyscall::default();
    rule.set_names(vec!["close".into(), "no_such_syscall".into()]);
    rule.set_action(LinuxSeccompAction::ScmpActErrno);
    rule.set_errno_ret(Some(libc::EXDEV as u32));
    let arg = oci_spec::runtime::LinuxSeccompArgBuilder::default()
        .value(9999u64)
        .build()
        .unwrap();
    rule.set_args(Some(vec![arg]));
    let mut profile = LinuxSeccomp::default();
    profile.set_syscalls(Some(vec![rule]));
    let p = process(0, 0, &["CAP_CHOWN", "CAP_KILL"], &["CAP_KILL"], &[], false);
    in_userns_child(single_map, || {
        apply(&p, Some(&profile), None).map_err(|e| e.to_string())?;
        expect("CapEff", "0000000000000020")?;
        expect("CapPrm", "0000000000000020")?;
        expect("CapInh", "0000000000000000")?;
        expect("CapAmb", "0000000000000000")?;
        expect("CapBnd", "0000000000000021")?;
        expect("NoNewPrivs", "0")?;
        expect("Seccomp", "2")?;
        // SAFETY: closing fds that do not exist, to see the filter's answer.
        let (filtered, plain) = unsafe { (libc::close(9999), libc::close(9998)) };
        let errno = NixErrno::last();
        (filtered == -1 && plain == -1 && errno == NixErrno::EBADF)
            .then_some(())
            .ok_or("close")?;
        // SAFETY: as above.
        unsafe { libc::close(9999) };
        (NixErrno::last() == NixErrno::EXDEV)
            .then_some(())
            .ok_or("close(9999) not EXDEV".into())
    })
    .unwrap();
}

#[test]
fn unmapped_uid_is_refused_with_the_map() {
    let p = process(1000, 0, &[], &[], &[], true);
    let err = in_userns_child(single_map, || match apply(&p, None, None) {
        Err(e @ CredsError::NotMapped { .. }) => Err(e.to_string()),
        other => Err(format!("unexpected: {other:?}")),
    })
    .unwrap_err();
    assert!(
        err.starts_with(
            "process.user.uid 1000 is not mapped in the user namespace (uidMappings cover 0-0)"
        ),
        "{err}"
    );
}

#[test]
fn additional_gids_need_setgroups() {
    let mut p = process(0, 0, &[], &[], &[], true);
    p.user_mut().set_additional_gids(Some(vec![0]));
    in_userns_child(single_map, || {
        apply(&p, None, None).map_err(|e| e.to_string())
    })
    .unwrap();
    p.user_mut().set_additional_gids(Some(vec![5]));
    let err = in_userns_child(single_map, || {
        apply(&p, None, None).map_err(|e| e.to_string())
    })
    .unwrap_err();
    assert!(
        err.contains("additionalGids [5] need a gid map written by newgidmap"),
        "{err}"
    );
}

#[test]
fn missing_cwd_is_named() {
    let mut p = process(0, 0, &[], &[], &[], true);
    p.set_cwd("/nonexistent/nsboot-test".into());
    let err = in_userns_child(single_map, || {
        apply(&p, None, None).map_err(|e| e.to_string())
    })
    .unwrap_err();
    assert!(
        err.starts_with("process.cwd /nonexistent/nsboot-test: cannot enter it as uid 0"),
        "{err}"
    );
}

#[test]
fn non_root_app_keeps_only_its_caps_across_execve() {
    if !Uid::effective().is_root() {
        eprintln!("skipped: writing a multi-id map needs root on the host");
        return;
    }
    let wide = |pid: i32| {
        let w = |f: &str| {
            std::fs::write(format!("/proc/{pid}/{f}"), "0 0 65536").map_err(|e| format!("{f}: {e}"))
        };
        w("uid_map").and_then(|_| w("gid_map"))
    };
    let mut p = process(
        1000,
        1000,
        &["CAP_CHOWN", "CAP_NET_BIND_SERVICE"],
        &["CAP_NET_BIND_SERVICE"],
        &["CAP_NET_BIND_SERVICE"],
        true,
    );
    p.user_mut().set_additional_gids(Some(vec![2000, 3000]));
    p.user_mut().set_umask(Some(0o027));
    in_userns_child(wide, || {
        apply(&p, None, None).map_err(|e| e.to_string())?;
        expect("Uid", "1000\t1000\t1000\t1000")?;
        expect("Groups", "2000 3000")?;
        for set in ["CapEff", "CapPrm", "CapInh", "CapAmb"] {
            expect(set, "0000000000000400")?;
        }
        expect("CapBnd", "0000000000000401")?;
        expect("NoNewPrivs", "1")?;
        let old = umask(Mode::empty());
        (old.bits() == 0o027).then_some(()).ok_or(format!("umask {:o}", old.bits()))?;
        // After execve a non-root process keeps what is ambient, and nothing else.
        let script = "grep -q '^CapEff:.0000000000000400$' /proc/self/status && grep -q '^CapPrm:.0000000000000400$' /proc/self/status";
        let st = std::process::Command::new("/bin/sh").args(["-c", script]).status().map_err(|e| e.to_string())?;
        st.success().then_some(()).ok_or(format!("after execve: {st}"))
    })
    .unwrap();
}
