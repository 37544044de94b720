//! Up to four layer tars (split at `\n--layercake-next-layer--\n`), read and applied in
//! order; on success, every tree invariant.
#![no_main]

#[path = "common/mod.rs"]
mod common;

use layercake::{Error, Layer, Tree};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut tree = Tree::new();
    for chunk in common::split_layers(data) {
        let Ok(layer) = Layer::from_tar_with(chunk.to_vec(), &common::read_options()) else {
            return;
        };
        tree = match tree.apply(&layer) {
            Ok(tree) => tree,
            Err(Error::InvalidHardlink { .. }) => return,
            Err(e) => panic!("applying a layer that was read failed: {e:?}"),
        };
    }
    common::check_tree(&tree);
});
