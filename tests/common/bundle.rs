//! Bundle directories with a complete OCI runtime config (like `runc spec --rootless`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::leftovers::{mounts_under, nsboot_processes};
use super::*;

/// A bundle directory with a config.json, a state dir (--root) and an XDG_RUNTIME_DIR, all in
/// one temp dir owned by the mode's user; removed on drop.
pub struct Bundle {
    mode: Mode,
    top: PathBuf,
    dir: PathBuf,
    state: PathBuf,
    xdg: PathBuf,
    config: Value,
}

impl Bundle {
    pub fn new(mode: Mode) -> Bundle {
        let owner = switch_to(mode);
        let top = mkdir(&unique("bundle"), 0o755, owner);
        let bundle = Bundle {
            dir: mkdir(&top.join("bundle"), 0o755, owner),
            state: mkdir(&top.join("state"), 0o700, owner),
            xdg: mkdir(&top.join("xdg"), 0o700, owner),
            top,
            mode,
            config: default_config(mode),
        };
        bundle.write();
        bundle
    }

    /// Set process.args.
    pub fn args(self, args: &[&str]) -> Bundle {
        self.edit(|c| c["process"]["args"] = json!(args))
    }

    /// Change config.json in any way.
    pub fn edit(mut self, f: impl FnOnce(&mut Value)) -> Bundle {
        f(&mut self.config);
        self.write();
        self
    }

    fn write(&self) {
        let path = self.dir.join("config.json");
        let text = serde_json::to_string_pretty(&self.config).expect("config serialises");
        fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        give(&path, switch_to(self.mode));
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn mode(&self) -> Mode {
        self.mode
    }
    pub fn config(&self) -> &Value {
        &self.config
    }
    /// The --root dir given to nsboot by [`Bundle::run`].
    /// The supervisor of container `id`, from the state's own (hidden) field: `create`'s
    /// application is the caller's child (then its subreaper's), not the supervisor's.
    /// Panics unless it names a living process.
    pub fn supervisor(&self, id: &str) -> i32 {
        let path = self.state_dir().join(id).join("state.json");
        let stored = std::fs::read_to_string(&path).unwrap();
        let stored: Value = serde_json::from_str(&stored).unwrap();
        let sup = stored["supervisor"].as_i64().unwrap_or(0) as i32;
        let alive = Path::new(&format!("/proc/{sup}")).exists();
        assert!(
            sup > 0 && alive,
            "no living supervisor in {}: {stored}",
            path.display()
        );
        sup
    }

    pub fn state_dir(&self) -> &Path {
        &self.state
    }

    /// nsboot as the mode's user, in the bundle dir, with this bundle's XDG_RUNTIME_DIR.
    pub fn nsboot(&self) -> Command {
        let mut cmd = command_as(
            switch_to(self.mode),
            Some(&self.xdg),
            nsboot_bin().as_os_str(),
        );
        // Marks nsboot's processes as this bundle's, for assert_nothing_left.
        cmd.current_dir(&self.dir)
            .env("NSBOOT_TEST_BUNDLE", &self.top);
        cmd
    }

    /// `nsboot --root <state> run --bundle <dir> <id>`.
    pub fn run(&self, id: &str) -> Output {
        output(&mut self.run_cmd(id))
    }

    /// The command [`Bundle::run`] runs, not started yet.
    pub fn run_cmd(&self, id: &str) -> Command {
        self.run_cmd_for(&self.dir, id)
    }

    /// `nsboot --root <state> run --bundle <bundle_dir> <id>`, not started yet: for a bundle
    /// dir other than this one (a missing one, say).
    pub fn run_cmd_for(&self, bundle_dir: &Path, id: &str) -> Command {
        let mut cmd = self.nsboot();
        cmd.arg("--root").arg(&self.state).arg("run");
        cmd.arg("--bundle").arg(bundle_dir).arg(id);
        cmd
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        // A hung or failed run must not outlive its test: kill what it left (the test has
        // already failed, or asserted with assert_nothing_left, by now).
        for (pid, _) in nsboot_processes(user(self.mode).uid, &self.top) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        // Never recurse into a mount that a failed run left behind: keep the dir instead.
        if mounts_under(&self.top).is_empty() {
            let _ = fs::remove_dir_all(&self.top);
        } else {
            eprintln!(
                "[harness] {} still has mounts beneath it; not removed",
                self.top.display()
            );
        }
    }
}

/// The runc-style rootless config (`runc spec --rootless`), with the mappings `mode` calls for.
fn default_config(mode: Mode) -> Value {
    let ns = ["pid", "ipc", "uts", "mount", "user", "network"].map(|t| json!({ "type": t }));
    let mut config = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": ["/bin/true"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": { "bounding": CAPS, "effective": CAPS, "permitted": CAPS },
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
            "noNewPrivileges": true
        },
        "root": { "path": rootfs(), "readonly": true },
        "hostname": "nsboot",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
              "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"] },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
              "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
              "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/sys", "type": "sysfs", "source": "sysfs",
              "options": ["nosuid", "noexec", "nodev", "ro"] }
        ],
        "linux": {
            "namespaces": ns,
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
                "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    });
    let map = |id: u32, sub: Option<u32>| {
        let mut m = vec![json!({ "containerID": 0, "hostID": id, "size": 1 })];
        if let Some(start) = sub {
            m.push(json!({ "containerID": 1, "hostID": start, "size": SUB_COUNT }));
        }
        json!(m)
    };
    let u = user(mode);
    let (subuid, subgid) = match mode {
        Mode::Root => return config,
        Mode::RootlessSingle => (None, None),
        Mode::RootlessSubid => {
            let why = "RootlessSubid needs a 65536-id range in /etc/subuid and /etc/subgid";
            (Some(u.subuid.expect(why)), Some(u.subgid.expect(why)))
        }
    };
    config["linux"]["uidMappings"] = map(u.uid, subuid);
    config["linux"]["gidMappings"] = map(u.gid, subgid);
    config
}
