//! `nsboot checkpoint` (CRIU's `criu dump` of the application's tree) and `restore` (CRIU's
//! restore under a new supervisor, into the spec's cgroup). Where CRIU itself cannot run
//! (Debian's 3.17 on a kernel with a `[vvar_vclock]` mapping, 6.13 and later; a rootless
//! caller), checkpoint and restore must fail in one line, naming CRIU's error, leave the
//! container as it was and nothing behind. The VM environments `cgv2-root` and `criu`
//! (kernel 6.12) run the dump and the restore themselves.

mod common;
#[path = "cgroups/host.rs"]
mod host;
#[path = "lifecycle/support.rs"]
mod support;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{Bundle, Mode};
use serde_json::json;
use support::*;

/// Prints a growing count, one number per line, five a second.
const COUNTER: &str = "i=0; while :; do i=$((i+1)); echo $i; sleep 0.2; done";

fn counter(mode: Mode) -> Bundle {
    Bundle::new(mode).args(&["/bin/sh", "-c", COUNTER])
}

/// The last number the counter of `id` printed.
fn count(b: &Bundle, id: &str) -> u64 {
    app_output(b, id)
        .lines()
        .rev()
        .find_map(|l| l.trim().parse().ok())
        .unwrap_or(0)
}

/// The VM environments whose kernel Debian's CRIU 3.17 runs on (6.12: no `[vvar_vclock]`
/// yet): there the dump and the restore themselves must pass.
const CRIU_ENVS: &[&str] = &["cgv2-root", "criu"];

/// Whether CRIU can run here at all (`criu check` initialises what every dump needs).
fn criu_works() -> bool {
    let out = Command::new("criu").arg("check").output();
    let works = out.as_ref().is_ok_and(|o| o.status.success());
    let env = std::env::var("NSBOOT_VM_ENV").unwrap_or_default();
    assert!(
        works || !CRIU_ENVS.contains(&env.as_str()),
        "`criu check` fails in VM environment {env}, where CRIU must run: {out:?}"
    );
    works
}

fn start_counter(b: &Bundle, id: &str) {
    let c = create(b, id, &[]);
    assert_eq!(c.status, 0, "{:?}: create: {}", b.mode(), c.stderr);
    let s = nsb(b, &["start", id]);
    assert_eq!(s.status, 0, "{:?}: start: {}", b.mode(), s.stderr);
    assert!(
        eventually(|| count(b, id) >= 3),
        "{:?}: the counter does not count: {}",
        b.mode(),
        app_output(b, id)
    );
}

/// The lines of a CRIU log around its first error, for a failure's message.
fn log_tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains("Error ("))
        .unwrap_or(lines.len());
    lines[at.saturating_sub(30)..(at + 5).min(lines.len())].join("\n")
}

/// `checkpoint --image-path IMGS ID`. Where CRIU runs: it succeeds and the container is
/// stopped (true). Elsewhere: CRIU's own failure in one line, 125 (false).
fn dump(b: &Bundle, id: &str, imgs: &Path) -> bool {
    let out = nsb(
        b,
        &["checkpoint", "--image-path", imgs.to_str().unwrap(), id],
    );
    if !criu_works() {
        one_line_125(&out, "checkpoint where criu cannot run");
        let what = format!("criu dump of container {id} failed");
        assert!(out.stderr.contains(&what), "{out:?}");
        return false;
    }
    let log = log_tail(&imgs.join("dump.log"));
    assert_eq!(out.status, 0, "checkpoint of {id}: {out:?}\n{log}");
    wait_status(b, id, "stopped");
    true
}

fn one_line_125(out: &common::Output, what: &str) {
    assert_eq!(out.status, 125, "{what}: {out:?}");
    assert_eq!(out.stderr.trim_end().lines().count(), 1, "{what}: {out:?}");
}

fn images(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn checkpoint_leave_running_then_checkpoint_then_restore_and_the_counter_goes_on() {
    if !common::is_root() {
        return;
    }
    let b = counter(Mode::Root);
    start_counter(&b, "ck");
    let imgs = top(&b).join("images");
    let work = top(&b).join("work");
    let (img_s, work_s) = (imgs.to_str().unwrap(), work.to_str().unwrap());
    let args = [
        "checkpoint",
        "--image-path",
        img_s,
        "--work-path",
        work_s,
        "--leave-running",
        "ck",
    ];
    let out = nsb(&b, &args);
    if !criu_works() {
        // CRIU's own failure, in one line, and the container untouched.
        one_line_125(&out, "checkpoint where criu cannot run");
        assert!(
            out.stderr.contains("criu dump of container ck failed"),
            "{out:?}"
        );
        assert!(work.join("dump.log").is_file(), "no dump.log in {work:?}");
        let before = count(&b, "ck");
        assert!(
            eventually(|| count(&b, "ck") > before),
            "the counter stopped"
        );
        assert_eq!(status(&b, "ck"), "running");
        let d = nsb(&b, &["delete", "--force", "ck"]);
        assert_eq!(d.status, 0, "{d:?}");
        // A restore from images CRIU could not write fails alike, and leaves no container.
        let r = restore(&b, "ck", &imgs);
        one_line_125(&r, "restore where criu cannot run");
        assert!(nsb(&b, &["state", "ck"]).stderr.contains("does not exist"));
        common::assert_nothing_left(b.mode(), b.state_dir());
        eprintln!("criu cannot run on this kernel: checked nsboot's refusal only");
        return;
    }
    assert_eq!(
        out.status,
        0,
        "checkpoint --leave-running: {out:?}\n{}",
        log_tail(&work.join("dump.log"))
    );
    let found = images(&imgs);
    for want in ["inventory.img", "pstree.img"] {
        assert!(found.iter().any(|f| f == want), "no {want} in {found:?}");
    }
    assert!(work.join("dump.log").is_file(), "no dump.log in {work:?}");
    assert_eq!(status(&b, "ck"), "running", "--leave-running stopped it");
    let before = count(&b, "ck");
    assert!(
        eventually(|| count(&b, "ck") > before + 2),
        "the counter stopped after --leave-running"
    );

    // Without --leave-running, CRIU kills the tree once dumped: the container stops.
    let imgs2 = top(&b).join("images2");
    assert!(dump(&b, "ck", &imgs2));
    assert!(images(&imgs2).iter().any(|f| f == "pstree.img"));
    assert!(
        imgs2.join("dump.log").is_file(),
        "the work path defaults to the image path"
    );
    let last = count(&b, "ck");
    let d = nsb(&b, &["delete", "ck"]);
    assert_eq!(d.status, 0, "{d:?}");

    // Restored under the same id, the counter goes on from where it was dumped, on the
    // restoring command's stdio (the same file, handed over as an engine hands its pipes).
    let r = restore(&b, "ck", &imgs2);
    let log = log_tail(&imgs2.join("restore.log"));
    assert_eq!(r.status, 0, "restore: {r:?}\n{log}");
    assert_eq!(status(&b, "ck"), "running");
    assert!(
        eventually(|| count(&b, "ck") > last + 2),
        "the restored counter does not count: {}",
        app_output(&b, "ck")
    );
    let after: Vec<u64> = app_output(&b, "ck")
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .skip_while(|&n| n != last)
        .skip(1)
        .collect();
    assert_eq!(after.first(), Some(&(last + 1)), "restarted: {after:?}");
    assert!(
        after.windows(2).all(|w| w[1] == w[0] + 1),
        "the count skipped: {after:?}"
    );
    // The restored container takes exec, into its restored pid namespace (the counter, pid 1).
    let e = nsb(&b, &["exec", "ck", "/bin/cat", "/proc/1/cmdline"]);
    assert_eq!(e.status, 0, "exec: {e:?}");
    assert!(e.stdout.contains("while"), "exec sees another pid 1: {e:?}");
    let d = nsb(&b, &["delete", "--force", "ck"]);
    assert_eq!(d.status, 0, "{d:?}");
    common::assert_nothing_left(b.mode(), b.state_dir());
}

/// `nsboot restore --detach` of `images` into `id`, its stdout and stderr appended to the
/// file the dumped application wrote to (`top/ID.out`): CRIU hands the application the same
/// file anew, checked by its size. The output is what this command added.
fn restore(b: &Bundle, id: &str, images: &Path) -> common::Output {
    restore_with(b, id, images, &[])
}

/// `restore` with `extra` flags.
fn restore_with(b: &Bundle, id: &str, images: &Path, extra: &[&str]) -> common::Output {
    let out = top(b).join(format!("{id}.out"));
    let (mut cmd, before) = restore_cmd(b, id, images, &out, true);
    cmd.args(extra);
    let child = cmd.spawn().expect("start nsboot restore");
    let status = common::wait_code(child, common::RUN_TIMEOUT);
    let text = fs::read(&out).unwrap_or_default();
    common::Output {
        status,
        stdout: String::new(),
        stderr: String::from_utf8_lossy(&text[before.min(text.len())..]).into_owned(),
    }
}

/// The command `nsboot restore [--detach]` of `images` into `id`, its stdout and stderr
/// appended to `out`, and `out`'s length before.
fn restore_cmd(b: &Bundle, id: &str, images: &Path, out: &Path, detach: bool) -> (Command, usize) {
    let mut cmd = b.nsboot();
    cmd.arg("--root").arg(b.state_dir()).arg("restore");
    if detach {
        cmd.arg("--detach");
    }
    cmd.arg("--bundle")
        .arg(b.dir())
        .arg("--image-path")
        .arg(images)
        .arg(id);
    let file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(out)
        .expect("open the output file");
    let before = file.metadata().map(|m| m.len() as usize).unwrap_or(0);
    cmd.stdin(std::process::Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file);
    (cmd, before)
}

/// A container with a cgroup (cgroupsPath, a pids limit) is restored into the cgroup its spec
/// asks for, made anew: the restored application in it, the limit written, and delete
/// removes it. Where CRIU cannot run, the failed restore leaves no cgroup behind.
#[test]
fn a_restored_container_is_in_the_cgroup_its_spec_asks_for() {
    if !common::is_root() {
        return;
    }
    let name = format!("nsbt-cg-ckpt-{}", std::process::id());
    let b = counter(Mode::Root).edit(|c| {
        c["linux"]["cgroupsPath"] = json!(name);
        c["linux"]["resources"] = json!({ "pids": { "limit": 50 } });
    });
    start_counter(&b, "cg");
    let imgs = top(&b).join("images");
    let works = dump(&b, "cg", &imgs);
    let last = count(&b, "cg");
    let d = nsb(&b, &["delete", "--force", "cg"]);
    assert_eq!(d.status, 0, "{d:?}");
    host::assert_no_cgroup(&name, "the dumped container deleted");

    // What the application's output file held at dump, for a second restore.
    let again = top(&b).join("cg-again.out");
    fs::copy(top(&b).join("cg.out"), &again).unwrap();
    let r = restore(&b, "cg", &imgs);
    if !works {
        one_line_125(&r, "restore where criu cannot run");
        host::assert_no_cgroup(&name, "a failed restore");
        common::assert_nothing_left(b.mode(), b.state_dir());
        return;
    }
    let log = log_tail(&imgs.join("restore.log"));
    assert_eq!(r.status, 0, "restore: {r:?}\n{log}");
    let app = state(&b, "cg")["pid"].as_i64().unwrap_or(0) as i32;
    let dirs = host::dirs_of(app);
    assert!(
        dirs.iter()
            .any(|(_, d)| d.file_name().is_some_and(|n| n == name.as_str())),
        "the restored application {app} is not in {name}: {dirs:?}"
    );
    assert_eq!(host::read(&host::dir(app, "pids"), "pids.max"), "50");
    assert!(
        eventually(|| count(&b, "cg") > last + 2),
        "the restored counter does not count: {}",
        app_output(&b, "cg")
    );
    let d = nsb(&b, &["delete", "--force", "cg"]);
    assert_eq!(d.status, 0, "{d:?}");
    host::assert_no_cgroup(&name, "the restored container deleted");

    // In the foreground, restore ends with the container's status, the container and its
    // cgroup removed, as runc's.
    let (mut cmd, _) = restore_cmd(&b, "cg", &imgs, &again, false);
    let child = cmd.spawn().expect("start nsboot restore");
    assert!(
        eventually(|| nsb(&b, &["state", "cg"]).stdout.contains("\"running\"")),
        "the foreground restore never ran: {}",
        fs::read_to_string(&again).unwrap_or_default()
    );
    let k = nsb(&b, &["kill", "cg", "KILL"]);
    assert_eq!(k.status, 0, "{k:?}");
    assert_eq!(common::wait_code(child, common::RUN_TIMEOUT), 137);
    let st = nsb(&b, &["state", "cg"]);
    assert!(st.stderr.contains("does not exist"), "{st:?}");
    host::assert_no_cgroup(&name, "a foreground restore ended");
    common::assert_nothing_left(b.mode(), b.state_dir());
}

/// A process holding new namespaces (`unshare FLAGS sleep`), as a donor for paths.
struct Donor(std::process::Child);

impl Donor {
    fn new(flags: &[&str]) -> Donor {
        // Its loopback up, as a pod's is (CRIU probes TCP repair over it in its namespace).
        let child = Command::new("unshare")
            .args(flags)
            .args(["sh", "-c", "ip link set lo up 2>/dev/null; exec sleep 1000"])
            .stdin(Stdio::null())
            .spawn()
            .expect("start unshare");
        let comm = format!("/proc/{}/comm", child.id());
        let ready = eventually(|| fs::read_to_string(&comm).is_ok_and(|c| c == "sleep\n"));
        assert!(ready, "unshare {flags:?} did not start");
        Donor(child)
    }

    fn path(&self, ns: &str) -> String {
        format!("/proc/{}/ns/{ns}", self.0.id())
    }
}

impl Drop for Donor {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The counter, joining the namespace of spec type `typ` at `path`.
fn joining(typ: &str, path: &str) -> Bundle {
    counter(Mode::Root).edit(|c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        match ns.iter_mut().find(|n| n["type"] == typ) {
            Some(entry) => entry["path"] = json!(path),
            None => ns.push(json!({ "type": typ, "path": path })),
        }
    })
}

/// Checkpoint of the counter `id` (started here) refused in one line holding `want`, before
/// CRIU ran; the container still counts, and is deleted with nothing left.
fn refused_before_criu(b: &Bundle, id: &str, want: &str) {
    start_counter(b, id);
    let imgs = top(b).join("images");
    let out = nsb(
        b,
        &["checkpoint", "--image-path", imgs.to_str().unwrap(), id],
    );
    one_line_125(&out, want);
    assert!(out.stderr.contains(want), "{out:?}");
    assert!(!imgs.join("dump.log").exists(), "criu ran: {out:?}");
    let before = count(b, id);
    assert!(eventually(|| count(b, id) > before), "{want}: stopped");
    let d = nsb(b, &["delete", "--force", id]);
    assert_eq!(d.status, 0, "{d:?}");
    common::assert_nothing_left(b.mode(), b.state_dir());
}

/// A namespace the spec joins by path that CRIU cannot leave out of the images (a cgroup
/// namespace: CRIU would dump it as the container's own) is refused in one line, naming the
/// type, before CRIU runs, the container left running.
#[test]
fn checkpoint_of_a_container_that_joined_a_namespace_by_path_is_refused() {
    if !common::is_root() {
        return;
    }
    let donor = Donor::new(&["--cgroup"]);
    let b = joining("cgroup", &donor.path("cgroup"));
    refused_before_criu(&b, "jcg", "its cgroup namespace was joined by path");
}

/// The inode of the namespace file at `path`.
fn ns_inode(path: &str) -> u64 {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path).map(|m| m.ino()).unwrap_or(0)
}

/// The network, ipc and uts namespaces a pod member joins by path are the pod's, not the
/// container's: the dump leaves them out (as runc's `--external net[INODE]:extRootNetNS`), and
/// the restore puts the application back into the namespaces at the spec's paths, where the
/// counter goes on. Where CRIU cannot run, the checkpoint is CRIU's failure, no refusal.
#[test]
fn a_container_that_joined_a_pods_namespaces_is_restored_into_them() {
    if !common::is_root() {
        return;
    }
    let donor = Donor::new(&["--net", "--ipc", "--uts"]);
    let b = joining("network", &donor.path("net"));
    let b = b.edit(|c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        for (typ, file) in [("ipc", "ipc"), ("uts", "uts")] {
            let entry = ns.iter_mut().find(|n| n["type"] == typ).unwrap();
            entry["path"] = json!(donor.path(file));
        }
    });
    start_counter(&b, "jnet");
    let imgs = top(&b).join("images");
    if !dump(&b, "jnet", &imgs) {
        let d = nsb(&b, &["delete", "--force", "jnet"]);
        assert_eq!(d.status, 0, "{d:?}");
        common::assert_nothing_left(b.mode(), b.state_dir());
        return;
    }
    let last = count(&b, "jnet");
    let d = nsb(&b, &["delete", "jnet"]);
    assert_eq!(d.status, 0, "{d:?}");

    let r = restore(&b, "jnet", &imgs);
    let log = log_tail(&imgs.join("restore.log"));
    assert_eq!(r.status, 0, "restore: {r:?}\n{log}");
    let app = state(&b, "jnet")["pid"].as_i64().unwrap_or(0);
    for ns in ["net", "ipc", "uts"] {
        assert_eq!(
            ns_inode(&format!("/proc/{app}/ns/{ns}")),
            ns_inode(&donor.path(ns)),
            "the restored application is not in the joined {ns} namespace"
        );
    }
    assert!(
        eventually(|| count(&b, "jnet") > last + 2),
        "the restored counter does not count: {}",
        app_output(&b, "jnet")
    );
    let d = nsb(&b, &["delete", "--force", "jnet"]);
    assert_eq!(d.status, 0, "{d:?}");
    common::assert_nothing_left(b.mode(), b.state_dir());
}

/// `restore --pid-file` names the restored container's process, the application `state`
/// reports (as runc's names its init), not nsboot's supervisor.
#[test]
fn restore_pid_file_names_the_restored_application() {
    if !common::is_root() {
        return;
    }
    let b = counter(Mode::Root);
    start_counter(&b, "pf");
    let imgs = top(&b).join("images");
    if !dump(&b, "pf", &imgs) {
        let d = nsb(&b, &["delete", "--force", "pf"]);
        assert_eq!(d.status, 0, "{d:?}");
        common::assert_nothing_left(b.mode(), b.state_dir());
        return;
    }
    let d = nsb(&b, &["delete", "pf"]);
    assert_eq!(d.status, 0, "{d:?}");

    let pid_file = top(&b).join("restored.pid");
    let r = restore_with(&b, "pf", &imgs, &["--pid-file", pid_file.to_str().unwrap()]);
    let log = log_tail(&imgs.join("restore.log"));
    assert_eq!(r.status, 0, "restore: {r:?}\n{log}");
    let written = fs::read_to_string(&pid_file).unwrap_or_default();
    let app = state(&b, "pf")["pid"].as_i64().unwrap_or(0);
    assert_eq!(
        written.trim(),
        app.to_string(),
        "the pid file is not state's pid"
    );
    let cmdline = fs::read(format!("/proc/{app}/cmdline")).unwrap_or_default();
    assert!(
        String::from_utf8_lossy(&cmdline).contains("while"),
        "the pid file's process {app} is not the counter: {cmdline:?}"
    );
    let d = nsb(&b, &["delete", "--force", "pf"]);
    assert_eq!(d.status, 0, "{d:?}");
    common::assert_nothing_left(b.mode(), b.state_dir());
}

/// Without a pid namespace of its own (the spec lists none), a container could only be
/// restored into a new one, not the caller's it ran in: refused in one line before CRIU runs,
/// the container left running.
#[test]
fn checkpoint_of_a_container_in_the_callers_pid_namespace_is_refused() {
    if !common::is_root() {
        return;
    }
    let b = counter(Mode::Root).edit(|c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "pid");
    });
    refused_before_criu(&b, "hostpid", "it runs in the runtime's pid namespace");
}

#[test]
fn rootless_checkpoint_fails_in_one_line_and_leaves_the_container_running() {
    for mode in common::rootless_modes() {
        let b = counter(mode);
        start_counter(&b, "rl");
        let imgs = top(&b).join("images");
        let out = nsb(
            &b,
            &["checkpoint", "--image-path", imgs.to_str().unwrap(), "rl"],
        );
        one_line_125(&out, &format!("{mode:?}: rootless checkpoint"));
        let before = count(&b, "rl");
        assert!(eventually(|| count(&b, "rl") > before), "{mode:?}: stopped");
        let d = nsb(&b, &["delete", "--force", "rl"]);
        assert_eq!(d.status, 0, "{d:?}");
        common::assert_nothing_left(b.mode(), b.state_dir());
    }
}

#[test]
fn checkpoint_needs_a_running_container() {
    for mode in common::modes() {
        let b = counter(mode);
        let out = nsb(&b, &["checkpoint", "nope"]);
        one_line_125(&out, "missing id");
        assert!(out.stderr.contains("does not exist"), "{out:?}");
        let c = create(&b, "cr", &[]);
        assert_eq!(c.status, 0, "{mode:?}: create: {}", c.stderr);
        let imgs = top(&b).join("images");
        let out = nsb(
            &b,
            &["checkpoint", "--image-path", imgs.to_str().unwrap(), "cr"],
        );
        one_line_125(&out, "created container");
        assert!(out.stderr.contains("is not running"), "{out:?}");
        let out = nsb(&b, &["checkpoint", "--manage-cgroups-mode", "bogus", "cr"]);
        one_line_125(&out, "bad cgroup mode");
        let out = nsb(&b, &["checkpoint", "--lazy-pages", "cr"]);
        one_line_125(&out, "lazy pages");
        assert_eq!(status(&b, "cr"), "created");
        let d = nsb(&b, &["delete", "--force", "cr"]);
        assert_eq!(d.status, 0, "{d:?}");
        common::assert_nothing_left(b.mode(), b.state_dir());
    }
}

#[test]
fn restore_without_a_checkpoint_fails_in_one_line_and_creates_nothing() {
    for mode in common::modes() {
        let b = counter(mode);
        let imgs = top(&b).join("images");
        fs::create_dir_all(&imgs).unwrap();
        let r = restore(&b, "rs", &imgs);
        one_line_125(&r, "restore of an empty image path");
        assert!(r.stderr.contains("nsboot checkpoint"), "{r:?}");
        let mut cmd = b.nsboot();
        cmd.arg("--root").arg(b.state_dir());
        cmd.args(["restore", "--console-socket", "/nonexistent", "rs"]);
        let r = run_to_file(&b, "restore-console", cmd);
        one_line_125(&r, "restore with a console socket");
        let l = nsb(&b, &["state", "rs"]);
        assert!(l.stderr.contains("does not exist"), "{l:?}");
        common::assert_nothing_left(b.mode(), b.state_dir());
    }
}

/// Answers each line read on its terminal, after a first word.
const ANSWER: &str = "echo ready; while read l; do echo \"got $l\"; done";

/// What the pty `master` prints, read until it holds `want` (30 s at most).
fn read_until(master: &std::os::fd::OwnedFd, want: &str) -> String {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < deadline && !String::from_utf8_lossy(&out).contains(want) {
        let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        if poll(&mut fds, PollTimeout::from(100u16)).unwrap_or(0) == 0 {
            continue;
        }
        let mut chunk = [0u8; 4096];
        match nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(master), &mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A line typed on the terminal whose master is `master`.
fn say(master: &std::os::fd::OwnedFd, line: &str) {
    let text = format!("{line}\n");
    assert_eq!(
        nix::unistd::write(master, text.as_bytes()).ok(),
        Some(text.len()),
        "writing {line:?} to the terminal"
    );
}

/// A container with `process.terminal` (its pty master sent to a console socket, as podman's
/// `run -dt`) is checkpointed with its terminal outside the images, and restored onto a new
/// pty whose master goes to the restore's console socket: the shell reads what is typed there
/// and answers on it. Without a console socket, the restore is refused in one line, as runc's.
#[test]
fn a_terminal_container_is_restored_onto_the_restores_console_socket() {
    if !common::is_root() {
        return;
    }
    let b = Bundle::new(Mode::Root)
        .args(&["/bin/sh", "-c", ANSWER])
        .edit(|c| c["process"]["terminal"] = json!(true));
    let sock = ConsoleSocket::new(&b, "console.sock");
    let c = create(&b, "tty", &["--console-socket", sock.arg()]);
    assert_eq!(c.status, 0, "create: {}", c.stderr);
    let (master, _) = sock.receive().expect("no pty master arrived");
    let s = nsb(&b, &["start", "tty"]);
    assert_eq!(s.status, 0, "start: {}", s.stderr);
    let seen = read_until(&master, "ready");
    assert!(seen.contains("ready"), "the shell did not start: {seen:?}");
    say(&master, "one");
    let seen = read_until(&master, "got one");
    assert!(
        seen.contains("got one"),
        "no answer before the dump: {seen:?}"
    );

    let imgs = top(&b).join("images");
    let works = dump(&b, "tty", &imgs);
    drop(master);
    let d = nsb(&b, &["delete", "--force", "tty"]);
    assert_eq!(d.status, 0, "{d:?}");

    // The terminal has nowhere to go without a console socket.
    let r = restore(&b, "tty", &imgs);
    one_line_125(&r, "restore of a terminal without --console-socket");
    assert!(r.stderr.contains("--console-socket"), "{r:?}");
    let st = nsb(&b, &["state", "tty"]);
    assert!(st.stderr.contains("does not exist"), "{st:?}");
    if !works {
        common::assert_nothing_left(b.mode(), b.state_dir());
        return;
    }

    let sock2 = ConsoleSocket::new(&b, "console2.sock");
    let r = restore_with(&b, "tty", &imgs, &["--console-socket", sock2.arg()]);
    let log = log_tail(&imgs.join("restore.log"));
    assert_eq!(r.status, 0, "restore: {r:?}\n{log}");
    let (master2, _) = sock2.receive().expect("no pty master from restore");
    say(&master2, "two");
    let seen = read_until(&master2, "got two");
    assert!(
        seen.contains("got two"),
        "no answer after restore: {seen:?}"
    );
    let st = state(&b, "tty");
    assert_eq!(st["status"], "running", "{st}");
    let app = st["pid"].as_i64().unwrap_or(0);
    let cmdline = fs::read(format!("/proc/{app}/cmdline")).unwrap_or_default();
    assert!(
        String::from_utf8_lossy(&cmdline).contains("got"),
        "state's pid {app} is not the shell: {cmdline:?}"
    );

    // Once restored, its terminal is the host's pty: checkpointed and restored again alike.
    let imgs2 = top(&b).join("images2");
    assert!(dump(&b, "tty", &imgs2));
    drop(master2);
    let d = nsb(&b, &["delete", "tty"]);
    assert_eq!(d.status, 0, "{d:?}");
    let sock3 = ConsoleSocket::new(&b, "console3.sock");
    let r = restore_with(&b, "tty", &imgs2, &["--console-socket", sock3.arg()]);
    let log = log_tail(&imgs2.join("restore.log"));
    assert_eq!(r.status, 0, "second restore: {r:?}\n{log}");
    let (master3, _) = sock3
        .receive()
        .expect("no pty master from the second restore");
    say(&master3, "three");
    let seen = read_until(&master3, "got three");
    assert!(
        seen.contains("got three"),
        "no answer after the second restore: {seen:?}"
    );
    let d = nsb(&b, &["delete", "--force", "tty"]);
    assert_eq!(d.status, 0, "{d:?}");
    common::assert_nothing_left(b.mode(), b.state_dir());
}

/// The images of a container without a terminal have none to put on a console socket:
/// restore with one is refused in one line, nothing created.
#[test]
fn restore_with_a_console_socket_of_a_checkpoint_without_a_terminal_is_refused() {
    if !common::is_root() {
        return;
    }
    let b = counter(Mode::Root);
    start_counter(&b, "nt");
    let imgs = top(&b).join("images");
    dump(&b, "nt", &imgs);
    let d = nsb(&b, &["delete", "--force", "nt"]);
    assert_eq!(d.status, 0, "{d:?}");
    let sock = ConsoleSocket::new(&b, "console.sock");
    let r = restore_with(&b, "nt", &imgs, &["--console-socket", sock.arg()]);
    one_line_125(
        &r,
        "restore with a console socket of a checkpoint without a terminal",
    );
    assert!(r.stderr.contains("no terminal"), "{r:?}");
    let st = nsb(&b, &["state", "nt"]);
    assert!(st.stderr.contains("does not exist"), "{st:?}");
    common::assert_nothing_left(b.mode(), b.state_dir());
}
