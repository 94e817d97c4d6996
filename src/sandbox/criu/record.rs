//! What nsboot keeps beside CRIU's images (`nsboot.json`): the external mounts and where
//! they came from, the application's stdio from outside the container, its terminal and the
//! namespaces joined by path, which a restore hands over anew.

use serde::{Deserialize, Serialize};

use super::ExternalNs;

/// CRIU's name for the application's fd `fd`: `pipe:[N]` and `socket:[N]` as they are, a
/// file on a mount outside the container as `file[MNT_ID:INODE]` (hex); "" for what CRIU
/// dumps by itself (a file inside), a terminal (`tty.rs`) or what is not there.
pub(super) fn stdio_key(app: i32, fd: i32, mountinfo: &str) -> String {
    use std::os::unix::fs::MetadataExt;
    let link = format!("/proc/{app}/fd/{fd}");
    let Ok(target) = std::fs::read_link(&link) else {
        return String::new();
    };
    let target = target.to_string_lossy().into_owned();
    if target.starts_with("pipe:") || target.starts_with("socket:") {
        return target;
    }
    let mnt_id = std::fs::read_to_string(format!("/proc/{app}/fdinfo/{fd}"))
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("mnt_id:").map(|v| v.trim().to_string()))
        });
    let inside = |id: &str| mountinfo.lines().any(|l| l.split(' ').next() == Some(id));
    match (mnt_id, std::fs::metadata(&link)) {
        (Some(id), Ok(meta)) if !inside(&id) && !super::tty::is_pty_slave(&meta) => {
            let id: u64 = id.parse().unwrap_or(0);
            format!("file[{id:x}:{:x}]", meta.ino())
        }
        _ => String::new(),
    }
}

/// The file nsboot adds to a checkpoint's images (runc's `descriptors.json` holds the stdio).
pub const RECORD: &str = "nsboot.json";

/// What nsboot adds to CRIU's images.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Record {
    /// Dumped with --shell-job (the session and process group lie outside the container).
    #[serde(default)]
    pub shell_job: bool,
    pub mounts: Vec<External>,
    /// /proc/APP/fd/{0,1,2} at dump (`pipe:[123]`, a path).
    pub stdio: Vec<String>,
    /// Namespaces joined by path, left out of the images: a restore joins the spec's.
    #[serde(default)]
    pub external_ns: Vec<ExternalNs>,
    /// The application's terminal, CRIU's `tty[RDEV:DEV]`: external, a restore gives it a new
    /// pty (`tty.rs`). Absent from records of nsboot before it.
    #[serde(default)]
    pub tty: Option<String>,
}

/// An external mount: its destination, and its file system's type and root (the path inside
/// that file system), from which a restore finds its source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct External {
    pub dest: String,
    pub fstype: String,
    pub root: String,
}

/// Mount points (other than the root) whose file system has no mount of its own root in the
/// same namespace: binds from outside, which CRIU can only take as external mounts.
pub fn external_mounts(mountinfo: &str) -> Vec<External> {
    // (device, root, destination, fstype)
    let mounts: Vec<(&str, &str, &str, &str)> = mountinfo
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let sep = f.iter().position(|x| *x == "-")?;
            (f.len() > sep + 1 && sep > 4).then(|| (f[2], f[3], f[4], f[sep + 1]))
        })
        .collect();
    mounts
        .iter()
        .filter(|(dev, root, dest, _)| {
            *dest != "/" && *root != "/" && !mounts.iter().any(|(d, r, ..)| d == dev && *r == "/")
        })
        .map(|(_, root, dest, fstype)| External {
            dest: unescape(dest),
            fstype: (*fstype).into(),
            root: unescape(root),
        })
        .collect()
}

/// mountinfo's octal escapes (`\040` for a space) decoded.
pub(super) fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "\
50 46 254:0 /b/rootfs / ro,nodev - ext4 /dev/vda rw
51 50 0:43 / /dev rw - tmpfs tmpfs rw
55 51 0:6 /null /dev/null rw - devtmpfs devtmpfs rw
61 50 0:46 / /sys ro - sysfs sysfs ro
99 50 0:47 / /proc rw - proc proc rw
101 99 0:6 /null /proc/keys rw - devtmpfs devtmpfs rw
104 99 0:47 /bus /proc/bus ro - proc proc rw
110 50 254:0 /etc/my\\040hosts /etc/hosts ro - ext4 /dev/vda rw
";

    #[test]
    fn binds_from_outside_are_external_and_binds_within_are_not() {
        let found: Vec<String> = external_mounts(INFO).into_iter().map(|m| m.dest).collect();
        assert_eq!(found, vec!["/dev/null", "/proc/keys", "/etc/hosts"]);
        assert_eq!(external_mounts(INFO)[2].root, "/etc/my hosts");
        assert_eq!(external_mounts(INFO)[1].fstype, "devtmpfs");
        assert_eq!(unescape("/a\\040b"), "/a b");
        let joined = [super::super::ExternalNs::Network];
        let shown = super::super::joined::shown_mounts(INFO, &joined, &external_mounts(INFO));
        let shown: Vec<(String, String)> = shown.into_iter().map(|m| (m.dest, m.root)).collect();
        assert_eq!(shown, vec![("/sys".to_string(), "/".to_string())]);
    }
}
