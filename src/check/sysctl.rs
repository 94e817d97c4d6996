//! The sysctls that gate unprivileged user namespaces. Only an unprivileged caller is bound
//! by them (root has CAP_SYS_ADMIN), so for root a restriction is reported but not a failure.
//! A switch this kernel does not have is not listed. AppArmor's restriction is judged as the
//! launch's errors judge it (`sandbox::hint`): it binds only a binary without a profile.

use crate::sandbox::hint::{
    self, APPARMOR_SYSCTL as APPARMOR, MAX_USERNS_SYSCTL as MAX_USERNS,
    USERNS_CLONE_SYSCTL as USERNS_CLONE,
};

use super::{Caller, Item};

/// Judges one sysctl from its value (None: absent). `root`: the caller is euid 0.
/// `has_userns`: /proc/self/ns/user exists. `label`: this process's AppArmor label.
pub fn judge(
    name: &str,
    value: Option<&str>,
    root: bool,
    has_userns: bool,
    sudo: &str,
    label: Option<&str>,
) -> Item {
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
        (APPARMOR, Some(v), _) if !root && hint::apparmor_restricts(label, value) => Item::fail(
            name,
            format!("{name}={v}: AppArmor denies capabilities in unprivileged user namespaces"),
            format!(
                "run: {sudo}nsboot setup apparmor (a profile for this binary with \"userns,\"), or {}",
                set("0")
            ),
        ),
        (APPARMOR, Some(v), _) if !root => Item::ok(
            name,
            format!(
                "{v} (this binary runs under AppArmor profile {:?}, which allows user namespaces)",
                label.unwrap_or("")
            ),
        ),
        (APPARMOR, Some(v), _) => Item::ok(name, format!("{v} (root is not restricted)")),
        (_, Some(v), _) => Item::ok(name, v),
    }
}

pub fn items(caller: &Caller) -> Vec<Item> {
    let root = caller.uid == 0;
    let has_userns = std::path::Path::new("/proc/self/ns/user").exists();
    let label = hint::apparmor_label();
    [MAX_USERNS, USERNS_CLONE, APPARMOR]
        .into_iter()
        .filter_map(|name| {
            let value = hint::sysctl(name);
            // A switch this kernel lacks restricts nothing: not worth a line.
            if value.is_none() && name != MAX_USERNS {
                return None;
            }
            let sudo = caller.sudo();
            Some(judge(
                name,
                value.as_deref(),
                root,
                has_userns,
                sudo,
                label.as_deref(),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Status;

    #[test]
    fn max_user_namespaces_must_be_positive() {
        assert_eq!(
            judge(MAX_USERNS, Some("96364"), false, true, "sudo ", None).status,
            Status::Ok
        );
        let zero = judge(MAX_USERNS, Some("0"), false, true, "sudo ", None);
        assert_eq!(zero.status, Status::Fail);
        assert_eq!(
            zero.fix.as_deref(),
            Some("run: sudo sysctl -w user.max_user_namespaces=15000")
        );
        assert_eq!(
            judge(MAX_USERNS, None, true, false, "", None).status,
            Status::Fail
        );
        assert_eq!(
            judge(MAX_USERNS, None, false, true, "", None).status,
            Status::Ok
        );
    }

    #[test]
    fn restrictions_fail_unprivileged_only() {
        let aa = judge(APPARMOR, Some("1"), false, true, "sudo ", None);
        assert_eq!(aa.status, Status::Fail);
        assert_eq!(
            aa.fix.as_deref(),
            Some("run: sudo nsboot setup apparmor (a profile for this binary with \"userns,\"), or run: sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0")
        );
        let profiled = judge(
            APPARMOR,
            Some("1"),
            false,
            true,
            "sudo ",
            Some("nsboot (unconfined)"),
        );
        assert_eq!(profiled.status, Status::Ok);
        assert_eq!(
            judge(APPARMOR, Some("1"), true, true, "", None).status,
            Status::Ok
        );
        assert_eq!(
            judge(APPARMOR, Some("0"), false, true, "sudo ", None).status,
            Status::Ok
        );
        assert_eq!(
            judge(USERNS_CLONE, Some("0"), false, true, "sudo ", None).status,
            Status::Fail
        );
        assert_eq!(
            judge(USERNS_CLONE, Some("1"), false, true, "sudo ", None).status,
            Status::Ok
        );
        assert_eq!(
            judge(USERNS_CLONE, None, false, true, "sudo ", None).status,
            Status::Ok
        );
    }
}
