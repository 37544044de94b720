//! [`Ingest`]: blobs streamed into a store from outside (a registry), verified while they
//! stream, staged until one commit makes an image and its tag visible; and the store's
//! blobs and manifests read back by digest or name (what a push sends).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use bytes::Bytes;

use super::disk::{self, Disk, Staged};
use super::tops::{self, Strictness, Top};
use super::{tag_key, AddReport, Store};
use crate::archive::oci::{self, Descriptor, CONFIG_V1};
use crate::codec::Expected;
use crate::contents::Contents;
use crate::digest::{DiffId, Digest, ImageId};
use crate::error::{Error, Result};
use crate::image::Image;
use crate::layer::{Layer, ReadOptions};
use crate::limits::Limits;
use crate::reference::Reference;

/// Blobs taken into a store and not yet visible. Its methods take `&self` and may run on
/// several threads at once (a pull streams four layers together). Dropped without
/// [`Ingest::commit`], it leaves the store as it was: everything it wrote is in files
/// without names, freed with it.
#[derive(Debug)]
pub(crate) struct Ingest {
    /// The store's directory, for a store on disk.
    disk: Option<Disk>,
    /// How layers are read: limits as by default, files written in `dir`.
    options: ReadOptions,
    /// Where files are written: the store's ingest area, or the temporary directory.
    dir: PathBuf,
    staged: Mutex<Taken>,
    /// A store on disk: its shared lock, so no deletion runs until the commit is done.
    _loading: Option<disk::Lock>,
}

/// What an ingest has taken in so far.
#[derive(Debug, Default)]
struct Taken {
    /// Every blob, by digest: small ones in memory, streamed ones in nameless files.
    blobs: BTreeMap<Digest, Contents>,
    /// On disk: the files to name at commit (blobs, and cached tars of compressed layers).
    files: Staged,
}

impl Ingest {
    fn taken(&self) -> std::sync::MutexGuard<'_, Taken> {
        // A thread that panicked while holding the lock left a consistent map: entries are
        // added whole.
        self.staged.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Store {
    /// Starts taking blobs in (a store on disk takes its shared lock: a prune waits).
    ///
    /// # Errors
    ///
    /// On disk, [`Error::Io`] if the lock cannot be taken, and those of reading the index.
    pub(crate) fn ingest(&mut self) -> Result<Ingest> {
        let Some(disk) = self.disk.clone() else {
            let options = ReadOptions::default();
            return Ok(Ingest {
                disk: None,
                dir: options.spill_dir(),
                options,
                staged: Mutex::default(),
                _loading: None,
            });
        };
        let loading = disk.lock_gc(false)?;
        self.refresh()?;
        let dir = disk.ingest_dir();
        Ok(Ingest {
            options: ReadOptions::default().temp_dir(&dir).durable(),
            dir,
            disk: Some(disk),
            staged: Mutex::default(),
            _loading: Some(loading),
        })
    }

    /// Whether the store has the blob `digest` (a layer blob, config, manifest or index).
    ///
    /// ```
    /// use layercake::{Image, Layer, Store};
    ///
    /// let image = Image::builder().layer(Layer::builder().file("a", "1").build()?).build()?;
    /// let mut store = Store::new();
    /// store.add(&image)?;
    /// // What a push asks before it uploads: the layer and the config are here.
    /// let layer = image.layers().next().unwrap().blob().digest();
    /// assert!(store.has_blob(layer));
    /// assert!(store.has_blob(image.id().digest()));
    /// assert!(!store.has_blob(layercake::Digest::sha256(b"elsewhere")));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn has_blob(&self, digest: Digest) -> bool {
        match &self.disk {
            Some(disk) => disk.has_blob(&digest),
            None => self.memory_blob(digest).is_some(),
        }
    }

    /// A blob by digest, read by offset from the store (nothing is read whole).
    ///
    /// ```
    /// use layercake::{Digest, Image, Layer, Store};
    ///
    /// let image = Image::builder().layer(Layer::builder().file("a", "1").build()?).build()?;
    /// let root = std::env::temp_dir().join(format!("layercake-doc-blob-{}", std::process::id()));
    /// let mut store = Store::open(&root)?;
    /// store.add(&image)?;
    /// // The config as stored: its bytes hash to the image id.
    /// let config = store.blob(image.id().digest())?;
    /// assert_eq!(Digest::sha256(config.to_bytes()?), image.id().digest());
    /// # std::fs::remove_dir_all(&root).ok();
    /// # Ok::<(), layercake::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::MissingBlob`] when the store does not have it;
    /// on disk, [`Error::Io`] if its file cannot be opened.
    pub fn blob(&self, digest: Digest) -> Result<Contents> {
        match &self.disk {
            Some(disk) => disk.blob(&digest),
            None => self
                .memory_blob(digest)
                .ok_or(Error::MissingBlob { digest, path: None }),
        }
    }

    /// A blob of a store in memory: one taken in, a layer's blob, or an image's config.
    fn memory_blob(&self, digest: Digest) -> Option<Contents> {
        if let Some(blob) = self.blobs.get(&digest) {
            return Some(blob.clone());
        }
        if let Some(layer) = self.layers.values().find(|l| l.blob().digest() == digest) {
            return Some(layer.blob().contents().clone());
        }
        let config = self.images.get(&ImageId::from_digest(digest))?;
        Some(Contents::from(config.config().as_bytes().clone()))
    }

    /// The manifest or index `reference` (a tag, `name@digest`, an id) is stored with: its
    /// descriptor and its bytes exactly (as pulled, or as written for an image added; in
    /// memory, an image added has its manifest written now, as a store on disk writes it).
    ///
    /// ```
    /// use layercake::{Digest, Image, Layer, Store};
    ///
    /// let image = Image::builder().layer(Layer::builder().file("a", "1").build()?).build()?;
    /// let mut store = Store::new();
    /// store.add(&image)?;
    /// store.tag(&image.id().to_string(), "app:1")?;
    /// // What a push sends last: the manifest, whose digest is what the registry names.
    /// let (desc, bytes) = store.manifest("app:1")?;
    /// assert_eq!(desc.digest, Digest::sha256(&bytes));
    /// assert_eq!(desc.size, bytes.len() as u64);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::ImageNotFound`] (and
    /// [`Error::AmbiguousReference`] as
    /// [`Store::image`]); on disk, the errors of reading the blob, whose size and digest are
    /// checked.
    pub fn manifest(&self, reference: &str) -> Result<(Descriptor, Bytes)> {
        let desc = match self.top_named(reference) {
            Some(top) => top.desc.clone(),
            None => {
                let by_digest = Reference::parse(reference)
                    .ok()
                    .and_then(|r| r.digest())
                    .and_then(|digest| self.manifests.values().find(|m| m.digest == digest));
                match by_digest {
                    Some(desc) => desc.clone(),
                    None => {
                        // An entry of the index named as a tag that this store does not
                        // read as an image (another tool's index with no image here).
                        let foreign = tag_key(reference).ok().and_then(|tag| {
                            let disk = self.disk.as_ref()?;
                            let entry = disk.foreign_named(&tag)?;
                            (!self.tags.contains_key(&tag)).then(|| disk::plain(entry))
                        });
                        if let Some(desc) = foreign {
                            let bytes = self.small_blob(&desc)?;
                            return Ok((desc, bytes));
                        }
                        let id = self.resolve(reference)?;
                        match self.manifests.get(&id) {
                            Some(desc) => desc.clone(),
                            None => {
                                let (bytes, desc) = own_manifest(&self.images[&id])?;
                                return Ok((desc, Bytes::from(bytes)));
                            }
                        }
                    }
                }
            }
        };
        let bytes = self.small_blob(&desc)?;
        Ok((desc, bytes))
    }

    /// A manifest, index or config of the store, read whole (limited), its size and
    /// digest checked.
    fn small_blob(&self, desc: &Descriptor) -> Result<Bytes> {
        if let Some(disk) = &self.disk {
            return disk.small_blob(desc);
        }
        let blob = self.blob(desc.digest)?;
        Limits::check("JSON blob bytes", blob.len(), Limits::default().json_bytes)?;
        let bytes = blob.to_bytes()?;
        check_blob(desc, &bytes)?;
        Ok(bytes)
    }
}

/// Checks that `bytes` are the blob `desc` describes: its size, then its digest.
fn check_blob(desc: &Descriptor, bytes: &[u8]) -> Result<()> {
    if bytes.len() as u64 != desc.size {
        return Err(Error::SizeMismatch {
            what: format!("blob {}", desc.digest),
            expected: desc.size,
            actual: bytes.len() as u64,
        });
    }
    let actual = Digest::sha256(bytes);
    if actual != desc.digest {
        return Err(Error::DigestMismatch {
            what: format!("blob {}", desc.digest),
            expected: desc.digest,
            actual,
        });
    }
    Ok(())
}

/// The manifest a store writes for an image added to it (an OCI manifest of its config and
/// its layers' blobs), its bytes and its descriptor with the image's platform.
pub(super) fn own_manifest(image: &Image) -> Result<(Vec<u8>, Descriptor)> {
    let config = image.config().as_bytes();
    let config = Descriptor::of_blob(CONFIG_V1, image.id().digest(), config.len() as u64);
    let layers = image
        .layers()
        .map(|layer| {
            let blob = layer.blob();
            Descriptor::of_blob(blob.media_type(), blob.digest(), blob.size())
        })
        .collect();
    oci::manifest_of(image, config, layers)
}

impl Ingest {
    /// Streams a layer blob in: its digest and size checked as it streams, decoded in the
    /// same pass into the layer cache, its DiffId checked. `progress(done, total)` hears
    /// blob bytes taken in.
    ///
    /// # Errors
    ///
    /// [`Error::SizeMismatch`] for a stream longer than `blob.size` (as soon as the byte
    /// too many arrives) or shorter; [`Error::DigestMismatch`] for a blob or a tar that
    /// is not what `blob` and `diff_id` say; the errors of reading a layer.
    pub(crate) fn layer(
        &self,
        reader: &mut (dyn Read + Send),
        blob: &Descriptor,
        diff_id: DiffId,
        progress: &mut (dyn FnMut(u64, u64) + Send),
    ) -> Result<Layer> {
        Limits::check(
            "blob bytes",
            blob.size,
            self.options.limits_in_force().blob_bytes,
        )?;
        let expected = Expected {
            blob: Some(blob.digest),
            diff_id: Some(diff_id),
        };
        let streamed =
            disk::stream_layer(reader, &expected, blob.size, &self.options, None, progress)?;
        let layer = streamed.layer.clone();
        let mut taken = self.taken();
        if let Some(disk) = &self.disk {
            disk.stage_layer(&streamed, &mut taken.files);
        }
        taken
            .blobs
            .insert(blob.digest, layer.blob().contents().clone());
        Ok(layer)
    }

    /// Streams any blob in as it is (another platform's layer, an artifact's blob), its
    /// digest and size checked.
    ///
    /// # Errors
    ///
    /// [`Error::SizeMismatch`] (as [`Ingest::layer`]), [`Error::DigestMismatch`],
    /// [`Error::LimitExceeded`] for a blob larger than the default limit, [`Error::Io`].
    pub(crate) fn blob(
        &self,
        reader: &mut (dyn Read + Send),
        blob: &Descriptor,
        progress: &mut (dyn FnMut(u64, u64) + Send),
    ) -> Result<()> {
        Limits::check(
            "blob bytes",
            blob.size,
            self.options.limits_in_force().blob_bytes,
        )?;
        let contents = disk::stream_blob(reader, blob, &self.dir, progress)?;
        self.keep(blob.digest, contents)
    }

    /// A small blob held whole (a config, a manifest, an index), its digest checked.
    ///
    /// # Errors
    ///
    /// [`Error::SizeMismatch`], [`Error::DigestMismatch`]; on disk, [`Error::Io`].
    pub(crate) fn bytes(&self, blob: &Descriptor, bytes: &Bytes) -> Result<()> {
        check_blob(blob, bytes)?;
        self.keep(blob.digest, Contents::from(bytes.clone()))
    }

    /// Stages a verified blob: kept as it is (a small one in memory, a streamed one in its
    /// nameless file), and on disk in a file of the ingest area that the commit names.
    fn keep(&self, digest: Digest, contents: Contents) -> Result<()> {
        let file = match (&self.disk, contents.host_file()) {
            (Some(_), Some(file)) => Some(file.clone()),
            (Some(disk), None) => Some(disk.copy_in(&contents, digest, "a blob")?),
            (None, _) => None,
        };
        let mut taken = self.taken();
        if let (Some(disk), Some(file)) = (&self.disk, file) {
            disk.stage_blob(file, &digest, &mut taken.files);
        }
        taken.blobs.insert(digest, contents);
        Ok(())
    }

    /// Makes everything taken in visible at once: the blobs, then `image` (if any: the
    /// image `top` resolves to for this host) and `top` (a manifest or an index, its
    /// bytes taken in with [`Ingest::bytes`]) named by `tag` in the index.
    ///
    /// Before anything is named, `top` is followed through nested indexes: every manifest
    /// and index on the way must be here (taken in, or in the store already) and parse,
    /// every blob they name must be here, and `image`'s config must be the config of one
    /// of the manifests.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidReference`] for a `tag` with a digest; [`Error::MissingBlob`] for a
    /// blob `top` needs that is not here; [`Error::InvalidArchive`] for a manifest or index
    /// that does not parse, or a `top` that does not name `image` (with its number of
    /// layers); [`Error::Io`] if the store cannot be written. The store is then as it was.
    ///
    /// # Panics
    ///
    /// If `store` is not the store this ingest was started on (another directory, or one in
    /// memory for one on disk).
    pub(crate) fn commit(
        self,
        store: &mut Store,
        image: Option<&Image>,
        top: &Descriptor,
        tag: Option<&Reference>,
    ) -> Result<Option<AddReport>> {
        assert_eq!(
            store.root(),
            self.disk.as_ref().map(|d| d.root()),
            "an ingest commits into the store it was started on"
        );
        let tag = tag.map(|t| tag_key(&t.to_string())).transpose()?;
        let taken = std::mem::take(&mut *self.taken());
        let walked = tops::walk(
            [top.clone()],
            &mut |desc| {
                if let Some(blob) = taken.blobs.get(&desc.digest) {
                    Limits::check("JSON blob bytes", blob.len(), Limits::default().json_bytes)?;
                    return blob.to_bytes().map(Some);
                }
                if !store.has_blob(desc.digest) {
                    return Ok(None);
                }
                store.small_blob(desc).map(Some)
            },
            Strictness::Strict,
        )?;
        for digest in walked.blobs.keys() {
            if !taken.blobs.contains_key(digest) && !store.has_blob(*digest) {
                return Err(Error::MissingBlob {
                    digest: *digest,
                    path: Some(oci::blob_path(digest)),
                });
            }
        }
        let manifest = match image {
            Some(image) => {
                let config = image.id().digest();
                let found = walked
                    .manifests
                    .iter()
                    .find(|(_, m)| m.config.digest == config);
                match found {
                    Some((desc, manifest)) if manifest.layers.len() == image.layers().len() => {
                        Some(desc.clone())
                    }
                    Some((desc, manifest)) => {
                        return Err(Error::InvalidArchive {
                            path: Some(oci::blob_path(&desc.digest)),
                            reason: format!(
                                "it lists {} layers, image {} has {}",
                                manifest.layers.len(),
                                image.id(),
                                image.layers().len()
                            ),
                            source: None,
                        })
                    }
                    None => {
                        return Err(Error::InvalidArchive {
                            path: Some(oci::blob_path(&top.digest)),
                            reason: format!("it names no manifest of image {}", image.id()),
                            source: None,
                        })
                    }
                }
            }
            None => None,
        };
        // For OCI tools, an OCI index beside a top of Docker's media types.
        let mut files = taken.files;
        let compat = match &self.disk {
            Some(disk) => {
                let bytes = match taken.blobs.get(&top.digest) {
                    Some(blob) => blob.to_bytes()?,
                    None => store.small_blob(top)?,
                };
                let platform = image.map(crate::archive::oci::Platform::of);
                match tops::compat_index(top, &bytes, platform)? {
                    Some((bytes, desc)) => {
                        let file = disk.copy_in(&Contents::from(bytes), desc.digest, "an index")?;
                        disk.stage_blob(file, &desc.digest, &mut files);
                        Some(desc)
                    }
                    None => None,
                }
            }
            None => None,
        };
        if let Some(disk) = &self.disk {
            disk.commit(files)?;
        }
        let _index = match &self.disk {
            Some(disk) => Some(disk.lock_index()?),
            None => None,
        };
        store.refresh()?;
        if self.disk.is_none() {
            store.blobs.extend(taken.blobs);
        }
        let report = image.map(|image| store.insert(image));
        let id = report.as_ref().map(|r| r.image.id());
        if let (Some(id), Some(manifest)) = (id, &manifest) {
            store
                .manifests
                .entry(id)
                .or_insert_with(|| disk::plain(manifest));
        }
        if let Some(tag) = tag {
            match id {
                Some(id) => store.tags.insert(tag.clone(), id),
                None => store.tags.remove(&tag),
            };
            let kept = Top {
                desc: disk::plain(top),
                image: id,
                manifest: manifest.map(|m| m.digest),
                pulled: true,
                compat,
            };
            store.tops.insert(tag, kept);
        }
        store.write_index()?;
        Ok(report)
    }
}

#[cfg(test)]
mod tests;
