//! containerd driven with `ctr`, the path Kubernetes takes: the runc v2 shim with its
//! BinaryName (`--runc-binary`) set to runc or nsboot. containerd runs with a config, root,
//! state dir and socket of its own below the test's temp dir; the shim's runtime root, the
//! I/O fifos and the containers' cgroups are the test's own too.

use std::process::Command;

use crate::harness::{
    available, compare, expect_stdout, is_container_init, joined_ns, on_a_pty, run, run_in_pty,
    status, wait_until, Runtime, Step, EXEC_PRINTS, EXEC_SCRIPT,
};
use crate::image::{archive, IMAGE};
use crate::sandbox::Sandbox;

const ENGINE: &str = "containerd";

struct Ctr {
    sb: Sandbox,
    /// The containerd namespace, also the cgroup parent: unique per test.
    ns: String,
}

impl Ctr {
    fn new() -> Option<Ctr> {
        let bins = [
            "/usr/bin/containerd",
            "/usr/bin/ctr",
            "/usr/bin/containerd-shim-runc-v2",
        ];
        if !available(ENGINE, &bins) {
            return None;
        }
        let mut sb = Sandbox::new("ctr");
        let top = sb.top.display().to_string();
        let config = format!(
            "version = 2\nroot = \"{top}/root\"\nstate = \"{top}/state\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{top}/c.sock\"\n[ttrpc]\n  address = \"{top}/c.sock.ttrpc\"\n\
             [debug]\n  address = \"\"\n[metrics]\n  address = \"\"\n"
        );
        std::fs::write(sb.path("config.toml"), config).unwrap();
        let ns = sb.top.file_name().unwrap().to_string_lossy().into_owned();
        sb.own_cgroup(&ns);
        let sock = sb.path("c.sock");
        sb.start_daemon(
            "containerd",
            Command::new("/usr/bin/containerd")
                .args(["--log-level", "warn", "--config"])
                .arg(sb.path("config.toml")),
            || {
                sock.exists()
                    && run(Command::new("/usr/bin/ctr")
                        .arg("-a")
                        .arg(&sock)
                        .arg("version"))
                    .status
                        == 0
            },
        );
        let c = Ctr { sb, ns };
        let tar = archive(&c.sb.top);
        let out = run(c.ctr(&["images", "import"]).arg(&tar));
        assert_eq!(
            out.status,
            0,
            "ctr images import: {}\n{}",
            out.stderr,
            c.sb.logs()
        );
        Some(c)
    }

    fn ctr(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("/usr/bin/ctr");
        cmd.arg("-a")
            .arg(self.sb.path("c.sock"))
            .args(["-n", &self.ns])
            .args(args);
        cmd
    }

    /// `ctr run` with `rt` as the shim's binary, then `flags`, the image, the id and `argv`.
    fn run_args(&self, rt: Runtime, flags: &[&str], id: &str, argv: &[&str]) -> Vec<String> {
        let top = &self.sb.top;
        let mut args: Vec<String> = vec![
            "run".into(),
            "--runtime".into(),
            "io.containerd.runc.v2".into(),
            "--runc-binary".into(),
            rt.path().display().to_string(),
            "--runc-root".into(),
            format!("{}/runc", top.display()),
            "--fifo-dir".into(),
            format!("{}/fifo", top.display()),
            "--cgroup".into(),
            format!("/{}/{id}", self.ns),
        ];
        args.extend(flags.iter().map(|s| s.to_string()));
        args.push(IMAGE.into());
        args.push(id.into());
        args.extend(argv.iter().map(|s| s.to_string()));
        args
    }

    fn run(&self, rt: Runtime, flags: &[&str], id: &str, argv: &[&str]) -> crate::common::Output {
        let args = self.run_args(rt, flags, id, argv);
        run(self.ctr(&[]).args(&args))
    }

    /// A detached `sleep 1000` named `id`.
    fn sleeper(&self, rt: Runtime, id: &str) -> Step {
        let out = self.run(rt, &["-d"], id, &["sleep", "1000"]);
        status(&out, 0, "ctr run -d")
    }

    /// The task's pid as `ctr task ls` reports it.
    fn task_pid(&self, id: &str) -> Result<i32, String> {
        let out = run(&mut self.ctr(&["task", "ls"]));
        status(&out, 0, "ctr task ls")?;
        out.stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(id))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .ok_or_else(|| format!("ctr task ls has no pid for {id}: {}", out.stdout))
    }

    /// Kill (SIGKILL) and delete the task and the container, whatever state they are in.
    fn remove(&self, id: &str) -> Step {
        let _ = run(&mut self.ctr(&["task", "kill", "-s", "SIGKILL", id]));
        let gone = wait_until(std::time::Duration::from_secs(10), || {
            let out = run(&mut self.ctr(&["task", "ls"]));
            !out.stdout
                .lines()
                .any(|l| l.starts_with(id) && l.contains("RUNNING"))
        });
        let del = run(&mut self.ctr(&["task", "rm", id]));
        let rm = run(&mut self.ctr(&["containers", "rm", id]));
        if !gone {
            return Err(format!("{id} still runs after SIGKILL"));
        }
        if del.status != 0 && !del.stderr.contains("not found") {
            return status(&del, 0, "ctr task rm");
        }
        status(&rm, 0, "ctr containers rm")
    }

    /// No container left in containerd, then the sandbox's own teardown and leftovers check.
    fn finish(self) {
        let out = run(&mut self.ctr(&["containers", "ls", "-q"]));
        assert_eq!(
            (out.status, out.stdout.trim()),
            (0, ""),
            "containers left: {}",
            out.stderr
        );
        self.sb.finish();
    }
}

/// Run `step` with both runtimes on one containerd, each with a container id of its own.
fn steps(name: &str, step: impl Fn(&Ctr, Runtime, &str) -> Step) {
    let Some(c) = Ctr::new() else { return };
    compare(ENGINE, name, |rt| {
        let id = crate::harness::container_name(name, rt);
        let result = step(&c, rt, &id);
        let _ = c.remove(&id);
        result
    });
    c.finish();
}

#[test]
fn containerd_run_prints_and_returns_the_exit_status() {
    steps("run", |c, rt, id| {
        let out = c.run(rt, &["--rm"], id, &["sh", "-c", "echo hello; exit 7"]);
        status(&out, 7, "ctr run --rm")?;
        expect_stdout(&out, "hello\n", "ctr run --rm")
    });
}

#[test]
fn containerd_detached_task_takes_exec() {
    steps("exec", |c, rt, id| {
        c.sleeper(rt, id)?;
        let exec = [
            "task",
            "exec",
            "--exec-id",
            "e1",
            id,
            "sh",
            "-c",
            EXEC_SCRIPT,
        ];
        let out = run(&mut c.ctr(&exec));
        status(&out, 5, "ctr task exec")?;
        expect_stdout(&out, EXEC_PRINTS, "ctr task exec")
    });
}

#[test]
fn containerd_exec_t_gives_a_terminal() {
    steps("exec -t", |c, rt, id| {
        c.sleeper(rt, id)?;
        let mut args = vec!["/usr/bin/ctr".to_string(), "-a".into()];
        args.push(c.sb.path("c.sock").display().to_string());
        args.extend(["-n", &c.ns, "task", "exec", "-t", "--exec-id", "t1", id].map(String::from));
        args.extend(["sh", "-c", "tty; exit 4"].map(String::from));
        let out = run_in_pty(&mut Command::new("script"), &args);
        status(&out, 4, "ctr task exec -t")?;
        on_a_pty(&out, "ctr task exec -t")
    });
}

#[test]
fn containerd_run_t_gives_a_terminal() {
    steps("run -t", |c, rt, id| {
        let mut args = vec!["/usr/bin/ctr".to_string(), "-a".into()];
        args.push(c.sb.path("c.sock").display().to_string());
        args.extend(["-n".to_string(), c.ns.clone()]);
        args.extend(c.run_args(rt, &["-t", "--rm"], id, &["sh", "-c", "tty; exit 6"]));
        let out = run_in_pty(&mut Command::new("script"), &args);
        status(&out, 6, "ctr run -t")?;
        on_a_pty(&out, "ctr run -t")
    });
}

#[test]
fn containerd_kill_delivers_the_signal_and_delete_reports_the_status() {
    steps("kill", |c, rt, id| {
        let script = "trap 'exit 9' TERM; while :; do sleep 0.1; done";
        let out = c.run(rt, &["-d"], id, &["sh", "-c", script]);
        status(&out, 0, "ctr run -d")?;
        // The trap is set once the shell runs its loop: give it that moment.
        std::thread::sleep(std::time::Duration::from_millis(300));
        status(
            &run(&mut c.ctr(&["task", "kill", "-s", "SIGTERM", id])),
            0,
            "ctr task kill",
        )?;
        let stopped = wait_until(std::time::Duration::from_secs(10), || {
            run(&mut c.ctr(&["task", "ls"]))
                .stdout
                .lines()
                .any(|l| l.starts_with(id) && l.contains("STOPPED"))
        });
        if !stopped {
            return Err("the task did not stop on SIGTERM".into());
        }
        // `ctr task rm` reports the task's exit status (as a warning).
        let out = run(&mut c.ctr(&["task", "rm", id]));
        status(&out, 0, "ctr task rm")?;
        match out.stderr.contains("exit code 9") {
            true => Ok(()),
            false => Err(format!(
                "ctr task rm: {:?} (want exit code 9)",
                out.stderr.trim()
            )),
        }
    });
}

#[test]
fn containerd_task_pid_is_the_containers_init() {
    steps("state pid", |c, rt, id| {
        c.sleeper(rt, id)?;
        is_container_init(c.task_pid(id)?, "ctr task ls")
    });
}

#[test]
fn containerd_task_ps_lists_the_containers_processes() {
    steps("top (task ps)", |c, rt, id| {
        c.sleeper(rt, id)?;
        let out = run(&mut c.ctr(&["task", "ps", id]));
        status(&out, 0, "ctr task ps")?;
        let pids: Vec<i32> = out
            .stdout
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().next()?.parse().ok())
            .collect();
        match pids.as_slice() {
            [pid] => is_container_init(*pid, "ctr task ps"),
            _ => Err(format!("ctr task ps: {:?}", out.stdout.trim())),
        }
    });
}

#[test]
fn containerd_run_with_ns_joins_a_network_namespace_by_path() {
    steps("--with-ns network", |c, rt, id| {
        let mut holder = crate::common::spawn_piped(
            Command::new("unshare").args(["--net", "--", "sleep", "1000"]),
        );
        let pid = holder.id() as i32;
        let ns = |p: i32| std::fs::read_link(format!("/proc/{p}/ns/net")).ok();
        let ready = wait_until(std::time::Duration::from_secs(5), || {
            ns(pid).is_some() && ns(pid) != ns(std::process::id() as i32)
        });
        let want = ns(pid);
        let path = format!("network:/proc/{pid}/ns/net");
        let out = c.run(
            rt,
            &["--rm", "--with-ns", &path],
            id,
            &["readlink", "/proc/self/ns/net"],
        );
        let _ = holder.kill();
        let _ = holder.wait();
        if !ready {
            return Err("unshare --net did not start".into());
        }
        let want = want.unwrap().display().to_string();
        joined_ns(&out, &want, "ctr run --with-ns network:PATH")
    });
}

#[test]
fn containerd_teardown_after_a_failed_step_leaves_nothing() {
    let Some(c) = Ctr::new() else { return };
    c.sleeper(Runtime::Runc, "abandoned").unwrap();
    let pid = c.task_pid("abandoned").unwrap();
    let top = c.sb.top.clone();
    let shim = format!(
        "/usr/bin/containerd-shim-runc-v2 -namespace {} -id abandoned -address {}",
        c.ns,
        c.sb.path("c.sock").display()
    );
    let socket = crate::sandbox::shim_socket(&shim).unwrap();
    assert!(
        socket.exists(),
        "the shim's socket is not {}",
        socket.display()
    );
    // As a failing test does: neither the container removed nor the sandbox finished.
    drop(c);
    let left = crate::sandbox::leftovers_of(&top);
    assert!(left.is_empty(), "left behind: {left:?}");
    // Gone, or a zombie waiting for the machine's init to reap it.
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = state
        .rsplit(')')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .next();
    assert!(
        matches!(state, None | Some("Z")),
        "the container's sleep ({pid}) still runs: state {state:?}"
    );
    assert!(
        !socket.exists(),
        "the shim's socket {} is left",
        socket.display()
    );
}

#[test]
fn containerd_run_memory_limit_kills_a_hog() {
    steps("--memory-limit", |c, rt, id| {
        let hog = crate::resources::HOG;
        let out = c.run(
            rt,
            &["--rm", "--memory-limit", "67108864"],
            id,
            &["sh", "-c", hog],
        );
        status(
            &out,
            137,
            "a 150 MB hog under ctr run --memory-limit 64 MiB",
        )
    });
}

/// The task's status as `ctr task ls` shows it (RUNNING, PAUSED, STOPPED).
fn task_status(c: &Ctr, id: &str) -> String {
    run(&mut c.ctr(&["task", "ls"]))
        .stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(id))
        .and_then(|l| l.split_whitespace().nth(2).map(String::from))
        .unwrap_or_default()
}

#[test]
fn containerd_task_pause_and_resume() {
    steps("task pause/resume", |c, rt, id| {
        c.sleeper(rt, id)?;
        status(
            &run(&mut c.ctr(&["task", "pause", id])),
            0,
            "ctr task pause",
        )?;
        match task_status(c, id).as_str() {
            "PAUSED" => {}
            s => return Err(format!("ctr task ls after pause: {s:?}")),
        }
        status(
            &run(&mut c.ctr(&["task", "resume", id])),
            0,
            "ctr task resume",
        )?;
        match task_status(c, id).as_str() {
            "RUNNING" => Ok(()),
            s => Err(format!("ctr task ls after resume: {s:?}")),
        }
    });
}

#[test]
fn containerd_task_metrics_reports_the_containers_cgroup() {
    steps("task metrics", |c, rt, id| {
        let out = c.run(
            rt,
            &["-d", "--memory-limit", "67108864"],
            id,
            &["sleep", "1000"],
        );
        status(&out, 0, "ctr run -d --memory-limit")?;
        let out = run(&mut c.ctr(&["task", "metrics", id]));
        status(&out, 0, "ctr task metrics")?;
        let value = |key: &str| {
            out.stdout
                .lines()
                .find(|l| l.split_whitespace().next() == Some(key))
                .and_then(|l| l.split_whitespace().nth(1).map(String::from))
        };
        match (
            value("memory.limit_in_bytes").as_deref(),
            value("pids.current").as_deref(),
        ) {
            (Some("67108864"), Some("1")) => Ok(()),
            _ => Err(format!("ctr task metrics: {:?}", out.stdout)),
        }
    });
}
