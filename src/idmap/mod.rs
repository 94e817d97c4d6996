//! Id mapping: the policy table of DESIGN.md (who calls x what the spec says -> which maps,
//! written by whom), the caller's subordinate ranges, and the two map writers.
//!
//! The maps are written by the caller, from outside the new user namespace, while the child
//! blocks on the sync fd (see `userns`).

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Uid};
use serde::{Deserialize, Serialize};

use crate::sys::Errno;

mod writers;

pub use writers::{helpers, start_writing, Pending};

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
    #[error("the spec maps several id ranges but newuidmap/newgidmap are not installed: install the uidmap package (apt-get install uidmap), or map only your own id")]
    NoHelpers,
    #[error("{tool} {pid} {args} failed: {stderr} ({fix})")]
    HelperFailed {
        tool: String,
        pid: i32,
        args: String,
        stderr: String,
        fix: String,
    },
    #[error("the spec maps id ranges but {user} has no entry in {file}: add one (usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {user}) or map only your own id")]
    NoSubids { user: String, file: String },
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
/// and how.
pub fn choose(
    spec_uids: &[IdRange],
    spec_gids: &[IdRange],
    caller: &Caller,
) -> Result<Mapping, IdmapError> {
    let direct = |deny| Writer::Direct {
        deny_setgroups: deny,
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
        return Ok(Mapping {
            uids,
            gids,
            writer: direct(false),
            notice: None,
        });
    }
    let self_map = |r: &[IdRange], id: u32| r.len() == 1 && r[0].host == id && r[0].size == 1;
    if !spec_uids.is_empty() {
        if self_map(spec_uids, caller.uid) && self_map(spec_gids, caller.gid) {
            let (uids, gids) = (spec_uids.to_vec(), spec_gids.to_vec());
            return Ok(Mapping {
                uids,
                gids,
                writer: direct(true),
                notice: None,
            });
        }
        let writer = helpers().ok_or(IdmapError::NoHelpers)?;
        check_subids(caller, &writer)?;
        let (uids, gids) = (spec_uids.to_vec(), spec_gids.to_vec());
        return Ok(Mapping {
            uids,
            gids,
            writer,
            notice: None,
        });
    }
    // No mappings in the spec: 0 -> caller, 1.. -> the first subordinate range if usable.
    let own = |id| IdRange {
        container: 0,
        host: id,
        size: 1,
    };
    let name = caller.user_name();
    let subu = first_range(Path::new("/etc/subuid"), name.as_deref(), caller.uid);
    let subg = first_range(Path::new("/etc/subgid"), name.as_deref(), caller.uid);
    match (helpers(), subu, subg) {
        (Some(writer), Some((us, un)), Some((gs, gn))) => Ok(Mapping {
            uids: vec![
                own(caller.uid),
                IdRange {
                    container: 1,
                    host: us,
                    size: un,
                },
            ],
            gids: vec![
                own(caller.gid),
                IdRange {
                    container: 1,
                    host: gs,
                    size: gn,
                },
            ],
            writer,
            notice: None,
        }),
        (helpers, u, g) => Ok(Mapping {
            uids: vec![own(caller.uid)],
            gids: vec![own(caller.gid)],
            writer: direct(true),
            notice: Some(if helpers.is_none() {
                "newuidmap is not installed: only your own id is mapped (apt-get install uidmap for a full range)".into()
            } else if u.is_none() {
                "no /etc/subuid range for you: only your own id is mapped (add one with usermod --add-subuids)".into()
            } else {
                let _ = g;
                "no /etc/subgid range for you: only your own id is mapped (add one with usermod --add-subgids)".into()
            }),
        }),
    }
}

/// Before running the helpers: a missing subid entry gets its own error and fix, rather than
/// the helper's terse refusal.
fn check_subids(caller: &Caller, writer: &Writer) -> Result<(), IdmapError> {
    if !matches!(writer, Writer::Helpers { .. }) {
        return Ok(());
    }
    let name = caller.user_name();
    let user = name.clone().unwrap_or_else(|| caller.uid.to_string());
    for file in ["/etc/subuid", "/etc/subgid"] {
        if first_range(Path::new(file), name.as_deref(), caller.uid).is_none() {
            return Err(IdmapError::NoSubids {
                user,
                file: file.into(),
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

/// The first `name:start:count` (or `uid:start:count`) line of a subid file.
pub fn first_range(file: &Path, name: Option<&str>, uid: u32) -> Option<(u32, u32)> {
    parse_subid(&fs::read_to_string(file).ok()?, name, uid)
}

pub fn parse_subid(text: &str, name: Option<&str>, uid: u32) -> Option<(u32, u32)> {
    let uid = uid.to_string();
    text.lines().find_map(|line| {
        let mut f = line.trim().split(':');
        let (who, start, count) = (f.next()?, f.next()?, f.next()?);
        if who != uid && Some(who) != name {
            return None;
        }
        let (start, count) = (start.parse().ok()?, count.parse().ok()?);
        (count > 0).then_some((start, count))
    })
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
    fn subid_lines_match_by_name_or_uid() {
        let text = "bob:100000:65536\nalice:165536:65536\n1001:231072:1000\n";
        assert_eq!(
            parse_subid(text, Some("alice"), 1000),
            Some((165536, 65536))
        );
        assert_eq!(parse_subid(text, Some("carol"), 1001), Some((231072, 1000)));
        assert_eq!(parse_subid(text, Some("dave"), 1002), None);
    }

    #[test]
    fn subid_ignores_malformed_and_empty_ranges() {
        assert_eq!(
            parse_subid("alice:x:1\nalice:5:0\nalice:7:9", Some("alice"), 1),
            Some((7, 9))
        );
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
