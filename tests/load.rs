//! Load: 100 sandboxes started concurrently by one user, each with its own id, all
//! complete with the right status and leave nothing behind; the same id raced twice: exactly
//! one run wins, the other is refused with "already exists".

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::{Bundle, Mode, Output};

const SANDBOXES: usize = 100;
/// How many run at once: enough to contend on the state dir, few enough for 2 cores in CI.
const AT_ONCE: usize = 20;
/// Rounds of the same-id race per mode: the window it probes is narrow.
const ROUNDS: usize = 8;

#[test]
fn hundred_concurrent_sandboxes_all_complete_and_leave_nothing() {
    let mode = Mode::RootlessSingle;
    // One user, one state dir shared by all; each run its own bundle (own exit status).
    let shared = Bundle::new(mode);
    let state = shared.state_dir().to_path_buf();
    let next = AtomicUsize::new(0);
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..AT_ONCE {
            s.spawn(|| loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= SANDBOXES {
                    return;
                }
                let script = format!("echo sandbox-{n}; exit {}", n % 100);
                let bundle = Bundle::new(mode).args(&["/bin/sh", "-c", &script]);
                let mut cmd = bundle.nsboot();
                cmd.arg("--root").arg(&state).arg("run");
                cmd.arg("--bundle")
                    .arg(bundle.dir())
                    .arg(format!("load-{n}"));
                let out = common::output(&mut cmd);
                let want = (n as i32 % 100, format!("sandbox-{n}\n"));
                if (out.status, out.stdout.clone()) != want || !out.stderr.is_empty() {
                    failures.lock().unwrap().push(format!("load-{n}: {out:?}"));
                }
                common::assert_nothing_left(mode, bundle.state_dir());
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {SANDBOXES} runs went wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
    common::assert_nothing_left(mode, &state);
}

/// A started `nsboot run` whose application waits for its stdin to close.
fn start(bundle: &Bundle, id: &str) -> Child {
    let mut cmd = bundle.run_cmd(id);
    cmd.stdin(Stdio::piped());
    common::spawn_piped(&mut cmd)
}

/// Waits (bounded) for the child to exit; SIGKILL after `limit`.
fn finish(mut child: Child, limit: Duration) -> Output {
    drop(child.stdin.take());
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let read = |p: Option<Box<dyn std::io::Read>>| -> String {
        p.map(|p| {
            BufReader::new(p)
                .lines()
                .map_while(Result::ok)
                .map(|l| l + "\n")
                .collect()
        })
        .unwrap_or_default()
    };
    let stdout = read(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = read(child.stderr.take().map(|p| Box::new(p) as _));
    Output {
        status: status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)),
        stdout,
        stderr,
    }
}

#[test]
fn same_id_raced_twice_exactly_one_wins() {
    // The app waits on stdin, so the winner is still running when the loser tries.
    let script = "echo started; read x; echo done";
    for mode in common::modes() {
        for round in 0..ROUNDS {
            let id = format!("race-{round}-{mode:?}").to_lowercase();
            let bundle = Bundle::new(mode).args(&["/bin/sh", "-c", script]);
            let barrier = Arc::new(Barrier::new(2));
            let children: Vec<Child> = std::thread::scope(|s| {
                let racers: Vec<_> = (0..2)
                    .map(|_| {
                        let (b, bundle, id) = (Arc::clone(&barrier), &bundle, &id);
                        s.spawn(move || {
                            b.wait();
                            start(bundle, id)
                        })
                    })
                    .collect();
                racers.into_iter().map(|r| r.join().unwrap()).collect()
            });
            // The loser ends by itself; wait for it before releasing the winner.
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut children: Vec<Option<Child>> = children.into_iter().map(Some).collect();
            let loser = loop {
                let done = children
                    .iter_mut()
                    .position(|c| c.as_mut().unwrap().try_wait().unwrap().is_some());
                if let Some(i) = done {
                    break i;
                }
                if Instant::now() > deadline {
                    // Both were admitted and wait on stdin: release them to show what they did.
                    let outs: Vec<Output> = children
                        .iter_mut()
                        .map(|c| finish(c.take().unwrap(), Duration::from_secs(10)))
                        .collect();
                    panic!("{mode:?} round {round}: both runs of {id} were admitted: {outs:?}");
                }
                std::thread::sleep(Duration::from_millis(10));
            };
            let lost = finish(children[loser].take().unwrap(), Duration::from_secs(5));
            let won = finish(children[1 - loser].take().unwrap(), Duration::from_secs(30));
            assert!(
                lost.status == 125
                    && lost.stdout.is_empty()
                    && lost.stderr.lines().count() == 1
                    && lost.stderr.contains("already exists"),
                "{mode:?} round {round}: the loser: {lost:?}"
            );
            assert_eq!(
                (won.status, won.stdout.as_str()),
                (0, "started\ndone\n"),
                "{mode:?} round {round}: the winner: {won:?}"
            );
            common::assert_nothing_left(mode, bundle.state_dir());
        }
    }
}
