//! Overwriting the runtime binary (the runc CVE-2019-5736 class): the image makes nsboot's
//! final exec run /proc/self/exe (directly, or as the interpreter of `#!/proc/self/exe`). No
//! process in the container may then be the host's nsboot binary, and a container process that
//! holds such a process's /proc/PID/exe must not be able to write the binary once it is free.
//! The binary attacked is a copy owned by the mode's user (a `cargo install` one when rootless),
//! used for the command that starts the process.

use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::id;
use crate::common::{self, private_rootfs, Bundle, Mode, Output};

use super::fds::support;

/// The programs that make the final exec reach /proc/self/exe.
const PROGRAMS: [(&str, &str); 2] = [("shebang", "/bin/evil"), ("self", "/proc/self/exe")];

/// A copy of nsboot owned by the mode's user, 0755, beside the bundle.
fn user_copy(b: &Bundle) -> PathBuf {
    let path = support::top(b).join("nsboot-copy");
    fs::copy(common::nsboot_bin(), &path).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    common::give_to(b.mode(), &path);
    path
}

/// "dev:ino" of a host file, as busybox `stat -L -c %d:%i` prints it.
fn identity(p: &Path) -> String {
    let m = fs::metadata(p).unwrap();
    format!("{}:{}", m.dev(), m.ino())
}

/// A private rootfs whose /bin/evil is `#!/proc/self/exe`.
fn evil_bundle(mode: Mode) -> Bundle {
    let (b, rootfs) = private_rootfs(Bundle::new(mode), true);
    let evil = rootfs.join("bin/evil");
    fs::write(&evil, "#!/proc/self/exe\n").unwrap();
    fs::set_permissions(&evil, fs::Permissions::from_mode(0o755)).unwrap();
    common::give_to(mode, &evil);
    b
}

/// A pipe whose buffer is full: whatever writes to it blocks (the read end is never read),
/// which keeps the process under attack alive.
fn full_pipe() -> (OwnedFd, OwnedFd) {
    let (r, w) = nix::unistd::pipe().unwrap();
    let fl = nix::fcntl::fcntl(w.as_raw_fd(), nix::fcntl::FcntlArg::F_GETFL).unwrap();
    let nonblock = nix::fcntl::OFlag::from_bits_truncate(fl) | nix::fcntl::OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(w.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(nonblock)).unwrap();
    let chunk = [b'.'; 4096];
    while nix::unistd::write(&w, &chunk).is_ok() {}
    while nix::unistd::write(&w, &chunk[..1]).is_ok() {}
    let block = nonblock - nix::fcntl::OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(w.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(block)).unwrap();
    (r, w)
}

/// `copy --root STATE ARGS` as the mode's user, stdout and stderr into the full pipe.
fn copy_cmd(b: &Bundle, copy: &Path, pipe: &OwnedFd, args: &[&str]) -> Command {
    let mut cmd = common::as_user(b.mode(), copy);
    cmd.current_dir(b.dir())
        .env("NSBOOT_TEST_BUNDLE", support::top(b))
        .arg("--root")
        .arg(b.state_dir())
        .args(args)
        .stdout(Stdio::from(pipe.try_clone().unwrap()))
        .stderr(Stdio::from(pipe.try_clone().unwrap()));
    cmd
}

/// Spawns `cmd`. A fresh copy of a binary can be busy for a moment: a test thread that forked
/// while another wrote the copy holds it open for writing until its child execs.
fn spawn(mut cmd: Command) -> Child {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            r => return r.unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}")),
        }
    }
}

fn wait_bounded(child: &mut Child, what: &str) -> i32 {
    let deadline = Instant::now() + common::RUN_TIMEOUT;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            use std::os::unix::process::ExitStatusExt;
            return s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what} did not end");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// What a container process finds at /proc/1/exe (once pid 1 has execed), and whether it
/// could write there.
const OBSERVE_PID1: &str = "i=0; while [ $i -lt 200 ]; do readlink /proc/1/exe >/dev/null 2>&1 \
    && break; i=$((i+1)); sleep 0.05; done; echo \"exe $(stat -L -c %d:%i /proc/1/exe)\"; \
    (echo PWNED >> /proc/1/exe) 2>/dev/null && echo WROTE; echo end";

fn assert_not_reached(what: &str, out: &str, copy: &Path, original: &[u8]) {
    let ours = identity(copy);
    assert!(
        !out.contains(&format!("exe {ours}\n")),
        "{what}: a container process runs the host binary {}: {out}",
        copy.display()
    );
    assert!(
        !out.contains("WROTE"),
        "{what}: wrote the host binary: {out}"
    );
    assert!(
        fs::read(copy).unwrap() == original,
        "{what}: the host binary {} changed",
        copy.display()
    );
}

/// One attempt: a bundle running `program`, the user's copy of nsboot, the full pipe, the id.
struct Attempt {
    b: Bundle,
    copy: PathBuf,
    pipe: (OwnedFd, OwnedFd),
    id: String,
}

impl Attempt {
    fn new(mode: Mode, program: &str, name: &str) -> Attempt {
        let b = evil_bundle(mode).args(&[program]);
        let copy = user_copy(&b);
        Attempt {
            b,
            copy,
            pipe: full_pipe(),
            id: id(name, mode),
        }
    }

    /// The user's copy running `args` (+ the bundle dir and id with `bundle`).
    fn spawn(&self, args: &[&str], bundle: bool) -> Child {
        let dir = self.b.dir().to_str().unwrap();
        let mut all = args.to_vec();
        if bundle {
            all.extend(["--bundle", dir]);
        }
        all.push(&self.id);
        spawn(copy_cmd(&self.b, &self.copy, &self.pipe.1, &all))
    }
}

#[test]
fn run_never_runs_the_host_binary_in_the_container() {
    let original = fs::read(common::nsboot_bin()).unwrap();
    for mode in common::modes() {
        for (tag, program) in PROGRAMS {
            let a = Attempt::new(mode, program, &format!("bin-run-{tag}"));
            let mut run = a.spawn(&["run"], true);
            let Attempt {
                b,
                copy,
                pipe: (r, w),
                id: c,
            } = a;
            let running = support::eventually(|| {
                support::nsb(&b, &["state", &c])
                    .stdout
                    .contains("\"running\"")
            });
            assert!(running, "{mode:?}: run {tag} never ran");
            // "running" means the application has exec'd: it can be joined at once.
            let seen = support::nsb(&b, &["exec", &c, "/bin/sh", "-c", OBSERVE_PID1]);
            let _ = support::nsb(&b, &["kill", &c, "KILL"]);
            drop((r, w));
            wait_bounded(&mut run, "run");
            let what = format!("{mode:?} run {tag}");
            assert!(seen.stdout.ends_with("end\n"), "{what}: {seen:?}");
            assert_not_reached(&what, &seen.stdout, &copy, &original);
            common::assert_nothing_left(mode, b.state_dir());
        }
    }
}

#[test]
fn create_and_start_never_run_the_host_binary_in_the_container() {
    let original = fs::read(common::nsboot_bin()).unwrap();
    for mode in common::modes() {
        for (tag, program) in PROGRAMS {
            let a = Attempt::new(mode, program, &format!("bin-cs-{tag}"));
            let mut create = a.spawn(&["create"], true);
            assert_eq!(wait_bounded(&mut create, "create"), 0, "{mode:?}: create");
            let mut start = a.spawn(&["start"], false);
            assert_eq!(wait_bounded(&mut start, "start"), 0, "{mode:?}: start");
            let Attempt {
                b,
                copy,
                pipe: (r, w),
                id: c,
            } = a;
            let seen = support::nsb(&b, &["exec", &c, "/bin/sh", "-c", OBSERVE_PID1]);
            let _ = support::nsb(&b, &["kill", &c, "KILL"]);
            drop((r, w));
            support::wait_status(&b, &c, "stopped");
            assert_eq!(support::nsb(&b, &["delete", &c]).status, 0);
            let what = format!("{mode:?} create + start {tag}");
            assert!(seen.stdout.ends_with("end\n"), "{what}: {seen:?}");
            assert_not_reached(&what, &seen.stdout, &copy, &original);
            common::assert_nothing_left(mode, b.state_dir());
        }
    }
}

/// The container's application: waits for a process whose exe is not busybox, holds its
/// /proc/PID/exe open, kills it, then tries to write through it until the binary is free.
const ATTACKER: &str = "found=; i=0; while [ $i -lt 400 ] && [ -z \"$found\" ]; do \
    for p in /proc/[0-9]*; do e=$(readlink $p/exe 2>/dev/null) || continue; \
    case \"$e\" in /bin/busybox) ;; *) found=${p#/proc/}; break;; esac; done; \
    i=$((i+1)); sleep 0.05; done; \
    [ -n \"$found\" ] || { echo none; exit 0; }; \
    echo \"exe $(stat -L -c %d:%i /proc/$found/exe)\"; exec 3</proc/$found/exe; kill -9 $found; \
    j=0; while [ $j -lt 100 ]; do if (echo PWNED > /proc/self/fd/3) 2>/dev/null; then echo WROTE; \
    break; fi; j=$((j+1)); sleep 0.05; done; echo end";

#[test]
fn exec_never_runs_the_host_binary_and_it_cannot_be_overwritten() {
    let original = fs::read(common::nsboot_bin()).unwrap();
    for mode in common::modes() {
        for (tag, program) in PROGRAMS {
            let b = evil_bundle(mode).args(&["/bin/sh", "-c", ATTACKER]);
            let copy = user_copy(&b);
            let c = id(&format!("bin-exec-{tag}"), mode);
            let created = support::create(&b, &c, &[]);
            assert_eq!(created.status, 0, "{mode:?}: create: {created:?}");
            assert_eq!(support::nsb(&b, &["start", &c]).status, 0);
            let (r, w) = full_pipe();
            let mut exec = spawn(copy_cmd(&b, &copy, &w, &["exec", "--detach", &c, program]));
            let status = wait_bounded(&mut exec, "exec --detach");
            support::wait_status(&b, &c, "stopped");
            drop((r, w));
            let out = Output {
                status,
                stdout: support::app_output(&b, &c),
                stderr: String::new(),
            };
            assert_eq!(support::nsb(&b, &["delete", &c]).status, 0);
            let what = format!("{mode:?} exec {tag}");
            assert!(out.stdout.contains("end\n"), "{what}: {out:?}");
            assert_not_reached(&what, &out.stdout, &copy, &original);
            common::assert_nothing_left(mode, b.state_dir());
        }
    }
}
