//! `layercake build`: a Dockerfile built into the store, RUN steps run with `unshare`; and
//! `--print`, the parsed Dockerfile as JSON lines.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use layercake::build::{
    Build, BuildEvent, Context, Dockerfile, Ignore, Keyword, Network, ProcessExecutor,
};
use layercake::Store;

use crate::root::Root;
use crate::source::Result;
use crate::stored::short;

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
    /// Do not use the build cache: every step runs (what they make is still kept for later
    /// builds).
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

/// Builds the Dockerfile on the context directory into the store, with the store's build
/// cache, printing as Docker's classic builder does while it goes: `Step N/M : …`,
/// ` ---> Using cache` or ` ---> Running in …` with the command's output, ` ---> ID` for each
/// step's image, then `Successfully built ID` and `Successfully tagged NAME:TAG`. A FROM
/// image the store does not have is pulled into it.
pub fn build(root: &Root, out: &mut impl Write, args: &BuildArgs) -> Result<()> {
    let context_dir = args
        .context
        .clone()
        .ok_or("build: a CONTEXT directory is needed")?;
    let text = read_dockerfile(&args.dockerfile())?;
    let tags = args
        .tags
        .iter()
        .map(|t| Ok(layercake::Reference::parse(t)?))
        .collect::<Result<Vec<_>>>()?;
    let mut store = root.open()?;
    let mut build = Build::new(text)
        .context(context(&context_dir, &args.dockerfile())?)
        .clock(now())
        .on_event(printer())
        .fetch_missing(|name: &str, store: &mut Store| {
            let reference = layercake::Reference::parse(name)?;
            let options = layercake::registry::PullOptions::new();
            Ok(crate::registry::pull_into(
                store,
                &mut std::io::stdout(),
                &reference,
                options,
                false,
            )?
            .image)
        });
    if args.no_cache {
        build = build.no_cache();
    }
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
            let output = Arc::new(Mutex::new(std::io::stdout()));
            build = build.executor(ProcessExecutor::new().network(network).output(output));
        }
        "none" => {}
        other => return Err(format!("--executor {other}: expected process or none").into()),
    }
    out.flush()?;
    let report = build.run_in(&mut store)?;
    let id = report.image.id();
    for tag in &tags {
        store.tag(&id.to_string(), &tag.to_string())?;
    }
    writeln!(out, "Successfully built {}", short(id.to_hex()))?;
    for tag in &tags {
        writeln!(out, "Successfully tagged {}", tag.familiar())?;
    }
    Ok(())
}

/// The context directory as `docker build` sends it: without what `.dockerignore` excludes,
/// and without the Dockerfile and `.dockerignore` themselves if excluded (the Dockerfile named
/// by its path in the context, when it is in it).
fn context(dir: &Path, dockerfile: &Path) -> Result<Context> {
    let ignore = Ignore::from_dir(dir)?;
    let inside = |p: &Path| std::fs::canonicalize(p).ok();
    let name = match (inside(dir), inside(dockerfile)) {
        (Some(dir), Some(file)) => file
            .strip_prefix(&dir)
            .ok()
            .map(|rel| rel.to_string_lossy().into_owned()),
        _ => None,
    };
    let name = name.unwrap_or_else(|| "Dockerfile".to_owned());
    Ok(Context::from_dir_with(dir, &ignore, &name)?)
}

/// What prints a build's events as Docker's classic builder does.
fn printer() -> impl Fn(&BuildEvent<'_>) + Send + Sync {
    // The step's container, for its `Removing intermediate container` line.
    let running: Mutex<Option<String>> = Mutex::new(None);
    move |event: &BuildEvent<'_>| {
        let line = match event {
            BuildEvent::Step { instruction, .. } => instruction.to_string(),
            BuildEvent::Cached => " ---> Using cache".to_owned(),
            BuildEvent::Running { container, .. } => {
                *running.lock().unwrap_or_else(|e| e.into_inner()) = Some(container.to_string());
                format!(" ---> Running in {container}")
            }
            BuildEvent::Done(step) => {
                let mut line = String::new();
                if let Some(container) = running.lock().unwrap_or_else(|e| e.into_inner()).take() {
                    line = format!("Removing intermediate container {container}\n");
                }
                match step.image {
                    Some(id) => line + &format!(" ---> {}", short(id.to_hex())),
                    // FROM scratch, as Docker shows it.
                    None if step.keyword == Keyword::From => line + " ---> ",
                    None => return,
                }
            }
            _ => return,
        };
        let mut stdout = std::io::stdout().lock();
        // Output that cannot be written is not the build's failure.
        let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
    }
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
