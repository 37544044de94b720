//! Comparing two trees: the list of changes `docker diff` prints, and the raw material from
//! which [`Layer::diff`](crate::Layer::diff) builds a layer.
//!
//! The walk descends only into directories whose `Arc`s differ, so its cost follows the
//! size of the change, not the size of the trees.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use crate::error::Result;
use crate::path::ImagePath;
use crate::tree::{Dir, Node, Tree};

/// What happened to a path, as `docker diff` letters it.
///
/// ```
/// use layercake::{ChangeKind, Container, Image, Layer};
///
/// let image = Image::builder()
///     .layer(Layer::builder().file("etc/motd", "").file("etc/hosts", "").build()?)
///     .build()?;
/// let mut c = Container::new(&image)?;
/// c.remove_file("etc/motd")?;
/// c.write("etc/hosts", "127.0.0.1 box\n")?;
/// c.write("etc/issue", "")?;
/// // A summary of `docker diff`: `/etc` and `/etc/hosts` are changed.
/// let changes = c.diff()?;
/// let count = |kind| changes.iter().filter(|ch| ch.kind == kind).count();
/// assert_eq!(
///     [count(ChangeKind::Added), count(ChangeKind::Changed), count(ChangeKind::Deleted)],
///     [1, 2, 1]
/// );
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChangeKind {
    /// `A`: the path is new.
    Added,
    /// `C`: the path exists on both sides and it, or something below it, differs.
    Changed,
    /// `D`: the path is gone.
    Deleted,
}

impl ChangeKind {
    /// The letter `docker diff` prints: `A`, `C` or `D`.
    ///
    /// ```
    /// assert_eq!(layercake::ChangeKind::Deleted.as_char(), 'D');
    /// ```
    pub fn as_char(self) -> char {
        match self {
            ChangeKind::Added => 'A',
            ChangeKind::Changed => 'C',
            ChangeKind::Deleted => 'D',
        }
    }
}

/// One line of `docker diff`: a kind and a path. Displays as `C /etc`.
///
/// ```
/// use layercake::{Container, Image, Layer};
///
/// let image = Image::builder()
///     .layer(Layer::builder().file("etc/hosts", "").build()?)
///     .build()?;
/// let mut c = Container::new(&image)?;
/// c.write("etc/motd", "hi")?;
/// let lines: Vec<String> = c.diff()?.iter().map(|ch| ch.to_string()).collect();
/// assert_eq!(lines, ["C /etc", "A /etc/motd"]);
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Change {
    /// The path.
    pub path: ImagePath,
    /// What happened to it.
    pub kind: ChangeKind,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} /{}", self.kind.as_char(), self.path)
    }
}

/// The result of comparing a lower and an upper tree.
pub(crate) struct Comparison {
    /// Every change in path order, with the upper node for added and changed paths.
    pub(crate) changes: Vec<(Change, Option<Node>)>,
    /// Directories on both sides that lost at least one lower child and kept none of the
    /// lower children as they were: what a recreated directory looks like.
    pub(crate) recreated: Vec<ImagePath>,
}

/// Compares `lower` and `upper`.
pub(crate) fn compare(lower: &Tree, upper: &Tree) -> Result<Comparison> {
    let mut changes = Vec::new();
    let mut recreated = Vec::new();
    let mut stack: Vec<(ImagePath, Arc<Dir>, Arc<Dir>)> = Vec::new();
    let (l_root, u_root) = (lower.root_dir(), upper.root_dir());
    if !Arc::ptr_eq(l_root, u_root) {
        if l_root.metadata != u_root.metadata {
            changes.push((changed(ImagePath::ROOT), Some(upper.root.clone())));
        }
        stack.push((ImagePath::ROOT, l_root.clone(), u_root.clone()));
    }
    while let Some((dir_path, l_dir, u_dir)) = stack.pop() {
        let mut deleted_any = false;
        let mut kept_any = false;
        let mut l_iter = l_dir.children.iter().peekable();
        let mut u_iter = u_dir.children.iter().peekable();
        loop {
            let order = match (l_iter.peek(), u_iter.peek()) {
                (None, None) => break,
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some((l, _)), Some((u, _))) => l.cmp(u),
            };
            match order {
                std::cmp::Ordering::Less => {
                    let (name, _) = l_iter.next().expect("peeked");
                    deleted_any = true;
                    changes.push((
                        Change {
                            path: dir_path.join_unchecked(name),
                            kind: ChangeKind::Deleted,
                        },
                        None,
                    ));
                }
                std::cmp::Ordering::Greater => {
                    let (name, node) = u_iter.next().expect("peeked");
                    added_subtree(&mut changes, dir_path.join_unchecked(name), node);
                }
                std::cmp::Ordering::Equal => {
                    let (name, l) = l_iter.next().expect("peeked");
                    let (_, u) = u_iter.next().expect("peeked");
                    if l.same_file(u) {
                        kept_any = true;
                        continue;
                    }
                    let path = dir_path.join_unchecked(name);
                    match (l.as_dir(), u.as_dir()) {
                        (Some(ld), Some(ud)) => {
                            if ld.metadata != ud.metadata {
                                changes.push((changed(path.clone()), Some(u.clone())));
                            }
                            stack.push((path, ld.clone(), ud.clone()));
                        }
                        _ if l.same_content(u)? => {}
                        (_, Some(_)) => {
                            // A non-directory became a directory: everything below is new.
                            changes.push((changed(path.clone()), Some(u.clone())));
                            if let Some(ud) = u.as_dir() {
                                for (name, child) in &ud.children {
                                    added_subtree(&mut changes, path.join_unchecked(name), child);
                                }
                            }
                        }
                        _ => changes.push((changed(path), Some(u.clone()))),
                    }
                }
            }
        }
        if deleted_any && !kept_any && !dir_path.is_root() {
            recreated.push(dir_path);
        }
    }
    mark_parents(&mut changes, upper);
    changes.sort_by(|a, b| a.0.path.cmp(&b.0.path));
    recreated.sort();
    Ok(Comparison { changes, recreated })
}

fn changed(path: ImagePath) -> Change {
    Change {
        path,
        kind: ChangeKind::Changed,
    }
}

/// Records `node` at `path` and everything below it as added, without recursion.
fn added_subtree(changes: &mut Vec<(Change, Option<Node>)>, path: ImagePath, node: &Node) {
    let mut todo = vec![(path, node.clone())];
    while let Some((path, node)) = todo.pop() {
        if let Some(dir) = node.as_dir() {
            for (name, child) in dir.children.iter().rev() {
                todo.push((path.join_unchecked(name), child.clone()));
            }
        }
        changes.push((
            Change {
                path,
                kind: ChangeKind::Added,
            },
            Some(node),
        ));
    }
}

/// Adds a `C` for every directory above a change that is not itself a change, as
/// `docker diff` does (the directory is in the container's upper layer).
fn mark_parents(changes: &mut Vec<(Change, Option<Node>)>, upper: &Tree) {
    let mut seen: BTreeSet<ImagePath> = changes.iter().map(|(c, _)| c.path.clone()).collect();
    let mut parents = Vec::new();
    for (change, _) in changes.iter() {
        let mut parent = change.path.parent();
        while let Some(p) = parent {
            if p.is_root() || !seen.insert(p.clone()) {
                break;
            }
            parent = p.parent();
            parents.push(p);
        }
    }
    for p in parents {
        let node = upper.lookup_path(&p).cloned();
        changes.push((changed(p), node));
    }
}

impl Tree {
    /// The changes that turn `self` into `upper`, as `docker diff` lists them: `A` for new
    /// paths (every path of a new directory), `C` for changed ones and for directories with
    /// changes below, `D` for deleted ones (not their children). Sorted by path.
    ///
    /// ```
    /// use layercake::{Layer, Tree};
    ///
    /// let a =
    ///     Tree::new().apply(&Layer::builder().file("x/1", "").file("x/2", "").build()?)?;
    /// let b = a.apply(&Layer::builder().whiteout("x/1").file("y", "").build()?)?;
    /// let lines: Vec<String> = a.diff(&b)?.iter().map(|c| c.to_string()).collect();
    /// assert_eq!(lines, ["C /x", "D /x/1", "A /y"]);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Io`](crate::Error::Io) if two files of the same length whose bytes are on
    /// disk in different places must be read to tell whether they differ, and cannot be.
    /// Subtrees the two trees share are never looked at, so a diff costs what changed.
    pub fn diff(&self, upper: &Tree) -> Result<Vec<Change>> {
        Ok(compare(self, upper)?
            .changes
            .into_iter()
            .filter(|(c, _)| !c.path.is_root())
            .map(|(c, _)| c)
            .collect())
    }
}
