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
        };
        for opt in options.iter().map(AsRef::as_ref) {
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
