//! `docker push`: each blob HEADed, mounted or uploaded, the manifest last with its bytes.
//! SKELETON.

use std::fmt;

use super::{Client, Transfer};
use crate::archive::oci::Descriptor;
use crate::error::Result;
use crate::image::Image;
use crate::reference::Reference;
use crate::store::Store;

/// How a push runs: repositories to mount blobs from, how many blobs at once, progress.
pub struct PushOptions<'a> {
    mount_from: Vec<Reference>,
    jobs: usize,
    progress: Option<Box<dyn FnMut(&Transfer) + Send + 'a>>,
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
    /// Pushes an image (built, committed, loaded: any [`Image`]) to `to`, with a manifest
    /// written for its layers as they are.
    pub fn push(
        &self,
        image: &Image,
        to: &Reference,
        options: PushOptions<'_>,
    ) -> Result<PushReport> {
        let _ = (image, to, options);
        todo!()
    }

    /// Pushes the image (or index) `reference` names in `store` to `to`, with the manifest
    /// bytes the store keeps (a pulled image keeps its digest).
    pub fn push_stored(
        &self,
        store: &Store,
        reference: &str,
        to: &Reference,
        options: PushOptions<'_>,
    ) -> Result<PushReport> {
        let _ = (store, reference, to, options);
        todo!()
    }

    /// Copies an image (or index) from one registry reference to another, blob by blob:
    /// mounted when both are on one registry, streamed otherwise; manifest bytes kept.
    pub fn copy(
        &self,
        from: &Reference,
        to: &Reference,
        options: PushOptions<'_>,
    ) -> Result<PushReport> {
        let _ = (from, to, options);
        todo!()
    }
}
