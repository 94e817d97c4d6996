//! What nsboot requires of a spec beyond what decodes: each error names the JSON path and the
//! fix. Names of capabilities, rlimits and namespaces are already checked by decoding (they are
//! enums in oci-spec), so the checks here are about values and their combinations.

use std::collections::HashSet;
use std::path::{Component, Path};

use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Process};

use super::{contract, Spec, SpecError};

/// The kernel's limit on the lines of one uid_map / gid_map (since Linux 4.15).
const MAX_ID_MAP_LINES: usize = 340;
const MAX_ID_LEN: usize = 1024;

pub fn validate(spec: &Spec) -> Result<(), SpecError> {
    check_version(spec.version())?;
    let process = spec.process().as_ref().ok_or_else(|| {
        SpecError::invalid(
            "process",
            "missing: add a process with args and cwd (`nsboot spec` writes one)",
        )
    })?;
    check_process(process)?;
    contract::check_user(process)?;
    match spec.root() {
        None => {
            return Err(SpecError::invalid(
                "root",
                "missing: add {\"path\": \"rootfs\"}",
            ))
        }
        Some(r) if r.path().as_os_str().is_empty() => {
            return Err(SpecError::invalid(
                "root.path",
                "empty: name the rootfs directory, e.g. \"rootfs\"",
            ))
        }
        Some(_) => {}
    }
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        check_container_path(&format!("mounts[{i}].destination"), m.destination())?;
    }
    check_namespaces(spec)?;
    contract::check_namespaces(spec)?;
    contract::check_linux(spec)?;
    super::tuning::check(spec)?;
    super::sysctl::check(spec)?;
    contract::check_mounts(spec)?;
    contract::check_hooks(spec)?;
    let linux = spec.linux().as_ref();
    let uid_maps = linux
        .and_then(|l| l.uid_mappings().as_deref())
        .unwrap_or_default();
    let gid_maps = linux
        .and_then(|l| l.gid_mappings().as_deref())
        .unwrap_or_default();
    check_id_maps("linux.uidMappings", uid_maps)?;
    check_id_maps("linux.gidMappings", gid_maps)?;
    check_user_mapped(process, uid_maps, gid_maps)?;
    Ok(())
}

fn check_version(version: &str) -> Result<(), SpecError> {
    if version.is_empty() {
        return Err(SpecError::invalid(
            "ociVersion",
            "missing: add \"ociVersion\": \"1.0.2\"",
        ));
    }
    if version.split('.').next() != Some("1") {
        return Err(SpecError::invalid(
            "ociVersion",
            format!("{version:?} is not supported: nsboot runs OCI runtime spec 1.x; set \"ociVersion\": \"1.0.2\""),
        ));
    }
    Ok(())
}

fn check_process(process: &Process) -> Result<(), SpecError> {
    let args = process.args().as_deref().unwrap_or_default();
    if args.is_empty() {
        return Err(SpecError::invalid(
            "process.args",
            "empty: give the command to run, e.g. [\"sh\"]",
        ));
    }
    if args[0].is_empty() {
        return Err(SpecError::invalid(
            "process.args[0]",
            "empty program name: name the program to run",
        ));
    }
    for (i, a) in args.iter().enumerate() {
        no_nul(&format!("process.args[{i}]"), a)?;
    }
    for (i, e) in process.env().iter().flatten().enumerate() {
        let path = format!("process.env[{i}]");
        no_nul(&path, e)?;
        if !e.split_once('=').is_some_and(|(k, _)| !k.is_empty()) {
            return Err(SpecError::invalid(
                path,
                format!("{e:?} is not KEY=VALUE: write it as NAME=value"),
            ));
        }
    }
    let cwd = process.cwd();
    if !cwd.is_absolute() {
        return Err(SpecError::invalid(
            "process.cwd",
            format!(
                "{:?} is not absolute: use a path inside the container starting with /",
                cwd.display().to_string()
            ),
        ));
    }
    let mut seen = HashSet::new();
    for (i, r) in process.rlimits().iter().flatten().enumerate() {
        let name = rlimit_name(r.typ());
        if r.soft() > r.hard() {
            return Err(SpecError::invalid(
                format!("process.rlimits[{i}]"),
                format!(
                    "soft limit {} is above hard limit {} for {name}: lower soft or raise hard",
                    r.soft(),
                    r.hard()
                ),
            ));
        }
        if !seen.insert(name.clone()) {
            return Err(SpecError::invalid(
                format!("process.rlimits[{i}]"),
                format!("{name} is set twice: keep one"),
            ));
        }
    }
    if let Some(adj) = process.oom_score_adj() {
        if !(-1000..=1000).contains(&adj) {
            return Err(SpecError::invalid(
                "process.oomScoreAdj",
                format!("{adj} is outside -1000..1000"),
            ));
        }
    }
    Ok(())
}

fn rlimit_name(typ: oci_spec::runtime::PosixRlimitType) -> String {
    serde_json::to_value(typ)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{typ:?}"))
}

fn no_nul(path: &str, s: &str) -> Result<(), SpecError> {
    if s.contains('\0') {
        return Err(SpecError::invalid(
            path,
            "contains a NUL byte, which exec cannot pass: remove it",
        ));
    }
    Ok(())
}

/// An absolute path with no `..`: mount code joins these under the new root, where a `..`
/// could climb out of it.
fn check_container_path(json_path: &str, p: &Path) -> Result<(), SpecError> {
    let shown = p.display().to_string();
    if !p.is_absolute() {
        return Err(SpecError::invalid(
            json_path,
            format!("{shown:?} is not absolute: use a path inside the container starting with /"),
        ));
    }
    if p.components().any(|c| c == Component::ParentDir) {
        return Err(SpecError::invalid(
            json_path,
            format!("{shown:?} has a .. component: write the path without .."),
        ));
    }
    Ok(())
}

fn ns_name(typ: LinuxNamespaceType) -> String {
    serde_json::to_value(typ)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{typ:?}"))
}

fn check_namespaces(spec: &Spec) -> Result<(), SpecError> {
    let namespaces = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_deref())
        .unwrap_or_default();
    let mut seen = HashSet::new();
    for (i, ns) in namespaces.iter().enumerate() {
        if !seen.insert(ns.typ()) {
            return Err(SpecError::invalid(
                format!("linux.namespaces[{i}]"),
                format!(
                    "duplicate {} namespace: list each type once",
                    ns_name(ns.typ())
                ),
            ));
        }
    }
    if !seen.contains(&LinuxNamespaceType::User) && !super::joins_mount_ns(spec) {
        return Err(SpecError::invalid(
            "linux.namespaces",
            "no user namespace: nsboot always runs in one; add {\"type\":\"user\"}",
        ));
    }
    for (field, value) in [
        ("hostname", spec.hostname()),
        ("domainname", spec.domainname()),
    ] {
        if value.as_deref().is_some_and(|v| !v.is_empty())
            && !seen.contains(&LinuxNamespaceType::Uts)
        {
            return Err(SpecError::invalid(
                field,
                format!("set, but linux.namespaces has no uts namespace: add {{\"type\":\"uts\"}} or remove {field}"),
            ));
        }
    }
    Ok(())
}

/// Sizes > 0, no 32-bit overflow, no range overlapping another on either side: the kernel
/// refuses such a map with a bare EINVAL, so say which entry is wrong first.
fn check_id_maps(name: &str, maps: &[LinuxIdMapping]) -> Result<(), SpecError> {
    if maps.len() > MAX_ID_MAP_LINES {
        return Err(SpecError::invalid(
            name,
            format!(
                "{} ranges: the kernel takes at most {MAX_ID_MAP_LINES}: merge adjacent ranges",
                maps.len()
            ),
        ));
    }
    let end = |start: u32, size: u32| u64::from(start) + u64::from(size);
    for (i, m) in maps.iter().enumerate() {
        if m.size() == 0 {
            return Err(SpecError::invalid(
                format!("{name}[{i}].size"),
                "0: a range must map at least one id",
            ));
        }
        for (what, start) in [("containerID", m.container_id()), ("hostID", m.host_id())] {
            // The kernel computes first + count in 32 bits and refuses an overflow.
            if end(start, m.size()) > u64::from(u32::MAX) {
                return Err(SpecError::invalid(
                    format!("{name}[{i}]"),
                    format!("{what} {start} + size {} is over 4294967295, the kernel's limit: shrink the size", m.size()),
                ));
            }
        }
        for (j, prev) in maps[..i].iter().enumerate() {
            for (side, a, b) in [
                ("container", m.container_id(), prev.container_id()),
                ("host", m.host_id(), prev.host_id()),
            ] {
                if a < b.saturating_add(prev.size()) && b < a.saturating_add(m.size()) {
                    return Err(SpecError::invalid(
                        format!("{name}[{i}]"),
                        format!(
                            "{side} ids {a}-{} overlap {name}[{j}]: each id may be mapped once; fix the ranges",
                            end(a, m.size()) - 1
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

fn is_mapped(maps: &[LinuxIdMapping], id: u32) -> bool {
    maps.iter().any(|m| {
        id >= m.container_id() && u64::from(id) < u64::from(m.container_id()) + u64::from(m.size())
    })
}

/// With explicit mappings, the process's ids must be among them, or setuid fails at exec time
/// with EINVAL deep inside the sandbox. Without mappings nsboot chooses them (DESIGN.md).
fn check_user_mapped(
    process: &Process,
    uid_maps: &[LinuxIdMapping],
    gid_maps: &[LinuxIdMapping],
) -> Result<(), SpecError> {
    let user = process.user();
    if !uid_maps.is_empty() && !is_mapped(uid_maps, user.uid()) {
        return Err(SpecError::invalid(
            "process.user.uid",
            format!(
                "{} is not mapped by linux.uidMappings: map it or run as a mapped user",
                user.uid()
            ),
        ));
    }
    if gid_maps.is_empty() {
        return Ok(());
    }
    if !is_mapped(gid_maps, user.gid()) {
        return Err(SpecError::invalid(
            "process.user.gid",
            format!(
                "{} is not mapped by linux.gidMappings: map it or run as a mapped group",
                user.gid()
            ),
        ));
    }
    for (i, g) in user.additional_gids().iter().flatten().enumerate() {
        if !is_mapped(gid_maps, *g) {
            return Err(SpecError::invalid(
                format!("process.user.additionalGids[{i}]"),
                format!("{g} is not mapped by linux.gidMappings: map it or drop it"),
            ));
        }
    }
    Ok(())
}

/// A container id as runc accepts it: letters, digits, `+ - . _`; not `.` or `..`; at most
/// 1024 bytes. The id names a directory in the state dir, so no `/` can slip through.
pub fn validate_id(id: &str) -> Result<(), SpecError> {
    let bad = |why: String| {
        Err(SpecError::Id {
            id: id.to_string(),
            why,
        })
    };
    if id.is_empty() {
        return bad("empty".into());
    }
    if id.len() > MAX_ID_LEN {
        return bad(format!("{} characters long", id.len()));
    }
    if id == "." || id == ".." {
        return bad("reserved name".into());
    }
    // Dot-names in the state root are nsboot's own (the seccomp cache, a container's private
    // name while it is being created).
    if id.starts_with('.') {
        return bad("it starts with '.', which nsboot keeps for its own files".into());
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.' | '_')))
    {
        return bad(format!("character {c:?} is not allowed"));
    }
    Ok(())
}
