//! The integration-test harness: who runs nsboot (a [`Mode`]), the shared busybox rootfs, bundle
//! directories with a complete OCI config, and the check that a run left nothing behind.
//!
//! As root (CI), the rootless modes run as the unprivileged user `nsbt` (scripts/test-users.sh);
//! as an ordinary user they run as that user.
#![allow(dead_code)] // every test binary uses its own part of the harness

use std::collections::hash_map::DefaultHasher;
use std::ffi::OsStr;
use std::fs;
use std::hash::{Hash, Hasher};
use std::os::unix::fs::{chown, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

mod bundle;
pub mod do_run;
mod fixtures;
mod leftovers;
mod mountinfo;
mod run;
mod running;

#[allow(unused_imports)]
pub use bundle::Bundle;
#[allow(unused_imports)]
pub use fixtures::{
    add_tmp_and, bind, give_to, host_dir, private_rootfs, run_ok, run_over_shared_mount, sections,
    sh, sh_with_mounts, test_id, top, with_private_rootfs, Tmpfs,
};
#[allow(unused_imports)]
pub use leftovers::assert_nothing_left;
#[allow(unused_imports)]
pub use mountinfo::{find_mount, host_submounts, mount_at, parse_mountinfo, MountLine};
#[allow(unused_imports)]
pub use run::{children_of, output, output_within, spawn_piped, wait_code, Output};
#[allow(unused_imports)]
pub use running::Running;

/// The unprivileged user (with a subordinate range) the rootless modes run as under root.
pub const TEST_USER: &str = "nsbt";
/// An unprivileged user with no /etc/subuid or /etc/subgid entry.
pub const NOSUB_USER: &str = "nsbt-nosub";
/// A run that takes longer than this is killed (a hung sandbox must fail the test, not hang it).
pub const RUN_TIMEOUT: Duration = Duration::from_secs(60);
const CLEAN_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";
const SUB_COUNT: u32 = 65536;
const CAPS: [&str; 3] = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

/// Who runs nsboot, and which id mapping the bundle asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// An unprivileged user, container root mapped to that user alone.
    RootlessSingle,
    /// An unprivileged user, plus its 65536 subordinate ids (newuidmap/newgidmap).
    RootlessSubid,
    /// Real root, no mappings in the spec.
    Root,
}

impl Mode {
    pub fn is_rootless(self) -> bool {
        self != Mode::Root
    }
}

/// A host account a mode runs as.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
    /// Start of a subordinate uid range of at least 65536 ids, if the user has one.
    pub subuid: Option<u32>,
    pub subgid: Option<u32>,
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The modes this test process can exercise: all three as root, the rootless ones otherwise.
pub fn modes() -> Vec<Mode> {
    let mut modes = rootless_modes();
    if is_root() {
        modes.push(Mode::Root);
    }
    modes
}

/// RootlessSingle always; RootlessSubid when the user has subordinate ranges and newuidmap exists
/// (as root both are required: the machine was prepared by scripts/setup.sh).
pub fn rootless_modes() -> Vec<Mode> {
    let u = user(Mode::RootlessSingle);
    let tools = ["/usr/bin/newuidmap", "/usr/bin/newgidmap"]
        .iter()
        .all(|t| Path::new(t).exists());
    let ranges = u.subuid.is_some() && u.subgid.is_some();
    if is_root() {
        assert!(
            tools,
            "newuidmap/newgidmap missing: install uidmap (run scripts/setup.sh)"
        );
        assert!(
            ranges,
            "user {TEST_USER} has no 65536-id range: run scripts/test-users.sh"
        );
    }
    let mut modes = vec![Mode::RootlessSingle];
    if tools && ranges {
        modes.push(Mode::RootlessSubid);
    }
    modes
}

/// The account `mode` runs as.
pub fn user(mode: Mode) -> &'static TestUser {
    static ROOT: OnceLock<TestUser> = OnceLock::new();
    static ROOTLESS: OnceLock<TestUser> = OnceLock::new();
    match mode {
        Mode::Root => ROOT.get_or_init(|| lookup_user("root").expect("no root user")),
        _ if is_root() => ROOTLESS.get_or_init(|| {
            lookup_user(TEST_USER).unwrap_or_else(|| {
                panic!("test user {TEST_USER} does not exist: run scripts/test-users.sh as root")
            })
        }),
        _ => ROOTLESS.get_or_init(|| {
            let uid = nix::unistd::getuid();
            let me = nix::unistd::User::from_uid(uid).ok().flatten();
            let name = me.map(|u| u.name).unwrap_or_else(|| uid.to_string());
            lookup_user(&name).expect("cannot look up the current user")
        }),
    }
}

fn lookup_user(name: &str) -> Option<TestUser> {
    let u = nix::unistd::User::from_name(name).ok().flatten()?;
    let uid = u.uid.as_raw();
    Some(TestUser {
        subuid: sub_range("/etc/subuid", &u.name, uid),
        subgid: sub_range("/etc/subgid", &u.name, uid),
        name: u.name,
        uid,
        gid: u.gid.as_raw(),
        home: u.dir,
    })
}

/// The first range of at least 65536 ids for the user (by name or uid) in an /etc/sub?id file.
fn sub_range(file: &str, name: &str, uid: u32) -> Option<u32> {
    let text = fs::read_to_string(file).ok()?;
    text.lines().find_map(|line| {
        let f: Vec<&str> = line.trim().split(':').collect();
        let count: u32 = f.get(2)?.parse().ok()?;
        let who = (f[0] == name || f[0] == uid.to_string()) && count >= SUB_COUNT;
        who.then(|| f[1].parse().ok()).flatten()
    })
}

/// Where the harness keeps its files: CARGO_TARGET_TMPDIR, unless (as root) the test user cannot
/// reach it, then a root-owned 0755 dir in the system temp dir. Sweeps leftovers of dead runs.
fn base_dir() -> &'static Path {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    BASE.get_or_init(|| {
        let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        fs::create_dir_all(&target).expect("cannot create CARGO_TARGET_TMPDIR");
        let base = if !is_root() || reachable_by_others(&target) {
            target
        } else {
            let tmp = std::env::temp_dir().join("nsboot-tests");
            let _ = fs::create_dir(&tmp);
            let meta = fs::symlink_metadata(&tmp).expect("cannot create the harness temp dir");
            assert!(
                meta.is_dir() && meta.uid() == 0,
                "{} is not root's dir: remove it",
                tmp.display()
            );
            set_mode(&tmp, 0o755);
            tmp
        };
        sweep_dead(&base);
        base
    })
}

/// Every directory from `/` down to `path` is searchable by "others" (the test user).
fn reachable_by_others(path: &Path) -> bool {
    path.ancestors()
        .all(|p| p.as_os_str().is_empty() || fs::metadata(p).is_ok_and(|m| m.mode() & 0o001 != 0))
}

/// Remove `nsbt-*.<pid>` entries left by harness processes that no longer run.
fn sweep_dead(base: &Path) {
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some((_, pid)) = name.strip_prefix("nsbt-").and_then(|n| n.rsplit_once('.')) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = fs::remove_dir_all(e.path()).or_else(|_| fs::remove_file(e.path()));
        }
    }
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}

/// The user to switch to for `mode`: only root switches, and only for the rootless modes.
fn switch_to(mode: Mode) -> Option<&'static TestUser> {
    (is_root() && mode.is_rootless()).then(|| user(mode))
}

/// Give `path` to `owner` (None: leave it to the caller).
fn give(path: &Path, owner: Option<&TestUser>) {
    if let Some(u) = owner {
        chown(path, Some(u.uid), Some(u.gid))
            .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
    }
}

fn mkdir(path: &Path, perm: u32, owner: Option<&TestUser>) -> PathBuf {
    fs::create_dir(path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
    set_mode(path, perm);
    give(path, owner);
    path.to_path_buf()
}

/// A fresh `nsbt-<what>-<n>.<pid>` path under the base dir.
fn unique(what: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    base_dir().join(format!("nsbt-{what}-{n}.{}", std::process::id()))
}

/// The shared busybox rootfs (scripts/mkrootfs.sh), built once, atomically: into a private dir,
/// then renamed into place, so that concurrent test binaries never see half of one.
pub fn rootfs() -> PathBuf {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS
        .get_or_init(|| {
            // Keyed by the script's text: a changed script builds a new rootfs.
            let script = include_str!("../../scripts/mkrootfs.sh");
            let mut h = DefaultHasher::new();
            script.hash(&mut h);
            let dir = base_dir().join(format!("rootfs-{:016x}", h.finish()));
            if !dir.join("bin/busybox").exists() {
                let tmp = unique("rootfs");
                let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/mkrootfs.sh");
                let ok = Command::new("bash")
                    .arg(&script)
                    .arg(&tmp)
                    .status()
                    .is_ok_and(|s| s.success());
                assert!(
                    ok,
                    "scripts/mkrootfs.sh {} failed (its message is above)",
                    tmp.display()
                );
                if fs::rename(&tmp, &dir).is_err() {
                    let _ = fs::remove_dir_all(&tmp); // another process won the race: use its rootfs
                }
            }
            assert!(
                dir.join("bin/busybox").exists(),
                "rootfs {} is incomplete",
                dir.display()
            );
            dir
        })
        .clone()
}

/// The nsboot binary, at a path the test user can execute: the built one, or (as root, when
/// target/ is not reachable by others) a 0755 copy made once per test process.
pub fn nsboot_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // NSBOOT_TEST_BIN: run the tests against another build (an older one, to see a new
        // test fail there).
        let built = std::env::var_os("NSBOOT_TEST_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_nsboot")));
        if !is_root() || reachable_by_others(&built) {
            return built;
        }
        let copy = unique("bin");
        fs::copy(&built, &copy)
            .unwrap_or_else(|e| panic!("copy {} to {}: {e}", built.display(), copy.display()));
        set_mode(&copy, 0o755);
        copy
    })
}

/// `program` run as the account of `mode`. As root for a rootless mode: through setpriv, with a
/// clean environment and a fresh XDG_RUNTIME_DIR of the user's own (0700). Otherwise directly.
pub fn as_user(mode: Mode, program: impl AsRef<OsStr>) -> Command {
    let xdg = mode
        .is_rootless()
        .then(|| mkdir(&unique("xdg"), 0o700, switch_to(mode)));
    command_as(switch_to(mode), xdg.as_deref(), program.as_ref())
}

/// The nsboot binary run as the account of `mode` (see [`as_user`]).
pub fn nsboot(mode: Mode) -> Command {
    as_user(mode, nsboot_bin())
}

/// The user with no subordinate ranges (scripts/test-users.sh); None unless running as root.
pub fn nosub_user() -> Option<&'static TestUser> {
    static NOSUB: OnceLock<TestUser> = OnceLock::new();
    is_root().then(|| {
        NOSUB.get_or_init(|| {
            let u = lookup_user(NOSUB_USER);
            let u = u.unwrap_or_else(|| {
                panic!("user {NOSUB_USER} does not exist: run scripts/test-users.sh")
            });
            assert!(
                u.subuid.is_none() && u.subgid.is_none(),
                "{NOSUB_USER} has subordinate ids"
            );
            u
        })
    })
}

/// nsboot run as [`NOSUB_USER`], like [`nsboot`]; None unless running as root.
pub fn nsboot_nosub() -> Option<Command> {
    let u = nosub_user()?;
    let xdg = mkdir(&unique("xdg"), 0o700, Some(u));
    Some(command_as(Some(u), Some(&xdg), nsboot_bin().as_os_str()))
}

/// `program` as `switch` (through setpriv, clean environment) or, for None, directly.
fn command_as(switch: Option<&TestUser>, xdg: Option<&Path>, program: &OsStr) -> Command {
    let mut cmd = if let Some(u) = switch {
        let mut cmd = Command::new("setpriv");
        cmd.arg(format!("--reuid={}", u.uid))
            .arg(format!("--regid={}", u.gid));
        cmd.args(["--init-groups", "--"]).arg(program).env_clear();
        cmd.env("PATH", CLEAN_PATH)
            .env("HOME", &u.home)
            .env("USER", &u.name)
            .env("LOGNAME", &u.name);
        // NSBOOT_EXEC_BOOT=1 runs a whole suite through the exec'd supervisor.
        for k in ["RUST_BACKTRACE", "RUST_LOG", "NSBOOT_EXEC_BOOT"] {
            if let Some(v) = std::env::var_os(k) {
                cmd.env(k, v);
            }
        }
        cmd
    } else {
        Command::new(program)
    };
    if let Some(xdg) = xdg {
        cmd.env("XDG_RUNTIME_DIR", xdg);
    }
    cmd.stdin(Stdio::null());
    cmd
}
