//! `nsboot events [--stats] [--interval 5s] ID`: the container's resource usage and OOM
//! kills as runc prints them, one JSON object a line: `{"type":"stats","id":..,"data":{..}}`
//! once with --stats, else every interval until the container stops, with
//! `{"type":"oom","id":..}` whenever the OOM killer strikes in its cgroup.

use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::cli::Global;
use crate::state::lifecycle::{self, Status};

// Print a container's resource usage and OOM events (JSON lines).
#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    /// Print the statistics once and exit.
    #[arg(long)]
    pub stats: bool,
    /// How often to print statistics (5s, 500ms, 1m).
    #[arg(long, default_value = "5s", value_parser = interval)]
    pub interval: Duration,
    /// The container id.
    pub id: String,
}

fn interval(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration: give e.g. 5s, 500ms or 1m");
    let (n, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((s, "s"), |i| s.split_at(i));
    let n: f64 = n.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(bad()),
    };
    if secs <= 0.0 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

pub fn run(args: EventsArgs, global: &Global) -> i32 {
    match events(&args, global) {
        Ok(()) => 0,
        Err(e) => {
            crate::sys::log::fatal(&e);
            125
        }
    }
}

fn print(v: &serde_json::Value) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{v}")
        .and_then(|()| out.flush())
        .map_err(|e| format!("writing the events: {e}"))
}

fn events(args: &EventsArgs, global: &Global) -> Result<(), String> {
    let (c, cg) = super::pause::load_with_cgroup(&args.id, global)?;
    if c.status == Status::Stopped {
        return Err(lifecycle::LifecycleError::NotRunning {
            id: args.id.clone(),
            status: "stopped".into(),
        }
        .to_string());
    }
    let stats = || json!({ "type": "stats", "id": args.id, "data": cg.stats() });
    if args.stats {
        return print(&stats());
    }
    let root = c.root.clone();
    let mut ooms = cg.oom_kills();
    let mut next = Instant::now();
    loop {
        let now = Instant::now();
        if now >= next {
            print(&stats())?;
            next = now + args.interval;
        }
        let seen = cg.oom_kills();
        if seen > ooms {
            print(&json!({ "type": "oom", "id": args.id }))?;
            ooms = seen;
        }
        match lifecycle::load(&root, &args.id) {
            Ok(c) if c.status != Status::Stopped => {}
            _ => return Ok(()),
        }
        std::thread::sleep(Duration::from_millis(100).min(args.interval));
    }
}
