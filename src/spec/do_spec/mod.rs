//! The spec of `nsboot do`: a command over the host's own root, built in memory.
//!
//! The root (`/` or `--rootfs`) is bound recursively read-only; fresh /proc, /dev, /tmp, /run
//! and /sys go on top, then the working directory read-write, then the user's volumes and
//! tmpfs. /run is a fresh tmpfs because it holds the sockets of services that act for the user
//! outside any sandbox (the session bus can start commands via systemd-run --user). With
//! `--overlay` the root stays writable: the supervisor lays a tmpfs-backed overlay over it
//! (rootfs::overlay), and everything written there vanishes with the sandbox.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Mount, Process, Root, User};

use super::generate::{
    default_capabilities, mount, namespace, no_capabilities, MASKED_PATHS, OCI_VERSION,
    READONLY_PATHS,
};
use super::options::{clean, Volume};

mod env;
use super::{Spec, SpecError};
use env::environment;

/// The annotation asking for a writable overlay over the read-only root: `nsboot do --overlay`
/// sets it to "true".
pub const OVERLAY_ANNOTATION: &str = "nsboot.overlay";

/// The uid and the gid maps, as config.json holds them.
pub type OciMaps = (Vec<LinuxIdMapping>, Vec<LinuxIdMapping>);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Network {
    /// A network namespace of its own, with only a loopback device.
    #[default]
    None,
    /// The host's network (no network namespace).
    Host,
}

/// Everything `do_spec` needs, gathered by the command line (so that building stays testable).
#[derive(Debug, Clone, Default)]
pub struct DoOptions {
    pub command: Vec<String>,
    /// The root to show, bound read-only: `/` unless `--rootfs`.
    pub rootfs: PathBuf,
    /// Absolute host path bound at the same path and used as the process's cwd.
    pub cwd: PathBuf,
    /// `cwd` came from `--cwd` (else it is the current directory): named so in errors.
    pub cwd_flag: bool,
    pub ro_cwd: bool,
    pub volumes: Vec<Volume>,
    pub tmpfs: Vec<PathBuf>,
    pub overlay: bool,
    pub network: Network,
    /// The maps of ids the flags leave open (`idmap::for_do`): the caller alone as 0, or with
    /// `subids` its subordinate ranges too. None: nsboot's policy (root's identity).
    pub own_map: Option<OciMaps>,
    pub subids: bool,
    /// `--uid-map` / `--gid-map`; empty: `own_map`.
    pub uid_map: Vec<LinuxIdMapping>,
    pub gid_map: Vec<LinuxIdMapping>,
    pub user: Option<(u32, Option<u32>)>,
    /// `--env K=V` or `--env K` (taken from the caller's environment when set there).
    pub env: Vec<String>,
    pub env_all: bool,
    /// The caller's environment.
    pub host_env: Vec<(String, String)>,
    pub terminal: bool,
}

pub fn do_spec(opts: &DoOptions) -> Result<Spec, SpecError> {
    if opts.command.is_empty() || opts.command[0].is_empty() {
        return Err(SpecError::Invalid {
            file: None,
            json_path: String::new(),
            msg: "no command given: nsboot do [OPTIONS] -- CMD [ARGS...]".into(),
        });
    }
    let rootfs = existing_dir("--rootfs", &opts.rootfs)?;
    let cwd = existing_dir("--cwd", &opts.cwd)?;
    enterable(opts, &cwd)?;
    let uid = opts.user.map_or(0, |(uid, _)| uid);
    let gid = match opts.user {
        Some((_, Some(gid))) => gid,
        Some((uid, None)) => primary_gid(&rootfs, uid).unwrap_or(0),
        None => 0,
    };
    let (uid_map, gid_map) = maps(opts);
    check_mapped(opts, "uid", uid, &uid_map)?;
    check_mapped(opts, "gid", gid, &gid_map)?;

    let mut spec = Spec::default();
    spec.set_version(OCI_VERSION.into());
    let mut root = Root::default();
    root.set_path(rootfs.clone());
    // The overlay is the root's writable layer: a read-only root would hide it.
    root.set_readonly(Some(!opts.overlay));
    spec.set_root(Some(root));
    spec.set_hostname(None);
    spec.set_mounts(Some(mounts(opts, &rootfs, &cwd)?));
    spec.set_process(Some(process(opts, &cwd, uid, gid)?));
    spec.set_annotations(
        opts.overlay
            .then(|| HashMap::from([(OVERLAY_ANNOTATION.to_string(), "true".to_string())])),
    );

    let mut linux = super::empty_linux();
    use LinuxNamespaceType as Ns;
    let mut namespaces: Vec<_> = [Ns::User, Ns::Mount, Ns::Pid, Ns::Ipc, Ns::Uts]
        .into_iter()
        .map(namespace)
        .collect();
    if opts.network == Network::None {
        namespaces.push(namespace(Ns::Network));
    }
    linux.set_namespaces(Some(namespaces));
    linux.set_uid_mappings((!uid_map.is_empty()).then_some(uid_map));
    linux.set_gid_mappings((!gid_map.is_empty()).then_some(gid_map));
    linux.set_masked_paths(Some(MASKED_PATHS.iter().map(|p| p.to_string()).collect()));
    linux.set_readonly_paths(Some(READONLY_PATHS.iter().map(|p| p.to_string()).collect()));
    // The same default profile as `nsboot spec` writes, tailored to the command's capabilities
    // (syscall groups gated by a capability stay denied without it).
    linux.set_seccomp(Some(super::default_seccomp(&spec)));
    spec.set_linux(Some(linux));

    super::validate(&spec)?;
    Ok(spec)
}

/// The maps written: the flags', else `own_map`'s (each of uid and gid on its own).
fn maps(opts: &DoOptions) -> OciMaps {
    let (own_u, own_g) = opts.own_map.clone().unwrap_or_default();
    let pick = |flag: &Vec<LinuxIdMapping>, own| if flag.is_empty() { own } else { flag.clone() };
    (pick(&opts.uid_map, own_u), pick(&opts.gid_map, own_g))
}

fn existing_dir(flag: &str, path: &Path) -> Result<PathBuf, SpecError> {
    let shown = path.display().to_string();
    if !path.is_absolute() {
        return Err(SpecError::option(flag, &shown, "not an absolute path"));
    }
    match std::fs::canonicalize(path) {
        Ok(p) if p.is_dir() => Ok(p),
        Ok(_) => Err(SpecError::option(
            flag,
            &shown,
            "not a directory: give an existing directory",
        )),
        Err(e) => Err(SpecError::option(
            flag,
            &shown,
            format!("{}: give an existing directory", crate::sys::Errno::from(e)),
        )),
    }
}

/// The working directory must be one the caller can enter: the sandbox's root is the caller.
fn enterable(opts: &DoOptions, cwd: &Path) -> Result<(), SpecError> {
    use nix::unistd::{access, AccessFlags};
    let Err(e) = access(cwd, AccessFlags::X_OK) else {
        return Ok(());
    };
    let why = format!(
        "{}: you cannot enter it (its mode or a parent's)",
        crate::sys::Errno::from(e)
    );
    Err(if opts.cwd_flag {
        SpecError::option(
            "--cwd",
            &cwd.display().to_string(),
            format!("{why}: pass another --cwd"),
        )
    } else {
        SpecError::Invalid {
            file: None,
            json_path: String::new(),
            msg: format!(
                "the current directory {}: {why}: cd to another, or pass --cwd DIR",
                cwd.display()
            ),
        }
    })
}

/// The group of `uid` in the sandbox root's /etc/passwd, as `docker run --user UID` does.
fn primary_gid(rootfs: &Path, uid: u32) -> Option<u32> {
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() >= 4 && fields[2].parse() == Ok(uid))
            .then(|| fields[3].parse().ok())
            .flatten()
    })
}

fn bind(src: &Path, dst: &Path, readonly: bool) -> Mount {
    let mut m = mount(
        "",
        "bind",
        "",
        &["rbind", if readonly { "ro" } else { "rw" }],
    );
    m.set_destination(dst.to_path_buf());
    m.set_source(Some(src.to_path_buf()));
    m
}

/// The path inside the sandbox of host path `p` under `rootfs`.
fn inside(rootfs: &Path, p: &Path) -> Option<PathBuf> {
    p.strip_prefix(rootfs)
        .ok()
        .map(|rel| Path::new("/").join(rel))
}

fn mounts(opts: &DoOptions, rootfs: &Path, cwd: &Path) -> Result<Vec<Mount>, SpecError> {
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &[]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
            ],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
        mount("/tmp", "tmpfs", "tmpfs", &["nosuid", "nodev", "mode=1777"]),
        mount("/run", "tmpfs", "tmpfs", &["nosuid", "nodev", "mode=755"]),
    ];
    // A sysfs of the sandbox's own network namespace shows only its loopback in
    // /sys/class/net; the kernel refuses a new one in the host's network namespace, whose
    // /sys is then shown read-only as it is.
    mounts.push(match opts.network {
        Network::None => mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        Network::Host => bind(Path::new("/sys"), Path::new("/sys"), true),
    });
    // With the host's network, name resolution must keep working: where /etc/resolv.conf
    // points into the now hidden /run (systemd-resolved), bind its target back.
    if opts.network == Network::Host {
        let target = std::fs::canonicalize(rootfs.join("etc/resolv.conf")).ok();
        if let Some((src, dst)) = target.and_then(|t| inside(rootfs, &t).map(|d| (t, d))) {
            if dst.starts_with("/run") {
                mounts.push(bind(&src, &dst, true));
            }
        }
    }
    // `/` is never bound read-write: that would hand the whole host root to the sandbox.
    if cwd != Path::new("/") {
        mounts.push(bind(cwd, cwd, opts.ro_cwd));
    }
    for v in &opts.volumes {
        if let Err(e) = std::fs::metadata(&v.src) {
            return Err(SpecError::option(
                "--volume",
                &v.src.display().to_string(),
                format!(
                    "source: {}: create it or fix the path",
                    crate::sys::Errno::from(e)
                ),
            ));
        }
        let value = format!("{}:{}", v.src.display(), v.dst.display());
        check_mount_point("--volume", &value, &v.dst, rootfs, &mounts, opts.overlay)?;
        mounts.push(bind(&v.src, &v.dst, v.readonly));
    }
    for t in &opts.tmpfs {
        let shown = t.display().to_string();
        if !t.is_absolute() || t.components().any(|c| c == Component::ParentDir) {
            return Err(SpecError::option(
                "--tmpfs",
                &shown,
                "give an absolute path inside the sandbox, without ..",
            ));
        }
        check_mount_point("--tmpfs", &shown, &clean(t), rootfs, &mounts, opts.overlay)?;
        let mut m = mount("", "tmpfs", "tmpfs", &["nosuid", "nodev", "mode=1777"]);
        m.set_destination(clean(t));
        mounts.push(m);
    }
    Ok(mounts)
}

/// With `--uid-map`/`--gid-map`, the command's ids must be among them (the spec's validation
/// would say so in config.json's terms, which `do` has none of).
fn check_mapped(
    opts: &DoOptions,
    what: &str,
    id: u32,
    map: &[LinuxIdMapping],
) -> Result<(), SpecError> {
    let covers = |m: &LinuxIdMapping| {
        id >= m.container_id() && u64::from(id) < u64::from(m.container_id()) + u64::from(m.size())
    };
    if map.is_empty() || map.iter().any(covers) {
        return Ok(());
    }
    let given = if what == "uid" {
        &opts.uid_map
    } else {
        &opts.gid_map
    };
    if given.is_empty() {
        let value = match opts.user {
            Some((uid, Some(gid))) => format!("{uid}:{gid}"),
            Some((uid, None)) => uid.to_string(),
            None => String::new(),
        };
        let why = if opts.subids {
            format!("{what} {id} is not among the ids --subids maps (0, then your subordinate range from 1): give --user one of them, or map it with --{what}-map")
        } else {
            format!("{what} {id} is not mapped: do maps only your own id, as 0: add --subids to map your subordinate ids too, or map it with --{what}-map")
        };
        return Err(SpecError::option("--user", &value, why));
    }
    let map_flag = format!("--{what}-map");
    let (flag, value) = match opts.user {
        Some((uid, Some(gid))) => ("--user", format!("{uid}:{gid}")),
        Some((uid, None)) => ("--user", uid.to_string()),
        None => {
            let ranges: Vec<String> = map
                .iter()
                .map(|m| format!("{} {} {}", m.container_id(), m.host_id(), m.size()))
                .collect();
            (map_flag.as_str(), format!("{:?}", ranges.join(",")))
        }
    };
    Err(SpecError::option(
        flag,
        &value,
        format!("{what} {id} is not mapped by --{what}-map: add a range for it to --{what}-map, or give --user a mapped id"),
    ))
}

/// A user's mount point must exist in the root already, or lie beneath an earlier mount
/// (/tmp, the working directory, a volume): the root is bound from the host before it is made
/// read-only, so creating a missing mount point there would create it on the host. With
/// `--overlay` it is created in the overlay and vanishes with the sandbox.
fn check_mount_point(
    flag: &str,
    value: &str,
    dst: &Path,
    rootfs: &Path,
    earlier: &[Mount],
    overlay: bool,
) -> Result<(), SpecError> {
    let beneath = |m: &Mount| dst.starts_with(m.destination()) && dst != m.destination();
    let rel = dst.strip_prefix("/").unwrap_or(dst);
    if overlay || earlier.iter().any(beneath) || rootfs.join(rel).symlink_metadata().is_ok() {
        return Ok(());
    }
    Err(SpecError::option(
        flag,
        value,
        format!(
            "{} does not exist in the sandbox's root, which is read-only: create it on the host first, or add --overlay",
            dst.display()
        ),
    ))
}

fn process(opts: &DoOptions, cwd: &Path, uid: u32, gid: u32) -> Result<Process, SpecError> {
    let mut p = Process::default();
    p.set_terminal(Some(opts.terminal));
    let mut user = User::default();
    user.set_uid(uid);
    user.set_gid(gid);
    p.set_user(user);
    p.set_args(Some(opts.command.clone()));
    p.set_env(Some(environment(opts)?));
    p.set_cwd(cwd.to_path_buf());
    p.set_no_new_privileges(Some(true));
    // Root in the sandbox gets runc's few capabilities; anyone else none at all, so that the
    // user it names is as powerless as that user is outside.
    p.set_capabilities(Some(if uid == 0 {
        default_capabilities()
    } else {
        no_capabilities()
    }));
    p.set_rlimits(None);
    Ok(p)
}
