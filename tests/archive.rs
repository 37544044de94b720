//! Image files in every shape the wild produces, built here byte by byte: docker-archive as
//! `docker save` 20.10 and skopeo write it, multi-image archives sharing layers, Docker 25's
//! archive-that-is-an-OCI-layout, OCI layouts with nested and multi-platform indexes,
//! compressed and mislabelled blobs; and corrupt versions of each, which must fail with the
//! typed error that names the digest (when the file is opened for its index, manifests and
//! configs; when a layer is read for what is inside a layer). Opening reads no layer; images
//! of one file share their layers; the writer refuses contradictions; names follow Docker
//! 25's convention in `index.json`.

mod common;

use std::collections::BTreeMap;

use bytes::Bytes;
use common::TempDir;
use layercake::archive::oci::{IMAGE_NAME, REF_NAME};
use layercake::archive::{self, Archive, Format, LoadOptions, Platform, Writer};
use layercake::{Compression, Digest, Error, Image, Layer};
use serde_json::{json, Value};

/// A tar of named members; a member whose data starts with `-> ` is a symlink to the rest.
fn tar_of(members: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in members {
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        if let Some(target) = data.strip_prefix(b"-> ") {
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, name, std::str::from_utf8(target).unwrap())
                .unwrap();
        } else {
            h.set_size(data.len() as u64);
            b.append_data(&mut h, name, &data[..]).unwrap();
        }
    }
    b.into_inner().unwrap()
}

fn sample_image(tag_file: &str) -> Image {
    let base = Layer::builder()
        .file("etc/os-release", "ID=test\n")
        .dir("tmp")
        .build()
        .unwrap();
    let top = Layer::builder()
        .file(format!("srv/{tag_file}"), "data\n")
        .whiteout("tmp")
        .build()
        .unwrap();
    Image::builder()
        .layer(base)
        .layer(top)
        .commit(layercake::Commit::new().created(1))
        .build()
        .unwrap()
}

/// `sample_image("a")` and an image on it with one more layer (`/b`).
fn sample_pair() -> (Image, Image) {
    let a = sample_image("a");
    let b = Image::builder()
        .base(&a)
        .layer(Layer::builder().file("b", "b\n").build().unwrap())
        .commit(layercake::Commit::new().created(2))
        .build()
        .unwrap();
    (a, b)
}

fn hex(d: Digest) -> String {
    d.to_hex().to_string()
}

/// A layer's uncompressed tar, as bytes.
fn tar_bytes(layer: &Layer) -> Bytes {
    layer.tar().unwrap().to_bytes().unwrap()
}

/// What a writer writes to a stream.
fn written(writer: Writer) -> Vec<u8> {
    let mut out = Vec::new();
    writer.write(&mut out).unwrap();
    out
}

/// `docker save` 20.10's layout: `<v1id>/layer.tar` files, `<id>.json` config, repositories.
fn docker_save_layout(image: &Image, tag: &str) -> Vec<u8> {
    let config = image.config().as_bytes().to_vec();
    let config_name = format!("{}.json", hex(image.id().digest()));
    let mut members = vec![(config_name.clone(), config)];
    let mut layer_names = Vec::new();
    for (i, layer) in image.layers().enumerate() {
        let dir = format!("{:064x}", i + 1);
        members.push((format!("{dir}/VERSION"), b"1.0".to_vec()));
        members.push((format!("{dir}/json"), b"{}".to_vec()));
        members.push((format!("{dir}/layer.tar"), tar_bytes(layer).to_vec()));
        layer_names.push(format!("{dir}/layer.tar"));
    }
    let manifest = json!([{"Config": config_name, "RepoTags": [tag], "Layers": layer_names}]);
    members.push(("manifest.json".into(), manifest.to_string().into_bytes()));
    members.push((
        "repositories".into(),
        json!({ tag.split(':').next().unwrap(): {"latest": "x"} })
            .to_string()
            .into_bytes(),
    ));
    let refs: Vec<(&str, Vec<u8>)> = members
        .iter()
        .map(|(n, d)| (n.as_str(), d.clone()))
        .collect();
    tar_of(&refs)
}

#[test]
fn docker_save_2010_layout_loads_with_its_ids() {
    let image = sample_image("a");
    let archive = Archive::from_bytes(docker_save_layout(&image, "app:1")).unwrap();
    assert_eq!(archive.format(), archive::Format::DockerArchive);
    let loaded = archive.image("app:1").unwrap();
    assert_eq!(loaded.id(), image.id());
    assert_eq!(loaded.diff_ids(), image.diff_ids());
    assert_eq!(archive.images()[0].names(), ["app:1"]);
    assert_eq!(loaded.tree().unwrap(), image.tree().unwrap());
}

#[test]
fn skopeo_layout_with_symlinked_layers_loads() {
    // skopeo: `<diffid>.tar` files, `<v1id>/layer.tar` symlinks to them, manifest naming the
    // symlinks.
    let image = sample_image("b");
    let mut members: Vec<(String, Vec<u8>)> = vec![(
        format!("{}.json", hex(image.id().digest())),
        image.config().as_bytes().to_vec(),
    )];
    let mut names = Vec::new();
    for (i, layer) in image.layers().enumerate() {
        let file = format!("{}.tar", hex(layer.diff_id().digest()));
        members.push((file.clone(), tar_bytes(layer).to_vec()));
        let link = format!("{:064x}/layer.tar", i + 7);
        members.push((link.clone(), format!("-> ../{file}").into_bytes()));
        names.push(link);
    }
    let manifest = json!([{"Config": members[0].0, "RepoTags": null, "Layers": names}]);
    members.push(("manifest.json".into(), manifest.to_string().into_bytes()));
    let refs: Vec<(&str, Vec<u8>)> = members
        .iter()
        .map(|(n, d)| (n.as_str(), d.clone()))
        .collect();
    let archive = Archive::from_bytes(tar_of(&refs)).unwrap();
    let loaded = archive.only_image().unwrap();
    assert_eq!(loaded.id(), image.id());
    assert!(archive.images()[0].names().is_empty());
    // The layers are found through the symlinks when they are read.
    assert_eq!(loaded.tree().unwrap(), image.tree().unwrap());
}

#[test]
fn multi_image_archive_shares_layers_and_names_them() {
    let (a, b) = sample_pair();
    let tar = written(
        Writer::new(Format::DockerArchive)
            .image(&a, ["a:1"])
            .image(&b, ["b:1", "b:latest"]),
    );
    // Each shared layer is stored once.
    let shared = tar_bytes(a.layers().next().unwrap());
    let count = tar
        .windows(shared.len())
        .filter(|w| *w == &shared[..])
        .count();
    assert_eq!(count, 1, "the shared base layer is written once");

    let archive = Archive::from_bytes(tar).unwrap();
    assert_eq!(archive.images().len(), 2);
    assert_eq!(archive.image("b").unwrap().id(), b.id());
    assert_eq!(archive.image("a:1").unwrap().id(), a.id());
    let err = archive.only_image().unwrap_err();
    assert!(
        err.to_string().contains("a:1") && err.to_string().contains("b:1"),
        "{err}"
    );
    match &err {
        Error::AmbiguousReference {
            reference,
            candidates,
        } => {
            assert_eq!(reference, "");
            assert_eq!(candidates, &["a:1", "b:1"]);
        }
        other => panic!("expected AmbiguousReference, got {other}"),
    }
    let err = archive.image("c:1").unwrap_err();
    assert!(matches!(err, Error::ImageNotFound { .. }));
}

#[test]
fn our_docker_archive_is_also_an_oci_layout() {
    let image = sample_image("c");
    let tar = written(Writer::new(Format::DockerArchive).image(&image, ["c:1"]));
    // Drop manifest.json: what is left must read as an oci-archive with the same image.
    let stripped = rewrite(&tar, |name, data| {
        (name != "manifest.json").then(|| data.to_vec())
    });
    let archive = Archive::from_bytes(stripped).unwrap();
    assert_eq!(archive.format(), Format::OciArchive);
    let loaded = archive.image("c:1").unwrap();
    assert_eq!(loaded.id(), image.id());
    assert_eq!(loaded.tree().unwrap(), image.tree().unwrap());
}

#[test]
fn oci_round_trip_in_every_compression_keeps_diff_ids() {
    let image = sample_image("d");
    for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let compressed = || Writer::new(Format::OciArchive).compression(compression);
        let tar = written(compressed().image(&image, ["d"]));
        let loaded = Archive::from_bytes(tar.clone()).unwrap();
        let got = loaded.image("d").unwrap();
        assert_eq!(got.id(), image.id(), "{compression}");
        for layer in got.layers() {
            assert_eq!(layer.blob().compression(), compression);
        }
        // Writing what was read again, without asking for a compression, is byte-identical.
        let again = written(Writer::new(Format::OciArchive).image(&got, ["d"]));
        let first = written(compressed().image(&got, ["d"]));
        assert_eq!(
            again, first,
            "{compression}: no recompression when not asked"
        );
        assert_eq!(
            again, tar,
            "{compression}: the same bytes as the first write"
        );
        assert_eq!(got.tree().unwrap(), image.tree().unwrap(), "{compression}");
    }
}

/// Rewrites the members of a tar: `f` returns the new data, or `None` to drop the member.
fn rewrite(tar: &[u8], mut f: impl FnMut(&str, &[u8]) -> Option<Vec<u8>>) -> Vec<u8> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.header().entry_type().is_dir() {
            continue;
        }
        let name = String::from_utf8(entry.path_bytes().into_owned()).unwrap();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        if let Some(new) = f(&name, &data) {
            out.push((name, new));
        }
    }
    let refs: Vec<(&str, Vec<u8>)> = out.iter().map(|(n, d)| (n.as_str(), d.clone())).collect();
    tar_of(&refs)
}

/// An oci-archive of `image` with gzip layers, as members by name.
fn oci_members(image: &Image, compression: Compression) -> BTreeMap<String, Vec<u8>> {
    let tar = written(
        Writer::new(Format::OciArchive)
            .compression(compression)
            .image(image, ["x"]),
    );
    let mut members = BTreeMap::new();
    rewrite(&tar, |name, data| {
        members.insert(name.to_owned(), data.to_vec());
        None
    });
    members
}

fn tar_from(members: &BTreeMap<String, Vec<u8>>) -> Vec<u8> {
    let refs: Vec<(&str, Vec<u8>)> = members
        .iter()
        .map(|(n, d)| (n.as_str(), d.clone()))
        .collect();
    tar_of(&refs)
}

fn manifest_of(members: &BTreeMap<String, Vec<u8>>) -> (String, Value) {
    let index: Value = serde_json::from_slice(&members["index.json"]).unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap().to_owned();
    let name = format!("blobs/sha256/{}", &digest[7..]);
    let manifest = serde_json::from_slice(&members[&name]).unwrap();
    (name, manifest)
}

/// Replaces the manifest, fixing index.json to point at the new one.
fn set_manifest(members: &mut BTreeMap<String, Vec<u8>>, manifest: &Value) {
    let (old, _) = manifest_of(members);
    members.remove(&old);
    let bytes = serde_json::to_vec(manifest).unwrap();
    let digest = Digest::sha256(&bytes);
    members.insert(format!("blobs/sha256/{}", hex(digest)), bytes.clone());
    let mut index: Value = serde_json::from_slice(&members["index.json"]).unwrap();
    index["manifests"][0]["digest"] = json!(digest.to_string());
    index["manifests"][0]["size"] = json!(bytes.len());
    members.insert("index.json".into(), serde_json::to_vec(&index).unwrap());
}

#[test]
fn mislabelled_media_types_are_sniffed() {
    // A plain tar blob whose descriptor says +gzip (skopeo can write these), and a zstd blob
    // labelled as a plain tar: both read by their magic bytes.
    let image = sample_image("e");
    for (compression, label) in [
        (
            Compression::None,
            "application/vnd.oci.image.layer.v1.tar+gzip",
        ),
        (Compression::Zstd, "application/vnd.oci.image.layer.v1.tar"),
    ] {
        let mut members = oci_members(&image, compression);
        let (_, mut manifest) = manifest_of(&members);
        for layer in manifest["layers"].as_array_mut().unwrap() {
            layer["mediaType"] = json!(label);
        }
        set_manifest(&mut members, &manifest);
        let loaded = Archive::from_bytes(tar_from(&members)).unwrap();
        let got = loaded.only_image().unwrap();
        assert_eq!(got.id(), image.id(), "{label}");
        // Layers are read when asked for: the blobs are decoded by what they are.
        assert_eq!(got.tree().unwrap(), image.tree().unwrap(), "{label}");
        for layer in got.layers() {
            assert_eq!(layer.blob().compression(), compression, "{label}");
        }
    }
}

#[test]
fn nested_and_multi_platform_indexes_pick_the_platform() {
    let amd = sample_image("amd64");
    let arm = Image::builder()
        .base(&sample_image("arm64"))
        .architecture("arm64")
        .build()
        .unwrap();
    let mut members = oci_members(&amd, Compression::Gzip);
    for (name, data) in oci_members(&arm, Compression::Gzip) {
        members.entry(name).or_insert(data);
    }
    // A platform index holding both manifests, named by the top-level index.
    let manifest_desc = |image: &Image| {
        let m = oci_members(image, Compression::Gzip);
        let index: Value = serde_json::from_slice(&m["index.json"]).unwrap();
        let mut d = index["manifests"][0].clone();
        d.as_object_mut().unwrap().remove("annotations");
        d
    };
    let platform_index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [manifest_desc(&amd), manifest_desc(&arm)],
    });
    let bytes = serde_json::to_vec(&platform_index).unwrap();
    let digest = Digest::sha256(&bytes);
    members.insert(format!("blobs/sha256/{}", hex(digest)), bytes.clone());
    let top = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": digest.to_string(),
            "size": bytes.len(),
            "annotations": {"org.opencontainers.image.ref.name": "multi"},
        }],
    });
    members.insert("index.json".into(), serde_json::to_vec(&top).unwrap());
    let tar = tar_from(&members);

    for (platform, want) in [("linux/amd64", &amd), ("linux/arm64", &arm)] {
        let options = LoadOptions::new().platform(Platform::parse(platform).unwrap());
        let archive = Archive::from_bytes_with(tar.clone(), &options).unwrap();
        let loaded = archive.image("multi").unwrap();
        assert_eq!(loaded.id(), want.id(), "{platform}");
        let offered: Vec<String> = archive.images()[0]
            .platforms()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(offered, ["linux/amd64", "linux/arm64"], "{platform}");
        assert_eq!(loaded.tree().unwrap(), want.tree().unwrap(), "{platform}");
    }
    // No image for the platform: the file opens (its index is fine), and asking for the
    // name is the error, naming the platforms there are.
    let options = LoadOptions::new().platform(Platform::parse("linux/s390x").unwrap());
    let archive = Archive::from_bytes_with(tar, &options).unwrap();
    assert!(archive.images().is_empty());
    let err = archive.image("multi").unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    assert!(
        err.to_string().contains("linux/s390x")
            && err.to_string().contains("linux/amd64, linux/arm64"),
        "{err}"
    );
    let err = archive.only_image().unwrap_err();
    assert!(matches!(err, Error::ImageNotFound { .. }), "{err}");
}

// ---------------------------------------------------------------------------------------
// Corrupt inputs: each fails with the typed error that names the digest: when the file is
// opened for its documents, when the layer is read for what is inside a layer.

fn flip(data: &mut [u8], at: usize) {
    data[at] ^= 0x01;
}

#[test]
fn corrupt_layer_in_docker_archive_names_both_diff_ids() {
    let image = sample_image("f");
    let tar = docker_save_layout(&image, "f:1");
    let bad_layer = image.layers().nth(1).unwrap();
    let bad_tar = tar_bytes(bad_layer);
    let corrupt = rewrite(&tar, |name, data| {
        let mut data = data.to_vec();
        if data == bad_tar[..] && name.ends_with("layer.tar") {
            // Flip a byte of the file contents, not a header: the tar still parses.
            let at = data.windows(5).position(|w| w == b"data\n").unwrap();
            flip(&mut data, at);
        }
        Some(data)
    });
    // Opening reads the index only; the layer is checked when it is read.
    let archive = Archive::from_bytes(corrupt).unwrap();
    let loaded = archive.image("f:1").unwrap();
    let err = loaded.tree().unwrap_err();
    match &err {
        Error::DigestMismatch {
            what,
            expected,
            actual,
        } => {
            assert_eq!(*what, format!("layer {}", bad_layer.diff_id()));
            assert_eq!(*expected, bad_layer.diff_id().digest());
            assert_ne!(actual, expected);
        }
        other => panic!("unexpected {other}"),
    }
    // The same from the layer itself, and from reading every layer.
    let top = loaded.layers().nth(1).unwrap();
    assert!(matches!(top.changeset(), Err(Error::DigestMismatch { .. })));
    assert!(!top.is_read());
    assert!(matches!(
        loaded.read_layers(),
        Err(Error::DigestMismatch { .. })
    ));
    // The layer below is fine.
    assert!(loaded.layers().next().unwrap().changeset().is_ok());
}

#[test]
fn corrupt_config_in_docker_archive_is_a_digest_mismatch() {
    let image = sample_image("g");
    let tar = docker_save_layout(&image, "g:1");
    let corrupt = rewrite(&tar, |name, data| {
        let mut data = data.to_vec();
        if name.ends_with(".json") && name != "manifest.json" {
            let at = data.len() - 3;
            flip(&mut data, at);
        }
        Some(data)
    });
    let err = Archive::from_bytes(corrupt).unwrap_err();
    match &err {
        Error::DigestMismatch { expected, .. } => {
            assert_eq!(expected.to_string(), image.id().to_string())
        }
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn corrupt_blobs_in_oci_archive_name_the_descriptor_digest() {
    let image = sample_image("h");
    let members = oci_members(&image, Compression::Gzip);
    let (manifest_name, manifest) = manifest_of(&members);
    let config_digest = manifest["config"]["digest"].as_str().unwrap().to_owned();
    let layer_digest = manifest["layers"][0]["digest"].as_str().unwrap().to_owned();
    let manifest_digest = format!("sha256:{}", &manifest_name["blobs/sha256/".len()..]);

    for (what, digest) in [
        ("config", &config_digest),
        ("layer", &layer_digest),
        ("manifest", &manifest_digest),
    ] {
        let mut bad = members.clone();
        let name = format!("blobs/sha256/{}", &digest[7..]);
        let blob = bad.get_mut(&name).unwrap();
        let at = blob.len() / 2;
        flip(blob, at);
        let err = if what == "layer" {
            // A layer blob is hashed when the layer is read.
            let archive = Archive::from_bytes(tar_from(&bad)).unwrap();
            archive.only_image().unwrap().tree().unwrap_err()
        } else {
            Archive::from_bytes(tar_from(&bad)).unwrap_err()
        };
        match &err {
            Error::DigestMismatch { expected, .. } => {
                assert_eq!(expected.to_string(), *digest, "{what}")
            }
            other => panic!("{what}: unexpected {other}"),
        }
        assert!(err.to_string().contains(digest.as_str()), "{what}: {err}");
    }
}

#[test]
fn truncated_blobs_fail_typed() {
    let image = sample_image("i");
    let layer = image.layers().next().unwrap();
    for compression in [Compression::Gzip, Compression::Zstd] {
        let packed = layer
            .compress(compression, compression.default_level())
            .unwrap();
        let blob = packed.blob().contents().to_bytes().unwrap();
        let cut = Bytes::copy_from_slice(&blob[..blob.len() - 8]);
        assert!(
            matches!(Layer::from_blob(cut), Err(Error::InvalidBlob { .. })),
            "{compression}"
        );
        // In an archive the truncated blob no longer matches its descriptor's size.
        let mut members = oci_members(&image, compression);
        let name = format!("blobs/sha256/{}", hex(packed.blob().digest()));
        let blob = members.get_mut(&name).unwrap();
        blob.truncate(blob.len() - 8);
        // (Sizes are checked when the file is opened.)
        let err = Archive::from_bytes(tar_from(&members)).unwrap_err();
        assert!(
            matches!(&err, Error::SizeMismatch { what, expected, actual }
                if what.contains(&packed.blob().digest().to_string()) && *actual + 8 == *expected),
            "{compression}: {err}"
        );
    }
    // A tar cut inside a file's data.
    let tar = layer.tar().unwrap();
    let cut = tar.slice(..600);
    assert!(matches!(
        Layer::from_tar(cut),
        Err(Error::InvalidTar { .. })
    ));
}

#[test]
fn missing_blob_is_named() {
    let image = sample_image("j");
    let mut members = oci_members(&image, Compression::Gzip);
    let (_, manifest) = manifest_of(&members);
    let digest = manifest["layers"][1]["digest"].as_str().unwrap().to_owned();
    members.remove(&format!("blobs/sha256/{}", &digest[7..]));
    match Archive::from_bytes(tar_from(&members)).unwrap_err() {
        Error::MissingBlob { digest: d, .. } => assert_eq!(d.to_string(), digest),
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn a_file_that_is_not_an_image_says_so() {
    let not_image = tar_of(&[("hello.txt", b"hi".to_vec())]);
    let err = Archive::from_bytes(not_image).unwrap_err();
    assert!(matches!(err, Error::InvalidArchive { .. }), "{err}");
    assert!(err.to_string().contains("not an image archive"), "{err}");

    let garbage = vec![0x42u8; 4096];
    let err = Archive::from_bytes(garbage).unwrap_err();
    assert!(matches!(err, Error::InvalidArchive { .. }), "{err}");
    assert!(
        err.to_string().contains("header checksum mismatch"),
        "{err}"
    );
}

#[test]
fn manifest_names_are_archive_keys_not_host_paths() {
    let image = sample_image("k");
    for evil in ["../../etc/passwd", "/etc/passwd"] {
        let manifest = json!([{"Config": evil, "RepoTags": [], "Layers": []}]);
        let tar = tar_of(&[
            ("manifest.json", manifest.to_string().into_bytes()),
            ("x.json", image.config().as_bytes().to_vec()),
        ]);
        let err = Archive::from_bytes(tar).unwrap_err();
        assert!(matches!(err, Error::InvalidArchive { .. }), "{evil}: {err}");
    }
}

#[test]
fn one_name_for_several_platforms_in_index_json_picks_the_platform() {
    let amd = sample_image("amd");
    let arm = Image::builder()
        .base(&sample_image("arm"))
        .architecture("arm64")
        .build()
        .unwrap();
    let tar = written(
        Writer::new(Format::OciArchive)
            .image(&amd, ["multi:1"])
            .image(&arm, ["multi:1"]),
    );
    for (platform, want) in [("linux/amd64", &amd), ("linux/arm64", &arm)] {
        let options = LoadOptions::new().platform(Platform::parse(platform).unwrap());
        let archive = Archive::from_bytes_with(tar.clone(), &options).unwrap();
        assert_eq!(archive.images().len(), 1, "{platform}");
        assert_eq!(archive.image("multi:1").unwrap().id(), want.id());
    }
    // A name with one image of another platform is still read.
    let only_arm = written(Writer::new(Format::OciArchive).image(&arm, ["multi:1"]));
    let options = LoadOptions::new().platform(Platform::parse("linux/amd64").unwrap());
    let archive = Archive::from_bytes_with(only_arm, &options).unwrap();
    assert_eq!(archive.image("multi:1").unwrap().id(), arm.id());
}

// ---------------------------------------------------------------------------------------
// Lazy reading: what opening reads, what reading a layer shares, where contents live.

/// [`sample_pair`] as `a:1` and `b:1` in an image file of `format` under `dir`; returns the path to open.
fn two_images_on_disk(dir: &TempDir, format: Format) -> (std::path::PathBuf, Image, Image) {
    let (a, b) = sample_pair();
    let writer = Writer::new(format).image(&a, ["a:1"]).image(&b, ["b:1"]);
    let path = dir.join(format.to_string());
    match format {
        Format::OciLayout => writer.write_dir(&path).unwrap(),
        _ => writer.write(std::fs::File::create(&path).unwrap()).unwrap(),
    }
    (path, a, b)
}

#[test]
fn opening_reads_no_layer_and_inspect_needs_none() {
    let dir = TempDir::new("archive-lazy");
    for format in [Format::DockerArchive, Format::OciArchive, Format::OciLayout] {
        let (path, _, b) = two_images_on_disk(&dir, format);
        let archive = Archive::open(&path).unwrap();
        assert_eq!(archive.format(), format);
        for item in archive.images() {
            assert!(
                item.image().layers().all(|l| !l.is_read()),
                "{format}: a layer was read when the file was opened"
            );
        }
        let loaded = archive.image("b:1").unwrap();
        // inspect and history need no layer: the size is unknown until they are read.
        let inspect = loaded.inspect();
        assert_eq!(inspect.id, b.id(), "{format}");
        assert_eq!(inspect.root_fs.layers, b.diff_ids(), "{format}");
        assert_eq!(inspect.size, None, "{format}");
        assert!(loaded
            .history()
            .iter()
            .all(|r| r.size.is_none() || r.empty_layer));
        assert!(
            loaded.layers().all(|l| !l.is_read()),
            "{format}: inspect read a layer"
        );
        // Reading every layer makes the size known, and it is the built image's.
        loaded.read_layers().unwrap();
        assert!(loaded.layers().all(Layer::is_read), "{format}");
        assert_eq!(loaded.inspect().size, b.inspect().size, "{format}");
        assert!(b.inspect().size.is_some());
        assert_eq!(loaded.tree().unwrap(), b.tree().unwrap(), "{format}");
    }
}

#[test]
fn images_of_one_file_share_one_layer_per_blob() {
    let dir = TempDir::new("archive-shared");
    for format in [Format::DockerArchive, Format::OciArchive, Format::OciLayout] {
        let (path, a, _) = two_images_on_disk(&dir, format);
        let archive = Archive::open(&path).unwrap();
        let (la, lb) = (archive.image("a:1").unwrap(), archive.image("b:1").unwrap());
        let shared: Vec<&Layer> = lb.layers().take(a.layers().count()).collect();
        assert!(shared.iter().all(|l| !l.is_read()), "{format}");
        // Reading `a` reads its layers for `b` too, once: `b`'s own layer stays unread.
        la.tree().unwrap();
        assert!(shared.iter().all(|l| l.is_read()), "{format}: not shared");
        assert!(!lb.layers().last().unwrap().is_read(), "{format}");
        // The same changeset, not an equal copy.
        for (x, y) in la.layers().zip(&shared) {
            assert!(
                std::ptr::eq(x.changeset().unwrap(), y.changeset().unwrap()),
                "{format}: two reads of one blob"
            );
        }
    }
}

#[test]
fn docker_archive_layers_are_read_in_place() {
    let dir = TempDir::new("archive-in-place");
    let (path, _, b) = two_images_on_disk(&dir, Format::DockerArchive);
    // Opened from a path: plain layer tars are ranges of the file, nothing copied.
    let tree = Archive::open(&path)
        .unwrap()
        .image("b:1")
        .unwrap()
        .tree()
        .unwrap();
    let mut files = 0;
    for (path, node) in tree.walk() {
        if let Some(contents) = node.contents() {
            files += 1;
            assert!(contents.as_bytes().is_none(), "{path} is in memory");
            let built = b.tree().unwrap().read(path.as_bytes()).unwrap();
            assert_eq!(contents.to_bytes().unwrap(), built, "{path}");
        }
    }
    assert_eq!(files, 3, "etc/os-release, srv/a, b");
    // From bytes in memory, the same files are slices of those bytes.
    let bytes = std::fs::read(&path).unwrap();
    let tree = Archive::from_bytes(bytes)
        .unwrap()
        .image("b:1")
        .unwrap()
        .tree()
        .unwrap();
    assert!(tree
        .walk()
        .filter_map(|(_, n)| n.contents().cloned())
        .all(|c| c.as_bytes().is_some()));
}

#[test]
fn wrong_blob_digest_in_a_layout_is_found_when_read_and_before_writing() {
    let dir = TempDir::new("archive-wrong-blob");
    let image = sample_image("w");
    let layout = dir.join("layout");
    Writer::new(Format::OciLayout)
        .compression(Compression::Gzip)
        .image(&image, ["w:1"])
        .write_dir(&layout)
        .unwrap();
    // Flip one byte of the top layer's blob: same size, other digest.
    let digest = Archive::open(&layout)
        .unwrap()
        .only_image()
        .unwrap()
        .layers()
        .nth(1)
        .unwrap()
        .blob()
        .digest();
    let blob_path = layout.join("blobs/sha256").join(hex(digest));
    let mut blob = std::fs::read(&blob_path).unwrap();
    let at = blob.len() / 2;
    flip(&mut blob, at);
    std::fs::write(&blob_path, &blob).unwrap();

    // Opening checks sizes, not digests: it succeeds.
    let loaded = Archive::open(&layout).unwrap().only_image().unwrap();
    let is_mismatch = |err: &Error| {
        matches!(err, Error::DigestMismatch { expected, actual, .. }
            if *expected == digest && *actual != *expected)
    };
    // Saving the unread image again checks the blob before it writes a byte.
    for format in [Format::OciArchive, Format::DockerArchive] {
        let mut out = Vec::new();
        let err = Writer::new(format)
            .image(&loaded, ["w:1"])
            .write(&mut out)
            .unwrap_err();
        assert!(is_mismatch(&err), "{format}: {err}");
        assert!(out.is_empty(), "{format}: {} bytes written", out.len());
    }
    let copy = dir.join("copy");
    let err = Writer::new(Format::OciLayout)
        .image(&loaded, ["w:1"])
        .write_dir(&copy)
        .unwrap_err();
    assert!(is_mismatch(&err), "{err}");
    assert!(!copy.exists(), "write_dir wrote something");
    // Reading the layer finds it too, and the error names the digest.
    let err = loaded.tree().unwrap_err();
    assert!(is_mismatch(&err), "{err}");
    assert!(err.to_string().contains(&digest.to_string()), "{err}");
    let top = loaded.layers().nth(1).unwrap();
    assert!(matches!(top.changeset(), Err(Error::DigestMismatch { .. })));
    assert!(matches!(top.tar(), Err(Error::DigestMismatch { .. })));
}

// ---------------------------------------------------------------------------------------
// The writer: contradictions refused when writing, before anything is written.

#[test]
fn writer_refuses_contradictions() {
    let image = sample_image("x");
    let refused = |writer: Writer| {
        let mut out = Vec::new();
        let err = writer.write(&mut out).unwrap_err();
        assert!(out.is_empty(), "{err}: {} bytes written", out.len());
        err
    };
    // A docker-archive's layers are plain tars.
    for compression in [Compression::Gzip, Compression::Zstd] {
        let err = refused(
            Writer::new(Format::DockerArchive)
                .compression(compression)
                .image(&image, ["x:1"]),
        );
        assert!(
            matches!(err, Error::Unsupported { .. }),
            "{compression}: {err}"
        );
    }
    let plain = written(
        Writer::new(Format::DockerArchive)
            .compression(Compression::None)
            .image(&image, ["x:1"]),
    );
    assert_eq!(
        Archive::from_bytes(plain)
            .unwrap()
            .image("x:1")
            .unwrap()
            .id(),
        image.id()
    );
    // A level needs a compression, in any format.
    for format in [Format::DockerArchive, Format::OciArchive] {
        let err = refused(Writer::new(format).level(9).image(&image, ["x:1"]));
        assert!(matches!(err, Error::Unsupported { .. }), "{format}: {err}");
    }
    let level = written(
        Writer::new(Format::OciArchive)
            .compression(Compression::Gzip)
            .level(9)
            .image(&image, ["x:1"]),
    );
    assert_eq!(
        Archive::from_bytes(level)
            .unwrap()
            .image("x:1")
            .unwrap()
            .id(),
        image.id()
    );
    // A layout is a directory, the archives are streams.
    let err = refused(Writer::new(Format::OciLayout).image(&image, ["x:1"]));
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    let dir = TempDir::new("archive-writer");
    for format in [Format::DockerArchive, Format::OciArchive] {
        let target = dir.join(format.to_string());
        let err = Writer::new(format)
            .image(&image, ["x:1"])
            .write_dir(&target)
            .unwrap_err();
        assert!(matches!(err, Error::Unsupported { .. }), "{format}: {err}");
        assert!(!target.exists(), "{format}");
    }
    // Names are Docker references; an OCI ref name has no place in a docker-archive.
    let err = refused(Writer::new(Format::OciArchive).image(&image, ["Not A Name"]));
    assert!(matches!(err, Error::InvalidReference { .. }), "{err}");
    let err = refused(Writer::new(Format::DockerArchive).image_ref(&image, "latest"));
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
}

// ---------------------------------------------------------------------------------------
// Names in index.json: Docker 25's convention, skopeo's ref names, and none.

/// The annotations of each entry of a layout's `index.json`.
fn index_annotations(layout: &std::path::Path) -> Vec<BTreeMap<String, String>> {
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| serde_json::from_value(d["annotations"].clone()).unwrap_or_default())
        .collect()
}

/// Replaces the annotations of the one entry of a layout's `index.json`.
fn set_index_annotations(layout: &std::path::Path, annotations: Value) {
    let path = layout.join("index.json");
    let mut index: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1);
    index["manifests"][0]["annotations"] = annotations;
    std::fs::write(&path, serde_json::to_vec(&index).unwrap()).unwrap();
}

#[test]
fn index_json_names_follow_docker_25() {
    let dir = TempDir::new("archive-names");
    let image = sample_image("n");
    let layout = dir.join("docker25");
    Writer::new(Format::OciLayout)
        .image(&image, ["app:1", "busybox", "localhost:5000/team/app:v2"])
        .write_dir(&layout)
        .unwrap();
    let pair = |a: &BTreeMap<String, String>| (a[REF_NAME].clone(), a[IMAGE_NAME].clone());
    let written: Vec<(String, String)> = index_annotations(&layout).iter().map(pair).collect();
    assert_eq!(
        written,
        [
            ("1".into(), "docker.io/library/app:1".into()),
            ("latest".into(), "docker.io/library/busybox:latest".into()),
            ("v2".into(), "localhost:5000/team/app:v2".into()),
        ]
    );
    let archive = Archive::open(&layout).unwrap();
    assert_eq!(archive.images().len(), 1, "one image under three names");
    assert_eq!(
        archive.images()[0].names(),
        [
            "docker.io/library/app:1",
            "docker.io/library/busybox:latest",
            "localhost:5000/team/app:v2"
        ]
    );
    // Any spelling of a name, or a ref name exactly as `oci:DIR:REF` gives it.
    for name in [
        "app:1",
        "docker.io/library/app:1",
        "busybox",
        "1",
        "latest",
        "v2",
    ] {
        assert_eq!(archive.image(name).unwrap().id(), image.id(), "{name}");
    }
    assert!(matches!(
        archive.image("app:2"),
        Err(Error::ImageNotFound { .. })
    ));
    // Written again under the names it had: the same index.
    let again = dir.join("again");
    Writer::new(Format::OciLayout)
        .archived(&archive.images()[0])
        .write_dir(&again)
        .unwrap();
    assert_eq!(
        std::fs::read(again.join("index.json")).unwrap(),
        std::fs::read(layout.join("index.json")).unwrap()
    );
}

#[test]
fn layouts_named_by_ref_name_containerd_name_or_both_are_found() {
    let dir = TempDir::new("archive-annotations");
    let image = sample_image("r");
    let full = "docker.io/library/app:1";
    let cases = [
        // skopeo and umoci: the ref name only.
        (
            "ref-only",
            json!({ REF_NAME: "1" }),
            vec!["1"],
            vec!["1"],
            vec!["app:1"],
        ),
        // containerd: the full name only.
        (
            "name-only",
            json!({ IMAGE_NAME: full }),
            vec![full],
            vec!["app:1", full],
            vec!["1"],
        ),
        // Docker 25: both.
        (
            "both",
            json!({ REF_NAME: "1", IMAGE_NAME: full }),
            vec![full],
            vec!["app:1", full, "1"],
            vec!["app:2", "2"],
        ),
    ];
    for (label, annotations, names, found, not_found) in cases {
        let layout = dir.join(label);
        Writer::new(Format::OciLayout)
            .image_ref(&image, "placeholder")
            .write_dir(&layout)
            .unwrap();
        set_index_annotations(&layout, annotations);
        let archive = Archive::open(&layout).unwrap();
        assert_eq!(archive.images()[0].names(), names, "{label}");
        for name in found {
            assert_eq!(
                archive.image(name).unwrap().id(),
                image.id(),
                "{label}: {name}"
            );
        }
        for name in not_found {
            assert!(
                matches!(archive.image(name), Err(Error::ImageNotFound { .. })),
                "{label}: {name}"
            );
        }
        assert_eq!(archive.only_image().unwrap().id(), image.id(), "{label}");
    }
}

#[test]
fn image_ref_writes_the_ref_name_as_is() {
    let dir = TempDir::new("archive-image-ref");
    let (a, b) = (sample_image("a"), sample_image("b"));
    let layout = dir.join("layout");
    Writer::new(Format::OciLayout)
        .image_ref(&a, "v1.0")
        .image_ref(&b, "latest")
        .write_dir(&layout)
        .unwrap();
    let annotations = index_annotations(&layout);
    let expected: Vec<BTreeMap<String, String>> = ["v1.0", "latest"]
        .iter()
        .map(|r| BTreeMap::from([(REF_NAME.to_owned(), (*r).to_owned())]))
        .collect();
    assert_eq!(
        annotations, expected,
        "no containerd name, the ref name as given"
    );
    let archive = Archive::open(&layout).unwrap();
    assert_eq!(archive.image("v1.0").unwrap().id(), a.id());
    assert_eq!(archive.image("latest").unwrap().id(), b.id());
    // Several images and no name to pick one: every name is listed.
    match archive.only_image().unwrap_err() {
        Error::AmbiguousReference {
            reference,
            candidates,
        } => {
            assert_eq!(reference, "");
            assert_eq!(candidates, ["v1.0", "latest"]);
        }
        other => panic!("expected AmbiguousReference, got {other}"),
    }
}

#[test]
fn unnamed_images_in_a_layout_are_listed_by_id() {
    let dir = TempDir::new("archive-unnamed");
    let (a, b) = (sample_image("a"), sample_image("b"));
    let layout = dir.join("layout");
    Writer::new(Format::OciLayout)
        .image(&a, [] as [&str; 0])
        .image(&b, [] as [&str; 0])
        .write_dir(&layout)
        .unwrap();
    assert!(index_annotations(&layout).iter().all(BTreeMap::is_empty));
    let archive = Archive::open(&layout).unwrap();
    assert!(archive.images().iter().all(|i| i.names().is_empty()));
    match archive.only_image().unwrap_err() {
        Error::AmbiguousReference {
            reference,
            candidates,
        } => {
            assert_eq!(reference, "");
            assert_eq!(candidates, [a.id().to_string(), b.id().to_string()]);
        }
        other => panic!("expected AmbiguousReference, got {other}"),
    }
    assert_eq!(archive.image(a.id().to_string()).unwrap().id(), a.id());
}

#[test]
fn one_tag_in_two_repositories_is_told_apart_by_the_full_name() {
    // Docker 25's ref names are tags: `lc/base:1` and `lc/app:1` both write `1`. The full
    // name tells them apart.
    let dir = TempDir::new("archive-same-tag");
    let (base, app) = (sample_image("base"), sample_image("app"));
    let layout = dir.join("layout");
    Writer::new(Format::OciLayout)
        .image(&base, ["lc/base:1"])
        .image(&app, ["lc/app:1"])
        .write_dir(&layout)
        .unwrap();
    let refs: Vec<String> = index_annotations(&layout)
        .iter()
        .map(|a| a[REF_NAME].clone())
        .collect();
    assert_eq!(refs, ["1", "1"]);
    let archive = Archive::open(&layout).unwrap();
    assert_eq!(archive.images().len(), 2);
    assert_eq!(archive.image("lc/base:1").unwrap().id(), base.id());
    assert_eq!(archive.image("lc/app:1").unwrap().id(), app.id());
    assert_eq!(archive.image("docker.io/lc/app:1").unwrap().id(), app.id());
    assert!(matches!(
        archive.only_image(),
        Err(Error::AmbiguousReference { .. })
    ));
}

#[test]
fn a_name_offering_other_platforms_only_is_an_error_naming_them() {
    let amd = Image::builder().architecture("amd64").build().unwrap();
    let arm = Image::builder().architecture("arm64").build().unwrap();
    let tar = written(
        Writer::new(Format::OciArchive)
            .image(&amd, ["app:1"])
            .image(&arm, ["app:1"]),
    );
    let s390x = LoadOptions::new().platform(Platform::parse("linux/s390x").unwrap());
    let archive = Archive::from_bytes_with(tar.clone(), &s390x).unwrap();
    assert!(archive.images().is_empty(), "no image for linux/s390x");
    let err = archive.image("app:1").unwrap_err().to_string();
    assert!(
        err.contains("linux/amd64") && err.contains("linux/arm64"),
        "the error names what the file offers: {err}"
    );
    // The platform asked is taken when it is there, and one image alone is read whatever
    // its platform.
    let arm64 = LoadOptions::new().platform(Platform::parse("linux/arm64").unwrap());
    let archive = Archive::from_bytes_with(tar, &arm64).unwrap();
    assert_eq!(archive.image("app:1").unwrap().id(), arm.id());
    let solo = written(Writer::new(Format::OciArchive).image(&arm, ["solo:1"]));
    let archive = Archive::from_bytes_with(solo, &s390x).unwrap();
    assert_eq!(archive.image("solo:1").unwrap().id(), arm.id());
}

#[test]
fn an_error_in_a_member_names_the_file_and_the_member() {
    let dir = TempDir::new("member-error");
    let path = dir.join("bad.tar");
    let members = [("manifest.json", br#"[{"Config":"#.to_vec())];
    std::fs::write(&path, tar_of(&members)).unwrap();
    let err = Archive::open(&path).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!(
            "{}: manifest.json: malformed JSON",
            path.display()
        )),
        "{err}"
    );
}
