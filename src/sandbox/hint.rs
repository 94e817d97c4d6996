//! Why the kernel refused the sandbox's namespaces, and the fix.

use crate::sys::Errno;

/// A fix for the usual reasons clone(CLONE_NEWUSER) is refused.
pub(super) fn clone_hint(errno: Errno) -> String {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    if errno.0 != libc::EPERM && errno.0 != libc::ENOSPC {
        return String::new();
    }
    if read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == "1" {
        return ": unprivileged user namespaces are restricted by AppArmor: sysctl kernel.apparmor_restrict_unprivileged_userns=0, or install a profile for nsboot".into();
    }
    if read("/proc/sys/kernel/unprivileged_userns_clone") == "0" {
        return ": unprivileged user namespaces are disabled: sysctl kernel.unprivileged_userns_clone=1".into();
    }
    if read("/proc/sys/user/max_user_namespaces") == "0" {
        return ": user namespaces are disabled: sysctl user.max_user_namespaces=15000".into();
    }
    " (run `nsboot check` for a diagnosis)".into()
}
