//! `nsboot state ID`: the OCI state document of a container, its status checked live.

use crate::cli::Global;
use crate::state::lifecycle;

// Print the OCI state of a container (JSON).
#[derive(Debug, clap::Args)]
pub struct StateArgs {
    /// The container id.
    pub id: String,
}

pub fn run(args: StateArgs, global: &Global) -> i32 {
    let root = match crate::state::root_dir(global.root.as_deref()) {
        Ok(r) => r,
        Err(e) => return crate::sys::log::fail(&e),
    };
    match lifecycle::load(&root, &args.id) {
        Ok(c) => {
            let text = serde_json::to_string_pretty(&c.oci_state()).unwrap_or_default();
            crate::state::lifecycle::out!("{text}");
            0
        }
        Err(e) => {
            crate::sys::log::fatal(&e.to_string());
            125
        }
    }
}
