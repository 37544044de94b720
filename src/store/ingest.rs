//! [`Ingest`]: blobs streamed into a store from outside (a registry), verified while they
//! stream, staged until one commit makes an image and its tag visible. SKELETON.

use std::io::Read;

use bytes::Bytes;

use super::{AddReport, Store};
use crate::archive::oci::Descriptor;
use crate::contents::Contents;
use crate::digest::{DiffId, Digest};
use crate::error::Result;
use crate::image::Image;
use crate::layer::Layer;
use crate::reference::Reference;

/// Blobs taken into a store and not yet visible. Its methods take `&self` and may run on
/// several threads at once (a pull streams four layers together). Dropped without
/// [`Ingest::commit`], it leaves the store as it was.
#[derive(Debug)]
pub(crate) struct Ingest {
    _todo: (),
}

impl Store {
    /// Starts taking blobs in (a store on disk takes its shared lock: a prune waits).
    pub(crate) fn ingest(&mut self) -> Result<Ingest> {
        todo!()
    }

    /// Whether the store has the blob `digest` (a layer blob, config, manifest or index).
    pub fn has_blob(&self, digest: Digest) -> bool {
        let _ = digest;
        todo!()
    }

    /// A blob by digest, read by offset from the store (nothing is read whole).
    ///
    /// # Errors
    ///
    /// [`Error::MissingBlob`](crate::Error::MissingBlob) when the store does not have it.
    pub fn blob(&self, digest: Digest) -> Result<Contents> {
        let _ = digest;
        todo!()
    }

    /// The manifest or index `reference` (a tag, `name@digest`, an id) is stored with: its
    /// descriptor and its bytes exactly (as pulled, or as written for an image added).
    ///
    /// # Errors
    ///
    /// [`Error::ImageNotFound`](crate::Error::ImageNotFound).
    pub fn manifest(&self, reference: &str) -> Result<(Descriptor, Bytes)> {
        let _ = reference;
        todo!()
    }
}

impl Ingest {
    /// Streams a layer blob in: its digest and size checked as it streams, decoded in the
    /// same pass into the layer cache, its DiffId checked. `progress(done, total)` hears
    /// blob bytes taken in.
    pub(crate) fn layer(
        &self,
        reader: &mut (dyn Read + Send),
        blob: &Descriptor,
        diff_id: DiffId,
        progress: &mut (dyn FnMut(u64, u64) + Send),
    ) -> Result<Layer> {
        let _ = (reader, blob, diff_id, progress);
        todo!()
    }

    /// Streams any blob in as it is (another platform's layer, an artifact's blob), its
    /// digest and size checked.
    pub(crate) fn blob(
        &self,
        reader: &mut (dyn Read + Send),
        blob: &Descriptor,
        progress: &mut (dyn FnMut(u64, u64) + Send),
    ) -> Result<()> {
        let _ = (reader, blob, progress);
        todo!()
    }

    /// A small blob held whole (a config, a manifest, an index), its digest checked.
    pub(crate) fn bytes(&self, blob: &Descriptor, bytes: &Bytes) -> Result<()> {
        let _ = (blob, bytes);
        todo!()
    }

    /// Makes everything taken in visible at once: the blobs, then `image` (if any: the
    /// image `top` resolves to for this host) and `top` (a manifest or an index, its
    /// bytes taken in with [`Ingest::bytes`]) named by `tag` in the index.
    pub(crate) fn commit(
        self,
        store: &mut Store,
        image: Option<&Image>,
        top: &Descriptor,
        tag: Option<&Reference>,
    ) -> Result<Option<AddReport>> {
        let _ = (store, image, top, tag);
        todo!()
    }
}
