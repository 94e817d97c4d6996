//! The two map writers: the caller writes /proc/PID/{setgroups,uid_map,gid_map} itself, or runs
//! the setuid helpers newuidmap/newgidmap (absolute path, clean environment, exit status and
//! stderr checked), while the child blocks on its sync fd.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::unistd::Pid;

use super::helpers::Privilege;
use super::{IdRange, IdmapError, Mapping, Writer};

/// Maps being written: done, or the uidmap helpers still running ([`Pending::finish`] waits).
pub enum Pending {
    Done,
    Helpers { uid: Helper, gid: Helper },
}

/// A running newuidmap/newgidmap, with what its error needs.
pub struct Helper {
    child: std::process::Child,
    args: String,
    tool: PathBuf,
    pid: Pid,
    /// The subordinate-id file its ranges come from, named in the fix.
    file: &'static str,
}

/// Writes the maps of `pid` (blocked on its sync fd in a new user namespace) directly, or
/// starts the helpers and returns without waiting for them: their exec (setuid, slow to start)
/// overlaps with the caller's own work.
pub fn start_writing(pid: Pid, m: &Mapping) -> Result<Pending, IdmapError> {
    match &m.writer {
        Writer::Direct { deny_setgroups } => {
            let proc = PathBuf::from(format!("/proc/{pid}"));
            if *deny_setgroups {
                write_file(&proc.join("setgroups"), "deny")?;
            }
            write_file(&proc.join("uid_map"), &lines(&m.uids))?;
            write_file(&proc.join("gid_map"), &lines(&m.gids))?;
            Ok(Pending::Done)
        }
        Writer::Helpers {
            newuidmap,
            newgidmap,
        } => {
            // Both helpers at once: each is an exec of a setuid binary, the slowest step of a
            // launch with ranges; they write different files of the same process.
            let uid = start_helper(newuidmap, pid, &m.uids, "/etc/subuid")?;
            let gid = match start_helper(newgidmap, pid, &m.gids, "/etc/subgid") {
                Ok(g) => g,
                Err(e) => {
                    let _ = uid.finish();
                    return Err(e);
                }
            };
            Ok(Pending::Helpers { uid, gid })
        }
    }
}

impl Pending {
    pub fn is_done(&self) -> bool {
        matches!(self, Pending::Done)
    }

    /// Waits for the helpers; their exit statuses and stderr are checked.
    pub fn finish(self) -> Result<(), IdmapError> {
        match self {
            Pending::Done => Ok(()),
            Pending::Helpers { uid, gid } => {
                let u = uid.finish();
                u.and(gid.finish())
            }
        }
    }
}

fn lines(r: &[IdRange]) -> String {
    r.iter().map(|r| format!("{r}\n")).collect()
}

fn write_file(path: &Path, text: &str) -> Result<(), IdmapError> {
    fs::write(path, text).map_err(|e| IdmapError::Write {
        path: path.into(),
        map: text.trim_end().replace('\n', ", "),
        errno: e.into(),
    })
}

/// Starts newuidmap/newgidmap with a clean environment (absolute path, no PATH lookup).
fn start_helper(
    tool: &Path,
    pid: Pid,
    ranges: &[IdRange],
    file: &'static str,
) -> Result<Helper, IdmapError> {
    let args: Vec<String> = ranges
        .iter()
        .flat_map(|r| [r.container, r.host, r.size])
        .map(|v| v.to_string())
        .collect();
    let child = Command::new(tool)
        .arg(pid.to_string())
        .args(&args)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| IdmapError::HelperSpawn {
            tool: tool.display().to_string(),
            errno: e.into(),
        })?;
    Ok(Helper {
        child,
        args: args.join(" "),
        tool: tool.into(),
        pid,
        file,
    })
}

impl Helper {
    /// Waits for the helper; its exit status and stderr are checked.
    fn finish(self) -> Result<(), IdmapError> {
        let Helper {
            child,
            args,
            tool,
            pid,
            file,
        } = self;
        let out = child
            .wait_with_output()
            .map_err(|e| IdmapError::HelperSpawn {
                tool: tool.display().to_string(),
                errno: e.into(),
            })?;
        if out.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        Err(IdmapError::HelperFailed {
            tool: tool.display().to_string(),
            pid: pid.as_raw(),
            args,
            stderr: stderr.trim().replace('\n', "; "),
            fix: match super::helpers::privilege(&tool) {
                Privilege::SetuidRoot | Privilege::FileCaps => {
                    format!("check your ranges in {file}; they must cover the spec's uid/gid mappings")
                }
                Privilege::OwnerUnmapped { .. } => format!(
                    "{} is setuid, but its owner is not mapped in this user namespace: map only your own id here",
                    tool.display()
                ),
                _ => format!("{} is neither setuid root nor has file capabilities: chmod u+s it, or reinstall the uidmap package", tool.display()),
            },
        })
    }
}
