//! [`Layer`]: one changeset of an image, its [`LayerBuilder`], and [`Layer::diff`], which
//! turns the difference between two trees into a layer (commit, squash, image diff).
//!
//! Every layer is backed by its uncompressed tar. A layer read from a tar keeps those exact
//! bytes (so its DiffId never changes); a layer built in code or from a diff is written as a
//! canonical tar first and then read back, so both kinds go through one reader and their file
//! contents are slices of the tar buffer, stored once.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::io::Read;
use std::sync::Arc;

use bytes::Bytes;

use crate::archive::{compression, layer_tar, Compression};
use crate::diff::{compare, ChangeKind};
use crate::digest::{DiffId, Digest};
use crate::entry::{Entry, EntryKind, Metadata};
use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::path::ImagePath;
use crate::tree::{NodeKind, Tree};

/// The changes of one layer in typed form: entries, whiteouts (R2) and opaque
/// directories (R3). The `.wh.` spelling exists only in the tar code.
#[derive(Debug, Clone, Default)]
pub(crate) struct Changes {
    pub(crate) entries: BTreeMap<ImagePath, Arc<Entry>>,
    pub(crate) whiteouts: BTreeSet<ImagePath>,
    pub(crate) opaques: BTreeSet<ImagePath>,
}

impl Changes {
    /// Checks the rules that one layer must satisfy on its own and drops the markers that
    /// R5 makes no-ops.
    ///
    /// - R10: the root entry, if any, is a directory.
    /// - An entry below a non-directory entry of the same layer is an error.
    /// - A whiteout or opaque marker below (or, for opaque, at) a non-directory entry of
    ///   the same layer does nothing: that entry already replaced everything below.
    pub(crate) fn validate(&mut self) -> Result<()> {
        if let Some(root) = self.entries.get(&ImagePath::ROOT) {
            if !root.is_dir() {
                return Err(Error::RootDirectory {
                    reason: "a layer entry makes the root a non-directory",
                });
            }
        }
        // Sorted by component, a path's descendants follow it directly.
        let mut leaf: Option<&ImagePath> = None;
        for (path, entry) in &self.entries {
            if let Some(parent) = leaf.filter(|l| path.starts_with(l)) {
                return Err(Error::ParentNotDirectory {
                    path: path.to_string(),
                    parent: parent.to_string(),
                });
            }
            if !entry.is_dir() {
                leaf = Some(path);
            }
        }
        let entries = &self.entries;
        let under_leaf = |p: &ImagePath| {
            p.ancestors()
                .any(|a| entries.get(&a).is_some_and(|e| !e.is_dir()))
        };
        self.whiteouts.retain(|w| !under_leaf(w));
        self.opaques
            .retain(|d| !under_leaf(d) && entries.get(d).is_none_or(|e| e.is_dir()));
        Ok(())
    }
}

/// The changes that turn `lower` into `upper` (see [`Layer::diff`]).
pub(crate) fn diff_changes(lower: &Tree, upper: &Tree, options: &DiffOptions) -> Changes {
    let comparison = compare(lower, upper);
    let mut changes = Changes::default();
    let mut nodes = BTreeMap::new();
    for (change, node) in comparison.changes {
        match (change.kind, node) {
            (ChangeKind::Deleted, _) => {
                changes.whiteouts.insert(change.path);
            }
            (_, Some(node)) => {
                nodes.insert(change.path, node);
            }
            (_, None) => unreachable!("added and changed paths carry their node"),
        }
    }
    if options.whiteouts == WhiteoutStyle::Opaque {
        for dir in comparison.recreated {
            changes.whiteouts.retain(|w| !w.starts_with(&dir));
            if let Some(node) = upper.lookup_path(&dir) {
                nodes.insert(dir.clone(), node.clone());
            }
            for (path, node) in upper.walk_under(dir.as_bytes()) {
                nodes.insert(path, node.clone());
            }
            changes.opaques.insert(dir);
        }
    }
    // The first path of a shared file carries it; later paths link to the first.
    let mut first_path: HashMap<*const Entry, ImagePath> = HashMap::new();
    // A file written here may also sit, unchanged, at a lower path (`hard_link` to a lower
    // file): link to that path instead of copying it (R7 resolves it against the lower
    // layers), so the two names stay one file. Finding that path takes a walk of the lower
    // tree, so it is done only when some written file has more owners than this diff and the
    // upper tree account for (each written path holds it once there and once in `nodes`).
    let mut written: HashMap<*const Entry, (usize, &Arc<Entry>)> = HashMap::new();
    for node in nodes.values() {
        if let NodeKind::Leaf(leaf) = &node.kind {
            written.entry(Arc::as_ptr(leaf)).or_insert((0, leaf)).0 += 1;
        }
    }
    let held_elsewhere: HashSet<*const Entry> = written
        .iter()
        .filter(|(_, (paths, leaf))| Arc::strong_count(leaf) > 2 * paths)
        .map(|(ptr, _)| *ptr)
        .collect();
    if !held_elsewhere.is_empty() {
        for (path, node) in lower.walk() {
            let Some(leaf) = node.as_leaf() else { continue };
            let ptr = Arc::as_ptr(leaf);
            let unchanged = || upper.lookup_path(&path).is_some_and(|u| u.same_file(node));
            if held_elsewhere.contains(&ptr) && !nodes.contains_key(&path) && unchanged() {
                first_path.entry(ptr).or_insert(path);
            }
        }
    }
    drop(written);
    for (path, node) in nodes {
        let entry = match &node.kind {
            NodeKind::Leaf(leaf) => match first_path.get(&Arc::as_ptr(leaf)) {
                Some(first) => Arc::new(Entry::new(
                    EntryKind::Hardlink(first.clone()),
                    leaf.metadata.clone(),
                )),
                None => {
                    first_path.insert(Arc::as_ptr(leaf), path.clone());
                    leaf.clone()
                }
            },
            NodeKind::Dir(_) => Arc::new(node.to_entry()),
        };
        changes.entries.insert(path, entry);
    }
    changes
}

/// What to do when one layer tar holds the same path twice (R4).
///
/// ```
/// use layercake::layer::{Duplicates, ReadOptions};
/// use layercake::{Error, Layer};
///
/// let a = Layer::builder().file("f", "1").build()?;
/// let b = Layer::builder().file("f", "2").build()?;
/// // One tar naming `f` twice: `a`'s records without its end blocks, then all of `b`.
/// let tar = [&a.tar()[..a.tar().len() - 1024], &b.tar()[..]].concat();
/// assert_eq!(Duplicates::default(), Duplicates::LastWins);
/// assert_eq!(Layer::from_tar(tar.clone())?.entry("f").unwrap().contents().unwrap(), "2");
/// let strict = ReadOptions::new().duplicates(Duplicates::Reject);
/// assert!(matches!(Layer::from_tar_with(tar, &strict), Err(Error::DuplicateEntry { .. })));
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Duplicates {
    /// The later entry wins, as Docker applies a tar.
    #[default]
    LastWins,
    /// Refuse the layer with [`Error::DuplicateEntry`].
    Reject,
}

/// Options for reading a layer tar.
///
/// ```
/// use layercake::layer::{Duplicates, ReadOptions};
/// let strict = ReadOptions::new().duplicates(Duplicates::Reject);
/// # let _ = strict;
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReadOptions {
    pub(crate) duplicates: Duplicates,
    pub(crate) limits: Limits,
}

impl Default for ReadOptions {
    fn default() -> ReadOptions {
        ReadOptions {
            duplicates: Duplicates::LastWins,
            limits: Limits::default(),
        }
    }
}

impl ReadOptions {
    /// The defaults: duplicates resolve as last-wins; the default [`Limits`].
    ///
    /// ```
    /// use layercake::layer::ReadOptions;
    /// use layercake::{Layer, Limits};
    ///
    /// let layer = Layer::builder().file("etc/motd", "hi").build()?;
    /// // The options `Layer::from_tar` reads with.
    /// let read = Layer::from_tar_with(layer.tar().clone(), &ReadOptions::new())?;
    /// assert_eq!(read, Layer::from_tar(layer.tar().clone())?);
    /// assert_eq!(ReadOptions::new().limits_in_force(), &Limits::default());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn new() -> ReadOptions {
        ReadOptions::default()
    }

    /// Sets the limits on what a read accepts.
    ///
    /// ```
    /// use layercake::layer::ReadOptions;
    /// use layercake::{Error, Layer, Limits};
    ///
    /// let layer = Layer::builder().file("a", "").file("b", "").file("c", "").build()?;
    /// // Tighter than the defaults, e.g. for uploads from unknown users.
    /// let options = ReadOptions::new().limits(Limits::default().entries(2));
    /// let err = Layer::from_tar_with(layer.tar().clone(), &options).unwrap_err();
    /// assert!(matches!(
    ///     err,
    ///     Error::LimitExceeded { limit: "entries in one layer", value: 3, max: 2 }
    /// ));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn limits(mut self, limits: Limits) -> ReadOptions {
        self.limits = limits;
        self
    }

    /// The limits in force.
    ///
    /// ```
    /// use layercake::layer::ReadOptions;
    /// use layercake::Limits;
    ///
    /// let options = ReadOptions::new().limits(Limits::default().layer_bytes(1 << 20));
    /// // e.g. to refuse an upload by its declared size before reading a byte of it
    /// let declared_size: u64 = 5 << 20;
    /// assert!(declared_size > options.limits_in_force().layer_bytes);
    /// assert_eq!(options.limits_in_force().entries, Limits::default().entries);
    /// ```
    pub fn limits_in_force(&self) -> &Limits {
        &self.limits
    }

    /// Sets the duplicate-path policy.
    ///
    /// ```
    /// use layercake::layer::{Duplicates, ReadOptions};
    /// use layercake::Layer;
    ///
    /// let one = Layer::builder().file("etc/passwd", "root:x:0:0::/root:/bin/sh\n").build()?;
    /// // A smuggling attempt: a second `etc/passwd` that only last-wins readers apply.
    /// let mut tar = one.tar()[..one.tar().len() - 1024].to_vec();
    /// tar.extend_from_slice(Layer::builder().file("etc/passwd", "evil").build()?.tar());
    /// let strict = ReadOptions::new().duplicates(Duplicates::Reject);
    /// let err = Layer::from_tar_with(tar, &strict).unwrap_err();
    /// assert_eq!(err.to_string(), "duplicate entry `etc/passwd` in one layer");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn duplicates(mut self, duplicates: Duplicates) -> ReadOptions {
        self.duplicates = duplicates;
        self
    }
}

/// How a diff records a directory that was emptied and filled again.
///
/// ```
/// use layercake::layer::{DiffOptions, WhiteoutStyle};
/// use layercake::{Container, Image, Layer};
///
/// let files = Layer::builder().file("www/a", "").file("www/b", "").build()?;
/// let base = Image::builder().layer(files).build()?;
/// let mut c = Container::new(&base);
/// c.remove_dir_all("www")?;
/// c.create_dir("www")?;
/// c.write("www/index.html", "")?;
/// let diff = |style| Layer::diff(&base.tree()?, c.tree(), &DiffOptions::new().whiteouts(style));
/// assert_eq!(diff(WhiteoutStyle::Explicit)?.whiteouts().count(), 2);
/// let opaque = diff(WhiteoutStyle::Opaque)?;
/// assert_eq!(opaque.opaque_dirs().map(|d| d.to_string()).collect::<Vec<_>>(), ["www"]);
/// assert_eq!(opaque.whiteouts().count(), 0);
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum WhiteoutStyle {
    /// One whiteout per vanished child, as `docker commit` and `umoci repack` write.
    #[default]
    Explicit,
    /// An opaque marker (`.wh..wh..opq`) and the directory's whole new contents, for a
    /// directory other than the root that kept none of its lower children as they were and
    /// lost at least one.
    Opaque,
}

/// Options for [`Layer::diff`]. A commit takes the same choice through
/// [`CommitOptions::whiteouts`](crate::CommitOptions::whiteouts).
///
/// ```
/// use layercake::layer::{DiffOptions, WhiteoutStyle};
/// use layercake::{Layer, Tree};
///
/// let v1 = Tree::new().apply(&Layer::builder().file("app/v", "1").file("app/old", "").build()?)?;
/// let v2 = Tree::new().apply(&Layer::builder().file("app/v", "2").build()?)?;
/// // An update to ship on top of v1: one layer, whichever way it records `app`.
/// for style in [WhiteoutStyle::Explicit, WhiteoutStyle::Opaque] {
///     let update = Layer::diff(&v1, &v2, &DiffOptions::new().whiteouts(style))?;
///     assert_eq!(v1.apply(&update)?, v2);
/// }
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct DiffOptions {
    pub(crate) whiteouts: WhiteoutStyle,
}

impl DiffOptions {
    /// The defaults: explicit whiteouts.
    ///
    /// ```
    /// use layercake::layer::DiffOptions;
    /// use layercake::{Layer, Tree};
    ///
    /// let lower = Tree::new().apply(&Layer::builder().file("etc/a", "").build()?)?;
    /// let upper = lower.apply(&Layer::builder().whiteout("etc/a").build()?)?;
    /// let layer = Layer::diff(&lower, &upper, &DiffOptions::new())?;
    /// assert_eq!(layer.whiteouts().map(|w| w.to_string()).collect::<Vec<_>>(), ["etc/a"]);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn new() -> DiffOptions {
        DiffOptions::default()
    }

    /// Sets how recreated directories are recorded.
    ///
    /// ```
    /// use layercake::layer::{DiffOptions, WhiteoutStyle};
    /// use layercake::{Layer, Tree};
    ///
    /// let lower = Tree::new().apply(&Layer::builder().file("d/a", "").file("d/b", "").build()?)?;
    /// let upper = lower.apply(&Layer::builder().opaque("d").file("d/c", "").build()?)?;
    /// // One marker instead of a whiteout per old child: smaller when `d` held many.
    /// let options = DiffOptions::new().whiteouts(WhiteoutStyle::Opaque);
    /// let layer = Layer::diff(&lower, &upper, &options)?;
    /// assert_eq!((layer.opaque_dirs().count(), layer.whiteouts().count()), (1, 0));
    /// assert_eq!(lower.apply(&layer)?, upper);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn whiteouts(mut self, style: WhiteoutStyle) -> DiffOptions {
        self.whiteouts = style;
        self
    }
}

struct LayerInner {
    diff_id: DiffId,
    tar: Bytes,
    changes: Changes,
}

/// A layer as it is stored or sent: the blob bytes (a plain, gzip or zstd tar), their
/// digest and their compression. The blob digest is not the DiffId unless the blob is plain.
///
/// ```
/// use layercake::archive::Compression;
/// use layercake::Layer;
///
/// let layer = Layer::builder().file("a", "hello").build()?;
/// assert_eq!(layer.blob().compression(), Compression::None);
/// assert_eq!(layer.blob().digest(), layer.diff_id().digest());
///
/// let gz = layer.compress(Compression::Gzip, 6)?;
/// assert_ne!(gz.blob().digest(), gz.diff_id().digest());
/// let back = Layer::from_blob(gz.blob().bytes().clone())?;
/// assert_eq!(back.diff_id(), layer.diff_id());
/// assert_eq!(back.blob().digest(), gz.blob().digest());
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Blob {
    digest: Digest,
    compression: Compression,
    bytes: Bytes,
}

impl Blob {
    /// The digest of the blob bytes (what a manifest's layer descriptor names).
    ///
    /// ```
    /// use layercake::archive::Compression;
    /// use layercake::{Digest, Layer};
    ///
    /// let gz = Layer::builder().file("a", "hi").build()?.compress(Compression::Gzip, 6)?;
    /// // The manifest names the compressed bytes; the config's `diff_ids` the tar.
    /// assert_eq!(gz.blob().digest(), Digest::sha256(gz.blob().bytes()));
    /// assert_ne!(gz.blob().digest(), gz.diff_id().digest());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// The compression, detected from the bytes.
    ///
    /// ```
    /// use layercake::archive::Compression;
    /// use layercake::Layer;
    ///
    /// let zst = Layer::builder().file("a", "hi").build()?.compress(Compression::Zstd, 3)?;
    /// // Whatever media type the blob came with, its magic bytes decide.
    /// let read = Layer::from_blob(zst.blob().bytes().clone())?;
    /// assert_eq!(read.blob().compression(), Compression::Zstd);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// The blob bytes.
    ///
    /// ```
    /// use layercake::archive::Compression;
    /// use layercake::Layer;
    ///
    /// let gz = Layer::builder().file("a", "hi").build()?.compress(Compression::Gzip, 6)?;
    /// // Pushing or saving the layer again sends these bytes as they are: no recompression.
    /// let read = Layer::from_blob(gz.blob().bytes().clone())?;
    /// assert_eq!(read.blob().bytes(), gz.blob().bytes());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The blob size in bytes (the `size` of a layer descriptor).
    ///
    /// ```
    /// use layercake::archive::Compression;
    /// use layercake::Layer;
    ///
    /// let layer = Layer::builder().file("log", "line\n".repeat(1000)).build()?;
    /// let gz = layer.compress(Compression::Gzip, 6)?;
    /// // What a pull transfers, against what it unpacks.
    /// assert!(gz.blob().size() * 10 < layer.size());
    /// assert_eq!(layer.blob().size(), layer.size(), "a plain blob is the tar");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// The OCI media type for this blob.
    ///
    /// ```
    /// use layercake::archive::oci::Descriptor;
    /// use layercake::archive::Compression;
    /// use layercake::Layer;
    ///
    /// let gz = Layer::builder().file("a", "hi").build()?.compress(Compression::Gzip, 6)?;
    /// assert_eq!(gz.blob().media_type(), "application/vnd.oci.image.layer.v1.tar+gzip");
    /// // Everything a manifest's layer descriptor needs.
    /// let descriptor = Descriptor::of(gz.blob().media_type(), gz.blob().bytes());
    /// assert_eq!((descriptor.digest, descriptor.size), (gz.blob().digest(), gz.blob().size()));
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
            .field("size", &self.bytes.len())
            .finish()
    }
}

/// One layer: a changeset over the layers below it, backed by its uncompressed tar.
///
/// Immutable, `Send + Sync`, and cheap to clone (an `Arc` inside). Two layers are equal when
/// their DiffIds are.
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
/// assert_eq!(layer.entries().count(), 2);
/// assert_eq!(layer.whiteouts().count(), 1);
///
/// // The same bytes read back give the same layer.
/// let again = Layer::from_tar(layer.tar().clone())?;
/// assert_eq!(again.diff_id(), layer.diff_id());
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Clone)]
pub struct Layer {
    inner: Arc<LayerInner>,
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

    /// Reads an uncompressed layer tar held in memory, with default [`ReadOptions`].
    ///
    /// File contents are slices of `tar`: nothing is copied. The DiffId is the SHA-256 of
    /// `tar` exactly as given, and [`Layer::tar`] gives those bytes back.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidTar`] for a malformed tar, [`Error::InvalidPath`] for a name with a
    /// `..` component or a NUL, [`Error::ParentNotDirectory`] and
    /// [`Error::RootDirectory`] for entries that contradict each other, and
    /// [`Error::LimitExceeded`] past one of the default [`Limits`] (size, entries, path and
    /// name lengths, depth, PAX records, trailing zero bytes).
    ///
    /// ```
    /// use layercake::{Digest, Error, Layer};
    ///
    /// // A tar from anywhere: here one the builder wrote.
    /// let tar = Layer::builder().file("etc/motd", "hi\n").build()?.tar().clone();
    /// let layer = Layer::from_tar(tar.clone())?;
    /// // The DiffId is the hash of exactly these bytes, whoever wrote them.
    /// assert_eq!(layer.diff_id().digest(), Digest::sha256(&tar));
    /// assert!(matches!(Layer::from_tar(&b"not a tar"[..]), Err(Error::InvalidTar { .. })));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn from_tar(tar: impl Into<Bytes>) -> Result<Layer> {
        Layer::from_tar_with(tar, &ReadOptions::default())
    }

    /// Reads an uncompressed layer tar with explicit options.
    ///
    /// # Errors
    ///
    /// As [`Layer::from_tar`], with the limits of `options`, and
    /// [`Error::DuplicateEntry`] for a path named twice under [`Duplicates::Reject`].
    ///
    /// ```
    /// use layercake::layer::{Duplicates, ReadOptions};
    /// use layercake::{Error, Layer};
    ///
    /// let a = Layer::builder().file("f", "1").build()?;
    /// let b = Layer::builder().file("f", "2").build()?;
    /// // Two tars glued together (the first one's end blocks removed) name `f` twice.
    /// let mut twice = a.tar()[..a.tar().len() - 1024].to_vec();
    /// twice.extend_from_slice(b.tar());
    ///
    /// let last_wins = Layer::from_tar(twice.clone())?;
    /// assert_eq!(last_wins.entry("f").unwrap().contents().unwrap(), "2");
    /// let strict = ReadOptions::new().duplicates(Duplicates::Reject);
    /// assert!(matches!(Layer::from_tar_with(twice, &strict), Err(Error::DuplicateEntry { .. })));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn from_tar_with(tar: impl Into<Bytes>, options: &ReadOptions) -> Result<Layer> {
        let tar = tar.into();
        Limits::check(
            "uncompressed layer bytes",
            tar.len() as u64,
            options.limits.layer_bytes,
        )?;
        let digest = Digest::sha256(&tar);
        let blob = Blob {
            digest,
            compression: Compression::None,
            bytes: tar.clone(),
        };
        Layer::from_parts(tar, digest, blob, options)
    }

    /// Reads a layer blob: a plain, gzip or zstd tar, told apart by its magic bytes, whatever
    /// a media type claims. One pass over the blob hashes it, decompresses it and hashes the
    /// tar; the layer keeps the blob, so writing it again needs no recompression.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidBlob`] for a corrupt, truncated or garbage-trailed stream,
    /// [`Error::LimitExceeded`] past a [`Limits`] (blob size, layer size, ratio),
    /// [`Error::Io`] if the zstd decoder cannot start, then as [`Layer::from_tar`].
    ///
    /// ```
    /// use layercake::archive::Compression;
    /// use layercake::{Error, Layer};
    ///
    /// let layer = Layer::builder().file("etc/motd", "hi\n").build()?;
    /// let gz = layer.compress(Compression::Gzip, 6)?;
    /// // A blob as a registry serves it: one pass gives both digests.
    /// let read = Layer::from_blob(gz.blob().bytes().clone())?;
    /// assert_eq!((read.diff_id(), read.blob().digest()), (layer.diff_id(), gz.blob().digest()));
    /// let cut = gz.blob().bytes().slice(..20);
    /// assert!(matches!(Layer::from_blob(cut), Err(Error::InvalidBlob { .. })));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn from_blob(blob: impl Into<Bytes>) -> Result<Layer> {
        Layer::from_blob_with(blob, &ReadOptions::default())
    }

    /// Reads a layer blob with explicit options (see [`Layer::from_blob`]).
    ///
    /// # Errors
    ///
    /// As [`Layer::from_blob`], with the limits of `options`, and [`Error::DuplicateEntry`]
    /// for a path named twice under [`Duplicates::Reject`].
    ///
    /// ```
    /// use layercake::archive::Compression;
    /// use layercake::layer::ReadOptions;
    /// use layercake::{Error, Layer, Limits};
    ///
    /// let zeros = Layer::builder().file("zeros", vec![0u8; 1 << 20]).build()?;
    /// let blob = zeros.compress(Compression::Zstd, 3)?.blob().bytes().clone();
    /// assert!(blob.len() < 1024, "a tiny blob that unpacks to 1 MiB");
    /// let options = ReadOptions::new().limits(Limits::default().layer_bytes(64 << 10));
    /// let err = Layer::from_blob_with(blob, &options).unwrap_err();
    /// assert!(matches!(err, Error::LimitExceeded { limit: "uncompressed layer bytes", .. }));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn from_blob_with(blob: impl Into<Bytes>, options: &ReadOptions) -> Result<Layer> {
        let bytes = blob.into();
        let unpacked = compression::unpack(&bytes, &options.limits)?;
        let blob = Blob {
            digest: unpacked.blob_digest,
            compression: unpacked.compression,
            bytes,
        };
        Layer::from_parts(unpacked.tar, unpacked.tar_digest, blob, options)
    }

    fn from_parts(
        tar: Bytes,
        tar_digest: Digest,
        blob: Blob,
        options: &ReadOptions,
    ) -> Result<Layer> {
        let mut changes = layer_tar::read(&tar, options)?;
        changes.validate()?;
        Ok(Layer {
            inner: Arc::new(LayerInner {
                diff_id: DiffId::from_digest(tar_digest),
                tar,
                changes,
            }),
            blob,
        })
    }

    /// The blob this layer was read from, or its plain tar if it was built or read as one.
    ///
    /// ```
    /// use layercake::archive::Compression;
    /// use layercake::Layer;
    ///
    /// let layer = Layer::builder().file("a", "hi").build()?;
    /// assert_eq!(layer.blob().compression(), Compression::None);
    /// assert_eq!(layer.blob().bytes(), layer.tar());
    /// let gz = layer.compress(Compression::Gzip, 6)?;
    /// assert_eq!(gz.blob().compression(), Compression::Gzip);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn blob(&self) -> &Blob {
        &self.blob
    }

    /// This layer with its blob compressed as asked (the same layer, the same DiffId). A
    /// layer whose blob already has this compression is returned as it is: nothing is
    /// recompressed unless the compression changes.
    ///
    /// # Errors
    ///
    /// As [`Compression::compress`].
    ///
    /// ```
    /// use layercake::archive::Compression;
    /// use layercake::Layer;
    ///
    /// let layer = Layer::builder().file("a", "hi").build()?;
    /// let gz = layer.compress(Compression::Gzip, 6)?;
    /// assert_eq!(gz, layer, "the same layer: equal DiffIds");
    /// // Already gzip: kept as it is, even at another level, so its digest stays.
    /// assert_eq!(gz.compress(Compression::Gzip, 9)?.blob().digest(), gz.blob().digest());
    /// assert_eq!(gz.compress(Compression::None, 0)?.blob().bytes(), layer.tar());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn compress(&self, compression: Compression, level: u32) -> Result<Layer> {
        if self.blob.compression == compression {
            return Ok(self.clone());
        }
        let bytes = match compression {
            Compression::None => self.inner.tar.clone(),
            _ => compression.compress(&self.inner.tar, level)?,
        };
        Ok(Layer {
            inner: self.inner.clone(),
            blob: Blob {
                digest: Digest::sha256(&bytes),
                compression,
                bytes,
            },
        })
    }

    /// Reads an uncompressed layer tar from a reader (into memory, then as
    /// [`Layer::from_tar`]).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if reading fails, otherwise as [`Layer::from_tar`].
    ///
    /// ```
    /// use layercake::Layer;
    ///
    /// let layer = Layer::builder().file("a", "hi").build()?;
    /// // Any reader: a file, a socket, a decompressor of your own, or a byte slice.
    /// let read = Layer::read(&layer.tar()[..])?;
    /// assert_eq!(read.diff_id(), layer.diff_id());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn read<R: Read>(mut reader: R) -> Result<Layer> {
        let mut buf = Vec::new();
        reader
            .read_to_end(&mut buf)
            .map_err(|e| Error::io("reading a layer tar", e))?;
        Layer::from_tar(buf)
    }

    /// The layer that turns `lower` into `upper`: every added or changed entry, with the
    /// directories above them, a whiteout for each deleted path, and hardlinks kept as
    /// hardlinks. This is commit, image-to-image diff and (from an empty tree) squash.
    ///
    /// # Errors
    ///
    /// As [`LayerBuilder::build`], for changes a layer tar cannot carry, which a
    /// [`Container`](crate::Container) can make: [`Error::InvalidPath`] for a regular file
    /// named `.wh.*`, an AUFS meta name (`.wh..wh.*`) at the root, or a deleted `.wh.*`
    /// path, and [`Error::LimitExceeded`] past the default [`Limits`] (e.g. a name over 255
    /// bytes).
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
        LayerBuilder {
            changes: diff_changes(lower, upper, options),
            error: None,
        }
        .build()
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
    /// assert_eq!(squashed.whiteouts().count(), 0);
    /// assert_eq!(Tree::new().apply(&squashed)?, image.tree()?);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn squash(tree: &Tree) -> Result<Layer> {
        Layer::diff(&Tree::new(), tree, &DiffOptions::default())
    }

    /// The DiffId: SHA-256 of the uncompressed tar.
    ///
    /// ```
    /// use layercake::archive::Compression;
    /// use layercake::{Digest, Layer};
    ///
    /// let layer = Layer::builder().file("a", "hi").build()?;
    /// assert_eq!(layer.diff_id().digest(), Digest::sha256(layer.tar()));
    /// // What an image config lists: the same whatever the blob's compression.
    /// assert_eq!(layer.compress(Compression::Zstd, 3)?.diff_id(), layer.diff_id());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn diff_id(&self) -> DiffId {
        self.inner.diff_id
    }

    /// The uncompressed tar bytes, exactly as read or as canonically written.
    ///
    /// ```
    /// use layercake::Layer;
    ///
    /// let canonical = Layer::builder().file("a", "x").build()?;
    /// // Another writer pads to a larger record: the same entries, other bytes.
    /// let mut padded = canonical.tar().to_vec();
    /// padded.resize(padded.len() + 8192, 0);
    /// let read = Layer::from_tar(padded.clone())?;
    /// assert_eq!(read.tar(), &padded, "kept byte for byte");
    /// assert_ne!(read.diff_id(), canonical.diff_id());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn tar(&self) -> &Bytes {
        &self.inner.tar
    }

    /// The size of the uncompressed tar in bytes: headers, padding and end blocks included.
    ///
    /// ```
    /// use layercake::Layer;
    ///
    /// let layer = Layer::builder().file("a", vec![0u8; 100]).build()?;
    /// // One header block, one data block, two end blocks.
    /// assert_eq!(layer.size(), 4 * 512);
    /// assert_eq!(layer.content_size(), 100);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn size(&self) -> u64 {
        self.inner.tar.len() as u64
    }

    /// The sum of the sizes of the regular files this layer adds (what Docker reports as a
    /// layer's size).
    ///
    /// ```
    /// use layercake::Layer;
    ///
    /// let layer = Layer::builder()
    ///     .file("app/main.py", "print('hi')\n")
    ///     .symlink("app/run", "main.py")
    ///     .whiteout("tmp/cache")
    ///     .build()?;
    /// // What `docker history` shows for the layer: 12 bytes of file data.
    /// assert_eq!(layer.content_size(), 12);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn content_size(&self) -> u64 {
        self.entries()
            .filter_map(|(_, e)| e.contents())
            .map(|c| c.len() as u64)
            .sum()
    }

    /// The entries added or replaced, in path order (hardlinks as [`EntryKind::Hardlink`]).
    /// Whiteouts and opaque markers are not entries.
    ///
    /// ```
    /// use layercake::Layer;
    ///
    /// let layer = Layer::builder()
    ///     .file("bin/busybox", "ELF")
    ///     .hardlink("bin/sh", "bin/busybox")
    ///     .whiteout("bin/bash")
    ///     .build()?;
    /// let listing: Vec<String> = layer
    ///     .entries()
    ///     .map(|(path, e)| format!("{} {path}", e.file_type().as_char()))
    ///     .collect();
    /// assert_eq!(listing, ["- bin/busybox", "h bin/sh"]);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn entries(&self) -> impl Iterator<Item = (&ImagePath, &Entry)> + '_ {
        self.inner.changes.entries.iter().map(|(p, e)| (p, &**e))
    }

    /// The entry at exactly `path`, if this layer has one. `None` for an invalid path.
    ///
    /// ```
    /// use layercake::Layer;
    ///
    /// let layer = Layer::builder().file("etc/motd", "hi").build()?;
    /// assert_eq!(layer.entry("/etc/motd").unwrap().contents().unwrap(), "hi");
    /// // Did this layer write `etc` itself? No: readers imply it (R6).
    /// assert!(layer.entry("etc").is_none());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn entry(&self, path: impl AsRef<[u8]>) -> Option<&Entry> {
        let path = ImagePath::new(path).ok()?;
        self.inner.changes.entries.get(&path).map(|e| &**e)
    }

    /// The paths this layer deletes from the layers below (R2).
    ///
    /// ```
    /// use layercake::Layer;
    ///
    /// let layer = Layer::builder().whiteout("etc/motd").build()?;
    /// // Typed paths, not the `.wh.` names the tar spells them with.
    /// assert!(layer.tar().windows(12).any(|w| w == b"etc/.wh.motd"));
    /// let deleted: Vec<String> = layer.whiteouts().map(|p| p.to_string()).collect();
    /// assert_eq!(deleted, ["etc/motd"]);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn whiteouts(&self) -> impl Iterator<Item = &ImagePath> + '_ {
        self.inner.changes.whiteouts.iter()
    }

    /// The directories whose lower contents this layer hides (R3).
    ///
    /// ```
    /// use layercake::Layer;
    ///
    /// let layer = Layer::builder().opaque("var/cache").file("var/cache/new", "").build()?;
    /// // The directory, not the `.wh..wh..opq` marker file inside it.
    /// assert!(layer.tar().windows(22).any(|w| w == b"var/cache/.wh..wh..opq"));
    /// let opaque: Vec<String> = layer.opaque_dirs().map(|p| p.to_string()).collect();
    /// assert_eq!(opaque, ["var/cache"]);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn opaque_dirs(&self) -> impl Iterator<Item = &ImagePath> + '_ {
        self.inner.changes.opaques.iter()
    }

    pub(crate) fn changes(&self) -> &Changes {
        &self.inner.changes
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
        f.debug_struct("Layer")
            .field("diff_id", &self.inner.diff_id)
            .field("size", &self.inner.tar.len())
            .field("entries", &self.inner.changes.entries.len())
            .field("whiteouts", &self.inner.changes.whiteouts.len())
            .field("opaques", &self.inner.changes.opaques.len())
            .finish()
    }
}

/// Builds a [`Layer`] in code; errors are kept and reported by [`LayerBuilder::build`].
///
/// Paths are normalised as [`ImagePath::new`] does. A path given twice keeps the last entry.
///
/// Parent directories you do not add are not written: readers imply them (R6), and a
/// written one would replace the metadata of the directory below (a `tmp` of 1777 would
/// become 0755). umoci and GNU tar create implied parents 0755, but Docker 20.10 creates
/// them 0600, so give a *base* layer meant for Docker its directories with [`dir`](Self::dir)
/// or [`entry`](Self::entry).
/// The layer is written as a canonical tar (see [`crate::archive`] for its exact form), so
/// the same calls always give the same DiffId.
///
/// ```
/// use layercake::{Entry, Layer};
///
/// let layer = Layer::builder()
///     .file("etc/hostname", "box\n")
///     .entry("usr/bin/tool", Entry::file("ELF").mode(0o755).owner(0, 0).mtime(1_700_000_000))
///     .symlink("bin", "usr/bin")
///     .hardlink("usr/bin/tool2", "usr/bin/tool")
///     .char_device("dev/null", 1, 3)
///     .fifo("run/pipe")
///     .opaque("var/cache")
///     .whiteout("etc/motd")
///     .build()?;
/// assert_eq!(layer.opaque_dirs().next().unwrap().to_string(), "var/cache");
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct LayerBuilder {
    changes: Changes,
    error: Option<Error>,
}

impl LayerBuilder {
    fn path(&mut self, path: impl AsRef<[u8]>) -> Option<ImagePath> {
        match ImagePath::new(path) {
            Ok(p) => Some(p),
            Err(e) => {
                self.error.get_or_insert(e);
                None
            }
        }
    }

    /// Adds (or replaces) an entry with explicit kind and metadata.
    ///
    /// ```
    /// use layercake::{Entry, Layer, Tree};
    ///
    /// // `/tmp` needs its sticky bit: the 0755 of `dir` would not do.
    /// let layer = Layer::builder().entry("tmp", Entry::dir().mode(0o1777)).build()?;
    /// let tree = Tree::new().apply(&layer)?;
    /// assert_eq!(tree.lookup("tmp").unwrap().mode_string(), "drwxrwxrwt");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn entry(mut self, path: impl AsRef<[u8]>, entry: Entry) -> LayerBuilder {
        if let Some(p) = self.path(path) {
            self.changes.entries.insert(p, Arc::new(entry));
        }
        self
    }

    /// Adds a regular file (0644, root, mtime 0).
    ///
    /// ```
    /// use layercake::Layer;
    ///
    /// let a = Layer::builder().file("etc/motd", "hi\n").build()?;
    /// let m = a.entry("etc/motd").unwrap().metadata();
    /// assert_eq!((m.mode, m.uid, m.gid, m.mtime), (0o644, 0, 0, 0));
    /// // No clock and no user involved: the same calls give the same layer anywhere.
    /// assert_eq!(Layer::builder().file("etc/motd", "hi\n").build()?.diff_id(), a.diff_id());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn file(self, path: impl AsRef<[u8]>, contents: impl Into<Bytes>) -> LayerBuilder {
        self.entry(path, Entry::file(contents))
    }

    /// Adds a directory (0755, root, mtime 0).
    ///
    /// ```
    /// use layercake::Layer;
    ///
    /// let implied = Layer::builder().file("app/run", "").build()?;
    /// assert!(implied.entry("app").is_none(), "not written: readers imply it");
    /// // A base layer meant for Docker writes its directories (see above).
    /// let written = Layer::builder().dir("app").file("app/run", "").build()?;
    /// assert_eq!(written.entry("app").unwrap().metadata().mode, 0o755);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn dir(self, path: impl AsRef<[u8]>) -> LayerBuilder {
        self.entry(path, Entry::dir())
    }

    /// Adds a symlink; `target` is stored verbatim.
    ///
    /// ```
    /// use layercake::{Layer, Tree};
    ///
    /// // The usrmerge layout: an absolute target, resolved inside the image.
    /// let layer = Layer::builder().file("usr/bin/env", "ELF").symlink("bin", "/usr/bin").build()?;
    /// assert_eq!(layer.entry("bin").unwrap().link_target().unwrap(), "/usr/bin");
    /// let tree = Tree::new().apply(&layer)?;
    /// assert_eq!(tree.read("bin/env")?, "ELF");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn symlink(self, path: impl AsRef<[u8]>, target: impl Into<Bytes>) -> LayerBuilder {
        self.entry(path, Entry::symlink(target))
    }

    /// Adds a hardlink to `target`, a path of this layer or a lower one (R7). When `target`
    /// is in this layer, the record is written with its metadata, as tar writers do (Docker
    /// applies a link record's owner, mode and mtime to the shared file).
    ///
    /// ```
    /// use layercake::{Entry, Layer, Tree};
    ///
    /// let layer = Layer::builder()
    ///     .entry("bin/busybox", Entry::file("ELF").mode(0o755))
    ///     .hardlink("bin/sh", "bin/busybox")
    ///     .build()?;
    /// assert_eq!(layer.entry("bin/sh").unwrap().metadata().mode, 0o755);
    /// // One file, two names: the bytes are stored once in the tar.
    /// let tree = Tree::new().apply(&layer)?;
    /// assert!(tree.lookup("bin/sh").unwrap().same_file(&tree.lookup("bin/busybox").unwrap()));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn hardlink(mut self, path: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> LayerBuilder {
        match self.path(target) {
            Some(t) => self.entry(path, Entry::hardlink(t)),
            None => self,
        }
    }

    /// Adds a character device (0666, root, mtime 0).
    ///
    /// ```
    /// use layercake::{FileType, Layer};
    ///
    /// // The device nodes a minimal root filesystem ships.
    /// let layer =
    ///     Layer::builder().char_device("dev/null", 1, 3).char_device("dev/zero", 1, 5).build()?;
    /// let null = layer.entry("dev/null").unwrap();
    /// assert_eq!((null.file_type(), null.metadata().mode), (FileType::CharDevice, 0o666));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn char_device(self, path: impl AsRef<[u8]>, major: u32, minor: u32) -> LayerBuilder {
        self.entry(path, Entry::char_device(major, minor))
    }

    /// Adds a block device (0660, root, mtime 0).
    ///
    /// ```
    /// use layercake::{EntryKind, Layer};
    ///
    /// let layer = Layer::builder().block_device("dev/sda", 8, 0).build()?;
    /// let sda = layer.entry("dev/sda").unwrap();
    /// assert_eq!(sda.kind(), &EntryKind::BlockDevice { major: 8, minor: 0 });
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn block_device(self, path: impl AsRef<[u8]>, major: u32, minor: u32) -> LayerBuilder {
        self.entry(path, Entry::block_device(major, minor))
    }

    /// Adds a named pipe (0644, root, mtime 0).
    ///
    /// ```
    /// use layercake::{Layer, Tree};
    ///
    /// let tree = Tree::new().apply(&Layer::builder().fifo("run/initctl").build()?)?;
    /// assert_eq!(tree.lookup("run/initctl").unwrap().mode_string(), "prw-r--r--");
    /// // A pipe has no contents to read.
    /// assert!(tree.read("run/initctl").is_err());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn fifo(self, path: impl AsRef<[u8]>) -> LayerBuilder {
        self.entry(path, Entry::fifo())
    }

    /// Deletes `path` (and everything below it) from the layers below (R2). Whiting out the
    /// root is an error, reported by [`build`](Self::build).
    ///
    /// ```
    /// use layercake::{Error, Layer, Tree};
    ///
    /// let base = Layer::builder().file("etc/motd", "").file("etc/hosts", "").build()?;
    /// let lower = Tree::new().apply(&base)?;
    /// let upper = lower.apply(&Layer::builder().whiteout("etc/motd").build()?)?;
    /// assert!(upper.lookup("etc/motd").is_none());
    /// assert!(upper.lookup("etc/hosts").is_some());
    /// assert!(matches!(Layer::builder().whiteout("/").build(), Err(Error::RootDirectory { .. })));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn whiteout(mut self, path: impl AsRef<[u8]>) -> LayerBuilder {
        match self.path(path) {
            Some(p) if p.is_root() => {
                self.error.get_or_insert(Error::RootDirectory {
                    reason: "the root cannot be whited out",
                });
            }
            Some(p) => {
                self.changes.whiteouts.insert(p);
            }
            None => {}
        }
        self
    }

    /// Hides every lower child of directory `path` (R3); this layer's own entries below it
    /// stay.
    ///
    /// ```
    /// use layercake::{Layer, Tree};
    ///
    /// let lower = Tree::new().apply(&Layer::builder().file("www/old.html", "").build()?)?;
    /// // Replace a directory's contents without naming each old file.
    /// let layer = Layer::builder().opaque("www").file("www/index.html", "").build()?;
    /// let names: Vec<String> = lower.apply(&layer)?.read_dir("www")?.map(|(n, _)| n).collect();
    /// assert_eq!(names, ["index.html"]);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn opaque(mut self, path: impl AsRef<[u8]>) -> LayerBuilder {
        if let Some(p) = self.path(path) {
            self.changes.opaques.insert(p);
        }
        self
    }

    /// Writes the canonical tar and reads it back as the layer.
    ///
    /// # Errors
    ///
    /// The first error of the builder's calls ([`Error::InvalidPath`] for a path with a `..`
    /// component or a NUL byte, [`Error::RootDirectory`] for a whiteout of the root), then
    /// [`Error::RootDirectory`] for a root entry that is not a directory,
    /// [`Error::ParentNotDirectory`] for an entry below a non-directory entry,
    /// [`Error::InvalidPath`] for a name a layer tar cannot carry (a regular file named
    /// `.wh.*`, which would read back as a whiteout; a whiteout of a `.wh.*` name; an AUFS
    /// meta name `.wh..wh.*` at the root), and [`Error::LimitExceeded`] if the tar passes
    /// the default [`Limits`] (e.g. a name over 255 bytes) when read back.
    ///
    /// ```
    /// use layercake::{Error, Layer};
    ///
    /// let bad = |b: layercake::LayerBuilder| b.build().unwrap_err();
    /// assert!(matches!(bad(Layer::builder().file("a/../b", "")), Error::InvalidPath { .. }));
    /// assert!(matches!(bad(Layer::builder().file("etc/.wh.x", "")), Error::InvalidPath { .. }));
    /// let under_file = Layer::builder().file("a", "").file("a/b", "");
    /// assert!(matches!(bad(under_file), Error::ParentNotDirectory { .. }));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn build(mut self) -> Result<Layer> {
        if let Some(e) = self.error {
            return Err(e);
        }
        self.changes.validate()?;
        // A hardlink record carries the metadata of the file it names, as tar writers write
        // it: Docker applies a link header's owner, mode and mtime to the shared inode.
        let entries = &self.changes.entries;
        let linked: Vec<(ImagePath, Metadata)> = entries
            .iter()
            .filter_map(|(path, entry)| {
                let EntryKind::Hardlink(target) = &entry.kind else {
                    return None;
                };
                let target = entries.get(target)?;
                let differs = !matches!(target.kind, EntryKind::Hardlink(_))
                    && target.metadata != entry.metadata;
                differs.then(|| (path.clone(), target.metadata.clone()))
            })
            .collect();
        for (path, metadata) in linked {
            if let Some(entry) = self.changes.entries.get_mut(&path) {
                Arc::make_mut(entry).metadata = metadata;
            }
        }
        Layer::from_tar(layer_tar::write(&self.changes)?)
    }
}
