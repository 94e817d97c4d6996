//! Logging: text or JSON lines (`level`, `time`, `msg`, as podman reads them) to stderr or
//! `--log FILE`; and the one-line fatal error every command ends with on failure.

use std::fs::OpenOptions;
use std::io::Write;
use std::sync::OnceLock;

use tracing::Level;

/// How nsboot logs (from the global flags `--debug`, `--log`, `--log-format`).
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub debug: bool,
    pub file: Option<std::path::PathBuf>,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

static JSON_LOG: OnceLock<Option<std::path::PathBuf>> = OnceLock::new();
/// The process that stopped writing to the --log file (`mute_file`), 0 for none.
static FILE_MUTED_IN: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);
static STARTED: OnceLock<std::time::Instant> = OnceLock::new();

/// A debug line marking the end of a start-up phase, with the microseconds since nsboot
/// started (`--debug` shows the whole timeline: caller and supervisor phases share the origin
/// when the supervisor is cloned in-process).
pub fn phase(name: &str) {
    let us = STARTED
        .get()
        .map(|t| t.elapsed().as_micros() as u64)
        .unwrap_or(0);
    tracing::debug!(phase = name, elapsed_us = us, "boot phase {name} done");
}

/// The --log file, as long as this process has not muted it.
struct LogFile(std::fs::File);

impl Write for LogFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if FILE_MUTED_IN.load(std::sync::atomic::Ordering::Relaxed)
            == nix::unistd::getpid().as_raw()
        {
            return Ok(buf.len());
        }
        self.0.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// This process no longer writes to the --log file: it is about to close every fd it does not
/// hand on (the application before exec), the file's among them. By pid, because a vforked
/// application shares this memory with a supervisor that goes on logging.
pub fn mute_file() {
    let me = nix::unistd::getpid().as_raw();
    FILE_MUTED_IN.store(me, std::sync::atomic::Ordering::Relaxed);
}

/// Sets up the tracing subscriber: warnings and errors by default, info with NSBOOT_LOG=info,
/// everything (with a timing line per boot phase) with `--debug`.
pub fn init(opts: &Options) {
    let _ = STARTED.set(std::time::Instant::now());
    let json = opts.format == LogFormat::Json;
    let _ = JSON_LOG.set(if json { opts.file.clone() } else { None });
    let level = if opts.debug {
        Level::DEBUG
    } else if let Ok(v) = std::env::var("NSBOOT_LOG") {
        v.parse().unwrap_or(Level::INFO)
    } else {
        Level::WARN
    };
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_target(false)
        .with_ansi(false);
    let file = opts
        .file
        .as_ref()
        .and_then(|p| OpenOptions::new().create(true).append(true).open(p).ok())
        .map(LogFile);
    let result = match (file, json) {
        (Some(f), true) => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_writer(std::sync::Mutex::new(f))
            .try_init(),
        (Some(f), false) => builder.with_writer(std::sync::Mutex::new(f)).try_init(),
        (None, true) => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_writer(std::io::stderr)
            .try_init(),
        (None, false) => builder
            .with_writer(std::io::stderr)
            .without_time()
            .try_init(),
    };
    let _ = result;
}

/// `s` as printed back in a message: when longer than `keep` characters, its start and its
/// length (a 5000-character id or JSON path would bury the message's cause and fix).
pub fn cut(s: &str, keep: usize) -> String {
    match s.char_indices().nth(keep) {
        Some((end, _)) => format!("{}... ({} characters)", &s[..end], s.chars().count()),
        None => s.into(),
    }
}

/// [`fatal`] for an error; returns nsboot's own failure status, 125.
pub fn fail(e: &dyn std::fmt::Display) -> i32 {
    fatal(&e.to_string());
    125
}

/// Reports nsboot's own fatal error: `nsboot: MSG` on stderr, and with `--log F --log-format
/// json` exactly one `{"level":"error","time":..,"msg":..}` object in F (podman parses it).
pub fn fatal(msg: &str) {
    let _ = writeln!(std::io::stderr(), "nsboot: {msg}");
    if let Some(Some(path)) = JSON_LOG.get() {
        if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(path) {
            let line = serde_json::json!({"level": "error", "time": now_rfc3339(), "msg": msg});
            let _ = writeln!(f, "{line}");
        }
    }
}

pub fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    let (y, m, dd) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{dd:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (
        if m <= 2 {
            era * 400 + yoe + 1
        } else {
            era * 400 + yoe
        },
        m,
        d,
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn civil_dates_are_right() {
        assert_eq!(super::civil_from_days(0), (1970, 1, 1));
        assert_eq!(super::civil_from_days(20_785), (2026, 11, 28));
    }
}
