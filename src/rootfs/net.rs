//! The sandbox's own network namespace: only a loopback device, which the kernel creates
//! down. The supervisor brings it up (runc and runsc do the same), so that servers and
//! tests listening on 127.0.0.1 work inside `--network none`. Part of `rootfs`: the mounts
//! that show the namespace (sysfs) wait for it.
//!
//! Creating a network namespace is one of the dearest steps of a launch. So the supervisor
//! does not clone into one: a helper process makes it and brings lo up ([`Pending::start`])
//! while the supervisor waits for its maps and builds the root, and the supervisor joins it
//! ([`Pending::join`]) before anything depends on it.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
use oci_spec::runtime::LinuxNamespaceType;
use serde::{Deserialize, Serialize};

use crate::spec::Spec;
use crate::sys::Errno;

const LOOPBACK: &[u8] = b"lo";

#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
pub enum NetError {
    #[error("bringing up the loopback device in the sandbox's network namespace: {what}: {errno}: the supervisor should hold CAP_NET_ADMIN there (a bug in nsboot), or use --network host")]
    Loopback { what: String, errno: Errno },
    #[error("creating the sandbox's network namespace: {step}: {errno}: check user.max_net_namespaces (sysctl), or use --network host")]
    Create { step: String, errno: Errno },
}

/// The sandbox's network namespace, being made by a helper (or none to make).
pub struct Pending {
    helper: Option<Helper>,
}

struct Helper {
    pidfd: OwnedFd,
    /// The helper's one report, `Result<(), NetError>`; None once joined (the helper killed).
    report: Option<OwnedFd>,
}

impl Pending {
    /// Nothing to make: the supervisor keeps the network namespace it was cloned into.
    pub fn none() -> Pending {
        Pending { helper: None }
    }

    /// Supervisor, in the sandbox's user namespace (all capabilities there, even before its
    /// maps are written): forks the helper that unshares a network namespace and brings lo
    /// up, then waits to be joined and killed. It is pid 2 of the supervisor's pid namespace,
    /// so it cannot outlive the supervisor; without one (`own_pidns` false: `create`'s), its
    /// parent-death signal kills it with the supervisor, which its caller waits on (the helper
    /// holds the start-sync pipe).
    pub fn start(own_pidns: bool) -> Result<Pending, NetError> {
        let err = |step: &str, errno: Errno| NetError::Create {
            step: step.into(),
            errno,
        };
        let (report, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| err("creating the helper's pipe", e.into()))?;
        let sup = (!own_pidns).then(nix::unistd::getpid);
        let cloned = crate::sys::clone_process(nix::sched::CloneFlags::empty())
            .map_err(|e| err("starting the helper", e))?;
        match cloned {
            crate::sys::Cloned::Child => {
                drop(report);
                if let Some(sup) = sup {
                    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
                    // Died before the signal was set: we were reparented already.
                    if nix::unistd::getppid() != sup {
                        // SAFETY: _exit in a forked child.
                        unsafe { libc::_exit(1) }
                    }
                }
                let made = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(|e| err("unshare", e.into()))
                    .and_then(|()| loopback_up());
                let _ = crate::sys::wire::send(&w, &made);
                loop {
                    nix::unistd::pause();
                }
            }
            crate::sys::Cloned::Parent { pidfd, .. } => Ok(Pending {
                helper: Some(Helper {
                    pidfd,
                    report: Some(report),
                }),
            }),
        }
    }

    /// Whether a helper is still making the namespace (not joined yet).
    pub fn is_pending(&self) -> bool {
        self.helper.as_ref().is_some_and(|h| h.report.is_some())
    }

    /// Joins the helper's network namespace and kills the helper; the helper's own error if
    /// it failed. Does nothing the second time, or when there is nothing to join.
    pub fn join(&mut self) -> Result<(), NetError> {
        let Some(h) = self.helper.as_mut() else {
            return Ok(());
        };
        let Some(report) = h.report.take() else {
            return Ok(());
        };
        let report = crate::sys::wire::expect::<Result<(), NetError>>(
            &report,
            "the network namespace helper",
        );
        let joined = match report {
            Ok(Ok(())) => nix::sched::setns(h.pidfd.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| NetError::Create {
                    step: "joining it (setns)".into(),
                    errno: e.into(),
                }),
            Ok(Err(e)) => Err(e),
            Err(e) => Err(NetError::Create {
                step: e.to_string(),
                errno: Errno(libc::EPIPE),
            }),
        };
        let _ = crate::sys::pidfd_signal(h.pidfd.as_fd(), libc::SIGKILL);
        joined
    }

    /// Joins (if not done yet) and reaps the helper, killed at the join: it is no child of
    /// ours by the time the application starts.
    pub fn finish(&mut self) -> Result<(), NetError> {
        let joined = self.join();
        if let Some(h) = self.helper.take() {
            let _ = crate::sys::pidfd_wait(h.pidfd.as_fd());
        }
        joined
    }
}

impl Drop for Pending {
    /// A helper never joined (the boot failed first) is killed at once.
    fn drop(&mut self) {
        if let Some(h) = &self.helper {
            let _ = crate::sys::pidfd_signal(h.pidfd.as_fd(), libc::SIGKILL);
        }
    }
}

/// Whether the spec has the supervisor create a network namespace (rather than keep the
/// caller's or join one by path, whose devices are someone else's business).
pub fn creates_netns(spec: &Spec) -> bool {
    let namespaces = spec.linux().as_ref().and_then(|l| l.namespaces().as_ref());
    namespaces.is_some_and(|ns| {
        ns.iter()
            .any(|n| n.typ() == LinuxNamespaceType::Network && n.path().is_none())
    })
}

/// Brings `lo` up in the network namespace of the calling process when the spec created that
/// namespace; does nothing otherwise. Call as root of the sandbox's user namespace.
pub fn setup(spec: &Spec) -> Result<(), NetError> {
    if creates_netns(spec) {
        loopback_up()?;
    }
    Ok(())
}

/// `ip link set lo up`: SIOCGIFFLAGS, then SIOCSIFFLAGS with IFF_UP added.
pub fn loopback_up() -> Result<(), NetError> {
    let err = |what: &str, errno: Errno| NetError::Loopback {
        what: what.into(),
        errno,
    };
    // Any socket of the namespace will do for interface ioctls; a datagram one opens no port.
    let sock: OwnedFd = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| err("socket", e.into()))?;
    let mut req = ifreq(LOOPBACK);
    // SAFETY: SIOCGIFFLAGS reads the name from and writes the flags into `req`, a live,
    // zero-initialised libc::ifreq whose name is NUL-terminated.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) };
    if rc < 0 {
        return Err(err("SIOCGIFFLAGS", Errno::last()));
    }
    // SAFETY: SIOCGIFFLAGS succeeded, so the union holds ifru_flags.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    req.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
    // SAFETY: as above; SIOCSIFFLAGS only reads `req`.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) };
    if rc < 0 {
        return Err(err("SIOCSIFFLAGS", Errno::last()));
    }
    Ok(())
}

/// A zeroed ifreq naming interface `name` (shorter than IFNAMSIZ).
fn ifreq(name: &[u8]) -> libc::ifreq {
    // SAFETY: ifreq is plain data (a name array and a union of integers, sockaddrs and a
    // pointer), for which all-zero bytes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name) {
        *dst = *src as libc::c_char;
    }
    req
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_with(namespaces: &str) -> Spec {
        let json =
            format!(r#"{{"ociVersion": "1.0.2", "linux": {{"namespaces": [{namespaces}]}}}}"#);
        serde_json::from_str(&json).unwrap()
    }

    #[test]
    fn only_a_new_network_namespace_is_ours_to_set_up() {
        assert!(creates_netns(&spec_with(
            r#"{"type": "user"}, {"type": "network"}"#
        )));
        assert!(!creates_netns(&spec_with(r#"{"type": "user"}"#)));
        let joined = r#"{"type": "network", "path": "/run/netns/x"}"#;
        assert!(!creates_netns(&spec_with(joined)));
    }

    #[test]
    fn ifreq_names_the_interface_nul_terminated() {
        let req = ifreq(LOOPBACK);
        assert_eq!(&req.ifr_name[..3], &[b'l' as libc::c_char, b'o' as _, 0]);
    }
}
