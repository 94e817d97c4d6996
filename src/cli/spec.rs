//! `nsboot spec`: write runc's example config.json into a bundle, rootless when not root.
//!
//! `--rootless` is the global flag (`nsboot spec --rootless` works once the global flag
//! accepts a bare form; a subcommand flag of the same name would clash with it in clap).

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::cli::{Global, Rootless};
use crate::spec::{self, SpecError};

#[derive(Debug, clap::Args)]
pub struct SpecArgs {
    /// The bundle directory to write config.json into.
    #[arg(long, short = 'b', default_value = ".")]
    pub bundle: PathBuf,
}

/// `nsboot [--rootless[=true|false]] spec`: `auto` means rootless when not root, as runc.
pub fn run_with(args: SpecArgs, global: &Global) -> i32 {
    let rootless = match global.rootless {
        Rootless::True => true,
        Rootless::False => false,
        Rootless::Auto => !nix::unistd::geteuid().is_root(),
    };
    finish(write_spec(&args.bundle, rootless))
}

fn finish(result: Result<(), SpecError>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("nsboot: {e}");
            125
        }
    }
}

/// Writes the example spec as `bundle/config.json`, never over an existing one (runc's rule:
/// a config.json is usually hand-edited, and losing it silently is worse than an error).
pub fn write_spec(bundle: &Path, rootless: bool) -> Result<(), SpecError> {
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();
    let mut generated = spec::generate(rootless, uid, gid);
    // Where a seccomp filter (a container's profile) refuses sethostname even in the sandbox's
    // own UTS namespace, a hostname would only make `run` fail.
    let caller = crate::idmap::Caller::current();
    let refused = match crate::check::hostname_allowed(&caller) {
        Some(allowed) => !allowed,
        None => crate::sandbox::hint::in_container(),
    };
    if refused {
        generated.set_hostname(None);
    }
    let text = spec::to_json(&generated);
    let path = bundle.join("config.json");
    // create_new (O_EXCL) rather than a check then a write: no window for a race.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => SpecError::Exists {
                dir: bundle.to_path_buf(),
            },
            _ => SpecError::Write {
                path: path.clone(),
                errno: e.into(),
            },
        })?;
    file.write_all(text.as_bytes())
        .map_err(|e| SpecError::Write {
            path,
            errno: e.into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_refuses_to_overwrite_config_json() {
        let dir = tempfile::tempdir().unwrap();
        write_spec(dir.path(), true).unwrap();
        let first = std::fs::read(dir.path().join("config.json")).unwrap();
        let e = write_spec(dir.path(), false).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "config.json already exists in {}: remove it first",
                dir.path().display()
            )
        );
        assert_eq!(
            std::fs::read(dir.path().join("config.json")).unwrap(),
            first,
            "left untouched"
        );
    }

    #[test]
    fn written_spec_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        write_spec(dir.path(), true).unwrap();
        spec::load(dir.path()).unwrap();
    }

    #[test]
    fn missing_bundle_is_an_error() {
        let e = write_spec(Path::new("/nonexistent/bundle"), true)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("writing /nonexistent/bundle/config.json: "),
            "{e}"
        );
    }
}
