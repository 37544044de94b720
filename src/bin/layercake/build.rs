//! `layercake build`: so far only `--print`, the parsed Dockerfile as JSON lines.

use std::io::Write;
use std::path::PathBuf;

use layercake::build::Dockerfile;

use crate::source::Result;

/// What `layercake build` is given; only `--print -f FILE` is implemented so far.
#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// Print the parsed instructions as JSON, one object a line, and build nothing.
    #[arg(long)]
    pub print: bool,
    /// The Dockerfile [default: CONTEXT/Dockerfile].
    #[arg(short = 'f', long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// The name to give the image (not implemented yet).
    #[arg(short = 't', long = "tag", value_name = "NAME:TAG")]
    pub tags: Vec<String>,
    /// A build argument (not implemented yet).
    #[arg(long = "build-arg", value_name = "K=V")]
    pub build_args: Vec<String>,
    /// The stage to build (not implemented yet).
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,
    /// Do not use the build cache (not implemented yet).
    #[arg(long)]
    pub no_cache: bool,
    /// The RUN executor: process or none (not implemented yet).
    #[arg(long, value_name = "EXECUTOR")]
    pub executor: Option<String>,
    /// The network of RUN steps: none or host (not implemented yet).
    #[arg(long, value_name = "NETWORK")]
    pub network: Option<String>,
    /// The build context directory.
    #[arg(value_name = "CONTEXT")]
    pub context: Option<PathBuf>,
}

impl BuildArgs {
    /// Whether anything but `--print`, `-f` and a context was asked for.
    pub fn asks_for_a_build(&self) -> bool {
        !self.print
            || !self.tags.is_empty()
            || !self.build_args.is_empty()
            || self.target.is_some()
            || self.no_cache
            || self.executor.is_some()
            || self.network.is_some()
    }
}

/// Prints the Dockerfile's instructions, one JSON object a line.
pub fn print(out: &mut impl Write, args: &BuildArgs) -> Result<()> {
    let file = match (&args.file, &args.context) {
        (Some(file), _) => file.clone(),
        (None, Some(context)) => context.join("Dockerfile"),
        (None, None) => PathBuf::from("Dockerfile"),
    };
    let text = std::fs::read(&file).map_err(|source| layercake::Error::Io {
        context: format!("reading {}", file.display()),
        source,
    })?;
    let text = String::from_utf8(text)
        .map_err(|_| format!("{}: the Dockerfile is not UTF-8", file.display()))?;
    let dockerfile = Dockerfile::parse(&text)?;
    out.write_all(dockerfile.print().as_bytes())?;
    Ok(())
}
