//! Image files in every shape the wild produces, built here byte by byte: docker-archive as
//! `docker save` 20.10 and skopeo write it, multi-image archives sharing layers, Docker 25's
//! archive-that-is-an-OCI-layout, OCI layouts with nested and multi-platform indexes,
//! compressed and mislabelled blobs; and corrupt versions of each, which must fail with the
//! typed error that names the digest.

use std::collections::BTreeMap;

use bytes::Bytes;
use layercake::archive::{self, Archive, Compression, LoadOptions, Platform, WriteOptions};
use layercake::{Digest, Error, Image, Layer};
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
        .created(1)
        .build()
        .unwrap()
}

fn hex(d: Digest) -> String {
    d.to_hex().to_string()
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
        members.push((format!("{dir}/layer.tar"), layer.tar().to_vec()));
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
    let loaded = archive.image(Some("app:1")).unwrap();
    assert_eq!(loaded.image.id(), image.id());
    assert_eq!(loaded.image.diff_ids(), image.diff_ids());
    assert_eq!(loaded.names, ["app:1"]);
    assert_eq!(loaded.image.tree().unwrap(), image.tree().unwrap());
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
        members.push((file.clone(), layer.tar().to_vec()));
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
    let loaded = archive.image(None).unwrap();
    assert_eq!(loaded.image.id(), image.id());
    assert!(loaded.names.is_empty());
}

#[test]
fn multi_image_archive_shares_layers_and_names_them() {
    let a = sample_image("a");
    let b = Image::builder()
        .base(&a)
        .layer(Layer::builder().file("b", "b").build().unwrap())
        .created(2)
        .build()
        .unwrap();
    let mut tar = Vec::new();
    let (ta, tb) = (
        ["a:1".to_string()],
        ["b:1".to_string(), "b:latest".to_string()],
    );
    archive::write(
        &[(&a, &ta[..]), (&b, &tb[..])],
        &WriteOptions::docker_archive(),
        &mut tar,
    )
    .unwrap();
    // Each shared layer is stored once.
    let shared = a.layers().next().unwrap();
    let count = tar
        .windows(shared.tar().len())
        .filter(|w| *w == &shared.tar()[..])
        .count();
    assert_eq!(count, 1, "the shared base layer is written once");

    let archive = Archive::from_bytes(tar).unwrap();
    assert_eq!(archive.images().len(), 2);
    assert_eq!(archive.image(Some("b")).unwrap().image.id(), b.id());
    assert_eq!(archive.image(Some("a:1")).unwrap().image.id(), a.id());
    let err = archive.image(None).unwrap_err();
    assert!(
        err.to_string().contains("a:1") && err.to_string().contains("b:1"),
        "{err}"
    );
    let err = archive.image(Some("c:1")).unwrap_err();
    assert!(matches!(err, Error::ImageNotFound { .. }));
}

#[test]
fn our_docker_archive_is_also_an_oci_layout() {
    let image = sample_image("c");
    let mut tar = Vec::new();
    archive::write(
        &[(&image, &["c:1".to_string()][..])],
        &WriteOptions::docker_archive(),
        &mut tar,
    )
    .unwrap();
    // Drop manifest.json: what is left must read as an oci-archive with the same image.
    let stripped = rewrite(&tar, |name, data| {
        (name != "manifest.json").then(|| data.to_vec())
    });
    let archive = Archive::from_bytes(stripped).unwrap();
    assert_eq!(archive.format(), archive::Format::OciArchive);
    assert_eq!(archive.image(Some("c:1")).unwrap().image.id(), image.id());
}

#[test]
fn oci_round_trip_in_every_compression_keeps_diff_ids() {
    let image = sample_image("d");
    for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let mut tar = Vec::new();
        let options = WriteOptions::oci_archive().compression(compression);
        archive::write(&[(&image, &["d".to_string()][..])], &options, &mut tar).unwrap();
        let loaded = Archive::from_bytes(tar).unwrap();
        let got = &loaded.image(Some("d")).unwrap().image;
        assert_eq!(got.id(), image.id(), "{compression}");
        for layer in got.layers() {
            assert_eq!(layer.blob().compression(), compression);
        }
        // Writing what was read again, without asking for a compression, is byte-identical.
        let mut again = Vec::new();
        archive::write(
            &[(got, &["d".to_string()][..])],
            &WriteOptions::oci_archive(),
            &mut again,
        )
        .unwrap();
        let mut first = Vec::new();
        archive::write(&[(got, &["d".to_string()][..])], &options, &mut first).unwrap();
        assert_eq!(
            again, first,
            "{compression}: no recompression when not asked"
        );
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
    let mut tar = Vec::new();
    archive::write(
        &[(image, &["x".to_string()][..])],
        &WriteOptions::oci_archive().compression(compression),
        &mut tar,
    )
    .unwrap();
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
        assert_eq!(
            loaded.image(None).unwrap().image.id(),
            image.id(),
            "{label}"
        );
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
        let loaded = archive.image(Some("multi")).unwrap();
        assert_eq!(loaded.image.id(), want.id(), "{platform}");
    }
    let options = LoadOptions::new().platform(Platform::parse("linux/s390x").unwrap());
    let err = Archive::from_bytes_with(tar, &options).unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
}

// ---------------------------------------------------------------------------------------
// Corrupt inputs: each fails with the typed error that names the digest.

fn flip(data: &mut [u8], at: usize) {
    data[at] ^= 0x01;
}

#[test]
fn corrupt_layer_in_docker_archive_names_both_diff_ids() {
    let image = sample_image("f");
    let tar = docker_save_layout(&image, "f:1");
    let bad_layer = image.layers().nth(1).unwrap();
    let corrupt = rewrite(&tar, |name, data| {
        let mut data = data.to_vec();
        if data == bad_layer.tar()[..] && name.ends_with("layer.tar") {
            // Flip a byte of the file contents, not a header: the tar still parses.
            let at = data.windows(5).position(|w| w == b"data\n").unwrap();
            flip(&mut data, at);
        }
        Some(data)
    });
    match Archive::from_bytes(corrupt).unwrap_err() {
        Error::DigestMismatch {
            what,
            expected,
            actual,
        } => {
            assert_eq!(what, "layer 1");
            assert_eq!(expected, bad_layer.diff_id().to_string());
            assert_ne!(actual, expected);
        }
        other => panic!("unexpected {other}"),
    }
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
        Error::DigestMismatch { expected, .. } => assert_eq!(*expected, image.id().to_string()),
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
        let err = Archive::from_bytes(tar_from(&bad)).unwrap_err();
        match &err {
            Error::DigestMismatch { expected, .. } => assert_eq!(expected, digest, "{what}"),
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
        let blob = packed.blob().bytes();
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
        let err = Archive::from_bytes(tar_from(&members)).unwrap_err();
        assert!(
            matches!(&err, Error::DigestMismatch { what, .. } if what.contains(&packed.blob().digest().to_string())),
            "{compression}: {err}"
        );
    }
    // A tar cut inside a file's data.
    let tar = layer.tar();
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
        Error::MissingBlob { digest: d, .. } => assert_eq!(d, digest),
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
    let name = ["multi:1".to_string()];
    let mut tar = Vec::new();
    archive::write(
        &[(&amd, &name[..]), (&arm, &name[..])],
        &WriteOptions::oci_archive(),
        &mut tar,
    )
    .unwrap();
    for (platform, want) in [("linux/amd64", &amd), ("linux/arm64", &arm)] {
        let options = LoadOptions::new().platform(Platform::parse(platform).unwrap());
        let archive = Archive::from_bytes_with(tar.clone(), &options).unwrap();
        assert_eq!(archive.images().len(), 1, "{platform}");
        assert_eq!(
            archive.image(Some("multi:1")).unwrap().image.id(),
            want.id()
        );
    }
    // A name with one image of another platform is still read.
    let mut only_arm = Vec::new();
    archive::write(
        &[(&arm, &name[..])],
        &WriteOptions::oci_archive(),
        &mut only_arm,
    )
    .unwrap();
    let options = LoadOptions::new().platform(Platform::parse("linux/amd64").unwrap());
    let archive = Archive::from_bytes_with(only_arm, &options).unwrap();
    assert_eq!(archive.image(Some("multi:1")).unwrap().image.id(), arm.id());
}
