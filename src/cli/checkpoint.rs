//! `nsboot checkpoint [FLAGS] ID`: dump a running container's application with CRIU (runc's
//! flags; `sandbox::criu` says what is dumped and how).

use std::path::PathBuf;

use crate::cli::Global;
use crate::sandbox::criu::{self, DumpOptions};
use crate::state::lifecycle::{self, LifecycleError, Status};

// Checkpoint a running container with CRIU.
#[derive(Debug, clap::Args)]
pub struct CheckpointArgs {
    /// Where to write the images (default: ./checkpoint).
    #[arg(long = "image-path", value_name = "DIR")]
    pub image_path: Option<PathBuf>,
    /// Images of a previous pre-dump, relative to the image path.
    #[arg(long = "parent-path", value_name = "DIR")]
    pub parent_path: Option<PathBuf>,
    /// Leave the container running once dumped.
    #[arg(long = "leave-running")]
    pub leave_running: bool,
    /// Dump memory only, leave the container running (iterative migration).
    #[arg(long = "pre-dump")]
    pub pre_dump: bool,
    /// A namespace (network) whose contents are not dumped; restore makes it anew.
    #[arg(long = "empty-ns", value_name = "NS")]
    pub empty_ns: Vec<String>,
    /// Refused: lazy migration needs a page server nsboot does not drive.
    #[arg(long = "lazy-pages", hide = true)]
    pub lazy_pages: bool,
    /// Refused (see --lazy-pages).
    #[arg(long = "page-server", hide = true, value_name = "ADDR:PORT")]
    pub page_server: Option<String>,
    /// Refused (see --lazy-pages).
    #[arg(long = "status-fd", hide = true, value_name = "FD")]
    pub status_fd: Option<i32>,
    /// Skip TCP connections still being set up (CRIU's --tcp-skip-in-flight).
    #[arg(long = "tcp-skip-in-flight")]
    pub tcp_skip_in_flight: bool,
    /// Dump open files that were unlinked by linking them back (CRIU's --link-remap).
    #[arg(long = "link-remap")]
    pub link_remap: bool,
    #[command(flatten)]
    pub criu: CriuFlags,
    /// The container id.
    pub id: String,
}

// The flags `checkpoint` and `restore` share (runc's), as CRIU takes them.
#[derive(Debug, clap::Args)]
pub struct CriuFlags {
    /// Where CRIU writes its log and work files (default: the image path).
    #[arg(long = "work-path", value_name = "DIR")]
    pub work_path: Option<PathBuf>,
    /// Established TCP connections too.
    #[arg(long = "tcp-established")]
    pub tcp_established: bool,
    /// Allow external unix sockets.
    #[arg(long = "ext-unix-sk")]
    pub ext_unix_sk: bool,
    /// Allow a shell job (a terminal shared with the caller).
    #[arg(long = "shell-job")]
    pub shell_job: bool,
    /// File locks too.
    #[arg(long = "file-locks")]
    pub file_locks: bool,
    /// Deduplicate memory images (CRIU's --auto-dedup).
    #[arg(long = "auto-dedup")]
    pub auto_dedup: bool,
    /// CRIU's cgroup mode: soft, full, strict or ignore.
    #[arg(long = "manage-cgroups-mode", value_name = "MODE")]
    pub manage_cgroups_mode: Option<String>,
}

impl CriuFlags {
    /// For `sandbox::criu`, relative paths taken from `cwd`.
    pub fn shared(self, cwd: &std::path::Path) -> criu::Shared {
        criu::Shared {
            work_path: self.work_path.map(|p| cwd.join(p)),
            tcp_established: self.tcp_established,
            ext_unix_sk: self.ext_unix_sk,
            shell_job: self.shell_job,
            file_locks: self.file_locks,
            auto_dedup: self.auto_dedup,
            manage_cgroups_mode: self.manage_cgroups_mode,
        }
    }
}

pub fn run(args: CheckpointArgs, global: &Global) -> i32 {
    match checkpoint(args, global) {
        Ok(()) => 0,
        Err(e) => {
            crate::sys::log::fatal(&e);
            125
        }
    }
}

fn checkpoint(a: CheckpointArgs, global: &Global) -> Result<(), String> {
    if a.lazy_pages || a.page_server.is_some() || a.status_fd.is_some() {
        return Err("checkpoint: --lazy-pages, --page-server and --status-fd are not supported by nsboot: dump to an image directory".into());
    }
    let root = crate::state::root_dir(global.root.as_deref()).map_err(|e| e.to_string())?;
    let c = lifecycle::load(&root, &a.id).map_err(|e| e.to_string())?;
    let app = c.require_app().map_err(|e| e.to_string())?;
    if c.status != Status::Running {
        let e = LifecycleError::NotRunning {
            id: a.id.clone(),
            status: c.status.as_str().into(),
        };
        return Err(e.to_string());
    }
    // The container's own config (the bundle it was created from) says which namespaces it
    // joined by path.
    let spec = crate::spec::load(&c.state.bundle).map_err(|e| e.to_string())?;
    let joined = crate::spec::namespaces(&spec)
        .iter()
        .filter_map(|n| n.path().as_ref().map(|p| (n.typ(), p.clone())))
        .collect();
    let host_pid = crate::rootfs::shown::pid_host(&spec);
    let cwd = std::env::current_dir().unwrap_or_else(|_| "/".into());
    let opts = DumpOptions {
        image_path: cwd.join(a.image_path.unwrap_or_else(|| "checkpoint".into())),
        shared: a.criu.shared(&cwd),
        leave_running: a.leave_running || a.pre_dump,
        tcp_skip_in_flight: a.tcp_skip_in_flight,
        link_remap: a.link_remap,
        pre_dump: a.pre_dump,
        parent_path: a.parent_path,
        empty_ns: a.empty_ns,
        joined,
        host_pid,
    };
    criu::dump(&a.id, app, &c.state.rootfs, &opts).map_err(|e| e.to_string())?;
    if !opts.leave_running {
        // CRIU killed the tree: wait (briefly) for the supervisor to see the application go,
        // so that `state` right after says "stopped", as runc's does.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while lifecycle::is_alive(app) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
    Ok(())
}
