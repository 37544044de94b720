//! [`Store`]: images by id, layers by DiffId, merged trees by ChainId, and tags, with the
//! sharing Docker's image store has: a base used by ten images is kept once. In memory
//! ([`Store::new`]) or in a directory that outlives the process ([`Store::open`]): an OCI
//! image layout that skopeo and umoci read as it is, beside a cache of uncompressed layers.

mod disk;
// What takes blobs in from outside is the registry client (feature `registry`): without it,
// nothing calls an ingest.
#[cfg_attr(not(feature = "registry"), allow(dead_code))]
mod ingest;
mod tops;

#[cfg_attr(not(feature = "registry"), allow(unused_imports))]
pub(crate) use ingest::Ingest;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::archive::oci::Descriptor;
use crate::contents::Contents;
use crate::digest::{ChainId, DiffId, Digest, ImageId};
use crate::error::{Error, Result};
use crate::image::{ChainLink, Image, Inspect};
use crate::layer::Layer;
use crate::reference::Reference;

/// Whether a layer was new to the store when an image was added.
///
/// ```
/// use layercake::{Image, Layer, LayerStatus, Store};
///
/// let base = Image::builder()
///     .layer(Layer::builder().file("etc/os-release", "ID=demo\n").build()?)
///     .build()?;
/// let mut store = Store::new();
/// assert_eq!(store.add(&base)?.layers[0].1, LayerStatus::New);
/// // Another image on the same layer: the store keeps the layer once.
/// let app = Image::builder().base(&base).cmd(["/bin/sh"]).build()?;
/// assert_eq!(store.add(&app)?.layers[0].1, LayerStatus::AlreadyExists);
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerStatus {
    /// The store did not have it.
    New,
    /// The store had it already (`docker load` prints "Layer already exists").
    AlreadyExists,
}

/// What [`Store::add`] did.
///
/// ```
/// use layercake::{DiffId, Image, Layer, LayerStatus, Store};
///
/// let image = Image::builder().layer(Layer::builder().file("a", "1").build()?).build()?;
/// let mut store = Store::new();
/// let report = store.add(&image)?;
/// let new: Vec<DiffId> = report
///     .layers
///     .iter()
///     .filter(|(_, status)| *status == LayerStatus::New)
///     .map(|(diff_id, _)| *diff_id)
///     .collect();
/// assert_eq!(new, image.diff_ids());
/// assert_eq!(report.image, image);
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AddReport {
    /// The image as stored, sharing the store's layers and trees.
    pub image: Image,
    /// Each layer, bottom first, and whether it was new.
    pub layers: Vec<(DiffId, LayerStatus)>,
}

/// What [`Store::remove`] and [`Store::prune`] did.
///
/// ```
/// use layercake::{Image, Layer, Store};
///
/// let image = Image::builder().layer(Layer::builder().file("a", "1").build()?).build()?;
/// let mut store = Store::new();
/// store.add(&image)?;
/// store.tag(&image.id().to_string(), "app:1")?;
/// let removal = store.remove("app:1")?;
/// assert_eq!(removal.untagged, ["app:1"]);
/// assert_eq!(removal.images, [image.id()]);
/// assert_eq!(removal.layers, image.diff_ids());
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Removal {
    /// Tags removed.
    pub untagged: Vec<String>,
    /// Images deleted.
    pub images: Vec<ImageId>,
    /// Layers deleted because no image uses them any more.
    pub layers: Vec<DiffId>,
}

/// How much the store holds, and how much its images would take without sharing.
///
/// ```
/// use layercake::{Image, Layer, Store};
///
/// let image = Image::builder().layer(Layer::builder().file("a", "1").build()?).build()?;
/// let mut store = Store::new();
/// store.add(&image)?;
/// let usage = store.usage()?;
/// assert_eq!((usage.images, usage.layers), (1, 1));
/// assert_eq!(usage.stored_bytes, usage.unshared_bytes, "one image shares nothing");
/// assert!(usage.to_string().starts_with("1 images, 1 layers, "));
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Usage {
    /// Images stored.
    pub images: usize,
    /// Distinct layers stored.
    pub layers: usize,
    /// Bytes of layer blobs, configs and manifests actually held (each once).
    pub stored_bytes: u64,
    /// Bytes the same images would take if each kept its own copy of every layer.
    pub unshared_bytes: u64,
    /// Bytes of blobs that more than one image uses (counted once).
    pub shared_bytes: u64,
    /// Bytes of the uncompressed layer cache of a store on disk (0 in memory): what the
    /// store may delete and rebuild from its blobs.
    pub cache_bytes: u64,
    /// Bytes of blobs and cached tars on disk that no image uses (0 in memory): what
    /// [`Store::prune`] deletes besides untagged images, such as what a killed load, or the
    /// losing one of two loads of one layer in two compressions, left behind.
    pub reclaimable_bytes: u64,
}

impl std::fmt::Display for Usage {
    /// `2 images, 2 layers, 8427 bytes stored (13035 without sharing)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} images, {} layers, {} bytes stored ({} without sharing)",
            self.images, self.layers, self.stored_bytes, self.unshared_bytes
        )
    }
}

/// How [`Store::add_with`] adds an image: the tags to give it, and who hears about progress.
///
/// ```
/// use layercake::{Image, Layer, Progress, Store};
/// use layercake::store::AddOptions;
///
/// let image = Image::builder().layer(Layer::builder().file("a", "1").build()?).build()?;
/// let mut store = Store::new();
/// let mut heard = Vec::new();
/// let options = AddOptions::new()
///     .tag("app:1")
///     .progress(|p: &Progress| heard.push(format!("{p:?}")));
/// store.add_with(&image, options)?;
/// assert_eq!(store.image("app:1")?, image);
/// assert!(!heard.is_empty());
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Default)]
pub struct AddOptions<'a> {
    tags: Vec<String>,
    progress: Option<Box<Listener<'a>>>,
    build_step: Option<Digest>,
}

/// Who hears about an add's progress.
type Listener<'a> = dyn FnMut(&Progress) + Send + 'a;

impl fmt::Debug for AddOptions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AddOptions")
            .field("tags", &self.tags)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

impl<'a> AddOptions<'a> {
    /// No tags, no progress.
    ///
    /// ```
    /// use layercake::store::AddOptions;
    /// let options = AddOptions::new();
    /// # let _ = options;
    /// ```
    pub fn new() -> AddOptions<'a> {
        AddOptions::default()
    }

    /// Tags the image (`name`, `name:tag`; `:latest` is implied) once it is stored, in the
    /// same change of the store's index: a reader never sees the image without its tags.
    ///
    /// ```
    /// use layercake::{Image, Store};
    /// use layercake::store::AddOptions;
    ///
    /// let image = Image::builder().build()?;
    /// let mut store = Store::new();
    /// store.add_with(&image, AddOptions::new().tag("app").tag("app:1"))?;
    /// assert_eq!(store.tags_of(image.id()), ["app:1", "app:latest"]);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn tag(mut self, tag: impl Into<String>) -> AddOptions<'a> {
        self.tags.push(tag.into());
        self
    }

    /// The tags in force, as given.
    ///
    /// ```
    /// use layercake::store::AddOptions;
    ///
    /// assert_eq!(AddOptions::new().tag("app").tag("app:1").tags_in_force(), ["app", "app:1"]);
    /// ```
    pub fn tags_in_force(&self) -> &[String] {
        &self.tags
    }

    /// Calls `progress` as each layer is found or written (see [`Progress`]); it may be
    /// called from a thread the store reads on.
    ///
    /// ```
    /// use layercake::{Image, Layer, Progress, Store};
    /// use layercake::store::AddOptions;
    ///
    /// let image = Image::builder().layer(Layer::builder().file("a", "1").build()?).build()?;
    /// let mut store = Store::new();
    /// let mut stored = 0;
    /// let options = AddOptions::new().progress(|p: &Progress| {
    ///     if matches!(p, Progress::Stored { .. }) {
    ///         stored += 1;
    ///     }
    /// });
    /// store.add_with(&image, options)?;
    /// assert_eq!(stored, 1);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn progress(mut self, progress: impl FnMut(&Progress) + Send + 'a) -> AddOptions<'a> {
        self.progress = Some(Box::new(progress));
        self
    }

    /// Records the image as the result of the build step with cache key `key`.
    pub(crate) fn build_step(mut self, key: Digest) -> AddOptions<'a> {
        self.build_step = Some(key);
        self
    }

    fn report(&mut self, event: Progress) {
        if let Some(progress) = &mut self.progress {
            progress(&event);
        }
    }
}

/// What [`Store::add_with`] reports as it goes, layer by layer, bottom first.
///
/// ```
/// use layercake::{Image, Layer, Progress, Store};
/// use layercake::store::AddOptions;
///
/// let base = Image::builder().layer(Layer::builder().file("a", "1").build()?).build()?;
/// let app = Image::builder().base(&base).layer(Layer::builder().file("b", "2").build()?).build()?;
/// let mut store = Store::new();
/// store.add(&base)?;
/// let mut lines = Vec::new();
/// store.add_with(&app, AddOptions::new().progress(|p: &Progress| match p {
///     Progress::Exists { diff_id } => lines.push(format!("{:.12}: Already exists", diff_id.to_hex().to_string())),
///     Progress::Stored { diff_id, .. } => lines.push(format!("{:.12}: Loaded", diff_id.to_hex().to_string())),
///     _ => {}
/// }))?;
/// assert!(lines[0].ends_with("Already exists") && lines[1].ends_with("Loaded"));
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Progress {
    /// A layer the store already has: nothing is read or written for it.
    Exists {
        /// The layer.
        diff_id: DiffId,
    },
    /// Bytes of a new layer's blob taken in so far, of `total`.
    Copying {
        /// The layer.
        diff_id: DiffId,
        /// Blob bytes taken in so far.
        done: u64,
        /// The blob's size.
        total: u64,
    },
    /// A new layer, verified and written (in memory: kept as it is, and a layer of an
    /// image file not read yet is read and verified when first needed).
    Stored {
        /// The layer.
        diff_id: DiffId,
        /// The blob's size.
        size: u64,
    },
}

/// What [`Store::verify`] found: how much it checked, and each thing that is not as its
/// name or the index says.
///
/// ```
/// use layercake::{Image, Layer, Store};
///
/// let image = Image::builder().layer(Layer::builder().file("a", "1").build()?).build()?;
/// let mut store = Store::new();
/// store.add(&image)?;
/// let verification = store.verify()?;
/// assert!(verification.is_ok());
/// assert_eq!(verification.layers, 1);
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Verification {
    /// Blobs re-hashed (layer blobs, configs, manifests).
    pub blobs: usize,
    /// Layers whose uncompressed tar was re-hashed.
    pub layers: usize,
    /// What is wrong, if anything.
    pub problems: Vec<Corruption>,
}

impl Verification {
    /// Whether nothing is wrong.
    ///
    /// ```
    /// use layercake::Store;
    /// assert!(Store::new().verify()?.is_ok());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// One thing [`Store::verify`] found wrong: a file whose bytes do not hash to its name, or
/// one the index needs that is missing or unreadable.
///
/// ```
/// use layercake::store::Corruption;
/// use layercake::Digest;
///
/// let c = Corruption::new("blobs/sha256/00", Digest::sha256(b"a"), None, "missing");
/// assert!(c.to_string().starts_with("blobs/sha256/00: missing"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Corruption {
    /// The file, relative to the store's root (or, in memory, what it is).
    pub path: PathBuf,
    /// The digest it should have.
    pub expected: Digest,
    /// The digest it has, if it could be read.
    pub actual: Option<Digest>,
    /// What is wrong, in words.
    pub reason: String,
}

impl Corruption {
    /// A problem with `path`, which should hash to `expected`.
    pub fn new(
        path: impl Into<PathBuf>,
        expected: Digest,
        actual: Option<Digest>,
        reason: impl Into<String>,
    ) -> Corruption {
        Corruption {
            path: path.into(),
            expected,
            actual,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Corruption {
    /// `blobs/sha256/ab…: digest mismatch (expected sha256:…, found sha256:…)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} (expected {}",
            self.path.display(),
            self.reason,
            self.expected
        )?;
        match &self.actual {
            Some(actual) => write!(f, ", found {actual})"),
            None => f.write_str(")"),
        }
    }
}

/// An image store: images by id and tag, layers by DiffId, each kept once.
///
/// [`Store::new`] keeps everything in memory, for the life of the value. [`Store::open`]
/// keeps it in a directory, for every process and run: an OCI image layout (`index.json`,
/// `blobs/sha256/…`, each tag's full reference as `org.opencontainers.image.ref.name`) that
/// `skopeo copy oci:DIR:REF` and `umoci unpack --image DIR:REF` read as it is, and beside it
/// a cache of uncompressed layers that file contents are read from, by offset. Writes are
/// verified, then moved into place, so a process killed at any instant leaves no partial
/// blob, layer or image; several processes may use one directory at once.
///
/// # Example
///
/// ```
/// use layercake::{Image, Layer, LayerStatus, Store};
///
/// let base = Image::builder()
///     .layer(Layer::builder().file("etc/os-release", "ID=demo\n").build()?)
///     .build()?;
/// let app = Image::builder()
///     .base(&base)
///     .layer(Layer::builder().file("app/run", "#!/bin/sh\n").build()?)
///     .build()?;
///
/// let mut store = Store::new();
/// store.add(&base)?;
/// store.tag(&base.id().to_string(), "demo/base:1")?;
/// let report = store.add(&app)?;
/// assert_eq!(report.layers[0].1, LayerStatus::AlreadyExists);
/// assert_eq!(report.layers[1].1, LayerStatus::New);
/// store.tag(&app.id().to_string(), "demo/app")?;
///
/// assert_eq!(store.image("demo/app:latest")?.id(), app.id());
/// let usage = store.usage()?;
/// assert_eq!(usage.layers, 2);
/// assert!(usage.stored_bytes < usage.unshared_bytes);
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug, Default, Clone)]
pub struct Store {
    layers: BTreeMap<DiffId, Layer>,
    chains: BTreeMap<ChainId, Arc<ChainLink>>,
    images: BTreeMap<ImageId, Image>,
    tags: BTreeMap<Reference, ImageId>,
    /// Each image's manifest: on disk, the one its untagged entry (or a tag without a top)
    /// lists; in memory, only for images taken in from outside (a pull).
    manifests: BTreeMap<ImageId, Descriptor>,
    /// What each tag names, when that is not simply its image's manifest: a manifest or an
    /// index as pulled, kept exactly.
    tops: BTreeMap<Reference, tops::Top>,
    /// Build steps by cache key: the image each made (`crate::build` reuses them). On disk,
    /// the keys are an annotation of the image's `index.json` entries.
    build_steps: BTreeMap<Digest, ImageId>,
    /// In memory: blobs taken in from outside (manifests, indexes, configs, layer blobs),
    /// by digest. On disk they are files.
    blobs: BTreeMap<Digest, Contents>,
    /// For a store on disk: its directory, and what its index says beside images and tags.
    disk: Option<disk::Disk>,
}

impl Store {
    /// An empty store in memory.
    ///
    /// ```
    /// use layercake::{Error, Store};
    ///
    /// let store = Store::new();
    /// assert_eq!(store.images().count(), 0);
    /// assert!(store.root().is_none());
    /// assert!(matches!(store.image("busybox"), Err(Error::ImageNotFound { .. })));
    /// ```
    pub fn new() -> Store {
        Store::default()
    }

    /// Opens the store kept in directory `root`, creating it if it does not exist, and reads
    /// its index: images, tags and manifests. No layer is read until it is needed, and then
    /// from the store's layer cache, by offset. A file left half written by a process that
    /// was killed is cleaned away.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if `root` cannot be created or read, [`Error::InvalidArchive`] if it
    /// holds something that is not an OCI image layout, and the errors of reading its
    /// manifests and configs.
    ///
    /// ```
    /// use layercake::{Image, Layer, Store};
    ///
    /// let root = std::env::temp_dir().join(format!("layercake-doc-open-{}", std::process::id()));
    /// let image = Image::builder().layer(Layer::builder().file("a", "1").build()?).build()?;
    /// {
    ///     let mut store = Store::open(&root)?;
    ///     store.add(&image)?;
    ///     store.tag(&image.id().to_string(), "app:1")?;
    /// }
    /// // Another process, or this one later: the image is there, with its tag.
    /// let store = Store::open(&root)?;
    /// let again = store.image("app:1")?;
    /// assert_eq!(again.id(), image.id());
    /// assert_eq!(again.tree()?.read("a")?, "1");
    /// # std::fs::remove_dir_all(&root).ok();
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn open(root: impl AsRef<Path>) -> Result<Store> {
        let mut store = Store {
            disk: Some(disk::Disk::open(root.as_ref())?),
            ..Store::default()
        };
        store.refresh()?;
        Ok(store)
    }

    /// The directory of a store on disk; `None` for one in memory.
    ///
    /// ```
    /// use layercake::Store;
    /// assert_eq!(Store::new().root(), None);
    /// ```
    pub fn root(&self) -> Option<&Path> {
        self.disk.as_ref().map(|d| d.root())
    }

    /// Reads the index on disk again, taking in what other processes changed. Layers
    /// already known here are kept as they are (with whatever they have read).
    fn refresh(&mut self) -> Result<()> {
        let Some(disk) = self.disk.clone() else {
            return Ok(());
        };
        let snapshot = disk.read(&self.layers)?;
        self.layers.clear();
        self.chains.clear();
        self.images.clear();
        self.tags.clear();
        for stored in snapshot.images {
            let image = self.insert(&stored.image).image;
            for tag in stored.tags {
                self.tags.insert(tag, image.id());
            }
        }
        self.manifests = snapshot.manifests;
        self.tops = snapshot.tops;
        self.build_steps = snapshot.build_steps;
        self.disk = Some(disk.with_foreign(snapshot.foreign));
        Ok(())
    }

    /// Settles what tags name after a change, and on disk writes the index from what this
    /// value holds (under the index lock, after a refresh): a tag moved elsewhere, or gone,
    /// loses its top.
    fn write_index(&mut self) -> Result<()> {
        let tags = &self.tags;
        self.tops.retain(|tag, top| match top.image {
            Some(id) => tags.get(tag) == Some(&id),
            None => !tags.contains_key(tag),
        });
        let images = &self.images;
        self.manifests.retain(|id, _| images.contains_key(id));
        self.build_steps.retain(|_, id| images.contains_key(id));
        if let Some(disk) = &self.disk {
            disk.write_index(self.index_entries())?;
        }
        Ok(())
    }

    /// The entries of `index.json`: each tag's top, or its image's manifest; each untagged
    /// image's manifest; then the tops with no image here.
    fn index_entries(&self) -> Vec<Descriptor> {
        let mut tags: BTreeMap<ImageId, Vec<&Reference>> = BTreeMap::new();
        for (tag, id) in &self.tags {
            tags.entry(*id).or_default().push(tag);
        }
        let mut steps: BTreeMap<ImageId, Vec<String>> = BTreeMap::new();
        for (key, id) in &self.build_steps {
            steps.entry(*id).or_default().push(key.to_string());
        }
        let mut entries = Vec::new();
        for id in self.images.keys() {
            let Some(own) = self.manifests.get(id) else {
                continue;
            };
            let tags = tags.remove(id).unwrap_or_default();
            let first = entries.len();
            if tags.is_empty() {
                entries.push(own.clone());
            }
            for tag in tags {
                match self.tops.get(tag) {
                    Some(top) => entries.extend(top_entries(tag, top)),
                    None => entries.push(disk::entry(own, Some(tag), None)),
                }
            }
            // The build steps the image is the result of, on each entry of its own manifest.
            if let Some(keys) = steps.get(id) {
                for entry in &mut entries[first..] {
                    if entry.digest == own.digest {
                        let keys = keys.join(",");
                        entry.annotations.insert(disk::BUILD_STEPS.to_owned(), keys);
                    }
                }
            }
        }
        for (tag, top) in &self.tops {
            if top.image.is_none() {
                entries.extend(top_entries(tag, top));
            }
        }
        entries
    }

    /// Adds an image, reusing every layer and merged tree the store already has, and
    /// returns the stored image with a report of which layers were new. As
    /// [`Store::add_with`] with no tags and no progress.
    ///
    /// # Errors
    ///
    /// For a store on disk, as [`Store::add_with`]; none in memory.
    ///
    /// ```
    /// use layercake::{Image, Layer, LayerStatus, Store};
    ///
    /// let base = Image::builder()
    ///     .layer(Layer::builder().file("etc/os-release", "ID=demo\n").build()?)
    ///     .build()?;
    /// let app = Image::builder()
    ///     .base(&base)
    ///     .layer(Layer::builder().file("app", "").build()?)
    ///     .build()?;
    /// let mut store = Store::new();
    /// store.add(&base)?;
    /// let statuses: Vec<LayerStatus> =
    ///     store.add(&app)?.layers.iter().map(|(_, s)| *s).collect();
    /// assert_eq!(statuses, [LayerStatus::AlreadyExists, LayerStatus::New]);
    /// assert_eq!(store.layers().count(), 2);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn add(&mut self, image: &Image) -> Result<AddReport> {
        self.add_with(image, AddOptions::new())
    }

    /// Adds an image with tags, reporting progress, as `docker load` does.
    ///
    /// In a store on disk, a layer the store has (by DiffId) is reported
    /// [`LayerStatus::AlreadyExists`] and nothing is read or written for it. A new layer of
    /// an image file is read in one pass: its blob is copied into the store as it is hashed,
    /// decompressed and parsed, and its tar kept in the layer cache. Everything is verified
    /// before anything becomes visible: if any layer fails, the store is left as it was.
    /// Layers built in memory are stored uncompressed, as Docker stores them.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidReference`] for a malformed tag (before anything is written), the
    /// errors of reading a layer ([`Layer::changeset`]), and [`Error::Io`] if the store
    /// cannot be written.
    ///
    /// ```
    /// use layercake::{Image, Layer, LayerStatus, Store};
    /// use layercake::store::AddOptions;
    ///
    /// let image = Image::builder().layer(Layer::builder().file("a", "1").build()?).build()?;
    /// let mut store = Store::new();
    /// let report = store.add_with(&image, AddOptions::new().tag("app:1"))?;
    /// assert_eq!(report.layers[0].1, LayerStatus::New);
    /// assert_eq!(store.tags_of(image.id()), ["app:1"]);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn add_with(&mut self, image: &Image, mut options: AddOptions<'_>) -> Result<AddReport> {
        let tags = options
            .tags
            .iter()
            .map(|t| tag_key(t))
            .collect::<Result<Vec<_>>>()?;
        let Some(disk) = self.disk.clone() else {
            let report = self.insert(image);
            for (diff_id, status) in &report.layers {
                let diff_id = *diff_id;
                options.report(match status {
                    LayerStatus::AlreadyExists => Progress::Exists { diff_id },
                    LayerStatus::New => Progress::Stored {
                        diff_id,
                        size: self.layers[&diff_id].blob().size(),
                    },
                });
            }
            for tag in tags {
                self.tags.insert(tag, report.image.id());
            }
            if let Some(key) = options.build_step {
                self.build_steps.insert(key, report.image.id());
            }
            self.write_index()?;
            return Ok(report);
        };
        // Loads share the store; a removal waits for them (it would delete blobs a load has
        // written but not yet named in the index).
        let _loading = disk.lock_gc(false)?;
        self.refresh()?;
        let mut staged = disk::Staged::default();
        let mut layers = Vec::with_capacity(image.layers().len());
        let mut statuses = Vec::with_capacity(layers.capacity());
        for layer in image.layers() {
            let diff_id = layer.diff_id();
            let known = self
                .layers
                .get(&diff_id)
                .or_else(|| layers.iter().find(|l: &&Layer| l.diff_id() == diff_id));
            let (stored, status) = match known {
                Some(stored) => {
                    options.report(Progress::Exists { diff_id });
                    (stored.clone(), LayerStatus::AlreadyExists)
                }
                None => {
                    let stored = disk.ingest(layer, &mut staged, &mut |done, total| {
                        options.report(Progress::Copying {
                            diff_id,
                            done,
                            total,
                        })
                    })?;
                    options.report(Progress::Stored {
                        diff_id,
                        size: stored.blob().size(),
                    });
                    (stored, LayerStatus::New)
                }
            };
            layers.push(stored);
            statuses.push((diff_id, status));
        }
        let stored = Image::from_parts(image.config().as_bytes().clone(), layers)?;
        let manifest = match self.manifests.get(&stored.id()) {
            Some(known) => known.clone(),
            None => disk.stage_image(&stored, &mut staged)?,
        };
        disk.commit(staged)?;
        let _index = disk.lock_index()?;
        self.refresh()?;
        let image = self.insert(&stored).image;
        for tag in tags {
            self.tags.insert(tag, image.id());
        }
        self.manifests.entry(image.id()).or_insert(manifest);
        if let Some(key) = options.build_step {
            self.build_steps.insert(key, image.id());
        }
        self.write_index()?;
        Ok(AddReport {
            image,
            layers: statuses,
        })
    }

    /// Puts an image in the maps, sharing every layer and tree the store has.
    fn insert(&mut self, image: &Image) -> AddReport {
        let mut chain: Vec<Arc<ChainLink>> = Vec::with_capacity(image.chain().len());
        let mut report = Vec::new();
        // Whether every link so far is the image's own: only then is a tree the image's
        // own link has cached built on the store's trees.
        let mut own = true;
        for link in image.chain() {
            let diff_id = link.layer.diff_id();
            let status = match self.layers.entry(diff_id) {
                std::collections::btree_map::Entry::Occupied(_) => LayerStatus::AlreadyExists,
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(link.layer.clone());
                    LayerStatus::New
                }
            };
            report.push((diff_id, status));
            let stored = match self.chains.get(&link.chain_id) {
                Some(existing) => existing.clone(),
                // A new layer on the image's own links: its link (and any tree it has
                // built) is kept.
                None if status == LayerStatus::New && own => link.clone(),
                // A known layer on a new stack, or a layer above links the store replaced:
                // a new link on the stored ones, sharing the stored layer's bytes.
                None => Arc::new(ChainLink::new(
                    self.layers[&diff_id].clone(),
                    chain.last().map(|l| &**l),
                )),
            };
            own &= Arc::ptr_eq(&stored, link);
            self.chains.insert(stored.chain_id, stored.clone());
            chain.push(stored);
        }
        let stored = Image::from_chain(image.config().clone(), chain);
        self.images.insert(stored.id(), stored.clone());
        AddReport {
            image: stored,
            layers: report,
        }
    }

    /// Runs a change of tags or images: on disk, under the index lock (and the removal lock
    /// when `deletes`), on the index as it is now, which is then written back; then, when
    /// `deletes`, the files no image uses any more are deleted.
    fn change<T>(&mut self, deletes: bool, f: impl FnOnce(&mut Store) -> Result<T>) -> Result<T> {
        let Some(disk) = self.disk.clone() else {
            let out = f(self)?;
            self.write_index()?;
            return Ok(out);
        };
        let _removing = if deletes {
            Some(disk.lock_gc(true)?)
        } else {
            None
        };
        let _index = disk.lock_index()?;
        self.refresh()?;
        let out = f(self)?;
        self.write_index()?;
        if deletes {
            disk.collect_garbage()?;
        }
        Ok(out)
    }

    /// Finds an image by tag (`name`, `name:tag`), by digest (`name@sha256:…`, the
    /// manifest's in a store on disk), by full id (`sha256:...`), or by a unique prefix of the
    /// id's hex (as `docker` accepts `3f2a`).
    ///
    /// # Errors
    ///
    /// [`Error::ImageNotFound`], [`Error::AmbiguousReference`].
    ///
    /// ```
    /// use layercake::{Error, Image, Layer, Store};
    ///
    /// let image = Image::builder().layer(Layer::builder().file("a", "1").build()?).build()?;
    /// let mut store = Store::new();
    /// store.add(&image)?;
    /// store.tag(&image.id().to_string(), "app:1")?;
    /// assert_eq!(store.image("app:1")?, image);
    /// let short = image.id().to_hex().to_string()[..12].to_owned();
    /// assert_eq!(store.image(&short)?, image);
    /// assert!(matches!(store.image("app:2"), Err(Error::ImageNotFound { .. })));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn image(&self, reference: &str) -> Result<Image> {
        self.resolve(reference).map(|id| self.images[&id].clone())
    }

    fn resolve(&self, reference: &str) -> Result<ImageId> {
        let not_found = || Error::ImageNotFound {
            reference: reference.to_owned(),
        };
        if let Ok(parsed) = Reference::parse(reference) {
            if let Some(digest) = parsed.digest() {
                let by_manifest = self.image_with_manifest(digest);
                let by_id = ImageId::from_digest(digest);
                return by_manifest
                    .or_else(|| self.images.contains_key(&by_id).then_some(by_id))
                    .ok_or_else(not_found);
            }
        }
        if let Ok(tag) = tag_key(reference) {
            if let Some(id) = self.tags.get(&tag) {
                return Ok(*id);
            }
        }
        let hex = reference.strip_prefix("sha256:").unwrap_or(reference);
        if !hex.is_empty() && hex.len() <= 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut found = self
                .images
                .keys()
                .filter(|id| id.to_hex().to_string().starts_with(hex));
            if let Some(id) = found.next() {
                let others: Vec<&ImageId> = found.collect();
                if !others.is_empty() {
                    return Err(Error::AmbiguousReference {
                        reference: reference.to_owned(),
                        candidates: std::iter::once(id)
                            .chain(others)
                            .map(|id| id.to_string())
                            .collect(),
                    });
                }
                return Ok(*id);
            }
        }
        Err(not_found())
    }

    /// The image whose manifest, or whose tag's top (a manifest or an index as pulled), has
    /// the digest `digest`.
    fn image_with_manifest(&self, digest: Digest) -> Option<ImageId> {
        let by_top = self.tops.values().find_map(|top| {
            (top.desc.digest == digest || top.manifest == Some(digest))
                .then_some(top.image)
                .flatten()
        });
        by_top.or_else(|| {
            self.manifests
                .iter()
                .find(|(_, m)| m.digest == digest)
                .map(|(id, _)| *id)
        })
    }

    /// The top `reference` names: a tag's (a tag with no top of its own names none), or the
    /// one with the digest of `name@digest`.
    fn top_named(&self, reference: &str) -> Option<&tops::Top> {
        if let Ok(tag) = tag_key(reference) {
            return self.tops.get(&tag);
        }
        let digest = Reference::parse(reference).ok()?.digest()?;
        self.tops.values().find(|top| top.desc.digest == digest)
    }

    /// Points tag `tag` (`name` or `name:tag`; `:latest` is implied) at the image
    /// `reference` names, moving it if it pointed elsewhere. When `reference` is a tag
    /// with a manifest or index as pulled (or `name@digest` of one), `tag` names that too,
    /// so a push of `tag` sends it as it was pulled.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidReference`] for a malformed tag, those of [`Store::image`], and
    /// [`Error::Io`] if a store on disk cannot write its index.
    ///
    /// ```
    /// use layercake::{Error, Image, Store};
    ///
    /// let v1 = Image::builder().cmd(["v1"]).build()?;
    /// let v2 = Image::builder().cmd(["v2"]).build()?;
    /// let mut store = Store::new();
    /// store.add(&v1)?;
    /// store.add(&v2)?;
    /// store.tag(&v1.id().to_string(), "app")?;
    /// store.tag(&v2.id().to_string(), "app:latest")?; // moves the tag
    /// assert_eq!(store.image("app")?, v2);
    /// assert!(matches!(store.tag("app", "App"), Err(Error::InvalidReference { .. })));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn tag(&mut self, reference: &str, tag: &str) -> Result<()> {
        let key = tag_key(tag)?;
        self.change(false, |store| {
            let id = store.resolve(reference)?;
            let top = store
                .top_named(reference)
                .filter(|top| top.image == Some(id))
                .cloned();
            store.tags.insert(key.clone(), id);
            if let Some(top) = top {
                store.tops.insert(key, top);
            }
            Ok(())
        })
    }

    /// Removes a tag and returns the image it pointed at; the image stays.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidReference`] for a malformed tag; [`Error::ImageNotFound`] if no such
    /// tag exists; [`Error::Io`] if a store on disk cannot write its index.
    ///
    /// ```
    /// use layercake::{Image, Store};
    ///
    /// let image = Image::builder().build()?;
    /// let mut store = Store::new();
    /// store.add(&image)?;
    /// store.tag(&image.id().to_string(), "app:1")?;
    /// assert_eq!(store.untag("app:1")?, image.id());
    /// assert!(store.tags_of(image.id()).is_empty());
    /// assert_eq!(store.images().count(), 1, "the image stays");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn untag(&mut self, tag: &str) -> Result<ImageId> {
        let key = tag_key(tag)?;
        self.change(false, |store| {
            store.tags.remove(&key).ok_or_else(|| Error::ImageNotFound {
                reference: tag.to_owned(),
            })
        })
    }
    /// The image a build stored for the step with cache key `key`, if the store still has
    /// it (see `crate::build`).
    pub(crate) fn build_step(&self, key: &Digest) -> Option<Image> {
        self.build_steps
            .get(key)
            .and_then(|id| self.images.get(id))
            .cloned()
    }

    /// The intermediate images: untagged, and the base of another image here (their history
    /// and layers the start of the other's), as the images a build keeps for its steps.
    /// `docker images` hides such images without `-a`; [`Store::prune`] deletes them, and
    /// with them the build cache.
    ///
    /// ```
    /// use layercake::build::Build;
    /// use layercake::Store;
    ///
    /// let mut store = Store::new();
    /// let report = Build::new("FROM scratch\nENV A=1\nENV B=2\n").run_in(&mut store)?;
    /// let step_two = report.steps[1].image.expect("a step image");
    /// let intermediates = store.intermediates();
    /// assert!(intermediates.contains(&step_two));
    /// assert!(!intermediates.contains(&report.image.id()), "nothing is built on it");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn intermediates(&self) -> BTreeSet<ImageId> {
        // Each image's history, row by row with its layer, hashed as a chain: an image is
        // below another when its whole chain is a proper start of the other's.
        let chain = |image: &Image| -> Vec<Digest> {
            let mut diff_ids = image.diff_ids().into_iter();
            let mut link = Digest::sha256([]);
            let mut links = Vec::new();
            for row in &image.config().file().history {
                let mut bytes = link.to_string().into_bytes();
                bytes.extend(serde_json::to_vec(row).unwrap_or_default());
                if !row.empty_layer {
                    let layer = diff_ids.next().map(|d| d.to_string()).unwrap_or_default();
                    bytes.extend(layer.into_bytes());
                }
                link = Digest::sha256(bytes);
                links.push(link);
            }
            links
        };
        let tagged: BTreeSet<ImageId> = self.tags.values().copied().collect();
        let mut below: BTreeSet<Digest> = BTreeSet::new();
        let mut candidates: Vec<(ImageId, Digest)> = Vec::new();
        for image in self.images.values() {
            let links = chain(image);
            if let Some((last, proper)) = links.split_last() {
                below.extend(proper.iter().copied());
                if !tagged.contains(&image.id()) {
                    candidates.push((image.id(), *last));
                }
            }
        }
        candidates
            .into_iter()
            .filter(|(_, last)| below.contains(last))
            .map(|(id, _)| id)
            .collect()
    }

    /// The tags pointing at an image, sorted, in familiar form (`busybox:latest`).
    ///
    /// ```
    /// use layercake::{Image, Store};
    ///
    /// let image = Image::builder().build()?;
    /// let mut store = Store::new();
    /// store.add(&image)?;
    /// store.tag(&image.id().to_string(), "app")?;
    /// store.tag(&image.id().to_string(), "app:1")?;
    /// assert_eq!(store.tags_of(image.id()), ["app:1", "app:latest"]);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn tags_of(&self, id: ImageId) -> Vec<String> {
        self.references_of(id)
            .iter()
            .map(|k| k.familiar().to_string())
            .collect()
    }

    /// The tags pointing at an image, as references (repository and tag apart), sorted.
    ///
    /// ```
    /// use layercake::{Image, Store};
    ///
    /// let image = Image::builder().build()?;
    /// let mut store = Store::new();
    /// store.add(&image)?;
    /// store.tag(&image.id().to_string(), "busybox:1.36")?;
    /// let tags = store.references_of(image.id());
    /// assert_eq!(tags[0].name(), "docker.io/library/busybox");
    /// assert_eq!(tags[0].tag(), Some("1.36"));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn references_of(&self, id: ImageId) -> Vec<Reference> {
        self.tags
            .iter()
            .filter(|(_, v)| **v == id)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// The digest of the manifest (or index) an image was pulled as, if one of its tags
    /// names one, else of its manifest in a store on disk (what `name@sha256:…` finds);
    /// `None` in memory for an image added rather than pulled.
    ///
    /// ```
    /// use layercake::{Image, Store};
    ///
    /// let image = Image::builder().build()?;
    /// let mut store = Store::new();
    /// store.add(&image)?;
    /// assert_eq!(store.manifest_digest(image.id()), None);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn manifest_digest(&self, id: ImageId) -> Option<Digest> {
        let pulled = self
            .references_of(id)
            .iter()
            .filter_map(|tag| self.tops.get(tag))
            .find(|top| top.pulled)
            .map(|top| top.desc.digest);
        pulled.or_else(|| self.manifests.get(&id).map(|m| m.digest))
    }

    /// Every image, by id.
    ///
    /// ```
    /// use layercake::{Image, Store};
    ///
    /// let mut store = Store::new();
    /// store.add(&Image::builder().cmd(["a"]).build()?)?;
    /// store.add(&Image::builder().cmd(["b"]).build()?)?;
    /// // What `docker images` lists: every image, with its tags (none here).
    /// let rows: Vec<(String, Vec<String>)> =
    ///     store.images().map(|i| (i.id().to_string(), store.tags_of(i.id()))).collect();
    /// assert_eq!(rows.len(), 2);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn images(&self) -> impl Iterator<Item = &Image> + '_ {
        self.images.values()
    }

    /// Every layer, by DiffId.
    ///
    /// ```
    /// use layercake::{Image, Layer, Store};
    ///
    /// let base = Image::builder().layer(Layer::builder().file("a", "1").build()?).build()?;
    /// let app = Image::builder()
    ///     .base(&base)
    ///     .layer(Layer::builder().file("b", "2").build()?)
    ///     .build()?;
    /// let mut store = Store::new();
    /// store.add(&base)?;
    /// store.add(&app)?;
    /// // Three layers across the images, two stored.
    /// assert_eq!(store.images().map(|i| i.layers().count()).sum::<usize>(), 3);
    /// assert_eq!(store.layers().count(), 2);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn layers(&self) -> impl Iterator<Item = &Layer> + '_ {
        self.layers.values()
    }

    /// Removes an image as `docker rmi` does: by tag, the tag goes, and the image with it
    /// if no other tag points at it; by id, the image goes if at most one tag points at
    /// it. Layers no other image uses are deleted too (on disk: their blobs and cached
    /// tars).
    ///
    /// # Errors
    ///
    /// [`Error::ImageNotFound`], [`Error::AmbiguousReference`] for a short id that matches
    /// several images; [`Error::ImageInUse`] for an id with several tags; [`Error::Io`] if a
    /// store on disk cannot be changed.
    ///
    /// ```
    /// use layercake::{Error, Image, Layer, Store};
    ///
    /// let image = Image::builder().layer(Layer::builder().file("a", "1").build()?).build()?;
    /// let mut store = Store::new();
    /// store.add(&image)?;
    /// store.tag(&image.id().to_string(), "app:1")?;
    /// store.tag(&image.id().to_string(), "app:2")?;
    /// let by_id = store.remove(&image.id().to_string());
    /// assert!(matches!(by_id, Err(Error::ImageInUse { .. })));
    /// store.remove("app:1")?; // only the tag goes
    /// let removal = store.remove("app:2")?; // the last tag: the image and its layer go
    /// assert_eq!(removal.images, [image.id()]);
    /// assert_eq!(store.layers().count(), 0);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn remove(&mut self, reference: &str) -> Result<Removal> {
        self.change(true, |store| store.remove_here(reference))
    }

    fn remove_here(&mut self, reference: &str) -> Result<Removal> {
        let id = self.resolve(reference)?;
        let mut removal = Removal::default();
        let by_tag = tag_key(reference)
            .ok()
            .filter(|t| self.tags.get(t) == Some(&id));
        let tags = self.references_of(id);
        match by_tag {
            Some(tag) => {
                self.tags.remove(&tag);
                removal.untagged.push(tag.familiar().to_string());
            }
            None if tags.len() > 1 => {
                return Err(Error::ImageInUse {
                    id,
                    tags: self.tags_of(id),
                })
            }
            None => {
                for t in tags {
                    self.tags.remove(&t);
                    removal.untagged.push(t.familiar().to_string());
                }
            }
        }
        if self.tags_of(id).is_empty() {
            self.images.remove(&id);
            removal.images.push(id);
        }
        removal.layers = self.collect_garbage();
        Ok(removal)
    }

    /// Deletes images no tag points at (`docker image prune`), then every layer and tree
    /// that no remaining image uses (on disk: every file no image in the index uses,
    /// including what a killed process left).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if a store on disk cannot be changed; none in memory.
    ///
    /// ```
    /// use layercake::{Image, Store};
    ///
    /// let old = Image::builder().cmd(["v1"]).build()?;
    /// let new = Image::builder().cmd(["v2"]).build()?;
    /// let mut store = Store::new();
    /// store.add(&old)?;
    /// store.add(&new)?;
    /// store.tag(&new.id().to_string(), "app")?;
    /// assert_eq!(store.prune()?.images, [old.id()]);
    /// assert_eq!(store.images().count(), 1);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn prune(&mut self) -> Result<Removal> {
        self.change(true, |store| {
            let tagged: BTreeSet<ImageId> = store.tags.values().copied().collect();
            let dangling: Vec<ImageId> = store
                .images
                .keys()
                .filter(|id| !tagged.contains(id))
                .copied()
                .collect();
            for id in &dangling {
                store.images.remove(id);
            }
            Ok(Removal {
                untagged: Vec::new(),
                images: dangling,
                layers: store.collect_garbage(),
            })
        })
    }

    fn collect_garbage(&mut self) -> Vec<DiffId> {
        if self.disk.is_none() && !self.blobs.is_empty() {
            // In memory: the blobs taken in that a tag's top or an image's manifest still
            // names (a tag that goes here still has its top until the change settles).
            let images = &self.images;
            let roots: Vec<Descriptor> = self
                .tops
                .iter()
                .filter(|(tag, top)| match top.image {
                    Some(id) => self.tags.get(*tag) == Some(&id),
                    None => !self.tags.contains_key(*tag),
                })
                .map(|(_, top)| top.desc.clone())
                .chain(
                    self.manifests
                        .iter()
                        .filter(|(id, _)| images.contains_key(id))
                        .map(|(_, m)| m.clone()),
                )
                .collect();
            let used = self.walk(roots).map(|w| w.blobs).unwrap_or_default();
            self.blobs.retain(|digest, _| used.contains_key(digest));
        }
        let used_chains: BTreeSet<ChainId> =
            self.images.values().flat_map(|i| i.chain_ids()).collect();
        self.chains.retain(|id, _| used_chains.contains(id));
        let used_layers: BTreeSet<DiffId> =
            self.chains.values().map(|l| l.layer.diff_id()).collect();
        let gone: Vec<DiffId> = self
            .layers
            .keys()
            .filter(|d| !used_layers.contains(d))
            .copied()
            .collect();
        for d in &gone {
            self.layers.remove(d);
        }
        gone
    }

    /// `docker image inspect` of an image, with its tags, and as `repo_digests`
    /// `name@digest` for each tag that names a manifest or index as it was pulled (none for
    /// an image loaded or built, as after `docker load`). Nothing is read: as with
    /// [`Image::inspect`], `size` is `None` until every layer has been read
    /// ([`Image::read_layers`]).
    ///
    /// # Errors
    ///
    /// As [`Store::image`].
    ///
    /// ```
    /// use layercake::{Image, Store};
    ///
    /// let image = Image::builder().build()?;
    /// let mut store = Store::new();
    /// store.add(&image)?;
    /// store.tag(&image.id().to_string(), "app:1")?;
    /// let inspect = store.inspect("app:1")?;
    /// assert_eq!(inspect.repo_tags, ["app:1"]);
    /// assert_eq!(inspect.id, image.id());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn inspect(&self, reference: &str) -> Result<Inspect> {
        let image = self.image(reference)?;
        let mut inspect = image.inspect();
        inspect.repo_tags = self.tags_of(image.id());
        for tag in self.references_of(image.id()) {
            let Some(top) = self.tops.get(&tag).filter(|top| top.pulled) else {
                continue;
            };
            let pinned = Reference::parse(&format!("{}@{}", tag.name(), top.desc.digest))?;
            let shown = pinned.familiar().to_string();
            if !inspect.repo_digests.contains(&shown) {
                inspect.repo_digests.push(shown);
            }
        }
        Ok(inspect)
    }

    /// Bytes held versus bytes the images would take without sharing (`docker system df`).
    /// On disk: the blobs as stored (manifests included), and the layer cache apart.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if a store on disk cannot be read; none in memory.
    ///
    /// ```
    /// use layercake::{Image, Layer, Store};
    ///
    /// let base = Image::builder()
    ///     .layer(Layer::builder().file("lib", vec![0u8; 4096]).build()?)
    ///     .build()?;
    /// let a = Image::builder().base(&base).cmd(["a"]).build()?;
    /// let b = Image::builder().base(&base).cmd(["b"]).build()?;
    /// let mut store = Store::new();
    /// store.add(&a)?;
    /// store.add(&b)?;
    /// let usage = store.usage()?;
    /// let base_layer = base.layers().next().unwrap().blob().size();
    /// assert_eq!(usage.unshared_bytes - usage.stored_bytes, base_layer, "kept once, not twice");
    /// assert_eq!(usage.shared_bytes, base_layer);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn usage(&self) -> Result<Usage> {
        // Each blob an image uses, with its size: configs, layers, and on disk manifests.
        let mut users: BTreeMap<Digest, (u64, usize)> = BTreeMap::new();
        let mut unshared_bytes = 0;
        for image in self.images.values() {
            // On disk, the blobs the image's manifest and its tags' tops name: a layer
            // shared by DiffId may be stored as two blobs (plain and gzip) named by two
            // manifests; an index names other platforms' images.
            let blobs: BTreeMap<Digest, u64> = match self.blobs_of(image.id())? {
                Some(blobs) => blobs,
                None => {
                    let config = (image.id().digest(), image.config().as_bytes().len() as u64);
                    let layers = image.layers().map(|l| (l.blob().digest(), blob_size(l)));
                    std::iter::once(config).chain(layers).collect()
                }
            };
            for (digest, size) in blobs {
                unshared_bytes += size;
                users.entry(digest).or_insert((size, 0)).1 += 1;
            }
        }
        let stored_bytes = users.values().map(|(size, _)| size).sum();
        let shared_bytes = users
            .values()
            .filter(|(_, n)| *n > 1)
            .map(|(size, _)| size)
            .sum();
        let (cache_bytes, reclaimable_bytes) = match &self.disk {
            Some(disk) => (disk.cache_bytes()?, disk.unreferenced_bytes()?),
            None => (0, 0),
        };
        Ok(Usage {
            images: self.images.len(),
            layers: self.layers.len(),
            stored_bytes,
            unshared_bytes,
            shared_bytes,
            cache_bytes,
            reclaimable_bytes,
        })
    }

    /// Re-hashes everything the store holds and names what is not what it should be. On
    /// disk: every blob against its name, every cached layer tar against its DiffId, and
    /// every file the index needs, present or not. In memory: every layer's tar.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the store's directory cannot be listed. Files that cannot be read
    /// are problems in the result, not errors.
    ///
    /// ```
    /// use layercake::{Image, Layer, Store};
    ///
    /// let image = Image::builder().layer(Layer::builder().file("a", "1").build()?).build()?;
    /// let mut store = Store::new();
    /// store.add(&image)?;
    /// assert!(store.verify()?.is_ok());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn verify(&self) -> Result<Verification> {
        if let Some(disk) = &self.disk {
            return disk.verify();
        }
        let mut verification = Verification::default();
        for layer in self.layers.values() {
            verification.layers += 1;
            let expected = layer.diff_id().digest();
            let actual = layer.tar().and_then(|tar| {
                let mut hash = crate::digest::HashingReader::new(tar.reader());
                std::io::copy(&mut hash, &mut std::io::sink())
                    .map_err(|e| Error::io("reading a layer", e))?;
                Ok(hash.digest())
            });
            let problem = match actual {
                Ok(actual) if actual == expected => None,
                Ok(actual) => Some((Some(actual), "digest mismatch".to_owned())),
                Err(e) => Some((None, e.to_string())),
            };
            if let Some((actual, reason)) = problem {
                verification.problems.push(Corruption::new(
                    format!("layer {}", layer.diff_id()),
                    expected,
                    actual,
                    reason,
                ));
            }
        }
        Ok(verification)
    }
}

impl Store {
    /// The blobs an image's manifest and its tags' tops name, through nested indexes, with
    /// their sizes; `None` for an image in memory that was added, not pulled.
    fn blobs_of(&self, id: ImageId) -> Result<Option<BTreeMap<Digest, u64>>> {
        let tops = self
            .references_of(id)
            .into_iter()
            .filter_map(|tag| self.tops.get(&tag))
            .flat_map(|top| std::iter::once(top.desc.clone()).chain(top.compat.clone()));
        let roots: Vec<Descriptor> = self
            .manifests
            .get(&id)
            .cloned()
            .into_iter()
            .chain(tops)
            .collect();
        if roots.is_empty() {
            return Ok(None);
        }
        Ok(Some(self.walk(roots)?.blobs))
    }

    /// What `roots` name, through manifests and nested indexes, as far as the store has
    /// the blobs.
    fn walk(&self, roots: Vec<Descriptor>) -> Result<tops::Walked> {
        match &self.disk {
            Some(disk) => disk.walk(roots),
            None => tops::walk(
                roots,
                &mut |desc| {
                    Ok(self
                        .blobs
                        .get(&desc.digest)
                        .filter(|c| c.len() <= crate::limits::Limits::default().json_bytes)
                        .and_then(|c| c.to_bytes().ok()))
                },
                tops::Strictness::Lenient,
            ),
        }
    }
}

/// A tag's entries in `index.json`: its top, and the OCI index beside a Docker one.
fn top_entries(tag: &Reference, top: &tops::Top) -> Vec<Descriptor> {
    let mut entries = vec![disk::entry(&top.desc, Some(tag), top.mark())];
    if let Some(compat) = &top.compat {
        entries.push(disk::compat_entry(compat, tag, top.desc.digest));
    }
    entries
}

/// The bytes a layer takes as stored: its blob.
fn blob_size(layer: &Layer) -> u64 {
    layer.blob().size()
}

/// The key of a tag: a Docker reference with a tag (`latest` when none is given), never a
/// digest.
fn tag_key(text: &str) -> Result<Reference> {
    let reference = Reference::parse(text)?;
    if reference.digest().is_some() {
        return Err(Error::InvalidReference {
            reference: text.chars().take(256).collect(),
            reason: "a digest reference cannot be a tag",
        });
    }
    Ok(reference)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_normalise_as_docker_does() {
        let key = |t: &str| tag_key(t).map(|r| r.familiar().to_string());
        assert_eq!(key("busybox").unwrap(), "busybox:latest");
        assert_eq!(
            key("docker.io/library/busybox:1.35").unwrap(),
            "busybox:1.35"
        );
        assert_eq!(
            key("localhost:5000/a/b").unwrap(),
            "localhost:5000/a/b:latest"
        );
        for bad in ["", "Busybox", "a:", "a:-x", "a@sha256:00", "a//b", ":x"] {
            assert!(tag_key(bad).is_err(), "{bad}");
        }
        let digest = format!("a@sha256:{}", "0".repeat(64));
        assert!(matches!(
            tag_key(&digest),
            Err(Error::InvalidReference {
                reason: "a digest reference cannot be a tag",
                ..
            })
        ));
    }
}
