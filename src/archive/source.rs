//! Where the files of an image archive come from: the members of a tar held in memory, or
//! an OCI layout directory. Names from archives are keys, never host paths joined blindly.

use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::archive::layer_tar;
use crate::archive::oci::{blob_path, check_size, Descriptor};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::layer::ReadOptions;
use crate::path::ImagePath;
use crate::tree::{self, Tree};

/// The files of an image archive.
#[derive(Debug)]
pub(crate) enum Source {
    /// The members of a tar, as a tree: symlinks and hardlinks between members resolve
    /// inside the archive, and file bytes are slices of the archive buffer.
    Members(Tree),
    /// An OCI layout directory on the host.
    Dir(PathBuf),
}

impl Source {
    /// Reads the members of an archive tar.
    pub(crate) fn from_tar(bytes: &Bytes) -> Result<Source> {
        let not_archive = |e: Error| Error::InvalidArchive {
            path: None,
            reason: format!("not a readable tar archive: {e}"),
            source: None,
        };
        let changes = layer_tar::read(bytes, &ReadOptions::default()).map_err(not_archive)?;
        let tree = tree::apply(&Tree::new(), &changes).map_err(not_archive)?;
        Ok(Source::Members(tree))
    }

    /// Whether the archive has a member or file by this name.
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.read(name).is_ok()
    }

    /// Reads a member or file by its name in the archive.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArchive`] for a name that is absolute, climbs with `..`, is missing,
    /// is not a regular file, or (in a directory) passes through a symlink.
    pub(crate) fn read(&self, name: &str) -> Result<Bytes> {
        let bad = |reason: &str| Error::archive(Some(name.to_owned()), reason);
        if name.starts_with('/') {
            return Err(bad("absolute member name"));
        }
        let path = ImagePath::new(name).map_err(|_| bad("member name climbs out with `..`"))?;
        if path.is_root() {
            return Err(bad("empty member name"));
        }
        match self {
            Source::Members(tree) => match tree.resolve(path.as_bytes()) {
                Ok((_, node)) => node
                    .contents()
                    .cloned()
                    .ok_or_else(|| bad("not a regular file")),
                Err(Error::SymlinkLoop { .. }) => Err(bad("symlink loop")),
                Err(_) => Err(bad("no such member")),
            },
            Source::Dir(root) => read_in_dir(root, &path).map_err(|e| match e {
                Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                    bad("no such file")
                }
                Error::Io { source, .. } => bad(&format!("cannot read: {source}")),
                other => other,
            }),
        }
    }

    /// Reads the blob with this digest from `blobs/`.
    pub(crate) fn blob(&self, digest: &Digest) -> Result<Bytes> {
        let path = blob_path(digest);
        self.read(&path).map_err(|_| Error::MissingBlob {
            digest: digest.to_string(),
            path: Some(path),
        })
    }

    /// Reads a blob and checks it against its descriptor: size, then digest.
    pub(crate) fn verified_blob(&self, desc: &Descriptor) -> Result<Bytes> {
        let blob = self.blob(&desc.digest)?;
        check_size(desc, &blob)?;
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
/// outside itself.
fn read_in_dir(root: &Path, path: &ImagePath) -> Result<Bytes> {
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
    }
    std::fs::read(&host)
        .map(Bytes::from)
        .map_err(|e| Error::io(format_args!("reading {}", host.display()), e))
}
