//! The fix for a resource limit a step ran into: under exhaustion the bare errno ("Try
//! again", "Too many open files") names neither the limit nor what to change.

use crate::sys::Errno;

/// `: the limit (its value) and the fix`, or nothing for an errno that is not a limit's.
pub fn hint(errno: &Errno) -> String {
    let soft = |r| {
        nix::sys::resource::getrlimit(r).map_or_else(
            |_| "?".into(),
            |(soft, _)| match soft {
                nix::sys::resource::RLIM_INFINITY => "unlimited".into(),
                n => n.to_string(),
            },
        )
    };
    match errno.0 {
        libc::EAGAIN => format!(
            ": the limit on processes is reached (RLIMIT_NPROC {} for this user, `ulimit -u`; \
             or the cgroup's pids.max, or kernel.threads-max): raise it or end some processes",
            soft(nix::sys::resource::Resource::RLIMIT_NPROC)
        ),
        libc::EMFILE => format!(
            ": the limit on open files is reached (RLIMIT_NOFILE {}, `ulimit -n`): raise it, \
             e.g. `ulimit -n 1024`",
            soft(nix::sys::resource::Resource::RLIMIT_NOFILE)
        ),
        libc::ENFILE => {
            ": the system's file table is full (fs.file-max): close files or raise it".into()
        }
        _ => String::new(),
    }
}
