//! [`ImageConfig`]: an image's configuration JSON, kept byte for byte, with a typed view
//! ([`ConfigFile`], [`ContainerConfig`], [`History`]) in the shape of the OCI image spec and
//! Docker's extensions.
//!
//! The ImageId is the SHA-256 of the stored bytes, so loading never rewrites them. Fields the
//! typed view does not know survive in `extra`, and a config this crate creates is written
//! with its keys in a fixed order (serde's field order, then `extra` sorted).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::digest::{DiffId, Digest, ImageId};
use crate::error::{Error, Result};
pub use crate::timestamp::Timestamp;

/// The typed view of an image config (`application/vnd.oci.image.config.v1+json`).
///
/// ```
/// use layercake::config::ConfigFile;
///
/// let json = br#"{"architecture":"amd64","os":"linux",
///   "config":{"Env":["PATH=/bin"],"Cmd":["sh"],"Healthcheck":{"Test":["NONE"]}},
///   "rootfs":{"type":"layers","diff_ids":[]},"docker_version":"20.10.24"}"#;
/// let config: ConfigFile = serde_json::from_slice(json)?;
/// assert_eq!(config.config.cmd, Some(vec!["sh".to_string()]));
/// assert!(config.config.healthcheck.is_some());
/// assert!(config.extra.contains_key("docker_version"));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ConfigFile {
    /// When the image was created (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Who created it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// CPU architecture (`amd64`, `arm64`, ...).
    #[serde(default)]
    pub architecture: String,
    /// CPU variant (`v8`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Operating system (`linux`).
    #[serde(default)]
    pub os: String,
    /// The runtime defaults for a container of this image.
    #[serde(default)]
    pub config: ContainerConfig,
    /// The layer DiffIds, bottom first.
    pub rootfs: RootFs,
    /// One entry per build step, bottom first; steps that made no layer are `empty_layer`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
    /// Docker's top-level commit message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Every field the typed view does not name, kept as it was.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// The `rootfs` of a config: the DiffIds of the layers, bottom first.
///
/// ```
/// use layercake::{Image, Layer};
///
/// let layer = Layer::builder().file("a", "1").build()?;
/// let image = Image::builder().layer(layer.clone()).build()?;
/// let rootfs = &image.config().file().rootfs;
/// assert_eq!(rootfs.kind, "layers");
/// assert_eq!(rootfs.diff_ids, [layer.diff_id()]);
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RootFs {
    /// Always `layers`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The DiffIds, bottom first.
    #[serde(default)]
    pub diff_ids: Vec<DiffId>,
}

/// The runtime defaults of an image (the `config` object; Docker's capitalised names).
///
/// ```
/// use layercake::config::ContainerConfig;
///
/// let mut c = ContainerConfig::default();
/// c.env.push("PATH=/usr/bin:/bin".into());
/// c.cmd = Some(vec!["/bin/sh".into()]);
/// c.exposed_ports.insert("80/tcp".into());
/// let json = serde_json::to_string(&c)?;
/// assert_eq!(
///     json,
///     r#"{"Env":["PATH=/usr/bin:/bin"],"Cmd":["/bin/sh"],"ExposedPorts":{"80/tcp":{}}}"#
/// );
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct ContainerConfig {
    /// User (and group) the process runs as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Environment, `KEY=value`.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub env: Vec<String>,
    /// The executable and its first arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// The default command (or arguments to the entrypoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    /// Working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Labels.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
    /// Exposed ports, `80/tcp`.
    #[serde(
        default,
        with = "set_as_object",
        skip_serializing_if = "BTreeSet::is_empty"
    )]
    pub exposed_ports: BTreeSet<String>,
    /// Volumes.
    #[serde(
        default,
        with = "set_as_object",
        skip_serializing_if = "BTreeSet::is_empty"
    )]
    pub volumes: BTreeSet<String>,
    /// The signal that stops the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// Docker's health check, kept as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Value>,
    /// Every field not named above (`OnBuild`, `ArgsEscaped`, `Shell`, ...), kept.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// One step of an image's history (`docker history` shows these newest first).
///
/// ```
/// use layercake::config::History;
///
/// let created = "2024-01-01T00:00:00Z".parse()?;
/// let h = History::new("RUN make").comment("build").author("ci").created(created);
/// assert_eq!(
///     serde_json::to_string(&h)?,
///     r#"{"created":"2024-01-01T00:00:00Z","created_by":"RUN make","author":"ci","#.to_owned()
///         + r#""comment":"build"}"#
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct History {
    /// When the step ran: RFC 3339, typed, its text kept as read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<Timestamp>,
    /// The command of the step (`/bin/sh -c #(nop) ENV ...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// Who ran it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// A free comment (`docker commit -m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Whether this step made no layer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

impl History {
    /// A history entry for a step that ran `created_by`.
    ///
    /// ```
    /// let h = layercake::config::History::new("COPY app /app");
    /// assert_eq!(h.created_by.as_deref(), Some("COPY app /app"));
    /// ```
    pub fn new(created_by: impl Into<String>) -> History {
        History {
            created_by: Some(created_by.into()),
            ..History::default()
        }
    }

    /// Sets the comment.
    ///
    /// ```
    /// use layercake::config::History;
    /// use layercake::{Image, Layer};
    ///
    /// let layer = Layer::builder().file("app", "").build()?;
    /// let image = Image::builder()
    ///     .layer_with(layer, History::new("RUN make").comment("built by CI"))
    ///     .build()?;
    /// assert_eq!(image.history()[0].comment, "built by CI");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn comment(mut self, comment: impl Into<String>) -> History {
        self.comment = Some(comment.into());
        self
    }

    /// Sets the author.
    ///
    /// ```
    /// use layercake::config::History;
    /// use layercake::{Commit, Image, Layer};
    ///
    /// let layer = Layer::builder().file("app", "").build()?;
    /// let image = Image::builder()
    ///     .commit(Commit::new().author("Jane"))
    ///     .layer_with(layer, History::new("COPY . /").author("ci-bot"))
    ///     .build()?;
    /// assert_eq!(
    ///     image.config().file().history[0].author.as_deref(),
    ///     Some("ci-bot"),
    ///     "its own author wins"
    /// );
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn author(mut self, author: impl Into<String>) -> History {
        self.author = Some(author.into());
        self
    }

    /// Sets the creation time.
    ///
    /// ```
    /// use layercake::config::{History, Timestamp};
    /// use layercake::{Image, Layer};
    ///
    /// let layer = Layer::builder().file("app", "").build()?;
    /// let step = History::new("COPY app /").created("2024-01-01T00:00:00Z".parse()?);
    /// let image = Image::builder().layer_with(layer, step).build()?;
    /// assert_eq!(image.history()[0].created, "2024-01-01T00:00:00Z", "not the image's time");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn created(mut self, created: Timestamp) -> History {
        self.created = Some(created);
        self
    }
}

fn null_as_default<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `{"80/tcp": {}}` as a set of keys.
mod set_as_object {
    use std::collections::{BTreeMap, BTreeSet};

    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::Value;

    pub(super) fn serialize<S: Serializer>(
        set: &BTreeSet<String>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let map: BTreeMap<&String, BTreeMap<(), ()>> =
            set.iter().map(|k| (k, BTreeMap::new())).collect();
        map.serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeSet<String>, D::Error> {
        let map = Option::<BTreeMap<String, Value>>::deserialize(d)?;
        Ok(map.unwrap_or_default().into_keys().collect())
    }
}

/// An image config: the exact bytes (whose SHA-256 is the [`ImageId`]) and their typed view.
///
/// ```
/// use layercake::ImageConfig;
///
/// let bytes = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
/// let config = ImageConfig::from_bytes(&bytes[..])?;
/// assert_eq!(config.as_bytes(), &bytes[..]);
/// assert_eq!(config.file().os, "linux");
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Clone, PartialEq)]
pub struct ImageConfig {
    bytes: Bytes,
    file: ConfigFile,
    /// The SHA-256 of `bytes`, computed once: ids are compared and looked up often.
    id: ImageId,
}

impl ImageConfig {
    /// Parses config bytes, keeping them exactly.
    ///
    /// # Errors
    ///
    /// [`Error::LimitExceeded`] over the default JSON limit (20 MiB); [`Error::InvalidConfig`]
    /// if the bytes are not a config JSON object (not JSON, no `rootfs`, a DiffId that is
    /// not a digest).
    ///
    /// ```
    /// use layercake::{Digest, Error, ImageConfig};
    ///
    /// let bytes = br#"{"os":"linux", "architecture":"arm64", "rootfs":{"type":"layers"}}"#;
    /// let config = ImageConfig::from_bytes(&bytes[..])?;
    /// // Key order and spacing are kept: the id is the digest of exactly these bytes.
    /// assert_eq!(config.id().digest(), Digest::sha256(bytes));
    /// assert!(matches!(ImageConfig::from_bytes("{}"), Err(Error::InvalidConfig { .. })));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn from_bytes(bytes: impl Into<Bytes>) -> Result<ImageConfig> {
        ImageConfig::from_bytes_with(bytes, &crate::limits::Limits::default())
    }

    /// Parses config bytes from an untrusted source under explicit limits
    /// ([`Limits::json_bytes`](crate::Limits::json_bytes)).
    ///
    /// # Errors
    ///
    /// As [`ImageConfig::from_bytes`], with the limit of `limits`.
    ///
    /// ```
    /// use layercake::{Error, ImageConfig, Limits};
    ///
    /// let bytes = br#"{"os":"linux", "architecture":"arm64", "rootfs":{"type":"layers"}}"#;
    /// let tight = Limits::default().json_bytes(32);
    /// let err = ImageConfig::from_bytes_with(&bytes[..], &tight).unwrap_err();
    /// assert!(matches!(err, Error::LimitExceeded { limit: "JSON document bytes", .. }));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn from_bytes_with(
        bytes: impl Into<Bytes>,
        limits: &crate::limits::Limits,
    ) -> Result<ImageConfig> {
        ImageConfig::parse(bytes.into(), limits.json_bytes)
    }

    /// Parses config bytes of at most `max` bytes.
    pub(crate) fn parse(bytes: Bytes, max: u64) -> Result<ImageConfig> {
        crate::limits::Limits::check("JSON document bytes", bytes.len() as u64, max)?;
        let file = serde_json::from_slice(&bytes).map_err(|e| Error::InvalidConfig {
            reason: "not an image config JSON object".into(),
            source: Some(e),
        })?;
        Ok(ImageConfig::new(bytes, file))
    }

    fn new(bytes: Bytes, file: ConfigFile) -> ImageConfig {
        let id = ImageId::from_digest(Digest::sha256(&bytes));
        ImageConfig { bytes, file, id }
    }

    /// Serialises a typed config this crate (or its user) created.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if serialisation fails (it does not for these types).
    ///
    /// ```
    /// use layercake::{Image, ImageConfig, Layer};
    ///
    /// // Edit an image's config: change the typed view, write new bytes, load with the
    /// // same layers.
    /// let image = Image::builder().layer(Layer::builder().file("a", "1").build()?).build()?;
    /// let mut file = image.config().file().clone();
    /// file.config.user = Some("nobody".into());
    /// let config = ImageConfig::from_file(file)?;
    /// let layers = image.layers().cloned().collect();
    /// let edited = Image::from_parts(config.as_bytes().clone(), layers)?;
    /// assert_eq!(edited.config().container_config().user.as_deref(), Some("nobody"));
    /// assert_ne!(edited.id(), image.id());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn from_file(file: ConfigFile) -> Result<ImageConfig> {
        let bytes = serde_json::to_vec(&file).map_err(|e| Error::InvalidConfig {
            reason: "cannot serialise the config".into(),
            source: Some(e),
        })?;
        Ok(ImageConfig::new(Bytes::from(bytes), file))
    }

    /// The exact bytes.
    ///
    /// ```
    /// use layercake::{Digest, Image};
    ///
    /// // Store or send these bytes, never a re-serialisation: they are what the id names.
    /// let image = Image::builder().cmd(["sh"]).build()?;
    /// let bytes = image.config().as_bytes();
    /// assert_eq!(Digest::sha256(bytes), image.id().digest());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The typed view.
    ///
    /// ```
    /// use layercake::Image;
    ///
    /// let image = Image::builder().architecture("arm64").build()?;
    /// let file = image.config().file();
    /// assert_eq!((file.os.as_str(), file.architecture.as_str()), ("linux", "arm64"));
    /// assert!(file.rootfs.diff_ids.is_empty());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn file(&self) -> &ConfigFile {
        &self.file
    }

    /// The runtime defaults (`config` object).
    ///
    /// ```
    /// use layercake::Image;
    ///
    /// let image = Image::builder().cmd(["sh"]).env("LANG=C.UTF-8").build()?;
    /// let config = image.config().container_config();
    /// assert_eq!(config.cmd, Some(vec!["sh".to_string()]));
    /// assert_eq!(config.env, ["LANG=C.UTF-8"]);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn container_config(&self) -> &ContainerConfig {
        &self.file.config
    }

    /// The ImageId: SHA-256 of the bytes.
    ///
    /// ```
    /// use layercake::ImageConfig;
    ///
    /// let compact = ImageConfig::from_bytes(r#"{"os":"linux","rootfs":{"type":"layers"}}"#)?;
    /// let spaced =
    ///     ImageConfig::from_bytes(r#"{"os": "linux", "rootfs": {"type": "layers"}}"#)?;
    /// // The same config, other bytes: another image.
    /// assert_eq!(compact.file(), spaced.file());
    /// assert_ne!(compact.id(), spaced.id());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn id(&self) -> ImageId {
        self.id
    }
}

impl fmt::Debug for ImageConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImageConfig")
            .field("id", &self.id())
            .field("len", &self.bytes.len())
            .field("file", &self.file)
            .finish()
    }
}

/// Formats seconds since the Unix epoch as RFC 3339 in UTC, as Docker writes `created`.
///
/// ```
/// assert_eq!(layercake::config::rfc3339(0), "1970-01-01T00:00:00Z");
/// assert_eq!(layercake::config::rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
/// ```
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The current time in seconds since the Unix epoch.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_survive_a_rewrite() {
        let json = br#"{"architecture":"amd64","os":"linux","config":{"OnBuild":["RUN x"],"ArgsEscaped":true,"Env":null},"rootfs":{"type":"layers","diff_ids":[]},"container":"abc"}"#;
        let config = ImageConfig::from_bytes(&json[..]).unwrap();
        assert_eq!(config.as_bytes(), &json[..]);
        let again = ImageConfig::from_file(config.file().clone()).unwrap();
        let v: Value = serde_json::from_slice(again.as_bytes()).unwrap();
        assert_eq!(v["config"]["OnBuild"][0], "RUN x");
        assert_eq!(v["config"]["ArgsEscaped"], true);
        assert_eq!(v["container"], "abc");
    }

    #[test]
    fn dates() {
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
        assert_eq!(rfc3339(4_102_444_800), "2100-01-01T00:00:00Z");
    }
}
