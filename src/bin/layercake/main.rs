//! The `layercake` command line: a window onto the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod demo;

/// Docker/OCI images as values: inspect, change and commit them in memory.
#[derive(Debug, Parser)]
#[command(name = "layercake", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Tells the story of a Docker image on data it carries: a base image, a second image on
    /// the same base, an overridden file, a container, its diff and its commit.
    ///
    /// Example: `layercake demo`
    Demo,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo => demo::run(&mut std::io::stdout().lock()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("layercake: {e}");
            ExitCode::FAILURE
        }
    }
}
