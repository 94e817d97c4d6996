//! Decoding config.json with errors that name the JSON path ("process.args[2]: ...").
//!
//! serde_json reports *what* is wrong but, for a type error, not *where*. Rather than a second
//! schema that could drift from oci-spec's, the file is first parsed into a `Value`; when the
//! typed decode fails, a table of the spec's shape guides a descent that re-tries the *real*
//! oci-spec type of each child and follows the first child that fails. The table only says
//! where to look; what counts as an error is always oci-spec's own decoder.

use std::path::Path;

use oci_spec::runtime::{
    Arch, Capability, Hooks, LinuxCapabilities, LinuxIdMapping, LinuxNamespace, LinuxNamespaceType,
    LinuxSeccomp, LinuxSeccompAction, LinuxSyscall, PosixRlimit, PosixRlimitType, Process, Root,
    User,
};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use super::{Spec, SpecError};

type Check = fn(&Value) -> Result<(), serde_json::Error>;

fn check<T: DeserializeOwned>(v: &Value) -> Result<(), serde_json::Error> {
    T::deserialize(v).map(drop)
}

/// One type of the spec: its real decoder, where to descend, and for enums the words to use
/// when a name is unknown.
struct Node {
    check: Check,
    kids: Kids,
    unknown: Option<(&'static str, &'static str)>,
}

enum Kids {
    None,
    Fields(&'static [(&'static str, &'static Node)]),
    Elems(&'static Node),
    Values(&'static Node),
}

const fn leaf(check: Check) -> Node {
    Node {
        check,
        kids: Kids::None,
        unknown: None,
    }
}
const fn fields(check: Check, f: &'static [(&'static str, &'static Node)]) -> Node {
    Node {
        check,
        kids: Kids::Fields(f),
        unknown: None,
    }
}
const fn elems(check: Check, e: &'static Node) -> Node {
    Node {
        check,
        kids: Kids::Elems(e),
        unknown: None,
    }
}
const fn named(check: Check, kind: &'static str, hint: &'static str) -> Node {
    Node {
        check,
        kids: Kids::None,
        unknown: Some((kind, hint)),
    }
}

static STRING: Node = leaf(check::<String>);
static BOOL: Node = leaf(check::<bool>);
static U32: Node = leaf(check::<u32>);
static U64: Node = leaf(check::<u64>);
static I32: Node = leaf(check::<i32>);
static I64: Node = leaf(check::<i64>);
static STRINGS: Node = elems(check::<Vec<String>>, &STRING);
static U32S: Node = elems(check::<Vec<u32>>, &U32);
static STRING_MAP: Node = Node {
    check: check::<std::collections::HashMap<String, String>>,
    kids: Kids::Values(&STRING),
    unknown: None,
};

static ROOT: Node = fields(check::<Root>, &[("path", &STRING), ("readonly", &BOOL)]);
static MOUNT: Node = fields(
    check::<oci_spec::runtime::Mount>,
    &[
        ("destination", &STRING),
        ("type", &STRING),
        ("source", &STRING),
        ("options", &STRINGS),
    ],
);
static MOUNTS: Node = elems(check::<Vec<oci_spec::runtime::Mount>>, &MOUNT);

static USER: Node = fields(
    check::<User>,
    &[
        ("uid", &U32),
        ("gid", &U32),
        ("umask", &U32),
        ("additionalGids", &U32S),
        ("username", &STRING),
    ],
);
static CAP: Node = named(
    check::<Capability>,
    "capability",
    "use a CAP_* name from capabilities(7), e.g. CAP_NET_BIND_SERVICE",
);
static CAP_SET: Node = elems(check::<Vec<Capability>>, &CAP);
static CAPS: Node = fields(
    check::<LinuxCapabilities>,
    &[
        ("bounding", &CAP_SET),
        ("effective", &CAP_SET),
        ("inheritable", &CAP_SET),
        ("permitted", &CAP_SET),
        ("ambient", &CAP_SET),
    ],
);
static RLIMIT_TYPE: Node = named(
    check::<PosixRlimitType>,
    "rlimit type",
    "use an RLIMIT_* name from getrlimit(2), e.g. RLIMIT_NOFILE",
);
static RLIMIT: Node = fields(
    check::<PosixRlimit>,
    &[("type", &RLIMIT_TYPE), ("hard", &U64), ("soft", &U64)],
);
static RLIMITS: Node = elems(check::<Vec<PosixRlimit>>, &RLIMIT);
static PROCESS: Node = fields(
    check::<Process>,
    &[
        ("terminal", &BOOL),
        ("user", &USER),
        ("args", &STRINGS),
        ("env", &STRINGS),
        ("cwd", &STRING),
        ("capabilities", &CAPS),
        ("rlimits", &RLIMITS),
        ("noNewPrivileges", &BOOL),
        ("apparmorProfile", &STRING),
        ("oomScoreAdj", &I32),
        ("selinuxLabel", &STRING),
    ],
);

static ID_MAP: Node = fields(
    check::<LinuxIdMapping>,
    &[("hostID", &U32), ("containerID", &U32), ("size", &U32)],
);
static ID_MAPS: Node = elems(check::<Vec<LinuxIdMapping>>, &ID_MAP);
static NS_TYPE: Node = named(
    check::<LinuxNamespaceType>,
    "namespace type",
    "use one of mount, pid, network, ipc, uts, user, cgroup, time",
);
static NAMESPACE: Node = fields(
    check::<LinuxNamespace>,
    &[("type", &NS_TYPE), ("path", &STRING)],
);
static NAMESPACES: Node = elems(check::<Vec<LinuxNamespace>>, &NAMESPACE);
static SECCOMP_ACTION: Node = named(
    check::<LinuxSeccompAction>,
    "seccomp action",
    "use an SCMP_ACT_* action, e.g. SCMP_ACT_ERRNO",
);
static ARCH: Node = named(
    check::<Arch>,
    "seccomp architecture",
    "use an SCMP_ARCH_* name",
);
static SYSCALL: Node = fields(
    check::<LinuxSyscall>,
    &[
        ("names", &STRINGS),
        ("action", &SECCOMP_ACTION),
        ("errnoRet", &U32),
    ],
);
static SECCOMP: Node = fields(
    check::<LinuxSeccomp>,
    &[
        ("defaultAction", &SECCOMP_ACTION),
        ("defaultErrnoRet", &U32),
        ("architectures", &ARCHES),
        ("syscalls", &SYSCALLS),
    ],
);
static ARCHES: Node = elems(check::<Vec<Arch>>, &ARCH);
static SYSCALLS: Node = elems(check::<Vec<LinuxSyscall>>, &SYSCALL);
static LINUX: Node = fields(
    check::<oci_spec::runtime::Linux>,
    &[
        ("uidMappings", &ID_MAPS),
        ("gidMappings", &ID_MAPS),
        ("sysctl", &STRING_MAP),
        ("cgroupsPath", &STRING),
        ("namespaces", &NAMESPACES),
        ("seccomp", &SECCOMP),
        ("rootfsPropagation", &STRING),
        ("maskedPaths", &STRINGS),
        ("readonlyPaths", &STRINGS),
        ("mountLabel", &STRING),
    ],
);

static HOOK: Node = fields(
    check::<oci_spec::runtime::Hook>,
    &[
        ("path", &STRING),
        ("args", &STRINGS),
        ("env", &STRINGS),
        ("timeout", &I64),
    ],
);
static HOOK_LIST: Node = elems(check::<Vec<oci_spec::runtime::Hook>>, &HOOK);
static HOOKS: Node = fields(
    check::<Hooks>,
    &[
        ("prestart", &HOOK_LIST),
        ("createRuntime", &HOOK_LIST),
        ("createContainer", &HOOK_LIST),
        ("startContainer", &HOOK_LIST),
        ("poststart", &HOOK_LIST),
        ("poststop", &HOOK_LIST),
    ],
);

static SPEC: Node = fields(
    check::<Spec>,
    &[
        ("ociVersion", &STRING),
        ("root", &ROOT),
        ("mounts", &MOUNTS),
        ("process", &PROCESS),
        ("hostname", &STRING),
        ("domainname", &STRING),
        ("hooks", &HOOKS),
        ("annotations", &STRING_MAP),
        ("linux", &LINUX),
    ],
);

/// Decodes a spec from JSON bytes; `file` only names the source in errors.
pub(super) fn decode(file: &Path, bytes: &[u8]) -> Result<Spec, SpecError> {
    // The common case in one pass; only a failure (or a field carried in another form)
    // pays for the JSON-path search below.
    let carried = super::carried::needs_normalize(bytes);
    if !carried {
        if let Ok(spec) = serde_json::from_slice::<Spec>(bytes) {
            return Ok(spec);
        }
    }
    let mut value: Value =
        serde_json::from_slice(bytes).map_err(|e| super::syntax::syntax_error(file, bytes, &e))?;
    if carried {
        super::carried::normalize(&mut value).map_err(|e| match e {
            SpecError::Invalid { json_path, msg, .. } => SpecError::Decode {
                path: file.to_path_buf(),
                json_path,
                msg,
            },
            other => other,
        })?;
    }
    Spec::deserialize(&value).map_err(|e| {
        let (json_path, msg) = locate(&SPEC, &value, String::new(), e);
        SpecError::Decode {
            path: file.to_path_buf(),
            json_path,
            msg,
        }
    })
}

/// Descends from `node` (whose decode of `v` failed with `err`) to the deepest failing child.
fn locate(node: &Node, v: &Value, path: String, err: serde_json::Error) -> (String, String) {
    let failing = |kid: &'static Node, child: &Value| (kid.check)(child).err();
    match (&node.kids, v) {
        (Kids::Fields(list), Value::Object(map)) => {
            for (name, kid) in list.iter() {
                // null stands for "absent" in the spec's optional fields: nothing to blame there.
                match map.get(*name) {
                    Some(child) if !child.is_null() => {
                        if let Some(e) = failing(kid, child) {
                            return locate(kid, child, join_field(&path, name), e);
                        }
                    }
                    _ => {}
                }
            }
        }
        (Kids::Elems(kid), Value::Array(items)) => {
            for (i, child) in items.iter().enumerate() {
                if let Some(e) = failing(kid, child) {
                    return locate(kid, child, format!("{path}[{i}]"), e);
                }
            }
        }
        (Kids::Values(kid), Value::Object(map)) => {
            for (key, child) in map {
                if let Some(e) = failing(kid, child) {
                    return locate(kid, child, join_field(&path, key), e);
                }
            }
        }
        _ => {}
    }
    explain(node, v, path, err.to_string())
}

/// serde's words, reworded where they would not tell the user what to do.
fn explain(node: &Node, v: &Value, path: String, msg: String) -> (String, String) {
    if let (Some((kind, hint)), Value::String(name)) = (node.unknown, v) {
        return (path, format!("unknown {kind} {name}: {hint}"));
    }
    if let Some(field) = msg
        .strip_prefix("missing field `")
        .and_then(|m| m.strip_suffix('`'))
    {
        return (
            join_field(&path, field),
            "required field is missing: add it".into(),
        );
    }
    (path, msg)
}

pub(super) fn join_field(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}
