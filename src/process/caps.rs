//! Capabilities: the supervisor's merged sets and the application's exact five sets.
//!
//! The spec names capabilities with oci-spec's enum, the kernel calls take the `caps` crate's;
//! both spell a capability "CAP_X", which is the bridge between them. Capabilities are
//! per-thread: every caller here is single-threaded (the supervisor, the application before
//! execve), so setting the calling thread's sets sets the process's.

use caps::{CapSet, Capability, CapsHashSet};
use oci_spec::runtime::{Capability as OciCapability, LinuxCapabilities};
use serde::{Deserialize, Serialize};

use crate::sys::Errno;

#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
pub enum CapsError {
    #[error("unknown capability {name}: use a CAP_* name from capabilities(7)")]
    Unknown { name: String },
    #[error("process.capabilities.effective has {cap} but process.capabilities.permitted does not: capset: Operation not permitted (the kernel keeps effective within permitted): add it to permitted or remove it from effective")]
    EffectiveNotPermitted { cap: String },
    #[error("process.capabilities.inheritable has {cap} but process.capabilities.bounding does not: capset: Operation not permitted (the kernel keeps inheritable within bounding): add it to bounding or remove it from inheritable")]
    InheritableNotBounded { cap: String },
    #[error("dropping {cap} from the bounding set: {reason} (this needs CAP_SETPCAP, which the launcher keeps until here)")]
    DropBounding { cap: String, reason: String },
    #[error("setting the {set} capability set to [{caps}]: {reason}")]
    Set {
        set: String,
        caps: String,
        reason: String,
    },
    #[error("{what}: {errno}")]
    Prctl { what: String, errno: Errno },
}

/// The capabilities that runsc's supervisor (directfs mode) keeps on top of the spec's, so that
/// it can create files with exact owners and modes in the container's root.
pub const SUPERVISOR_FILE_CAPS: [Capability; 5] = [
    Capability::CAP_CHOWN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_DAC_READ_SEARCH,
    Capability::CAP_FOWNER,
    Capability::CAP_FSETID,
];

/// All five sets of a process, in the `caps` crate's terms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapSets {
    pub bounding: CapsHashSet,
    pub effective: CapsHashSet,
    pub permitted: CapsHashSet,
    pub inheritable: CapsHashSet,
    pub ambient: CapsHashSet,
}

/// "CAP_CHOWN" (or "chown", "cap_chown") -> CAP_CHOWN.
pub fn parse(name: &str) -> Result<Capability, CapsError> {
    caps::to_canonical(name)
        .parse()
        .map_err(|_| CapsError::Unknown {
            name: name.to_string(),
        })
}

/// The spec's capability as the kernel's. oci-spec displays `Chown` as "CHOWN".
pub fn from_oci(cap: OciCapability) -> Result<Capability, CapsError> {
    parse(&format!("CAP_{cap}"))
}

fn convert(set: Option<&oci_spec::runtime::Capabilities>) -> Result<CapsHashSet, CapsError> {
    set.into_iter().flatten().map(|c| from_oci(*c)).collect()
}

/// "CAP_CHOWN, CAP_KILL", sorted, for messages.
pub fn describe(set: &CapsHashSet) -> String {
    let mut names: Vec<String> = set.iter().map(|c| c.to_string()).collect();
    names.sort();
    names.join(", ")
}

impl CapSets {
    /// The spec's sets; no `capabilities` (or a missing set) means an empty set, as in runc.
    pub fn from_spec(spec: Option<&LinuxCapabilities>) -> Result<Self, CapsError> {
        let Some(spec) = spec else {
            return Ok(Self::default());
        };
        Ok(Self {
            bounding: convert(spec.bounding().as_ref())?,
            effective: convert(spec.effective().as_ref())?,
            permitted: convert(spec.permitted().as_ref())?,
            inheritable: convert(spec.inheritable().as_ref())?,
            ambient: convert(spec.ambient().as_ref())?,
        })
    }

    /// The supervisor's sets: the file capabilities added to bounding, effective and
    /// permitted; inheritable and ambient stay as the spec says.
    pub fn with_supervisor_file_caps(mut self) -> Self {
        for set in [&mut self.bounding, &mut self.effective, &mut self.permitted] {
            set.extend(SUPERVISOR_FILE_CAPS);
        }
        self
    }

    /// Refuse what capset(2) would refuse, with the spec's field names. Ambient capabilities
    /// outside permitted+inheritable are not an error here: see `set_process`.
    pub fn validate(&self) -> Result<(), CapsError> {
        if let Some(c) = first_sorted(self.effective.difference(&self.permitted)) {
            return Err(CapsError::EffectiveNotPermitted { cap: c.to_string() });
        }
        if let Some(c) = first_sorted(self.inheritable.difference(&self.bounding)) {
            return Err(CapsError::InheritableNotBounded { cap: c.to_string() });
        }
        Ok(())
    }

    /// The ambient capabilities the kernel accepts: those also permitted and inheritable.
    pub fn raisable_ambient(&self) -> CapsHashSet {
        let both: CapsHashSet = self
            .permitted
            .intersection(&self.inheritable)
            .copied()
            .collect();
        self.ambient.intersection(&both).copied().collect()
    }
}

fn first_sorted<'a>(it: impl Iterator<Item = &'a Capability>) -> Option<Capability> {
    it.copied().min_by_key(|c| c.index())
}

/// Drop every capability outside `keep` from the bounding set (it can only shrink). Needs
/// CAP_SETPCAP in the effective set, so it comes before any uid switch or capset.
pub fn drop_bounding(keep: &CapsHashSet) -> Result<(), CapsError> {
    // caps::all() stops at CAP_CHECKPOINT_RESTORE (40), the last capability of Linux 6.x;
    // capabilities this kernel does not know read back as an error and are skipped.
    // One prctl per capability (no read first): dropping one not in the set is a no-op.
    for cap in caps::all().difference(keep) {
        match crate::sys::capbset_drop(cap.index()) {
            Ok(()) | Err(crate::sys::Errno(libc::EINVAL)) => {}
            Err(e) => {
                return Err(CapsError::DropBounding {
                    cap: cap.to_string(),
                    reason: e.to_string(),
                })
            }
        }
    }
    Ok(())
}

fn set_one(set: CapSet, name: &str, value: &CapsHashSet) -> Result<(), CapsError> {
    caps::set(None, set, value).map_err(|e| CapsError::Set {
        set: name.to_string(),
        caps: describe(value),
        reason: e.to_string(),
    })
}

/// Set effective, permitted and inheritable to exactly `sets`' and the ambient set to exactly
/// its raisable part. The bounding set is left alone (see `drop_bounding`).
///
/// Order matters to capset(2): inheritable first, while permitted is still the old (wider)
/// one; then effective, still within the old permitted; then permitted, which may now shrink
/// to the new one since the new effective is inside it (`validate`). Ambient last, because
/// raising needs the capability in the final permitted and inheritable sets.
pub fn set_process(sets: &CapSets) -> Result<(), CapsError> {
    sets.validate()?;
    set_one(CapSet::Inheritable, "inheritable", &sets.inheritable)?;
    set_one(CapSet::Effective, "effective", &sets.effective)?;
    set_one(CapSet::Permitted, "permitted", &sets.permitted)?;
    caps::clear(None, CapSet::Ambient).map_err(|e| CapsError::Set {
        set: "ambient".into(),
        caps: String::new(),
        reason: e.to_string(),
    })?;
    // Like crun and runc 1.2, an ambient capability the kernel will not take is left out with
    // a warning rather than failing the start: the application then simply lacks it.
    let raisable = sets.raisable_ambient();
    if let Some(c) = first_sorted(sets.ambient.difference(&raisable)) {
        tracing::debug!(cap = %c, "ambient capability left out: it is not in both process.capabilities.permitted and inheritable");
    }
    for cap in &raisable {
        if let Err(e) = caps::raise(None, CapSet::Ambient, *cap) {
            tracing::warn!(cap = %cap, error = %e, "ambient capability left out: the kernel refused it");
        }
    }
    Ok(())
}

/// PR_SET_KEEPCAPS: keep the permitted set across the switch away from uid 0.
pub fn set_keepcaps(keep: bool) -> Result<(), CapsError> {
    nix::sys::prctl::set_keepcaps(keep).map_err(|e| CapsError::Prctl {
        what: format!("prctl(PR_SET_KEEPCAPS, {})", keep as u8),
        errno: e.into(),
    })
}

/// Supervisor: the spec's sets merged (per set) with CHOWN, DAC_OVERRIDE, DAC_READ_SEARCH,
/// FOWNER, FSETID. Called as root of the user namespace (all capabilities there) once the
/// mounts are done: the bounding set first, while CAP_SETPCAP is still effective.
pub fn apply_supervisor(spec: Option<&LinuxCapabilities>) -> Result<(), CapsError> {
    let sets = CapSets::from_spec(spec)?.with_supervisor_file_caps();
    sets.validate()?;
    drop_bounding(&sets.bounding)?;
    set_process(&sets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn oci_set(names: &[&str]) -> oci_spec::runtime::Capabilities {
        names
            .iter()
            .map(|n| serde_json::from_value(serde_json::json!(n)).unwrap())
            .collect()
    }

    #[test]
    fn cap_names_parse() {
        assert_eq!(parse("CAP_CHOWN").unwrap(), Capability::CAP_CHOWN);
        assert_eq!(
            parse("net_bind_service").unwrap(),
            Capability::CAP_NET_BIND_SERVICE
        );
        let err = parse("CAP_FLY").unwrap_err().to_string();
        assert!(err.contains("CAP_FLY"), "{err}");
    }

    #[test]
    fn every_kernel_cap_round_trips_through_the_spec_enum() {
        for cap in caps::all() {
            let oci: OciCapability = serde_json::from_value(serde_json::json!(cap.to_string()))
                .unwrap_or_else(|e| panic!("{cap}: {e}"));
            assert_eq!(from_oci(oci).unwrap(), cap);
        }
    }

    #[test]
    fn missing_capabilities_mean_empty_sets() {
        assert_eq!(CapSets::from_spec(None).unwrap(), CapSets::default());
        let mut spec = LinuxCapabilities::default();
        spec.set_ambient(None);
        assert!(CapSets::from_spec(Some(&spec)).unwrap().ambient.is_empty());
    }

    #[test]
    fn supervisor_merges_file_caps_per_set() {
        let mut spec = LinuxCapabilities::default();
        spec.set_bounding(Some(oci_set(&["CAP_KILL", "CAP_CHOWN"])));
        spec.set_effective(Some(oci_set(&["CAP_KILL"])));
        spec.set_permitted(Some(oci_set(&["CAP_KILL"])));
        spec.set_inheritable(Some(oci_set(&["CAP_KILL"])));
        spec.set_ambient(Some(oci_set(&[])));
        let sets = CapSets::from_spec(Some(&spec))
            .unwrap()
            .with_supervisor_file_caps();
        let mut want: HashSet<_> = SUPERVISOR_FILE_CAPS.into_iter().collect();
        want.insert(Capability::CAP_KILL);
        assert_eq!(sets.bounding, want);
        assert_eq!(sets.effective, want);
        assert_eq!(sets.permitted, want);
        assert_eq!(
            sets.inheritable,
            [Capability::CAP_KILL].into_iter().collect()
        );
        assert!(sets.ambient.is_empty());
        sets.validate().unwrap();
    }

    #[test]
    fn effective_outside_permitted_is_refused() {
        let sets = CapSets {
            effective: [Capability::CAP_KILL].into_iter().collect(),
            ..Default::default()
        };
        let err = sets.validate().unwrap_err().to_string();
        assert!(
            err.contains("CAP_KILL") && err.contains("permitted"),
            "{err}"
        );
    }

    #[test]
    fn ambient_needs_permitted_and_inheritable() {
        let kill: CapsHashSet = [Capability::CAP_KILL].into_iter().collect();
        let both: CapsHashSet = [Capability::CAP_KILL, Capability::CAP_CHOWN]
            .into_iter()
            .collect();
        let sets = CapSets {
            bounding: both.clone(),
            permitted: both.clone(),
            inheritable: kill.clone(),
            ambient: both,
            ..Default::default()
        };
        assert_eq!(sets.raisable_ambient(), kill);
    }

    #[test]
    fn describe_is_sorted() {
        let set = [Capability::CAP_KILL, Capability::CAP_CHOWN]
            .into_iter()
            .collect();
        assert_eq!(describe(&set), "CAP_CHOWN, CAP_KILL");
    }
}
