//! The cache of compiled seccomp programs: `<state root>/.seccomp/<key>.bpf`, so that a launch
//! with a profile seen before (`nsboot do`'s default one, above all) loads a ready program
//! instead of running libseccomp's compiler, which is most of the application's start-up.
//!
//! The lookup runs in the caller, before the sandbox is spawned: the application cannot see the
//! state root. The key covers everything the program depends on: the profile, nsboot,
//! libseccomp (its syscall tables and code generator), the native architecture and the kernel.
//! Profiles with NOTIFY rules are never cached (their load also makes the listener fd).
//!
//! A file is `MAGIC`, a 128-bit FNV-1a sum of the key and the program, then the program. One
//! that is not ours (owner, mode, type), has the wrong shape or sum (a torn write, a bit flip) or
//! is too long is ignored and replaced. The cache never fails a launch: any trouble is a debug
//! line, and the application compiles the profile itself, as it does when there is no cache.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxSeccomp;

use super::bpf::{self, Program, ProgramError, INSN_BYTES, MAX_INSNS};

/// Why the cache gave no program (never a launch's failure: a debug line, then the
/// application compiles the profile).
#[derive(Debug, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum CacheError {
    #[error("libseccomp's version: {0}")]
    Version(String),
    #[error("uname: {0}")]
    Uname(crate::sys::Errno),
    #[error("serialising the profile: {0}")]
    Serialise(String),
    #[error("{0} bytes is too long for a BPF program")]
    TooLong(usize),
    #[error("not an nsboot BPF file (bad header)")]
    BadHeader,
    #[error("checksum mismatch (a torn or corrupted file)")]
    Checksum,
    #[error(transparent)]
    Program(#[from] ProgramError),
    #[error("not a regular file")]
    NotAFile,
    #[error("owned by uid {uid}, not by this user ({euid})")]
    Owner { uid: u32, euid: u32 },
    #[error("mode {0:o} lets others write it")]
    Mode(u32),
    #[error("{0}")]
    Io(String),
    #[error("{0}")]
    Compile(String),
    #[error("the profile has NOTIFY rules")]
    Notify,
}

/// The cache directory's name in the state root: a dot-name, which `state::list` skips and no
/// container id can take over (its state directory would need a lock file).
pub const DIR: &str = ".seccomp";
const MAGIC: [u8; 8] = *b"nsbpf\0\0\x01";
const HEADER: usize = MAGIC.len() + 16;
const MAX_FILE: usize = HEADER + MAX_INSNS * INSN_BYTES;

/// 128-bit FNV-1a: small, and stable across Rust versions (unlike std's DefaultHasher).
#[derive(Clone, Copy)]
pub struct Fnv128(u128);

impl Fnv128 {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013b;

    pub fn new() -> Fnv128 {
        Fnv128(Self::OFFSET)
    }
    pub fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u128::from(*b);
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
    }
    /// A length-prefixed part, so that no two lists of parts hash the same bytes.
    pub fn part(&mut self, bytes: &[u8]) {
        self.write(&(bytes.len() as u64).to_le_bytes());
        self.write(bytes);
    }
    pub fn finish(self) -> u128 {
        self.0
    }
}

impl Default for Fnv128 {
    fn default() -> Self {
        Self::new()
    }
}

/// What a compiled program depends on besides the profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Env {
    pub nsboot: String,
    pub libseccomp: (u32, u32, u32),
    pub arch: String,
    pub kernel: String,
}

impl Env {
    /// Worked out once per process: the application, a clone of the caller, reuses the
    /// caller's when it checks that the program it was handed is its profile's.
    pub fn current() -> Result<&'static Env, CacheError> {
        static CURRENT: std::sync::OnceLock<Env> = std::sync::OnceLock::new();
        if let Some(env) = CURRENT.get() {
            return Ok(env);
        }
        let env = Env::probe()?;
        Ok(CURRENT.get_or_init(|| env))
    }

    fn probe() -> Result<Env, CacheError> {
        let v =
            libseccomp::ScmpVersion::current().map_err(|e| CacheError::Version(e.to_string()))?;
        let kernel = nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .map_err(|e| CacheError::Uname(e.into()))?;
        Ok(Env {
            nsboot: env!("CARGO_PKG_VERSION").into(),
            libseccomp: (v.major, v.minor, v.micro),
            arch: format!("{:?}", libseccomp::ScmpArch::native()),
            kernel,
        })
    }
}

/// The cache key of a profile (its canonical JSON) in an environment.
pub fn key_of(profile_json: &[u8], env: &Env) -> u128 {
    let mut h = Fnv128::new();
    h.part(b"nsboot seccomp program 2"); // 2: binary-tree filters
    h.part(env.nsboot.as_bytes());
    let (major, minor, micro) = env.libseccomp;
    h.part(format!("{major}.{minor}.{micro}").as_bytes());
    h.part(env.arch.as_bytes());
    h.part(env.kernel.as_bytes());
    h.part(profile_json);
    h.finish()
}

/// The cache key of `spec` here and now.
pub fn key(spec: &LinuxSeccomp) -> Result<u128, CacheError> {
    let json = serde_json::to_vec(spec).map_err(|e| CacheError::Serialise(e.to_string()))?;
    Ok(key_of(&json, Env::current()?))
}

/// The file's checksum: the key and the program, so that a file renamed to another key is
/// as invalid as a torn one.
fn sum(key: u128, program: &[u8]) -> u128 {
    let mut h = Fnv128::new();
    h.write(&key.to_le_bytes());
    h.write(program);
    h.finish()
}

/// A cache file's bytes.
pub fn encode(program: &Program) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + program.bytes().len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&sum(program.key(), program.bytes()).to_le_bytes());
    out.extend_from_slice(program.bytes());
    out
}

/// A cache file's program, if it is one for `key`.
pub fn decode(bytes: &[u8], key: u128) -> Result<Program, CacheError> {
    if bytes.len() > MAX_FILE {
        return Err(CacheError::TooLong(bytes.len()));
    }
    let (head, body) = bytes.split_at(bytes.len().min(HEADER));
    if head.len() < HEADER || head[..MAGIC.len()] != MAGIC {
        return Err(CacheError::BadHeader);
    }
    let mut want = [0u8; 16];
    want.copy_from_slice(&head[MAGIC.len()..]);
    if u128::from_le_bytes(want) != sum(key, body) {
        return Err(CacheError::Checksum);
    }
    Ok(Program::new(key, body.to_vec())?)
}

/// Only our own regular files, writable by nobody else, are trusted to hold a filter.
pub fn check_owner(is_file: bool, uid: u32, mode: u32, euid: u32) -> Result<(), CacheError> {
    if !is_file {
        return Err(CacheError::NotAFile);
    }
    if uid != euid {
        return Err(CacheError::Owner { uid, euid });
    }
    if mode & 0o022 != 0 {
        return Err(CacheError::Mode(mode & 0o7777));
    }
    Ok(())
}

/// Why a lookup found nothing usable.
#[derive(Debug, PartialEq, Eq)]
pub enum Miss {
    Absent,
    Invalid(CacheError),
}

/// Reads and validates the cache file at `path` for `key`.
pub fn read(path: &Path, key: u128) -> Result<Program, Miss> {
    // O_NOFOLLOW: not through a symlink; O_NONBLOCK: a FIFO planted here cannot block us.
    let flags = libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC;
    let file = match OpenOptions::new().read(true).custom_flags(flags).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Miss::Absent),
        Err(e) => return Err(Miss::Invalid(CacheError::Io(e.to_string()))),
    };
    let meta = file
        .metadata()
        .map_err(|e| Miss::Invalid(CacheError::Io(e.to_string())))?;
    let euid = nix::unistd::geteuid().as_raw();
    check_owner(meta.file_type().is_file(), meta.uid(), meta.mode(), euid)
        .map_err(Miss::Invalid)?;
    let mut bytes = Vec::with_capacity((meta.len() as usize).min(MAX_FILE + 1));
    file.take(MAX_FILE as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Miss::Invalid(CacheError::Io(e.to_string())))?;
    decode(&bytes, key).map_err(Miss::Invalid)
}

/// Writes the program's file atomically: a private temporary file (0600) renamed into place,
/// so that a reader sees a whole file or none.
pub fn store(dir: &Path, program: &Program) -> std::io::Result<PathBuf> {
    match DirBuilder::new().mode(0o700).create(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    let path = dir.join(file_name(program.key()));
    let tmp = dir.join(format!(
        ".{:032x}.{}.tmp",
        program.key(),
        std::process::id()
    ));
    // One left by a process of this pid that died mid-write.
    let _ = fs::remove_file(&tmp);
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&tmp)
        .and_then(|mut f| f.write_all(&encode(program)))
        .and_then(|()| fs::rename(&tmp, &path));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(path)
}

pub fn file_name(key: u128) -> String {
    format!("{key:032x}.bpf")
}

/// The caller's side: the program for `spec`, from the cache in `root`, or compiled now and
/// stored there. None (the application then compiles it, as without a cache) for no profile,
/// a NOTIFY profile, or any trouble, which is only worth a debug line: a profile error is
/// reported by the application's own compile, with today's message.
pub fn program(root: &Path, spec: Option<&LinuxSeccomp>) -> Option<Program> {
    let spec = spec.filter(|s| !super::uses_notify(s))?;
    match lookup(root, spec) {
        Ok(p) => Some(p),
        Err(why) => {
            tracing::debug!("seccomp cache unused ({why}): the application compiles the profile");
            None
        }
    }
}

fn lookup(root: &Path, spec: &LinuxSeccomp) -> Result<Program, CacheError> {
    let key = key(spec)?;
    let dir = root.join(DIR);
    let path = dir.join(file_name(key));
    match read(&path, key) {
        Ok(p) => {
            tracing::debug!(path = %path.display(), "seccomp program from the cache");
            return Ok(p);
        }
        Err(Miss::Absent) => {}
        Err(Miss::Invalid(why)) => {
            tracing::debug!(path = %path.display(), "seccomp cache file ignored: {why}");
        }
    }
    let (ctx, notify) = super::compile(spec).map_err(|e| CacheError::Compile(e.to_string()))?;
    if notify {
        return Err(CacheError::Notify);
    }
    let program = bpf::export(key, &ctx)?;
    match store(&dir, &program) {
        Ok(p) => tracing::debug!(path = %p.display(), "seccomp program compiled and cached"),
        Err(e) => tracing::debug!(dir = %dir.display(), "seccomp program not cached: {e}"),
    }
    Ok(program)
}

#[cfg(test)]
mod tests;
