//! `nsboot run`: create, start and wait, in the foreground (the core path).

use std::path::PathBuf;

use crate::cli::Global;
use crate::sandbox::launch;
use crate::spec;
use crate::sys::log::fail;

// Run a container from an OCI bundle and wait for it; exits with its status.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The bundle directory (holding config.json).
    #[arg(long, short = 'b', default_value = ".")]
    pub bundle: PathBuf,
    /// Write the supervisor's pid to this file.
    #[arg(long = "pid-file", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Accepted for runc command lines.
    #[arg(long = "no-new-keyring", hide = true)]
    pub no_new_keyring: bool,
    /// Accepted for runc command lines.
    #[arg(long = "no-pivot", hide = true)]
    pub no_pivot: bool,
    /// The container id.
    pub id: String,
}

pub fn run(args: RunArgs, global: &Global) -> i32 {
    crate::sys::log::phase("main");
    let spec = match spec::load(&args.bundle) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let ctx = global.launch_context();
    launch::run(
        &ctx,
        &args.id,
        spec,
        &args.bundle,
        args.pid_file.as_deref(),
        false,
    )
}
