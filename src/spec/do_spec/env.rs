//! The environment of `nsboot do`'s command: a few of the caller's variables (all with
//! `--env-all`), then `--env`; a PATH that can find the command.

use super::DoOptions;
use crate::spec::generate::DEFAULT_PATH;
use crate::spec::SpecError;

/// Variables passed from the caller's environment without `--env-all`.
const PASSED_ENV: &[&str] = &["PATH", "HOME", "TERM", "LANG", "USER"];

pub(super) fn environment(opts: &DoOptions) -> Result<Vec<String>, SpecError> {
    let mut env: Vec<(String, String)> = opts
        .host_env
        .iter()
        .filter(|(k, _)| opts.env_all || PASSED_ENV.contains(&k.as_str()) || k.starts_with("LC_"))
        .cloned()
        .collect();
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.insert(0, ("PATH".into(), DEFAULT_PATH.into()));
    }
    for e in &opts.env {
        let (key, value) = match e.split_once('=') {
            Some((k, v)) => (k, v.to_string()),
            None => match opts.host_env.iter().find(|(k, _)| k == e) {
                Some((_, v)) => (e.as_str(), v.clone()),
                None => continue, // `--env K` for an unset K passes nothing, as docker does
            },
        };
        if key.is_empty() || key.contains('\0') || value.contains('\0') {
            return Err(SpecError::option(
                "--env",
                e,
                "write NAME=value (NAME not empty, no NUL bytes)",
            ));
        }
        match env.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => env.push((key.to_string(), value)),
        }
    }
    let program = &opts.command[0];
    let path_empty = env.iter().any(|(k, v)| k == "PATH" && v.is_empty());
    if path_empty && !program.contains('/') {
        return Err(SpecError::Invalid {
            file: None,
            json_path: String::new(),
            msg: format!("PATH is empty, so {program:?} cannot be found: give its full path, or set PATH (export PATH={DEFAULT_PATH})"),
        });
    }
    Ok(env.into_iter().map(|(k, v)| format!("{k}={v}")).collect())
}
