//! `Layer::from_tar` on arbitrary bytes; on success, every layer and tree invariant.
#![no_main]

#[path = "common/mod.rs"]
mod common;

use layercake::Layer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(layer) = Layer::from_tar_with(data.to_vec(), &common::read_options()) {
        common::check_layer(&layer);
    }
});
