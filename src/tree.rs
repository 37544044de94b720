//! [`Tree`]: a whole filesystem as an immutable, structurally shared directory tree, and the
//! read side of it: lookup, symlink resolution (R8), reading files, listing and walking.
//!
//! A directory is an `Arc` of a sorted map, a non-directory is an `Arc<Entry>`. Changing a
//! tree copies only the directories on the changed paths; every other node stays shared with
//! the tree it came from. Two paths that hold the same `Arc<Entry>` are hardlinks.

use std::collections::btree_map;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::contents::{Contents, ContentsReader};
use crate::entry::{mode_string, Entry, EntryKind, Escaped, FileType, Metadata};
use crate::error::{Error, Result};
use crate::path::{AsImagePath, ImagePath};

/// How many symlinks one resolution may follow before [`Error::SymlinkLoop`] (as Linux).
///
/// A chain of this many links still resolves; one more is treated as a loop, so a hostile
/// image cannot make a lookup run forever.
///
/// ```
/// use layercake::tree::MAX_SYMLINK_HOPS;
/// use layercake::{Error, Layer, Tree};
///
/// // l1 -> l0, l2 -> l1, ...: a chain of MAX_SYMLINK_HOPS + 1 links ending at a file.
/// let mut b = Layer::builder().file("l0", "end");
/// for i in 1..=MAX_SYMLINK_HOPS + 1 {
///     b = b.symlink(format!("l{}", i - 1), format!("l{i}"));
/// }
/// let tree = Tree::new().apply(&b.build()?)?;
/// assert_eq!(tree.read(format!("l{MAX_SYMLINK_HOPS}"))?, "end");
/// let err = tree.resolve(format!("l{}", MAX_SYMLINK_HOPS + 1)).unwrap_err();
/// assert!(matches!(err, Error::SymlinkLoop { .. }));
/// # Ok::<(), layercake::Error>(())
/// ```
pub const MAX_SYMLINK_HOPS: usize = 40;

/// Marks a node that no layer supplied (the root of an empty tree).
const NO_LAYER: u32 = u32::MAX;

/// A directory node: its own metadata and its children by name.
#[derive(Debug, Clone)]
pub(crate) struct Dir {
    pub(crate) metadata: Metadata,
    pub(crate) children: BTreeMap<Bytes, Node>,
}

impl Dir {
    pub(crate) fn new(metadata: Metadata) -> Dir {
        Dir {
            metadata,
            children: BTreeMap::new(),
        }
    }

    /// The directory R6 implies for a missing parent: 0755, root, mtime 0.
    pub(crate) fn implied() -> Dir {
        Dir::new(Metadata::new(0o755))
    }
}

impl Drop for Dir {
    /// Frees the directories below one by one instead of recursively: the default drop of
    /// a tree 10 000 levels deep overflows a thread's stack.
    fn drop(&mut self) {
        let mut todo = vec![std::mem::take(&mut self.children)];
        while let Some(children) = todo.pop() {
            for (_, node) in children {
                // Only the last owner of a directory frees its children; a shared one is
                // just released.
                if let NodeKind::Dir(dir) = node.kind {
                    if let Some(mut dir) = Arc::into_inner(dir) {
                        todo.push(std::mem::take(&mut dir.children));
                    }
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum NodeKind {
    Dir(Arc<Dir>),
    Leaf(Arc<Entry>),
}

/// One entry of a [`Tree`]: a cheap handle (an `Arc` clone) on a directory or a file node,
/// with the index of the layer that supplied it.
///
/// ```
/// use layercake::{Image, Layer};
///
/// let base = Layer::builder().file("etc/os-release", "ID=demo\n").build()?;
/// let top = Layer::builder().file("etc/motd", "hello\n").build()?;
/// let image = Image::builder().layer(base).layer(top).build()?;
/// let tree = image.tree()?;
/// let motd = tree.lookup("etc/motd")?.unwrap();
/// assert_eq!(motd.contents().unwrap(), "hello\n");
/// assert_eq!(motd.layer(), Some(1));
/// assert_eq!(tree.lookup("etc/os-release")?.unwrap().layer(), Some(0));
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Node {
    pub(crate) layer: u32,
    pub(crate) kind: NodeKind,
}

impl Node {
    pub(crate) fn dir(layer: u32, dir: Dir) -> Node {
        Node {
            layer,
            kind: NodeKind::Dir(Arc::new(dir)),
        }
    }

    pub(crate) fn leaf(layer: u32, entry: Arc<Entry>) -> Node {
        debug_assert!(!matches!(
            entry.kind,
            EntryKind::Directory | EntryKind::Hardlink(_)
        ));
        Node {
            layer,
            kind: NodeKind::Leaf(entry),
        }
    }

    pub(crate) fn as_dir(&self) -> Option<&Arc<Dir>> {
        match &self.kind {
            NodeKind::Dir(d) => Some(d),
            NodeKind::Leaf(_) => None,
        }
    }

    /// A mutable handle on a directory node's own directory (copied if shared).
    ///
    /// # Panics
    ///
    /// On a non-directory: callers check first.
    pub(crate) fn dir_mut(&mut self) -> &mut Dir {
        match &mut self.kind {
            NodeKind::Dir(d) => Arc::make_mut(d),
            NodeKind::Leaf(_) => unreachable!("dir_mut on a non-directory"),
        }
    }

    pub(crate) fn as_leaf(&self) -> Option<&Arc<Entry>> {
        match &self.kind {
            NodeKind::Leaf(e) => Some(e),
            NodeKind::Dir(_) => None,
        }
    }

    /// The index (0 = bottom) of the layer that supplied this entry, or `None` for the root
    /// of an empty tree. In a container, changed entries carry the index the committed layer
    /// will have.
    ///
    /// ```
    /// use layercake::{Image, Layer, Tree};
    ///
    /// let image = Image::builder()
    ///     .layer(Layer::builder().file("etc/motd", "old").file("etc/hosts", "").build()?)
    ///     .layer(Layer::builder().file("etc/motd", "new").build()?)
    ///     .build()?;
    /// // Which layer does the file you see come from (and which would you rebuild)?
    /// let tree = image.tree()?;
    /// assert_eq!(tree.lookup("etc/motd")?.unwrap().layer(), Some(1));
    /// assert_eq!(tree.lookup("etc/hosts")?.unwrap().layer(), Some(0));
    /// assert_eq!(Tree::new().root().layer(), None);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn layer(&self) -> Option<usize> {
        (self.layer != NO_LAYER).then_some(self.layer as usize)
    }

    /// The metadata: mode, owner, mtime and xattrs.
    ///
    /// ```
    /// use layercake::{Entry, Layer, Tree};
    ///
    /// let shadow = Entry::file("root:*:").mode(0o640).owner(0, 42);
    /// let tree = Tree::new().apply(&Layer::builder().entry("etc/shadow", shadow).build()?)?;
    /// // An image audit: is the password file kept from other users?
    /// let m = tree.lookup("etc/shadow")?.unwrap().metadata().clone();
    /// assert_eq!((m.mode & 0o007, m.uid, m.gid), (0, 0, 42));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn metadata(&self) -> &Metadata {
        match &self.kind {
            NodeKind::Dir(d) => &d.metadata,
            NodeKind::Leaf(e) => &e.metadata,
        }
    }

    /// The file type, as `lstat` sees it. A tree holds no hardlink records: a hardlinked
    /// path has the type of the file it shares.
    ///
    /// ```
    /// use layercake::{FileType, Layer, Tree};
    ///
    /// let layer =
    ///     Layer::builder().file("bin/busybox", "ELF").symlink("busybox", "bin/sh").build()?;
    /// let tree = Tree::new().apply(&layer)?;
    /// // `lookup` is `lstat`: it sees the link; `resolve` is `stat`: it sees the file.
    /// assert_eq!(tree.lookup("bin/sh")?.unwrap().file_type(), FileType::Symlink);
    /// assert_eq!(tree.resolve("bin/sh")?.1.file_type(), FileType::File);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn file_type(&self) -> FileType {
        match &self.kind {
            NodeKind::Dir(_) => FileType::Directory,
            NodeKind::Leaf(e) => e.file_type(),
        }
    }

    /// Whether this is a directory.
    ///
    /// ```
    /// use layercake::{Layer, Tree};
    ///
    /// let layer = Layer::builder().file("app/bin/run", "").file("app/README", "").build()?;
    /// let tree = Tree::new().apply(&layer)?;
    /// // The walk includes the implied directories `app` and `app/bin`; count the rest.
    /// let files = tree.walk().filter(|(_, node)| !node.is_dir()).count();
    /// assert_eq!((tree.len(), files), (4, 2));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn is_dir(&self) -> bool {
        matches!(self.kind, NodeKind::Dir(_))
    }

    /// Type and mode the way `ls -l` shows them, e.g. `drwxr-xr-x` or `-rwsr-xr-x`.
    ///
    /// ```
    /// use layercake::{Entry, Layer, Tree};
    /// let layer = Layer::builder().entry("su", Entry::file("").mode(0o4755)).build()?;
    /// let tree = Tree::new().apply(&layer)?;
    /// assert_eq!(tree.lookup("su")?.unwrap().mode_string(), "-rwsr-xr-x");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn mode_string(&self) -> String {
        mode_string(self.file_type(), self.metadata().mode)
    }

    /// A regular file's contents (in memory, or a range of a layer's tar on disk, read when
    /// asked); `None` for anything else, a symlink included (use [`Tree::read`] or
    /// [`Tree::open`] to follow one).
    ///
    /// ```
    /// use layercake::{Layer, Tree};
    ///
    /// let layer = Layer::builder().file("data", vec![7u8; 4096]).symlink("data", "link").build()?;
    /// let tree = Tree::new().apply(&layer)?;
    /// let contents = tree.lookup("data")?.unwrap().contents().unwrap().clone();
    /// assert_eq!(contents.len(), 4096);
    /// // A slice of the layer's tar, not a copy of it.
    /// let tar = layer.tar()?.as_bytes().unwrap();
    /// assert!(tar.as_ptr_range().contains(&contents.as_bytes().unwrap().as_ptr()));
    /// assert!(tree.lookup("link")?.unwrap().contents().is_none());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn contents(&self) -> Option<&Contents> {
        self.as_leaf().and_then(|e| e.contents())
    }

    /// A symlink's target, verbatim; `None` for anything else.
    ///
    /// ```
    /// use layercake::{Layer, Tree};
    ///
    /// let layer =
    ///     Layer::builder().file("usr/lib/libc.so", "").symlink("/usr/lib", "lib").build()?;
    /// let tree = Tree::new().apply(&layer)?;
    /// // What `readlink` shows: the absolute target as stored, not resolved.
    /// assert_eq!(tree.lookup("lib")?.unwrap().link_target().unwrap(), "/usr/lib");
    /// assert_eq!(tree.resolve("lib/libc.so")?.0.to_string(), "usr/lib/libc.so");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn link_target(&self) -> Option<&Bytes> {
        self.as_leaf().and_then(|e| e.link_target())
    }

    /// A character or block device's major and minor numbers; `None` for anything else.
    ///
    /// ```
    /// use layercake::{Layer, Tree};
    ///
    /// let layer = Layer::builder().char_device("dev/null", 1, 3).file("dev/fake", "").build()?;
    /// let tree = Tree::new().apply(&layer)?;
    /// // Is `/dev/null` really the null device, or a file in its place?
    /// assert_eq!(tree.lookup("dev/null")?.unwrap().device(), Some((1, 3)));
    /// assert_eq!(tree.lookup("dev/fake")?.unwrap().device(), None);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn device(&self) -> Option<(u32, u32)> {
        match self.as_leaf().map(|e| &e.kind) {
            Some(
                EntryKind::CharDevice { major, minor } | EntryKind::BlockDevice { major, minor },
            ) => Some((*major, *minor)),
            _ => None,
        }
    }

    /// The size `ls -l` shows: a file's length, a symlink target's length, else 0.
    ///
    /// ```
    /// use layercake::{Layer, Tree};
    ///
    /// let layer = Layer::builder().file("a", "hello").symlink("a", "b").dir("c").build()?;
    /// let tree = Tree::new().apply(&layer)?;
    /// let sizes: Vec<u64> = tree.walk().map(|(_, node)| node.size()).collect();
    /// assert_eq!(sizes, [5, 1, 0]);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn size(&self) -> u64 {
        self.as_leaf().map_or(0, |e| e.size())
    }

    /// Whether two nodes are the same file (hardlinks of each other), like comparing inodes.
    ///
    /// ```
    /// use layercake::{Layer, Tree};
    ///
    /// let layer = Layer::builder()
    ///     .file("bin/busybox", "ELF")
    ///     .hard_link("bin/busybox", "bin/sh")
    ///     .file("bin/copy", "ELF")
    ///     .build()?;
    /// let tree = Tree::new().apply(&layer)?;
    /// let node = |path: &str| tree.lookup(path).unwrap().unwrap();
    /// assert!(node("bin/sh").same_file(&node("bin/busybox")));
    /// assert!(!node("bin/copy").same_file(&node("bin/busybox")), "equal bytes, another file");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn same_file(&self, other: &Node) -> bool {
        match (&self.kind, &other.kind) {
            (NodeKind::Dir(a), NodeKind::Dir(b)) => Arc::ptr_eq(a, b),
            (NodeKind::Leaf(a), NodeKind::Leaf(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// The entry this node holds, as a layer would write it (directories without children).
    ///
    /// ```
    /// use layercake::{Entry, Layer, Tree};
    ///
    /// let tool = Entry::file("ELF").mode(0o755).owner(0, 0);
    /// let build = Tree::new().apply(&Layer::builder().entry("out/tool", tool).build()?)?;
    /// // Copy a file from one tree into a new layer, metadata and all (`COPY --from`).
    /// let node = build.lookup("out/tool")?.unwrap();
    /// let layer = Layer::builder().entry("usr/bin/tool", node.to_entry()).build()?;
    /// assert_eq!(layer.changeset()?.entry("usr/bin/tool")?.unwrap(), &node.to_entry());
    /// assert!(build.lookup("out")?.unwrap().to_entry().is_dir());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn to_entry(&self) -> Entry {
        match &self.kind {
            NodeKind::Dir(d) => Entry::new(EntryKind::Directory, d.metadata.clone()),
            NodeKind::Leaf(e) => Entry::clone(e),
        }
    }

    /// Whether two nodes hold the same contents and metadata (ignoring children and layer).
    /// Two files of the same length on disk in different places are read to tell.
    pub(crate) fn same_content(&self, other: &Node) -> Result<bool> {
        match (&self.kind, &other.kind) {
            (NodeKind::Dir(a), NodeKind::Dir(b)) => Ok(a.metadata == b.metadata),
            (NodeKind::Leaf(a), NodeKind::Leaf(b)) if Arc::ptr_eq(a, b) => Ok(true),
            (NodeKind::Leaf(a), NodeKind::Leaf(b)) => match (&a.kind, &b.kind) {
                (EntryKind::File(x), EntryKind::File(y)) => {
                    Ok(a.metadata == b.metadata && x.same_bytes(y)?)
                }
                _ => Ok(a == b),
            },
            _ => Ok(false),
        }
    }
}

/// A whole filesystem: the merged view of a stack of layers, or a container's working tree.
///
/// Cloning is O(1). [`Tree::apply`] returns a new tree that shares every untouched node with
/// the old one, so a stack of layers costs only what each layer changes.
///
/// ```
/// use layercake::{Layer, Tree};
///
/// let layer = Layer::builder()
///     .file("bin/sh", "ELF...")
///     .symlink("sh", "bin/bash")
///     .build()?;
/// let tree = Tree::new().apply(&layer)?;
/// let (path, node) = tree.resolve("/bin/bash")?;
/// assert_eq!(path.to_string(), "bin/sh");
/// assert_eq!(node.contents().unwrap(), "ELF...");
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Clone)]
pub struct Tree {
    pub(crate) root: Node,
    pub(crate) depth: u32,
}

impl Default for Tree {
    fn default() -> Self {
        Tree::new()
    }
}

impl Tree {
    /// An empty filesystem: a root directory (0755, root, mtime 0) and nothing else.
    ///
    /// ```
    /// use layercake::{Layer, Tree};
    ///
    /// let empty = Tree::new();
    /// assert!(empty.is_empty());
    /// assert_eq!(empty.root().mode_string(), "drwxr-xr-x");
    /// // The bottom of every stack: apply layers to it without building an image.
    /// let tree = empty.apply(&Layer::builder().file("etc/motd", "hi\n").build()?)?;
    /// assert_eq!(tree.read("etc/motd")?, "hi\n");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn new() -> Tree {
        Tree {
            root: Node::dir(NO_LAYER, Dir::implied()),
            depth: 0,
        }
    }

    /// How many layers were applied to make this tree.
    ///
    /// ```
    /// assert_eq!(layercake::Tree::new().depth(), 0);
    /// ```
    pub fn depth(&self) -> usize {
        self.depth as usize
    }

    pub(crate) fn root_dir(&self) -> &Arc<Dir> {
        self.root.as_dir().expect("the root is a directory (R10)")
    }

    pub(crate) fn root_dir_mut(&mut self) -> &mut Dir {
        self.root.dir_mut()
    }

    /// The root directory's node.
    ///
    /// ```
    /// use layercake::{Entry, Layer, Tree};
    ///
    /// // A layer may carry the root itself (`./` in the tar) to set its metadata.
    /// let layer = Layer::builder().entry("/", Entry::dir().mode(0o700)).build()?;
    /// let tree = Tree::new().apply(&layer)?;
    /// assert_eq!(tree.root().metadata().mode, 0o700);
    /// assert_eq!(tree.root().layer(), Some(0));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn root(&self) -> &Node {
        &self.root
    }

    /// The entry stored at exactly this path, like `lstat` on a tree with no symlinks in
    /// the way: no symlink is followed, not even in a parent component.
    ///
    /// Returns `Ok(None)` if the path is missing or crosses a non-directory.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPath`] for a path with a `..` component or a NUL byte: a path that
    /// cannot name anything is the caller's mistake, not a missing file.
    ///
    /// ```
    /// use layercake::{Error, Layer, Tree};
    /// let tree = Tree::new().apply(&Layer::builder().symlink("usr/lib", "lib").build()?)?;
    /// assert!(tree.lookup("lib")?.unwrap().link_target().is_some());
    /// assert!(tree.lookup("lib/libc.so")?.is_none(), "not followed");
    /// assert!(matches!(tree.lookup("lib/../etc"), Err(Error::InvalidPath { .. })));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn lookup(&self, path: impl AsImagePath) -> Result<Option<Node>> {
        let path = ImagePath::new(path)?;
        Ok(self.lookup_path(&path).cloned())
    }

    pub(crate) fn lookup_path(&self, path: &ImagePath) -> Option<&Node> {
        let mut node = &self.root;
        for name in path.components() {
            node = node.as_dir()?.children.get(name)?;
        }
        Some(node)
    }

    /// Resolves a path the way the kernel would inside a chroot (R8): symlinks are followed
    /// in every component, the last included; absolute targets start at the image root and
    /// `..` at the root stays there. Returns the resolved path and its node.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPath`] if `path` itself has a `..` component or a NUL byte,
    /// [`Error::NotFound`], [`Error::NotADirectory`] for a file used as a directory, and
    /// [`Error::SymlinkLoop`] after [`MAX_SYMLINK_HOPS`] symlinks.
    ///
    /// ```
    /// use layercake::{Error, Layer, Tree};
    ///
    /// let layer = Layer::builder()
    ///     .file("usr/lib/libc.so", "ELF")
    ///     .file("etc/hostname", "box")
    ///     .symlink("/usr/lib", "lib")
    ///     .symlink("../../../etc", "usr/lib/up")
    ///     .build()?;
    /// let tree = Tree::new().apply(&layer)?;
    /// // An absolute target starts at the image root, never at the host's.
    /// assert_eq!(tree.resolve("/lib/libc.so")?.0.to_string(), "usr/lib/libc.so");
    /// // `..` stops at the image root, as in a chroot.
    /// assert_eq!(tree.resolve("lib/up/hostname")?.0.to_string(), "etc/hostname");
    /// assert!(matches!(tree.resolve("lib/nothing"), Err(Error::NotFound { .. })));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn resolve(&self, path: impl AsImagePath) -> Result<(ImagePath, Node)> {
        let path = ImagePath::new(path)?;
        match self.resolve_path(&path, Follow::All, Escape::Clamp)? {
            (resolved, Some(node)) => Ok((resolved, node)),
            (_, None) => Err(Error::NotFound {
                path: crate::error::path_bytes(&path),
            }),
        }
    }

    /// Resolves `path`, following symlinks in the parents and, with [`Follow::All`], in the
    /// last component too. A missing last component is `Ok((path, None))`; a missing parent
    /// is an error.
    pub(crate) fn resolve_path(
        &self,
        path: &ImagePath,
        follow: Follow,
        escape: Escape,
    ) -> Result<(ImagePath, Option<Node>)> {
        let escaping = || Error::InvalidPath {
            path: crate::error::path_bytes(path),
            reason: "a symlink on the way leaves the root",
        };
        // Every step below is O(1) or O(one name), so a lookup costs what its components
        // and the targets of the (at most 40) links it follows add up to: linear in that,
        // never in the square of it (issue 9).
        //
        // The components still to walk, in reverse so the next one is at the end, and how
        // many of them are names (not `.` or empty): the one being walked is the last when
        // none is left.
        let is_name = |c: &[u8]| !c.is_empty() && c != b".";
        let mut todo: Vec<Bytes> = path
            .components()
            .rev()
            .map(Bytes::copy_from_slice)
            .collect();
        let mut names_left = todo.iter().filter(|c| is_name(c)).count();
        let mut stack: Vec<(Bytes, Node)> = Vec::new();
        let mut hops = 0;
        while let Some(name) = todo.pop() {
            match &name[..] {
                b"" | b"." => continue,
                b".." => {
                    names_left -= 1;
                    if stack.pop().is_none() && escape == Escape::Refuse {
                        return Err(escaping());
                    }
                    continue;
                }
                _ => names_left -= 1,
            }
            let is_last = names_left == 0;
            let dir_node = stack.last().map_or(&self.root, |(_, n)| n);
            let Some(dir) = dir_node.as_dir() else {
                return Err(Error::NotADirectory {
                    path: crate::error::path_bytes(join_names(&stack)),
                });
            };
            let Some(child) = dir.children.get(&name[..]).cloned() else {
                if is_last {
                    return Ok((join_names(&stack).join_unchecked(&name), None));
                }
                return Err(Error::NotFound {
                    path: crate::error::path_bytes(path),
                });
            };
            match child.link_target() {
                Some(target) if !is_last || follow == Follow::All => {
                    hops += 1;
                    if hops > MAX_SYMLINK_HOPS {
                        return Err(Error::SymlinkLoop {
                            path: crate::error::path_bytes(path),
                        });
                    }
                    if target.first() == Some(&b'/') {
                        if escape == Escape::Refuse {
                            return Err(escaping());
                        }
                        stack.clear();
                    }
                    let before = todo.len();
                    todo.extend(
                        target
                            .split(|&b| b == b'/')
                            .rev()
                            .map(|c| target.slice_ref(c)),
                    );
                    names_left += todo[before..].iter().filter(|c| is_name(c)).count();
                }
                _ => stack.push((name, child)),
            }
        }
        let node = stack
            .last()
            .map_or_else(|| self.root.clone(), |(_, n)| n.clone());
        Ok((join_names(&stack), Some(node)))
    }

    /// Reads a whole regular file into memory, following symlinks (R8). Bytes already in
    /// memory are shared, not copied; for large files on disk prefer [`Tree::open`].
    ///
    /// # Errors
    ///
    /// As [`Tree::resolve`], plus [`Error::IsADirectory`], [`Error::InvalidPath`] for a
    /// device or pipe, and [`Error::Io`] if the file's bytes are on disk and cannot be read.
    ///
    /// ```
    /// use layercake::{Layer, Tree};
    /// let tree = Tree::new().apply(&Layer::builder().file("a", "x").build()?)?;
    /// assert_eq!(tree.read("/a")?, "x");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn read(&self, path: impl AsImagePath) -> Result<Bytes> {
        self.file(path)?.to_bytes()
    }

    /// Opens a regular file for reading, following symlinks (R8): a reader that streams the
    /// file from wherever its bytes are, without reading it whole.
    ///
    /// # Errors
    ///
    /// As [`Tree::read`], except that reading is done later, through the reader.
    ///
    /// ```
    /// use std::io::BufRead;
    ///
    /// use layercake::{Layer, Tree};
    ///
    /// let layer = Layer::builder().file("etc/passwd", "root:x:0:0\nbin:x:1:1\n").build()?;
    /// let tree = Tree::new().apply(&layer)?;
    /// let users: Vec<String> = tree
    ///     .open("/etc/passwd")?
    ///     .lines()
    ///     .map(|line| Ok(line?.split(':').next().unwrap_or("").to_owned()))
    ///     .collect::<std::io::Result<_>>()?;
    /// assert_eq!(users, ["root", "bin"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(&self, path: impl AsImagePath) -> Result<ContentsReader> {
        Ok(self.file(path)?.reader())
    }

    /// The contents of the regular file `path` resolves to.
    fn file(&self, path: impl AsImagePath) -> Result<Contents> {
        let (resolved, node) = self.resolve(path)?;
        match (&node.kind, node.contents()) {
            (NodeKind::Dir(_), _) => Err(Error::IsADirectory {
                path: crate::error::path_bytes(&resolved),
            }),
            (_, Some(contents)) => Ok(contents.clone()),
            (_, None) => Err(Error::InvalidPath {
                path: crate::error::path_bytes(&resolved),
                reason: "not a regular file",
            }),
        }
    }

    /// Lists a directory (following symlinks), in name order.
    ///
    /// # Errors
    ///
    /// As [`Tree::resolve`], plus [`Error::NotADirectory`].
    ///
    /// ```
    /// use layercake::{Layer, Tree};
    /// let layer = Layer::builder().file("etc/a", "").file("etc/b", "").build()?;
    /// let tree = Tree::new().apply(&layer)?;
    /// let names: Vec<_> = tree.read_dir("etc")?.map(|(name, _)| name).collect();
    /// assert_eq!(names, ["a", "b"]);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn read_dir(&self, path: impl AsImagePath) -> Result<ReadDir> {
        let (resolved, node) = self.resolve(path)?;
        match node.kind {
            NodeKind::Dir(dir) => Ok(ReadDir { dir, next: None }),
            NodeKind::Leaf(_) => Err(Error::NotADirectory {
                path: crate::error::path_bytes(&resolved),
            }),
        }
    }

    /// Every entry below the root, depth first in path order (the order a layer tar is
    /// written in). The walk keeps its own stack: deep trees do not recurse.
    ///
    /// ```
    /// use layercake::{Layer, Tree};
    /// let tree = Tree::new().apply(&Layer::builder().file("a/b", "").file("c", "").build()?)?;
    /// let paths: Vec<String> = tree.walk().map(|(p, _)| p.to_string()).collect();
    /// assert_eq!(paths, ["a", "a/b", "c"]);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn walk(&self) -> Walk<'_> {
        Walk {
            stack: vec![(ImagePath::ROOT, self.root_dir().children.iter())],
        }
    }

    /// Every entry below directory `path`, with full paths, as [`Tree::walk`] orders them.
    /// The path is taken as it is (no symlink followed; resolve it first if it may hold
    /// one); the walk is empty if it is not a directory, and also if `path` is invalid (a
    /// `..` component or a NUL byte), where [`Tree::lookup`] gives an error.
    ///
    /// ```
    /// use layercake::{Layer, Tree};
    /// let tree = Tree::new().apply(&Layer::builder().file("a/b/c", "").file("d", "").build()?)?;
    /// let paths: Vec<String> = tree.walk_under("a").map(|(p, _)| p.to_string()).collect();
    /// assert_eq!(paths, ["a/b", "a/b/c"]);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn walk_under(&self, path: impl AsImagePath) -> Walk<'_> {
        let stack = ImagePath::new(path)
            .ok()
            .and_then(|p| {
                let dir = self.lookup_path(&p)?.as_dir()?;
                Some((p, dir.children.iter()))
            })
            .into_iter()
            .collect();
        Walk { stack }
    }

    /// The number of entries below the root, implied directories included. It walks the
    /// whole tree: O(entries).
    ///
    /// ```
    /// use layercake::{Layer, Tree};
    ///
    /// let tree = Tree::new().apply(&Layer::builder().file("etc/motd", "").build()?)?;
    /// assert_eq!(tree.len(), 2, "etc and etc/motd");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn len(&self) -> usize {
        self.walk().count()
    }

    /// Whether the root has no children (cheaper than `len() == 0`).
    ///
    /// ```
    /// use layercake::{Layer, Tree};
    ///
    /// let tree = Tree::new().apply(&Layer::builder().file("etc/motd", "").build()?)?;
    /// // A layer that deletes everything its lower layers made.
    /// let wiped = tree.apply(&Layer::builder().whiteout("etc").build()?)?;
    /// assert!(!tree.is_empty());
    /// assert!(wiped.is_empty());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.root_dir().children.is_empty()
    }

    /// A text listing of the whole tree, one line an entry, in path order: mode, owner, size,
    /// mtime, path (with a `/` after a directory), then a link target or device numbers and
    /// any xattrs. It is the test oracle for comparing trees.
    ///
    /// ```
    /// use layercake::{Entry, Layer, Tree};
    /// let layer = Layer::builder()
    ///     .entry("etc/hosts", Entry::file("127.0.0.1 localhost\n").mtime(5))
    ///     .build()?;
    /// let tree = Tree::new().apply(&layer)?;
    /// assert_eq!(
    ///     tree.dump().to_string(),
    ///     "drwxr-xr-x 0:0 0 0 etc/\n-rw-r--r-- 0:0 20 5 etc/hosts\n"
    /// );
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn dump(&self) -> Dump<'_> {
        Dump(self)
    }

    /// A mutable handle on the directory at `path`, creating or replacing what is in the
    /// way as R6 implies parents: a missing directory becomes a new one, a non-directory is
    /// replaced. New directories carry `layer`.
    pub(crate) fn make_dir_mut(&mut self, path: &ImagePath, layer: u32) -> &mut Dir {
        let mut dir = self.root.dir_mut();
        for name in path.components() {
            let child = dir
                .children
                .entry(Bytes::copy_from_slice(name))
                .or_insert_with(|| Node::dir(layer, Dir::implied()));
            if !child.is_dir() {
                *child = Node::dir(layer, Dir::implied());
            }
            dir = child.dir_mut();
        }
        dir
    }

    /// A mutable handle on an existing directory, or `None` if `path` is missing or crosses
    /// a non-directory. Nothing is created.
    pub(crate) fn existing_dir_mut(&mut self, path: &ImagePath) -> Option<&mut Dir> {
        self.lookup_path(path)?.as_dir()?;
        let mut dir = self.root.dir_mut();
        for name in path.components() {
            dir = dir.children.get_mut(name)?.dir_mut();
        }
        Some(dir)
    }

    /// Puts `node` at `path` (not the root), implying parents as R6 does.
    pub(crate) fn insert(&mut self, path: &ImagePath, node: Node, layer: u32) {
        let (parent, name) = split(path);
        self.make_dir_mut(&parent, layer)
            .children
            .insert(Bytes::copy_from_slice(name), node);
    }

    /// Removes the entry at `path` if it exists (lexically), returning it.
    pub(crate) fn remove(&mut self, path: &ImagePath) -> Option<Node> {
        let (parent, name) = split(path);
        self.existing_dir_mut(&parent)?.children.remove(name)
    }
}

/// Every entry below `dir`, with paths relative to it, as [`Tree::walk`] orders them.
pub(crate) fn walk_dir(dir: &Dir) -> Walk<'_> {
    Walk {
        stack: vec![(ImagePath::ROOT, dir.children.iter())],
    }
}

/// What resolution does with a symlink that climbs above the root or starts at `/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Escape {
    /// Stay inside, as a chroot does: `..` at the root is the root, `/` is the root (R8).
    Clamp,
    /// Refuse with [`Error::InvalidPath`]: for archive members, where such a link is a sign
    /// of an attack, not of an image's own absolute symlinks.
    Refuse,
}

/// Whether resolution follows a symlink in the last component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Follow {
    /// Follow every symlink (`stat`, `open`).
    All,
    /// Follow symlinks in the parents only (`lstat`, `unlink`).
    Parents,
}

/// Splits a non-root path into its parent and last name.
pub(crate) fn split(path: &ImagePath) -> (ImagePath, &[u8]) {
    let parent = path.parent().expect("not the root");
    let name = path.file_name().expect("not the root");
    (parent, name)
}

/// The path of the names on a resolution's stack, joined in one buffer (joining them one
/// by one would copy the path once per component).
fn join_names(stack: &[(Bytes, Node)]) -> ImagePath {
    let mut joined = Vec::with_capacity(stack.iter().map(|(n, _)| n.len() + 1).sum());
    for (i, (name, _)) in stack.iter().enumerate() {
        if i > 0 {
            joined.push(b'/');
        }
        joined.extend_from_slice(name);
    }
    // Names in a tree are single valid components, so this only checks them again.
    ImagePath::new(&joined).unwrap_or_else(|_| {
        stack
            .iter()
            .fold(ImagePath::ROOT, |p, (name, _)| p.join_unchecked(name))
    })
}

impl PartialEq for Tree {
    /// Trees are equal when they hold the same paths with the same types, metadata and
    /// contents; which layer supplied an entry and which paths are hardlinked do not count.
    /// Files on disk may have to be read to tell; a read that fails compares unequal (use
    /// [`Tree::diff`] to see the error).
    fn eq(&self, other: &Tree) -> bool {
        crate::diff::compare(self, other).is_ok_and(|c| c.changes.is_empty())
    }
}

impl Eq for Tree {}

impl fmt::Debug for Tree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tree")
            .field("depth", &self.depth)
            .field("entries", &self.len())
            .finish()
    }
}

/// Iterator over a directory's children, from [`Tree::read_dir`]: `(name, node)` pairs.
///
/// It holds the directory itself (an `Arc`), not a borrow of the tree, so it can outlive
/// the tree it came from. Names that are not UTF-8 are shown escaped.
///
/// ```
/// use layercake::{Layer, Tree};
///
/// let layer = Layer::builder().file("bin/busybox", "").symlink("busybox", "bin/sh").build()?;
/// let dir = Tree::new().apply(&layer)?.read_dir("bin")?; // the tree is dropped here
/// let links: Vec<String> = dir
///     .filter(|(_, node)| node.link_target().is_some())
///     .map(|(name, _)| name)
///     .collect();
/// assert_eq!(links, ["sh"]);
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ReadDir {
    dir: Arc<Dir>,
    next: Option<Bytes>,
}

impl Iterator for ReadDir {
    type Item = (String, Node);

    fn next(&mut self) -> Option<(String, Node)> {
        let mut range = match &self.next {
            None => self.dir.children.range::<[u8], _>(..),
            Some(last) => self.dir.children.range::<[u8], _>((
                std::ops::Bound::Excluded(&last[..]),
                std::ops::Bound::Unbounded,
            )),
        };
        let (name, node) = range.next()?;
        self.next = Some(name.clone());
        Some((Escaped(name).to_string(), node.clone()))
    }
}

/// Iterator over every entry of a tree, from [`Tree::walk`]: `(path, node)` in path order.
///
/// ```
/// use layercake::{Entry, Layer, Tree};
///
/// let layer = Layer::builder()
///     .entry("usr/bin/passwd", Entry::file("ELF").mode(0o4755))
///     .entry("usr/bin/ls", Entry::file("ELF").mode(0o755))
///     .build()?;
/// let tree = Tree::new().apply(&layer)?;
/// // A security scan: every setuid file of the image.
/// let setuid: Vec<String> = tree
///     .walk()
///     .filter(|(_, node)| node.metadata().mode & 0o4000 != 0)
///     .map(|(path, _)| path.to_string())
///     .collect();
/// assert_eq!(setuid, ["usr/bin/passwd"]);
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug)]
pub struct Walk<'a> {
    stack: Vec<(ImagePath, btree_map::Iter<'a, Bytes, Node>)>,
}

impl<'a> Iterator for Walk<'a> {
    type Item = (ImagePath, &'a Node);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (prefix, iter) = self.stack.last_mut()?;
            match iter.next() {
                None => {
                    self.stack.pop();
                }
                Some((name, node)) => {
                    let path = prefix.join_unchecked(name);
                    if let NodeKind::Dir(d) = &node.kind {
                        self.stack.push((path.clone(), d.children.iter()));
                    }
                    return Some((path, node));
                }
            }
        }
    }
}

/// A text listing of a tree, from [`Tree::dump`]; it implements [`Display`](fmt::Display),
/// so it writes straight into `format!` or a writer without building a `String` first.
///
/// ```
/// use layercake::{Layer, Tree};
///
/// let layer = Layer::builder().symlink("busybox", "sh").char_device("null", 1, 3).build()?;
/// let tree = Tree::new().apply(&layer)?;
/// assert_eq!(
///     format!("{}", tree.dump()),
///     "crw-rw-rw- 0:0 0 0 null 1,3\nlrwxrwxrwx 0:0 7 0 sh -> busybox\n"
/// );
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Dump<'a>(&'a Tree);

impl fmt::Display for Dump<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (path, node) in self.0.walk() {
            let m = node.metadata();
            write!(
                f,
                "{} {}:{} {} {} {}",
                mode_string(node.file_type(), m.mode),
                m.uid,
                m.gid,
                node.size(),
                m.mtime,
                path
            )?;
            if node.is_dir() {
                f.write_str("/")?;
            }
            if let Some(target) = node.link_target() {
                write!(f, " -> {}", Escaped(target))?;
            }
            if let Some((major, minor)) = node.device() {
                write!(f, " {major},{minor}")?;
            }
            for (name, value) in &m.xattrs {
                write!(f, " xattr:{}={}", Escaped(name), Escaped(value))?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

impl Tree {
    /// Applies a layer on top of this tree and returns the result; `self` is unchanged and
    /// shares every untouched node with the result.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidHardlink`] for a hardlink whose target is missing or a directory
    /// (R7): that depends on the lower layers, so it is found here, not when the layer is
    /// read; and the errors of [`Layer::changeset`](crate::Layer::changeset) if the layer
    /// has not been read yet and cannot be.
    ///
    /// ```
    /// use layercake::{Layer, Tree};
    ///
    /// let base = Layer::builder().file("etc/a", "1").file("etc/b", "2").build()?;
    /// let top = Layer::builder().whiteout("etc/a").file("etc/c", "3").build()?;
    /// let lower = Tree::new().apply(&base)?;
    /// let merged = lower.apply(&top)?;
    /// assert!(merged.lookup("etc/a")?.is_none());
    /// assert!(lower.lookup("etc/a")?.is_some(), "the lower tree is unchanged");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn apply(&self, layer: &crate::Layer) -> Result<Tree> {
        crate::changes::apply(self, layer.changeset()?)
    }
}
