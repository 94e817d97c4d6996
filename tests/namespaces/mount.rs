//! A mount namespace joined by path (`linux.namespaces[].path` of type mount), as runc joins
//! one: the application's mount namespace is exactly the given one, and its root there is the
//! container's (built as for a new one, then pivoted to inside the joined namespace); `exec`
//! lands in it too. The joined namespace must be one the sandbox can act in: its owner's user
//! namespace joined too (rootless), or none listed (real root, as root engines write it).

use std::process::{Command, Stdio};

use super::common::{self, Bundle, Mode};
use super::support::{create, eventually, nsb};
use super::{assert_refused, drop_ns, join, ns_of, Donor, KillOnDrop};

/// `unshare --mount` (with a user namespace of the test user's when rootless) running sleep.
fn mount_donor(mode: Mode) -> Donor {
    Donor::of(mode, &["--mount"], false)
}

/// Joins the donor's mount namespace, and its user namespace when rootless; as root, no user
/// namespace at all (the host's owns the donor's mount namespace).
fn joining_mount(mode: Mode, donor: u32, args: &[&str]) -> Bundle {
    joining_mount_at(mode, &format!("/proc/{donor}/ns/mnt"), donor, args)
}

fn joining_mount_at(mode: Mode, path: &str, donor: u32, args: &[&str]) -> Bundle {
    Bundle::new(mode).args(args).edit(|c| {
        join(c, "mount", path);
        match mode.is_rootless() {
            true => join(c, "user", &format!("/proc/{donor}/ns/user")),
            false => {
                drop_ns(c, "user");
                let linux = c["linux"].as_object_mut().unwrap();
                linux.remove("uidMappings");
                linux.remove("gidMappings");
            }
        }
    })
}

/// What the application prints: its mount namespace, its pid (its own pid namespace's init),
/// whether its root is the container's (busybox's) or the host's, and whether the spec's
/// masked /proc/kcore is masked.
const SHOW: &str = "readlink /proc/self/ns/mnt; echo $$; \
    test -e /bin/busybox && echo container-root; test -e /work && echo host-root; \
    test -s /proc/kcore || echo kcore-masked";

#[test]
fn a_mount_namespace_joined_by_path_holds_the_containers_root() {
    for mode in common::modes() {
        let ctx = format!("{mode:?}");
        let donor = mount_donor(mode);
        let theirs = donor.ns("mnt");
        assert_ne!(
            theirs,
            ns_of("self", "mnt"),
            "{ctx}: the donor's is the host's"
        );
        let want = format!("{theirs}\n1\ncontainer-root\nkcore-masked\n");
        let b = joining_mount(mode, donor.pid, &["/bin/sh", "-c", SHOW]);
        let out = b.run(&format!("nsmj-{}", mode as u8));
        assert_eq!(out.status, 0, "{ctx}: run: {out:?}");
        assert_eq!(out.stdout, want, "{ctx}: run: {out:?}");
        common::assert_nothing_left(mode, b.state_dir());

        // create, start, exec: the application and what exec starts are in it.
        let donor2 = mount_donor(mode);
        let theirs2 = donor2.ns("mnt");
        let b = joining_mount(mode, donor2.pid, &["sleep", "1000"]);
        let id = format!("nsmc-{}", mode as u8);
        let c = create(&b, &id, &[]);
        assert_eq!(c.status, 0, "{ctx}: create: {}", c.stderr);
        let s = nsb(&b, &["start", &id]);
        assert_eq!(s.status, 0, "{ctx}: start: {}", s.stderr);
        let exec = nsb(&b, &["exec", &id, "/bin/sh", "-c", SHOW]);
        let del = nsb(&b, &["delete", "--force", &id]);
        assert_eq!(exec.status, 0, "{ctx}: exec: {exec:?}");
        assert_eq!(del.status, 0, "{ctx}: delete: {del:?}");
        let lines: Vec<&str> = exec.stdout.lines().collect();
        assert_eq!(
            lines.first(),
            Some(&theirs2.as_str()),
            "{ctx}: exec: {exec:?}"
        );
        assert_eq!(
            &lines[2..],
            ["container-root", "kcore-masked"],
            "{ctx}: exec: {exec:?}"
        );
        common::assert_nothing_left(mode, b.state_dir());
        // Dropping the donors checks they lived until killed.
    }
}

/// A new user namespace (the default config lists one) can own no existing mount namespace:
/// refused before anything starts, with the fix.
#[test]
fn a_mount_namespace_joined_by_path_with_a_new_user_namespace_is_refused() {
    for mode in common::modes() {
        let ctx = format!("{mode:?}");
        let donor = mount_donor(mode);
        let b = Bundle::new(mode).edit(|c| join(c, "mount", &donor.path("mnt")));
        let want = ["linux.namespaces", "mount", "user namespace"];
        assert_refused(&b, &format!("nsmu-{}", mode as u8), &want, &ctx);
    }
}

/// Without a user namespace, the container runs in the caller's: only real root may act on a
/// mount namespace there. An unprivileged caller is refused before anything starts.
#[test]
fn a_mount_namespace_joined_by_path_without_a_user_namespace_is_root_only() {
    for mode in common::rootless_modes() {
        let ctx = format!("{mode:?}");
        let donor = mount_donor(mode);
        let b = Bundle::new(mode).edit(|c| {
            join(c, "mount", &donor.path("mnt"));
            drop_ns(c, "user");
        });
        let want = ["linux.namespaces", "no user namespace listed", "only root"];
        assert_refused(&b, &format!("nsmr-{}", mode as u8), &want, &ctx);
    }
}

/// The caller's own mount namespace (the host's, for an engine on the host): pivoting the
/// container's root there would move every process of the host into it. Refused in one line.
#[test]
fn the_callers_own_mount_namespace_is_refused() {
    for mode in common::modes() {
        let ctx = format!("{mode:?}");
        let donor = mount_donor(mode);
        // Opened by nsboot itself: its own.
        let own = "/proc/self/ns/mnt".to_string();
        let b = joining_mount_at(mode, &own, donor.pid, &["true"]);
        let want = ["linux.namespaces", &own, "the caller's own mount namespace"];
        assert_refused(&b, &format!("nsmo-{}", mode as u8), &want, &ctx);
    }
}

/// A joined mount namespace whose root is a peer of another (shared propagation, as a host
/// with systemd has it): nothing nsboot attaches there reaches the peer, whose mount table stays
/// as it was. Real root only: it makes the peer namespaces.
#[test]
fn nothing_attached_in_a_joined_mount_namespace_propagates_to_its_peers() {
    if !common::is_root() {
        return;
    }
    // A peer namespace (held by the outer sleep) and the donor inside it, sharing its root.
    let script = "unshare --mount --propagation unchanged sleep 1000 & exec sleep 1000";
    let mut outer = Command::new("unshare");
    outer.args(["--mount", "--propagation", "shared", "sh", "-c", script]);
    outer.stdin(Stdio::null()).stdout(Stdio::null());
    let outer = KillOnDrop(outer.spawn().unwrap());
    let peer = outer.0.id();
    let mut donor = 0;
    let ready = eventually(|| {
        donor = common::children_of(peer).first().copied().unwrap_or(0);
        let comm = |p: u32| std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
        donor > 0 && comm(donor as u32) == "sleep\n" && comm(peer) == "sleep\n"
    });
    assert!(ready, "the peer and donor namespaces did not start");
    let donor = donor as u32;
    // The donor is the shell's child, which killing the peer's sleep leaves alive.
    struct KillPid(u32);
    impl Drop for KillPid {
        fn drop(&mut self) {
            let pid = nix::unistd::Pid::from_raw(self.0 as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
    }
    let _donor = KillPid(donor);
    let shared = |p: u32| {
        std::fs::read_to_string(format!("/proc/{p}/mountinfo"))
            .unwrap()
            .lines()
            .find(|l| l.split_whitespace().nth(4) == Some("/"))
            .is_some_and(|l| l.contains("shared:"))
    };
    assert!(
        shared(donor) && shared(peer),
        "the donor's / is no peer of the other's"
    );
    let before = std::fs::read_to_string(format!("/proc/{peer}/mountinfo")).unwrap();
    let b = joining_mount(common::Mode::Root, donor, &["/bin/sh", "-c", SHOW]);
    let out = b.run("nsmp");
    assert_eq!(out.status, 0, "{out:?}");
    assert!(out.stdout.contains("container-root"), "{out:?}");
    let after = std::fs::read_to_string(format!("/proc/{peer}/mountinfo")).unwrap();
    assert_eq!(before, after, "mounts propagated to the peer namespace");
    common::assert_nothing_left(common::Mode::Root, b.state_dir());
}
