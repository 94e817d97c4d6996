//! `nsboot check`: host readiness diagnosis. One item per thing `nsboot run` depends on, each
//! `ok`, `warn` (works, with less) or `fail` (`nsboot run` cannot work here), and for every
//! problem the exact fix. The user-namespace, /proc and overlay items are real probes run in
//! forked children, so the answer is what the kernel does, not what the sysctls suggest.
//!
//! Every host fact a launch decides on (the caller, its subordinate ranges, the uidmap helpers,
//! the id mapping, why a namespace is refused) comes from the launch's own code (`idmap`,
//! `sandbox::hint`), so that `check` and `run`/`do` cannot disagree.

mod host;
pub use host::STATE_ROOT;
mod idtools;
mod probe;
pub use probe::hostname_allowed;
mod subid;
mod sysctl;

use std::fmt::Write as _;
use std::io::Write as _;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    pub fn mark(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// One line of the diagnosis. `fix` is set for every `warn` and `fail` (and reads as an
/// instruction: "run: ...", "edit ...").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub name: String,
    pub status: Status,
    pub detail: String,
    pub fix: Option<String>,
}

impl Item {
    pub fn ok(name: &str, detail: impl Into<String>) -> Item {
        Item {
            name: name.into(),
            status: Status::Ok,
            detail: detail.into(),
            fix: None,
        }
    }
    pub fn warn(name: &str, detail: impl Into<String>, fix: impl Into<String>) -> Item {
        Item {
            name: name.into(),
            status: Status::Warn,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
    pub fn fail(name: &str, detail: impl Into<String>, fix: impl Into<String>) -> Item {
        Item {
            name: name.into(),
            status: Status::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

/// Who runs the check: the same caller a launch maps (one implementation, in `idmap`).
pub use crate::idmap::Caller;

/// Runs every check: the probes first (what the kernel does), then what explains them.
pub fn items() -> Vec<Item> {
    let caller = Caller::current();
    let mode = match (caller.rootless(), caller.uid) {
        (false, _) => "root",
        (true, 0) => "rootless (root in a user namespace)",
        (true, _) => "rootless",
    };
    let mut items = vec![Item::ok(
        "caller",
        format!(
            "uid {} gid {} ({}), {mode}",
            caller.uid,
            caller.gid,
            caller.user()
        ),
    )];
    items.extend(probe::items(&caller));
    items.extend(sysctl::items(&caller));
    items.push(idtools::mapping(&caller));
    items.extend(idtools::items(&caller));
    items.extend(subid::items(&caller));
    items.extend(host::items(&caller));
    items
}

/// 0 when `nsboot run` can work here (no `fail`), 1 otherwise.
pub fn exit_code(items: &[Item]) -> i32 {
    i32::from(items.iter().any(|i| i.status == Status::Fail))
}

pub fn format_text(items: &[Item]) -> String {
    let mut out = String::new();
    for i in items {
        let _ = write!(out, "{:<5} {}: {}", i.status.mark(), i.name, i.detail);
        if let Some(fix) = &i.fix {
            let _ = write!(out, " \u{2014} {fix}");
        }
        out.push('\n');
    }
    let count = |s| items.iter().filter(|i| i.status == s).count();
    let (warns, fails) = (count(Status::Warn), count(Status::Fail));
    if fails == 0 {
        let _ = writeln!(out, "nsboot run can work here ({warns} warning(s))");
    } else {
        let _ = writeln!(
            out,
            "nsboot run cannot work here: {fails} failure(s), {warns} warning(s); apply the fixes above"
        );
    }
    out
}

#[derive(Serialize)]
struct JsonReport<'a> {
    ready: bool,
    items: &'a [Item],
}

pub fn format_json(items: &[Item]) -> String {
    let report = JsonReport {
        ready: exit_code(items) == 0,
        items,
    };
    serde_json::to_string_pretty(&report).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

pub fn run(json: bool) -> i32 {
    let items = items();
    let out = if json {
        format_json(&items) + "\n"
    } else {
        format_text(&items)
    };
    // A closed stdout (`nsboot check | head`) is not the host's problem: ignore the error.
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
    exit_code(&items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_code_is_one_only_with_a_failure() {
        let ok = Item::ok("a", "fine");
        let warn = Item::warn("b", "meh", "run: x");
        let fail = Item::fail("c", "broken", "run: y");
        assert_eq!(exit_code(&[]), 0);
        assert_eq!(exit_code(&[ok.clone(), warn.clone()]), 0);
        assert_eq!(exit_code(&[ok, warn, fail]), 1);
    }

    #[test]
    fn text_lines_carry_mark_detail_and_fix() {
        let items = [
            Item::ok("seccomp", "available"),
            Item::fail("userns", "kernel.x=1", "run: sudo sysctl -w kernel.x=0"),
        ];
        let text = format_text(&items);
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines[0], "ok    seccomp: available");
        assert_eq!(
            lines[1],
            "fail  userns: kernel.x=1 \u{2014} run: sudo sysctl -w kernel.x=0"
        );
        assert!(lines[2].starts_with("nsboot run cannot work here: 1 failure(s)"));
        assert!(format_text(&items[..1]).ends_with("nsboot run can work here (0 warning(s))\n"));
    }

    #[test]
    fn json_has_ready_and_per_item_fields() {
        let items = [Item::warn(
            "newuidmap",
            "missing",
            "run: apt-get install uidmap",
        )];
        let v: serde_json::Value = serde_json::from_str(&format_json(&items)).unwrap();
        assert_eq!(v["ready"], true);
        assert_eq!(v["items"][0]["name"], "newuidmap");
        assert_eq!(v["items"][0]["status"], "warn");
        assert_eq!(v["items"][0]["fix"], "run: apt-get install uidmap");
        let ok: serde_json::Value =
            serde_json::from_str(&format_json(&[Item::ok("a", "b")])).unwrap();
        assert!(ok["items"][0]["fix"].is_null());
    }
}
