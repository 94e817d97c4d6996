//! The caller's /etc/subuid and /etc/subgid ranges: present, clear of the caller's own id, and
//! large enough. Self-contained on purpose (`idmap` has its own reader of the first range).

use std::path::Path;

use super::{Caller, Item};

/// Ranges smaller than this cannot hold an image's usual ids (nobody is 65534).
const MIN_RANGE: u64 = 65536;
/// Where `useradd` starts handing out ranges; suggestions start here too.
const FIRST_SUGGESTED: u64 = 100_000;

/// One `owner:start:count` line; `owner` is a user name or a numeric uid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubId {
    pub owner: String,
    pub start: u64,
    pub count: u64,
}

impl SubId {
    fn end(&self) -> u64 {
        self.start + self.count
    }
    fn contains(&self, id: u64) -> bool {
        (self.start..self.end()).contains(&id)
    }
}

/// Parses a subid file, skipping blank lines, `#` comments and malformed lines (as shadow's
/// own reader does).
pub fn parse(text: &str) -> Vec<SubId> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                return None;
            }
            let mut f = line.split(':');
            let (owner, start, count) = (f.next()?, f.next()?, f.next()?);
            if owner.is_empty() || f.next().is_some() {
                return None;
            }
            let (start, count) = (start.parse().ok()?, count.parse().ok()?);
            Some(SubId {
                owner: owner.into(),
                start,
                count,
            })
        })
        .collect()
}

/// The caller's ranges (by user name or by numeric uid), in file order, empty ones dropped.
pub fn ranges_for<'a>(entries: &'a [SubId], name: Option<&str>, uid: u32) -> Vec<&'a SubId> {
    let uid = uid.to_string();
    entries
        .iter()
        .filter(|e| e.count > 0 && (e.owner == uid || Some(e.owner.as_str()) == name))
        .collect()
}

/// The first start >= 100000 where `size` ids overlap no taken range (every range in both
/// files, and the caller's own ids).
pub fn free_range(taken: &[(u64, u64)], size: u64) -> u64 {
    let mut start = FIRST_SUGGESTED;
    while let Some(&(s, c)) = taken
        .iter()
        .find(|&&(s, c)| s < start + size && start < s + c)
    {
        start = s + c;
    }
    start
}

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
pub fn item(
    file: &str,
    kind: &str,
    verdict: &Verdict,
    user: &str,
    sudo: &str,
    suggest: u64,
) -> Item {
    let name = file;
    let new = format!("{suggest}-{}", suggest + MIN_RANGE - 1);
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

fn read(file: &str) -> Vec<SubId> {
    std::fs::read_to_string(Path::new(file))
        .map(|t| parse(&t))
        .unwrap_or_default()
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
    let (uids, gids) = (read(FILES[0].0), read(FILES[1].0));
    let mut taken: Vec<(u64, u64)> = uids
        .iter()
        .chain(&gids)
        .map(|e| (e.start, e.count))
        .collect();
    taken.extend([(u64::from(caller.uid), 1), (u64::from(caller.gid), 1)]);
    let suggest = free_range(&taken, MIN_RANGE);
    let (user, sudo) = (caller.user(), caller.sudo());
    let name = caller.name.as_deref();
    [(FILES[0], &uids, caller.uid), (FILES[1], &gids, caller.gid)]
        .into_iter()
        .map(|((file, kind), entries, own)| {
            let verdict = judge(&ranges_for(entries, name, caller.uid), u64::from(own));
            item(file, kind, &verdict, &user, sudo, suggest)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Status;

    const FILE: &str = "# comment\n\nbob:100000:65536\nalice:165536:65536\n1001:231072:1000\n\
                        broken line\nalice:x:5\nalice:1:2:3\n:5:5\nalice:300000:65536\n";

    #[test]
    fn parses_and_skips_comments_and_malformed_lines() {
        let e = parse(FILE);
        assert_eq!(e.len(), 4);
        assert_eq!(
            e[0],
            SubId {
                owner: "bob".into(),
                start: 100000,
                count: 65536
            }
        );
        assert_eq!(e[2].owner, "1001");
    }

    #[test]
    fn ranges_match_by_name_or_numeric_uid() {
        let e = parse(FILE);
        let alice = ranges_for(&e, Some("alice"), 1000);
        assert_eq!(
            alice.iter().map(|r| r.start).collect::<Vec<_>>(),
            [165536, 300000]
        );
        assert_eq!(ranges_for(&e, Some("carol"), 1001)[0].start, 231072);
        assert_eq!(ranges_for(&e, None, 1001).len(), 1);
        assert!(ranges_for(&e, Some("dave"), 1002).is_empty());
        assert!(ranges_for(&parse("dave:5:0"), Some("dave"), 1).is_empty());
    }

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
    fn suggestion_avoids_taken_ranges() {
        assert_eq!(free_range(&[], 65536), 100000);
        assert_eq!(free_range(&[(100000, 65536)], 65536), 165536);
        assert_eq!(free_range(&[(165536, 10), (100000, 65536)], 65536), 165546);
        assert_eq!(free_range(&[(1000, 1), (300000, 5)], 65536), 100000);
    }

    #[test]
    fn items_carry_the_usermod_fix() {
        let missing = item(
            "/etc/subuid",
            "uid",
            &Verdict::Missing,
            "nsbt",
            "sudo ",
            165536,
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
            100000,
        );
        assert_eq!(over.status, Status::Fail);
        assert_eq!(
            over.fix.as_deref(),
            Some("run: usermod --del-subgids 1000-1009 --add-subgids 100000-165535 nsbt")
        );
    }
}
