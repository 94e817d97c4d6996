//! The command line: runc/runsc-compatible global flags, one file per subcommand.
//!
//! Global flags come before the subcommand (`nsboot --root DIR --log F run ...`), as runc and
//! crun take them, so that podman and conmon can drive nsboot unchanged.

use std::path::PathBuf;

pub use crate::sys::log::LogFormat;

use clap::{Parser, Subcommand, ValueEnum};

pub mod boot;
pub mod check;
pub mod checkpoint;
pub mod create;
pub mod delete;
pub mod do_cmd;
pub mod events;
pub mod exec;
pub mod features;
pub mod kill;
pub mod list;
pub mod pause;
pub mod ps;
pub mod restore;
pub mod run;
pub mod setup;
pub mod spec;
pub mod start;
pub mod state_cmd;
pub mod update;

/// A rootless-first sandbox launcher.
#[derive(Debug, Parser)]
#[command(name = "nsboot", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, clap::Args)]
pub struct Global {
    /// State directory (default: $XDG_RUNTIME_DIR/nsboot when rootless, /run/nsboot as root).
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Write log lines to FILE instead of stderr.
    #[arg(long, global = true, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Log line format.
    #[arg(long = "log-format", global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Debug logging, with a timing line for every boot phase.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Accepted for runc/runsc command lines; nsboot detects rootless mode itself.
    #[arg(long, global = true, value_enum, default_value_t = Rootless::Auto, num_args = 0..=1, default_missing_value = "true")]
    pub rootless: Rootless,
    /// The container's cgroup as a systemd scope (cgroupsPath `slice:prefix:name`), as runc's.
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// crun's form of the driver's choice: `systemd`, `cgroupfs`, or `disabled` (podman
    /// --cgroups=disabled).
    #[arg(
        long = "cgroup-manager",
        global = true,
        hide = true,
        value_name = "MANAGER"
    )]
    pub cgroup_manager: Option<String>,
}

impl Global {
    /// What a launch takes from the global flags; the supervisor it clones is `boot::main`.
    pub fn launch_context(&self) -> crate::sandbox::launch::Context<'_> {
        crate::sandbox::launch::Context {
            root: self.root.as_deref(),
            boot_flags: self.boot_flags(),
            supervisor: crate::boot::main,
            systemd_cgroup: self.systemd_cgroup
                || self.cgroup_manager.as_deref() == Some("systemd"),
        }
    }

    /// How to log, for `log::init`.
    pub fn log_options(&self) -> crate::sys::log::Options {
        crate::sys::log::Options {
            debug: self.debug,
            file: self.log.clone(),
            format: self.log_format,
        }
    }

    /// The logging flags, for an exec'd `nsboot boot` to log the same way.
    pub fn boot_flags(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.debug {
            v.push("--debug".into());
        }
        if let Some(l) = &self.log {
            v.extend(["--log".into(), l.display().to_string()]);
        }
        if self.log_format == LogFormat::Json {
            v.extend(["--log-format".into(), "json".into()]);
        }
        v
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Rootless {
    Auto,
    True,
    False,
}

#[derive(Debug, Subcommand)]
// Each subcommand's arguments are built only when it is the one being parsed (or its help is
// shown): building them all is a visible part of a launch. The *Args
// structs carry plain comments, not doc comments: deferred, theirs would replace the help text
// below (and turn `--help` into its long form).
#[command(defer = true)]
pub enum Command {
    /// Run a container from an OCI bundle and wait for it.
    Run(run::RunArgs),
    /// Write a config.json for a bundle (rootless by default when not root).
    Spec(spec::SpecArgs),
    /// Run a command in a sandbox over the host's own root.
    Do(do_cmd::DoArgs),
    /// Diagnose whether this host can run rootless sandboxes.
    Check(check::CheckArgs),
    /// Set up the host for nsboot (`setup apparmor`: allow it user namespaces; as root).
    Setup(setup::SetupArgs),
    /// Create a container and leave it waiting for `start`.
    Create(create::CreateArgs),
    /// Start a created container.
    Start(start::StartArgs),
    /// Print the OCI state of a container (JSON).
    State(state_cmd::StateArgs),
    /// Send a signal to a container's application (or, with --all, to all its processes).
    Kill(kill::KillArgs),
    /// Delete a stopped or created container (--force: a running one, or a missing id).
    Delete(delete::DeleteArgs),
    /// List the containers.
    List(list::ListArgs),
    /// List a container's processes (host pids).
    Ps(ps::PsArgs),
    /// Print the runtime-spec features nsboot implements (JSON).
    Features(features::FeaturesArgs),
    /// Run a process in a running container.
    Exec(exec::ExecArgs),
    /// Checkpoint a running container with CRIU.
    Checkpoint(checkpoint::CheckpointArgs),
    /// Restore a container from a CRIU checkpoint.
    Restore(restore::RestoreArgs),
    /// Pause a running container (freeze every process of its cgroup).
    Pause(pause::PauseArgs),
    /// Resume a paused container.
    Resume(pause::PauseArgs),
    /// Update a running container's resource limits (cgroup).
    Update(update::UpdateArgs),
    /// Print a container's resource usage and OOM events (runc's JSON lines).
    Events(events::EventsArgs),
    /// INTERNAL: the sandbox supervisor, started by nsboot itself (runsc boot's fd contract).
    Boot(boot::BootArgs),
}
