//! The v1 devices cgroup: the policy written as the kernel keeps it, the default first
//! (`a` to devices.deny or devices.allow, which also empties the list), then each exception
//! (one rule a write, as the kernel parses them). An update of a default-deny cgroup whose
//! processes run writes only the difference, new exceptions before removed ones, so that no
//! device the old and the new rules both allow is denied meanwhile.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{open, openat, OFlag};
use nix::sys::stat::Mode;

use super::{DevicesError, Exception, Kind, Policy};

fn io(dir: &Path, what: String) -> impl FnOnce(nix::Error) -> DevicesError + '_ {
    move |e| DevicesError::Io {
        path: dir.into(),
        what,
        errno: e.into(),
    }
}

fn write_rule(dir: &Path, fd: &OwnedFd, file: &str, rule: &str) -> Result<(), DevicesError> {
    let what = format!("writing {rule:?} to {file}");
    let f = openat(
        Some(fd.as_raw_fd()),
        file,
        OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(io(dir, what.clone()))?;
    // SAFETY: openat returned a new fd that nobody else owns.
    let f = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(f) };
    let n = nix::unistd::write(&f, rule.as_bytes()).map_err(io(dir, what.clone()))?;
    if n != rule.len() {
        return Err(io(dir, what)(nix::Error::EIO));
    }
    Ok(())
}

/// The exceptions of a default-deny cgroup, from its devices.list; None when the cgroup
/// allows by default (its list then shows `a *:* rwm` only).
fn current(fd: &OwnedFd) -> Option<Vec<Exception>> {
    let f = openat(
        Some(fd.as_raw_fd()),
        "devices.list",
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    // SAFETY: openat returned a new fd that nobody else owns.
    let f = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(f) };
    let text = std::io::read_to_string(f).ok()?;
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
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let fd = open(dir, flags, Mode::empty()).map_err(io(dir, "opening it".into()))?;
    // SAFETY: open returned a new fd that nobody else owns.
    let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let (add, del) = if policy.default_allow {
        ("devices.deny", "devices.allow")
    } else {
        ("devices.allow", "devices.deny")
    };
    let old = if update && !policy.default_allow {
        current(&fd)
    } else {
        None
    };
    let Some(old) = old else {
        write_rule(dir, &fd, del, "a")?;
        for e in &policy.exceptions {
            write_rule(dir, &fd, add, &e.line())?;
        }
        return Ok(());
    };
    for e in &policy.exceptions {
        write_rule(dir, &fd, add, &e.line())?;
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
            write_rule(dir, &fd, del, &e.line())?;
        }
    }
    Ok(())
}
