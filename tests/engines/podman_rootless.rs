//! Rootless podman (as the test user, with its subordinate range) through the same steps as
//! root podman (tests/podman.rs has the rootless basics with nsboot alone).

use crate::cli::{self, step_tests};
use crate::podman::{pod_members_share_the_network, Podman};

type Rootless = Podman<true>;

step_tests! {
    Rootless;
    podman_rootless_run_prints_and_returns_the_exit_status: "run" => cli::run_prints_and_exits;
    podman_rootless_detached_container_takes_exec: "exec" => cli::detached_takes_exec;
    podman_rootless_exec_t_gives_a_terminal: "exec -t" => cli::exec_t_gives_a_terminal;
    podman_rootless_run_it_gives_a_terminal: "run -it" => cli::run_it_gives_a_terminal;
    podman_rootless_stop_kills_after_the_grace_period: "stop" => cli::stop_kills_after_the_grace_period;
    podman_rootless_rm_removes_a_stopped_container: "rm" => cli::rm_removes_a_stopped_container;
    podman_rootless_logs_has_stdout_and_stderr: "logs" => cli::logs_has_stdout_and_stderr;
    podman_rootless_top_lists_the_containers_process: "top" => cli::top_lists_the_containers_process;
    podman_rootless_kill_delivers_the_signal: "kill" => cli::kill_delivers_the_signal;
    podman_rootless_run_of_a_missing_command_exits_127: "exit status 127" => cli::missing_command_exits_127;
    podman_rootless_network_container_joins_its_namespace: "--network container:X" => cli::joins_namespace_of_container("network");
    podman_rootless_pid_container_joins_its_namespace: "--pid container:X" => cli::joins_namespace_of_container("pid");
    podman_rootless_pid_host_is_the_hosts_namespace: "--pid host" => cli::pid_host_is_the_hosts_namespace;
    podman_rootless_ipc_container_joins_its_namespace: "--ipc container:X" => cli::joins_namespace_of_container("ipc");
    podman_rootless_state_pid_is_the_containers_init: "state pid" => cli::state_pid_is_the_containers_init;
    podman_rootless_setuid_works_inside: "setuid (no noNewPrivileges)" => cli::setuid_works_without_no_new_privileges;
    podman_rootless_pod_members_share_the_infra_network: "pod" => pod_members_share_the_network;
}
