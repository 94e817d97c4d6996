//! The v1 devices cgroup: the policy written as the kernel keeps it, the default first
//! (`a` to devices.deny or devices.allow, which also empties the list), then each exception
//! (one rule a write, as the kernel parses them). An update of a default-deny cgroup whose
//! processes run writes only the difference, new exceptions before removed ones, so that no
//! device the old and the new rules both allow is denied meanwhile.

use std::io::Write;
use std::path::Path;

use super::{DevicesError, Exception, Kind, Policy};

fn write_rule(dir: &Path, file: &str, rule: &str) -> Result<(), DevicesError> {
    let what = format!("writing {rule:?} to {file}");
    let written = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join(file))
        .and_then(|mut f| f.write_all(rule.as_bytes()));
    written.map_err(|e| DevicesError::Io {
        path: dir.into(),
        what,
        errno: e.into(),
    })
}

/// The exceptions of a default-deny cgroup, from its devices.list; None when the cgroup
/// allows by default (its list then shows `a *:* rwm` only).
fn current(dir: &Path) -> Option<Vec<Exception>> {
    let text = std::fs::read_to_string(dir.join("devices.list")).ok()?;
    text.lines().map(parse).collect()
}

/// One line of devices.list ("c 1:3 rwm"); None for `a` or anything unexpected.
fn parse(line: &str) -> Option<Exception> {
    let mut words = line.split_whitespace();
    let kind = match words.next()? {
        "c" => Kind::Char,
        "b" => Kind::Block,
        _ => return None,
    };
    let (ma, mi) = words.next()?.split_once(':')?;
    let num = |s: &str| {
        if s == "*" {
            Ok(None)
        } else {
            s.parse().map(Some)
        }
    };
    let mut access = 0;
    for c in words.next()?.chars() {
        access |= match c {
            'r' => super::READ,
            'w' => super::WRITE,
            'm' => super::MKNOD,
            _ => return None,
        };
    }
    Some(Exception {
        kind,
        major: num(ma).ok()?,
        minor: num(mi).ok()?,
        access,
    })
}

/// Writes `policy` to the devices cgroup directory `dir`.
pub fn apply(dir: &Path, policy: &Policy, update: bool) -> Result<(), DevicesError> {
    let (add, del) = if policy.default_allow {
        ("devices.deny", "devices.allow")
    } else {
        ("devices.allow", "devices.deny")
    };
    let old = if update && !policy.default_allow {
        current(dir)
    } else {
        None
    };
    let Some(old) = old else {
        write_rule(dir, del, "a")?;
        for e in &policy.exceptions {
            write_rule(dir, add, &e.line())?;
        }
        return Ok(());
    };
    for e in &policy.exceptions {
        write_rule(dir, add, &e.line())?;
    }
    for o in &old {
        let kept = policy
            .exceptions
            .iter()
            .find(|e| (e.kind, e.major, e.minor) == (o.kind, o.major, o.minor))
            .map_or(0, |e| e.access);
        let gone = o.access & !kept;
        if gone != 0 {
            let e = Exception { access: gone, ..*o };
            write_rule(dir, del, &e.line())?;
        }
    }
    Ok(())
}
