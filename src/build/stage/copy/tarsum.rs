//! The classic builder's source hash, the `<hash>` of `COPY file:<hash> in /dst`: per entry,
//! the SHA-256 of a tarsum v1 header followed by a regular file's contents; a directory is
//! `dir:` and the SHA-256 of its entries' hashes sorted and joined with `,` (the directory's
//! own entry included, its name with a trailing `/`); several sources are `multi:` and the
//! SHA-256 of their hashes joined with `,` in source order.
//!
//! The header is the tar header fields as `key` + `value` strings, concatenated in this order:
//! `name`, `mode` (decimal, with the file-type bits Go's `archive/tar` adds: `0o100644` is
//! `33188`), `uid`, `gid`, `size` (0 but for regular files), `typeflag` (one byte),
//! `linkname`, `uname`, `gname`, `devmajor`, `devminor`, then the `security.capability`
//! xattr if set (the only one Docker reads). No mtime. Names are relative to the source's
//! root.
//!
//! Where the names `uname` and `gname` come from depends on the source, as in dockerd:
//! the context arrives as the client's tar, whose headers carry no names; a stage or image
//! is read from disk, and Go looks its owners up in the *build host's* `/etc/passwd` and
//! `/etc/group` (the daemon's host, here the host running the build).

use std::collections::BTreeMap;
use std::io::Read;

use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};
use crate::tree::{Node, Tree};
use crate::FileType;

/// Where a source's files come from, which decides their owner names in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Source {
    /// The build context: no owner names.
    Context,
    /// Another stage or an image: owner names from the host's files.
    Filesystem,
}

/// `file:<hex>` for the file (or symlink, device) `node` at `path` of its source.
pub(super) fn file(path: &str, node: &Node, source: Source) -> Result<String> {
    Ok(format!("file:{}", entry(path, node, &Names::of(source))?))
}

/// `dir:<hex>` for the directory at `path` (`""`: the root, whose own entry is left out).
pub(super) fn dir(tree: &Tree, path: &str, source: Source) -> Result<String> {
    let names = &Names::of(source);
    let mut sums = Vec::new();
    if !path.is_empty() {
        if let Some(node) = tree.lookup(path)? {
            sums.push(entry(path, &node, names)?);
        }
    }
    let prefix = if path.is_empty() {
        String::new()
    } else {
        format!("{path}/")
    };
    for (p, node) in tree.walk() {
        let p = p.to_string();
        if !p.starts_with(&prefix) {
            continue;
        }
        if node.file_type() == FileType::Symlink {
            // Docker hashes what a link inside a copied directory points to (the path is
            // resolved in the source's root); a link that leads nowhere is left out.
            match tree.resolve(p.as_str()) {
                Ok((target, node)) => sums.push(entry(&target.to_string(), &node, names)?),
                Err(_) => continue,
            }
        } else {
            sums.push(entry(&p, node, names)?);
        }
    }
    sums.sort();
    Ok(format!("dir:{}", joined(&sums)))
}

/// `multi:<hex>` for several sources' hashes (`file:…`, `dir:…`), in source order.
pub(super) fn multi(hashes: &[String]) -> String {
    format!("multi:{}", joined(hashes))
}

fn joined(items: &[String]) -> String {
    hex::encode(Sha256::digest(items.join(",").as_bytes()))
}

/// The hex SHA-256 of one entry's tarsum v1 header and contents.
fn entry(path: &str, node: &Node, names: &Names) -> Result<String> {
    let meta = node.metadata();
    let (type_bits, typeflag) = match node.file_type() {
        FileType::File | FileType::Hardlink => (0o100000, b'0'),
        FileType::Directory => (0o040000, b'5'),
        FileType::Symlink => (0o120000, b'2'),
        FileType::CharDevice => (0o020000, b'3'),
        FileType::BlockDevice => (0o060000, b'4'),
        FileType::Fifo => (0o010000, b'6'),
    };
    let name = if node.is_dir() {
        format!("{path}/")
    } else {
        path.to_owned()
    };
    let link = node
        .link_target()
        .map(|t| String::from_utf8_lossy(t).into_owned())
        .unwrap_or_default();
    let (major, minor) = node.device().unwrap_or((0, 0));
    let (uname, gname) = (names.user(meta.uid), names.group(meta.gid));
    let contents = node
        .contents()
        .filter(|_| node.file_type() == FileType::File);
    let size = contents.map_or(0, |c| c.len());
    let mut h = Sha256::new();
    for (key, value) in [
        ("name", name),
        ("mode", ((meta.mode & 0o7777) | type_bits).to_string()),
        ("uid", meta.uid.to_string()),
        ("gid", meta.gid.to_string()),
        ("size", size.to_string()),
        ("typeflag", char::from(typeflag).to_string()),
        ("linkname", link),
        ("uname", uname),
        ("gname", gname),
        ("devmajor", major.to_string()),
        ("devminor", minor.to_string()),
    ] {
        h.update(key.as_bytes());
        h.update(value.as_bytes());
    }
    if let Some(cap) = meta.xattrs.get(&b"security.capability"[..]) {
        h.update(b"security.capability");
        h.update(cap);
    }
    if let Some(c) = contents {
        // Streamed: a large context file stays on disk.
        let mut reader = c.reader();
        let mut buf = vec![0; 64 * 1024];
        loop {
            let n = reader
                .read(&mut buf)
                .map_err(|e| Error::io(format_args!("hashing `{path}` for the history row"), e))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
    }
    Ok(hex::encode(h.finalize()))
}

/// The owner names a source's headers carry: none, or the host's (read once a hash).
#[derive(Debug, Default)]
struct Names {
    users: BTreeMap<u64, String>,
    groups: BTreeMap<u64, String>,
}

impl Names {
    fn of(source: Source) -> Names {
        match source {
            Source::Context => Names::default(),
            Source::Filesystem => Names {
                users: host_names("/etc/passwd"),
                groups: host_names("/etc/group"),
            },
        }
    }

    fn user(&self, uid: u64) -> String {
        self.users.get(&uid).cloned().unwrap_or_default()
    }

    fn group(&self, gid: u64) -> String {
        self.groups.get(&gid).cloned().unwrap_or_default()
    }
}

/// Id to name in a host's `/etc/passwd` or `/etc/group` (the first name of an id wins, as
/// in Go's lookup); empty if the file cannot be read.
fn host_names(file: &str) -> BTreeMap<u64, String> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let mut names = BTreeMap::new();
    for fields in text.lines().map(|l| l.split(':').collect::<Vec<_>>()) {
        if let Some(id) = fields.get(2).and_then(|f| f.parse().ok()) {
            names.entry(id).or_insert_with(|| fields[0].to_owned());
        }
    }
    names
}

#[cfg(test)]
mod tests {
    //! Expected values seen in `docker history` of images that dockerd 20.10's classic
    //! builder built from these files (context files: mode as given, owner 0:0).

    use super::*;
    use crate::{Entry, Layer};

    fn context() -> Tree {
        let layer = Layer::builder()
            .entry("a.txt", Entry::file("a\n").mode(0o644))
            .entry("b.sh", Entry::file("#!/bin/sh\necho b\n").mode(0o755))
            .entry("d", Entry::dir().mode(0o755))
            .entry("d/x", Entry::file("x\n").mode(0o640))
            .entry("d/e", Entry::dir().mode(0o755))
            .entry("d/e/y", Entry::file("y\n").mode(0o644))
            .build()
            .unwrap();
        Tree::new().apply(&layer).unwrap()
    }

    fn file_of(tree: &Tree, path: &str) -> String {
        let node = tree.lookup(path).unwrap().unwrap();
        file(path, &node, Source::Context).unwrap()
    }

    #[test]
    fn a_file_is_its_tarsum_header_and_contents() {
        let tree = context();
        assert_eq!(
            file_of(&tree, "a.txt"),
            "file:7a379d0ef3d363574f9a38cf03a78aa104889c30582434cdb486f5c62436edb0"
        );
        assert_eq!(
            file_of(&tree, "b.sh"),
            "file:d6f622095693ded88c09fed58fb13a1d1e31bfa80b5c6e1bd64ecbc6d4af0ad5"
        );
    }

    #[test]
    fn a_directory_hashes_its_sorted_entries_itself_included() {
        assert_eq!(
            dir(&context(), "d", Source::Context).unwrap(),
            "dir:c9b218a6d398d458648e008316918a388f015b454176fc9e8591950d41feafba"
        );
    }

    #[test]
    fn several_sources_hash_their_hashes_in_order() {
        let tree = context();
        let hashes = [file_of(&tree, "a.txt"), file_of(&tree, "b.sh")];
        assert_eq!(
            multi(&hashes),
            "multi:7b3ab04549fcd7fc139d6e172217bafb2b2676035067900cb56306244a60a6ae"
        );
    }
}
