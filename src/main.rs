use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use k8snet::{app, cli::Cli};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                app::EXIT_BAD_INPUT
            } else {
                app::EXIT_OK
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let outcome = app::run(&cli, std::io::stdout().is_terminal(), std::io::stderr().is_terminal());
    // Output is written whole or not at all: it was built in memory before anything printed.
    let _ = std::io::stdout().write_all(outcome.stdout.as_bytes());
    if !outcome.stdout.is_empty() && !outcome.stdout.ends_with('\n') {
        let _ = std::io::stdout().write_all(b"\n");
    }
    let _ = std::io::stderr().write_all(outcome.stderr.as_bytes());
    ExitCode::from(outcome.code)
}
