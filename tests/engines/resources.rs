//! Resource control through the engines (podman and Docker share their flags): memory, pids
//! and cpu limits set and enforced, pause/unpause, update, stats; each with runc beside
//! nsboot. The limit is read inside from the container's own cgroup: the one its
//! /proc/self/cgroup names under the cgroup mount (nsboot shows the host's hierarchy), else
//! the mount's top (runc binds the container's directory there).

use crate::cli::{cli, sleeper, Cli};
use crate::harness::{expect_stdout, prints, status, Runtime, Step};
use crate::image::IMAGE;

/// `sh` that prints a v1 controller's file of the container's own cgroup.
pub fn own_file(controller: &str, file: &str) -> String {
    format!(
        "p=$(awk -F: '{{n=split($2,a,\",\"); for(i=1;i<=n;i++) if(a[i]==\"{controller}\") print $3}}' /proc/self/cgroup); \
         d=/sys/fs/cgroup/{controller}; cat $d$p/{file} 2>/dev/null || cat $d/{file}"
    )
}

/// 150 MB held in a shell variable.
pub const HOG: &str = "x=$(head -c 150000000 /dev/zero | tr '\\0' a); echo survived";

/// Children started until fork fails, counted with builtins only.
pub const BOMB: &str = "(i=0; while [ $i -lt 30 ]; do sleep 5 & i=$((i+1)); echo $i >/dev/shm/n; done) 2>/dev/null; read n </dev/shm/n; echo $n";

pub fn memory_limit_is_set<E: Cli>(e: &E, rt: Runtime, _: &str) -> Step {
    let script = own_file("memory", "memory.limit_in_bytes");
    let out = cli(
        e,
        rt,
        &["run", "--rm", "--memory", "64m", IMAGE, "sh", "-c", &script],
    );
    status(&out, 0, "run --memory 64m")?;
    expect_stdout(&out, "67108864\n", "memory.limit_in_bytes")
}

pub fn memory_hog_is_killed<E: Cli>(e: &E, rt: Runtime, _: &str) -> Step {
    let out = cli(
        e,
        rt,
        &["run", "--rm", "--memory", "64m", IMAGE, "sh", "-c", HOG],
    );
    status(&out, 137, "a 150 MB hog under --memory 64m")
}

pub fn pids_limit_bounds_a_fork_bomb<E: Cli>(e: &E, rt: Runtime, _: &str) -> Step {
    let out = cli(
        e,
        rt,
        &["run", "--rm", "--pids-limit", "10", IMAGE, "sh", "-c", BOMB],
    );
    status(&out, 0, "run --pids-limit 10")?;
    match out.stdout.trim().parse::<u32>() {
        Ok(n) if n < 10 => Ok(()),
        _ => Err(format!(
            "{:?} children under --pids-limit 10",
            out.stdout.trim()
        )),
    }
}

pub fn cpus_sets_the_quota<E: Cli>(e: &E, rt: Runtime, _: &str) -> Step {
    let script = format!(
        "{}; {}",
        own_file("cpu", "cpu.cfs_quota_us"),
        own_file("cpu", "cpu.cfs_period_us")
    );
    let out = cli(
        e,
        rt,
        &["run", "--rm", "--cpus", "0.5", IMAGE, "sh", "-c", &script],
    );
    status(&out, 0, "run --cpus 0.5")?;
    expect_stdout(
        &out,
        "50000\n100000\n",
        "cpu.cfs_quota_us, cpu.cfs_period_us",
    )
}

fn state<E: Cli>(e: &E, rt: Runtime, name: &str) -> String {
    cli(e, rt, &["inspect", "--format", "{{.State.Status}}", name])
        .stdout
        .trim()
        .to_string()
}

pub fn pause_and_unpause<E: Cli>(e: &E, rt: Runtime, name: &str) -> Step {
    sleeper(e, rt, name)?;
    status(&cli(e, rt, &["pause", name]), 0, "pause")?;
    match state(e, rt, name).as_str() {
        "paused" => {}
        s => return Err(format!("inspect after pause: {s:?}")),
    }
    status(&cli(e, rt, &["unpause", name]), 0, "unpause")?;
    match state(e, rt, name).as_str() {
        "running" => Ok(()),
        s => Err(format!("inspect after unpause: {s:?}")),
    }
}

pub fn update_memory<E: Cli>(e: &E, rt: Runtime, name: &str) -> Step {
    let out = cli(
        e,
        rt,
        &[
            "run",
            "-d",
            "--name",
            name,
            "--memory",
            "64m",
            "--memory-swap",
            "256m",
            IMAGE,
            "sleep",
            "1000",
        ],
    );
    status(&out, 0, "run -d --memory 64m")?;
    status(
        &cli(e, rt, &["update", "--memory", "128m", name]),
        0,
        "update --memory 128m",
    )?;
    let script = own_file("memory", "memory.limit_in_bytes");
    let out = cli(e, rt, &["exec", name, "sh", "-c", &script]);
    status(&out, 0, "exec")?;
    expect_stdout(&out, "134217728\n", "memory.limit_in_bytes after update")
}

pub fn stats_reports_the_limit<E: Cli>(e: &E, rt: Runtime, name: &str) -> Step {
    let out = cli(
        e,
        rt,
        &[
            "run", "-d", "--name", name, "--memory", "64m", IMAGE, "sleep", "1000",
        ],
    );
    status(&out, 0, "run -d --memory 64m")?;
    let out = cli(
        e,
        rt,
        &["stats", "--no-stream", "--format", "{{.MemUsage}}", name],
    );
    status(&out, 0, "stats --no-stream")?;
    // Docker prints MiB, podman MB (64 MiB is 67.11 MB).
    let usage = out.stdout.trim();
    match usage.ends_with("/ 64MiB") || usage.ends_with("/ 67.11MB") {
        true => Ok(()),
        false => prints(&out, "64MiB or 67.11MB", "stats --no-stream"),
    }
}
