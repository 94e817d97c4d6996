//! nsboot: a rootless-first sandbox launcher. See DESIGN.md for the flow; `boot` is the
//! supervisor, `sandbox` the caller, `userns` the id-map sync, `rootfs` the empty root and
//! `process` the application's exec path.

pub mod boot;
pub mod check;
pub mod cli;
pub mod console;
pub mod control;
pub mod hooks;
pub mod idmap;
pub mod lifecycle;
pub mod log;
pub mod net;
pub mod process;
pub mod procfs;
pub mod pty;
pub mod rootfs;
pub mod sandbox;
pub mod setns;
pub mod spec;
pub mod state;
pub mod sys;
pub mod userns;
pub mod wire;
