//! The OCI spec: load and validate config.json, the rootless adjustment, `nsboot spec`'s
//! generated config, and the in-memory spec of `nsboot do`.
//!
//! `load` = read (size-capped) -> decode (errors name the JSON path) -> `adjust` -> `validate`.
//! Everything after `load` may assume a validated spec.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::sys::Errno;

pub mod carried;
mod contract;
pub mod devices;
mod do_spec;
pub mod fields;
mod generate;
mod locate;
mod options;
mod scan;
pub mod seccomp_profile;
mod syntax;
pub mod sysctl;
pub mod tuning;
mod validate;

pub use do_spec::{do_spec, DoOptions, Network, OVERLAY_ANNOTATION};
pub use generate::{generate, to_json};
pub use options::{parse_id_map, parse_user, parse_volume, Volume};
pub use validate::{validate, validate_id};

pub type Spec = oci_spec::runtime::Spec;

/// config.json larger than this is refused unread: real ones are a few KiB, and the spec is
/// held in memory and copied across processes.
pub const MAX_CONFIG_BYTES: u64 = 4 << 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum SpecError {
    #[error("bundle {}: {}: pass --bundle DIR naming the directory that holds config.json", bundle.display(), dir_errno(*errno))]
    Bundle { bundle: PathBuf, errno: Errno },
    #[error("{}: no such file: write one with `nsboot spec --bundle DIR`, or pass the right --bundle", path.display())]
    NoConfig { path: PathBuf },
    #[error("{} is a {kind}, not a regular file: config.json must be a plain JSON file", path.display())]
    NotAFile { path: PathBuf, kind: String },
    #[error("reading {}: {errno}", path.display())]
    Read { path: PathBuf, errno: Errno },
    #[error("{}: {size} bytes is over nsboot's {} MiB limit for config.json: is this really a config.json?", path.display(), MAX_CONFIG_BYTES >> 20)]
    TooLarge { path: PathBuf, size: u64 },
    #[error("{}: line {line} column {column}{}: {msg}", path.display(), at(json_path))]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        json_path: String,
        msg: String,
    },
    #[error("{}: {}{msg}", path.display(), prefix(json_path))]
    Decode {
        path: PathBuf,
        json_path: String,
        msg: String,
    },
    #[error("{}{}{msg}", file_prefix(file), prefix(json_path))]
    Invalid {
        file: Option<PathBuf>,
        json_path: String,
        msg: String,
    },
    #[error("invalid container id {id:?}: {why}: use letters, digits and + - . _ (at most 1024)")]
    Id { id: String, why: String },
    #[error("root.path {}: {}: create the rootfs or fix root.path in config.json", path.display(), dir_errno(*errno))]
    Rootfs { path: PathBuf, errno: Errno },
    #[error("config.json already exists in {}: remove it first", dir.display())]
    Exists { dir: PathBuf },
    #[error("writing {}: {errno}", path.display())]
    Write { path: PathBuf, errno: Errno },
    #[error("{flag} {value}: {why}")]
    Option {
        flag: String,
        value: String,
        why: String,
    },
}

impl SpecError {
    /// A validation error found in a spec read from `file`.
    fn in_file(self, file: &Path) -> Self {
        match self {
            SpecError::Invalid {
                file: None,
                json_path,
                msg,
            } => SpecError::Invalid {
                file: Some(file.to_path_buf()),
                json_path,
                msg,
            },
            other => other,
        }
    }

    pub(crate) fn invalid(json_path: impl Into<String>, msg: impl Into<String>) -> Self {
        SpecError::Invalid {
            file: None,
            json_path: json_path.into(),
            msg: msg.into(),
        }
    }

    pub(crate) fn option(flag: &str, value: &str, why: impl Into<String>) -> Self {
        SpecError::Option {
            flag: flag.into(),
            value: value.into(),
            why: why.into(),
        }
    }
}

fn dir_errno(errno: Errno) -> String {
    match errno.0 {
        libc::ENOENT => "no such directory".into(),
        libc::ENOTDIR => "not a directory".into(),
        _ => errno.to_string(),
    }
}
fn at(json_path: &str) -> String {
    if json_path.is_empty() {
        String::new()
    } else {
        format!(" (in {})", crate::sys::log::cut(json_path, 160))
    }
}
fn prefix(json_path: &str) -> String {
    if json_path.is_empty() {
        String::new()
    } else {
        format!("{}: ", crate::sys::log::cut(json_path, 160))
    }
}
fn file_prefix(file: &Option<PathBuf>) -> String {
    file.as_ref()
        .map(|f| format!("{}: ", f.display()))
        .unwrap_or_default()
}

/// Reads `bundle/config.json`, applies `adjust` and validates it.
pub fn load(bundle: &Path) -> Result<Spec, SpecError> {
    match std::fs::metadata(bundle) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(SpecError::Bundle {
                bundle: bundle.into(),
                errno: Errno(libc::ENOTDIR),
            })
        }
        Err(e) => {
            return Err(SpecError::Bundle {
                bundle: bundle.into(),
                errno: e.into(),
            })
        }
    }
    let path = bundle.join("config.json");
    let bytes = read_capped(&path)?;
    let found =
        scan::scan(&bytes, &fields::SPEC_SHAPE, "").map_err(|r| refused(r).in_file(&path))?;
    let mut spec = parse(&path, &bytes)?;
    adjust(&mut spec);
    validate(&spec).map_err(|e| e.in_file(&path))?;
    // Cgroup settings (`found.cgroup`) are the launch's: the cgroup part applies them, or
    // warns once for an unprivileged caller with no cgroup delegated to it.
    drop(found);
    Ok(spec)
}

fn refused(r: scan::Refusal) -> SpecError {
    SpecError::invalid(r.json_path, r.msg)
}

/// The contract checks on a process given on its own (`exec --process`, or the container's
/// process with exec's flags laid over it): its fields and its values.
pub fn check_process(process: &serde_json::Value) -> Result<(), SpecError> {
    scan::scan_value(process, &fields::PROCESS_SHAPE, "process").map_err(refused)?;
    let decoded = oci_spec::runtime::Process::deserialize(&carried_process(process))
        .map_err(|e| SpecError::invalid("process", e.to_string()))?;
    tuning::check_process(&decoded, "process")?;
    contract::check_user(&decoded)
}

/// A process as given (`exec --process`) in the form oci-spec decodes (`carried`).
pub fn carried_process(process: &serde_json::Value) -> serde_json::Value {
    let mut p = process.clone();
    carried::normalize_process(&mut p);
    p
}

/// Reads at most `MAX_CONFIG_BYTES`: the size is checked before reading and again while
/// reading, so that a file that grows (or a FIFO) cannot make nsboot read without end.
fn read_capped(path: &Path) -> Result<Vec<u8>, SpecError> {
    use std::os::unix::fs::OpenOptionsExt;
    // O_NONBLOCK: a FIFO (or a device) must not block the open; only regular files are read.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => SpecError::NoConfig { path: path.into() },
            _ => SpecError::Read {
                path: path.into(),
                errno: e.into(),
            },
        })?;
    let meta = file.metadata().map_err(|e| SpecError::Read {
        path: path.into(),
        errno: e.into(),
    })?;
    if !meta.is_file() {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        let kind = if t.is_dir() {
            "directory"
        } else if t.is_fifo() {
            "FIFO"
        } else if t.is_char_device() || t.is_block_device() {
            "device"
        } else {
            "special file"
        };
        return Err(SpecError::NotAFile {
            path: path.into(),
            kind: kind.into(),
        });
    }
    let size = meta.len();
    if size > MAX_CONFIG_BYTES {
        return Err(SpecError::TooLarge {
            path: path.into(),
            size,
        });
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| SpecError::Read {
            path: path.into(),
            errno: e.into(),
        })?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(SpecError::TooLarge {
            path: path.into(),
            size: bytes.len() as u64,
        });
    }
    Ok(bytes)
}

/// Decodes a spec from JSON (not validated); `file` names the source in error messages.
pub fn parse(file: &Path, bytes: &[u8]) -> Result<Spec, SpecError> {
    locate::decode(file, bytes)
}

/// The default seccomp profile, tailored to the spec's bounding capabilities (syscall groups
/// gated by a capability stay denied without it).
pub fn default_seccomp(spec: &Spec) -> oci_spec::runtime::LinuxSeccomp {
    let bounding = spec
        .process()
        .as_ref()
        .and_then(|p| p.capabilities().clone())
        .and_then(|c| c.bounding().clone());
    seccomp_profile::default_profile_for(&bounding.unwrap_or_default())
}

/// process.terminal: whether the application gets a pty.
pub fn wants_terminal(spec: &Spec) -> bool {
    spec.process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false)
}

/// The adjustments nsboot makes to any spec it is given, before validation.
///
/// nsboot runs the container in a new user namespace (the supervisor is root only inside it),
/// so a spec without one, as engines write for rootful containers, gets one; the id mapping
/// is then chosen by the policy in DESIGN.md (identity as real root). Except with a mount
/// namespace joined by path: only the user namespace that owns it may enter it, so the spec's
/// choice stands, none meaning the caller's, as with runc.
pub fn adjust(spec: &mut Spec) {
    use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};
    if joins_mount_ns(spec) {
        return;
    }
    let linux = spec.linux_mut().get_or_insert_with(empty_linux);
    let namespaces = linux.namespaces_mut().get_or_insert_with(Vec::new);
    if !namespaces
        .iter()
        .any(|ns| ns.typ() == LinuxNamespaceType::User)
    {
        let mut user = LinuxNamespace::default();
        user.set_typ(LinuxNamespaceType::User);
        namespaces.push(user);
    }
}

/// The spec's `linux.namespaces` (none when absent).
pub fn namespaces(spec: &Spec) -> &[oci_spec::runtime::LinuxNamespace] {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_deref())
        .unwrap_or_default()
}

/// The spec lists a namespace of type `typ`, with or without a path.
pub fn lists(spec: &Spec, typ: oci_spec::runtime::LinuxNamespaceType) -> bool {
    namespaces(spec).iter().any(|n| n.typ() == typ)
}

/// The spec lists a mount namespace by path (`sandbox::nspath`, `rootfs::joined`).
pub fn joins_mount_ns(spec: &Spec) -> bool {
    namespaces(spec)
        .iter()
        .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Mount && n.path().is_some())
}

/// A `linux` section with nothing in it (oci-spec's `Default` fills in runc-like values).
pub(crate) fn empty_linux() -> oci_spec::runtime::Linux {
    serde_json::from_str("{}").expect("an empty linux object decodes")
}

/// The container's root directory as an absolute, canonical host path.
pub fn rootfs_path(spec: &Spec, bundle: &Path) -> Result<PathBuf, SpecError> {
    let root = spec
        .root()
        .as_ref()
        .map(|r| r.path().clone())
        .unwrap_or_default();
    let joined = if root.is_absolute() {
        root.clone()
    } else {
        bundle.join(&root)
    };
    let shown = if root.is_absolute() {
        root
    } else {
        joined.clone()
    };
    let path = std::fs::canonicalize(&joined).map_err(|e| SpecError::Rootfs {
        path: shown.clone(),
        errno: e.into(),
    })?;
    if !path.is_dir() {
        return Err(SpecError::Rootfs {
            path: shown,
            errno: Errno(libc::ENOTDIR),
        });
    }
    Ok(path)
}

#[cfg(test)]
mod do_tests;
#[cfg(test)]
mod fields_tests;
#[cfg(test)]
mod tests;
