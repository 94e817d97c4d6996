//! `nsboot ps [--format table|json] ID`: the host pids of a sandbox's processes.

use crate::cli::Global;
use crate::state::lifecycle;

// List the processes of a container (host pids).
#[derive(Debug, clap::Args)]
pub struct PsArgs {
    /// Output format: json is an array of host pids.
    #[arg(long, short = 'f', value_enum, default_value_t = crate::cli::list::Format::Table)]
    pub format: crate::cli::list::Format,
    /// The container id.
    pub id: String,
    /// Accepted for runc command lines (ps(1) options); ignored.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    pub ps_args: Vec<String>,
}

pub fn run(args: PsArgs, global: &Global) -> i32 {
    let root = match crate::state::root_dir(global.root.as_deref()) {
        Ok(r) => r,
        Err(e) => return crate::sys::log::fail(&e),
    };
    let c = match lifecycle::load(&root, &args.id) {
        Ok(c) => c,
        Err(e) => {
            crate::sys::log::fatal(&e.to_string());
            return 125;
        }
    };
    // A stopped container has no processes: an empty list, as runc prints.
    let pids = c.app.map(lifecycle::sandbox_pids).unwrap_or_default();
    match args.format {
        crate::cli::list::Format::Json => {
            crate::state::lifecycle::out!("{}", serde_json::json!(pids))
        }
        crate::cli::list::Format::Table => {
            crate::state::lifecycle::out!("PID      CMD");
            for pid in pids {
                let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
                crate::state::lifecycle::out!("{pid:<8} {}", cmd.trim_end());
            }
        }
    }
    0
}
