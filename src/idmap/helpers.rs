//! newuidmap / newgidmap: where nsboot takes them (fixed directories only, never PATH: they
//! are setuid), whether they can work here, and what to do when they cannot. `check` reports
//! from the same lookup the launch decides with.
//!
//! NSBOOT_NEWUIDMAP / NSBOOT_NEWGIDMAP replace the search (tests use them to hide the helpers
//! or to offer a copy without the setuid bit).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::Writer;

pub const DIRS: [&str; 4] = ["/usr/bin", "/bin", "/usr/sbin", "/sbin"];

/// The two helpers: (tool, override variable, the capability a setcap'd copy needs).
pub const TOOLS: [(&str, &str, &str); 2] = [
    ("newuidmap", "NSBOOT_NEWUIDMAP", "cap_setuid"),
    ("newgidmap", "NSBOOT_NEWGIDMAP", "cap_setgid"),
];

/// Where a helper was (or was not) found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Located {
    /// Named by the override variable (it may not exist).
    Override {
        var: &'static str,
        path: PathBuf,
    },
    Fixed(PathBuf),
    /// Only on PATH: nsboot will not use it.
    OnPath(PathBuf),
    Missing,
}

/// Looks up `tool`: the override variable, then the fixed directories, then PATH (only to say
/// where it is when nsboot will not take it).
pub fn locate(
    tool: &str,
    var: &'static str,
    env_override: Option<&str>,
    path_env: Option<&str>,
) -> Located {
    if let Some(p) = env_override {
        return Located::Override {
            var,
            path: PathBuf::from(p),
        };
    }
    if let Some(p) = DIRS
        .iter()
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.is_file())
    {
        return Located::Fixed(p);
    }
    let on_path = path_env.unwrap_or("").split(':').filter(|d| !d.is_empty());
    match on_path
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.is_file())
    {
        Some(p) => Located::OnPath(p),
        None => Located::Missing,
    }
}

/// How a found helper gets its privilege.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privilege {
    SetuidRoot,
    FileCaps,
    NotExecutable,
    /// Setuid, but its owner is not mapped in this user namespace (it shows as the overflow
    /// uid, nobody): the kernel will not make it root, here, whatever its mode on the host.
    OwnerUnmapped {
        owner: u32,
    },
    None,
}

pub fn privilege(path: &Path) -> Privilege {
    let Ok(meta) = std::fs::metadata(path) else {
        return Privilege::NotExecutable;
    };
    let mode = meta.permissions().mode();
    if mode & 0o111 == 0 {
        Privilege::NotExecutable
    } else if meta.uid() == 0 && mode & 0o4000 != 0 {
        Privilege::SetuidRoot
    } else if has_file_caps(path) {
        Privilege::FileCaps
    } else if mode & 0o4000 != 0 && meta.uid() == overflow_uid() {
        Privilege::OwnerUnmapped { owner: meta.uid() }
    } else {
        Privilege::None
    }
}

/// The uid an unmapped owner shows as (kernel.overflowuid, 65534 by default).
fn overflow_uid() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/overflowuid")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(65534)
}

/// Whether `path` carries a security.capability xattr (setcap).
fn has_file_caps(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(cpath) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: both strings are NUL-terminated and outlive the call; a null buffer of size 0
    // only asks for the attribute's size, so nothing is written.
    let n = unsafe {
        libc::getxattr(
            cpath.as_ptr(),
            c"security.capability".as_ptr(),
            std::ptr::null_mut(),
            0,
        )
    };
    n > 0
}

/// One helper as nsboot sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub tool: &'static str,
    pub cap: &'static str,
    pub located: Located,
    /// For a helper nsboot would take (fixed directory or override that exists).
    pub privilege: Option<Privilege>,
}

/// Why a helper cannot map subordinate ids here, and the fix (`sudo`: "sudo " or "").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unusable {
    pub why: String,
    pub fix: String,
}

impl Found {
    pub fn current(tool: &'static str, var: &'static str, cap: &'static str) -> Found {
        let located = locate(
            tool,
            var,
            std::env::var(var).ok().as_deref(),
            std::env::var("PATH").ok().as_deref(),
        );
        let privilege = match &located {
            Located::Fixed(p) => Some(privilege(p)),
            Located::Override { path, .. } if path.is_file() => Some(privilege(path)),
            _ => None,
        };
        Found {
            tool,
            cap,
            located,
            privilege,
        }
    }

    /// The path nsboot runs, when the helper can work.
    pub fn usable(&self) -> Option<&Path> {
        match (&self.located, self.privilege) {
            (
                Located::Fixed(p) | Located::Override { path: p, .. },
                Some(Privilege::SetuidRoot | Privilege::FileCaps),
            ) => Some(p),
            _ => None,
        }
    }

    /// Why the helper cannot work here, and the fix; None when it can.
    pub fn unusable(&self, sudo: &str) -> Option<Unusable> {
        let tool = self.tool;
        let apt = format!("{sudo}apt-get install uidmap");
        let dirs = DIRS.join(", ");
        let u = |why: String, fix: String| Some(Unusable { why, fix });
        match (&self.located, self.privilege) {
            (Located::Missing, _) => u(
                format!("{tool} is not installed (not in {dirs})"),
                format!("run: {apt}"),
            ),
            (Located::OnPath(p), _) => u(
                format!(
                    "{tool} is only at {} (on PATH); nsboot takes setuid helpers from {dirs} only",
                    p.display()
                ),
                format!("run: {sudo}ln -s {} /usr/bin/{tool}, or {apt}", p.display()),
            ),
            (Located::Override { var, path }, None) => u(
                format!("{var}={} does not exist", path.display()),
                format!("unset {var}, or run: {apt}"),
            ),
            (Located::Fixed(p) | Located::Override { path: p, .. }, Some(privilege)) => {
                let p = p.display();
                match privilege {
                    Privilege::SetuidRoot | Privilege::FileCaps => None,
                    Privilege::NotExecutable => u(
                        format!("{p} is not executable"),
                        format!("run: {sudo}chmod 4755 {p}, or reinstall: {apt}"),
                    ),
                    Privilege::OwnerUnmapped { owner } => u(
                        format!("{p} is setuid, but its owner is not mapped in this user namespace (it shows as uid {owner}), so it cannot act as root here"),
                        "run nsboot outside this user namespace for subordinate ids (nothing to change on the file)".into(),
                    ),
                    Privilege::None => u(
                        format!("{p} is neither setuid root nor has file capabilities"),
                        format!("run: {sudo}chmod u+s {p} (or {sudo}setcap {}+ep {p})", self.cap),
                    ),
                }
            }
            (Located::Fixed(_), None) => None,
        }
    }
}

/// Both helpers as nsboot sees them.
pub fn found() -> [Found; 2] {
    TOOLS.map(|(tool, var, cap)| Found::current(tool, var, cap))
}

/// The helpers nsboot would run, or why they cannot work here (the first of the two).
pub fn helpers(sudo: &str) -> Result<Writer, Unusable> {
    let [u, g] = found();
    match (u.usable(), g.usable()) {
        (Some(uid), Some(gid)) => Ok(Writer::Helpers {
            newuidmap: uid.into(),
            newgidmap: gid.into(),
        }),
        _ => Err(u
            .unusable(sudo)
            .or_else(|| g.unusable(sudo))
            .unwrap_or(Unusable {
                why: "newuidmap/newgidmap cannot work here".into(),
                fix: "reinstall the uidmap package".into(),
            })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(located: Located, privilege: Option<Privilege>) -> Found {
        Found {
            tool: "newuidmap",
            cap: "cap_setuid",
            located,
            privilege,
        }
    }

    #[test]
    fn override_replaces_the_search() {
        let l = locate(
            "newuidmap",
            "NSBOOT_NEWUIDMAP",
            Some("/nonexistent"),
            Some("/usr/bin"),
        );
        let why = found(l, None).unusable("sudo ").unwrap();
        assert_eq!(why.why, "NSBOOT_NEWUIDMAP=/nonexistent does not exist");
        assert!(why.fix.contains("apt-get install uidmap"));
    }

    #[test]
    fn missing_and_path_only_helpers_name_the_fix() {
        let none = locate("nsboot-no-such-tool", "X", None, Some("/nonexistent:"));
        assert_eq!(none, Located::Missing);
        let why = found(none, None).unusable("sudo ").unwrap();
        assert_eq!(why.fix, "run: sudo apt-get install uidmap");
        let on_path = found(Located::OnPath("/opt/x/newuidmap".into()), None);
        assert_eq!(
            on_path.unusable("sudo ").unwrap().fix,
            "run: sudo ln -s /opt/x/newuidmap /usr/bin/newuidmap, or sudo apt-get install uidmap"
        );
    }

    #[test]
    fn a_setuid_helper_is_never_told_to_become_setuid() {
        let at = Located::Fixed("/usr/bin/newuidmap".into());
        assert_eq!(
            found(at.clone(), Some(Privilege::SetuidRoot)).unusable(""),
            None
        );
        let unmapped = found(at.clone(), Some(Privilege::OwnerUnmapped { owner: 65534 }));
        let why = unmapped.unusable("sudo ").unwrap();
        assert!(why.why.contains("shows as uid 65534"), "{why:?}");
        assert!(!why.fix.contains("chmod"), "{why:?}");
        let plain = found(at, Some(Privilege::None)).unusable("sudo ").unwrap();
        assert!(plain
            .fix
            .contains("setcap cap_setuid+ep /usr/bin/newuidmap"));
    }
}
