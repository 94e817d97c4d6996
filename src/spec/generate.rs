//! `nsboot spec`: runc's example config (`runc spec`, `runc spec --rootless`), and the
//! defaults it shares with `nsboot do`.

use std::path::PathBuf;

use oci_spec::runtime::{
    Capabilities, Capability, LinuxCapabilities, LinuxDeviceCgroup, LinuxIdMapping,
    LinuxIdMappingBuilder, LinuxNamespace, LinuxNamespaceType, LinuxResources, Mount,
    PosixRlimitBuilder, PosixRlimitType, Process, Root, User,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Spec;

pub(super) const OCI_VERSION: &str = "1.0.2";
pub(super) const DEFAULT_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// runc's: paths under /proc and /sys that leak host information or kernel interfaces.
pub(super) const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
    "/sys/devices/virtual/tpm",
];
pub(super) const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// runc's default capabilities, in the bounding, effective and permitted sets.
pub(super) fn default_capabilities() -> LinuxCapabilities {
    let set: Capabilities = [
        Capability::AuditWrite,
        Capability::Kill,
        Capability::NetBindService,
    ]
    .into_iter()
    .collect();
    let mut caps = LinuxCapabilities::default();
    caps.set_inheritable(None);
    caps.set_ambient(None);
    caps.set_bounding(Some(set.clone()));
    caps.set_effective(Some(set.clone()));
    caps.set_permitted(Some(set));
    caps
}

/// Five empty sets (oci-spec's `Default` is not empty).
pub(super) fn no_capabilities() -> LinuxCapabilities {
    let mut caps = LinuxCapabilities::default();
    caps.set_bounding(Some(Capabilities::new()));
    caps.set_effective(Some(Capabilities::new()));
    caps.set_inheritable(Some(Capabilities::new()));
    caps.set_permitted(Some(Capabilities::new()));
    caps.set_ambient(Some(Capabilities::new()));
    caps
}

pub(super) fn mount(dst: &str, typ: &str, src: &str, options: &[&str]) -> Mount {
    let mut m = Mount::default();
    m.set_destination(PathBuf::from(dst));
    m.set_typ(Some(typ.to_string()));
    m.set_source(Some(PathBuf::from(src)));
    m.set_options((!options.is_empty()).then(|| options.iter().map(|o| o.to_string()).collect()));
    m
}

pub(super) fn namespace(typ: LinuxNamespaceType) -> LinuxNamespace {
    let mut ns = LinuxNamespace::default();
    ns.set_typ(typ);
    ns
}

pub(super) fn id_map(container_id: u32, host_id: u32, size: u32) -> LinuxIdMapping {
    // (no setters on this type; the builder cannot fail with every field given)
    LinuxIdMappingBuilder::default()
        .container_id(container_id)
        .host_id(host_id)
        .size(size)
        .build()
        .expect("every field is set")
}

/// The process of runc's example: `sh` on a terminal, as root, runc's capabilities.
fn example_process() -> Process {
    let mut p = Process::default();
    p.set_terminal(Some(true));
    p.set_user(User::default());
    p.set_args(Some(vec!["sh".into()]));
    p.set_env(Some(vec![
        format!("PATH={DEFAULT_PATH}"),
        "TERM=xterm".into(),
    ]));
    p.set_cwd("/".into());
    p.set_no_new_privileges(Some(true));
    p.set_capabilities(Some(default_capabilities()));
    let nofile = PosixRlimitBuilder::default()
        .typ(PosixRlimitType::RlimitNofile)
        .hard(1024u64)
        .soft(1024u64)
        .build()
        .expect("every field is set");
    p.set_rlimits(Some(vec![nofile]));
    p
}

/// runc's example spec, or with `rootless` its `--rootless` form for host ids `uid`/`gid`:
/// a user namespace mapping root to them, the host's network, /sys bound from the host (a new
/// sysfs needs a network namespace of one's own), no `gid=5` on devpts (group 5 is not mapped),
/// no cgroup mount and no cgroup resources (nsboot manages no cgroups for unprivileged users).
pub fn generate(rootless: bool, uid: u32, gid: u32) -> Spec {
    let mut spec = Spec::default();
    spec.set_version(OCI_VERSION.into());
    let mut root = Root::default();
    root.set_path("rootfs".into());
    root.set_readonly(Some(true));
    spec.set_root(Some(root));
    spec.set_process(Some(example_process()));
    spec.set_hostname(Some("nsboot".into()));
    spec.set_annotations(None);
    let devpts: &[&str] = if rootless {
        &[
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
        ]
    } else {
        &[
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
            "gid=5",
        ]
    };
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &[]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount("/dev/pts", "devpts", "devpts", devpts),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
    ];
    if rootless {
        mounts.push(mount(
            "/sys",
            "none",
            "/sys",
            &["rbind", "nosuid", "noexec", "nodev", "ro"],
        ));
    } else {
        mounts.push(mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ));
        mounts.push(mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        ));
    }
    spec.set_mounts(Some(mounts));

    let mut linux = super::empty_linux();
    linux.set_masked_paths(Some(MASKED_PATHS.iter().map(|p| p.to_string()).collect()));
    linux.set_readonly_paths(Some(READONLY_PATHS.iter().map(|p| p.to_string()).collect()));
    use LinuxNamespaceType as Ns;
    let mut namespaces: Vec<_> = [Ns::Pid, Ns::Network, Ns::Ipc, Ns::Uts, Ns::Mount]
        .into_iter()
        .map(namespace)
        .collect();
    if rootless {
        namespaces.retain(|ns| ns.typ() != Ns::Network);
        namespaces.push(namespace(Ns::User));
        linux.set_uid_mappings(Some(vec![id_map(0, uid, 1)]));
        linux.set_gid_mappings(Some(vec![id_map(0, gid, 1)]));
    } else {
        // runc's deny-all device rule: nsboot ignores cgroup resources, but keeping runc's
        // example keeps the file usable with runc as well.
        let mut deny_all = LinuxDeviceCgroup::default();
        deny_all.set_allow(false);
        deny_all.set_access(Some("rwm".into()));
        let mut resources: LinuxResources =
            serde_json::from_str("{}").expect("empty resources decode");
        resources.set_devices(Some(vec![deny_all]));
        linux.set_resources(Some(resources));
    }
    linux.set_namespaces(Some(namespaces));
    // runc's example has no seccomp; nsboot writes its default profile, tailored to the
    // capabilities above (groups of syscalls gated by a capability stay denied without it).
    linux.set_seccomp(Some(super::default_seccomp(&spec)));
    spec.set_linux(Some(linux));
    spec
}

/// The spec as pretty JSON in the struct's field order (runc's order), with capability sets
/// sorted: they are hash sets in oci-spec, whose order would change from run to run.
pub fn to_json(spec: &Spec) -> String {
    let compact = serde_json::to_string(spec).expect("a spec serialises");
    let mut doc: Ordered = serde_json::from_str(&compact).expect("own output parses");
    if let Some(Ordered::Obj(caps)) = doc
        .get_mut("process")
        .and_then(|p| p.get_mut("capabilities"))
    {
        for (_, set) in caps.iter_mut() {
            if let Ordered::Arr(items) = set {
                items.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            }
        }
    }
    let mut text = serde_json::to_string_pretty(&doc).expect("json serialises");
    text.push('\n');
    text
}

/// JSON that keeps its keys in document order (serde_json's `Value` sorts them, as its
/// preserve_order feature is off).
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Ordered {
    Arr(Vec<Ordered>),
    Obj(#[serde(with = "ordered_map")] Vec<(String, Ordered)>),
    Leaf(Value),
}

impl Ordered {
    fn get_mut(&mut self, key: &str) -> Option<&mut Ordered> {
        match self {
            Ordered::Obj(fields) => fields.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
    fn as_str(&self) -> Option<&str> {
        match self {
            Ordered::Leaf(v) => v.as_str(),
            _ => None,
        }
    }
}

mod ordered_map {
    use serde::de::{MapAccess, Visitor};
    use serde::{Deserializer, Serializer};

    use super::Ordered;

    pub fn serialize<S: Serializer>(fields: &[(String, Ordered)], s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(fields.iter().map(|(k, v)| (k, v)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<(String, Ordered)>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Vec<(String, Ordered)>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut fields = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    fields.push(entry);
                }
                Ok(fields)
            }
        }
        d.deserialize_map(V)
    }
}
