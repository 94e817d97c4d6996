//! nsboot: a rootless-first sandbox launcher. See DESIGN.md for the flow and CONTRIBUTING.md
//! for the module map: `sandbox` is the caller, `boot` the supervisor, `protocol` all they
//! share (`protocol::userns` the id-map sync), `rootfs` the empty root, `process` the
//! application's exec path, `sys` the foundation every part stands on.

pub mod boot;
pub mod cgroup;
pub mod check;
pub mod cli;
pub mod control;
pub mod idmap;
pub mod process;
pub mod protocol;
pub mod rootfs;
pub mod sandbox;
pub mod spec;
pub mod state;
pub mod sys;
