//! The command line: runc/runsc-compatible global flags, one file per subcommand.
//!
//! Global flags come before the subcommand (`nsboot --root DIR --log F run ...`), as runc and
//! crun take them, so that podman and conmon can drive nsboot unchanged.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

pub mod boot;
pub mod check;
pub mod create;
pub mod do_cmd;
pub mod run;
pub mod spec;
pub mod start;

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
    #[arg(long, global = true, value_enum, default_value_t = Rootless::Auto)]
    pub rootless: Rootless,
    /// Accepted for runc command lines (cgroups are not managed by nsboot).
    #[arg(long = "systemd-cgroup", global = true, hide = true)]
    pub systemd_cgroup: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Rootless {
    Auto,
    True,
    False,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a container from an OCI bundle and wait for it.
    Run(run::RunArgs),
    /// Write a config.json for a bundle (rootless by default when not root).
    Spec(spec::SpecArgs),
    /// Run a command in a sandbox over the host's own root.
    Do(do_cmd::DoArgs),
    /// Diagnose whether this host can run rootless sandboxes.
    Check(check::CheckArgs),
    /// Create a container and leave it waiting for `start`.
    Create(create::CreateArgs),
    /// Start a created container.
    Start(start::StartArgs),
    /// INTERNAL: the sandbox supervisor, started by nsboot itself (runsc boot's fd contract).
    Boot(boot::BootArgs),
}
