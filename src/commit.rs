//! [`Commit`]: the metadata every new image records (author, message, time, runtime config),
//! one struct for each way an image is made.

use crate::config::{ConfigFile, ContainerConfig};

/// The metadata of a commit: who made the image, the message, when, and the runtime config,
/// as `docker commit --author --message --change` take them. One value serves every way an
/// image is made: [`ImageBuilder::commit`](crate::ImageBuilder::commit),
/// [`CommitOptions::commit`](crate::CommitOptions::commit),
/// [`ImportOptions::commit`](crate::archive::ImportOptions::commit) and
/// [`Image::squash`](crate::Image::squash).
///
/// The message is the config's top-level `comment`, and the `comment` of the history entry
/// the commit adds. Docker's JSON says "comment", and so do the types that mirror it
/// ([`History`](crate::config::History), [`Inspect`](crate::Inspect),
/// [`HistoryRow`](crate::HistoryRow)); what makes an image says "message". An author,
/// message or config left unset keeps what the image had; a time left unset is the
/// operation's default: the epoch for [`ImageBuilder`](crate::ImageBuilder) (reproducible,
/// also on a base), now for a container commit and an import, the image's own time for a
/// squash.
///
/// ```
/// use layercake::{Commit, CommitOptions, Container, Image};
///
/// let commit = Commit::new().author("Jane <jane@example.com>").message("add the app").created(0);
/// // The same metadata, whether the image is built, committed from a container or squashed.
/// let built = Image::builder().commit(commit.clone()).build()?;
/// let committed = Container::new(&built)?.commit(&CommitOptions::new().commit(commit.clone()))?;
/// let squashed = committed.squash(0, &commit)?;
/// for image in [&built, &committed, &squashed] {
///     let inspect = image.inspect();
///     assert_eq!((inspect.author.as_str(), inspect.comment.as_str()), ("Jane <jane@example.com>", "add the app"));
///     assert_eq!(inspect.created, "1970-01-01T00:00:00Z");
/// }
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Commit {
    pub(crate) author: Option<String>,
    pub(crate) message: Option<String>,
    pub(crate) created: Option<i64>,
    pub(crate) config: Option<ContainerConfig>,
    pub(crate) container_config: Option<ContainerConfig>,
    pub(crate) container: Option<String>,
}

impl Commit {
    /// Nothing set: every field keeps what the image had, or the operation's default.
    ///
    /// ```
    /// use layercake::Commit;
    ///
    /// let commit = Commit::new();
    /// assert_eq!((commit.author_in_force(), commit.message_in_force()), (None, None));
    /// assert_eq!((commit.created_in_force(), commit.config_in_force()), (None, None));
    /// ```
    pub fn new() -> Commit {
        Commit::default()
    }

    /// Sets the author (`docker commit --author`): the config's `author`, and the history
    /// entry's.
    ///
    /// ```
    /// use layercake::{Commit, Image};
    ///
    /// let image = Image::builder().commit(Commit::new().author("Jane")).build()?;
    /// assert_eq!(image.inspect().author, "Jane");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn author(mut self, author: impl Into<String>) -> Commit {
        self.author = Some(author.into());
        self
    }

    /// Sets the message (`docker commit --message`): the config's top-level `comment` and the
    /// `comment` of the history entry the commit adds.
    ///
    /// ```
    /// use layercake::{Commit, CommitOptions, Container, Image};
    ///
    /// let c = Container::new(&Image::builder().build()?)?;
    /// let image = c.commit(&CommitOptions::new().commit(Commit::new().message("install nginx")))?;
    /// assert_eq!(image.inspect().comment, "install nginx");
    /// assert_eq!(image.history()[0].comment, "install nginx");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn message(mut self, message: impl Into<String>) -> Commit {
        self.message = Some(message.into());
        self
    }

    /// Sets the creation time, seconds since the epoch.
    ///
    /// ```
    /// use layercake::{Commit, Image};
    ///
    /// let image = Image::builder().commit(Commit::new().created(1_700_000_000)).build()?;
    /// assert_eq!(image.inspect().created, "2023-11-14T22:13:20Z");
    /// // The time is part of the config, so of the id.
    /// assert_ne!(image.id(), Image::builder().build()?.id());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn created(mut self, secs: i64) -> Commit {
        self.created = Some(secs);
        self
    }

    /// Replaces the runtime config (`docker commit --change`). It is the whole
    /// [`ContainerConfig`], not a list of Dockerfile instructions: start from the image's
    /// ([`ImageConfig::container_config`](crate::ImageConfig::container_config)) and change it.
    ///
    /// ```
    /// use layercake::{Commit, CommitOptions, Container, Image};
    ///
    /// let base = Image::builder().cmd(["/bin/sh"]).build()?;
    /// let mut config = base.config().container_config().clone();
    /// config.working_dir = Some("/srv".into());
    /// let options = CommitOptions::new().commit(Commit::new().config(config));
    /// let image = Container::new(&base)?.commit(&options)?;
    /// assert_eq!(image.config().container_config().working_dir.as_deref(), Some("/srv"));
    /// assert_eq!(image.config().container_config().cmd, Some(vec!["/bin/sh".to_string()]));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn config(mut self, config: ContainerConfig) -> Commit {
        self.config = Some(config);
        self
    }

    /// Records the config of the container the image was made in: the config file's
    /// top-level `container_config`, as Docker's classic builder writes it for each step (the
    /// step's run config with `Cmd` the command it ran, `Image` the parent image's id). It
    /// describes how the image was made, not how it runs: [`Commit::config`] is that. Setting
    /// it drops a `container` the image had unless [`Commit::container`] names one, since
    /// both name the same container. Left unset, the config file keeps what it had.
    ///
    /// ```
    /// use layercake::config::ContainerConfig;
    /// use layercake::{Commit, Image};
    ///
    /// let base = Image::builder().env("A=1").commit(Commit::new().container("ab".repeat(32))).build()?;
    /// let mut ran = base.config().container_config().clone();
    /// ran.cmd = Some(vec!["/bin/sh".into(), "-c".into(), "#(nop) ".into(), "ENV A=1".into()]);
    /// let step = Image::builder().base(&base).commit(Commit::new().container_config(ran)).build()?;
    /// let file = step.config().file();
    /// assert_eq!(file.extra["container_config"]["Cmd"][3], "ENV A=1");
    /// assert_eq!(step.config().container_config().cmd, None, "the runtime config is unchanged");
    /// assert!(!file.extra.contains_key("container"), "the base's container is not this step's");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn container_config(mut self, config: ContainerConfig) -> Commit {
        self.container_config = Some(config);
        self
    }

    /// Names the container the image was made in: the config file's top-level `container`
    /// (Docker writes the container's 64-hex id).
    ///
    /// ```
    /// use layercake::{Commit, Image};
    ///
    /// let id = "ab".repeat(32);
    /// let image = Image::builder().commit(Commit::new().container(id.clone())).build()?;
    /// assert_eq!(image.config().file().extra["container"], id.as_str());
    /// // Unused, nothing is written: ids stay as they were.
    /// assert!(!Image::builder().build()?.config().file().extra.contains_key("container"));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn container(mut self, id: impl Into<String>) -> Commit {
        self.container = Some(id.into());
        self
    }

    /// The author in force, if set.
    ///
    /// ```
    /// use layercake::Commit;
    ///
    /// assert_eq!(Commit::new().author("Jane").author_in_force(), Some("Jane"));
    /// ```
    pub fn author_in_force(&self) -> Option<&str> {
        self.author.as_deref()
    }

    /// The message in force, if set.
    ///
    /// ```
    /// use layercake::Commit;
    ///
    /// assert_eq!(Commit::new().message("fix").message_in_force(), Some("fix"));
    /// ```
    pub fn message_in_force(&self) -> Option<&str> {
        self.message.as_deref()
    }

    /// The creation time in force (seconds since the epoch), if set.
    ///
    /// ```
    /// use layercake::Commit;
    ///
    /// assert_eq!(Commit::new().created(60).created_in_force(), Some(60));
    /// ```
    pub fn created_in_force(&self) -> Option<i64> {
        self.created
    }

    /// The runtime config in force, if set.
    ///
    /// ```
    /// use layercake::config::ContainerConfig;
    /// use layercake::Commit;
    ///
    /// let commit = Commit::new().config(ContainerConfig::default());
    /// assert_eq!(commit.config_in_force(), Some(&ContainerConfig::default()));
    /// ```
    pub fn config_in_force(&self) -> Option<&ContainerConfig> {
        self.config.as_ref()
    }

    /// `other`'s fields where it sets them, this one's elsewhere.
    pub(crate) fn merged(mut self, other: Commit) -> Commit {
        self.author = other.author.or(self.author);
        self.message = other.message.or(self.message);
        self.created = other.created.or(self.created);
        self.config = other.config.or(self.config);
        self.container_config = other.container_config.or(self.container_config);
        self.container = other.container.or(self.container);
        self
    }

    /// Writes the commit into a config file: `created` (or `default_created`, or the file's
    /// own time if both are `None`), author, message and config. Returns the time written.
    pub(crate) fn apply(
        &self,
        file: &mut ConfigFile,
        default_created: Option<i64>,
    ) -> Option<String> {
        if let Some(secs) = self.created.or(default_created) {
            file.created = Some(crate::config::rfc3339(secs));
        }
        if self.author.is_some() {
            file.author = self.author.clone();
        }
        if self.message.is_some() {
            file.comment = self.message.clone();
        }
        if let Some(config) = &self.config {
            file.config = config.clone();
        }
        if let Some(config) = &self.container_config {
            // Serialising these types cannot fail: every key is a string.
            let value = serde_json::to_value(config).unwrap_or_default();
            file.extra.insert("container_config".into(), value);
            file.extra.remove("container");
        }
        if let Some(id) = &self.container {
            file.extra.insert("container".into(), id.clone().into());
        }
        file.created.clone()
    }
}
