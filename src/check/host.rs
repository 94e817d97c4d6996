//! Seccomp, cgroup v2 delegation, the state directory and fuse-overlayfs for `--overlay`.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::unistd::{access, AccessFlags};

use super::{Caller, Item};

const SECCOMP: &str = "seccomp";
const CGROUP: &str = "cgroup v2";
const STATE: &str = "state directory";
const FUSE: &str = "overlay writes";

/// `prctl(PR_GET_SECCOMP)`: the current mode, or the errno when the kernel has no seccomp.
fn seccomp_mode() -> Result<i32, nix::errno::Errno> {
    // SAFETY: PR_GET_SECCOMP takes no pointer arguments and only returns the mode.
    let r = unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) };
    nix::errno::Errno::result(r)
}

/// Judges seccomp from the prctl result, the Seccomp: line of /proc/self/status and
/// /proc/sys/kernel/seccomp/actions_avail (present only with CONFIG_SECCOMP_FILTER).
pub fn judge_seccomp(
    mode: Result<i32, nix::errno::Errno>,
    status_has_line: bool,
    actions: Option<&str>,
) -> Item {
    let kernel_fix = "use a kernel built with CONFIG_SECCOMP=y and CONFIG_SECCOMP_FILTER=y";
    let mode = match mode {
        Ok(m) => m,
        Err(_) if status_has_line => 0,
        Err(e) => {
            return Item::fail(
                SECCOMP,
                format!("prctl(PR_GET_SECCOMP): {} ({e:?}): no seccomp", e.desc()),
                kernel_fix,
            )
        }
    };
    match actions {
        Some(a) if a.split_whitespace().any(|x| x == "errno") => {
            let stacked = if mode == 2 {
                ", already filtered: nsboot's filter stacks on top"
            } else {
                ""
            };
            Item::ok(
                SECCOMP,
                format!("mode {mode}{stacked}; actions: {}", a.trim()),
            )
        }
        Some(a) => Item::fail(
            SECCOMP,
            format!("filters lack the errno action (actions: {})", a.trim()),
            kernel_fix,
        ),
        None => Item::fail(
            SECCOMP,
            "no seccomp filters (kernel/seccomp/actions_avail is missing)",
            kernel_fix,
        ),
    }
}

fn seccomp() -> Item {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let actions = std::fs::read_to_string("/proc/sys/kernel/seccomp/actions_avail").ok();
    judge_seccomp(
        seccomp_mode(),
        status.lines().any(|l| l.starts_with("Seccomp:")),
        actions.as_deref(),
    )
}

fn is_cgroup2(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
}

/// The caller's cgroup v2 path from /proc/self/cgroup ("0::/user.slice/...").
pub fn unified_path(proc_cgroup: &str) -> Option<&str> {
    proc_cgroup.lines().find_map(|l| l.strip_prefix("0::"))
}

fn cgroup(caller: &Caller) -> Item {
    let skipped = "cgroups are not managed by nsboot; resource limits from the spec are skipped";
    let root = Path::new("/sys/fs/cgroup");
    let mount = if is_cgroup2(root) {
        root.to_path_buf()
    } else if is_cgroup2(&root.join("unified")) {
        return Item::warn(
            CGROUP,
            format!("hybrid hierarchy: cgroup v1 controllers, cgroup2 at /sys/fs/cgroup/unified without controllers; {skipped}"),
            "boot with systemd.unified_cgroup_hierarchy=1 for a pure cgroup v2 hierarchy",
        );
    } else {
        return Item::warn(
            CGROUP,
            format!("/sys/fs/cgroup is not cgroup2 (cgroup v1); {skipped}"),
            "boot with systemd.unified_cgroup_hierarchy=1 for cgroup v2",
        );
    };
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let Some(rel) = unified_path(&own) else {
        return Item::warn(
            CGROUP,
            format!("no 0:: line in /proc/self/cgroup; {skipped}"),
            "run nsboot in a cgroup v2 hierarchy",
        );
    };
    let dir = mount.join(rel.trim_start_matches('/'));
    if access(&dir, AccessFlags::W_OK).is_ok()
        && access(&dir.join("cgroup.procs"), AccessFlags::W_OK).is_ok()
    {
        return Item::ok(CGROUP, format!("{} is writable (delegated)", dir.display()));
    }
    let fix = if caller.uid == 0 {
        "mount cgroup2 read-write at /sys/fs/cgroup".to_string()
    } else {
        "run: systemd-run --user --scope -p Delegate=yes nsboot run ... (a delegated cgroup)"
            .to_string()
    };
    Item::warn(
        CGROUP,
        format!("{} is not writable by you; {skipped}", dir.display()),
        fix,
    )
}

/// Whether the caller can use `dir`: it exists as a writable directory of theirs, or its
/// nearest existing ancestor lets them create it. Err: why not, one line.
fn usable(dir: &Path, uid: u32) -> Result<String, String> {
    let rwx = AccessFlags::W_OK | AccessFlags::X_OK;
    match std::fs::symlink_metadata(dir) {
        Ok(m) if !m.is_dir() => Err(format!("{} exists and is not a directory", dir.display())),
        Ok(m) if m.uid() != uid && uid != 0 => Err(format!(
            "{} belongs to uid {}, not to you",
            dir.display(),
            m.uid()
        )),
        Ok(_) if access(dir, rwx).is_ok() => Ok(format!("{} (exists, writable)", dir.display())),
        Ok(_) => Err(format!("{} is not writable by you", dir.display())),
        Err(_) => {
            let parent = dir
                .ancestors()
                .skip(1)
                .find(|a| a.exists())
                .unwrap_or(Path::new("/"));
            // access() says yes to root everywhere; creating (and removing) a probe directory
            // is the real test (a pseudo file system like /proc refuses it).
            let probe = parent.join(format!(".nsboot-check.{}", std::process::id()));
            let creatable = access(parent, rwx).is_ok() && std::fs::create_dir(&probe).is_ok();
            let _ = std::fs::remove_dir(&probe);
            if creatable {
                Ok(format!(
                    "{} (will be created in {})",
                    dir.display(),
                    parent.display()
                ))
            } else {
                Err(format!(
                    "{} cannot be created: {} is not writable by you",
                    dir.display(),
                    parent.display()
                ))
            }
        }
    }
}

/// The state directory item. `usable`: as from [`usable`]; `run_user`: /run/user/<uid> exists
/// (without a logind session it does not, and the plain export fix would point nowhere).
pub fn judge_state(
    caller: &Caller,
    xdg_set: bool,
    usable: Result<String, String>,
    run_user: bool,
) -> Item {
    let export = if run_user {
        "run: export XDG_RUNTIME_DIR=/run/user/$(id -u)".to_string()
    } else {
        format!(
            "run: export XDG_RUNTIME_DIR=/run/user/$(id -u) once it exists (log in through systemd-logind, or run: sudo loginctl enable-linger {})",
            caller.user()
        )
    };
    let other = "or pass --root DIR with a directory of yours";
    match (usable, caller.rootless() && !xdg_set) {
        (Ok(how), false) => Item::ok(STATE, how),
        (Ok(how), true) => Item::warn(
            STATE,
            format!("XDG_RUNTIME_DIR is unset: nsboot falls back to {how}"),
            export,
        ),
        (Err(why), true) => Item::fail(
            STATE,
            format!("XDG_RUNTIME_DIR is unset and the fallback {why}"),
            format!("{export}, {other}"),
        ),
        (Err(why), false) if caller.rootless() => Item::fail(
            STATE,
            format!("{why} (XDG_RUNTIME_DIR is not your runtime dir)"),
            format!("{export}, {other}"),
        ),
        (Err(why), false) => {
            Item::fail(STATE, why, format!("make /run writable for root, {other}"))
        }
    }
}

/// `nsboot --root DIR check`: the state directory to judge instead of the default one.
pub static STATE_ROOT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

fn state(caller: &Caller) -> Item {
    let xdg = std::env::var("XDG_RUNTIME_DIR")
        .ok()
        .filter(|x| !x.is_empty());
    let dir = match STATE_ROOT.get() {
        Some(root) => root.clone(),
        // The caller is this process: the state part's own rule says where its root is.
        None => crate::state::default_root(None),
    };
    let run_user = Path::new("/run/user").join(caller.uid.to_string());
    judge_state(
        caller,
        xdg.is_some(),
        usable(&dir, caller.uid),
        run_user.is_dir(),
    )
}

/// How `do --overlay` will write: real root with the kernel's overlayfs; rootless through
/// fuse-overlayfs when it and /dev/fuse are usable, otherwise a warning (not a failure:
/// only writes below host root's directories are refused).
fn fuse(caller: &Caller) -> Item {
    use crate::rootfs::overlay::fuse;
    if !caller.rootless() {
        return Item::ok(FUSE, "real root: --overlay uses the kernel's overlayfs");
    }
    match fuse::find(Path::new("/"), std::env::var_os("PATH")) {
        Ok(program) => Item::ok(
            FUSE,
            format!(
                "{} and /dev/fuse usable: --overlay writes anywhere",
                program.display()
            ),
        ),
        Err(why) => {
            let (detail, fix) = fuse::fallback(&why);
            Item::warn(FUSE, detail, fix)
        }
    }
}

pub fn items(caller: &Caller) -> Vec<Item> {
    vec![seccomp(), cgroup(caller), state(caller), fuse(caller)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Status;
    use nix::errno::Errno;

    #[test]
    fn seccomp_needs_prctl_and_filters() {
        let all = Some("kill_process kill_thread trap errno user_notif trace log allow\n");
        assert_eq!(judge_seccomp(Ok(0), true, all).status, Status::Ok);
        assert!(judge_seccomp(Ok(2), true, all).detail.contains("stacks"));
        assert_eq!(
            judge_seccomp(Err(Errno::EINVAL), false, None).status,
            Status::Fail
        );
        assert_eq!(judge_seccomp(Ok(0), true, None).status, Status::Fail);
    }

    #[test]
    fn state_item_warns_on_fallback_and_fails_when_unusable() {
        let user = Caller {
            uid: 1000,
            gid: 1000,
            name: Some("alice".into()),
            real_root: false,
            root_in_userns: false,
        };
        let fallback = judge_state(
            &user,
            false,
            Ok("/tmp/nsboot-1000 (exists, writable)".into()),
            true,
        );
        assert_eq!(fallback.status, Status::Warn);
        assert_eq!(
            fallback.fix.as_deref(),
            Some("run: export XDG_RUNTIME_DIR=/run/user/$(id -u)")
        );
        let no_session = judge_state(&user, false, Ok("x".into()), false);
        assert!(no_session
            .fix
            .unwrap()
            .contains("sudo loginctl enable-linger alice"));
        let foreign = judge_state(
            &user,
            true,
            Err("/root/nsboot is not writable by you".into()),
            true,
        );
        assert_eq!(foreign.status, Status::Fail);
        assert!(foreign
            .fix
            .unwrap()
            .ends_with("or pass --root DIR with a directory of yours"));
        let root = Caller {
            uid: 0,
            gid: 0,
            name: None,
            real_root: true,
            root_in_userns: false,
        };
        assert_eq!(
            judge_state(&root, false, Ok("/run/nsboot".into()), false).status,
            Status::Ok
        );
    }

    #[test]
    fn unified_cgroup_line_is_found() {
        assert_eq!(
            unified_path("4:memory:/x\n0::/user.slice/u.scope\n"),
            Some("/user.slice/u.scope")
        );
        assert_eq!(unified_path("4:memory:/x\n"), None);
    }
}
