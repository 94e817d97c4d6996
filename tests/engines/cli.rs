//! The steps Docker and podman share (their command lines agree), written once over [`Cli`].

use std::fs;
use std::process::Command;

use crate::common::Output;
use crate::harness::{
    compare, container_name, expect_stdout, is_container_init, joined_ns, on_a_pty, prints, run,
    run_in_pty, status, Runtime, Step, EXEC_PRINTS, EXEC_SCRIPT,
};
use crate::image::IMAGE;

/// One `#[test]` per step: `NAME: "step" => step_fn;`, each with its attributes (an
/// `#[ignore = "nsboot: ..."]` names what nsboot does not yet do as runc does).
macro_rules! step_tests {
    ($engine:ty; $($(#[$attr:meta])* $name:ident: $step:literal => $f:expr;)*) => {
        $(
            #[test]
            $(#[$attr])*
            fn $name() {
                crate::cli::steps::<$engine>($step, $f);
            }
        )*
    };
}
pub(crate) use step_tests;

/// An engine driven through a docker-compatible command line.
pub trait Cli: Sized {
    const ENGINE: &'static str;
    /// The engine, started and with the image loaded; None (skip) where it cannot be.
    fn start() -> Option<Self>;
    /// The client's argv for `args`, with `rt` as the runtime of what it creates.
    fn argv(&self, rt: Runtime, args: &[&str]) -> Vec<String>;
    /// Stop the engine; require that nothing is left.
    fn finish(self);
}

/// `args` run by the engine's client, `rt` as the runtime.
pub fn cli<E: Cli>(e: &E, rt: Runtime, args: &[&str]) -> Output {
    let argv = e.argv(rt, args);
    run(Command::new(&argv[0]).args(&argv[1..]))
}

/// `args` run by the engine's client on a pty of its own (for -t, -it).
pub fn cli_in_pty<E: Cli>(e: &E, rt: Runtime, args: &[&str]) -> Output {
    run_in_pty(&mut Command::new("script"), &e.argv(rt, args))
}

/// Run `step` with both runtimes on one engine, each with a container name of its own, and
/// remove every container after each.
pub fn steps<E: Cli>(name: &str, step: impl Fn(&E, Runtime, &str) -> Step) {
    let Some(e) = E::start() else { return };
    compare(E::ENGINE, name, |rt| {
        let result = step(&e, rt, &container_name(name, rt));
        remove_all(&e, rt);
        result
    });
    let ps = cli(&e, Runtime::Runc, &["ps", "-aq"]);
    assert_eq!(
        (ps.status, ps.stdout.trim()),
        (0, ""),
        "{} still lists containers: {}",
        E::ENGINE,
        ps.stderr
    );
    e.finish();
}

fn remove_all<E: Cli>(e: &E, rt: Runtime) {
    let ps = cli(e, rt, &["ps", "-aq"]);
    for id in ps.stdout.split_whitespace() {
        // SIGKILL first: `rm -f` would give a pid 1 that ignores SIGTERM podman's 10 s.
        let _ = cli(e, rt, &["kill", id]);
        let _ = cli(e, rt, &["rm", "-f", id]);
    }
}

/// A detached `sleep 1000` named `name`.
pub fn sleeper<E: Cli>(e: &E, rt: Runtime, name: &str) -> Step {
    let out = cli(
        e,
        rt,
        &["run", "-d", "--name", name, IMAGE, "sleep", "1000"],
    );
    status(&out, 0, "run -d")
}

pub fn run_prints_and_exits<E: Cli>(e: &E, rt: Runtime, _: &str) -> Step {
    let out = cli(
        e,
        rt,
        &["run", "--rm", IMAGE, "sh", "-c", "echo hello; exit 7"],
    );
    status(&out, 7, "run --rm")?;
    expect_stdout(&out, "hello\n", "run --rm")
}

pub fn detached_takes_exec<E: Cli>(e: &E, rt: Runtime, name: &str) -> Step {
    sleeper(e, rt, name)?;
    let out = cli(e, rt, &["exec", name, "sh", "-c", EXEC_SCRIPT]);
    status(&out, 5, "exec")?;
    expect_stdout(&out, EXEC_PRINTS, "exec")
}

pub fn exec_t_gives_a_terminal<E: Cli>(e: &E, rt: Runtime, name: &str) -> Step {
    sleeper(e, rt, name)?;
    let out = cli_in_pty(e, rt, &["exec", "-t", name, "sh", "-c", "tty; exit 4"]);
    status(&out, 4, "exec -t")?;
    on_a_pty(&out, "exec -t")
}

pub fn run_it_gives_a_terminal<E: Cli>(e: &E, rt: Runtime, _: &str) -> Step {
    // The pause lets the engine copy the output before the terminal goes away.
    let script = "tty; test -t 0 && echo stdin-is-a-tty; sleep 0.5; exit 6";
    let out = cli_in_pty(e, rt, &["run", "-it", "--rm", IMAGE, "sh", "-c", script]);
    status(&out, 6, "run -it")?;
    on_a_pty(&out, "run -it")?;
    match out.stdout.contains("stdin-is-a-tty") {
        true => Ok(()),
        false => Err(format!("run -it: stdin is no tty: {:?}", out.stdout)),
    }
}

pub fn stop_kills_after_the_grace_period<E: Cli>(e: &E, rt: Runtime, name: &str) -> Step {
    sleeper(e, rt, name)?;
    status(&cli(e, rt, &["stop", "-t", "1", name]), 0, "stop")?;
    let format = "{{.State.Status}} {{.State.ExitCode}}";
    let out = cli(e, rt, &["inspect", "--format", format, name]);
    status(&out, 0, "inspect")?;
    expect_stdout(&out, "exited 137\n", "inspect after stop")
}

pub fn rm_removes_a_stopped_container<E: Cli>(e: &E, rt: Runtime, name: &str) -> Step {
    let out = cli(e, rt, &["run", "--name", name, IMAGE, "true"]);
    status(&out, 0, "run")?;
    status(&cli(e, rt, &["rm", name]), 0, "rm")?;
    let out = cli(e, rt, &["ps", "-aq"]);
    status(&out, 0, "ps -aq")?;
    expect_stdout(&out, "", "ps -aq after rm")
}

pub fn logs_has_stdout_and_stderr<E: Cli>(e: &E, rt: Runtime, name: &str) -> Step {
    let script = "echo to-stdout; echo to-stderr >&2";
    let out = cli(
        e,
        rt,
        &["run", "-d", "--name", name, IMAGE, "sh", "-c", script],
    );
    status(&out, 0, "run -d")?;
    prints(&cli(e, rt, &["wait", name]), "0", "wait")?;
    let out = cli(e, rt, &["logs", name]);
    status(&out, 0, "logs")?;
    let both = format!("{}{}", out.stdout, out.stderr);
    match both.contains("to-stdout") && both.contains("to-stderr") {
        true => Ok(()),
        false => Err(format!("logs: {both:?}")),
    }
}

pub fn top_lists_the_containers_process<E: Cli>(e: &E, rt: Runtime, name: &str) -> Step {
    sleeper(e, rt, name)?;
    prints(&cli(e, rt, &["top", name]), "sleep 1000", "top")
}

pub fn kill_delivers_the_signal<E: Cli>(e: &E, rt: Runtime, name: &str) -> Step {
    let script = "trap 'exit 9' TERM; while :; do sleep 0.1; done";
    let out = cli(
        e,
        rt,
        &["run", "-d", "--name", name, IMAGE, "sh", "-c", script],
    );
    status(&out, 0, "run -d")?;
    // The trap is set once the shell runs its loop: give it that moment.
    std::thread::sleep(std::time::Duration::from_millis(300));
    status(&cli(e, rt, &["kill", "-s", "TERM", name]), 0, "kill")?;
    prints(&cli(e, rt, &["wait", name]), "9", "wait after kill")
}

/// `run --KIND container:X` (KIND: network, pid, ipc) puts the new container in X's namespace.
pub fn joins_namespace_of_container<E: Cli>(kind: &str) -> impl Fn(&E, Runtime, &str) -> Step {
    let kind = kind.to_string();
    move |e, rt, name| {
        // Docker lets a container's ipc namespace be joined only when it says so.
        let donor: &[&str] = match kind.as_str() {
            "ipc" => &["--ipc", "shareable"],
            _ => &[],
        };
        let run = [
            &["run", "-d", "--name", name][..],
            donor,
            &[IMAGE, "sleep", "1000"],
        ]
        .concat();
        status(&cli(e, rt, &run), 0, "run -d")?;
        let file = format!(
            "/proc/self/ns/{}",
            if kind == "network" { "net" } else { &kind }
        );
        let own = cli(e, rt, &["exec", name, "readlink", &file]);
        status(&own, 0, "exec readlink")?;
        let flag = format!("--{kind}");
        let other = format!("container:{name}");
        let argv = ["run", "--rm", &flag, &other, IMAGE, "readlink", &file];
        let what = format!("run {flag} container:X");
        joined_ns(&cli(e, rt, &argv), own.stdout.trim(), &what)
    }
}

/// `run --pid host`: the container is in the host's pid namespace (its /proc shows it), and
/// its exit status comes back.
pub fn pid_host_is_the_hosts_namespace<E: Cli>(e: &E, rt: Runtime, _: &str) -> Step {
    let host = fs::read_link("/proc/self/ns/pid")
        .map(|p| p.display().to_string())
        .map_err(|e| format!("readlink /proc/self/ns/pid: {e}"))?;
    let script = "readlink /proc/self/ns/pid; test -e /proc/1/comm || exit 9; exit 3";
    let out = cli(
        e,
        rt,
        &["run", "--rm", "--pid", "host", IMAGE, "sh", "-c", script],
    );
    status(&out, 3, "run --pid host")?;
    match out.stdout.trim() == host {
        true => Ok(()),
        false => Err(format!(
            "run --pid host: in {:?}, not {host}",
            out.stdout.trim()
        )),
    }
}

/// A command the image lacks: the engine's 127, as with runc.
pub fn missing_command_exits_127<E: Cli>(e: &E, rt: Runtime, _: &str) -> Step {
    let out = cli(e, rt, &["run", "--rm", IMAGE, "/no/such/program"]);
    status(&out, 127, "run of a missing command")
}

pub fn state_pid_is_the_containers_init<E: Cli>(e: &E, rt: Runtime, name: &str) -> Step {
    sleeper(e, rt, name)?;
    let out = cli(e, rt, &["inspect", "--format", "{{.State.Pid}}", name]);
    status(&out, 0, "inspect")?;
    let pid = out
        .stdout
        .trim()
        .parse()
        .map_err(|_| format!("inspect .State.Pid: {:?}", out.stdout.trim()))?;
    is_container_init(pid, "inspect .State.Pid")
}

pub fn setuid_works_without_no_new_privileges<E: Cli>(e: &E, rt: Runtime, _: &str) -> Step {
    let argv = [
        "run", "--rm", "--user", "1000", IMAGE, "/suid/su", "-c", "id -u", "root",
    ];
    let out = cli(e, rt, &argv);
    status(&out, 0, "run --user 1000 su")?;
    expect_stdout(&out, "0\n", "su as user 1000")
}
