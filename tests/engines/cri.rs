//! Pods through containerd's CRI plugin, driven the way the kubelet drives it, with no cluster
//! (the node: cri_node.rs): each step with the `runc` and the `nsboot` runtime handler.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::cri_node::{Cri, Pod, CONTAINER_EXITED, CONTAINER_RUNNING, ENGINE, NS_NODE, NS_POD};
use crate::harness::{compare, wait_until, Runtime, Step};

type StepFn = fn(&Cri, Runtime, &str) -> Step;

/// One `#[test]` per step, run with the `runc` and the `nsboot` handler on one containerd.
macro_rules! step_tests {
    ($($(#[$attr:meta])* $name:ident: $step:literal => $f:expr;)*) => {
        $(
            #[test]
            $(#[$attr])*
            fn $name() {
                steps($step, $f);
            }
        )*
        /// Every step, for [`cri_every_step_passes_with_runc`].
        const STEPS: &[(&str, StepFn)] = &[$(($step, $f)),*];
    };
}

/// Run `step` with both handlers on one containerd, each with a pod name of its own, and
/// remove every pod after each.
fn steps(name: &str, step: impl Fn(&Cri, Runtime, &str) -> Step) {
    let Some(c) = Cri::new() else { return };
    compare(ENGINE, name, |rt| {
        let result = step(&c, rt, &crate::harness::container_name(name, rt));
        let cleanup = c.remove_all();
        result.and(cleanup)
    });
    c.finish();
}

/// Err unless `got` is `want`.
fn expect<T: PartialEq + std::fmt::Debug>(got: T, want: T, what: &str) -> Step {
    match got == want {
        true => Ok(()),
        false => Err(format!("{what}: {got:?}, not {want:?}")),
    }
}

/// The log file of container `name` in `pod`: its lines' stream and text (CRI log format:
/// `TIME STREAM TAG TEXT`).
fn log_lines(pod: &Pod, name: &str) -> Vec<(String, String)> {
    std::fs::read_to_string(pod.logs.join(format!("{name}.log")))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut w = l.splitn(4, ' ');
            let (_time, stream, _tag) = (w.next()?, w.next()?, w.next()?);
            Some((stream.to_string(), w.next().unwrap_or_default().to_string()))
        })
        .collect()
}

step_tests! {
    cri_pod_runs_and_its_containers_share_the_network: "pod network" => pod_network;
    cri_security_context_is_applied: "securityContext" => security_context;
    cri_resources_are_applied_and_updated: "resources" => resources;
    cri_container_and_pod_stats: "stats" => stats;
    cri_exec_sync_and_exec_with_a_tty: "exec" => exec;
    cri_logs_are_written_where_the_kubelet_reads_them: "logs" => logs;
    cri_stop_container_honours_the_grace_period: "stop grace" => stop_grace;
    cri_pod_teardown_leaves_nothing: "teardown" => teardown;
    cri_host_pid_is_the_nodes_pid_namespace: "hostPID" => host_pid;
    cri_share_process_namespace_gives_the_pod_one: "shareProcessNamespace" => shared_pid;
}

/// Every step with runc alone, not ignored: CI keeps the harness (containerd's CRI config, the
/// CNI bridge, the images, the client) working while nsboot's steps wait on their gaps.
#[test]
fn cri_every_step_passes_with_runc() {
    let Some(c) = Cri::new() else { return };
    let failed: Vec<String> = STEPS
        .iter()
        .filter_map(|(name, step)| {
            let id = crate::harness::container_name(name, Runtime::Runc);
            let result = step(&c, Runtime::Runc, &id).and(c.remove_all());
            result.err().map(|e| format!("{name}: {e}"))
        })
        .collect();
    assert!(
        failed.is_empty(),
        "cri steps failing with runc: {failed:#?}"
    );
    c.finish();
}

/// RunPodSandbox, then a server on localhost in one container and a client of it in another;
/// both in the sandbox's network namespace, not the host's. Prints the time from
/// RunPodSandbox to the first container running.
fn pod_network(c: &Cri, rt: Runtime, name: &str) -> Step {
    let t0 = Instant::now();
    let pod = c.run_pod(rt, name)?;
    let server = "mkdir -p /tmp/www && echo hello-from-a >/tmp/www/index.html && \
                  exec httpd -f -p 127.0.0.1:8080 -h /tmp/www";
    let a = c.start(&pod, "a", &["sh", "-c", server], json!({}))?;
    c.wait_state(&a, CONTAINER_RUNNING, Duration::from_secs(10))?;
    eprintln!(
        "cri: RunPodSandbox to a running container with {}: {} ms",
        rt.name(),
        t0.elapsed().as_millis()
    );
    let client = "for i in $(seq 100); do wget -qO- http://127.0.0.1:8080/ && exit 0; \
                  sleep 0.1; done; exit 1";
    let b = c.start(&pod, "b", &["sh", "-c", client], json!({}))?;
    let st = c.wait_state(&b, CONTAINER_EXITED, Duration::from_secs(20))?;
    expect(
        st["status"]["exit_code"].as_i64(),
        Some(0),
        "the client's exit code",
    )?;
    let lines = log_lines(&pod, "b");
    if !lines.iter().any(|(_, t)| t == "hello-from-a") {
        return Err(format!("the client did not reach the server: {lines:?}"));
    }
    let (_, net_a, _) = c.exec_sync(&a, &["readlink", "/proc/self/ns/net"])?;
    let host = std::fs::read_link("/proc/self/ns/net")
        .unwrap()
        .display()
        .to_string();
    expect(
        net_a.trim() == host,
        false,
        "the pod runs in the host's network namespace",
    )?;
    Ok(())
}

/// runAsUser, readOnlyRootFilesystem, capabilities drop ALL, seccomp RuntimeDefault,
/// privileged false: as the container's init sees them.
fn security_context(c: &Cri, rt: Runtime, name: &str) -> Step {
    let pod = c.run_pod(rt, name)?;
    let sc = json!({"security_context": {
        "run_as_user": {"value": 1000},
        "readonly_rootfs": true,
        "privileged": false,
        "capabilities": {"drop_capabilities": ["ALL"]},
        "seccomp": {"profile_type": 0},
    }});
    let id = c.sleeper(&pod, "app", sc)?;
    let script = "grep -E '^(Uid|CapEff|CapBnd|Seccomp):' /proc/1/status | tr -s '\\t ' ' '; \
                  touch /x 2>/dev/null && echo rootfs-writable || echo rootfs-read-only";
    let (code, out, err) = c.exec_sync(&id, &["sh", "-c", script])?;
    expect(code, 0, &format!("the check's exit code ({err})"))?;
    let want = "Uid: 1000 1000 1000 1000\nCapBnd: 0000000000000000\n\
                CapEff: 0000000000000000\nSeccomp: 2\nrootfs-read-only\n";
    let mut got: Vec<&str> = out.lines().collect();
    got.sort();
    let mut w: Vec<&str> = want.lines().collect();
    w.sort();
    expect(got, w, "the container's init")
}

/// Memory and CPU limits in the container's cgroup, then changed by UpdateContainerResources.
fn resources(c: &Cri, rt: Runtime, name: &str) -> Step {
    let pod = c.run_pod(rt, name)?;
    let res = |mem: i64, quota: i64| json!({"memory_limit_in_bytes": mem, "cpu_period": 100000, "cpu_quota": quota, "cpu_shares": 512});
    let id = c.sleeper(&pod, "app", json!({"resources": res(64 << 20, 50000)}))?;
    let read = |ctl: &str, file: &str| -> Result<String, String> {
        let p = c.cgroup_dir(&id, ctl)?.join(file);
        std::fs::read_to_string(&p)
            .map(|s| s.trim().to_string())
            .map_err(|e| format!("{}: {e}", p.display()))
    };
    expect(
        read("memory", "memory.limit_in_bytes")?,
        (64u64 << 20).to_string(),
        "memory limit",
    )?;
    expect(
        read("cpu", "cpu.cfs_quota_us")?,
        "50000".into(),
        "cpu quota",
    )?;
    expect(read("cpu", "cpu.shares")?, "512".into(), "cpu shares")?;
    c.call(
        "update_container_resources",
        json!({"container_id": id, "linux": res(96 << 20, 20000)}),
    )?;
    expect(
        read("memory", "memory.limit_in_bytes")?,
        (96u64 << 20).to_string(),
        "updated memory limit",
    )?;
    expect(
        read("cpu", "cpu.cfs_quota_us")?,
        "20000".into(),
        "updated cpu quota",
    )
}

/// ContainerStats and PodSandboxStats report the container's CPU and memory use.
fn stats(c: &Cri, rt: Runtime, name: &str) -> Step {
    let pod = c.run_pod(rt, name)?;
    let busy = "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exec sleep 1000";
    let id = c.start(&pod, "app", &["sh", "-c", busy], json!({}))?;
    let mut last = Value::Null;
    let ok = wait_until(Duration::from_secs(10), || {
        last = c
            .call("container_stats", json!({"container_id": id}))
            .unwrap_or(Value::Null);
        let s = &last["stats"];
        s["cpu"]["usage_core_nano_seconds"]["value"]
            .as_u64()
            .unwrap_or(0)
            > 0
            && s["memory"]["working_set_bytes"]["value"]
                .as_u64()
                .unwrap_or(0)
                > 0
    });
    if !ok {
        return Err(format!("container_stats: {last}"));
    }
    let p = c.call("pod_sandbox_stats", json!({"pod_sandbox_id": pod.id}))?;
    let linux = &p["stats"]["linux"];
    if linux["cpu"]["usage_core_nano_seconds"]["value"]
        .as_u64()
        .unwrap_or(0)
        == 0
        || linux["memory"]["working_set_bytes"]["value"]
            .as_u64()
            .unwrap_or(0)
            == 0
    {
        return Err(format!("pod_sandbox_stats: {p}"));
    }
    Ok(())
}

/// ExecSync passes back stdout, stderr and the exit code; Exec with a tty runs on a pty.
fn exec(c: &Cri, rt: Runtime, name: &str) -> Step {
    let pod = c.run_pod(rt, name)?;
    let id = c.sleeper(&pod, "app", json!({}))?;
    let r = c.exec_sync(&id, &["sh", "-c", "echo out; echo err >&2; exit 3"])?;
    expect(r, (3, "out\n".into(), "err\n".into()), "exec_sync")?;
    let (code, out) = c.exec_tty(&id, &["sh", "-c", "tty; exit 4"])?;
    expect(code, 4, &format!("exec -t's exit status ({out:?})"))?;
    match out.contains("/dev/pts/") {
        true => Ok(()),
        false => Err(format!("exec -t: no terminal: {:?}", out.trim())),
    }
}

/// The container's stdout and stderr in the CRI log format at log_directory/log_path.
fn logs(c: &Cri, rt: Runtime, name: &str) -> Step {
    let pod = c.run_pod(rt, name)?;
    let id = c.start(
        &pod,
        "app",
        &["sh", "-c", "echo to-out; echo to-err >&2"],
        json!({}),
    )?;
    let st = c.wait_state(&id, CONTAINER_EXITED, Duration::from_secs(10))?;
    expect(st["status"]["exit_code"].as_i64(), Some(0), "exit code")?;
    let path = pod.logs.join("app.log");
    expect(
        st["status"]["log_path"].as_str().map(PathBuf::from),
        Some(path),
        "log_path",
    )?;
    let mut lines = log_lines(&pod, "app");
    lines.sort();
    let want = vec![
        ("stderr".into(), "to-err".into()),
        ("stdout".into(), "to-out".into()),
    ];
    expect(lines, want, "the log")
}

/// StopContainer: SIGTERM, then SIGKILL once the grace period is over.
fn stop_grace(c: &Cri, rt: Runtime, name: &str) -> Step {
    let pod = c.run_pod(rt, name)?;
    let polite = "trap 'echo got-term; exit 0' TERM; while :; do sleep 0.1; done";
    let a = c.start(&pod, "polite", &["sh", "-c", polite], json!({}))?;
    // pid 1 ignores SIGTERM without a handler: only the SIGKILL after the grace period ends it.
    let b = c.sleeper(&pod, "stubborn", json!({}))?;
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    c.call("stop_container", json!({"container_id": a, "timeout": 10}))?;
    let quick = t.elapsed();
    let st = c.wait_state(&a, CONTAINER_EXITED, Duration::from_secs(5))?;
    expect(
        st["status"]["exit_code"].as_i64(),
        Some(0),
        "exit code on SIGTERM",
    )?;
    if quick > Duration::from_secs(5)
        || !log_lines(&pod, "polite")
            .iter()
            .any(|(_, l)| l == "got-term")
    {
        return Err(format!("the trap did not end it ({quick:?})"));
    }
    let t = Instant::now();
    c.call("stop_container", json!({"container_id": b, "timeout": 2}))?;
    let waited = t.elapsed();
    let st = c.wait_state(&b, CONTAINER_EXITED, Duration::from_secs(5))?;
    expect(
        st["status"]["exit_code"].as_i64(),
        Some(137),
        "exit code after the grace period",
    )?;
    match waited >= Duration::from_secs(2) && waited < Duration::from_secs(8) {
        true => Ok(()),
        false => Err(format!(
            "stopped after {waited:?}, not the 2 s grace period"
        )),
    }
}

/// StopPodSandbox and RemovePodSandbox: no process, mount, cgroup or netns of the pod left.
fn teardown(c: &Cri, rt: Runtime, name: &str) -> Step {
    let pod = c.run_pod(rt, name)?;
    let id = c.sleeper(&pod, "app", json!({}))?;
    let info = |v: Value| -> Value {
        serde_json::from_str(v["info"]["info"].as_str().unwrap_or("null")).unwrap_or(Value::Null)
    };
    let cinfo = info(c.status(&id)?);
    let pinfo = info(c.call(
        "pod_sandbox_status",
        json!({"pod_sandbox_id": pod.id, "verbose": true}),
    )?);
    let pids: Vec<i64> = [&cinfo["pid"], &pinfo["pid"]]
        .iter()
        .filter_map(|p| p.as_i64())
        .collect();
    let netns = pinfo["runtimeSpec"]["linux"]["namespaces"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|n| n["type"] == "network")
        .and_then(|n| n["path"].as_str())
        .unwrap_or_default()
        .to_string();
    let cgroup = c.cgroup_dir(&id, "memory")?;
    if pids.len() != 2 || netns.is_empty() || !cgroup.exists() {
        return Err(format!(
            "the pod before teardown: pids {pids:?}, netns {netns:?}, cgroup {}",
            cgroup.display()
        ));
    }
    c.call("stop_pod_sandbox", json!({"pod_sandbox_id": pod.id}))?;
    c.call("remove_pod_sandbox", json!({"pod_sandbox_id": pod.id}))?;
    let mut left = Vec::new();
    let gone = |p: &i64| {
        let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
        stat.is_empty()
            || stat
                .rsplit(')')
                .next()
                .unwrap_or_default()
                .trim_start()
                .starts_with('Z')
    };
    wait_until(Duration::from_secs(5), || pids.iter().all(gone));
    left.extend(
        pids.iter()
            .filter(|p| !gone(p))
            .map(|p| format!("process {p}")),
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    if mounts.lines().any(|l| l.split(' ').nth(4) == Some(&netns)) || Path::new(&netns).exists() {
        left.push(format!("netns {netns}"));
    }
    if cgroup.exists() {
        left.push(format!("cgroup {}", cgroup.display()));
    }
    let listed = c.call("list_containers", json!({}))?;
    if listed["items"].as_array().is_some_and(|a| !a.is_empty()) {
        left.push(format!("containers {}", listed["items"]));
    }
    match left.is_empty() {
        true => Ok(()),
        false => Err(format!("left after RemovePodSandbox: {left:?}")),
    }
}

/// The pid namespace container `id` sees as its own.
fn pid_ns(c: &Cri, id: &str) -> Result<String, String> {
    let (code, out, err) = c.exec_sync(id, &["readlink", "/proc/self/ns/pid"])?;
    expect(code, 0, &format!("readlink /proc/self/ns/pid: {err}"))?;
    Ok(out.trim().to_string())
}

/// hostPID: the container is in the node's pid namespace and its /proc shows the node's
/// processes (containerd among them).
fn host_pid(c: &Cri, rt: Runtime, name: &str) -> Step {
    let pod = c.run_pod_pid(rt, name, NS_NODE)?;
    let a = c.sleeper(&pod, "a", json!({}))?;
    c.wait_state(&a, CONTAINER_RUNNING, Duration::from_secs(10))?;
    let host = std::fs::read_link("/proc/self/ns/pid")
        .map_err(|e| format!("readlink /proc/self/ns/pid: {e}"))?
        .display()
        .to_string();
    expect(pid_ns(c, &a)?, host, "the container's pid namespace")?;
    let (code, _, err) = c.exec_sync(&a, &["sh", "-c", "grep -qx containerd /proc/*/comm"])?;
    expect(
        code,
        0,
        &format!("containerd in the container's /proc: {err}"),
    )
}

/// shareProcessNamespace: the pod's containers share one pid namespace, not the node's,
/// whose pid 1 is the pod's pause process; each sees the other's processes.
fn shared_pid(c: &Cri, rt: Runtime, name: &str) -> Step {
    let pod = c.run_pod_pid(rt, name, NS_POD)?;
    let a = c.sleeper(&pod, "a", json!({}))?;
    let b = c.start(&pod, "b", &["sleep", "1001"], json!({}))?;
    c.wait_state(&a, CONTAINER_RUNNING, Duration::from_secs(10))?;
    c.wait_state(&b, CONTAINER_RUNNING, Duration::from_secs(10))?;
    let (ns_a, ns_b) = (pid_ns(c, &a)?, pid_ns(c, &b)?);
    expect(
        ns_a == ns_b,
        true,
        &format!("one pid namespace ({ns_a}, {ns_b})"),
    )?;
    let host = std::fs::read_link("/proc/self/ns/pid")
        .unwrap()
        .display()
        .to_string();
    expect(
        ns_a == host,
        false,
        "the pod runs in the node's pid namespace",
    )?;
    let (code, out, _) = c.exec_sync(&a, &["cat", "/proc/1/comm"])?;
    expect((code, out.trim()), (0, "pause"), "pid 1 of the pod")?;
    // Exactly b's command line (the shell's own holds the words too, not as its whole).
    let find = "for p in /proc/[0-9]*; do \
                [ \"$(tr '\\000' ' ' <$p/cmdline)\" = 'sleep 1001 ' ] && exit 0; done; exit 1";
    let (code, _, err) = c.exec_sync(&a, &["sh", "-c", find])?;
    expect(code, 0, &format!("b's sleep seen from a: {err}"))
}
