//! Docker: `dockerd` started by the test with a data root, exec root, pid file, socket and
//! config file of its own (no iptables, no bridge, the cgroupfs driver, a cgroup parent of the
//! test's own), nsboot added as a runtime beside its built-in runc, the image `docker load`ed.
//! dockerd starts its own containerd below the exec root.

use std::process::Command;

use crate::cli::{self, cli, step_tests, Cli};
use crate::harness::{available, prints, run, Runtime, Step};
use crate::image::{archive, IMAGE};
use crate::sandbox::Sandbox;

struct Docker {
    sb: Sandbox,
}

impl Docker {
    fn client(&self) -> Vec<String> {
        vec![
            "/usr/bin/docker".into(),
            "--config".into(),
            self.sb.path("client").display().to_string(),
            "-H".into(),
            format!("unix://{}", self.sb.path("d.sock").display()),
        ]
    }
}

impl Cli for Docker {
    const ENGINE: &'static str = "docker";

    fn start() -> Option<Docker> {
        if !available(Self::ENGINE, &["/usr/sbin/dockerd", "/usr/bin/docker"]) {
            return None;
        }
        let mut sb = Sandbox::new("dk");
        let parent = sb.top.file_name().unwrap().to_string_lossy().into_owned();
        sb.own_cgroup(&parent);
        // Root here lacks CAP_SYS_RESOURCE: no rlimit above the machine's may be asked for.
        let config = serde_json::json!({
            "runtimes": {"nsboot": {"path": Runtime::Nsboot.path()}},
            "default-ulimits": {
                "nofile": {"Name": "nofile", "Hard": 1024, "Soft": 1024},
                "nproc": {"Name": "nproc", "Hard": 4096, "Soft": 4096},
            },
            "exec-opts": ["native.cgroupdriver=cgroupfs"],
            "cgroup-parent": format!("/{parent}"),
        });
        std::fs::write(sb.path("daemon.json"), config.to_string()).unwrap();
        let d = |rel: &str| sb.path(rel).display().to_string();
        let mut dockerd = Command::new("/usr/sbin/dockerd");
        dockerd
            .args([
                "--config-file",
                &d("daemon.json"),
                "--data-root",
                &d("data"),
            ])
            .args(["--exec-root", &d("exec"), "--pidfile", &d("docker.pid")])
            .args(["-H", &format!("unix://{}", d("d.sock"))])
            .args(["--iptables=false", "--ip-masq=false", "--bridge=none"])
            .args(["--userland-proxy=false", "--log-level", "warn"]);
        let sock = sb.path("d.sock");
        let mut e = Docker { sb };
        let client = e.client();
        e.sb.start_daemon("dockerd", &mut dockerd, || {
            sock.exists()
                && run(Command::new(&client[0]).args(&client[1..]).arg("version")).status == 0
        });
        let tar = archive(&e.sb.top);
        let tar = tar.display().to_string();
        let out = cli(&e, Runtime::Runc, &["load", "-i", &tar]);
        assert_eq!(
            out.status,
            0,
            "docker load: {}\n{}",
            out.stderr,
            e.sb.logs()
        );
        Some(e)
    }

    fn argv(&self, rt: Runtime, args: &[&str]) -> Vec<String> {
        let mut argv = self.client();
        let mut args = args.iter().map(|s| s.to_string());
        if let Some(sub) = args.next() {
            let creates = sub == "run" || sub == "create";
            argv.push(sub);
            if creates {
                argv.extend(["--runtime".into(), rt.name().into()]);
            }
        }
        argv.extend(args);
        argv
    }

    fn finish(self) {
        self.sb.finish();
    }
}

step_tests! {
    Docker;
    docker_memory_limit_is_set: "--memory 64m" => crate::resources::memory_limit_is_set;
    docker_read_only_device_denies_writes: "--device X:r" => crate::devices::read_only_device_denies_writes;
    docker_read_write_device_takes_writes: "--device X:rw" => crate::devices::read_write_device_takes_writes;
    docker_memory_hog_is_killed: "--memory 64m hog" => crate::resources::memory_hog_is_killed;
    docker_pids_limit_bounds_a_fork_bomb: "--pids-limit 10" => crate::resources::pids_limit_bounds_a_fork_bomb;
    docker_cpus_sets_the_quota: "--cpus 0.5" => crate::resources::cpus_sets_the_quota;
    docker_pause_and_unpause: "pause/unpause" => crate::resources::pause_and_unpause;
    docker_update_memory: "update --memory" => crate::resources::update_memory;
    docker_stats_reports_the_limit: "stats --no-stream" => crate::resources::stats_reports_the_limit;
    docker_run_prints_and_returns_the_exit_status: "run" => cli::run_prints_and_exits;
    docker_detached_container_takes_exec: "exec" => cli::detached_takes_exec;
    docker_exec_t_gives_a_terminal: "exec -t" => cli::exec_t_gives_a_terminal;
    docker_run_it_gives_a_terminal: "run -it" => cli::run_it_gives_a_terminal;
    docker_stop_kills_after_the_grace_period: "stop" => cli::stop_kills_after_the_grace_period;
    docker_rm_removes_a_stopped_container: "rm" => cli::rm_removes_a_stopped_container;
    docker_logs_has_stdout_and_stderr: "logs" => cli::logs_has_stdout_and_stderr;
    docker_top_lists_the_containers_process: "top" => cli::top_lists_the_containers_process;
    docker_kill_delivers_the_signal: "kill" => cli::kill_delivers_the_signal;
    docker_run_of_a_missing_command_exits_127: "exit status 127" => cli::missing_command_exits_127;
    docker_network_container_joins_its_namespace: "--network container:X" => cli::joins_namespace_of_container("network");
    docker_pid_container_joins_its_namespace: "--pid container:X" => cli::joins_namespace_of_container("pid");
    docker_pid_host_is_the_hosts_namespace: "--pid host" => cli::pid_host_is_the_hosts_namespace;
    docker_ipc_container_joins_its_namespace: "--ipc container:X" => cli::joins_namespace_of_container("ipc");
    docker_state_pid_is_the_containers_init: "state pid" => cli::state_pid_is_the_containers_init;
    docker_setuid_works_inside: "setuid (no noNewPrivileges)" => cli::setuid_works_without_no_new_privileges;
}

#[test]
fn docker_default_sysctls_take_effect() {
    cli::steps::<Docker>("default sysctls", |e: &Docker, rt, _| -> Step {
        let port = "/proc/sys/net/ipv4/ip_unprivileged_port_start";
        let out = cli(e, rt, &["run", "--rm", IMAGE, "cat", port]);
        prints(&out, "0", "net.ipv4.ip_unprivileged_port_start")?;
        match out.stdout.trim() {
            "0" => Ok(()),
            other => Err(format!(
                "net.ipv4.ip_unprivileged_port_start is {other}, not 0"
            )),
        }
    });
}
