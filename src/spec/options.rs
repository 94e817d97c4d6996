//! The value forms of `nsboot do`'s flags: `--volume SRC[:DST][:ro]`, `--uid-map "C H S,..."`,
//! `--user UID[:GID]`. Pure parsing; whether paths exist is checked when the spec is built.

use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::LinuxIdMapping;

use super::generate::id_map;
use super::SpecError;

/// A host path bound into the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// Absolute host path.
    pub src: PathBuf,
    /// Absolute path inside the sandbox.
    pub dst: PathBuf,
    pub readonly: bool,
}

/// `SRC[:DST][:ro|:rw]`; a relative SRC is taken from `cwd`; DST defaults to SRC. Paths that
/// contain `:` cannot be given this way.
pub fn parse_volume(value: &str, cwd: &Path) -> Result<Volume, SpecError> {
    let err = |why: &str| SpecError::option("--volume", value, why);
    let parts: Vec<&str> = value.split(':').collect();
    let (src, dst, mode) = match parts.as_slice() {
        [src] => (*src, None, None),
        [src, m @ ("ro" | "rw")] => (*src, None, Some(*m)),
        [src, dst] => (*src, Some(*dst), None),
        [src, dst, m] => (*src, Some(*dst), Some(*m)),
        _ => return Err(err("too many ':': write SRC[:DST][:ro]")),
    };
    if src.is_empty() {
        return Err(err("empty SRC: write SRC[:DST][:ro]"));
    }
    let readonly = match mode {
        None | Some("rw") => false,
        Some("ro") => true,
        Some(other) => return Err(err(&format!("unknown mode {other:?}: use ro or rw"))),
    };
    let src = clean(&cwd.join(src));
    let dst = match dst {
        None => src.clone(),
        Some(d) if d.starts_with('/') => clean(Path::new(d)),
        Some(d) => {
            return Err(err(&format!(
                "DST {d:?} is not absolute: give the path inside the sandbox from /"
            )))
        }
    };
    if dst.components().any(|c| c == Component::ParentDir) {
        return Err(err("DST has a .. component: write the path without .."));
    }
    Ok(Volume { src, dst, readonly })
}

/// `path` with `.` components and repeated or trailing slashes removed (not resolved).
pub(super) fn clean(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| *c != Component::CurDir)
        .collect()
}

/// `"C H S[,C H S...]"`: container id, host id, size, as in /proc/PID/uid_map.
pub fn parse_id_map(flag: &str, value: &str) -> Result<Vec<LinuxIdMapping>, SpecError> {
    let err = || {
        SpecError::option(
            flag,
            &format!("{value:?}"),
            "each range is CONTAINER HOST SIZE, ranges separated by commas: e.g. \"0 1000 1,1 100000 65536\"",
        )
    };
    value
        .split(',')
        .map(|range| {
            let nums: Vec<u32> = range
                .split_whitespace()
                .map(str::parse)
                .collect::<Result<_, _>>()
                .map_err(|_| err())?;
            match nums.as_slice() {
                [c, h, s] => Ok(id_map(*c, *h, *s)),
                _ => Err(err()),
            }
        })
        .collect()
}

/// `UID[:GID]`, numeric (the sandbox's root may not be the host's, so names are not looked
/// up). Without GID the caller picks the default group.
pub fn parse_user(value: &str) -> Result<(u32, Option<u32>), SpecError> {
    let err = || SpecError::option("--user", value, "use numeric UID[:GID], e.g. 1000:1000");
    let (uid, gid) = match value.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (value, None),
    };
    let uid = uid.parse().map_err(|_| err())?;
    let gid = gid.map(str::parse).transpose().map_err(|_| err())?;
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vol(s: &str) -> Result<Volume, SpecError> {
        parse_volume(s, Path::new("/home/u/work"))
    }

    #[test]
    fn volume_forms() {
        let v = vol("/data").unwrap();
        assert_eq!(
            (v.src.as_path(), v.dst.as_path(), v.readonly),
            (Path::new("/data"), Path::new("/data"), false)
        );
        let v = vol("/data:ro").unwrap();
        assert_eq!((v.dst.as_path(), v.readonly), (Path::new("/data"), true));
        let v = vol("/data:/mnt/d").unwrap();
        assert_eq!(
            (v.src.as_path(), v.dst.as_path(), v.readonly),
            (Path::new("/data"), Path::new("/mnt/d"), false)
        );
        let v = vol("/data:/mnt/d:ro").unwrap();
        assert!(v.readonly);
        let v = vol("/data:/mnt/d:rw").unwrap();
        assert!(!v.readonly);
    }

    #[test]
    fn volume_relative_source_is_taken_from_cwd() {
        let v = vol("./sub/dir/").unwrap();
        assert_eq!(v.src, Path::new("/home/u/work/sub/dir"));
        assert_eq!(v.dst, v.src);
    }

    #[test]
    fn volume_errors_name_the_flag() {
        for bad in ["", ":/x", "/a:rel", "/a:/b:rx", "/a:/b:ro:x", "/a:/b/../c"] {
            let e = vol(bad).unwrap_err().to_string();
            assert!(e.starts_with("--volume "), "{bad:?}: {e}");
        }
    }

    #[test]
    fn id_map_forms() {
        let m = parse_id_map("--uid-map", "0 1000 1").unwrap();
        assert_eq!(m, vec![id_map(0, 1000, 1)]);
        let m = parse_id_map("--uid-map", "0 1000 1, 1 100000 65536").unwrap();
        assert_eq!(m, vec![id_map(0, 1000, 1), id_map(1, 100000, 65536)]);
        for bad in ["", "0 1000", "0 1000 1 2", "a b c", "0 1000 1,", "-1 0 1"] {
            let e = parse_id_map("--gid-map", bad).unwrap_err().to_string();
            assert!(
                e.starts_with("--gid-map ") && e.contains("CONTAINER HOST SIZE"),
                "{bad:?}: {e}"
            );
        }
    }

    #[test]
    fn user_forms() {
        assert_eq!(parse_user("0").unwrap(), (0, None));
        assert_eq!(parse_user("1000:100").unwrap(), (1000, Some(100)));
        for bad in ["", "root", "1000:", ":5", "1:2:3", "-1"] {
            assert!(parse_user(bad).is_err(), "{bad:?}");
        }
    }
}
