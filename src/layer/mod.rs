//! [`Layer`]: one changeset of an image, backed by its uncompressed tar, with its
//! [`Blob`] (the form it is stored in) and its [`LayerBuilder`].
//!
//! A layer read from a tar keeps those exact bytes, where they are (so its DiffId never
//! changes); a layer built in code or from a diff is written once as the canonical tar and
//! its file contents point into it. A layer of an image file is read when first needed.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use crate::changes::{self, Changeset};
use crate::codec::compression::Encoder;
use crate::codec::{self, tar_write, BlobInput, Budget, Compression, Decoded, Expected};
use crate::contents::{Contents, ContentsWriter, HostFile};
use crate::digest::{DiffId, Digest};
use crate::entry::{Entry, EntryKind};
use crate::error::Result;
use crate::limits::Limits;
use crate::tree::Tree;

mod builder;
mod options;

pub use builder::LayerBuilder;
pub use options::{DiffOptions, Duplicates, ReadOptions, WhiteoutStyle};

/// The form of a layer that is stored or sent: a plain, gzip or zstd tar, its digest and
/// its compression. The blob digest is not the DiffId unless the blob is plain.
///
/// ```
/// use layercake::{Compression, Layer};
///
/// let layer = Layer::builder().file("a", "hello").build()?;
/// assert_eq!(layer.blob().compression(), Compression::None);
/// assert_eq!(layer.blob().digest(), layer.diff_id().digest());
///
/// let gz = layer.compress(Compression::Gzip, 6)?;
/// assert_ne!(gz.blob().digest(), gz.diff_id().digest());
/// let back = Layer::from_blob(gz.blob().contents().clone())?;
/// assert_eq!(back.diff_id(), layer.diff_id());
/// assert_eq!(back.blob().digest(), gz.blob().digest());
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Blob {
    digest: Digest,
    compression: Compression,
    contents: Contents,
}

impl Blob {
    /// The digest of the blob bytes (what a manifest's layer descriptor names). For a layer
    /// of an image file not read yet, the digest its manifest gives, checked when it is read.
    ///
    /// ```
    /// use layercake::{Compression, Digest, Layer};
    ///
    /// let gz = Layer::builder().file("a", "hi").build()?.compress(Compression::Gzip, 6)?;
    /// // The manifest names the compressed bytes; the config's `diff_ids` the tar.
    /// assert_eq!(gz.blob().digest(), Digest::sha256(gz.blob().contents().to_bytes()?));
    /// assert_ne!(gz.blob().digest(), gz.diff_id().digest());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// The compression, detected from the bytes.
    ///
    /// ```
    /// use layercake::{Compression, Layer};
    ///
    /// let zst = Layer::builder().file("a", "hi").build()?.compress(Compression::Zstd, 3)?;
    /// // Whatever media type the blob came with, its magic bytes decide.
    /// let read = Layer::from_blob(zst.blob().contents().clone())?;
    /// assert_eq!(read.blob().compression(), Compression::Zstd);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// The blob bytes: in memory, or a range of a file on disk (an image file, or a
    /// temporary file a compressed copy was written to).
    ///
    /// ```
    /// use layercake::{Compression, Layer};
    ///
    /// let gz = Layer::builder().file("a", "hi").build()?.compress(Compression::Gzip, 6)?;
    /// // Pushing or saving the layer again sends these bytes as they are: no recompression.
    /// let read = Layer::from_blob(gz.blob().contents().clone())?;
    /// assert_eq!(read.blob().contents(), gz.blob().contents());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn contents(&self) -> &Contents {
        &self.contents
    }

    /// The blob size in bytes (the `size` of a layer descriptor).
    ///
    /// ```
    /// use layercake::{Compression, Layer};
    ///
    /// let layer = Layer::builder().file("log", "line\n".repeat(1000)).build()?;
    /// let gz = layer.compress(Compression::Gzip, 6)?;
    /// // What a pull transfers, against what it unpacks.
    /// assert!(gz.blob().size() * 10 < layer.size()?);
    /// assert_eq!(layer.blob().size(), layer.size()?, "a plain blob is the tar");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn size(&self) -> u64 {
        self.contents.len()
    }

    /// The OCI media type for this blob.
    ///
    /// ```
    /// use layercake::{Compression, Layer};
    ///
    /// let gz = Layer::builder().file("a", "hi").build()?.compress(Compression::Gzip, 6)?;
    /// assert_eq!(gz.blob().media_type(), "application/vnd.oci.image.layer.v1.tar+gzip");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn media_type(&self) -> &'static str {
        self.compression.oci_layer_media_type()
    }
}

impl fmt::Debug for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Blob")
            .field("digest", &self.digest)
            .field("compression", &self.compression)
            .field("size", &self.size())
            .finish()
    }
}

/// A layer that has been read: its uncompressed tar and what it changes.
#[derive(Debug)]
struct Read {
    tar: Contents,
    changes: Changeset,
}

/// Where a layer not read yet will be read from, and how.
#[derive(Debug)]
struct Pending {
    blob: Contents,
    expected_blob: Option<Digest>,
    options: ReadOptions,
    budget: Option<Arc<Budget>>,
    /// A stored layer's tar, verified when it was stored: read by offset, not hashed again.
    trusted_tar: Option<Contents>,
    /// Where a stored layer's tar goes once read and verified (the store's layer cache).
    keep: Option<PathBuf>,
}

/// What a store needs to read a layer of an image file into itself in one pass.
pub(crate) struct Unread<'a> {
    pub(crate) blob: &'a Contents,
    pub(crate) expected_blob: Option<Digest>,
    pub(crate) options: &'a ReadOptions,
    pub(crate) budget: Option<&'a Budget>,
}

#[derive(Debug)]
struct Inner {
    diff_id: DiffId,
    read: OnceLock<Read>,
    /// For a layer of an image file: where to read it from, the first time it is needed.
    pending: Option<Pending>,
    /// One reader at a time.
    reading: Mutex<()>,
}

/// One layer: a changeset over the layers below it, backed by its uncompressed tar.
///
/// Immutable, `Send + Sync`, and cheap to clone (an `Arc` inside). Two layers are equal when
/// their DiffIds are.
///
/// A layer built in code or read from a tar in memory holds everything from the start. A
/// layer of an image file ([`Archive`](crate::archive::Archive)) is read the first time its
/// tar, its changeset or a tree built on it is asked for, once however many images share it:
/// its blob is hashed, decompressed (into a temporary file) and parsed in one pass, and
/// checked against the digests its manifest and config promise. Until then only
/// [`diff_id`](Self::diff_id) and [`blob`](Self::blob) are known, which is why the methods
/// that need the tar return a [`Result`].
///
/// # Example
///
/// ```
/// use layercake::{Layer, Tree};
///
/// let layer = Layer::builder()
///     .dir("app")
///     .file("app/main.py", "print('hi')\n")
///     .whiteout("tmp/cache")
///     .build()?;
/// assert_eq!(layer.changeset()?.entries().count(), 2);
/// assert_eq!(layer.changeset()?.whiteouts().count(), 1);
///
/// // The same bytes read back give the same layer.
/// let again = Layer::from_tar(layer.tar()?.clone())?;
/// assert_eq!(again.diff_id(), layer.diff_id());
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Clone)]
pub struct Layer {
    inner: Arc<Inner>,
    blob: Blob,
}

impl Layer {
    /// Starts building a layer in code.
    ///
    /// ```
    /// use layercake::{Layer, Tree};
    ///
    /// // A test fixture in three lines, no tar tool involved.
    /// let layer = Layer::builder().file("etc/motd", "hi\n").whiteout("etc/issue").build()?;
    /// assert_eq!(Tree::new().apply(&layer)?.read("etc/motd")?, "hi\n");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn builder() -> LayerBuilder {
        LayerBuilder::default()
    }

    /// A layer read at once from what [`codec::decode`] gave.
    pub(crate) fn decoded(decoded: Decoded, blob: Option<Contents>) -> Result<Layer> {
        let mut changes = decoded.changes;
        changes.validate()?;
        let blob = Blob {
            digest: decoded.blob_digest,
            compression: decoded.compression,
            contents: blob.unwrap_or_else(|| decoded.tar.clone()),
        };
        Ok(Layer::new(
            decoded.diff_id,
            blob,
            Read {
                tar: decoded.tar,
                changes,
            },
        ))
    }

    fn new(diff_id: DiffId, blob: Blob, read: Read) -> Layer {
        Layer {
            inner: Arc::new(Inner {
                diff_id,
                read: OnceLock::from(read),
                pending: None,
                reading: Mutex::new(()),
            }),
            blob,
        }
    }

    /// A layer of an image file, read the first time it is needed: `blob` must hash to
    /// `blob_digest` (when the manifest names one) and its tar to `diff_id`. Only the blob's
    /// first bytes are read now, to tell its compression.
    pub(crate) fn lazy(
        blob: Contents,
        blob_digest: Option<Digest>,
        diff_id: DiffId,
        options: &ReadOptions,
        budget: Option<Arc<Budget>>,
    ) -> Result<Layer> {
        let digest = blob_digest.unwrap_or(diff_id.digest());
        Layer::pending(
            diff_id,
            digest,
            |blob| Pending {
                blob,
                expected_blob: blob_digest,
                options: options.clone(),
                budget,
                trusted_tar: None,
                keep: None,
            },
            blob,
        )
    }

    /// A layer not read yet, from `blob` (whose first bytes tell its compression).
    fn pending(
        diff_id: DiffId,
        digest: Digest,
        pending: impl FnOnce(Contents) -> Pending,
        blob: Contents,
    ) -> Result<Layer> {
        let mut magic = [0u8; 4];
        let n = blob.read_at(0, &mut magic)?;
        Ok(Layer {
            inner: Arc::new(Inner {
                diff_id,
                read: OnceLock::new(),
                pending: Some(pending(blob.clone())),
                reading: Mutex::new(()),
            }),
            blob: Blob {
                digest,
                compression: Compression::detect(&magic[..n]),
                contents: blob,
            },
        })
    }

    /// A layer of a store on disk, read the first time it is needed: from `tar` (the store's
    /// cached tar, or a plain blob; verified when stored) by offset, else from `blob`, whose
    /// tar is then verified and kept at `keep`.
    pub(crate) fn stored(
        blob: Contents,
        blob_digest: Digest,
        diff_id: DiffId,
        tar: Option<Contents>,
        keep: PathBuf,
        options: &ReadOptions,
    ) -> Result<Layer> {
        Layer::pending(
            diff_id,
            blob_digest,
            |blob| Pending {
                blob,
                expected_blob: Some(blob_digest),
                options: options.clone(),
                budget: None,
                trusted_tar: tar,
                keep: Some(keep),
            },
            blob,
        )
    }

    /// The blob of a layer of an image file not read yet, and how it is to be read; `None`
    /// once it is read (or for a layer that is a store's).
    pub(crate) fn unread(&self) -> Option<Unread<'_>> {
        let pending = self.inner.pending.as_ref()?;
        if self.is_read() || pending.trusted_tar.is_some() || pending.keep.is_some() {
            return None;
        }
        Some(Unread {
            blob: &pending.blob,
            expected_blob: pending.expected_blob,
            options: &pending.options,
            budget: pending.budget.as_deref(),
        })
    }

    /// Reads an uncompressed layer tar, with default [`ReadOptions`]. The tar is read where
    /// it is: file contents are slices of the bytes in memory, or ranges of the file on disk.
    ///
    /// The DiffId is the SHA-256 of `tar` exactly as given, and [`Layer::tar`] gives those
    /// bytes back.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidTar`](crate::Error::InvalidTar) for a malformed tar, [`Error::InvalidPath`](crate::Error::InvalidPath) for a name with a
    /// `..` component or a NUL, [`Error::ParentNotDirectory`](crate::Error::ParentNotDirectory) and
    /// [`Error::RootDirectory`](crate::Error::RootDirectory) for entries that contradict each other,
    /// [`Error::LimitExceeded`](crate::Error::LimitExceeded) past one of the default [`Limits`] (size, entries, path and
    /// name lengths, depth, PAX records, trailing zero bytes), and [`Error::Io`](crate::Error::Io) if `tar` is
    /// on disk and cannot be read.
    ///
    /// ```
    /// use layercake::{Digest, Error, Layer};
    ///
    /// // A tar from anywhere: here one the builder wrote.
    /// let tar = Layer::builder().file("etc/motd", "hi\n").build()?.tar()?.to_bytes()?;
    /// let layer = Layer::from_tar(tar.clone())?;
    /// // The DiffId is the hash of exactly these bytes, whoever wrote them.
    /// assert_eq!(layer.diff_id().digest(), Digest::sha256(&tar));
    /// assert!(matches!(Layer::from_tar(&b"not a tar"[..]), Err(Error::InvalidTar { .. })));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn from_tar(tar: impl Into<Contents>) -> Result<Layer> {
        Layer::from_tar_with(tar, &ReadOptions::default())
    }

    /// Reads an uncompressed layer tar with explicit options.
    ///
    /// # Errors
    ///
    /// As [`Layer::from_tar`], with the limits of `options`, and
    /// [`Error::DuplicateEntry`](crate::Error::DuplicateEntry) for a path named twice under [`Duplicates::Reject`].
    ///
    /// ```
    /// use layercake::layer::{Duplicates, ReadOptions};
    /// use layercake::{Error, Layer};
    ///
    /// let a = Layer::builder().file("f", "1").build()?.tar()?.to_bytes()?;
    /// let b = Layer::builder().file("f", "2").build()?.tar()?.to_bytes()?;
    /// // Two tars glued together (the first one's end blocks removed) name `f` twice.
    /// let twice = [&a[..a.len() - 1024], &b[..]].concat();
    ///
    /// let last_wins = Layer::from_tar(twice.clone())?;
    /// assert_eq!(last_wins.changeset()?.entry("f")?.unwrap().contents().unwrap(), "2");
    /// let strict = ReadOptions::new().duplicates(Duplicates::Reject);
    /// assert!(matches!(Layer::from_tar_with(twice, &strict), Err(Error::DuplicateEntry { .. })));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn from_tar_with(tar: impl Into<Contents>, options: &ReadOptions) -> Result<Layer> {
        let tar = tar.into();
        Layer::decoded(codec::decode_tar(&tar, options)?, None)
    }

    /// Reads a layer blob: a plain, gzip or zstd tar, told apart by its magic bytes, whatever
    /// a media type claims. One pass over the blob hashes it, decompresses it (into a
    /// temporary file, see [`ReadOptions::temp_dir`]), hashes the tar and parses it; a plain
    /// blob is read where it is. The layer keeps the blob, so writing it again needs no
    /// recompression.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidBlob`](crate::Error::InvalidBlob) for a corrupt, truncated or garbage-trailed stream,
    /// [`Error::LimitExceeded`](crate::Error::LimitExceeded) past a [`Limits`] (blob size, layer size),
    /// [`Error::RatioExceeded`](crate::Error::RatioExceeded) past its decompression ratio,
    /// [`Error::Io`](crate::Error::Io) if the temporary file cannot be written, then as [`Layer::from_tar`].
    ///
    /// ```
    /// use layercake::{Compression, Error, Layer};
    ///
    /// let layer = Layer::builder().file("etc/motd", "hi\n").build()?;
    /// let gz = layer.compress(Compression::Gzip, 6)?;
    /// // A blob as a registry serves it: one pass gives both digests.
    /// let read = Layer::from_blob(gz.blob().contents().clone())?;
    /// assert_eq!((read.diff_id(), read.blob().digest()), (layer.diff_id(), gz.blob().digest()));
    /// let cut = gz.blob().contents().slice(..20);
    /// assert!(matches!(Layer::from_blob(cut), Err(Error::InvalidBlob { .. })));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn from_blob(blob: impl Into<Contents>) -> Result<Layer> {
        Layer::from_blob_with(blob, &ReadOptions::default())
    }

    /// Reads a layer blob with explicit options (see [`Layer::from_blob`]).
    ///
    /// # Errors
    ///
    /// As [`Layer::from_blob`], with the limits of `options`, and [`Error::DuplicateEntry`](crate::Error::DuplicateEntry)
    /// for a path named twice under [`Duplicates::Reject`].
    ///
    /// ```
    /// use layercake::layer::ReadOptions;
    /// use layercake::{Compression, Error, Layer, Limits};
    ///
    /// let zeros = Layer::builder().file("zeros", vec![0u8; 1 << 20]).build()?;
    /// let blob = zeros.compress(Compression::Zstd, 3)?.blob().contents().clone();
    /// assert!(blob.len() < 1024, "a tiny blob that unpacks to 1 MiB");
    /// let options = ReadOptions::new().limits(Limits::default().layer_bytes(64 << 10));
    /// let err = Layer::from_blob_with(blob, &options).unwrap_err();
    /// assert!(matches!(err, Error::LimitExceeded { limit: "uncompressed layer bytes", .. }));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn from_blob_with(blob: impl Into<Contents>, options: &ReadOptions) -> Result<Layer> {
        let blob = blob.into();
        let decoded = codec::decode(
            BlobInput::Contents(&blob),
            &Expected::default(),
            options,
            None,
        )?;
        Layer::decoded(decoded, Some(blob))
    }

    /// Reads a layer blob file on disk (plain, gzip or zstd): a plain tar is read in place,
    /// a compressed one decompressed once into a temporary file. Nothing is held in memory
    /// but the entries.
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) if the file cannot be opened, then as [`Layer::from_blob`].
    ///
    /// ```
    /// use layercake::{Compression, Layer};
    ///
    /// let gz = Layer::builder().file("etc/motd", "hi\n").build()?.compress(Compression::Gzip, 6)?;
    /// let path = std::env::temp_dir().join(format!("layercake-open-{}.tar.gz", std::process::id()));
    /// std::fs::write(&path, gz.blob().contents().to_bytes()?)?;
    /// let layer = Layer::open(&path)?;
    /// assert_eq!(layer.diff_id(), gz.diff_id());
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<Layer> {
        Layer::open_with(path, &ReadOptions::default())
    }

    /// Reads a layer blob file on disk with explicit options (see [`Layer::open`]).
    ///
    /// # Errors
    ///
    /// As [`Layer::open`], with the limits of `options`.
    ///
    /// ```
    /// use layercake::layer::ReadOptions;
    /// use layercake::{Error, Layer, Limits};
    ///
    /// let layer = Layer::builder().file("a", "").file("b", "").build()?;
    /// let path = std::env::temp_dir().join(format!("layercake-open-with-{}.tar", std::process::id()));
    /// std::fs::write(&path, layer.tar()?.to_bytes()?)?;
    /// let options = ReadOptions::new().limits(Limits::default().entries(1));
    /// assert!(matches!(Layer::open_with(&path, &options), Err(Error::LimitExceeded { .. })));
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_with(path: impl AsRef<Path>, options: &ReadOptions) -> Result<Layer> {
        let file = HostFile::open(path.as_ref())?;
        let len = file.len()?;
        Layer::from_blob_with(Contents::on_disk(file, 0, len), options)
    }

    /// Reads a layer blob (plain, gzip or zstd) from a stream, once: the tar is written to a
    /// temporary file as it is hashed and parsed, so memory stays small whatever its size.
    /// The layer's blob is then its plain tar (a compressed stream is not kept).
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) if reading fails, otherwise as [`Layer::from_blob`].
    ///
    /// ```
    /// use layercake::Layer;
    ///
    /// let layer = Layer::builder().file("a", "hi").build()?;
    /// // Any reader: a file, a socket, a decompressor of your own, or a byte slice.
    /// let read = Layer::read(&layer.tar()?.to_bytes()?[..])?;
    /// assert_eq!(read.diff_id(), layer.diff_id());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn read<R: io::Read + Send>(mut reader: R) -> Result<Layer> {
        let decoded = codec::decode(
            BlobInput::Reader(&mut reader),
            &Expected::default(),
            &ReadOptions::default(),
            None,
        )?;
        let tar = decoded.tar.clone();
        let mut layer = Layer::decoded(decoded, Some(tar))?;
        layer.blob.compression = Compression::None;
        layer.blob.digest = layer.diff_id().digest();
        Ok(layer)
    }

    /// A layer from a changeset made by trusted code (a builder, a diff): written as the
    /// canonical tar while it is hashed, in memory when every file is, else to a temporary
    /// file; file contents then point into that tar. Nothing is parsed back.
    fn from_changeset(mut changes: Changeset) -> Result<Layer> {
        changes.validate()?;
        codec::check_names(&changes, &Limits::default())?;
        let in_memory = changes
            .entries
            .values()
            .all(|e| e.contents().is_none_or(|c| c.as_bytes().is_some()));
        let mut out = if in_memory {
            ContentsWriter::memory()
        } else {
            ContentsWriter::temporary(&std::env::temp_dir(), "a layer written from a tree")?
        };
        let written = tar_write::write(&changes, &mut out, "a layer tar")?;
        let digest = out.digest();
        let tar = out.finish()?;
        for (path, offset) in written.data {
            if let Some(entry) = changes.entries.get_mut(&path) {
                let len = entry.contents().map_or(0, Contents::len);
                let moved = Entry::new(
                    EntryKind::File(tar.slice(offset..offset + len)),
                    entry.metadata.clone(),
                );
                *entry = Arc::new(moved);
            }
        }
        let diff_id = DiffId::from_digest(digest);
        let blob = Blob {
            digest,
            compression: Compression::None,
            contents: tar.clone(),
        };
        Ok(Layer::new(diff_id, blob, Read { tar, changes }))
    }

    /// What the layer holds once read: reads it the first time.
    fn read_once(&self) -> Result<&Read> {
        if let Some(read) = self.inner.read.get() {
            return Ok(read);
        }
        let _one_reader = self
            .inner
            .reading
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(read) = self.inner.read.get() {
            return Ok(read);
        }
        let pending = self
            .inner
            .pending
            .as_ref()
            .expect("a layer that is not read has a source");
        let (tar, mut changes) = match &pending.trusted_tar {
            Some(tar) => (tar.clone(), codec::read_trusted_tar(tar, &pending.options)?),
            None => {
                let expected = Expected {
                    blob: pending.expected_blob,
                    diff_id: Some(self.inner.diff_id),
                };
                let decoded = codec::decode(
                    BlobInput::Contents(&pending.blob),
                    &expected,
                    &pending.options,
                    pending.budget.as_deref(),
                )?;
                if let (Some(keep), Some(file)) = (&pending.keep, decoded.tar.host_file()) {
                    if decoded.compression != Compression::None {
                        crate::contents::persist(file, keep)?;
                    }
                }
                (decoded.tar, decoded.changes)
            }
        };
        changes.validate()?;
        Ok(self.inner.read.get_or_init(|| Read { tar, changes }))
    }

    /// Whether the layer has been read (its changeset is known without I/O).
    ///
    /// ```
    /// use layercake::Layer;
    ///
    /// assert!(Layer::builder().file("a", "").build()?.is_read());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn is_read(&self) -> bool {
        self.inner.read.get().is_some()
    }

    /// What this layer changes: its entries, whiteouts and opaque directories. Reads the
    /// layer the first time it is asked, if it comes from an image file.
    ///
    /// # Errors
    ///
    /// For a layer of an image file read now: [`Error::DigestMismatch`](crate::Error::DigestMismatch) if its blob or tar
    /// is not what the manifest and config say, and the errors of [`Layer::from_blob`].
    ///
    /// ```
    /// use layercake::Layer;
    ///
    /// let layer = Layer::builder().file("etc/motd", "hi").whiteout("etc/issue").build()?;
    /// let changes = layer.changeset()?;
    /// assert_eq!(changes.entry("etc/motd")?.unwrap().contents().unwrap(), "hi");
    /// assert_eq!(changes.whiteouts().count(), 1);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn changeset(&self) -> Result<&Changeset> {
        Ok(&self.read_once()?.changes)
    }

    /// The blob this layer was read from, or its plain tar if it was built or read as one.
    ///
    /// ```
    /// use layercake::{Compression, Layer};
    ///
    /// let layer = Layer::builder().file("a", "hi").build()?;
    /// assert_eq!(layer.blob().compression(), Compression::None);
    /// assert_eq!(layer.blob().contents(), layer.tar()?);
    /// let gz = layer.compress(Compression::Gzip, 6)?;
    /// assert_eq!(gz.blob().compression(), Compression::Gzip);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn blob(&self) -> &Blob {
        &self.blob
    }

    /// This layer with its blob compressed as asked (the same layer, the same DiffId). A
    /// layer whose blob already has this compression is returned as it is: nothing is
    /// recompressed unless the compression changes. The compressed blob is kept where the
    /// tar is: in memory for a tar in memory, else in a temporary file.
    ///
    /// # Errors
    ///
    /// The errors of reading the layer ([`Layer::changeset`]), and [`Error::Io`](crate::Error::Io) if the
    /// compressor or the temporary file fails.
    ///
    /// ```
    /// use layercake::{Compression, Layer};
    ///
    /// let layer = Layer::builder().file("a", "hi").build()?;
    /// let gz = layer.compress(Compression::Gzip, 6)?;
    /// assert_eq!(gz, layer, "the same layer: equal DiffIds");
    /// // Already gzip: kept as it is, even at another level, so its digest stays.
    /// assert_eq!(gz.compress(Compression::Gzip, 9)?.blob().digest(), gz.blob().digest());
    /// assert_eq!(gz.compress(Compression::None, 0)?.blob().contents(), layer.tar()?);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn compress(&self, compression: Compression, level: u32) -> Result<Layer> {
        if self.blob.compression == compression {
            return Ok(self.clone());
        }
        let tar = self.tar()?;
        let (contents, digest) = if compression == Compression::None {
            (tar.clone(), self.diff_id().digest())
        } else {
            let out = match tar.as_bytes() {
                Some(_) => ContentsWriter::memory(),
                None => ContentsWriter::temporary(
                    &std::env::temp_dir(),
                    format!("a {compression} blob of layer {}", self.diff_id()),
                )?,
            };
            let mut encoder = Encoder::new(compression, level, out)?;
            tar.copy_to(&mut encoder, "a compressor")?;
            let out = encoder.finish()?;
            let digest = out.digest();
            (out.finish()?, digest)
        };
        Ok(Layer {
            inner: self.inner.clone(),
            blob: Blob {
                digest,
                compression,
                contents,
            },
        })
    }

    /// The layer that turns `lower` into `upper`: every added or changed entry, with the
    /// directories above them, a whiteout for each deleted path, and hardlinks kept as
    /// hardlinks. This is commit, image-to-image diff and (from an empty tree) squash.
    ///
    /// The layer is written once as the canonical tar: in memory if every changed file is,
    /// else to a temporary file (file contents on disk are streamed, never held whole).
    ///
    /// # Errors
    ///
    /// As [`LayerBuilder::build`], for changes a layer tar cannot carry, which a
    /// [`Container`](crate::Container) can make: [`Error::InvalidPath`](crate::Error::InvalidPath) for a regular file
    /// named `.wh.*`, an AUFS meta name (`.wh..wh.*`) at the root, or a deleted `.wh.*`
    /// path, and [`Error::LimitExceeded`](crate::Error::LimitExceeded) past the default [`Limits`] (e.g. a name over 255
    /// bytes); [`Error::Io`](crate::Error::Io) if files on disk cannot be read.
    ///
    /// ```
    /// use layercake::layer::DiffOptions;
    /// use layercake::{Layer, Tree};
    ///
    /// let lower = Tree::new().apply(&Layer::builder().file("a", "1").file("b", "2").build()?)?;
    /// let upper = lower.apply(&Layer::builder().whiteout("a").file("c", "3").build()?)?;
    /// let layer = Layer::diff(&lower, &upper, &DiffOptions::new())?;
    /// assert_eq!(lower.apply(&layer)?, upper);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn diff(lower: &Tree, upper: &Tree, options: &DiffOptions) -> Result<Layer> {
        Layer::from_changeset(changes::diff(lower, upper, options)?)
    }

    /// One layer holding a whole tree: what squashing an image gives.
    ///
    /// # Errors
    ///
    /// As [`Layer::diff`].
    ///
    /// ```
    /// use layercake::{Image, Layer, Tree};
    ///
    /// let a = Layer::builder().file("a", "1").file("b", "1").build()?;
    /// let b = Layer::builder().whiteout("a").build()?;
    /// let image = Image::builder().layer(a).layer(b).build()?;
    /// let squashed = Layer::squash(&image.tree()?)?;
    /// assert_eq!(squashed.changeset()?.whiteouts().count(), 0);
    /// assert_eq!(Tree::new().apply(&squashed)?, image.tree()?);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn squash(tree: &Tree) -> Result<Layer> {
        Layer::diff(&Tree::new(), tree, &DiffOptions::default())
    }

    /// The DiffId: SHA-256 of the uncompressed tar. For a layer of an image file not read
    /// yet, the DiffId its config lists, checked when it is read.
    ///
    /// ```
    /// use layercake::{Compression, Digest, Layer};
    ///
    /// let layer = Layer::builder().file("a", "hi").build()?;
    /// assert_eq!(layer.diff_id().digest(), Digest::sha256(layer.tar()?.to_bytes()?));
    /// // What an image config lists: the same whatever the blob's compression.
    /// assert_eq!(layer.compress(Compression::Zstd, 3)?.diff_id(), layer.diff_id());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn diff_id(&self) -> DiffId {
        self.inner.diff_id
    }

    /// The uncompressed tar, exactly as read or as canonically written: in memory, or on
    /// disk (in the image file, or in the temporary file a compressed blob went to).
    ///
    /// # Errors
    ///
    /// As [`Layer::changeset`]: the layer is read first if it was not.
    ///
    /// ```
    /// use layercake::Layer;
    ///
    /// let canonical = Layer::builder().file("a", "x").build()?;
    /// // Another writer pads to a larger record: the same entries, other bytes.
    /// let mut padded = canonical.tar()?.to_bytes()?.to_vec();
    /// padded.resize(padded.len() + 8192, 0);
    /// let read = Layer::from_tar(padded.clone())?;
    /// assert_eq!(read.tar()?, &padded, "kept byte for byte");
    /// assert_ne!(read.diff_id(), canonical.diff_id());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn tar(&self) -> Result<&Contents> {
        Ok(&self.read_once()?.tar)
    }

    /// The size of the uncompressed tar in bytes: headers, padding and end blocks included.
    ///
    /// # Errors
    ///
    /// As [`Layer::tar`].
    ///
    /// ```
    /// use layercake::Layer;
    ///
    /// let layer = Layer::builder().file("a", vec![0u8; 100]).build()?;
    /// // One header block, one data block, two end blocks.
    /// assert_eq!(layer.size()?, 4 * 512);
    /// assert_eq!(layer.changeset()?.content_size(), 100);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn size(&self) -> Result<u64> {
        Ok(self.tar()?.len())
    }
}

impl PartialEq for Layer {
    fn eq(&self, other: &Layer) -> bool {
        self.inner.diff_id == other.inner.diff_id
    }
}

impl Eq for Layer {}

impl fmt::Debug for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Layer");
        s.field("diff_id", &self.inner.diff_id)
            .field("blob", &self.blob);
        match self.inner.read.get() {
            Some(read) => s
                .field("size", &read.tar.len())
                .field("entries", &read.changes.entries.len())
                .field("whiteouts", &read.changes.whiteouts.len())
                .field("opaques", &read.changes.opaques.len()),
            None => s.field("read", &false),
        }
        .finish()
    }
}
