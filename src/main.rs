use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use k8snet::{app, cli::Cli};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            // The message quotes what was typed, which may hold terminal escapes: it is
            // written plain, with control characters shown.
            let message = k8snet::render::untrusted::escape_lines(&e.render().to_string());
            let _ = std::io::stderr().write_all(message.as_bytes());
            return ExitCode::from(app::EXIT_BAD_INPUT);
        }
        Err(e) => {
            // --help and --version: the program's own text.
            let _ = e.print();
            return ExitCode::from(app::EXIT_OK);
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
