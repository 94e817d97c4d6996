//! Rootless `--overlay` through fuse-overlayfs, as rootless podman does.
//!
//! The kernel's overlayfs checks permissions against the host's owners: inside a user
//! namespace that does not map host root, the sandbox's root may not write below host root's
//! directories (/etc/ssl/x: EACCES), and a copy-up could not give the copy an unmapped owner
//! anyway. fuse-overlayfs does the copy-up in user space and, with `squash_to_root`, shows
//! every file of the root as owned by the sandbox's root, so that root may write anywhere (a
//! file the calling user cannot read on the host, such as /etc/shadow, stays unreadable).
//!
//! The daemon is the supervisor's child, so it lives in the supervisor's pid namespace and
//! dies with it: nothing outlives the sandbox. It runs chrooted into the tmpfs of its layers
//! (it keeps their paths, and reaches files through its own /proc); the host's loader,
//! libraries and /dev are bound there only while it starts.

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Seek};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::mount::MsFlags;
use nix::sys::memfd::{memfd_create, MemFdCreateFlag};

use super::super::{MountError, OLDROOT};
use super::AT;
use crate::sys::Errno;

/// The program's name, looked up on the host's PATH.
const PROGRAM: &str = "fuse-overlayfs";

/// Where fuse-overlayfs is usually installed, after the caller's PATH.
const DEFAULT_DIRS: &[&str] = &["/usr/bin", "/usr/local/bin", "/bin", "/usr/sbin", "/sbin"];

/// Whether the sandbox maps host root (real root runs nsboot): then the kernel's overlayfs
/// can write anywhere, and no daemon is needed.
pub fn host_root_mapped() -> bool {
    let map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    maps_host_root(&map)
}

/// Whether a uid_map's text maps host uid 0 (the second column is the parent's id).
pub fn maps_host_root(uid_map: &str) -> bool {
    uid_map.lines().any(|l| {
        let f: Vec<u64> = l
            .split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect();
        matches!(f[..], [_, outside, count] if outside == 0 && count > 0)
    })
}

/// Why the fuse-overlayfs route is closed here, for the warning line.
#[derive(Debug, PartialEq)]
pub enum Unusable {
    NotInstalled,
    NoDevice(Errno),
}

/// fuse-overlayfs as a path in the host's root, when it is installed and /dev/fuse opens.
/// `oldroot` is where the host's root is mounted; `path` the caller's PATH.
pub fn find(oldroot: &Path, path: Option<OsString>) -> Result<PathBuf, Unusable> {
    let dirs: Vec<PathBuf> = path
        .iter()
        .flat_map(std::env::split_paths)
        .filter(|d| d.is_absolute())
        .chain(DEFAULT_DIRS.iter().map(PathBuf::from))
        .collect();
    let program = dirs
        .iter()
        .map(|d| d.join(PROGRAM))
        .find(|p| is_executable(&oldroot.join(p.strip_prefix("/").unwrap_or(p))))
        .ok_or(Unusable::NotInstalled)?;
    // The daemon opens it read-write; a 0600 node (no udev rule) refuses the calling user.
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(oldroot.join("dev/fuse"))
        .map_err(|e| Unusable::NoDevice(e.into()))?;
    Ok(program)
}

fn is_executable(p: &Path) -> bool {
    nix::unistd::access(p, nix::unistd::AccessFlags::X_OK).is_ok() && p.is_file()
}

/// What goes wrong without fuse-overlayfs, and the fix.
pub fn fallback(why: &Unusable) -> (String, &'static str) {
    let cause = match why {
        Unusable::NotInstalled => "fuse-overlayfs is not installed".to_string(),
        Unusable::NoDevice(e) => format!("/dev/fuse cannot be opened ({e})"),
    };
    let fix = match why {
        Unusable::NotInstalled => "install fuse-overlayfs (apt-get install fuse-overlayfs)",
        Unusable::NoDevice(_) => {
            "make /dev/fuse usable (as root, chmod 0666 /dev/fuse, Debian's default)"
        }
    };
    (
        format!("{cause}, so writes below directories owned by users outside the sandbox's id map (host root's /etc/ssl, /usr/lib...) fail with EACCES"),
        fix,
    )
}

/// The warning shown when a rootless overlay falls back to the kernel's overlayfs.
pub fn fallback_warning(why: &Unusable) -> String {
    let (what, fix) = fallback(why);
    format!("--overlay: {what}: {fix}")
}

/// Mounts fuse-overlayfs over `target`. `layers` (a tmpfs of the supervisor's) becomes the
/// daemon's root: the rootfs bound on `target` moves there as the lower layer, next to the
/// upper and work directories, a /proc (it reaches files as /proc/self/fd/N/...) and the
/// merged mount, which then moves onto `target`.
pub fn mount(program: &Path, target: &Path, layers: &Path, mode: u32) -> Result<(), MountError> {
    let dir = |name: &str| layers.join(name);
    for (name, mode) in [("lower", 0o700), ("upper", mode), ("work", 0o700)] {
        super::make_dir(&dir(name), mode)?;
    }
    super::make_dir(&dir("merged"), mode)?;
    super::make_dir(&dir("proc"), 0o555)?;
    move_mount(target, &dir("lower"))?;
    mount_proc(&dir("proc"))?;
    let log = memfd_create(c"fuse-overlayfs", MemFdCreateFlag::MFD_CLOEXEC)
        .map(File::from)
        .map_err(|e| failed(e.into(), "making its log".into()))?;
    let clone = || {
        log.try_clone()
            .map_err(|e| failed(e.into(), "making its log".into()))
    };
    // The supervisor's empty root has no /dev/null: the host's.
    let null = File::open(Path::new(OLDROOT).join("dev/null"))
        .map_err(|e| failed(e.into(), "opening /dev/null".into()))?;
    let host_program = Path::new(OLDROOT).join(program.strip_prefix("/").unwrap_or(program));
    let exe = File::open(&host_program)
        .map_err(|e| failed(e.into(), format!("opening {}", program.display())))?;
    // Its loader, libraries and /dev/fuse come from the host, shown only while it starts.
    let tools = HostTools::show(layers)?;
    let root = layers.to_path_buf();
    let mut cmd = Command::new(fd_path(&exe));
    // Its name is the mount's type and source (fuse.fuse-overlayfs), as podman's are.
    cmd.arg0(PROGRAM)
        .args([
            "-o",
            "lowerdir=/lower,upperdir=/upper,workdir=/work,squash_to_root",
        ])
        .arg("/merged")
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .stdin(null)
        .stdout(clone()?)
        .stderr(clone()?);
    // SAFETY: runs in the forked child before exec; chroot and chdir are async-signal-safe
    // system calls on a path allocated before the fork, and the supervisor is single-threaded.
    unsafe {
        cmd.pre_exec(move || {
            nix::unistd::chroot(&root)?;
            nix::unistd::chdir("/")?;
            Ok(())
        });
    }
    let status = cmd.status();
    drop(tools);
    // fuse-overlayfs daemonizes once the mount is in place: its exit status is the mount's.
    let status = status.map_err(|e| failed(e.into(), format!("running {}", program.display())))?;
    if !status.success() {
        let said = last_line(log);
        return Err(failed(
            Errno(libc::EIO),
            format!("{} exited with {status}: {said}", program.display()),
        ));
    }
    move_mount(&dir("merged"), target)
}

fn move_mount(from: &Path, to: &Path) -> Result<(), MountError> {
    let none = None::<&str>;
    nix::mount::mount(Some(from), to, none, MsFlags::MS_MOVE, none)
        .map_err(|e| super::bug("moving a mount", to, e.into()))
}

/// The daemon's /proc: a new one for the supervisor's pid namespace, or where the kernel
/// refuses that (nested containers), the supervisor's bound.
fn mount_proc(at: &Path) -> Result<(), MountError> {
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let none = None::<&str>;
    nix::mount::mount(Some("proc"), at, Some("proc"), flags, none)
        .or_else(|_| {
            let rec = MsFlags::MS_BIND | MsFlags::MS_REC;
            nix::mount::mount(Some("/proc"), at, none, rec, none)
        })
        .map_err(|e| super::bug("a proc", at, e.into()))
}

/// The host's directories a dynamically linked program needs (loader, libraries, their
/// cache, /dev/fuse), shown in the daemon's root while it starts; gone on drop.
struct HostTools {
    shown: Vec<(PathBuf, bool)>,
}

impl HostTools {
    const DIRS: &'static [&'static str] = &["usr", "lib", "lib64", "lib32", "libx32", "etc", "dev"];

    fn show(root: &Path) -> Result<Self, MountError> {
        let mut tools = HostTools { shown: Vec::new() };
        for name in Self::DIRS {
            let (host, here) = (Path::new(OLDROOT).join(name), root.join(name));
            let Ok(meta) = std::fs::symlink_metadata(&host) else {
                continue;
            };
            if meta.file_type().is_symlink() {
                // usrmerge: /lib -> usr/lib, copied as it is.
                let to = std::fs::read_link(&host)
                    .map_err(|e| super::bug("reading", &host, e.into()))?;
                std::os::unix::fs::symlink(to, &here)
                    .map_err(|e| super::bug("a symlink", &here, e.into()))?;
                tools.shown.push((here, false));
            } else if meta.is_dir() {
                super::make_dir(&here, 0o755)?;
                tools.shown.push((here.clone(), false));
                let flags = MsFlags::MS_BIND | MsFlags::MS_REC;
                nix::mount::mount(Some(&host), &here, None::<&str>, flags, None::<&str>)
                    .map_err(|e| super::bug("a bind", &here, e.into()))?;
                tools.shown.last_mut().expect("just pushed").1 = true;
            }
        }
        Ok(tools)
    }
}

impl Drop for HostTools {
    fn drop(&mut self) {
        for (path, mounted) in self.shown.drain(..).rev() {
            if mounted {
                let _ = nix::mount::umount2(&path, nix::mount::MntFlags::MNT_DETACH);
            }
            let _ = std::fs::remove_dir(&path).or_else(|_| std::fs::remove_file(&path));
        }
    }
}

fn fd_path(fd: &impl AsFd) -> String {
    format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd())
}

/// The last line fuse-overlayfs wrote that is not its usual noise.
fn last_line(mut log: File) -> String {
    let mut text = String::new();
    let _ = log.rewind();
    let _ = log.read_to_string(&mut text);
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty() && !l.starts_with("unknown argument ignored"))
        .unwrap_or("no message")
        .trim()
        .to_string()
}

fn failed(errno: Errno, why: String) -> MountError {
    MountError::Mount {
        at: AT.into(),
        what: "a fuse-overlayfs".into(),
        dest: "/".into(),
        errno,
        fix: format!("{why}: run without --overlay, or as root"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_root_is_mapped_only_when_a_range_starts_at_host_zero() {
        assert!(maps_host_root("         0          0 4294967295\n"));
        assert!(maps_host_root("0 1000 1\n1 0 1\n"));
        assert!(!maps_host_root("         0       1002          1\n"));
        assert!(!maps_host_root("0 1002 1\n1 165536 65536\n"));
        assert!(!maps_host_root(""));
    }

    #[test]
    fn warnings_name_the_cause_and_the_fix_on_one_line() {
        let w = fallback_warning(&Unusable::NotInstalled);
        assert!(w.contains("fuse-overlayfs is not installed"), "{w}");
        assert!(w.contains("apt-get install fuse-overlayfs"), "{w}");
        let w = fallback_warning(&Unusable::NoDevice(Errno(libc::EACCES)));
        assert!(w.contains("/dev/fuse") && w.contains("chmod 0666"), "{w}");
        assert!(!w.contains('\n'));
    }

    #[test]
    fn find_looks_on_the_path_then_the_usual_places() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(
            find(root.path(), Some("/opt/x".into())),
            Err(Unusable::NotInstalled)
        );
        let bin = root.path().join("opt/x");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join(PROGRAM), "").unwrap();
        use std::os::unix::fs::PermissionsExt;
        let exe = std::fs::Permissions::from_mode(0o755);
        std::fs::set_permissions(bin.join(PROGRAM), exe).unwrap();
        // Found, but no dev/fuse under this root.
        assert!(matches!(
            find(root.path(), Some("/opt/x".into())),
            Err(Unusable::NoDevice(_))
        ));
    }
}
