//! linux.seccomp.listenerPath: the notify fd of a filter with SCMP_ACT_NOTIFY rules goes to
//! the seccomp agent listening there, with runc's container process state
//! (`{"ociVersion","fds":["seccompFd"],"pid","metadata","state":{...}}`) in one message and the
//! fd as SCM_RIGHTS.
//!
//! The process that loads the filter is inside the container and cannot reach the host's
//! path, and should hold no socket to the agent: it passes the fd to its parent
//! (`hand_over`, over its report socket: a `Listener` frame, then the fd), which connected to
//! the agent while it could still see the host (`Listener::connect`) and sends the state
//! (`Listener::relay`); the process waits for the outcome, so that an agent that refuses the
//! message fails the start before the program runs.

use std::collections::HashMap;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use serde::{Deserialize, Serialize};

use crate::spec::Spec;
use crate::sys::{wire, Errno};

#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
pub enum AgentError {
    #[error("linux.seccomp.listenerPath {}: connecting to the seccomp agent: {errno}: start the agent first or fix the path", path.display())]
    Connect { path: PathBuf, errno: Errno },
    #[error("linux.seccomp.listenerPath {}: sending the notify fd to the seccomp agent: {errno}", path.display())]
    Send { path: PathBuf, errno: Errno },
    #[error("handing the seccomp notify fd to nsboot: {what}: {errno}")]
    Relay { what: String, errno: Errno },
    #[error("handing the seccomp notify fd to nsboot: {0}")]
    Refused(String),
}

/// The frame the process sends before the fd; its parent's message enum has a unit variant of
/// the same name (`Listener`).
#[derive(Serialize)]
enum Frame {
    Listener,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProcessState<'a> {
    oci_version: &'a str,
    fds: [&'a str; 1],
    pid: i32,
    metadata: &'a str,
    state: State<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct State<'a> {
    oci_version: &'a str,
    id: &'a str,
    status: &'a str,
    pid: i32,
    bundle: &'a Path,
    #[serde(skip_serializing_if = "Option::is_none")]
    annotations: Option<&'a HashMap<String, String>>,
}

/// A connection to the spec's seccomp agent, and what the state it gets says.
pub struct Listener {
    sock: OwnedFd,
    path: PathBuf,
    version: String,
    id: String,
    bundle: PathBuf,
    status: &'static str,
    metadata: String,
    annotations: Option<HashMap<String, String>>,
}

impl Listener {
    /// Connects to linux.seccomp.listenerPath when the profile has NOTIFY rules (None
    /// otherwise). `status`: the container's, as the state will say it.
    pub fn connect(
        spec: &Spec,
        id: &str,
        bundle: &Path,
        status: &'static str,
    ) -> Result<Option<Self>, AgentError> {
        let Some(seccomp) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) else {
            return Ok(None);
        };
        let path = match seccomp.listener_path() {
            Some(p) if super::uses_notify(seccomp) && !p.as_os_str().is_empty() => p,
            _ => return Ok(None),
        };
        let sock =
            crate::sys::socket::unix_socket(path, false).map_err(|errno| AgentError::Connect {
                path: path.clone(),
                errno,
            })?;
        Ok(Some(Listener {
            sock,
            path: path.clone(),
            version: spec.version().clone(),
            id: id.into(),
            bundle: bundle.into(),
            status,
            metadata: seccomp.listener_metadata().clone().unwrap_or_default(),
            annotations: spec.annotations().clone(),
        }))
    }

    /// The parent's side, after a `Listener` frame on `sock` from process `pid`: takes the
    /// fd, sends it and the state to the agent, and tells the process the outcome.
    pub fn relay(this: Option<&Self>, sock: BorrowedFd<'_>, pid: i32) -> Result<(), AgentError> {
        let sent = recv_fd(sock).and_then(|fd| match this {
            Some(l) => l.send(pid, fd.as_fd()),
            None => Err(AgentError::Refused(
                "no agent connection: set linux.seccomp.listenerPath".into(),
            )),
        });
        let answer: Result<(), String> = sent.as_ref().map(drop).map_err(|e| e.to_string());
        wire::send(sock, &answer).map_err(|e| AgentError::Refused(e.to_string()))?;
        sent
    }

    fn send(&self, pid: i32, fd: BorrowedFd<'_>) -> Result<(), AgentError> {
        let state = ProcessState {
            oci_version: &self.version,
            fds: ["seccompFd"],
            pid,
            metadata: &self.metadata,
            state: State {
                oci_version: &self.version,
                id: &self.id,
                status: self.status,
                pid,
                bundle: &self.bundle,
                annotations: self.annotations.as_ref(),
            },
        };
        let body = serde_json::to_vec(&state).unwrap_or_default();
        let fds = [fd.as_raw_fd()];
        let cmsg = [ControlMessage::ScmRights(&fds)];
        let iov = [IoSlice::new(&body)];
        loop {
            match sendmsg::<()>(self.sock.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None) {
                Ok(_) => return Ok(()),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    return Err(AgentError::Send {
                        path: self.path.clone(),
                        errno: e.into(),
                    })
                }
            }
        }
    }
}

/// The process's side, right after the filter is loaded: the fd to the parent, then its word.
pub fn hand_over(report: BorrowedFd<'_>, fd: OwnedFd) -> Result<(), AgentError> {
    let relay = |what: &str| {
        let what = what.to_string();
        move |e: nix::errno::Errno| AgentError::Relay {
            what,
            errno: e.into(),
        }
    };
    wire::send(report, &Frame::Listener).map_err(|e| AgentError::Refused(e.to_string()))?;
    let fds = [fd.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(b"F")];
    sendmsg::<()>(report.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None)
        .map_err(relay("sending it"))?;
    drop(fd);
    match wire::expect::<Result<(), String>>(report, "the seccomp agent's answer") {
        Ok(Ok(())) => Ok(()),
        Ok(Err(msg)) => Err(AgentError::Refused(msg)),
        Err(e) => Err(AgentError::Refused(e.to_string())),
    }
}

fn recv_fd(sock: BorrowedFd<'_>) -> Result<OwnedFd, AgentError> {
    let mut byte = [0u8; 1];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let mut iov = [IoSliceMut::new(&mut byte)];
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| AgentError::Relay {
        what: "receiving it".into(),
        errno: e.into(),
    })?;
    let fd = msg
        .cmsgs()
        .ok()
        .into_iter()
        .flatten()
        .find_map(|c| match c {
            ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
            _ => None,
        })
        .ok_or(AgentError::Relay {
            what: "receiving it".into(),
            errno: Errno(libc::EBADMSG),
        })?;
    // SAFETY: SCM_RIGHTS just installed this fd in our table; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
