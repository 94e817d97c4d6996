//! `nsboot setup apparmor`: as root, install and load an AppArmor profile that lets this
//! binary create user namespaces where AppArmor restricts them (Ubuntu 23.10 and later,
//! kernel.apparmor_restrict_unprivileged_userns=1). The profile is Ubuntu's own shape for such
//! programs (bwrap, chrome): unconfined, plus the `userns,` rule.

use std::path::{Path, PathBuf};

use crate::sandbox::hint;

// Set up the host for nsboot.
#[derive(Debug, clap::Args)]
pub struct SetupArgs {
    #[command(subcommand)]
    pub what: SetupWhat,
}

#[derive(Debug, clap::Subcommand)]
pub enum SetupWhat {
    /// Install and load an AppArmor profile allowing this binary user namespaces (as root).
    Apparmor,
}

const PROFILE_DIR: &str = "/etc/apparmor.d";
const SECURITYFS: &str = "/sys/kernel/security/apparmor";

/// The profile's name and file name: the binary's path, with dots for slashes, as Ubuntu
/// names profiles after the programs they confine (usr.local.bin.nsboot).
pub fn profile_name(exe: &Path) -> String {
    exe.to_string_lossy()
        .trim_start_matches('/')
        .replace('/', ".")
}

/// An AppArmor profile that lets `exe` create user namespaces and confines it no further.
pub fn profile(exe: &Path) -> String {
    let path = exe.to_string_lossy().replace('"', "");
    format!(
        "# AppArmor profile for nsboot: user namespaces allowed, otherwise unconfined.\n\
         # Written by `nsboot check --apparmor-profile`; install with `sudo nsboot setup apparmor`.\n\
         abi <abi/4.0>,\n\
         include <tunables/global>\n\
         \n\
         profile {name} \"{path}\" flags=(unconfined) {{\n  userns,\n\n  include if exists <local/{name}>\n}}\n",
        name = profile_name(exe),
    )
}

#[derive(Debug, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum SetupError {
    #[error("setup apparmor: installing a profile needs root: run: sudo {exe} setup apparmor")]
    NotRoot { exe: String },
    #[error("setup apparmor: AppArmor is not enabled on this kernel ({SECURITYFS} is missing): nothing restricts nsboot's user namespaces here")]
    NoAppArmor,
    #[error("setup apparmor: apparmor_parser is not installed: run: apt-get install apparmor")]
    NoParser,
    #[error("setup apparmor: writing {}: {errno}", path.display())]
    Write {
        path: PathBuf,
        errno: crate::sys::Errno,
    },
    #[error("setup apparmor: apparmor_parser -r {} failed: {stderr}", path.display())]
    Load { path: PathBuf, stderr: String },
}

fn install() -> Result<PathBuf, SetupError> {
    let exe = hint::exe();
    if !nix::unistd::geteuid().is_root() {
        return Err(SetupError::NotRoot {
            exe: exe.display().to_string(),
        });
    }
    if !Path::new(SECURITYFS).is_dir() {
        return Err(SetupError::NoAppArmor);
    }
    // The distribution's place first, then PATH (a parser installed elsewhere).
    let on_path = std::env::var_os("PATH").map(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("apparmor_parser"))
            .collect::<Vec<_>>()
    });
    let parser = ["/usr/sbin/apparmor_parser", "/sbin/apparmor_parser"]
        .iter()
        .map(std::path::PathBuf::from)
        .chain(on_path.into_iter().flatten())
        .find(|p| p.is_file())
        .ok_or(SetupError::NoParser)?;
    let path = Path::new(PROFILE_DIR).join(profile_name(&exe));
    let write = |errno: std::io::Error| SetupError::Write {
        path: path.clone(),
        errno: errno.into(),
    };
    std::fs::create_dir_all(PROFILE_DIR).map_err(write)?;
    std::fs::write(&path, profile(&exe)).map_err(write)?;
    let out = std::process::Command::new(parser)
        .arg("-r")
        .arg(&path)
        .env_clear()
        .output()
        .map_err(write)?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(SetupError::Load {
            path,
            stderr: format!("{} ({})", stderr.trim().replace('\n', "; "), out.status),
        });
    }
    Ok(path)
}

pub fn run(args: SetupArgs) -> i32 {
    match args.what {
        SetupWhat::Apparmor => match install() {
            Ok(path) => {
                println!(
                    "installed and loaded {} for {}",
                    path.display(),
                    hint::exe().display()
                );
                0
            }
            Err(e) => crate::sys::log::fail(&e),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_allows_userns_for_the_binary_path() {
        let p = profile(Path::new("/usr/local/bin/nsboot"));
        assert!(p.contains(
            "profile usr.local.bin.nsboot \"/usr/local/bin/nsboot\" flags=(unconfined) {\n  userns,\n"
        ));
        assert!(p.contains("include <tunables/global>"));
    }
}
