//! podman end to end: an unprivileged user runs containers with `--runtime` set to the built
//! nsboot (no systemd, no D-Bus: cgroupfs, file events, cgroups disabled, vfs storage, no
//! network). Each test has a podman of its own: config, storage and runtime dir in a temp dir.
//!
//! As root (CI) the user is `nsbt` and podman must be installed (scripts/podman-setup.sh); as
//! an ordinary user without podman the tests print why and pass.

mod common;

use std::fs;
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Mode, Output};

const IMAGE: &str = "localhost/nsboot-busybox:test";
const PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// One podman installation of its own, used as the mode's unprivileged user.
struct Podman {
    top: PathBuf,
    user: &'static common::TestUser,
    /// One podman test at a time: conmon's timing under a loaded machine is part of what
    /// these tests see, and four podmans at once on 2 cores make it flaky.
    _serial: std::sync::MutexGuard<'static, ()>,
}

fn podman_installed() -> bool {
    ["/usr/bin/podman", "/usr/bin/conmon"]
        .iter()
        .all(|p| Path::new(p).exists())
}

impl Podman {
    /// None (the test is skipped) only for a developer without podman.
    fn new() -> Option<Podman> {
        if !podman_installed() {
            assert!(
                !common::is_root(),
                "podman or conmon is missing: run scripts/podman-setup.sh as root"
            );
            eprintln!("podman is not installed: skipping (scripts/podman-setup.sh installs it)");
            return None;
        }
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        // Short: conmon's attach socket lives below it (sun_path holds 108 bytes).
        let top = std::env::temp_dir().join(format!("nsbt-pm-{}-{n}", std::process::id()));
        let user = common::user(Mode::RootlessSingle);
        static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let p = Podman {
            top,
            user,
            _serial: serial,
        };
        for (dir, mode) in [("", 0o755), ("xdg", 0o700), ("home", 0o700)] {
            let d = p.top.join(dir);
            fs::create_dir_all(&d).unwrap_or_else(|e| panic!("mkdir {}: {e}", d.display()));
            fs::set_permissions(&d, fs::Permissions::from_mode(mode)).unwrap();
            if common::is_root() {
                chown(&d, Some(user.uid), Some(user.gid)).unwrap();
            }
        }
        p.write_config();
        let tar = p.top.join("rootfs.tar");
        let packed = Command::new("tar")
            .arg("-C")
            .arg(common::rootfs())
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status();
        assert!(
            packed.is_ok_and(|s| s.success()),
            "packing the busybox rootfs into {} failed",
            tar.display()
        );
        let out = common::output(&mut p.podman(&["import", tar.to_str().unwrap(), IMAGE]));
        assert_eq!(out.status, 0, "podman import failed: {}", out.stderr);
        Some(p)
    }

    fn write_config(&self) {
        let t = self.top.display();
        let nsboot = common::nsboot_bin().display();
        // Debian's podman 4.3 reads runtime_supports_nocgroup; later ones the plural.
        let conf = format!(
            "[containers]\ncgroups = \"disabled\"\nnetns = \"none\"\nlog_driver = \"k8s-file\"\n\
             [engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n\
             events_logfile_path = \"{t}/events.log\"\nruntime = \"nsboot\"\n\
             runtime_supports_json = [\"nsboot\"]\nruntime_supports_nocgroup = [\"nsboot\"]\n\
             runtime_supports_nocgroups = [\"nsboot\"]\n\
             [engine.runtimes]\nnsboot = [\"{nsboot}\"]\n"
        );
        let storage = format!("[storage]\ndriver = \"vfs\"\ngraphroot = \"{t}/home/storage\"\nrunroot = \"{t}/xdg/storage\"\n");
        for (name, text) in [("containers.conf", conf), ("storage.conf", storage)] {
            fs::write(self.top.join(name), text).unwrap();
        }
    }

    /// The environment podman runs with: nothing of ours, all of it below `top`.
    fn env(&self) -> Vec<(String, String)> {
        let t = self.top.display();
        [
            ("PATH", PATH.to_string()),
            ("HOME", format!("{t}/home")),
            ("USER", self.user.name.clone()),
            ("LOGNAME", self.user.name.clone()),
            ("SHELL", "/bin/sh".into()),
            ("XDG_RUNTIME_DIR", format!("{t}/xdg")),
            ("XDG_CONFIG_HOME", format!("{t}/home/.config")),
            ("XDG_DATA_HOME", format!("{t}/home/.local/share")),
            ("CONTAINERS_CONF", format!("{t}/containers.conf")),
            ("CONTAINERS_STORAGE_CONF", format!("{t}/storage.conf")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// `program args` as the user (setpriv when root), in the clean environment.
    fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut cmd = if common::is_root() {
            let mut c = Command::new("setpriv");
            c.arg(format!("--reuid={}", self.user.uid))
                .arg(format!("--regid={}", self.user.gid));
            c.args(["--init-groups", "--", program]);
            c
        } else {
            Command::new(program)
        };
        cmd.args(args)
            .env_clear()
            .envs(self.env())
            .current_dir(&self.top);
        cmd.stdin(std::process::Stdio::null());
        cmd
    }

    fn podman(&self, args: &[&str]) -> Command {
        self.command("podman", args)
    }

    /// podman under `script`, which gives it a pty as its terminal (for -t).
    fn podman_in_pty(&self, args: &[&str]) -> Output {
        let line = std::iter::once("podman")
            .chain(args.iter().copied())
            .map(shell_quote)
            .collect::<Vec<_>>()
            .join(" ");
        common::output(&mut self.command("script", &["-qec", &line, "/dev/null"]))
    }

    fn run(&self, args: &[&str]) -> Output {
        common::output(&mut self.podman(args))
    }

    /// No container left in podman, no state left in nsboot's state dir.
    fn assert_clean(&self) {
        let ps = self.run(&["ps", "-a", "-q"]);
        assert_eq!(
            (ps.status, ps.stdout.as_str()),
            (0, ""),
            "podman still lists containers: {}",
            ps.stderr
        );
        let state = self.top.join("xdg/nsboot");
        let left: Vec<_> = fs::read_dir(&state)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name())
            // The cache of compiled seccomp programs (podman passes its profile) stays.
            .filter(|n| n != ".seccomp")
            .collect();
        assert!(
            left.is_empty(),
            "nsboot state left in {}: {left:?}",
            state.display()
        );
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        // Rootless podman leaves a pause process holding its user namespace: end it with us.
        let pause = self.top.join("xdg/libpod/tmp/pause.pid");
        if let Some(pid) = fs::read_to_string(pause)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        {
            kill(pid);
        }
        // conmon's exit command (`podman container cleanup`) may still be writing below top.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = self.processes();
            if left.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                left.into_iter().for_each(kill);
                std::thread::sleep(Duration::from_millis(100));
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if common::is_root() {
            let _ = fs::remove_dir_all(&self.top);
        } else {
            // Storage files belong to subordinate ids: only the user namespace can remove them.
            let done = self
                .command(
                    "podman",
                    &["unshare", "rm", "-rf", self.top.to_str().unwrap()],
                )
                .status();
            if !done.as_ref().is_ok_and(|s| s.success()) {
                eprintln!("[podman] removing {}: {done:?}", self.top.display());
            }
        }
    }
}

impl Podman {
    /// Living processes that run with this podman's runtime dir in their environment.
    fn processes(&self) -> Vec<i32> {
        let mark = format!("XDG_RUNTIME_DIR={}/xdg\0", self.top.display());
        let mark = mark.as_bytes();
        fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| *pid != std::process::id() as i32)
            .filter(|pid| {
                fs::read(format!("/proc/{pid}/environ"))
                    .is_ok_and(|env| env.windows(mark.len()).any(|w| w == mark))
            })
            .collect()
    }
}

fn kill(pid: i32) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[test]
fn podman_run_rm_prints_the_output_and_returns_the_exit_code() {
    let Some(p) = Podman::new() else { return };
    let out = p.run(&[
        "run",
        "--rm",
        IMAGE,
        "sh",
        "-c",
        "echo hello from nsboot; id -u; exit 7",
    ]);
    assert_eq!(out.status, 7, "stderr: {}", out.stderr);
    assert_eq!(
        out.stdout, "hello from nsboot\n0\n",
        "stderr: {}",
        out.stderr
    );
    p.assert_clean();
}

#[test]
fn podman_run_of_a_missing_command_exits_127_as_with_crun() {
    let Some(p) = Podman::new() else { return };
    let out = p.run(&["run", "--rm", IMAGE, "/no/such/program"]);
    assert_eq!(out.status, 127, "stderr: {}", out.stderr);
    assert!(
        out.stderr.contains("/no/such/program"),
        "stderr: {}",
        out.stderr
    );
    p.assert_clean();
}

#[test]
fn podman_detached_container_takes_exec_and_exec_tty_then_stops_and_is_removed() {
    let Some(p) = Podman::new() else { return };
    let run = p.run(&["run", "-d", "--name", "nsb-d", IMAGE, "sleep", "1000"]);
    assert_eq!(run.status, 0, "run -d: {}", run.stderr);
    let exec = p.run(&[
        "exec",
        "nsb-d",
        "sh",
        "-c",
        "echo $((6 * 7)); hostname; ps -o pid,args",
    ]);
    assert_eq!(exec.status, 0, "exec: {}", exec.stderr);
    let lines: Vec<&str> = exec.stdout.lines().collect();
    assert_eq!(lines[0], "42", "exec stdout: {}", exec.stdout);
    assert!(
        exec.stdout.contains("    1 sleep 1000"),
        "the exec'd shell does not see the app as pid 1: {}",
        exec.stdout
    );
    let status = p.run(&["exec", "nsb-d", "sh", "-c", "exit 5"]);
    assert_eq!(status.status, 5, "exec's exit status: {}", status.stderr);
    let tty = p.podman_in_pty(&[
        "exec",
        "-t",
        "nsb-d",
        "sh",
        "-c",
        "tty; test -t 0 && echo stdin-is-a-tty",
    ]);
    assert_eq!(tty.status, 0, "exec -t: {} {}", tty.stdout, tty.stderr);
    assert!(
        tty.stdout.contains("/dev/pts/") && tty.stdout.contains("stdin-is-a-tty"),
        "exec -t: {}",
        tty.stdout
    );
    let stop = p.run(&["stop", "-t", "1", "nsb-d"]);
    assert_eq!(stop.status, 0, "stop: {}", stop.stderr);
    let state = p.run(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.ExitCode}}",
        "nsb-d",
    ]);
    assert_eq!(
        state.stdout.trim(),
        "exited 137",
        "inspect: {}",
        state.stderr
    );
    let rm = p.run(&["rm", "nsb-d"]);
    assert_eq!(rm.status, 0, "rm: {}", rm.stderr);
    p.assert_clean();
}

#[test]
fn podman_run_it_gives_the_container_a_terminal() {
    let Some(p) = Podman::new() else { return };
    let out = p.podman_in_pty(&[
        "run",
        "-it",
        "--rm",
        IMAGE,
        "sh",
        "-c",
        // The pause gives conmon time to copy the output before the terminal goes away: under
        // load the output of an instantly exiting -it container was lost once (not yet traced).
        "tty; test -t 1 && echo stdout-is-a-tty; sleep 0.5; exit 6",
    ]);
    assert_eq!(
        out.status, 6,
        "run -it: stdout {} stderr {}",
        out.stdout, out.stderr
    );
    assert!(out.stdout.contains("/dev/pts/0"), "run -it: {}", out.stdout);
    assert!(
        out.stdout.contains("stdout-is-a-tty"),
        "run -it: {}",
        out.stdout
    );
    p.assert_clean();
}
