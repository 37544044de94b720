//! `docker pull`: a manifest (an index resolved to a platform, or kept whole), its config,
//! then its layers streamed into a store, four at once, in manifest order. SKELETON.

use std::fmt;

use bytes::Bytes;

use super::{Client, Transfer};
use crate::archive::oci::{Descriptor, Platform};
use crate::config::ImageConfig;
use crate::digest::Digest;
use crate::error::Result;
use crate::image::Image;
use crate::reference::Reference;
use crate::store::{LayerStatus, Store};

/// How [`Client::pull`] pulls: which platform, how many layers at once, who hears progress.
pub struct PullOptions<'a> {
    platform: Option<Platform>,
    all_platforms: bool,
    jobs: usize,
    progress: Option<Box<dyn FnMut(&Transfer) + Send + 'a>>,
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
    pub fn pull(
        &self,
        reference: &Reference,
        store: &mut Store,
        options: PullOptions<'_>,
    ) -> Result<PullReport> {
        let _ = (reference, store, options);
        todo!()
    }

    /// Reads the manifest and config of `reference` (for an index, `platform`'s, the
    /// host's by default), no layer.
    pub fn fetch(&self, reference: &Reference, platform: Option<&Platform>) -> Result<RemoteImage> {
        let _ = (reference, platform);
        todo!()
    }
}
