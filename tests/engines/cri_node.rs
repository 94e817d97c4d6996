//! A Kubernetes node without the kubelet: containerd with its CRI plugin, a root, state dir,
//! socket and config of its own (runtime handlers `runc` and `nsboot`: the runc v2 shim with
//! BinaryName set, cgroupfs), inside a network namespace the test makes (the CNI bridge lives
//! there and goes with it), the pause and busybox images imported from the local archive; and
//! the CRI calls the steps make, through tests/cri-client (tonic, kept out of nsboot's
//! dependencies), built once into target/cri-client, one run per call.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{available, run, wait_until, Runtime, Step};
use crate::image::{archive_with_pause, IMAGE, PAUSE_IMAGE};
use crate::sandbox::Sandbox;

pub const ENGINE: &str = "cri";
/// CRI enums (runtime/v1/api.proto).
pub const CONTAINER_RUNNING: i64 = 1;
pub const CONTAINER_EXITED: i64 = 2;
pub const NS_POD: i64 = 0;
pub const NS_CONTAINER: i64 = 1;
pub const NS_NODE: i64 = 2;

pub struct Cri {
    sb: Sandbox,
    client: PathBuf,
    /// The cgroup parent of the test's pods (in every hierarchy): removed at the end.
    cgroup: String,
}

/// A pod of a step: its id and the config the kubelet gave it (CreateContainer repeats it).
pub struct Pod {
    pub id: String,
    pub config: Value,
    pub logs: PathBuf,
}

/// The client binary, built once per test run (cargo keeps it in target/cri-client).
fn client() -> PathBuf {
    static CLIENT: OnceLock<PathBuf> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
            let target = dir.join("target/cri-client");
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            // A first build compiles tonic and the CRI's protobuf: minutes, not a sandbox's run.
            let out = crate::common::output_within(
                Command::new(cargo)
                    .args(["build", "--quiet", "--manifest-path"])
                    .arg(dir.join("tests/cri-client/Cargo.toml"))
                    .arg("--target-dir")
                    .arg(&target),
                std::time::Duration::from_secs(900),
            );
            assert_eq!(out.status, 0, "building tests/cri-client: {}", out.stderr);
            // Below the build.target's triple when .cargo/config.toml names one.
            let triple = target.join("x86_64-unknown-linux-gnu/debug/nsboot-cri-client");
            match triple.exists() {
                true => triple,
                false => target.join("debug/nsboot-cri-client"),
            }
        })
        .clone()
}

impl Cri {
    pub fn new() -> Option<Cri> {
        let bins = [
            "/usr/bin/containerd",
            "/usr/bin/ctr",
            "/usr/bin/containerd-shim-runc-v2",
            "/usr/lib/cni/bridge",
            "/usr/lib/cni/host-local",
            "/usr/lib/cni/loopback",
        ];
        if !available(ENGINE, &bins) {
            return None;
        }
        let client = client();
        let mut sb = Sandbox::new("cri");
        let top = sb.top.display().to_string();
        let cgroup = sb.top.file_name().unwrap().to_string_lossy().into_owned();
        sb.own_cgroup(&cgroup);
        std::fs::create_dir_all(sb.path("cni")).unwrap();
        std::fs::write(sb.path("cni/10-nsbt.conflist"), cni_config(&top)).unwrap();
        std::fs::write(sb.path("config.toml"), containerd_config(&top)).unwrap();
        let sock = sb.path("c.sock");
        let probe = client.clone();
        // containerd in a network namespace of its own, loopback up (the exec streaming server
        // listens there): the pods' bridge and veths live in it and go with it.
        let script =
            "ip link set lo up && exec /usr/bin/containerd --log-level warn --config \"$0\"";
        sb.start_daemon(
            "containerd",
            Command::new("unshare")
                .args(["--net", "--", "sh", "-c", script])
                .arg(sb.path("config.toml")),
            || sock.exists() && run(Command::new(&probe).arg(&sock).arg("version")).status == 0,
        );
        let c = Cri { sb, client, cgroup };
        let tar = archive_with_pause(&c.sb.top);
        let out = run(Command::new("/usr/bin/ctr")
            .arg("-a")
            .arg(&sock)
            .args(["-n", "k8s.io", "images", "import"])
            .arg(&tar));
        assert_eq!(
            out.status,
            0,
            "ctr images import: {}\n{}",
            out.stderr,
            c.sb.logs()
        );
        for image in [IMAGE, PAUSE_IMAGE] {
            let seen = wait_until(Duration::from_secs(10), || {
                c.call("image_status", json!({"image": {"image": image}}))
                    .is_ok_and(|v| !v["image"].is_null())
            });
            assert!(seen, "the CRI does not see {image}:\n{}", c.sb.logs());
        }
        Some(c)
    }

    /// CRI call `method` (snake_case) with `req` (absent fields take their defaults).
    pub fn call(&self, method: &str, req: Value) -> Result<Value, String> {
        let out = run(Command::new(&self.client)
            .arg(self.sb.path("c.sock"))
            .arg(method)
            .arg(req.to_string()));
        if out.status != 0 {
            // The runtime's own words come last, after the shim's and the bundle's path.
            let e = out.stderr.trim().trim_start_matches("nsboot-cri-client: ");
            let e = match e.rsplit_once("config.json: ") {
                Some((_, why)) => format!("{method}: {why}"),
                None => e.to_string(),
            };
            return Err(crate::harness::first_lines(&e));
        }
        serde_json::from_str(&out.stdout).map_err(|e| format!("{method}: {e}: {}", out.stdout))
    }

    /// A pod named `name` with `rt` as its handler, each container in a pid namespace of its
    /// own (as the kubelet asks unless shareProcessNamespace).
    pub fn run_pod(&self, rt: Runtime, name: &str) -> Result<Pod, String> {
        self.run_pod_pid(rt, name, NS_CONTAINER)
    }

    /// A pod whose containers' pid namespace is `pid` (NS_*): one each, the pod's
    /// (shareProcessNamespace) or the node's (hostPID).
    pub fn run_pod_pid(&self, rt: Runtime, name: &str, pid: i64) -> Result<Pod, String> {
        let logs = self.sb.path(&format!("logs/{name}"));
        std::fs::create_dir_all(&logs).unwrap();
        let config = json!({
            "metadata": {"name": name, "uid": format!("uid-{name}"), "namespace": "default"},
            "hostname": name,
            "log_directory": logs,
            "linux": {
                "cgroup_parent": format!("/{}/{name}", self.cgroup),
                "security_context": {"namespace_options": {"pid": pid}},
            },
        });
        let resp = self.call(
            "run_pod_sandbox",
            json!({"config": config, "runtime_handler": rt.name()}),
        )?;
        let id = resp["pod_sandbox_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        Ok(Pod { id, config, logs })
    }

    /// Create and start container `name` in `pod` running `argv`, `linux` its LinuxContainerConfig;
    /// logs to `<log_directory>/<name>.log`. Returns its id.
    pub fn start(
        &self,
        pod: &Pod,
        name: &str,
        argv: &[&str],
        mut linux: Value,
    ) -> Result<String, String> {
        // The pod's pid namespace option, as the kubelet repeats it for each container.
        linux["security_context"]["namespace_options"]["pid"] =
            pod.config["linux"]["security_context"]["namespace_options"]["pid"].clone();
        let config = json!({
            "metadata": {"name": name},
            "image": {"image": IMAGE},
            "command": argv,
            "log_path": format!("{name}.log"),
            "linux": linux,
        });
        let resp = self.call(
            "create_container",
            json!({"pod_sandbox_id": pod.id, "config": config, "sandbox_config": pod.config}),
        )?;
        let id = resp["container_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        self.call("start_container", json!({"container_id": id}))?;
        Ok(id)
    }

    /// A `sleep 1000` container.
    pub fn sleeper(&self, pod: &Pod, name: &str, linux: Value) -> Result<String, String> {
        self.start(pod, name, &["sleep", "1000"], linux)
    }

    pub fn status(&self, id: &str) -> Result<Value, String> {
        self.call(
            "container_status",
            json!({"container_id": id, "verbose": true}),
        )
    }

    /// Wait until container `id` is in `state` (CONTAINER_*); its status then.
    pub fn wait_state(&self, id: &str, state: i64, timeout: Duration) -> Result<Value, String> {
        let mut last = Value::Null;
        wait_until(timeout, || {
            last = self.status(id).unwrap_or(Value::Null);
            last["status"]["state"].as_i64() == Some(state)
        });
        match last["status"]["state"].as_i64() == Some(state) {
            true => Ok(last),
            false => Err(format!(
                "container {name} is not in state {state}: {}",
                last["status"],
                name = &id[..12.min(id.len())]
            )),
        }
    }

    /// ExecSync `argv` in `id`: (exit code, stdout, stderr).
    pub fn exec_sync(&self, id: &str, argv: &[&str]) -> Result<(i64, String, String), String> {
        let r = self.call(
            "exec_sync",
            json!({"container_id": id, "cmd": argv, "timeout": 10}),
        )?;
        let text = |v: &Value| {
            let bytes: Vec<u8> = v
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|b| b.as_u64().map(|b| b as u8))
                .collect();
            String::from_utf8_lossy(&bytes).into_owned()
        };
        Ok((
            r["exit_code"].as_i64().unwrap_or(-1),
            text(&r["stdout"]),
            text(&r["stderr"]),
        ))
    }

    /// Exec `argv` in `id` with a tty and stdin, attached as `kubectl exec -it` does (from
    /// containerd's network namespace, where its streaming server listens): (exit status,
    /// output). (A tty without stdin, which kubectl never asks for, loses the output in
    /// containerd 1.6 with runc too.)
    pub fn exec_tty(&self, id: &str, argv: &[&str]) -> Result<(i32, String), String> {
        let r = self.call(
            "exec",
            json!({"container_id": id, "cmd": argv, "tty": true, "stdin": true, "stdout": true}),
        )?;
        let url = r["url"].as_str().ok_or("exec: no url")?;
        let pid = self
            .sb
            .daemon_pid("containerd")
            .ok_or("containerd is gone")?;
        let out = run(Command::new("nsenter")
            .arg(format!("--net=/proc/{pid}/ns/net"))
            .arg("--")
            .arg(&self.client)
            .arg(self.sb.path("c.sock"))
            .args(["stream", url]));
        if out.stdout.is_empty() {
            let err = crate::harness::first_lines(&out.stderr);
            return Err(format!("exec -t: status {}: {err}", out.status));
        }
        Ok((out.status, out.stdout))
    }

    /// The host path of container `id`'s cgroup in hierarchy `controller`.
    pub fn cgroup_dir(&self, id: &str, controller: &str) -> Result<PathBuf, String> {
        let st = self.status(id)?;
        let info: Value = serde_json::from_str(st["info"]["info"].as_str().unwrap_or("null"))
            .map_err(|e| format!("container_status info: {e}"))?;
        let path = info["runtimeSpec"]["linux"]["cgroupsPath"]
            .as_str()
            .ok_or("no cgroupsPath in the container's spec")?;
        Ok(Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(path.trim_start_matches('/')))
    }

    /// Stop and remove every pod (the kubelet's order: containers stopped with the sandbox),
    /// each tried whatever the others did; the first failure.
    pub fn remove_all(&self) -> Step {
        let list = self.call("list_pod_sandbox", json!({}))?;
        let mut result = Ok(());
        for p in list["items"].as_array().into_iter().flatten() {
            let req = json!({"pod_sandbox_id": p["id"]});
            let r = self
                .call("stop_pod_sandbox", req.clone())
                .and_then(|_| self.call("remove_pod_sandbox", req));
            if let (Err(e), Ok(())) = (r, &result) {
                result = Err(e);
            }
        }
        result
    }

    pub fn finish(self) {
        let pods = self.call("list_pod_sandbox", json!({}));
        let ctrs = self.call("list_containers", json!({}));
        let empty = |r: &Result<Value, String>| {
            r.as_ref()
                .is_ok_and(|v| v["items"].as_array().map_or(true, |a| a.is_empty()))
        };
        assert!(
            empty(&pods) && empty(&ctrs),
            "left in the CRI: {pods:?} {ctrs:?}"
        );
        self.sb.finish();
    }
}

fn containerd_config(top: &str) -> String {
    let runtime = |rt: Runtime| {
        let name = rt.name();
        format!(
            "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.{name}]\n\
             runtime_type = \"io.containerd.runc.v2\"\n\
             [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.{name}.options]\n\
             BinaryName = \"{}\"\nRoot = \"{top}/{name}\"\nSystemdCgroup = false\n",
            rt.path().display()
        )
    };
    format!(
        "version = 2\nroot = \"{top}/root\"\nstate = \"{top}/state\"\n\
         [grpc]\naddress = \"{top}/c.sock\"\n[ttrpc]\naddress = \"{top}/c.sock.ttrpc\"\n\
         [debug]\naddress = \"\"\n[metrics]\naddress = \"\"\n\
         [plugins.\"io.containerd.internal.v1.opt\"]\npath = \"{top}/opt\"\n\
         [plugins.\"io.containerd.grpc.v1.cri\"]\n\
         sandbox_image = \"{PAUSE_IMAGE}\"\n\
         stream_server_address = \"127.0.0.1\"\nstream_server_port = \"0\"\n\
         netns_mounts_under_state_dir = true\n\
         disable_apparmor = true\ntolerate_missing_hugetlb_controller = true\n\
         restrict_oom_score_adj = true\n\
         [plugins.\"io.containerd.grpc.v1.cri\".containerd]\ndefault_runtime_name = \"runc\"\n\
         {}{}\
         [plugins.\"io.containerd.grpc.v1.cri\".cni]\nbin_dir = \"/usr/lib/cni\"\n\
         conf_dir = \"{top}/cni\"\n",
        runtime(Runtime::Runc),
        runtime(Runtime::Nsboot)
    )
}

/// A bridge (in containerd's network namespace) with host-local addresses kept below top.
fn cni_config(top: &str) -> String {
    json!({
        "cniVersion": "0.4.0",
        "name": "nsbt",
        "plugins": [{
            "type": "bridge",
            "bridge": "nsbt0",
            "isGateway": false,
            "ipMasq": false,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": "10.88.7.0/24"}]],
                "dataDir": format!("{top}/ipam"),
            },
        }],
    })
    .to_string()
}
