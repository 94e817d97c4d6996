//! Root podman with `--runtime` set to runc or nsboot: containers.conf, storage.conf (vfs),
//! storage, run root, tmp dir and events log all in the test's temp dir, the cgroupfs manager
//! with a cgroup parent of the test's own, no network (each container still gets a network
//! namespace of its own), the image `podman load`ed. A pod's infra container runs the image's
//! /pause, since no pause image can be pulled.

use crate::cli::{self, cli, Cli};
use crate::harness::{available, joined_ns, status, Runtime, Sandbox, Step};
use crate::image::{archive, IMAGE};

struct Podman {
    sb: Sandbox,
    cgroup_parent: String,
    /// One root podman at a time: they share podman's own locks and the image cache.
    _serial: std::sync::MutexGuard<'static, ()>,
}

impl Cli for Podman {
    const ENGINE: &'static str = "podman";

    fn start() -> Option<Podman> {
        if !available(Self::ENGINE, &["/usr/bin/podman", "/usr/bin/conmon"]) {
            return None;
        }
        static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let mut sb = Sandbox::new("podman");
        let parent = sb.top.file_name().unwrap().to_string_lossy().into_owned();
        sb.own_cgroup(&parent);
        let t = sb.top.display().to_string();
        let runc = Runtime::Runc.path().display().to_string();
        let nsboot = Runtime::Nsboot.path().display().to_string();
        // Root here lacks CAP_SYS_RESOURCE: podman's default rlimits (1048576) must come down.
        let conf = format!(
            "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=4096:4096\"]\n\
             log_driver = \"k8s-file\"\nnetns = \"none\"\n\
             [engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n\
             events_logfile_path = \"{t}/events.log\"\ntmp_dir = \"{t}/tmp\"\n\
             volume_path = \"{t}/volumes\"\nstatic_dir = \"{t}/storage/libpod\"\n\
             infra_image = \"{IMAGE}\"\ninfra_command = \"/pause\"\n\
             [engine.runtimes]\nnsboot = [\"{nsboot}\"]\nrunc = [\"{runc}\"]\n"
        );
        let storage = format!(
            "[storage]\ndriver = \"vfs\"\ngraphroot = \"{t}/storage\"\nrunroot = \"{t}/run\"\n"
        );
        std::fs::write(sb.path("containers.conf"), conf).unwrap();
        std::fs::write(sb.path("storage.conf"), storage).unwrap();
        let e = Podman {
            sb,
            cgroup_parent: format!("/{parent}"),
            _serial: serial,
        };
        let tar = archive(&e.sb.top).display().to_string();
        let out = cli(&e, Runtime::Runc, &["load", "-i", &tar]);
        assert_eq!(out.status, 0, "podman load: {}", out.stderr);
        Some(e)
    }

    fn argv(&self, rt: Runtime, args: &[&str]) -> Vec<String> {
        let t = self.sb.top.display();
        let mut argv: Vec<String> = vec!["env".into(), "-i".into()];
        for (k, v) in [
            ("PATH", crate::harness::PATH.to_string()),
            ("HOME", format!("{t}/home")),
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
        if creates && !in_pod {
            argv.push(format!("--cgroup-parent={}", self.cgroup_parent));
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

#[test]
fn podman_root_run_prints_and_returns_the_exit_status() {
    cli::steps::<Podman>("run", cli::run_prints_and_exits);
}

#[test]
fn podman_root_detached_container_takes_exec() {
    cli::steps::<Podman>("exec", cli::detached_takes_exec);
}

#[test]
fn podman_root_exec_t_gives_a_terminal() {
    cli::steps::<Podman>("exec -t", cli::exec_t_gives_a_terminal);
}

#[test]
fn podman_root_run_it_gives_a_terminal() {
    cli::steps::<Podman>("run -it", cli::run_it_gives_a_terminal);
}

#[test]
fn podman_root_stop_kills_after_the_grace_period() {
    cli::steps::<Podman>("stop", cli::stop_kills_after_the_grace_period);
}

#[test]
fn podman_root_rm_removes_a_stopped_container() {
    cli::steps::<Podman>("rm", cli::rm_removes_a_stopped_container);
}

#[test]
fn podman_root_logs_has_stdout_and_stderr() {
    cli::steps::<Podman>("logs", cli::logs_has_stdout_and_stderr);
}

#[test]
#[ignore = "nsboot: `podman top` is empty (the state pid is nsboot's supervisor)"]
fn podman_root_top_lists_the_containers_process() {
    cli::steps::<Podman>("top", cli::top_lists_the_containers_process);
}

#[test]
fn podman_root_kill_delivers_the_signal() {
    cli::steps::<Podman>("kill", cli::kill_delivers_the_signal);
}

#[test]
fn podman_root_run_of_a_missing_command_exits_127() {
    cli::steps::<Podman>("exit status 127", cli::missing_command_exits_127);
}

#[test]
#[ignore = "nsboot: linux.namespaces[].path is not joined (refused or ignored)"]
fn podman_root_network_container_joins_its_namespace() {
    cli::steps::<Podman>(
        "--network container:X",
        cli::joins_namespace_of_container("network"),
    );
}

#[test]
#[ignore = "nsboot: linux.namespaces[].path is not joined (refused or ignored)"]
fn podman_root_pid_container_joins_its_namespace() {
    cli::steps::<Podman>(
        "--pid container:X",
        cli::joins_namespace_of_container("pid"),
    );
}

#[test]
#[ignore = "nsboot: linux.namespaces[].path is not joined (refused or ignored)"]
fn podman_root_ipc_container_joins_its_namespace() {
    cli::steps::<Podman>(
        "--ipc container:X",
        cli::joins_namespace_of_container("ipc"),
    );
}

#[test]
#[ignore = "nsboot: the state pid is nsboot's supervisor, not the container's init"]
fn podman_root_state_pid_is_the_containers_init() {
    cli::steps::<Podman>("state pid", cli::state_pid_is_the_containers_init);
}

#[test]
#[ignore = "nsboot: noNewPrivileges is set though the spec leaves it out"]
fn podman_root_setuid_works_inside() {
    cli::steps::<Podman>(
        "setuid (no noNewPrivileges)",
        cli::setuid_works_without_no_new_privileges,
    );
}

#[test]
#[ignore = "nsboot: linux.namespaces[].path is not joined (refused or ignored)"]
fn podman_root_pod_members_share_the_infra_network() {
    cli::steps::<Podman>("pod", |e: &Podman, rt, name| -> Step {
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
    });
}
