//! The systemd cgroup driver (`--systemd-cgroup`, crun's `--cgroup-manager systemd`): the
//! container's cgroup is a transient scope unit, `prefix-name.scope` in `slice`, from the
//! cgroupsPath `slice:prefix:name` as runc and crun read it, started over D-Bus on the system
//! bus (root) or the user's (rootless, under user@UID.service). systemd gets Delegate=yes and
//! the resources it has properties for, so that they survive its reloads; every resource is
//! then written to the scope's files as for the cgroupfs driver (as crun does). Stopping the
//! unit at delete removes the cgroup. Only on the unified hierarchy.
//!
//! A scope is made around a process: a holder of our own ([`holder`]), never the caller (the
//! supervisor is cloned from it) nor the supervisor, which stays outside the container's
//! cgroup.

pub mod dbus;
mod holder;
pub mod wire;

use std::path::PathBuf;

use oci_spec::runtime::LinuxResources;
use serde::{Deserialize, Serialize};

use dbus::{Bus, BusError};
use wire::{Reader, Value};

#[derive(Debug, Clone, thiserror::Error, Serialize, Deserialize)]
pub enum SystemdError {
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("linux.cgroupsPath {path:?}: {why}")]
    Path { path: String, why: String },
    #[error("systemd unit {unit} already exists: delete the container that has it, or run: systemctl{user} stop {unit}")]
    Exists { unit: String, user: String },
    #[error("systemd unit {unit}: the job to {what} it ended \"{result}\": see journalctl{user} -u {unit}")]
    Job {
        unit: String,
        what: String,
        result: String,
        user: String,
    },
    #[error("systemd unit {unit}: {what}: {why}")]
    Step {
        unit: String,
        what: String,
        why: String,
    },
}

const SYSTEMD: &str = "org.freedesktop.systemd1";
const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";

/// A container's scope unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    pub unit: String,
    pub slice: String,
    /// The user's manager (rootless), not the system's.
    pub user: bool,
    /// The holder's pid, while this process may have to reap it.
    pub holder: Option<u32>,
}

/// The scope of cgroupsPath `slice:prefix:name` (empty: `:nsboot:<id>`); an empty slice is
/// `system.slice` for root and `user.slice` rootless, as in runc.
pub fn scope_of(
    cgroups_path: Option<&str>,
    id: &str,
    rootless: bool,
) -> Result<Scope, SystemdError> {
    let given = cgroups_path.unwrap_or("");
    let bad = |why: &str| SystemdError::Path {
        path: given.into(),
        why: why.into(),
    };
    let path = if given.is_empty() {
        format!(":nsboot:{id}")
    } else {
        given.to_string()
    };
    let parts: Vec<&str> = path.split(':').collect();
    let [slice, prefix, name] = parts[..] else {
        return Err(bad("the systemd driver takes \"slice:prefix:name\" (--systemd-cgroup): give it that shape, or drop --systemd-cgroup"));
    };
    let unit_chars = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":-_.\\@".contains(&b))
    };
    if name.is_empty() || !unit_chars(name) || !unit_chars(prefix) || !unit_chars(slice) {
        return Err(bad(
            "a unit name is made of letters, digits and \":-_.\\@\", and the name part is required",
        ));
    }
    if name.ends_with(".slice") {
        return Err(bad(
            "nsboot makes the container a scope, not a slice: give a name without .slice",
        ));
    }
    let slice = match slice {
        "" if rootless => "user.slice".to_string(),
        "" => "system.slice".to_string(),
        s if s.ends_with(".slice") => s.to_string(),
        _ => return Err(bad("the first part names a slice: end it in .slice")),
    };
    let unit = if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    Ok(Scope {
        unit,
        slice,
        user: rootless,
        holder: None,
    })
}

/// The container's cgroup as the scope of `cgroups_path`: its directory is known once
/// [`Scope::start`] has made it.
pub fn plan(
    layout: &super::Layout,
    cgroups_path: Option<&std::path::Path>,
    id: &str,
) -> Result<super::Cgroup, SystemdError> {
    let given = cgroups_path.map(|p| p.to_string_lossy().into_owned());
    let scope = scope_of(given.as_deref(), id, crate::idmap::is_rootless())?;
    if !layout.unified() {
        return Err(SystemdError::Path {
            path: given.unwrap_or_default(),
            why: "nsboot's systemd driver needs the unified hierarchy (cgroup v2): boot with systemd.unified_cgroup_hierarchy=1, or drop --systemd-cgroup".into(),
        });
    }
    Ok(super::Cgroup {
        unified: true,
        dirs: Vec::new(),
        name: format!("{}/{}", scope.slice, scope.unit),
        driver: super::Driver::Systemd(scope),
    })
}

/// The unit properties of `r` that systemd has (the rest is written to the files only).
pub fn properties(r: &LinuxResources) -> Vec<(String, Value)> {
    let mut p = Vec::new();
    let limit = |v: i64| if v < 0 { u64::MAX } else { v as u64 };
    let mut put = |name: &str, v: Value| p.push((name.to_string(), v));
    if let Some(m) = r.memory() {
        if let Some(l) = m.limit().filter(|&l| l != 0) {
            put("MemoryMax", Value::U64(limit(l)));
        }
        if let Some(low) = m.reservation().filter(|&v| v != 0) {
            put("MemoryLow", Value::U64(limit(low)));
        }
        // v2's swap alone (runc's rule); an update of the swap alone, against the limit in
        // place, goes to the file only.
        let swap = m.swap().filter(|&s| s != 0);
        if let Some(Ok(v)) = swap.map(|s| super::v2::swap_value(s, m.limit())) {
            let max = v.parse().unwrap_or(u64::MAX);
            put("MemorySwapMax", Value::U64(max));
        }
    }
    if let Some(pids) = r.pids().as_ref().map(|p| p.limit()).filter(|&l| l != 0) {
        put("TasksMax", Value::U64(limit(pids)));
    }
    if let Some(c) = r.cpu() {
        if let Some(s) = c.shares().filter(|&s| s >= 2) {
            // runc's conversion of cpu.shares [2, 262144] to cpu.weight [1, 10000].
            put("CPUWeight", Value::U64(1 + ((s - 2) * 9999) / 262142));
        }
        let period = c.period().filter(|&p| p != 0);
        if let Some(q) = c.quota().filter(|&q| q != 0) {
            let per_sec = if q < 0 {
                u64::MAX
            } else {
                // systemd keeps a percentage: round up to 10 ms a second, so that the quota
                // written to cpu.max below fits inside it.
                let us = (q as u64 * 1_000_000) / period.unwrap_or(100_000);
                us.div_ceil(10_000) * 10_000
            };
            put("CPUQuotaPerSecUSec", Value::U64(per_sec));
        }
        if let Some(p) = period {
            put("CPUQuotaPeriodUSec", Value::U64(p));
        }
        if let Some(mask) = c.cpus().as_deref().and_then(cpu_mask) {
            put("AllowedCPUs", Value::Bytes(mask));
        }
        if let Some(mask) = c.mems().as_deref().and_then(cpu_mask) {
            put("AllowedMemoryNodes", Value::Bytes(mask));
        }
    }
    p
}

/// A cpuset list ("0-3,8") as systemd's byte mask (bit n of byte n/8); None if malformed
/// (the file write refuses it then) or empty.
fn cpu_mask(list: &str) -> Option<Vec<u8>> {
    let mut mask = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (usize, usize) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
        if a > b || b >= 1 << 16 {
            return None;
        }
        for n in a..=b {
            if mask.len() <= n / 8 {
                mask.resize(n / 8 + 1, 0);
            }
            mask[n / 8] |= 1 << (n % 8);
        }
    }
    (!mask.is_empty()).then_some(mask)
}

/// JobRemoved's (id u, job o, unit s, result s): the job and its result.
fn job_removed(m: &dbus::Message) -> Option<(String, String)> {
    let mut r = Reader::new(&m.body);
    r.u32().ok()?;
    let job = r.str().ok()?;
    r.str().ok()?;
    Some((job, r.str().ok()?))
}

impl Scope {
    fn connect(&self) -> Result<Bus, SystemdError> {
        let path = if self.user {
            dbus::user_bus_path().ok_or_else(|| self.step("finding the user's D-Bus", "neither DBUS_SESSION_BUS_ADDRESS nor XDG_RUNTIME_DIR is set: run in a systemd user session"))?
        } else {
            PathBuf::from(dbus::SYSTEM_BUS)
        };
        let mut bus = Bus::connect(&path)?;
        let rule = format!("type='signal',sender='{SYSTEMD}',interface='{MANAGER}',member='JobRemoved',path='{MANAGER_PATH}'");
        bus.call(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "AddMatch",
            &[Value::Str(rule)],
        )?;
        // systemd emits job signals only while someone is subscribed.
        bus.call(SYSTEMD, MANAGER_PATH, MANAGER, "Subscribe", &[])?;
        Ok(bus)
    }

    fn step(&self, what: &str, why: impl ToString) -> SystemdError {
        SystemdError::Step {
            unit: self.unit.clone(),
            what: what.into(),
            why: why.to_string(),
        }
    }

    fn user_flag(&self) -> String {
        if self.user { " --user" } else { "" }.into()
    }

    /// Calls a Manager method that returns a job, and waits for the job to end.
    fn job(
        &self,
        bus: &mut Bus,
        method: &str,
        args: &[Value],
        what: &str,
    ) -> Result<(), SystemdError> {
        let reply = bus.call(SYSTEMD, MANAGER_PATH, MANAGER, method, args)?;
        let job = Reader::new(&reply.body)
            .str()
            .map_err(|e| self.step(what, e))?;
        let done = bus.wait_signal(|m| {
            m.member.as_deref() == Some("JobRemoved")
                && job_removed(m).is_some_and(|(j, _)| j == job)
        })?;
        let (_, result) = job_removed(&done).unwrap_or_default();
        if result != "done" {
            return Err(SystemdError::Job {
                unit: self.unit.clone(),
                what: what.into(),
                result,
                user: self.user_flag(),
            });
        }
        Ok(())
    }

    /// Starts the scope and returns its cgroup directory (the resources follow as
    /// properties, [`update`](Self::update), and as files).
    pub fn start(&mut self) -> Result<PathBuf, SystemdError> {
        let mut bus = self.connect()?;
        let mut h =
            holder::Holder::spawn().map_err(|e| self.step("making its first process", e))?;
        let props = vec![
            (
                "Description".into(),
                Value::Str(format!("nsboot container {}", self.unit)),
            ),
            ("Slice".into(), Value::Str(self.slice.clone())),
            ("Delegate".into(), Value::Bool(true)),
            ("DefaultDependencies".into(), Value::Bool(false)),
            ("PIDs".into(), Value::U32s(vec![h.pid.as_raw() as u32])),
        ];
        let args = [
            Value::Str(self.unit.clone()),
            Value::Str("replace".into()),
            Value::Props(props),
            Value::Aux(Vec::new()),
        ];
        let started = self.job(&mut bus, "StartTransientUnit", &args, "start");
        let dir = started.and_then(|()| self.control_group(&mut bus));
        match dir {
            Ok(dir) => {
                h.watch(&dir);
                self.holder = Some(h.pid.as_raw() as u32);
                Ok(dir)
            }
            Err(e) => {
                h.kill();
                Err(match e {
                    SystemdError::Bus(BusError::Remote { name, .. })
                        if name == "org.freedesktop.systemd1.UnitExists" =>
                    {
                        SystemdError::Exists {
                            unit: self.unit.clone(),
                            user: self.user_flag(),
                        }
                    }
                    e => e,
                })
            }
        }
    }

    /// The scope's cgroup directory, from its ControlGroup property.
    fn control_group(&self, bus: &mut Bus) -> Result<PathBuf, SystemdError> {
        let path = format!("{MANAGER_PATH}/unit/{}", wire::object_label(&self.unit));
        let args = [
            Value::Str("org.freedesktop.systemd1.Scope".into()),
            Value::Str("ControlGroup".into()),
        ];
        let what = "reading its ControlGroup";
        let reply = bus.call(
            SYSTEMD,
            &path,
            "org.freedesktop.DBus.Properties",
            "Get",
            &args,
        )?;
        let mut r = Reader::new(&reply.body);
        let sig = r.sig().map_err(|e| self.step(what, e))?;
        let cg = r
            .basic(&sig)
            .map_err(|e| self.step(what, e))?
            .unwrap_or_default();
        if !cg.starts_with('/') || cg.split('/').any(|c| c == "..") {
            return Err(self.step(what, format!("{cg:?} is not a cgroup path")));
        }
        Ok(PathBuf::from(super::layout::MOUNT).join(cg.trim_start_matches('/')))
    }

    /// Stops the scope (its processes killed, its cgroup removed); a unit already gone is
    /// fine.
    pub fn stop(&self) -> Result<(), SystemdError> {
        let mut bus = self.connect()?;
        let args = [Value::Str(self.unit.clone()), Value::Str("replace".into())];
        let r = match self.job(&mut bus, "StopUnit", &args, "stop") {
            Err(SystemdError::Bus(BusError::Remote { name, .. }))
                if name == "org.freedesktop.systemd1.NoSuchUnit" =>
            {
                Ok(())
            }
            r => r,
        };
        if let Some(pid) = self.holder {
            holder::reap(pid);
        }
        r
    }

    /// Sets the properties of `r` on the running scope (`nsboot update`).
    pub fn update(&self, r: &LinuxResources) -> Result<(), SystemdError> {
        let props = properties(r);
        if props.is_empty() {
            return Ok(());
        }
        let mut bus = self.connect()?;
        let args = [
            Value::Str(self.unit.clone()),
            Value::Bool(true),
            Value::Props(props),
        ];
        bus.call(SYSTEMD, MANAGER_PATH, MANAGER, "SetUnitProperties", &args)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
