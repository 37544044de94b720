//! `layercake build`: a Dockerfile built into the store, RUN steps run with `unshare`; and
//! `--print`, the parsed Dockerfile as JSON lines.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use layercake::build::{Build, Context, Dockerfile, Network, ProcessExecutor};
use layercake::store::AddOptions;

use crate::root::Root;
use crate::source::Result;

/// What `layercake build` is given.
#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// Print the parsed instructions as JSON, one object a line, and build nothing.
    #[arg(long)]
    pub print: bool,
    /// The Dockerfile [default: CONTEXT/Dockerfile].
    #[arg(short = 'f', long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// A name to give the image in the store (repeatable).
    #[arg(short = 't', long = "tag", value_name = "NAME:TAG")]
    pub tags: Vec<String>,
    /// A build argument, for an ARG the Dockerfile declares (repeatable).
    #[arg(long = "build-arg", value_name = "K=V")]
    pub build_args: Vec<String>,
    /// The stage to build (default: the last).
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,
    /// Do not use the build cache (there is none yet: every step runs).
    #[arg(long)]
    pub no_cache: bool,
    /// The RUN executor: `process` (the command, run with util-linux `unshare` in namespaces
    /// of its own) or `none` (a RUN step is an error).
    #[arg(long, value_name = "EXECUTOR", default_value = "process")]
    pub executor: String,
    /// The network of RUN steps: `none` (loopback only) or `host`.
    #[arg(long, value_name = "NETWORK", default_value = "none")]
    pub network: String,
    /// The build context directory.
    #[arg(value_name = "CONTEXT")]
    pub context: Option<PathBuf>,
}

impl BuildArgs {
    /// The Dockerfile: `-f`, else `CONTEXT/Dockerfile`.
    fn dockerfile(&self) -> PathBuf {
        match (&self.file, &self.context) {
            (Some(file), _) => file.clone(),
            (None, Some(context)) => context.join("Dockerfile"),
            (None, None) => PathBuf::from("Dockerfile"),
        }
    }
}

/// Reads a Dockerfile as text.
fn read_dockerfile(file: &Path) -> Result<String> {
    let text = std::fs::read(file).map_err(|source| layercake::Error::Io {
        context: format!("reading {}", file.display()),
        source,
    })?;
    Ok(String::from_utf8(text)
        .map_err(|_| format!("{}: the Dockerfile is not UTF-8", file.display()))?)
}

/// Builds the Dockerfile on the context directory into the store, printing each step as
/// Docker's classic builder names them, the commands' output on standard error as they end,
/// then `Successfully built ID` and `Successfully tagged NAME:TAG`.
pub fn build(root: &Root, out: &mut impl Write, args: &BuildArgs) -> Result<()> {
    let context_dir = args
        .context
        .clone()
        .ok_or("build: a CONTEXT directory is needed")?;
    if context_dir.join(".dockerignore").exists() {
        return Err(format!(
            "{}: .dockerignore is not supported yet (the build would send what it excludes)",
            context_dir.join(".dockerignore").display()
        )
        .into());
    }
    let text = read_dockerfile(&args.dockerfile())?;
    let mut store = root.open()?;
    let mut build = Build::new(text)
        .context(Context::from_dir(&context_dir)?)
        .store(&store)
        .clock(now());
    for arg in &args.build_args {
        let (key, value) = arg
            .split_once('=')
            .ok_or_else(|| format!("--build-arg {arg}: expected K=V"))?;
        build = build.build_arg(key, value);
    }
    if let Some(target) = &args.target {
        build = build.target(target);
    }
    let network = match args.network.as_str() {
        "none" => Network::None,
        "host" => Network::Host,
        other => return Err(format!("--network {other}: expected none or host").into()),
    };
    match args.executor.as_str() {
        "process" => {
            let output = Arc::new(Mutex::new(std::io::stderr()));
            build = build.executor(ProcessExecutor::new().network(network).output(output));
        }
        "none" => {}
        other => return Err(format!("--executor {other}: expected process or none").into()),
    }
    let report = build.run()?;
    for step in &report.steps {
        writeln!(out, "{}", step.instruction)?;
        match (&step.layer, step.ran) {
            (Some(layer), _) => writeln!(out, " ---> layer {}", &layer.to_hex().to_string()[..12])?,
            (None, true) => writeln!(out, " ---> no change")?,
            (None, false) => {}
        }
    }
    let mut options = AddOptions::new();
    for tag in &args.tags {
        options = options.tag(tag);
    }
    let stored = store.add_with(&report.image, options)?.image;
    writeln!(
        out,
        "Successfully built {}",
        &stored.id().to_hex().to_string()[..12]
    )?;
    for tag in &args.tags {
        let familiar = layercake::Reference::parse(tag)?.familiar().to_string();
        writeln!(out, "Successfully tagged {familiar}")?;
    }
    Ok(())
}

/// Seconds since the epoch: what a build stamps on what it makes, as Docker does.
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Prints the Dockerfile's instructions, one JSON object a line.
pub fn print(out: &mut impl Write, args: &BuildArgs) -> Result<()> {
    let dockerfile = Dockerfile::parse(&read_dockerfile(&args.dockerfile())?)?;
    out.write_all(dockerfile.print().as_bytes())?;
    Ok(())
}
