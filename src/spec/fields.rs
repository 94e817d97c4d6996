//! Every field of the runtime spec, and what nsboot does with it: applied (and where), or
//! refused. One table read by the contract check (`scan`), by `nsboot features` and by the
//! test that keeps docs/spec-fields.md equal to it.
//!
//! Properties the runtime spec does not define are ignored, as its "Extensibility" section
//! requires of runtimes (runc and crun do the same); what it defines is never dropped.

/// What nsboot does with one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Applied exactly, by the code named.
    Applied(&'static str),
    /// Applied by the code named; values it cannot apply are refused by validation.
    Checked(&'static str),
    /// Refused unless empty (null, "", [], {}): the fix to offer.
    Refused(&'static str),
    /// Refused unless empty or this value, which asks for what nsboot does anyway (an
    /// AppArmor profile "unconfined"): the value, and the fix to offer.
    RefusedBut(&'static str, &'static str),
    /// A cgroup setting: written to the container's cgroup (`src/cgroup/`); a value the
    /// host's hierarchy cannot take is refused. An unprivileged caller with no cgroup
    /// delegated to it (and any on cgroup v1) gets one warning (runc's and crun's rootless
    /// convention) and runs without it.
    Cgroup,
}

/// The shape of a field's value, for the walk below it.
#[derive(Debug)]
pub enum Shape {
    Leaf,
    Object(&'static [Field]),
    Array(&'static Shape),
    /// A string-keyed map of values of this shape.
    Map(&'static Shape),
}

#[derive(Debug)]
pub struct Field {
    pub name: &'static str,
    pub rule: Rule,
    pub shape: Shape,
}

const fn f(name: &'static str, rule: Rule, shape: Shape) -> Field {
    Field { name, rule, shape }
}
const fn leaf(name: &'static str, rule: Rule) -> Field {
    f(name, rule, Shape::Leaf)
}
use Rule::{Applied, Cgroup, Checked, Refused, RefusedBut};
use Shape::{Array, Leaf, Map, Object};

const CREDS: &str = "src/process/creds/mod.rs";
const LABELS: &str =
    "nsboot applies no SELinux labels: remove it (podman: --security-opt label=disable)";
const ID_MAP: &[Field] = &[
    leaf("containerID", Applied("src/idmap/")),
    leaf("hostID", Applied("src/idmap/")),
    leaf("size", Applied("src/idmap/")),
];
const HOOK: &[Field] = &[
    leaf("path", Applied("src/sandbox/hooks.rs")),
    f("args", Applied("src/sandbox/hooks.rs"), Array(&Leaf)),
    f("env", Applied("src/sandbox/hooks.rs"), Array(&Leaf)),
    leaf(
        "timeout",
        Checked("src/sandbox/hooks.rs; > 0, as the spec requires"),
    ),
];
const HOOK_LIST: Shape = Array(&Object(HOOK));
const HOOKS: &[Field] = &[
    f(
        "prestart",
        Applied("src/sandbox/hooks.rs, by create"),
        HOOK_LIST,
    ),
    f(
        "createRuntime",
        Applied("src/sandbox/hooks.rs, by create"),
        HOOK_LIST,
    ),
    f(
        "createContainer",
        Applied("src/sandbox/hooks.rs, by create, in the runtime's namespaces"),
        HOOK_LIST,
    ),
    f(
        "startContainer",
        Applied("src/sandbox/hooks.rs, by start, in the runtime's namespaces"),
        HOOK_LIST,
    ),
    f(
        "poststart",
        Applied("src/sandbox/hooks.rs, by start"),
        HOOK_LIST,
    ),
    f(
        "poststop",
        Applied("src/sandbox/hooks.rs, by delete"),
        HOOK_LIST,
    ),
];
const MOUNT: &[Field] = &[
    leaf(
        "destination",
        Checked("src/rootfs/mounts/mod.rs; absolute, no .."),
    ),
    leaf("source", Applied("src/rootfs/mounts/mod.rs")),
    leaf("type", Applied("src/rootfs/mounts/mod.rs")),
    f(
        "options",
        Checked("src/rootfs/mounts/options.rs; a bind's options must be flags nsboot applies; recursive ones (rro...) by mount_setattr; idmap refused"),
        Array(&Leaf),
    ),
    f(
        "uidMappings",
        Refused("nsboot makes no id-mapped mounts yet: remove it"),
        Array(&Object(ID_MAP)),
    ),
    f(
        "gidMappings",
        Refused("nsboot makes no id-mapped mounts yet: remove it"),
        Array(&Object(ID_MAP)),
    ),
];
const USER: &[Field] = &[
    leaf(
        "uid",
        Checked("src/process/creds/mod.rs; 4294967295 refused"),
    ),
    leaf(
        "gid",
        Checked("src/process/creds/mod.rs; 4294967295 refused"),
    ),
    leaf("umask", Checked("src/process/creds/mod.rs; at most 0777")),
    f(
        "additionalGids",
        Checked("src/process/creds/mod.rs; 4294967295 refused"),
        Array(&Leaf),
    ),
    leaf(
        "username",
        Refused("nsboot takes the uid and gid (username is for Windows): remove it"),
    ),
];
const CAP_SETS: &[Field] = &[
    f("bounding", Applied("src/process/caps.rs"), Array(&Leaf)),
    f("effective", Applied("src/process/caps.rs"), Array(&Leaf)),
    f("inheritable", Applied("src/process/caps.rs"), Array(&Leaf)),
    f("permitted", Applied("src/process/caps.rs"), Array(&Leaf)),
    f("ambient", Applied("src/process/caps.rs"), Array(&Leaf)),
];
const RLIMIT: &[Field] = &[
    leaf("type", Applied("src/process/rlimits.rs")),
    leaf("soft", Checked("src/process/rlimits.rs; soft <= hard")),
    leaf("hard", Applied("src/process/rlimits.rs")),
];
const IO_PRIORITY: &[Field] = &[
    leaf("class", Applied("src/process/tuning.rs")),
    leaf("priority", Applied("src/process/tuning.rs")),
];
const SCHEDULER: &[Field] = &[
    leaf("policy", Applied("src/process/tuning.rs")),
    leaf("nice", Applied("src/process/tuning.rs")),
    leaf("priority", Applied("src/process/tuning.rs")),
    f("flags", Applied("src/process/tuning.rs"), Array(&Leaf)),
    leaf("runtime", Applied("src/process/tuning.rs")),
    leaf("deadline", Applied("src/process/tuning.rs")),
    leaf("period", Applied("src/process/tuning.rs")),
];
const CPU_AFFINITY: &[Field] = &[
    leaf("initial", Applied("src/cli/exec/mod.rs")),
    leaf("final", Applied("src/cli/exec/mod.rs")),
];
/// `process`, also the shape of `exec --process`.
pub const PROCESS: &[Field] = &[
    leaf("terminal", Applied("src/sandbox/pty.rs, src/process/console.rs")),
    f(
        "consoleSize",
        Checked("src/process/console.rs: the pty's size before the process starts, up to 65535; ignored without a terminal, as the spec says"),
        Object(&[]),
    ),
    f("user", Applied(CREDS), Object(USER)),
    f("args", Checked("src/process/exec.rs"), Array(&Leaf)),
    leaf(
        "commandLine",
        Refused("nsboot takes process.args (commandLine is for Windows): remove it"),
    ),
    f(
        "env",
        Checked("src/process/exec.rs; KEY=VALUE"),
        Array(&Leaf),
    ),
    leaf("cwd", Checked("src/process/creds/mod.rs; absolute")),
    f(
        "capabilities",
        Applied("src/process/caps.rs"),
        Object(CAP_SETS),
    ),
    f(
        "rlimits",
        Applied("src/process/rlimits.rs"),
        Array(&Object(RLIMIT)),
    ),
    leaf(
        "noNewPrivileges",
        Applied("src/process/creds/mod.rs (absent: off, the OCI default)"),
    ),
    leaf(
        "apparmorProfile",
        RefusedBut(
            "unconfined",
            "nsboot confines with no AppArmor profile: remove it (podman: --security-opt apparmor=unconfined)",
        ),
    ),
    leaf("oomScoreAdj", Checked("src/process/creds/mod.rs; -1000..1000")),
    leaf("selinuxLabel", Refused(LABELS)),
    f(
        "ioPriority",
        Checked("src/process/tuning.rs; priority 0-7; IOPRIO_CLASS_RT needs a capability of the host's user namespace: real root lends it, rootless gets the kernel's refusal, in one line"),
        Object(IO_PRIORITY),
    ),
    f(
        "scheduler",
        Checked("src/process/tuning.rs; checked as runc does; SCHED_FIFO, SCHED_RR and nice < 0 need CAP_SYS_NICE of the host's user namespace: real root lends them, rootless gets the kernel's refusal, in one line (SCHED_DEADLINE always)"),
        Object(SCHEDULER),
    ),
    f(
        "execCPUAffinity",
        Checked("src/cli/exec/mod.rs, by exec (initial before it joins the container, final right before exec); the container's own process ignores it, as the spec says"),
        Object(CPU_AFFINITY),
    ),
];
const NAMESPACE: &[Field] = &[
    leaf(
        "type",
        Checked("src/sandbox/mod.rs, src/rootfs/net.rs, src/process/tuning.rs (time); listed: new, absent: inherited; mount new or joined by path (src/rootfs/joined.rs), pid new unless joined by path"),
    ),
    leaf(
        "path",
        Applied("src/sandbox/nspath.rs: type checked, joined before the clone (user first); mount refused; pid: the application born in it, its proc made there by the joining child (src/rootfs/shown.rs)"),
    ),
];
const DEVICE: &[Field] = &[
    leaf("type", Applied("src/rootfs/dev.rs, src/rootfs/mknod.rs")),
    leaf("path", Applied("src/rootfs/dev.rs, src/rootfs/mknod.rs")),
    leaf("major", Applied("src/rootfs/dev.rs, src/rootfs/mknod.rs")),
    leaf("minor", Applied("src/rootfs/dev.rs, src/rootfs/mknod.rs")),
    leaf(
        "fileMode",
        Applied("src/rootfs/mknod.rs: a node real root makes, 0666 when absent; a host node bound must have it (src/rootfs/nodes.rs)"),
    ),
    leaf(
        "uid",
        Applied("src/rootfs/mknod.rs: a node real root makes; a host node bound must have it (src/rootfs/nodes.rs)"),
    ),
    leaf(
        "gid",
        Applied("src/rootfs/mknod.rs: a node real root makes; a host node bound must have it (src/rootfs/nodes.rs)"),
    ),
];
const RESOURCES: &[Field] = &[
    f(
        "devices",
        Checked("src/cgroup/devices/ (root with a cgroup: v1 devices, v2 eBPF), else src/rootfs/dev.rs on the nodes; a hole in a wider rule and type p refused"),
        Array(&Leaf),
    ),
    f("memory", Cgroup, Object(&[])),
    f("cpu", Cgroup, Object(&[])),
    f("pids", Cgroup, Object(&[])),
    f("blockIO", Cgroup, Object(&[])),
    f("hugepageLimits", Cgroup, Array(&Leaf)),
    f("network", Cgroup, Object(&[])),
    f("rdma", Cgroup, Map(&Leaf)),
    f("unified", Cgroup, Map(&Leaf)),
];
const SYSCALL: &[Field] = &[
    f("names", Applied("src/process/seccomp/mod.rs"), Array(&Leaf)),
    leaf(
        "action",
        Checked("src/process/seccomp/mod.rs; SCMP_ACT_NOTIFY needs listenerPath"),
    ),
    leaf("errnoRet", Applied("src/process/seccomp/mod.rs")),
    f("args", Applied("src/process/seccomp/mod.rs"), Array(&Leaf)),
];
const SECCOMP: &[Field] = &[
    leaf(
        "defaultAction",
        Checked("src/process/seccomp/mod.rs; SCMP_ACT_NOTIFY refused as the default"),
    ),
    leaf("defaultErrnoRet", Applied("src/process/seccomp/mod.rs")),
    f(
        "architectures",
        Applied("src/process/seccomp/mod.rs"),
        Array(&Leaf),
    ),
    f("flags", Applied("src/process/seccomp/bpf.rs"), Array(&Leaf)),
    leaf(
        "listenerPath",
        Applied("src/process/seccomp/agent.rs: the notify fd and runc's process state, sent by the supervisor (or exec)"),
    ),
    leaf(
        "listenerMetadata",
        Applied("src/process/seccomp/agent.rs"),
    ),
    f(
        "syscalls",
        Applied("src/process/seccomp/mod.rs"),
        Array(&Object(SYSCALL)),
    ),
];
const PERSONALITY: &[Field] = &[
    leaf("domain", Applied("src/process/tuning.rs")),
    f("flags", Applied("src/process/tuning.rs"), Array(&Leaf)),
];
const TIME_OFFSET: &[Field] = &[
    leaf("secs", Applied("src/process/tuning.rs")),
    leaf("nanosecs", Applied("src/process/tuning.rs")),
];
const MEMORY_POLICY: &[Field] = &[
    leaf("mode", Applied("src/process/tuning.rs")),
    leaf("nodes", Applied("src/process/tuning.rs")),
    f("flags", Applied("src/process/tuning.rs"), Array(&Leaf)),
];
const LINUX: &[Field] = &[
    f("uidMappings", Checked("src/idmap/"), Array(&Object(ID_MAP))),
    f("gidMappings", Checked("src/idmap/"), Array(&Object(ID_MAP))),
    f(
        "sysctl",
        Checked(
            "src/spec/sysctl.rs, src/process/creds/mod.rs; only the container's own namespaces",
        ),
        Map(&Leaf),
    ),
    f("resources", Applied("see its fields"), Object(RESOURCES)),
    leaf("cgroupsPath", Cgroup),
    f(
        "namespaces",
        Checked("src/sandbox/mod.rs; mount and pid are required"),
        Array(&Object(NAMESPACE)),
    ),
    f(
        "devices",
        Applied("src/rootfs/dev.rs"),
        Array(&Object(DEVICE)),
    ),
    f(
        "seccomp",
        Applied("src/process/seccomp/mod.rs"),
        Object(SECCOMP),
    ),
    leaf(
        "rootfsPropagation",
        Applied("src/rootfs/mod.rs, on the container's / after pivot_root; unknown values refused"),
    ),
    f(
        "maskedPaths",
        Applied("src/rootfs/paths.rs; relative: from the container root, as runc"),
        Array(&Leaf),
    ),
    f(
        "readonlyPaths",
        Applied("src/rootfs/paths.rs; relative: from the container root, as runc"),
        Array(&Leaf),
    ),
    leaf("mountLabel", Refused(LABELS)),
    f(
        "intelRdt",
        Refused("nsboot does not manage Intel RDT: remove it"),
        Object(&[]),
    ),
    f(
        "personality",
        Checked("src/process/tuning.rs; LINUX or LINUX32, personality(2)'s flags"),
        Object(PERSONALITY),
    ),
    f(
        "timeOffsets",
        Checked("src/spec/carried.rs, src/process/tuning.rs; monotonic and boottime, with a new time namespace"),
        Map(&Object(TIME_OFFSET)),
    ),
    f(
        "memoryPolicy",
        Checked("src/spec/tuning.rs, src/process/tuning.rs; set_mempolicy(2)'s modes and flags"),
        Object(MEMORY_POLICY),
    ),
    f(
        "netDevices",
        Refused("nsboot moves no network devices yet: remove it"),
        Map(&Leaf),
    ),
];
const ROOT: &[Field] = &[
    leaf("path", Applied("src/rootfs/mod.rs")),
    leaf("readonly", Applied("src/rootfs/mod.rs")),
];
const OTHER_OS: &str = "nsboot runs Linux containers only: remove it";

/// The whole config.json.
pub const SPEC: &[Field] = &[
    leaf("ociVersion", Checked("1.x")),
    f("root", Applied("src/rootfs/mod.rs"), Object(ROOT)),
    f(
        "mounts",
        Applied("src/rootfs/mounts/mod.rs"),
        Array(&Object(MOUNT)),
    ),
    f("process", Applied("src/process/"), Object(PROCESS)),
    leaf("hostname", Applied("src/boot/mod.rs")),
    leaf("domainname", Applied("src/boot/mod.rs")),
    f("hooks", Applied("src/sandbox/hooks.rs"), Object(HOOKS)),
    f(
        "annotations",
        Applied("kept in the state; nsboot.overlay read"),
        Map(&Leaf),
    ),
    f("linux", Applied("see its fields"), Object(LINUX)),
    f("solaris", Refused(OTHER_OS), Object(&[])),
    f("windows", Refused(OTHER_OS), Object(&[])),
    f("vm", Refused(OTHER_OS), Object(&[])),
    f("zos", Refused(OTHER_OS), Object(&[])),
];

pub static SPEC_SHAPE: Shape = Object(SPEC);
pub static PROCESS_SHAPE: Shape = Object(PROCESS);

/// The options a bind mount takes (each is a mount flag or a propagation nsboot sets), and
/// the flags of other file systems: `nsboot features`' mountOptions.
#[rustfmt::skip]
pub const MOUNT_OPTIONS: &[&str] = &[
    "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "lazytime",
    "loud", "mand", "noatime", "nodev", "nodiratime", "noexec", "nolazytime", "nomand",
    "norelatime", "nostrictatime", "nosuid", "private", "ratime", "rbind", "rdev", "rdiratime",
    "relatime", "remount", "rexec", "rnoatime", "rnodev", "rnodiratime", "rnoexec",
    "rnorelatime", "rnostrictatime", "rnosuid", "rnosymfollow", "ro", "rprivate", "rrelatime",
    "rro", "rrw", "rshared", "rslave", "rstrictatime", "rsuid", "rsymfollow", "runbindable",
    "rw", "shared", "silent", "slave", "strictatime", "suid", "sync", "unbindable",
];

/// Namespace types nsboot makes new (a type listed without a path), as `features` lists them.
pub const NAMESPACES: &[&str] = &[
    "cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts",
];

/// The rule of a dotted field path ("process.apparmorProfile"; arrays are stepped through).
pub fn rule(path: &str) -> Option<Rule> {
    let mut fields = SPEC;
    let mut found = None;
    for name in path.split('.') {
        let field = fields.iter().find(|f| f.name == name)?;
        found = Some(field.rule);
        fields = object_fields(&field.shape);
    }
    found
}

fn object_fields(shape: &Shape) -> &'static [Field] {
    match shape {
        Object(f) => f,
        Array(inner) | Map(inner) => object_fields(inner),
        Leaf => &[],
    }
}

/// Every field with its dotted path, depth first (`[]` marks an array's elements), but not
/// the fields inside a refused one.
pub fn walk(mut visit: impl FnMut(&str, &Field)) {
    fn go(prefix: &str, fields: &[Field], visit: &mut dyn FnMut(&str, &Field)) {
        for field in fields {
            let path = if prefix.is_empty() {
                field.name.to_string()
            } else {
                format!("{prefix}.{}", field.name)
            };
            visit(&path, field);
            if matches!(field.rule, Refused(_) | RefusedBut(..) | Cgroup) {
                // What is inside a refused field is refused with it.
                continue;
            }
            let below = match &field.shape {
                Array(_) => format!("{path}[]"),
                _ => path,
            };
            go(&below, object_fields(&field.shape), visit);
        }
    }
    go("", SPEC, &mut visit);
}
