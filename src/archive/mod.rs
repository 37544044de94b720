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

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use crate::codec::{Budget, Compression};
use crate::config::ImageConfig;
use crate::contents::{Contents, HostFile};
use crate::digest::{DiffId, Digest};
use crate::error::{Error, Result};
use crate::image::Image;
use crate::layer::{Layer, ReadOptions};
use crate::limits::Limits;
use crate::reference::Reference;

mod docker;
mod files;
mod flat;
pub mod oci;
mod writer;

pub use flat::{export, import, import_layer, ImportOptions};
pub use oci::Platform;
pub use writer::Writer;

use files::Files;
use writer::{Blobs, Name};

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

    /// The read options in force (limits, temporary directory, duplicates).
    ///
    /// ```
    /// use layercake::archive::LoadOptions;
    /// use layercake::layer::ReadOptions;
    /// use layercake::Limits;
    ///
    /// let options = LoadOptions::new().read(ReadOptions::new().limits(Limits::new().ratio(2000)));
    /// assert_eq!(options.read_in_force().limits_in_force().ratio_in_force(), 2000);
    /// ```
    pub fn read_in_force(&self) -> &ReadOptions {
        &self.read
    }

    /// Sets the platform to take from a multi-platform index (an image index or Docker
    /// manifest list, or several entries of `index.json` under one name), the host's by
    /// default. A manifest is taken when its OS and architecture are those asked and, if
    /// the platform asked has a variant, its variant too; a manifest that names no platform
    /// is taken for any. In an image index or manifest list the first such manifest is
    /// taken; of several entries of `index.json` under one name, each such one. A name with
    /// a single entry, a manifest, is read whatever its platform. The platforms an index
    /// offers are listed ([`ArchiveImage::platforms`]), and a name whose index has none for
    /// this platform is an error naming the ones it has.
    ///
    /// ```
    /// use layercake::archive::{Archive, Format, LoadOptions, Platform, Writer};
    /// use layercake::Image;
    ///
    /// let amd = Image::builder().architecture("amd64").build()?;
    /// let arm = Image::builder().architecture("arm64").build()?;
    /// let mut tar = Vec::new();
    /// // Two platforms under one name: two entries of `index.json`, one per platform.
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
    /// image file or a document in it is malformed or ambiguous (a member named twice with
    /// different bytes, or `manifest.json`, `index.json`, `oci-layout` or `repositories`
    /// twice at all; a manifest or index that is not what its descriptor says, or is both;
    /// an `imageLayoutVersion` other than 1.x; a blob name that links another blob);
    /// [`Error::InvalidReference`] for a name (`RepoTags`, a ref name) outside its grammar,
    /// shown escaped; [`Error::MissingBlob`] for a manifest,
    /// config or layer blob it lacks; [`Error::DigestMismatch`] for a manifest or config
    /// that is not what names it; [`Error::SizeMismatch`] for a blob of another size than
    /// its descriptor says;
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
        Error::check_host_path(path, "opening")?;
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
        let read = match format {
            Format::DockerArchive => docker::read(&mut loader).map(|images| (images, Vec::new())),
            Format::OciLayout | Format::OciArchive => oci::read_layout(&mut loader),
        };
        let (images, unavailable) = read.map_err(|e| in_file(e, &files.label))?;
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
    ///     let id = store.add(item.image())?.image.id();
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

/// An error about a member of an image file (`manifest.json: malformed JSON`) as one about
/// the file, naming the member: `FILE: manifest.json: malformed JSON`.
fn in_file(e: Error, file: &str) -> Error {
    match e {
        Error::InvalidArchive {
            path: Some(member),
            reason,
            source,
        } if member != file => Error::InvalidArchive {
            path: Some(file.to_owned()),
            reason: format!("{member}: {reason}"),
            source,
        },
        other => other,
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
