//! docker-archive: what `docker save` writes and `docker load` reads. `manifest.json` lists
//! each image's config and layer tars; Docker 25+ makes the same tar an OCI layout too, and
//! so does layercake, so one file serves both worlds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::archive::files::verify;
use crate::archive::oci::{blob_path, to_json};
use crate::archive::{ArchiveImage, Loader, Name};
use crate::contents::Contents;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image::Image;
use crate::limits::Limits;
use crate::reference::Reference;

/// One entry of `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    config: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    repo_tags: Vec<String>,
    layers: Vec<String>,
    #[serde(flatten)]
    extra: BTreeMap<String, Value>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

/// Reads the index of a docker-archive: every image's config, and its layers as members of
/// the archive, read later. A layer member shared between images (or listed twice) is one
/// layer.
pub(super) fn read(loader: &mut Loader<'_>) -> Result<Vec<ArchiveImage>> {
    let files = loader.files;
    let entries: Vec<Entry> = files.json("manifest.json")?;
    if entries.is_empty() {
        return Err(Error::archive(
            Some("manifest.json".into()),
            "lists no images",
        ));
    }
    let limits = loader.limits().clone();
    let mut out = Vec::with_capacity(entries.len());
    for entry in &entries {
        // Names follow the reference grammar, as `docker load` parses them; a bad one is
        // refused (shown escaped), never kept as a name nothing can ask for.
        let references: Vec<Reference> = entry
            .repo_tags
            .iter()
            .map(|t| repo_tag(t))
            .collect::<Result<_>>()?;
        Limits::check(
            "layers in one image",
            entry.layers.len() as u64,
            limits.layers as u64,
        )?;
        // A member is checked against the digest its name carries, and against the one the
        // name it leads to carries (Docker 25 and skopeo reach `blobs/sha256/HEX` through
        // other names): a path reference never skips the check of a blob's name.
        let (config_key, config) = files.resolve(&entry.config)?;
        let config_digest = blob_digest(&entry.config, &config_key)?;
        Limits::check("JSON document bytes", config.len(), limits.json_bytes)?;
        let config = config.to_bytes()?;
        if let Some(digest) = config_digest {
            verify(&config, &digest, &format!("config {}", entry.config))?;
        }
        let blobs: Vec<(String, Contents, Option<Digest>)> = entry
            .layers
            .iter()
            .map(|name| {
                let (key, contents) = files.resolve(name)?;
                let digest = blob_digest(name, &key)?;
                Ok((key, contents, digest))
            })
            .collect::<Result<_>>()?;
        let image: Image = loader.image(config, blobs)?;
        out.push(ArchiveImage {
            image,
            names: entry.repo_tags.clone(),
            ref_names: Vec::new(),
            naming: references.into_iter().map(Name::Reference).collect(),
            platforms: Vec::new(),
        });
    }
    Ok(out)
}

/// The digest a member must hash to: the one its name carries or the one the name it
/// resolves to (`key`, symlinks followed) carries; both, when they are the same.
///
/// # Errors
///
/// [`Error::InvalidArchive`] when the two names carry different digests: no bytes hash to
/// both.
fn blob_digest(name: &str, key: &str) -> Result<Option<Digest>> {
    let named = crate::path::ImagePath::new(name)
        .ok()
        .and_then(|p| digest_in_name(&p.to_string()));
    match (named, digest_in_name(key)) {
        (Some(a), Some(b)) if a != b => Err(Error::archive(
            Some(name.to_owned()),
            format!("names the blob {a} but leads to `{key}`, the blob {b}"),
        )),
        (a, b) => Ok(a.or(b)),
    }
}

/// A `RepoTags` entry: a reference with a tag, as `docker load` requires (`busybox` alone or
/// `busybox@sha256:…` is refused there too).
fn repo_tag(text: &str) -> Result<Reference> {
    let reference = Reference::parse(text)?;
    let tagged = text
        .rsplit('/')
        .next()
        .is_some_and(|last| last.contains(':'));
    if !tagged || reference.digest().is_some() {
        return Err(Error::InvalidReference {
            reference: text.chars().take(256).collect(),
            reason: "a RepoTags entry must be name:tag",
        });
    }
    Ok(reference)
}

/// The digest a member name carries, if it is digest-shaped: `blobs/sha256/HEX` or
/// `HEX.json` (docker save's config name).
fn digest_in_name(name: &str) -> Option<Digest> {
    let base = name.rsplit('/').next()?;
    let hex = base.strip_suffix(".json").unwrap_or(base);
    let algorithm = match name.strip_prefix("blobs/") {
        Some(rest) => rest.split('/').next()?,
        None => "sha256",
    };
    format!("{algorithm}:{hex}").parse().ok()
}

/// Adds `manifest.json` to the files of an OCI layout (Docker 25's form): each image's config
/// and its uncompressed layer tars under `blobs/sha256/`, with its references as `RepoTags`
/// in Docker's familiar form.
pub(super) fn manifest(
    images: &[(Image, Vec<Name>)],
    files: &mut BTreeMap<String, Contents>,
) -> Result<()> {
    let mut manifest = Vec::with_capacity(images.len());
    for (image, names) in images {
        manifest.push(Entry {
            config: blob_path(&image.id().digest()),
            repo_tags: names
                .iter()
                .filter_map(|n| match n {
                    Name::Reference(r) => Some(r.familiar().to_string()),
                    Name::RefName(_) => None,
                })
                .collect(),
            layers: image
                .layers()
                .map(|l| blob_path(&l.diff_id().digest()))
                .collect(),
            extra: BTreeMap::new(),
        });
    }
    files.insert("manifest.json".into(), Contents::from(to_json(&manifest)?));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_names() {
        let hex = "a".repeat(64);
        assert!(digest_in_name(&format!("{hex}.json")).is_some());
        assert!(digest_in_name(&format!("blobs/sha256/{hex}")).is_some());
        assert!(digest_in_name(&format!("{hex}/layer.tar")).is_none());
        assert!(digest_in_name("config.json").is_none());
    }
}
