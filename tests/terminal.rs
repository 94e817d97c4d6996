//! A terminal for `nsboot do` (and `run` with process.terminal): a pty made in the sandbox's
//! own devpts, sized like the caller's terminal (or by process.consoleSize), with job control
//! (Ctrl-C reaches the command through the pty's line discipline). `script` gives nsboot a
//! real terminal to start from.

mod common;

use std::io::{Read, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Bundle, Mode};

/// `nsboot do -- sh -c SCRIPT` under `script`, in a directory the mode's user owns.
fn under_script(mode: Mode, bundle: &Bundle, inner: &str) -> std::process::Command {
    let bin = common::nsboot_bin().display().to_string();
    let line = format!("stty cols 91 rows 27; {bin} do -- sh -c '{inner}'");
    let mut cmd = common::as_user(mode, "script");
    cmd.args(["-qec", &line, "/dev/null"])
        .current_dir(bundle.dir());
    cmd
}

#[test]
fn do_on_a_terminal_gets_a_sized_pty_of_its_own() {
    for mode in common::rootless_modes() {
        let bundle = Bundle::new(mode);
        let mut cmd = under_script(mode, &bundle, "tty; stty size; exit 3");
        let out = common::output(cmd.stdin(Stdio::null()));
        let text = out.stdout.replace('\r', "");
        assert_eq!(out.status, 3, "{mode:?}: {out:?}");
        assert!(
            text.contains("/dev/pts/0\n"),
            "{mode:?}: the pty must come from the sandbox's devpts: {text:?}"
        );
        assert!(
            text.contains("27 91\n"),
            "{mode:?}: the window size must follow the caller's: {text:?}"
        );
        common::assert_nothing_left(mode, bundle.state_dir());
    }
}

#[test]
fn ctrl_c_reaches_the_command_through_the_pty() {
    for mode in common::rootless_modes() {
        let bundle = Bundle::new(mode);
        let inner = "trap \"echo got-int; exit 5\" INT; echo ready; while :; do sleep 0.1; done";
        let mut child = under_script(mode, &bundle, inner)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("script runs");
        let mut stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut all = Vec::new();
            let _ = stdout.read_to_end(&mut all);
            String::from_utf8_lossy(&all).into_owned()
        });
        // script relays its stdin to the terminal nsboot sees; ^C is a byte there.
        let mut stdin = child.stdin.take().unwrap();
        std::thread::sleep(Duration::from_millis(700));
        let start = Instant::now();
        let status = loop {
            let _ = stdin.write_all(b"\x03");
            let _ = stdin.flush();
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{mode:?}: ^C never reached the command"
            );
            std::thread::sleep(Duration::from_millis(200));
        };
        drop(stdin);
        let text = reader.join().unwrap().replace('\r', "");
        assert!(
            text.contains("ready\n") && text.contains("got-int\n"),
            "{mode:?}: {text:?}"
        );
        assert_eq!(status.code(), Some(5), "{mode:?}: {text:?}");
        common::assert_nothing_left(mode, bundle.state_dir());
    }
}

/// Output of a child read into a shared buffer, to wait for text as it arrives.
struct Screen(std::sync::Arc<std::sync::Mutex<String>>);

impl Screen {
    fn read_from(mut out: impl Read + Send + 'static) -> Screen {
        let buf = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let shared = buf.clone();
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = out.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                shared
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        });
        Screen(buf)
    }

    fn text(&self) -> String {
        self.0.lock().unwrap().replace('\r', "")
    }

    /// Waits (at most 20 s) until `needle` has appeared `times` times.
    fn wait_for(&self, needle: &str, times: usize, ctx: &str) {
        let start = Instant::now();
        while self.text().matches(needle).count() < times {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{ctx}: no {needle:?} in {:?}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn ctrl_z_and_fg_work_in_an_interactive_shell() {
    for mode in common::rootless_modes() {
        let ctx = format!("{mode:?}");
        let bundle = Bundle::new(mode);
        let bin = common::nsboot_bin().display().to_string();
        let mut child = common::as_user(mode, "script")
            .args(["-qec", &format!("{bin} do -- sh -i"), "/dev/null"])
            .current_dir(bundle.dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("script runs");
        let screen = Screen::read_from(child.stdout.take().unwrap());
        let mut stdin = child.stdin.take().unwrap();
        let mut type_in = |s: &[u8]| {
            stdin.write_all(s).unwrap();
            stdin.flush().unwrap();
        };
        screen.wait_for("# ", 1, &ctx); // the shell is root in the sandbox
        type_in(b"sleep 30\n");
        std::thread::sleep(Duration::from_millis(500));
        type_in(b"\x1a"); // ^Z: the pty's line discipline stops the foreground job
        screen.wait_for("Stopped", 1, &ctx);
        type_in(b"jobs\n");
        screen.wait_for("Stopped", 2, &ctx);
        type_in(b"fg\n");
        std::thread::sleep(Duration::from_millis(500));
        type_in(b"\x03"); // ^C ends the resumed sleep: it is the foreground job again
        type_in(b"echo status-$?\n");
        screen.wait_for("status-130", 1, &ctx);
        type_in(b"exit 4\n");
        let start = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{ctx}: the shell did not exit: {:?}",
                screen.text()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(status.code(), Some(4), "{ctx}: {:?}", screen.text());
        common::assert_nothing_left(mode, bundle.state_dir());
    }
}

#[test]
fn run_with_a_terminal_sizes_its_pty_from_console_size() {
    for mode in common::modes() {
        let bundle = Bundle::new(mode)
            .args(&["/bin/sh", "-c", "stty size; exit 3"])
            .edit(|c| {
                c["process"]["terminal"] = serde_json::json!(true);
                c["process"]["consoleSize"] = serde_json::json!({"height": 33, "width": 101});
            });
        // No terminal of the caller's to size it from: the spec's size is what the app sees.
        let mut cmd = bundle.run_cmd(&format!("csize-{mode:?}").to_lowercase());
        let out = common::output(cmd.stdin(Stdio::null()));
        assert_eq!(out.status, 3, "{mode:?}: {out:?}");
        assert!(
            out.stdout.replace('\r', "").contains("33 101\n"),
            "{mode:?}: {out:?}"
        );
        common::assert_nothing_left(mode, bundle.state_dir());
    }
}
