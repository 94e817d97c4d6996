//! The binary's edge: parse the command line, set up logging, run the command, exit with its
//! status (the application's own, 128+N for a signal, 125 for nsboot's own failure).

use clap::Parser;
use nsboot::cli::{self, Cli, Command};

fn main() {
    let cli = Cli::parse();
    nsboot::log::init(&cli.global);
    let code = match cli.command {
        Command::Run(args) => cli::run::run(args, &cli.global),
        Command::Spec(args) => cli::spec::run_with(args, &cli.global),
        Command::Do(args) => cli::do_cmd::run(args, &cli.global),
        Command::Check(args) => cli::check::run(args, &cli.global),
        Command::Create(args) => cli::create::run(args, &cli.global),
        Command::Start(args) => cli::start::run(args, &cli.global),
        Command::State(args) => cli::state_cmd::run(args, &cli.global),
        Command::Kill(args) => cli::kill::run(args, &cli.global),
        Command::Delete(args) => cli::delete::run(args, &cli.global),
        Command::List(args) => cli::list::run(args, &cli.global),
        Command::Ps(args) => cli::ps::run(args, &cli.global),
        Command::Features(args) => cli::features::run(args),
        Command::Exec(args) => cli::exec::run(args, &cli.global),
        Command::Boot(args) => cli::boot::run(args, &cli.global),
    };
    std::process::exit(code);
}
