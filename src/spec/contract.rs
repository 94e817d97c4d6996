//! Values nsboot cannot apply as the spec means them, refused with the JSON path and the fix:
//! ids the kernel reads as "unchanged", namespaces it cannot join or inherit, mount options a
//! bind would drop, and seccomp notification. The fields nsboot
//! does not apply at all are refused by `scan`, from the table in `fields`.

use oci_spec::runtime::{LinuxNamespaceType, LinuxSeccompAction, Process};

use super::fields::MOUNT_OPTIONS;
use super::{Spec, SpecError};

/// (uid_t)-1 and (gid_t)-1: "leave it unchanged" to setresuid/setresgid, so a container
/// asking for it would keep the ids nsboot runs it with (root).
const UNCHANGED: u32 = u32::MAX;

pub fn check_user(process: &Process) -> Result<(), SpecError> {
    let user = process.user();
    let unchanged = |path: String, what: &str| {
        SpecError::invalid(
            path,
            format!("4294967295 is (uid_t)-1, which the kernel reads as \"leave the {what} unchanged\" (root): give a real id"),
        )
    };
    if user.uid() == UNCHANGED {
        return Err(unchanged("process.user.uid".into(), "uid"));
    }
    if user.gid() == UNCHANGED {
        return Err(unchanged("process.user.gid".into(), "gid"));
    }
    for (i, g) in user.additional_gids().iter().flatten().enumerate() {
        if *g == UNCHANGED {
            return Err(unchanged(
                format!("process.user.additionalGids[{i}]"),
                "group",
            ));
        }
    }
    if let Some(m) = user.umask().filter(|m| *m > 0o777) {
        return Err(SpecError::invalid(
            "process.user.umask",
            format!("{m:#o} has bits above 0777, which umask(2) drops: give permission bits only, e.g. 18 (0022)"),
        ));
    }
    let size = process.console_size();
    let max = u64::from(u16::MAX);
    if process.terminal() == Some(true) && size.is_some_and(|b| b.height() > max || b.width() > max)
    {
        return Err(SpecError::invalid(
            "process.consoleSize",
            format!("a terminal is at most {max} rows and columns: lower height and width"),
        ));
    }
    Ok(())
}

/// A type listed without a path is new, with a path joined (`sandbox::nspath`), not listed
/// inherited from the caller; but a mount namespace is always listed (nsboot builds the root
/// in a new or a joined one, never in the caller's). A mount namespace joined by path must be
/// one the application can enter: a new user namespace owns none.
pub fn check_namespaces(spec: &Spec) -> Result<(), SpecError> {
    use LinuxNamespaceType as Ns;
    let namespaces = super::namespaces(spec);
    let user = namespaces.iter().find(|n| n.typ() == Ns::User);
    let mount_path = namespaces
        .iter()
        .enumerate()
        .find_map(|(i, n)| (n.typ() == Ns::Mount).then_some((i, n.path().as_ref()?)));
    if let Some((i, p)) = mount_path {
        let why = match user {
            Some(u) if u.path().is_none() => Some("a mount namespace joined by path with a new user namespace, which owns no existing one, so the container could not enter it: list by path the user namespace that owns it too, or remove {\"type\":\"user\"}"),
            None if !nix::unistd::geteuid().is_root() => Some("a mount namespace joined by path with no user namespace listed, which runs the container in the caller's, where only root may act on it: list by path the user namespace that owns it too"),
            _ => None,
        };
        if let Some(why) = why {
            return Err(SpecError::invalid(
                format!("linux.namespaces[{i}].path"),
                format!("{p:?}: {why}"),
            ));
        }
    }
    if !super::lists(spec, Ns::Mount) {
        return Err(SpecError::invalid(
            "linux.namespaces",
            "no mount namespace, which asks to share the runtime's: nsboot builds the root in a new one: add {\"type\":\"mount\"}",
        ));
    }
    Ok(())
}

pub fn check_linux(spec: &Spec) -> Result<(), SpecError> {
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    if let Some(p) = linux.rootfs_propagation().as_deref() {
        const KNOWN: [&str; 8] = [
            "private",
            "rprivate",
            "shared",
            "rshared",
            "slave",
            "rslave",
            "unbindable",
            "runbindable",
        ];
        if !p.is_empty() && !KNOWN.contains(&p) {
            return Err(SpecError::invalid(
                "linux.rootfsPropagation",
                format!(
                    "{p:?} is not a propagation: use one of {}",
                    KNOWN.join(", ")
                ),
            ));
        }
    }
    if let Some(seccomp) = linux.seccomp() {
        if seccomp.default_action() == LinuxSeccompAction::ScmpActNotify {
            return Err(SpecError::invalid(
                "linux.seccomp.defaultAction",
                "SCMP_ACT_NOTIFY cannot be the default action (it would notify the agent of the process's own start-up): use it in syscalls rules",
            ));
        }
        let listener = seccomp
            .listener_path()
            .as_ref()
            .is_some_and(|p| !p.as_os_str().is_empty());
        for (i, s) in seccomp.syscalls().iter().flatten().enumerate() {
            if s.action() == LinuxSeccompAction::ScmpActNotify && !listener {
                return Err(SpecError::invalid(
                    format!("linux.seccomp.syscalls[{i}].action"),
                    "SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath, the socket of the agent that gets the notify fd: set it",
                ));
            }
        }
    }
    Ok(())
}

/// A bind mount hands its options to no file system: an option that is not a flag nsboot
/// sets would be dropped (`rro` would leave the bind writable). Other file systems get their
/// data options checked by the kernel.
pub fn check_mounts(spec: &Spec) -> Result<(), SpecError> {
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        let options = m.options().as_deref().unwrap_or_default();
        let typ = m.typ().as_deref().unwrap_or("");
        let bind = typ == "bind" || options.iter().any(|o| o == "bind" || o == "rbind");
        for (j, o) in options.iter().enumerate() {
            if o == "idmap" || o == "ridmap" {
                return Err(SpecError::invalid(
                    format!("mounts[{i}].options[{j}]"),
                    format!("{o:?}: nsboot makes no id-mapped mounts yet: remove it"),
                ));
            }
            let dropped = o == "tmpcopyup"
                || (bind && !MOUNT_OPTIONS.contains(&o.as_str()) && !mount8_only(o));
            if dropped {
                return Err(SpecError::invalid(
                    format!("mounts[{i}].options[{j}]"),
                    format!("{o:?} is not applied by nsboot to this mount: remove it (`nsboot features` lists the options it applies)"),
                ));
            }
        }
        let cgroup = !bind && (typ == "cgroup" || typ == "cgroup2");
        if cgroup && !options.iter().any(|o| o == "ro") {
            return Err(SpecError::invalid(
                format!("mounts[{i}].options"),
                "a cgroup mount without \"ro\": nsboot only shows the host's hierarchy read-only: add \"ro\"",
            ));
        }
    }
    Ok(())
}

/// Options for mount(8) and fstab, not for the kernel: they change nothing in a container.
fn mount8_only(o: &str) -> bool {
    matches!(o, "nofail" | "auto" | "noauto") || o.starts_with("x-")
}

pub fn check_hooks(spec: &Spec) -> Result<(), SpecError> {
    let Some(hooks) = spec.hooks() else {
        return Ok(());
    };
    #[allow(deprecated)] // prestart is deprecated in the spec, but engines still use it
    let lists = [
        ("prestart", hooks.prestart()),
        ("createRuntime", hooks.create_runtime()),
        ("createContainer", hooks.create_container()),
        ("startContainer", hooks.start_container()),
        ("poststart", hooks.poststart()),
        ("poststop", hooks.poststop()),
    ];
    for (kind, list) in lists {
        for (i, h) in list.iter().flatten().enumerate() {
            if let Some(t) = h.timeout().filter(|t| *t <= 0) {
                return Err(SpecError::invalid(
                    format!("hooks.{kind}[{i}].timeout"),
                    format!("{t}: the spec requires a timeout above 0: raise it or remove it"),
                ));
            }
        }
    }
    Ok(())
}
