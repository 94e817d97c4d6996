//! `nsboot check`: host readiness diagnosis. One item per thing `nsboot run` depends on, each
//! `ok`, `warn` (works, with less) or `fail` (`nsboot run` cannot work here), and for every
//! problem the exact fix. The user-namespace, /proc and overlay items are real probes run in
//! forked children, so the answer is what the kernel does, not what the sysctls suggest.
//!
//! Environment: `NSBOOT_NEWUIDMAP` / `NSBOOT_NEWGIDMAP` override where the uidmap helpers are
//! looked for (as in `idmap`); tests point them at a missing file to hide the helpers.

mod host;
pub use host::STATE_ROOT;
mod idtools;
mod probe;
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

/// Who runs the check: the effective ids (what nsboot maps) and whether nsboot would run
/// rootless (euid != 0, or root inside a user namespace that is not the initial identity).
#[derive(Debug, Clone)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    pub name: Option<String>,
    pub rootless: bool,
}

impl Caller {
    pub fn current() -> Caller {
        let uid = nix::unistd::geteuid();
        let uid_map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
        Caller {
            uid: uid.as_raw(),
            gid: nix::unistd::getegid().as_raw(),
            name: nix::unistd::User::from_uid(uid)
                .ok()
                .flatten()
                .map(|u| u.name),
            rootless: is_rootless(uid.as_raw(), &uid_map),
        }
    }

    /// The name for messages and usermod: the user name, else the numeric uid.
    pub fn user(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.uid.to_string())
    }

    /// "sudo " when the caller is not root, so fixes can be pasted as they are.
    pub fn sudo(&self) -> &'static str {
        if self.uid == 0 {
            ""
        } else {
            "sudo "
        }
    }
}

/// Rootless unless euid 0 with the initial user namespace's identity map.
pub fn is_rootless(euid: u32, uid_map: &str) -> bool {
    let identity = uid_map.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"];
    euid != 0 || !identity
}

/// Runs every check, in the order a user would fix them.
pub fn items() -> Vec<Item> {
    let caller = Caller::current();
    let mode = match (caller.rootless, caller.uid) {
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
    items.extend(sysctl::items(&caller));
    items.extend(probe::items(&caller));
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

    #[test]
    fn rootless_unless_root_with_identity_map() {
        assert!(!is_rootless(0, "         0          0 4294967295\n"));
        assert!(is_rootless(0, "         0       1000          1\n"));
        assert!(is_rootless(1000, "         0          0 4294967295\n"));
    }
}
