//! `docker push` and registry-to-registry copies: each blob HEADed, then mounted or
//! uploaded, several at once; the manifest last, with its bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use bytes::Bytes;

use super::pull::{is_index, parse_json};
use super::{Client, ProgressFn, Transfer};
use crate::archive::oci::{self, Descriptor, Index, Manifest, CONFIG_V1};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image::Image;
use crate::limits::Limits;
use crate::reference::Reference;
use crate::store::Store;

/// How a push runs: repositories to mount blobs from, how many blobs at once, progress.
pub struct PushOptions<'a> {
    mount_from: Vec<Reference>,
    jobs: usize,
    pub(super) progress: Option<ProgressFn<'a>>,
}

impl fmt::Debug for PushOptions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PushOptions")
            .field("mount_from", &self.mount_from)
            .field("jobs", &self.jobs)
            .finish_non_exhaustive()
    }
}

impl Default for PushOptions<'_> {
    fn default() -> Self {
        PushOptions::new()
    }
}

impl<'a> PushOptions<'a> {
    /// No mount sources beyond those the store knows, four blobs at once, no progress.
    pub fn new() -> PushOptions<'a> {
        PushOptions {
            mount_from: Vec::new(),
            jobs: 4,
            progress: None,
        }
    }

    /// A repository (of the destination's registry) that may hold the image's blobs: they
    /// are mounted from it rather than uploaded.
    pub fn mount_from(mut self, source: Reference) -> PushOptions<'a> {
        self.mount_from.push(source);
        self
    }

    /// How many blobs move at once (at least one).
    pub fn jobs(mut self, jobs: usize) -> PushOptions<'a> {
        self.jobs = jobs.max(1);
        self
    }

    /// Hears every blob's progress.
    pub fn progress(mut self, progress: impl FnMut(&Transfer) + Send + 'a) -> PushOptions<'a> {
        self.progress = Some(Box::new(progress));
        self
    }
}

/// What a push did.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PushReport {
    /// Where the image went.
    pub reference: Reference,
    /// The manifest (or index) put last, as the registry has it.
    pub manifest: Descriptor,
    /// What happened to each layer blob, bottom first: exists, mounted, or pushed.
    pub layers: Vec<Transfer>,
}

impl Client {
    /// Pushes an image (built, committed, loaded: any [`Image`]) to `to`, with an OCI
    /// manifest written for its layers as they are (a layer built in memory goes
    /// uncompressed, as it is stored).
    ///
    /// Each blob is asked for with a HEAD first and skipped when the repository has it;
    /// else mounted from a repository [`PushOptions::mount_from`] names on the same
    /// registry, else uploaded (in one request when small, in chunks of at most 4 MiB
    /// otherwise). The manifest goes last, so the tag never names an image with blobs
    /// missing.
    ///
    /// # Errors
    ///
    /// [`Error::Registry`] for what the registry refuses (no push access: 401 or 403
    /// `DENIED`), and the errors of reading a layer's blob.
    ///
    /// ```no_run
    /// use layercake::registry::{Client, PushOptions};
    /// use layercake::{Image, Layer, Reference};
    ///
    /// let image = Image::builder().layer(Layer::builder().file("hello", "world\n").build()?).build()?;
    /// let to = Reference::parse("127.0.0.1:5000/hello:1")?;
    /// let report = Client::new().push(&image, &to, PushOptions::new())?;
    /// println!("{}: digest: {} size: {}", to.tag().unwrap(), report.manifest.digest, report.manifest.size);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn push(
        &self,
        image: &Image,
        to: &Reference,
        options: PushOptions<'_>,
    ) -> Result<PushReport> {
        let config = image.config().as_bytes().clone();
        let config_desc = Descriptor::of(CONFIG_V1, &config);
        let mut blobs: BTreeMap<Digest, crate::contents::Contents> = BTreeMap::new();
        blobs.insert(config_desc.digest, crate::contents::Contents::from(config));
        let layers = image
            .layers()
            .map(|layer| {
                let blob = layer.blob();
                blobs.insert(blob.digest(), blob.contents().clone());
                Descriptor::of_blob(blob.media_type(), blob.digest(), blob.size())
            })
            .collect();
        let (bytes, manifest) = oci::manifest_of(image, config_desc, layers)?;
        let bytes = Bytes::from(bytes);
        let open = |desc: &Descriptor| -> Result<Box<dyn Read + Send>> {
            match blobs.get(&desc.digest) {
                Some(contents) => Ok(Box::new(contents.reader())),
                None => Err(Error::MissingBlob {
                    digest: desc.digest,
                    path: None,
                }),
            }
        };
        let source = Source {
            blob: &open,
            manifest: &|desc: &Descriptor| {
                Err(Error::MissingBlob {
                    digest: desc.digest,
                    path: None,
                })
            },
            mounts: &|_: &Digest| Vec::new(),
        };
        let mut manifest = manifest;
        manifest.platform = None;
        self.push_top(&source, &manifest, &bytes, to, options)
    }

    /// Pushes the image (or index) `reference` names in `store` to `to`, with the manifest
    /// bytes the store keeps: a pulled image goes back with the digest it came with.
    ///
    /// Blobs the destination registry may have elsewhere are mounted: those of images the
    /// store has under another repository of the same registry (pulled from it or pushed
    /// to it), as Docker remembers where a layer came from, and those of
    /// [`PushOptions::mount_from`].
    ///
    /// # Errors
    ///
    /// [`Error::ImageNotFound`] when the store has no such image, and as [`Client::push`].
    ///
    /// ```no_run
    /// use layercake::registry::{Client, PushOptions};
    /// use layercake::{Reference, Store};
    ///
    /// let store = Store::open("/var/lib/layercake")?;
    /// let to = Reference::parse("127.0.0.1:5000/team/busybox:1")?;
    /// let report = Client::new().push_stored(&store, "busybox", &to, PushOptions::new())?;
    /// assert_eq!(report.manifest.digest, store.manifest("busybox")?.0.digest, "the bytes kept");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn push_stored(
        &self,
        store: &Store,
        reference: &str,
        to: &Reference,
        options: PushOptions<'_>,
    ) -> Result<PushReport> {
        let (top, bytes) = store.manifest(reference)?;
        let open = |desc: &Descriptor| -> Result<Box<dyn Read + Send>> {
            Ok(Box::new(store.blob(desc.digest)?.reader()))
        };
        let manifest =
            |desc: &Descriptor| -> Result<Bytes> { small(store.blob(desc.digest)?, desc) };
        let known = mount_sources(store, to)?;
        let mounts = |digest: &Digest| known.get(digest).cloned().unwrap_or_default();
        let source = Source {
            blob: &open,
            manifest: &manifest,
            mounts: &mounts,
        };
        self.push_top(&source, &top, &bytes, to, options)
    }

    /// Copies an image, an index (nested ones too) or an artifact from one registry
    /// reference to another, blob by blob, manifest bytes kept: blobs are mounted when both
    /// are on one registry, streamed from one to the other otherwise (never through a
    /// file).
    ///
    /// # Errors
    ///
    /// As [`Client::pull`] for the source and [`Client::push`] for the destination.
    ///
    /// ```no_run
    /// use layercake::registry::{Client, PushOptions};
    /// use layercake::Reference;
    ///
    /// let from = Reference::parse("127.0.0.1:5000/busybox:1")?;
    /// let to = Reference::parse("127.0.0.1:5000/mirror/busybox:1")?;
    /// let report = Client::new().copy(&from, &to, PushOptions::new())?;
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn copy(
        &self,
        from: &Reference,
        to: &Reference,
        options: PushOptions<'_>,
    ) -> Result<PushReport> {
        let (top, bytes) = self.manifest(from)?;
        let open = |desc: &Descriptor| -> Result<Box<dyn Read + Send>> {
            Ok(Box::new(self.blob(from, desc)?))
        };
        let manifest = |desc: &Descriptor| -> Result<Bytes> {
            Ok(self.manifest(&from.with_digest(desc.digest))?.1)
        };
        let same_registry = from.domain() == to.domain() && from.repository() != to.repository();
        let mounts = |_: &Digest| {
            if same_registry {
                vec![from.repository().to_owned()]
            } else {
                Vec::new()
            }
        };
        let source = Source {
            blob: &open,
            manifest: &manifest,
            mounts: &mounts,
        };
        self.push_top(&source, &top, &bytes, to, options)
    }

    /// Sends `top` (a manifest or an index) and everything it names that `to`'s repository
    /// lacks, then `top` itself under `to`.
    pub(super) fn push_top(
        &self,
        source: &Source<'_>,
        top: &Descriptor,
        bytes: &Bytes,
        to: &Reference,
        options: PushOptions<'_>,
    ) -> Result<PushReport> {
        let extra: Vec<String> = options
            .mount_from
            .iter()
            .filter(|r| r.domain() == to.domain() && r.repository() != to.repository())
            .map(|r| r.repository().to_owned())
            .collect();
        let progress = Mutex::new(options.progress);
        let emit = |event: Transfer| {
            if let Some(progress) = progress.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
                progress(&event);
            }
        };
        let mut sender = Sender {
            client: self,
            source,
            to,
            extra: &extra,
            jobs: options.jobs,
            emit: &emit,
            layers: Vec::new(),
            sent: BTreeSet::new(),
        };
        let digest = sender.send_top(top, bytes, to, 0)?;
        let mut manifest = top.clone();
        manifest.annotations.clear();
        if digest != manifest.digest {
            return Err(Error::DigestMismatch {
                what: format!("manifest pushed to {to}"),
                expected: manifest.digest,
                actual: digest,
            });
        }
        Ok(PushReport {
            reference: to.clone(),
            manifest,
            layers: sender.layers,
        })
    }
}

/// Where a push reads from: blobs, manifests named by an index, and the repositories of
/// the destination's registry that may hold a blob already.
pub(super) struct Source<'a> {
    pub(super) blob: &'a (dyn Fn(&Descriptor) -> Result<Box<dyn Read + Send>> + Sync),
    pub(super) manifest: &'a (dyn Fn(&Descriptor) -> Result<Bytes> + Sync),
    pub(super) mounts: &'a (dyn Fn(&Digest) -> Vec<String> + Sync),
}

/// One push under way.
struct Sender<'a> {
    client: &'a Client,
    source: &'a Source<'a>,
    to: &'a Reference,
    extra: &'a [String],
    jobs: usize,
    emit: &'a (dyn Fn(Transfer) + Sync),
    /// What happened to each layer blob, in manifest order (each blob once).
    layers: Vec<Transfer>,
    /// Blobs sent or found already.
    sent: BTreeSet<Digest>,
}

const MAX_INDEX_DEPTH: usize = 8;

impl Sender<'_> {
    fn send_top(
        &mut self,
        top: &Descriptor,
        bytes: &Bytes,
        at: &Reference,
        depth: usize,
    ) -> Result<Digest> {
        if depth >= MAX_INDEX_DEPTH {
            return Err(Error::Unsupported {
                what: format!(
                    "{}: indexes nested more than {MAX_INDEX_DEPTH} deep",
                    self.to
                ),
            });
        }
        if is_index(&top.media_type) {
            let index: Index = parse_json(bytes, top)?;
            for child in &index.manifests {
                let child_bytes = (self.source.manifest)(child)?;
                let mut desc = child.clone();
                desc.annotations.clear();
                let pinned = self.to.with_digest(child.digest);
                self.send_top(&desc, &child_bytes, &pinned, depth + 1)?;
            }
        } else {
            // An image manifest or an artifact's: its config and layers (blobs alike).
            let manifest: Manifest = parse_json(bytes, top)?;
            self.send_blobs(&manifest.layers, true)?;
            self.send_blobs(std::slice::from_ref(&manifest.config), false)?;
        }
        self.client.put_manifest(at, &top.media_type, bytes)
    }

    /// Sends `blobs` the repository lacks, `jobs` at once; `layers` says whether they are
    /// reported.
    fn send_blobs(&mut self, blobs: &[Descriptor], layers: bool) -> Result<()> {
        let todo: Vec<&Descriptor> = blobs
            .iter()
            .filter(|b| !self.sent.contains(&b.digest))
            .collect();
        let results: Vec<Mutex<Option<Result<Transfer>>>> =
            todo.iter().map(|_| Mutex::new(None)).collect();
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let (client, source, to, extra, emit) =
            (self.client, self.source, self.to, self.extra, self.emit);
        std::thread::scope(|scope| {
            for _ in 0..self.jobs.min(todo.len()) {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= todo.len() || failed.load(Ordering::SeqCst) {
                        break;
                    }
                    let blob = todo[i];
                    let result = send_blob(client, source, to, extra, blob, emit);
                    match &result {
                        Ok(done) => emit(done.clone()),
                        Err(_) => failed.store(true, Ordering::SeqCst),
                    }
                    *results[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
                });
            }
        });
        for (blob, result) in todo.iter().zip(results) {
            match result.into_inner().unwrap_or_else(|e| e.into_inner()) {
                Some(Ok(transfer)) => {
                    self.sent.insert(blob.digest);
                    if layers {
                        self.layers.push(transfer);
                    }
                }
                Some(Err(e)) => return Err(e),
                None => {}
            }
        }
        Ok(())
    }
}

/// One blob: found, mounted or uploaded.
fn send_blob(
    client: &Client,
    source: &Source<'_>,
    to: &Reference,
    extra: &[String],
    blob: &Descriptor,
    emit: &(dyn Fn(Transfer) + Sync),
) -> Result<Transfer> {
    if client.has_blob(to, blob.digest)?.is_some() {
        return Ok(Transfer::Exists {
            digest: blob.digest,
        });
    }
    let mut mounts = (source.mounts)(&blob.digest);
    mounts.extend(extra.iter().cloned());
    mounts.retain(|repo| repo != to.repository());
    mounts.dedup();
    let digest = blob.digest;
    let total = blob.size;
    client.put_blob(
        to,
        blob,
        &mounts,
        &mut || (source.blob)(blob),
        &mut |done| {
            emit(Transfer::Moving {
                digest,
                done,
                total,
            })
        },
    )
}

/// A small blob read whole, its size limited.
fn small(contents: crate::contents::Contents, desc: &Descriptor) -> Result<Bytes> {
    Limits::check(
        "JSON blob bytes",
        contents.len(),
        Limits::default().json_bytes,
    )?;
    let bytes = contents.to_bytes()?;
    if !desc.digest.verify(&bytes) {
        return Err(Error::DigestMismatch {
            what: format!("manifest {}", desc.digest),
            expected: desc.digest,
            actual: Digest::sha256(&bytes),
        });
    }
    Ok(bytes)
}

/// For each blob of an image the store has under another repository of `to`'s registry,
/// those repositories: where a mount may find it.
fn mount_sources(store: &Store, to: &Reference) -> Result<BTreeMap<Digest, Vec<String>>> {
    let mut sources: BTreeMap<Digest, Vec<String>> = BTreeMap::new();
    for image in store.images() {
        for reference in store.references_of(image.id()) {
            if reference.domain() != to.domain() || reference.repository() == to.repository() {
                continue;
            }
            let Ok((desc, bytes)) = store.manifest(&reference.to_string()) else {
                continue;
            };
            let mut manifests = vec![(desc, bytes)];
            let mut blobs = Vec::new();
            while let Some((desc, bytes)) = manifests.pop() {
                if is_index(&desc.media_type) {
                    let Ok(index) = parse_json::<Index>(&bytes, &desc) else {
                        continue;
                    };
                    for child in index.manifests {
                        if let Ok(child_bytes) =
                            store.blob(child.digest).and_then(|c| small(c, &child))
                        {
                            manifests.push((child, child_bytes));
                        }
                    }
                } else if let Ok(manifest) = parse_json::<Manifest>(&bytes, &desc) {
                    blobs.push(manifest.config.digest);
                    blobs.extend(manifest.layers.iter().map(|l| l.digest));
                }
            }
            for digest in blobs {
                let repos = sources.entry(digest).or_default();
                if !repos.iter().any(|r| r == reference.repository()) {
                    repos.push(reference.repository().to_owned());
                }
            }
        }
    }
    Ok(sources)
}
