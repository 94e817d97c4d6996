//! Id mapping: the policy table of DESIGN.md (who calls x what the spec says -> which maps,
//! written by whom), the caller's subordinate ranges, and the two map writers.
//!
//! The maps are written by the caller, from outside the new user namespace, while the child
//! blocks on the sync fd (see `userns`).

use std::fmt;
use std::fs;
use std::path::PathBuf;

use nix::unistd::{Gid, Uid};
use serde::{Deserialize, Serialize};

use crate::sys::Errno;

pub mod helpers;
pub mod subid;
mod writers;

pub use helpers::helpers;
pub use writers::{start_writing, Pending};

/// The inode of the initial user namespace (PROC_USER_INIT_INO in the kernel).
const INITIAL_USERNS_INODE: u64 = 0xEFFF_FFFD;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdRange {
    pub container: u32,
    pub host: u32,
    pub size: u32,
}

impl fmt::Display for IdRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.container, self.host, self.size)
    }
}

/// The uid and the gid ranges of a mapping.
pub type Maps = (Vec<IdRange>, Vec<IdRange>);

/// Who writes the maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Writer {
    /// Write /proc/PID/{uid,gid}_map ourselves; `deny_setgroups` for an unprivileged single map.
    Direct { deny_setgroups: bool },
    /// The setuid helpers from the `uidmap` package, for subordinate ranges.
    Helpers {
        newuidmap: PathBuf,
        newgidmap: PathBuf,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub uids: Vec<IdRange>,
    pub gids: Vec<IdRange>,
    pub writer: Writer,
    /// A one-line notice for the user (e.g. why only a single id is mapped).
    pub notice: Option<String>,
}

/// The caller as the policy sees it.
#[derive(Debug, Clone)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    pub name: Option<String>,
    /// euid 0 in the initial user namespace.
    pub real_root: bool,
    /// euid 0 inside a non-initial user namespace (e.g. rootless podman's).
    pub root_in_userns: bool,
}

#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
pub enum IdmapError {
    #[error("{what} maps several id ranges but {why}: {fix}, or map only your own id")]
    Helpers {
        what: String,
        why: String,
        fix: String,
    },
    #[error("{tool} {pid} {args} failed: {stderr} ({fix})")]
    HelperFailed {
        tool: String,
        pid: i32,
        args: String,
        stderr: String,
        fix: String,
    },
    #[error("{what} maps id ranges but {user} has no entry in {file}: add one ({usermod}) or map only your own id")]
    NoSubids {
        what: String,
        user: String,
        file: String,
        usermod: String,
    },
    #[error("running {tool}: {errno}: reinstall the uidmap package")]
    HelperSpawn { tool: String, errno: Errno },
    #[error("writing {path}: {errno} (the map was {map:?})")]
    Write {
        path: PathBuf,
        map: String,
        errno: Errno,
    },
}

/// Whether nsboot runs rootless: euid != 0, or inside a user namespace other than the initial one.
pub fn is_rootless() -> bool {
    !Uid::effective().is_root() || !in_initial_userns()
}

pub fn in_initial_userns() -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self/ns/user")
        .map(|m| m.ino() == INITIAL_USERNS_INODE)
        .unwrap_or(true)
}

impl Caller {
    /// The user's name, as given or from the user database.
    pub fn user_name(&self) -> Option<String> {
        self.name.clone().or_else(|| {
            nix::unistd::User::from_uid(Uid::from_raw(self.uid))
                .ok()
                .flatten()
                .map(|u| u.name)
        })
    }

    /// The name for messages and usermod: the user name, else the numeric uid.
    pub fn user(&self) -> String {
        self.user_name().unwrap_or_else(|| self.uid.to_string())
    }

    /// "sudo " when the caller is not root, so that fixes can be pasted as they are.
    pub fn sudo(&self) -> &'static str {
        if self.uid == 0 {
            ""
        } else {
            "sudo "
        }
    }

    /// euid != 0, or inside a user namespace other than the initial one.
    pub fn rootless(&self) -> bool {
        !self.real_root
    }

    pub fn current() -> Caller {
        let uid = Uid::effective();
        let initial = in_initial_userns();
        Caller {
            uid: uid.as_raw(),
            gid: Gid::effective().as_raw(),
            // Looked up only when a subid file must be searched (NSS is not free).
            name: None,
            real_root: uid.is_root() && initial,
            root_in_userns: uid.is_root() && !initial,
        }
    }
}

/// Applies the policy table: given the spec's mappings (possibly empty), which maps to write
/// and how. `what` names the asker in errors ("the spec", "--subids").
pub fn choose(
    spec_uids: &[IdRange],
    spec_gids: &[IdRange],
    caller: &Caller,
) -> Result<Mapping, IdmapError> {
    choose_for("the spec", spec_uids, spec_gids, caller)
}

fn choose_for(
    what: &str,
    spec_uids: &[IdRange],
    spec_gids: &[IdRange],
    caller: &Caller,
) -> Result<Mapping, IdmapError> {
    let mapping = |uids: Vec<IdRange>, gids: Vec<IdRange>, writer, notice| Mapping {
        uids,
        gids,
        writer,
        notice,
    };
    if caller.real_root || caller.root_in_userns {
        let (uids, gids) = if spec_uids.is_empty() {
            (
                identity_of("/proc/self/uid_map"),
                identity_of("/proc/self/gid_map"),
            )
        } else {
            (spec_uids.to_vec(), spec_gids.to_vec())
        };
        return Ok(mapping(uids, gids, direct(false), None));
    }
    let self_map = |r: &[IdRange], id: u32| r.len() == 1 && r[0].host == id && r[0].size == 1;
    if !spec_uids.is_empty() {
        let writer = if self_map(spec_uids, caller.uid) && self_map(spec_gids, caller.gid) {
            direct(true)
        } else {
            let writer = helpers(caller.sudo()).map_err(|u| IdmapError::Helpers {
                what: what.into(),
                why: u.why,
                fix: u.fix,
            })?;
            check_subids(what, caller)?;
            writer
        };
        return Ok(mapping(
            spec_uids.to_vec(),
            spec_gids.to_vec(),
            writer,
            None,
        ));
    }
    // No mappings in the spec: 0 -> caller, 1.. -> the first subordinate range if usable.
    match subordinate(caller) {
        Ok((uids, gids, writer)) => Ok(mapping(uids, gids, writer, None)),
        Err(why) => Ok(mapping(
            vec![own(caller.uid)],
            vec![own(caller.gid)],
            direct(true),
            Some(format!("{why}: only your own id is mapped")),
        )),
    }
}

fn direct(deny_setgroups: bool) -> Writer {
    Writer::Direct { deny_setgroups }
}

fn own(id: u32) -> IdRange {
    IdRange {
        container: 0,
        host: id,
        size: 1,
    }
}

/// 0 -> caller, 1.. -> the caller's first subordinate ranges, through the helpers; or why not
/// (one phrase with its fix).
fn subordinate(caller: &Caller) -> Result<(Vec<IdRange>, Vec<IdRange>, Writer), String> {
    let writer = helpers(caller.sudo()).map_err(|u| format!("{} ({})", u.why, u.fix))?;
    let range = |file| {
        subid::first_range(file, caller)
            .ok_or_else(|| format!("no {file} range for you (run: {})", subid::usermod(caller)))
    };
    let ((us, un), (gs, gn)) = (range(subid::SUBUID)?, range(subid::SUBGID)?);
    let sub = |host, size| IdRange {
        container: 1,
        host,
        size,
    };
    Ok((
        vec![own(caller.uid), sub(us, un)],
        vec![own(caller.gid), sub(gs, gn)],
        writer,
    ))
}

/// What `nsboot do` maps: 0 -> the caller alone, written directly, like bubblewrap; with
/// `subids` also the caller's first subordinate ranges through the helpers (an error when
/// they cannot). None as root: the policy's identity.
pub fn for_do(subids: bool, caller: &Caller) -> Result<Option<Maps>, IdmapError> {
    if !caller.rootless() || caller.root_in_userns {
        return Ok(None);
    }
    if !subids {
        return Ok(Some((vec![own(caller.uid)], vec![own(caller.gid)])));
    }
    helpers(caller.sudo()).map_err(|u| IdmapError::Helpers {
        what: "--subids".into(),
        why: u.why,
        fix: u.fix,
    })?;
    check_subids("--subids", caller)?;
    let (uids, gids, _) = subordinate(caller).map_err(|_| IdmapError::NoSubids {
        what: "--subids".into(),
        user: caller.user(),
        file: subid::SUBUID.into(),
        usermod: subid::usermod(caller),
    })?;
    Ok(Some((uids, gids)))
}

/// Before running the helpers: a missing subid entry gets its own error and fix (a free range
/// to add), rather than the helper's terse refusal.
fn check_subids(what: &str, caller: &Caller) -> Result<(), IdmapError> {
    for file in [subid::SUBUID, subid::SUBGID] {
        if subid::first_range(file, caller).is_none() {
            return Err(IdmapError::NoSubids {
                what: what.into(),
                user: caller.user(),
                file: file.into(),
                usermod: subid::usermod(caller),
            });
        }
    }
    Ok(())
}

/// The identity of the current user namespace's map (as root: 0 0 4294967295).
fn identity_of(path: &str) -> Vec<IdRange> {
    let text = fs::read_to_string(path).unwrap_or_else(|_| "0 0 4294967295".into());
    parse_map(&text)
        .into_iter()
        .map(|r| IdRange {
            container: r.container,
            host: r.container,
            size: r.size,
        })
        .collect()
}

fn parse_map(text: &str) -> Vec<IdRange> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace().map(|x| x.parse::<u32>());
            match (it.next(), it.next(), it.next()) {
                (Some(Ok(container)), Some(Ok(host)), Some(Ok(size))) => Some(IdRange {
                    container,
                    host,
                    size,
                }),
                _ => None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(uid: u32) -> Caller {
        Caller {
            uid,
            gid: uid,
            name: Some("alice".into()),
            real_root: false,
            root_in_userns: false,
        }
    }

    #[test]
    fn single_self_map_is_written_directly_with_setgroups_denied() {
        let r = [IdRange {
            container: 0,
            host: 1000,
            size: 1,
        }];
        let m = choose(&r, &r, &user(1000)).unwrap();
        assert_eq!(
            m.writer,
            Writer::Direct {
                deny_setgroups: true
            }
        );
        assert_eq!(m.uids, r);
    }

    #[test]
    fn real_root_without_mappings_gets_identity() {
        let root = Caller {
            uid: 0,
            gid: 0,
            name: None,
            real_root: true,
            root_in_userns: false,
        };
        let m = choose(&[], &[], &root).unwrap();
        assert_eq!(
            m.writer,
            Writer::Direct {
                deny_setgroups: false
            }
        );
        assert_eq!(m.uids[0].container, m.uids[0].host);
    }

    #[test]
    fn proc_maps_parse() {
        let r = parse_map("         0       1000          1\n         1     100000      65536\n");
        assert_eq!(
            r,
            vec![
                IdRange {
                    container: 0,
                    host: 1000,
                    size: 1
                },
                IdRange {
                    container: 1,
                    host: 100000,
                    size: 65536
                }
            ]
        );
    }
}
