//! Thin entry point: parse the command line, set up logging, hand over to `zygo::cli`.

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

/// mimalloc instead of the C library's allocator: a request allocates and frees many small
/// objects on two or more threads, and glibc's arenas made that a tenth of a request's time
/// (with lock waits between threads). See BENCHMARKS.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = zygo::cli::Cli::parse();
    // The server logs its life; admin commands stay quiet so their one-line errors stand alone.
    let default_level = match cli.command {
        zygo::cli::Command::Serve(_) => "info",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("ZYGO_LOG").unwrap_or_else(|_| EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .init();
    ExitCode::from(zygo::cli::exit_code(cli).await)
}
