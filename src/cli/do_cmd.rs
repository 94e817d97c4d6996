//! `nsboot do [OPTIONS] [--] CMD [ARGS...]`: run a command in a sandbox over the host's own
//! root (read-only), with the working directory writable. The flags become a `DoOptions` and
//! `spec::do_spec` builds the spec in memory; then it runs like any bundle.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxIdMapping, LinuxIdMappingBuilder};
use serde::{Deserialize, Serialize};

use crate::cli::Global;
use crate::idmap::{self, IdRange, IdmapError};
use crate::spec::{self, DoOptions, Network, Spec, SpecError};
use crate::sys::Errno;

/// The uid and the gid maps, as config.json holds them.
type OciMaps = (Vec<LinuxIdMapping>, Vec<LinuxIdMapping>);

/// What `do` refuses before any sandbox exists, in the terms of its flags.
#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
pub enum DoError {
    #[error("the current directory: {0}: cd to one that exists")]
    Cwd(Errno),
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Idmap(#[from] IdmapError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NetworkArg {
    /// A network namespace of its own (loopback only).
    None,
    /// The host's network.
    Host,
}

#[derive(Debug, clap::Args)]
pub struct DoArgs {
    /// Show DIR as the sandbox's root instead of the host's / (read-only either way).
    #[arg(long, value_name = "DIR")]
    pub rootfs: Option<PathBuf>,
    /// Bind DIR read-write at the same path and start there (default: the current directory;
    /// / itself is never bound read-write).
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// Bind the working directory read-only.
    #[arg(long = "ro-cwd")]
    pub ro_cwd: bool,
    /// Bind a host path into the sandbox (repeatable; DST defaults to SRC).
    #[arg(long, short = 'v', value_name = "SRC[:DST][:ro]")]
    pub volume: Vec<String>,
    /// Mount an empty tmpfs at DST (repeatable).
    #[arg(long, value_name = "DST")]
    pub tmpfs: Vec<PathBuf>,
    /// Make the root writable through an overlay whose changes are discarded.
    #[arg(long)]
    pub overlay: bool,
    /// The sandbox's network.
    #[arg(long, value_enum, default_value_t = NetworkArg::None)]
    pub network: NetworkArg,
    /// Map your subordinate ids (/etc/subuid, /etc/subgid) as 1.. through newuidmap/newgidmap,
    /// for commands that need several ids (apt, chown). Default: only your own id, as 0.
    #[arg(long)]
    pub subids: bool,
    /// User id mapping, as in /proc/PID/uid_map (default: 0 -> you; see --subids).
    #[arg(long = "uid-map", value_name = "C H S[,C H S...]")]
    pub uid_map: Option<String>,
    /// Group id mapping, as in /proc/PID/gid_map.
    #[arg(long = "gid-map", value_name = "C H S[,C H S...]")]
    pub gid_map: Option<String>,
    /// Run as UID[:GID] inside the sandbox (default 0, which is you outside).
    #[arg(long, short = 'u', value_name = "UID[:GID]")]
    pub user: Option<String>,
    /// Set an environment variable; a bare NAME passes the caller's value (repeatable).
    #[arg(long, short = 'e', value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// Pass the caller's whole environment (default: PATH, HOME, TERM, LANG, LC_*, USER).
    #[arg(long = "env-all")]
    pub env_all: bool,
    /// The container id (default do-PID).
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

pub fn run(args: DoArgs, global: &Global) -> i32 {
    let id = args
        .id
        .clone()
        .unwrap_or_else(|| format!("do-{}", std::process::id()));
    let built = spec::validate_id(&id)
        .map_err(DoError::from)
        .and_then(|()| build(&args));
    let (spec, bundle_dir) = match built {
        Ok(b) => b,
        Err(e) => {
            eprintln!("nsboot: {e}");
            return 125;
        }
    };
    crate::sandbox::launch::run(&global.launch_context(), &id, spec, &bundle_dir, None, true)
}

/// The spec and the bundle directory (the current directory: where `do` was started).
fn build(args: &DoArgs) -> Result<(Spec, PathBuf), DoError> {
    let here = std::env::current_dir().map_err(|e| DoError::Cwd(e.into()))?;
    let opts = options(args, &here)?;
    Ok((spec::do_spec(&opts)?, here))
}

/// Flags -> `DoOptions`, with what comes from the caller's process: cwd, env, tty.
pub fn options(args: &DoArgs, here: &Path) -> Result<DoOptions, DoError> {
    let id_map = |flag: &str, v: &Option<String>| {
        v.as_deref()
            .map(|v| spec::parse_id_map(flag, v))
            .transpose()
    };
    Ok(DoOptions {
        command: args.command.clone(),
        rootfs: args
            .rootfs
            .as_ref()
            .map_or_else(|| PathBuf::from("/"), |r| here.join(r)),
        cwd: args
            .cwd
            .as_ref()
            .map_or_else(|| here.to_path_buf(), |c| here.join(c)),
        cwd_flag: args.cwd.is_some(),
        ro_cwd: args.ro_cwd,
        volumes: args
            .volume
            .iter()
            .map(|v| spec::parse_volume(v, here))
            .collect::<Result<_, _>>()?,
        tmpfs: args.tmpfs.clone(),
        overlay: args.overlay,
        network: match args.network {
            NetworkArg::None => Network::None,
            NetworkArg::Host => Network::Host,
        },
        own_map: own_map(args)?,
        subids: args.subids,
        uid_map: id_map("--uid-map", &args.uid_map)?.unwrap_or_default(),
        gid_map: id_map("--gid-map", &args.gid_map)?.unwrap_or_default(),
        user: args.user.as_deref().map(spec::parse_user).transpose()?,
        env: args.env.clone(),
        env_all: args.env_all,
        host_env: std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect(),
        terminal: nix::unistd::isatty(0).unwrap_or(false),
    })
}

/// The maps `do` writes for ids its flags leave open: the caller alone, or with --subids its
/// subordinate ranges too (`idmap::for_do`, as `check` reports it). None as root.
fn own_map(args: &DoArgs) -> Result<Option<OciMaps>, DoError> {
    if args.uid_map.is_some() && args.gid_map.is_some() && !args.subids {
        return Ok(None);
    }
    let oci = |r: Vec<IdRange>| -> Vec<LinuxIdMapping> {
        r.into_iter()
            .filter_map(|r| {
                LinuxIdMappingBuilder::default()
                    .container_id(r.container)
                    .host_id(r.host)
                    .size(r.size)
                    .build()
                    .ok()
            })
            .collect()
    };
    let own = idmap::for_do(args.subids, &idmap::Caller::current())?;
    Ok(own.map(|(u, g)| (oci(u), oci(g))))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn parse(argv: &[&str]) -> DoArgs {
        let cli = Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        match cli.command {
            Command::Do(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn command_flags_after_the_command_belong_to_it() {
        let a = parse(&[
            "nsboot",
            "do",
            "-v",
            "/a:/b:ro",
            "--network",
            "host",
            "ls",
            "-l",
            "--color",
        ]);
        assert_eq!(a.command, ["ls", "-l", "--color"]);
        assert_eq!(a.volume, ["/a:/b:ro"]);
        assert_eq!(a.network, NetworkArg::Host);
        let a = parse(&[
            "nsboot",
            "--debug",
            "do",
            "--user",
            "1000:1000",
            "-e",
            "A=1",
            "--",
            "env",
            "-i",
        ]);
        assert_eq!(a.command, ["env", "-i"]);
        assert_eq!(a.user.as_deref(), Some("1000:1000"));
        assert!(
            Cli::try_parse_from(["nsboot", "do"]).is_err(),
            "a command is required"
        );
    }

    #[test]
    fn options_resolve_relative_paths_from_here() {
        let a = parse(&[
            "nsboot",
            "do",
            "--cwd",
            "sub",
            "--rootfs",
            "r",
            "-v",
            "data",
            "--uid-map",
            "0 1000 1",
            "true",
        ]);
        let o = options(&a, Path::new("/home/u")).unwrap();
        assert_eq!(o.cwd, Path::new("/home/u/sub"));
        assert_eq!(o.rootfs, Path::new("/home/u/r"));
        assert_eq!(o.volumes[0].src, Path::new("/home/u/data"));
        assert_eq!(o.uid_map.len(), 1);
        let a = parse(&["nsboot", "do", "--user", "bob", "true"]);
        assert!(options(&a, Path::new("/"))
            .unwrap_err()
            .to_string()
            .starts_with("--user bob: "));
    }
}
