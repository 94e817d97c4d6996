//! newuidmap / newgidmap and the id mapping a launch would choose, reported from the launch's
//! own lookup and policy (`idmap::helpers`, `idmap::choose`, `idmap::for_do`).

use crate::idmap::helpers::{self, Found, Located, Privilege};
use crate::idmap::{self, IdRange, Writer};

use super::{Caller, Item};

const MAPPING: &str = "id mapping";

/// The item for one helper, from what the launch would see.
pub fn judge(found: &Found, caller: &Caller) -> Item {
    let tool = found.tool;
    // euid 0 (real root, or root in an engine's user namespace) writes maps directly.
    if caller.uid == 0 {
        let detail = match &found.located {
            Located::Fixed(p) | Located::Override { path: p, .. } => {
                format!("{} (not needed as root)", p.display())
            }
            _ => "not installed (not needed as root: maps are written directly)".into(),
        };
        return Item::ok(tool, detail);
    }
    if let Some(u) = found.unusable(caller.sudo()) {
        return Item::warn(
            tool,
            format!("{}: only your own id can be mapped (single map)", u.why),
            u.fix,
        );
    }
    let p = found
        .usable()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    match found.privilege {
        Some(Privilege::FileCaps) => Item::ok(tool, format!("{p} (file capabilities)")),
        _ => Item::ok(tool, format!("{p} (setuid root)")),
    }
}

pub fn items(caller: &Caller) -> Vec<Item> {
    helpers::found().iter().map(|f| judge(f, caller)).collect()
}

fn ranges(r: &[IdRange]) -> String {
    r.iter()
        .map(|r| format!("{} -> {} ({})", r.container, r.host, r.size))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The maps `run` (a spec without mappings) and `do` would write, from the launch's policy.
pub fn mapping(caller: &Caller) -> Item {
    let run = match idmap::choose(&[], &[], caller) {
        Ok(m) => {
            let how = match (&m.writer, &m.notice) {
                (Writer::Helpers { .. }, _) => " via newuidmap/newgidmap".to_string(),
                (_, Some(n)) => format!(" ({n})"),
                _ => String::new(),
            };
            format!("run maps uids {}{how}", ranges(&m.uids))
        }
        Err(e) => return Item::fail(MAPPING, e.to_string(), "see the lines below"),
    };
    let subids = match idmap::for_do(true, caller) {
        Ok(_) => "with --subids, your subordinate range too",
        Err(_) => "--subids cannot work here (see below)",
    };
    let single = if caller.rootless() && !caller.root_in_userns {
        format!("do maps 0 -> {} alone, {subids}", caller.uid)
    } else {
        "do maps as run does".into()
    };
    Item::ok(MAPPING, format!("{run}; {single}"))
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
            real_root: false,
            root_in_userns: false,
        }
    }

    fn found(located: Located, privilege: Option<Privilege>) -> Found {
        Found {
            tool: "newgidmap",
            cap: "cap_setgid",
            located,
            privilege,
        }
    }

    #[test]
    fn privilege_decides_between_ok_and_warn() {
        let at = Located::Fixed("/usr/bin/newgidmap".into());
        let ok = judge(&found(at.clone(), Some(Privilege::FileCaps)), &user());
        assert_eq!(ok.status, Status::Ok);
        let bare = judge(&found(at, Some(Privilege::None)), &user());
        assert_eq!(bare.status, Status::Warn);
        assert!(bare
            .fix
            .unwrap()
            .contains("setcap cap_setgid+ep /usr/bin/newgidmap"));
        let root = Caller {
            uid: 0,
            gid: 0,
            name: None,
            real_root: true,
            root_in_userns: false,
        };
        assert_eq!(
            judge(&found(Located::Missing, None), &root).status,
            Status::Ok
        );
    }
}
