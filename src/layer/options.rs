//! How layers are read ([`ReadOptions`], [`Duplicates`]) and how a diff records what it
//! finds ([`DiffOptions`], [`WhiteoutStyle`]).

use std::path::PathBuf;

use crate::limits::Limits;

/// What to do when one layer tar holds the same path twice (R4).
///
/// ```
/// use layercake::layer::{Duplicates, ReadOptions};
/// use layercake::{Error, Layer};
///
/// let a = Layer::builder().file("f", "1").build()?.tar()?.to_bytes()?;
/// let b = Layer::builder().file("f", "2").build()?.tar()?.to_bytes()?;
/// // One tar naming `f` twice: `a`'s records without its end blocks, then all of `b`.
/// let tar = [&a[..a.len() - 1024], &b[..]].concat();
/// assert_eq!(Duplicates::default(), Duplicates::LastWins);
/// let read = Layer::from_tar(tar.clone())?;
/// assert_eq!(read.changeset()?.entry("f")?.unwrap().contents().unwrap(), "2");
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
    /// Refuse the layer with [`Error::DuplicateEntry`](crate::Error::DuplicateEntry).
    Reject,
}

/// Options for reading a layer: the limits on what it may hold, what to do with a path named
/// twice, and where to keep layers decompressed from compressed blobs.
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
    temp_dir: Option<PathBuf>,
    /// Whether the decompressed tar is synced to disk as it is written (a store's layer
    /// cache, which a commit syncs: most of it is then on disk before the commit asks).
    pub(crate) durable: bool,
}

impl Default for ReadOptions {
    fn default() -> ReadOptions {
        ReadOptions {
            duplicates: Duplicates::LastWins,
            limits: Limits::default(),
            temp_dir: None,
            durable: false,
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
    /// let read = Layer::from_tar_with(layer.tar()?.clone(), &ReadOptions::new())?;
    /// assert_eq!(read, Layer::from_tar(layer.tar()?.clone())?);
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
    /// let err = Layer::from_tar_with(layer.tar()?.clone(), &options).unwrap_err();
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
    /// assert!(declared_size > options.limits_in_force().layer_bytes_in_force());
    /// assert_eq!(options.limits_in_force().entries_in_force(), Limits::default().entries_in_force());
    /// ```
    pub fn limits_in_force(&self) -> &Limits {
        &self.limits
    }

    /// Sets the directory where a layer decompressed from a gzip or zstd blob is kept while
    /// it is in use (default: [`std::env::temp_dir`]). The file there has no name and is
    /// freed when the last value using the layer is dropped, so a crash leaves nothing.
    ///
    /// ```
    /// use layercake::layer::ReadOptions;
    /// use layercake::{Compression, Layer};
    ///
    /// let gz = Layer::builder().file("a", "hi").build()?.compress(Compression::Gzip, 6)?;
    /// let options = ReadOptions::new().temp_dir(std::env::temp_dir());
    /// let layer = Layer::from_blob_with(gz.blob().contents().clone(), &options)?;
    /// assert_eq!(layer.changeset()?.entry("a")?.unwrap().contents().unwrap(), "hi");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn temp_dir(mut self, dir: impl Into<PathBuf>) -> ReadOptions {
        self.temp_dir = Some(dir.into());
        self
    }

    /// The same, the decompressed tar synced as it is written (see `durable`).
    pub(crate) fn durable(mut self) -> ReadOptions {
        self.durable = true;
        self
    }

    /// Where decompressed layers go.
    pub(crate) fn spill_dir(&self) -> PathBuf {
        self.temp_dir.clone().unwrap_or_else(std::env::temp_dir)
    }

    /// Sets the duplicate-path policy.
    ///
    /// ```
    /// use layercake::layer::{Duplicates, ReadOptions};
    /// use layercake::Layer;
    ///
    /// let one = Layer::builder().file("etc/passwd", "root:x:0:0::/root:/bin/sh\n").build()?;
    /// // A smuggling attempt: a second `etc/passwd` that only last-wins readers apply.
    /// let one = one.tar()?.to_bytes()?;
    /// let mut tar = one[..one.len() - 1024].to_vec();
    /// tar.extend_from_slice(&Layer::builder().file("etc/passwd", "evil").build()?.tar()?.to_bytes()?);
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
/// let mut c = Container::new(&base)?;
/// c.remove_dir_all("www")?;
/// c.create_dir("www")?;
/// c.write("www/index.html", "")?;
/// let diff = |style| Layer::diff(&base.tree()?, c.tree(), &DiffOptions::new().whiteouts(style));
/// assert_eq!(diff(WhiteoutStyle::Explicit)?.changeset()?.whiteouts().count(), 2);
/// let opaque = diff(WhiteoutStyle::Opaque)?;
/// assert_eq!(opaque.changeset()?.opaque_dirs().map(|d| d.to_string()).collect::<Vec<_>>(), ["www"]);
/// assert_eq!(opaque.changeset()?.whiteouts().count(), 0);
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

/// Options for [`Layer::diff`](crate::Layer::diff). A commit takes the same choice through
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
    /// assert_eq!(layer.changeset()?.whiteouts().map(|w| w.to_string()).collect::<Vec<_>>(), ["etc/a"]);
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
    /// assert_eq!((layer.changeset()?.opaque_dirs().count(), layer.changeset()?.whiteouts().count()), (1, 0));
    /// assert_eq!(lower.apply(&layer)?, upper);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn whiteouts(mut self, style: WhiteoutStyle) -> DiffOptions {
        self.whiteouts = style;
        self
    }

    /// The whiteout style in force.
    ///
    /// ```
    /// use layercake::layer::{DiffOptions, WhiteoutStyle};
    ///
    /// assert_eq!(DiffOptions::new().whiteouts_in_force(), WhiteoutStyle::Explicit);
    /// let opaque = DiffOptions::new().whiteouts(WhiteoutStyle::Opaque);
    /// assert_eq!(opaque.whiteouts_in_force(), WhiteoutStyle::Opaque);
    /// ```
    pub fn whiteouts_in_force(&self) -> WhiteoutStyle {
        self.whiteouts
    }
}
