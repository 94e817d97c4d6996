//! The sandbox's own network namespace: only a loopback device, which the kernel creates
//! down. The supervisor brings it up (runc and runsc do the same), so that servers and
//! tests listening on 127.0.0.1 work inside `--network none`.

use std::os::fd::{AsRawFd, OwnedFd};

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
