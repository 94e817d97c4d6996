//! The controller socket (runsc's --controller-fd): how a caller drives a booted supervisor.
//! Typed requests and replies as `wire` frames over a Unix stream socket.

use std::os::fd::AsFd;

use serde::{Deserialize, Serialize};

use crate::process::ProcessError;
use crate::wire::{self, WireError};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum Request {
    /// Start the application (the supervisor is waiting for it).
    Start,
    /// Send a signal to the application (`all`: to every process of the sandbox).
    Signal { signo: i32, all: bool },
}

#[derive(Debug, Serialize, Deserialize)]
pub enum Reply {
    Started { pid: i32 },
    StartFailed(ProcessError),
    Signalled,
    Failed(String),
}

#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
pub enum ControlError {
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("the sandbox refused to start: {0}")]
    Start(ProcessError),
    #[error("unexpected reply from the sandbox: {0}")]
    Unexpected(String),
}

/// Caller: asks the supervisor to start the application; the reply says whether it exec'd.
pub fn send_start(sock: impl AsFd) -> Result<i32, ControlError> {
    wire::send(&sock, &Request::Start)?;
    match wire::expect::<Reply>(&sock, "the start reply from the sandbox")? {
        Reply::Started { pid } => Ok(pid),
        Reply::StartFailed(e) => Err(ControlError::Start(e)),
        other => Err(ControlError::Unexpected(format!("{other:?}"))),
    }
}

/// Supervisor: waits for the start request.
pub fn wait_for_start(sock: impl AsFd) -> Result<(), ControlError> {
    match wire::expect::<Request>(&sock, "the start signal from the caller")? {
        Request::Start => Ok(()),
        other => Err(ControlError::Unexpected(format!("{other:?} before Start"))),
    }
}
