//! [`Writer`]: image files out, one blob at a time, from wherever the bytes are.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use crate::archive::{docker, oci, ArchiveImage, Format};
use crate::changes::Changeset;
use crate::codec::{tar_write, Compression};
use crate::contents::Contents;
use crate::digest::{DiffId, HashingReader};
use crate::entry::Entry;
use crate::error::{Error, Result};
use crate::image::Image;
use crate::layer::Layer;
use crate::path::ImagePath;
use crate::reference::Reference;

/// A name an image is written under.
#[derive(Debug, Clone)]
pub(super) enum Name {
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
    /// assert!(files.changeset()?.entry("manifest.json")?.is_some());
    /// assert!(files.changeset()?.entry("index.json")?.is_some());
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
    /// assert_eq!(Writer::new(Format::OciLayout).format_in_force(), Format::OciLayout);
    /// ```
    pub fn format_in_force(&self) -> Format {
        self.format
    }

    /// The compression asked for with [`Writer::compression`], if any (`None`: each layer
    /// as it is, plain where the format allows).
    ///
    /// ```
    /// use layercake::archive::{Format, Writer};
    /// use layercake::Compression;
    ///
    /// assert_eq!(Writer::new(Format::OciArchive).compression_in_force(), None);
    /// let zstd = Writer::new(Format::OciArchive).compression(Compression::Zstd);
    /// assert_eq!(zstd.compression_in_force(), Some(Compression::Zstd));
    /// ```
    pub fn compression_in_force(&self) -> Option<Compression> {
        self.compression
    }

    /// The compression level asked for with [`Writer::level`], if any.
    ///
    /// ```
    /// use layercake::archive::{Format, Writer};
    ///
    /// assert_eq!(Writer::new(Format::OciArchive).level(9).level_in_force(), Some(9));
    /// ```
    pub fn level_in_force(&self) -> Option<u32> {
        self.level
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
pub(super) struct Blobs {
    compression: Option<Compression>,
    level: Option<u32>,
    /// Layers recompressed for this output, by DiffId.
    recompressed: HashMap<DiffId, Layer>,
}

impl Blobs {
    /// The blob to write for `layer`: its own, or a recompressed one. A blob that was never
    /// read is hashed first, so a wrong one stops the write before anything is written.
    pub(super) fn blob(&mut self, layer: &Layer) -> Result<Layer> {
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
            expected: blob.digest(),
            actual: hash.digest(),
        });
    }
    Ok(())
}
