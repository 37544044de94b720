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
    pub fn new() -> ReadOptions {
        ReadOptions::default()
    }

    /// Sets the limits on what a read accepts.
    pub fn limits(mut self, limits: Limits) -> ReadOptions {
        self.limits = limits;
        self
    }

    /// The limits in force.
    pub fn limits_in_force(&self) -> &Limits {
        &self.limits
    }

    /// Sets the duplicate-path policy.
    pub fn duplicates(mut self, duplicates: Duplicates) -> ReadOptions {
        self.duplicates = duplicates;
        self
    }
}

/// How a diff records a directory that was emptied and filled again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum WhiteoutStyle {
    /// One whiteout per vanished child, as `docker commit` and `umoci repack` write.
    #[default]
    Explicit,
    /// An opaque marker (`.wh..wh..opq`) and the directory's whole new contents, for a
    /// directory that kept none of its lower children and lost at least one.
    Opaque,
}

/// Options for [`Layer::diff`] and for committing a container.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct DiffOptions {
    pub(crate) whiteouts: WhiteoutStyle,
}

impl DiffOptions {
    /// The defaults: explicit whiteouts.
    pub fn new() -> DiffOptions {
        DiffOptions::default()
    }

    /// Sets how recreated directories are recorded.
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
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// The compression, detected from the bytes.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// The blob bytes.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The blob size in bytes.
    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// The OCI media type for this blob.
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
    /// [`Error::RootDirectory`] for entries that contradict each other.
    pub fn from_tar(tar: impl Into<Bytes>) -> Result<Layer> {
        Layer::from_tar_with(tar, &ReadOptions::default())
    }

    /// Reads an uncompressed layer tar with explicit options.
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
    /// let strict = Layer::from_tar_with(twice, &ReadOptions::new().duplicates(Duplicates::Reject));
    /// assert!(matches!(strict, Err(Error::DuplicateEntry { .. })));
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
    /// [`Error::LimitExceeded`] past a [`Limits`] (size, ratio), then as
    /// [`Layer::from_tar`].
    pub fn from_blob(blob: impl Into<Bytes>) -> Result<Layer> {
        Layer::from_blob_with(blob, &ReadOptions::default())
    }

    /// Reads a layer blob with explicit options (see [`Layer::from_blob`]).
    ///
    /// # Errors
    ///
    /// As [`Layer::from_blob`].
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
    /// Only if the written tar cannot be read back, which would be a bug.
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
    pub fn diff_id(&self) -> DiffId {
        self.inner.diff_id
    }

    /// The uncompressed tar bytes, exactly as read or as canonically written.
    pub fn tar(&self) -> &Bytes {
        &self.inner.tar
    }

    /// The size of the uncompressed tar in bytes.
    pub fn size(&self) -> u64 {
        self.inner.tar.len() as u64
    }

    /// The sum of the sizes of the regular files this layer adds (what Docker reports as a
    /// layer's size).
    pub fn content_size(&self) -> u64 {
        self.entries()
            .filter_map(|(_, e)| e.contents())
            .map(|c| c.len() as u64)
            .sum()
    }

    /// The entries added or replaced, in path order (hardlinks as [`EntryKind::Hardlink`]).
    pub fn entries(&self) -> impl Iterator<Item = (&ImagePath, &Entry)> + '_ {
        self.inner.changes.entries.iter().map(|(p, e)| (p, &**e))
    }

    /// The entry at exactly `path`, if this layer has one.
    pub fn entry(&self, path: impl AsRef<[u8]>) -> Option<&Entry> {
        let path = ImagePath::new(path).ok()?;
        self.inner.changes.entries.get(&path).map(|e| &**e)
    }

    /// The paths this layer deletes from the layers below (R2).
    pub fn whiteouts(&self) -> impl Iterator<Item = &ImagePath> + '_ {
        self.inner.changes.whiteouts.iter()
    }

    /// The directories whose lower contents this layer hides (R3).
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
    pub fn entry(mut self, path: impl AsRef<[u8]>, entry: Entry) -> LayerBuilder {
        if let Some(p) = self.path(path) {
            self.changes.entries.insert(p, Arc::new(entry));
        }
        self
    }

    /// Adds a regular file (0644, root, mtime 0).
    pub fn file(self, path: impl AsRef<[u8]>, contents: impl Into<Bytes>) -> LayerBuilder {
        self.entry(path, Entry::file(contents))
    }

    /// Adds a directory (0755, root, mtime 0).
    pub fn dir(self, path: impl AsRef<[u8]>) -> LayerBuilder {
        self.entry(path, Entry::dir())
    }

    /// Adds a symlink; `target` is stored verbatim.
    pub fn symlink(self, path: impl AsRef<[u8]>, target: impl Into<Bytes>) -> LayerBuilder {
        self.entry(path, Entry::symlink(target))
    }

    /// Adds a hardlink to `target`, a path of this layer or a lower one (R7). When `target`
    /// is in this layer, the record is written with its metadata, as tar writers do (Docker
    /// applies a link record's owner, mode and mtime to the shared file).
    pub fn hardlink(mut self, path: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> LayerBuilder {
        match self.path(target) {
            Some(t) => self.entry(path, Entry::hardlink(t)),
            None => self,
        }
    }

    /// Adds a character device.
    pub fn char_device(self, path: impl AsRef<[u8]>, major: u32, minor: u32) -> LayerBuilder {
        self.entry(path, Entry::char_device(major, minor))
    }

    /// Adds a block device.
    pub fn block_device(self, path: impl AsRef<[u8]>, major: u32, minor: u32) -> LayerBuilder {
        self.entry(path, Entry::block_device(major, minor))
    }

    /// Adds a named pipe.
    pub fn fifo(self, path: impl AsRef<[u8]>) -> LayerBuilder {
        self.entry(path, Entry::fifo())
    }

    /// Deletes `path` (and everything below it) from the layers below (R2).
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
    /// The first invalid path given to the builder, [`Error::InvalidPath`] for a name a
    /// layer tar cannot carry (a regular file named `.wh.*`, which would read back as a
    /// whiteout), or the errors of [`Layer::from_tar`] for entries that contradict each other.
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
        layer_tar::check_writable(&self.changes)?;
        Layer::from_tar(layer_tar::write(&self.changes))
    }
}
