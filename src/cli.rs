//! The command line of the native tools: each is its own binary (`train`,
//! `tune`, `eval`, `update-catalog`, `teacher`, `kind-weights`) and a subcommand of
//! `shelfrank` (`shelfrank train …`), which runs the same code.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Leading arguments that are not the tool's own: the program, and the
/// subcommand when run as `shelfrank <command>`.
static SKIP: AtomicUsize = AtomicUsize::new(1);

/// Marks this process as `shelfrank <command> …`: the tools' flags start
/// after the command.
pub fn run_as_subcommand() {
    SKIP.store(2, Ordering::Relaxed);
}

/// The tool's own arguments.
pub fn args() -> impl Iterator<Item = String> {
    std::env::args().skip(SKIP.load(Ordering::Relaxed))
}

/// Ends a tool's run: its error, if any, on stderr after the tool's name,
/// and exit status 1.
pub fn finish(tool: &str, outcome: Result<(), String>) {
    if let Err(message) = outcome {
        eprintln!("{tool}: {message}");
        std::process::exit(1);
    }
}
