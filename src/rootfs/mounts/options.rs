//! A spec entry's `options`, split into what mount(2) takes: flags, propagation, data.

use nix::mount::MsFlags;

/// A spec entry's options, split the way mount(2) wants them.
#[derive(Debug, Clone, PartialEq)]
pub struct MountOptions {
    /// Flags for the mount itself (MS_RDONLY, MS_NOSUID, atime...); never MS_BIND/MS_REC.
    pub flags: MsFlags,
    /// The entry chose an atime mode (a remount must then not keep the source's).
    pub atime: bool,
    pub bind: bool,
    pub recursive: bool,
    /// The entry ends its say on device nodes with `dev`: the mount is not made nodev.
    pub dev: bool,
    /// Propagation changes, applied in order after the mount (MS_PRIVATE, MS_REC|MS_SLAVE...).
    pub propagation: Vec<MsFlags>,
    /// Everything else, for the filesystem (size=, mode=, gid=...).
    pub data: Vec<String>,
    /// Recursive attributes (`rro`, `rnosuid`...): MOUNT_ATTR_* to set and to clear on the
    /// mount and every mount beneath it (mount_setattr with AT_RECURSIVE), after the mount.
    pub rec_set: u64,
    pub rec_clr: u64,
}

/// mount_setattr's attributes (linux/mount.h).
pub mod attr {
    pub const RDONLY: u64 = 0x1;
    pub const NOSUID: u64 = 0x2;
    pub const NODEV: u64 = 0x4;
    pub const NOEXEC: u64 = 0x8;
    /// The atime mode's bits, which an atime mode set must also clear.
    pub const ATIME: u64 = 0x70;
    pub const RELATIME: u64 = 0x0;
    pub const NOATIME: u64 = 0x10;
    pub const STRICTATIME: u64 = 0x20;
    pub const NODIRATIME: u64 = 0x80;
    pub const NOSYMFOLLOW: u64 = 0x0020_0000;
}

/// A recursive option as (set it, attribute), as runc maps them; None for any other option.
/// The atime mode is one field, not flags: `ratime` and `rnostrictatime` choose relatime (what
/// a mount gets without an atime option), `rnorelatime` strictatime.
fn recursive(opt: &str) -> Option<(bool, u64)> {
    use attr::*;
    Some(match opt {
        "rro" => (true, RDONLY),
        "rrw" => (false, RDONLY),
        "rnosuid" => (true, NOSUID),
        "rsuid" => (false, NOSUID),
        "rnodev" => (true, NODEV),
        "rdev" => (false, NODEV),
        "rnoexec" => (true, NOEXEC),
        "rexec" => (false, NOEXEC),
        "rnodiratime" => (true, NODIRATIME),
        "rdiratime" => (false, NODIRATIME),
        "rrelatime" => (true, RELATIME),
        "ratime" | "rnostrictatime" => (true, RELATIME),
        "rnorelatime" => (true, STRICTATIME),
        "rnoatime" => (true, NOATIME),
        "rstrictatime" => (true, STRICTATIME),
        "rnosymfollow" => (true, NOSYMFOLLOW),
        "rsymfollow" => (false, NOSYMFOLLOW),
        _ => return None,
    })
}

impl MountOptions {
    pub fn parse<S: AsRef<str>>(options: &[S]) -> Self {
        use MsFlags as F;
        let mut o = MountOptions {
            flags: F::empty(),
            atime: false,
            bind: false,
            recursive: false,
            dev: false,
            propagation: Vec::new(),
            data: Vec::new(),
            rec_set: 0,
            rec_clr: 0,
        };
        for opt in options.iter().map(AsRef::as_ref) {
            if let Some((set, a)) = recursive(opt) {
                if a & attr::ATIME == a {
                    // An atime mode is set by clearing the whole atime field with it.
                    o.rec_set = (o.rec_set & !attr::ATIME) | a;
                    o.rec_clr |= attr::ATIME;
                } else if set {
                    o.rec_set |= a;
                    o.rec_clr &= !a;
                } else {
                    o.rec_clr |= a;
                    o.rec_set &= !a;
                }
                if a == attr::NODEV {
                    o.dev = !set;
                }
                continue;
            }
            let (set, clear) = match opt {
                "ro" => (F::MS_RDONLY, F::empty()),
                "rw" => (F::empty(), F::MS_RDONLY),
                "nosuid" => (F::MS_NOSUID, F::empty()),
                "suid" => (F::empty(), F::MS_NOSUID),
                "nodev" => (F::MS_NODEV, F::empty()),
                "dev" => (F::empty(), F::MS_NODEV),
                "noexec" => (F::MS_NOEXEC, F::empty()),
                "exec" => (F::empty(), F::MS_NOEXEC),
                "sync" => (F::MS_SYNCHRONOUS, F::empty()),
                "async" => (F::empty(), F::MS_SYNCHRONOUS),
                "dirsync" => (F::MS_DIRSYNC, F::empty()),
                "mand" => (F::MS_MANDLOCK, F::empty()),
                "nomand" => (F::empty(), F::MS_MANDLOCK),
                "silent" => (F::MS_SILENT, F::empty()),
                "loud" => (F::empty(), F::MS_SILENT),
                "lazytime" => (F::MS_LAZYTIME, F::empty()),
                "nolazytime" => (F::empty(), F::MS_LAZYTIME),
                "noatime" => (F::MS_NOATIME, F::MS_RELATIME | F::MS_STRICTATIME),
                "atime" => (F::empty(), F::MS_NOATIME),
                "relatime" => (F::MS_RELATIME, F::MS_NOATIME | F::MS_STRICTATIME),
                "norelatime" => (F::empty(), F::MS_RELATIME),
                "strictatime" => (F::MS_STRICTATIME, F::MS_NOATIME | F::MS_RELATIME),
                "nostrictatime" => (F::empty(), F::MS_STRICTATIME),
                "nodiratime" => (F::MS_NODIRATIME, F::empty()),
                "diratime" => (F::empty(), F::MS_NODIRATIME),
                "bind" | "rbind" => {
                    o.bind = true;
                    o.recursive |= opt == "rbind";
                    continue;
                }
                "private" | "shared" | "slave" | "unbindable" => {
                    o.propagation.push(propagation(opt));
                    continue;
                }
                "rprivate" | "rshared" | "rslave" | "runbindable" => {
                    o.propagation.push(propagation(&opt[1..]) | F::MS_REC);
                    continue;
                }
                // Options for other runtimes or for mount(8) that mean nothing to mount(2).
                "defaults" | "remount" | "tmpcopyup" | "nofail" | "auto" | "noauto" => continue,
                _ if opt.starts_with("x-") => continue,
                data => {
                    o.data.push(data.to_string());
                    continue;
                }
            };
            if matches!(opt, "dev" | "nodev") {
                o.dev = opt == "dev";
            }
            if opt.contains("atime") {
                o.atime = true;
            }
            o.flags = (o.flags | set) - clear;
        }
        o
    }

    pub fn data(&self) -> String {
        self.data.join(",")
    }
}

fn propagation(name: &str) -> MsFlags {
    match name {
        "private" => MsFlags::MS_PRIVATE,
        "shared" => MsFlags::MS_SHARED,
        "slave" => MsFlags::MS_SLAVE,
        _ => MsFlags::MS_UNBINDABLE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn bind_options_split_into_flags_and_propagation() {
        let o = MountOptions::parse(&["rbind", "ro", "nosuid", "nodev", "rslave", "noatime"]);
        assert!(o.bind && o.recursive && o.atime);
        assert_eq!(
            o.flags,
            MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOATIME
        );
        assert_eq!(o.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC]);
        assert!(o.data.is_empty());
    }

    #[test]
    fn later_options_override_earlier_ones() {
        let o = MountOptions::parse(&[
            "ro",
            "noexec",
            "rw",
            "exec",
            "noatime",
            "strictatime",
            "private",
        ]);
        assert_eq!(o.flags, MsFlags::MS_STRICTATIME);
        assert!(!o.bind && !o.recursive);
        assert_eq!(o.propagation, vec![MsFlags::MS_PRIVATE]);
    }

    #[test]
    fn recursive_options_become_mount_attributes() {
        use attr::*;
        let o = MountOptions::parse(&["rbind", "rro", "rnosuid", "rnoexec", "rnoatime", "rnodev"]);
        assert_eq!(o.rec_set, RDONLY | NOSUID | NOEXEC | NOATIME | NODEV);
        assert_eq!(o.rec_clr, ATIME);
        assert!(o.flags.is_empty() && o.data.is_empty() && !o.dev);
        // Later options win; an atime mode replaces the one before it.
        let o = MountOptions::parse(&["rro", "rrw", "rnoatime", "rstrictatime", "rdev"]);
        assert_eq!(
            (o.rec_set, o.rec_clr),
            (STRICTATIME, RDONLY | ATIME | NODEV)
        );
        assert!(o.dev);
        let o = MountOptions::parse(&["rnosymfollow", "rsymfollow", "rnodiratime", "ratime"]);
        assert_eq!(
            (o.rec_set, o.rec_clr),
            (NODIRATIME | RELATIME, NOSYMFOLLOW | ATIME)
        );
    }

    #[test]
    fn filesystem_options_become_the_data_string() {
        let o = MountOptions::parse(&[
            "nosuid",
            "strictatime",
            "mode=755",
            "size=65536k",
            "x-foo",
            "defaults",
        ]);
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(o.data(), "mode=755,size=65536k");
        let o = MountOptions::parse(&["newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]);
        assert_eq!(
            (o.flags, o.data()),
            (
                MsFlags::empty(),
                "newinstance,ptmxmode=0666,mode=0620,gid=5".into()
            )
        );
    }
}
