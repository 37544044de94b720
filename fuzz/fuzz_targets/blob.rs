//! `Layer::from_blob` (plain, gzip or zstd) on arbitrary bytes with tight limits, so bombs
//! stop quickly; on success, the blob's digests and every layer invariant.
#![no_main]

#[path = "common/mod.rs"]
mod common;

use layercake::{Digest, Layer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(layer) = Layer::from_blob_with(data.to_vec(), &common::read_options()) {
        assert_eq!(layer.blob().digest(), Digest::sha256(data));
        assert_eq!(layer.blob().contents(), data);
        // `check_layer` checks the DiffId against the tar.
        common::check_layer(&layer);
    }
});
