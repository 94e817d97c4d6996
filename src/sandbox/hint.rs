//! Why the kernel or a security layer refused the sandbox, and the fix: one diagnosis, used
//! by the launch's errors and by `nsboot check` alike.
//!
//! The refusals of an unprivileged sandbox come from few places: the sysctls that gate user
//! namespaces, AppArmor's restriction of them (Ubuntu 23.10 and later: the namespace is made,
//! but has no capabilities, so the supervisor's first privileged step fails), and the seccomp
//! profile of a container nsboot runs in (Docker's, podman's and CI jobs' `container:`), which
//! answers clone/unshare of a user namespace and sethostname with EPERM or ENOSYS.

use crate::sys::Errno;

pub const APPARMOR_SYSCTL: &str = "kernel.apparmor_restrict_unprivileged_userns";
pub const USERNS_CLONE_SYSCTL: &str = "kernel.unprivileged_userns_clone";
pub const MAX_USERNS_SYSCTL: &str = "user.max_user_namespaces";
/// Why a fresh proc is refused inside another container (the root setup says it too).
pub use crate::rootfs::{NESTED_PROC, NESTED_PROC_FIX};
pub const CONTAINER_SECCOMP: &str = "the container's seccomp profile forbids user namespaces: run it with --security-opt seccomp=unconfined";

/// A sysctl's value; None when this kernel has no such file (or /proc/sys is masked).
pub fn sysctl(name: &str) -> Option<String> {
    let path = format!("/proc/sys/{}", name.replace('.', "/"));
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// This process's AppArmor label ("unconfined", "nsboot (unconfined)", ...), if AppArmor is on.
pub fn apparmor_label() -> Option<String> {
    [
        "/proc/self/attr/apparmor/current",
        "/proc/self/attr/current",
    ]
    .iter()
    .find_map(|p| std::fs::read_to_string(p).ok())
    .map(|s| s.trim_end_matches(['\0', '\n']).to_string())
    .filter(|s| !s.is_empty())
}

/// Whether AppArmor takes the capabilities of the user namespaces this process makes: the
/// restriction is on and no profile of ours allows `userns,` (an unconfined label gets the
/// `unprivileged_userns` profile at unshare), we already run under that profile, or a profile
/// in enforce mode confines us (one without `userns,` refuses the namespace itself).
pub fn apparmor_restricts(label: Option<&str>, restrict: Option<&str>) -> bool {
    let label = label.unwrap_or("unconfined");
    label.starts_with("unprivileged_userns")
        || label.ends_with(" (enforce)")
        || (restrict == Some("1") && label == "unconfined")
}

fn apparmor_restricts_here() -> bool {
    !crate::idmap::Caller::current().real_root
        && apparmor_restricts(
            apparmor_label().as_deref(),
            sysctl(APPARMOR_SYSCTL).as_deref(),
        )
}

/// The fix for AppArmor's restriction, with this binary's path: the sysctl's restriction
/// (Ubuntu), or a profile that confines this binary.
pub fn apparmor_fix() -> String {
    let exe = exe();
    let exe = exe.display();
    match apparmor_label().filter(|l| l.ends_with(" (enforce)")) {
        Some(label) if !label.starts_with("unprivileged_userns") => format!(
            "the AppArmor profile {label} confines {exe} without user namespaces or the capabilities in them: add `userns,` and `capability,` to it, or replace it with `sudo {exe} setup apparmor`"
        ),
        _ => format!(
            "AppArmor restricts unprivileged user namespaces ({APPARMOR_SYSCTL}=1) and no profile allows them for {exe}: run `sudo {exe} setup apparmor` (or sudo sysctl -w {APPARMOR_SYSCTL}=0)"
        ),
    }
}

/// This binary, as an AppArmor profile must name it.
pub fn exe() -> std::path::PathBuf {
    std::fs::read_link("/proc/self/exe").unwrap_or_else(|_| "/usr/local/bin/nsboot".into())
}

/// Whether we run in a container, or under a seccomp filter of one: /.dockerenv,
/// /run/.containerenv, or `Seccomp: 2` in /proc/self/status.
pub fn in_container() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    container_markers(
        std::path::Path::new("/.dockerenv").exists()
            || std::path::Path::new("/run/.containerenv").exists(),
        &status,
    )
}

pub fn container_markers(marker_file: bool, status: &str) -> bool {
    marker_file || seccomp_filtered(status)
}

/// Whether a seccomp filter is on (`Seccomp: 2`): only then can seccomp be what refused.
pub fn seccomp_filtered(status: &str) -> bool {
    status
        .lines()
        .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["Seccomp:", "2"])
}

fn seccomp_filtered_here() -> bool {
    seccomp_filtered(&std::fs::read_to_string("/proc/self/status").unwrap_or_default())
}

/// Why creating a user namespace failed with `errno`, and the fix (None: no known cause).
pub fn userns_refused(errno: Errno) -> Option<String> {
    let sudo = crate::idmap::Caller::current().sudo();
    let value = |name| sysctl(name).unwrap_or_default();
    match errno.0 {
        libc::ENOSPC | libc::EUSERS if value(MAX_USERNS_SYSCTL) == "0" => Some(format!(
            "user namespaces are disabled: run: {sudo}sysctl -w {MAX_USERNS_SYSCTL}=15000"
        )),
        libc::ENOSPC | libc::EUSERS => Some(format!(
            "a user namespace limit is reached ({MAX_USERNS_SYSCTL}, or the nesting depth of 32): run: {sudo}sysctl -w {MAX_USERNS_SYSCTL}=15000, or run nsboot fewer user namespaces deep"
        )),
        libc::EPERM | libc::EACCES | libc::ENOSYS => {
            if value(USERNS_CLONE_SYSCTL) == "0" && errno.0 != libc::ENOSYS {
                Some(format!("unprivileged user namespaces are disabled ({USERNS_CLONE_SYSCTL}=0): run: {sudo}sysctl -w {USERNS_CLONE_SYSCTL}=1"))
            } else if apparmor_restricts_here() {
                Some(apparmor_fix())
            } else if seccomp_filtered_here() {
                Some(CONTAINER_SECCOMP.into())
            } else if errno.0 == libc::ENOSYS {
                Some("a seccomp filter answers clone/unshare with ENOSYS: run nsboot where user namespaces are allowed".into())
            } else {
                None
            }
        }
        _ => None,
    }
}

/// The cause of a supervisor step refused with EPERM/EACCES (its error's text), if known.
pub fn step_refused(error: &str) -> Option<String> {
    let refused = [Errno(libc::EPERM), Errno(libc::EACCES)]
        .iter()
        .any(|e| error.contains(&e.to_string()));
    if !refused {
        return None;
    }
    if apparmor_restricts_here() {
        return Some(apparmor_fix());
    }
    error
        .contains("setting hostname")
        .then(|| hostname_refused_fix(in_container()))
}

/// The fix when sethostname is refused in the sandbox's own UTS namespace: only a seccomp
/// filter (a container's profile) does that.
pub fn hostname_refused_fix(container: bool) -> String {
    let fix = "leave hostname out of config.json (`nsboot spec` does here)";
    if container {
        format!("the container's seccomp profile forbids sethostname: {fix}, or run the container with --security-opt seccomp=unconfined")
    } else {
        format!("a seccomp filter forbids sethostname: {fix}")
    }
}

/// The clone error's tail: the cause and fix, or where to look.
pub(super) fn clone_hint(errno: Errno) -> String {
    match userns_refused(errno) {
        Some(h) => format!(": {h}"),
        None => " (run `nsboot check` for a diagnosis)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apparmor_blames_only_an_unprofiled_binary() {
        assert!(apparmor_restricts(Some("unconfined"), Some("1")));
        assert!(apparmor_restricts(None, Some("1")));
        assert!(apparmor_restricts(
            Some("unprivileged_userns (enforce)"),
            None
        ));
        assert!(apparmor_restricts(Some("nsboot-nouserns (enforce)"), None));
        assert!(!apparmor_restricts(Some("nsboot (unconfined)"), Some("1")));
        assert!(!apparmor_restricts(Some("nsboot (complain)"), Some("1")));
        assert!(!apparmor_restricts(Some("unconfined"), Some("0")));
        assert!(!apparmor_restricts(Some("unconfined"), None));
    }

    #[test]
    fn seccomp_mode_2_or_a_marker_file_is_a_container() {
        assert!(container_markers(false, "Name:\tx\nSeccomp:\t2\n"));
        assert!(container_markers(true, "Seccomp:\t0\n"));
        assert!(!container_markers(
            false,
            "Seccomp:\t0\nSeccomp_filters:\t2\n"
        ));
    }
}
