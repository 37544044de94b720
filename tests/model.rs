//! Model test: random `std::fs`-style operations on a [`Container`] against a plain
//! reference model (a `BTreeMap` from path to entry), then commit, export, import and
//! compare: the new layer through its tar bytes, and (in some cases) the whole committed
//! image through an image file on disk.
//!
//! The model shares no code with layercake. It applies the base layers by the rules of
//! DESIGN.md §3 (R1–R7), and it follows a symlink only in the last component of a path: an
//! operation whose path would cross a symlink in a parent component is skipped, on both
//! sides. Hardlinks are modelled as inode numbers, as the container documents them: a path
//! whose file is changed gets a file of its own (overlayfs without `index`).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use common::TempFile;
use layercake::layer::WhiteoutStyle;
use layercake::{ChangeKind, CommitOptions, Container, Entry, Error, Image, Layer, Metadata, Tree};
use proptest::prelude::*;
use proptest::test_runner::Config;

/// The names paths are made of: few, so that operations collide. The last is not UTF-8.
const NAMES: [&[u8]; 4] = [b"a", b"b", b"c", b"\xe9"];
const MODES: [u32; 7] = [0o644, 0o755, 0o600, 0o4755, 0o1777, 0o7777, 0];
/// Around the 7-digit octal limit of a USTAR uid/gid field, and far above it (PAX).
const IDS: [u64; 6] = [0, 1000, 65534, 0o7_777_777, 0o10_000_000, 1 << 40];
/// Around the 11-digit octal limit of a USTAR mtime, and negative (PAX).
const TIMES: [i64; 7] = [
    0,
    1,
    1_700_000_000,
    -1,
    -86_400,
    0o77_777_777_777,
    0o100_000_000_000,
];
const XATTR_NAMES: [&[u8]; 3] = [b"user.a", b"user.b", b"security.capability"];
const XATTR_VALUES: [&[u8]; 5] = [b"", b"v", b"\x00\x01\xff", b"k=v", b"two\nlines"];
/// Linux's limit, which layercake follows.
const MAX_HOPS: usize = 40;

// ---------------------------------------------------------------------------------------
// Paths as plain bytes: `a/b`, the root is empty.

type Path = Vec<u8>;

fn split(path: &[u8]) -> Vec<&[u8]> {
    path.split(|&b| b == b'/')
        .filter(|c| !c.is_empty())
        .collect()
}

fn join(dir: &[u8], name: &[u8]) -> Path {
    if dir.is_empty() {
        name.to_vec()
    } else {
        [dir, b"/", name].concat()
    }
}

fn parent(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => &path[..i],
        None => b"",
    }
}

/// Whether `path` lies strictly below `dir`.
fn below(path: &[u8], dir: &[u8]) -> bool {
    if dir.is_empty() {
        return !path.is_empty();
    }
    path.len() > dir.len() && path.starts_with(dir) && path[dir.len()] == b'/'
}

/// The proper ancestors of `path`, root excluded, nearest the root first.
fn ancestors(path: &[u8]) -> Vec<Path> {
    path.iter()
        .enumerate()
        .filter(|(_, &b)| b == b'/')
        .map(|(i, _)| path[..i].to_vec())
        .collect()
}

fn show(path: &[u8]) -> String {
    format!("/{}", path.escape_ascii())
}

/// A generated path: indexes into [`NAMES`] (empty: the root) and a spelling; or, with
/// `pick`, whichever entry the model holds at that position when the operation runs (so
/// that operations often meet something).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
struct P {
    names: Vec<u8>,
    style: u8,
    pick: Option<u16>,
}

impl P {
    fn norm(&self) -> Path {
        let names: Vec<&[u8]> = self.names.iter().map(|&i| NAMES[i as usize]).collect();
        names.join(&b'/')
    }

    /// This path's last name in `other`'s directory (the root stays the root).
    fn beside(&self, other: &P) -> P {
        let mut names = other.names.clone();
        names.pop();
        names.extend(self.names.last());
        P {
            names,
            style: self.style,
            pick: None,
        }
    }

    /// How the path is handed to the container: `a/b`, `/a/b` or `./a//b`.
    fn render(&self) -> Vec<u8> {
        let names: Vec<&[u8]> = self.names.iter().map(|&i| NAMES[i as usize]).collect();
        match self.style {
            0 if names.is_empty() => b".".to_vec(),
            0 => names.join(&b'/'),
            1 => [b"/", &names.join(&b'/')[..]].concat(),
            _ => [b"./", &names.join(&b"//"[..])[..]].concat(),
        }
    }
}

impl fmt::Debug for P {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pick {
            Some(n) => write!(f, "entry #{n}"),
            None => write!(f, "{:?}", self.render().escape_ascii().to_string()),
        }
    }
}

/// A generated symlink target.
#[derive(Clone)]
enum Target {
    /// `/a/b`
    Absolute(Vec<u8>),
    /// `a/b`, relative to the link's directory.
    Relative(Vec<u8>),
    /// `../a`
    Up(u8),
    /// `/`
    Root,
    /// `.`
    Dot,
}

impl Target {
    fn bytes(&self) -> Vec<u8> {
        let names = |v: &[u8]| -> Vec<u8> {
            let names: Vec<&[u8]> = v.iter().map(|&i| NAMES[i as usize]).collect();
            names.join(&b'/')
        };
        match self {
            Target::Absolute(v) => [b"/", &names(v)[..]].concat(),
            Target::Relative(v) => names(v),
            Target::Up(i) => [b"../", NAMES[*i as usize]].concat(),
            Target::Root => b"/".to_vec(),
            Target::Dot => b".".to_vec(),
        }
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "-> {:?}", self.bytes().escape_ascii().to_string())
    }
}

// ---------------------------------------------------------------------------------------
// The reference model.

#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    Dir,
    File(Vec<u8>),
    Symlink(Vec<u8>),
    Fifo,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Meta {
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: i64,
    xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl Meta {
    fn new(mode: u32, mtime: i64) -> Meta {
        Meta {
            mode,
            uid: 0,
            gid: 0,
            mtime,
            xattrs: BTreeMap::new(),
        }
    }
}

#[derive(Clone, Debug)]
struct MNode {
    kind: Kind,
    meta: Meta,
    /// Paths with the same inode are hardlinks (directories: unused).
    inode: u64,
    /// The layer that supplied the entry, as [`layercake::Node::layer`] reports it.
    layer: Option<usize>,
}

impl MNode {
    fn is_dir(&self) -> bool {
        self.kind == Kind::Dir
    }
}

/// The kinds of failure compared between container and model.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Failure {
    NotFound,
    AlreadyExists,
    IsADirectory,
    NotADirectory,
    DirectoryNotEmpty,
    RootDirectory,
    InvalidPath,
    InvalidMode,
    SymlinkLoop,
    Unexpected(String),
}

fn failure(err: &Error) -> Failure {
    match err {
        Error::NotFound { .. } => Failure::NotFound,
        Error::AlreadyExists { .. } => Failure::AlreadyExists,
        Error::IsADirectory { .. } => Failure::IsADirectory,
        Error::NotADirectory { .. } => Failure::NotADirectory,
        Error::DirectoryNotEmpty { .. } => Failure::DirectoryNotEmpty,
        Error::RootDirectory { .. } => Failure::RootDirectory,
        Error::InvalidPath { .. } => Failure::InvalidPath,
        Error::InvalidMode { .. } => Failure::InvalidMode,
        Error::SymlinkLoop { .. } => Failure::SymlinkLoop,
        other => Failure::Unexpected(other.to_string()),
    }
}

/// Why the model did not give an answer.
enum Fail {
    /// The operation fails with this kind.
    Err(Failure),
    /// The operation crosses a symlink in a parent component: not modelled, not run.
    Skip,
}

fn fail<T>(kind: Failure) -> Result<T, Fail> {
    Err(Fail::Err(kind))
}

#[derive(Clone, Debug)]
struct Model {
    entries: BTreeMap<Path, MNode>,
    inodes: u64,
}

impl Model {
    fn new() -> Model {
        let root = MNode {
            kind: Kind::Dir,
            meta: Meta::new(0o755, 0),
            inode: 0,
            layer: None,
        };
        Model {
            entries: BTreeMap::from([(Vec::new(), root)]),
            inodes: 1,
        }
    }

    fn fresh(&mut self) -> u64 {
        self.inodes += 1;
        self.inodes
    }

    fn get(&self, path: &[u8]) -> Option<&MNode> {
        self.entries.get(path)
    }

    fn node(&mut self, path: &[u8]) -> &mut MNode {
        self.entries.get_mut(path).expect("resolved paths exist")
    }

    fn is_dir(&self, path: &[u8]) -> bool {
        self.get(path).is_some_and(MNode::is_dir)
    }

    fn has_children(&self, dir: &[u8]) -> bool {
        self.entries
            .keys()
            .any(|k| !k.is_empty() && parent(k) == dir)
    }

    /// Removes `path` and everything below it.
    fn remove_tree(&mut self, path: &[u8]) {
        self.entries
            .retain(|k, _| k.as_slice() != path && !below(k, path));
    }

    /// Removes everything below `dir`.
    fn clear_dir(&mut self, dir: &[u8]) {
        self.entries.retain(|k, _| !below(k, dir));
    }

    /// Puts `node` at `path`, replacing whatever was there with everything below it.
    fn put(&mut self, path: &[u8], node: MNode) {
        self.remove_tree(path);
        self.entries.insert(path.to_vec(), node);
    }

    /// R6: missing parents become new directories, lower non-directories are replaced.
    fn imply_parents(&mut self, path: &[u8], layer: usize) {
        for dir in ancestors(path) {
            if !self.is_dir(&dir) {
                let inode = self.fresh();
                self.put(
                    &dir,
                    MNode {
                        kind: Kind::Dir,
                        meta: Meta::new(0o755, 0),
                        inode,
                        layer: Some(layer),
                    },
                );
            }
        }
    }

    /// Applies one layer of the base image and returns the same changes as a [`Layer`].
    ///
    /// Entries below a non-directory entry of the same layer are dropped (the builder
    /// refuses them), and hardlinks are kept only where they resolve without depending
    /// on the order in which one layer's hardlinks are linked.
    fn apply_layer(&mut self, spec: &LayerSpec, index: usize) -> Layer {
        let mut builder = Layer::builder();
        // R4: opaque markers, then whiteouts, then entries, then hardlinks. Markers below
        // or at a non-directory entry of the same layer change nothing either way: that
        // entry replaces the whole lower subtree.
        for dir in &spec.opaques {
            builder = builder.opaque(dir.render());
            if self.is_dir(&dir.norm()) {
                self.clear_dir(&dir.norm());
            }
        }
        for path in &spec.whiteouts {
            builder = builder.whiteout(path.render());
            self.remove_tree(&path.norm());
        }
        let mut leaves: Vec<Path> = Vec::new();
        let mut kept = Vec::new();
        for (p, kind) in &spec.entries {
            let path = p.norm();
            if leaves.iter().any(|l| below(&path, l)) {
                continue;
            }
            if !matches!(kind, SpecKind::Dir(_)) {
                leaves.push(path.clone());
            }
            kept.push((p, path, kind));
        }
        let links: Vec<&Path> = kept
            .iter()
            .filter(|(_, _, k)| matches!(k, SpecKind::Hardlink(_)))
            .map(|(_, path, _)| path)
            .collect();
        for (p, path, kind) in &kept {
            let (entry, model) = match kind {
                SpecKind::Dir(m) => (Entry::dir().with_metadata(m.metadata()), Kind::Dir),
                SpecKind::File(data, m) => (
                    Entry::file(data.clone()).with_metadata(m.metadata()),
                    Kind::File(data.clone()),
                ),
                SpecKind::Symlink(t) => (Entry::symlink(t.bytes()), Kind::Symlink(t.bytes())),
                SpecKind::Fifo => (Entry::fifo(), Kind::Fifo),
                SpecKind::Hardlink(_) => continue,
            };
            let meta = match kind {
                SpecKind::Dir(m) | SpecKind::File(_, m) => m.meta(),
                SpecKind::Symlink(_) => Meta::new(0o777, 0),
                _ => Meta::new(0o644, 0),
            };
            builder = builder.entry(p.render(), entry);
            self.imply_parents(path, index);
            if model == Kind::Dir && self.is_dir(path) {
                // R1: directory over directory keeps the children.
                let node = self.node(path);
                node.meta = meta;
                node.layer = Some(index);
            } else {
                let inode = self.fresh();
                self.put(
                    path,
                    MNode {
                        kind: model,
                        meta,
                        inode,
                        layer: Some(index),
                    },
                );
            }
        }
        // R7: a hardlink shares the file its target names once the entries are applied.
        let mut resolved = Vec::new();
        for (p, path, kind) in &kept {
            let SpecKind::Hardlink(target) = kind else {
                continue;
            };
            let t = target.norm();
            let independent = !links
                .iter()
                .any(|l| **l == t || below(&t, l) || below(l, &t));
            if independent && self.get(&t).is_some_and(|n| !n.is_dir()) {
                resolved.push((*p, path, target, t));
            }
        }
        for (p, path, target, t) in resolved {
            builder = builder.hard_link(target.render(), p.render());
            let mut node = self.entries[&t].clone();
            node.layer = Some(index);
            self.imply_parents(path, index);
            self.put(path, node);
        }
        builder.build().expect("the generated layer is valid")
    }

    /// Resolves `path` as the kernel would in a chroot, following a symlink only in the
    /// last component (when `follow`). Returns the resolved path and whether it exists.
    fn resolve(&self, path: &[u8], follow: bool) -> Result<(Path, bool), Fail> {
        self.resolve_from(path, follow, &mut 0)
    }

    fn resolve_from(
        &self,
        path: &[u8],
        follow: bool,
        hops: &mut usize,
    ) -> Result<(Path, bool), Fail> {
        let names = split(path);
        let mut here: Path = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let last = i + 1 == names.len();
            if !self.is_dir(&here) {
                return fail(Failure::NotADirectory);
            }
            let next = join(&here, name);
            match self.get(&next) {
                None if last => return Ok((next, false)),
                None => return fail(Failure::NotFound),
                Some(MNode {
                    kind: Kind::Symlink(target),
                    ..
                }) => {
                    if !last {
                        return Err(Fail::Skip);
                    }
                    if !follow {
                        return Ok((next, true));
                    }
                    *hops += 1;
                    if *hops > MAX_HOPS {
                        return fail(Failure::SymlinkLoop);
                    }
                    // Targets are generated with `..` only in front, so resolving them
                    // lexically against the (symlink-free) directory is exact.
                    let mut stack: Vec<&[u8]> = if target.starts_with(b"/") {
                        Vec::new()
                    } else {
                        split(&here)
                    };
                    for c in target.split(|&b| b == b'/') {
                        match c {
                            b"" | b"." => {}
                            b".." => {
                                stack.pop();
                            }
                            name => stack.push(name),
                        }
                    }
                    return self.resolve_from(&stack.join(&b'/'), true, hops);
                }
                Some(_) => here = next,
            }
        }
        Ok((here, true))
    }

    /// An existing entry, the last symlink followed or not.
    fn existing(&self, path: &P, follow: bool) -> Result<Path, Fail> {
        match self.resolve(&path.norm(), follow)? {
            (p, true) => Ok(p),
            (_, false) => fail(Failure::NotFound),
        }
    }

    /// A free name (parents followed, the last component not).
    fn vacant(&self, path: &P) -> Result<Path, Fail> {
        match self.resolve(&path.norm(), false)? {
            (p, false) => Ok(p),
            (_, true) => fail(Failure::AlreadyExists),
        }
    }

    /// Changes metadata in place; a file gets an inode of its own (copy-up).
    fn update(&mut self, path: &P, top: usize, f: impl FnOnce(&mut Meta)) -> Result<(), Fail> {
        let path = self.existing(path, true)?;
        let inode = self.fresh();
        let node = self.node(&path);
        f(&mut node.meta);
        node.layer = Some(top);
        if !node.is_dir() {
            node.inode = inode;
        }
        Ok(())
    }

    /// Applies one container operation. `Ok(Some(bytes))` is what a read returns.
    fn apply(&mut self, op: &Op, clock: i64, top: usize) -> Result<Option<Vec<u8>>, Fail> {
        match op {
            Op::Write(p, data) => {
                let (path, exists) = self.resolve(&p.norm(), true)?;
                let inode = self.fresh();
                if !exists {
                    let node = MNode {
                        kind: Kind::File(data.clone()),
                        meta: Meta::new(0o644, clock),
                        inode,
                        layer: Some(top),
                    };
                    self.entries.insert(path, node);
                    return Ok(None);
                }
                let node = self.node(&path);
                match node.kind {
                    Kind::Dir => fail(Failure::IsADirectory),
                    Kind::Fifo => fail(Failure::InvalidPath),
                    Kind::Symlink(_) => unreachable!("followed"),
                    Kind::File(_) => {
                        node.kind = Kind::File(data.clone());
                        node.meta.mtime = clock;
                        node.inode = inode;
                        node.layer = Some(top);
                        Ok(None)
                    }
                }
            }
            Op::Read(p) => {
                let path = self.existing(p, true)?;
                match &self.entries[&path].kind {
                    Kind::Dir => fail(Failure::IsADirectory),
                    Kind::File(data) => Ok(Some(data.clone())),
                    _ => fail(Failure::InvalidPath),
                }
            }
            Op::CreateDir(p) => {
                let path = self.vacant(p)?;
                let inode = self.fresh();
                let node = MNode {
                    kind: Kind::Dir,
                    meta: Meta::new(0o755, clock),
                    inode,
                    layer: Some(top),
                };
                self.entries.insert(path, node);
                Ok(None)
            }
            Op::CreateDirAll(p) => {
                // Like `mkdir -p`: a component that exists must be a directory once
                // followed; a dangling symlink is an existing name, not a place to create.
                let mut done: Path = Vec::new();
                for name in split(&p.norm()) {
                    let next = join(&done, name);
                    match self.resolve(&next, true)? {
                        (path, true) if self.is_dir(&path) => done = path,
                        (_, true) => return fail(Failure::NotADirectory),
                        (path, false) if path != next => return fail(Failure::AlreadyExists),
                        (path, false) => {
                            let inode = self.fresh();
                            let node = MNode {
                                kind: Kind::Dir,
                                meta: Meta::new(0o755, clock),
                                inode,
                                layer: Some(top),
                            };
                            self.entries.insert(path.clone(), node);
                            done = path;
                        }
                    }
                }
                Ok(None)
            }
            Op::RemoveFile(p) => {
                let path = self.existing(p, false)?;
                if self.is_dir(&path) {
                    return fail(Failure::IsADirectory);
                }
                self.remove_tree(&path);
                Ok(None)
            }
            Op::RemoveDir(p) => {
                let path = self.existing(p, false)?;
                if !self.is_dir(&path) {
                    fail(Failure::NotADirectory)
                } else if self.has_children(&path) {
                    fail(Failure::DirectoryNotEmpty)
                } else if path.is_empty() {
                    fail(Failure::RootDirectory)
                } else {
                    self.remove_tree(&path);
                    Ok(None)
                }
            }
            Op::RemoveDirAll(p) => {
                let path = self.existing(p, false)?;
                if path.is_empty() {
                    return fail(Failure::RootDirectory);
                }
                self.remove_tree(&path);
                Ok(None)
            }
            Op::Rename(from, to, _) => {
                let from = self.existing(from, false)?;
                let (to, taken) = self.resolve(&to.norm(), false)?;
                if from.is_empty() || to.is_empty() {
                    return fail(Failure::RootDirectory);
                }
                let node = &self.entries[&from];
                let is_dir = node.is_dir();
                let target = self.get(&to).filter(|_| taken);
                // rename(2): two names of one file: nothing happens.
                if from == to
                    || target.is_some_and(|t| !is_dir && !t.is_dir() && t.inode == node.inode)
                {
                    return Ok(None);
                }
                if is_dir && below(&to, &from) {
                    return fail(Failure::InvalidPath);
                }
                match target {
                    Some(t) if is_dir && !t.is_dir() => return fail(Failure::NotADirectory),
                    Some(t) if is_dir && t.is_dir() && self.has_children(&to) => {
                        return fail(Failure::DirectoryNotEmpty)
                    }
                    Some(t) if !is_dir && t.is_dir() => return fail(Failure::IsADirectory),
                    _ => {}
                }
                let moved: Vec<(Path, MNode)> = self
                    .entries
                    .iter()
                    .filter(|(k, _)| **k == from || below(k, &from))
                    .map(|(k, n)| {
                        let mut n = n.clone();
                        n.layer = Some(top);
                        ([&to[..], &k[from.len()..]].concat(), n)
                    })
                    .collect();
                self.remove_tree(&from);
                self.remove_tree(&to);
                self.entries.extend(moved);
                Ok(None)
            }
            Op::Symlink(target, link) => {
                let path = self.vacant(link)?;
                let inode = self.fresh();
                let node = MNode {
                    kind: Kind::Symlink(target.bytes()),
                    meta: Meta::new(0o777, clock),
                    inode,
                    layer: Some(top),
                };
                self.entries.insert(path, node);
                Ok(None)
            }
            Op::HardLink(original, link, _) => {
                let original = self.existing(original, false)?;
                if self.is_dir(&original) {
                    return fail(Failure::IsADirectory);
                }
                let link = self.vacant(link)?;
                let mut node = self.entries[&original].clone();
                node.layer = Some(top);
                self.entries.insert(link, node);
                Ok(None)
            }
            Op::SetPermissions(p, mode) => {
                if *mode > 0o7777 {
                    return fail(Failure::InvalidMode);
                }
                self.update(p, top, |m| m.mode = *mode).map(|()| None)
            }
            Op::SetOwner(p, uid, gid) => self
                .update(p, top, |m| {
                    m.uid = *uid;
                    m.gid = *gid;
                })
                .map(|()| None),
            Op::SetMtime(p, mtime) => self.update(p, top, |m| m.mtime = *mtime).map(|()| None),
            Op::SetXattr(p, name, value) => self
                .update(p, top, |m| {
                    m.xattrs.insert(
                        XATTR_NAMES[*name as usize].to_vec(),
                        XATTR_VALUES[*value as usize].to_vec(),
                    );
                })
                .map(|()| None),
            Op::RemoveXattr(p, name) => self
                .update(p, top, |m| {
                    m.xattrs.remove(XATTR_NAMES[*name as usize]);
                })
                .map(|()| None),
            Op::SetClock(_) => unreachable!("handled by the driver"),
        }
    }
}

impl Model {
    /// The path of the `n`th entry below the root (modulo their number), as names; for an
    /// odd `n`, of the `n`th non-directory if there is one.
    fn pick(&self, n: u16) -> Vec<u8> {
        let mut paths: Vec<&Path> = self.entries.keys().filter(|p| !p.is_empty()).collect();
        if n % 2 == 1 && paths.iter().any(|p| !self.is_dir(p)) {
            paths.retain(|p| !self.is_dir(p));
        }
        if paths.is_empty() {
            return Vec::new();
        }
        split(paths[n as usize % paths.len()])
            .iter()
            .map(|c| NAMES.iter().position(|n| n == c).expect("a known name") as u8)
            .collect()
    }

    /// `op` with every picked path replaced by the entry it names now.
    fn concretize(&self, op: &Op) -> Op {
        let p = |p: &P| match p.pick {
            Some(n) => P {
                names: self.pick(n),
                style: p.style,
                pick: None,
            },
            None => p.clone(),
        };
        let pair = |a: &P, b: &P, near: bool| {
            let (a, b) = (p(a), p(b));
            let b = if near { b.beside(&a) } else { b };
            (a, b)
        };
        match op {
            Op::Write(a, d) => Op::Write(p(a), d.clone()),
            Op::Read(a) => Op::Read(p(a)),
            Op::CreateDir(a) => Op::CreateDir(p(a)),
            Op::CreateDirAll(a) => Op::CreateDirAll(p(a)),
            Op::RemoveFile(a) => Op::RemoveFile(p(a)),
            Op::RemoveDir(a) => Op::RemoveDir(p(a)),
            Op::RemoveDirAll(a) => Op::RemoveDirAll(p(a)),
            Op::Rename(a, b, near) => {
                let (a, b) = pair(a, b, *near);
                Op::Rename(a, b, false)
            }
            Op::Symlink(t, a) => Op::Symlink(t.clone(), p(a)),
            Op::HardLink(a, b, near) => {
                let (a, b) = pair(a, b, *near);
                Op::HardLink(a, b, false)
            }
            Op::SetPermissions(a, m) => Op::SetPermissions(p(a), *m),
            Op::SetOwner(a, u, g) => Op::SetOwner(p(a), *u, *g),
            Op::SetMtime(a, t) => Op::SetMtime(p(a), *t),
            Op::SetXattr(a, k, v) => Op::SetXattr(p(a), *k, *v),
            Op::RemoveXattr(a, k) => Op::RemoveXattr(p(a), *k),
            Op::SetClock(t) => Op::SetClock(*t),
        }
    }
}

/// `docker diff` computed from two models: `A` for every new path, `D` for a deleted path
/// whose parent is a directory on both sides, `C` for a changed entry and for every
/// directory above a change.
fn model_diff(lower: &Model, upper: &Model) -> BTreeMap<Path, char> {
    let mut out = BTreeMap::new();
    for (path, u) in upper.entries.iter().filter(|(p, _)| !p.is_empty()) {
        match lower.get(path) {
            None => {
                out.insert(path.clone(), 'A');
            }
            Some(l) if l.kind != u.kind || l.meta != u.meta => {
                out.insert(path.clone(), 'C');
            }
            Some(_) => {}
        }
    }
    for path in lower.entries.keys().filter(|p| !p.is_empty()) {
        if upper.get(path).is_none() && upper.is_dir(parent(path)) {
            out.insert(path.clone(), 'D');
        }
    }
    let changed: Vec<Path> = out.keys().cloned().collect();
    for path in changed {
        for dir in ancestors(&path) {
            out.entry(dir).or_insert('C');
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Comparing a tree with the model.

/// One entry as a line of text: path, type, metadata, contents or link target, and the
/// layer that supplied it when there is one to compare.
fn line(
    path: &[u8],
    kind: char,
    m: &Meta,
    data: Option<&[u8]>,
    layer: Option<Option<usize>>,
) -> String {
    let xattrs: Vec<String> = m
        .xattrs
        .iter()
        .map(|(k, v)| format!("{}={}", k.escape_ascii(), v.escape_ascii()))
        .collect();
    format!(
        "{} {kind} {:o} {}:{} {} [{}] {:?} {}",
        show(path),
        m.mode,
        m.uid,
        m.gid,
        m.mtime,
        xattrs.join(","),
        data.map(|d| d.escape_ascii().to_string()),
        layer.map_or(String::new(), |l| format!("layer {l:?}")),
    )
}

/// Every entry of a tree (the root first), one line each, sorted; with `provenance`, the
/// layer that supplied it.
fn dump_tree(tree: &Tree, provenance: bool) -> String {
    let mut lines = Vec::new();
    let root = tree.root();
    let nodes = std::iter::once((Vec::new(), root.clone()))
        .chain(tree.walk().map(|(p, n)| (p.as_bytes().to_vec(), n.clone())));
    for (path, node) in nodes {
        let m = node.metadata();
        let meta = Meta {
            mode: m.mode,
            uid: m.uid,
            gid: m.gid,
            mtime: m.mtime,
            xattrs: m
                .xattrs
                .iter()
                .map(|(k, v)| (k.to_vec(), v.to_vec()))
                .collect(),
        };
        let data = match node.contents() {
            Some(c) => Some(c.to_bytes().expect("contents readable")),
            None => node.link_target().cloned(),
        };
        lines.push(line(
            &path,
            node.file_type().as_char(),
            &meta,
            data.as_deref(),
            provenance.then(|| node.layer()),
        ));
    }
    lines.sort();
    lines.join("\n")
}

/// The model as [`dump_tree`] shows a tree.
fn dump_model(model: &Model, provenance: bool) -> String {
    let mut lines = Vec::new();
    for (path, node) in &model.entries {
        let (kind, data) = match &node.kind {
            Kind::Dir => ('d', None),
            Kind::File(d) => ('-', Some(&d[..])),
            Kind::Symlink(t) => ('l', Some(&t[..])),
            Kind::Fifo => ('p', None),
        };
        lines.push(line(
            path,
            kind,
            &node.meta,
            data,
            provenance.then_some(node.layer),
        ));
    }
    lines.sort();
    lines.join("\n")
}

/// The tree holds exactly the model's entries, and two paths share a file exactly when
/// the model gives them one inode.
fn check_tree(tree: &Tree, model: &Model, what: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!(dump_tree(tree, true), dump_model(model, true), "{}", what);
    let leaves: Vec<(Path, layercake::Node)> = tree
        .walk()
        .filter(|(_, n)| !n.is_dir())
        .map(|(p, n)| (p.as_bytes().to_vec(), n.clone()))
        .collect();
    for (i, (a, na)) in leaves.iter().enumerate() {
        for (b, nb) in &leaves[i + 1..] {
            let linked = model.entries[a].inode == model.entries[b].inode;
            prop_assert_eq!(
                na.same_file(nb),
                linked,
                "{}: {} and {} hardlinked",
                what,
                show(a),
                show(b)
            );
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Generated cases.

#[derive(Clone, Debug)]
struct MetaSpec {
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: i64,
    xattr: Option<(u8, u8)>,
}

impl MetaSpec {
    fn metadata(&self) -> Metadata {
        let mut m = Metadata::new(self.mode)
            .owner(self.uid, self.gid)
            .mtime(self.mtime);
        if let Some((k, v)) = self.xattr {
            m = m.xattr(XATTR_NAMES[k as usize], XATTR_VALUES[v as usize]);
        }
        m
    }

    fn meta(&self) -> Meta {
        let mut m = Meta {
            mode: self.mode,
            uid: self.uid,
            gid: self.gid,
            mtime: self.mtime,
            xattrs: BTreeMap::new(),
        };
        if let Some((k, v)) = self.xattr {
            m.xattrs.insert(
                XATTR_NAMES[k as usize].to_vec(),
                XATTR_VALUES[v as usize].to_vec(),
            );
        }
        m
    }
}

#[derive(Clone, Debug)]
enum SpecKind {
    Dir(MetaSpec),
    File(Vec<u8>, MetaSpec),
    Symlink(Target),
    Fifo,
    Hardlink(P),
}

#[derive(Clone, Debug)]
struct LayerSpec {
    entries: BTreeMap<P, SpecKind>,
    whiteouts: BTreeSet<P>,
    opaques: BTreeSet<P>,
}

#[derive(Clone, Debug)]
enum Op {
    Write(P, Vec<u8>),
    Read(P),
    CreateDir(P),
    CreateDirAll(P),
    RemoveFile(P),
    RemoveDir(P),
    RemoveDirAll(P),
    /// With `true`, the second path is the second name in the first one's directory.
    Rename(P, P, bool),
    Symlink(Target, P),
    /// As `Rename`.
    HardLink(P, P, bool),
    SetPermissions(P, u32),
    SetOwner(P, u64, u64),
    SetMtime(P, i64),
    SetXattr(P, u8, u8),
    RemoveXattr(P, u8),
    SetClock(i64),
}

/// One to three names, mostly one or two: deep paths mostly miss.
fn names() -> impl Strategy<Value = Vec<u8>> {
    let name = 0..NAMES.len() as u8;
    prop_oneof![
        4 => prop::collection::vec(name.clone(), 1),
        4 => prop::collection::vec(name.clone(), 2),
        1 => prop::collection::vec(name, 3),
    ]
}

/// A path below the root, in the canonical spelling (for layer specs).
fn layer_path() -> impl Strategy<Value = P> {
    names().prop_map(|names| P {
        names,
        style: 0,
        pick: None,
    })
}

/// A path for a container operation: mostly below the root, sometimes the root, in any
/// spelling.
fn op_path() -> impl Strategy<Value = P> {
    prop_oneof![
        1 => (0..3u8).prop_map(|style| P { names: Vec::new(), style, pick: None }),
        8 => (names(), 0..3u8).prop_map(|(names, style)| P { names, style, pick: None }),
        4 => (any::<u16>(), 0..3u8).prop_map(|(n, style)| P { names: Vec::new(), style, pick: Some(n) }),
    ]
}

/// A path for an operation that wants a file: often a non-directory of the model.
fn file_path() -> impl Strategy<Value = P> {
    prop_oneof![
        1 => op_path(),
        2 => (any::<u16>(), 0..3u8).prop_map(|(n, style)| P { names: Vec::new(), style, pick: Some(n | 1) }),
    ]
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        3 => names().prop_map(Target::Absolute),
        3 => names().prop_map(Target::Relative),
        1 => (0..NAMES.len() as u8).prop_map(Target::Up),
        1 => Just(Target::Root),
        1 => Just(Target::Dot),
    ]
}

fn contents() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => prop::collection::vec(any::<u8>(), 0..12),
        1 => Just(vec![7; 700]),
    ]
}

fn meta_spec() -> impl Strategy<Value = MetaSpec> {
    (
        prop::sample::select(&MODES[..]),
        prop::sample::select(&IDS[..]),
        prop::sample::select(&IDS[..]),
        prop::sample::select(&TIMES[..]),
        prop::option::of((0..XATTR_NAMES.len() as u8, 0..XATTR_VALUES.len() as u8)),
    )
        .prop_map(|(mode, uid, gid, mtime, xattr)| MetaSpec {
            mode,
            uid,
            gid,
            mtime,
            xattr,
        })
}

fn spec_kind() -> impl Strategy<Value = SpecKind> {
    prop_oneof![
        3 => meta_spec().prop_map(SpecKind::Dir),
        4 => (contents(), meta_spec()).prop_map(|(d, m)| SpecKind::File(d, m)),
        2 => target().prop_map(SpecKind::Symlink),
        1 => Just(SpecKind::Fifo),
        2 => layer_path().prop_map(SpecKind::Hardlink),
    ]
}

fn layer_spec() -> impl Strategy<Value = LayerSpec> {
    (
        prop::collection::btree_map(layer_path(), spec_kind(), 1..10),
        prop::collection::btree_set(layer_path(), 0..3),
        prop::collection::btree_set(layer_path(), 0..2),
    )
        .prop_map(|(entries, whiteouts, opaques)| LayerSpec {
            entries,
            whiteouts,
            opaques,
        })
}

fn op() -> impl Strategy<Value = Op> {
    let xattr = (0..XATTR_NAMES.len() as u8, 0..XATTR_VALUES.len() as u8);
    prop_oneof![
        4 => (file_path(), contents()).prop_map(|(p, d)| Op::Write(p, d)),
        2 => file_path().prop_map(Op::Read),
        3 => op_path().prop_map(Op::CreateDir),
        2 => op_path().prop_map(Op::CreateDirAll),
        2 => op_path().prop_map(Op::RemoveFile),
        2 => op_path().prop_map(Op::RemoveDir),
        1 => op_path().prop_map(Op::RemoveDirAll),
        3 => (op_path(), op_path(), any::<bool>())
            .prop_map(|(a, b, near)| Op::Rename(a, b, near)),
        2 => (target(), op_path()).prop_map(|(t, p)| Op::Symlink(t, p)),
        3 => (file_path(), op_path(), any::<bool>())
            .prop_map(|(a, b, near)| Op::HardLink(a, b, near)),
        1 => (op_path(), prop::sample::select(&[0o644, 0o700, 0o4755, 0o7777, 0o10000, 0o100644][..]))
            .prop_map(|(p, m)| Op::SetPermissions(p, m)),
        1 => (op_path(), prop::sample::select(&IDS[..]), prop::sample::select(&IDS[..]))
            .prop_map(|(p, u, g)| Op::SetOwner(p, u, g)),
        1 => (op_path(), prop::sample::select(&TIMES[..])).prop_map(|(p, t)| Op::SetMtime(p, t)),
        1 => (op_path(), xattr).prop_map(|(p, (k, v))| Op::SetXattr(p, k, v)),
        1 => (op_path(), 0..XATTR_NAMES.len() as u8).prop_map(|(p, k)| Op::RemoveXattr(p, k)),
        1 => prop::sample::select(&TIMES[..]).prop_map(Op::SetClock),
    ]
}

fn run_op(c: &mut Container, op: &Op) -> Result<Option<Vec<u8>>, Failure> {
    let done = |r: layercake::Result<()>| r.map(|()| None);
    let result = match op {
        Op::Write(p, data) => done(c.write(p.render(), data.clone())),
        Op::Read(p) => c.read(p.render()).map(|b| Some(b.to_vec())),
        Op::CreateDir(p) => done(c.create_dir(p.render())),
        Op::CreateDirAll(p) => done(c.create_dir_all(p.render())),
        Op::RemoveFile(p) => done(c.remove_file(p.render())),
        Op::RemoveDir(p) => done(c.remove_dir(p.render())),
        Op::RemoveDirAll(p) => done(c.remove_dir_all(p.render())),
        Op::Rename(a, b, _) => done(c.rename(a.render(), b.render())),
        Op::Symlink(t, p) => done(c.symlink(t.bytes(), p.render())),
        Op::HardLink(a, b, _) => done(c.hard_link(a.render(), b.render())),
        Op::SetPermissions(p, mode) => done(c.set_permissions(p.render(), *mode)),
        Op::SetOwner(p, uid, gid) => done(c.set_owner(p.render(), *uid, *gid)),
        Op::SetMtime(p, t) => done(c.set_mtime(p.render(), *t)),
        Op::SetXattr(p, k, v) => done(c.set_xattr(
            p.render(),
            XATTR_NAMES[*k as usize],
            XATTR_VALUES[*v as usize],
        )),
        Op::RemoveXattr(p, k) => done(c.remove_xattr(p.render(), XATTR_NAMES[*k as usize])),
        Op::SetClock(_) => unreachable!("handled by the driver"),
    };
    result.map_err(|e| failure(&e))
}

/// Commits with `style`, reads the new layer back from its tar bytes, applies it to the
/// base tree and compares with the model; checks the layer's entries and markers against
/// the model's diff. Returns the committed image.
fn check_commit(
    c: &Container,
    base_tree: &Tree,
    base: &Model,
    model: &Model,
    diff: &BTreeMap<Path, char>,
    style: WhiteoutStyle,
) -> Result<Image, TestCaseError> {
    let what = format!("commit with {style:?}");
    let committed = c
        .commit(
            &CommitOptions::new()
                .commit(layercake::Commit::new().created(0))
                .whiteouts(style),
        )
        .map_err(|e| TestCaseError::fail(format!("{what}: {e}")))?;
    prop_assert_eq!(committed.layers().len(), c.image().layers().len() + 1);
    let layer = committed.layers().last().unwrap();
    let tar = layer
        .tar()
        .map_err(|e| TestCaseError::fail(format!("{what}: the new layer's tar: {e}")))?;
    let imported = Layer::from_tar(tar.clone())
        .map_err(|e| TestCaseError::fail(format!("{what}: reading the tar back: {e}")))?;
    prop_assert_eq!(imported.diff_id(), layer.diff_id());
    let applied = base_tree
        .apply(&imported)
        .map_err(|e| TestCaseError::fail(format!("{what}: applying: {e}")))?;
    prop_assert_eq!(
        dump_tree(&applied, false),
        dump_model(model, false),
        "{}",
        what
    );
    prop_assert_eq!(&applied, c.tree());
    prop_assert_eq!(&committed.tree().unwrap(), &applied);

    // Hardlinks written into the layer are hardlinks in the container and after import.
    let changes = imported
        .changeset()
        .map_err(|e| TestCaseError::fail(format!("{what}: {e}")))?;
    for (path, entry) in changes.entries() {
        if let layercake::EntryKind::Hardlink(target) = entry.kind() {
            for tree in [c.tree(), &applied] {
                let (a, b) = (tree.lookup(path)?.unwrap(), tree.lookup(target)?.unwrap());
                prop_assert!(a.same_file(&b), "{}: /{} and /{}", what, path, target);
            }
        }
    }

    let root_changed = base.entries[&Vec::new()].meta != model.entries[&Vec::new()].meta;
    let mut wanted: BTreeSet<Path> = diff
        .iter()
        .filter(|(_, &k)| k != 'D')
        .map(|(p, _)| p.clone())
        .collect();
    if root_changed {
        wanted.insert(Vec::new());
    }
    let deleted: BTreeSet<Path> = diff
        .iter()
        .filter(|(_, &k)| k == 'D')
        .map(|(p, _)| p.clone())
        .collect();
    let entries: BTreeSet<Path> = changes
        .entries()
        .map(|(p, _)| p.as_bytes().to_vec())
        .collect();
    let whiteouts: BTreeSet<Path> = changes.whiteouts().map(|p| p.as_bytes().to_vec()).collect();
    let opaques: Vec<Path> = changes
        .opaque_dirs()
        .map(|p| p.as_bytes().to_vec())
        .collect();
    match style {
        WhiteoutStyle::Explicit => {
            prop_assert_eq!(&entries, &wanted, "{}: entries", what);
            prop_assert_eq!(&whiteouts, &deleted, "{}: whiteouts", what);
            prop_assert!(opaques.is_empty(), "{}: opaque dirs {:?}", what, opaques);
        }
        _ => {
            // An opaque directory is one on both sides that lost a child; it carries its
            // whole new contents, and whiteouts below it are dropped.
            for dir in &opaques {
                prop_assert!(base.is_dir(dir) && model.is_dir(dir), "{}", what);
                prop_assert!(
                    deleted.iter().any(|d| parent(d) == dir.as_slice()),
                    "{}: opaque {} lost nothing",
                    what,
                    show(dir)
                );
                for path in model.entries.keys().filter(|p| below(p, dir)) {
                    prop_assert!(entries.contains(path), "{}: {} missing", what, show(path));
                }
            }
            let under_opaque = |p: &Path| opaques.iter().any(|d| p == d || below(p, d));
            prop_assert!(wanted.is_subset(&entries), "{}: entries", what);
            prop_assert!(
                entries
                    .iter()
                    .all(|p| wanted.contains(p) || under_opaque(p)),
                "{}: extra entries",
                what
            );
            prop_assert!(whiteouts.is_subset(&deleted), "{}: whiteouts", what);
            for d in &deleted {
                let hidden = opaques.iter().any(|o| below(d, o));
                prop_assert!(
                    whiteouts.contains(d) != hidden,
                    "{}: {} deleted once",
                    what,
                    show(d)
                );
            }
        }
    }
    Ok(committed)
}

/// The image files a committed image is exported to and imported from.
#[derive(Debug, Clone, Copy)]
enum ImageFile {
    /// A docker-archive of plain tars: layers are read in place from the file.
    DockerArchive,
    /// An oci-archive of gzip blobs: layers are decompressed into temporary files.
    OciArchiveGzip,
    /// An OCI layout directory of zstd blobs.
    OciLayoutZstd,
}

/// Exports the committed image to an image file on disk, imports it again, and compares
/// the imported image with the committed one and its tree with the model: same ids, same
/// entries with the same provenance, every file read from disk.
fn check_image_file(
    committed: &Image,
    c: &Container,
    model: &Model,
    format: ImageFile,
) -> Result<(), TestCaseError> {
    use layercake::archive::{Archive, Format, Writer};
    use layercake::Compression;

    let what = format!("committed image through {format:?}");
    let fail = |step: &str, e: Error| TestCaseError::fail(format!("{what}: {step}: {e}"));
    let scratch = TempFile::new("image");
    let written = match format {
        ImageFile::DockerArchive => Writer::new(Format::DockerArchive)
            .image(committed, ["model:1"])
            .write(std::fs::File::create(scratch.path()).unwrap()),
        ImageFile::OciArchiveGzip => Writer::new(Format::OciArchive)
            .compression(Compression::Gzip)
            .image(committed, ["model:1"])
            .write(std::fs::File::create(scratch.path()).unwrap()),
        ImageFile::OciLayoutZstd => Writer::new(Format::OciLayout)
            .compression(Compression::Zstd)
            .image(committed, ["model:1"])
            .write_dir(scratch.path()),
    };
    written.map_err(|e| fail("writing", e))?;
    let imported = Archive::open(scratch.path())
        .and_then(|archive| archive.image("model:1"))
        .map_err(|e| fail("reading", e))?;
    prop_assert_eq!(imported.id(), committed.id(), "{}", what);
    prop_assert_eq!(imported.diff_ids(), committed.diff_ids(), "{}", what);
    let tree = imported.tree().map_err(|e| fail("merging", e))?;
    prop_assert_eq!(
        dump_tree(&tree, false),
        dump_model(model, false),
        "{}",
        what
    );
    let committed_tree = committed.tree().map_err(|e| fail("committed tree", e))?;
    prop_assert_eq!(
        dump_tree(&tree, true),
        dump_tree(&committed_tree, true),
        "{}: provenance",
        what
    );
    prop_assert_eq!(&tree, c.tree(), "{}", what);
    for (path, node) in tree.walk() {
        if let Some(contents) = node.contents() {
            prop_assert!(
                contents.as_bytes().is_none(),
                "{}: /{} in memory",
                what,
                path
            );
        }
    }
    Ok(())
}

#[derive(Clone, Debug)]
struct Case {
    layers: Vec<LayerSpec>,
    ops: Vec<Op>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(layer_spec(), 1..=3),
        prop::collection::vec(op(), 1..48),
    )
        .prop_map(|(layers, ops)| Case { layers, ops })
}

fn run(case: &Case) -> Result<(), TestCaseError> {
    let mut model = Model::new();
    let mut builder = Image::builder();
    for (index, spec) in case.layers.iter().enumerate() {
        builder = builder.layer(model.apply_layer(spec, index));
    }
    let image = builder.build().unwrap();
    let base_tree = image
        .tree()
        .map_err(|e| TestCaseError::fail(format!("base image: {e}")))?;
    check_tree(&base_tree, &model, "base image")?;
    let base = model.clone();

    let top = case.layers.len();
    let mut clock = 1_000;
    let mut c = Container::new(&image)?;
    c.set_clock(clock);
    for (i, op) in case.ops.iter().enumerate() {
        if let Op::SetClock(t) = op {
            clock = *t;
            c.set_clock(clock);
            continue;
        }
        let op = &model.concretize(op);
        let mut next = model.clone();
        let expected = match next.apply(op, clock, top) {
            Err(Fail::Skip) => continue,
            Err(Fail::Err(kind)) => Err(kind),
            Ok(read) => Ok(read),
        };
        let actual = run_op(&mut c, op);
        prop_assert_eq!(&actual, &expected, "op {} {:?}", i, op);
        // Failed operations change nothing, except that create_dir_all keeps the
        // directories it made before the failure.
        model = next;
        check_tree(c.tree(), &model, &format!("after op {i} {op:?}"))?;
    }

    let diff = model_diff(&base, &model);
    let changes = c
        .diff()
        .map_err(|e| TestCaseError::fail(format!("docker diff: {e}")))?;
    prop_assert!(changes.windows(2).all(|w| w[0].path < w[1].path));
    let got: BTreeMap<Path, char> = changes
        .iter()
        .map(|ch| (ch.path.as_bytes().to_vec(), ch.kind.as_char()))
        .collect();
    prop_assert_eq!(&got, &diff, "docker diff");
    for ch in &changes {
        let letter = match ch.kind {
            ChangeKind::Added => 'A',
            ChangeKind::Changed => 'C',
            ChangeKind::Deleted => 'D',
        };
        prop_assert_eq!(ch.to_string(), format!("{letter} /{}", ch.path));
    }

    let formats = [
        ImageFile::DockerArchive,
        ImageFile::OciArchiveGzip,
        ImageFile::OciLayoutZstd,
    ];
    for (i, style) in [WhiteoutStyle::Explicit, WhiteoutStyle::Opaque]
        .into_iter()
        .enumerate()
    {
        let committed = check_commit(&c, &base_tree, &base, &model, &diff, style)?;
        // Export and import through an image file on disk: about one case in four (an
        // image file costs more than the rest of a case), each kind of file in turn.
        if (case.ops.len() + 4 * i) % 8 == 0 {
            let format = formats[(case.ops.len() / 8 + case.layers.len()) % formats.len()];
            check_image_file(&committed, &c, &model, format)?;
        }
    }
    Ok(())
}

proptest! {
    // 256 cases (a few seconds in a debug build) unless PROPTEST_CASES asks for more.
    #![proptest_config(Config {
        failure_persistence: None,
        ..Config::default()
    })]

    #[test]
    fn container_matches_model(case in case()) {
        run(&case)?;
    }
}
