//! [`Store`]: images by id, layers by DiffId, merged trees by ChainId, and tags, with the
//! sharing Docker's image store has: a base used by ten images is kept once.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::digest::{ChainId, DiffId, ImageId};
use crate::error::{Error, Result};
use crate::image::{ChainLink, Image, Inspect};
use crate::layer::Layer;

/// Whether a layer was new to the store when an image was added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerStatus {
    /// The store did not have it.
    New,
    /// The store had it already (`docker load` prints "Layer already exists").
    AlreadyExists,
}

/// What [`Store::add`] did.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AddReport {
    /// The image as stored, sharing the store's layers and trees.
    pub image: Image,
    /// Each layer, bottom first, and whether it was new.
    pub layers: Vec<(DiffId, LayerStatus)>,
}

/// What [`Store::remove`] and [`Store::prune`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Removal {
    /// Tags removed.
    pub untagged: Vec<String>,
    /// Images deleted.
    pub images: Vec<ImageId>,
    /// Layers deleted because no image uses them any more.
    pub layers: Vec<DiffId>,
}

/// How much the store holds, and how much its images would take without sharing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Usage {
    /// Images stored.
    pub images: usize,
    /// Distinct layers stored.
    pub layers: usize,
    /// Bytes of layer tars and configs actually held (each layer once).
    pub stored_bytes: u64,
    /// Bytes the same images would take if each kept its own copy of every layer.
    pub unshared_bytes: u64,
}

impl std::fmt::Display for Usage {
    /// `2 images, 2 layers, 8427 bytes stored (13035 without sharing)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} images, {} layers, {} bytes stored ({} without sharing)",
            self.images, self.layers, self.stored_bytes, self.unshared_bytes
        )
    }
}

/// An in-memory image store.
///
/// # Example
///
/// ```
/// use layercake::{Image, Layer, LayerStatus, Store};
///
/// let base = Image::builder().layer(Layer::builder().file("etc/os-release", "ID=demo\n").build()?).build()?;
/// let app = Image::builder()
///     .base(&base)
///     .layer(Layer::builder().file("app/run", "#!/bin/sh\n").build()?)
///     .build()?;
///
/// let mut store = Store::new();
/// store.add(&base);
/// store.tag(&base.id().to_string(), "demo/base:1")?;
/// let report = store.add(&app);
/// assert_eq!(report.layers[0].1, LayerStatus::AlreadyExists);
/// assert_eq!(report.layers[1].1, LayerStatus::New);
/// store.tag(&app.id().to_string(), "demo/app")?;
///
/// assert_eq!(store.image("demo/app:latest")?.id(), app.id());
/// let usage = store.usage();
/// assert_eq!(usage.layers, 2);
/// assert!(usage.stored_bytes < usage.unshared_bytes);
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug, Default, Clone)]
pub struct Store {
    layers: BTreeMap<DiffId, Layer>,
    chains: BTreeMap<ChainId, Arc<ChainLink>>,
    images: BTreeMap<ImageId, Image>,
    tags: BTreeMap<String, ImageId>,
}

impl Store {
    /// An empty store.
    pub fn new() -> Store {
        Store::default()
    }

    /// Adds an image, reusing every layer and merged tree the store already has, and
    /// returns the stored image with a report of which layers were new.
    pub fn add(&mut self, image: &Image) -> AddReport {
        let mut chain: Vec<Arc<ChainLink>> = Vec::with_capacity(image.chain().len());
        let mut report = Vec::new();
        // Whether every link so far is the image's own: only then is a tree the image's
        // own link has cached built on the store's trees.
        let mut own = true;
        for link in image.chain() {
            let diff_id = link.layer.diff_id();
            let status = match self.layers.entry(diff_id) {
                std::collections::btree_map::Entry::Occupied(_) => LayerStatus::AlreadyExists,
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(link.layer.clone());
                    LayerStatus::New
                }
            };
            report.push((diff_id, status));
            let stored = match self.chains.get(&link.chain_id) {
                Some(existing) => existing.clone(),
                // A new layer on the image's own links: its link (and any tree it has
                // built) is kept.
                None if status == LayerStatus::New && own => link.clone(),
                // A known layer on a new stack, or a layer above links the store replaced:
                // a new link on the stored ones, sharing the stored layer's bytes.
                None => Arc::new(ChainLink::new(
                    self.layers[&diff_id].clone(),
                    chain.last().map(|l| &**l),
                )),
            };
            own &= Arc::ptr_eq(&stored, link);
            self.chains.insert(stored.chain_id, stored.clone());
            chain.push(stored);
        }
        let stored = Image::from_chain(image.config().clone(), chain);
        self.images.insert(stored.id(), stored.clone());
        AddReport {
            image: stored,
            layers: report,
        }
    }

    /// Finds an image by tag (`name`, `name:tag`), full id (`sha256:...`), or a unique
    /// prefix of the id's hex (as `docker` accepts `3f2a`).
    ///
    /// # Errors
    ///
    /// [`Error::ImageNotFound`], [`Error::AmbiguousReference`].
    pub fn image(&self, reference: &str) -> Result<Image> {
        self.resolve(reference).map(|id| self.images[&id].clone())
    }

    fn resolve(&self, reference: &str) -> Result<ImageId> {
        if let Ok(tag) = normalize_tag(reference) {
            if let Some(id) = self.tags.get(&tag) {
                return Ok(*id);
            }
        }
        let hex = reference.strip_prefix("sha256:").unwrap_or(reference);
        if !hex.is_empty() && hex.len() <= 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut found = self
                .images
                .keys()
                .filter(|id| id.to_hex().to_string().starts_with(hex));
            if let Some(id) = found.next() {
                if found.next().is_some() {
                    return Err(Error::AmbiguousReference {
                        reference: reference.to_owned(),
                    });
                }
                return Ok(*id);
            }
        }
        Err(Error::ImageNotFound {
            reference: reference.to_owned(),
        })
    }

    /// Points tag `tag` (`name` or `name:tag`; `:latest` is implied) at the image
    /// `reference` names, moving it if it pointed elsewhere.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidReference`] for a malformed tag, and those of [`Store::image`].
    pub fn tag(&mut self, reference: &str, tag: &str) -> Result<()> {
        let id = self.resolve(reference)?;
        self.tags.insert(normalize_tag(tag)?, id);
        Ok(())
    }

    /// Removes a tag and returns the image it pointed at; the image stays.
    ///
    /// # Errors
    ///
    /// [`Error::ImageNotFound`] if no such tag exists.
    pub fn untag(&mut self, tag: &str) -> Result<ImageId> {
        let key = normalize_tag(tag)?;
        self.tags.remove(&key).ok_or_else(|| Error::ImageNotFound {
            reference: tag.to_owned(),
        })
    }

    /// The tags pointing at an image, sorted.
    pub fn tags_of(&self, id: ImageId) -> Vec<String> {
        self.tags
            .iter()
            .filter(|(_, v)| **v == id)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Every image, by id.
    pub fn images(&self) -> impl Iterator<Item = &Image> + '_ {
        self.images.values()
    }

    /// Every layer, by DiffId.
    pub fn layers(&self) -> impl Iterator<Item = &Layer> + '_ {
        self.layers.values()
    }

    /// Removes an image as `docker rmi` does: by tag, the tag goes, and the image with it
    /// if no other tag points at it; by id, the image goes if at most one tag points at
    /// it. Layers no other image uses are deleted too.
    ///
    /// # Errors
    ///
    /// [`Error::ImageNotFound`]; [`Error::ImageInUse`] for an id with several tags.
    pub fn remove(&mut self, reference: &str) -> Result<Removal> {
        let id = self.resolve(reference)?;
        let mut removal = Removal::default();
        let by_tag = normalize_tag(reference)
            .ok()
            .filter(|t| self.tags.get(t) == Some(&id));
        let tags = self.tags_of(id);
        match by_tag {
            Some(tag) => {
                self.tags.remove(&tag);
                removal.untagged.push(tag);
            }
            None if tags.len() > 1 => {
                return Err(Error::ImageInUse {
                    id: id.to_string(),
                    tags: tags.join(", "),
                })
            }
            None => {
                for t in tags {
                    self.tags.remove(&t);
                    removal.untagged.push(t);
                }
            }
        }
        if self.tags_of(id).is_empty() {
            self.images.remove(&id);
            removal.images.push(id);
        }
        removal.layers = self.collect_garbage();
        Ok(removal)
    }

    /// Deletes images no tag points at (`docker image prune`), then every layer and tree
    /// that no remaining image uses.
    pub fn prune(&mut self) -> Removal {
        let tagged: BTreeSet<ImageId> = self.tags.values().copied().collect();
        let dangling: Vec<ImageId> = self
            .images
            .keys()
            .filter(|id| !tagged.contains(id))
            .copied()
            .collect();
        for id in &dangling {
            self.images.remove(id);
        }
        Removal {
            untagged: Vec::new(),
            images: dangling,
            layers: self.collect_garbage(),
        }
    }

    fn collect_garbage(&mut self) -> Vec<DiffId> {
        let used_chains: BTreeSet<ChainId> =
            self.images.values().flat_map(|i| i.chain_ids()).collect();
        self.chains.retain(|id, _| used_chains.contains(id));
        let used_layers: BTreeSet<DiffId> =
            self.chains.values().map(|l| l.layer.diff_id()).collect();
        let gone: Vec<DiffId> = self
            .layers
            .keys()
            .filter(|d| !used_layers.contains(d))
            .copied()
            .collect();
        for d in &gone {
            self.layers.remove(d);
        }
        gone
    }

    /// `docker image inspect` of an image, with its tags.
    ///
    /// # Errors
    ///
    /// As [`Store::image`].
    pub fn inspect(&self, reference: &str) -> Result<Inspect> {
        let image = self.image(reference)?;
        let mut inspect = image.inspect();
        inspect.repo_tags = self.tags_of(image.id());
        Ok(inspect)
    }

    /// Bytes held versus bytes the images would take without sharing.
    pub fn usage(&self) -> Usage {
        let configs: u64 = self
            .images
            .values()
            .map(|i| i.config().as_bytes().len() as u64)
            .sum();
        Usage {
            images: self.images.len(),
            layers: self.layers.len(),
            stored_bytes: configs + self.layers.values().map(Layer::size).sum::<u64>(),
            unshared_bytes: configs
                + self
                    .images
                    .values()
                    .flat_map(|i| i.layers())
                    .map(Layer::size)
                    .sum::<u64>(),
        }
    }
}

/// Normalises `name[:tag]` to `name:tag` (`latest` when no tag), checking the characters
/// Docker allows.
fn normalize_tag(reference: &str) -> Result<String> {
    let invalid = |reason| Error::InvalidReference {
        reference: reference.to_owned(),
        reason,
    };
    if reference.contains('@') {
        return Err(invalid("a digest reference cannot be a tag"));
    }
    let last_slash = reference.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match reference[last_slash..].rfind(':') {
        Some(i) => reference.split_at(last_slash + i),
        None => (reference, ":latest"),
    };
    let tag = &tag[1..];
    if name.is_empty() {
        return Err(invalid("empty name"));
    }
    // The first component may be a registry host (`Registry.example:5000`).
    let host = name
        .split_once('/')
        .map(|(first, _)| first)
        .filter(|first| first.contains(['.', ':']) || *first == "localhost");
    let name_ok = name.split('/').enumerate().all(|(i, part)| {
        !part.is_empty()
            && part.bytes().all(|b| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || b"._-".contains(&b)
                    || (i == 0 && host.is_some() && (b == b':' || b.is_ascii_uppercase()))
            })
    });
    if !name_ok {
        return Err(invalid(
            "name must be lowercase letters, digits, `.`, `_`, `-` and `/`",
        ));
    }
    if tag.is_empty()
        || tag.len() > 128
        || !tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        || tag.starts_with(['.', '-'])
    {
        return Err(invalid(
            "tag must be 1 to 128 of letters, digits, `.`, `_`, `-`",
        ));
    }
    Ok(format!("{name}:{tag}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_normalise() {
        assert_eq!(normalize_tag("busybox").unwrap(), "busybox:latest");
        assert_eq!(normalize_tag("busybox:1.35").unwrap(), "busybox:1.35");
        assert_eq!(
            normalize_tag("localhost:5000/a/b").unwrap(),
            "localhost:5000/a/b:latest"
        );
        assert_eq!(
            normalize_tag("localhost:5000/a/b:v1").unwrap(),
            "localhost:5000/a/b:v1"
        );
        for bad in ["", "Busybox", "a:", "a:-x", "a@sha256:00", "a//b", ":x"] {
            assert!(normalize_tag(bad).is_err(), "{bad}");
        }
    }
}
