//! The files of an image file: the members of a tar, found by one scan of its headers (data is
//! passed over by seeking, never read), or the files of an OCI layout directory. A member is
//! then read by offset. Names from archives are keys, never host paths joined blindly.

use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::archive::oci::{blob_path, Descriptor};
use crate::codec::tar_read::{self, Positioned};
use crate::contents::{Contents, HostFile};
use crate::error::{Error, Result};
use crate::layer::ReadOptions;
use crate::limits::Limits;
use crate::path::ImagePath;
use crate::tree::{Escape, Follow, Tree};

/// Where the files are.
#[derive(Debug)]
enum Where {
    /// The members of a tar, as a tree: symlinks and hardlinks between members resolve
    /// inside the archive, and a member's bytes are a range of the archive.
    Members(Tree),
    /// An OCI layout directory on the host.
    Dir(PathBuf),
}

/// The files of an image file, and the options every read from it obeys.
#[derive(Debug)]
pub(crate) struct Files {
    at: Where,
    /// What the files are, for messages: the host path, or "an image archive in memory".
    pub(crate) label: String,
    pub(crate) options: ReadOptions,
}

impl Files {
    /// Indexes the members of an archive tar by one scan of its headers.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArchive`] naming `label` if it is not a readable tar (or its members
    /// contradict each other), [`Error::LimitExceeded`] past a limit (members count as
    /// entries), [`Error::Io`] if reading fails.
    pub(crate) fn tar(archive: &Contents, label: String, options: &ReadOptions) -> Result<Files> {
        // The reader's words are about a layer; here the tar is the image file, and the
        // message names that file: `FILE: archive truncated: …`.
        let not_archive = |e: Error| {
            let (reason, member) = match e {
                Error::LimitExceeded { .. } | Error::Io { .. } => return e,
                Error::DuplicateEntry { path } => {
                    let index = tar_read::INDEX_MEMBERS.contains(&&path[..]);
                    let path = String::from_utf8_lossy(&path).into_owned();
                    return Error::InvalidArchive {
                        path: Some(label.clone()),
                        reason: if index {
                            format!("member `{path}` appears twice, and it indexes the archive: refused even with the same bytes")
                        } else {
                            format!("member `{path}` appears twice with different contents")
                        },
                        source: None,
                    };
                }
                Error::InvalidTar { path, reason } => (reason, path),
                e => (e.to_string(), None),
            };
            let truncated = reason.contains("ends inside") || reason.contains("past the end");
            let what = if truncated {
                "archive truncated"
            } else {
                "not a readable tar archive"
            };
            let at = member.map_or_else(String::new, |m| {
                format!(" (at member `{}`)", String::from_utf8_lossy(&m))
            });
            Error::InvalidArchive {
                path: Some(label.clone()),
                reason: format!("{what}: {reason}{at}"),
                source: None,
            }
        };
        let contents_at = |offset: u64, len: u64| archive.slice(offset..offset + len);
        let mut changes =
            tar_read::read_members(&mut Positioned::new(archive), options, &contents_at)
                .map_err(not_archive)?;
        changes.validate().map_err(not_archive)?;
        let tree = crate::changes::apply(&Tree::new(), &changes).map_err(not_archive)?;
        Ok(Files {
            at: Where::Members(tree),
            label,
            options: options.clone(),
        })
    }

    /// An OCI layout directory.
    pub(crate) fn dir(path: &Path, options: &ReadOptions) -> Files {
        Files {
            at: Where::Dir(path.to_path_buf()),
            label: path.display().to_string(),
            options: options.clone(),
        }
    }

    /// Whether the archive has a member or file by this name.
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.member(name).is_ok()
    }

    /// A member or file by its name in the archive: its bytes, not read yet.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArchive`] for a name that is absolute, climbs with `..`, is missing,
    /// is not a regular file, or passes through a symlink that leaves the archive (or, in a
    /// directory, any symlink).
    pub(crate) fn member(&self, name: &str) -> Result<Contents> {
        self.resolve(name).map(|(_, contents)| contents)
    }

    /// A member or file by its name, with the name it resolves to (symlinks followed), which
    /// is the same for every name of one member.
    ///
    /// # Errors
    ///
    /// As [`Files::member`].
    pub(crate) fn resolve(&self, name: &str) -> Result<(String, Contents)> {
        let bad = |reason: &str| Error::archive(Some(name.to_owned()), reason);
        if name.starts_with('/') {
            return Err(bad("absolute member name"));
        }
        let path = ImagePath::new(name).map_err(|_| bad("member name climbs out with `..`"))?;
        if path.is_root() {
            return Err(bad("empty member name"));
        }
        match &self.at {
            Where::Members(tree) => match tree.resolve_path(&path, Follow::All, Escape::Refuse) {
                Ok((resolved, Some(node))) => node
                    .contents()
                    .map(|c| (resolved.to_string(), c.clone()))
                    .ok_or_else(|| bad("not a regular file")),
                Ok((_, None)) => Err(bad("no such member")),
                Err(Error::SymlinkLoop { .. }) => Err(bad("symlink loop")),
                Err(Error::InvalidPath { reason, .. }) => Err(bad(reason)),
                Err(_) => Err(bad("no such member")),
            },
            Where::Dir(root) => open_in_dir(root, &path)
                .map(|c| (path.to_string(), c))
                .map_err(|e| match e {
                    Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                        bad("no such file")
                    }
                    Error::Io { source, .. } => bad(&format!("cannot read: {source}")),
                    other => other,
                }),
        }
    }

    /// Reads a member that holds a small document (JSON), refusing one over `max` bytes
    /// before reading it.
    pub(crate) fn small(&self, name: &str, max: u64) -> Result<Bytes> {
        let member = self.member(name)?;
        Limits::check("JSON document bytes", member.len(), max)?;
        member.to_bytes()
    }

    /// Reads and parses a JSON document of the archive (at most `json_bytes`).
    pub(crate) fn json<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<T> {
        let limit = self.options.limits.json_bytes;
        parse_json(&self.small(name, limit)?, name)
    }

    /// The blob a descriptor names, from `blobs/`: its size checked against the descriptor
    /// (and against `max`), its digest not yet (nothing is read).
    pub(crate) fn blob(&self, desc: &Descriptor, max: u64) -> Result<Contents> {
        Limits::check("blob bytes", desc.size, max)?;
        let path = blob_path(&desc.digest);
        let blob = self.member(&path).map_err(|_| Error::MissingBlob {
            digest: desc.digest,
            path: Some(path),
        })?;
        if desc.size != blob.len() {
            return Err(Error::SizeMismatch {
                what: format!("blob {}", desc.digest),
                expected: desc.size,
                actual: blob.len(),
            });
        }
        Ok(blob)
    }

    /// Reads a small blob (a manifest, an index, a config) and checks it against its
    /// descriptor: size, then digest.
    pub(crate) fn verified_blob(&self, desc: &Descriptor) -> Result<Bytes> {
        let limit = self.options.limits.json_bytes;
        let bytes = self.blob(desc, limit)?.to_bytes()?;
        verify(&bytes, &desc.digest, &desc.media_type)?;
        Ok(bytes)
    }

    /// Reads a blob that holds a manifest or an index, verifies it, checks that it is what
    /// its descriptor's media type says (not the other kind) and parses it.
    pub(crate) fn json_blob<T: serde::de::DeserializeOwned>(
        &self,
        desc: &Descriptor,
    ) -> Result<(Bytes, T)> {
        let bytes = self.verified_blob(desc)?;
        let what = format!("blob {}", desc.digest);
        crate::archive::oci::check_shape(&bytes, &desc.media_type, &what)?;
        let value = parse_json(&bytes, &what)?;
        Ok((bytes, value))
    }
}

/// Parses a JSON document of the archive, naming it in errors.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8], name: &str) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::InvalidArchive {
        path: Some(name.to_owned()),
        reason: "malformed JSON".into(),
        source: Some(e),
    })
}

/// Checks that `bytes` hash to `digest`.
pub(crate) fn verify(bytes: &[u8], digest: &crate::digest::Digest, what: &str) -> Result<()> {
    if digest.verify(bytes) {
        return Ok(());
    }
    Err(Error::DigestMismatch {
        what: what.to_owned(),
        expected: *digest,
        actual: crate::digest::Digest::sha256(bytes),
    })
}

/// Opens `root/path` for reading, refusing any component that is a symlink, so a layout
/// cannot point outside itself (the last one is opened with `O_NOFOLLOW` as well).
fn open_in_dir(root: &Path, path: &ImagePath) -> Result<Contents> {
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
    let file = open_no_follow(&host)?;
    let len = file.len()?;
    if !file
        .file()
        .metadata()
        .map_err(|e| Error::io(format_args!("reading {}", host.display()), e))?
        .is_file()
    {
        return Err(Error::archive(Some(path.to_string()), "not a regular file"));
    }
    Ok(Contents::on_disk(file, 0, len))
}

#[cfg(target_os = "linux")]
fn open_no_follow(path: &Path) -> Result<std::sync::Arc<HostFile>> {
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::open(path, flags, Mode::empty())
        .map_err(|e| Error::io(format_args!("opening {}", path.display()), e.into()))?;
    Ok(HostFile::new(
        std::fs::File::from(fd),
        path.display().to_string(),
    ))
}

#[cfg(not(target_os = "linux"))]
fn open_no_follow(path: &Path) -> Result<std::sync::Arc<HostFile>> {
    HostFile::open(path)
}
