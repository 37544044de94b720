//! What every fuzz target checks once layercake has accepted an input: the invariants that
//! hold for any layer and any tree, whatever bytes they came from.
#![allow(dead_code)]

use layercake::archive::{self, LoadOptions};
use layercake::layer::ReadOptions;
use layercake::{Digest, Error, Layer, Limits, Tree};

/// Limits small enough that a bomb or a huge count stops in milliseconds.
pub fn limits() -> Limits {
    Limits::default()
        .layer_bytes(1 << 20)
        .image_bytes(4 << 20)
        .blob_bytes(256 << 10)
        .entries(20_000)
        .pax_bytes(64 << 10)
        .json_bytes(1 << 20)
        .archive_bytes(8 << 20)
        .layers(16)
        .index_depth(4)
        .trailing_bytes(1 << 20)
}

pub fn read_options() -> ReadOptions {
    ReadOptions::new().limits(limits())
}

pub fn load_options() -> LoadOptions {
    LoadOptions::new().read(read_options())
}

/// A layer that was read: its DiffId is the hash of its tar, reading that tar again gives the
/// same layer, and it applies to an empty tree or fails with a typed error of the kinds that
/// depend on the lower tree.
pub fn check_layer(layer: &Layer) {
    let tar = layer.tar().expect("a layer that was read has its tar");
    let bytes = tar.to_bytes().expect("a layer's tar reads");
    assert_eq!(layer.diff_id().digest(), Digest::sha256(&bytes));
    let again =
        Layer::from_tar_with(tar.clone(), &read_options()).expect("a layer's own tar reads again");
    assert_eq!(again.diff_id(), layer.diff_id());
    let (once, twice) = (
        layer.changeset().expect("a layer that was read"),
        again.changeset().expect("a layer that was read"),
    );
    assert!(
        twice.entries().eq(once.entries()),
        "entries differ on a second read"
    );
    assert!(twice.whiteouts().eq(once.whiteouts()));
    assert!(twice.opaque_dirs().eq(once.opaque_dirs()));
    match Tree::new().apply(layer) {
        Ok(tree) => check_tree(&tree),
        Err(Error::InvalidHardlink { .. }) => {}
        Err(e) => panic!("applying a layer that was read failed: {e:?}"),
    }
}

/// A tree: every walked path looks up and resolves inside the root (or fails with a typed
/// resolution error), and the tree written as one layer (squash, export) reads back equal.
pub fn check_tree(tree: &Tree) {
    for (path, node) in tree.walk() {
        let looked_up = tree
            .lookup(path.as_bytes())
            .expect("a walked path is a valid path")
            .expect("a walked path looks up");
        assert!(
            looked_up.same_file(node),
            "lookup of a walked path gives another node"
        );
        match tree.resolve(path.as_bytes()) {
            Ok((resolved, _)) => {
                let bytes = resolved.as_bytes();
                assert!(!bytes.starts_with(b"/"), "resolved to an absolute path");
                // The root is the empty path; anything else is names without `.` or `..`.
                assert!(
                    bytes.is_empty()
                        || bytes
                            .split(|&b| b == b'/')
                            .all(|c| c != b".." && c != b"." && !c.is_empty()),
                    "resolved path `{resolved}` is not normalised inside the root"
                );
                assert!(
                    matches!(tree.lookup(bytes), Ok(Some(_))),
                    "resolved path `{resolved}` is missing"
                );
            }
            Err(
                Error::NotFound { .. } | Error::NotADirectory { .. } | Error::SymlinkLoop { .. },
            ) => {}
            Err(e) => panic!("resolving `{path}`: {e:?}"),
        }
    }
    match Layer::squash(tree) {
        Ok(squashed) => {
            let back = Tree::new()
                .apply(&squashed)
                .expect("a squashed layer applies");
            assert!(back == *tree, "squash does not round-trip");
        }
        // A regular file the tree holds under a `.wh.` name (a hardlink's second path)
        // cannot be written as a layer: refused, not written wrong.
        Err(Error::InvalidPath { .. }) => {}
        Err(e) => panic!("squashing a tree failed: {e:?}"),
    }
    let mut flat = Vec::new();
    if archive::export(tree, &mut flat).is_ok() {
        if let Ok(layer) = Layer::from_tar(flat) {
            let back = Tree::new().apply(&layer).expect("an exported tree applies");
            assert!(back == *tree, "export does not round-trip");
        }
    }
}

/// Splits an `apply` input into up to four layer tars at the separator.
pub fn split_layers(data: &[u8]) -> Vec<&[u8]> {
    const SEPARATOR: &[u8] = b"\n--layercake-next-layer--\n";
    let mut out = Vec::new();
    let mut rest = data;
    while out.len() < 3 {
        match rest.windows(SEPARATOR.len()).position(|w| w == SEPARATOR) {
            Some(at) => {
                out.push(&rest[..at]);
                rest = &rest[at + SEPARATOR.len()..];
            }
            None => break,
        }
    }
    out.push(rest);
    out
}

/// Reads `data` as an image archive with tight limits; on success, every image's layers
/// match its config. Opening reads no layer: each is then read on its own, and an image
/// whose layers all read holds every layer invariant, and its tree every tree invariant.
/// The docker_archive and oci_archive targets both run this; they differ in their seeds.
pub fn check_archive(data: &[u8]) {
    let Ok(archive) = archive::Archive::from_bytes_with(data.to_vec(), &load_options()) else {
        return;
    };
    for item in archive.images() {
        let image = item.image();
        assert_eq!(image.layers().count(), image.diff_ids().len());
        for (layer, diff_id) in image.layers().zip(image.diff_ids()) {
            assert_eq!(layer.diff_id(), diff_id);
        }
        // A layer that does not read (wrong digest, bad tar, a limit) is the file's fault,
        // and only comes out now that it is read.
        if image.layers().any(|layer| layer.changeset().is_err()) {
            continue;
        }
        for layer in image.layers() {
            check_layer(layer);
        }
        match image.tree() {
            Ok(tree) => check_tree(&tree),
            Err(Error::InvalidHardlink { .. }) => {}
            Err(e) => panic!("the tree of an image whose layers read: {e:?}"),
        }
    }
}
