//! The caller's /etc/subuid and /etc/subgid ranges: present, clear of the caller's own id, and
//! large enough. The files are read by `idmap::subid`, the one parser a launch uses too.

use crate::idmap::subid::{self, SubId, MIN_RANGE};

use super::{Caller, Item};

/// What is wrong with the caller's ranges in one file, if anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Missing,
    /// A range holds the caller's own id: the kernel refuses maps whose host ranges overlap.
    Overlaps {
        range: SubId,
        own: u64,
    },
    /// nsboot maps the first range only (DESIGN: 1.. -> the first range).
    Small {
        range: SubId,
    },
    Fine {
        first: SubId,
        ranges: usize,
    },
}

pub fn judge(mine: &[&SubId], own: u64) -> Verdict {
    if let Some(r) = mine.iter().find(|r| r.contains(own)) {
        return Verdict::Overlaps {
            range: (*r).clone(),
            own,
        };
    }
    match mine.first() {
        None => Verdict::Missing,
        Some(r) if r.count < MIN_RANGE => Verdict::Small {
            range: (*r).clone(),
        },
        Some(r) => Verdict::Fine {
            first: (*r).clone(),
            ranges: mine.len(),
        },
    }
}

/// The item for one file. `kind` is "uid" or "gid"; `suggest` a free first id for a new range.
pub fn item(file: &str, kind: &str, verdict: &Verdict, user: &str, sudo: &str, new: &str) -> Item {
    let name = file;
    let add = format!("{sudo}usermod --add-subuids {new} --add-subgids {new} {user}");
    let flag = if kind == "uid" { "subuids" } else { "subgids" };
    let replace = |r: &SubId| {
        format!(
            "run: {sudo}usermod --del-{flag} {}-{} --add-{flag} {new} {user}",
            r.start,
            r.end() - 1
        )
    };
    match verdict {
        Verdict::Missing => Item::warn(
            name,
            format!("no range for {user}: only your own {kind} can be mapped (single map)"),
            format!("run: {add}"),
        ),
        Verdict::Overlaps { range, own } => Item::fail(
            name,
            format!(
                "{user}'s range {}:{} contains your own {kind} {own}: the kernel refuses overlapping maps",
                range.start, range.count
            ),
            replace(range),
        ),
        Verdict::Small { range } => Item::warn(
            name,
            format!(
                "{user}'s first range {}:{} has fewer than {MIN_RANGE} ids: files owned by higher ids (nobody is 65534) show as nobody",
                range.start, range.count
            ),
            replace(range),
        ),
        Verdict::Fine { first, ranges } => Item::ok(
            name,
            format!("{user}: {}:{} ({ranges} range(s); nsboot maps the first)", first.start, first.count),
        ),
    }
}

pub fn items(caller: &Caller) -> Vec<Item> {
    const FILES: [(&str, &str); 2] = [("/etc/subuid", "uid"), ("/etc/subgid", "gid")];
    if caller.uid == 0 {
        // euid 0 (real root, or root in an engine's user namespace) writes maps directly; subordinate ranges only matter to newuidmap.
        return FILES
            .iter()
            .map(|(f, _)| Item::ok(f, "not needed as root (maps are written directly)"))
            .collect();
    }
    let (uids, gids) = (subid::read(FILES[0].0), subid::read(FILES[1].0));
    let suggest = subid::suggestion(&uids, &gids, caller);
    let (user, sudo) = (caller.user(), caller.sudo());
    let name = caller.user_name();
    let name = name.as_deref();
    [(FILES[0], &uids, caller.uid), (FILES[1], &gids, caller.gid)]
        .into_iter()
        .map(|((file, kind), entries, own)| {
            let verdict = judge(
                &subid::ranges_for(entries, name, caller.uid),
                u64::from(own),
            );
            item(file, kind, &verdict, &user, sudo, &suggest)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Status;
    use crate::idmap::subid::{parse, ranges_for};

    #[test]
    fn judges_missing_overlap_small_and_fine() {
        let e = parse("a:100000:65536\nb:1000:65536\nc:100000:1000\n");
        assert_eq!(judge(&ranges_for(&e, Some("z"), 1), 1), Verdict::Missing);
        assert!(matches!(
            judge(&ranges_for(&e, Some("b"), 9), 1000),
            Verdict::Overlaps { own: 1000, .. }
        ));
        assert!(matches!(
            judge(&ranges_for(&e, Some("c"), 9), 1000),
            Verdict::Small { .. }
        ));
        assert!(matches!(
            judge(&ranges_for(&e, Some("a"), 9), 1000),
            Verdict::Fine { ranges: 1, .. }
        ));
        // The range just below and just past the own id do not overlap it.
        let edge = parse("d:0:1000\nd:1001:65536\n");
        assert!(matches!(
            judge(&ranges_for(&edge, Some("d"), 9), 1000),
            Verdict::Small { .. }
        ));
    }

    #[test]
    fn items_carry_the_usermod_fix() {
        let missing = item(
            "/etc/subuid",
            "uid",
            &Verdict::Missing,
            "nsbt",
            "sudo ",
            "165536-231071",
        );
        assert_eq!(missing.status, Status::Warn);
        assert_eq!(
            missing.fix.as_deref(),
            Some("run: sudo usermod --add-subuids 165536-231071 --add-subgids 165536-231071 nsbt")
        );
        let range = SubId {
            owner: "nsbt".into(),
            start: 1000,
            count: 10,
        };
        let over = item(
            "/etc/subgid",
            "gid",
            &Verdict::Overlaps { range, own: 1005 },
            "nsbt",
            "",
            "100000-165535",
        );
        assert_eq!(over.status, Status::Fail);
        assert_eq!(
            over.fix.as_deref(),
            Some("run: usermod --del-subgids 1000-1009 --add-subgids 100000-165535 nsbt")
        );
    }
}
