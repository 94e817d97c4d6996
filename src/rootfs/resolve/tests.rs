//! resolve: paths inside the root reached without leaving it (symlinks, "..", absolute links).

use super::*;
use std::os::unix::fs::{symlink, MetadataExt};

fn same(r: &Resolved, host: &Path) -> bool {
    let st = fstat(r.fd.as_raw_fd()).unwrap();
    let md = std::fs::symlink_metadata(host).unwrap();
    st.st_ino == md.ino() && st.st_dev == md.dev()
}

fn tree() -> (tempfile::TempDir, OwnedFd) {
    let t = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(t.path().join("root/etc")).unwrap();
    std::fs::write(t.path().join("root/etc/hosts"), "x").unwrap();
    std::fs::write(t.path().join("secret"), "host").unwrap();
    let fd = open_root(&t.path().join("root")).unwrap();
    (t, fd)
}

#[test]
fn dotdot_stops_at_the_root() {
    let (t, root) = tree();
    let r = resolve(root.as_fd(), Path::new("/../../secret"), Create::No);
    assert_eq!(r.unwrap_err(), Errno(libc::ENOENT));
    let r = resolve(
        root.as_fd(),
        Path::new("../../etc/../etc/hosts"),
        Create::No,
    )
    .unwrap();
    assert!(same(&r, &t.path().join("root/etc/hosts")));
    assert_eq!(r.path, Path::new("/etc/hosts"));
}

#[test]
fn absolute_symlinks_are_rerooted() {
    let (t, root) = tree();
    symlink("/etc/hosts", t.path().join("root/link")).unwrap();
    symlink("../../../secret", t.path().join("root/etc/up")).unwrap();
    let r = resolve(root.as_fd(), Path::new("/link"), Create::No).unwrap();
    assert!(same(&r, &t.path().join("root/etc/hosts")));
    let r = resolve(root.as_fd(), Path::new("/etc/up"), Create::No);
    assert_eq!(r.unwrap_err(), Errno(libc::ENOENT));
}

#[test]
fn symlinked_proc_resolves_to_the_container_root() {
    let (t, root) = tree();
    symlink("/", t.path().join("root/proc")).unwrap();
    let r = resolve(root.as_fd(), Path::new("/proc"), Create::Dir).unwrap();
    assert!(same(&r, &t.path().join("root")));
    assert_eq!(r.path, Path::new("/"));
}

#[test]
fn missing_dirs_and_a_file_target_are_created() {
    let (t, root) = tree();
    let r = resolve(root.as_fd(), Path::new("/a/b/c.conf"), Create::File).unwrap();
    let made = t.path().join("root/a/b/c.conf");
    assert!(made.is_file() && same(&r, &made) && !is_dir(r.fd.as_fd()).unwrap());
    let r = resolve(root.as_fd(), Path::new("/x/y"), Create::Dir).unwrap();
    assert!(t.path().join("root/x/y").is_dir() && is_dir(r.fd.as_fd()).unwrap());
    // A dangling symlink is followed, and what it names is created inside the root.
    symlink("/made/here", t.path().join("root/dangling")).unwrap();
    resolve(root.as_fd(), Path::new("/dangling"), Create::Dir).unwrap();
    assert!(t.path().join("root/made/here").is_dir());
}

#[test]
fn the_single_call_and_the_walk_agree_and_symlinks_go_to_the_walk() {
    let (t, root) = tree();
    for p in ["/etc/hosts", "etc", "/", "/../etc/./hosts", "/etc/../etc"] {
        let fast = resolve_fast(root.as_fd(), Path::new(p), Create::No)
            .expect("no symlink: one call")
            .unwrap();
        let slow = walk(root.as_fd(), Path::new(p), Create::No).unwrap();
        let (a, b) = (
            fstat(fast.fd.as_raw_fd()).unwrap(),
            fstat(slow.fd.as_raw_fd()).unwrap(),
        );
        assert_eq!(
            (a.st_ino, a.st_dev, &fast.path),
            (b.st_ino, b.st_dev, &slow.path),
            "{p}"
        );
    }
    symlink("/etc", t.path().join("root/link")).unwrap();
    assert!(resolve_fast(root.as_fd(), Path::new("/link/hosts"), Create::No).is_none());
    // `link/..` is the parent of what link names (the root here), never taken lexically.
    assert!(resolve_fast(root.as_fd(), Path::new("/link/../etc"), Create::No).is_none());
    assert!(resolve_fast(root.as_fd(), Path::new("/new"), Create::Dir).is_none());
    let missing = resolve_fast(root.as_fd(), Path::new("/nope/x"), Create::No);
    assert_eq!(missing.unwrap().unwrap_err(), Errno(libc::ENOENT));
}

#[test]
fn loops_and_files_in_the_middle_are_refused() {
    let (t, root) = tree();
    symlink("/loop", t.path().join("root/loop")).unwrap();
    let r = resolve(root.as_fd(), Path::new("/loop/x"), Create::Dir);
    assert_eq!(r.unwrap_err(), Errno(libc::ELOOP));
    let r = resolve(root.as_fd(), Path::new("/etc/hosts/x"), Create::Dir);
    assert_eq!(r.unwrap_err(), Errno(libc::ENOTDIR));
}
