//! [`Changeset`]: what one layer changes, in typed form, and the one home of the overlay rules
//! R1–R10: what a layer may say on its own (validation), how it applies to a tree, and the
//! changeset that turns one tree into another (commit, squash, image diff).
//!
//! The `.wh.` spelling of whiteouts and opaque markers lives in the tar codec only; here they
//! are sets of paths.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;

use crate::diff::{compare, ChangeKind};
use crate::entry::{Entry, EntryKind};
use crate::error::{Error, Result};
use crate::layer::{DiffOptions, WhiteoutStyle};
use crate::path::{AsImagePath, ImagePath};
use crate::tree::{split, Dir, Node, NodeKind, Tree};

/// What one layer changes: entries it adds or replaces, paths it deletes from the layers
/// below (whiteouts, R2) and directories whose lower contents it hides (opaque, R3).
///
/// A [`Layer`](crate::Layer)'s changeset comes from [`Layer::changeset`](crate::Layer::changeset),
/// which reads the layer the first time it is asked.
///
/// ```
/// use layercake::Layer;
///
/// let layer = Layer::builder()
///     .file("bin/busybox", "ELF")
///     .hard_link("bin/busybox", "bin/sh")
///     .whiteout("bin/bash")
///     .opaque("var/cache")
///     .build()?;
/// let changes = layer.changeset()?;
/// let listing: Vec<String> = changes
///     .entries()
///     .map(|(path, e)| format!("{} {path}", e.file_type().as_char()))
///     .collect();
/// assert_eq!(listing, ["- bin/busybox", "h bin/sh"]);
/// assert_eq!(changes.whiteouts().map(|p| p.to_string()).collect::<Vec<_>>(), ["bin/bash"]);
/// assert_eq!(changes.opaque_dirs().count(), 1);
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changeset {
    pub(crate) entries: BTreeMap<ImagePath, Arc<Entry>>,
    pub(crate) whiteouts: BTreeSet<ImagePath>,
    pub(crate) opaques: BTreeSet<ImagePath>,
}

impl Changeset {
    /// The entries added or replaced, in path order (hardlinks as [`EntryKind::Hardlink`]).
    /// Whiteouts and opaque markers are not entries.
    ///
    /// ```
    /// use layercake::Layer;
    ///
    /// let layer = Layer::builder().file("etc/motd", "hi").whiteout("etc/issue").build()?;
    /// let paths: Vec<String> = layer.changeset()?.entries().map(|(p, _)| p.to_string()).collect();
    /// assert_eq!(paths, ["etc/motd"]);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn entries(&self) -> impl ExactSizeIterator<Item = (&ImagePath, &Entry)> + '_ {
        self.entries.iter().map(|(p, e)| (p, &**e))
    }

    /// The entry at exactly `path`, if this changeset has one.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPath`](crate::Error::InvalidPath) for a path with a `..` component or
    /// a NUL byte, as [`Tree::lookup`](crate::Tree::lookup).
    ///
    /// ```
    /// use layercake::{Error, Layer};
    ///
    /// let layer = Layer::builder().file("etc/motd", "hi").build()?;
    /// let changes = layer.changeset()?;
    /// assert_eq!(changes.entry("/etc/motd")?.unwrap().contents().unwrap(), "hi");
    /// // Did this layer write `etc` itself? No: readers imply it (R6).
    /// assert!(changes.entry("etc")?.is_none());
    /// assert!(matches!(changes.entry("etc/../motd"), Err(Error::InvalidPath { .. })));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn entry(&self, path: impl AsImagePath) -> Result<Option<&Entry>> {
        let path = ImagePath::new(path)?;
        Ok(self.entries.get(&path).map(|e| &**e))
    }

    /// The paths deleted from the layers below (R2).
    ///
    /// ```
    /// use layercake::Layer;
    ///
    /// let layer = Layer::builder().whiteout("etc/motd").build()?;
    /// // Typed paths, not the `.wh.` names the tar spells them with.
    /// let deleted: Vec<String> = layer.changeset()?.whiteouts().map(|p| p.to_string()).collect();
    /// assert_eq!(deleted, ["etc/motd"]);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn whiteouts(&self) -> impl ExactSizeIterator<Item = &ImagePath> + '_ {
        self.whiteouts.iter()
    }

    /// The directories whose lower contents are hidden (R3).
    ///
    /// ```
    /// use layercake::Layer;
    ///
    /// let layer = Layer::builder().opaque("var/cache").file("var/cache/new", "").build()?;
    /// let opaque: Vec<String> = layer.changeset()?.opaque_dirs().map(|p| p.to_string()).collect();
    /// assert_eq!(opaque, ["var/cache"]);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn opaque_dirs(&self) -> impl ExactSizeIterator<Item = &ImagePath> + '_ {
        self.opaques.iter()
    }

    /// Whether this changes nothing at all.
    ///
    /// ```
    /// use layercake::Layer;
    ///
    /// assert!(Layer::builder().build()?.changeset()?.is_empty());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.whiteouts.is_empty() && self.opaques.is_empty()
    }

    /// The sum of the sizes of the regular files added (what Docker reports as a layer's
    /// size).
    ///
    /// ```
    /// use layercake::Layer;
    ///
    /// let layer = Layer::builder()
    ///     .file("app/main.py", "print('hi')\n")
    ///     .symlink("main.py", "app/run")
    ///     .whiteout("tmp/cache")
    ///     .build()?;
    /// // What `docker history` shows for the layer: 12 bytes of file data.
    /// assert_eq!(layer.changeset()?.content_size(), 12);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn content_size(&self) -> u64 {
        self.entries
            .values()
            .filter_map(|e| e.contents())
            .map(|c| c.len())
            .sum()
    }

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
                    path: crate::error::path_bytes(path),
                    parent: crate::error::path_bytes(parent),
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

/// The changes that turn `lower` into `upper` (see [`Layer::diff`](crate::Layer::diff)).
///
/// # Errors
///
/// [`Error::Io`] if comparing two files means reading contents on disk that cannot be read.
pub(crate) fn diff(lower: &Tree, upper: &Tree, options: &DiffOptions) -> Result<Changeset> {
    let comparison = compare(lower, upper)?;
    let mut changes = Changeset::default();
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
    Ok(changes)
}

/// Applies a changeset to a tree (R1–R7), in the fixed order R4 gives: opaque markers, then
/// whiteouts, then entries in path order, then hardlinks. The new tree's nodes carry the
/// layer index `tree.depth()`.
///
/// # Errors
///
/// [`Error::InvalidHardlink`] for a hardlink whose target is missing or a directory (R7).
pub(crate) fn apply(tree: &Tree, changes: &Changeset) -> Result<Tree> {
    let mut out = tree.clone();
    let index = tree.depth;
    out.depth = tree.depth + 1;
    for dir in &changes.opaques {
        if let Some(dir) = out.existing_dir_mut(dir) {
            dir.children.clear();
        }
    }
    for path in &changes.whiteouts {
        out.remove(path);
    }
    let mut hardlinks = Vec::new();
    for (path, entry) in &changes.entries {
        match &entry.kind {
            EntryKind::Hardlink(target) => hardlinks.push((path, target)),
            EntryKind::Directory if path.is_root() => {
                out.root_dir_mut().metadata = entry.metadata.clone();
                out.root.layer = index;
            }
            EntryKind::Directory => {
                let (parent, name) = split(path);
                let parent = out.make_dir_mut(&parent, index);
                match parent.children.get_mut(name) {
                    Some(existing) if existing.is_dir() => {
                        existing.dir_mut().metadata = entry.metadata.clone();
                        existing.layer = index;
                    }
                    _ => {
                        parent.children.insert(
                            Bytes::copy_from_slice(name),
                            Node::dir(index, Dir::new(entry.metadata.clone())),
                        );
                    }
                }
            }
            _ => out.insert(path, Node::leaf(index, entry.clone()), index),
        }
    }
    // A hardlink may name another hardlink of the same layer, in any tar order (R4): each
    // link follows the chain of this layer's links to a path that is not one, and every link
    // on the way takes that node, so a chain of n links costs n lookups, not n². The link
    // paths are cleared first (parents implied, as inserting them would), so no lookup sees
    // a lower entry that this layer replaces with a link, whatever the order.
    let links: HashMap<&ImagePath, &ImagePath> = hardlinks.iter().copied().collect();
    for (path, _) in &hardlinks {
        let (parent, name) = split(path);
        out.make_dir_mut(&parent, index).children.remove(name);
    }
    let mut linked: HashMap<&ImagePath, NodeKind> = HashMap::new();
    for (path, target) in hardlinks {
        if linked.contains_key(path) {
            continue;
        }
        let mut chain = vec![path];
        let mut on_chain = HashSet::from([path]);
        let mut at = (path, target);
        let kind = loop {
            let (link, target) = at;
            if let Some(kind) = linked.get(target) {
                break kind.clone();
            }
            let invalid = |reason| Error::InvalidHardlink {
                path: crate::error::path_bytes(link),
                target: crate::error::path_bytes(target),
                reason,
            };
            if let Some(next) = links.get(target) {
                if !on_chain.insert(target) {
                    return Err(invalid("target does not exist"));
                }
                chain.push(target);
                at = (target, next);
                continue;
            }
            match out.lookup_path(target) {
                Some(node) if node.is_dir() => return Err(invalid("target is a directory")),
                Some(node) => break node.kind.clone(),
                None => return Err(invalid("target does not exist")),
            }
        };
        for link in chain {
            let node = Node {
                layer: index,
                kind: kind.clone(),
            };
            out.insert(link, node, index);
            linked.insert(link, kind.clone());
        }
    }
    Ok(out)
}
