//! `nsboot start ID`: release a created container's application.

use crate::cli::Global;
use crate::sandbox::hooks::HookKind;
use crate::sys::log::fail;
use crate::{control, state};

// Start a created container.
#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// The container id.
    pub id: String,
}

pub fn run(args: StartArgs, global: &Global) -> i32 {
    let root = match state::root_dir(global.root.as_deref()) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    if let Err(e) = state::validate_id(&args.id) {
        return fail(&e);
    }
    let entry = match state::open(&root, &args.id) {
        Ok(e) => e,
        Err(e) => return fail(&e),
    };
    let mut st = match entry.load() {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    if st.status != "created" {
        return fail(&format!(
            "container {} is {}, not created: only a created container can be started",
            args.id, st.status
        ));
    }
    let conn = match control::connect(&entry.path.join("ctl.sock")) {
        Ok(c) => c,
        Err(e) => {
            return fail(&format!(
                "container {} cannot be started (its supervisor is gone?): {e}",
                args.id
            ))
        }
    };
    let hooks = crate::sandbox::hooks::from_bundle(&st.bundle);
    if let Err(e) = crate::sandbox::hooks::run(HookKind::StartContainer, hooks.as_ref(), &st) {
        return fail(&e);
    }
    match control::send_start(&conn) {
        Ok(_) => {
            st.status = "running".into();
            let _ = entry.mark_started();
            // A failing poststart hook fails start and stops the container, as with runc.
            match crate::sandbox::hooks::run(HookKind::Poststart, hooks.as_ref(), &st) {
                Ok(()) => 0,
                Err(e) => {
                    drop(entry);
                    if let Ok(c) = state::lifecycle::load(&root, &args.id) {
                        let _ = state::lifecycle::kill_sandbox(&c);
                    }
                    fail(&e)
                }
            }
        }
        Err(e) => {
            crate::sys::log::fatal(&e.to_string());
            match e {
                control::ControlError::Start(p) => p.exit_code(),
                _ => 125,
            }
        }
    }
}
