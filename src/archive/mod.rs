//! Image files in and out: docker-archive (`docker save`/`docker load`), the OCI image
//! layout as a directory or a tar (`oci-archive`), and the flattened filesystem of
//! `docker export`/`docker import`.
//!
//! **Reading is lazy.** Opening an image file reads its index only: `manifest.json` or
//! `index.json`, the manifests and the configs (small JSON, each size-limited). A tar is
//! never read whole: its members are found by one scan of their headers, data passed over,
//! and read by offset later. A layer is read the first time its tree, tar or changeset is
//! asked for, once however many images of the file share it: its blob is hashed,
//! decompressed into a temporary file (a plain tar is read where it lies, inside the image
//! file) and parsed in one pass, and checked against every digest that names it. Every count
//! and declared size is checked against the [`Limits`] when the file is opened, before any
//! byte is decompressed; the bytes decompressed from one file are bounded as a whole
//! ([`Limits::archive_bytes`]).
//!
//! **Writing streams**: one blob at a time, from memory or disk to the output, a layer
//! recompressed at most once however many images share it (gzip in parallel blocks).
//!
//! ```
//! use layercake::archive::{Archive, Format, Writer};
//! use layercake::{Image, Layer};
//!
//! let image = Image::builder()
//!     .layer(Layer::builder().file("hello", "world").build()?)
//!     .build()?;
//! let mut tar = Vec::new();
//! Writer::new(Format::DockerArchive).image(&image, ["hello:v1"]).write(&mut tar)?;
//!
//! let loaded = Archive::from_bytes(tar)?.image("hello:v1")?;
//! assert_eq!(loaded.id(), image.id());
//! assert_eq!(loaded.tree()?.read("hello")?, "world");
//! # Ok::<(), layercake::Error>(())
//! ```
//!
//! # The canonical layer tar
//!
//! A layer built in code or from a diff is written in one fixed form, so equal changes always
//! give equal DiffIds:
//!
//! - records in path order, component by component (a directory before its children);
//! - names without a leading `./`, directories with a trailing `/`, the root as `./`;
//! - USTAR headers with empty user and group names; a PAX header only when a value does not
//!   fit: `path`/`linkpath` for names over 100 bytes or not ASCII, `uid`/`gid` over 2097151,
//!   `mtime` outside the 11-digit octal range, `size` over 8 GiB, `SCHILY.xattr.NAME` for
//!   every extended attribute;
//! - whiteouts (`.wh.NAME`) and opaque markers (`.wh..wh..opq`) as empty regular files with
//!   mode 0, owner 0:0 and mtime 0, as Docker and umoci write them;
//! - **mtimes**: entries keep the mtime they carry, nothing is clamped or set to "now";
//!   builders default to 0, and a container stamps what it changes with its clock
//!   ([`Container::set_clock`](crate::Container::set_clock));
//! - the archive ends with two zero blocks.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use crate::changes::Changeset;
use crate::codec::{tar_write, Budget, Compression};
use crate::config::{ContainerConfig, History, ImageConfig};
use crate::contents::{Contents, HostFile};
use crate::digest::{DiffId, Digest, HashingReader};
use crate::entry::Entry;
use crate::error::{Error, Result};
use crate::image::Image;
use crate::layer::{DiffOptions, Layer, ReadOptions};
use crate::limits::Limits;
use crate::path::ImagePath;
use crate::reference::Reference;
use crate::tree::Tree;

mod docker;
mod files;
pub mod oci;

pub use oci::Platform;

use files::Files;

/// The kinds of image files.
///
/// ```
/// use layercake::archive::Format;
///
/// let format: Format = "oci-archive".parse()?; // e.g. from a command-line flag
/// assert_eq!(format, Format::OciArchive);
/// assert_eq!(format.to_string(), "oci-archive");
/// assert!("tar.gz".parse::<Format>().is_err());
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// `docker save` output: `manifest.json` and layer tars (written by layercake as an OCI
    /// layout too, as Docker 25 does).
    DockerArchive,
    /// An OCI image layout directory.
    OciLayout,
    /// An OCI image layout in a tar.
    OciArchive,
}

impl std::str::FromStr for Format {
    type Err = Error;

    fn from_str(s: &str) -> Result<Format> {
        match s {
            "docker-archive" => Ok(Format::DockerArchive),
            "oci" => Ok(Format::OciLayout),
            "oci-archive" => Ok(Format::OciArchive),
            _ => Err(Error::Unsupported {
                what: format!("format `{s}` (docker-archive, oci, oci-archive)"),
            }),
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::DockerArchive => "docker-archive",
            Format::OciLayout => "oci",
            Format::OciArchive => "oci-archive",
        })
    }
}

/// Options for reading image files, a builder by value: how layers are read (limits, where
/// decompressed layers go) and which platform to take from a multi-platform index.
///
/// ```
/// use layercake::archive::{Archive, Format, LoadOptions, Writer};
/// use layercake::layer::ReadOptions;
/// use layercake::{Error, Image, Layer, Limits};
///
/// let image = Image::builder()
///     .layer(Layer::builder().file("big", vec![0u8; 4096]).build()?)
///     .build()?;
/// let mut tar = Vec::new();
/// Writer::new(Format::DockerArchive).image(&image, ["big"]).write(&mut tar)?;
/// // Untrusted input: tighter limits than the defaults. The layer's declared size is
/// // checked when the file is opened, before a byte of it is read.
/// let options = LoadOptions::new().read(ReadOptions::new().limits(Limits::default().layer_bytes(1024)));
/// let err = Archive::from_bytes_with(tar, &options).unwrap_err();
/// assert!(matches!(err, Error::LimitExceeded { .. }));
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LoadOptions {
    read: ReadOptions,
    platform: Platform,
}

impl Default for LoadOptions {
    fn default() -> LoadOptions {
        LoadOptions {
            read: ReadOptions::default(),
            platform: Platform::host(),
        }
    }
}

impl LoadOptions {
    /// The defaults: default [`ReadOptions`], the host's platform.
    ///
    /// ```
    /// use layercake::archive::{LoadOptions, Platform};
    ///
    /// assert_eq!(LoadOptions::new().platform_in_force(), &Platform::host());
    /// ```
    pub fn new() -> LoadOptions {
        LoadOptions::default()
    }

    /// Sets how layers are read: limits, duplicates, where decompressed layers go.
    ///
    /// ```
    /// use layercake::archive::{Archive, Format, LoadOptions, Writer};
    /// use layercake::layer::ReadOptions;
    /// use layercake::{Error, Image, Layer, Limits};
    ///
    /// let big = || Layer::builder().file("f", vec![1u8; 4096]).build();
    /// let image = Image::builder().layer(big()?).layer(big()?).build()?;
    /// let mut tar = Vec::new();
    /// Writer::new(Format::DockerArchive).image(&image, ["two"]).write(&mut tar)?;
    /// // Checked from the manifest, before any layer is read.
    /// let options = LoadOptions::new().read(ReadOptions::new().limits(Limits::default().layers(1)));
    /// let err = Archive::from_bytes_with(tar, &options).unwrap_err();
    /// assert!(matches!(err, Error::LimitExceeded { limit: "layers in one image", .. }));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn read(mut self, read: ReadOptions) -> LoadOptions {
        self.read = read;
        self
    }

    /// Sets the platform to take from a multi-platform index (an image index or Docker
    /// manifest list), the host's by default. The platforms an index offers are listed
    /// ([`ArchiveImage::platforms`]), and a name whose index has none for this platform is
    /// an error naming the ones it has.
    ///
    /// ```
    /// use layercake::archive::{Archive, Format, LoadOptions, Platform, Writer};
    /// use layercake::Image;
    ///
    /// let amd = Image::builder().architecture("amd64").build()?;
    /// let arm = Image::builder().architecture("arm64").build()?;
    /// let mut tar = Vec::new();
    /// // Two platforms under one name: an index per platform in `index.json`.
    /// Writer::new(Format::OciArchive).image(&amd, ["app:1"]).image(&arm, ["app:1"]).write(&mut tar)?;
    /// let arm64 = LoadOptions::new().platform(Platform::parse("linux/arm64")?);
    /// let archive = Archive::from_bytes_with(tar, &arm64)?;
    /// assert_eq!(archive.image("app:1")?.id(), arm.id());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn platform(mut self, platform: Platform) -> LoadOptions {
        self.platform = platform;
        self
    }

    /// The platform in force.
    ///
    /// ```
    /// use layercake::archive::{LoadOptions, Platform};
    ///
    /// let options = LoadOptions::new().platform(Platform::parse("linux/arm64/v8")?);
    /// assert_eq!(options.platform_in_force().to_string(), "linux/arm64/v8");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn platform_in_force(&self) -> &Platform {
        &self.platform
    }
}

/// One image of an image file: the image (its layers read when first needed), the names
/// the file gives it, and the platforms its index offered.
///
/// ```
/// use layercake::archive::{Archive, Format, Writer};
/// use layercake::Image;
///
/// let (a, b) =
///     (Image::builder().cmd(["a"]).build()?, Image::builder().cmd(["b"]).build()?);
/// let mut tar = Vec::new();
/// Writer::new(Format::DockerArchive)
///     .image(&a, ["app:1", "app:latest"])
///     .image(&b, [] as [&str; 0])
///     .write(&mut tar)?;
/// let archive = Archive::from_bytes(tar)?;
/// assert_eq!(archive.images()[0].names(), ["app:1", "app:latest"]);
/// assert!(archive.images()[1].names().is_empty(), "an untagged image");
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ArchiveImage {
    image: Image,
    names: Vec<String>,
    /// `org.opencontainers.image.ref.name` annotations, matched as they are.
    ref_names: Vec<String>,
    /// The names as a writer would give them again.
    naming: Vec<Name>,
    platforms: Vec<Platform>,
}

impl ArchiveImage {
    /// The image.
    ///
    /// ```
    /// use layercake::archive::{Archive, Format, Writer};
    /// use layercake::Image;
    ///
    /// let image = Image::builder().cmd(["sh"]).build()?;
    /// let mut tar = Vec::new();
    /// Writer::new(Format::OciArchive).image(&image, ["sh:1"]).write(&mut tar)?;
    /// assert_eq!(Archive::from_bytes(tar)?.images()[0].image().id(), image.id());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn image(&self) -> &Image {
        &self.image
    }

    /// The image, owned.
    ///
    /// ```
    /// use layercake::archive::{Archive, Format, Writer};
    /// use layercake::Image;
    ///
    /// let image = Image::builder().cmd(["sh"]).build()?;
    /// let mut tar = Vec::new();
    /// Writer::new(Format::OciArchive).image(&image, ["sh:1"]).write(&mut tar)?;
    /// let images: Vec<Image> =
    ///     Archive::from_bytes(tar)?.into_images().into_iter().map(|i| i.into_image()).collect();
    /// assert_eq!(images, [image]);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn into_image(self) -> Image {
        self.image
    }

    /// Its names in the file: a docker-archive's `RepoTags`; in an OCI layout, each
    /// descriptor's `io.containerd.image.name` (Docker 25's full name), else its
    /// `org.opencontainers.image.ref.name`.
    ///
    /// ```
    /// use layercake::archive::{Archive, Format, Writer};
    /// use layercake::Image;
    ///
    /// let image = Image::builder().build()?;
    /// let mut tar = Vec::new();
    /// Writer::new(Format::OciArchive).image(&image, ["busybox"]).write(&mut tar)?;
    /// let archive = Archive::from_bytes(tar)?;
    /// assert_eq!(archive.images()[0].names(), ["docker.io/library/busybox:latest"]);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The platforms the index it was picked from offered (empty if it was not picked from
    /// a multi-platform index): none is dropped silently.
    ///
    /// ```
    /// use layercake::archive::{Archive, Format, Writer};
    /// use layercake::Image;
    ///
    /// let amd = Image::builder().architecture("amd64").build()?;
    /// let arm = Image::builder().architecture("arm64").build()?;
    /// let mut tar = Vec::new();
    /// Writer::new(Format::OciArchive).image(&amd, ["app"]).image(&arm, ["app"]).write(&mut tar)?;
    /// let archive = Archive::from_bytes(tar)?;
    /// let offered: Vec<String> =
    ///     archive.images()[0].platforms().iter().map(|p| p.to_string()).collect();
    /// assert_eq!(offered, ["linux/amd64", "linux/arm64"]);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn platforms(&self) -> &[Platform] {
        &self.platforms
    }

    /// Whether `name` names this image: as [`answers`] says, or by its full id.
    fn answers_to(&self, name: &str) -> bool {
        answers(name, &self.names, &self.ref_names) || self.image.id().to_string() == name
    }

    /// A name to show for it: its first, else its id.
    fn label(&self) -> String {
        self.names
            .first()
            .cloned()
            .unwrap_or_else(|| self.image.id().to_string())
    }
}

/// Whether `name` is one of `names` (as Docker normalises references, so `busybox` is
/// `docker.io/library/busybox:latest`; a name that is not a reference only as it is) or one
/// of the OCI `ref_names` exactly.
fn answers(name: &str, names: &[String], ref_names: &[String]) -> bool {
    let wanted = Reference::parse(name).ok();
    let same = |n: &String| {
        n == name
            || wanted
                .as_ref()
                .is_some_and(|w| Reference::parse(n).ok().as_ref() == Some(w))
    };
    names.iter().any(same) || ref_names.iter().any(|r| r == name)
}

/// A name whose index has no manifest for the platform asked.
#[derive(Debug, Clone)]
struct Unavailable {
    names: Vec<String>,
    ref_names: Vec<String>,
    offered: Vec<Platform>,
}

/// What reading an image file's index builds up: the layers made so far (one per blob,
/// however many images list it) and the bytes they declare.
struct Loader<'a> {
    files: &'a Files,
    platform: &'a Platform,
    budget: Arc<Budget>,
    layers: HashMap<(String, DiffId), Layer>,
    declared: u64,
}

impl<'a> Loader<'a> {
    fn new(files: &'a Files, platform: &'a Platform) -> Loader<'a> {
        Loader {
            files,
            platform,
            budget: Budget::new(files.options.limits.archive_bytes),
            layers: HashMap::new(),
            declared: 0,
        }
    }

    fn limits(&self) -> &Limits {
        &self.files.options.limits
    }

    /// The layer a blob holds, made once per blob (`key`) and DiffId; read later.
    fn layer(
        &mut self,
        key: String,
        blob: Contents,
        blob_digest: Option<Digest>,
        diff_id: DiffId,
    ) -> Result<Layer> {
        if let Some(layer) = self.layers.get(&(key.clone(), diff_id)) {
            return Ok(layer.clone());
        }
        self.declared = self.declared.saturating_add(blob.len());
        Limits::check(
            "uncompressed bytes read from one image file",
            self.declared,
            self.limits().archive_bytes,
        )?;
        let size = blob.len();
        let layer = Layer::lazy(
            blob,
            blob_digest,
            diff_id,
            &self.files.options,
            Some(self.budget.clone()),
        )?;
        // A plain tar declares its uncompressed size: checked before it is read.
        if layer.blob().compression() == Compression::None {
            Limits::check("uncompressed layer bytes", size, self.limits().layer_bytes)?;
        }
        self.layers.insert((key, diff_id), layer.clone());
        Ok(layer)
    }

    /// An image from its config bytes and the blobs of its layers, checked against the
    /// limits on what they declare before any of them is read.
    fn image(
        &mut self,
        config: Bytes,
        blobs: Vec<(String, Contents, Option<Digest>)>,
    ) -> Result<Image> {
        let limits = self.limits().clone();
        Limits::check(
            "layers in one image",
            blobs.len() as u64,
            limits.layers as u64,
        )?;
        let config = ImageConfig::parse(config, limits.json_bytes)?;
        let diff_ids = config.file().rootfs.diff_ids.clone();
        if diff_ids.len() != blobs.len() {
            return Err(Error::config(format!(
                "rootfs lists {} layers, the manifest {}",
                diff_ids.len(),
                blobs.len()
            )));
        }
        let mut total = 0u64;
        let mut layers = Vec::with_capacity(blobs.len());
        for ((key, blob, blob_digest), diff_id) in blobs.into_iter().zip(diff_ids) {
            Limits::check("blob bytes", blob.len(), limits.blob_bytes)?;
            total = total.saturating_add(blob.len());
            layers.push(self.layer(key, blob, blob_digest, diff_id)?);
        }
        Limits::check("uncompressed bytes of one image", total, limits.image_bytes)?;
        Image::from_config(config, layers)
    }
}

/// The images of one image file, its index read and its layers not yet.
///
/// ```
/// use layercake::archive::{Archive, Format, Writer};
/// use layercake::{Image, Layer};
///
/// let image = Image::builder()
///     .layer(Layer::builder().file("hello", "world").build()?)
///     .build()?;
/// let mut tar = Vec::new();
/// Writer::new(Format::DockerArchive).image(&image, ["hello:1"]).write(&mut tar)?;
/// let archive = Archive::from_bytes(tar)?;
/// assert_eq!(archive.format(), Format::DockerArchive);
/// let hello = archive.image("hello:1")?;
/// assert!(!hello.layers().next().unwrap().is_read(), "nothing read yet");
/// assert_eq!(hello.tree()?.read("hello")?, "world");
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Archive {
    format: Format,
    label: String,
    images: Vec<ArchiveImage>,
    unavailable: Vec<Unavailable>,
    platform: Platform,
}

impl Archive {
    /// Opens an image file: a directory is an OCI layout; a file is a docker-archive if it
    /// has `manifest.json`, else an oci-archive. Reads the index, manifests and configs;
    /// layers are read when first needed.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the path cannot be opened; [`Error::InvalidArchive`] if it is not an
    /// image file or a document in it is malformed; [`Error::MissingBlob`] for a manifest,
    /// config or layer blob it lacks; [`Error::DigestMismatch`] for a manifest or config
    /// that is not what names it, or a blob of another size than its descriptor says;
    /// [`Error::InvalidConfig`] for a bad config; [`Error::Unsupported`] for an unknown
    /// manifest media type; [`Error::LimitExceeded`] past a [`Limits`] (sizes of documents,
    /// declared blob and layer sizes, layer counts, nesting). Problems inside a layer come
    /// out when it is read.
    ///
    /// ```
    /// use layercake::archive::{Archive, Format, Writer};
    /// use layercake::{Image, Layer};
    ///
    /// let image = Image::builder().layer(Layer::builder().file("a", "1").build()?).build()?;
    /// let dir =
    ///     std::env::temp_dir().join(format!("layercake-open-doc-{}", std::process::id()));
    /// Writer::new(Format::OciLayout).image(&image, ["app:1"]).write_dir(&dir)?;
    /// let archive = Archive::open(&dir)?;
    /// assert_eq!(archive.format(), Format::OciLayout);
    /// assert_eq!(archive.image("app:1")?.id(), image.id());
    /// std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<Archive> {
        Archive::open_with(path, &LoadOptions::default())
    }

    /// Opens an image file with explicit options (see [`Archive::open`]).
    ///
    /// # Errors
    ///
    /// As [`Archive::open`].
    ///
    /// ```
    /// use layercake::archive::{Archive, Format, LoadOptions, Writer};
    /// use layercake::layer::{Duplicates, ReadOptions};
    /// use layercake::Image;
    ///
    /// let image = Image::builder().cmd(["sh"]).build()?;
    /// let dir = std::env::temp_dir()
    ///     .join(format!("layercake-open-with-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let path = dir.join("image.tar");
    /// Writer::new(Format::DockerArchive)
    ///     .image(&image, ["sh"])
    ///     .write(std::fs::File::create(&path)?)?;
    /// let strict = LoadOptions::new().read(ReadOptions::new().duplicates(Duplicates::Reject));
    /// assert_eq!(Archive::open_with(&path, &strict)?.format(), Format::DockerArchive);
    /// std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_with(path: impl AsRef<Path>, options: &LoadOptions) -> Result<Archive> {
        let path = path.as_ref();
        let meta = std::fs::metadata(path)
            .map_err(|e| Error::io(format_args!("opening {}", path.display()), e))?;
        if meta.is_dir() {
            let files = Files::dir(path, &options.read);
            if !files.contains("index.json") {
                return Err(Error::archive(
                    path.display().to_string(),
                    "a directory that is not an OCI image layout: no index.json",
                ));
            }
            return Archive::read(Format::OciLayout, &files, options);
        }
        let file = HostFile::open(path)?;
        let len = file.len()?;
        Archive::from_contents(
            &Contents::on_disk(file, 0, len),
            path.display().to_string(),
            options,
        )
    }

    /// Reads a docker-archive or oci-archive held in memory.
    ///
    /// # Errors
    ///
    /// As [`Archive::open`].
    ///
    /// ```
    /// use layercake::archive::{Archive, Format, Writer};
    /// use layercake::{Error, Image};
    ///
    /// let image = Image::builder().cmd(["sh"]).build()?;
    /// // Either archive format, from bytes in memory (a download, an embedded fixture).
    /// for format in [Format::DockerArchive, Format::OciArchive] {
    ///     let mut tar = Vec::new();
    ///     Writer::new(format).image(&image, ["sh"]).write(&mut tar)?;
    ///     assert_eq!(Archive::from_bytes(tar)?.only_image()?.id(), image.id());
    /// }
    /// let empty_tar = vec![0u8; 1024];
    /// assert!(matches!(Archive::from_bytes(empty_tar), Err(Error::InvalidArchive { .. })));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn from_bytes(bytes: impl Into<Bytes>) -> Result<Archive> {
        Archive::from_bytes_with(bytes, &LoadOptions::default())
    }

    /// Reads a docker-archive or oci-archive held in memory, with explicit options.
    ///
    /// # Errors
    ///
    /// As [`Archive::open`].
    ///
    /// ```
    /// use layercake::archive::{Archive, Format, LoadOptions, Writer};
    /// use layercake::layer::ReadOptions;
    /// use layercake::{Error, Image, Layer, Limits};
    ///
    /// let image = Image::builder()
    ///     .layer(Layer::builder().build()?)
    ///     .layer(Layer::builder().file("a", "").build()?)
    ///     .build()?;
    /// let mut tar = Vec::new();
    /// Writer::new(Format::OciArchive).image(&image, ["two:1"]).write(&mut tar)?;
    /// let one_layer = LoadOptions::new().read(ReadOptions::new().limits(Limits::default().layers(1)));
    /// let err = Archive::from_bytes_with(tar, &one_layer).unwrap_err();
    /// assert!(matches!(err, Error::LimitExceeded { limit: "layers in one image", .. }));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn from_bytes_with(bytes: impl Into<Bytes>, options: &LoadOptions) -> Result<Archive> {
        let contents = Contents::from(bytes.into());
        Archive::from_contents(&contents, "an image archive in memory".into(), options)
    }

    fn from_contents(archive: &Contents, label: String, options: &LoadOptions) -> Result<Archive> {
        let files = Files::tar(archive, label.clone(), &options.read)?;
        let format = if files.contains("manifest.json") {
            Format::DockerArchive
        } else if files.contains("index.json") {
            Format::OciArchive
        } else {
            return Err(Error::archive(
                label,
                "not an image archive: no manifest.json (docker-archive) and no index.json (OCI layout)",
            ));
        };
        Archive::read(format, &files, options)
    }

    fn read(format: Format, files: &Files, options: &LoadOptions) -> Result<Archive> {
        let mut loader = Loader::new(files, &options.platform);
        let (images, unavailable) = match format {
            Format::DockerArchive => (docker::read(&mut loader)?, Vec::new()),
            Format::OciLayout | Format::OciArchive => oci::read_layout(&mut loader)?,
        };
        Ok(Archive {
            format,
            label: files.label.clone(),
            images,
            unavailable,
            platform: options.platform.clone(),
        })
    }

    /// The format the file was in.
    ///
    /// ```
    /// use layercake::archive::{Archive, Format, Writer};
    /// use layercake::Image;
    ///
    /// let image = Image::builder().cmd(["sh"]).build()?;
    /// let mut tar = Vec::new();
    /// Writer::new(Format::OciArchive).image(&image, ["app:1"]).write(&mut tar)?;
    /// // Write the images back in the format they came in: the same bytes.
    /// let archive = Archive::from_bytes(tar.clone())?;
    /// let mut writer = Writer::new(archive.format());
    /// for item in archive.images() {
    ///     writer = writer.image(item.image(), item.names());
    /// }
    /// let mut again = Vec::new();
    /// writer.write(&mut again)?;
    /// assert_eq!(again, tar);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn format(&self) -> Format {
        self.format
    }

    /// Every image in the file (for a multi-platform index, the platform asked for), in the
    /// order the file lists them.
    ///
    /// ```
    /// use layercake::archive::{Archive, Format, Writer};
    /// use layercake::Image;
    ///
    /// let (a, b) =
    ///     (Image::builder().cmd(["a"]).build()?, Image::builder().cmd(["b"]).build()?);
    /// let mut tar = Vec::new();
    /// Writer::new(Format::DockerArchive).image(&a, ["a:1"]).image(&b, ["b:1"]).write(&mut tar)?;
    /// let archive = Archive::from_bytes(tar)?;
    /// let names: Vec<&str> =
    ///     archive.images().iter().flat_map(|i| i.names()).map(String::as_str).collect();
    /// assert_eq!(names, ["a:1", "b:1"]);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn images(&self) -> &[ArchiveImage] {
        &self.images
    }

    /// Consumes the archive, giving its images.
    ///
    /// ```
    /// use layercake::archive::{Archive, Format, Writer};
    /// use layercake::{Image, Store};
    ///
    /// let image = Image::builder().cmd(["sh"]).build()?;
    /// let mut tar = Vec::new();
    /// Writer::new(Format::DockerArchive).image(&image, ["app:1"]).write(&mut tar)?;
    /// // `docker load`: every image into a store, with its names as tags.
    /// let mut store = Store::new();
    /// for item in Archive::from_bytes(tar)?.into_images() {
    ///     let id = store.add(item.image()).image.id();
    ///     item.names().iter().try_for_each(|name| store.tag(&id.to_string(), name))?;
    /// }
    /// assert_eq!(store.image("app:1")?.id(), image.id());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn into_images(self) -> Vec<ArchiveImage> {
        self.images
    }

    /// The image named `name`: one of its names (Docker's short names match the full ones
    /// skopeo and Docker 25 write: `busybox` is `docker.io/library/busybox:latest`), an OCI
    /// ref name exactly as `index.json` has it (`oci:DIR:REF`), or its full id.
    ///
    /// # Errors
    ///
    /// [`Error::ImageNotFound`] naming the images that do exist; [`Error::Unsupported`] if
    /// the name's index offers no manifest for the platform asked, naming those it offers.
    ///
    /// ```
    /// use layercake::archive::{Archive, Format, Writer};
    /// use layercake::{Error, Image};
    ///
    /// let (app, busybox) =
    ///     (Image::builder().cmd(["app"]).build()?, Image::builder().cmd(["sh"]).build()?);
    /// let mut tar = Vec::new();
    /// Writer::new(Format::DockerArchive)
    ///     .image(&app, ["app:1"])
    ///     .image(&busybox, ["busybox:latest"])
    ///     .write(&mut tar)?;
    /// let archive = Archive::from_bytes(tar)?;
    /// assert_eq!(archive.image("app:1")?.id(), app.id());
    /// assert_eq!(archive.image("docker.io/library/busybox")?.id(), busybox.id());
    /// assert!(matches!(archive.image("nginx"), Err(Error::ImageNotFound { .. })));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn image(&self, name: impl AsRef<str>) -> Result<Image> {
        let name = name.as_ref();
        if let Some(found) = self.images.iter().find(|i| i.answers_to(name)) {
            return Ok(found.image.clone());
        }
        if let Some(missing) = self
            .unavailable
            .iter()
            .find(|u| answers(name, &u.names, &u.ref_names))
        {
            let offered: Vec<String> = missing.offered.iter().map(|p| p.to_string()).collect();
            return Err(Error::Unsupported {
                what: format!(
                    "`{name}` in {}: no image for {} (it has {})",
                    self.label,
                    self.platform,
                    offered.join(", ")
                ),
            });
        }
        Err(Error::ImageNotFound {
            reference: format!("{name} (in {}: {})", self.label, self.listing()),
        })
    }

    /// The one image of the file, for a file that holds one.
    ///
    /// # Errors
    ///
    /// [`Error::AmbiguousReference`] listing the images' names when there are several (name
    /// one with [`Archive::image`]); [`Error::ImageNotFound`] when there is none for the
    /// platform asked.
    ///
    /// ```
    /// use layercake::archive::{Archive, Format, Writer};
    /// use layercake::{Error, Image};
    ///
    /// let (a, b) = (Image::builder().cmd(["a"]).build()?, Image::builder().cmd(["b"]).build()?);
    /// let mut tar = Vec::new();
    /// Writer::new(Format::OciArchive).image(&a, ["base"]).image(&b, ["app"]).write(&mut tar)?;
    /// let err = Archive::from_bytes(tar)?.only_image().unwrap_err();
    /// assert!(matches!(&err, Error::AmbiguousReference { candidates, .. } if candidates.len() == 2));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn only_image(&self) -> Result<Image> {
        match &self.images[..] {
            [only] => Ok(only.image.clone()),
            [] => Err(Error::ImageNotFound {
                reference: format!(
                    "an image for {} in {} ({})",
                    self.platform,
                    self.label,
                    self.listing()
                ),
            }),
            several => Err(Error::AmbiguousReference {
                reference: String::new(),
                candidates: several.iter().map(ArchiveImage::label).collect(),
            }),
        }
    }

    /// What the file holds, for messages.
    fn listing(&self) -> String {
        let mut all: Vec<String> = self.images.iter().map(ArchiveImage::label).collect();
        for u in &self.unavailable {
            let offered: Vec<String> = u.offered.iter().map(|p| p.to_string()).collect();
            all.push(format!(
                "{} (for {} only)",
                u.names.first().map_or("an unnamed index", String::as_str),
                offered.join(", ")
            ));
        }
        if all.is_empty() {
            "no images".into()
        } else {
            format!("it holds {}", all.join(", "))
        }
    }
}

/// Opens an image file and gives the image `name` names in it, in one call: what
/// `Archive::open(path)?.image(name)` does. Only the file's index is read; the image's
/// layers are read when first needed.
///
/// # Errors
///
/// As [`Archive::open`] and [`Archive::image`].
///
/// ```
/// use layercake::archive::{self, Format, Writer};
/// use layercake::{Image, Layer};
///
/// let image = Image::builder().layer(Layer::builder().file("etc/motd", "hi").build()?).build()?;
/// let path = std::env::temp_dir().join(format!("layercake-load-doc-{}.tar", std::process::id()));
/// Writer::new(Format::DockerArchive).image(&image, ["motd:1"]).write(std::fs::File::create(&path)?)?;
/// let loaded = archive::load(&path, "motd:1")?;
/// assert_eq!(loaded.tree()?.read("etc/motd")?, "hi");
/// std::fs::remove_file(&path)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn load(path: impl AsRef<Path>, name: impl AsRef<str>) -> Result<Image> {
    Archive::open(path)?.image(name)
}

/// A name an image is written under.
#[derive(Debug, Clone)]
enum Name {
    /// A Docker reference: `RepoTags` in a docker-archive; in an OCI index, Docker 25's
    /// convention (`io.containerd.image.name` the full name, `org.opencontainers.image.ref.name`
    /// the tag).
    Reference(Reference),
    /// An OCI ref name, as is (skopeo's `oci:DIR:REF`).
    RefName(String),
}

/// Writes images to an image file, a builder by value: the format, how layers are
/// compressed, and the images with their names. Contradictions are refused when writing
/// (a compression for a docker-archive, whose layers are plain tars; a level with no
/// compression; a stream for a layout directory), as is a name that is not a reference.
///
/// The output is deterministic: the same images and options give the same bytes. It is
/// streamed one blob at a time; a layer recompressed for the output is compressed once
/// however many images share it, into a temporary file.
///
/// ```
/// use layercake::archive::{Archive, Format, Writer};
/// use layercake::{Compression, Image, Layer};
///
/// let image = Image::builder().layer(Layer::builder().file("a", "1").build()?).build()?;
/// let mut tar = Vec::new();
/// Writer::new(Format::OciArchive)
///     .compression(Compression::Zstd)
///     .level(19)
///     .image(&image, ["app:1"])
///     .write(&mut tar)?;
/// let loaded = Archive::from_bytes(tar)?.image("app:1")?;
/// assert_eq!(loaded.layers().next().unwrap().blob().compression(), Compression::Zstd);
/// assert_eq!(loaded.id(), image.id(), "compression does not change the image");
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug)]
pub struct Writer {
    format: Format,
    compression: Option<Compression>,
    level: Option<u32>,
    images: Vec<(Image, Vec<Name>)>,
    /// The first contradiction, reported by `write` and `write_dir` (which may be called
    /// more than once, so it is kept in a form that makes an error each time).
    refusal: Option<Refusal>,
}

/// What a [`Writer`] refuses, kept until it writes.
#[derive(Debug, Clone)]
enum Refusal {
    Reference {
        reference: String,
        reason: &'static str,
    },
    Unsupported(String),
}

impl From<&Refusal> for Error {
    fn from(refusal: &Refusal) -> Error {
        match refusal {
            Refusal::Reference { reference, reason } => Error::InvalidReference {
                reference: reference.clone(),
                reason,
            },
            Refusal::Unsupported(what) => Error::Unsupported { what: what.clone() },
        }
    }
}

impl Writer {
    /// A writer of `format`, with no images yet. Layers keep the blobs they have (a
    /// docker-archive's are plain tars) unless a compression is set.
    ///
    /// ```
    /// use layercake::archive::{Archive, Format, Writer};
    /// use layercake::{Image, Layer};
    ///
    /// let image = Image::builder().cmd(["sh"]).build()?;
    /// let mut tar = Vec::new();
    /// Writer::new(Format::DockerArchive).image(&image, ["app:1"]).write(&mut tar)?;
    /// // One file for `docker load` (manifest.json) and for OCI tools (index.json).
    /// let files = Layer::from_tar(tar)?;
    /// assert!(files.changeset()?.entry("manifest.json").is_some());
    /// assert!(files.changeset()?.entry("index.json").is_some());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn new(format: Format) -> Writer {
        Writer {
            format,
            compression: None,
            level: None,
            images: Vec::new(),
            refusal: None,
        }
    }

    /// Recompresses every layer whose blob is not already in this compression.
    ///
    /// A docker-archive's layers are plain tars: any compression but
    /// [`Compression::None`] is refused when writing.
    ///
    /// ```
    /// use layercake::archive::{Format, Writer};
    /// use layercake::{Compression, Error, Image};
    ///
    /// let image = Image::builder().build()?;
    /// let err = Writer::new(Format::DockerArchive)
    ///     .compression(Compression::Gzip)
    ///     .image(&image, ["app"])
    ///     .write(Vec::new())
    ///     .unwrap_err();
    /// assert!(matches!(err, Error::Unsupported { .. }));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn compression(mut self, compression: Compression) -> Writer {
        if self.format == Format::DockerArchive && compression != Compression::None {
            self.fail(Refusal::Unsupported(format!(
                "{compression} layers in a docker-archive (its layers are plain tars)"
            )));
        }
        self.compression = Some(compression);
        self
    }

    /// The compression level for recompressed layers (gzip 0–9, zstd 1–22; default 6 and
    /// 3). Refused when writing unless a compression is set.
    ///
    /// ```
    /// use layercake::archive::{Format, Writer};
    /// use layercake::{Compression, Image, Layer};
    ///
    /// let text = "the quick brown fox jumps over the lazy dog\n".repeat(1000);
    /// let image = Image::builder().layer(Layer::builder().file("a", text).build()?).build()?;
    /// let size = |level| -> layercake::Result<usize> {
    ///     let mut tar = Vec::new();
    ///     Writer::new(Format::OciArchive)
    ///         .compression(Compression::Gzip)
    ///         .level(level)
    ///         .image(&image, ["a"])
    ///         .write(&mut tar)?;
    ///     Ok(tar.len())
    /// };
    /// assert!(size(9)? < size(0)?, "level 0 stores, level 9 compresses");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn level(mut self, level: u32) -> Writer {
        self.level = Some(level);
        self
    }

    /// Adds an image under Docker references (`app:1`, `docker.io/library/busybox`,
    /// `localhost:5000/x@sha256:…`): the `RepoTags` of a docker-archive, and in an OCI index
    /// Docker 25's convention, the tag in `org.opencontainers.image.ref.name` and the full
    /// name in `io.containerd.image.name`. An image with no names is written unnamed. Images
    /// given twice under one name with different platforms become one multi-platform entry
    /// of `index.json` per platform.
    ///
    /// ```
    /// use layercake::archive::{Archive, Format, Writer};
    /// use layercake::{Error, Image};
    ///
    /// let image = Image::builder().build()?;
    /// let mut tar = Vec::new();
    /// Writer::new(Format::DockerArchive).image(&image, ["busybox", "app:1"]).write(&mut tar)?;
    /// assert_eq!(Archive::from_bytes(tar)?.images()[0].names(), ["busybox:latest", "app:1"]);
    /// let bad = Writer::new(Format::DockerArchive).image(&image, ["Not A Name"]).write(Vec::new());
    /// assert!(matches!(bad, Err(Error::InvalidReference { .. })));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn image<S: AsRef<str>>(
        mut self,
        image: &Image,
        names: impl IntoIterator<Item = S>,
    ) -> Writer {
        let mut parsed = Vec::new();
        for name in names {
            match Reference::parse(name.as_ref()) {
                Ok(r) => parsed.push(Name::Reference(r)),
                Err(Error::InvalidReference { reference, reason }) => {
                    self.fail(Refusal::Reference { reference, reason })
                }
                Err(other) => self.fail(Refusal::Unsupported(other.to_string())),
            }
        }
        self.images.push((image.clone(), parsed));
        self
    }

    /// Adds an image of an archive under the names it had there: its references, and the
    /// OCI ref names that were not derived from one.
    ///
    /// ```
    /// use layercake::archive::{Archive, Format, Writer};
    /// use layercake::Image;
    ///
    /// let image = Image::builder().build()?;
    /// let mut first = Vec::new();
    /// Writer::new(Format::OciArchive).image_ref(&image, "v1").image(&image, ["app:2"]).write(&mut first)?;
    /// let archive = Archive::from_bytes(first.clone())?;
    /// let mut again = Vec::new();
    /// Writer::new(Format::OciArchive).archived(&archive.images()[0]).write(&mut again)?;
    /// assert_eq!(again, first, "the same names, the same bytes");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn archived(mut self, item: &ArchiveImage) -> Writer {
        if self.format == Format::DockerArchive {
            if let Some(Name::RefName(r)) =
                item.naming.iter().find(|n| matches!(n, Name::RefName(_)))
            {
                self.fail(Refusal::Unsupported(format!(
                    "OCI ref name `{r}` in a docker-archive (name it with a reference)"
                )));
            }
        }
        self.images.push((item.image.clone(), item.naming.clone()));
        self
    }

    /// Adds an image under an OCI ref name, as is (what `oci:DIR:REF` names in skopeo and
    /// umoci: `latest`, `v1.0`). A docker-archive's names are references: refused there
    /// when writing.
    ///
    /// ```
    /// use layercake::archive::{Archive, Format, Writer};
    /// use layercake::Image;
    ///
    /// let image = Image::builder().build()?;
    /// let mut tar = Vec::new();
    /// Writer::new(Format::OciArchive).image_ref(&image, "v1.0").write(&mut tar)?;
    /// let archive = Archive::from_bytes(tar)?;
    /// assert_eq!(archive.images()[0].names(), ["v1.0"]);
    /// assert_eq!(archive.image("v1.0")?.id(), image.id());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn image_ref(mut self, image: &Image, ref_name: impl Into<String>) -> Writer {
        let ref_name = ref_name.into();
        if self.format == Format::DockerArchive {
            self.fail(Refusal::Unsupported(format!(
                "OCI ref name `{ref_name}` in a docker-archive (name it with a reference)"
            )));
        }
        self.images
            .push((image.clone(), vec![Name::RefName(ref_name)]));
        self
    }

    fn fail(&mut self, refusal: Refusal) {
        self.refusal.get_or_insert(refusal);
    }

    /// The format written.
    ///
    /// ```
    /// use layercake::archive::{Format, Writer};
    ///
    /// assert_eq!(Writer::new(Format::OciLayout).format(), Format::OciLayout);
    /// ```
    pub fn format(&self) -> Format {
        self.format
    }

    /// The first contradiction found while building.
    fn check(&self) -> Result<()> {
        if let Some(refusal) = &self.refusal {
            return Err(refusal.into());
        }
        if self.level.is_some() && self.compression.is_none() {
            return Err(Error::Unsupported {
                what: "a compression level with no compression".into(),
            });
        }
        Ok(())
    }

    /// Writes a docker-archive or an oci-archive tar to `out`, streaming.
    ///
    /// # Errors
    ///
    /// A contradiction of the builder ([`Error::Unsupported`], [`Error::InvalidReference`]),
    /// [`Error::Unsupported`] for [`Format::OciLayout`] (a directory: use
    /// [`Writer::write_dir`]), the errors of reading a layer not read yet (a blob whose
    /// digest is wrong is found before anything is written), and [`Error::Io`].
    ///
    /// ```
    /// use layercake::archive::{Archive, Format, Writer};
    /// use layercake::{Image, Layer};
    ///
    /// let image = Image::builder().layer(Layer::builder().file("a", "1").build()?).build()?;
    /// let writer = Writer::new(Format::DockerArchive).image(&image, ["app:1"]);
    /// let (mut first, mut second) = (Vec::new(), Vec::new());
    /// writer.write(&mut first)?;
    /// writer.write(&mut second)?;
    /// assert_eq!(first, second, "deterministic: the same bytes every time");
    /// assert_eq!(Archive::from_bytes(first)?.image("app:1")?.id(), image.id());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn write(&self, mut out: impl Write) -> Result<()> {
        self.check()?;
        if self.format == Format::OciLayout {
            return Err(Error::Unsupported {
                what: "writing an OCI layout directory to a stream (use write_dir)".into(),
            });
        }
        let files = self.files()?;
        let mut changes = Changeset::default();
        let mut dirs = BTreeSet::new();
        for (name, contents) in files {
            let path = ImagePath::new(&name)?;
            dirs.extend(path.ancestors());
            changes
                .entries
                .insert(path, Arc::new(Entry::file(contents)));
        }
        for dir in dirs {
            changes.entries.insert(dir, Arc::new(Entry::dir()));
        }
        tar_write::write(&changes, &mut out, "an image archive")?;
        out.flush()
            .map_err(|e| Error::io("writing an image archive", e))
    }

    /// Writes an OCI layout directory at `dir` (created if missing). A blob already there
    /// under its digest, with its size, is kept; others are written to a temporary name and
    /// renamed into place, `index.json` last.
    ///
    /// # Errors
    ///
    /// As [`Writer::write`], [`Error::Unsupported`] for a format other than
    /// [`Format::OciLayout`], and [`Error::Io`] naming the file that could not be written.
    ///
    /// ```
    /// use layercake::archive::{Archive, Format, Writer};
    /// use layercake::{Compression, Image, Layer};
    ///
    /// let image = Image::builder().layer(Layer::builder().file("a", "1").build()?).build()?;
    /// let dir = std::env::temp_dir()
    ///     .join(format!("layercake-write-dir-doc-{}", std::process::id()));
    /// Writer::new(Format::OciLayout)
    ///     .compression(Compression::Zstd)
    ///     .image(&image, ["app:1"])
    ///     .write_dir(&dir)?;
    /// assert!(dir.join("oci-layout").is_file() && dir.join("index.json").is_file());
    /// let loaded = Archive::open(&dir)?.image("app:1")?;
    /// assert_eq!(loaded.layers().next().unwrap().blob().compression(), Compression::Zstd);
    /// std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_dir(&self, dir: impl AsRef<Path>) -> Result<()> {
        self.check()?;
        if self.format != Format::OciLayout {
            return Err(Error::Unsupported {
                what: format!("writing a {} as a directory (use write)", self.format),
            });
        }
        let dir = dir.as_ref();
        let mut files = self.files()?;
        // `index.json` goes last: a reader never sees it name a blob not yet in place.
        let index = files.remove("index.json");
        for (name, contents) in files
            .into_iter()
            .chain(index.map(|i| ("index.json".into(), i)))
        {
            // Names here are made by this crate (`blobs/sha256/<hex>`, `index.json`).
            let path = dir.join(&name);
            if name.starts_with("blobs/")
                && std::fs::symlink_metadata(&path)
                    .is_ok_and(|m| m.is_file() && m.len() == contents.len())
            {
                continue;
            }
            let parent = path.parent().unwrap_or(dir);
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::io(format_args!("creating {}", parent.display()), e))?;
            let temporary = parent.join(format!(
                ".{}.layercake-{}",
                path.file_name()
                    .map_or("file".into(), |n| n.to_string_lossy()),
                std::process::id()
            ));
            let fail = |e| Error::io(format_args!("writing {}", temporary.display()), e);
            let file = std::fs::File::create(&temporary).map_err(fail)?;
            let mut out = std::io::BufWriter::with_capacity(256 << 10, file);
            contents.copy_to(&mut out, &temporary.display().to_string())?;
            out.into_inner()
                .map_err(|e| fail(e.into_error()))?
                .sync_all()
                .map_err(fail)?;
            std::fs::rename(&temporary, &path)
                .map_err(|e| Error::io(format_args!("renaming into {}", path.display()), e))?;
        }
        Ok(())
    }

    /// The files of the image file by their path in it, each blob once: small documents in
    /// memory, layer blobs where they are (recompressed ones in temporary files).
    fn files(&self) -> Result<BTreeMap<String, Contents>> {
        let mut files = BTreeMap::new();
        let compression = match self.format {
            Format::DockerArchive => Some(Compression::None),
            _ => self.compression,
        };
        let mut blobs = Blobs {
            compression,
            level: self.level,
            recompressed: HashMap::new(),
        };
        oci::layout_files(&self.images, &mut blobs, &mut files)?;
        if self.format == Format::DockerArchive {
            docker::manifest(&self.images, &mut files)?;
        }
        Ok(files)
    }
}

/// The layer blobs a writer puts out, each checked or recompressed once.
struct Blobs {
    compression: Option<Compression>,
    level: Option<u32>,
    /// Layers recompressed for this output, by DiffId.
    recompressed: HashMap<DiffId, Layer>,
}

impl Blobs {
    /// The blob to write for `layer`: its own, or a recompressed one. A blob that was never
    /// read is hashed first, so a wrong one stops the write before anything is written.
    fn blob(&mut self, layer: &Layer) -> Result<Layer> {
        let wanted = match self.compression {
            Some(c) if c != layer.blob().compression() => c,
            _ => {
                if !layer.is_read() {
                    verify_blob(layer)?;
                }
                return Ok(layer.clone());
            }
        };
        if let Some(done) = self.recompressed.get(&layer.diff_id()) {
            return Ok(done.clone());
        }
        let level = self.level.unwrap_or(wanted.default_level());
        let done = layer.compress(wanted, level)?;
        self.recompressed.insert(layer.diff_id(), done.clone());
        Ok(done)
    }
}

/// Hashes a blob not read yet against the digest its manifest gave.
fn verify_blob(layer: &Layer) -> Result<()> {
    let blob = layer.blob();
    let mut hash = HashingReader::new(blob.contents().reader());
    std::io::copy(&mut hash, &mut std::io::sink())
        .map_err(|e| Error::io(format_args!("reading layer blob {}", blob.digest()), e))?;
    if hash.digest() != blob.digest() {
        return Err(Error::DigestMismatch {
            what: format!("layer blob {}", blob.digest()),
            expected: blob.digest().to_string(),
            actual: hash.digest().to_string(),
        });
    }
    Ok(())
}

/// Writes the flattened filesystem of a tree as one tar, as `docker export` does: every
/// entry of the merged view, no whiteouts, hardlinks kept as hardlinks. File contents are
/// streamed from wherever they are, never held whole.
///
/// # Errors
///
/// [`Error::Io`] if reading a file or writing fails; [`Error::InvalidPath`] for a regular
/// file under a `.wh.*` name, which a tar can only carry as a whiteout.
///
/// ```
/// use layercake::{Image, Layer, Tree};
///
/// let image = Image::builder()
///     .layer(Layer::builder().file("a", "1").file("b", "2").build()?)
///     .layer(Layer::builder().whiteout("a").build()?)
///     .build()?;
/// let mut tar = Vec::new();
/// layercake::archive::export(&image.tree()?, &mut tar)?;
/// let flat = Layer::from_tar(tar)?;
/// assert_eq!(flat.changeset()?.whiteouts().count(), 0);
/// assert_eq!(Tree::new().apply(&flat)?, image.tree()?);
/// # Ok::<(), layercake::Error>(())
/// ```
pub fn export<W: Write>(tree: &Tree, mut out: W) -> Result<()> {
    let changes = crate::changes::diff(&Tree::new(), tree, &DiffOptions::default())?;
    // The writer refuses a name that would read back as something else (a regular file
    // under a `.wh.*` name, say), as a commit does.
    tar_write::write(&changes, &mut out, "the exported tar")?;
    out.flush()
        .map_err(|e| Error::io("writing the exported tar", e))
}

/// Options for [`import`], like the flags of `docker import`.
///
/// ```
/// use layercake::archive::{import, ImportOptions, Platform};
/// use layercake::Layer;
///
/// let rootfs = Layer::builder().file("bin/sh", "ELF").build()?;
/// let mut options = ImportOptions::default();
/// options.message = Some("rootfs of build 42".into());
/// options.created = Some(0);
/// options.platform = Some(Platform::parse("linux/arm64")?);
/// let image = import(rootfs.tar()?.clone(), &options)?;
/// assert_eq!(image.inspect().architecture, "arm64");
/// assert_eq!(image.inspect().comment, "rootfs of build 42");
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ImportOptions {
    /// The runtime config (`--change`).
    pub config: Option<ContainerConfig>,
    /// The commit message (`--message`).
    pub message: Option<String>,
    /// The creation time, seconds since the epoch (default: now).
    pub created: Option<i64>,
    /// The platform written in the config (default: the host's).
    pub platform: Option<Platform>,
}

/// Makes a one-layer image from a root filesystem tar (plain, gzip or zstd; in memory or a
/// range of a file), as `docker import` does.
///
/// # Errors
///
/// As [`Layer::from_blob`].
///
/// ```
/// use layercake::archive::{import, ImportOptions};
/// use layercake::Layer;
///
/// let rootfs = Layer::builder().file("bin/sh", "ELF").build()?;
/// let image = import(rootfs.tar()?.clone(), &ImportOptions::default())?;
/// assert_eq!(image.diff_ids(), [rootfs.diff_id()]);
/// assert_eq!(image.history()[0].comment, "Imported from -");
/// # Ok::<(), layercake::Error>(())
/// ```
pub fn import(blob: impl Into<Contents>, options: &ImportOptions) -> Result<Image> {
    import_layer(Layer::from_blob(blob)?, options)
}

/// Makes a one-layer image from a layer already read (see [`import`]).
///
/// # Errors
///
/// [`Error::InvalidConfig`] if the config cannot be written.
///
/// ```
/// use layercake::archive::{import_layer, ImportOptions};
/// use layercake::Layer;
///
/// let rootfs = Layer::builder().file("bin/sh", "ELF").build()?;
/// let image = import_layer(rootfs.clone(), &ImportOptions::default())?;
/// assert_eq!(image.diff_ids(), [rootfs.diff_id()]);
/// # Ok::<(), layercake::Error>(())
/// ```
pub fn import_layer(layer: Layer, options: &ImportOptions) -> Result<Image> {
    let platform = options.platform.clone().unwrap_or_else(Platform::host);
    let message = options
        .message
        .clone()
        .unwrap_or_else(|| "Imported from -".into());
    let mut builder = Image::builder()
        .layer_with(layer, History::default().comment(message.clone()))
        .comment(message)
        .os(platform.os)
        .architecture(platform.architecture)
        .created(options.created.unwrap_or_else(crate::config::now));
    if let Some(config) = &options.config {
        builder = builder.config(config.clone());
    }
    builder.build()
}
