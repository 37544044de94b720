//! [`Image`]: an ordered stack of layers plus a config, its merged tree (cached per ChainId
//! prefix), and what `docker image inspect` and `docker history` show of it.

use std::fmt;
use std::sync::{Arc, OnceLock};

use crate::changes::Changeset;
use crate::commit::Commit;
use crate::config::{ConfigFile, ContainerConfig, History, ImageConfig, RootFs, Timestamp};
use crate::diff::Change;
use crate::digest::{ChainId, DiffId, ImageId};
use crate::error::{Error, Result};
pub use crate::inspect::{Inspect, InspectRootFs};
use crate::layer::{DiffOptions, Layer};
use crate::tree::Tree;

/// One layer in a stack, with the ChainId of the stack up to it and the merged tree of that
/// stack, built once on first use. Images with a common prefix share these links, and with
/// them the trees: the ChainId names the prefix exactly.
pub(crate) struct ChainLink {
    pub(crate) layer: Layer,
    pub(crate) chain_id: ChainId,
    tree: OnceLock<Tree>,
}

impl ChainLink {
    pub(crate) fn new(layer: Layer, below: Option<&ChainLink>) -> ChainLink {
        let chain_id = match below {
            Some(b) => b.chain_id.then(layer.diff_id()),
            None => ChainId::root(layer.diff_id()),
        };
        ChainLink {
            layer,
            chain_id,
            tree: OnceLock::new(),
        }
    }
}

impl fmt::Debug for ChainLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChainLink")
            .field("chain_id", &self.chain_id)
            .field("diff_id", &self.layer.diff_id())
            .finish()
    }
}

/// Builds the chain for `layers` on top of `base`.
fn extend_chain(base: &[Arc<ChainLink>], layers: Vec<Layer>) -> Vec<Arc<ChainLink>> {
    let mut chain = base.to_vec();
    for layer in layers {
        let link = ChainLink::new(layer, chain.last().map(|l| &**l));
        chain.push(Arc::new(link));
    }
    chain
}

/// The merged tree of `chain`, applying only the layers above the highest cached tree.
pub(crate) fn chain_tree(chain: &[Arc<ChainLink>]) -> Result<Tree> {
    let Some(top) = chain.last() else {
        return Ok(Tree::new());
    };
    if let Some(tree) = top.tree.get() {
        return Ok(tree.clone());
    }
    let start = chain.iter().rposition(|l| l.tree.get().is_some());
    let mut tree = start.map_or_else(Tree::new, |i| chain[i].tree.get().expect("cached").clone());
    let todo = &chain[start.map_or(0, |i| i + 1)..];
    // Layers not read yet are read side by side first, then applied in order.
    read_unread(todo.iter().map(|l| &l.layer))?;
    for link in todo {
        tree = tree.apply(&link.layer)?;
        // Another thread may have built the same tree meanwhile; either copy will do.
        let _ = link.tree.set(tree.clone());
    }
    Ok(tree)
}

/// Reads the layers not read yet, several at once (each one decompresses on a thread of its
/// own as it is parsed).
fn read_unread<'a>(layers: impl Iterator<Item = &'a Layer>) -> Result<()> {
    let unread: Vec<&Layer> = layers.filter(|l| !l.is_read()).collect();
    parallel_map(&unread, |layer| layer.changeset().map(drop)).map(drop)
}

/// Maps `f` over `items` on up to as many threads as the machine has cores, keeping order;
/// the first error (in item order) wins.
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

struct ImageInner {
    config: ImageConfig,
    chain: Vec<Arc<ChainLink>>,
}

/// An image: layers, bottom first, and a config whose bytes name it.
///
/// Immutable, `Send + Sync`, cheap to clone. Its filesystem, [`Image::tree`], is built on
/// first use and shared, prefix by prefix, with the images built on it
/// ([`ImageBuilder::base`]) and with those a [`Store`](crate::Store) holds with the same
/// layers below; two images built separately from the same layers each build their own.
///
/// # Example
///
/// ```
/// use layercake::config::History;
/// use layercake::{Image, Layer};
///
/// let base = Image::builder()
///     .layer(Layer::builder().file("etc/os-release", "ID=demo\n").build()?)
///     .build()?;
/// let app = Image::builder()
///     .base(&base)
///     .layer_with(
///         Layer::builder().file("app/run", "#!/bin/sh\n").build()?,
///         History::new("COPY run /app/"),
///     )
///     .cmd(["/app/run"])
///     .build()?;
/// assert_eq!(app.layers().count(), 2);
/// assert_eq!(app.chain_ids()[0], base.chain_ids()[0]);
/// assert_eq!(app.tree()?.read("etc/os-release")?, "ID=demo\n");
/// assert_eq!(app.inspect().root_fs.layers.len(), 2);
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Clone)]
pub struct Image(Arc<ImageInner>);

impl Image {
    /// Starts building an image in code.
    ///
    /// ```
    /// use layercake::{Image, Layer};
    ///
    /// let image = Image::builder()
    ///     .layer(Layer::builder().file("bin/app", "ELF").build()?)
    ///     .cmd(["/bin/app"])
    ///     .build()?;
    /// assert_eq!(image.layers().count(), 1);
    /// assert_eq!(image.tree()?.read("bin/app")?, "ELF");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn builder() -> ImageBuilder {
        ImageBuilder::default()
    }

    /// An image from config bytes (kept exactly) and its layers, as a loader makes it.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] if the config does not parse or lists a different number
    /// of layers; [`Error::DigestMismatch`] if a layer's DiffId differs from the config's.
    ///
    /// ```
    /// use layercake::{Image, Layer};
    ///
    /// let built = Image::builder().layer(Layer::builder().file("a", "1").build()?).build()?;
    /// let layers: Vec<Layer> = built.layers().cloned().collect();
    /// let loaded = Image::from_parts(built.config().as_bytes().clone(), layers)?;
    /// assert_eq!(loaded.id(), built.id());
    ///
    /// let wrong = vec![Layer::builder().file("a", "2").build()?];
    /// assert!(Image::from_parts(built.config().as_bytes().clone(), wrong).is_err());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn from_parts(config: impl Into<bytes::Bytes>, layers: Vec<Layer>) -> Result<Image> {
        Image::from_config(ImageConfig::from_bytes(config)?, layers)
    }

    /// An image from a parsed config and its layers, checked against each other.
    pub(crate) fn from_config(config: ImageConfig, layers: Vec<Layer>) -> Result<Image> {
        verify_layers(&config, &layers)?;
        Ok(Image::from_chain(config, extend_chain(&[], layers)))
    }

    pub(crate) fn from_chain(config: ImageConfig, chain: Vec<Arc<ChainLink>>) -> Image {
        Image(Arc::new(ImageInner { config, chain }))
    }

    pub(crate) fn chain(&self) -> &[Arc<ChainLink>] {
        &self.0.chain
    }

    /// The ImageId: SHA-256 of the config bytes.
    ///
    /// ```
    /// use layercake::Image;
    ///
    /// // The id names the config bytes: the same calls give the same id, any change another.
    /// let a = Image::builder().cmd(["sh"]).build()?;
    /// let b = Image::builder().cmd(["sh"]).build()?;
    /// let c = Image::builder().cmd(["bash"]).build()?;
    /// assert_eq!(a.id(), b.id());
    /// assert_ne!(a.id(), c.id());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn id(&self) -> ImageId {
        self.0.config.id()
    }

    /// The config, bytes and typed view.
    ///
    /// ```
    /// use layercake::Image;
    ///
    /// let image = Image::builder().env("PATH=/bin").build()?;
    /// assert_eq!(image.config().container_config().env, ["PATH=/bin"]);
    /// assert_eq!(image.config().id(), image.id(), "the id is the config's");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn config(&self) -> &ImageConfig {
        &self.0.config
    }

    /// The layers, bottom first.
    ///
    /// ```
    /// use layercake::{Image, Layer};
    ///
    /// let image = Image::builder()
    ///     .layer(Layer::builder().file("a", "12345").build()?)
    ///     .layer(Layer::builder().file("b", "123").build()?)
    ///     .build()?;
    /// let sizes: Vec<u64> = image
    ///     .layers()
    ///     .map(|l| Ok(l.changeset()?.content_size()))
    ///     .collect::<layercake::Result<_>>()?;
    /// assert_eq!(sizes, [5, 3]);
    /// let top = image.layers().last().unwrap();
    /// assert_eq!(top.changeset()?.content_size(), 3, "the top layer is last");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn layers(&self) -> impl ExactSizeIterator<Item = &Layer> + DoubleEndedIterator + '_ {
        self.0.chain.iter().map(|l| &l.layer)
    }

    /// The DiffIds, bottom first (the config's `rootfs.diff_ids`).
    ///
    /// ```
    /// use layercake::{Image, Layer};
    ///
    /// let layer = Layer::builder().file("a", "1").build()?;
    /// let image = Image::builder().layer(layer.clone()).build()?;
    /// assert_eq!(image.diff_ids(), [layer.diff_id()]);
    /// assert_eq!(image.config().file().rootfs.diff_ids, image.diff_ids());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn diff_ids(&self) -> Vec<DiffId> {
        self.layers().map(Layer::diff_id).collect()
    }

    /// The ChainId of every prefix of the stack, bottom first.
    ///
    /// ```
    /// use layercake::{ChainId, Image, Layer};
    ///
    /// let base = Layer::builder().file("etc/os-release", "ID=demo\n").build()?;
    /// let a = Image::builder()
    ///     .layer(base.clone())
    ///     .layer(Layer::builder().file("a", "").build()?)
    ///     .build()?;
    /// let b = Image::builder()
    ///     .layer(base)
    ///     .layer(Layer::builder().file("b", "").build()?)
    ///     .build()?;
    /// // Equal ChainIds: the same stack below, so the same merged tree.
    /// assert_eq!(a.chain_ids()[0], b.chain_ids()[0]);
    /// assert_ne!(a.chain_ids()[1], b.chain_ids()[1]);
    /// assert_eq!(a.chain_ids()[1], ChainId::of(&a.diff_ids()).unwrap());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn chain_ids(&self) -> Vec<ChainId> {
        self.0.chain.iter().map(|l| l.chain_id).collect()
    }

    /// Reads every layer not read yet, several at once (each decompressing on a thread of
    /// its own while it is parsed): what [`Image::tree`] does first, for a program that
    /// wants every layer's changeset without the merged tree.
    ///
    /// # Errors
    ///
    /// The first error of [`Layer::changeset`], in layer order.
    ///
    /// ```
    /// use layercake::{Image, Layer};
    ///
    /// let image = Image::builder().layer(Layer::builder().file("a", "1").build()?).build()?;
    /// image.read_layers()?;
    /// assert!(image.layers().all(Layer::is_read));
    /// assert_eq!(image.inspect().size, Some(1), "known once every layer is read");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn read_layers(&self) -> Result<()> {
        read_unread(self.layers())
    }

    /// The merged filesystem of all layers.
    ///
    /// # Errors
    ///
    /// The errors of [`Layer::changeset`] for a layer not read yet (layers of an image file
    /// are read here), and [`Error::InvalidHardlink`] if a layer links to a path its lower
    /// layers lack, or to a directory (R7).
    ///
    /// ```
    /// use layercake::{Image, Layer};
    ///
    /// let image = Image::builder()
    ///     .layer(Layer::builder().file("etc/motd", "v1").file("etc/issue", "").build()?)
    ///     .layer(Layer::builder().file("etc/motd", "v2").build()?)
    ///     .build()?;
    /// let tree = image.tree()?;
    /// assert_eq!(tree.read("etc/motd")?, "v2");
    /// assert_eq!(tree.lookup("etc/motd")?.unwrap().layer(), Some(1));
    /// assert_eq!(tree.lookup("etc/issue")?.unwrap().layer(), Some(0));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn tree(&self) -> Result<Tree> {
        chain_tree(&self.0.chain)
    }

    /// The changes from this image's filesystem to `other`'s, as `docker diff` lists them.
    ///
    /// # Errors
    ///
    /// As [`Image::tree`].
    ///
    /// ```
    /// use layercake::{Image, Layer};
    ///
    /// let v1 = Image::builder()
    ///     .layer(Layer::builder().file("a", "1").file("b", "1").build()?)
    ///     .build()?;
    /// let v2 = Image::builder()
    ///     .base(&v1)
    ///     .layer(Layer::builder().whiteout("a").file("b", "2").file("c", "").build()?)
    ///     .build()?;
    /// let lines: Vec<String> = v1.diff(&v2)?.iter().map(|c| c.to_string()).collect();
    /// assert_eq!(lines, ["D /a", "C /b", "A /c"]);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn diff(&self, other: &Image) -> Result<Vec<Change>> {
        self.tree()?.diff(&other.tree()?)
    }

    /// A new image whose layers `from..` are squashed into one; the filesystem is
    /// unchanged, and the history keeps one entry for the new layer, with the `commit`'s
    /// message, author and time (default: the image's own time), as a commit would write it.
    ///
    /// # Errors
    ///
    /// [`Error::LayerOutOfRange`] if `from` is not below the number of layers (no layer to squash); otherwise as
    /// [`Image::tree`] and [`Layer::diff`].
    ///
    /// ```
    /// use layercake::{Commit, Error, Image, Layer};
    ///
    /// let image = Image::builder()
    ///     .layer(Layer::builder().file("a", "1").build()?)
    ///     .layer(Layer::builder().file("b", "2").build()?)
    ///     .layer(Layer::builder().whiteout("a").build()?)
    ///     .build()?;
    /// let squashed = image.squash(1, &Commit::new().message("one layer for b"))?;
    /// assert_eq!(squashed.layers().count(), 2);
    /// assert_eq!(squashed.tree()?, image.tree()?);
    /// // `history()` is newest first, as `docker history` shows it.
    /// assert_eq!(squashed.history()[0].comment, "one layer for b");
    /// // Past the last layer is an error, not a panic.
    /// let err = image.squash(4, &Commit::new()).unwrap_err();
    /// assert!(matches!(err, Error::LayerOutOfRange { index: 4, layers: 3 }));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn squash(&self, from: usize, commit: &Commit) -> Result<Image> {
        let chain = self.chain();
        if from >= chain.len() {
            return Err(Error::LayerOutOfRange {
                index: from,
                layers: chain.len(),
            });
        }
        let lower = chain_tree(&chain[..from])?;
        let layer = Layer::diff(&lower, &self.tree()?, &DiffOptions::default())?;
        let file = self.config().file();
        let base_history: Vec<History> = {
            let mut non_empty = 0;
            file.history
                .iter()
                .take_while(|h| {
                    if !h.empty_layer {
                        non_empty += 1;
                    }
                    non_empty <= from
                })
                .cloned()
                .collect()
        };
        let mut file = file.clone();
        file.history = base_history;
        let created = commit.apply(&mut file, None);
        let mut row = History::new(format!(
            "layercake squash: layers {}\u{2013}{n} of {n}",
            from + 1,
            n = chain.len()
        ));
        row.created = created.and_then(|c| Timestamp::parse(&c).ok());
        row.author = commit.author.clone();
        row.comment = commit.message.clone();
        file.history.push(row);
        file.rootfs.diff_ids.truncate(from);
        file.rootfs.diff_ids.push(layer.diff_id());
        let config = ImageConfig::from_file(file)?;
        Ok(Image::from_chain(
            config,
            extend_chain(&chain[..from], vec![layer]),
        ))
    }

    /// This image moved from `old_base` onto `new_base`, as `crane rebase` does: the layers
    /// of `old_base` at the bottom of this image are replaced by those of `new_base`, and
    /// the history rows of the old base by the new base's. The layers above, and this
    /// image's runtime config, are kept as they are; nothing is read or rebuilt.
    ///
    /// Useful when a base image is patched: the application layers need not be built again.
    /// Whether they still work on the new base is for the caller to know.
    ///
    /// # Errors
    ///
    /// [`Error::DigestMismatch`] if a bottom layer of this image is not the old base's
    /// layer at that place (compared by DiffId), and [`Error::LayerOutOfRange`] if this
    /// image has fewer layers than the old base: either way it is not built on it.
    ///
    /// ```
    /// use layercake::config::History;
    /// use layercake::{Error, Image, Layer};
    ///
    /// let base = |version: &str| -> layercake::Result<Image> {
    ///     Image::builder()
    ///         .layer_with(
    ///             Layer::builder().file("etc/os-release", format!("VERSION={version}\n")).build()?,
    ///             History::new(format!("ADD rootfs-{version}.tar /")),
    ///         )
    ///         .build()
    /// };
    /// let (v1, v2) = (base("1")?, base("2")?);
    /// let app = Image::builder()
    ///     .base(&v1)
    ///     .layer_with(Layer::builder().file("app/run", "#!/bin/sh\n").build()?, History::new("COPY run /app/"))
    ///     .cmd(["/app/run"])
    ///     .build()?;
    ///
    /// let moved = app.rebase(&v1, &v2)?;
    /// assert_eq!(moved.diff_ids(), [v2.diff_ids()[0], app.diff_ids()[1]]);
    /// assert_eq!(moved.tree()?.read("etc/os-release")?, "VERSION=2\n");
    /// assert_eq!(moved.config().container_config().cmd, app.config().container_config().cmd);
    /// let rows: Vec<String> = moved.history().into_iter().map(|r| r.created_by).collect();
    /// assert_eq!(rows, ["COPY run /app/", "ADD rootfs-2.tar /"], "newest first");
    ///
    /// // An image not built on the old base is refused.
    /// let err = app.rebase(&v2, &v1).unwrap_err();
    /// assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn rebase(&self, old_base: &Image, new_base: &Image) -> Result<Image> {
        let file = rebase_config(
            self.config().file(),
            old_base.config().file(),
            new_base.config().file(),
        )?;
        let above: Vec<Layer> = self
            .layers()
            .skip(old_base.layers().len())
            .cloned()
            .collect();
        let config = ImageConfig::from_file(file)?;
        Ok(Image::from_chain(
            config,
            extend_chain(new_base.chain(), above),
        ))
    }

    /// What `docker image inspect` shows (with no tags: the [`Store`](crate::Store) adds
    /// those). Nothing is read: `size` is known only once every layer has been read (its
    /// tree built, say), and is `None` before.
    ///
    /// ```
    /// use layercake::{Commit, Image, Layer};
    ///
    /// let image = Image::builder()
    ///     .commit(Commit::new().author("Jane").message("first build"))
    ///     .layer(Layer::builder().file("a", "12345").build()?)
    ///     .build()?;
    /// let inspect = image.inspect();
    /// assert_eq!(
    ///     (inspect.author.as_str(), inspect.comment.as_str()),
    ///     ("Jane", "first build")
    /// );
    /// assert_eq!(inspect.size, Some(5), "a layer built in code is read from the start");
    /// assert!(inspect.repo_tags.is_empty());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn inspect(&self) -> Inspect {
        let mut inspect = Inspect::from_config(self.config());
        inspect.size = self.layers().map(content_size_if_read).sum();
        inspect
    }

    /// What `docker history` shows: one row per history entry, newest first, each non-empty
    /// step with the size of its layer if the layer has been read (nothing is read here).
    ///
    /// ```
    /// use layercake::config::History;
    /// use layercake::{Image, Layer};
    ///
    /// let image = Image::builder()
    ///     .layer_with(Layer::builder().file("a", "123").build()?, History::new("COPY a /"))
    ///     .empty_step(History::new("CMD [\"sh\"]"))
    ///     .build()?;
    /// let rows = image.history();
    /// assert_eq!(rows[0].created_by, "CMD [\"sh\"]", "newest first");
    /// assert_eq!(rows[0].id, Some(image.id()));
    /// assert_eq!((rows[1].created_by.as_str(), rows[1].size), ("COPY a /", Some(3)));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn history(&self) -> Vec<HistoryRow> {
        let mut layers = self.layers();
        let mut rows: Vec<HistoryRow> = self
            .config()
            .file()
            .history
            .iter()
            .map(|h| HistoryRow {
                id: None,
                created: h
                    .created
                    .as_ref()
                    .map(Timestamp::to_string)
                    .unwrap_or_default(),
                created_by: h.created_by.clone().unwrap_or_default(),
                comment: h.comment.clone().unwrap_or_default(),
                size: if h.empty_layer {
                    Some(0)
                } else {
                    layers.next().and_then(content_size_if_read)
                },
                empty_layer: h.empty_layer,
            })
            .collect();
        rows.reverse();
        if let Some(top) = rows.first_mut() {
            top.id = Some(self.id());
        }
        rows
    }
}

/// The config of an image (`image`) moved from one base (`old`) onto another (`new`): the
/// old base's DiffIds at the bottom replaced by the new base's, and its history rows by the
/// new base's; the rest of `image` kept. One rule for [`Image::rebase`] and for a rebase
/// done in a registry.
///
/// The old base's rows are the first rows of `image` when they are exactly the old base's
/// history (as a build on it writes them); otherwise the rows up to the one of the old
/// base's top layer.
pub(crate) fn rebase_config(
    image: &ConfigFile,
    old: &ConfigFile,
    new: &ConfigFile,
) -> Result<ConfigFile> {
    let (mine, below) = (&image.rootfs.diff_ids, &old.rootfs.diff_ids);
    if below.len() > mine.len() {
        return Err(Error::LayerOutOfRange {
            index: below.len() - 1,
            layers: mine.len(),
        });
    }
    for (i, (have, want)) in mine.iter().zip(below).enumerate() {
        if have != want {
            return Err(Error::DigestMismatch {
                what: format!("rebase: layer {i} of the image is not layer {i} of the old base"),
                expected: want.digest(),
                actual: have.digest(),
            });
        }
    }
    let rows = if image.history.starts_with(&old.history) {
        old.history.len()
    } else if below.is_empty() {
        0
    } else {
        let mut layers = 0;
        image
            .history
            .iter()
            .position(|h| {
                layers += usize::from(!h.empty_layer);
                layers == below.len()
            })
            .map_or(0, |i| i + 1)
    };
    let mut file = image.clone();
    file.rootfs.diff_ids = new.rootfs.diff_ids.clone();
    file.rootfs.diff_ids.extend_from_slice(&mine[below.len()..]);
    file.history = new.history.clone();
    file.history.extend_from_slice(&image.history[rows..]);
    Ok(file)
}

/// A layer's content size if it has been read (no I/O).
fn content_size_if_read(layer: &Layer) -> Option<u64> {
    layer
        .is_read()
        .then(|| layer.changeset().ok().map(Changeset::content_size))
        .flatten()
}

fn verify_layers(config: &ImageConfig, layers: &[Layer]) -> Result<()> {
    let listed = &config.file().rootfs.diff_ids;
    if listed.len() != layers.len() {
        return Err(Error::config(format!(
            "rootfs lists {} layers, {} given",
            listed.len(),
            layers.len()
        )));
    }
    for (i, (want, layer)) in listed.iter().zip(layers).enumerate() {
        if *want != layer.diff_id() {
            return Err(Error::DigestMismatch {
                what: format!("layer {i}"),
                expected: want.digest(),
                actual: layer.diff_id().digest(),
            });
        }
    }
    Ok(())
}

impl PartialEq for Image {
    /// Images are equal when their ids are (their config bytes, which list the layers).
    fn eq(&self, other: &Image) -> bool {
        self.id() == other.id()
    }
}

impl Eq for Image {}

impl fmt::Debug for Image {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Image")
            .field("id", &self.id())
            .field("layers", &self.diff_ids())
            .finish()
    }
}

/// One row of `docker history`.
///
/// ```
/// use layercake::config::History;
/// use layercake::{Image, Layer};
///
/// let base = Image::builder()
///     .layer_with(
///         Layer::builder().file("bin/sh", "ELF").build()?,
///         History::new("ADD rootfs /"),
///     )
///     .build()?;
/// let app =
///     Image::builder().base(&base).empty_step(History::new("CMD [\"sh\"]")).build()?;
/// let rows = app.history();
/// // Only the top row names an image; `docker history` shows `<missing>` below it.
/// let ids: Vec<bool> = rows.iter().map(|r| r.id.is_some()).collect();
/// assert_eq!(ids, [true, false]);
/// assert!(rows[0].empty_layer);
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HistoryRow {
    /// The image id on the top row; `None` (Docker's `<missing>`) below.
    pub id: Option<ImageId>,
    /// When the step ran.
    pub created: String,
    /// The step's command.
    pub created_by: String,
    /// The step's comment.
    pub comment: String,
    /// The size of the step's layer (file contents), 0 for an empty step; `None` for a layer
    /// not read yet.
    pub size: Option<u64>,
    /// Whether the step made no layer.
    pub empty_layer: bool,
}

/// Builds an [`Image`] in code: layers, history, runtime config.
///
/// Defaults: `linux`/`amd64`, created at the Unix epoch (so the same calls give the same
/// ImageId; give [`ImageBuilder::commit`] a [`Commit::created`] for a real time), no author.
///
/// ```
/// use layercake::config::History;
/// use layercake::{Image, Layer};
///
/// let build = || {
///     Image::builder()
///         .layer_with(
///             Layer::builder().file("app/run", "#!/bin/sh\n").build()?,
///             History::new("COPY run /app/"),
///         )
///         .env("PATH=/usr/bin:/bin")
///         .cmd(["/app/run"])
///         .build()
/// };
/// // No clock is read: the same calls give the same image, on any machine.
/// assert_eq!(build()?.id(), build()?.id());
/// assert_eq!(build()?.inspect().created, "1970-01-01T00:00:00Z");
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct ImageBuilder {
    base: Option<Image>,
    layers: Vec<Layer>,
    history: Vec<History>,
    config: Option<ContainerConfig>,
    commit: Commit,
    architecture: Option<String>,
    os: Option<String>,
    /// The base's author and comment are not carried over (`docker commit`: the new image's
    /// are the commit's, empty if it gives none).
    own_author: bool,
}

impl ImageBuilder {
    /// The new image's author and comment are the commit's alone, not the base's.
    pub(crate) fn own_author(mut self) -> ImageBuilder {
        self.own_author = true;
        self
    }

    /// Starts from another image: its layers (shared, with their cached trees), history and
    /// config.
    ///
    /// ```
    /// use layercake::{Image, Layer};
    ///
    /// let base = Image::builder()
    ///     .layer(Layer::builder().file("bin/sh", "ELF").build()?)
    ///     .env("PATH=/bin")
    ///     .build()?;
    /// let app = Image::builder()
    ///     .base(&base)
    ///     .layer(Layer::builder().file("app", "").build()?)
    ///     .build()?;
    /// assert_eq!(app.layers().count(), 2);
    /// assert_eq!(
    ///     app.config().container_config().env,
    ///     ["PATH=/bin"],
    ///     "the base's config is kept"
    /// );
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn base(mut self, image: &Image) -> ImageBuilder {
        self.base = Some(image.clone());
        self
    }

    /// Adds a layer on top, with an empty history entry.
    ///
    /// ```
    /// use layercake::{Image, Layer};
    ///
    /// let image = Image::builder()
    ///     .layer(Layer::builder().file("a", "").build()?)
    ///     .layer(Layer::builder().file("b", "").build()?)
    ///     .build()?;
    /// assert_eq!(image.history().len(), 2, "one history entry per layer");
    /// assert_eq!(image.tree()?.len(), 2);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn layer(self, layer: Layer) -> ImageBuilder {
        self.layer_with(layer, History::default())
    }

    /// Adds a layer on top, with its history entry.
    ///
    /// ```
    /// use layercake::config::History;
    /// use layercake::{Image, Layer};
    ///
    /// let layer = Layer::builder().file("usr/bin/curl", "ELF").build()?;
    /// let image = Image::builder()
    ///     .layer_with(layer, History::new("RUN apk add curl").comment("tools"))
    ///     .build()?;
    /// let row = &image.history()[0];
    /// assert_eq!(
    ///     (row.created_by.as_str(), row.comment.as_str()),
    ///     ("RUN apk add curl", "tools")
    /// );
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn layer_with(mut self, layer: Layer, history: History) -> ImageBuilder {
        self.layers.push(layer);
        self.history.push(History {
            empty_layer: false,
            ..history
        });
        self
    }

    /// Adds a history step that made no layer (`ENV`, `CMD`, ...).
    ///
    /// ```
    /// use layercake::config::History;
    /// use layercake::{Image, Layer};
    ///
    /// let image = Image::builder()
    ///     .layer(Layer::builder().file("bin/sh", "ELF").build()?)
    ///     .empty_step(History::new("/bin/sh -c #(nop) CMD [\"sh\"]"))
    ///     .cmd(["sh"])
    ///     .build()?;
    /// assert_eq!((image.history().len(), image.layers().count()), (2, 1));
    /// assert!(image.history()[0].empty_layer);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn empty_step(mut self, history: History) -> ImageBuilder {
        self.history.push(History {
            empty_layer: true,
            ..history
        });
        self
    }

    /// Replaces the runtime config.
    ///
    /// ```
    /// use layercake::config::ContainerConfig;
    /// use layercake::Image;
    ///
    /// let base = Image::builder().cmd(["sh"]).build()?;
    /// let mut config = ContainerConfig::default();
    /// config.user = Some("nobody".into());
    /// let image = Image::builder().base(&base).config(config).build()?;
    /// assert_eq!(image.config().container_config().user.as_deref(), Some("nobody"));
    /// assert_eq!(image.config().container_config().cmd, None, "replaced, not merged");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn config(mut self, config: ContainerConfig) -> ImageBuilder {
        self.config = Some(config);
        self
    }

    /// Sets the default command.
    ///
    /// ```
    /// use layercake::Image;
    ///
    /// let image = Image::builder().cmd(["nginx", "-g", "daemon off;"]).build()?;
    /// let cmd = image.config().container_config().cmd.clone().unwrap();
    /// assert_eq!(cmd, ["nginx", "-g", "daemon off;"]);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn cmd<S: Into<String>>(mut self, cmd: impl IntoIterator<Item = S>) -> ImageBuilder {
        self.config_mut().cmd = Some(cmd.into_iter().map(Into::into).collect());
        self
    }

    /// Adds an environment variable, `KEY=value`.
    ///
    /// ```
    /// use layercake::Image;
    ///
    /// let base = Image::builder().env("PATH=/bin").build()?;
    /// let app = Image::builder().base(&base).env("LANG=C.UTF-8").build()?;
    /// assert_eq!(app.config().container_config().env, ["PATH=/bin", "LANG=C.UTF-8"]);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn env(mut self, var: impl Into<String>) -> ImageBuilder {
        self.config_mut().env.push(var.into());
        self
    }

    /// Sets a label.
    ///
    /// ```
    /// use layercake::Image;
    ///
    /// let key = "org.opencontainers.image.source";
    /// let image = Image::builder().label(key, "https://example.com/app").build()?;
    /// assert_eq!(image.inspect().config.labels[key], "https://example.com/app");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> ImageBuilder {
        self.config_mut().labels.insert(key.into(), value.into());
        self
    }

    fn config_mut(&mut self) -> &mut ContainerConfig {
        let base = self
            .base
            .as_ref()
            .map(|b| b.config().container_config().clone());
        self.config.get_or_insert_with(|| base.unwrap_or_default())
    }

    /// Sets the commit metadata: author, message, creation time (default: the epoch itself,
    /// also on a base, so the same calls give the same image), and a runtime config, which
    /// replaces the one set so far as [`ImageBuilder::config`] would. Fields the [`Commit`]
    /// leaves unset keep what an earlier call set; an author, message or config no call
    /// sets is the base's. History entries without an author or time of
    /// their own get the commit's.
    ///
    /// ```
    /// use layercake::{Commit, Image, Layer};
    ///
    /// let image = Image::builder()
    ///     .commit(Commit::new().author("Jane").message("nightly build").created(1_700_000_000))
    ///     .layer(Layer::builder().build()?)
    ///     .build()?;
    /// assert_eq!(image.inspect().author, "Jane");
    /// assert_eq!(image.config().file().comment.as_deref(), Some("nightly build"));
    /// assert_eq!(image.inspect().created, "2023-11-14T22:13:20Z");
    /// assert_eq!(image.config().file().history[0].author.as_deref(), Some("Jane"));
    /// assert_eq!(image.history()[0].created, "2023-11-14T22:13:20Z");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn commit(mut self, mut commit: Commit) -> ImageBuilder {
        if let Some(config) = commit.config.take() {
            self.config = Some(config);
        }
        self.commit = std::mem::take(&mut self.commit).merged(commit);
        self
    }

    /// Sets the architecture (default `amd64`, or the base's).
    ///
    /// ```
    /// use layercake::Image;
    ///
    /// let arm = Image::builder().architecture("arm64").build()?;
    /// assert_eq!(arm.inspect().architecture, "arm64");
    /// let app = Image::builder().base(&arm).cmd(["sh"]).build()?;
    /// assert_eq!(app.inspect().architecture, "arm64", "inherited from the base");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn architecture(mut self, arch: impl Into<String>) -> ImageBuilder {
        self.architecture = Some(arch.into());
        self
    }

    /// Sets the operating system (default `linux`, or the base's).
    ///
    /// ```
    /// use layercake::Image;
    ///
    /// let image = Image::builder().os("windows").build()?;
    /// assert_eq!(image.inspect().os, "windows");
    /// assert_eq!(Image::builder().build()?.inspect().os, "linux");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn os(mut self, os: impl Into<String>) -> ImageBuilder {
        self.os = Some(os.into());
        self
    }

    /// Writes the config and makes the image.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] only if the config cannot be serialised, which does not
    /// happen for these types.
    ///
    /// ```
    /// use layercake::{Image, Layer};
    ///
    /// let image = Image::builder().layer(Layer::builder().file("a", "1").build()?).build()?;
    /// // The config lists the layers' DiffIds: its bytes and the layers load the same image.
    /// let layers: Vec<Layer> = image.layers().cloned().collect();
    /// assert_eq!(Image::from_parts(image.config().as_bytes().clone(), layers)?, image);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn build(self) -> Result<Image> {
        let base_chain = self.base.as_ref().map_or(&[][..], |b| b.chain());
        let mut file = match &self.base {
            Some(b) => b.config().file().clone(),
            None => ConfigFile {
                architecture: "amd64".into(),
                os: "linux".into(),
                rootfs: RootFs {
                    kind: "layers".into(),
                    diff_ids: Vec::new(),
                },
                ..ConfigFile::default()
            },
        };
        if self.own_author {
            file.author = None;
            file.comment = None;
        }
        let created = self.commit.apply(&mut file, Some(0)).unwrap_or_default();
        if let Some(a) = self.architecture {
            file.architecture = a;
        }
        if let Some(os) = self.os {
            file.os = os;
        }
        if let Some(config) = self.config {
            file.config = config;
        }
        for mut h in self.history {
            if h.created.is_none() {
                h.created = Timestamp::parse(&created).ok();
            }
            if h.author.is_none() {
                h.author = self.commit.author_in_force().map(str::to_owned);
            }
            file.history.push(h);
        }
        file.rootfs
            .diff_ids
            .extend(self.layers.iter().map(Layer::diff_id));
        let config = ImageConfig::from_file(file)?;
        Ok(Image::from_chain(
            config,
            extend_chain(base_chain, self.layers),
        ))
    }
}
