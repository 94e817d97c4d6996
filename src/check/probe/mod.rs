//! Real probes: what the kernel does, not what the sysctls suggest (see `child` for how they
//! run), and what their outcome means for `nsboot run`.

mod child;

pub use child::{hostname_allowed, ProbeError, Step};

use crate::check::{Caller, Item};
use crate::sandbox::hint;
use crate::sys::Errno;

/// (major, minor) of a kernel release such as "6.1.0-18-amd64".
pub fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut it = release.split(|c: char| !c.is_ascii_digit());
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

const USERNS: &str = "user namespace probe";
const OVERLAY: &str = "overlayfs in a user namespace";
const PROC: &str = "fresh /proc in a new pid namespace";
const HOSTNAME: &str = "hostname";

/// The fix for a failed user-namespace step: the diagnosis the launch's errors give.
fn userns_fix(step: Step, errno: Errno) -> String {
    use crate::sandbox::hint;
    let known = match step {
        Step::Unshare if errno.0 == libc::EINVAL => {
            Some("use a kernel built with CONFIG_USER_NS=y".into())
        }
        Step::Unshare => hint::userns_refused(errno),
        _ => hint::step_refused(&errno.to_string()),
    };
    known.unwrap_or_else(|| {
        "a security module denies it: run `nsboot --debug do -- true` and report the failing step"
            .into()
    })
}

pub fn userns_items(res: &Result<(), ProbeError>, release: &str) -> [Item; 2] {
    let kernel = match kernel_version(release) {
        Some(v) if v < (5, 11) => format!("Linux {release} is older than 5.11"),
        _ => format!("Linux {release}"),
    };
    let overlay_fix =
        "nsboot do --overlay and spec mounts of type overlay fail rootless here: run without --overlay, use bind mounts, or Linux >= 5.11";
    match res {
        Ok(()) => [
            Item::ok(
                USERNS,
                "unshare user+mount, single-id map, tmpfs mount: all work",
            ),
            Item::ok(OVERLAY, format!("overlay mount and write work ({kernel})")),
        ],
        Err(e @ ProbeError::Step { step, .. }) if *step > Step::Tmpfs => [
            Item::ok(
                USERNS,
                "unshare user+mount, single-id map, tmpfs mount: all work",
            ),
            Item::warn(OVERLAY, format!("{e}; {kernel}"), overlay_fix),
        ],
        Err(e) => {
            let fix = match e {
                ProbeError::Step { step, errno } => userns_fix(*step, *errno),
                ProbeError::Died { .. } => userns_fix(Step::Unshare, Errno(libc::EPERM)),
                ProbeError::Setup { .. } => {
                    "check that /tmp (or $TMPDIR) is writable and the process limit is not reached"
                        .into()
                }
            };
            [
                Item::fail(USERNS, e.to_string(), fix),
                Item::warn(
                    OVERLAY,
                    "not probed: the user namespace probe failed",
                    "fix the user namespace probe first",
                ),
            ]
        }
    }
}

pub fn proc_item(res: &Result<(), ProbeError>) -> Item {
    match res {
        Ok(()) => Item::ok(PROC, "mounts"),
        Err(ProbeError::Step {
            step: Step::Proc,
            errno,
        }) if errno.nix() == nix::errno::Errno::EPERM => {
            Item::warn(PROC, hint::NESTED_PROC, hint::NESTED_PROC_FIX)
        }
        Err(
            e @ ProbeError::Step {
                step: Step::Proc, ..
            },
        ) => Item::warn(
            PROC,
            e.to_string(),
            "nsboot will bind the supervisor's /proc; report this errno if runs fail",
        ),
        Err(e) => Item::warn(
            PROC,
            format!("not probed: {e}"),
            "fix the user namespace probe first",
        ),
    }
}

/// sethostname refused: a spec with a hostname fails here (`nsboot spec` and `do` set none).
pub fn hostname_item(res: &Result<(), ProbeError>) -> Item {
    use crate::sandbox::hint;
    match res {
        Ok(()) => Item::ok(HOSTNAME, "sethostname works in the sandbox's UTS namespace"),
        Err(
            e @ ProbeError::Step {
                step: Step::Hostname,
                ..
            },
        ) => Item::warn(
            HOSTNAME,
            format!("{e}: a config.json with hostname fails here"),
            hint::hostname_refused_fix(hint::in_container()),
        ),
        Err(e) => Item::warn(
            HOSTNAME,
            format!("not probed: {e}"),
            "fix the user namespace probe first",
        ),
    }
}

/// The user namespace, fresh /proc, hostname and overlay items, from real probes.
pub fn items(caller: &Caller) -> Vec<Item> {
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_else(|_| "(unknown)".into());
    let probes = child::run(caller);
    let [u, o] = userns_items(&probes.userns, &release);
    vec![
        u,
        proc_item(&probes.proc),
        hostname_item(&probes.hostname),
        o,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Status;

    #[test]
    fn kernel_versions_parse() {
        assert_eq!(kernel_version("6.1.0-18-amd64"), Some((6, 1)));
        assert_eq!(kernel_version("5.10.209"), Some((5, 10)));
        assert_eq!(kernel_version("weird"), None);
    }

    #[test]
    fn failure_step_decides_which_item_fails() {
        let step = |step, errno| {
            Err(ProbeError::Step {
                step,
                errno: Errno(errno),
            })
        };
        let [u, o] = userns_items(&step(Step::Overlay, libc::EINVAL), "5.10.0");
        assert_eq!((u.status, o.status), (Status::Ok, Status::Warn));
        assert!(o
            .detail
            .contains("mount overlay: Invalid argument (EINVAL)"));
        assert!(o.detail.contains("older than 5.11"));
        let [u, o] = userns_items(&step(Step::UidMap, libc::EPERM), "6.1.0");
        assert_eq!((u.status, o.status), (Status::Fail, Status::Warn));
        assert!(u
            .detail
            .starts_with("write /proc/self/uid_map: Operation not permitted (EPERM)"));
        let [u, _] = userns_items(&step(Step::Unshare, libc::ENOSPC), "6.1.0");
        assert!(u
            .fix
            .unwrap()
            .contains("sysctl -w user.max_user_namespaces="));
        let [u, o] = userns_items(&Ok(()), "6.1.0");
        assert_eq!((u.status, o.status), (Status::Ok, Status::Ok));
    }

    #[test]
    fn proc_eperm_is_the_nested_container_warning() {
        let eperm = Err(ProbeError::Step {
            step: Step::Proc,
            errno: Errno(libc::EPERM),
        });
        let item = proc_item(&eperm);
        assert_eq!(item.status, Status::Warn);
        assert!(item
            .detail
            .starts_with("nested container: the outer container's overmounts on /proc and /sys"));
        assert_eq!(proc_item(&Ok(())).status, Status::Ok);
    }
}
