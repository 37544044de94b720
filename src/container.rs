//! [`Container`]: a writable filesystem on top of an image, with the operations of
//! `std::fs`, copy-on-write, `docker diff` and `docker commit`.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::commit::Commit;
use crate::config::{now, History};
use crate::contents::Contents;
use crate::diff::Change;
use crate::entry::{Entry, EntryKind, Metadata};
use crate::error::{Error, Result};
use crate::image::Image;
use crate::layer::{DiffOptions, Layer, WhiteoutStyle};
use crate::path::{AsImagePath, ImagePath};
use crate::tree::{Dir, Escape, Follow, Node, NodeKind, ReadDir, Tree};

/// A container: an image plus a working tree you may change, like a container's writable
/// layer, with no mounts and no daemon.
///
/// Paths resolve as they would inside the container (symlinks followed inside the root,
/// R8). Changing a file's metadata or contents never copies the bytes of the lower file:
/// the new node shares them until they are replaced (copy-on-write). As overlayfs without
/// its `index` feature does, changing one path of a hardlinked lower file gives that path its
/// own copy; the other paths keep the old file. The same holds for links made with
/// [`Container::hard_link`] (where a kernel would change the one shared inode). Directories
/// keep their mtime when entries are added or removed below them; new and rewritten entries
/// are stamped with the container's clock ([`Container::set_clock`], default: the time it was
/// created).
///
/// Every fallible method that takes a path can also fail with [`Error::InvalidPath`] for a
/// `..` component or a NUL byte, [`Error::NotFound`] for a missing parent,
/// [`Error::NotADirectory`] for a parent that is not a directory, and
/// [`Error::SymlinkLoop`] after [`MAX_SYMLINK_HOPS`](crate::tree::MAX_SYMLINK_HOPS) symlinks.
///
/// # Example
///
/// ```
/// use layercake::{Commit, CommitOptions, Container, Image, Layer};
///
/// let image = Image::builder()
///     .layer(
///         Layer::builder()
///             .file("etc/hosts", "127.0.0.1 localhost\n")
///             .file("tmp/x", "")
///             .build()?,
///     )
///     .build()?;
/// let mut c = Container::new(&image)?;
/// c.write("etc/hostname", "box\n")?;
/// c.remove_file("tmp/x")?;
/// c.set_permissions("etc/hosts", 0o600)?;
///
/// let changes: Vec<String> = c.diff()?.iter().map(|ch| ch.to_string()).collect();
/// assert_eq!(
///     changes,
///     ["C /etc", "A /etc/hostname", "C /etc/hosts", "C /tmp", "D /tmp/x"]
/// );
///
/// let committed = c.commit(&CommitOptions::new().commit(Commit::new().message("configure")))?;
/// assert_eq!(committed.layers().count(), 2);
/// assert_eq!(committed.tree()?, *c.tree());
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Clone)]
pub struct Container {
    image: Image,
    tree: Tree,
    clock: i64,
}

impl Container {
    /// A container on `image`, its working tree equal to the image's.
    ///
    /// # Errors
    ///
    /// As [`Image::tree`]: the image's layers are read here if they were not yet, so a layer
    /// that cannot be read (missing, corrupt, over a [`Limits`](crate::Limits) limit) is its
    /// error, and [`Error::InvalidHardlink`] if a layer links to a path its lower layers lack,
    /// or to a directory (R7). Image builders and loaders check neither, so this never panics.
    ///
    /// ```
    /// use layercake::{Container, Error, Image, Layer};
    ///
    /// let image = Image::builder()
    ///     .layer(Layer::builder().file("etc/motd", "hi\n").build()?)
    ///     .build()?;
    /// let c = Container::new(&image)?;
    /// assert_eq!(c.read("etc/motd")?, "hi\n");
    /// assert!(c.diff()?.is_empty(), "nothing has changed yet");
    ///
    /// // A layer may link to a file of a lower layer; with nothing below, the link dangles.
    /// let layer = Layer::builder().hard_link("bin/busybox", "bin/sh").build()?;
    /// let image = Image::builder().layer(layer).build()?;
    /// assert!(matches!(Container::new(&image), Err(Error::InvalidHardlink { .. })));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn new(image: &Image) -> Result<Container> {
        Ok(Container {
            image: image.clone(),
            tree: image.tree()?,
            clock: now(),
        })
    }

    /// The image the container runs.
    ///
    /// ```
    /// use layercake::{Container, Image, Layer};
    ///
    /// let image =
    ///     Image::builder().layer(Layer::builder().file("motd", "old").build()?).build()?;
    /// let mut c = Container::new(&image)?;
    /// c.write("motd", "new")?;
    /// // The image is a value: changing the container does not touch it.
    /// assert_eq!(c.image().tree()?.read("motd")?, "old");
    /// assert_eq!(c.image().id(), image.id());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn image(&self) -> &Image {
        &self.image
    }

    /// The working tree, as the container sees it now.
    ///
    /// ```
    /// use layercake::{Container, Image, Tree};
    ///
    /// let mut c = Container::new(&Image::builder().build()?)?;
    /// c.write("draft", "v1")?;
    /// // A snapshot costs one `Arc` clone; the container goes on changing without it.
    /// let snapshot: Tree = c.tree().clone();
    /// c.remove_file("draft")?;
    /// assert_eq!(snapshot.read("draft")?, "v1");
    /// assert!(!c.exists("draft"));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// Sets the mtime (seconds since the epoch) stamped on entries created or rewritten
    /// from now on.
    ///
    /// ```
    /// use layercake::{Commit, CommitOptions, Container, Image};
    ///
    /// // With a fixed clock (and creation time) a commit is reproducible.
    /// let mut c = Container::new(&Image::builder().build()?)?;
    /// c.set_clock(1_700_000_000);
    /// c.write("stamp", "")?;
    /// assert_eq!(c.metadata("stamp")?.metadata().mtime, 1_700_000_000);
    /// let options = CommitOptions::new().commit(Commit::new().created(1_700_000_000));
    /// assert_eq!(c.commit(&options)?.id(), c.commit(&options)?.id());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn set_clock(&mut self, secs: i64) {
        self.clock = secs;
    }

    fn layer(&self) -> u32 {
        self.tree.depth
    }

    fn resolve(&self, path: impl AsImagePath, follow: Follow) -> Result<(ImagePath, Option<Node>)> {
        let path = ImagePath::new(path)?;
        self.tree.resolve_path(&path, follow, Escape::Clamp)
    }

    fn existing(&self, path: impl AsImagePath, follow: Follow) -> Result<(ImagePath, Node)> {
        match self.resolve(path, follow)? {
            (p, Some(node)) => Ok((p, node)),
            (p, None) => Err(Error::NotFound {
                path: crate::error::path_bytes(&p),
            }),
        }
    }

    fn vacant(&self, path: impl AsImagePath) -> Result<ImagePath> {
        match self.resolve(path, Follow::Parents)? {
            (p, None) => Ok(p),
            (p, Some(_)) => Err(Error::AlreadyExists {
                path: crate::error::path_bytes(&p),
            }),
        }
    }

    fn put(&mut self, path: &ImagePath, entry: Entry) {
        let layer = self.layer();
        let node = match entry.kind {
            EntryKind::Directory => Node::dir(layer, Dir::new(entry.metadata)),
            _ => Node::leaf(layer, Arc::new(entry)),
        };
        self.tree.insert(path, node, layer);
    }

    /// Writes a whole file, creating it (0644, root) or replacing its contents (metadata
    /// kept), like `std::fs::write`. Symlinks are followed.
    ///
    /// # Errors
    ///
    /// [`Error::IsADirectory`], [`Error::NotFound`] for a missing parent, and
    /// [`Error::InvalidPath`] for a device or pipe.
    ///
    /// ```
    /// use layercake::{Container, Entry, Error, Image, Layer};
    ///
    /// let layer = Layer::builder()
    ///     .entry("etc/shadow", Entry::file("root:*:").mode(0o600))
    ///     .build()?;
    /// let mut c = Container::new(&Image::builder().layer(layer).build()?)?;
    /// c.write("etc/shadow", "root:!:")?;
    /// assert_eq!(c.read("etc/shadow")?, "root:!:");
    /// assert_eq!(c.metadata("etc/shadow")?.metadata().mode, 0o600, "the mode is kept");
    /// assert!(matches!(c.write("etc", "x"), Err(Error::IsADirectory { .. })));
    /// assert!(matches!(c.write("var/log/x", "x"), Err(Error::NotFound { .. })));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn write(&mut self, path: impl AsImagePath, contents: impl Into<Contents>) -> Result<()> {
        let (path, node) = self.resolve(path, Follow::All)?;
        let metadata = match node {
            None if path.is_root() => unreachable!("the root always exists"),
            None => Metadata::new(0o644),
            Some(n) if n.is_dir() => {
                return Err(Error::IsADirectory {
                    path: crate::error::path_bytes(&path),
                })
            }
            Some(n) if n.contents().is_none() => {
                return Err(Error::InvalidPath {
                    path: crate::error::path_bytes(&path),
                    reason: "not a regular file",
                })
            }
            Some(n) => n.metadata().clone(),
        };
        let entry = Entry::file(contents)
            .with_metadata(metadata)
            .mtime(self.clock);
        self.put(&path, entry);
        Ok(())
    }

    /// Reads a whole file, following symlinks. The bytes are shared, not copied.
    ///
    /// # Errors
    ///
    /// As [`Tree::read`].
    ///
    /// ```
    /// use layercake::{Container, Image, Layer};
    ///
    /// let layer = Layer::builder()
    ///     .file("etc/alpine-release", "3.20\n")
    ///     .symlink("alpine-release", "etc/os")
    ///     .build()?;
    /// let c = Container::new(&Image::builder().layer(layer).build()?)?;
    /// assert_eq!(c.read("etc/os")?, "3.20\n");
    /// assert!(c.read("etc/missing").is_err());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn read(&self, path: impl AsImagePath) -> Result<Bytes> {
        self.tree.read(path)
    }

    /// Creates a directory (0755, root); its parent must exist.
    ///
    /// # Errors
    ///
    /// [`Error::AlreadyExists`], [`Error::NotFound`] for a missing parent.
    ///
    /// ```
    /// use layercake::{Container, Error, Image};
    ///
    /// let mut c = Container::new(&Image::builder().build()?)?;
    /// c.create_dir("srv")?;
    /// assert!(c.metadata("srv")?.is_dir());
    /// assert!(matches!(c.create_dir("srv"), Err(Error::AlreadyExists { .. })));
    /// assert!(matches!(c.create_dir("opt/app"), Err(Error::NotFound { .. })));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn create_dir(&mut self, path: impl AsImagePath) -> Result<()> {
        let path = self.vacant(path)?;
        self.put(&path, Entry::dir().mtime(self.clock));
        Ok(())
    }

    /// Creates a directory and any missing parents; an existing directory is fine.
    ///
    /// # Errors
    ///
    /// [`Error::NotADirectory`] if a component exists and is not a directory (after
    /// following symlinks); [`Error::AlreadyExists`] if a component is a dangling symlink,
    /// as `mkdir -p` and `std::fs::create_dir_all` refuse it.
    ///
    /// ```
    /// use layercake::{Container, Error, Image};
    ///
    /// let mut c = Container::new(&Image::builder().build()?)?;
    /// c.create_dir_all("srv/www/static")?;
    /// c.create_dir_all("srv/www")?; // already there: fine, as `mkdir -p`
    /// assert!(c.metadata("srv/www/static")?.is_dir());
    /// c.write("srv/www/index.html", "")?;
    /// let err = c.create_dir_all("srv/www/index.html/x").unwrap_err();
    /// assert!(matches!(err, Error::NotADirectory { .. }));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn create_dir_all(&mut self, path: impl AsImagePath) -> Result<()> {
        let path = ImagePath::new(path)?;
        let mut done = ImagePath::ROOT;
        for name in path.components() {
            let next = done.join_unchecked(name);
            match self.tree.resolve_path(&next, Follow::All, Escape::Clamp)? {
                (resolved, Some(node)) if node.is_dir() => done = resolved,
                (resolved, Some(_)) => {
                    return Err(Error::NotADirectory {
                        path: crate::error::path_bytes(&resolved),
                    })
                }
                // A dangling symlink: `mkdir` does not create through it.
                (resolved, None) if resolved != next => {
                    return Err(Error::AlreadyExists {
                        path: crate::error::path_bytes(&next),
                    })
                }
                (resolved, None) => {
                    self.put(&resolved, Entry::dir().mtime(self.clock));
                    done = resolved;
                }
            }
        }
        Ok(())
    }

    /// Removes a file, symlink, device or pipe (a symlink itself, not its target).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], [`Error::IsADirectory`].
    ///
    /// ```
    /// use layercake::{Container, Image, Layer};
    ///
    /// let image = Image::builder()
    ///     .layer(Layer::builder().file("tmp/cache", "x").build()?)
    ///     .build()?;
    /// let mut c = Container::new(&image)?;
    /// c.remove_file("tmp/cache")?;
    /// assert!(!c.exists("tmp/cache"));
    /// // A deleted lower file is a `D`, and a whiteout once committed.
    /// let changes: Vec<String> = c.diff()?.iter().map(|ch| ch.to_string()).collect();
    /// assert_eq!(changes, ["C /tmp", "D /tmp/cache"]);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn remove_file(&mut self, path: impl AsImagePath) -> Result<()> {
        let (path, node) = self.existing(path, Follow::Parents)?;
        if node.is_dir() {
            return Err(Error::IsADirectory {
                path: crate::error::path_bytes(&path),
            });
        }
        self.tree.remove(&path);
        Ok(())
    }

    /// Removes an empty directory.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], [`Error::NotADirectory`], [`Error::DirectoryNotEmpty`],
    /// [`Error::RootDirectory`].
    ///
    /// ```
    /// use layercake::{Container, Error, Image, Layer};
    ///
    /// let image = Image::builder()
    ///     .layer(Layer::builder().file("var/log/boot.log", "").build()?)
    ///     .build()?;
    /// let mut c = Container::new(&image)?;
    /// assert!(matches!(c.remove_dir("var/log"), Err(Error::DirectoryNotEmpty { .. })));
    /// c.remove_file("var/log/boot.log")?;
    /// c.remove_dir("var/log")?;
    /// assert!(!c.exists("var/log"));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn remove_dir(&mut self, path: impl AsImagePath) -> Result<()> {
        let (path, node) = self.existing(path, Follow::Parents)?;
        match node.as_dir() {
            None => Err(Error::NotADirectory {
                path: crate::error::path_bytes(&path),
            }),
            Some(d) if !d.children.is_empty() => Err(Error::DirectoryNotEmpty {
                path: crate::error::path_bytes(&path),
            }),
            Some(_) if path.is_root() => Err(Error::RootDirectory {
                reason: "the root cannot be removed",
            }),
            Some(_) => {
                self.tree.remove(&path);
                Ok(())
            }
        }
    }

    /// Removes a directory and everything below it (or a single non-directory).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], [`Error::RootDirectory`].
    ///
    /// ```
    /// use layercake::{Container, Error, Image, Layer};
    ///
    /// let layer = Layer::builder()
    ///     .file("var/cache/apt/a.deb", "")
    ///     .file("var/cache/apt/b.deb", "")
    ///     .build()?;
    /// let mut c = Container::new(&Image::builder().layer(layer).build()?)?;
    /// c.remove_dir_all("var/cache")?;
    /// assert!(!c.exists("var/cache/apt/a.deb"));
    /// assert!(matches!(c.remove_dir_all("/"), Err(Error::RootDirectory { .. })));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn remove_dir_all(&mut self, path: impl AsImagePath) -> Result<()> {
        let (path, _) = self.existing(path, Follow::Parents)?;
        if path.is_root() {
            return Err(Error::RootDirectory {
                reason: "the root cannot be removed",
            });
        }
        self.tree.remove(&path);
        Ok(())
    }

    /// Moves a file or a whole directory, like `rename(2)`: an existing non-directory
    /// target is replaced, an existing empty directory is replaced by a directory, and two
    /// names of one file (hardlinks) are left as they are. Nothing below a moved directory
    /// is copied.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], [`Error::IsADirectory`] (file onto directory),
    /// [`Error::NotADirectory`] (directory onto file), [`Error::DirectoryNotEmpty`],
    /// [`Error::InvalidPath`] (a directory into itself), [`Error::RootDirectory`].
    ///
    /// ```
    /// use layercake::{Container, Error, Image, Layer};
    ///
    /// let image = Image::builder()
    ///     .layer(Layer::builder().file("app/v1/run", "1").build()?)
    ///     .build()?;
    /// let mut c = Container::new(&image)?;
    /// c.rename("app/v1", "app/current")?;
    /// assert_eq!(c.read("app/current/run")?, "1");
    /// assert!(!c.exists("app/v1"));
    /// assert!(matches!(c.rename("app", "app/current/app"), Err(Error::InvalidPath { .. })));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn rename(&mut self, from: impl AsImagePath, to: impl AsImagePath) -> Result<()> {
        let (from, node) = self.existing(from, Follow::Parents)?;
        let (to, target) = self.resolve(to, Follow::Parents)?;
        if from.is_root() || to.is_root() {
            return Err(Error::RootDirectory {
                reason: "the root cannot be renamed",
            });
        }
        // As rename(2): when both names are links to one file, nothing happens.
        if from == to
            || target
                .as_ref()
                .is_some_and(|t| !t.is_dir() && t.same_file(&node))
        {
            return Ok(());
        }
        if node.is_dir() && to.starts_with(&from) {
            return Err(Error::InvalidPath {
                path: crate::error::path_bytes(&to),
                reason: "cannot move a directory into itself",
            });
        }
        match (&target, node.is_dir()) {
            (Some(t), true) if !t.is_dir() => {
                return Err(Error::NotADirectory {
                    path: crate::error::path_bytes(&to),
                })
            }
            (Some(t), true) if t.as_dir().is_some_and(|d| !d.children.is_empty()) => {
                return Err(Error::DirectoryNotEmpty {
                    path: crate::error::path_bytes(&to),
                })
            }
            (Some(t), false) if t.is_dir() => {
                return Err(Error::IsADirectory {
                    path: crate::error::path_bytes(&to),
                })
            }
            _ => {}
        }
        self.tree.remove(&from);
        let layer = self.layer();
        self.tree.insert(&to, relabel(node, layer), layer);
        Ok(())
    }

    /// Creates a symlink at `link` pointing to `original` (stored verbatim), in the argument
    /// order of [`std::os::unix::fs::symlink`] and [`LayerBuilder::symlink`](crate::LayerBuilder::symlink):
    /// what the link points to first, the new path second (as `ln -s ORIGINAL LINK`).
    ///
    /// # Errors
    ///
    /// [`Error::AlreadyExists`], [`Error::NotFound`] for a missing parent.
    ///
    /// ```
    /// use layercake::{Container, Image, Layer};
    ///
    /// let image = Image::builder()
    ///     .layer(Layer::builder().file("usr/bin/python3.12", "ELF").build()?)
    ///     .build()?;
    /// let mut c = Container::new(&image)?;
    /// // A relative target resolves from the link's own directory.
    /// c.symlink("python3.12", "usr/bin/python3")?;
    /// assert_eq!(c.read("usr/bin/python3")?, "ELF");
    /// assert_eq!(c.symlink_metadata("usr/bin/python3")?.link_target().unwrap(), "python3.12");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn symlink(&mut self, original: impl Into<Bytes>, link: impl AsImagePath) -> Result<()> {
        let link = self.vacant(link)?;
        self.put(&link, Entry::symlink(original).mtime(self.clock));
        Ok(())
    }

    /// Makes `link` another name for the file at `original` (which is not followed if it
    /// is a symlink, as `link(2)`), in the argument order of [`std::fs::hard_link`] and
    /// [`LayerBuilder::hard_link`](crate::LayerBuilder::hard_link): both paths then share one file, until one of them is
    /// written or has its metadata changed, which gives that path a file of its own.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], [`Error::AlreadyExists`], [`Error::IsADirectory`] for a
    /// directory `original`.
    ///
    /// ```
    /// use layercake::{Container, Image};
    ///
    /// let mut c = Container::new(&Image::builder().build()?)?;
    /// c.write("busybox", "ELF")?;
    /// c.hard_link("busybox", "sh")?;
    /// assert!(c.metadata("sh")?.same_file(&c.metadata("busybox")?));
    /// assert_eq!(c.read("sh")?, "ELF");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn hard_link(&mut self, original: impl AsImagePath, link: impl AsImagePath) -> Result<()> {
        let (original, node) = self.existing(original, Follow::Parents)?;
        if node.is_dir() {
            return Err(Error::IsADirectory {
                path: crate::error::path_bytes(&original),
            });
        }
        let link = self.vacant(link)?;
        let layer = self.layer();
        self.tree.insert(
            &link,
            Node {
                layer,
                kind: node.kind,
            },
            layer,
        );
        Ok(())
    }

    /// Changes an entry's metadata in place (copy-on-write: contents are shared).
    fn update(
        &mut self,
        path: impl AsImagePath,
        follow: Follow,
        f: impl FnOnce(&mut Metadata),
    ) -> Result<()> {
        let (path, node) = self.existing(path, follow)?;
        let layer = self.layer();
        match node.kind {
            NodeKind::Dir(dir) => {
                let mut dir = Dir::clone(&dir);
                f(&mut dir.metadata);
                let node = Node::dir(layer, dir);
                if path.is_root() {
                    self.tree.root = node;
                } else {
                    self.tree.insert(&path, node, layer);
                }
            }
            NodeKind::Leaf(entry) => {
                let mut entry = Entry::clone(&entry);
                f(&mut entry.metadata);
                self.tree
                    .insert(&path, Node::leaf(layer, Arc::new(entry)), layer);
            }
        }
        Ok(())
    }

    /// Sets the mode bits (`0o7777`), following symlinks, like `chmod`.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`]; [`Error::InvalidMode`] for bits outside `0o7777`.
    ///
    /// ```
    /// use layercake::{Container, Error, Image, Layer};
    ///
    /// let image = Image::builder()
    ///     .layer(Layer::builder().file("usr/bin/tool", "ELF").build()?)
    ///     .build()?;
    /// let mut c = Container::new(&image)?;
    /// c.set_permissions("usr/bin/tool", 0o4755)?;
    /// assert_eq!(c.metadata("usr/bin/tool")?.mode_string(), "-rwsr-xr-x");
    /// assert!(matches!(
    ///     c.set_permissions("usr/bin/tool", 0o100755),
    ///     Err(Error::InvalidMode { mode: 0o100755, .. })
    /// ));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn set_permissions(&mut self, path: impl AsImagePath, mode: u32) -> Result<()> {
        if mode > 0o7777 {
            return Err(Error::InvalidMode {
                path: crate::error::path_bytes(path.image_path_bytes()),
                mode,
            });
        }
        self.update(path, Follow::All, |m| m.mode = mode)
    }

    /// Sets the owner, following symlinks, like `chown`.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`].
    ///
    /// ```
    /// use layercake::{Container, Image};
    ///
    /// let mut c = Container::new(&Image::builder().build()?)?;
    /// c.create_dir_all("home/app")?;
    /// c.set_owner("home/app", 1000, 1000)?;
    /// let m = c.metadata("home/app")?.metadata().clone();
    /// assert_eq!((m.uid, m.gid), (1000, 1000));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn set_owner(&mut self, path: impl AsImagePath, uid: u64, gid: u64) -> Result<()> {
        self.update(path, Follow::All, |m| {
            m.uid = uid;
            m.gid = gid;
        })
    }

    /// Sets the owner of `path` itself: a symlink is not followed (`lchown`), so it is the
    /// link that changes. What COPY and a RUN's `ln -s` give a link.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`].
    ///
    /// ```
    /// use layercake::{Container, Image};
    ///
    /// let mut c = Container::new(&Image::builder().build()?)?;
    /// c.write("target", "")?;
    /// c.symlink("target", "link")?;
    /// c.set_link_owner("link", 1000, 1000)?;
    /// assert_eq!(c.symlink_metadata("link")?.metadata().uid, 1000);
    /// assert_eq!(c.metadata("target")?.metadata().uid, 0, "the target is unchanged");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn set_link_owner(&mut self, path: impl AsImagePath, uid: u64, gid: u64) -> Result<()> {
        self.update(path, Follow::Parents, |m| {
            m.uid = uid;
            m.gid = gid;
        })
    }

    /// Sets the modification time of `path` itself: a symlink is not followed (`lutimes`).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`].
    ///
    /// ```
    /// use layercake::{Container, Image};
    ///
    /// let mut c = Container::new(&Image::builder().build()?)?;
    /// c.symlink("nowhere", "link")?;
    /// c.set_link_mtime("link", 1_700_000_000)?;
    /// assert_eq!(c.symlink_metadata("link")?.metadata().mtime, 1_700_000_000);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn set_link_mtime(&mut self, path: impl AsImagePath, mtime: i64) -> Result<()> {
        self.update(path, Follow::Parents, |m| m.mtime = mtime)
    }

    /// Sets the modification time, following symlinks.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`].
    ///
    /// ```
    /// use layercake::{Container, Image};
    ///
    /// // Pin a generated file's mtime (`touch -d`), e.g. for a reproducible layer.
    /// let mut c = Container::new(&Image::builder().build()?)?;
    /// c.write("build-info", "v1")?;
    /// c.set_mtime("build-info", 0)?;
    /// assert_eq!(c.metadata("build-info")?.metadata().mtime, 0);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn set_mtime(&mut self, path: impl AsImagePath, mtime: i64) -> Result<()> {
        self.update(path, Follow::All, |m| m.mtime = mtime)
    }

    /// Sets an extended attribute, following symlinks.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`].
    ///
    /// ```
    /// use layercake::{Container, Image};
    ///
    /// let mut c = Container::new(&Image::builder().build()?)?;
    /// c.write("ping", "ELF")?;
    /// c.set_xattr("ping", "user.origin", "build")?;
    /// let node = c.metadata("ping")?;
    /// assert_eq!(node.metadata().xattrs.get(&b"user.origin"[..]).unwrap(), "build");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn set_xattr(
        &mut self,
        path: impl AsImagePath,
        name: impl Into<Bytes>,
        value: impl Into<Bytes>,
    ) -> Result<()> {
        let (name, value) = (name.into(), value.into());
        self.update(path, Follow::All, |m| {
            m.xattrs.insert(name, value);
        })
    }

    /// Removes an extended attribute, following symlinks; a missing one is fine.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] for a missing path.
    ///
    /// ```
    /// use layercake::{Container, Entry, Image, Layer};
    ///
    /// let layer = Layer::builder()
    ///     .entry("ping", Entry::file("ELF").xattr("user.origin", "build"))
    ///     .build()?;
    /// let mut c = Container::new(&Image::builder().layer(layer).build()?)?;
    /// c.remove_xattr("ping", "user.origin")?;
    /// c.remove_xattr("ping", "user.never-set")?; // a missing attribute is fine
    /// assert!(c.metadata("ping")?.metadata().xattrs.is_empty());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn remove_xattr(&mut self, path: impl AsImagePath, name: impl AsRef<[u8]>) -> Result<()> {
        self.update(path, Follow::All, |m| {
            m.xattrs.remove(name.as_ref());
        })
    }

    /// The node at `path`, following symlinks, like `std::fs::metadata`.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], [`Error::SymlinkLoop`].
    ///
    /// ```
    /// use layercake::{Container, FileType, Image, Layer};
    ///
    /// let layer = Layer::builder()
    ///     .file("lib/libc.so.6", "ELF")
    ///     .symlink("libc.so.6", "lib/libc.so")
    ///     .build()?;
    /// let c = Container::new(&Image::builder().layer(layer).build()?)?;
    /// let node = c.metadata("lib/libc.so")?;
    /// assert_eq!(node.file_type(), FileType::File, "the link is followed");
    /// assert_eq!(node.size(), 3);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn metadata(&self, path: impl AsImagePath) -> Result<Node> {
        Ok(self.existing(path, Follow::All)?.1)
    }

    /// The node at `path` without following a final symlink, like
    /// `std::fs::symlink_metadata`.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`].
    ///
    /// ```
    /// use layercake::{Container, FileType, Image, Layer};
    ///
    /// let layer =
    ///     Layer::builder().symlink("/usr/share/zoneinfo/UTC", "etc/localtime").build()?;
    /// let c = Container::new(&Image::builder().layer(layer).build()?)?;
    /// // The link itself, even though its target does not exist.
    /// let node = c.symlink_metadata("etc/localtime")?;
    /// assert_eq!(node.file_type(), FileType::Symlink);
    /// assert!(c.metadata("etc/localtime").is_err());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn symlink_metadata(&self, path: impl AsImagePath) -> Result<Node> {
        Ok(self.existing(path, Follow::Parents)?.1)
    }

    /// Whether something exists at `path` (following symlinks). Any error, an invalid path
    /// or a symlink loop included, is `false`, as with [`std::path::Path::exists`].
    ///
    /// ```
    /// use layercake::{Container, Image, Layer};
    ///
    /// let layer =
    ///     Layer::builder().file("etc/passwd", "").symlink("nowhere", "dangling").build()?;
    /// let c = Container::new(&Image::builder().layer(layer).build()?)?;
    /// assert!(c.exists("/etc/passwd"));
    /// assert!(!c.exists("dangling"), "a dangling symlink does not exist, as `Path::exists`");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn exists(&self, path: impl AsImagePath) -> bool {
        self.metadata(path).is_ok()
    }

    /// Lists a directory, following symlinks.
    ///
    /// # Errors
    ///
    /// As [`Tree::read_dir`].
    ///
    /// ```
    /// use layercake::{Container, Image, Layer};
    ///
    /// let image = Image::builder()
    ///     .layer(Layer::builder().file("etc/hosts", "").build()?)
    ///     .build()?;
    /// let mut c = Container::new(&image)?;
    /// c.write("etc/hostname", "box\n")?;
    /// let names: Vec<_> = c.read_dir("etc")?.map(|(name, _)| name).collect();
    /// assert_eq!(names, ["hostname", "hosts"]);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn read_dir(&self, path: impl AsImagePath) -> Result<ReadDir> {
        self.tree.read_dir(path)
    }

    /// The changes since the image, as `docker diff` lists them.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if telling two files apart means reading bytes on disk that cannot be
    /// read (see [`Tree::diff`]).
    ///
    /// ```
    /// use layercake::{ChangeKind, Container, Image, Layer};
    ///
    /// let image = Image::builder()
    ///     .layer(Layer::builder().file("etc/motd", "hi").build()?)
    ///     .build()?;
    /// let mut c = Container::new(&image)?;
    /// c.remove_file("etc/motd")?;
    /// c.write("etc/issue", "cake")?;
    /// let deleted: Vec<String> = c
    ///     .diff()?
    ///     .iter()
    ///     .filter(|ch| ch.kind == ChangeKind::Deleted)
    ///     .map(|ch| ch.path.to_string())
    ///     .collect();
    /// assert_eq!(deleted, ["etc/motd"]);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn diff(&self) -> Result<Vec<Change>> {
        self.image.tree()?.diff(&self.tree)
    }

    /// Commits the changes as one new layer on top of the image, like `docker commit`, and
    /// returns the new image. The container itself is unchanged.
    ///
    /// # Errors
    ///
    /// As [`Layer::diff`].
    ///
    /// ```
    /// use layercake::{Commit, CommitOptions, Container, Image, Layer};
    ///
    /// let base = Image::builder()
    ///     .layer(Layer::builder().file("etc/motd", "hi").build()?)
    ///     .build()?;
    /// let mut c = Container::new(&base)?;
    /// c.remove_file("etc/motd")?;
    /// let image = c.commit(&CommitOptions::new().commit(Commit::new().message("no motd")))?;
    /// // The new layer holds only the change: a whiteout on top of the base's layer.
    /// let top = image.layers().last().unwrap();
    /// assert_eq!(top.changeset()?.whiteouts().map(|w| w.to_string()).collect::<Vec<_>>(), ["etc/motd"]);
    /// assert_eq!(image.chain_ids()[0], base.chain_ids()[0]);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn commit(&self, options: &CommitOptions) -> Result<Image> {
        let lower = self.image.tree()?;
        let diff = DiffOptions::new().whiteouts(options.whiteouts);
        let layer = Layer::diff(&lower, &self.tree, &diff)?;
        let mut history = History::new(options.created_by.clone().unwrap_or_default());
        history.comment = options.commit.message.clone();
        let commit = Commit::new().created(now()).merged(options.commit.clone());
        crate::Image::builder()
            .base(&self.image)
            .layer_with(layer, history)
            .commit(commit)
            .own_author()
            .build()
    }
}

/// A copy of `node` and every directory below it, labelled as supplied by `layer`. Files are
/// not copied: their `Arc`s are shared.
fn relabel(node: Node, layer: u32) -> Node {
    let NodeKind::Dir(dir) = &node.kind else {
        return Node { layer, ..node };
    };
    let mut copy = Tree {
        root: Node::dir(layer, Dir::new(dir.metadata.clone())),
        depth: layer,
    };
    for (path, child) in crate::tree::walk_dir(dir) {
        let child = match &child.kind {
            NodeKind::Dir(d) => Node::dir(layer, Dir::new(d.metadata.clone())),
            NodeKind::Leaf(e) => Node::leaf(layer, e.clone()),
        };
        copy.insert(&path, child, layer);
    }
    copy.root
}

impl fmt::Debug for Container {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Container")
            .field("image", &self.image.id())
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

/// Options for [`Container::commit`], like the flags of `docker commit`: the commit's
/// metadata (a [`Commit`]), the history entry's `created_by`, and how recreated directories
/// are recorded.
///
/// ```
/// use layercake::config::ContainerConfig;
/// use layercake::{Commit, CommitOptions, Container, Image};
///
/// let mut config = ContainerConfig::default();
/// config.cmd = Some(vec!["/bin/sh".into()]);
/// let commit = Commit::new()
///     .author("Jane <jane@example.com>")
///     .message("add the app")
///     .created(1_700_000_000)
///     .config(config);
/// let options = CommitOptions::new().commit(commit);
/// let image = Container::new(&Image::builder().build()?)?.commit(&options)?;
/// assert_eq!(image.inspect().author, "Jane <jane@example.com>");
/// assert_eq!(image.config().container_config().cmd, Some(vec!["/bin/sh".to_string()]));
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    commit: Commit,
    created_by: Option<String>,
    whiteouts: WhiteoutStyle,
}

impl CommitOptions {
    /// The defaults: no author or message (as `docker commit`, the new image's `author`
    /// and `comment` are the commit's, not the base's: empty here), created now, the
    /// image's config, explicit whiteouts.
    ///
    /// ```
    /// use layercake::{Commit, CommitOptions, Container, Image};
    ///
    /// let base = Image::builder()
    ///     .cmd(["/bin/sh"])
    ///     .commit(Commit::new().author("Jane").message("base"))
    ///     .build()?;
    /// let image = Container::new(&base)?.commit(&CommitOptions::new())?;
    /// assert_eq!(image.config().container_config().cmd, Some(vec!["/bin/sh".to_string()]));
    /// assert_eq!((image.inspect().author.as_str(), image.inspect().comment.as_str()), ("", ""));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn new() -> CommitOptions {
        CommitOptions::default()
    }

    /// Sets the commit metadata (`docker commit --author --message --change`); a creation
    /// time left unset is now. Fields the [`Commit`] leaves unset keep what an earlier call
    /// set.
    ///
    /// ```
    /// use layercake::{Commit, CommitOptions, Container, Image};
    ///
    /// let c = Container::new(&Image::builder().build()?)?;
    /// let commit = Commit::new().author("Jane <jane@example.com>").message("install nginx");
    /// let image = c.commit(&CommitOptions::new().commit(commit))?;
    /// assert_eq!(image.inspect().author, "Jane <jane@example.com>");
    /// assert_eq!(image.inspect().comment, "install nginx");
    /// assert_eq!(image.history()[0].comment, "install nginx");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn commit(mut self, commit: Commit) -> CommitOptions {
        self.commit = std::mem::take(&mut self.commit).merged(commit);
        self
    }

    /// The commit metadata in force.
    ///
    /// ```
    /// use layercake::{Commit, CommitOptions};
    ///
    /// let options = CommitOptions::new().commit(Commit::new().message("fix"));
    /// assert_eq!(options.commit_in_force().message_in_force(), Some("fix"));
    /// ```
    pub fn commit_in_force(&self) -> &Commit {
        &self.commit
    }

    /// Sets the history entry's `created_by`.
    ///
    /// ```
    /// use layercake::{CommitOptions, Container, Image};
    ///
    /// let c = Container::new(&Image::builder().build()?)?;
    /// let image = c.commit(&CommitOptions::new().created_by("/bin/sh -c apk add nginx"))?;
    /// assert_eq!(image.history()[0].created_by, "/bin/sh -c apk add nginx");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn created_by(mut self, created_by: impl Into<String>) -> CommitOptions {
        self.created_by = Some(created_by.into());
        self
    }

    /// The history entry's `created_by` in force, if set.
    ///
    /// ```
    /// use layercake::CommitOptions;
    ///
    /// assert_eq!(CommitOptions::new().created_by("RUN make").created_by_in_force(), Some("RUN make"));
    /// ```
    pub fn created_by_in_force(&self) -> Option<&str> {
        self.created_by.as_deref()
    }

    /// Sets how recreated directories are recorded.
    ///
    /// ```
    /// use layercake::layer::WhiteoutStyle;
    /// use layercake::{CommitOptions, Container, Image, Layer};
    ///
    /// let base = Image::builder()
    ///     .layer(Layer::builder().file("www/a", "").file("www/b", "").build()?)
    ///     .build()?;
    /// let mut c = Container::new(&base)?;
    /// c.remove_dir_all("www")?;
    /// c.create_dir("www")?;
    /// c.write("www/index.html", "")?;
    /// let image = c.commit(&CommitOptions::new().whiteouts(WhiteoutStyle::Opaque))?;
    /// let top = image.layers().last().unwrap();
    /// assert_eq!((top.changeset()?.opaque_dirs().count(), top.changeset()?.whiteouts().count()), (1, 0));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn whiteouts(mut self, style: WhiteoutStyle) -> CommitOptions {
        self.whiteouts = style;
        self
    }

    /// The whiteout style in force.
    ///
    /// ```
    /// use layercake::layer::WhiteoutStyle;
    /// use layercake::CommitOptions;
    ///
    /// assert_eq!(CommitOptions::new().whiteouts_in_force(), WhiteoutStyle::Explicit);
    /// ```
    pub fn whiteouts_in_force(&self) -> WhiteoutStyle {
        self.whiteouts
    }
}
