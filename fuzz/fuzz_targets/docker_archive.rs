//! `Archive::from_bytes` on arbitrary bytes with tight limits; on success, every image's
//! layers match its config and every tree invariant holds. (Seeds differ between the
//! docker_archive and oci_archive targets; the code is the same.)
#![no_main]

#[path = "common/mod.rs"]
mod common;

use layercake::archive::Archive;
use layercake::Error;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(archive) = Archive::from_bytes_with(data.to_vec(), &common::load_options()) else {
        return;
    };
    for loaded in archive.images() {
        let image = &loaded.image;
        assert_eq!(image.layers().count(), image.diff_ids().len());
        for (layer, diff_id) in image.layers().zip(image.diff_ids()) {
            assert_eq!(layer.diff_id(), diff_id);
        }
        match image.tree() {
            Ok(tree) => common::check_tree(&tree),
            Err(Error::InvalidHardlink { .. }) => {}
            Err(e) => panic!("the tree of a loaded image: {e:?}"),
        }
    }
});
