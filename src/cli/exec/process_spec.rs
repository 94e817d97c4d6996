//! The process `exec` runs: the --process file as given, or (runc's rule) the container's own
//! process with ARGS and the flags laid over it.

use oci_spec::runtime::Process;
use serde_json::{json, Value};

use super::ExecArgs;
use crate::spec::Spec;

pub fn build(args: &ExecArgs, spec: &Spec) -> Result<Process, String> {
    let mut p = match &args.process {
        Some(path) => {
            let text = std::fs::read(path)
                .map_err(|e| format!("reading --process {}: {e}", path.display()))?;
            serde_json::from_slice::<Value>(&text)
                .map_err(|e| format!("--process {}: not an OCI process: {e}", path.display()))?
        }
        None => {
            if args.args.is_empty() {
                return Err(
                    "nothing to run: give the command after the container id, or --process FILE"
                        .into(),
                );
            }
            let base = spec
                .process()
                .as_ref()
                .map(|p| serde_json::to_value(p).unwrap_or_default());
            let mut p = base.unwrap_or_else(|| json!({"user": {"uid": 0, "gid": 0}, "cwd": "/"}));
            p["args"] = json!(args.args);
            // The container's terminal setting is its own: a new process has one with --tty.
            p["terminal"] = json!(args.tty);
            // Only the container's own process reads a console size; a new one gets its own.
            if let Some(o) = p.as_object_mut() {
                o.remove("consoleSize");
            }
            p
        }
    };
    overlay(&mut p, args)?;
    crate::spec::check_process(&p).map_err(|e| e.to_string())?;
    serde_json::from_value(crate::spec::carried_process(&p))
        .map_err(|e| format!("the process to exec is not a valid OCI process: {e}"))
}

/// The flags override whatever the base process says.
fn overlay(p: &mut Value, args: &ExecArgs) -> Result<(), String> {
    if args.tty {
        p["terminal"] = json!(true);
    }
    if let Some(cwd) = &args.cwd {
        p["cwd"] = json!(cwd);
    }
    if args.no_new_privs {
        p["noNewPrivileges"] = json!(true);
    }
    if let Some(user) = &args.user {
        let (uid, gid) = parse_user(user)?;
        p["user"]["uid"] = json!(uid);
        if let Some(g) = gid {
            p["user"]["gid"] = json!(g);
        }
    }
    if !args.env.is_empty() {
        let mut env: Vec<String> = p["env"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        for kv in &args.env {
            let key = kv.split_once('=').map(|(k, _)| k).unwrap_or(kv);
            env.retain(|e| e.split_once('=').map(|(k, _)| k).unwrap_or(e) != key);
            env.push(kv.clone());
        }
        p["env"] = json!(env);
    }
    for cap in &args.caps {
        let name = cap.to_ascii_uppercase();
        let name = if name.starts_with("CAP_") {
            name
        } else {
            format!("CAP_{name}")
        };
        crate::process::caps::parse(&name).map_err(|e| format!("--cap {cap}: {e}"))?;
        for set in ["bounding", "effective", "permitted"] {
            let list = &mut p["capabilities"][set];
            if !list.is_array() {
                *list = json!([]);
            }
            let arr = list.as_array_mut().expect("just made an array");
            if !arr.iter().any(|v| v == &json!(name)) {
                arr.push(json!(name));
            }
        }
    }
    Ok(())
}

/// "UID" or "UID:GID", numbers only (names would need the container's /etc/passwd).
fn parse_user(s: &str) -> Result<(u32, Option<u32>), String> {
    let bad = || format!("--user {s:?}: use UID or UID:GID (numbers)");
    let (u, g) = match s.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (s, None),
    };
    let uid = u.parse().map_err(|_| bad())?;
    let gid = g.map(|g| g.parse().map_err(|_| bad())).transpose()?;
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: ExecArgs,
    }

    fn args(v: &[&str]) -> ExecArgs {
        T::parse_from(std::iter::once("exec").chain(v.iter().copied())).a
    }

    fn spec() -> Spec {
        serde_json::from_value(json!({
            "ociVersion": "1.0.2",
            "process": {"user": {"uid": 0, "gid": 0}, "cwd": "/", "args": ["sh"],
                        "env": ["PATH=/bin", "A=1"], "terminal": true,
                        "capabilities": {"bounding": ["CAP_KILL"]}},
            "root": {"path": "rootfs"}
        }))
        .unwrap()
    }

    #[test]
    fn args_and_flags_override_the_containers_process() {
        let a = args(&[
            "-e", "A=2", "-u", "1000:100", "--cwd", "/tmp", "--cap", "net_raw", "c1", "ls", "-l",
        ]);
        let p = build(&a, &spec()).unwrap();
        assert_eq!(
            p.args().as_deref(),
            Some(&["ls".to_string(), "-l".to_string()][..])
        );
        assert_eq!(
            p.env().as_deref(),
            Some(&["PATH=/bin".to_string(), "A=2".to_string()][..])
        );
        assert_eq!((p.user().uid(), p.user().gid()), (1000, 100));
        assert_eq!(p.cwd().to_str(), Some("/tmp"));
        assert_eq!(p.terminal(), Some(false));
        let v = serde_json::to_value(&p).unwrap();
        assert!(v["capabilities"]["bounding"]
            .as_array()
            .unwrap()
            .contains(&json!("CAP_NET_RAW")));
        assert!(v["capabilities"]["effective"]
            .as_array()
            .unwrap()
            .contains(&json!("CAP_NET_RAW")));
    }

    #[test]
    fn no_command_and_bad_users_are_refused() {
        assert!(build(&args(&["c1"]), &spec()).is_err());
        assert!(build(&args(&["-u", "bob", "c1", "ls"]), &spec()).is_err());
        assert!(build(&args(&["--cap", "CAP_NOPE", "c1", "ls"]), &spec()).is_err());
    }
}
