//! Rootless reach: wherever an unprivileged user meets a refusal, `check`, `do` and `run` name
//! the same cause and the same fix, from one piece of code.
//!
//! Here, what this host can show for real: a seccomp filter like a container's (user
//! namespaces or sethostname refused, with EPERM or ENOSYS), a newuidmap without its setuid
//! bit, one whose owner is unmapped in an outer user namespace, an outer user namespace whose
//! /proc has overmounts. The VM-only environments (AppArmor's restriction, user namespaces
//! switched off) run when NSBOOT_VM_ENV names them (`apparmor-profile`, `apparmor-nocaps`,
//! `userns-off`; scripts/vmtest sets it) and otherwise print a skip line.

mod common;

use std::os::unix::process::CommandExt;
use std::process::Command;

use common::{output, Bundle, Mode, Output};

#[path = "reach/vm.rs"]
mod vm;

const CONTAINER_SECCOMP: &str = "the container's seccomp profile forbids user namespaces: run it with --security-opt seccomp=unconfined";

/// A classic BPF seccomp program, built before the fork (the child only installs it).
struct Filter(Vec<libc::sock_filter>);

const LD_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const JSET: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
const RET: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const ALLOW: u32 = 0x7fff_0000;
const ERRNO: u32 = 0x0005_0000;

fn op(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

impl Filter {
    /// As Docker's default profile for a container without CAP_SYS_ADMIN: unshare and a
    /// clone of a user namespace fail with `errno`, clone3 with ENOSYS (so glibc falls back).
    fn userns(errno: i32) -> Filter {
        Filter(vec![
            op(LD_ABS, 0, 0, 4),
            op(JEQ, 0, 6, AUDIT_ARCH_X86_64),
            op(LD_ABS, 0, 0, 0),
            op(JEQ, 6, 0, libc::SYS_unshare as u32),
            op(JEQ, 4, 0, libc::SYS_clone3 as u32),
            op(JEQ, 0, 2, libc::SYS_clone as u32),
            op(LD_ABS, 0, 0, 16),
            op(JSET, 2, 0, libc::CLONE_NEWUSER as u32),
            op(RET, 0, 0, ALLOW),
            op(RET, 0, 0, ERRNO | libc::ENOSYS as u32),
            op(RET, 0, 0, ERRNO | errno as u32),
        ])
    }

    /// sethostname refused with EPERM, everything else allowed.
    fn hostname() -> Filter {
        Filter(vec![
            op(LD_ABS, 0, 0, 4),
            op(JEQ, 0, 2, AUDIT_ARCH_X86_64),
            op(LD_ABS, 0, 0, 0),
            op(JEQ, 1, 0, libc::SYS_sethostname as u32),
            op(RET, 0, 0, ALLOW),
            op(RET, 0, 0, ERRNO | libc::EPERM as u32),
        ])
    }

    /// `cmd` runs under the filter (installed by root, so without no_new_privs: setpriv and
    /// the setuid newuidmap work as they do in a container).
    fn apply(self, cmd: &mut Command) {
        let prog = Box::leak(self.0.into_boxed_slice());
        let fprog = Box::leak(Box::new(libc::sock_fprog {
            len: prog.len() as u16,
            filter: prog.as_mut_ptr(),
        }));
        // An address, which is Send: the program is leaked, so it lives as long as the child.
        let fprog = fprog as *const libc::sock_fprog as usize;
        // SAFETY: the child only calls prctl with a program that lives for the whole process
        // (leaked above); nothing is allocated between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let p = fprog as *const libc::sock_fprog;
                if libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, p) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
}

/// Only root can install a filter without no_new_privs, and switch to the test user.
fn root_here(what: &str) -> bool {
    let root = common::is_root();
    if !root {
        eprintln!("skipping {what}: needs root (a seccomp filter without no_new_privs)");
    }
    root
}

/// The one stderr line, exit 125.
fn one_line(out: &Output, ctx: &str) -> String {
    assert_eq!(out.status, 125, "{ctx}: {out:?}");
    let line = out.stderr.trim_end();
    assert!(
        !line.is_empty() && !line.contains('\n'),
        "{ctx}: want one line: {out:?}"
    );
    line.to_string()
}

/// `nsboot check`, `do -- true` and `run` of `bundle`, each with `prepare` applied.
fn check_do_run(bundle: &Bundle, prepare: &dyn Fn(&mut Command)) -> (Output, Output, Output) {
    let mut check = bundle.nsboot();
    check.arg("check");
    prepare(&mut check);
    let mut do_ = bundle.nsboot();
    do_.arg("--root")
        .arg(bundle.state_dir())
        .args(["do", "--", "true"]);
    prepare(&mut do_);
    let mut run = bundle.run_cmd(&common::test_id("rc", "run", bundle.mode()));
    prepare(&mut run);
    (output(&mut check), output(&mut do_), output(&mut run))
}

fn seccomp_refusal_is_named_alike(errno: i32) {
    let bundle = Bundle::new(Mode::RootlessSingle);
    let (check, do_, run) = check_do_run(&bundle, &|c| Filter::userns(errno).apply(c));
    assert_eq!(check.status, 1, "check: {check:?}");
    let probe = check
        .stdout
        .lines()
        .find(|l| l.starts_with("fail  user namespace probe: "))
        .unwrap_or_else(|| panic!("no failed probe: {check:?}"));
    assert!(probe.ends_with(CONTAINER_SECCOMP), "check: {probe}");
    for (what, out) in [("do", &do_), ("run", &run)] {
        let line = one_line(out, what);
        assert!(
            line.starts_with("nsboot: creating the sandbox's namespaces: ")
                && line.ends_with(CONTAINER_SECCOMP),
            "{what}: {line}"
        );
    }
    common::assert_nothing_left(Mode::RootlessSingle, bundle.state_dir());
}

#[test]
fn seccomp_forbidding_user_namespaces_is_named_alike_by_check_do_and_run() {
    if root_here("the seccomp EPERM case") {
        seccomp_refusal_is_named_alike(libc::EPERM);
    }
}

#[test]
fn enosys_for_user_namespaces_is_treated_like_eperm() {
    if root_here("the seccomp ENOSYS case") {
        seccomp_refusal_is_named_alike(libc::ENOSYS);
    }
}

#[test]
fn refused_sethostname_is_named_and_spec_leaves_hostname_out() {
    if !root_here("the sethostname case") {
        return;
    }
    let bundle = Bundle::new(Mode::RootlessSingle);
    let (check, do_, run) = check_do_run(&bundle, &|c| Filter::hostname().apply(c));
    // `do` sets no hostname, so it works; a config.json with one cannot, and says why.
    assert_eq!((check.status, do_.status), (0, 0), "{check:?}\n{do_:?}");
    let item = check
        .stdout
        .lines()
        .find(|l| l.starts_with("warn  hostname: "))
        .unwrap_or_else(|| panic!("no hostname warning: {check:?}"));
    let cause =
        "the container's seccomp profile forbids sethostname: leave hostname out of config.json";
    assert!(item.contains(cause), "check: {item}");
    let line = one_line(&run, "run");
    assert!(
        line.starts_with("nsboot: setting hostname \"nsboot\": Operation not permitted: ")
            && line.contains(cause),
        "run: {line}"
    );
    // `nsboot spec` here writes a config.json without one.
    let dir = bundle.dir().join("generated");
    std::fs::create_dir(&dir).unwrap();
    common::give_to(Mode::RootlessSingle, &dir);
    let mut spec = bundle.nsboot();
    spec.args(["spec", "--bundle"]).arg(&dir);
    Filter::hostname().apply(&mut spec);
    let out = output(&mut spec);
    assert_eq!(out.status, 0, "{out:?}");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert!(config.get("hostname").is_none(), "{config}");
    common::assert_nothing_left(Mode::RootlessSingle, bundle.state_dir());
}

/// uid_map lines inside, whitespace collapsed.
fn maps(out: &Output) -> Vec<String> {
    out.stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// A spec without mappings, printing its uid map.
fn unmapped_bundle() -> Bundle {
    Bundle::new(Mode::RootlessSubid)
        .args(&["/bin/cat", "/proc/self/uid_map"])
        .edit(|c| {
            let linux = c["linux"].as_object_mut().unwrap();
            linux.remove("uidMappings");
            linux.remove("gidMappings");
        })
}

#[test]
fn newuidmap_without_setuid_falls_back_to_a_single_map() {
    if !common::rootless_modes().contains(&Mode::RootlessSubid) {
        return;
    }
    let bundle = unmapped_bundle();
    let plain = bundle.dir().join("newuidmap-plain");
    std::fs::copy("/usr/bin/newuidmap", &plain).unwrap();
    // The copy keeps the mode: take the setuid bit off.
    std::fs::set_permissions(&plain, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let u = common::user(Mode::RootlessSubid);
    let mut run = bundle.run_cmd("rc-plain");
    run.env("NSBOOT_NEWUIDMAP", &plain);
    let out = output(&mut run);
    assert_eq!(
        (out.status, maps(&out)),
        (0, vec![format!("0 {} 1", u.uid)]),
        "{out:?}"
    );
    let mut check = bundle.nsboot();
    check.arg("check").env("NSBOOT_NEWUIDMAP", &plain);
    let out = output(&mut check);
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("warn  newuidmap: "))
        .unwrap_or_else(|| panic!("{out:?}"));
    assert!(
        line.contains(&format!("chmod u+s {}", plain.display())),
        "{line}"
    );
    assert!(
        out.stdout
            .contains(&format!("run maps uids 0 -> {} (1) (", u.uid)),
        "{out:?}"
    );
    common::assert_nothing_left(Mode::RootlessSubid, bundle.state_dir());
}

#[test]
fn newuidmap_owned_by_nobody_in_an_outer_userns_is_not_told_to_chmod() {
    if !common::rootless_modes().contains(&Mode::RootlessSubid) {
        return;
    }
    let bundle = unmapped_bundle();
    let u = common::user(Mode::RootlessSubid);
    let nested = |args: &[&str]| {
        let mut cmd = common::as_user(Mode::RootlessSubid, "unshare");
        cmd.current_dir(bundle.dir())
            .env("NSBOOT_TEST_BUNDLE", bundle.dir().parent().unwrap())
            .args(["--user", "--map-current-user", "--"])
            .arg(common::nsboot_bin())
            .arg("--root")
            .arg(bundle.state_dir())
            .args(args);
        output(&mut cmd)
    };
    let run = nested(&[
        "run",
        "--bundle",
        bundle.dir().to_str().unwrap(),
        "rc-nested",
    ]);
    // The outer namespace maps the user as itself: the sandbox's 0 is that id.
    assert_eq!(
        (run.status, maps(&run)),
        (0, vec![format!("0 {} 1", u.uid)]),
        "{run:?}"
    );
    let check = nested(&["check"]);
    let line = check
        .stdout
        .lines()
        .find(|l| l.starts_with("warn  newuidmap: "))
        .unwrap_or_else(|| panic!("{check:?}"));
    assert!(
        line.contains("shows as uid 65534") && !line.contains("chmod"),
        "{line}"
    );
    common::assert_nothing_left(Mode::RootlessSubid, bundle.state_dir());
}

#[test]
fn do_maps_one_id_by_default_and_subids_adds_the_range() {
    if !common::rootless_modes().contains(&Mode::RootlessSubid) {
        return;
    }
    let bundle = Bundle::new(Mode::RootlessSubid);
    let u = common::user(Mode::RootlessSubid);
    let do_ = |flags: &[&str]| {
        let mut cmd = bundle.nsboot();
        cmd.arg("--root")
            .arg(bundle.state_dir())
            .arg("do")
            .args(flags);
        cmd.args(["--", "/bin/cat", "/proc/self/uid_map"]);
        output(&mut cmd)
    };
    let out = do_(&[]);
    assert_eq!(
        (out.status, maps(&out)),
        (0, vec![format!("0 {} 1", u.uid)]),
        "{out:?}"
    );
    let out = do_(&["--subids"]);
    let want = vec![
        format!("0 {} 1", u.uid),
        format!("1 {} 65536", u.subuid.unwrap()),
    ];
    assert_eq!((out.status, maps(&out)), (0, want), "{out:?}");
    common::assert_nothing_left(Mode::RootlessSubid, bundle.state_dir());
}

#[test]
fn nested_proc_with_overmounts_is_one_line_with_the_true_cause() {
    let Some(unshare) = ["/usr/bin/unshare", "/bin/unshare"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
    else {
        return;
    };
    // An outer container's masks: a file of its /proc and a directory of its /sys covered.
    let nested = |args: &str| {
        let script = format!(
            "mount --bind /dev/null /proc/uptime && mount -t tmpfs tmpfs /sys/firmware && exec {} {args}",
            common::nsboot_bin().display()
        );
        let mut cmd = common::as_user(Mode::RootlessSingle, unshare);
        cmd.args([
            "--user",
            "--map-root-user",
            "--mount",
            "--",
            "/bin/sh",
            "-c",
            &script,
        ]);
        output(&mut cmd)
    };
    let out = nested("check");
    let proc: Vec<&str> = out.stdout.lines().filter(|l| l.contains("/proc")).collect();
    assert_eq!(proc.len(), 1, "{out:?}");
    let cause = "nested container: the outer container's overmounts on /proc and /sys make the kernel refuse a fresh /proc, so the sandbox sees this container's /proc (its processes and their command lines)";
    assert!(
        proc[0].starts_with(&format!(
            "warn  fresh /proc in a new pid namespace: {cause}"
        )),
        "{}",
        proc[0]
    );
    // `do` says the same, once, and nothing about a network it does not share.
    let out = nested("do -- true");
    assert_eq!(out.status, 0, "{out:?}");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{out:?}");
    assert!(
        lines[0]
            .trim_start()
            .starts_with(&format!("WARN {cause}; ")),
        "{}",
        lines[0]
    );
}

#[test]
fn do_errors_speak_of_the_current_directory_and_flags() {
    let bundle = Bundle::new(Mode::RootlessSingle);
    let do_in = |dir: &std::path::Path, cmd: &[&str]| {
        let mut c = bundle.nsboot();
        c.current_dir(dir);
        c.arg("--root")
            .arg(bundle.state_dir())
            .arg("do")
            .arg("--")
            .args(cmd);
        output(&mut c)
    };
    let here = bundle.dir();
    let line = one_line(&do_in(here, &[""]), "empty command");
    assert_eq!(
        line,
        "nsboot: no command given: nsboot do [OPTIONS] -- CMD [ARGS...]"
    );
    // PATH is emptied by env(1): setpriv itself is found on PATH.
    let mut c = common::as_user(Mode::RootlessSingle, "/usr/bin/env");
    c.current_dir(here).arg("PATH=").arg(common::nsboot_bin());
    c.arg("--root")
        .arg(bundle.state_dir())
        .args(["do", "--", "true"]);
    let line = one_line(&output(&mut c), "empty PATH");
    assert!(
        line.starts_with("nsboot: PATH is empty, so \"true\" cannot be found: "),
        "{line}"
    );
    let closed = here.join("closed");
    std::fs::create_dir(&closed).unwrap();
    common::give_to(Mode::RootlessSingle, &closed);
    if common::is_root() {
        // Entered first, closed after: the caller sits in a directory it cannot enter.
        let mut sh = common::as_user(Mode::RootlessSingle, "/bin/sh");
        sh.current_dir(&closed)
            .args(["-c", "chmod 0 . && exec \"$0\" --root \"$1\" do -- true"])
            .arg(common::nsboot_bin())
            .arg(bundle.state_dir());
        let line = one_line(&output(&mut sh), "closed cwd");
        assert_eq!(
            line,
            format!("nsboot: the current directory {}: Permission denied: you cannot enter it (its mode or a parent's): cd to another, or pass --cwd DIR", closed.display())
        );
    }
    common::assert_nothing_left(Mode::RootlessSingle, bundle.state_dir());
}
