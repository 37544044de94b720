//! Where the files of an image archive come from: the members of a tar held in memory, or
//! an OCI layout directory. Names from archives are keys, never host paths joined blindly.

use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::archive::layer_tar;
use crate::archive::oci::{blob_path, check_size, parse_json, Descriptor};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::layer::ReadOptions;
use crate::limits::Limits;
use crate::path::ImagePath;
use crate::tree::{self, Escape, Follow, Tree};

/// Where the files are.
#[derive(Debug)]
enum Files {
    /// The members of a tar, as a tree: symlinks and hardlinks between members resolve
    /// inside the archive, and file bytes are slices of the archive buffer.
    Members(Tree),
    /// An OCI layout directory on the host.
    Dir(PathBuf),
}

/// The files of an image archive, and the options every read from it obeys.
#[derive(Debug)]
pub(crate) struct Source {
    files: Files,
    pub(crate) options: ReadOptions,
}

impl Source {
    /// Reads the members of an archive tar.
    pub(crate) fn from_tar(bytes: &Bytes, options: &ReadOptions) -> Result<Source> {
        let not_archive = |e: Error| match e {
            Error::LimitExceeded { .. } => e,
            e => Error::InvalidArchive {
                path: None,
                reason: format!("not a readable tar archive: {e}"),
                source: None,
            },
        };
        let changes = layer_tar::read(bytes, options).map_err(not_archive)?;
        let tree = tree::apply(&Tree::new(), &changes).map_err(not_archive)?;
        Ok(Source {
            files: Files::Members(tree),
            options: options.clone(),
        })
    }

    /// An OCI layout directory.
    pub(crate) fn dir(path: &Path, options: &ReadOptions) -> Source {
        Source {
            files: Files::Dir(path.to_path_buf()),
            options: options.clone(),
        }
    }

    /// Whether the archive has a member or file by this name.
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.read(name, u64::MAX).is_ok()
    }

    /// Reads and parses a JSON document of the archive (at most `json_bytes`).
    pub(crate) fn json<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<T> {
        let limit = self.options.limits.json_bytes;
        parse_json(&self.read(name, limit)?, name, limit)
    }

    /// Reads a blob that holds a JSON document, verifies it and parses it.
    pub(crate) fn json_blob<T: serde::de::DeserializeOwned>(
        &self,
        desc: &Descriptor,
    ) -> Result<(Bytes, T)> {
        let limit = self.options.limits.json_bytes;
        let bytes = self.verified_blob(desc, limit)?;
        let value = parse_json(&bytes, &format!("blob {}", desc.digest), limit)?;
        Ok((bytes, value))
    }

    /// Reads a member or file by its name in the archive, refusing one over `max` bytes.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArchive`] for a name that is absolute, climbs with `..`, is missing,
    /// is not a regular file, or passes through a symlink that leaves the archive (or, in a
    /// directory, any symlink); [`Error::LimitExceeded`] past `max`.
    pub(crate) fn read(&self, name: &str, max: u64) -> Result<Bytes> {
        let bad = |reason: &str| Error::archive(Some(name.to_owned()), reason);
        if name.starts_with('/') {
            return Err(bad("absolute member name"));
        }
        let path = ImagePath::new(name).map_err(|_| bad("member name climbs out with `..`"))?;
        if path.is_root() {
            return Err(bad("empty member name"));
        }
        let bytes = match &self.files {
            Files::Members(tree) => match tree.resolve_path(&path, Follow::All, Escape::Refuse) {
                Ok((_, Some(node))) => node
                    .contents()
                    .cloned()
                    .ok_or_else(|| bad("not a regular file")),
                Ok((_, None)) => Err(bad("no such member")),
                Err(Error::SymlinkLoop { .. }) => Err(bad("symlink loop")),
                Err(Error::InvalidPath { reason, .. }) => Err(bad(reason)),
                Err(_) => Err(bad("no such member")),
            },
            Files::Dir(root) => read_in_dir(root, &path, max).map_err(|e| match e {
                Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                    bad("no such file")
                }
                Error::Io { source, .. } => bad(&format!("cannot read: {source}")),
                other => other,
            }),
        }?;
        Limits::check("JSON or blob bytes", bytes.len() as u64, max)?;
        Ok(bytes)
    }

    /// Reads the blob a descriptor names from `blobs/`, checking its size (and that the
    /// size is at most `max`) but not yet its digest.
    pub(crate) fn blob(&self, desc: &Descriptor, max: u64) -> Result<Bytes> {
        Limits::check("blob bytes", desc.size, max)?;
        let path = blob_path(&desc.digest);
        let blob = self.read(&path, max).map_err(|e| match e {
            Error::LimitExceeded { .. } => e,
            _ => Error::MissingBlob {
                digest: desc.digest.to_string(),
                path: Some(path),
            },
        })?;
        check_size(desc, &blob)?;
        Ok(blob)
    }

    /// Reads a blob and checks it against its descriptor: size, then digest.
    pub(crate) fn verified_blob(&self, desc: &Descriptor, max: u64) -> Result<Bytes> {
        let blob = self.blob(desc, max)?;
        verify(&blob, &desc.digest, &desc.media_type)?;
        Ok(blob)
    }
}

/// Checks that `bytes` hash to `digest`.
pub(crate) fn verify(bytes: &[u8], digest: &Digest, what: &str) -> Result<()> {
    if digest.verify(bytes) {
        return Ok(());
    }
    Err(Error::DigestMismatch {
        what: what.to_owned(),
        expected: digest.to_string(),
        actual: Digest::sha256(bytes).to_string(),
    })
}

/// Reads `root/path`, refusing any component that is a symlink, so a layout cannot point
/// outside itself, and a file over `max` bytes before reading it.
fn read_in_dir(root: &Path, path: &ImagePath, max: u64) -> Result<Bytes> {
    let mut host = root.to_path_buf();
    for name in path.components() {
        let name = std::str::from_utf8(name).map_err(|_| {
            Error::archive(Some(path.to_string()), "non-UTF-8 file name in a layout")
        })?;
        host.push(name);
        let meta = std::fs::symlink_metadata(&host)
            .map_err(|e| Error::io(format_args!("reading {}", host.display()), e))?;
        if meta.file_type().is_symlink() {
            return Err(Error::archive(
                Some(path.to_string()),
                "symlinks are not followed in an OCI layout directory",
            ));
        }
        if meta.is_file() {
            Limits::check("JSON or blob bytes", meta.len(), max)?;
        }
    }
    std::fs::read(&host)
        .map(Bytes::from)
        .map_err(|e| Error::io(format_args!("reading {}", host.display()), e))
}
