//! The OCI image layout (`oci-layout`, `index.json`, `blobs/`), as a directory or a tar, and
//! the JSON documents it holds: descriptors, manifests, indexes, platforms.
//!
//! The examples below read the files of an oci-archive as the entries of a layer (an
//! oci-archive is a tar):
//!
//! ```
//! use layercake::archive::oci::{Index, Manifest};
//! use layercake::archive::{Format, Writer};
//! use layercake::{Image, Layer};
//!
//! let image = Image::builder().layer(Layer::builder().file("a", "1").build()?).build()?;
//! let mut tar = Vec::new();
//! Writer::new(Format::OciArchive).image(&image, ["app:1"]).write(&mut tar)?;
//! let files = Layer::from_tar(tar)?;
//! let read = |name: &str| files.changeset()?.entry(name)?.unwrap().contents().unwrap().to_bytes();
//! let index: Index = serde_json::from_slice(&read("index.json")?)?;
//! let manifest: Manifest =
//!     serde_json::from_slice(&read(&format!("blobs/sha256/{}", index.manifests[0].digest.to_hex()))?)?;
//! assert_eq!(manifest.config.digest, image.id().digest());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::archive::{ArchiveImage, Blobs, Loader, Name, Unavailable};
use crate::contents::Contents;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image::Image;
use crate::limits::Limits;
use crate::reference::Reference;

/// The media type of an OCI image manifest.
///
/// ```
/// use layercake::archive::oci::MANIFEST_V1;
///
/// assert_eq!(MANIFEST_V1, "application/vnd.oci.image.manifest.v1+json");
/// ```
pub const MANIFEST_V1: &str = "application/vnd.oci.image.manifest.v1+json";

/// The media type of an OCI image index.
///
/// ```
/// use layercake::archive::oci::INDEX_V1;
///
/// assert_eq!(INDEX_V1, "application/vnd.oci.image.index.v1+json");
/// ```
pub const INDEX_V1: &str = "application/vnd.oci.image.index.v1+json";

/// The media type of an OCI image config.
///
/// ```
/// use layercake::archive::oci::CONFIG_V1;
///
/// assert_eq!(CONFIG_V1, "application/vnd.oci.image.config.v1+json");
/// ```
pub const CONFIG_V1: &str = "application/vnd.oci.image.config.v1+json";

/// Docker's schema 2 manifest, which registries and `docker save` (25+) also use. Read as an
/// OCI manifest.
///
/// ```
/// use layercake::archive::oci::DOCKER_MANIFEST_V2;
///
/// assert!(DOCKER_MANIFEST_V2.starts_with("application/vnd.docker."));
/// ```
pub const DOCKER_MANIFEST_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// Docker's manifest list. Read as an OCI index: the platform is picked from it as from an
/// [`INDEX_V1`].
///
/// ```
/// use layercake::archive::oci::{Descriptor, DOCKER_MANIFEST_LIST, INDEX_V1};
///
/// // When walking descriptors, the two spellings of an index are one kind.
/// let is_index =
///     |d: &Descriptor| matches!(d.media_type.as_str(), INDEX_V1 | DOCKER_MANIFEST_LIST);
/// assert!(is_index(&Descriptor::of(DOCKER_MANIFEST_LIST, b"{}")));
/// ```
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// The annotation that names a manifest in `index.json` (what `oci:DIR:REF` names). Docker 25
/// puts the tag here.
///
/// ```
/// use layercake::archive::oci::{Index, REF_NAME};
/// use layercake::archive::{Format, Writer};
/// use layercake::{Image, Layer};
///
/// let image = Image::builder().build()?;
/// let mut tar = Vec::new();
/// Writer::new(Format::OciArchive).image(&image, ["app:1"]).write(&mut tar)?;
/// let files = Layer::from_tar(tar)?;
/// let index = files.changeset()?.entry("index.json")?.unwrap().contents().unwrap().to_bytes()?;
/// let index: Index = serde_json::from_slice(&index)?;
/// assert_eq!(index.manifests[0].annotations[REF_NAME], "1");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// The annotation Docker 25 and containerd give a manifest in `index.json`: the image's full
/// name (`docker.io/library/busybox:latest`).
///
/// ```
/// use layercake::archive::oci::{Index, IMAGE_NAME};
/// use layercake::archive::{Format, Writer};
/// use layercake::{Image, Layer};
///
/// let image = Image::builder().build()?;
/// let mut tar = Vec::new();
/// Writer::new(Format::OciArchive).image(&image, ["app:1"]).write(&mut tar)?;
/// let files = Layer::from_tar(tar)?;
/// let index = files.changeset()?.entry("index.json")?.unwrap().contents().unwrap().to_bytes()?;
/// let index: Index = serde_json::from_slice(&index)?;
/// assert_eq!(index.manifests[0].annotations[IMAGE_NAME], "docker.io/library/app:1");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const IMAGE_NAME: &str = "io.containerd.image.name";

/// A content descriptor: what a blob is, its digest and its size.
///
/// ```
/// use layercake::archive::oci::Descriptor;
///
/// let desc = Descriptor::of("application/vnd.oci.image.layer.v1.tar", b"bytes");
/// assert_eq!(desc.size, 5);
/// assert_eq!(desc.digest, layercake::Digest::sha256(b"bytes"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Descriptor {
    /// The media type.
    pub media_type: String,
    /// The blob digest.
    pub digest: Digest,
    /// The blob size in bytes.
    pub size: u64,
    /// Annotations (`org.opencontainers.image.ref.name`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// The platform of a manifest in an index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Fields not named above.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl Descriptor {
    /// A descriptor of `bytes` with this media type.
    ///
    /// ```
    /// use layercake::archive::oci::{Descriptor, CONFIG_V1};
    /// use layercake::Image;
    ///
    /// let image = Image::builder().build()?;
    /// let desc = Descriptor::of(CONFIG_V1, image.config().as_bytes());
    /// assert_eq!(desc.digest, image.id().digest());
    /// let json = serde_json::to_string(&desc)?;
    /// assert!(json.starts_with(
    ///     r#"{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:"#
    /// ));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn of(media_type: &str, bytes: &[u8]) -> Descriptor {
        Descriptor::of_blob(media_type, Digest::sha256(bytes), bytes.len() as u64)
    }

    /// A descriptor of a blob whose digest is already known (no hashing).
    pub(crate) fn of_blob(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_owned(),
            digest,
            size,
            annotations: BTreeMap::new(),
            platform: None,
            extra: BTreeMap::new(),
        }
    }

    /// The name `index.json` gives it: Docker 25's full name, else the OCI ref name.
    fn name(&self) -> Option<&String> {
        self.annotations
            .get(IMAGE_NAME)
            .or_else(|| self.annotations.get(REF_NAME))
    }
}

/// A platform: operating system, architecture and variant. Displays as `os/arch[/variant]`.
///
/// ```
/// use layercake::archive::Platform;
///
/// let p = Platform::parse("linux/arm64/v8")?;
/// assert_eq!((p.os.as_str(), p.architecture.as_str()), ("linux", "arm64"));
/// assert_eq!(p.to_string(), "linux/arm64/v8");
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[non_exhaustive]
pub struct Platform {
    /// CPU architecture (`amd64`, `arm64`).
    pub architecture: String,
    /// Operating system (`linux`).
    pub os: String,
    /// CPU variant (`v8`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Fields not named above (`os.version`, `os.features`).
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl Platform {
    /// A platform from `os/arch[/variant]`, e.g. `linux/arm64/v8`.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] if it is not of that form.
    ///
    /// ```
    /// let p = layercake::archive::Platform::parse("linux/arm64/v8")?;
    /// assert_eq!(p.architecture, "arm64");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn parse(text: &str) -> Result<Platform> {
        let mut parts = text.split('/');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(os), Some(arch), variant, None) if !os.is_empty() && !arch.is_empty() => {
                Ok(Platform {
                    os: os.to_owned(),
                    architecture: arch.to_owned(),
                    variant: variant.map(str::to_owned),
                    extra: BTreeMap::new(),
                })
            }
            _ => Err(Error::Unsupported {
                what: format!("platform `{text}` (expected os/arch[/variant])"),
            }),
        }
    }

    /// The platform this program runs on: the architecture in Go's names (`amd64`, `arm64`),
    /// the operating system as Rust names it (`linux`, which Go names the same).
    ///
    /// ```
    /// use layercake::archive::Platform;
    /// use layercake::Image;
    ///
    /// // An image for the machine the program runs on.
    /// let host = Platform::host();
    /// let image = Image::builder()
    ///     .os(host.os.clone())
    ///     .architecture(host.architecture.clone())
    ///     .build()?;
    /// assert_eq!(image.inspect().architecture, host.architecture);
    /// if cfg!(all(target_os = "linux", target_arch = "x86_64")) {
    ///     assert_eq!(host.to_string(), "linux/amd64");
    /// }
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        Platform {
            architecture: architecture.to_owned(),
            os: std::env::consts::OS.to_owned(),
            variant: None,
            extra: BTreeMap::new(),
        }
    }

    /// The platform an image's config says it is for.
    pub(crate) fn of(image: &Image) -> Platform {
        let file = image.config().file();
        Platform {
            architecture: file.architecture.clone(),
            os: file.os.clone(),
            variant: file.variant.clone(),
            extra: BTreeMap::new(),
        }
    }

    pub(crate) fn matches(&self, wanted: &Platform) -> bool {
        self.os == wanted.os
            && self.architecture == wanted.architecture
            && (wanted.variant.is_none() || self.variant == wanted.variant)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// An image manifest: a config and layers.
///
/// ```
/// use layercake::archive::oci::{Index, Manifest};
/// use layercake::archive::{Format, Writer};
/// use layercake::{Image, Layer};
///
/// let image = Image::builder().layer(Layer::builder().file("a", "1").build()?).build()?;
/// let mut tar = Vec::new();
/// Writer::new(Format::OciArchive).image(&image, ["app:1"]).write(&mut tar)?;
/// let files = Layer::from_tar(tar)?;
/// let read = |name: &str| files.changeset()?.entry(name)?.unwrap().contents().unwrap().to_bytes();
/// let index: Index = serde_json::from_slice(&read("index.json")?)?;
/// let manifest_blob = read(&format!("blobs/sha256/{}", index.manifests[0].digest.to_hex()))?;
/// let manifest: Manifest = serde_json::from_slice(&manifest_blob)?;
/// assert_eq!(manifest.layers.len(), 1);
/// assert_eq!(manifest.layers[0].digest, image.diff_ids()[0].digest(), "an uncompressed blob");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Manifest {
    /// Always 2.
    pub schema_version: u32,
    /// [`MANIFEST_V1`] or [`DOCKER_MANIFEST_V2`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The config blob.
    pub config: Descriptor,
    /// The layer blobs, bottom first.
    pub layers: Vec<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Fields not named above.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// An image index: manifests (or further indexes), perhaps one per platform.
///
/// ```
/// use layercake::archive::oci::Index;
/// use layercake::archive::{Format, Writer};
/// use layercake::{Image, Layer};
///
/// let image = Image::builder().build()?;
/// let mut tar = Vec::new();
/// Writer::new(Format::OciArchive).image(&image, ["app:1", "app:latest"]).write(&mut tar)?;
/// let files = Layer::from_tar(tar)?;
/// let index = files.changeset()?.entry("index.json")?.unwrap().contents().unwrap().to_bytes()?;
/// let index: Index = serde_json::from_slice(&index)?;
/// assert_eq!(index.schema_version, 2);
/// assert_eq!(index.manifests.len(), 2, "one entry per name");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Index {
    /// Always 2.
    pub schema_version: u32,
    /// [`INDEX_V1`], or absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The manifests.
    pub manifests: Vec<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Fields not named above.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// What reading a layout's `index.json` gives: the images for the platform asked, and the
/// names with none for it.
type Read = (Vec<ArchiveImage>, Vec<Unavailable>);

/// Reads the index of an OCI layout: for each name of `index.json`, the manifest for the
/// platform asked (through nested indexes), its config, and its layers as blobs read later.
pub(super) fn read_layout(loader: &mut Loader<'_>) -> Result<Read> {
    let files = loader.files;
    let layout: Value = files.json("oci-layout")?;
    match layout.get("imageLayoutVersion").and_then(Value::as_str) {
        None => {
            return Err(Error::archive(
                Some("oci-layout".to_owned()),
                "no imageLayoutVersion",
            ))
        }
        Some(version) if !layout_version_1(version) => {
            return Err(Error::archive(
                Some("oci-layout".to_owned()),
                format!("imageLayoutVersion `{}` is not 1.x", version.escape_debug()),
            ))
        }
        Some(_) => {}
    }
    let index_bytes = files.small("index.json", loader.limits().json_bytes)?;
    check_shape(&index_bytes, INDEX_V1, "index.json")?;
    let index: Index = crate::archive::files::parse_json(&index_bytes, "index.json")?;
    // Names follow their grammars (a ref name the image-spec's, a full name the reference
    // grammar), on every descriptor whatever its platform; a bad one is refused, shown
    // escaped.
    for desc in &index.manifests {
        if let Some(r) = desc.annotations.get(REF_NAME) {
            crate::reference::check_oci_ref_name(r)?;
        }
        if let Some(full) = desc.annotations.get(IMAGE_NAME) {
            Reference::parse(full)?;
        }
    }
    // Descriptors by name, in order of first appearance: several under one name are one
    // image per platform.
    let mut groups: Vec<(Option<&String>, Vec<&Descriptor>)> = Vec::new();
    for desc in &index.manifests {
        match groups.iter_mut().find(|(name, _)| *name == desc.name()) {
            Some((_, group)) => group.push(desc),
            None => groups.push((desc.name(), vec![desc])),
        }
    }
    let mut images: Vec<ArchiveImage> = Vec::new();
    let mut unavailable = Vec::new();
    for (_, group) in groups {
        let offered: Vec<Platform> = group.iter().filter_map(|d| d.platform.clone()).collect();
        // A name with several descriptors for several platforms: those for the platform
        // asked, and none if none is for it (as an index with no manifest for it: the name
        // is then an error listing what it offers). One descriptor is read whatever its
        // platform (an arm64 image is still an image).
        let for_platform = |d: &&Descriptor| {
            d.platform
                .as_ref()
                .is_none_or(|p| p.matches(loader.platform))
        };
        let chosen: Vec<&Descriptor> = group
            .iter()
            .copied()
            .filter(|d| group.len() == 1 || for_platform(d))
            .collect();
        if chosen.is_empty() {
            let first = group[0];
            unavailable.push(Unavailable {
                names: first.name().cloned().into_iter().collect(),
                ref_names: first
                    .annotations
                    .get(REF_NAME)
                    .cloned()
                    .into_iter()
                    .collect(),
                offered: offered.clone(),
            });
            continue;
        }
        let listed = if group.len() > 1 { offered } else { Vec::new() };
        for desc in chosen {
            let names: Vec<String> = desc.name().cloned().into_iter().collect();
            let ref_names: Vec<String> = desc
                .annotations
                .get(REF_NAME)
                .cloned()
                .into_iter()
                .collect();
            let naming: Vec<Name> = match (desc.annotations.get(IMAGE_NAME), ref_names.first()) {
                (Some(full), _) => vec![Name::Reference(Reference::parse(full)?)],
                (None, Some(r)) => vec![Name::RefName(r.clone())],
                (None, None) => Vec::new(),
            };
            let (image, platforms) = match select(loader, desc)? {
                Selected::Image(image, platforms) => (image, platforms),
                Selected::Missing(offered) => {
                    unavailable.push(Unavailable {
                        names,
                        ref_names,
                        offered,
                    });
                    continue;
                }
            };
            let platforms = if platforms.is_empty() {
                listed.clone()
            } else {
                platforms
            };
            match images.iter_mut().find(|i| i.image.id() == image.id()) {
                Some(existing) => {
                    existing.names.extend(names);
                    existing.ref_names.extend(ref_names);
                    existing.naming.extend(naming);
                }
                None => images.push(ArchiveImage {
                    image,
                    names,
                    ref_names,
                    naming,
                    platforms,
                }),
            }
        }
    }
    Ok((images, unavailable))
}

/// Whether an `imageLayoutVersion` is one this reader knows: `1`, `1.N` or `1.N.M` (the
/// image-spec's layouts are all `1.0.0`; a `2` would change what the files mean).
fn layout_version_1(version: &str) -> bool {
    let mut parts = version.split('.');
    parts.next() == Some("1")
        && parts.all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        && version.split('.').count() <= 3
}

/// Whether a media type is one of an image manifest.
fn is_manifest_type(media_type: &str) -> bool {
    matches!(media_type, MANIFEST_V1 | DOCKER_MANIFEST_V2)
}

/// Whether a media type is one of an index.
fn is_index_type(media_type: &str) -> bool {
    matches!(media_type, INDEX_V1 | DOCKER_MANIFEST_LIST)
}

/// The fields that tell a manifest from an index, whatever the document claims to be.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Shape {
    #[serde(default)]
    media_type: Option<Value>,
    #[serde(default)]
    config: Option<Value>,
    #[serde(default)]
    layers: Option<Value>,
    #[serde(default)]
    manifests: Option<Value>,
}

/// Checks that a JSON document reached as `expected` (a manifest or an index media type) is
/// what it was reached as, before it is read as one (CVE-2021-41190: a document that reads
/// as a manifest to one reader and as an index to another; distribution and containerd
/// refuse it since). A manifest has no `manifests`, an index no `config` or `layers`, and
/// the document's own `mediaType`, if any, is `expected`.
pub(crate) fn check_shape(bytes: &[u8], expected: &str, what: &str) -> Result<()> {
    let bad = |reason: String| Err(Error::archive(Some(what.to_owned()), reason));
    let shape: Shape = crate::archive::files::parse_json(bytes, what)?;
    let has = |v: &Option<Value>| v.as_ref().is_some_and(|v| !v.is_null());
    let (is_index, is_manifest) = (
        has(&shape.manifests),
        has(&shape.config) || has(&shape.layers),
    );
    if is_index && is_manifest {
        return bad(
            "both `manifests` and `config`/`layers`: a manifest and an index at once (CVE-2021-41190)"
                .into(),
        );
    }
    if is_index_type(expected) && is_manifest {
        return bad(format!(
            "reached as `{expected}`, but it has `config`/`layers`: it is a manifest"
        ));
    }
    if is_manifest_type(expected) && is_index {
        return bad(format!(
            "reached as `{expected}`, but it has `manifests`: it is an index"
        ));
    }
    match &shape.media_type {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(own)) if own == expected => Ok(()),
        Some(Value::String(own)) => bad(format!(
            "its mediaType `{}` contradicts `{expected}`, which it was reached as",
            own.escape_debug()
        )),
        Some(_) => bad("its mediaType is not a string".into()),
    }
}

/// A manifest's descriptors must not point at manifests or indexes: its config is a
/// config, its layers are layers.
fn check_manifest(manifest: &Manifest, what: &str) -> Result<()> {
    let bad = |reason: String| Err(Error::archive(Some(what.to_owned()), reason));
    let config = &manifest.config.media_type;
    if is_manifest_type(config) || is_index_type(config) {
        return bad(format!(
            "its config descriptor says `{}`, which is not a config",
            config.escape_debug()
        ));
    }
    for layer in &manifest.layers {
        if is_manifest_type(&layer.media_type) || is_index_type(&layer.media_type) {
            return bad(format!(
                "a layer descriptor says `{}`, which is not a layer",
                layer.media_type.escape_debug()
            ));
        }
    }
    Ok(())
}

/// What following a descriptor to the platform asked found.
enum Selected {
    /// The image, and the platforms the last index on the way offered.
    Image(Image, Vec<Platform>),
    /// An index with no manifest for the platform, and the platforms it offers.
    Missing(Vec<Platform>),
}

/// Follows a descriptor through nested indexes (at most `index_depth`) to the manifest for
/// the platform asked, and reads its image.
fn select(loader: &mut Loader<'_>, desc: &Descriptor) -> Result<Selected> {
    let max_depth = loader.limits().index_depth;
    let mut desc = desc.clone();
    let mut offered = Vec::new();
    for depth in 0.. {
        Limits::check("index nesting depth", depth, max_depth as u64)?;
        match desc.media_type.as_str() {
            INDEX_V1 | DOCKER_MANIFEST_LIST => {
                let (_, index): (_, Index) = loader.files.json_blob(&desc)?;
                offered = index
                    .manifests
                    .iter()
                    .filter_map(|d| d.platform.clone())
                    .collect();
                let Some(chosen) = index.manifests.iter().find(|d| {
                    d.platform
                        .as_ref()
                        .is_none_or(|p| p.matches(loader.platform))
                }) else {
                    return Ok(Selected::Missing(offered));
                };
                desc = chosen.clone();
            }
            MANIFEST_V1 | DOCKER_MANIFEST_V2 => {
                let (_, manifest): (_, Manifest) = loader.files.json_blob(&desc)?;
                check_manifest(&manifest, &blob_path(&desc.digest))?;
                return Ok(Selected::Image(read_image(loader, &manifest)?, offered));
            }
            other => {
                return Err(Error::Unsupported {
                    what: format!("manifest media type `{other}`"),
                })
            }
        }
    }
    unreachable!("the loop returns or fails at the depth limit")
}

/// Reads the config a manifest names (verified) and makes its layers from its blobs (size
/// checked, digest checked when read).
fn read_image(loader: &mut Loader<'_>, manifest: &Manifest) -> Result<Image> {
    let limits = loader.limits().clone();
    Limits::check(
        "layers in one image",
        manifest.layers.len() as u64,
        limits.layers as u64,
    )?;
    let config = loader.files.verified_blob(&manifest.config)?;
    let blobs: Vec<(String, Contents, Option<Digest>)> = manifest
        .layers
        .iter()
        .map(|desc| {
            let blob = loader.files.blob(desc, limits.blob_bytes)?;
            Ok((desc.digest.to_string(), blob, Some(desc.digest)))
        })
        .collect::<Result<_>>()?;
    loader.image(config, blobs)
}

/// The files of an OCI layout for `images`: blobs, manifests, `index.json`, `oci-layout`.
/// Each image is listed once per name, or once unnamed, with its platform.
pub(super) fn layout_files(
    images: &[(Image, Vec<Name>)],
    blobs: &mut Blobs,
    files: &mut BTreeMap<String, Contents>,
) -> Result<()> {
    let mut index = Index {
        schema_version: 2,
        media_type: Some(INDEX_V1.to_owned()),
        manifests: Vec::new(),
        annotations: BTreeMap::new(),
        extra: BTreeMap::new(),
    };
    for (image, names) in images {
        let desc = write_manifest(image, blobs, files)?;
        if names.is_empty() {
            index.manifests.push(desc.clone());
        }
        for name in names {
            let mut named = desc.clone();
            match name {
                Name::Reference(r) => {
                    named
                        .annotations
                        .insert(IMAGE_NAME.to_owned(), r.to_string());
                    if let Some(tag) = r.tag() {
                        named
                            .annotations
                            .insert(REF_NAME.to_owned(), tag.to_owned());
                    }
                }
                Name::RefName(ref_name) => {
                    named
                        .annotations
                        .insert(REF_NAME.to_owned(), ref_name.clone());
                }
            }
            index.manifests.push(named);
        }
    }
    files.insert(
        "oci-layout".into(),
        Contents::from(&br#"{"imageLayoutVersion":"1.0.0"}"#[..]),
    );
    files.insert("index.json".into(), Contents::from(to_json(&index)?));
    Ok(())
}

/// Adds an image's blobs and manifest; returns the manifest's descriptor with the image's
/// platform.
fn write_manifest(
    image: &Image,
    blobs: &mut Blobs,
    files: &mut BTreeMap<String, Contents>,
) -> Result<Descriptor> {
    let config = image.config().as_bytes().clone();
    let config_desc = Descriptor::of_blob(CONFIG_V1, image.id().digest(), config.len() as u64);
    files.insert(blob_path(&config_desc.digest), Contents::from(config));
    let mut layers = Vec::new();
    for layer in image.layers() {
        let layer = blobs.blob(layer)?;
        let blob = layer.blob();
        let desc = Descriptor::of_blob(blob.media_type(), blob.digest(), blob.size());
        files.insert(blob_path(&desc.digest), blob.contents().clone());
        layers.push(desc);
    }
    let (bytes, desc) = manifest_of(image, config_desc, layers)?;
    files.insert(blob_path(&desc.digest), Contents::from(bytes));
    Ok(desc)
}

/// An OCI manifest of an image whose config and layer blobs are described: its bytes, and
/// its descriptor with the image's platform.
pub(crate) fn manifest_of(
    image: &Image,
    config: Descriptor,
    layers: Vec<Descriptor>,
) -> Result<(Vec<u8>, Descriptor)> {
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(MANIFEST_V1.to_owned()),
        config,
        layers,
        annotations: BTreeMap::new(),
        extra: BTreeMap::new(),
    };
    let bytes = to_json(&manifest)?;
    let mut desc = Descriptor::of(MANIFEST_V1, &bytes);
    desc.platform = Some(Platform::of(image));
    Ok((bytes, desc))
}

/// `blobs/<algorithm>/<hex>`.
pub(crate) fn blob_path(digest: &Digest) -> String {
    format!("blobs/{}/{}", digest.algorithm().as_str(), digest.to_hex())
}

pub(crate) fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| Error::InvalidArchive {
        path: None,
        reason: "cannot serialise JSON".into(),
        source: Some(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_versions() {
        for ok in ["1", "1.0", "1.0.0", "1.1.0", "1.10.2"] {
            assert!(layout_version_1(ok), "{ok}");
        }
        for bad in [
            "",
            "2.0.0",
            "10.0.0",
            "1.",
            "1.0.0.0",
            "1.x",
            " 1.0.0",
            "1.0.0-rc1",
        ] {
            assert!(!layout_version_1(bad), "{bad}");
        }
    }

    #[test]
    fn shapes() {
        let manifest = br#"{"schemaVersion":2,"config":{},"layers":[]}"#;
        let index = br#"{"schemaVersion":2,"manifests":[]}"#;
        let both = br#"{"config":{},"layers":[],"manifests":[]}"#;
        assert!(check_shape(manifest, MANIFEST_V1, "m").is_ok());
        assert!(check_shape(manifest, DOCKER_MANIFEST_V2, "m").is_ok());
        assert!(check_shape(manifest, INDEX_V1, "m").is_err());
        assert!(check_shape(index, INDEX_V1, "i").is_ok());
        assert!(check_shape(index, MANIFEST_V1, "i").is_err());
        assert!(check_shape(both, MANIFEST_V1, "b").is_err());
        assert!(check_shape(both, INDEX_V1, "b").is_err());
        let typed = br#"{"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
        assert!(check_shape(typed, INDEX_V1, "t").is_ok());
        assert!(check_shape(typed, DOCKER_MANIFEST_LIST, "t").is_err());
    }
}
