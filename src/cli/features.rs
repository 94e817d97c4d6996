//! `nsboot features`: the runtime-spec features document (what this runtime implements), so
//! that engines can probe nsboot instead of guessing.

// Print the features nsboot implements (runtime-spec features.md, JSON).
#[derive(Debug, clap::Args)]
pub struct FeaturesArgs {}

pub fn document() -> serde_json::Value {
    use crate::spec::fields::{self, Rule};
    let caps: Vec<String> = caps::all().into_iter().map(|c| c.to_string()).collect();
    let mut caps = caps;
    caps.sort();
    let applied = |path: &str| {
        matches!(
            fields::rule(path),
            Some(Rule::Applied(_) | Rule::Checked(_))
        )
    };
    let mut refused = Vec::new();
    fields::walk(|path, f| {
        if matches!(f.rule, Rule::Refused(_) | Rule::RefusedBut(..)) {
            refused.push(path.to_string());
        }
    });
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.2.0",
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": fields::MOUNT_OPTIONS,
        "linux": {
            "namespaces": fields::NAMESPACES,
            "capabilities": caps,
            "cgroup": { "v1": true, "v2": true, "systemd": true, "systemdUser": true, "rdma": true },
            "seccomp": {
                "enabled": true,
                // SCMP_ACT_NOTIFY with linux.seccomp.listenerPath (never as the default).
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                    "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                    "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64",
                    "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32",
                    "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_RISCV64",
                    "SCMP_ARCH_S390", "SCMP_ARCH_S390X", "SCMP_ARCH_X32", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64"],
                "knownFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
                "supportedFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]
            },
            "apparmor": { "enabled": applied("process.apparmorProfile") },
            "selinux": { "enabled": applied("process.selinuxLabel") },
            "intelRdt": { "enabled": applied("linux.intelRdt") },
            "mountExtensions": { "idmap": { "enabled": applied("mounts.uidMappings") } },
            "netDevices": { "enabled": applied("linux.netDevices") },
            "memoryPolicy": {
                "modes": crate::spec::tuning::MPOL_MODES.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
                "flags": crate::spec::tuning::MPOL_FLAGS.iter().map(|(n, _)| *n).collect::<Vec<_>>()
            }
        },
        "annotations": {
            // checkpoint and restore drive CRIU when it is installed, as runc does.
            "org.opencontainers.runc.checkpoint.enabled": "true",
            "io.github.nsboot.version": env!("CARGO_PKG_VERSION"),
            // Every runtime-spec field nsboot refuses when set (docs/spec-fields.md).
            "io.github.nsboot.refusedFields": refused.join(",")
        }
    })
}

pub fn run(_args: FeaturesArgs) -> i32 {
    crate::state::lifecycle::out!(
        "{}",
        serde_json::to_string_pretty(&document()).unwrap_or_default()
    );
    0
}

#[cfg(test)]
mod tests {
    #[test]
    fn document_names_every_hook_and_core_namespaces() {
        let d = super::document();
        assert_eq!(d["hooks"].as_array().map(Vec::len), Some(6));
        assert!(d["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .contains(&"user".into()));
        assert!(d["linux"]["capabilities"]
            .as_array()
            .unwrap()
            .contains(&"CAP_SYS_ADMIN".into()));
    }

    /// What the document says follows the field table: what validation refuses is not
    /// announced, and the refused fields are listed.
    #[test]
    fn document_tells_what_the_spec_table_refuses() {
        let d = super::document();
        let ns = d["linux"]["namespaces"].as_array().unwrap();
        assert!(ns.contains(&"time".into()), "{ns:?}");
        let actions = d["linux"]["seccomp"]["actions"].as_array().unwrap();
        assert!(actions.contains(&"SCMP_ACT_NOTIFY".into()));
        for off in ["apparmor", "selinux", "intelRdt", "netDevices"] {
            assert_eq!(d["linux"][off]["enabled"], false, "{off}");
        }
        assert_eq!(d["linux"]["mountExtensions"]["idmap"]["enabled"], false);
        let refused = d["annotations"]["io.github.nsboot.refusedFields"]
            .as_str()
            .unwrap();
        assert!(
            !refused.split(',').any(|f| f == "linux.sysctl"),
            "{refused}"
        );
        for field in [
            "process.scheduler",
            "linux.personality",
            "linux.timeOffsets",
        ] {
            assert!(
                !refused.split(',').any(|f| f == field),
                "{field}: {refused}"
            );
        }
        let field = "mounts[].uidMappings";
        assert!(refused.split(',').any(|f| f == field), "{field}: {refused}");
    }
}
