//! [`LayerBuilder`]: a layer made in code.

use std::sync::Arc;

use bytes::Bytes;

use crate::changes::Changeset;
use crate::contents::Contents;
use crate::entry::{Entry, EntryKind, Metadata};
use crate::error::{Error, Result};
use crate::layer::Layer;
use crate::path::{AsImagePath, ImagePath};

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
///     .symlink("usr/bin", "bin")
///     .hard_link("usr/bin/tool", "usr/bin/tool2")
///     .char_device("dev/null", 1, 3)
///     .fifo("run/pipe")
///     .opaque("var/cache")
///     .whiteout("etc/motd")
///     .build()?;
/// assert_eq!(layer.changeset()?.opaque_dirs().next().unwrap().to_string(), "var/cache");
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct LayerBuilder {
    changes: Changeset,
    error: Option<Error>,
}

impl LayerBuilder {
    fn path(&mut self, path: impl AsImagePath) -> Option<ImagePath> {
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
    /// assert_eq!(tree.lookup("tmp")?.unwrap().mode_string(), "drwxrwxrwt");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn entry(mut self, path: impl AsImagePath, entry: Entry) -> LayerBuilder {
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
    /// let m = a.changeset()?.entry("etc/motd")?.unwrap().metadata();
    /// assert_eq!((m.mode, m.uid, m.gid, m.mtime), (0o644, 0, 0, 0));
    /// // No clock and no user involved: the same calls give the same layer anywhere.
    /// assert_eq!(Layer::builder().file("etc/motd", "hi\n").build()?.diff_id(), a.diff_id());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn file(self, path: impl AsImagePath, contents: impl Into<Contents>) -> LayerBuilder {
        self.entry(path, Entry::file(contents))
    }

    /// Adds a directory (0755, root, mtime 0).
    ///
    /// ```
    /// use layercake::Layer;
    ///
    /// let implied = Layer::builder().file("app/run", "").build()?;
    /// assert!(implied.changeset()?.entry("app")?.is_none(), "not written: readers imply it");
    /// // A base layer meant for Docker writes its directories (see above).
    /// let written = Layer::builder().dir("app").file("app/run", "").build()?;
    /// assert_eq!(written.changeset()?.entry("app")?.unwrap().metadata().mode, 0o755);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn dir(self, path: impl AsImagePath) -> LayerBuilder {
        self.entry(path, Entry::dir())
    }

    /// Adds a symlink at `link` pointing to `original`, stored verbatim: the argument order
    /// of [`std::os::unix::fs::symlink`] and [`Container::symlink`](crate::Container::symlink),
    /// what the link points to first, the new path second (as `ln -s ORIGINAL LINK`).
    ///
    /// ```
    /// use layercake::{Layer, Tree};
    ///
    /// // The usrmerge layout: `bin` points to `/usr/bin`, an absolute target resolved inside
    /// // the image.
    /// let layer = Layer::builder().file("usr/bin/env", "ELF").symlink("/usr/bin", "bin").build()?;
    /// assert_eq!(layer.changeset()?.entry("bin")?.unwrap().link_target().unwrap(), "/usr/bin");
    /// let tree = Tree::new().apply(&layer)?;
    /// assert_eq!(tree.read("bin/env")?, "ELF");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn symlink(self, original: impl Into<Bytes>, link: impl AsImagePath) -> LayerBuilder {
        self.entry(link, Entry::symlink(original))
    }

    /// Makes `link` another name for the file at `original`, a path of this layer or a lower
    /// one (R7): the argument order of [`std::fs::hard_link`] and
    /// [`Container::hard_link`](crate::Container::hard_link) (as `ln ORIGINAL LINK`). When
    /// `original` is in this layer, the record is written with its metadata, as tar writers do
    /// (Docker applies a link record's owner, mode and mtime to the shared file).
    ///
    /// ```
    /// use layercake::{Entry, Layer, Tree};
    ///
    /// let layer = Layer::builder()
    ///     .entry("bin/busybox", Entry::file("ELF").mode(0o755))
    ///     .hard_link("bin/busybox", "bin/sh")
    ///     .build()?;
    /// assert_eq!(layer.changeset()?.entry("bin/sh")?.unwrap().metadata().mode, 0o755);
    /// // One file, two names: the bytes are stored once in the tar.
    /// let tree = Tree::new().apply(&layer)?;
    /// assert!(tree.lookup("bin/sh")?.unwrap().same_file(&tree.lookup("bin/busybox")?.unwrap()));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn hard_link(mut self, original: impl AsImagePath, link: impl AsImagePath) -> LayerBuilder {
        match self.path(original) {
            Some(original) => self.entry(link, Entry::hardlink(original)),
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
    /// let null = layer.changeset()?.entry("dev/null")?.unwrap();
    /// assert_eq!((null.file_type(), null.metadata().mode), (FileType::CharDevice, 0o666));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn char_device(self, path: impl AsImagePath, major: u32, minor: u32) -> LayerBuilder {
        self.entry(path, Entry::char_device(major, minor))
    }

    /// Adds a block device (0660, root, mtime 0).
    ///
    /// ```
    /// use layercake::{EntryKind, Layer};
    ///
    /// let layer = Layer::builder().block_device("dev/sda", 8, 0).build()?;
    /// let sda = layer.changeset()?.entry("dev/sda")?.unwrap();
    /// assert_eq!(sda.kind(), &EntryKind::BlockDevice { major: 8, minor: 0 });
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn block_device(self, path: impl AsImagePath, major: u32, minor: u32) -> LayerBuilder {
        self.entry(path, Entry::block_device(major, minor))
    }

    /// Adds a named pipe (0644, root, mtime 0).
    ///
    /// ```
    /// use layercake::{Layer, Tree};
    ///
    /// let tree = Tree::new().apply(&Layer::builder().fifo("run/initctl").build()?)?;
    /// assert_eq!(tree.lookup("run/initctl")?.unwrap().mode_string(), "prw-r--r--");
    /// // A pipe has no contents to read.
    /// assert!(tree.read("run/initctl").is_err());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn fifo(self, path: impl AsImagePath) -> LayerBuilder {
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
    /// assert!(upper.lookup("etc/motd")?.is_none());
    /// assert!(upper.lookup("etc/hosts")?.is_some());
    /// assert!(matches!(Layer::builder().whiteout("/").build(), Err(Error::RootDirectory { .. })));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn whiteout(mut self, path: impl AsImagePath) -> LayerBuilder {
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
    pub fn opaque(mut self, path: impl AsImagePath) -> LayerBuilder {
        if let Some(p) = self.path(path) {
            self.changes.opaques.insert(p);
        }
        self
    }

    /// Writes the canonical tar and reads it back as the layer.
    ///
    /// # Errors
    ///
    /// The first error of the builder's calls ([`Error::InvalidPath`](crate::Error::InvalidPath) for a path with a `..`
    /// component or a NUL byte, [`Error::RootDirectory`](crate::Error::RootDirectory) for a whiteout of the root), then
    /// [`Error::RootDirectory`](crate::Error::RootDirectory) for a root entry that is not a directory,
    /// [`Error::ParentNotDirectory`](crate::Error::ParentNotDirectory) for an entry below a non-directory entry,
    /// [`Error::InvalidPath`](crate::Error::InvalidPath) for a name a layer tar cannot carry (a regular file named
    /// `.wh.*`, which would read back as a whiteout; a whiteout of a `.wh.*` name; an AUFS
    /// meta name `.wh..wh.*` at the root), and [`Error::LimitExceeded`](crate::Error::LimitExceeded) if the tar passes
    /// the default [`Limits`](crate::Limits) (e.g. a name over 255 bytes) when read back.
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
        Layer::from_changeset(self.changes)
    }
}
