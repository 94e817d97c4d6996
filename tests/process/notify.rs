//! linux.seccomp.listenerPath and listenerMetadata: SCMP_ACT_NOTIFY rules hand the filter's
//! notify fd to the agent listening there (SCM_RIGHTS) with runc's container process state
//! (`{"ociVersion","fds":["seccompFd"],"pid","metadata","state":{...}}`). The agent here is a
//! Unix listener in the test that answers each notified mkdir with EROFS.

use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::sync::mpsc;
use std::time::Duration;

use libseccomp::{ScmpNotifReq, ScmpNotifResp, ScmpNotifRespFlags};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use serde_json::{json, Value};

use super::common::{self, Bundle, Mode};
use super::{assert_refused, id, sh};

/// Accepts connections; for each, reads the state and the fd, sends the state on, and answers
/// every notified syscall with EROFS until the filter's last user is gone.
fn agent(listener: UnixListener) -> mpsc::Receiver<Value> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        while let Ok((conn, _)) = listener.accept() {
            let tx = tx.clone();
            std::thread::spawn(move || serve(conn, tx));
        }
    });
    rx
}

fn serve(conn: std::os::unix::net::UnixStream, tx: mpsc::Sender<Value>) {
    let mut buf = vec![0u8; 65536];
    let mut space = nix::cmsg_space!([RawFd; 4]);
    let (len, fd) = {
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::empty(),
        )
        .unwrap();
        let fd = msg.cmsgs().unwrap().find_map(|c| match c {
            ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
            _ => None,
        });
        (msg.bytes, fd)
    };
    let Some(fd) = fd else {
        // The connection closed without a message (the run failed before its filter).
        return;
    };
    // SAFETY: SCM_RIGHTS just gave us this fd.
    let notify = unsafe { OwnedFd::from_raw_fd(fd) };
    let state: Value = serde_json::from_slice(&buf[..len]).unwrap();
    let _ = tx.send(state);
    while let Ok(req) = ScmpNotifReq::receive(notify.as_raw_fd()) {
        let resp = ScmpNotifResp::new_error(req.id, -libc::EROFS, ScmpNotifRespFlags::empty());
        let _ = resp.respond(notify.as_raw_fd());
    }
}

/// A listener at `<bundle top>/agent.sock` that the mode's user can connect to.
fn listen(b: &Bundle) -> (UnixListener, String) {
    let path = b.dir().parent().unwrap().join("agent.sock");
    let l = UnixListener::bind(&path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).unwrap();
    (l, path.to_str().unwrap().to_string())
}

fn notify_profile(path: &str) -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": path,
        "listenerMetadata": "MKDIR=erofs",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    })
}

fn run_with_agent(mode: Mode, test: &str, nnp: bool) {
    let script = "mkdir /dev/shm/d; echo $?";
    let b = sh(mode, script, |_| {});
    let (l, path) = listen(&b);
    let b = b.edit(|c| {
        c["linux"]["seccomp"] = notify_profile(&path);
        c["process"]["noNewPrivileges"] = json!(nnp);
    });
    let states = agent(l);
    let cid = id(test, mode);
    let out = b.run(&cid);
    assert_eq!(
        (out.status, out.stdout.as_str()),
        (0, "1\n"),
        "{mode:?}: {out:?}"
    );
    assert!(
        out.stderr.contains("Read-only file system"),
        "{mode:?}: the agent answered: {out:?}"
    );
    let state = states.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(state["fds"], json!(["seccompFd"]), "{state}");
    assert_eq!(state["metadata"], json!("MKDIR=erofs"), "{state}");
    assert_eq!(state["state"]["id"], json!(cid), "{state}");
    assert_eq!(
        state["state"]["bundle"],
        json!(b.dir().to_str().unwrap()),
        "{state}"
    );
    assert!(state["pid"].as_i64().is_some_and(|p| p > 1), "{state}");
    assert_eq!(state["pid"], state["state"]["pid"], "{state}");
    assert!(state["ociVersion"].is_string(), "{state}");
    common::assert_nothing_left(mode, b.state_dir());
}

#[test]
fn notify_rules_hand_the_listener_to_the_agent() {
    for mode in common::modes() {
        run_with_agent(mode, "notify-nnp", true);
        // Without no_new_privileges the filter is loaded while the caps are still there.
        run_with_agent(mode, "notify", false);
    }
}

#[test]
fn notify_without_a_listener_or_an_agent_is_a_one_line_error() {
    for mode in common::modes() {
        let b = sh(mode, "echo ran", |c| {
            c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]});
        });
        let out = b.run(&id("notify-nolistener", mode));
        assert_refused(mode, &out, &["listenerPath"]);
        let b = sh(mode, "echo ran", |_| {});
        let path = b.dir().parent().unwrap().join("nobody.sock");
        let b = b.edit(|c| c["linux"]["seccomp"] = notify_profile(path.to_str().unwrap()));
        let out = b.run(&id("notify-noagent", mode));
        assert_refused(mode, &out, &["listenerPath", "nobody.sock"]);
        common::assert_nothing_left(mode, b.state_dir());
    }
}

#[test]
fn exec_hands_its_own_listener_to_the_agent() {
    for mode in common::modes() {
        let b = Bundle::new(mode).args(&["/bin/sh", "-c", "exec sleep 1000"]);
        let (l, path) = listen(&b);
        let b = b.edit(|c| c["linux"]["seccomp"] = notify_profile(&path));
        let states = agent(l);
        let cid = id("notify-exec", mode);
        let nsb = |args: &[&str]| {
            let mut cmd = b.nsboot();
            cmd.arg("--root").arg(b.state_dir()).args(args);
            common::output_within(&mut cmd, Duration::from_secs(30))
        };
        let c = nsb(&["create", "--bundle", b.dir().to_str().unwrap(), &cid]);
        assert_eq!(c.status, 0, "{mode:?}: {c:?}");
        assert_eq!(nsb(&["start", &cid]).status, 0, "{mode:?}");
        let app = states.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(app["state"]["status"], json!("creating"), "{app}");
        let e = nsb(&["exec", &cid, "/bin/sh", "-c", "mkdir /dev/shm/e; echo $?"]);
        assert_eq!((e.status, e.stdout.as_str()), (0, "1\n"), "{mode:?}: {e:?}");
        assert!(
            e.stderr.contains("Read-only file system"),
            "{mode:?}: {e:?}"
        );
        let exec = states.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(exec["state"]["status"], json!("running"), "{exec}");
        assert_eq!(exec["state"]["id"], json!(cid), "{exec}");
        assert_ne!(exec["pid"], app["pid"], "{exec}");
        nsb(&["delete", "--force", &cid]);
        common::assert_nothing_left(mode, b.state_dir());
    }
}
