//! podman, as root and rootless (as the test user, with its subordinate range), with `--runtime`
//! set to runc or nsboot: containers.conf, storage.conf (vfs), storage, run root, tmp dir and
//! events log all in the test's temp dir, the cgroupfs manager (as root with a cgroup parent of
//! the test's own; rootless on cgroup v1 without cgroups), no network (each container still gets a network
//! namespace of its own), the image `podman load`ed. A pod's infra container runs the image's
//! /pause, since no pause image can be pulled.

use std::fs;
use std::os::unix::fs::{chown, PermissionsExt};

use crate::cli::{self, cli, step_tests, Cli};
use crate::common::{self, Mode};
use crate::harness::{available, joined_ns, status, Runtime, Step};
use crate::image::{archive, IMAGE};
use crate::sandbox::Sandbox;

/// podman as root, or (ROOTLESS) as the unprivileged test user with its subordinate range.
pub struct Podman<const ROOTLESS: bool> {
    sb: Sandbox,
    /// Root: the cgroup parent of the test's own. Rootless on cgroup v1 there is none to use.
    cgroup_parent: Option<String>,
    user: &'static common::TestUser,
    /// One podman at a time: they share podman's own locks, and the user's pause process.
    _serial: std::sync::MutexGuard<'static, ()>,
}

pub type RootPodman = Podman<false>;

impl<const ROOTLESS: bool> Cli for Podman<ROOTLESS> {
    const ENGINE: &'static str = if ROOTLESS {
        "podman rootless"
    } else {
        "podman"
    };

    fn start() -> Option<Self> {
        if !available(Self::ENGINE, &["/usr/bin/podman", "/usr/bin/conmon"]) {
            return None;
        }
        static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let mode = if ROOTLESS {
            Mode::RootlessSubid
        } else {
            Mode::Root
        };
        let user = common::user(mode);
        let mut sb = Sandbox::new(if ROOTLESS { "podman-rl" } else { "podman" });
        let parent = sb.top.file_name().unwrap().to_string_lossy().into_owned();
        let t = sb.top.display().to_string();
        for (dir, perm) in [("", 0o755), ("xdg", 0o700), ("home", 0o700)] {
            let d = sb.path(dir);
            fs::create_dir_all(&d).unwrap();
            fs::set_permissions(&d, fs::Permissions::from_mode(perm)).unwrap();
            chown(&d, Some(user.uid), Some(user.gid)).unwrap();
        }
        // Rootless podman's pause process holds its user namespace: it ends with the test.
        sb.kill_at_teardown(sb.path("xdg/libpod/tmp/pause.pid"));
        let cgroup_parent = (!ROOTLESS).then(|| {
            sb.own_cgroup(&parent);
            format!("/{parent}")
        });
        let runc = Runtime::Runc.path().display().to_string();
        let nsboot = Runtime::Nsboot.path().display().to_string();
        // Root here lacks CAP_SYS_RESOURCE: podman's default rlimits (1048576) must come down.
        // Rootless on cgroup v1 podman runs without cgroups by itself (runc would refuse
        // podman's `cgroups = "disabled"`).
        // Rootless podman's defaults are below HOME and XDG_RUNTIME_DIR, in top already.
        let dirs = match ROOTLESS {
            true => String::new(),
            false => format!(
                "tmp_dir = \"{t}/xdg/tmp\"\nvolume_path = \"{t}/home/volumes\"\n\
                 static_dir = \"{t}/home/storage/libpod\"\n"
            ),
        };
        let conf = format!(
            "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=4096:4096\"]\n\
             log_driver = \"k8s-file\"\nnetns = \"none\"\n\
             [engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n\
             events_logfile_path = \"{t}/events.log\"\n{dirs}\
             infra_image = \"{IMAGE}\"\ninfra_command = \"/pause\"\n\
             [engine.runtimes]\nnsboot = [\"{nsboot}\"]\nrunc = [\"{runc}\"]\n"
        );
        let storage = format!(
            "[storage]\ndriver = \"vfs\"\ngraphroot = \"{t}/home/storage\"\n\
             runroot = \"{t}/xdg/storage\"\n"
        );
        fs::write(sb.path("containers.conf"), conf).unwrap();
        fs::write(sb.path("storage.conf"), storage).unwrap();
        let e = Podman {
            sb,
            cgroup_parent,
            user,
            _serial: serial,
        };
        let tar = archive(&e.sb.top).display().to_string();
        let out = cli(&e, Runtime::Runc, &["load", "-i", &tar]);
        assert_eq!(out.status, 0, "podman load: {}", out.stderr);
        Some(e)
    }

    fn argv(&self, rt: Runtime, args: &[&str]) -> Vec<String> {
        let t = self.sb.top.display();
        let mut argv: Vec<String> = Vec::new();
        if ROOTLESS {
            argv.push("setpriv".into());
            argv.push(format!("--reuid={}", self.user.uid));
            argv.push(format!("--regid={}", self.user.gid));
            argv.extend(["--init-groups".into(), "--".into()]);
        }
        argv.extend(["env".into(), "-i".into()]);
        for (k, v) in [
            ("PATH", crate::harness::PATH.to_string()),
            ("HOME", format!("{t}/home")),
            ("USER", self.user.name.clone()),
            // Without these, rootless podman's `run --rm` waited out conmon's 20 s timeout.
            ("LOGNAME", self.user.name.clone()),
            ("SHELL", "/bin/sh".into()),
            ("XDG_CONFIG_HOME", format!("{t}/home/.config")),
            ("XDG_DATA_HOME", format!("{t}/home/.local/share")),
            ("XDG_RUNTIME_DIR", format!("{t}/xdg")),
            ("CONTAINERS_CONF", format!("{t}/containers.conf")),
            ("CONTAINERS_STORAGE_CONF", format!("{t}/storage.conf")),
        ] {
            argv.push(format!("{k}={v}"));
        }
        argv.extend([
            "/usr/bin/podman".into(),
            "--runtime".into(),
            rt.name().into(),
        ]);
        let mut args = args.iter().map(|s| s.to_string()).peekable();
        let first: Vec<String> = match args.peek().map(String::as_str) {
            Some("run" | "create") => vec![args.next().unwrap()],
            Some("pod") => args.by_ref().take(2).collect(),
            _ => Vec::new(),
        };
        let in_pod = args.clone().any(|a| a == "--pod");
        let creates = first == ["run"] || first == ["create"] || first == ["pod", "create"];
        argv.extend(first);
        if let Some(parent) = self.cgroup_parent.as_ref().filter(|_| creates && !in_pod) {
            argv.push(format!("--cgroup-parent={parent}"));
        }
        argv.extend(args);
        argv
    }

    fn finish(self) {
        let pods = cli(&self, Runtime::Runc, &["pod", "ps", "-q"]);
        assert_eq!(
            (pods.status, pods.stdout.trim()),
            (0, ""),
            "pods left: {}",
            pods.stderr
        );
        self.sb.finish();
    }
}

/// A pod of two: the second member must be in the first's (the infra's) network namespace.
pub fn pod_members_share_the_network<const R: bool>(
    e: &Podman<R>,
    rt: Runtime,
    name: &str,
) -> Step {
    let pod = format!("{name}-pod");
    // The infra image is ours: its /pause, as it has no pause binary of podman's.
    let argv = ["pod", "create", "--infra-command", "/pause", "--name", &pod];
    let out = cli(e, rt, &argv);
    status(&out, 0, "pod create")?;
    let member = format!("{name}-a");
    let argv = [
        "run", "-d", "--pod", &pod, "--name", &member, IMAGE, "sleep", "1000",
    ];
    let out = cli(e, rt, &argv);
    let result = status(&out, 0, "run -d --pod").and_then(|()| {
        let own = cli(e, rt, &["exec", &member, "readlink", "/proc/self/ns/net"]);
        status(&own, 0, "exec readlink")?;
        let argv = [
            "run",
            "--rm",
            "--pod",
            &pod,
            IMAGE,
            "readlink",
            "/proc/self/ns/net",
        ];
        joined_ns(&cli(e, rt, &argv), own.stdout.trim(), "a second pod member")
    });
    let _ = cli(e, rt, &["pod", "kill", &pod]);
    let rm = cli(e, rt, &["pod", "rm", "-f", &pod]);
    result?;
    status(&rm, 0, "pod rm -f")
}

/// `podman container checkpoint`, then `restore`: the counter goes on from where it was
/// dumped (podman's logs hold both halves), it does not start again.
pub fn checkpoint_and_restore_go_on<const R: bool>(e: &Podman<R>, rt: Runtime, name: &str) -> Step {
    let argv = ["run", "-d", "--name", name, IMAGE, "sh", "-c", COUNTER];
    status(&cli(e, rt, &argv), 0, "run -d")?;
    counter_goes_on(e, rt, name)
}

/// The same for a container with a terminal (`run -dt`, podman's own example): the engine's
/// console socket gets the restored terminal, whose output podman's logs hold.
pub fn terminal_checkpoint_and_restore_go_on<const R: bool>(
    e: &Podman<R>,
    rt: Runtime,
    name: &str,
) -> Step {
    let argv = ["run", "-dt", "--name", name, IMAGE, "sh", "-c", COUNTER];
    status(&cli(e, rt, &argv), 0, "run -dt")?;
    counter_goes_on(e, rt, name)
}

/// Prints a growing count, one number per line, five a second.
const COUNTER: &str = "i=0; while :; do i=$((i+1)); echo $i; sleep 0.2; done";

/// The counter `name` (started) through `container checkpoint` and `restore`.
fn counter_goes_on<const R: bool>(e: &Podman<R>, rt: Runtime, name: &str) -> Step {
    let count = |what: &str| -> Result<Vec<u64>, String> {
        let out = cli(e, rt, &["logs", name]);
        status(&out, 0, what)?;
        Ok(out
            .stdout
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect())
    };
    std::thread::sleep(std::time::Duration::from_secs(1));
    status(
        &cli(e, rt, &["container", "checkpoint", name]),
        0,
        "container checkpoint",
    )?;
    let dumped = count("logs after checkpoint")?;
    let last = *dumped.last().ok_or("no count before the checkpoint")?;
    status(
        &cli(e, rt, &["container", "restore", name]),
        0,
        "container restore",
    )?;
    std::thread::sleep(std::time::Duration::from_secs(1));
    let after: Vec<u64> = count("logs after restore")?
        .into_iter()
        .skip(dumped.len())
        .collect();
    match after.first() {
        Some(&n) if n == last + 1 && after.len() > 2 => Ok(()),
        _ => Err(format!("after restore from {last}: {after:?}")),
    }
}

/// A container in another's network namespace (`--network container:X`, joined by path as a
/// pod member joins its infra's) through `container checkpoint` and `restore`: the counter goes
/// on, back in the other's network namespace. (A pod's infra fails to start in the VM
/// environment `criu`, with runc too: its stdin, /dev/null, cannot be reopened there.)
pub fn joined_network_checkpoint_and_restore_go_on<const R: bool>(
    e: &Podman<R>,
    rt: Runtime,
    name: &str,
) -> Step {
    let holder = format!("{name}-net");
    cli::sleeper(e, rt, &holder)?;
    let net = format!("container:{holder}");
    let argv = [
        "run",
        "-d",
        "--network",
        &net,
        "--name",
        name,
        IMAGE,
        "sh",
        "-c",
        COUNTER,
    ];
    let result = status(&cli(e, rt, &argv), 0, "run -d --network container:X").and_then(|()| {
        let own = cli(e, rt, &["exec", &holder, "readlink", "/proc/self/ns/net"]);
        status(&own, 0, "exec readlink")?;
        counter_goes_on(e, rt, name)?;
        let out = cli(e, rt, &["exec", name, "readlink", "/proc/self/ns/net"]);
        joined_ns(&out, own.stdout.trim(), "the restored container")
    });
    // The joiner before the holder (podman keeps a container others depend on).
    for c in [name, holder.as_str()] {
        let _ = cli(e, rt, &["kill", c]);
        let _ = cli(e, rt, &["rm", "-f", c]);
    }
    result
}

step_tests! {
    RootPodman;
    podman_root_memory_limit_is_set: "--memory 64m" => crate::resources::memory_limit_is_set;
    podman_root_read_only_device_denies_writes: "--device X:r" => crate::devices::read_only_device_denies_writes;
    podman_root_read_write_device_takes_writes: "--device X:rw" => crate::devices::read_write_device_takes_writes;
    podman_root_memory_hog_is_killed: "--memory 64m hog" => crate::resources::memory_hog_is_killed;
    podman_root_pids_limit_bounds_a_fork_bomb: "--pids-limit 10" => crate::resources::pids_limit_bounds_a_fork_bomb;
    podman_root_cpus_sets_the_quota: "--cpus 0.5" => crate::resources::cpus_sets_the_quota;
    podman_root_pause_and_unpause: "pause/unpause" => crate::resources::pause_and_unpause;
    podman_root_update_memory: "update --memory" => crate::resources::update_memory;
    podman_root_stats_reports_the_limit: "stats --no-stream" => crate::resources::stats_reports_the_limit;
    podman_root_run_prints_and_returns_the_exit_status: "run" => cli::run_prints_and_exits;
    podman_root_detached_container_takes_exec: "exec" => cli::detached_takes_exec;
    podman_root_exec_t_gives_a_terminal: "exec -t" => cli::exec_t_gives_a_terminal;
    podman_root_run_it_gives_a_terminal: "run -it" => cli::run_it_gives_a_terminal;
    podman_root_stop_kills_after_the_grace_period: "stop" => cli::stop_kills_after_the_grace_period;
    podman_root_rm_removes_a_stopped_container: "rm" => cli::rm_removes_a_stopped_container;
    podman_root_logs_has_stdout_and_stderr: "logs" => cli::logs_has_stdout_and_stderr;
    podman_root_top_lists_the_containers_process: "top" => cli::top_lists_the_containers_process;
    podman_root_kill_delivers_the_signal: "kill" => cli::kill_delivers_the_signal;
    podman_root_run_of_a_missing_command_exits_127: "exit status 127" => cli::missing_command_exits_127;
    podman_root_network_container_joins_its_namespace: "--network container:X" => cli::joins_namespace_of_container("network");
    podman_root_pid_container_joins_its_namespace: "--pid container:X" => cli::joins_namespace_of_container("pid");
    podman_root_pid_host_is_the_hosts_namespace: "--pid host" => cli::pid_host_is_the_hosts_namespace;
    podman_root_ipc_container_joins_its_namespace: "--ipc container:X" => cli::joins_namespace_of_container("ipc");
    podman_root_state_pid_is_the_containers_init: "state pid" => cli::state_pid_is_the_containers_init;
    podman_root_setuid_works_inside: "setuid (no noNewPrivileges)" => cli::setuid_works_without_no_new_privileges;
    podman_root_pod_members_share_the_infra_network: "pod" => pod_members_share_the_network;
}

/// Whether CRIU runs here: where `criu check` fails (Debian 12's CRIU 3.17 on kernels 6.13 and
/// later: its vDSO check), runc fails the step `name` as nsboot does, in CRIU's words: skipped,
/// with the reason. The VM environment `criu` (kernel 6.12) must run it.
fn criu_runs(name: &str) -> bool {
    let check = std::process::Command::new("criu").arg("check").output();
    if check.as_ref().is_ok_and(|o| o.status.success()) {
        return true;
    }
    let env = std::env::var("NSBOOT_VM_ENV").unwrap_or_default();
    assert_ne!(env, "criu", "`criu check` fails in the VM: {check:?}");
    eprintln!("podman {name}: skipped, `criu check` fails here");
    false
}

#[test]
fn podman_root_checkpoint_and_restore_go_on() {
    let name = "container checkpoint/restore";
    if criu_runs(name) {
        cli::steps::<RootPodman>(name, checkpoint_and_restore_go_on);
    }
}

/// The same for a container in another's network namespace.
#[test]
fn podman_root_checkpoint_and_restore_of_a_joined_network_go_on() {
    let name = "--network container:X container checkpoint/restore";
    if criu_runs(name) {
        cli::steps::<RootPodman>(name, joined_network_checkpoint_and_restore_go_on);
    }
}

/// The same for a container with a terminal.
#[test]
fn podman_root_checkpoint_and_restore_of_a_terminal_go_on() {
    let name = "run -dt container checkpoint/restore";
    if criu_runs(name) {
        cli::steps::<RootPodman>(name, terminal_checkpoint_and_restore_go_on);
    }
}
