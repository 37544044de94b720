//! [`Store`]: images by id, layers by DiffId, merged trees by ChainId, and tags, with the
//! sharing Docker's image store has: a base used by ten images is kept once.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::digest::{ChainId, DiffId, ImageId};
use crate::error::{Error, Result};
use crate::image::{ChainLink, Image, Inspect};
use crate::layer::Layer;
use crate::reference::Reference;

/// Whether a layer was new to the store when an image was added.
///
/// ```
/// use layercake::{Image, Layer, LayerStatus, Store};
///
/// let base = Image::builder()
///     .layer(Layer::builder().file("etc/os-release", "ID=demo\n").build()?)
///     .build()?;
/// let mut store = Store::new();
/// assert_eq!(store.add(&base).layers[0].1, LayerStatus::New);
/// // Another image on the same layer: the store keeps the layer once.
/// let app = Image::builder().base(&base).cmd(["/bin/sh"]).build()?;
/// assert_eq!(store.add(&app).layers[0].1, LayerStatus::AlreadyExists);
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerStatus {
    /// The store did not have it.
    New,
    /// The store had it already (`docker load` prints "Layer already exists").
    AlreadyExists,
}

/// What [`Store::add`] did.
///
/// ```
/// use layercake::{DiffId, Image, Layer, LayerStatus, Store};
///
/// let image = Image::builder().layer(Layer::builder().file("a", "1").build()?).build()?;
/// let mut store = Store::new();
/// let report = store.add(&image);
/// let new: Vec<DiffId> = report
///     .layers
///     .iter()
///     .filter(|(_, status)| *status == LayerStatus::New)
///     .map(|(diff_id, _)| *diff_id)
///     .collect();
/// assert_eq!(new, image.diff_ids());
/// assert_eq!(report.image, image);
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AddReport {
    /// The image as stored, sharing the store's layers and trees.
    pub image: Image,
    /// Each layer, bottom first, and whether it was new.
    pub layers: Vec<(DiffId, LayerStatus)>,
}

/// What [`Store::remove`] and [`Store::prune`] did.
///
/// ```
/// use layercake::{Image, Layer, Store};
///
/// let image = Image::builder().layer(Layer::builder().file("a", "1").build()?).build()?;
/// let mut store = Store::new();
/// store.add(&image);
/// store.tag(&image.id().to_string(), "app:1")?;
/// let removal = store.remove("app:1")?;
/// assert_eq!(removal.untagged, ["app:1"]);
/// assert_eq!(removal.images, [image.id()]);
/// assert_eq!(removal.layers, image.diff_ids());
/// # Ok::<(), layercake::Error>(())
/// ```
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
///
/// ```
/// use layercake::{Image, Layer, Store};
///
/// let image = Image::builder().layer(Layer::builder().file("a", "1").build()?).build()?;
/// let mut store = Store::new();
/// store.add(&image);
/// let usage = store.usage();
/// assert_eq!((usage.images, usage.layers), (1, 1));
/// assert_eq!(usage.stored_bytes, usage.unshared_bytes, "one image shares nothing");
/// assert!(usage.to_string().starts_with("1 images, 1 layers, "));
/// # Ok::<(), layercake::Error>(())
/// ```
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
/// let base = Image::builder()
///     .layer(Layer::builder().file("etc/os-release", "ID=demo\n").build()?)
///     .build()?;
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
    tags: BTreeMap<Reference, ImageId>,
}

impl Store {
    /// An empty store.
    ///
    /// ```
    /// use layercake::{Error, Store};
    ///
    /// let store = Store::new();
    /// assert_eq!(store.images().count(), 0);
    /// assert!(matches!(store.image("busybox"), Err(Error::ImageNotFound { .. })));
    /// ```
    pub fn new() -> Store {
        Store::default()
    }

    /// Adds an image, reusing every layer and merged tree the store already has, and
    /// returns the stored image with a report of which layers were new.
    ///
    /// ```
    /// use layercake::{Image, Layer, LayerStatus, Store};
    ///
    /// let base = Image::builder()
    ///     .layer(Layer::builder().file("etc/os-release", "ID=demo\n").build()?)
    ///     .build()?;
    /// let app = Image::builder()
    ///     .base(&base)
    ///     .layer(Layer::builder().file("app", "").build()?)
    ///     .build()?;
    /// let mut store = Store::new();
    /// store.add(&base);
    /// let statuses: Vec<LayerStatus> =
    ///     store.add(&app).layers.iter().map(|(_, s)| *s).collect();
    /// assert_eq!(statuses, [LayerStatus::AlreadyExists, LayerStatus::New]);
    /// assert_eq!(store.layers().count(), 2);
    /// # Ok::<(), layercake::Error>(())
    /// ```
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
    ///
    /// ```
    /// use layercake::{Error, Image, Layer, Store};
    ///
    /// let image = Image::builder().layer(Layer::builder().file("a", "1").build()?).build()?;
    /// let mut store = Store::new();
    /// store.add(&image);
    /// store.tag(&image.id().to_string(), "app:1")?;
    /// assert_eq!(store.image("app:1")?, image);
    /// let short = image.id().to_hex().to_string()[..12].to_owned();
    /// assert_eq!(store.image(&short)?, image);
    /// assert!(matches!(store.image("app:2"), Err(Error::ImageNotFound { .. })));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn image(&self, reference: &str) -> Result<Image> {
        self.resolve(reference).map(|id| self.images[&id].clone())
    }

    fn resolve(&self, reference: &str) -> Result<ImageId> {
        if let Ok(tag) = tag_key(reference) {
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
                let others: Vec<&ImageId> = found.collect();
                if !others.is_empty() {
                    return Err(Error::AmbiguousReference {
                        reference: reference.to_owned(),
                        candidates: std::iter::once(id)
                            .chain(others)
                            .map(|id| id.to_string())
                            .collect(),
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
    ///
    /// ```
    /// use layercake::{Error, Image, Store};
    ///
    /// let v1 = Image::builder().cmd(["v1"]).build()?;
    /// let v2 = Image::builder().cmd(["v2"]).build()?;
    /// let mut store = Store::new();
    /// store.add(&v1);
    /// store.add(&v2);
    /// store.tag(&v1.id().to_string(), "app")?;
    /// store.tag(&v2.id().to_string(), "app:latest")?; // moves the tag
    /// assert_eq!(store.image("app")?, v2);
    /// assert!(matches!(store.tag("app", "App"), Err(Error::InvalidReference { .. })));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn tag(&mut self, reference: &str, tag: &str) -> Result<()> {
        let id = self.resolve(reference)?;
        self.tags.insert(tag_key(tag)?, id);
        Ok(())
    }

    /// Removes a tag and returns the image it pointed at; the image stays.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidReference`] for a malformed tag; [`Error::ImageNotFound`] if no such
    /// tag exists.
    ///
    /// ```
    /// use layercake::{Image, Store};
    ///
    /// let image = Image::builder().build()?;
    /// let mut store = Store::new();
    /// store.add(&image);
    /// store.tag(&image.id().to_string(), "app:1")?;
    /// assert_eq!(store.untag("app:1")?, image.id());
    /// assert!(store.tags_of(image.id()).is_empty());
    /// assert_eq!(store.images().count(), 1, "the image stays");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn untag(&mut self, tag: &str) -> Result<ImageId> {
        let key = tag_key(tag)?;
        self.tags.remove(&key).ok_or_else(|| Error::ImageNotFound {
            reference: tag.to_owned(),
        })
    }

    /// The tags pointing at an image, sorted.
    ///
    /// ```
    /// use layercake::{Image, Store};
    ///
    /// let image = Image::builder().build()?;
    /// let mut store = Store::new();
    /// store.add(&image);
    /// store.tag(&image.id().to_string(), "app")?;
    /// store.tag(&image.id().to_string(), "app:1")?;
    /// assert_eq!(store.tags_of(image.id()), ["app:1", "app:latest"]);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn tags_of(&self, id: ImageId) -> Vec<String> {
        self.tag_keys(id)
            .iter()
            .map(|k| k.familiar().to_string())
            .collect()
    }

    fn tag_keys(&self, id: ImageId) -> Vec<Reference> {
        self.tags
            .iter()
            .filter(|(_, v)| **v == id)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Every image, by id.
    ///
    /// ```
    /// use layercake::{Image, Store};
    ///
    /// let mut store = Store::new();
    /// store.add(&Image::builder().cmd(["a"]).build()?);
    /// store.add(&Image::builder().cmd(["b"]).build()?);
    /// // What `docker images` lists: every image, with its tags (none here).
    /// let rows: Vec<(String, Vec<String>)> =
    ///     store.images().map(|i| (i.id().to_string(), store.tags_of(i.id()))).collect();
    /// assert_eq!(rows.len(), 2);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn images(&self) -> impl Iterator<Item = &Image> + '_ {
        self.images.values()
    }

    /// Every layer, by DiffId.
    ///
    /// ```
    /// use layercake::{Image, Layer, Store};
    ///
    /// let base = Image::builder().layer(Layer::builder().file("a", "1").build()?).build()?;
    /// let app = Image::builder()
    ///     .base(&base)
    ///     .layer(Layer::builder().file("b", "2").build()?)
    ///     .build()?;
    /// let mut store = Store::new();
    /// store.add(&base);
    /// store.add(&app);
    /// // Three layers across the images, two stored.
    /// assert_eq!(store.images().map(|i| i.layers().count()).sum::<usize>(), 3);
    /// assert_eq!(store.layers().count(), 2);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn layers(&self) -> impl Iterator<Item = &Layer> + '_ {
        self.layers.values()
    }

    /// Removes an image as `docker rmi` does: by tag, the tag goes, and the image with it
    /// if no other tag points at it; by id, the image goes if at most one tag points at
    /// it. Layers no other image uses are deleted too.
    ///
    /// # Errors
    ///
    /// [`Error::ImageNotFound`], [`Error::AmbiguousReference`] for a short id that matches
    /// several images; [`Error::ImageInUse`] for an id with several tags.
    ///
    /// ```
    /// use layercake::{Error, Image, Layer, Store};
    ///
    /// let image = Image::builder().layer(Layer::builder().file("a", "1").build()?).build()?;
    /// let mut store = Store::new();
    /// store.add(&image);
    /// store.tag(&image.id().to_string(), "app:1")?;
    /// store.tag(&image.id().to_string(), "app:2")?;
    /// let by_id = store.remove(&image.id().to_string());
    /// assert!(matches!(by_id, Err(Error::ImageInUse { .. })));
    /// store.remove("app:1")?; // only the tag goes
    /// let removal = store.remove("app:2")?; // the last tag: the image and its layer go
    /// assert_eq!(removal.images, [image.id()]);
    /// assert_eq!(store.layers().count(), 0);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn remove(&mut self, reference: &str) -> Result<Removal> {
        let id = self.resolve(reference)?;
        let mut removal = Removal::default();
        let by_tag = tag_key(reference)
            .ok()
            .filter(|t| self.tags.get(t) == Some(&id));
        let tags = self.tag_keys(id);
        match by_tag {
            Some(tag) => {
                self.tags.remove(&tag);
                removal.untagged.push(tag.familiar().to_string());
            }
            None if tags.len() > 1 => {
                return Err(Error::ImageInUse {
                    id: id.to_string(),
                    tags: self.tags_of(id).join(", "),
                })
            }
            None => {
                for t in tags {
                    self.tags.remove(&t);
                    removal.untagged.push(t.familiar().to_string());
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
    ///
    /// ```
    /// use layercake::{Image, Store};
    ///
    /// let old = Image::builder().cmd(["v1"]).build()?;
    /// let new = Image::builder().cmd(["v2"]).build()?;
    /// let mut store = Store::new();
    /// store.add(&old);
    /// store.add(&new);
    /// store.tag(&new.id().to_string(), "app")?;
    /// assert_eq!(store.prune().images, [old.id()]);
    /// assert_eq!(store.images().count(), 1);
    /// # Ok::<(), layercake::Error>(())
    /// ```
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
    ///
    /// ```
    /// use layercake::{Image, Store};
    ///
    /// let image = Image::builder().build()?;
    /// let mut store = Store::new();
    /// store.add(&image);
    /// store.tag(&image.id().to_string(), "app:1")?;
    /// let inspect = store.inspect("app:1")?;
    /// assert_eq!(inspect.repo_tags, ["app:1"]);
    /// assert_eq!(inspect.id, image.id().to_string());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn inspect(&self, reference: &str) -> Result<Inspect> {
        let image = self.image(reference)?;
        let mut inspect = image.inspect();
        inspect.repo_tags = self.tags_of(image.id());
        Ok(inspect)
    }

    /// Bytes held versus bytes the images would take without sharing.
    ///
    /// ```
    /// use layercake::{Image, Layer, Store};
    ///
    /// let base = Image::builder()
    ///     .layer(Layer::builder().file("lib", vec![0u8; 4096]).build()?)
    ///     .build()?;
    /// let a = Image::builder().base(&base).cmd(["a"]).build()?;
    /// let b = Image::builder().base(&base).cmd(["b"]).build()?;
    /// let mut store = Store::new();
    /// store.add(&a);
    /// store.add(&b);
    /// let usage = store.usage();
    /// let base_layer = base.layers().next().unwrap().blob().size();
    /// assert_eq!(
    ///     usage.unshared_bytes - usage.stored_bytes,
    ///     base_layer,
    ///     "kept once, not twice"
    /// );
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn usage(&self) -> Usage {
        let configs: u64 = self
            .images
            .values()
            .map(|i| i.config().as_bytes().len() as u64)
            .sum();
        Usage {
            images: self.images.len(),
            layers: self.layers.len(),
            stored_bytes: configs + self.layers.values().map(blob_size).sum::<u64>(),
            unshared_bytes: configs
                + self
                    .images
                    .values()
                    .flat_map(|i| i.layers())
                    .map(blob_size)
                    .sum::<u64>(),
        }
    }
}

/// The bytes a layer takes as stored: its blob.
fn blob_size(layer: &Layer) -> u64 {
    layer.blob().size()
}

/// The key of a tag: a Docker reference with a tag (`latest` when none is given), never a
/// digest.
fn tag_key(text: &str) -> Result<Reference> {
    let reference = Reference::parse(text)?;
    if reference.digest().is_some() {
        return Err(Error::InvalidReference {
            reference: text.chars().take(256).collect(),
            reason: "a digest reference cannot be a tag",
        });
    }
    Ok(reference)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_normalise_as_docker_does() {
        let key = |t: &str| tag_key(t).map(|r| r.familiar().to_string());
        assert_eq!(key("busybox").unwrap(), "busybox:latest");
        assert_eq!(
            key("docker.io/library/busybox:1.35").unwrap(),
            "busybox:1.35"
        );
        assert_eq!(
            key("localhost:5000/a/b").unwrap(),
            "localhost:5000/a/b:latest"
        );
        for bad in ["", "Busybox", "a:", "a:-x", "a@sha256:00", "a//b", ":x"] {
            assert!(tag_key(bad).is_err(), "{bad}");
        }
        let digest = format!("a@sha256:{}", "0".repeat(64));
        assert!(matches!(
            tag_key(&digest),
            Err(Error::InvalidReference {
                reason: "a digest reference cannot be a tag",
                ..
            })
        ));
    }
}
