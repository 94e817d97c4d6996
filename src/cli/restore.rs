//! `nsboot restore [FLAGS] ID`: runc's command line, refused for now (one line, 125): see
//! `sandbox::criu` for what a checkpoint holds and docs for what a restore lacks.

use std::path::PathBuf;

use crate::cli::Global;

// Restore a container from a CRIU checkpoint (not supported yet: refused).
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The checkpoint's images (default: ./checkpoint).
    #[arg(long = "image-path", value_name = "DIR")]
    pub image_path: Option<PathBuf>,
    /// Where CRIU writes restore.log.
    #[arg(long = "work-path", value_name = "DIR")]
    pub work_path: Option<PathBuf>,
    /// The bundle (default: the current directory).
    #[arg(long, short = 'b', value_name = "DIR")]
    pub bundle: Option<PathBuf>,
    /// Return once restored.
    #[arg(long, short = 'd')]
    pub detach: bool,
    /// Write the restored application's pid to FILE.
    #[arg(long = "pid-file", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Socket that receives the terminal's master.
    #[arg(long = "console-socket", value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    #[arg(long = "tcp-established", hide = true)]
    pub tcp_established: bool,
    #[arg(long = "ext-unix-sk", hide = true)]
    pub ext_unix_sk: bool,
    #[arg(long = "shell-job", hide = true)]
    pub shell_job: bool,
    #[arg(long = "file-locks", hide = true)]
    pub file_locks: bool,
    #[arg(long = "manage-cgroups-mode", hide = true, value_name = "MODE")]
    pub manage_cgroups_mode: Option<String>,
    #[arg(long = "empty-ns", hide = true, value_name = "NS")]
    pub empty_ns: Vec<String>,
    #[arg(long = "no-subreaper", hide = true)]
    pub no_subreaper: bool,
    #[arg(long = "no-pivot", hide = true)]
    pub no_pivot: bool,
    #[arg(long = "auto-dedup", hide = true)]
    pub auto_dedup: bool,
    #[arg(long = "lazy-pages", hide = true)]
    pub lazy_pages: bool,
    #[arg(long = "lsm-profile", hide = true, value_name = "TYPE:LABEL")]
    pub lsm_profile: Option<String>,
    #[arg(long = "lsm-mount-context", hide = true, value_name = "CONTEXT")]
    pub lsm_mount_context: Option<String>,
    /// The container id.
    pub id: String,
}

pub fn run(args: RestoreArgs, _global: &Global) -> i32 {
    crate::sys::log::fatal(&format!(
        "restore of container {}: not supported by nsboot yet (the application's tree must be restored under a new supervisor, which nsboot cannot do yet): use runc to restore, or start the container anew",
        crate::state::cut(&args.id)
    ));
    125
}
