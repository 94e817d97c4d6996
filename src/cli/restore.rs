//! `nsboot restore [FLAGS] ID`: a container made from a bundle and a checkpoint of
//! `nsboot checkpoint` (runc's flags; `sandbox::criu::restore` says how).

use std::path::PathBuf;

use crate::cli::Global;
use crate::sandbox::criu::{self, RestoreOptions};

// Restore a container from a CRIU checkpoint.
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The checkpoint's images (default: ./checkpoint).
    #[arg(long = "image-path", value_name = "DIR")]
    pub image_path: Option<PathBuf>,
    /// The bundle (default: the current directory).
    #[arg(long, short = 'b', value_name = "DIR", default_value = ".")]
    pub bundle: PathBuf,
    /// Return once restored.
    #[arg(long, short = 'd')]
    pub detach: bool,
    /// Write the container's pid (the restored application's, as `state` reports it) to FILE.
    #[arg(long = "pid-file", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Where to send the restored terminal's new pty master (a checkpoint of a container
    /// with process.terminal needs one, as create does).
    #[arg(long = "console-socket", value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Accepted for runc command lines: a dumped namespace is restored, an empty one made.
    #[arg(long = "empty-ns", hide = true, value_name = "NS")]
    pub empty_ns: Vec<String>,
    /// Accepted for runc command lines (the supervisor reaps, not the caller).
    #[arg(long = "no-subreaper", hide = true)]
    pub no_subreaper: bool,
    /// Accepted for runc command lines.
    #[arg(long = "no-pivot", hide = true)]
    pub no_pivot: bool,
    /// Refused: lazy migration needs a page server nsboot does not drive.
    #[arg(long = "lazy-pages", hide = true)]
    pub lazy_pages: bool,
    /// Refused: nsboot applies no LSM label.
    #[arg(long = "lsm-profile", hide = true, value_name = "TYPE:LABEL")]
    pub lsm_profile: Option<String>,
    /// Refused: nsboot applies no LSM label.
    #[arg(long = "lsm-mount-context", hide = true, value_name = "CONTEXT")]
    pub lsm_mount_context: Option<String>,
    #[command(flatten)]
    pub criu: super::checkpoint::CriuFlags,
    /// The container id.
    pub id: String,
}

pub fn run(a: RestoreArgs, global: &Global) -> i32 {
    use crate::sys::log::fail;
    if a.lazy_pages || a.lsm_profile.is_some() || a.lsm_mount_context.is_some() {
        return fail(&"restore: --lazy-pages, --lsm-profile and --lsm-mount-context are not supported by nsboot");
    }
    if let Err(e) = crate::state::validate_id(&a.id) {
        return fail(&e);
    }
    let spec = match crate::spec::load(&a.bundle) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let bundle = std::path::absolute(&a.bundle).unwrap_or_else(|_| a.bundle.clone());
    let rootfs = match crate::spec::rootfs_path(&spec, &bundle) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    let root = match crate::state::root_dir(global.root.as_deref()) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    let cwd = std::env::current_dir().unwrap_or_else(|_| "/".into());
    let opts = RestoreOptions {
        id: a.id,
        bundle,
        image_path: cwd.join(a.image_path.unwrap_or_else(|| "checkpoint".into())),
        shared: a.criu.shared(&cwd),
        detach: a.detach,
        pid_file: a.pid_file.map(|p| cwd.join(p)),
        console_socket: a.console_socket.map(|p| cwd.join(p)),
        systemd_cgroup: global.launch_context().systemd_cgroup,
    };
    match criu::restore(&root, &spec, &rootfs, &opts) {
        Ok(code) => code,
        Err(e) => fail(&e),
    }
}
