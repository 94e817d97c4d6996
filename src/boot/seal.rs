//! The supervisor's own settings once the root is built: names in its UTS namespace, and the
//! seal (caps, umask, not dumpable).

use crate::process::caps;
use crate::protocol::BootError;
use crate::spec::Spec;
use crate::sys::Errno;

/// hostname and domainname, in the sandbox's UTS namespace; in one joined by path from outside
/// our user namespace, where we may not, the joining child set them (`sandbox::nspath`).
pub(super) fn set_names(spec: &Spec) -> Result<(), BootError> {
    use oci_spec::runtime::LinuxNamespaceType as Ns;
    let namespaces = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_deref());
    let joined = |t: Ns| {
        namespaces
            .unwrap_or_default()
            .iter()
            .any(|n| n.typ() == t && n.path().is_some())
    };
    if joined(Ns::Uts) && !joined(Ns::User) {
        return Ok(());
    }
    if let Some(h) = spec.hostname() {
        nix::unistd::sethostname(h).map_err(|e| {
            BootError::Step(crate::sys::Failed {
                step: format!("setting hostname {h:?}"),
                errno: e.into(),
            })
        })?;
    }
    if let Some(d) = spec.domainname() {
        // SAFETY: setdomainname reads len bytes from a valid buffer.
        let r = unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) };
        if r != 0 {
            return Err(BootError::Step(crate::sys::Failed {
                step: format!("setting domainname {d:?}"),
                errno: Errno::last(),
            }));
        }
    }
    Ok(())
}

/// The supervisor keeps only the spec's caps merged with the file caps, creates exact modes
/// (umask 0) and cannot be ptraced or dumped.
pub(super) fn seal(spec: &Spec) -> Result<(), BootError> {
    let spec_caps = spec
        .process()
        .as_ref()
        .and_then(|p| p.capabilities().as_ref());
    caps::apply_supervisor(spec_caps)?;
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    nix::sys::prctl::set_dumpable(false).map_err(|e| {
        BootError::Step(crate::sys::Failed {
            step: "making the supervisor non-dumpable".into(),
            errno: e.into(),
        })
    })
}
