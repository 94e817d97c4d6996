//! The cgroupfs driver's file work: directories made and removed, values written (each
//! failure naming the file and the value).

use std::os::fd::OwnedFd;
use std::path::Path;

use super::{Cgroup, CgroupError};
use crate::sys::Errno;

fn io(path: &Path, what: impl Into<String>, e: impl Into<Errno>) -> CgroupError {
    let errno = e.into();
    let hint = match errno.0 {
        libc::EACCES | libc::EPERM | libc::EROFS => {
            ": run as root, or in a cgroup delegated to you".into()
        }
        libc::EBUSY => ": processes are still in it".into(),
        _ => String::new(),
    };
    CgroupError::Io {
        path: path.into(),
        what: what.into(),
        errno,
        hint,
    }
}

/// Makes each directory and its parents; on v2 enables every controller the parent has for
/// its children on the way down (runc's way), so that the leaf has them.
pub fn create(cg: &Cgroup) -> Result<(), CgroupError> {
    for d in &cg.dirs {
        if cg.unified {
            let mut cur = std::path::PathBuf::from(super::layout::MOUNT);
            let rel = d.path.strip_prefix(&cur).unwrap_or(&d.path).to_path_buf();
            for part in rel.components() {
                enable_controllers(&cur);
                cur.push(part);
                mkdir(&cur)?;
            }
        } else {
            std::fs::create_dir_all(&d.path).map_err(|e| io(&d.path, "making it", e))?;
            if d.controllers.iter().any(|c| c == "cpuset") {
                let root = cpuset_root(&d.path);
                super::v1::fill_cpuset(&root, &d.path)?;
            }
        }
    }
    Ok(())
}

/// The mount point of the cpuset hierarchy holding `p` (its nearest ancestor that is one).
fn cpuset_root(p: &Path) -> std::path::PathBuf {
    let mut cur = p;
    while let Some(parent) = cur.parent() {
        if parent == Path::new(super::layout::MOUNT) {
            return cur.into();
        }
        cur = parent;
    }
    p.into()
}

fn mkdir(p: &Path) -> Result<(), CgroupError> {
    match std::fs::create_dir(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io(p, "making it", e)),
    }
}

/// Writes the directory's controllers to its subtree_control (all at once, else one by one:
/// one the parent lacks, or refused, leaves the others enabled). Best effort: a limit that then
/// has no file fails by name when it is written.
fn enable_controllers(dir: &Path) {
    let Ok(have) = std::fs::read_to_string(dir.join("cgroup.controllers")) else {
        return;
    };
    let enabled = std::fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
    let missing: Vec<&str> = have
        .split_whitespace()
        .filter(|c| !enabled.split_whitespace().any(|e| e == *c))
        .collect();
    if missing.is_empty() {
        return;
    }
    let file = dir.join("cgroup.subtree_control");
    let all: Vec<String> = missing.iter().map(|c| format!("+{c}")).collect();
    if std::fs::write(&file, all.join(" ")).is_err() {
        for c in all {
            let _ = std::fs::write(&file, c);
        }
    }
}

pub fn open_write(path: &Path) -> Result<OwnedFd, CgroupError> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map(OwnedFd::from)
        .map_err(|e| io(path, "opening it", e))
}

/// Writes `value` to `dir/file`.
pub fn write(dir: &Path, file: &str, value: &str) -> Result<(), CgroupError> {
    let path = dir.join(file);
    std::fs::write(&path, value).map_err(|e| io(&path, format!("writing {value:?}"), e))
}

pub fn read(dir: &Path, file: &str) -> Result<String, CgroupError> {
    let path = dir.join(file);
    std::fs::read_to_string(&path).map_err(|e| io(&path, "reading it", e))
}

/// Whether the hierarchy has this file (a controller enabled, a kernel feature).
pub fn has(dir: &Path, file: &str) -> bool {
    dir.join(file).exists()
}

/// Removes each directory (children first: `exec --cgroup`'s sub-cgroups), retrying a little
/// while the kernel still counts exiting processes in it. Missing ones are gone already.
pub fn remove(cg: &Cgroup) -> Result<(), CgroupError> {
    let mut first = None;
    for d in &cg.dirs {
        if let Err(e) = remove_tree(&d.path) {
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}

fn remove_tree(p: &Path) -> Result<(), CgroupError> {
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&e.path())?;
            }
        }
    }
    let mut tries = 0;
    loop {
        match std::fs::remove_dir(p) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && tries < 100 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => return Err(io(p, "removing it", e)),
        }
    }
}

/// Writes a spec field's value to `dir/file`; `dir` None: the controller the field needs has
/// no hierarchy here.
pub fn set(
    dir: Option<&Path>,
    field: &str,
    file: &str,
    value: impl std::fmt::Display,
) -> Result<(), CgroupError> {
    let value = value.to_string();
    let Some(dir) = dir else {
        let controller = file.split('.').next().unwrap_or(file);
        return Err(CgroupError::Unsupported {
            field: format!("linux.resources.{field}"),
            why: format!("no {controller} cgroup controller on this host: remove it"),
        });
    };
    let path = dir.join(file);
    std::fs::write(&path, &value).map_err(|e| CgroupError::Write {
        field: field.into(),
        value,
        path,
        errno: e.into(),
    })
}

/// The field cannot be applied on this hierarchy at all.
pub fn unsupported(field: &str, why: &str) -> CgroupError {
    CgroupError::Unsupported {
        field: format!("linux.resources.{field}"),
        why: why.into(),
    }
}
