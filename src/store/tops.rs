//! What a tag names in a store: its top (a manifest as pulled, or an index), kept with its
//! bytes exactly; and the walk from tops through nested indexes to every blob they name,
//! which garbage collection, usage and a commit's checks share.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use crate::archive::oci::{
    self, Descriptor, Index, Manifest, Platform, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST_V2,
    INDEX_V1, MANIFEST_V1,
};
use crate::digest::{DiffId, Digest, ImageId};
use crate::error::{Error, Result};
use crate::limits::Limits;

/// The manifest or index a tag names, as `index.json` lists it (without the names the store
/// gives it), and the image it is read as on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Top {
    /// The entry: a manifest or an index (its bytes are a blob of the store).
    pub(super) desc: Descriptor,
    /// The image the entry resolves to here; `None` for an index with no image for this
    /// host (kept as it was pulled).
    pub(super) image: Option<ImageId>,
    /// The image's manifest: `desc` itself, or the child of the index read as the image.
    pub(super) manifest: Option<Digest>,
    /// Taken in as a registry served it, not written by this store: `RepoDigests` shows it.
    pub(super) pulled: bool,
    /// For a top of Docker's media types, which OCI tools do not resolve by name: an OCI
    /// index of the same images, listed under the tag beside it (see [`compat_index`]).
    pub(super) compat: Option<Descriptor>,
}

impl Top {
    /// What the pulled mark of its `index.json` entry says: the image manifest's digest
    /// (the top's own for a manifest, or for an index with no image here).
    pub(super) fn mark(&self) -> Option<Digest> {
        self.pulled
            .then(|| self.manifest.unwrap_or(self.desc.digest))
    }
}

/// An OCI index for OCI tools to find a top of Docker's media types by (skopeo and umoci
/// resolve a name in `index.json` to an OCI manifest or index only): for a Docker manifest,
/// an index of it alone, for `platform`; for a Docker manifest list, an index of the list's
/// manifests. Its bytes and descriptor; `None` for a top of OCI media types.
#[cfg_attr(not(feature = "registry"), allow(dead_code))]
pub(super) fn compat_index(
    top: &Descriptor,
    bytes: &[u8],
    platform: Option<Platform>,
) -> Result<Option<(Vec<u8>, Descriptor)>> {
    let what = oci::blob_path(&top.digest);
    let manifests = match top.media_type.as_str() {
        DOCKER_MANIFEST_V2 => {
            let mut child = Descriptor::of(DOCKER_MANIFEST_V2, bytes);
            child.platform = platform;
            vec![child]
        }
        DOCKER_MANIFEST_LIST => json::<Index>(bytes, &what)?.manifests,
        _ => return Ok(None),
    };
    let index = Index {
        schema_version: 2,
        media_type: Some(INDEX_V1.to_owned()),
        manifests,
        annotations: [(super::disk::COMPAT.to_owned(), top.digest.to_string())].into(),
        extra: BTreeMap::new(),
    };
    let bytes = oci::to_json(&index)?;
    let desc = Descriptor::of(INDEX_V1, &bytes);
    Ok(Some((bytes, desc)))
}

/// Whether a media type is one of an image manifest.
pub(super) fn is_manifest(media_type: &str) -> bool {
    matches!(media_type, MANIFEST_V1 | DOCKER_MANIFEST_V2)
}

/// Whether a media type is one of an index.
pub(super) fn is_index(media_type: &str) -> bool {
    matches!(media_type, INDEX_V1 | DOCKER_MANIFEST_LIST)
}

/// Everything a walk from some descriptors reached.
#[derive(Debug, Default)]
pub(super) struct Walked {
    /// Every blob named (the descriptors themselves included), with its size.
    pub(super) blobs: BTreeMap<Digest, u64>,
    /// Every DiffId the configs reached list.
    pub(super) diff_ids: BTreeSet<DiffId>,
    /// Every image manifest reached, in the order met (depth first, children in order).
    pub(super) manifests: Vec<(Descriptor, Manifest)>,
}

/// How strictly a walk reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Strictness {
    /// Garbage collection and usage: what cannot be read or parsed is passed by; configs
    /// (and entries of unknown types) are read for the DiffIds they list.
    Lenient,
    /// A commit's check: every manifest and index must read, parse and be what it was
    /// reached as; configs and layers are not read.
    Strict,
}

/// What the reader gives for a blob: its bytes, or `None` when it has none.
pub(super) type ReadBlob<'a> = dyn FnMut(&Descriptor) -> Result<Option<Bytes>> + 'a;

/// Follows `roots` through manifests and nested indexes (at most the default
/// `index_depth` deep) to every blob they name, reading manifests, indexes and (when
/// lenient) configs with `read`.
///
/// # Errors
///
/// When strict: [`Error::MissingBlob`] for a manifest or index `read` does not have, the
/// errors of parsing one, [`Error::LimitExceeded`] past the nesting limit; and `read`'s.
pub(super) fn walk(
    roots: impl IntoIterator<Item = Descriptor>,
    read: &mut ReadBlob<'_>,
    strictness: Strictness,
) -> Result<Walked> {
    let strict = strictness == Strictness::Strict;
    let max_depth = Limits::default().index_depth as u64;
    let mut walked = Walked::default();
    let mut to_read: Vec<(Descriptor, u64)> = roots.into_iter().map(|d| (d, 0)).collect();
    to_read.reverse();
    while let Some((desc, depth)) = to_read.pop() {
        if walked.blobs.insert(desc.digest, desc.size).is_some() {
            continue;
        }
        let kind = desc.media_type.as_str();
        if strict && !is_manifest(kind) && !is_index(kind) {
            continue;
        }
        let bytes = match read(&desc) {
            Ok(Some(bytes)) => bytes,
            Ok(None) if strict => {
                return Err(Error::MissingBlob {
                    digest: desc.digest,
                    path: Some(oci::blob_path(&desc.digest)),
                })
            }
            Err(e) if strict => return Err(e),
            Ok(None) | Err(_) => continue,
        };
        let parsed = parse(&desc, &bytes, depth, max_depth);
        let parsed = match parsed {
            Ok(parsed) => parsed,
            Err(e) if strict => return Err(e),
            Err(_) => continue,
        };
        match parsed {
            Parsed::Manifest(manifest) => {
                let manifest = *manifest;
                for layer in &manifest.layers {
                    walked.blobs.entry(layer.digest).or_insert(layer.size);
                }
                to_read.push((manifest.config.clone(), depth));
                walked.manifests.push((desc, manifest));
            }
            Parsed::Index(index) => {
                to_read.extend(index.manifests.into_iter().rev().map(|d| (d, depth + 1)));
            }
            Parsed::Other => {
                if let Ok(config) = crate::config::ImageConfig::from_bytes(bytes) {
                    walked
                        .diff_ids
                        .extend(config.file().rootfs.diff_ids.iter().copied());
                }
            }
        }
    }
    Ok(walked)
}

enum Parsed {
    Manifest(Box<Manifest>),
    Index(Index),
    Other,
}

fn parse(desc: &Descriptor, bytes: &[u8], depth: u64, max_depth: u64) -> Result<Parsed> {
    let what = oci::blob_path(&desc.digest);
    let kind = desc.media_type.as_str();
    if is_manifest(kind) {
        oci::check_shape(bytes, kind, &what)?;
        Ok(Parsed::Manifest(Box::new(json(bytes, &what)?)))
    } else if is_index(kind) {
        Limits::check("index nesting depth", depth + 1, max_depth)?;
        oci::check_shape(bytes, kind, &what)?;
        Ok(Parsed::Index(json(bytes, &what)?))
    } else {
        Ok(Parsed::Other)
    }
}

/// Parses a manifest or an index of the store.
pub(super) fn json<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::InvalidArchive {
        path: Some(what.to_owned()),
        reason: "a manifest or index does not parse".into(),
        source: Some(e),
    })
}

/// The child of an index a tag reads as its image: the one its pulled mark names (`wanted`)
/// if the index has it, else the first for this host's platform, else the only image
/// manifest. `None` if there is none of those.
pub(super) fn pick(index: &Index, wanted: Option<Digest>) -> Option<&Descriptor> {
    let candidates = || {
        index
            .manifests
            .iter()
            .filter(|d| is_manifest(&d.media_type) || is_index(&d.media_type))
    };
    if let Some(wanted) = wanted {
        if let Some(named) = candidates().find(|d| d.digest == wanted) {
            return Some(named);
        }
    }
    let host = Platform::host();
    let for_host = candidates().find(|d| {
        d.platform.as_ref().is_some_and(|p| {
            p.os == host.os
                && p.architecture == host.architecture
                && (host.variant.is_none() || p.variant == host.variant)
        })
    });
    if for_host.is_some() {
        return for_host;
    }
    let mut images = candidates().filter(|d| is_manifest(&d.media_type));
    match (images.next(), images.next()) {
        (Some(only), None) => Some(only),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn child(digest: &[u8], platform: Option<&str>) -> Descriptor {
        let mut desc = Descriptor::of(MANIFEST_V1, digest);
        desc.platform = platform.map(|p| Platform::parse(p).unwrap());
        desc
    }

    #[test]
    fn pick_takes_the_named_child_then_the_host_then_the_only_image() {
        let host = Platform::host().to_string();
        let other = if host == "linux/arm64" {
            "linux/amd64"
        } else {
            "linux/arm64"
        };
        let index = |manifests: Vec<Descriptor>| Index {
            schema_version: 2,
            media_type: Some(INDEX_V1.to_owned()),
            manifests,
            annotations: BTreeMap::new(),
            extra: BTreeMap::new(),
        };
        let two = index(vec![child(b"a", Some(other)), child(b"b", Some(&host))]);
        assert_eq!(pick(&two, None).unwrap().digest, Digest::sha256(b"b"));
        let named = Some(Digest::sha256(b"a"));
        assert_eq!(pick(&two, named).unwrap().digest, Digest::sha256(b"a"));
        let one = index(vec![child(b"c", Some(other))]);
        assert_eq!(pick(&one, None).unwrap().digest, Digest::sha256(b"c"));
        let none = index(vec![child(b"a", Some(other)), child(b"d", Some(other))]);
        assert!(pick(&none, None).is_none());
    }
}
