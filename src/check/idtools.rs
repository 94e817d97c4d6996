//! newuidmap / newgidmap: present where nsboot looks (fixed directories only: they are setuid,
//! so `idmap` never takes them from PATH), and privileged (setuid root or file capabilities).
//! `NSBOOT_NEWUIDMAP` / `NSBOOT_NEWGIDMAP` replace the search, as they do in `idmap`.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{Caller, Item};

const DIRS: [&str; 4] = ["/usr/bin", "/bin", "/usr/sbin", "/sbin"];

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

/// Looks up `tool`: the override variable, then the fixed directories, then PATH.
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
    None,
}

fn privilege(path: &Path) -> Privilege {
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
    } else {
        Privilege::None
    }
}

/// Whether `path` carries a security.capability xattr (setcap).
fn has_file_caps(path: &Path) -> bool {
    let Ok(cpath) = CString::new(path.as_os_str().as_bytes()) else {
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

/// The item for one helper. `cap`: the capability it needs ("cap_setuid" / "cap_setgid").
pub fn judge(
    tool: &str,
    cap: &str,
    found: &Located,
    privilege: Option<Privilege>,
    caller: &Caller,
) -> Item {
    let sudo = caller.sudo();
    let apt = format!("{sudo}apt-get install uidmap");
    let install = format!("run: {apt}");
    let single = "only your own id can be mapped (single map)";
    // euid 0 (real root, or root in an engine's user namespace) writes maps directly.
    if caller.uid == 0 {
        let detail = match found {
            Located::Fixed(p) | Located::Override { path: p, .. } => {
                format!("{} (not needed as root)", p.display())
            }
            _ => "not installed (not needed as root: maps are written directly)".into(),
        };
        return Item::ok(tool, detail);
    }
    let path = match found {
        Located::Missing => {
            let dirs = DIRS.join(", ");
            return Item::warn(
                tool,
                format!("not found in {dirs} or PATH: {single}"),
                install,
            );
        }
        Located::OnPath(p) => {
            return Item::warn(
                tool,
                format!(
                    "only at {} (on PATH); nsboot takes setuid helpers from {} only: {single}",
                    p.display(),
                    DIRS.join(", ")
                ),
                format!("run: {sudo}ln -s {} /usr/bin/{tool}, or {apt}", p.display()),
            );
        }
        Located::Override { var, path } if !path.is_file() => {
            return Item::warn(
                tool,
                format!("{var}={} does not exist: {single}", path.display()),
                format!("unset {var}, or {install}"),
            );
        }
        Located::Override { path, .. } | Located::Fixed(path) => path,
    };
    let p = path.display();
    match privilege.unwrap_or(Privilege::None) {
        Privilege::SetuidRoot => Item::ok(tool, format!("{p} (setuid root)")),
        Privilege::FileCaps => Item::ok(tool, format!("{p} (file capabilities)")),
        Privilege::NotExecutable => Item::warn(
            tool,
            format!("{p} is not executable: {single}"),
            format!("run: {sudo}chmod 4755 {p}, or reinstall: {apt}"),
        ),
        Privilege::None => Item::warn(
            tool,
            format!("{p} is neither setuid root nor has file capabilities: {single}"),
            format!("run: {sudo}chmod u+s {p} (or {sudo}setcap {cap}+ep {p})"),
        ),
    }
}

pub fn items(caller: &Caller) -> Vec<Item> {
    let path_env = std::env::var("PATH").ok();
    [
        ("newuidmap", "NSBOOT_NEWUIDMAP", "cap_setuid"),
        ("newgidmap", "NSBOOT_NEWGIDMAP", "cap_setgid"),
    ]
    .into_iter()
    .map(|(tool, var, cap)| {
        let found = locate(
            tool,
            var,
            std::env::var(var).ok().as_deref(),
            path_env.as_deref(),
        );
        let priv_ = match &found {
            Located::Fixed(p) | Located::Override { path: p, .. } => Some(privilege(p)),
            _ => None,
        };
        judge(tool, cap, &found, priv_, caller)
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Status;

    fn user() -> Caller {
        Caller {
            uid: 1000,
            gid: 1000,
            name: Some("alice".into()),
            rootless: true,
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
        assert_eq!(
            l,
            Located::Override {
                var: "NSBOOT_NEWUIDMAP",
                path: "/nonexistent".into()
            }
        );
        let item = judge("newuidmap", "cap_setuid", &l, None, &user());
        assert_eq!(item.status, Status::Warn);
        assert!(item.fix.unwrap().contains("apt-get install uidmap"));
    }

    #[test]
    fn missing_and_path_only_helpers_warn_with_a_fix() {
        let none = locate("nsboot-no-such-tool", "X", None, Some("/nonexistent:"));
        assert_eq!(none, Located::Missing);
        let item = judge("newuidmap", "cap_setuid", &none, None, &user());
        assert_eq!(
            (item.status, item.fix.as_deref()),
            (Status::Warn, Some("run: sudo apt-get install uidmap"))
        );
        let on_path = Located::OnPath("/opt/x/newuidmap".into());
        let item = judge("newuidmap", "cap_setuid", &on_path, None, &user());
        assert_eq!(item.fix.as_deref(), Some("run: sudo ln -s /opt/x/newuidmap /usr/bin/newuidmap, or sudo apt-get install uidmap"));
    }

    #[test]
    fn privilege_decides_between_ok_and_warn() {
        let at = Located::Fixed("/usr/bin/newgidmap".into());
        let ok = judge(
            "newgidmap",
            "cap_setgid",
            &at,
            Some(Privilege::FileCaps),
            &user(),
        );
        assert_eq!(ok.status, Status::Ok);
        let bare = judge(
            "newgidmap",
            "cap_setgid",
            &at,
            Some(Privilege::None),
            &user(),
        );
        assert_eq!(bare.status, Status::Warn);
        assert!(bare
            .fix
            .unwrap()
            .contains("setcap cap_setgid+ep /usr/bin/newgidmap"));
        let root = Caller {
            uid: 0,
            gid: 0,
            name: None,
            rootless: false,
        };
        assert_eq!(
            judge("newgidmap", "cap_setgid", &Located::Missing, None, &root).status,
            Status::Ok
        );
    }
}
