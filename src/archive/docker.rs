//! docker-archive: what `docker save` writes and `docker load` reads. `manifest.json` lists
//! each image's config and layer tars; Docker 25+ makes the same tar an OCI layout too, and
//! so does layercake, so one file serves both worlds.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::archive::oci::{self, blob_path, to_json};
use crate::archive::source::{verify, Source};
use crate::archive::{check_image_bytes, check_layer_count, parallel_map, Loaded, WriteOptions};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image::Image;
use crate::layer::Layer;

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

/// Reads every image of a docker-archive. Layers shared between images (or listed twice)
/// are read once.
pub(crate) fn read(source: &Source) -> Result<Vec<Loaded>> {
    let limits = &source.options.limits;
    let entries: Vec<Entry> = source.json("manifest.json")?;
    if entries.is_empty() {
        return Err(Error::archive(
            Some("manifest.json".into()),
            "lists no images",
        ));
    }
    // Every layer once, however many images list it, in parallel.
    let names: Vec<&String> = entries
        .iter()
        .flat_map(|e| &e.layers)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let read_layer = |name: &&String| {
        Layer::from_blob_with(source.read(name, limits.blob_bytes)?, &source.options).map_err(|e| {
            match e {
                Error::InvalidTar { path, reason } => Error::InvalidTar {
                    path,
                    reason: format!("{reason} (in layer `{name}`)"),
                },
                other => other,
            }
        })
    };
    let layers: BTreeMap<&String, Layer> = names
        .iter()
        .copied()
        .zip(parallel_map(&names, read_layer)?)
        .collect();
    let mut out = Vec::with_capacity(entries.len());
    for entry in &entries {
        check_layer_count(entry.layers.len(), limits)?;
        let config = source.read(&entry.config, limits.json_bytes)?;
        if let Some(digest) = digest_in_name(&entry.config) {
            verify(&config, &digest, &format!("config {}", entry.config))?;
        }
        let image_layers: Vec<Layer> = entry.layers.iter().map(|n| layers[n].clone()).collect();
        check_image_bytes(&image_layers, limits)?;
        out.push(Loaded {
            image: Image::from_parts(config, image_layers)?,
            names: entry.repo_tags.clone(),
        });
    }
    Ok(out)
}

/// The digest a member name carries, if it is digest-shaped: `blobs/sha256/HEX`,
/// `HEX.json` (docker save's config name) or `HEX.tar`.
fn digest_in_name(name: &str) -> Option<Digest> {
    let base = name.rsplit('/').next()?;
    let hex = base.strip_suffix(".json").unwrap_or(base);
    let algorithm = match name.strip_prefix("blobs/") {
        Some(rest) => rest.split('/').next()?,
        None => "sha256",
    };
    format!("{algorithm}:{hex}").parse().ok()
}

/// The files of a docker-archive that is also an OCI layout (Docker 25's form): configs and
/// uncompressed layer tars under `blobs/sha256/`, `manifest.json` pointing at them, and
/// `index.json` naming each tagged image by its tag.
pub(crate) fn files(images: &[(&Image, &[String])]) -> Result<BTreeMap<String, Bytes>> {
    let mut files = BTreeMap::new();
    let uncompressed = WriteOptions::oci().compression(crate::archive::Compression::None);
    // The OCI half: blobs, manifests, index.json, oci-layout. Every docker-archive layer is
    // an uncompressed tar, so the OCI manifests point at the very same blobs.
    oci::layout_files(images, &uncompressed, &mut files)?;
    let mut manifest = Vec::with_capacity(images.len());
    for (image, tags) in images {
        manifest.push(Entry {
            config: blob_path(&image.id().digest()),
            repo_tags: tags.to_vec(),
            layers: image
                .layers()
                .map(|l| blob_path(&l.diff_id().digest()))
                .collect(),
            extra: BTreeMap::new(),
        });
    }
    files.insert("manifest.json".into(), Bytes::from(to_json(&manifest)?));
    Ok(files)
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
