//! How a build runs a RUN step: the [`Executor`] trait, and [`InProcess`], an executor that is
//! a closure over the step's [`Container`] (for tests, and for programs that change files
//! without running anything).

use std::fmt;

use crate::container::Container;
use crate::error::Result;

/// A RUN step as an executor gets it: the command after the shell form was wrapped (`SHELL`,
/// `/bin/sh -c` by default) and variables expanded where the reference says, with the
/// image's runtime settings.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunStep {
    /// The command and its arguments (`["/bin/sh", "-c", "make"]`).
    pub argv: Vec<String>,
    /// The environment, `KEY=value`: the image's `Env` and the build args in scope.
    pub env: Vec<String>,
    /// `USER` (`name`, `uid`, `uid:gid`); empty for root.
    pub user: String,
    /// `WORKDIR`; empty for `/`.
    pub workdir: String,
    /// Whether the command may use the host's network (`--network host`).
    pub network: Network,
}

impl RunStep {
    /// A step running `argv` as root in `/`, with no environment and no network.
    ///
    /// ```
    /// use layercake::build::RunStep;
    ///
    /// let step = RunStep::new(["/bin/sh", "-c", "echo hi > /greeting"]);
    /// assert_eq!(step.argv[2], "echo hi > /greeting");
    /// ```
    pub fn new<S: Into<String>>(argv: impl IntoIterator<Item = S>) -> RunStep {
        RunStep {
            argv: argv.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            user: String::new(),
            workdir: String::new(),
            network: Network::None,
        }
    }
}

/// The network a RUN step sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Network {
    /// None but loopback (the default: builds are not assumed to have a network).
    #[default]
    None,
    /// The host's (`--network host`).
    Host,
}

/// Runs RUN steps: changes `container`'s files as the command would. What it changes is
/// committed as the step's layer (nothing changed: an empty layer, as Docker records it).
///
/// # Errors
///
/// A command that fails (a non-zero exit) fails the build: the executor returns an error
/// that shows the command's output.
pub trait Executor: Send + Sync {
    /// Runs `step` on `container`.
    fn run(&self, container: &mut Container, step: &RunStep) -> Result<()>;
}

/// An executor that is a closure over the container: runs nothing, changes files in memory.
///
/// ```
/// use layercake::build::{Executor, InProcess, RunStep};
/// use layercake::{Container, Image};
///
/// let touch = InProcess::new(|container: &mut Container, step: &RunStep| {
///     container.write("ran", step.argv.join(" "))
/// });
/// let mut container = Container::new(&Image::builder().build()?)?;
/// touch.run(&mut container, &RunStep::new(["/bin/sh", "-c", "true"]))?;
/// assert_eq!(container.read("ran")?, "/bin/sh -c true");
/// # Ok::<(), layercake::Error>(())
/// ```
pub struct InProcess<F> {
    run: F,
}

impl<F> InProcess<F>
where
    F: Fn(&mut Container, &RunStep) -> Result<()> + Send + Sync,
{
    /// An executor that calls `run` for every RUN step.
    pub fn new(run: F) -> InProcess<F> {
        InProcess { run }
    }
}

impl<F> fmt::Debug for InProcess<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InProcess").finish_non_exhaustive()
    }
}

impl<F> Executor for InProcess<F>
where
    F: Fn(&mut Container, &RunStep) -> Result<()> + Send + Sync,
{
    fn run(&self, container: &mut Container, step: &RunStep) -> Result<()> {
        (self.run)(container, step)
    }
}
