//! /etc/subuid and /etc/subgid: the one parser of `owner:start:count` lines, the caller's
//! ranges, and a free range to suggest (used by `check` and by the errors of a launch alike).

use std::path::Path;

use super::Caller;

/// Ranges smaller than this cannot hold an image's usual ids (nobody is 65534).
pub const MIN_RANGE: u64 = 65536;
/// Where `useradd` starts handing out ranges; suggestions start here too.
const FIRST_SUGGESTED: u64 = 100_000;

pub const SUBUID: &str = "/etc/subuid";
pub const SUBGID: &str = "/etc/subgid";

/// One `owner:start:count` line; `owner` is a user name or a numeric uid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubId {
    pub owner: String,
    pub start: u64,
    pub count: u64,
}

impl SubId {
    pub fn end(&self) -> u64 {
        self.start + self.count
    }
    pub fn contains(&self, id: u64) -> bool {
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

/// A subid file's entries (none when it is missing or unreadable).
pub fn read(file: &str) -> Vec<SubId> {
    std::fs::read_to_string(Path::new(file))
        .map(|t| parse(&t))
        .unwrap_or_default()
}

/// The caller's ranges (by user name or by numeric uid), in file order, empty ones dropped.
pub fn ranges_for<'a>(entries: &'a [SubId], name: Option<&str>, uid: u32) -> Vec<&'a SubId> {
    let uid = uid.to_string();
    entries
        .iter()
        .filter(|e| e.count > 0 && (e.owner == uid || Some(e.owner.as_str()) == name))
        .collect()
}

/// The caller's first range in `file`, as the kernel's maps take it (32-bit ids).
pub fn first_range(file: &str, caller: &Caller) -> Option<(u32, u32)> {
    let entries = read(file);
    let name = caller.user_name();
    let first = *ranges_for(&entries, name.as_deref(), caller.uid).first()?;
    Some((first.start.try_into().ok()?, first.count.try_into().ok()?))
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

/// A free range of [`MIN_RANGE`] ids for the caller, as usermod takes it ("START-END"),
/// clear of every range of both files and of the caller's own ids.
pub fn suggestion(uids: &[SubId], gids: &[SubId], caller: &Caller) -> String {
    let mut taken: Vec<(u64, u64)> = uids
        .iter()
        .chain(gids)
        .map(|e| (e.start, e.count))
        .collect();
    taken.extend([(u64::from(caller.uid), 1), (u64::from(caller.gid), 1)]);
    let start = free_range(&taken, MIN_RANGE);
    format!("{start}-{}", start + MIN_RANGE - 1)
}

/// The usermod command that gives the caller a free range in both files.
pub fn usermod(caller: &Caller) -> String {
    let new = suggestion(&read(SUBUID), &read(SUBGID), caller);
    format!(
        "{}usermod --add-subuids {new} --add-subgids {new} {}",
        caller.sudo(),
        caller.user()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn suggestion_avoids_taken_ranges() {
        assert_eq!(free_range(&[], 65536), 100000);
        assert_eq!(free_range(&[(100000, 65536)], 65536), 165536);
        assert_eq!(free_range(&[(165536, 10), (100000, 65536)], 65536), 165546);
        assert_eq!(free_range(&[(1000, 1), (300000, 5)], 65536), 100000);
        let caller = Caller {
            uid: 1000,
            gid: 1000,
            name: Some("alice".into()),
            real_root: false,
            root_in_userns: false,
        };
        let taken = parse("bob:100000:65536\n");
        assert_eq!(suggestion(&taken, &[], &caller), "165536-231071");
    }
}
