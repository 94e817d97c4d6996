//! The binary's edge: parse the command line, set up logging, run the command, exit with its
//! status (the application's own, 128+N for a signal, 125 for nsboot's own failure).

// No std runtime start-up: for the main thread's stack guard it reads and parses
// /proc/self/maps on every launch, a visible part of `nsboot --version` (std still captures the
// arguments on Linux). Of what it sets up, nsboot wants SIGPIPE ignored: done in `main`.
// A stack overflow is then a plain SIGSEGV instead of std's message.
// (Not for `cargo test`'s harness, which brings its own main.)
#![cfg_attr(not(test), no_main)]

use clap::Parser;
use nsboot::cli::{self, Cli, Command};

#[cfg(not(test))]
#[no_mangle]
extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    // SAFETY: SIG_IGN installs no handler code, and nothing else runs yet (one thread).
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    // Through std's exit, which flushes stdout (returning from here would not).
    std::process::exit(run())
}

#[cfg_attr(test, allow(dead_code))]
fn run() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version print to stdout and succeed; a usage error is nsboot's own
        // failure: 125, as for every other one.
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return 0;
        }
        // One line, as every error of nsboot's: clap's first, without its usage block.
        Err(e) => {
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or_default();
            let what = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("nsboot: {what}: see 'nsboot --help'");
            return 125;
        }
    };
    nsboot::sys::log::init(&cli.global.log_options());
    match cli.command {
        Command::Run(args) => cli::run::run(args, &cli.global),
        Command::Spec(args) => cli::spec::run_with(args, &cli.global),
        Command::Do(args) => cli::do_cmd::run(args, &cli.global),
        Command::Check(args) => cli::check::run(args, &cli.global),
        Command::Setup(args) => cli::setup::run(args),
        Command::Create(args) => cli::create::run(args, &cli.global),
        Command::Start(args) => cli::start::run(args, &cli.global),
        Command::State(args) => cli::state_cmd::run(args, &cli.global),
        Command::Kill(args) => cli::kill::run(args, &cli.global),
        Command::Delete(args) => cli::delete::run(args, &cli.global),
        Command::List(args) => cli::list::run(args, &cli.global),
        Command::Ps(args) => cli::ps::run(args, &cli.global),
        Command::Features(args) => cli::features::run(args),
        Command::Exec(args) => cli::exec::run(args, &cli.global),
        Command::Pause(args) => cli::pause::pause(args, &cli.global),
        Command::Resume(args) => cli::pause::resume(args, &cli.global),
        Command::Update(args) => cli::update::run(args, &cli.global),
        Command::Events(args) => cli::events::run(args, &cli.global),
        Command::Boot(args) => cli::boot::run(args, &cli.global),
    }
}
