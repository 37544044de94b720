//! The OCI image layout (`oci-layout`, `index.json`, `blobs/`), as a directory or a tar, and
//! the JSON documents it holds: descriptors, manifests, indexes, platforms.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::archive::source::{self, Source};
use crate::archive::{check_image_bytes, check_layer_count, parallel_map, Loaded, WriteOptions};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image::Image;
use crate::layer::Layer;
use crate::limits::Limits;

/// The media type of an OCI image manifest.
///
/// ```
/// use layercake::archive::oci::{Index, MANIFEST_V1};
/// # use layercake::archive::{write, WriteOptions};
/// # use layercake::{Image, Layer};
/// # let image = Image::builder().layer(Layer::builder().file("a", "1").build()?).build()?;
/// # let mut tar = Vec::new();
/// # write(&[(&image, &["app:1".to_string()][..])], &WriteOptions::oci_archive(), &mut tar)?;
/// // An oci-archive is a tar: read its files as the entries of a layer.
/// let files = Layer::from_tar(tar)?;
/// let read = |name: &str| files.entry(name).unwrap().contents().unwrap().clone();
/// let index: Index = serde_json::from_slice(&read("index.json"))?;
/// assert_eq!(index.manifests[0].media_type, MANIFEST_V1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const MANIFEST_V1: &str = "application/vnd.oci.image.manifest.v1+json";
/// The media type of an OCI image index.
///
/// ```
/// use layercake::archive::oci::{Index, INDEX_V1};
/// # use layercake::archive::{write, WriteOptions};
/// # use layercake::{Image, Layer};
/// # let image = Image::builder().layer(Layer::builder().file("a", "1").build()?).build()?;
/// # let mut tar = Vec::new();
/// # write(&[(&image, &["app:1".to_string()][..])], &WriteOptions::oci_archive(), &mut tar)?;
/// // An oci-archive is a tar: read its files as the entries of a layer.
/// let files = Layer::from_tar(tar)?;
/// let read = |name: &str| files.entry(name).unwrap().contents().unwrap().clone();
/// let index: Index = serde_json::from_slice(&read("index.json"))?;
/// assert_eq!(index.media_type.as_deref(), Some(INDEX_V1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const INDEX_V1: &str = "application/vnd.oci.image.index.v1+json";
/// The media type of an OCI image config.
///
/// ```
/// use layercake::archive::oci::{Index, Manifest, CONFIG_V1};
/// # use layercake::archive::{write, WriteOptions};
/// # use layercake::{Image, Layer};
/// # let image = Image::builder().layer(Layer::builder().file("a", "1").build()?).build()?;
/// # let mut tar = Vec::new();
/// # write(&[(&image, &["app:1".to_string()][..])], &WriteOptions::oci_archive(), &mut tar)?;
/// // An oci-archive is a tar: read its files as the entries of a layer.
/// let files = Layer::from_tar(tar)?;
/// let read = |name: &str| files.entry(name).unwrap().contents().unwrap().clone();
/// let index: Index = serde_json::from_slice(&read("index.json"))?;
/// let manifest_blob = read(&format!("blobs/sha256/{}", index.manifests[0].digest.to_hex()));
/// let manifest: Manifest = serde_json::from_slice(&manifest_blob)?;
/// assert_eq!(manifest.config.media_type, CONFIG_V1);
/// assert_eq!(manifest.config.digest, image.id().digest());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const CONFIG_V1: &str = "application/vnd.oci.image.config.v1+json";
/// Docker's schema 2 manifest, which registries and `docker save` (25+) also use.
///
/// Read as an OCI manifest: an index that names its manifest this way loads the same image.
///
/// ```
/// use layercake::archive::oci::{DOCKER_MANIFEST_V2, MANIFEST_V1};
/// use layercake::archive::Archive;
/// # use layercake::archive::{write, WriteOptions};
/// # use layercake::{Image, Layer};
/// # let image = Image::builder().layer(Layer::builder().file("a", "1").build()?).build()?;
/// # let mut tar = Vec::new();
/// # write(&[(&image, &["app:1".to_string()][..])], &WriteOptions::oci_archive(), &mut tar)?;
/// // An oci-archive is a tar: read its files as the entries of a layer.
/// let files = Layer::from_tar(tar)?;
/// let read = |name: &str| files.entry(name).unwrap().contents().unwrap().clone();
/// let index = String::from_utf8(read("index.json").to_vec())?;
/// let index = index.replace(MANIFEST_V1, DOCKER_MANIFEST_V2);
/// let mut relabelled = Layer::builder();
/// for (path, entry) in files.entries() {
///     relabelled = relabelled.entry(path, entry.clone());
/// }
/// let tar = relabelled.file("index.json", index).build()?.tar().clone();
/// assert_eq!(Archive::from_bytes(tar)?.images()[0].image.id(), image.id());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const DOCKER_MANIFEST_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker's manifest list.
///
/// Read as an OCI index: the platform is picked from it as from an [`INDEX_V1`].
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
/// The annotation that names a manifest in `index.json`.
///
/// ```
/// use layercake::archive::oci::{Index, REF_NAME};
/// # use layercake::archive::{write, WriteOptions};
/// # use layercake::{Image, Layer};
/// # let image = Image::builder().layer(Layer::builder().file("a", "1").build()?).build()?;
/// # let mut tar = Vec::new();
/// # write(&[(&image, &["app:1".to_string()][..])], &WriteOptions::oci_archive(), &mut tar)?;
/// // An oci-archive is a tar: read its files as the entries of a layer.
/// let files = Layer::from_tar(tar)?;
/// let read = |name: &str| files.entry(name).unwrap().contents().unwrap().clone();
/// let index: Index = serde_json::from_slice(&read("index.json"))?;
/// assert_eq!(index.manifests[0].annotations[REF_NAME], "app:1");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// A content descriptor: what a blob is, its digest and its size.
///
/// ```
/// use layercake::archive::oci::{Index, Manifest};
/// use layercake::archive::{write, Compression, WriteOptions};
/// use layercake::{Image, Layer};
///
/// let image = Image::builder().layer(Layer::builder().file("a", "1").build()?).build()?;
/// let mut tar = Vec::new();
/// write(
///     &[(&image, &[][..])],
///     &WriteOptions::oci_archive().compression(Compression::Gzip),
///     &mut tar,
/// )?;
/// let files = Layer::from_tar(tar)?;
/// let read = |name: &str| files.entry(name).unwrap().contents().unwrap().clone();
/// let index: Index = serde_json::from_slice(&read("index.json"))?;
/// let manifest_blob = read(&format!("blobs/sha256/{}", index.manifests[0].digest.to_hex()));
/// let manifest: Manifest = serde_json::from_slice(&manifest_blob)?;
/// let layer = &manifest.layers[0];
/// assert_eq!(layer.media_type, "application/vnd.oci.image.layer.v1.tar+gzip");
/// assert_ne!(
///     layer.digest,
///     image.diff_ids()[0].digest(),
///     "the blob's digest, not the DiffId"
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
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
    /// assert_eq!(desc.size, image.config().as_bytes().len() as u64);
    /// let json = serde_json::to_string(&desc)?;
    /// assert!(json.starts_with(
    ///     r#"{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:"#
    /// ));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn of(media_type: &str, bytes: &[u8]) -> Descriptor {
        Descriptor::known(media_type, Digest::sha256(bytes), bytes.len() as u64)
    }

    /// A descriptor of a blob whose digest is already known (no hashing).
    fn known(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_owned(),
            digest,
            size,
            annotations: BTreeMap::new(),
            platform: None,
            extra: BTreeMap::new(),
        }
    }
}

/// A platform: operating system, architecture and variant.
///
/// ```
/// use layercake::archive::oci::Index;
/// use layercake::archive::{write, Platform, WriteOptions};
/// use layercake::{Image, Layer};
///
/// let arm = Image::builder().architecture("arm64").build()?;
/// let mut tar = Vec::new();
/// write(&[(&arm, &[][..])], &WriteOptions::oci_archive(), &mut tar)?;
/// let files = Layer::from_tar(tar)?;
/// let index: Index =
///     serde_json::from_slice(files.entry("index.json").unwrap().contents().unwrap())?;
/// assert_eq!(index.manifests[0].platform, Some(Platform::parse("linux/arm64")?));
/// # Ok::<(), Box<dyn std::error::Error>>(())
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
    ///     assert_eq!((host.os.as_str(), host.architecture.as_str()), ("linux", "amd64"));
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

    fn matches(&self, wanted: &Platform) -> bool {
        self.os == wanted.os
            && self.architecture == wanted.architecture
            && (wanted.variant.is_none() || self.variant == wanted.variant)
    }
}

/// An image manifest: a config and layers.
///
/// ```
/// use layercake::archive::oci::{Index, Manifest};
/// # use layercake::archive::{write, WriteOptions};
/// # use layercake::{Image, Layer};
/// # let image = Image::builder().layer(Layer::builder().file("a", "1").build()?).build()?;
/// # let mut tar = Vec::new();
/// # write(&[(&image, &["app:1".to_string()][..])], &WriteOptions::oci_archive(), &mut tar)?;
/// // An oci-archive is a tar: read its files as the entries of a layer.
/// let files = Layer::from_tar(tar)?;
/// let read = |name: &str| files.entry(name).unwrap().contents().unwrap().clone();
/// let index: Index = serde_json::from_slice(&read("index.json"))?;
/// let manifest_blob = read(&format!("blobs/sha256/{}", index.manifests[0].digest.to_hex()));
/// let manifest: Manifest = serde_json::from_slice(&manifest_blob)?;
/// assert_eq!(manifest.config.digest, image.id().digest());
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
/// # use layercake::archive::{write, WriteOptions};
/// # use layercake::{Image, Layer};
/// # let image = Image::builder().layer(Layer::builder().file("a", "1").build()?).build()?;
/// # let mut tar = Vec::new();
/// # write(&[(&image, &["app:1".to_string()][..])], &WriteOptions::oci_archive(), &mut tar)?;
/// // An oci-archive is a tar: read its files as the entries of a layer.
/// let files = Layer::from_tar(tar)?;
/// let read = |name: &str| files.entry(name).unwrap().contents().unwrap().clone();
/// let index: Index = serde_json::from_slice(&read("index.json"))?;
/// assert_eq!(index.schema_version, 2);
/// assert_eq!(index.manifests.len(), 1, "one entry per name");
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

/// Parses a JSON document of the archive, naming it in errors.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    name: &str,
    max: u64,
) -> Result<T> {
    Limits::check("JSON document bytes", bytes.len() as u64, max)?;
    serde_json::from_slice(bytes).map_err(|e| Error::InvalidArchive {
        path: Some(name.to_owned()),
        reason: "malformed JSON".into(),
        source: Some(e),
    })
}

/// Reads every image an OCI layout's `index.json` names: for each reference, the manifest
/// for `platform` (or the only one).
pub(crate) fn read_layout(source: &Source, platform: &Platform) -> Result<Vec<Loaded>> {
    let layout: Value = source.json("oci-layout")?;
    if layout
        .get("imageLayoutVersion")
        .and_then(Value::as_str)
        .is_none()
    {
        return Err(Error::archive(
            Some("oci-layout".to_owned()),
            "no imageLayoutVersion",
        ));
    }
    let index: Index = source.json("index.json")?;
    let mut out: Vec<Loaded> = Vec::new();
    for desc in platform_choice(&index.manifests, platform) {
        let name = desc.annotations.get(REF_NAME).cloned();
        let manifest = select_manifest(source, desc, platform)?;
        let image = read_image(source, &manifest)?;
        match out.iter_mut().find(|l| l.image.id() == image.id()) {
            Some(existing) => existing.names.extend(name),
            None => out.push(Loaded {
                image,
                names: name.into_iter().collect(),
            }),
        }
    }
    Ok(out)
}

/// The descriptors of `index.json` to read: where several share one name (or are all
/// unnamed) and carry platforms, only those for `platform`, if any match; a name with a
/// single descriptor is read whatever its platform (an arm64 image is still an image).
fn platform_choice<'a>(manifests: &'a [Descriptor], platform: &Platform) -> Vec<&'a Descriptor> {
    let name = |d: &Descriptor| d.annotations.get(REF_NAME).cloned();
    let fits = |d: &Descriptor| d.platform.as_ref().is_none_or(|p| p.matches(platform));
    // Per name: how many descriptors, and whether one of them is for `platform`.
    let mut names: BTreeMap<Option<String>, (usize, bool)> = BTreeMap::new();
    for d in manifests {
        let seen = names.entry(name(d)).or_default();
        seen.0 += 1;
        seen.1 |= d.platform.as_ref().is_some_and(|p| p.matches(platform));
    }
    manifests
        .iter()
        .filter(|d| {
            let (count, any_match) = names[&name(d)];
            count == 1 || !any_match || fits(d)
        })
        .collect()
}

/// Follows a descriptor through nested indexes (at most `index_depth`) to the image
/// manifest for `platform`.
fn select_manifest(source: &Source, desc: &Descriptor, platform: &Platform) -> Result<Manifest> {
    let max_depth = source.options.limits.index_depth;
    let mut desc = desc.clone();
    for depth in 0.. {
        Limits::check("index nesting depth", depth, max_depth as u64)?;
        match desc.media_type.as_str() {
            INDEX_V1 | DOCKER_MANIFEST_LIST => {
                let (_, index): (_, Index) = source.json_blob(&desc)?;
                let chosen = index
                    .manifests
                    .iter()
                    .find(|d| d.platform.as_ref().is_none_or(|p| p.matches(platform)))
                    .ok_or_else(|| Error::Unsupported {
                        what: format!(
                            "index {} has no manifest for {}/{}",
                            desc.digest, platform.os, platform.architecture
                        ),
                    })?;
                desc = chosen.clone();
            }
            MANIFEST_V1 | DOCKER_MANIFEST_V2 => return Ok(source.json_blob(&desc)?.1),
            other => {
                return Err(Error::Unsupported {
                    what: format!("manifest media type `{other}`"),
                })
            }
        }
    }
    unreachable!("the loop returns or fails at the depth limit")
}

/// Reads the config and layers a manifest names, verifying every digest and size.
pub(crate) fn read_image(source: &Source, manifest: &Manifest) -> Result<Image> {
    let limits = &source.options.limits;
    check_layer_count(manifest.layers.len(), limits)?;
    let config = source.verified_blob(&manifest.config, limits.json_bytes)?;
    let layers = parallel_map(&manifest.layers, |desc| {
        let blob = source.blob(desc, limits.blob_bytes)?;
        let layer = Layer::from_blob_with(blob.clone(), &source.options).map_err(|e| {
            // A blob that does not decompress may simply be the wrong blob: say so first.
            source::verify(&blob, &desc.digest, &format!("layer blob {}", desc.digest))
                .err()
                .unwrap_or(e)
        })?;
        if layer.blob().digest() != desc.digest {
            return Err(Error::DigestMismatch {
                what: format!("layer blob {}", desc.digest),
                expected: desc.digest.to_string(),
                actual: layer.blob().digest().to_string(),
            });
        }
        Ok(layer)
    })?;
    check_image_bytes(&layers, limits)?;
    Image::from_parts(config, layers)
}

pub(crate) fn check_size(desc: &Descriptor, blob: &Bytes) -> Result<()> {
    if desc.size != blob.len() as u64 {
        return Err(Error::DigestMismatch {
            what: format!("size of blob {}", desc.digest),
            expected: desc.size.to_string(),
            actual: blob.len().to_string(),
        });
    }
    Ok(())
}

/// The files of an OCI layout for `images`: blobs, manifests, `index.json`, `oci-layout`.
/// Each image is written once per name (a `ref.name` annotation each), or once unnamed.
pub(crate) fn layout_files(
    images: &[(&Image, &[String])],
    options: &WriteOptions,
    files: &mut BTreeMap<String, Bytes>,
) -> Result<()> {
    let mut index = Index {
        schema_version: 2,
        media_type: Some(INDEX_V1.to_owned()),
        manifests: Vec::new(),
        annotations: BTreeMap::new(),
        extra: BTreeMap::new(),
    };
    for (image, names) in images {
        let desc = write_manifest(image, options, files)?;
        if names.is_empty() {
            index.manifests.push(desc.clone());
        }
        for name in names.iter() {
            let mut named = desc.clone();
            named.annotations.insert(REF_NAME.to_owned(), name.clone());
            index.manifests.push(named);
        }
    }
    files.insert(
        "oci-layout".into(),
        Bytes::from_static(br#"{"imageLayoutVersion":"1.0.0"}"#),
    );
    files.insert("index.json".into(), Bytes::from(to_json(&index)?));
    Ok(())
}

/// Writes an image's blobs and manifest; returns the manifest's descriptor with the image's
/// platform.
pub(crate) fn write_manifest(
    image: &Image,
    options: &WriteOptions,
    files: &mut BTreeMap<String, Bytes>,
) -> Result<Descriptor> {
    let config = image.config().as_bytes().clone();
    let config_desc = Descriptor::known(CONFIG_V1, image.id().digest(), config.len() as u64);
    files.insert(blob_path(&config_desc.digest), config);
    let mut layers = Vec::new();
    for layer in image.layers() {
        let layer = match options.compression {
            Some(c) => layer.compress(c, options.level.unwrap_or(c.default_level()))?,
            None => layer.clone(),
        };
        let blob = layer.blob();
        let desc = Descriptor::known(blob.media_type(), blob.digest(), blob.size());
        files.insert(blob_path(&desc.digest), blob.bytes().clone());
        layers.push(desc);
    }
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(MANIFEST_V1.to_owned()),
        config: config_desc,
        layers,
        annotations: BTreeMap::new(),
        extra: BTreeMap::new(),
    };
    let bytes = to_json(&manifest)?;
    let mut desc = Descriptor::of(MANIFEST_V1, &bytes);
    let file = image.config().file();
    desc.platform = Some(Platform {
        architecture: file.architecture.clone(),
        os: file.os.clone(),
        variant: file.variant.clone(),
        extra: BTreeMap::new(),
    });
    files.insert(blob_path(&desc.digest), Bytes::from(bytes));
    Ok(desc)
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
