//! Fault injection: each lifecycle command (create, start, exec, kill, delete, delete --force,
//! run) and the supervisor SIGKILLed at random instants, rootless and as root. After each
//! kill, `delete --force` must succeed and leave nothing of the container: no process, no
//! mount, no state entry, no temporary name; and `list` must show only live containers.
//!
//! Rounds per command and mode: NSBOOT_CRASH_ROUNDS (default 20); the random delays come
//! from NSBOOT_CRASH_SEED (default: the clock, printed, to replay a failure).

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Bundle;

#[path = "crash/leftovers.rs"]
mod leftovers;
use leftovers::leftovers;

/// A command that must finish: it gets this long.
const LIMIT: Duration = Duration::from_secs(30);

fn rounds() -> u32 {
    std::env::var("NSBOOT_CRASH_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20)
}

/// xorshift64: random enough for delays, and replayable from its seed.
struct Rng(u64);

impl Rng {
    fn new(what: &str) -> Rng {
        let seed = std::env::var("NSBOOT_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("crash {what}: NSBOOT_CRASH_SEED={seed}");
        Rng(seed | 1)
    }

    /// A delay from zero to `max`.
    fn delay(&mut self, max: Duration) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        max.mul_f64((self.0 % 10_000) as f64 / 10_000.0)
    }
}

/// `nsboot --root STATE ARGS` as the bundle's user, its output discarded (a sandbox inherits
/// it: no pipe may be waited on).
fn nsboot(b: &Bundle, args: &[&str]) -> Command {
    let mut cmd = b.nsboot();
    cmd.arg("--root").arg(b.state_dir()).args(args);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

/// Waits for `child` (killing it after `LIMIT`); its exit code, 128+N for signal N.
fn finish(child: Child) -> i32 {
    common::wait_code(child, LIMIT)
}

/// Runs `args` to completion; panics unless it exits 0.
fn must(b: &Bundle, args: &[&str]) {
    let code = finish(nsboot(b, args).spawn().unwrap());
    assert_eq!(code, 0, "{:?}: nsboot {args:?} exited {code}", b.mode());
}

fn children_of(pid: u32) -> Vec<u32> {
    common::children_of(pid)
        .into_iter()
        .map(|p| p as u32)
        .collect()
}

thread_local! {
    /// How long the last command given to `kill_after` ran, when it ended by itself in time.
    static TOOK: std::cell::Cell<Option<Duration>> = const { std::cell::Cell::new(None) };
}

/// `cmd` started, then SIGKILLed after `delay` unless it has ended by then; reaped.
fn kill_after(mut cmd: Command, delay: Duration) {
    let began = Instant::now();
    let mut child = cmd.spawn().unwrap();
    let deadline = began + delay;
    TOOK.set(None);
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            TOOK.set(Some(began.elapsed()));
            return;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Prepares the container `id` for the command under test, then kills that command (or the
/// supervisor) after a random delay of up to `max` (a little more than the command takes).
type Round = fn(&Bundle, &str, &mut Rng, Duration);

/// How long the command under test takes here, uninterrupted (`round` with no kill in time).
fn duration_of(b: &Bundle, round: Round, rng: &mut Rng) -> Duration {
    round(b, "timing", rng, LIMIT);
    let _ = finish(nsboot(b, &["delete", "--force", "timing"]).spawn().unwrap());
    TOOK.get()
        .expect("the command under test did not end by itself")
}

fn create(b: &Bundle, id: &str, rng: &mut Rng, max: Duration) {
    let dir = b.dir().to_str().unwrap();
    kill_after(nsboot(b, &["create", "--bundle", dir, id]), rng.delay(max));
}

fn start(b: &Bundle, id: &str, rng: &mut Rng, max: Duration) {
    must(b, &["create", "--bundle", b.dir().to_str().unwrap(), id]);
    kill_after(nsboot(b, &["start", id]), rng.delay(max));
}

fn started(b: &Bundle, id: &str) {
    must(b, &["create", "--bundle", b.dir().to_str().unwrap(), id]);
    must(b, &["start", id]);
}

fn exec(b: &Bundle, id: &str, rng: &mut Rng, max: Duration) {
    started(b, id);
    let cmd = nsboot(b, &["exec", id, "/bin/sleep", "1000"]);
    kill_after(cmd, rng.delay(max));
}

fn kill(b: &Bundle, id: &str, rng: &mut Rng, max: Duration) {
    started(b, id);
    kill_after(nsboot(b, &["kill", id, "KILL"]), rng.delay(max));
}

fn delete(b: &Bundle, id: &str, rng: &mut Rng, max: Duration) {
    must(b, &["create", "--bundle", b.dir().to_str().unwrap(), id]);
    kill_after(nsboot(b, &["delete", id]), rng.delay(max));
}

fn delete_force(b: &Bundle, id: &str, rng: &mut Rng, max: Duration) {
    started(b, id);
    let cmd = nsboot(b, &["delete", "--force", id]);
    kill_after(cmd, rng.delay(max));
}

fn run(b: &Bundle, id: &str, rng: &mut Rng, max: Duration) {
    let dir = b.dir().to_str().unwrap();
    let cmd = nsboot(b, &["run", "--bundle", dir, id]);
    kill_after(cmd, rng.delay(max));
}

/// The supervisor of a `run`, killed once it exists.
fn run_supervisor(b: &Bundle, id: &str, rng: &mut Rng, max: Duration) {
    supervisor("run", b, id, rng, max);
}

/// The supervisor of a `create`, killed once it exists.
fn create_supervisor(b: &Bundle, id: &str, rng: &mut Rng, max: Duration) {
    supervisor("create", b, id, rng, max);
}

fn supervisor(which: &str, b: &Bundle, id: &str, rng: &mut Rng, max: Duration) {
    let dir = b.dir().to_str().unwrap();
    let mut caller = nsboot(b, &[which, "--bundle", dir, id]).spawn().unwrap();
    // The caller runs as the mode's user through setpriv, which execs: same pid.
    let deadline = Instant::now() + LIMIT;
    let sup = loop {
        match children_of(caller.id()).first() {
            Some(&s) => break Some(s),
            None if Instant::now() > deadline => break None,
            None if caller.try_wait().unwrap().is_some() => break None,
            None => {}
        }
    };
    std::thread::sleep(rng.delay(max));
    if let Some(sup) = sup {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(sup as i32),
            nix::sys::signal::SIGKILL,
        );
    }
    finish(caller);
}

/// A run's supervisor and its caller killed together (`pkill -9 nsboot`), once the supervisor
/// exists: both stopped first, so that neither cleans up after the other.
fn caller_and_supervisor(b: &Bundle, id: &str, rng: &mut Rng, max: Duration) {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let dir = b.dir().to_str().unwrap();
    let caller = nsboot(b, &["run", "--bundle", dir, id]).spawn().unwrap();
    let deadline = Instant::now() + LIMIT;
    let mut sup = None;
    while sup.is_none() && Instant::now() < deadline {
        sup = children_of(caller.id()).first().copied();
    }
    std::thread::sleep(rng.delay(max));
    let pids: Vec<Pid> = sup
        .into_iter()
        .chain([caller.id()])
        .map(|p| Pid::from_raw(p as i32))
        .collect();
    for sig in [Signal::SIGSTOP, Signal::SIGKILL] {
        for &p in &pids {
            let _ = kill(p, sig);
        }
    }
    finish(caller);
}

/// `rounds()` kills of `what` in every mode; prints kills tried and leftovers found per mode;
/// fails on any leftover.
/// `window`: how long after it starts the command is killed at most; None: a little more than
/// it takes here uninterrupted (for commands that end by themselves).
fn crash(what: &str, round: Round, foreground: bool, window: Option<u64>) {
    let mut rng = Rng::new(what);
    let mut all = Vec::new();
    for mode in common::modes() {
        let b = Bundle::new(mode).args(&["/bin/sh", "-c", "exec sleep 1000"]);
        let mut bad = 0;
        let n = rounds();
        let max = match window {
            Some(ms) => Duration::from_millis(ms),
            None => duration_of(&b, round, &mut rng).mul_f64(1.2),
        };
        for i in 0..n {
            let id: String = what.chars().filter(char::is_ascii_alphabetic).collect();
            let id = format!("{id}{i}");
            round(&b, &id, &mut rng, max);
            let found = leftovers(&b, &id, foreground);
            if !found.is_empty() {
                bad += 1;
                all.push(format!("{mode:?} {id}: {}", found.join("; ")));
            }
        }
        eprintln!(
            "crash {what:<21} {:<14} kills tried {n:>4}  leftovers found {bad}  (kills within {max:.0?})",
            format!("{mode:?}")
        );
        common::assert_nothing_left(mode, b.state_dir());
    }
    assert!(all.is_empty(), "{what}: leftovers:\n{}", all.join("\n"));
}

#[test]
fn create_killed_anywhere_leaves_nothing() {
    crash("create", create, false, None);
}

#[test]
fn start_killed_anywhere_leaves_nothing() {
    crash("start", start, false, None);
}

#[test]
fn exec_killed_anywhere_leaves_nothing() {
    crash("exec", exec, false, Some(30));
}

#[test]
fn kill_killed_anywhere_leaves_nothing() {
    crash("kill", kill, false, None);
}

#[test]
fn delete_killed_anywhere_leaves_nothing() {
    crash("delete", delete, false, None);
}

#[test]
fn delete_force_killed_anywhere_leaves_nothing() {
    crash("delete --force", delete_force, false, None);
}

#[test]
fn run_killed_anywhere_leaves_nothing() {
    crash("run", run, true, Some(40));
}

#[test]
fn a_runs_supervisor_killed_anywhere_leaves_nothing() {
    crash("run's supervisor", run_supervisor, true, Some(30));
}

#[test]
fn a_creates_supervisor_killed_anywhere_leaves_nothing() {
    crash("create's supervisor", create_supervisor, false, Some(30));
}

#[test]
fn caller_and_supervisor_killed_together_leave_nothing() {
    crash(
        "caller and supervisor",
        caller_and_supervisor,
        true,
        Some(30),
    );
}
