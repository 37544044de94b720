//! [`Inspect`]: what `docker image inspect` shows of an image, serialised in Docker's shape
//! (its key order, its empty strings and nulls).

use std::collections::BTreeSet;

use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::Value;

use crate::config::{ContainerConfig, ImageConfig};
use crate::digest::{DiffId, ImageId};

/// The data of `docker image inspect` for one image. Its JSON is Docker's (20.10): the
/// same keys in the same order, empty strings and nulls included, and `Config` and
/// `ContainerConfig` with every field Docker's `container.Config` shows.
///
/// Left out: `GraphDriver` and `Metadata` (about a daemon's storage, which an image file
/// does not have); `Size` and `VirtualSize` when [`Inspect::size`] is `None`.
///
/// ```
/// use layercake::{Image, Layer};
///
/// let image = Image::builder().layer(Layer::builder().file("a", "1").build()?).build()?;
/// let json = serde_json::to_value(image.inspect())?;
/// assert_eq!(json["Os"], "linux");
/// assert_eq!(json["Parent"], "", "empty strings are shown, as Docker shows them");
/// assert_eq!(json["Config"]["Hostname"], "");
/// assert_eq!(json["RootFS"]["Type"], "layers");
/// assert_eq!(json["RootFS"]["Layers"][0], image.diff_ids()[0].to_string());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Inspect {
    /// The ImageId.
    pub id: ImageId,
    /// `name:tag` references, in familiar form (`busybox:latest`).
    pub repo_tags: Vec<String>,
    /// `name@sha256:...` manifest digests.
    pub repo_digests: Vec<String>,
    /// The parent image id (empty: a parent is a daemon's record of a local build).
    pub parent: String,
    /// The commit message.
    pub comment: String,
    /// Creation time, RFC 3339, as the config says it.
    pub created: String,
    /// The id of the container the image was committed from (Docker's `container`), if any.
    pub container: String,
    /// The config of that container (Docker's `container_config`); all defaults if none.
    pub container_config: ContainerConfig,
    /// The Docker version that built it, if it says.
    pub docker_version: String,
    /// Author.
    pub author: String,
    /// The runtime defaults (JSON `null`, as Docker shows it, when the config file has no
    /// `config` object).
    pub config: ContainerConfig,
    /// CPU architecture.
    pub architecture: String,
    /// CPU variant (left out of the JSON when there is none, as Docker does).
    pub variant: Option<String>,
    /// Operating system.
    pub os: String,
    /// Bytes of file contents across the layers (Docker's `Size` and `VirtualSize`), when
    /// every layer has been read; `Size` and `VirtualSize` are left out of the JSON otherwise.
    pub size: Option<u64>,
    /// The layer DiffIds.
    pub root_fs: InspectRootFs,
    /// Which keys of `config` and `container_config` the config file gives as an empty
    /// list or map (`[]`, `{}`) rather than `null`: Docker shows them as given.
    pub(crate) empties: Empties,
}

impl Inspect {
    /// What `docker image inspect` shows of an image known by its config alone (a config
    /// read from a registry, its layers left there): no tags or digests (the caller knows
    /// those), no `Size` (which only the layers' contents give).
    ///
    /// ```
    /// use layercake::{Image, Inspect, Layer};
    ///
    /// let image = Image::builder()
    ///     .layer(Layer::builder().file("a", "1").build()?)
    ///     .cmd(["sh"])
    ///     .build()?;
    /// let inspect = Inspect::from_config(image.config());
    /// assert_eq!(inspect.id, image.id());
    /// assert_eq!(inspect.root_fs.layers, image.diff_ids());
    /// assert_eq!(inspect.size, None, "no layer is read");
    /// // The same JSON as the image's own, but for `Size` and `VirtualSize`.
    /// let mut full = serde_json::to_value(image.inspect())?;
    /// full.as_object_mut().unwrap().remove("Size");
    /// full.as_object_mut().unwrap().remove("VirtualSize");
    /// assert_eq!(serde_json::to_value(&inspect)?, full);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_config(config: &ImageConfig) -> Inspect {
        let file = config.file();
        let text = |key: &str| {
            file.extra
                .get(key)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned()
        };
        Inspect {
            id: config.id(),
            repo_tags: Vec::new(),
            repo_digests: Vec::new(),
            parent: String::new(),
            // As `docker image inspect`: the top-level comment, else the last history step's.
            comment: file
                .comment
                .clone()
                .filter(|c| !c.is_empty())
                .or_else(|| file.history.last().and_then(|h| h.comment.clone()))
                .unwrap_or_default(),
            created: file.created.clone().unwrap_or_default(),
            container: text("container"),
            container_config: file
                .extra
                .get("container_config")
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .unwrap_or_default(),
            docker_version: text("docker_version"),
            author: file.author.clone().unwrap_or_default(),
            config: file.config.clone(),
            architecture: file.architecture.clone(),
            variant: file.variant.clone(),
            os: file.os.clone(),
            size: None,
            root_fs: InspectRootFs {
                kind: "layers".into(),
                layers: file.rootfs.diff_ids.clone(),
            },
            empties: Empties::of(config.as_bytes()),
        }
    }
}

/// Keys of the two config objects that the file gives as `[]` or `{}`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Empties {
    /// Whether the file has a `config` object (Docker shows `null` if not).
    pub(crate) has_config: bool,
    pub(crate) config: BTreeSet<String>,
    pub(crate) container_config: BTreeSet<String>,
}

impl Empties {
    /// Reads them from the config file's bytes.
    pub(crate) fn of(config_bytes: &[u8]) -> Empties {
        let raw: Value = serde_json::from_slice(config_bytes).unwrap_or(Value::Null);
        let keys = |v: Option<&Value>| -> BTreeSet<String> {
            v.and_then(Value::as_object)
                .map(|o| {
                    o.iter()
                        .filter(|(_, v)| match v {
                            Value::Array(a) => a.is_empty(),
                            Value::Object(m) => m.is_empty(),
                            _ => false,
                        })
                        .map(|(k, _)| k.clone())
                        .collect()
                })
                .unwrap_or_default()
        };
        Empties {
            has_config: raw.get("config").is_some_and(|c| !c.is_null()),
            config: keys(raw.get("config")),
            container_config: keys(raw.get("container_config")),
        }
    }
}

/// The `RootFS` of [`Inspect`].
///
/// ```
/// use layercake::{Image, Layer};
///
/// let image = Image::builder().layer(Layer::builder().file("a", "1").build()?).build()?;
/// let root_fs = image.inspect().root_fs;
/// assert_eq!(root_fs.kind, "layers");
/// assert_eq!(root_fs.layers, image.diff_ids());
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct InspectRootFs {
    /// Always `layers`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// DiffIds, bottom first.
    pub layers: Vec<DiffId>,
}

impl Serialize for Inspect {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("Id", &self.id)?;
        m.serialize_entry("RepoTags", &self.repo_tags)?;
        m.serialize_entry("RepoDigests", &self.repo_digests)?;
        m.serialize_entry("Parent", &self.parent)?;
        m.serialize_entry("Comment", &self.comment)?;
        m.serialize_entry("Created", &self.created)?;
        m.serialize_entry("Container", &self.container)?;
        m.serialize_entry(
            "ContainerConfig",
            &DockerConfig(&self.container_config, &self.empties.container_config),
        )?;
        m.serialize_entry("DockerVersion", &self.docker_version)?;
        m.serialize_entry("Author", &self.author)?;
        m.serialize_entry(
            "Config",
            &self
                .empties
                .has_config
                .then_some(DockerConfig(&self.config, &self.empties.config)),
        )?;
        m.serialize_entry("Architecture", &self.architecture)?;
        if let Some(variant) = self.variant.as_ref().filter(|v| !v.is_empty()) {
            m.serialize_entry("Variant", variant)?;
        }
        m.serialize_entry("Os", &self.os)?;
        if let Some(size) = self.size {
            m.serialize_entry("Size", &size)?;
            m.serialize_entry("VirtualSize", &size)?;
        }
        m.serialize_entry("RootFS", &self.root_fs)?;
        m.end()
    }
}

/// A [`ContainerConfig`] as Docker 20.10's `container.Config` marshals it: every field in
/// its order, zero values shown (`""`, `false`, `null`), `omitempty` fields left out.
struct DockerConfig<'a>(&'a ContainerConfig, &'a BTreeSet<String>);

impl Serialize for DockerConfig<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let DockerConfig(c, empties) = *self;
        let extra = |key: &str| c.extra.get(key).filter(|v| !v.is_null());
        let string = |key: &str| extra(key).cloned().unwrap_or(Value::from(""));
        let boolean = |key: &str| extra(key).cloned().unwrap_or(Value::from(false));
        let null = |key: &str| extra(key).cloned().unwrap_or(Value::Null);
        // An empty collection is `null` unless the file wrote it as `[]` or `{}`.
        let collection = |key: &str, value: Value, empty: Value| match value {
            Value::Array(a) if a.is_empty() => {
                if empties.contains(key) {
                    empty
                } else {
                    Value::Null
                }
            }
            Value::Object(o) if o.is_empty() => {
                if empties.contains(key) {
                    empty
                } else {
                    Value::Null
                }
            }
            v => v,
        };
        let set = |items: &BTreeSet<String>| {
            Value::Object(
                items
                    .iter()
                    .map(|k| (k.clone(), Value::Object(Default::default())))
                    .collect(),
            )
        };
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("Hostname", &string("Hostname"))?;
        m.serialize_entry("Domainname", &string("Domainname"))?;
        m.serialize_entry("User", c.user.as_deref().unwrap_or(""))?;
        m.serialize_entry("AttachStdin", &boolean("AttachStdin"))?;
        m.serialize_entry("AttachStdout", &boolean("AttachStdout"))?;
        m.serialize_entry("AttachStderr", &boolean("AttachStderr"))?;
        if !c.exposed_ports.is_empty() {
            m.serialize_entry("ExposedPorts", &set(&c.exposed_ports))?;
        }
        m.serialize_entry("Tty", &boolean("Tty"))?;
        m.serialize_entry("OpenStdin", &boolean("OpenStdin"))?;
        m.serialize_entry("StdinOnce", &boolean("StdinOnce"))?;
        m.serialize_entry(
            "Env",
            &collection("Env", Value::from(c.env.clone()), Value::Array(Vec::new())),
        )?;
        m.serialize_entry("Cmd", &c.cmd)?;
        if let Some(h) = &c.healthcheck {
            m.serialize_entry("Healthcheck", h)?;
        }
        if extra("ArgsEscaped").is_some_and(|v| v != &Value::from(false)) {
            m.serialize_entry("ArgsEscaped", &null("ArgsEscaped"))?;
        }
        m.serialize_entry("Image", &string("Image"))?;
        m.serialize_entry(
            "Volumes",
            &collection(
                "Volumes",
                set(&c.volumes),
                Value::Object(Default::default()),
            ),
        )?;
        m.serialize_entry("WorkingDir", c.working_dir.as_deref().unwrap_or(""))?;
        m.serialize_entry("Entrypoint", &c.entrypoint)?;
        if extra("NetworkDisabled").is_some_and(|v| v != &Value::from(false)) {
            m.serialize_entry("NetworkDisabled", &null("NetworkDisabled"))?;
        }
        if extra("MacAddress").is_some_and(|v| v != &Value::from("")) {
            m.serialize_entry("MacAddress", &null("MacAddress"))?;
        }
        m.serialize_entry("OnBuild", &null("OnBuild"))?;
        let labels = Value::Object(
            c.labels
                .iter()
                .map(|(k, v)| (k.clone(), Value::from(v.clone())))
                .collect(),
        );
        m.serialize_entry(
            "Labels",
            &collection("Labels", labels, Value::Object(Default::default())),
        )?;
        if let Some(signal) = c.stop_signal.as_deref().filter(|s| !s.is_empty()) {
            m.serialize_entry("StopSignal", signal)?;
        }
        if let Some(timeout) = extra("StopTimeout") {
            m.serialize_entry("StopTimeout", timeout)?;
        }
        if extra("Shell").is_some_and(|v| v.as_array().is_some_and(|a| !a.is_empty())) {
            m.serialize_entry("Shell", &null("Shell"))?;
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use crate::{Image, Layer};

    /// An image from config bytes (no layers).
    fn from_config(config: &str) -> serde_json::Value {
        let image = Image::from_parts(config.as_bytes().to_vec(), Vec::new()).unwrap();
        serde_json::to_value(image.inspect()).unwrap()
    }

    #[test]
    fn config_null_when_the_file_has_none() {
        let json = from_config(
            r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#,
        );
        assert!(json["Config"].is_null(), "{json}");
        // ContainerConfig is never null in Docker (a struct, not a pointer).
        assert_eq!(json["ContainerConfig"]["Hostname"], "");
        assert!(json["ContainerConfig"]["Env"].is_null());
        assert!(json.get("Variant").is_none(), "omitempty");
    }

    #[test]
    fn empty_lists_and_maps_shown_as_the_file_wrote_them() {
        let json = from_config(
            r#"{"architecture":"arm64","variant":"v8","os":"linux","rootfs":{"type":"layers","diff_ids":[]},
                "config":{"Env":[],"Labels":{},"Cmd":null,"OnBuild":[],"ExposedPorts":{}},
                "container_config":{"Labels":{},"Env":null}}"#,
        );
        assert_eq!(json["Config"]["Env"], serde_json::json!([]));
        assert_eq!(json["Config"]["Labels"], serde_json::json!({}));
        assert!(json["Config"]["Volumes"].is_null());
        assert!(json["Config"]["Cmd"].is_null());
        assert_eq!(json["Config"]["OnBuild"], serde_json::json!([]));
        assert!(json["Config"].get("ExposedPorts").is_none(), "omitempty");
        assert_eq!(json["ContainerConfig"]["Labels"], serde_json::json!({}));
        assert!(json["ContainerConfig"]["Env"].is_null());
        assert_eq!(json["Variant"], "v8");
    }

    #[test]
    fn keys_in_dockers_order() {
        let image = Image::builder()
            .layer(Layer::builder().file("a", "1").build().unwrap())
            .build()
            .unwrap();
        let json = serde_json::to_string(&image.inspect()).unwrap();
        let order = [
            "\"Id\"",
            "\"RepoTags\"",
            "\"RepoDigests\"",
            "\"Parent\"",
            "\"Comment\"",
            "\"Created\"",
            "\"Container\"",
            "\"ContainerConfig\"",
            "\"DockerVersion\"",
            "\"Author\"",
            "\"Config\"",
            "\"Architecture\"",
            "\"Os\"",
            "\"Size\"",
            "\"VirtualSize\"",
            "\"RootFS\"",
        ];
        let at: Vec<usize> = order.iter().map(|k| json.find(k).unwrap()).collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{json}");
    }
}
