//! A store in a directory: an OCI image layout, a cache of uncompressed layers beside it, the
//! ingest area where everything is written and verified before it is moved into place, and
//! the locks that let several processes share it.
//!
//! ```text
//! ROOT/oci-layout, ROOT/index.json      the layout: one entry per tag (its full reference as
//!                                       org.opencontainers.image.ref.name), one per untagged
//!                                       image; a tag's entry is the manifest or index it was
//!                                       pulled as (marked dev.layercake.pulled), else the
//!                                       image's own manifest; beside a pulled entry of
//!                                       Docker's media types, an OCI index of it under the
//!                                       same ref name (marked dev.layercake.compat), which
//!                                       is what skopeo and umoci resolve names to
//! ROOT/blobs/sha256/<hex>               manifests, configs and layer blobs, as loaded
//! ROOT/layercake/cache/<diff id hex>    the uncompressed tar of a compressed layer blob
//! ROOT/layercake/ingest/                files being written (nameless where the filesystem
//!                                       allows, so a killed process leaves nothing)
//! ROOT/layercake/index.lock             held while index.json is read, changed and replaced
//! ROOT/layercake/gc.lock                shared by loads, exclusive for deletions
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use super::tops::{self, Strictness, Top, Walked};
use super::{Corruption, Verification};
use crate::archive::oci::{self, Descriptor, Index, Manifest, IMAGE_NAME, INDEX_V1, REF_NAME};
use crate::codec::{self, BlobInput, Budget, Compression, Expected};
use crate::contents::{persist, Contents, ContentsWriter, HostFile};
use crate::digest::{DiffId, Digest, HashingReader, ImageId};
use crate::error::{Error, Result};
use crate::image::Image;
use crate::layer::{Layer, ReadOptions};
use crate::limits::Limits;
use crate::reference::Reference;

/// The annotation of an `index.json` entry that a tag was pulled as: its value is the
/// digest of the image manifest the tag reads as (the entry's own, or the child of an index
/// the image was taken from).
pub(super) const PULLED: &str = "dev.layercake.pulled";

/// The annotation of an `index.json` entry that is an OCI index written beside a tag's top
/// of Docker's media types, so that OCI tools find the tag (see [`tops::compat_index`]):
/// its value is the top's digest. Such entries are the store's own, written again from the
/// top each time.
pub(super) const COMPAT: &str = "dev.layercake.compat";

/// The annotation of an image's `index.json` entries that names the build steps it is the
/// result of: their cache keys (digests), comma-separated (see `crate::build`). The image is
/// reused for a step with one of these keys.
pub(super) const BUILD_STEPS: &str = "dev.layercake.build-steps";

/// A store's directory, and what its index said when last read.
#[derive(Debug, Clone)]
pub(super) struct Disk {
    root: Arc<PathBuf>,
    /// Index entries this crate does not read as images (untagged indexes, other media
    /// types, entries whose blobs are missing): written back as they were.
    foreign: Vec<Descriptor>,
}

/// What the index lists: images with their tags, each image's manifest, what each tag
/// names, and the entries kept as they are.
pub(super) struct Snapshot {
    pub(super) images: Vec<StoredImage>,
    /// Each image's manifest (the first entry read as the image; no annotations).
    pub(super) manifests: BTreeMap<ImageId, Descriptor>,
    /// Each tag's entry.
    pub(super) tops: BTreeMap<Reference, Top>,
    /// Build steps by cache key: the image each made.
    pub(super) build_steps: BTreeMap<Digest, ImageId>,
    pub(super) foreign: Vec<Descriptor>,
}

/// An image of the index and the tags that name it.
pub(super) struct StoredImage {
    pub(super) image: Image,
    pub(super) tags: Vec<Reference>,
}

/// Files written and verified in the ingest area, and the names they are to have.
#[derive(Debug, Default)]
pub(super) struct Staged {
    files: Vec<(Arc<HostFile>, PathBuf)>,
}

/// A lock on one of the store's lock files, held until dropped.
#[derive(Debug)]
pub(super) struct Lock {
    _file: File,
}

impl Disk {
    /// Opens (creating if need be) the store in `root`, and cleans what killed processes
    /// left in its ingest area.
    pub(super) fn open(root: &Path) -> Result<Disk> {
        let disk = Disk {
            root: Arc::new(root.to_path_buf()),
            foreign: Vec::new(),
        };
        for dir in [disk.blobs_dir(), disk.cache_dir(), disk.ingest_dir()] {
            std::fs::create_dir_all(&dir)
                .map_err(|e| Error::io(format_args!("creating {}", dir.display()), e))?;
        }
        let layout = root.join("oci-layout");
        if !layout.exists() || !root.join("index.json").exists() {
            let _index = disk.lock_index()?;
            if !layout.exists() {
                disk.write_atomically(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
            }
            if !root.join("index.json").exists() {
                disk.write_atomically(&root.join("index.json"), &index_json(Vec::new())?)?;
            }
        }
        disk.clean_ingest()?;
        allow_open_files();
        Ok(disk)
    }

    pub(super) fn root(&self) -> &Path {
        &self.root
    }

    fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    fn own_dir(&self) -> PathBuf {
        self.root.join("layercake")
    }

    fn cache_dir(&self) -> PathBuf {
        self.own_dir().join("cache")
    }

    pub(super) fn ingest_dir(&self) -> PathBuf {
        self.own_dir().join("ingest")
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join(oci::blob_path(digest))
    }

    fn cache_path(&self, diff_id: DiffId) -> PathBuf {
        self.cache_dir().join(diff_id.to_hex().to_string())
    }

    /// This value with the index's foreign entries as just read.
    pub(super) fn with_foreign(mut self, foreign: Vec<Descriptor>) -> Disk {
        self.foreign = foreign;
        self
    }

    /// The foreign entry (one this crate does not read) named `tag`, if any.
    pub(super) fn foreign_named(&self, tag: &Reference) -> Option<&Descriptor> {
        self.foreign
            .iter()
            .rev()
            .find(|d| name_of(d).as_ref() == Some(tag))
    }

    /// Whether the store has the blob `digest`.
    pub(super) fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// A blob as a range of its file, nothing read.
    pub(super) fn blob(&self, digest: &Digest) -> Result<Contents> {
        let path = self.blob_path(digest);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::MissingBlob {
                    digest: *digest,
                    path: Some(oci::blob_path(digest)),
                })
            }
            Err(e) => return Err(Error::io(format_args!("opening {}", path.display()), e)),
        };
        let file = HostFile::new(file, path.display().to_string());
        let len = file.len()?;
        Ok(Contents::on_disk(file, 0, len))
    }

    /// The lock loads share and deletions take alone (`exclusive`).
    pub(super) fn lock_gc(&self, exclusive: bool) -> Result<Lock> {
        self.lock("gc.lock", exclusive)
    }

    /// The lock held while `index.json` is read, changed and replaced.
    pub(super) fn lock_index(&self) -> Result<Lock> {
        self.lock("index.lock", true)
    }

    fn lock(&self, name: &str, exclusive: bool) -> Result<Lock> {
        use rustix::fs::FlockOperation;
        let path = self.own_dir().join(name);
        let fail = |e: io::Error| Error::io(format_args!("locking {}", path.display()), e);
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(fail)?;
        let operation = if exclusive {
            FlockOperation::LockExclusive
        } else {
            FlockOperation::LockShared
        };
        rustix::fs::flock(&file, operation).map_err(|e| fail(e.into()))?;
        Ok(Lock { _file: file })
    }

    /// Reads the index: each entry with an image manifest becomes an image whose layers
    /// read from the store (reusing `known` ones), named by its tags; a tagged index is read
    /// as the image of its child for this host (or the child its pulled mark names). Each
    /// tag's entry is kept as it is. Other entries, and entries whose files are missing or
    /// broken (`verify` names those), are kept as they are.
    pub(super) fn read(&self, known: &BTreeMap<DiffId, Layer>) -> Result<Snapshot> {
        let index = self.read_index()?;
        let mut snapshot = Snapshot {
            images: Vec::new(),
            manifests: BTreeMap::new(),
            tops: BTreeMap::new(),
            build_steps: BTreeMap::new(),
            foreign: Vec::new(),
        };
        // Images read, by manifest digest and by id.
        let mut by_manifest: BTreeMap<Digest, usize> = BTreeMap::new();
        let mut by_id: BTreeMap<ImageId, usize> = BTreeMap::new();
        let mut layers = known.clone();
        let mut compat: BTreeMap<Reference, Descriptor> = BTreeMap::new();
        for desc in index.manifests {
            let tag = name_of(&desc);
            if desc.annotations.contains_key(COMPAT) {
                if let Some(tag) = tag {
                    compat.insert(tag, desc);
                }
                continue;
            }
            let mark = desc
                .annotations
                .get(PULLED)
                .and_then(|d| d.parse::<Digest>().ok());
            let kind = desc.media_type.as_str();
            let manifest = if tops::is_manifest(kind) {
                Some(plain(&desc))
            } else if tops::is_index(kind) && tag.is_some() {
                self.pick(&desc, mark).ok().flatten()
            } else {
                None
            };
            let at = manifest
                .as_ref()
                .and_then(|m| match by_manifest.get(&m.digest) {
                    Some(at) => Some(*at),
                    None => {
                        let image = self.read_image(m, &mut layers).ok()?;
                        let at = *by_id.entry(image.id()).or_insert_with(|| {
                            snapshot.manifests.insert(image.id(), m.clone());
                            snapshot.images.push(StoredImage {
                                image,
                                tags: Vec::new(),
                            });
                            snapshot.images.len() - 1
                        });
                        by_manifest.insert(m.digest, at);
                        Some(at)
                    }
                });
            if let (Some(at), Some(keys)) = (at, desc.annotations.get(BUILD_STEPS)) {
                let id = snapshot.images[at].image.id();
                for key in keys.split(',').filter_map(|k| k.parse::<Digest>().ok()) {
                    snapshot.build_steps.insert(key, id);
                }
            }
            match (at, tag) {
                (Some(at), Some(tag)) => {
                    snapshot.images[at].tags.push(tag.clone());
                    let top = Top {
                        desc: plain(&desc),
                        image: Some(snapshot.images[at].image.id()),
                        manifest: manifest.map(|m| m.digest),
                        pulled: mark.is_some(),
                        compat: None,
                    };
                    snapshot.tops.insert(tag, top);
                }
                (Some(_), None) => {}
                // Pulled and kept whole, with no image for this host.
                (None, Some(tag)) if mark.is_some() && tops::is_index(kind) => {
                    let top = Top {
                        desc: plain(&desc),
                        image: None,
                        manifest: None,
                        pulled: true,
                        compat: None,
                    };
                    snapshot.tops.insert(tag, top);
                }
                (None, _) => snapshot.foreign.push(desc),
            }
        }
        for (tag, top) in &mut snapshot.tops {
            let Some(entry) = compat.remove(tag) else {
                continue;
            };
            if entry.annotations.get(COMPAT) == Some(&top.desc.digest.to_string()) {
                top.compat = Some(plain(&entry));
            }
        }
        Ok(snapshot)
    }

    /// The image manifest a tagged index reads as: through nested indexes, the child
    /// `wanted` names, else this host's (see [`tops::pick`]).
    fn pick(&self, index: &Descriptor, wanted: Option<Digest>) -> Result<Option<Descriptor>> {
        let max_depth = Limits::default().index_depth as u64;
        let mut desc = index.clone();
        for depth in 1.. {
            Limits::check("index nesting depth", depth, max_depth)?;
            let what = oci::blob_path(&desc.digest);
            let bytes = self.small_blob(&desc)?;
            oci::check_shape(&bytes, &desc.media_type, &what)?;
            let index: Index = tops::json(&bytes, &what)?;
            let Some(child) = tops::pick(&index, wanted) else {
                return Ok(None);
            };
            if tops::is_manifest(&child.media_type) {
                return Ok(Some(plain(child)));
            }
            desc = child.clone();
        }
        unreachable!("the loop returns or fails at the depth limit")
    }

    fn read_index(&self) -> Result<Index> {
        let path = self.root.join("index.json");
        let bytes = read_small(&path, Limits::default().json_bytes)?;
        serde_json::from_slice(&bytes).map_err(|e| Error::InvalidArchive {
            path: Some(path.display().to_string()),
            reason: "index.json is not an OCI image index".into(),
            source: Some(e),
        })
    }

    /// A blob named in a manifest, read whole (manifests and configs: small, limited), its
    /// digest checked.
    pub(super) fn small_blob(&self, desc: &Descriptor) -> Result<Bytes> {
        let limit = Limits::default().json_bytes;
        Limits::check("JSON blob bytes", desc.size, limit)?;
        let bytes = read_small(&self.blob_path(&desc.digest), limit)?;
        let actual = Digest::sha256(&bytes);
        if bytes.len() as u64 != desc.size {
            return Err(Error::SizeMismatch {
                what: format!("blob {}", desc.digest),
                expected: desc.size,
                actual: bytes.len() as u64,
            });
        }
        if actual != desc.digest {
            return Err(Error::DigestMismatch {
                what: format!("blob {}", desc.digest),
                expected: desc.digest,
                actual,
            });
        }
        Ok(bytes)
    }

    fn read_image(&self, desc: &Descriptor, layers: &mut BTreeMap<DiffId, Layer>) -> Result<Image> {
        let manifest: Manifest = json(&self.small_blob(desc)?, "a manifest")?;
        let config = self.small_blob(&manifest.config)?;
        let parsed = crate::config::ImageConfig::from_bytes(config)?;
        let diff_ids = parsed.file().rootfs.diff_ids.clone();
        if diff_ids.len() != manifest.layers.len() {
            return Err(Error::InvalidConfig {
                reason: format!(
                    "manifest {} lists {} layers, its config {}",
                    desc.digest,
                    manifest.layers.len(),
                    diff_ids.len()
                ),
                source: None,
            });
        }
        let options = self.read_options();
        let mut image_layers = Vec::with_capacity(diff_ids.len());
        for (blob, diff_id) in manifest.layers.iter().zip(diff_ids) {
            let layer = match layers.get(&diff_id) {
                Some(layer) => layer.clone(),
                None => {
                    let path = self.blob_path(&blob.digest);
                    let file = HostFile::open(&path)?;
                    let len = file.len()?;
                    let blob_contents = Contents::on_disk(file, 0, len);
                    let cache = self.cache_path(diff_id);
                    let tar = if blob.digest == diff_id.digest() {
                        Some(blob_contents.clone())
                    } else if cache.exists() {
                        let file = HostFile::open(&cache)?;
                        let len = file.len()?;
                        Some(Contents::on_disk(file, 0, len))
                    } else {
                        None
                    };
                    let layer =
                        Layer::stored(blob_contents, blob.digest, diff_id, tar, cache, &options)?;
                    layers.insert(diff_id, layer.clone());
                    layer
                }
            };
            image_layers.push(layer);
        }
        Image::from_config(parsed, image_layers)
    }

    /// How layers are read into the store: limits as by default, spilled into the ingest
    /// area (the filesystem their names will be in).
    fn read_options(&self) -> ReadOptions {
        ReadOptions::new().temp_dir(self.ingest_dir()).durable()
    }

    /// Replaces `index.json` with `entries` (see [`entry`]), then the foreign entries as
    /// they were. The caller holds the index lock.
    /// Writes `index.json` (the caller holds the index lock), unless it says that already:
    /// a change that changes nothing (a tag given again, a rebuild from the cache) writes
    /// nothing.
    pub(super) fn write_index(&self, mut entries: Vec<Descriptor>) -> Result<()> {
        entries.extend(self.foreign.iter().cloned());
        let path = self.root.join("index.json");
        let bytes = index_json(entries)?;
        let unchanged = std::fs::metadata(&path).is_ok_and(|m| m.len() == bytes.len() as u64)
            && read_small(&path, Limits::default().json_bytes)
                .is_ok_and(|old| old[..] == bytes[..]);
        if unchanged {
            return Ok(());
        }
        self.write_atomically(&path, &bytes)
    }

    /// Writes a small file whole: into the ingest area, synced, then renamed over `path`.
    fn write_atomically(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let fail = |e: io::Error| Error::io(format_args!("writing {}", path.display()), e);
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        let partial = self.ingest_dir().join(format!(
            "{name}.{}.{}.partial",
            std::process::id(),
            unique()
        ));
        let mut file = File::create(&partial).map_err(fail)?;
        file.write_all(bytes).map_err(fail)?;
        file.sync_all().map_err(fail)?;
        std::fs::rename(&partial, path).map_err(fail)?;
        sync_dir(path.parent().unwrap_or(&self.root))
    }

    /// Deletes what processes that no longer run left half written: files named
    /// `….PID.N.partial` in the ingest area and beside blobs and cached tars.
    fn clean_ingest(&self) -> Result<()> {
        for dir in [self.ingest_dir(), self.blobs_dir(), self.cache_dir()] {
            let entries = std::fs::read_dir(&dir)
                .map_err(|e| Error::io(format_args!("listing {}", dir.display()), e))?;
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let Some(stem) = name.strip_suffix(".partial") else {
                    continue;
                };
                let pid = stem.rsplit('.').nth(1).and_then(|p| p.parse::<u32>().ok());
                let alive = pid.is_some_and(|pid| {
                    pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists()
                });
                if !alive {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        Ok(())
    }

    /// Writes a layer the store does not have into the ingest area, verified, and returns
    /// the layer as stored. A layer of an image file not read yet is read now, in one pass
    /// over its blob: copied as it is hashed, decompressed and parsed. `progress` hears the
    /// blob bytes taken in, of the blob's size.
    pub(super) fn ingest(
        &self,
        layer: &Layer,
        staged: &mut Staged,
        progress: &mut (dyn FnMut(u64, u64) + Send),
    ) -> Result<Layer> {
        let diff_id = layer.diff_id();
        let Some(unread) = layer.unread() else {
            return self.ingest_read(layer, staged, progress);
        };
        let expected = Expected {
            blob: unread.expected_blob,
            diff_id: Some(diff_id),
        };
        let options = unread.options.clone().temp_dir(self.ingest_dir()).durable();
        let streamed = stream_layer(
            &mut unread.blob.reader(),
            &expected,
            unread.blob.len(),
            &options,
            unread.budget,
            progress,
        )?;
        self.stage_layer(&streamed, staged);
        Ok(streamed.layer)
    }

    /// Stages a blob's file, to be named `blobs/sha256/<hex>` at commit.
    #[cfg_attr(not(feature = "registry"), allow(dead_code))]
    pub(super) fn stage_blob(&self, file: Arc<HostFile>, digest: &Digest, staged: &mut Staged) {
        staged.add(file, self.blob_path(digest));
    }

    /// Stages what [`stream_layer`] wrote: the blob, and the tar of a compressed one in the
    /// layer cache.
    pub(super) fn stage_layer(&self, streamed: &Streamed, staged: &mut Staged) {
        let diff_id = streamed.layer.diff_id();
        if let Some(blob) = &streamed.blob_file {
            staged.add(
                blob.clone(),
                self.blob_path(&streamed.layer.blob().digest()),
            );
        }
        if let Some(tar) = &streamed.tar_file {
            staged.add(tar.clone(), self.cache_path(diff_id));
        }
    }

    /// A layer read already (built in memory, or read from an image file before): its blob,
    /// and its tar if the blob is compressed, copied in and checked against their digests.
    fn ingest_read(
        &self,
        layer: &Layer,
        staged: &mut Staged,
        progress: &mut (dyn FnMut(u64, u64) + Send),
    ) -> Result<Layer> {
        let blob = layer.blob();
        let copy = self.copy_in(blob.contents(), blob.digest(), "a layer blob")?;
        staged.add(copy, self.blob_path(&blob.digest()));
        if blob.compression() != Compression::None {
            let diff_id = layer.diff_id();
            let tar = self.copy_in(layer.tar()?, diff_id.digest(), "a layer tar")?;
            staged.add(tar, self.cache_path(diff_id));
        }
        progress(blob.size(), blob.size());
        Ok(layer.clone())
    }

    /// Copies `contents` into a nameless file of the ingest area, checking it hashes to
    /// `digest`.
    pub(super) fn copy_in(
        &self,
        contents: &Contents,
        digest: Digest,
        what: &str,
    ) -> Result<Arc<HostFile>> {
        let mut out = ContentsWriter::temporary(&self.ingest_dir(), what)?;
        contents.copy_to(&mut out, what)?;
        let actual = out.digest();
        if actual != digest {
            return Err(Error::DigestMismatch {
                what: format!("{what} {digest}"),
                expected: digest,
                actual,
            });
        }
        let written = out.finish()?;
        Ok(written
            .host_file()
            .cloned()
            .expect("a temporary ContentsWriter writes to a file"))
    }

    /// Writes an image's config and a manifest for its layers (as stored) into the ingest
    /// area; returns the manifest's descriptor, with the image's platform.
    pub(super) fn stage_image(&self, image: &Image, staged: &mut Staged) -> Result<Descriptor> {
        let (bytes, desc) = super::ingest::own_manifest(image)?;
        let config = image.config().as_bytes().to_vec();
        for (bytes, digest) in [(config, image.id().digest()), (bytes, desc.digest)] {
            let file = self.copy_in(&Contents::from(bytes), digest, "a manifest or config")?;
            staged.add(file, self.blob_path(&digest));
        }
        Ok(desc)
    }

    /// Gives every staged file its name (synced first; a name that exists is kept), then
    /// syncs the directories.
    pub(super) fn commit(&self, staged: Staged) -> Result<()> {
        for (file, target) in &staged.files {
            persist(file, target)?;
        }
        sync_dir(&self.blobs_dir())?;
        sync_dir(&self.cache_dir())
    }

    /// Deletes every blob and cached tar that no entry of the index uses, through manifests
    /// and nested indexes. The caller holds the removal lock and the index lock.
    pub(super) fn collect_garbage(&self) -> Result<()> {
        for path in self.unreferenced()? {
            std::fs::remove_file(&path)
                .map_err(|e| Error::io(format_args!("deleting {}", path.display()), e))?;
        }
        self.clean_ingest()
    }

    /// Bytes of the blobs and cached tars no entry of the index uses.
    pub(super) fn unreferenced_bytes(&self) -> Result<u64> {
        let mut total = 0;
        for path in self.unreferenced()? {
            total += std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        }
        Ok(total)
    }

    /// The blobs and cached tars no entry of the index uses.
    fn unreferenced(&self) -> Result<Vec<PathBuf>> {
        let (blobs, diff_ids) = self.referenced()?;
        let hex = |digests: Vec<Digest>| -> BTreeSet<String> {
            digests.iter().map(|d| d.to_hex().to_string()).collect()
        };
        let mut found = Vec::new();
        for (dir, keep) in [
            (self.blobs_dir(), hex(blobs.into_iter().collect())),
            (
                self.cache_dir(),
                hex(diff_ids.iter().map(|d| d.digest()).collect()),
            ),
        ] {
            let unused = list(&dir)?
                .into_iter()
                .filter(|(name, _)| !keep.contains(name));
            found.extend(unused.map(|(_, path)| path));
        }
        Ok(found)
    }

    /// Every blob the index uses (through manifests and nested indexes), and every DiffId
    /// their configs list.
    fn referenced(&self) -> Result<(BTreeSet<Digest>, BTreeSet<DiffId>)> {
        let walked = self.walk(self.read_index()?.manifests)?;
        Ok((walked.blobs.into_keys().collect(), walked.diff_ids))
    }

    /// What `roots` name, through manifests and nested indexes, as far as the blobs read.
    pub(super) fn walk(&self, roots: Vec<Descriptor>) -> Result<Walked> {
        tops::walk(
            roots,
            &mut |desc| Ok(self.small_blob(desc).ok()),
            Strictness::Lenient,
        )
    }

    /// Bytes in the layer cache.
    pub(super) fn cache_bytes(&self) -> Result<u64> {
        let mut total = 0;
        for (_, path) in list(&self.cache_dir())? {
            total += std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        }
        Ok(total)
    }

    /// Re-hashes every blob and cached tar against its name, and checks that every file
    /// the index uses is there.
    pub(super) fn verify(&self) -> Result<Verification> {
        let mut verification = Verification::default();
        let relative = |path: &Path| path.strip_prefix(&*self.root).unwrap_or(path).to_path_buf();
        let mut present = BTreeSet::new();
        for (dir, is_blob) in [(self.blobs_dir(), true), (self.cache_dir(), false)] {
            for (name, path) in list(&dir)? {
                let Ok(expected) = format!("sha256:{name}").parse::<Digest>() else {
                    verification.problems.push(Corruption::new(
                        relative(&path),
                        Digest::sha256(b""),
                        None,
                        "not named by a SHA-256 digest",
                    ));
                    continue;
                };
                if is_blob {
                    verification.blobs += 1;
                    present.insert(expected);
                } else {
                    verification.layers += 1;
                }
                let problem = match hash_file(&path) {
                    Ok(actual) if actual == expected => None,
                    Ok(actual) => Some((Some(actual), "digest mismatch".to_owned())),
                    Err(e) => Some((None, format!("unreadable: {e}"))),
                };
                if let Some((actual, reason)) = problem {
                    verification.problems.push(Corruption::new(
                        relative(&path),
                        expected,
                        actual,
                        reason,
                    ));
                }
            }
        }
        let (needed, _) = self.referenced()?;
        for digest in needed.difference(&present) {
            verification.problems.push(Corruption::new(
                oci::blob_path(digest),
                *digest,
                None,
                "missing (the index uses it)",
            ));
        }
        Ok(verification)
    }
}

impl Staged {
    fn add(&mut self, file: Arc<HostFile>, target: PathBuf) {
        self.files.push((file, target));
    }
}

/// The tag an index entry names, if it names one this crate reads as a reference.
fn name_of(desc: &Descriptor) -> Option<Reference> {
    desc.annotations
        .get(IMAGE_NAME)
        .or_else(|| desc.annotations.get(REF_NAME))
        .and_then(|name| Reference::parse(name).ok())
        .filter(|r| r.digest().is_none())
}

/// The `index.json` entry for `desc` named `tag` (none for an untagged image), marked as
/// pulled with the digest of the image manifest it reads as (`pulled`).
pub(super) fn entry(
    desc: &Descriptor,
    tag: Option<&Reference>,
    pulled: Option<Digest>,
) -> Descriptor {
    let mut named = desc.clone();
    if let Some(tag) = tag {
        let full = tag.to_string();
        named.annotations.insert(REF_NAME.to_owned(), full.clone());
        named.annotations.insert(IMAGE_NAME.to_owned(), full);
    }
    if let Some(digest) = pulled {
        named
            .annotations
            .insert(PULLED.to_owned(), digest.to_string());
    }
    named
}

/// The `index.json` entry of the OCI index written beside `top` (of Docker's media types)
/// for OCI tools: named as `tag` by its OCI ref name only (containerd's name stays with the
/// top), and marked with the top's digest.
pub(super) fn compat_entry(compat: &Descriptor, tag: &Reference, top: Digest) -> Descriptor {
    let mut named = compat.clone();
    named
        .annotations
        .insert(REF_NAME.to_owned(), tag.to_string());
    named.annotations.insert(COMPAT.to_owned(), top.to_string());
    named
}

/// An entry without the annotations the store gives it (names, pulled mark).
pub(super) fn plain(desc: &Descriptor) -> Descriptor {
    let mut plain = desc.clone();
    for key in [REF_NAME, IMAGE_NAME, PULLED, COMPAT, BUILD_STEPS] {
        plain.annotations.remove(key);
    }
    plain
}

fn index_json(manifests: Vec<Descriptor>) -> Result<Vec<u8>> {
    oci::to_json(&Index {
        schema_version: 2,
        media_type: Some(INDEX_V1.to_owned()),
        manifests,
        annotations: BTreeMap::new(),
        extra: BTreeMap::new(),
    })
}

fn json<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::InvalidArchive {
        path: None,
        reason: format!("{what} does not parse"),
        source: Some(e),
    })
}

/// Reads a file of at most `limit` bytes whole.
fn read_small(path: &Path, limit: u64) -> Result<Bytes> {
    let fail = |e: io::Error| Error::io(format_args!("reading {}", path.display()), e);
    let file = File::open(path).map_err(fail)?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes).map_err(fail)?;
    Limits::check("JSON bytes", bytes.len() as u64, limit)?;
    Ok(Bytes::from(bytes))
}

/// The files of a directory, by name, skipping names that start with a dot.
fn list(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::io(format_args!("listing {}", dir.display()), e))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(format_args!("listing {}", dir.display()), e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') {
            files.push((name, entry.path()));
        }
    }
    files.sort();
    Ok(files)
}

fn hash_file(path: &Path) -> io::Result<Digest> {
    let mut hash = HashingReader::new(io::BufReader::with_capacity(1 << 20, File::open(path)?));
    io::copy(&mut hash, &mut io::sink())?;
    Ok(hash.digest())
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(format_args!("syncing {}", dir.display()), e))
}

/// Raises the soft limit on open files to the hard one, as Go's runtime does: a stored layer
/// keeps its blob (and cached tar) open, and a store of many images has many layers.
fn allow_open_files() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        // Best effort: the default limit still serves a store of a few hundred layers.
        let _ = setrlimit(Resource::Nofile, limit);
    }
}

/// A number no other call in this process gets.
fn unique() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// A layer blob read from a stream, and the files it was written to.
pub(super) struct Streamed {
    /// The layer, read and verified; its blob and tar are in the files below.
    pub(super) layer: Layer,
    /// The blob's file (for a plain blob, the tar's: one file).
    pub(super) blob_file: Option<Arc<HostFile>>,
    /// The uncompressed tar's file, for a compressed blob.
    pub(super) tar_file: Option<Arc<HostFile>>,
}

/// Reads a layer blob from a stream in one pass: copies it into a nameless file in
/// `options`' directory as it is hashed, decompresses it (a plain blob is the tar: one file),
/// hashes and parses the tar, and checks the blob's digest, its size (`size` bytes: one byte
/// more fails as it arrives, fewer at the end) and the DiffId against `expected`.
/// `progress(done, size)` hears blob bytes taken in, every MiB and at the end.
///
/// # Errors
///
/// [`Error::SizeMismatch`] for a stream longer or shorter than `size` (a longer one is
/// reported with the bytes seen when it was stopped), then those of [`codec::decode`].
pub(super) fn stream_layer(
    reader: &mut (dyn Read + Send),
    expected: &Expected,
    size: u64,
    options: &ReadOptions,
    budget: Option<&Budget>,
    progress: &mut (dyn FnMut(u64, u64) + Send),
) -> Result<Streamed> {
    let mut source = Counting::new(reader, size, progress);
    let (decoded, copy) = {
        // The first bytes tell a compressed blob, which is copied as it passes; a plain one
        // is the tar, which the decoder spills.
        let mut magic = Vec::with_capacity(4);
        if let Err(e) = (&mut source).take(4).read_to_end(&mut magic) {
            return Err(source.explain(expected.blob, Error::io("reading a layer blob", e)));
        }
        let mut stream = io::Cursor::new(magic).chain(&mut source);
        if Compression::detect(stream.get_ref().0.get_ref()) == Compression::None {
            let decoded = codec::decode(BlobInput::Reader(&mut stream), expected, options, budget);
            (decoded, None)
        } else {
            // A compressed blob: a thread of its own takes it in (the network, the copy
            // being written, its hash) while the decoder inflates, hashes and parses the
            // tar on the others.
            let copy = ContentsWriter::temporary(&options.spill_dir(), "a blob being stored")?;
            let (send, receive) = std::sync::mpsc::sync_channel(DOWNLOAD_IN_FLIGHT);
            std::thread::scope(|scope| {
                let download = scope.spawn(move || take_in(stream, copy, send));
                let mut input = Received::new(receive);
                let decoded = match expected.blob {
                    Some(_) => {
                        codec::decode(BlobInput::Hashed(&mut input), expected, options, budget)
                    }
                    None => codec::decode(BlobInput::Reader(&mut input), expected, options, budget),
                };
                // A decoder that stopped early lets the download stop too.
                drop(input);
                let (copy, taken) = download
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                let decoded = match (decoded, taken) {
                    (_, Err(e)) => Err(Error::io("reading a layer blob", e)),
                    (Ok(decoded), Ok(())) => match expected.blob {
                        Some(want) if copy.digest() != want => Err(Error::DigestMismatch {
                            what: format!("blob {want}"),
                            expected: want,
                            actual: copy.digest(),
                        }),
                        _ => Ok(decoded),
                    },
                    (Err(e), Ok(())) => Err(e),
                };
                (decoded, Some(copy))
            })
        }
    };
    let decoded = source.check(expected.blob, decoded)?;
    source.finish();
    let tar_file = decoded.tar.host_file().cloned();
    if decoded.compression == Compression::None {
        let layer = Layer::decoded(decoded, None)?;
        return Ok(Streamed {
            layer,
            blob_file: tar_file,
            tar_file: None,
        });
    }
    let blob = copy
        .expect("a compressed blob passed through the copy")
        .finish()?;
    let blob_file = blob.host_file().cloned();
    let layer = Layer::decoded(decoded, Some(blob))?;
    Ok(Streamed {
        layer,
        blob_file,
        tar_file,
    })
}

/// Copies a blob from a stream into a nameless file in `dir`, checking its size as it
/// streams (as [`stream_layer`]) and its digest at the end.
#[cfg_attr(not(feature = "registry"), allow(dead_code))]
pub(super) fn stream_blob(
    reader: &mut (dyn Read + Send),
    blob: &Descriptor,
    dir: &Path,
    progress: &mut (dyn FnMut(u64, u64) + Send),
) -> Result<Contents> {
    let mut source = Counting::new(reader, blob.size, progress);
    let mut out = ContentsWriter::temporary(dir, format!("blob {}", blob.digest))?;
    let copied = io::copy(&mut source, &mut out)
        .map_err(|e| Error::io(format_args!("reading blob {}", blob.digest), e));
    source.check(Some(blob.digest), copied)?;
    source.finish();
    let actual = out.digest();
    if actual != blob.digest {
        return Err(Error::DigestMismatch {
            what: format!("blob {}", blob.digest),
            expected: blob.digest,
            actual,
        });
    }
    out.finish()
}

/// A reader that tells `progress` how far it has got, every MiB and at the end, and fails
/// as soon as more than `total` bytes come.
struct Counting<'a, R> {
    reader: R,
    done: u64,
    reported: u64,
    total: u64,
    /// Whether the reader said it had no more.
    ended: bool,
    progress: &'a mut (dyn FnMut(u64, u64) + Send),
}

impl<'a, R> Counting<'a, R> {
    fn new(reader: R, total: u64, progress: &'a mut (dyn FnMut(u64, u64) + Send)) -> Self {
        Counting {
            reader,
            done: 0,
            reported: 0,
            total,
            ended: false,
            progress,
        }
    }

    fn finish(&mut self) {
        if self.reported != self.done || self.done == 0 {
            (self.progress)(self.done, self.total);
            self.reported = self.done;
        }
    }

    /// What a read through this gave, or the size mismatch that explains its failure or
    /// that it stopped short of `total`.
    fn check<T>(&self, digest: Option<Digest>, result: Result<T>) -> Result<T> {
        match result {
            Err(e) => Err(self.explain(digest, e)),
            Ok(_) if self.done != self.total => Err(self.mismatch(digest)),
            ok => ok,
        }
    }

    /// The error to give for a read that failed: a size mismatch if the stream was longer
    /// than `total`, or ended short of it; else `e`.
    fn explain(&self, digest: Option<Digest>, e: Error) -> Error {
        if self.done > self.total || (self.ended && self.done < self.total) {
            self.mismatch(digest)
        } else {
            e
        }
    }

    fn mismatch(&self, digest: Option<Digest>) -> Error {
        Error::SizeMismatch {
            what: match digest {
                Some(digest) => format!("blob {digest}"),
                None => "a blob".to_owned(),
            },
            expected: self.total,
            actual: self.done,
        }
    }
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.reader.read(buf)?;
        self.ended |= n == 0 && !buf.is_empty();
        self.done += n as u64;
        if self.done > self.total {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "more than the {} bytes the blob's descriptor gives",
                    self.total
                ),
            ));
        }
        if self.done - self.reported >= 1 << 20 {
            (self.progress)(self.done, self.total);
            self.reported = self.done;
        }
        Ok(n)
    }
}

/// Chunks of a blob in flight between the thread taking it in and the decoder.
const DOWNLOAD_IN_FLIGHT: usize = 16;
const DOWNLOAD_CHUNK: usize = 256 << 10;

/// Reads a blob to its end, writing it to `copy` (which hashes it, and is synced at the
/// end) and passing it on in chunks; stops when the decoder has gone. The copy comes back with how the reading went.
fn take_in(
    mut stream: impl Read,
    mut copy: ContentsWriter,
    send: std::sync::mpsc::SyncSender<io::Result<Vec<u8>>>,
) -> (ContentsWriter, io::Result<()>) {
    loop {
        let mut chunk = vec![0; DOWNLOAD_CHUNK];
        let mut filled = 0;
        let read = loop {
            match stream.read(&mut chunk[filled..]) {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    filled += n;
                    if filled == chunk.len() {
                        break Ok(());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        chunk.truncate(filled);
        if let Err(e) = read.and_then(|()| copy.write_all(&chunk)) {
            let _ = send.send(Err(io::Error::new(e.kind(), e.to_string())));
            return (copy, Err(e));
        }
        if chunk.is_empty() {
            // Synced now, while the decoder catches up, rather than at the commit.
            let synced = copy.sync();
            return (copy, synced);
        }
        if send.send(Ok(chunk)).is_err() {
            // The decoder stopped; its error says why.
            return (copy, Ok(()));
        }
    }
}

/// The decoder's end of [`take_in`]'s channel, as a reader.
struct Received {
    receive: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    at: usize,
}

impl Received {
    fn new(receive: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>) -> Received {
        Received {
            receive,
            chunk: Vec::new(),
            at: 0,
        }
    }
}

impl Read for Received {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at == self.chunk.len() {
            match self.receive.recv() {
                Ok(chunk) => {
                    self.chunk = chunk?;
                    self.at = 0;
                }
                // The sender is gone: the end of the blob.
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
