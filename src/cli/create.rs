//! `nsboot create`: boot a sandbox and leave it waiting for `start` (the engine path:
//! podman/conmon call create, then start; the supervisor's pid is the container's pid).

use std::path::PathBuf;

use crate::cli::Global;
use crate::sandbox::launch::{self, CreateOptions};
use crate::spec;
use crate::sys::log::fail;

// Create a container: boot it and leave it waiting for `start`.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The bundle directory (holding config.json).
    #[arg(long, short = 'b', default_value = ".")]
    pub bundle: PathBuf,
    /// Write the container's pid (the supervisor's host pid) to this file.
    #[arg(long = "pid-file", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket to send the pty master to when process.terminal is true.
    #[arg(long = "console-socket", value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Pass fds 3 .. 3+N to the application.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Accepted for runc command lines.
    #[arg(long = "no-pivot", hide = true)]
    pub no_pivot: bool,
    /// Accepted for runc command lines.
    #[arg(long = "no-new-keyring", hide = true)]
    pub no_new_keyring: bool,
    /// The container id.
    pub id: String,
}

pub fn run(args: CreateArgs, global: &Global) -> i32 {
    let spec = match spec::load(&args.bundle) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let opts = CreateOptions {
        id: &args.id,
        bundle: &args.bundle,
        pid_file: args.pid_file.as_deref(),
        console_socket: args.console_socket.as_deref(),
        preserve_fds: args.preserve_fds,
    };
    launch::create(&global.launch_context(), spec, &opts)
}
