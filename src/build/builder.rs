//! The build's face: [`Build`] (a `docker build` as a value), its in-memory [`Context`],
//! what a build tells as it goes ([`BuildEvent`]) and what it returns ([`BuildReport`], one
//! [`StepReport`] a step). The steps themselves run in `stage.rs`.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::executor::Executor;
use super::ignore::Ignore;
use super::parser::Keyword;
use crate::contents::{Contents, HostFile};
use crate::digest::{DiffId, ImageId};
use crate::entry::Entry;
use crate::error::{Error, Result};
use crate::image::Image;
use crate::layer::Layer;
use crate::store::Store;
use crate::tree::Tree;

/// Context files up to this size are read when the context is; larger ones when copied.
const SMALL_FILE: u64 = 256 << 10;

/// The files a build copies from: in memory, by path.
///
/// ```
/// use layercake::build::Context;
/// let context = Context::new().file("app/main.sh", "echo hi").dir("empty");
/// # let _ = context;
/// ```
#[derive(Debug, Clone, Default)]
pub struct Context {
    entries: BTreeMap<String, Entry>,
}

impl Context {
    /// An empty context.
    pub fn new() -> Context {
        Context::default()
    }

    /// Adds a file (mode 0644, parents implied).
    pub fn file(mut self, path: impl Into<String>, contents: impl Into<Bytes>) -> Context {
        let entry = Entry::file(contents.into()).mode(0o644);
        self.entries.insert(path.into(), entry);
        self
    }

    /// Adds a directory (mode 0755).
    pub fn dir(mut self, path: impl Into<String>) -> Context {
        self.entries.insert(path.into(), Entry::dir().mode(0o755));
        self
    }

    /// Reads a host directory into memory as `docker build DIR` sends it: its files (with
    /// their modes and mtimes), its directories and its symlinks (as links; never followed),
    /// less what `DIR/.dockerignore` excludes (see [`Ignore`] for the rules). Other kinds are
    /// skipped.
    ///
    /// The Dockerfile and the `.dockerignore` are left out when the `.dockerignore` excludes
    /// them, as Docker's daemon removes them then; otherwise COPY sees them. An excluded
    /// directory is not read at all unless a `!` pattern names something below it
    /// ([`Ignore::descends_into`]).
    ///
    /// # Security
    ///
    /// Reads every file below `root` that is not excluded, as the user running the program;
    /// symlinks are kept as links, so nothing outside `root` is read through them. Files up
    /// to 256 KiB are read now; larger ones stay open and are read by offset when a step
    /// copies them (they are not held in memory).
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io), naming the path, for what cannot be read; a
    /// `.dockerignore` Docker would refuse is one too, its source an
    /// [`IgnoreError`](super::IgnoreError) naming the line.
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("layercake-ctx-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(dir.join("src"))?;
    /// std::fs::create_dir_all(dir.join("target/debug"))?;
    /// std::fs::write(dir.join("src/main.sh"), "echo hi")?;
    /// std::fs::write(dir.join("target/debug/app"), "built")?;
    /// std::fs::write(dir.join(".dockerignore"), "target\n.dockerignore\n")?;
    /// let context = layercake::build::Context::from_dir(&dir)?;
    /// let image = layercake::build::Build::new("FROM scratch\nCOPY . /app\n").context(context).run()?.image;
    /// let tree = image.tree()?;
    /// assert_eq!(tree.read("app/src/main.sh")?, "echo hi");
    /// assert!(tree.read("app/target/debug/app").is_err());
    /// assert!(tree.read("app/.dockerignore").is_err());
    /// std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_dir(root: impl AsRef<Path>) -> Result<Context> {
        let root = root.as_ref();
        Context::from_dir_with(root, &Ignore::from_dir(root)?, "Dockerfile")
    }

    /// [`Context::from_dir`] with the patterns given (instead of `root/.dockerignore`, which
    /// is then an ordinary file) and the Dockerfile named as `docker build -f` names it,
    /// relative to `root`.
    ///
    /// The Dockerfile matters where it sits in an excluded directory: the docker CLI sends
    /// it anyway, so the daemon's unpack creates its directory, and that directory stays
    /// (empty but for what `!` patterns bring back) once the daemon has removed the
    /// Dockerfile. So here: a Dockerfile that `ignore` excludes leaves its directory in the
    /// context (mode 0755). A Dockerfile outside `root` (`../Dockerfile`) changes nothing.
    ///
    /// # Security
    ///
    /// As [`Context::from_dir`].
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io), naming the path, for what cannot be read.
    ///
    /// ```
    /// use layercake::build::{Build, Context, Ignore};
    ///
    /// let dir = std::env::temp_dir().join(format!("layercake-ctx-with-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(dir.join("docker"))?;
    /// std::fs::write(dir.join("docker/Dockerfile"), "FROM scratch\nCOPY . /srv/\n")?;
    /// std::fs::write(dir.join("app.py"), "print('hi')")?;
    /// std::fs::write(dir.join("app.pyc"), "junk")?;
    /// let ignore = Ignore::parse("*.pyc\ndocker")?;
    /// let context = Context::from_dir_with(&dir, &ignore, "docker/Dockerfile")?;
    /// let tree = Build::new("FROM scratch\nCOPY . /srv/\n").context(context).run()?.image.tree()?;
    /// assert!(tree.read("srv/app.py").is_ok());
    /// assert!(tree.read("srv/app.pyc").is_err());
    /// assert!(tree.read("srv/docker/Dockerfile").is_err());
    /// assert!(tree.lookup("srv/docker")?.is_some()); // as Docker leaves it: empty
    /// std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_dir_with(
        root: impl AsRef<Path>,
        ignore: &Ignore,
        dockerfile: &str,
    ) -> Result<Context> {
        let mut context = Context::new();
        let mut stack = vec![(root.as_ref().to_path_buf(), String::new())];
        while let Some((dir, prefix)) = stack.pop() {
            let io = |e: io::Error, path: &Path| Error::Io {
                context: format!("reading the build context at `{}`", path.display()),
                source: e,
            };
            for item in fs::read_dir(&dir).map_err(|e| io(e, &dir))? {
                let item = item.map_err(|e| io(e, &dir))?;
                let path = item.path();
                let name = item.file_name().to_string_lossy().into_owned();
                let rel = format!("{prefix}{name}");
                if ignore.excludes(&rel) {
                    // Docker still walks an excluded directory when a `!` pattern names
                    // something below it, without sending the directory's own entry (the
                    // daemon's unpack implies it). Nothing else excluded is even stat-ed.
                    let is_dir = item.file_type().map_err(|e| io(e, &path))?.is_dir();
                    if is_dir && ignore.descends_into(&rel) {
                        stack.push((path, format!("{rel}/")));
                    }
                    continue;
                }
                let meta = fs::symlink_metadata(&path).map_err(|e| io(e, &path))?;
                let mode = meta.permissions().mode() & 0o7777;
                let mtime = meta.modified().ok().and_then(|t| {
                    t.duration_since(std::time::UNIX_EPOCH)
                        .ok()
                        .map(|d| d.as_secs() as i64)
                });
                let entry = if meta.file_type().is_symlink() {
                    let target = fs::read_link(&path).map_err(|e| io(e, &path))?;
                    Entry::symlink(target.to_string_lossy().into_owned())
                } else if meta.is_dir() {
                    stack.push((path.clone(), format!("{rel}/")));
                    Entry::dir().mode(mode)
                } else if meta.is_file() {
                    let file = HostFile::open(&path)?;
                    let len = file.len()?;
                    let contents = Contents::on_disk(file, 0, len);
                    // Small files are held now (their length as opened, however the file
                    // changes); larger ones are read where they lie, by offset, when copied.
                    let contents = match len <= SMALL_FILE {
                        true => Contents::from(contents.to_bytes()?),
                        false => contents,
                    };
                    Entry::file(contents).mode(mode)
                } else {
                    continue;
                };
                let entry = match mtime {
                    Some(m) => entry.mtime(m),
                    None => entry,
                };
                context.entries.insert(rel, entry);
            }
        }
        let dockerfile = dockerfile.trim_start_matches("./");
        if let Some((parent, _)) = dockerfile.rsplit_once('/') {
            let inside = !parent.is_empty() && !parent.split('/').any(|c| c == "..");
            if inside && ignore.excludes(dockerfile) && !context.entries.contains_key(parent) {
                context
                    .entries
                    .insert(parent.to_owned(), Entry::dir().mode(0o755));
            }
        }
        Ok(context)
    }

    pub(super) fn tree(&self) -> Result<Tree> {
        let mut layer = Layer::builder();
        for (p, e) in &self.entries {
            layer = layer.entry(p.as_str(), e.clone());
        }
        Tree::new().apply(&layer.build()?)
    }
}

pub(super) type Lookup = Arc<dyn Fn(&str) -> Result<Image> + Send + Sync>;
pub(super) type Fetch = Arc<dyn Fn(&str, &mut Store) -> Result<Image> + Send + Sync>;
pub(super) type Listener = Arc<dyn Fn(&BuildEvent<'_>) + Send + Sync>;

/// A `docker build` without a daemon: a Dockerfile, a context, build args, a target stage, an
/// executor for RUN and how FROM names resolve.
///
/// ```
/// use layercake::build::{Build, Context};
///
/// let report = Build::new("FROM scratch\nCOPY a /a\nENV X=1\n")
///     .context(Context::new().file("a", "hi"))
///     .run()?;
/// assert_eq!(report.image.tree()?.read("a")?, "hi");
/// assert_eq!(report.steps[2].instruction, "Step 3/3 : ENV X=1");
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Clone)]
pub struct Build {
    pub(super) text: String,
    pub(super) context: Context,
    pub(super) args: BTreeMap<String, String>,
    pub(super) target: Option<String>,
    pub(super) executor: Option<Arc<dyn Executor>>,
    pub(super) lookup: Option<Lookup>,
    pub(super) fetch: Option<Fetch>,
    pub(super) listener: Option<Listener>,
    pub(super) no_cache: bool,
    pub(super) clock: i64,
}

impl fmt::Debug for Build {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Build")
            .field("args", &self.args)
            .field("target", &self.target)
            .field("no_cache", &self.no_cache)
            .finish_non_exhaustive()
    }
}

/// What a build made: the image and one report per step.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BuildReport {
    /// The target stage's image (the last stage's without a target).
    pub image: Image,
    /// The steps, in order.
    pub steps: Vec<StepReport>,
}

/// One step of a build.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StepReport {
    /// As Docker prints it: `Step 2/5 : RUN make`.
    pub instruction: String,
    /// The instruction's keyword.
    pub keyword: Keyword,
    /// The image after the step (FROM: the base); `None` for an ARG before the first FROM
    /// and for FROM `scratch` (no image yet).
    pub image: Option<ImageId>,
    /// The layer the step made, if it made one.
    pub layer: Option<DiffId>,
    /// Whether a RUN's command ran (it was not found in the cache).
    pub ran: bool,
    /// Whether the step's image came from the build cache ([`Build::run_in`]).
    pub cached: bool,
    /// How long the step took.
    pub time: Duration,
}

/// What a build tells as it goes, in the order Docker's classic builder prints it: for each
/// step `Step`, then `Cached` or (for a step that is not COPY, ADD or FROM) `Running`, then
/// `Done`.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use layercake::build::{Build, BuildEvent};
///
/// let lines = Arc::new(Mutex::new(Vec::new()));
/// let log = lines.clone();
/// Build::new("FROM scratch\nENV A=1\n")
///     .on_event(move |event: &BuildEvent<'_>| match event {
///         BuildEvent::Step { instruction, .. } => log.lock().unwrap().push(instruction.to_string()),
///         _ => {}
///     })
///     .run()?;
/// assert_eq!(*lines.lock().unwrap(), ["Step 1/2 : FROM scratch", "Step 2/2 : ENV A=1"]);
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum BuildEvent<'a> {
    /// A step starts (`Step 2/5 : RUN make`).
    Step {
        /// Counted from 1 over the whole Dockerfile.
        number: usize,
        /// The Dockerfile's instructions.
        total: usize,
        /// As Docker prints it: `Step 2/5 : RUN make`.
        instruction: &'a str,
    },
    /// The step's image is the build cache's (` ---> Using cache`).
    Cached,
    /// A step is about to be made in a container of its own (` ---> Running in 3f2a…`, then
    /// at `Done` `Removing intermediate container 3f2a…`), as Docker makes RUN, WORKDIR and
    /// the config steps.
    Running {
        /// The container's short id (12 hex digits): the start of the `container` its image
        /// records.
        container: &'a str,
        /// The container's command: a RUN's, or `["/bin/sh", "-c", "#(nop) ", "ENV A=1"]`
        /// as Docker's `ContainerConfig.Cmd` names a config step.
        argv: &'a [String],
    },
    /// The step is done (` ---> 1a2b3c4d5e6f`).
    Done(&'a StepReport),
}

impl Build {
    /// A build of `dockerfile`, with an empty context, no executor and only `scratch`.
    pub fn new(dockerfile: impl Into<String>) -> Build {
        Build {
            text: dockerfile.into(),
            context: Context::new(),
            args: BTreeMap::new(),
            target: None,
            executor: None,
            lookup: None,
            fetch: None,
            listener: None,
            no_cache: false,
            clock: 0,
        }
    }

    /// The build context.
    pub fn context(mut self, context: Context) -> Build {
        self.context = context;
        self
    }

    /// A `--build-arg`: used only where an ARG declares `key`.
    pub fn build_arg(mut self, key: impl Into<String>, value: impl Into<String>) -> Build {
        self.args.insert(key.into(), value.into());
        self
    }

    /// Stops after the stage named (or numbered) `stage`.
    pub fn target(mut self, stage: impl Into<String>) -> Build {
        self.target = Some(stage.into());
        self
    }

    /// The executor RUN steps use (without one, RUN is an error).
    pub fn executor(mut self, executor: impl Executor + 'static) -> Build {
        self.executor = Some(Arc::new(executor));
        self
    }

    /// The executor RUN steps use, shared with other builds.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use layercake::build::{Build, Executor, InProcess, RunStep};
    /// use layercake::Container;
    ///
    /// let touch: Arc<dyn Executor> =
    ///     Arc::new(InProcess::new(|c: &mut Container, _: &RunStep| c.write("ran", "")));
    /// let image = Build::new("FROM scratch\nRUN x\n").shared_executor(touch.clone()).run()?.image;
    /// assert!(image.tree()?.lookup("ran")?.is_some());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn shared_executor(mut self, executor: Arc<dyn Executor>) -> Build {
        self.executor = Some(executor);
        self
    }

    /// How FROM names other than `scratch` and earlier stages resolve.
    pub fn base_images(
        mut self,
        lookup: impl Fn(&str) -> Result<Image> + Send + Sync + 'static,
    ) -> Build {
        self.lookup = Some(Arc::new(lookup));
        self
    }

    /// FROM names resolve in `store` (a snapshot of it: images added later are not seen).
    ///
    /// ```
    /// use layercake::build::Build;
    /// use layercake::{Image, Store};
    ///
    /// let mut store = Store::new();
    /// store.add_with(&Image::builder().cmd(["sh"]).build()?, layercake::store::AddOptions::new().tag("base:1"))?;
    /// let image = Build::new("FROM base:1\nENV A=1\n").store(&store).run()?.image;
    /// assert_eq!(image.config().container_config().cmd, Some(vec!["sh".to_string()]));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn store(self, store: &Store) -> Build {
        let store = store.clone();
        self.base_images(move |name| store.image(name))
    }

    /// For [`Build::run_in`]: how a FROM name the store does not have is brought into it
    /// (a pull, for instance); without this, such a name is
    /// [`Error::ImageNotFound`](crate::Error::ImageNotFound).
    ///
    /// ```
    /// use layercake::build::Build;
    /// use layercake::{Image, Store};
    ///
    /// let mut store = Store::new();
    /// let build = Build::new("FROM base\nENV A=1\n").fetch_missing(|name: &str, store: &mut Store| {
    ///     let image = Image::builder().cmd(["sh"]).build()?;
    ///     store.add_with(&image, layercake::store::AddOptions::new().tag(name))?;
    ///     Ok(image)
    /// });
    /// build.run_in(&mut store)?;
    /// assert!(store.image("base").is_ok(), "fetched into the store");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn fetch_missing(
        mut self,
        fetch: impl Fn(&str, &mut Store) -> Result<Image> + Send + Sync + 'static,
    ) -> Build {
        self.fetch = Some(Arc::new(fetch));
        self
    }

    /// For [`Build::run_in`]: every step runs, none is taken from the build cache (as
    /// `docker build --no-cache`); what the steps make is still stored for later builds.
    pub fn no_cache(mut self) -> Build {
        self.no_cache = true;
        self
    }

    /// Calls `listener` as the build goes (see [`BuildEvent`]), on the thread that runs it.
    pub fn on_event(mut self, listener: impl Fn(&BuildEvent<'_>) + Send + Sync + 'static) -> Build {
        self.listener = Some(Arc::new(listener));
        self
    }

    /// The time stamped on history rows, layers and files (default: the epoch).
    pub fn clock(mut self, secs: i64) -> Build {
        self.clock = secs;
        self
    }

    /// Runs the build.
    ///
    /// # Errors
    ///
    /// [`Error::Dockerfile`](crate::Error::Dockerfile) for what the Dockerfile gets wrong (with its line), what the
    /// executor or the base lookup returns, [`Error::Unsupported`](crate::Error::Unsupported) for ADD of a URL or a git
    /// source, heredocs, and RUN without an executor.
    pub fn run(&self) -> Result<BuildReport> {
        super::stage::run(self, None)
    }

    /// Runs the build in `store`, with its build cache, as `docker build` runs in the
    /// daemon's image store: FROM names resolve in the store (then through
    /// [`Build::base_images`] or [`Build::fetch_missing`]); each step's image is stored
    /// (untagged, as Docker's intermediate images), recorded under the step's cache key, and
    /// reused by a later step with the same key: the same parent image, the same instruction
    /// after expansion and the same config after it, and for COPY and ADD the same sources
    /// (the classic builder's hash of their contents and metadata, in the history row) and
    /// flags. A rebuild with nothing changed runs no command and writes nothing.
    /// [`Build::no_cache`] turns the reuse off. The image is returned as stored; tag it with
    /// [`Store::tag`]. [`Store::prune`] deletes the cache (every untagged image).
    ///
    /// # Errors
    ///
    /// As [`Build::run`], and the store's errors.
    ///
    /// ```
    /// use layercake::build::{Build, Context};
    /// use layercake::Store;
    ///
    /// let mut store = Store::new();
    /// let build = Build::new("FROM scratch\nCOPY a /a\nENV X=1\n").context(Context::new().file("a", "1"));
    /// let first = build.run_in(&mut store)?;
    /// assert!(first.steps.iter().all(|s| !s.cached));
    /// let again = build.run_in(&mut store)?;
    /// assert!(again.steps[1..].iter().all(|s| s.cached));
    /// assert_eq!(again.image.id(), first.image.id());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn run_in(&self, store: &mut Store) -> Result<BuildReport> {
        super::stage::run(self, Some(store))
    }
}
