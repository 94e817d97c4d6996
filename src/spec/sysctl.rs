//! linux.sysctl, as runc checks it: only the sysctls of namespaces the container has of its
//! own (net.* with a network namespace, the IPC ones with an ipc namespace,
//! kernel.domainname with a uts namespace). Any other key would change the host's kernel.
//! Keys are written below /proc/sys, so one that could leave it (`..`, empty parts) is refused.

use std::os::unix::fs::MetadataExt;

use oci_spec::runtime::LinuxNamespaceType as Ns;

use super::{Spec, SpecError};

/// The IPC namespace's sysctls besides fs.mqueue.*.
const IPC: [&str; 8] = [
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// The path below /proc/sys of a key: runc takes both `.` and `/` as separators.
pub fn proc_path(key: &str) -> String {
    key.replace('.', "/")
}

pub fn check(spec: &Spec) -> Result<(), SpecError> {
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    // A namespace of its own: a new one, or one joined by path that is not the caller's (as
    // runc checks a joined network namespace: a pod's sandbox's is fine, the host's is not).
    let own = |typ: Ns, proc_name: &str| {
        linux.namespaces().iter().flatten().any(|n| {
            n.typ() == typ
                && match n.path() {
                    None => true,
                    Some(p) => {
                        let ours = std::fs::metadata(format!("/proc/self/ns/{proc_name}"));
                        match (std::fs::metadata(p), ours) {
                            (Ok(a), Ok(b)) => (a.dev(), a.ino()) != (b.dev(), b.ino()),
                            // A dead path is refused by name where the namespace is joined.
                            _ => true,
                        }
                    }
                }
        })
    };
    let mut keys: Vec<&String> = linux.sysctl().iter().flatten().map(|(k, _)| k).collect();
    keys.sort();
    for key in keys {
        let value = &linux.sysctl().as_ref().expect("listed")[key];
        let refuse = |why: String| SpecError::invalid(format!("linux.sysctl[{key:?}]"), why);
        if value.contains('\0') {
            return Err(refuse("the value holds a NUL byte: remove it".into()));
        }
        let name = key.replace('/', ".");
        if key.contains('\0') || name.split('.').any(|part| part.is_empty() || part == "..") {
            return Err(refuse(
                "not a sysctl name (empty parts, \"..\", a leading \"/\" or a NUL): use the dotted name, e.g. net.ipv4.ip_forward".into(),
            ));
        }
        let (needs, ns, proc_name) = if IPC.contains(&name.as_str())
            || name.starts_with("fs.mqueue.")
        {
            (Ns::Ipc, "ipc", "ipc")
        } else if name.starts_with("net.") {
            (Ns::Network, "network", "net")
        } else if name == "kernel.domainname" {
            if spec.domainname().as_deref().is_some_and(|d| !d.is_empty()) {
                return Err(refuse(
                    "conflicts with the domainname field: set one of them".into(),
                ));
            }
            (Ns::Uts, "uts", "uts")
        } else if name == "kernel.hostname" {
            return Err(refuse(
                "conflicts with the hostname field: set the hostname there".into(),
            ));
        } else {
            return Err(refuse(
                "is not in a separate kernel namespace: it would change the host's kernel; remove it (or set it on the host)".into(),
            ));
        };
        if !own(needs, proc_name) {
            return Err(refuse(format!(
                "is not allowed in the host's {ns} namespace: add {{\"type\":\"{ns}\"}} to linux.namespaces or remove it"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(sysctl: &str, namespaces: &str) -> Spec {
        let json = format!(
            r#"{{"ociVersion": "1.0.2", "root": {{"path": "rootfs"}},
              "linux": {{"namespaces": [{namespaces}], "sysctl": {sysctl}}}}}"#
        );
        serde_json::from_str(&json).unwrap()
    }

    fn refusal(sysctl: &str, namespaces: &str) -> Option<String> {
        check(&spec(sysctl, namespaces))
            .err()
            .map(|e| e.to_string())
    }

    const ALL: &str = r#"{"type":"network"},{"type":"ipc"},{"type":"uts"}"#;

    #[test]
    fn namespaced_sysctls_with_their_namespace_pass() {
        for key in [
            "net.ipv4.ping_group_range",
            "net/ipv4/ip_forward",
            "kernel.shmmax",
            "fs.mqueue.msg_max",
            "kernel.domainname",
        ] {
            assert_eq!(refusal(&format!(r#"{{"{key}": "1"}}"#), ALL), None, "{key}");
        }
    }

    #[test]
    fn sysctls_outside_the_containers_namespaces_are_refused() {
        let cases = [
            (
                r#"{"net.ipv4.ip_forward": "1"}"#,
                r#"{"type":"ipc"}"#,
                "host's network",
            ),
            (
                r#"{"kernel.shmmax": "1"}"#,
                r#"{"type":"network"}"#,
                "host's ipc",
            ),
            (
                r#"{"net.ipv4.ip_forward": "1"}"#,
                r#"{"type":"network","path":"/proc/self/ns/net"}"#,
                "host's network",
            ),
            (
                r#"{"kernel.panic": "1"}"#,
                ALL,
                "not in a separate kernel namespace",
            ),
            (r#"{"kernel.hostname": "x"}"#, ALL, "hostname field"),
            (r#"{"../x": "1"}"#, ALL, "not a sysctl name"),
            (r#"{"net.ipv4..x": "1"}"#, ALL, "not a sysctl name"),
            (r#"{"/net/ipv4/x": "1"}"#, ALL, "not a sysctl name"),
            (r#"{"net.ipv4.x": "1\u0000"}"#, ALL, "NUL"),
        ];
        for (sysctl, ns, why) in cases {
            let err = refusal(sysctl, ns).unwrap_or_else(|| panic!("{sysctl} passed"));
            assert!(err.starts_with("linux.sysctl[\""), "{err}");
            assert!(err.contains(why), "{sysctl}: {err}");
        }
    }
}
