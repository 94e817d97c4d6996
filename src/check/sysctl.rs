//! The sysctls that gate unprivileged user namespaces. Only an unprivileged caller is bound
//! by them (root has CAP_SYS_ADMIN), so for root a restriction is reported but not a failure.

use super::{Caller, Item};

const MAX_USERNS: &str = "user.max_user_namespaces";
const USERNS_CLONE: &str = "kernel.unprivileged_userns_clone";
const APPARMOR: &str = "kernel.apparmor_restrict_unprivileged_userns";

/// A sysctl's value: None when the file does not exist on this kernel.
fn read(name: &str) -> Option<String> {
    let path = format!("/proc/sys/{}", name.replace('.', "/"));
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// Judges one sysctl from its value (None: absent). `root`: the caller is euid 0.
/// `has_userns`: /proc/self/ns/user exists.
pub fn judge(name: &str, value: Option<&str>, root: bool, has_userns: bool, sudo: &str) -> Item {
    let n: Option<i64> = value.and_then(|v| v.parse().ok());
    let set = |v: &str| format!("run: {sudo}sysctl -w {name}={v}");
    let restricted = |item: Item| {
        if root {
            Item::ok(name, format!("{} (root is not restricted)", item.detail))
        } else {
            item
        }
    };
    match (name, value, n) {
        // /proc/self/ns/user exists: the kernel has user namespaces, /proc/sys is masked (as in
        // a container); the probe decides.
        (MAX_USERNS, None, _) if has_userns => Item::ok(
            name,
            "unreadable (/proc/sys is masked); see the probe below",
        ),
        (MAX_USERNS, None, _) => Item::fail(
            name,
            "absent: this kernel has no user namespaces",
            "use a kernel built with CONFIG_USER_NS=y",
        ),
        (MAX_USERNS, Some(v), Some(n)) if n > 0 => Item::ok(name, v),
        (MAX_USERNS, Some(v), _) => Item::fail(
            name,
            format!("{name}={v}: no user namespaces can be created"),
            set("15000"),
        ),
        (_, None, _) => Item::ok(name, "absent on this kernel (no restriction)"),
        (USERNS_CLONE, Some(v), Some(1)) => Item::ok(name, v),
        (USERNS_CLONE, Some(v), _) => restricted(Item::fail(
            name,
            format!("{name}={v}: only root may create user namespaces"),
            format!("{}, and persist it in /etc/sysctl.d/", set("1")),
        )),
        (APPARMOR, Some(v), Some(0)) => Item::ok(name, v),
        (APPARMOR, Some(v), _) => restricted(Item::fail(
            name,
            format!("{name}={v}: AppArmor denies capabilities in unprivileged user namespaces"),
            format!(
                "{}, or install an AppArmor profile for nsboot (\"userns,\" rule)",
                set("0")
            ),
        )),
        (_, Some(v), _) => Item::ok(name, v),
    }
}

pub fn items(caller: &Caller) -> Vec<Item> {
    let root = caller.uid == 0;
    let has_userns = std::path::Path::new("/proc/self/ns/user").exists();
    [MAX_USERNS, USERNS_CLONE, APPARMOR]
        .into_iter()
        .map(|name| judge(name, read(name).as_deref(), root, has_userns, caller.sudo()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Status;

    #[test]
    fn max_user_namespaces_must_be_positive() {
        assert_eq!(
            judge(MAX_USERNS, Some("96364"), false, true, "sudo ").status,
            Status::Ok
        );
        let zero = judge(MAX_USERNS, Some("0"), false, true, "sudo ");
        assert_eq!(zero.status, Status::Fail);
        assert_eq!(
            zero.fix.as_deref(),
            Some("run: sudo sysctl -w user.max_user_namespaces=15000")
        );
        assert_eq!(
            judge(MAX_USERNS, None, true, false, "").status,
            Status::Fail
        );
        assert_eq!(judge(MAX_USERNS, None, false, true, "").status, Status::Ok);
    }

    #[test]
    fn restrictions_fail_unprivileged_only() {
        let aa = judge(APPARMOR, Some("1"), false, true, "sudo ");
        assert_eq!(aa.status, Status::Fail);
        assert!(aa.fix.unwrap().starts_with(
            "run: sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or install an AppArmor profile"
        ));
        assert_eq!(
            judge(APPARMOR, Some("1"), true, true, "").status,
            Status::Ok
        );
        assert_eq!(
            judge(APPARMOR, Some("0"), false, true, "sudo ").status,
            Status::Ok
        );
        assert_eq!(
            judge(USERNS_CLONE, Some("0"), false, true, "sudo ").status,
            Status::Fail
        );
        assert_eq!(
            judge(USERNS_CLONE, Some("1"), false, true, "sudo ").status,
            Status::Ok
        );
        assert_eq!(
            judge(USERNS_CLONE, None, false, true, "sudo ").status,
            Status::Ok
        );
    }
}
