//! `nsboot check [--json]`: diagnose whether this host can run sandboxes (see `crate::check`).
//! Exit status 0 when `nsboot run` can work here (no `fail` line), 1 otherwise.

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Print {ready, items: [{name, status, detail, fix}]} as JSON instead of one line per item.
    #[arg(long)]
    pub json: bool,
    /// Print an AppArmor profile that allows this binary user namespaces, and exit
    /// (`sudo nsboot setup apparmor` installs it).
    #[arg(long = "apparmor-profile")]
    pub apparmor_profile: bool,
}

pub fn run(args: CheckArgs, global: &crate::cli::Global) -> i32 {
    if args.apparmor_profile {
        use std::io::Write;
        let profile = crate::cli::setup::profile(&crate::sandbox::hint::exe());
        let _ = std::io::stdout().lock().write_all(profile.as_bytes());
        return 0;
    }
    if let Some(root) = &global.root {
        let _ = crate::check::STATE_ROOT.set(root.clone());
    }
    crate::check::run(args.json)
}
