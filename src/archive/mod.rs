//! Image files in and out: docker-archive (`docker save`/`docker load`), the OCI image
//! layout as a directory or a tar (`oci-archive`), compressed layer blobs, and the
//! flattened filesystem of `docker export`/`docker import`.
//!
//! Reading verifies everything before anything is returned: every blob against its
//! descriptor (size and digest), every layer against the DiffId its config lists, every
//! config against its manifest. A failed read returns an error that names what, the
//! expected and the actual digest, and produces nothing, so a [`Store`](crate::Store) only
//! ever receives whole, verified images.
//!
//! ```
//! use layercake::archive::{Archive, WriteOptions};
//! use layercake::{Image, Layer};
//!
//! let image = Image::builder()
//!     .layer(Layer::builder().file("hello", "world").build()?)
//!     .build()?;
//! let mut tar = Vec::new();
//! layercake::archive::write(
//!     &[(&image, &["hello:v1".to_string()][..])],
//!     &WriteOptions::docker_archive(),
//!     &mut tar,
//! )?;
//!
//! let archive = Archive::from_bytes(tar)?;
//! let loaded = archive.image(Some("hello:v1"))?;
//! assert_eq!(loaded.image.id(), image.id());
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

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use crate::config::{ContainerConfig, History};
use crate::entry::Entry;
use crate::error::{Error, Result};
use crate::image::Image;
use crate::layer::{diff_changes, Changes, DiffOptions, Layer, ReadOptions};
use crate::limits::Limits;
use crate::path::ImagePath;
use crate::tree::Tree;

pub(crate) mod compression;
mod docker;
pub(crate) mod layer_tar;
pub mod oci;
mod source;

pub use compression::Compression;
pub use oci::Platform;

use source::Source;

/// An image read from an archive, with the names the archive gives it (`RepoTags` of a
/// docker-archive, `org.opencontainers.image.ref.name` of an OCI layout).
///
/// ```
/// use layercake::archive::{write, Archive, WriteOptions};
/// use layercake::Image;
///
/// let (a, b) =
///     (Image::builder().cmd(["a"]).build()?, Image::builder().cmd(["b"]).build()?);
/// let names = ["app:1".to_string(), "app:latest".to_string()];
/// let mut tar = Vec::new();
/// write(&[(&a, &names[..]), (&b, &[][..])], &WriteOptions::docker_archive(), &mut tar)?;
/// let archive = Archive::from_bytes(tar)?;
/// assert_eq!(archive.images()[0].names, names);
/// assert!(archive.images()[1].names.is_empty(), "an untagged image");
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Loaded {
    /// The image, verified.
    pub image: Image,
    /// Its names in the archive.
    pub names: Vec<String>,
}

/// Maps `f` over `items` on up to as many threads as the machine has cores, keeping order;
/// the first error (in item order) wins. Layers decompress and parse independently.
pub(crate) fn parallel_map<T: Sync, U: Send>(
    items: &[T],
    f: impl Fn(&T) -> Result<U> + Sync,
) -> Result<Vec<U>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len());
    if threads <= 1 {
        return items.iter().map(&f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<Option<Result<U>>> = (0..items.len()).map(|_| None).collect();
    let done = std::sync::Mutex::new(&mut results);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                let result = f(item);
                done.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(result);
            });
        }
    });
    results
        .into_iter()
        .map(|r| r.expect("every item was mapped"))
        .collect()
}

/// Refuses an image with more layers than the limit, before any layer is read.
pub(crate) fn check_layer_count(count: usize, limits: &Limits) -> Result<()> {
    Limits::check("layers in one image", count as u64, limits.layers as u64)
}

/// Refuses an image whose layers hold more uncompressed bytes than the limit.
pub(crate) fn check_image_bytes(layers: &[Layer], limits: &Limits) -> Result<()> {
    let total = layers
        .iter()
        .map(Layer::size)
        .fold(0u64, u64::saturating_add);
    Limits::check("uncompressed bytes of one image", total, limits.image_bytes)
}

/// The kinds of image files.
///
/// ```
/// use layercake::archive::{Format, WriteOptions};
///
/// let format: Format = "oci-archive".parse()?; // e.g. from a command-line flag
/// assert_eq!(WriteOptions::for_format(format).format(), Format::OciArchive);
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

/// Options for reading image files.
///
/// ```
/// use layercake::archive::{write, Archive, LoadOptions, WriteOptions};
/// use layercake::layer::ReadOptions;
/// use layercake::{Error, Image, Layer, Limits};
///
/// let image = Image::builder()
///     .layer(Layer::builder().file("big", vec![0u8; 4096]).build()?)
///     .build()?;
/// let mut tar = Vec::new();
/// write(&[(&image, &[][..])], &WriteOptions::docker_archive(), &mut tar)?;
/// // Untrusted input: tighter limits than the defaults.
/// let mut options = LoadOptions::new();
/// options.read = ReadOptions::new().limits(Limits::default().layer_bytes(1024));
/// let err = Archive::from_bytes_with(tar, &options).unwrap_err();
/// assert!(matches!(err, Error::LimitExceeded { .. }));
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LoadOptions {
    /// How layer tars are read.
    pub read: ReadOptions,
    /// Which platform to take from a multi-platform index (default: the host's): an image
    /// index or Docker manifest list that `index.json` points to. The manifests `index.json`
    /// lists itself are all read, whatever their platform.
    pub platform: Platform,
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
    /// let options = LoadOptions::new();
    /// assert_eq!(options.platform, Platform::host());
    /// ```
    pub fn new() -> LoadOptions {
        LoadOptions::default()
    }

    /// Sets the platform to pick from multi-platform indexes (an index that `index.json`
    /// points to; see the `platform` field).
    ///
    /// ```
    /// use layercake::archive::oci::{Descriptor, INDEX_V1};
    /// use layercake::archive::{write, Archive, LoadOptions, Platform, WriteOptions};
    /// use layercake::{Image, Layer};
    ///
    /// let amd = Image::builder().architecture("amd64").build()?;
    /// let arm = Image::builder().architecture("arm64").build()?;
    /// let mut tar = Vec::new();
    /// write(&[(&amd, &[][..]), (&arm, &[][..])], &WriteOptions::oci_archive(), &mut tar)?;
    /// // Nest the two manifests in one image index, as `docker buildx` and skopeo do.
    /// # let files = Layer::from_tar(tar)?;
    /// # let index = files.entry("index.json").unwrap().contents().unwrap().clone();
    /// # let nested = Descriptor::of(INDEX_V1, &index);
    /// # let nested_json = serde_json::to_string(&nested)?;
    /// # let top = format!(r#"{{"schemaVersion":2,"manifests":[{nested_json}]}}"#);
    /// # let mut multi = Layer::builder();
    /// # for (path, entry) in files.entries() {
    /// #     multi = multi.entry(path, entry.clone());
    /// # }
    /// # let multi = multi.file(format!("blobs/sha256/{}", nested.digest.to_hex()), index);
    /// # let multi = multi.file("index.json", top);
    /// # let tar = multi.build()?.tar().clone();
    /// let arm64 = LoadOptions::new().platform(Platform::parse("linux/arm64")?);
    /// let archive = Archive::from_bytes_with(tar, &arm64)?;
    /// assert_eq!(archive.image(None)?.image.id(), arm.id());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn platform(mut self, platform: Platform) -> LoadOptions {
        self.platform = platform;
        self
    }
}

/// The images of one image file, read and verified.
///
/// ```
/// use layercake::archive::{write, Archive, Format, WriteOptions};
/// use layercake::{Image, Layer};
///
/// let image = Image::builder()
///     .layer(Layer::builder().file("hello", "world").build()?)
///     .build()?;
/// let mut tar = Vec::new();
/// write(
///     &[(&image, &["hello:1".to_string()][..])],
///     &WriteOptions::docker_archive(),
///     &mut tar,
/// )?;
/// let archive = Archive::from_bytes(tar)?;
/// assert_eq!(archive.format(), Format::DockerArchive);
/// assert_eq!(archive.image(Some("hello:1"))?.image.tree()?.read("hello")?, "world");
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Archive {
    format: Format,
    images: Vec<Loaded>,
}

impl Archive {
    /// Opens an image file: a directory is an OCI layout; a file is read into memory and is
    /// a docker-archive if it has `manifest.json`, else an oci-archive.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the path cannot be read; [`Error::InvalidArchive`] if it is not an
    /// image file or a document in it is malformed; [`Error::MissingBlob`] for a blob it
    /// lacks; [`Error::DigestMismatch`] for a blob, config or layer that is not what names it;
    /// [`Error::InvalidBlob`], [`Error::InvalidTar`] and the other errors of
    /// [`Layer::from_blob`] for a bad layer; [`Error::InvalidConfig`] for a bad config;
    /// [`Error::Unsupported`] for an unknown manifest media type or an index without the wanted
    /// platform; [`Error::LimitExceeded`] past a [`Limits`].
    ///
    /// ```
    /// use layercake::archive::{write_dir, Archive, Format, WriteOptions};
    /// use layercake::{Image, Layer};
    ///
    /// let image = Image::builder().layer(Layer::builder().file("a", "1").build()?).build()?;
    /// let dir =
    ///     std::env::temp_dir().join(format!("layercake-open-doc-{}", std::process::id()));
    /// write_dir(&[(&image, &["app:1".to_string()][..])], &WriteOptions::oci(), &dir)?;
    /// let archive = Archive::open(&dir)?;
    /// assert_eq!(archive.format(), Format::OciLayout);
    /// assert_eq!(archive.image(Some("app:1"))?.image.id(), image.id());
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
    /// use layercake::archive::{write, Archive, Format, LoadOptions, WriteOptions};
    /// use layercake::layer::{Duplicates, ReadOptions};
    /// use layercake::Image;
    ///
    /// let image = Image::builder().cmd(["sh"]).build()?;
    /// let dir = std::env::temp_dir()
    ///     .join(format!("layercake-open-with-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let path = dir.join("image.tar");
    /// write(
    ///     &[(&image, &[][..])],
    ///     &WriteOptions::docker_archive(),
    ///     std::fs::File::create(&path)?,
    /// )?;
    /// let mut strict = LoadOptions::new();
    /// strict.read = ReadOptions::new().duplicates(Duplicates::Reject);
    /// assert_eq!(Archive::open_with(&path, &strict)?.format(), Format::DockerArchive);
    /// std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_with(path: impl AsRef<Path>, options: &LoadOptions) -> Result<Archive> {
        let path = path.as_ref();
        let meta = std::fs::metadata(path)
            .map_err(|e| Error::io(format_args!("opening {}", path.display()), e))?;
        if meta.is_dir() {
            let source = Source::dir(path, &options.read);
            return Ok(Archive {
                format: Format::OciLayout,
                images: oci::read_layout(&source, &options.platform)?,
            });
        }
        let bytes = std::fs::read(path)
            .map_err(|e| Error::io(format_args!("reading {}", path.display()), e))?;
        Archive::from_bytes_with(bytes, options)
    }

    /// Reads a docker-archive or oci-archive held in memory.
    ///
    /// # Errors
    ///
    /// As [`Archive::open`].
    ///
    /// ```
    /// use layercake::archive::{write, Archive, WriteOptions};
    /// use layercake::{Error, Image};
    ///
    /// let image = Image::builder().cmd(["sh"]).build()?;
    /// // Either archive format, from bytes in memory (a download, an embedded fixture).
    /// for options in [WriteOptions::docker_archive(), WriteOptions::oci_archive()] {
    ///     let mut tar = Vec::new();
    ///     write(&[(&image, &[][..])], &options, &mut tar)?;
    ///     assert_eq!(Archive::from_bytes(tar)?.image(None)?.image.id(), image.id());
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
    /// use layercake::archive::{write, Archive, LoadOptions, WriteOptions};
    /// use layercake::layer::ReadOptions;
    /// use layercake::{Error, Image, Layer, Limits};
    ///
    /// let image = Image::builder()
    ///     .layer(Layer::builder().build()?)
    ///     .layer(Layer::builder().file("a", "").build()?)
    ///     .build()?;
    /// let mut tar = Vec::new();
    /// write(&[(&image, &[][..])], &WriteOptions::oci_archive(), &mut tar)?;
    /// let mut one_layer = LoadOptions::new();
    /// one_layer.read = ReadOptions::new().limits(Limits::default().layers(1));
    /// let err = Archive::from_bytes_with(tar, &one_layer).unwrap_err();
    /// assert!(matches!(
    ///     err,
    ///     Error::LimitExceeded {
    ///         limit: "layers in one image",
    ///         ..
    ///     }
    /// ));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn from_bytes_with(bytes: impl Into<Bytes>, options: &LoadOptions) -> Result<Archive> {
        let source = Source::from_tar(&bytes.into(), &options.read)?;
        if source.contains("manifest.json") {
            Ok(Archive {
                format: Format::DockerArchive,
                images: docker::read(&source)?,
            })
        } else if source.contains("index.json") {
            Ok(Archive {
                format: Format::OciArchive,
                images: oci::read_layout(&source, &options.platform)?,
            })
        } else {
            Err(Error::archive(
                None,
                "not an image archive: no manifest.json (docker-archive) and no index.json (OCI layout)",
            ))
        }
    }

    /// The format the file was in.
    ///
    /// ```
    /// use layercake::archive::{write, Archive, WriteOptions};
    /// use layercake::Image;
    ///
    /// let image = Image::builder().cmd(["sh"]).build()?;
    /// let mut tar = Vec::new();
    /// write(&[(&image, &["app:1".to_string()][..])], &WriteOptions::oci_archive(), &mut tar)?;
    /// // Write the images back in the format they came in: the same bytes.
    /// let archive = Archive::from_bytes(tar.clone())?;
    /// let images: Vec<_> =
    ///     archive.images().iter().map(|l| (&l.image, &l.names[..])).collect();
    /// let mut again = Vec::new();
    /// write(&images, &WriteOptions::for_format(archive.format()), &mut again)?;
    /// assert_eq!(again, tar);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn format(&self) -> Format {
        self.format
    }

    /// Every image in the file, in the order the file lists them.
    ///
    /// ```
    /// use layercake::archive::{write, Archive, WriteOptions};
    /// use layercake::Image;
    ///
    /// let (a, b) =
    ///     (Image::builder().cmd(["a"]).build()?, Image::builder().cmd(["b"]).build()?);
    /// let mut tar = Vec::new();
    /// let (a_names, b_names) = (["a:1".to_string()], ["b:1".to_string()]);
    /// write(
    ///     &[(&a, &a_names[..]), (&b, &b_names[..])],
    ///     &WriteOptions::docker_archive(),
    ///     &mut tar,
    /// )?;
    /// let archive = Archive::from_bytes(tar)?;
    /// let names: Vec<&str> =
    ///     archive.images().iter().flat_map(|l| &l.names).map(String::as_str).collect();
    /// assert_eq!(names, ["a:1", "b:1"]);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn images(&self) -> &[Loaded] {
        &self.images
    }

    /// Consumes the archive, giving its images.
    ///
    /// ```
    /// use layercake::archive::{write, Archive, WriteOptions};
    /// use layercake::{Image, Store};
    ///
    /// let image = Image::builder().cmd(["sh"]).build()?;
    /// let mut tar = Vec::new();
    /// write(
    ///     &[(&image, &["app:1".to_string()][..])],
    ///     &WriteOptions::docker_archive(),
    ///     &mut tar,
    /// )?;
    /// // `docker load`: every image into a store, with its names as tags.
    /// let mut store = Store::new();
    /// for loaded in Archive::from_bytes(tar)?.into_images() {
    ///     let id = store.add(&loaded.image).image.id().to_string();
    ///     loaded.names.iter().try_for_each(|name| store.tag(&id, name))?;
    /// }
    /// assert_eq!(store.image("app:1")?.id(), image.id());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn into_images(self) -> Vec<Loaded> {
        self.images
    }

    /// The image named `name` (a tag or a ref name; `name` alone matches `name:latest`, and
    /// Docker's short names match skopeo's full ones: `busybox` is
    /// `docker.io/library/busybox:latest`; the image's full id matches too), or, with `None`,
    /// the only image.
    ///
    /// # Errors
    ///
    /// [`Error::ImageNotFound`] naming the images that do exist, if there is no such
    /// name, or several images and no name.
    ///
    /// ```
    /// use layercake::archive::{write, Archive, WriteOptions};
    /// use layercake::{Error, Image};
    ///
    /// let (app, busybox) =
    ///     (Image::builder().cmd(["app"]).build()?, Image::builder().cmd(["sh"]).build()?);
    /// let (app_names, busybox_names) =
    ///     (["app:1".to_string()], ["busybox:latest".to_string()]);
    /// let mut tar = Vec::new();
    /// write(
    ///     &[(&app, &app_names[..]), (&busybox, &busybox_names[..])],
    ///     &WriteOptions::docker_archive(),
    ///     &mut tar,
    /// )?;
    /// let archive = Archive::from_bytes(tar)?;
    /// assert_eq!(archive.image(Some("app:1"))?.image.id(), app.id());
    /// assert_eq!(archive.image(Some("docker.io/library/busybox"))?.image.id(), busybox.id());
    /// assert!(
    ///     matches!(archive.image(None), Err(Error::ImageNotFound { .. })),
    ///     "two images, no name"
    /// );
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn image(&self, name: Option<&str>) -> Result<&Loaded> {
        let found = match name {
            None if self.images.len() == 1 => self.images.first(),
            None => None,
            Some(name) => {
                let with_latest = format!("{name}:latest");
                let normalized = normalize_reference(name);
                self.images.iter().find(|l| {
                    l.names.iter().any(|n| {
                        n == name || *n == with_latest || normalize_reference(n) == normalized
                    }) || l.image.id().to_string() == name
                })
            }
        };
        found.ok_or_else(|| {
            let names: Vec<String> = self
                .images
                .iter()
                .map(|l| match l.names.first() {
                    Some(n) => n.clone(),
                    None => l.image.id().to_string(),
                })
                .collect();
            Error::ImageNotFound {
                reference: format!(
                    "{} (the file holds: {})",
                    name.unwrap_or("<one image>"),
                    names.join(", ")
                ),
            }
        })
    }
}

/// Docker's full form of an image reference, so that the names skopeo writes
/// (`docker.io/library/busybox:latest`) match the short ones Docker writes and people type
/// (`busybox`): `name` is `docker.io/library/name`, `user/name` is `docker.io/user/name`
/// (a first component with a `.` or `:`, or `localhost`, is a registry and stays), and a
/// missing tag is `latest` unless there is a digest.
fn normalize_reference(reference: &str) -> String {
    let (path, digest) = match reference.split_once('@') {
        Some((path, digest)) => (path, Some(digest)),
        None => (reference, None),
    };
    let (repo, tag) = match path.rfind(':') {
        Some(i) if !path[i..].contains('/') => (&path[..i], Some(&path[i + 1..])),
        _ => (path, None),
    };
    let mut full = match repo.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => repo.to_owned(),
        Some(_) => format!("docker.io/{repo}"),
        None => format!("docker.io/library/{repo}"),
    };
    if let Some(rest) = full.strip_prefix("docker.io/") {
        if !rest.contains('/') {
            full = format!("docker.io/library/{rest}");
        }
    }
    match (tag, digest) {
        (Some(tag), _) => full = format!("{full}:{tag}"),
        (None, None) => full.push_str(":latest"),
        (None, Some(_)) => {}
    }
    if let Some(digest) = digest {
        full = format!("{full}@{digest}");
    }
    full
}

/// How to write image files.
///
/// ```
/// use layercake::archive::{write, Archive, Compression, WriteOptions};
/// use layercake::{Image, Layer};
///
/// let image = Image::builder().layer(Layer::builder().file("a", "1").build()?).build()?;
/// let options = WriteOptions::oci_archive().compression(Compression::Zstd).level(19);
/// let mut tar = Vec::new();
/// write(&[(&image, &[][..])], &options, &mut tar)?;
/// let loaded = Archive::from_bytes(tar)?.into_images().remove(0).image;
/// assert_eq!(loaded.layers().next().unwrap().blob().compression(), Compression::Zstd);
/// assert_eq!(loaded.id(), image.id(), "compression does not change the image");
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WriteOptions {
    pub(crate) format: Format,
    pub(crate) compression: Option<Compression>,
    pub(crate) level: Option<u32>,
}

impl WriteOptions {
    /// A docker-archive (uncompressed layers, also an OCI layout, as Docker 25 writes).
    ///
    /// ```
    /// use layercake::archive::{write, WriteOptions};
    /// use layercake::{Image, Layer};
    ///
    /// let image = Image::builder().cmd(["sh"]).build()?;
    /// let mut tar = Vec::new();
    /// write(
    ///     &[(&image, &["app:1".to_string()][..])],
    ///     &WriteOptions::docker_archive(),
    ///     &mut tar,
    /// )?;
    /// // One file for `docker load` (manifest.json) and for OCI tools (index.json).
    /// let files = Layer::from_tar(tar)?;
    /// assert!(files.entry("manifest.json").is_some());
    /// assert!(files.entry("index.json").is_some());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn docker_archive() -> WriteOptions {
        WriteOptions {
            format: Format::DockerArchive,
            compression: Some(Compression::None),
            level: None,
        }
    }

    /// An OCI layout directory; layers keep the blobs they have unless a compression is set.
    ///
    /// ```
    /// use layercake::archive::{write_dir, Archive, Compression, WriteOptions};
    /// use layercake::{Image, Layer};
    ///
    /// let gz = Layer::builder().file("a", "1").build()?.compress(Compression::Gzip, 6)?;
    /// let image = Image::builder().layer(gz.clone()).build()?;
    /// let dir =
    ///     std::env::temp_dir().join(format!("layercake-oci-doc-{}", std::process::id()));
    /// write_dir(&[(&image, &[][..])], &WriteOptions::oci(), &dir)?;
    /// let loaded = Archive::open(&dir)?.into_images().remove(0).image;
    /// assert_eq!(
    ///     loaded.layers().next().unwrap().blob().digest(),
    ///     gz.blob().digest(),
    ///     "not recompressed"
    /// );
    /// std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn oci() -> WriteOptions {
        WriteOptions {
            format: Format::OciLayout,
            compression: None,
            level: None,
        }
    }

    /// An OCI layout in a tar; layers keep the blobs they have unless a compression is set.
    ///
    /// ```
    /// use layercake::archive::{write, Archive, Compression, WriteOptions};
    /// use layercake::{Image, Layer};
    ///
    /// let gz = Layer::builder().file("a", "1").build()?.compress(Compression::Gzip, 6)?;
    /// let image = Image::builder().layer(gz.clone()).build()?;
    /// let mut tar = Vec::new();
    /// write(&[(&image, &[][..])], &WriteOptions::oci_archive(), &mut tar)?;
    /// let loaded = Archive::from_bytes(tar)?.into_images().remove(0).image;
    /// assert_eq!(
    ///     loaded.layers().next().unwrap().blob().digest(),
    ///     gz.blob().digest(),
    ///     "not recompressed"
    /// );
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn oci_archive() -> WriteOptions {
        WriteOptions {
            format: Format::OciArchive,
            compression: None,
            level: None,
        }
    }

    /// Options for `format`.
    ///
    /// ```
    /// use layercake::archive::{write, Archive, WriteOptions};
    /// use layercake::Image;
    ///
    /// let image = Image::builder().cmd(["sh"]).build()?;
    /// for name in ["docker-archive", "oci-archive"] {
    ///     let mut tar = Vec::new();
    ///     write(&[(&image, &[][..])], &WriteOptions::for_format(name.parse()?), &mut tar)?;
    ///     assert_eq!(Archive::from_bytes(tar)?.format().to_string(), name);
    /// }
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn for_format(format: Format) -> WriteOptions {
        match format {
            Format::DockerArchive => WriteOptions::docker_archive(),
            Format::OciLayout => WriteOptions::oci(),
            Format::OciArchive => WriteOptions::oci_archive(),
        }
    }

    /// Recompresses every layer whose blob is not already in this compression (ignored for
    /// docker-archive, whose layers are always plain tars).
    ///
    /// ```
    /// use layercake::archive::{write, Archive, Compression, WriteOptions};
    /// use layercake::{Image, Layer};
    ///
    /// let image = Image::builder().layer(Layer::builder().file("a", "1").build()?).build()?;
    /// let top_blob = |options: WriteOptions| -> layercake::Result<Compression> {
    ///     let mut tar = Vec::new();
    ///     write(&[(&image, &[][..])], &options, &mut tar)?;
    ///     let loaded = Archive::from_bytes(tar)?.into_images().remove(0).image;
    ///     let compression = loaded.layers().next().unwrap().blob().compression();
    ///     Ok(compression)
    /// };
    /// assert_eq!(
    ///     top_blob(WriteOptions::oci_archive().compression(Compression::Zstd))?,
    ///     Compression::Zstd
    /// );
    /// assert_eq!(
    ///     top_blob(WriteOptions::docker_archive().compression(Compression::Zstd))?,
    ///     Compression::None
    /// );
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn compression(mut self, compression: Compression) -> WriteOptions {
        if self.format != Format::DockerArchive {
            self.compression = Some(compression);
        }
        self
    }

    /// The compression level (gzip 0–9, zstd 1–22; default 6 and 3).
    ///
    /// ```
    /// use layercake::archive::{write, Compression, WriteOptions};
    /// use layercake::{Image, Layer};
    ///
    /// let text = "the quick brown fox jumps over the lazy dog\n".repeat(1000);
    /// let image =
    ///     Image::builder().layer(Layer::builder().file("a", text).build()?).build()?;
    /// let size = |level| -> layercake::Result<usize> {
    ///     let mut tar = Vec::new();
    ///     write(
    ///         &[(&image, &[][..])],
    ///         &WriteOptions::oci_archive().compression(Compression::Gzip).level(level),
    ///         &mut tar,
    ///     )?;
    ///     Ok(tar.len())
    /// };
    /// assert!(size(9)? < size(0)?, "level 0 stores, level 9 compresses");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn level(mut self, level: u32) -> WriteOptions {
        self.level = Some(level);
        self
    }

    /// The format written.
    ///
    /// ```
    /// use layercake::archive::{write, Format, WriteOptions};
    /// use layercake::{Error, Image};
    ///
    /// let image = Image::builder().build()?;
    /// let options = WriteOptions::oci();
    /// assert_eq!(options.format(), Format::OciLayout);
    /// // A layout is a directory: it goes to `write_dir`, not to a stream.
    /// let err = write(&[(&image, &[][..])], &options, Vec::new()).unwrap_err();
    /// assert!(matches!(err, Error::Unsupported { .. }));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn format(&self) -> Format {
        self.format
    }
}

/// The files of an image file for `images`, by archive path.
fn files(
    images: &[(&Image, &[String])],
    options: &WriteOptions,
) -> Result<BTreeMap<String, Bytes>> {
    match options.format {
        Format::DockerArchive => docker::files(images),
        Format::OciLayout | Format::OciArchive => {
            let mut files = BTreeMap::new();
            oci::layout_files(images, options, &mut files)?;
            Ok(files)
        }
    }
}

/// Writes images with their names as a docker-archive or oci-archive tar.
///
/// The tar is deterministic: the same images and options give the same bytes.
///
/// # Errors
///
/// [`Error::Unsupported`] for [`Format::OciLayout`] (a directory: use [`write_dir`]),
/// [`Error::Io`] if writing fails.
///
/// ```
/// use layercake::archive::{write, Archive, WriteOptions};
/// use layercake::{Image, Layer};
///
/// let image = Image::builder().layer(Layer::builder().file("a", "1").build()?).build()?;
/// let names = ["app:1".to_string()];
/// let (mut first, mut second) = (Vec::new(), Vec::new());
/// write(&[(&image, &names[..])], &WriteOptions::docker_archive(), &mut first)?;
/// write(&[(&image, &names[..])], &WriteOptions::docker_archive(), &mut second)?;
/// assert_eq!(first, second, "deterministic: the same bytes every time");
/// assert_eq!(Archive::from_bytes(first)?.image(Some("app:1"))?.image.id(), image.id());
/// # Ok::<(), layercake::Error>(())
/// ```
pub fn write<W: Write>(
    images: &[(&Image, &[String])],
    options: &WriteOptions,
    mut out: W,
) -> Result<()> {
    if options.format == Format::OciLayout {
        return Err(Error::Unsupported {
            what: "writing an OCI layout directory to a stream (use write_dir)".into(),
        });
    }
    let files = files(images, options)?;
    let mut changes = Changes::default();
    let mut dirs = BTreeSet::new();
    for (name, bytes) in files {
        let path = ImagePath::new(&name)?;
        dirs.extend(path.ancestors());
        changes.entries.insert(path, Arc::new(Entry::file(bytes)));
    }
    for dir in dirs {
        changes.entries.insert(dir, Arc::new(Entry::dir()));
    }
    layer_tar::write_to(&changes, &mut out, "an image archive")
}

/// Writes images as an OCI layout directory at `dir` (created if missing; existing blobs
/// with the same names are replaced).
///
/// # Errors
///
/// [`Error::Io`] naming the file that could not be written.
///
/// ```
/// use layercake::archive::{write_dir, Archive, Compression, WriteOptions};
/// use layercake::{Image, Layer};
///
/// let image = Image::builder().layer(Layer::builder().file("a", "1").build()?).build()?;
/// let dir = std::env::temp_dir()
///     .join(format!("layercake-write-dir-doc-{}", std::process::id()));
/// write_dir(
///     &[(&image, &["app:1".to_string()][..])],
///     &WriteOptions::oci().compression(Compression::Zstd),
///     &dir,
/// )?;
/// assert!(dir.join("oci-layout").is_file() && dir.join("index.json").is_file());
/// let loaded = Archive::open(&dir)?.into_images().remove(0).image;
/// assert_eq!(loaded.layers().next().unwrap().blob().compression(), Compression::Zstd);
/// std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn write_dir(
    images: &[(&Image, &[String])],
    options: &WriteOptions,
    dir: impl AsRef<Path>,
) -> Result<()> {
    let dir = dir.as_ref();
    let options = WriteOptions {
        format: Format::OciLayout,
        ..options.clone()
    };
    for (name, bytes) in files(images, &options)? {
        // Names here are made by this crate (`blobs/sha256/<hex>`, `index.json`), not read.
        let path = dir.join(&name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::io(format_args!("creating {}", parent.display()), e))?;
        }
        std::fs::write(&path, &bytes)
            .map_err(|e| Error::io(format_args!("writing {}", path.display()), e))?;
    }
    Ok(())
}

/// Writes the flattened filesystem of a tree as one tar, as `docker export` does: every
/// entry of the merged view, no whiteouts, hardlinks kept as hardlinks.
///
/// # Errors
///
/// [`Error::Io`] if writing fails; [`Error::InvalidPath`] for a regular file under a
/// `.wh.*` name, which a tar can only carry as a whiteout.
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
/// assert_eq!(flat.whiteouts().count(), 0);
/// assert_eq!(Tree::new().apply(&flat)?, image.tree()?);
/// # Ok::<(), layercake::Error>(())
/// ```
pub fn export<W: Write>(tree: &Tree, mut out: W) -> Result<()> {
    let changes = diff_changes(&Tree::new(), tree, &DiffOptions::default());
    // The writer refuses a name that would read back as something else (a regular file
    // under a `.wh.*` name, say), as a commit does.
    layer_tar::write_to(&changes, &mut out, "the exported tar")
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
/// let image = import(rootfs.tar().clone(), &options)?;
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

/// Makes a one-layer image from a root filesystem tar (plain, gzip or zstd), as
/// `docker import` does.
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
/// let image = import(rootfs.tar().clone(), &ImportOptions::default())?;
/// assert_eq!(image.diff_ids(), [rootfs.diff_id()]);
/// assert_eq!(image.history()[0].comment, "Imported from -");
/// # Ok::<(), layercake::Error>(())
/// ```
pub fn import(blob: impl Into<Bytes>, options: &ImportOptions) -> Result<Image> {
    let layer = Layer::from_blob(blob)?;
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

#[cfg(test)]
mod tests {
    use super::normalize_reference as n;

    #[test]
    fn references_normalise_as_docker_does() {
        assert_eq!(n("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(n("docker.io/busybox:1"), "docker.io/library/busybox:1");
        assert_eq!(n("skopeo/img:1"), "docker.io/skopeo/img:1");
        assert_eq!(n("localhost:5000/img"), "localhost:5000/img:latest");
        assert_eq!(n("quay.io/a/b:2"), "quay.io/a/b:2");
        let digest = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            n(&format!("a/b@{digest}")),
            format!("docker.io/a/b@{digest}")
        );
    }
}
