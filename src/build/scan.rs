//! Reading a host directory that a RUN step changed back into a [`Tree`], and applying the
//! difference to the step's [`Container`].
//!
//! The directory was written by [`unpack`](crate::unpack()) from the container's tree just
//! before the command ran. An inode whose change time (`ctime`, which no program can set) is
//! older than a marker made after the unpack was not touched by the command: its path keeps
//! the tree's node, and nothing of it is read. Everything else is read whole (file bytes are
//! copied once, into one temporary file, and held as [`Contents`] on disk).

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, Metadata as HostMetadata};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use crate::container::Container;
use crate::contents::{temporary_file, Contents, HostFile};
use crate::diff::{compare, ChangeKind};
use crate::entry::{Entry, EntryKind, Metadata};
use crate::error::{Error, Result};
use crate::path::ImagePath;
use crate::tree::{Dir, Node, NodeKind, Tree};

/// Paths a runtime makes for itself in a container's root. What the command does to them
/// never reaches the container: the tree keeps what it had there (or nothing).
pub(crate) const RUNTIME_PATHS: [&str; 7] = [
    "dev",
    "proc",
    "sys",
    ".dockerenv",
    "etc/hosts",
    "etc/resolv.conf",
    "etc/hostname",
];

/// A change time: seconds and nanoseconds.
pub(crate) type Ctime = (i64, i64);

fn ctime(meta: &HostMetadata) -> Ctime {
    (meta.ctime(), meta.ctime_nsec())
}

/// The change time of a file made now in `dir`: the filesystem's own clock, so that every
/// inode changed after this call has a change time at least this one.
pub(crate) fn marker(dir: &Path) -> Result<Ctime> {
    let path = dir.join(".layercake-marker");
    let fail = |e| Error::io(format_args!("writing `{}`", path.display()), e);
    let file = File::create(&path).map_err(fail)?;
    let meta = file.metadata().map_err(fail)?;
    drop(file);
    fs::remove_file(&path).map_err(fail)?;
    Ok(ctime(&meta))
}

/// Reads a host directory into a tree, reusing `old`'s nodes for every inode not changed
/// since `since`.
pub(crate) struct Scanner<'a> {
    old: &'a Tree,
    since: Ctime,
    layer: u32,
    /// Where changed files' bytes are copied, and how much it holds.
    store: Arc<HostFile>,
    stored: u64,
    /// Inodes read so far, so that two paths of one inode share one node.
    inodes: HashMap<(u64, u64), Arc<Entry>>,
}

impl<'a> Scanner<'a> {
    /// A scanner comparing with `old`, keeping copied bytes in a temporary file in `scratch`.
    pub(crate) fn new(old: &'a Tree, since: Ctime, scratch: &Path) -> Result<Scanner<'a>> {
        Ok(Scanner {
            old,
            since,
            layer: old.depth,
            store: temporary_file(scratch, "the files a RUN step wrote")?,
            stored: 0,
            inodes: HashMap::new(),
        })
    }

    /// The tree that `root` now holds.
    pub(crate) fn scan(mut self, root: &Path) -> Result<Tree> {
        let node = self.dir(root, &ImagePath::ROOT)?;
        let mut tree = Tree::new();
        tree.root = node;
        tree.depth = self.old.depth;
        Ok(tree)
    }

    fn dir(&mut self, host: &Path, path: &ImagePath) -> Result<Node> {
        let meta = stat(host)?;
        let old = self.old.lookup_path(path).cloned();
        let old_dir = old.as_ref().and_then(|n| n.as_dir().cloned());
        let metadata = self.metadata(host, &meta, old.as_ref())?;
        let mut dir = Dir::new(metadata);
        let listing = fs::read_dir(host)
            .map_err(|e| Error::io(format_args!("reading `{}`", host.display()), e))?;
        let mut names = Vec::new();
        for item in listing {
            let item =
                item.map_err(|e| Error::io(format_args!("reading `{}`", host.display()), e))?;
            names.push(item.file_name());
        }
        names.sort();
        for name in names {
            let bytes = name.as_bytes();
            let child_path = path.join_unchecked(bytes);
            let child_host = host.join(&name);
            if is_runtime_path(&child_path) {
                if let Some(old) = self.old.lookup_path(&child_path) {
                    dir.children
                        .insert(Bytes::copy_from_slice(bytes), old.clone());
                }
                continue;
            }
            let child_meta = stat(&child_host)?;
            let node = if child_meta.is_dir() {
                self.dir(&child_host, &child_path)?
            } else {
                self.leaf(&child_host, &child_path, &child_meta)?
            };
            dir.children.insert(Bytes::copy_from_slice(bytes), node);
        }
        // Runtime paths the image had but the directory lost (the unpack left a device out)
        // stay as they were.
        if let Some(old_dir) = &old_dir {
            for (name, node) in &old_dir.children {
                if is_runtime_path(&path.join_unchecked(name)) {
                    dir.children
                        .entry(name.clone())
                        .or_insert_with(|| node.clone());
                }
            }
        }
        // Nothing changed here or below: the old node itself, so that comparing is cheap.
        if let Some(old_dir) = old_dir {
            let same = old_dir.metadata == dir.metadata
                && old_dir.children.len() == dir.children.len()
                && old_dir
                    .children
                    .iter()
                    .zip(&dir.children)
                    .all(|((a, x), (b, y))| a == b && x.same_file(y));
            if same {
                return Ok(old.expect("a directory was there"));
            }
        }
        Ok(Node::dir(self.layer, dir))
    }

    fn leaf(&mut self, host: &Path, path: &ImagePath, meta: &HostMetadata) -> Result<Node> {
        let old = self.old.lookup_path(path);
        if ctime(meta) < self.since {
            if let Some(old) = old.filter(|old| unchanged(old, meta)) {
                return Ok(old.clone());
            }
        }
        let id = (meta.dev(), meta.ino());
        if let Some(entry) = self.inodes.get(&id) {
            return Ok(Node::leaf(self.layer, entry.clone()));
        }
        let metadata = self.metadata(host, meta, old)?;
        let kind = meta.file_type();
        let kind = if kind.is_symlink() {
            let target = fs::read_link(host)
                .map_err(|e| Error::io(format_args!("reading `{}`", host.display()), e))?;
            EntryKind::Symlink(Bytes::copy_from_slice(target.as_os_str().as_bytes()))
        } else if kind.is_file() {
            EntryKind::File(self.copy(host)?)
        } else if kind.is_fifo() {
            EntryKind::Fifo
        } else if kind.is_char_device() || kind.is_block_device() {
            let dev = meta.rdev();
            let (major, minor) = (rustix::fs::major(dev), rustix::fs::minor(dev));
            if kind.is_char_device() {
                EntryKind::CharDevice { major, minor }
            } else {
                EntryKind::BlockDevice { major, minor }
            }
        } else {
            return Err(Error::Unsupported {
                what: format!("a socket at `/{path}` after a RUN step"),
            });
        };
        let entry = Arc::new(Entry::new(kind, metadata));
        if meta.nlink() > 1 {
            self.inodes.insert(id, entry.clone());
        }
        Ok(Node::leaf(self.layer, entry))
    }

    /// Mode, owner, mtime and (for an inode changed since the marker) xattrs.
    fn metadata(&self, host: &Path, meta: &HostMetadata, old: Option<&Node>) -> Result<Metadata> {
        let xattrs = match old {
            Some(old) if ctime(meta) < self.since => old.metadata().xattrs.clone(),
            _ => read_xattrs(host)?,
        };
        let mode = if meta.file_type().is_symlink() {
            0o777
        } else {
            meta.mode() & 0o7777
        };
        Ok(Metadata {
            mode,
            uid: u64::from(meta.uid()),
            gid: u64::from(meta.gid()),
            mtime: meta.mtime(),
            xattrs,
        })
    }

    /// Copies a file's bytes to the end of the store.
    fn copy(&mut self, host: &Path) -> Result<Contents> {
        let mut file = File::open(host)
            .map_err(|e| Error::io(format_args!("opening `{}`", host.display()), e))?;
        let mut out = self.store.file();
        let len = io::copy(&mut file, &mut out)
            .map_err(|e| Error::io(format_args!("copying `{}`", host.display()), e))?;
        let contents = Contents::on_disk(self.store.clone(), self.stored, len);
        self.stored += len;
        Ok(contents)
    }
}

fn stat(host: &Path) -> Result<HostMetadata> {
    fs::symlink_metadata(host)
        .map_err(|e| Error::io(format_args!("checking `{}`", host.display()), e))
}

fn is_runtime_path(path: &ImagePath) -> bool {
    RUNTIME_PATHS
        .iter()
        .any(|p| path.as_bytes() == p.as_bytes())
}

/// Whether an inode the command did not touch still matches the tree's node (it does unless
/// the unpack could not write it as the tree has it).
fn unchanged(old: &Node, meta: &HostMetadata) -> bool {
    let m = old.metadata();
    let kind = meta.file_type();
    let same_kind = match &old.kind {
        NodeKind::Dir(_) => false,
        NodeKind::Leaf(e) => match &e.kind {
            EntryKind::File(c) => kind.is_file() && c.len() == meta.len(),
            EntryKind::Symlink(_) => kind.is_symlink(),
            EntryKind::Fifo => kind.is_fifo(),
            EntryKind::CharDevice { .. } => kind.is_char_device(),
            EntryKind::BlockDevice { .. } => kind.is_block_device(),
            EntryKind::Directory | EntryKind::Hardlink(_) => false,
        },
    };
    same_kind
        && m.uid == u64::from(meta.uid())
        && m.gid == u64::from(meta.gid())
        && m.mtime == meta.mtime()
        && (kind.is_symlink() || m.mode == meta.mode() & 0o7777)
}

fn read_xattrs(host: &Path) -> Result<BTreeMap<Bytes, Bytes>> {
    let fail = |e: rustix::io::Errno| {
        Error::io(
            format_args!("reading the xattrs of `{}`", host.display()),
            e.into(),
        )
    };
    let mut xattrs = BTreeMap::new();
    let mut names = vec![0u8; 64 << 10];
    let n = match rustix::fs::llistxattr(host, &mut names[..]) {
        Ok(n) => n,
        Err(rustix::io::Errno::NOTSUP) => return Ok(xattrs),
        Err(e) => return Err(fail(e)),
    };
    let mut value = vec![0u8; 64 << 10];
    for name in names[..n].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let len = match rustix::fs::lgetxattr(host, name, &mut value[..]) {
            Ok(len) => len,
            // Gone since it was listed.
            Err(rustix::io::Errno::NODATA) => continue,
            Err(e) => return Err(fail(e)),
        };
        xattrs.insert(
            Bytes::copy_from_slice(name),
            Bytes::copy_from_slice(&value[..len]),
        );
    }
    Ok(xattrs)
}

/// Makes `container`'s tree equal to `scanned`, through the container's own operations.
/// Returns how many paths changed.
pub(crate) fn apply(container: &mut Container, scanned: &Tree) -> Result<usize> {
    let comparison = compare(container.tree(), scanned)?;
    let mut first_path: HashMap<*const Entry, ImagePath> = HashMap::new();
    let mut count = 0;
    for (change, node) in comparison.changes {
        let path = change.path;
        count += 1;
        let Some(node) = node.filter(|_| change.kind != ChangeKind::Deleted) else {
            if container.tree().lookup_path(&path).is_some() {
                container.remove_dir_all(&path)?;
            }
            continue;
        };
        let current = container.tree().lookup_path(&path).cloned();
        match &node.kind {
            // Docker never records the root directory in a layer.
            NodeKind::Dir(_) if path.is_root() => {}
            NodeKind::Dir(dir) => {
                match &current {
                    Some(c) if c.is_dir() => {}
                    Some(_) => {
                        container.remove_dir_all(&path)?;
                        container.create_dir(&path)?;
                    }
                    None => container.create_dir(&path)?,
                }
                set_metadata(container, &path, &dir.metadata)?;
            }
            NodeKind::Leaf(entry) => {
                if current.is_some() {
                    container.remove_dir_all(&path)?;
                }
                if let Some(first) = first_path.get(&Arc::as_ptr(entry)) {
                    container.hard_link(first, &path)?;
                    continue;
                }
                first_path.insert(Arc::as_ptr(entry), path.clone());
                match &entry.kind {
                    EntryKind::File(contents) => {
                        container.write(&path, contents.clone())?;
                        set_metadata(container, &path, &entry.metadata)?;
                    }
                    EntryKind::Symlink(target) => {
                        let meta = &entry.metadata;
                        container.symlink(target.clone(), &path)?;
                        container.set_link_owner(&path, meta.uid, meta.gid)?;
                        container.set_link_mtime(&path, meta.mtime)?;
                    }
                    other => {
                        let what = match other {
                            EntryKind::Fifo => "a named pipe",
                            _ => "a device node",
                        };
                        return Err(Error::Unsupported {
                            what: format!(
                                "{what} made by a RUN step at `/{path}` (a container cannot hold a new one)"
                            ),
                        });
                    }
                }
            }
        }
    }
    Ok(count)
}

/// Sets what differs of a directory's or file's metadata.
fn set_metadata(container: &mut Container, path: &ImagePath, meta: &Metadata) -> Result<()> {
    let now = container.symlink_metadata(path)?.metadata().clone();
    if now.mode != meta.mode {
        container.set_permissions(path, meta.mode)?;
    }
    if (now.uid, now.gid) != (meta.uid, meta.gid) {
        container.set_owner(path, meta.uid, meta.gid)?;
    }
    if now.mtime != meta.mtime {
        container.set_mtime(path, meta.mtime)?;
    }
    if now.xattrs != meta.xattrs {
        for name in now.xattrs.keys() {
            if !meta.xattrs.contains_key(name) {
                container.remove_xattr(path, name)?;
            }
        }
        for (name, value) in &meta.xattrs {
            if now.xattrs.get(name) != Some(value) {
                container.set_xattr(path, name.clone(), value.clone())?;
            }
        }
    }
    Ok(())
}
