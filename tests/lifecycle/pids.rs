//! Which process is which, as engines see them: the state's pid is the application (its host
//! pid, as runc reports its init's), the pid file names it too (create's child, the engine's
//! once create exits, which reaps it with its status), and "running" means the application has
//! exec'd. With a terminal, `create` leaves nobody holding the caller's stdio.

use std::fs;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::{self, Bundle, Mode};
use crate::support::*;

fn sleeper(mode: Mode) -> Bundle {
    Bundle::new(mode).args(&["/bin/sleep", "1000"])
}

/// The parent pid of `pid` (/proc/PID/stat's fourth field).
fn ppid(pid: i32) -> i32 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    rest.split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0)
}

fn cmdline(pid: i32) -> String {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

fn ns(pid: i32, name: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{name}"))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// A subreaper (as conmon and containerd's shim are) that runs one command and then reaps
/// every process reparented to it, reporting each (pid, wait status) on a pipe. Forked from
/// this multi-threaded test: the child makes only async-signal-safe calls.
struct Subreaper {
    pid: nix::unistd::Pid,
    /// The command's own wait status, then (pid, status) pairs, as i32s.
    report: fs::File,
}

impl Subreaper {
    fn run(cmd: &std::process::Command, out: &std::path::Path) -> Subreaper {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        let c = |s: &std::ffi::OsStr| CString::new(s.as_bytes()).unwrap();
        let name = cmd.get_program();
        // execve takes a path: look the program up in PATH before the fork.
        let path = match name.as_bytes().contains(&b'/') {
            true => std::path::PathBuf::from(name),
            false => std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
                .map(|d| d.join(name))
                .find(|p| p.is_file())
                .unwrap_or_else(|| panic!("{name:?} is not in PATH")),
        };
        let prog = c(path.as_os_str());
        let mut argv: Vec<CString> = vec![c(name)];
        argv.extend(cmd.get_args().map(c));
        let mut env: std::collections::BTreeMap<_, _> = std::env::vars_os().collect();
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => env.insert(k.to_owned(), v.to_owned()),
                None => env.remove(k),
            };
        }
        let envp: Vec<CString> = env
            .iter()
            .map(|(k, v)| {
                let mut kv = k.as_bytes().to_vec();
                kv.push(b'=');
                kv.extend(v.as_bytes());
                CString::new(kv).unwrap()
            })
            .collect();
        let ptrs = |v: &[CString]| {
            let mut p: Vec<*const libc::c_char> = v.iter().map(|s| s.as_ptr()).collect();
            p.push(std::ptr::null());
            p
        };
        let (argp, envpp) = (ptrs(&argv), ptrs(&envp));
        let dir = cmd.get_current_dir().map(|d| c(d.as_os_str()));
        let file = fs::File::create(out).unwrap();
        let (r, w) = pipe();
        use std::os::fd::AsRawFd;
        let (file, w_fd) = (file.as_raw_fd(), w.as_raw_fd());
        // SAFETY: the child makes only async-signal-safe calls (prctl, fork, dup2, chdir,
        // execve, waitpid, write, _exit) on memory prepared before the fork.
        match unsafe { libc::fork() } {
            0 => unsafe {
                libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
                let put = |v: i32| {
                    libc::write(w_fd, &v as *const i32 as *const libc::c_void, 4);
                };
                let pid = libc::fork();
                if pid == 0 {
                    libc::dup2(file, 1);
                    libc::dup2(file, 2);
                    let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
                    libc::dup2(null, 0);
                    if let Some(d) = &dir {
                        libc::chdir(d.as_ptr());
                    }
                    libc::execve(prog.as_ptr(), argp.as_ptr(), envpp.as_ptr());
                    libc::_exit(127);
                }
                let mut status = 0;
                libc::waitpid(pid, &mut status, 0);
                put(status);
                loop {
                    let p = libc::waitpid(-1, &mut status, 0);
                    if p < 0 {
                        libc::_exit(0);
                    }
                    put(p);
                    put(status);
                }
            },
            -1 => panic!("fork: {}", std::io::Error::last_os_error()),
            pid => {
                drop(w);
                Subreaper {
                    pid: nix::unistd::Pid::from_raw(pid),
                    report: fs::File::from(r),
                }
            }
        }
    }

    fn next(&mut self) -> Option<i32> {
        let mut b = [0u8; 4];
        self.report.read_exact(&mut b).ok()?;
        Some(i32::from_ne_bytes(b))
    }

    /// Every (pid, wait status) reaped until the subreaper has no child left; it then exits 0.
    fn reaped(mut self) -> Vec<(i32, i32)> {
        let mut all = Vec::new();
        while let (Some(p), Some(s)) = (self.next(), self.next()) {
            all.push((p, s));
        }
        let ended = nix::sys::wait::waitpid(self.pid, None);
        assert!(
            matches!(ended, Ok(nix::sys::wait::WaitStatus::Exited(_, 0))),
            "the subreaper ended with {ended:?}"
        );
        all
    }
}

/// As conmon and containerd's shim see it: the pid file names the application (the state's
/// pid), which is create's child and so, once create exits, the child of the nearest
/// subreaper, which reaps it with the application's status (runc's shape).
#[test]
fn the_pid_file_names_the_application_which_the_callers_subreaper_reaps() {
    for mode in common::modes() {
        let b = sleeper(mode);
        let pid_file = top(&b).join("pid");
        let mut cmd = b.nsboot();
        cmd.arg("--root").arg(b.state_dir()).arg("create");
        cmd.arg("--bundle").arg(b.dir());
        cmd.arg("--pid-file").arg(&pid_file).arg("pids");
        let mut reaper = Subreaper::run(&cmd, &top(&b).join("pids.out"));
        let created = reaper.next();
        assert_eq!(
            created,
            Some(0),
            "{mode:?}: create: {}",
            app_output(&b, "pids")
        );
        let app: i32 = fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let st = state(&b, "pids");
        assert_eq!(
            st["pid"].as_i64(),
            Some(app as i64),
            "{mode:?}: the pid file's {app} is not the state's pid: {st}"
        );
        assert_eq!(
            ppid(app),
            reaper.pid.as_raw(),
            "{mode:?}: the application {app} is not the subreaper's child once create exited"
        );
        let s = nsb(&b, &["start", "pids"]);
        assert_eq!(s.status, 0, "{mode:?}: start: {}", s.stderr);
        let st = state(&b, "pids");
        assert_eq!(st["status"], "running", "{mode:?}: {st}");
        assert_eq!(
            st["pid"].as_i64(),
            Some(app as i64),
            "{mode:?}: the pid changed at start: {st}"
        );
        assert_eq!(
            cmdline(app).trim_end(),
            "/bin/sleep 1000",
            "{mode:?}: a running container's state pid is not its application"
        );
        // Read once it runs the image's program: until then it is nsboot, which an
        // unprivileged caller may not inspect (the VM's delegated run is one).
        let own = ns(app, "pid");
        assert!(
            !own.is_empty() && own != ns(std::process::id() as i32, "pid"),
            "{mode:?}: the state pid is not in the container's own pid namespace: {own:?}"
        );
        assert!(
            st.get("supervisor").is_none(),
            "{mode:?}: nsboot's own field shown in the OCI state: {st}"
        );
        assert_eq!(nsb(&b, &["kill", "pids", "KILL"]).status, 0, "{mode:?}");
        wait_status(&b, "pids", "stopped");
        delete_and_check(&b, "pids");
        // The subreaper reaped the application itself, killed by SIGKILL.
        let reaped = reaper.reaped();
        let status = reaped.iter().find(|(p, _)| *p == app).map(|(_, s)| *s);
        assert!(
            status.is_some_and(|s| libc::WIFSIGNALED(s) && libc::WTERMSIG(s) == libc::SIGKILL),
            "{mode:?}: the subreaper reaped {reaped:?}, not the application {app} killed by SIGKILL"
        );
    }
}

#[test]
fn a_foreground_run_is_running_only_once_its_application_has_execed() {
    for mode in common::modes() {
        let b = sleeper(mode);
        let mut run = b.run_cmd("fg");
        run.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = run.spawn().expect("nsboot run");
        let mut seen = None;
        let deadline = Instant::now() + Duration::from_secs(30);
        while seen.is_none() && Instant::now() < deadline {
            let out = nsb(&b, &["state", "fg"]);
            if let Ok(st) = serde_json::from_str::<serde_json::Value>(&out.stdout) {
                if st["status"] == "running" {
                    seen = Some(st);
                }
            }
        }
        let st = seen.unwrap_or_else(|| panic!("{mode:?}: run fg never ran"));
        let pid = st["pid"].as_i64().unwrap() as i32;
        // The first "running" already names the exec'd application: an exec joins it at once.
        assert_eq!(
            cmdline(pid).trim_end(),
            "/bin/sleep 1000",
            "{mode:?}: \"running\" before the application exec'd: {st}"
        );
        let exec = nsb(&b, &["exec", "fg", "/bin/true"]);
        assert_eq!(exec.status, 0, "{mode:?}: exec: {}", exec.stderr);
        assert_eq!(nsb(&b, &["kill", "fg", "KILL"]).status, 0, "{mode:?}");
        let code = common::wait_code(child, common::RUN_TIMEOUT);
        assert_eq!(code, 137, "{mode:?}: run ended with {code}");
        common::assert_nothing_left(b.mode(), b.state_dir());
    }
}

#[test]
fn kill_and_delete_of_an_unknown_or_empty_id_fail_with_runcs_words() {
    for mode in common::modes() {
        let b = Bundle::new(mode);
        for cmd in ["kill", "delete", "state", "start"] {
            let unknown = nsb(&b, &[cmd, "ghost"]);
            assert!(
                unknown.status != 0 && unknown.stderr.contains("does not exist"),
                "{mode:?}: {cmd} ghost: {unknown:?}"
            );
            let empty = nsb(&b, &[cmd, ""]);
            assert!(
                empty.status != 0 && empty.stderr.contains("container id cannot be empty"),
                "{mode:?}: {cmd} \"\": {empty:?}"
            );
        }
        let forced = nsb(&b, &["delete", "--force", ""]);
        assert_ne!(forced.status, 0, "{mode:?}: delete --force \"\" succeeded");
    }
}

#[test]
fn kill_of_a_stopped_container_fails_and_delete_of_a_running_one_without_force() {
    for mode in common::modes() {
        let b = sleeper(mode);
        let c = create(&b, "ks", &[]);
        assert_eq!(c.status, 0, "{mode:?}: create: {}", c.stderr);
        assert_eq!(nsb(&b, &["start", "ks"]).status, 0, "{mode:?}");
        let refused = nsb(&b, &["delete", "ks"]);
        assert!(
            refused.status != 0 && refused.stderr.contains("is running"),
            "{mode:?}: delete of a running container: {refused:?}"
        );
        assert_eq!(nsb(&b, &["kill", "ks", "KILL"]).status, 0, "{mode:?}");
        wait_status(&b, "ks", "stopped");
        let late = nsb(&b, &["kill", "ks", "TERM"]);
        assert!(
            late.status != 0 && late.stderr.contains("is not running"),
            "{mode:?}: kill of a stopped container: {late:?}"
        );
        delete_and_check(&b, "ks");
    }
}

/// A pipe: (read end, write end), both owned.
fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fds that we own from here on.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both are fresh fds.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

#[test]
fn create_with_a_terminal_leaves_nobody_holding_the_callers_stdio() {
    for mode in common::modes() {
        let b = Bundle::new(mode)
            .args(&["/bin/sh", "-c", "tty; exit 6"])
            .edit(|c| c["process"]["terminal"] = serde_json::json!(true));
        let console = ConsoleSocket::new(&b, "console.sock");
        let (r, w) = pipe();
        let mut cmd = b.nsboot();
        cmd.arg("--root")
            .arg(b.state_dir())
            .args(["create", "--console-socket", console.arg(), "--bundle"])
            .arg(b.dir())
            .arg("tty")
            .stdin(Stdio::null())
            .stdout(fs::File::from(w.try_clone().unwrap()))
            .stderr(fs::File::from(w));
        let child = cmd.spawn().expect("nsboot create");
        // Our copies of the write end go with the command.
        drop(cmd);
        assert_eq!(
            common::wait_code(child, common::RUN_TIMEOUT),
            0,
            "{mode:?}: create failed"
        );
        // go-runc reads create's output until EOF: nothing of the sandbox may hold it.
        let (tx, rx) = std::sync::mpsc::channel();
        let mut reader = fs::File::from(r);
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = reader.read_to_string(&mut text);
            let _ = tx.send(text);
        });
        let eof = rx.recv_timeout(Duration::from_secs(10));
        assert_eq!(
            status(&b, "tty"),
            "created",
            "{mode:?}: the container did not stay created"
        );
        let (master, _) = console
            .receive()
            .unwrap_or_else(|| panic!("{mode:?}: no pty master"));
        assert_eq!(nsb(&b, &["start", "tty"]).status, 0, "{mode:?}");
        let screen = read_pty(&master);
        wait_status(&b, "tty", "stopped");
        delete_and_check(&b, "tty");
        let out = eof.unwrap_or_else(|_| {
            panic!("{mode:?}: create's stdout still held by the sandbox (no EOF in 10 s)")
        });
        assert_eq!(out, "", "{mode:?}: create printed {out:?}");
        assert!(
            screen.contains("/dev/pts/"),
            "{mode:?}: the app is not on the pty: {screen:?}"
        );
    }
}

fn delete_and_check(b: &Bundle, id: &str) {
    let d = nsb(b, &["delete", id]);
    assert_eq!(d.status, 0, "{:?}: delete {id}: {}", b.mode(), d.stderr);
    common::assert_nothing_left(b.mode(), b.state_dir());
}

#[test]
fn an_rlimit_above_nsboots_own_fails_create_and_says_rootless_only_when_it_is() {
    use std::os::unix::process::CommandExt;
    for mode in common::modes() {
        let b = sleeper(mode).edit(|c| {
            c["process"]["rlimits"] =
                serde_json::json!([{"type": "RLIMIT_CORE", "soft": 0, "hard": 2000}])
        });
        let mut cmd = b.nsboot();
        cmd.arg("--root")
            .arg(b.state_dir())
            .args(["create", "--bundle"])
            .arg(b.dir())
            .arg("rl");
        // SAFETY: only setrlimit (async-signal-safe) runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                let lim = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 1000,
                };
                match libc::setrlimit(libc::RLIMIT_CORE, &lim) {
                    0 => Ok(()),
                    _ => Err(std::io::Error::last_os_error()),
                }
            });
        }
        let out = common::output(&mut cmd);
        assert!(
            out.status == 125
                && out
                    .stderr
                    .contains("RLIMIT_CORE: hard limit 2000 is above nsboot's own 1000"),
            "{mode:?}: create with a raised hard limit: {out:?}"
        );
        assert_eq!(
            out.stderr.contains("rootless"),
            mode.is_rootless(),
            "{mode:?}: {}",
            out.stderr
        );
        common::assert_nothing_left(b.mode(), b.state_dir());
    }
}
