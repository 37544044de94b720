//! [`Container`]: a writable filesystem on top of an image, with the operations of
//! `std::fs`, copy-on-write, `docker diff` and `docker commit`.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::config::{now, ContainerConfig, History};
use crate::diff::Change;
use crate::entry::{Entry, EntryKind, Metadata};
use crate::error::{Error, Result};
use crate::image::Image;
use crate::layer::{DiffOptions, Layer, WhiteoutStyle};
use crate::path::ImagePath;
use crate::tree::{Dir, Escape, Follow, Node, NodeKind, ReadDir, Tree};

/// A container: an image plus a working tree you may change, like a container's writable
/// layer, with no mounts and no daemon.
///
/// Paths resolve as they would inside the container (symlinks followed inside the root,
/// R8). Changing a file's metadata or contents never copies the bytes of the lower file:
/// the new node shares them until they are replaced (copy-on-write). As overlayfs without
/// its `index` feature does, changing one path of a hardlinked lower file gives that path its
/// own copy; the other paths keep the old file. Directories keep their mtime when entries
/// are added or removed below them; new and rewritten entries are stamped with the
/// container's clock ([`Container::set_clock`], default: the time it was created).
///
/// # Example
///
/// ```
/// use layercake::{CommitOptions, Container, Image, Layer};
///
/// let image = Image::builder()
///     .layer(Layer::builder().file("etc/hosts", "127.0.0.1 localhost\n").file("tmp/x", "").build()?)
///     .build()?;
/// let mut c = Container::new(&image);
/// c.write("etc/hostname", "box\n")?;
/// c.remove_file("tmp/x")?;
/// c.set_permissions("etc/hosts", 0o600)?;
///
/// let changes: Vec<String> = c.diff().iter().map(|ch| ch.to_string()).collect();
/// assert_eq!(changes, ["C /etc", "A /etc/hostname", "C /etc/hosts", "C /tmp", "D /tmp/x"]);
///
/// let committed = c.commit(&CommitOptions::new().message("configure"))?;
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
    /// # Panics
    ///
    /// Never for images from this crate's loaders and builders; use
    /// [`Container::try_new`] for an image whose layers might not apply.
    pub fn new(image: &Image) -> Container {
        Container::try_new(image).expect("the image's layers apply")
    }

    /// A container on `image`.
    ///
    /// # Errors
    ///
    /// As [`Image::tree`].
    pub fn try_new(image: &Image) -> Result<Container> {
        Ok(Container {
            image: image.clone(),
            tree: image.tree()?,
            clock: now(),
        })
    }

    /// The image the container runs.
    pub fn image(&self) -> &Image {
        &self.image
    }

    /// The working tree, as the container sees it now.
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// Sets the mtime (seconds since the epoch) stamped on entries created or rewritten
    /// from now on.
    pub fn set_clock(&mut self, secs: i64) {
        self.clock = secs;
    }

    fn layer(&self) -> u32 {
        self.tree.depth
    }

    fn resolve(&self, path: impl AsRef<[u8]>, follow: Follow) -> Result<(ImagePath, Option<Node>)> {
        let path = ImagePath::new(path)?;
        self.tree.resolve_path(&path, follow, Escape::Clamp)
    }

    fn existing(&self, path: impl AsRef<[u8]>, follow: Follow) -> Result<(ImagePath, Node)> {
        match self.resolve(path, follow)? {
            (p, Some(node)) => Ok((p, node)),
            (p, None) => Err(Error::NotFound {
                path: p.to_string(),
            }),
        }
    }

    fn vacant(&self, path: impl AsRef<[u8]>) -> Result<ImagePath> {
        match self.resolve(path, Follow::Parents)? {
            (p, None) => Ok(p),
            (p, Some(_)) => Err(Error::AlreadyExists {
                path: p.to_string(),
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
    pub fn write(&mut self, path: impl AsRef<[u8]>, contents: impl Into<Bytes>) -> Result<()> {
        let (path, node) = self.resolve(path, Follow::All)?;
        let metadata = match node {
            None if path.is_root() => unreachable!("the root always exists"),
            None => Metadata::new(0o644),
            Some(n) if n.is_dir() => {
                return Err(Error::IsADirectory {
                    path: path.to_string(),
                })
            }
            Some(n) if n.contents().is_none() => {
                return Err(Error::InvalidPath {
                    path: path.to_string(),
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
    pub fn read(&self, path: impl AsRef<[u8]>) -> Result<Bytes> {
        self.tree.read(path)
    }

    /// Creates a directory (0755, root); its parent must exist.
    ///
    /// # Errors
    ///
    /// [`Error::AlreadyExists`], [`Error::NotFound`] for a missing parent.
    pub fn create_dir(&mut self, path: impl AsRef<[u8]>) -> Result<()> {
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
    pub fn create_dir_all(&mut self, path: impl AsRef<[u8]>) -> Result<()> {
        let path = ImagePath::new(path)?;
        let mut done = ImagePath::ROOT;
        for name in path.components() {
            let next = done.join_unchecked(name);
            match self.tree.resolve_path(&next, Follow::All, Escape::Clamp)? {
                (resolved, Some(node)) if node.is_dir() => done = resolved,
                (resolved, Some(_)) => {
                    return Err(Error::NotADirectory {
                        path: resolved.to_string(),
                    })
                }
                // A dangling symlink: `mkdir` does not create through it.
                (resolved, None) if resolved != next => {
                    return Err(Error::AlreadyExists {
                        path: next.to_string(),
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
    pub fn remove_file(&mut self, path: impl AsRef<[u8]>) -> Result<()> {
        let (path, node) = self.existing(path, Follow::Parents)?;
        if node.is_dir() {
            return Err(Error::IsADirectory {
                path: path.to_string(),
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
    pub fn remove_dir(&mut self, path: impl AsRef<[u8]>) -> Result<()> {
        let (path, node) = self.existing(path, Follow::Parents)?;
        match node.as_dir() {
            None => Err(Error::NotADirectory {
                path: path.to_string(),
            }),
            Some(d) if !d.children.is_empty() => Err(Error::DirectoryNotEmpty {
                path: path.to_string(),
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
    pub fn remove_dir_all(&mut self, path: impl AsRef<[u8]>) -> Result<()> {
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
    pub fn rename(&mut self, from: impl AsRef<[u8]>, to: impl AsRef<[u8]>) -> Result<()> {
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
                path: to.to_string(),
                reason: "cannot move a directory into itself",
            });
        }
        match (&target, node.is_dir()) {
            (Some(t), true) if !t.is_dir() => {
                return Err(Error::NotADirectory {
                    path: to.to_string(),
                })
            }
            (Some(t), true) if t.as_dir().is_some_and(|d| !d.children.is_empty()) => {
                return Err(Error::DirectoryNotEmpty {
                    path: to.to_string(),
                })
            }
            (Some(t), false) if t.is_dir() => {
                return Err(Error::IsADirectory {
                    path: to.to_string(),
                })
            }
            _ => {}
        }
        self.tree.remove(&from);
        let layer = self.layer();
        self.tree.insert(&to, relabel(node, layer), layer);
        Ok(())
    }

    /// Creates a symlink at `link` pointing to `target` (stored verbatim), like
    /// `std::os::unix::fs::symlink(target, link)`.
    ///
    /// # Errors
    ///
    /// [`Error::AlreadyExists`], [`Error::NotFound`] for a missing parent.
    pub fn symlink(&mut self, target: impl Into<Bytes>, link: impl AsRef<[u8]>) -> Result<()> {
        let link = self.vacant(link)?;
        self.put(&link, Entry::symlink(target).mtime(self.clock));
        Ok(())
    }

    /// Makes `link` another name for the file at `original` (which is not followed if it
    /// is a symlink, as `link(2)`): both paths then share one file.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], [`Error::AlreadyExists`], [`Error::IsADirectory`] for a
    /// directory `original`.
    pub fn hard_link(&mut self, original: impl AsRef<[u8]>, link: impl AsRef<[u8]>) -> Result<()> {
        let (original, node) = self.existing(original, Follow::Parents)?;
        if node.is_dir() {
            return Err(Error::IsADirectory {
                path: original.to_string(),
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
        path: impl AsRef<[u8]>,
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
    /// [`Error::NotFound`]; [`Error::InvalidPath`] for bits outside `0o7777`.
    pub fn set_permissions(&mut self, path: impl AsRef<[u8]>, mode: u32) -> Result<()> {
        if mode > 0o7777 {
            return Err(Error::InvalidPath {
                path: format!("{mode:o}"),
                reason: "mode has bits outside 0o7777",
            });
        }
        self.update(path, Follow::All, |m| m.mode = mode)
    }

    /// Sets the owner, following symlinks, like `chown`.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`].
    pub fn set_owner(&mut self, path: impl AsRef<[u8]>, uid: u64, gid: u64) -> Result<()> {
        self.update(path, Follow::All, |m| {
            m.uid = uid;
            m.gid = gid;
        })
    }

    /// Sets the modification time, following symlinks.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`].
    pub fn set_mtime(&mut self, path: impl AsRef<[u8]>, mtime: i64) -> Result<()> {
        self.update(path, Follow::All, |m| m.mtime = mtime)
    }

    /// Sets an extended attribute, following symlinks.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`].
    pub fn set_xattr(
        &mut self,
        path: impl AsRef<[u8]>,
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
    pub fn remove_xattr(&mut self, path: impl AsRef<[u8]>, name: impl AsRef<[u8]>) -> Result<()> {
        self.update(path, Follow::All, |m| {
            m.xattrs.remove(name.as_ref());
        })
    }

    /// The node at `path`, following symlinks, like `std::fs::metadata`.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], [`Error::SymlinkLoop`].
    pub fn metadata(&self, path: impl AsRef<[u8]>) -> Result<Node> {
        Ok(self.existing(path, Follow::All)?.1)
    }

    /// The node at `path` without following a final symlink, like
    /// `std::fs::symlink_metadata`.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`].
    pub fn symlink_metadata(&self, path: impl AsRef<[u8]>) -> Result<Node> {
        Ok(self.existing(path, Follow::Parents)?.1)
    }

    /// Whether something exists at `path` (following symlinks).
    pub fn exists(&self, path: impl AsRef<[u8]>) -> bool {
        self.metadata(path).is_ok()
    }

    /// Lists a directory, following symlinks.
    ///
    /// # Errors
    ///
    /// As [`Tree::read_dir`].
    pub fn read_dir(&self, path: impl AsRef<[u8]>) -> Result<ReadDir> {
        self.tree.read_dir(path)
    }

    /// The changes since the image, as `docker diff` lists them.
    pub fn diff(&self) -> Vec<Change> {
        self.image
            .tree()
            .map(|t| t.diff(&self.tree))
            .expect("the image tree was built when the container was made")
    }

    /// Commits the changes as one new layer on top of the image, like `docker commit`, and
    /// returns the new image. The container itself is unchanged.
    ///
    /// # Errors
    ///
    /// As [`Layer::diff`].
    pub fn commit(&self, options: &CommitOptions) -> Result<Image> {
        let lower = self.image.tree()?;
        let diff = DiffOptions::new().whiteouts(options.whiteouts);
        let layer = Layer::diff(&lower, &self.tree, &diff)?;
        let mut history = History::new(options.created_by.clone().unwrap_or_default());
        history.comment = options.message.clone();
        let mut builder = crate::Image::builder()
            .base(&self.image)
            .layer_with(layer, history)
            .created(options.created.unwrap_or_else(now));
        if let Some(author) = &options.author {
            builder = builder.author(author.clone());
        }
        if let Some(message) = &options.message {
            builder = builder.comment(message.clone());
        }
        if let Some(config) = &options.config {
            builder = builder.config(config.clone());
        }
        builder.build()
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
            .field("changes", &self.diff().len())
            .finish()
    }
}

/// Options for [`Container::commit`], like the flags of `docker commit`.
///
/// ```
/// use layercake::config::ContainerConfig;
/// use layercake::CommitOptions;
///
/// let mut config = ContainerConfig::default();
/// config.cmd = Some(vec!["/bin/sh".into()]);
/// let options = CommitOptions::new()
///     .author("Jane <jane@example.com>")
///     .message("add the app")
///     .created(1_700_000_000)
///     .config(config);
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct CommitOptions {
    author: Option<String>,
    message: Option<String>,
    created_by: Option<String>,
    created: Option<i64>,
    config: Option<ContainerConfig>,
    whiteouts: WhiteoutStyle,
}

impl CommitOptions {
    /// The defaults: no author or message, created now, the image's config, explicit
    /// whiteouts.
    pub fn new() -> CommitOptions {
        CommitOptions::default()
    }

    /// Sets the author (`docker commit --author`).
    pub fn author(mut self, author: impl Into<String>) -> CommitOptions {
        self.author = Some(author.into());
        self
    }

    /// Sets the commit message (`docker commit --message`).
    pub fn message(mut self, message: impl Into<String>) -> CommitOptions {
        self.message = Some(message.into());
        self
    }

    /// Sets the history entry's `created_by`.
    pub fn created_by(mut self, created_by: impl Into<String>) -> CommitOptions {
        self.created_by = Some(created_by.into());
        self
    }

    /// Sets the creation time (seconds since the epoch) instead of now.
    pub fn created(mut self, secs: i64) -> CommitOptions {
        self.created = Some(secs);
        self
    }

    /// Replaces the runtime config (`docker commit --change`).
    pub fn config(mut self, config: ContainerConfig) -> CommitOptions {
        self.config = Some(config);
        self
    }

    /// Sets how recreated directories are recorded.
    pub fn whiteouts(mut self, style: WhiteoutStyle) -> CommitOptions {
        self.whiteouts = style;
        self
    }
}
