//! OCI hooks: each runs with the container's state JSON on stdin, its own args and env (and
//! nothing inherited), killed after its timeout.
//!
//! Failure semantics are runc's: a failing prestart, createRuntime, createContainer,
//! startContainer or poststart hook is an error (the caller stops and deletes the container),
//! at the first failure; every poststop hook runs, and the first failure is reported once the
//! container is gone.
//!
//! createContainer and startContainer hooks run in the container's namespaces (its
//! application's: user, ipc, uts, net, cgroup; startContainer in its mount namespace too, so
//! that its path resolves in the container, as the runtime spec says; createContainer's path
//! resolves in the runtime's).

use std::io::{Read, Seek, Write};
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sched::CloneFlags;
use oci_spec::runtime::{Hook, Hooks};
use serde::{Deserialize, Serialize};

use crate::state::State;
use crate::sys::Errno;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HookKind {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl HookKind {
    pub fn name(self) -> &'static str {
        match self {
            HookKind::Prestart => "prestart",
            HookKind::CreateRuntime => "createRuntime",
            HookKind::CreateContainer => "createContainer",
            HookKind::StartContainer => "startContainer",
            HookKind::Poststart => "poststart",
            HookKind::Poststop => "poststop",
        }
    }

    /// Whether a failure stops the list at once (poststop runs every hook, then reports).
    pub fn is_fatal(self) -> bool {
        !matches!(self, HookKind::Poststop)
    }

    /// The namespaces of the container a hook of this kind joins (none: the runtime's).
    fn joins(self) -> CloneFlags {
        let outside_mount = CloneFlags::CLONE_NEWUSER
            | CloneFlags::CLONE_NEWIPC
            | CloneFlags::CLONE_NEWUTS
            | CloneFlags::CLONE_NEWNET
            | CloneFlags::CLONE_NEWCGROUP;
        match self {
            HookKind::CreateContainer => outside_mount,
            HookKind::StartContainer => outside_mount | CloneFlags::CLONE_NEWNS,
            _ => CloneFlags::empty(),
        }
    }

    fn list(self, hooks: &Hooks) -> Option<&Vec<Hook>> {
        #[allow(deprecated)] // prestart is deprecated in the spec, but engines still use it
        let prestart = hooks.prestart();
        match self {
            HookKind::Prestart => prestart.as_ref(),
            HookKind::CreateRuntime => hooks.create_runtime().as_ref(),
            HookKind::CreateContainer => hooks.create_container().as_ref(),
            HookKind::StartContainer => hooks.start_container().as_ref(),
            HookKind::Poststart => hooks.poststart().as_ref(),
            HookKind::Poststop => hooks.poststop().as_ref(),
        }
    }
}

#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
pub enum HookError {
    #[error("{kind} hook {path}[{index}]: cannot run it: {errno}: check hooks.{kind}[{index}].path in config.json")]
    Spawn {
        kind: String,
        index: usize,
        path: PathBuf,
        errno: Errno,
    },
    #[error("{kind} hook {path}[{index}] failed with {how}{stderr}")]
    Failed {
        kind: String,
        index: usize,
        path: PathBuf,
        how: String,
        stderr: String,
    },
    #[error("{kind} hook {path}[{index}] did not finish within its timeout of {secs} s and was killed: raise hooks.{kind}[{index}].timeout or fix the hook")]
    Timeout {
        kind: String,
        index: usize,
        path: PathBuf,
        secs: i64,
    },
    #[error("{kind} hooks run in the namespaces of container {id}, which an unprivileged user cannot join before its application starts: run nsboot as root, or use a createRuntime or prestart hook")]
    Unjoinable { kind: String, id: String },
    #[error("{kind} hook {path}[{index}]: {step}: {errno}")]
    Io {
        kind: String,
        index: usize,
        path: PathBuf,
        step: String,
        errno: Errno,
    },
}

/// Runs the hooks of `kind` in order. A fatal kind stops at the first failure and returns it;
/// poststop runs them all and returns the first failure.
pub fn run(kind: HookKind, hooks: Option<&Hooks>, state: &State) -> Result<(), HookError> {
    let Some(list) = hooks.and_then(|h| kind.list(h)).filter(|l| !l.is_empty()) else {
        return Ok(());
    };
    let input = serde_json::to_vec(state).unwrap_or_default();
    let target = Target::of(kind, state)?;
    let mut first = None;
    for (index, hook) in list.iter().enumerate() {
        tracing::debug!("running {} hook {}", kind.name(), hook.path().display());
        match run_one(kind, index, hook, &input, target.as_ref()) {
            Ok(()) => {}
            Err(e) if kind.is_fatal() => return Err(e),
            Err(e) => {
                tracing::warn!("{e}");
                first.get_or_insert(e);
            }
        }
    }
    first.map_or(Ok(()), Err)
}

/// The container's namespaces a hook joins: its application's, by pidfd, those that differ
/// from ours (joining one's own fails).
struct Target {
    pidfd: std::os::fd::OwnedFd,
    flags: CloneFlags,
}

impl Target {
    fn of(kind: HookKind, state: &State) -> Result<Option<Target>, HookError> {
        let wanted = kind.joins();
        if wanted.is_empty() {
            return Ok(None);
        }
        let fail = |step: &str, errno: Errno| HookError::Io {
            kind: kind.name().into(),
            index: 0,
            path: PathBuf::from(format!("(container {})", state.id)),
            step: step.into(),
            errno,
        };
        let pidfd = crate::state::lifecycle::pidfd_open(state.pid)
            .map_err(|e| fail("opening the container's application", e))?;
        // Checked once the pidfd holds it: still the application (create's, by its start time;
        // a foreground run's, the supervisor's child), not a reused pid.
        let same = match state.app_start {
            0 => crate::state::lifecycle::children(state.supervisor_pid()).contains(&state.pid),
            start => crate::state::lifecycle::is_app(state.pid, start),
        };
        if !same {
            return Err(fail(
                "finding the container's application",
                Errno(libc::ESRCH),
            ));
        }
        let names = [
            ("user", CloneFlags::CLONE_NEWUSER),
            ("mnt", CloneFlags::CLONE_NEWNS),
            ("ipc", CloneFlags::CLONE_NEWIPC),
            ("uts", CloneFlags::CLONE_NEWUTS),
            ("net", CloneFlags::CLONE_NEWNET),
            ("cgroup", CloneFlags::CLONE_NEWCGROUP),
        ];
        let app = state.pid.to_string();
        let mut flags = CloneFlags::empty();
        for (name, flag) in names.into_iter().filter(|(_, f)| wanted.contains(*f)) {
            use crate::state::lifecycle::ns_id;
            match (ns_id(&app, name), ns_id("self", name)) {
                (Some(theirs), Some(ours)) if theirs == ours => {}
                (Some(_), Some(_)) => flags |= flag,
                // Before it execs, the application may be joined by root only (it is not
                // dumpable, and its memory belongs to the caller's user namespace).
                _ if crate::idmap::is_rootless() => {
                    return Err(HookError::Unjoinable {
                        kind: kind.name().into(),
                        id: state.id.clone(),
                    })
                }
                _ => {
                    return Err(fail(
                        &format!("reading its {name} namespace"),
                        Errno(libc::ESRCH),
                    ))
                }
            }
        }
        Ok(Some(Target { pidfd, flags }))
    }
}

fn run_one(
    kind: HookKind,
    index: usize,
    hook: &Hook,
    input: &[u8],
    target: Option<&Target>,
) -> Result<(), HookError> {
    let path = hook.path().clone();
    let io = |step: &str, e: Errno| HookError::Io {
        kind: kind.name().into(),
        index,
        path: path.clone(),
        step: step.into(),
        errno: e,
    };
    // Its output goes to a memfd, read afterwards: no pipe to drain, no thread (nsboot stays
    // single-threaded up to every clone).
    let out = output_file().map_err(|e| io("creating its output file", e))?;
    let out2 = out
        .try_clone()
        .map_err(|e| io("creating its output file", e.into()))?;
    let kept = out
        .try_clone()
        .map_err(|e| io("creating its output file", e.into()))?;
    let args = hook.args().clone().unwrap_or_default();
    let mut cmd = Command::new(&path);
    if let Some((arg0, rest)) = args.split_first() {
        cmd.arg0(arg0).args(rest);
    }
    cmd.env_clear().envs(
        hook.env()
            .iter()
            .flatten()
            .filter_map(|kv| kv.split_once('=')),
    );
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(out2));
    if let Some(t) = target.filter(|t| !t.flags.is_empty()) {
        use std::os::fd::AsRawFd;
        let (fd, flags) = (t.pidfd.as_raw_fd(), t.flags.bits());
        // SAFETY: only setns (async-signal-safe) runs in the forked child before exec; it
        // joins every namespace in one call (the user namespace first), and a mount
        // namespace puts the child at the container's root.
        unsafe {
            cmd.pre_exec(move || match libc::setns(fd, flags) {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            });
        }
    }
    let mut child = cmd.spawn().map_err(|e| HookError::Spawn {
        kind: kind.name().into(),
        index,
        path: path.clone(),
        errno: e.into(),
    })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that exits without reading its stdin is not an error (EPIPE).
        let _ = stdin.write_all(input);
    }
    let pidfd =
        crate::state::lifecycle::pidfd_open(child.id() as i32).map_err(|e| io("watching it", e))?;
    let timeout = hook.timeout().filter(|t| *t > 0);
    let limit = timeout
        .map(|t| Duration::from_secs(t as u64))
        .unwrap_or(Duration::MAX);
    if !crate::state::lifecycle::wait_exit(&pidfd, limit) {
        let _ = crate::sys::pidfd_signal(pidfd.as_fd(), libc::SIGKILL);
        let _ = child.wait();
        return Err(HookError::Timeout {
            kind: kind.name().into(),
            index,
            path,
            secs: timeout.unwrap_or(0),
        });
    }
    let status = child.wait().map_err(|e| io("waiting for it", e.into()))?;
    if status.success() {
        return Ok(());
    }
    let how = match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!("signal {s}"),
        _ => "an unknown status".into(),
    };
    let stderr = read_tail(kept);
    Err(HookError::Failed {
        kind: kind.name().into(),
        index,
        path,
        how,
        stderr,
    })
}

/// An anonymous file for the hook's stdout and stderr.
fn output_file() -> Result<std::fs::File, Errno> {
    use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
    let fd = memfd_create(c"nsboot-hook-output", MemFdCreateFlag::MFD_CLOEXEC)?;
    Ok(std::fs::File::from(fd))
}

/// The last lines of what the hook printed, as one line for the error message.
fn read_tail(mut f: std::fs::File) -> String {
    let mut text = String::new();
    let _ = f.rewind();
    let _ = f.take(64 * 1024).read_to_string(&mut text);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let tail = lines[lines.len().saturating_sub(3)..].join("; ");
    if tail.is_empty() {
        String::new()
    } else {
        format!(": {}", tail.chars().take(300).collect::<String>())
    }
}

/// The hooks of the bundle's config.json, for commands that do not hold the spec (`start`,
/// `delete`). Cheap when there are none: no JSON is parsed unless the file names "hooks".
pub fn from_bundle(bundle: &std::path::Path) -> Option<Hooks> {
    let bytes = std::fs::read(bundle.join("config.json")).ok()?;
    if !bytes.windows(7).any(|w| w == b"\"hooks\"") {
        return None;
    }
    serde_json::from_slice::<crate::spec::Spec>(&bytes)
        .ok()?
        .hooks()
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> State {
        State {
            oci_version: "1.0.2".into(),
            id: "hooked".into(),
            status: "created".into(),
            // Our own: its namespaces are ours, so container hooks join none.
            pid: std::process::id() as i32,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            created: String::new(),
            owner: "0".into(),
            annotations: None,
            foreground: false,
            cgroup: None,
            // Whose child we are, as the application is its supervisor's.
            supervisor: nix::unistd::getppid().as_raw(),
            app_start: 0,
        }
    }

    fn hooks(kind: &str, list: serde_json::Value) -> Hooks {
        serde_json::from_value(serde_json::json!({ kind: list })).unwrap()
    }

    fn sh(script: &str) -> serde_json::Value {
        serde_json::json!({"path": "/bin/sh", "args": ["sh", "-c", script], "env": ["X=1"]})
    }

    #[test]
    fn hooks_run_in_order_with_the_state_on_stdin_and_only_their_env() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let o = out.display();
        let h = hooks(
            "createRuntime",
            serde_json::json!([
                sh(&format!(
                    "echo first \"$X\" \"${{HOME:-nohome}}\" >> {o}; cat >> {o}; echo >> {o}"
                )),
                sh(&format!("echo second >> {o}")),
            ]),
        );
        run(HookKind::CreateRuntime, Some(&h), &state()).unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "first 1 nohome");
        let st: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(
            (st["id"].as_str(), st["pid"].as_i64()),
            (Some("hooked"), Some(std::process::id() as i64))
        );
        assert_eq!(lines[2], "second");
    }

    #[test]
    fn a_failing_fatal_hook_stops_the_list_and_names_its_stderr() {
        let h = hooks(
            "prestart",
            serde_json::json!([sh("echo broken >&2; exit 3"), sh("exit 0")]),
        );
        let e = run(HookKind::Prestart, Some(&h), &state())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("prestart hook /bin/sh[0] failed with exit status 3: broken"),
            "{e}"
        );
    }

    #[test]
    fn every_poststop_hook_runs_and_the_first_failure_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let h = hooks(
            "poststop",
            serde_json::json!([sh("exit 1"), sh(&format!("echo ran > {}", out.display()))]),
        );
        let e = run(HookKind::Poststop, Some(&h), &state()).unwrap_err();
        assert!(
            e.to_string().contains("poststop hook /bin/sh[0] failed"),
            "{e}"
        );
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "ran\n");
    }

    #[test]
    fn a_failing_poststart_hook_is_an_error() {
        let h = hooks("poststart", serde_json::json!([sh("exit 2"), sh("exit 0")]));
        assert!(run(HookKind::Poststart, Some(&h), &state()).is_err());
    }

    #[test]
    fn a_hook_past_its_timeout_is_killed() {
        let mut hook = sh("sleep 30");
        hook["timeout"] = serde_json::json!(1);
        let h = hooks("startContainer", serde_json::json!([hook]));
        let t0 = std::time::Instant::now();
        let e = run(HookKind::StartContainer, Some(&h), &state()).unwrap_err();
        assert!(matches!(e, HookError::Timeout { secs: 1, .. }), "{e}");
        assert!(t0.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn a_missing_hook_binary_is_a_spawn_error() {
        let h = hooks(
            "createContainer",
            serde_json::json!([{"path": "/nonexistent/hook"}]),
        );
        let e = run(HookKind::CreateContainer, Some(&h), &state()).unwrap_err();
        assert!(matches!(e, HookError::Spawn { .. }), "{e}");
    }
}
