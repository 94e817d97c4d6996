//! process.rlimits: set in the application before it drops privileges.
//!
//! Raising a hard limit needs CAP_SYS_RESOURCE in the *initial* user namespace, which a rootless
//! sandbox never has, so the common failure gets a message that says so instead of a bare EPERM.

use nix::sys::resource::{getrlimit, setrlimit, Resource};
use oci_spec::runtime::{PosixRlimit, PosixRlimitType};
use serde::{Deserialize, Serialize};

use crate::sys::Errno;

#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
pub enum RlimitError {
    #[error(
        "process.rlimits {name}: soft limit {} is above hard limit {}: make soft <= hard in config.json",
        show(*.soft), show(*.hard)
    )]
    SoftAboveHard { name: String, soft: u64, hard: u64 },
    #[error(
        "process.rlimits {name}: hard limit {} is above the current {}; raising a hard limit needs CAP_SYS_RESOURCE on the host, which a sandbox in a user namespace of its own lacks: lower it in config.json or raise the caller's hard limit (ulimit -H)",
        show(*.hard), show(*.current)
    )]
    RaiseHard {
        name: String,
        hard: u64,
        current: u64,
    },
    #[error(
        "process.rlimits {name}: hard limit {} is above nsboot's own {}; {}: lower it in config.json or raise nsboot's hard limit (ulimit -H)",
        show(*.hard), show(*.current),
        if *.rootless {
            "raising a hard limit needs CAP_SYS_RESOURCE on the host, which a rootless sandbox lacks"
        } else {
            "the sandbox runs in a user namespace of its own, even as root, where no hard limit can be raised"
        }
    )]
    AboveCallers {
        name: String,
        hard: u64,
        current: u64,
        rootless: bool,
    },
    #[error(
        "process.rlimits RLIMIT_NOFILE: {} is above the kernel's fs.nr_open ({nr_open}): lower it in config.json or raise sysctl fs.nr_open",
        show(*.hard)
    )]
    AboveNrOpen { hard: u64, nr_open: u64 },
    #[error("process.rlimits {name}: setrlimit(soft {}, hard {}) failed: {errno}", show(*.soft), show(*.hard))]
    Set {
        name: String,
        soft: u64,
        hard: u64,
        errno: Errno,
    },
}

/// "unlimited" for RLIM_INFINITY, the number otherwise: what `ulimit` prints.
fn show(v: u64) -> String {
    if v == libc::RLIM_INFINITY {
        "unlimited".to_string()
    } else {
        v.to_string()
    }
}

/// The spec's name of a limit, e.g. "RLIMIT_NOFILE".
pub fn name(typ: PosixRlimitType) -> String {
    typ.to_string()
}

/// The kernel resource for a spec's rlimit type.
pub fn resource(typ: PosixRlimitType) -> Resource {
    use PosixRlimitType as T;
    match typ {
        T::RlimitCpu => Resource::RLIMIT_CPU,
        T::RlimitFsize => Resource::RLIMIT_FSIZE,
        T::RlimitData => Resource::RLIMIT_DATA,
        T::RlimitStack => Resource::RLIMIT_STACK,
        T::RlimitCore => Resource::RLIMIT_CORE,
        T::RlimitRss => Resource::RLIMIT_RSS,
        T::RlimitNproc => Resource::RLIMIT_NPROC,
        T::RlimitNofile => Resource::RLIMIT_NOFILE,
        T::RlimitMemlock => Resource::RLIMIT_MEMLOCK,
        T::RlimitAs => Resource::RLIMIT_AS,
        T::RlimitLocks => Resource::RLIMIT_LOCKS,
        T::RlimitSigpending => Resource::RLIMIT_SIGPENDING,
        T::RlimitMsgqueue => Resource::RLIMIT_MSGQUEUE,
        T::RlimitNice => Resource::RLIMIT_NICE,
        T::RlimitRtprio => Resource::RLIMIT_RTPRIO,
        T::RlimitRttime => Resource::RLIMIT_RTTIME,
    }
}

/// What the kernel would refuse whatever our privileges: checked first so that the message
/// names the spec's mistake rather than an errno.
pub fn validate(limit: &PosixRlimit) -> Result<(), RlimitError> {
    if limit.soft() > limit.hard() {
        return Err(RlimitError::SoftAboveHard {
            name: name(limit.typ()),
            soft: limit.soft(),
            hard: limit.hard(),
        });
    }
    Ok(())
}

/// Validate every limit, then set them in order. Runs in the application while it still has
/// all capabilities of its user namespace (before the uid switch), as runc does.
pub fn apply(limits: &[PosixRlimit]) -> Result<(), RlimitError> {
    limits.iter().try_for_each(validate)?;
    limits.iter().try_for_each(set)
}

/// Caller, before the sandbox exists: the application inherits the caller's limits and, in a
/// user namespace of its own, can never raise a hard one above them. Refused here, so that
/// `create` fails (as runc's does) rather than `start`.
pub fn check_inherited(limits: &[PosixRlimit], rootless: bool) -> Result<(), RlimitError> {
    limits.iter().try_for_each(validate)?;
    for limit in limits {
        let Ok((_, current)) = getrlimit(resource(limit.typ())) else {
            continue;
        };
        if limit.hard() > current {
            return Err(RlimitError::AboveCallers {
                name: name(limit.typ()),
                hard: limit.hard(),
                current,
                rootless,
            });
        }
    }
    Ok(())
}

fn set(limit: &PosixRlimit) -> Result<(), RlimitError> {
    let (typ, soft, hard) = (limit.typ(), limit.soft(), limit.hard());
    let res = resource(typ);
    let Err(e) = setrlimit(res, soft, hard) else {
        return Ok(());
    };
    if e == nix::errno::Errno::EPERM {
        if typ == PosixRlimitType::RlimitNofile {
            if let Some(nr_open) = nr_open().filter(|n| hard > *n) {
                return Err(RlimitError::AboveNrOpen { hard, nr_open });
            }
        }
        if let Ok((_, current)) = getrlimit(res) {
            if hard > current {
                return Err(RlimitError::RaiseHard {
                    name: name(typ),
                    hard,
                    current,
                });
            }
        }
    }
    Err(RlimitError::Set {
        name: name(typ),
        soft,
        hard,
        errno: e.into(),
    })
}

/// fs.nr_open, the ceiling of RLIMIT_NOFILE even for the host's root.
fn nr_open() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(typ: PosixRlimitType, soft: u64, hard: u64) -> PosixRlimit {
        oci_spec::runtime::PosixRlimitBuilder::default()
            .typ(typ)
            .soft(soft)
            .hard(hard)
            .build()
            .unwrap()
    }

    #[test]
    fn names_are_the_spec_spelling() {
        assert_eq!(name(PosixRlimitType::RlimitNofile), "RLIMIT_NOFILE");
        assert_eq!(name(PosixRlimitType::RlimitSigpending), "RLIMIT_SIGPENDING");
        assert_eq!(name(PosixRlimitType::RlimitRttime), "RLIMIT_RTTIME");
    }

    #[test]
    fn spec_names_parse_to_kernel_resources() {
        let t: PosixRlimitType = serde_json::from_str("\"RLIMIT_NOFILE\"").unwrap();
        assert_eq!(resource(t), Resource::RLIMIT_NOFILE);
        let t: PosixRlimitType = serde_json::from_str("\"RLIMIT_MSGQUEUE\"").unwrap();
        assert_eq!(resource(t), Resource::RLIMIT_MSGQUEUE);
        assert!(serde_json::from_str::<PosixRlimitType>("\"RLIMIT_BOGUS\"").is_err());
    }

    #[test]
    fn soft_above_hard_is_refused_naming_the_limit() {
        let err = validate(&limit(PosixRlimitType::RlimitNofile, 2048, 1024)).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("RLIMIT_NOFILE") && msg.contains("2048") && msg.contains("1024"),
            "{msg}"
        );
        assert!(validate(&limit(PosixRlimitType::RlimitCore, 0, u64::MAX)).is_ok());
    }

    #[test]
    fn infinity_prints_as_unlimited() {
        let err = RlimitError::RaiseHard {
            name: "RLIMIT_CORE".into(),
            hard: u64::MAX,
            current: 0,
        };
        assert!(err
            .to_string()
            .contains("hard limit unlimited is above the current 0"));
    }

    #[test]
    fn current_limits_apply() {
        // Setting the limits the process already has is always allowed and changes nothing.
        let (soft, hard) = getrlimit(Resource::RLIMIT_CORE).unwrap();
        apply(&[limit(PosixRlimitType::RlimitCore, soft, hard)]).unwrap();
        assert_eq!(getrlimit(Resource::RLIMIT_CORE).unwrap(), (soft, hard));
    }
}
