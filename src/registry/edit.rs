//! Edits made in a registry, as `crane append`, `crane rebase` and `crane mutate` make them:
//! the manifest and config are read, a new config and manifest written, and only what is new
//! moves (an appended layer, the config); the other blobs are found in the destination or
//! mounted from the repository they are in, and streamed from it only across registries.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;

use bytes::Bytes;

use super::{Client, PushOptions, PushReport, RemoteImage, Transfer};
use crate::archive::oci::{Descriptor, Manifest, Platform, DOCKER_MANIFEST_V2};
use crate::codec::Compression;
use crate::config::{rfc3339, ConfigFile, ContainerConfig, History, ImageConfig, Timestamp};
use crate::contents::Contents;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image::rebase_config;
use crate::layer::Layer;
use crate::reference::Reference;

/// Docker's media type of a gzip layer, which a Docker v2 manifest names its layers with.
const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker's media type of a plain tar layer.
const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
/// Docker's foreign (non-distributable) layer.
const DOCKER_FOREIGN_GZIP: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
/// The OCI spelling of a non-distributable gzip layer.
const OCI_FOREIGN_GZIP: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";

/// The callback that hears an edit's progress.
type ProgressFn<'a> = Box<dyn FnMut(&Transfer) + Send + 'a>;

/// The history row [`Client::append`] writes for each layer.
const APPEND_ROW: &str = "layercake append";

/// A change to an image's runtime config, as `crane mutate` and `docker commit --change`
/// make it: entrypoint, command, environment, labels, working directory, user.
///
/// Built by value; applied to a config with [`ConfigChange::apply`], or in a registry with
/// [`Client::mutate`]. Its `Display` is the change as Dockerfile instructions (`ENV A=1;
/// USER nobody`), which is what the history row of the edit says.
///
/// ```
/// use layercake::config::ContainerConfig;
/// use layercake::registry::ConfigChange;
///
/// let change = ConfigChange::new()
///     .entrypoint(["/bin/app"])
///     .env("PATH", "/app/bin:/bin")
///     .env("LANG", "C.UTF-8")
///     .label("org.opencontainers.image.version", "1.1")
///     .workdir("/app")
///     .user("nobody");
/// let mut config = ContainerConfig::default();
/// config.env = vec!["PATH=/bin".into()];
/// config.cmd = Some(vec!["sh".into()]);
/// change.apply(&mut config)?;
/// // An existing variable keeps its place; a new one goes last.
/// assert_eq!(config.env, ["PATH=/app/bin:/bin", "LANG=C.UTF-8"]);
/// // A new entrypoint drops the old command, as Docker does.
/// assert_eq!((config.entrypoint.unwrap(), config.cmd), (vec!["/bin/app".to_string()], None));
/// assert_eq!(config.working_dir.as_deref(), Some("/app"));
/// assert_eq!(
///     change.to_string(),
///     r#"ENTRYPOINT ["/bin/app"]; ENV PATH=/app/bin:/bin LANG=C.UTF-8; LABEL org.opencontainers.image.version=1.1; WORKDIR /app; USER nobody"#
/// );
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigChange {
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    env: Vec<(String, String)>,
    labels: BTreeMap<String, String>,
    workdir: Option<String>,
    user: Option<String>,
}

impl ConfigChange {
    /// No change.
    ///
    /// ```
    /// use layercake::registry::ConfigChange;
    ///
    /// assert!(ConfigChange::new().is_empty());
    /// assert!(!ConfigChange::new().user("nobody").is_empty());
    /// ```
    pub fn new() -> ConfigChange {
        ConfigChange::default()
    }

    /// Sets the entrypoint (exec form). Unless [`ConfigChange::cmd`] is given too, the
    /// command is dropped, as Docker drops an inherited `CMD` when `ENTRYPOINT` is set.
    ///
    /// ```
    /// use layercake::config::ContainerConfig;
    /// use layercake::registry::ConfigChange;
    ///
    /// let mut config = ContainerConfig::default();
    /// config.cmd = Some(vec!["sh".into()]);
    /// ConfigChange::new().entrypoint(["tini", "--"]).cmd(["app"]).apply(&mut config)?;
    /// assert_eq!(config.cmd, Some(vec!["app".to_string()]), "given together, both are set");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn entrypoint<S: Into<String>>(mut self, words: impl IntoIterator<Item = S>) -> Self {
        self.entrypoint = Some(words.into_iter().map(Into::into).collect());
        self
    }

    /// Sets the command (exec form).
    ///
    /// ```
    /// use layercake::config::ContainerConfig;
    /// use layercake::registry::ConfigChange;
    ///
    /// let mut config = ContainerConfig::default();
    /// ConfigChange::new().cmd(["nginx", "-g", "daemon off;"]).apply(&mut config)?;
    /// assert_eq!(config.cmd.unwrap().len(), 3);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn cmd<S: Into<String>>(mut self, words: impl IntoIterator<Item = S>) -> Self {
        self.cmd = Some(words.into_iter().map(Into::into).collect());
        self
    }

    /// Sets an environment variable: replaced in place if the config has it, added last
    /// otherwise.
    ///
    /// ```
    /// use layercake::config::ContainerConfig;
    /// use layercake::registry::ConfigChange;
    ///
    /// let mut config = ContainerConfig::default();
    /// config.env = vec!["A=1".into(), "B=2".into()];
    /// ConfigChange::new().env("A", "one").env("C", "3").apply(&mut config)?;
    /// assert_eq!(config.env, ["A=one", "B=2", "C=3"]);
    /// // A key with `=` cannot be written as `KEY=value`.
    /// assert!(ConfigChange::new().env("A=B", "1").apply(&mut config).is_err());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let key = key.into();
        let value = value.into();
        match self.env.iter_mut().find(|(k, _)| *k == key) {
            Some(var) => var.1 = value,
            None => self.env.push((key, value)),
        }
        self
    }

    /// Sets a label.
    ///
    /// ```
    /// use layercake::config::ContainerConfig;
    /// use layercake::registry::ConfigChange;
    ///
    /// let mut config = ContainerConfig::default();
    /// ConfigChange::new().label("maintainer", "cake@example.com").apply(&mut config)?;
    /// assert_eq!(config.labels["maintainer"], "cake@example.com");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Sets the working directory.
    ///
    /// ```
    /// use layercake::config::ContainerConfig;
    /// use layercake::registry::ConfigChange;
    ///
    /// let mut config = ContainerConfig::default();
    /// ConfigChange::new().workdir("/srv").apply(&mut config)?;
    /// assert_eq!(config.working_dir.as_deref(), Some("/srv"));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn workdir(mut self, dir: impl Into<String>) -> Self {
        self.workdir = Some(dir.into());
        self
    }

    /// Sets the user (`name`, `uid`, `uid:gid`).
    ///
    /// ```
    /// use layercake::config::ContainerConfig;
    /// use layercake::registry::ConfigChange;
    ///
    /// let mut config = ContainerConfig::default();
    /// ConfigChange::new().user("65534:65534").apply(&mut config)?;
    /// assert_eq!(config.user.as_deref(), Some("65534:65534"));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Whether nothing would change.
    ///
    /// ```
    /// use layercake::registry::ConfigChange;
    ///
    /// assert!(ConfigChange::new().is_empty());
    /// assert!(!ConfigChange::new().label("a", "b").is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        *self == ConfigChange::default()
    }

    /// Makes the change to `config`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for an environment variable whose name is empty or holds
    /// `=`, or an empty label key; `config` is left as it was.
    ///
    /// ```
    /// use layercake::config::ContainerConfig;
    /// use layercake::registry::ConfigChange;
    ///
    /// let mut config = ContainerConfig::default();
    /// ConfigChange::new().user("nobody").env("HOME", "/nonexistent").apply(&mut config)?;
    /// assert_eq!(config.env, ["HOME=/nonexistent"]);
    /// assert!(ConfigChange::new().env("", "x").apply(&mut config).is_err());
    /// assert_eq!(config.env, ["HOME=/nonexistent"], "unchanged by a refused change");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn apply(&self, config: &mut ContainerConfig) -> Result<()> {
        for (key, _) in &self.env {
            if key.is_empty() || key.contains('=') {
                return Err(Error::config(format!(
                    "environment variable name `{key}`: empty or holding `=`"
                )));
            }
        }
        if self.labels.contains_key("") {
            return Err(Error::config("empty label key"));
        }
        if let Some(entrypoint) = &self.entrypoint {
            config.entrypoint = Some(entrypoint.clone());
            config.cmd = None;
        }
        if let Some(cmd) = &self.cmd {
            config.cmd = Some(cmd.clone());
        }
        for (key, value) in &self.env {
            let var = format!("{key}={value}");
            let at = config
                .env
                .iter()
                .position(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key);
            match at {
                Some(i) => config.env[i] = var,
                None => config.env.push(var),
            }
        }
        for (key, value) in &self.labels {
            config.labels.insert(key.clone(), value.clone());
        }
        if let Some(dir) = &self.workdir {
            config.working_dir = Some(dir.clone());
        }
        if let Some(user) = &self.user {
            config.user = Some(user.clone());
        }
        Ok(())
    }
}

impl fmt::Display for ConfigChange {
    /// The change as Dockerfile instructions, `; `-separated.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let json = |words: &Vec<String>| serde_json::to_string(words).unwrap_or_default();
        let mut parts = Vec::new();
        if let Some(entrypoint) = &self.entrypoint {
            parts.push(format!("ENTRYPOINT {}", json(entrypoint)));
        }
        if let Some(cmd) = &self.cmd {
            parts.push(format!("CMD {}", json(cmd)));
        }
        if !self.env.is_empty() {
            let vars: Vec<String> = self.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
            parts.push(format!("ENV {}", vars.join(" ")));
        }
        if !self.labels.is_empty() {
            let labels: Vec<String> = self
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            parts.push(format!("LABEL {}", labels.join(" ")));
        }
        if let Some(dir) = &self.workdir {
            parts.push(format!("WORKDIR {dir}"));
        }
        if let Some(user) = &self.user {
            parts.push(format!("USER {user}"));
        }
        f.write_str(&parts.join("; "))
    }
}

/// How [`Client::append`], [`Client::rebase`] and [`Client::mutate`] edit: which image of
/// an index, the new image's time, who hears progress.
///
/// ```
/// use layercake::archive::Platform;
/// use layercake::registry::EditOptions;
///
/// let options = EditOptions::new()
///     .platform(Platform::parse("linux/arm64")?)
///     .created(1_700_000_000)
///     .progress(|transfer| eprintln!("{transfer:?}"));
/// assert!(format!("{options:?}").contains("1700000000"));
/// # Ok::<(), layercake::Error>(())
/// ```
pub struct EditOptions<'a> {
    platform: Option<Platform>,
    created: Option<i64>,
    progress: Option<ProgressFn<'a>>,
}

impl fmt::Debug for EditOptions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EditOptions")
            .field("platform", &self.platform)
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}

impl Default for EditOptions<'_> {
    fn default() -> Self {
        EditOptions::new()
    }
}

impl<'a> EditOptions<'a> {
    /// The host's platform from an index, the image's own time kept, no progress.
    ///
    /// ```
    /// use layercake::registry::EditOptions;
    ///
    /// let options = EditOptions::new();
    /// assert!(format!("{options:?}").contains("created: None"));
    /// ```
    pub fn new() -> EditOptions<'a> {
        EditOptions {
            platform: None,
            created: None,
            progress: None,
        }
    }

    /// The image to edit when a reference names an index (default: the host's platform).
    /// The result is that one image, not an index.
    ///
    /// ```
    /// use layercake::archive::Platform;
    /// use layercake::registry::EditOptions;
    ///
    /// let options = EditOptions::new().platform(Platform::parse("linux/arm/v7")?);
    /// assert!(format!("{options:?}").contains("v7"));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn platform(mut self, platform: Platform) -> EditOptions<'a> {
        self.platform = Some(platform);
        self
    }

    /// The new image's creation time, in seconds since the epoch, and the time of the
    /// history rows the edit adds. Default: the image keeps its time, and the rows have
    /// none, so the same edit of the same image gives the same digest.
    ///
    /// ```
    /// use layercake::registry::EditOptions;
    ///
    /// let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    /// let options = EditOptions::new().created(now.as_secs() as i64);
    /// assert!(format!("{options:?}").contains(&now.as_secs().to_string()));
    /// ```
    pub fn created(mut self, secs: i64) -> EditOptions<'a> {
        self.created = Some(secs);
        self
    }

    /// Hears every blob's progress: [`Transfer::Exists`], [`Transfer::Mounted`],
    /// [`Transfer::Moving`], [`Transfer::Done`].
    ///
    /// ```no_run
    /// use layercake::registry::{Client, ConfigChange, EditOptions, Transfer};
    /// use layercake::Reference;
    ///
    /// let image = Reference::parse("127.0.0.1:5000/app:1")?;
    /// let mut mounted = 0;
    /// let options = EditOptions::new().progress(|t| {
    ///     if let Transfer::Mounted { .. } = t {
    ///         mounted += 1;
    ///     }
    /// });
    /// let change = ConfigChange::new().user("nobody");
    /// Client::new().mutate(&image, &change, &image.with_tag("nobody")?, options)?;
    /// println!("{mounted} layers mounted, none uploaded");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn progress(mut self, progress: impl FnMut(&Transfer) + Send + 'a) -> EditOptions<'a> {
        self.progress = Some(Box::new(progress));
        self
    }
}

/// Where a blob of the new image comes from.
enum Source<'a> {
    /// A repository that has it (the base's, the image's).
    Remote(&'a Reference),
    /// Bytes made here: a layer blob, the config.
    Local(Contents),
}

/// An image read from a registry for an edit: its manifest parsed, its config, its layers.
struct Base {
    remote: RemoteImage,
    manifest: Manifest,
}

impl Base {
    /// Whether its manifest is Docker's (v2 schema 2) rather than OCI's.
    fn is_docker(&self) -> bool {
        self.remote.manifest.0.media_type == DOCKER_MANIFEST_V2
    }

    /// The media type of a layer blob in a manifest of this image's family.
    fn layer_type(&self, media_type: &str) -> String {
        let (docker, oci) = (self.is_docker(), !self.is_docker());
        let gzip = Compression::Gzip.oci_layer_media_type();
        let tar = Compression::None.oci_layer_media_type();
        match media_type {
            t if docker && t == gzip => DOCKER_LAYER_GZIP,
            t if docker && t == tar => DOCKER_LAYER_TAR,
            t if docker && t == OCI_FOREIGN_GZIP => DOCKER_FOREIGN_GZIP,
            DOCKER_LAYER_GZIP if oci => gzip,
            DOCKER_LAYER_TAR if oci => tar,
            DOCKER_FOREIGN_GZIP if oci => OCI_FOREIGN_GZIP,
            other => other,
        }
        .to_owned()
    }
}

impl Client {
    /// Appends layers to the image `base` names and puts the result under `to`, as
    /// `crane append` does: each layer is pushed gzip-compressed (compressed here if it is
    /// not), the config gains its DiffIds and a `layercake append` history row each, and
    /// the base's blobs are not moved: found in `to`'s repository, or mounted from the
    /// base's when both are on one registry (streamed from it otherwise). The manifest is of
    /// the base's kind (Docker v2 or OCI).
    ///
    /// # Errors
    ///
    /// As [`Client::fetch`] for the base; the errors of compressing a layer; as
    /// [`Client::push`] for the destination.
    ///
    /// ```no_run
    /// use layercake::registry::{Client, EditOptions};
    /// use layercake::{Layer, Reference};
    ///
    /// let layer = Layer::builder().file("app/run", "#!/bin/sh\necho hi\n").build()?;
    /// let base = Reference::parse("127.0.0.1:5000/busybox:1")?;
    /// let to = Reference::parse("127.0.0.1:5000/app:1")?;
    /// let report = Client::new().append(&base, &[layer], &to, EditOptions::new())?;
    /// println!("{}: digest: {} size: {}", to.tag().unwrap(), report.manifest.digest, report.manifest.size);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn append(
        &self,
        base: &Reference,
        layers: &[Layer],
        to: &Reference,
        mut options: EditOptions<'_>,
    ) -> Result<PushReport> {
        let image = self.base(base, &options)?;
        let mut file = image.remote.config.file().clone();
        let mut blobs: Vec<(Descriptor, Source<'_>)> = image
            .manifest
            .layers
            .iter()
            .map(|d| (d.clone(), Source::Remote(base)))
            .collect();
        for layer in layers {
            let gzip = Compression::Gzip;
            let layer = layer.compress(gzip, gzip.default_level())?;
            let blob = layer.blob();
            let media_type = image.layer_type(gzip.oci_layer_media_type());
            let desc = Descriptor::of_blob(&media_type, blob.digest(), blob.size());
            blobs.push((desc, Source::Local(blob.contents().clone())));
            file.rootfs.diff_ids.push(layer.diff_id());
            file.history.push(row(APPEND_ROW, false, options.created));
        }
        set_created(&mut file, options.created);
        self.put_edited(to, &image, file, blobs, &mut options)
    }

    /// Moves the image `image` names from the base `old_base` names onto `new_base`'s, as
    /// `crane rebase` does, and puts the result under `to`: the layers above the old base
    /// and the image's runtime config are kept ([`Image::rebase`](crate::Image::rebase)
    /// says how the config and history are made). No layer is moved: the new base's are
    /// mounted from its repository and the image's own from its (streamed across
    /// registries). The manifest is of the image's kind (Docker v2 or OCI).
    ///
    /// # Errors
    ///
    /// [`Error::DigestMismatch`] if the image's bottom layers are not the old base's, by
    /// blob digest or by DiffId, and [`Error::LayerOutOfRange`] if it has fewer; as
    /// [`Client::fetch`] for the three images and [`Client::push`] for the destination.
    ///
    /// ```no_run
    /// use layercake::registry::{Client, EditOptions};
    /// use layercake::Reference;
    ///
    /// let r = |text| Reference::parse(text);
    /// let report = Client::new().rebase(
    ///     &r("127.0.0.1:5000/app:1")?,
    ///     &r("127.0.0.1:5000/debian:12.1")?,
    ///     &r("127.0.0.1:5000/debian:12.2")?,
    ///     &r("127.0.0.1:5000/app:1-rebased")?,
    ///     EditOptions::new(),
    /// )?;
    /// println!("{}", report.manifest.digest);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn rebase(
        &self,
        image: &Reference,
        old_base: &Reference,
        new_base: &Reference,
        to: &Reference,
        mut options: EditOptions<'_>,
    ) -> Result<PushReport> {
        let top = self.base(image, &options)?;
        let old = self.base(old_base, &options)?;
        let new = self.base(new_base, &options)?;
        let (mine, below) = (&top.manifest.layers, &old.manifest.layers);
        if below.len() > mine.len() {
            return Err(Error::LayerOutOfRange {
                index: below.len() - 1,
                layers: mine.len(),
            });
        }
        for (i, (have, want)) in mine.iter().zip(below).enumerate() {
            if have.digest != want.digest {
                return Err(Error::DigestMismatch {
                    what: format!(
                        "rebase: layer blob {i} of {image} is not layer blob {i} of {old_base}"
                    ),
                    expected: want.digest,
                    actual: have.digest,
                });
            }
        }
        let mut file = rebase_config(
            top.remote.config.file(),
            old.remote.config.file(),
            new.remote.config.file(),
        )?;
        set_created(&mut file, options.created);
        let blobs = new
            .manifest
            .layers
            .iter()
            .map(|d| (d, Source::Remote(new_base)))
            .chain(
                mine[below.len()..]
                    .iter()
                    .map(|d| (d, Source::Remote(image))),
            )
            .map(|(d, source)| {
                let mut desc = d.clone();
                desc.media_type = top.layer_type(&d.media_type);
                (desc, source)
            })
            .collect();
        self.put_edited(to, &top, file, blobs, &mut options)
    }

    /// Changes the runtime config of the image `image` names and puts the result under
    /// `to`, as `crane mutate` does: a new config (with an empty-layer history row that
    /// says the change as Dockerfile instructions) and manifest; the layers are the image's,
    /// found in `to`'s repository or mounted from the image's.
    ///
    /// # Errors
    ///
    /// As [`ConfigChange::apply`]; as [`Client::fetch`] for the image and [`Client::push`]
    /// for the destination.
    ///
    /// ```no_run
    /// use layercake::registry::{Client, ConfigChange, EditOptions};
    /// use layercake::Reference;
    ///
    /// let image = Reference::parse("127.0.0.1:5000/app:1")?;
    /// let change = ConfigChange::new().env("LOG_LEVEL", "debug").user("nobody");
    /// let to = image.with_tag("1-debug")?;
    /// Client::new().mutate(&image, &change, &to, EditOptions::new())?;
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn mutate(
        &self,
        image: &Reference,
        change: &ConfigChange,
        to: &Reference,
        mut options: EditOptions<'_>,
    ) -> Result<PushReport> {
        let top = self.base(image, &options)?;
        let mut file = top.remote.config.file().clone();
        change.apply(&mut file.config)?;
        file.history
            .push(row(&change.to_string(), true, options.created));
        set_created(&mut file, options.created);
        let blobs = top
            .manifest
            .layers
            .iter()
            .map(|d| (d.clone(), Source::Remote(image)))
            .collect();
        self.put_edited(to, &top, file, blobs, &mut options)
    }

    /// Reads the manifest and config of an image to edit, checking that they agree.
    fn base(&self, reference: &Reference, options: &EditOptions<'_>) -> Result<Base> {
        let remote = self.fetch(reference, options.platform.as_ref())?;
        let (desc, bytes) = &remote.manifest;
        let manifest: Manifest =
            serde_json::from_slice(bytes).map_err(|e| Error::InvalidArchive {
                path: Some(format!("manifest {} of {reference}", desc.digest)),
                reason: "not an image manifest".into(),
                source: Some(e),
            })?;
        let diff_ids = remote.config.file().rootfs.diff_ids.len();
        if diff_ids != manifest.layers.len() {
            return Err(Error::config(format!(
                "manifest {} of {reference} lists {} layers, its config {diff_ids}",
                desc.digest,
                manifest.layers.len()
            )));
        }
        Ok(Base { remote, manifest })
    }

    /// Puts the blobs `to`'s repository lacks (several at once, mounted from their
    /// repository when it is on the same registry), the config `file` makes, then a manifest
    /// of `base`'s kind naming them.
    fn put_edited(
        &self,
        to: &Reference,
        base: &Base,
        file: ConfigFile,
        blobs: Vec<(Descriptor, Source<'_>)>,
        options: &mut EditOptions<'_>,
    ) -> Result<PushReport> {
        let config = ImageConfig::from_file(file)?;
        let config_desc = Descriptor::of(&base.manifest.config.media_type, config.as_bytes());
        let manifest = Manifest {
            schema_version: 2,
            media_type: base.manifest.media_type.clone(),
            config: config_desc.clone(),
            layers: blobs.iter().map(|(d, _)| d.clone()).collect(),
            annotations: base.manifest.annotations.clone(),
            extra: BTreeMap::new(),
        };
        let bytes = Bytes::from(crate::archive::oci::to_json(&manifest)?);
        let desc = Descriptor::of(&base.remote.manifest.0.media_type, &bytes);
        let mut sources: BTreeMap<Digest, Source<'_>> = blobs
            .into_iter()
            .map(|(desc, source)| (desc.digest, source))
            .collect();
        sources.insert(
            config_desc.digest,
            Source::Local(Contents::from(config.as_bytes().clone())),
        );
        let open = |desc: &Descriptor| -> Result<Box<dyn Read + Send>> {
            match sources.get(&desc.digest) {
                Some(Source::Remote(from)) => Ok(Box::new(self.blob(from, desc)?)),
                Some(Source::Local(contents)) => Ok(Box::new(contents.reader())),
                None => Err(Error::MissingBlob {
                    digest: desc.digest,
                    path: None,
                }),
            }
        };
        let mounts = |digest: &Digest| match sources.get(digest) {
            Some(Source::Remote(from))
                if from.domain() == to.domain() && from.repository() != to.repository() =>
            {
                vec![from.repository().to_owned()]
            }
            _ => Vec::new(),
        };
        let no_index = |desc: &Descriptor| -> Result<Bytes> {
            Err(Error::MissingBlob {
                digest: desc.digest,
                path: None,
            })
        };
        let source = super::push::Source {
            blob: &open,
            manifest: &no_index,
            mounts: &mounts,
        };
        let mut push = PushOptions::new();
        push.progress = options.progress.take();
        self.push_top(&source, &desc, &bytes, to, push)
    }
}

/// A history row an edit adds.
fn row(created_by: &str, empty_layer: bool, created: Option<i64>) -> History {
    let mut row = History::new(created_by);
    row.created = created.map(Timestamp::from_unix);
    row.empty_layer = empty_layer;
    row
}

/// Sets the config's creation time, when one is given.
fn set_created(file: &mut ConfigFile, created: Option<i64>) {
    if let Some(secs) = created {
        file.created = Some(rfc3339(secs));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_keeps_order_and_replaces_by_name() {
        let mut config = ContainerConfig {
            env: vec!["PATH=/bin".into(), "NOVALUE".into(), "A=1".into()],
            ..ContainerConfig::default()
        };
        ConfigChange::new()
            .env("A", "2")
            .env("NOVALUE", "x")
            .env("B", "=")
            .apply(&mut config)
            .unwrap();
        assert_eq!(config.env, ["PATH=/bin", "NOVALUE=x", "A=2", "B=="]);
    }

    #[test]
    fn a_refused_change_changes_nothing() {
        let mut config = ContainerConfig::default();
        let change = ConfigChange::new().user("nobody").label("", "x");
        assert!(change.apply(&mut config).is_err());
        assert_eq!(config, ContainerConfig::default());
    }

    #[test]
    fn rows_say_what_changed() {
        let change = ConfigChange::new().cmd(["a b", "c"]).user("1:1");
        assert_eq!(change.to_string(), r#"CMD ["a b","c"]; USER 1:1"#);
        let history = row(&change.to_string(), true, Some(0));
        assert!(history.empty_layer);
        assert_eq!(history.created.unwrap().as_str(), "1970-01-01T00:00:00Z");
    }
}
