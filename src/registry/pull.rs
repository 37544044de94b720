//! `docker pull`: a manifest (an index resolved to a platform, or kept whole), its config,
//! then its layers streamed into a store, four at once, in manifest order.

use std::fmt;
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use bytes::Bytes;

use super::{Client, ProgressFn, Transfer};
use crate::archive::oci::{
    Descriptor, Index, Manifest, Platform, CONFIG_V1, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST_V2,
    INDEX_V1, MANIFEST_V1,
};
use crate::config::ImageConfig;
use crate::digest::{DiffId, Digest};
use crate::error::{Error, Result};
use crate::image::Image;
use crate::layer::Layer;
use crate::reference::Reference;
use crate::store::{Ingest, LayerStatus, Store};

/// How [`Client::pull`] pulls: which platform, how many layers at once, who hears progress.
pub struct PullOptions<'a> {
    platform: Option<Platform>,
    all_platforms: bool,
    jobs: usize,
    progress: Option<ProgressFn<'a>>,
}

impl fmt::Debug for PullOptions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PullOptions")
            .field("platform", &self.platform)
            .field("all_platforms", &self.all_platforms)
            .field("jobs", &self.jobs)
            .finish_non_exhaustive()
    }
}

impl Default for PullOptions<'_> {
    fn default() -> Self {
        PullOptions::new()
    }
}

impl<'a> PullOptions<'a> {
    /// The host's platform, four layers at once, no progress.
    pub fn new() -> PullOptions<'a> {
        PullOptions {
            platform: None,
            all_platforms: false,
            jobs: 4,
            progress: None,
        }
    }

    /// The platform to take from an index (`--platform os/arch[/variant]`).
    pub fn platform(mut self, platform: Platform) -> PullOptions<'a> {
        self.platform = Some(platform);
        self
    }

    /// Keeps a whole index: every platform's manifest, config and layers.
    pub fn all_platforms(mut self, all: bool) -> PullOptions<'a> {
        self.all_platforms = all;
        self
    }

    /// How many blobs stream at once (at least one).
    pub fn jobs(mut self, jobs: usize) -> PullOptions<'a> {
        self.jobs = jobs.max(1);
        self
    }

    /// Hears every blob's progress.
    pub fn progress(mut self, progress: impl FnMut(&Transfer) + Send + 'a) -> PullOptions<'a> {
        self.progress = Some(Box::new(progress));
        self
    }
}

/// What [`Client::pull`] did.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PullReport {
    /// The image pulled (for an index, the platform's), as stored.
    pub image: Image,
    /// What the tag names now: the manifest or index, as the registry serves it.
    pub manifest: Descriptor,
    /// Each layer blob, bottom first, and whether the store had it.
    pub layers: Vec<(Digest, LayerStatus)>,
    /// Whether the store had the image under this name already (`Image is up to date`).
    pub up_to_date: bool,
}

/// An image in a registry, read without its layers: what `inspect docker://…` shows.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RemoteImage {
    /// Where it is.
    pub reference: Reference,
    /// The index the reference names, if it names one, with its bytes.
    pub index: Option<(Descriptor, Bytes)>,
    /// The image manifest (the platform's, for an index), with its bytes.
    pub manifest: (Descriptor, Bytes),
    /// The config.
    pub config: ImageConfig,
    /// The layer blobs, bottom first.
    pub layers: Vec<Descriptor>,
}

impl Client {
    /// Pulls `reference` into `store` and tags it there, as `docker pull` does.
    ///
    /// The manifest is asked for with a HEAD first: when the store has it under this name
    /// already, nothing else is asked (`Image is up to date`). Otherwise the manifest (for
    /// an index, the platform's; with [`PullOptions::all_platforms`], every one) and the
    /// config are read, and each layer blob the store does not have streams into the
    /// store's ingest area, [`PullOptions::jobs`] at once: hashed and checked against its
    /// digest and size as it arrives, decompressed on another core, its DiffId checked.
    /// Nothing is visible in the store until every blob has arrived whole; then the image,
    /// its manifest bytes exactly as served and its tag appear at once. A pull by digest
    /// (`name@sha256:…`) adds no tag.
    ///
    /// Without [`PullOptions::all_platforms`], a name that is an index is stored as its
    /// platform's manifest (the layout stays complete: every blob it names is there), and
    /// [`PullReport::manifest`] is the index the registry serves, as `docker pull` prints.
    ///
    /// # Errors
    ///
    /// [`Error::Registry`] for what the registry refuses or cannot serve (a name it does not
    /// have: 404 `MANIFEST_UNKNOWN`), [`Error::DigestMismatch`] and [`Error::SizeMismatch`]
    /// for a blob that is not what its descriptor says, [`Error::Unsupported`] for a
    /// manifest that is not an image (an artifact: copy it with [`Client::copy`]) or an index
    /// without the platform, and the errors of reading a layer. The store is left as it
    /// was.
    ///
    /// ```no_run
    /// use layercake::registry::{Client, PullOptions};
    /// use layercake::{Reference, Store};
    ///
    /// let mut store = Store::open("/var/lib/layercake")?;
    /// let report = Client::new().pull(&Reference::parse("busybox")?, &mut store, PullOptions::new())?;
    /// println!("Digest: {}", report.manifest.digest);
    /// assert_eq!(store.image("busybox")?.id(), report.image.id());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn pull(
        &self,
        reference: &Reference,
        store: &mut Store,
        options: PullOptions<'_>,
    ) -> Result<PullReport> {
        let platform = options.platform.clone().unwrap_or_else(Platform::host);
        let progress = Mutex::new(options.progress);
        let emit = |event: Transfer| {
            if let Some(progress) = progress.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
                progress(&event);
            }
        };
        let Some(head) = self.head_manifest(reference)? else {
            return Err(manifest_unknown(reference));
        };
        if let Some(report) = up_to_date(store, reference, &head, &platform, &emit)? {
            return Ok(report);
        }
        // The manifest by the digest the HEAD gave: a tag moved in between cannot mix two.
        let pinned = reference.with_digest(head.digest);
        let (top, top_bytes) = self.manifest(&pinned)?;
        let ingest = store.ingest()?;
        let (manifest, manifest_bytes) = if is_index(&top.media_type) {
            let index: Index = parse_json(&top_bytes, &top)?;
            let chosen = self.choose(reference, &index, &platform, 0)?;
            if options.all_platforms {
                self.take_index(reference, &index, &chosen.0.digest, store, &ingest, 0)?;
                ingest.bytes(&top, &top_bytes)?;
            }
            chosen
        } else {
            (top.clone(), top_bytes)
        };
        let parsed: Manifest = parse_json(&manifest_bytes, &manifest)?;
        refuse_artifact(reference, &parsed)?;
        // An index's platform manifest the store has under this name already: nothing to
        // take (the HEAD could not tell, as the store keeps the manifest, not the index).
        if !options.all_platforms && manifest.digest != top.digest {
            if let Ok((stored, _)) = store.manifest(&reference.to_string()) {
                if stored.digest == manifest.digest {
                    let image = store.image(&reference.to_string())?;
                    return Ok(already_there(image, top, &parsed.layers, &emit));
                }
            }
        }
        let config_bytes = self.small_blob(reference, &parsed.config)?;
        let config = ImageConfig::from_bytes(config_bytes.clone()).map_err(|e| match e {
            Error::InvalidConfig { reason, source } => Error::InvalidConfig {
                reason: format!("{} config {}: {reason}", reference, parsed.config.digest),
                source,
            },
            other => other,
        })?;
        let diff_ids = config.file().rootfs.diff_ids.clone();
        if diff_ids.len() != parsed.layers.len() {
            return Err(Error::InvalidConfig {
                reason: format!(
                    "manifest {} of {reference} lists {} layers, its config {}",
                    manifest.digest,
                    parsed.layers.len(),
                    diff_ids.len()
                ),
                source: None,
            });
        }
        let wanted: Vec<(Descriptor, DiffId)> =
            parsed.layers.iter().cloned().zip(diff_ids).collect();
        let (layers, statuses) =
            self.take_layers(reference, &wanted, store, &ingest, options.jobs, &emit)?;
        ingest.bytes(&parsed.config, &config_bytes)?;
        ingest.bytes(&manifest, &manifest_bytes)?;
        let image = Image::from_parts(config_bytes, layers)?;
        let stored_top = if options.all_platforms {
            &top
        } else {
            &manifest
        };
        let tag = reference
            .tag()
            .is_some()
            .then(|| without_digest(reference))
            .transpose()?;
        let added = ingest.commit(store, Some(&image), stored_top, tag.as_ref())?;
        let image = match added {
            Some(report) => report.image,
            None => image,
        };
        Ok(PullReport {
            image,
            manifest: top,
            layers: statuses,
            up_to_date: false,
        })
    }

    /// Reads the manifest and config of `reference` (for an index, `platform`'s, the
    /// host's by default), no layer.
    ///
    /// # Errors
    ///
    /// As [`Client::pull`] for the manifest and config.
    ///
    /// ```no_run
    /// use layercake::registry::Client;
    /// use layercake::Reference;
    ///
    /// let remote = Client::new().fetch(&Reference::parse("busybox")?, None)?;
    /// println!("{} layers, image id {}", remote.layers.len(), remote.config.id());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn fetch(&self, reference: &Reference, platform: Option<&Platform>) -> Result<RemoteImage> {
        let host = Platform::host();
        let platform = platform.unwrap_or(&host);
        let (top, top_bytes) = self.manifest(reference)?;
        let (index, manifest) = if is_index(&top.media_type) {
            let parsed: Index = parse_json(&top_bytes, &top)?;
            let chosen = self.choose(reference, &parsed, platform, 0)?;
            (Some((top, top_bytes)), chosen)
        } else {
            (None, (top, top_bytes))
        };
        let parsed: Manifest = parse_json(&manifest.1, &manifest.0)?;
        refuse_artifact(reference, &parsed)?;
        let config = ImageConfig::from_bytes(self.small_blob(reference, &parsed.config)?)?;
        Ok(RemoteImage {
            reference: reference.clone(),
            index,
            manifest,
            config,
            layers: parsed.layers,
        })
    }

    /// The image manifest of `index` for `platform`, through nested indexes, with its bytes.
    fn choose(
        &self,
        reference: &Reference,
        index: &Index,
        platform: &Platform,
        depth: usize,
    ) -> Result<(Descriptor, Bytes)> {
        check_depth(reference, depth)?;
        let offered = || {
            index
                .manifests
                .iter()
                .filter_map(|m| m.platform.as_ref().map(|p| p.to_string()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let candidates: Vec<&Descriptor> = index
            .manifests
            .iter()
            .filter(|m| is_manifest(&m.media_type) || is_index(&m.media_type))
            .collect();
        let chosen = candidates
            .iter()
            .find(|m| m.platform.as_ref().is_some_and(|p| p.matches(platform)))
            .or_else(|| match candidates.as_slice() {
                [only] if only.platform.is_none() => Some(only),
                _ => None,
            })
            .ok_or_else(|| Error::Unsupported {
                what: format!(
                    "{reference}: no image for platform {platform} in its index (it has: {})",
                    offered()
                ),
            })?;
        let (desc, bytes) = self.manifest(&reference.with_digest(chosen.digest))?;
        if is_index(&desc.media_type) {
            let nested: Index = parse_json(&bytes, &desc)?;
            return self.choose(reference, &nested, platform, depth + 1);
        }
        Ok((desc, bytes))
    }

    /// Takes in every manifest of `index` (nested ones too) but the chosen one, with their
    /// configs and layers as blobs.
    fn take_index(
        &self,
        reference: &Reference,
        index: &Index,
        chosen: &Digest,
        store: &Store,
        ingest: &Ingest,
        depth: usize,
    ) -> Result<()> {
        check_depth(reference, depth)?;
        for child in &index.manifests {
            if child.digest == *chosen {
                continue;
            }
            let (desc, bytes) = self.manifest(&reference.with_digest(child.digest))?;
            if is_index(&desc.media_type) {
                let nested: Index = parse_json(&bytes, &desc)?;
                self.take_index(reference, &nested, chosen, store, ingest, depth + 1)?;
            } else {
                let parsed: Manifest = parse_json(&bytes, &desc)?;
                for blob in std::iter::once(&parsed.config).chain(&parsed.layers) {
                    if store.has_blob(blob.digest) {
                        continue;
                    }
                    let mut reader = self.blob(reference, blob)?;
                    ingest.blob(&mut reader, blob, &mut |_, _| {})?;
                }
            }
            ingest.bytes(&desc, &bytes)?;
        }
        Ok(())
    }

    /// Each layer of the image: the store's when it has the blob, else streamed in,
    /// `jobs` at once; bottom first, with what was done for each.
    fn take_layers(
        &self,
        reference: &Reference,
        wanted: &[(Descriptor, DiffId)],
        store: &Store,
        ingest: &Ingest,
        jobs: usize,
        emit: &(dyn Fn(Transfer) + Sync),
    ) -> Result<Taken> {
        let mut layers: Vec<Option<Layer>> = vec![None; wanted.len()];
        let mut statuses = Vec::with_capacity(wanted.len());
        let mut missing = Vec::new();
        for (at, (blob, diff_id)) in wanted.iter().enumerate() {
            if store.has_blob(blob.digest) {
                layers[at] = match store.layers().find(|l| l.diff_id() == *diff_id) {
                    Some(layer) => Some(layer.clone()),
                    // The blob is there (another platform's, kept as it is), not read yet.
                    None => Some(ingest.layer(
                        &mut store.blob(blob.digest)?.reader(),
                        blob,
                        *diff_id,
                        &mut |_, _| {},
                    )?),
                };
                statuses.push((blob.digest, LayerStatus::AlreadyExists));
                emit(Transfer::Exists {
                    digest: blob.digest,
                });
            } else {
                missing.push(at);
                statuses.push((blob.digest, LayerStatus::New));
            }
        }
        let results: Vec<Mutex<Option<Result<Layer>>>> =
            missing.iter().map(|_| Mutex::new(None)).collect();
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        std::thread::scope(|scope| {
            for _ in 0..jobs.min(missing.len()) {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= missing.len() || failed.load(Ordering::SeqCst) {
                        break;
                    }
                    let (blob, diff_id) = &wanted[missing[i]];
                    let result = self.blob(reference, blob).and_then(|reader| {
                        let mut reader = Cancellable {
                            reader,
                            cancelled: &failed,
                        };
                        let digest = blob.digest;
                        ingest.layer(&mut reader, blob, *diff_id, &mut |done, total| {
                            emit(Transfer::Moving {
                                digest,
                                done,
                                total,
                            })
                        })
                    });
                    match &result {
                        Ok(_) => emit(Transfer::Done {
                            digest: blob.digest,
                            size: blob.size,
                        }),
                        Err(_) => failed.store(true, Ordering::SeqCst),
                    }
                    *results[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
                });
            }
        });
        let mut first_error = None;
        for (i, result) in results.into_iter().enumerate() {
            match result.into_inner().unwrap_or_else(|e| e.into_inner()) {
                Some(Ok(layer)) => layers[missing[i]] = Some(layer),
                // A blob another's failure stopped says nothing of its own.
                Some(Err(e)) if first_error.as_ref().is_none_or(is_cancelled) => {
                    first_error = Some(e);
                }
                _ => {}
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        let layers = layers
            .into_iter()
            .map(|l| l.ok_or_else(cancelled_error))
            .collect::<Result<Vec<_>>>()?;
        Ok((layers, statuses))
    }
}

/// Each layer of an image as stored, and what the pull did for its blob.
type Taken = (Vec<Layer>, Vec<(Digest, LayerStatus)>);

/// A read that stops once another blob of the pull has failed.
struct Cancellable<'a, R> {
    reader: R,
    cancelled: &'a AtomicBool,
}

const CANCELLED: &str = "stopped: another blob of the pull failed";

impl<R: Read> Read for Cancellable<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cancelled.load(Ordering::SeqCst) {
            return Err(io::Error::other(CANCELLED));
        }
        self.reader.read(buf)
    }
}

fn cancelled_error() -> Error {
    Error::io("pulling a layer", io::Error::other(CANCELLED))
}

fn is_cancelled(e: &Error) -> bool {
    e.to_string().contains(CANCELLED)
}

/// The report of a pull that has nothing to do: the store has `reference` with the
/// manifest the registry has.
fn up_to_date(
    store: &Store,
    reference: &Reference,
    head: &Descriptor,
    platform: &Platform,
    emit: &dyn Fn(Transfer),
) -> Result<Option<PullReport>> {
    let Ok((stored, bytes)) = store.manifest(&reference.to_string()) else {
        return Ok(None);
    };
    let image = store.image(&reference.to_string())?;
    let manifest_bytes = if stored.digest == head.digest && is_manifest(&stored.media_type) {
        bytes
    } else if stored.digest == head.digest && is_index(&stored.media_type) {
        // An index kept whole: the platform's manifest is one of its blobs.
        let index: Index = parse_json(&bytes, &stored)?;
        match index.manifests.iter().find(|m| {
            is_manifest(&m.media_type) && m.platform.as_ref().is_some_and(|p| p.matches(platform))
        }) {
            Some(child) => store.blob(child.digest)?.to_bytes()?,
            None => return Ok(None),
        }
    } else {
        // Kept as its platform's manifest, a name that is an index in the registry: only the
        // index can say whether it still lists it (`Client::pull` asks it; no blob is read).
        return Ok(None);
    };
    let parsed: Manifest = parse_json(&manifest_bytes, &stored)?;
    Ok(Some(already_there(
        image,
        head.clone(),
        &parsed.layers,
        emit,
    )))
}

/// The report of a pull with nothing to take: every layer already there (each told to
/// `emit`).
fn already_there(
    image: Image,
    manifest: Descriptor,
    layers: &[Descriptor],
    emit: &dyn Fn(Transfer),
) -> PullReport {
    for layer in layers {
        emit(Transfer::Exists {
            digest: layer.digest,
        });
    }
    PullReport {
        image,
        manifest,
        layers: layers
            .iter()
            .map(|l| (l.digest, LayerStatus::AlreadyExists))
            .collect(),
        up_to_date: true,
    }
}

/// The config media types of an image (OCI's and Docker's).
const IMAGE_CONFIGS: [&str; 2] = [CONFIG_V1, "application/vnd.docker.container.image.v1+json"];

/// An artifact (OCI 1.1 `artifactType`, or a config that is not an image's) is not pulled:
/// [`Error::Unsupported`] naming it, before anything is read into the store.
fn refuse_artifact(reference: &Reference, manifest: &Manifest) -> Result<()> {
    let artifact_type = manifest.extra.get("artifactType").and_then(|t| t.as_str());
    let config_type = manifest.config.media_type.as_str();
    if artifact_type.is_none() && IMAGE_CONFIGS.contains(&config_type) {
        return Ok(());
    }
    let kind = artifact_type.unwrap_or(config_type);
    Err(Error::Unsupported {
        what: format!(
            "{reference} is an artifact ({kind}, config {config_type}), not an image: \
             it can be copied, not pulled"
        ),
    })
}

fn manifest_unknown(reference: &Reference) -> Error {
    let what = match (reference.digest(), reference.tag()) {
        (Some(digest), _) => digest.to_string(),
        (None, Some(tag)) => tag.to_owned(),
        (None, None) => "latest".to_owned(),
    };
    Error::Registry {
        registry: reference.domain().to_owned(),
        repository: reference.repository().to_owned(),
        request: format!("HEAD /v2/{}/manifests/{what}", reference.repository()),
        status: Some(404),
        code: Some("MANIFEST_UNKNOWN".to_owned()),
        reason: format!("manifest for {} not found", reference.familiar()),
    }
}

fn without_digest(reference: &Reference) -> Result<Reference> {
    match reference.tag() {
        Some(tag) => Reference::parse(&format!("{}:{tag}", reference.name())),
        None => Ok(reference.clone()),
    }
}

const MAX_INDEX_DEPTH: usize = 8;

fn check_depth(reference: &Reference, depth: usize) -> Result<()> {
    if depth >= MAX_INDEX_DEPTH {
        return Err(Error::Unsupported {
            what: format!("{reference}: indexes nested more than {MAX_INDEX_DEPTH} deep"),
        });
    }
    Ok(())
}

pub(super) fn is_index(media_type: &str) -> bool {
    matches!(media_type, INDEX_V1 | DOCKER_MANIFEST_LIST)
}

pub(super) fn is_manifest(media_type: &str) -> bool {
    matches!(media_type, MANIFEST_V1 | DOCKER_MANIFEST_V2)
}

pub(super) fn parse_json<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    desc: &Descriptor,
) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::InvalidArchive {
        path: Some(format!("manifest {}", desc.digest)),
        reason: format!("not a valid {}", desc.media_type),
        source: Some(e),
    })
}
