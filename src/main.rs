// Loading and compiling a large cluster is millions of small allocations: with glibc's
// allocator a quarter of a 5,000-node trace's CPU time went to malloc and free, and mimalloc
// takes about a fifth less CPU time in all (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use k8snet::{app, cli::Cli};

/// Room for the deepest input the reader accepts, with a wide margin: an unoptimised build
/// needs about 4 MiB for it, an optimised one under 512 KiB. Only the pages used are touched.
const WORK_STACK: usize = 64 << 20;

fn main() -> ExitCode {
    k8snet::memory::return_freed_memory_at_once();
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
    let (stdout_tty, stderr_tty) = (std::io::stdout().is_terminal(), std::io::stderr().is_terminal());
    // Reading a scenario recurses once per level of nesting (64 at most, then refused). The work
    // runs on a thread whose stack is known to hold that in any build, rather than on the main
    // thread, whose stack is whatever `ulimit -s` left it.
    let outcome = std::thread::Builder::new()
        .stack_size(WORK_STACK)
        .spawn(move || app::run(&cli, stdout_tty, stderr_tty))
        .ok()
        .and_then(|worker| worker.join().ok());
    let Some(outcome) = outcome else {
        let _ = std::io::stderr().write_all(b"error: k8snet could not finish; this is a bug, please report it\n");
        return ExitCode::from(app::EXIT_BAD_INPUT);
    };
    // Output is written whole or not at all: it was built in memory before anything printed.
    let _ = std::io::stdout().write_all(outcome.stdout.as_bytes());
    if !outcome.stdout.is_empty() && !outcome.stdout.ends_with('\n') {
        let _ = std::io::stdout().write_all(b"\n");
    }
    let _ = std::io::stderr().write_all(outcome.stderr.as_bytes());
    ExitCode::from(outcome.code)
}
