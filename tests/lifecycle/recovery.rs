//! What a lifecycle command killed at the wrong instant leaves, and how `delete --force`
//! removes it: a create killed before its state was written, a delete killed halfway through
//! removing the entry, a killed creator's private directory, a zombie supervisor; `start` of
//! an invalid id, and long ids cut when printed back.

use std::fs;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::common::{self, children_of, Bundle, Mode};
use crate::support::*;

/// A pid no process has (pid_max is at most 2^22).
const DEAD_PID: u32 = (1 << 22) + 7;

fn sleeper(mode: Mode) -> Bundle {
    Bundle::new(mode).args(&["/bin/sh", "-c", "exec sleep 1000"])
}

/// `sup` has left its wait for the id maps (a read(2) of the sync pipe) or never got there.
fn released(sup: i32) -> bool {
    fs::read_to_string(format!("/proc/{sup}/syscall")).is_ok_and(|s| !s.starts_with("0 "))
        && fs::read_to_string(format!("/proc/{sup}/wchan")).is_ok_and(|w| w != "pipe_read")
}

/// `pid` is stopped (state T).
fn stopped(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('T')))
}

/// `delete --force ID` succeeds and nothing of the container is left.
fn force_delete_leaves_nothing(b: &Bundle, id: &str, ctx: &str) {
    let d = nsb(b, &["delete", "--force", id]);
    assert_eq!(d.status, 0, "{ctx}: delete --force: {}", d.stderr);
    common::assert_nothing_left(b.mode(), b.state_dir());
}

/// Create stopped at a random instant of its work, once its supervisor exists (before its
/// state is written, at times), left stopped until the supervisor is ready, then killed:
/// `delete --force` removes all of it.
#[test]
fn create_killed_at_any_instant_leaves_nothing_after_delete_force() {
    let rounds: u32 = std::env::var("NSBOOT_TEST_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(25);
    for mode in common::modes() {
        let b = sleeper(mode);
        let mut unsaved = 0;
        for round in 0..rounds {
            let id = format!("ck{round}");
            let mut cmd = b.nsboot();
            cmd.arg("--root").arg(b.state_dir());
            cmd.args(["create", "--bundle"]).arg(b.dir()).arg(&id);
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
            let mut child = cmd.process_group(0).spawn().unwrap();
            let caller = Pid::from_raw(child.id() as i32);
            let deadline = Instant::now() + Duration::from_secs(20);
            while children_of(child.id()).is_empty() && Instant::now() < deadline {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
            }
            // Run in slices of a few microseconds until the supervisor has left its wait
            // for the id maps (released) or the state is written: most often, stopped in
            // between, the instant the caller is killed at below.
            let saved = || b.state_dir().join(&id).join("state.json").exists();
            let sup = children_of(child.id()).first().copied();
            let _ = kill(caller, Signal::SIGSTOP);
            while !saved() && !sup.is_some_and(released) && Instant::now() < deadline {
                let _ = kill(caller, Signal::SIGCONT);
                let spin = Instant::now() + Duration::from_micros(10);
                while Instant::now() < spin {}
                let _ = kill(caller, Signal::SIGSTOP);
                while !stopped(caller.as_raw()) && Instant::now() < deadline {}
            }
            if !saved() {
                unsaved += 1;
            }
            let sup = children_of(child.id());
            let until = Instant::now() + Duration::from_secs(2);
            while sup.iter().all(|&s| children_of(s as u32).is_empty()) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(5));
            }
            let _ = kill(caller, Signal::SIGKILL);
            let _ = child.wait();
            force_delete_leaves_nothing(&b, &id, &format!("{mode:?} round {round}"));
        }
        eprintln!("{mode:?}: {unsaved} of {rounds} creates stopped before their state was saved");
    }
}

#[test]
fn an_entry_whose_removal_was_cut_short_is_removed_by_delete() {
    for mode in common::modes() {
        for force in [false, true] {
            let b = sleeper(mode);
            let id = "cut";
            let c = create(&b, id, &[]);
            assert_eq!(c.status, 0, "{mode:?}: create: {}", c.stderr);
            // A delete killed after removing the lock, before state.json and ctl.sock.
            let sup = state(&b, id)["pid"].as_i64().unwrap() as i32;
            kill(Pid::from_raw(sup), Signal::SIGKILL).unwrap();
            assert!(eventually(|| !alive(sup)), "{mode:?}: supervisor lives");
            fs::remove_file(b.state_dir().join(id).join("lock")).unwrap();
            let args: &[&str] = if force {
                &["delete", "--force", id]
            } else {
                &["delete", id]
            };
            let d = nsb(&b, args);
            assert_eq!(d.status, 0, "{mode:?} {args:?}: {}", d.stderr);
            assert_no_state(b.state_dir());
            let again = create(&b, id, &[]);
            assert_eq!(again.status, 0, "{mode:?}: create again: {}", again.stderr);
            force_delete_leaves_nothing(&b, id, &format!("{mode:?}"));
        }
    }
}

#[test]
fn delete_force_removes_what_killed_creators_and_deleters_left_of_the_id() {
    for mode in common::modes() {
        let b = sleeper(mode);
        let owner = common::user(mode);
        let left = [
            format!(".gone.{DEAD_PID}.new"),
            format!(".stale.{DEAD_PID}.gone"),
        ];
        for name in &left {
            let dir = b.state_dir().join(name);
            fs::create_dir(&dir).unwrap();
            fs::write(dir.join("lock"), "").unwrap();
            std::os::unix::fs::chown(&dir, Some(owner.uid), Some(owner.gid)).unwrap();
        }
        // Another id's are not this delete's business.
        let other = b.state_dir().join(format!(".other.{DEAD_PID}.new"));
        fs::create_dir(&other).unwrap();
        let d = nsb(&b, &["delete", "--force", "gone"]);
        assert_eq!(d.status, 0, "{mode:?}: {}", d.stderr);
        let names: Vec<_> = fs::read_dir(b.state_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, [format!(".other.{DEAD_PID}.new")], "{mode:?}");
        fs::remove_dir(&other).unwrap();
    }
}

/// A sandbox process whose parent lives outside the sandbox (an `nsboot exec` caller) and
/// does not reap it: once the supervisor is killed, it waits in the kernel until that
/// process is reaped, its memory, files and application already gone. Dead is dead.
#[test]
fn delete_force_takes_an_exiting_supervisor_for_dead() {
    for mode in common::modes() {
        let b = sleeper(mode);
        let id = "zomb";
        let c = create(&b, id, &[]);
        assert_eq!(c.status, 0, "{mode:?}: create: {}", c.stderr);
        let s = nsb(&b, &["start", id]);
        assert_eq!(s.status, 0, "{mode:?}: start: {}", s.stderr);
        let mut cmd = b.nsboot();
        cmd.arg("--root").arg(b.state_dir());
        cmd.args(["exec", id, "/bin/sleep", "1000"]);
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        let mut exec = cmd.process_group(0).spawn().unwrap();
        let caller = Pid::from_raw(exec.id() as i32);
        assert!(
            eventually(|| !children_of(exec.id()).is_empty()),
            "{mode:?}: exec never forked"
        );
        // The exec caller cannot reap what it forked into the sandbox.
        kill(caller, Signal::SIGSTOP).unwrap();
        let d = nsb(&b, &["delete", "--force", id]);
        let _ = kill(caller, Signal::SIGKILL);
        let _ = exec.wait();
        // An exiting supervisor is dead: delete --force succeeds instead of timing out.
        assert_eq!(d.status, 0, "{mode:?}: {}", d.stderr);
        common::assert_nothing_left(mode, b.state_dir());
    }
}

#[test]
fn start_refuses_an_invalid_id_and_long_ids_are_cut_when_printed() {
    let b = sleeper(Mode::RootlessSingle);
    let s = nsb(&b, &["start", "../x"]);
    assert!(
        s.status == 125 && s.stderr.contains("invalid") && s.stderr.lines().count() == 1,
        "{s:?}"
    );
    let long = "a".repeat(5000);
    // A JSON path through a 5000-character annotation key.
    let b = b.edit(|c| c["annotations"] = serde_json::json!({ long.clone(): 1 }));
    let out = nsb(&b, &["create", "x"]);
    assert!(
        out.status == 125 && out.stderr.len() < 400 && out.stderr.contains("annotations."),
        "a long JSON path: {} bytes: {}",
        out.stderr.len(),
        &out.stderr[..out.stderr.len().min(600)]
    );
    let b = b.edit(|c| {
        c.as_object_mut().unwrap().remove("annotations");
    });
    for cmd in ["start", "state", "kill", "delete", "create"] {
        let out = nsb(&b, &[cmd, &long]);
        assert!(
            out.status == 125 && out.stderr.len() < 400 && out.stderr.lines().count() == 1,
            "{cmd}: want one short line: {} bytes: {}",
            out.stderr.len(),
            &out.stderr[..out.stderr.len().min(600)]
        );
    }
}

/// A process being reaped reads as gone: kernel 6.1's pidfd_open says EINVAL for a pid whose
/// process is released but whose number is not yet freed, and delete --force met just that (a
/// supervisor that ended on its own as the delete came). Raced here many times over; the
/// kernel-6.1 VM shows it.
#[test]
fn a_process_being_reaped_reads_as_gone() {
    for _ in 0..300 {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let watcher = std::thread::spawn(move || loop {
            match nsboot::state::lifecycle::pidfd_open(pid) {
                Ok(_) => std::hint::spin_loop(),
                Err(e) => return e.0,
            }
        });
        child.kill().unwrap();
        let ended = child.wait().unwrap();
        assert_eq!(
            ended.signal(),
            Some(libc::SIGKILL),
            "sleep ended with {ended}"
        );
        let errno = watcher.join().unwrap();
        assert_eq!(
            errno,
            libc::ESRCH,
            "pidfd_open of a reaped process: errno {errno}"
        );
    }
}
