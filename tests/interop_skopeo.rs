//! Interop with skopeo 1.9.3 (and oci-image-tool): images skopeo writes in every form it
//! has (docker-archive, OCI layouts with gzip, zstd and uncompressed layers, oci-archive,
//! and a plain blob mislabelled `+gzip`) load in layercake with skopeo's ImageId and
//! DiffIds (no layer read until the tree is asked for; a docker-archive's layers read in
//! place) and flatten like `umoci unpack`; what layercake writes, skopeo reads, copies
//! (verifying every digest) and converts back, and oci-image-tool validates, with layouts
//! named both ways: Docker 25's (`ref.name` the tag, `oci:DIR:TAG`) and skopeo's (a ref
//! name as is, `Writer::image_ref`); the CLI's `convert`, `layers` and `inspect` agree with
//! skopeo.
//!
//! Every fixture is made at test time by the real tools; a missing tool fails the test.

mod common;

use std::os::unix::fs::symlink;
use std::path::Path;

use common::{
    assert_ids, assert_same_listing, blob_path, cmd, config_diff_ids, layout_image, read_json,
    sha256, tree_listing, umoci_unpack, Listing, TempDir,
};
use layercake::archive::oci::Manifest;
use layercake::archive::{Archive, Format, Writer};
use layercake::{CommitOptions, Compression, Container, Entry, Image, Layer};

/// What skopeo says about an image: its ImageId (the SHA-256 of the config bytes it
/// returns), the config's DiffIds, and the manifest's layer digests and media types.
struct Seen {
    image_id: String,
    config: Vec<u8>,
    diff_ids: Vec<String>,
    blobs: Vec<String>,
    media_types: Vec<String>,
}

fn skopeo_inspect(reference: &str) -> Seen {
    let config = cmd("skopeo")
        .args(["inspect", "--config", "--raw", reference])
        .run();
    let manifest: Manifest =
        serde_json::from_slice(&cmd("skopeo").args(["inspect", "--raw", reference]).run())
            .expect("skopeo prints a manifest");
    assert_eq!(
        manifest.config.digest.to_string(),
        sha256(&config),
        "{reference}: skopeo's config bytes match its manifest"
    );
    Seen {
        image_id: sha256(&config),
        diff_ids: config_diff_ids(&config),
        config,
        blobs: manifest
            .layers
            .iter()
            .map(|d| d.digest.to_string())
            .collect(),
        media_types: manifest
            .layers
            .iter()
            .map(|d| d.media_type.clone())
            .collect(),
    }
}

fn skopeo_copy(args: &[&str]) {
    cmd("skopeo").args(["copy", "-q"]).args(args).run();
}

fn write(path: &Path, contents: impl AsRef<[u8]>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
}

/// A two-layer umoci image `layout:src` (hardlinks, a long name, an xattr, a symlink, a
/// whiteout), and its `umoci unpack` listing.
fn umoci_source(tmp: &TempDir) -> (std::path::PathBuf, Listing) {
    let layout = tmp.join("umoci");
    let image = format!("{}:src", layout.display());
    cmd("umoci").arg("init").arg("--layout").arg(&layout).run();
    cmd("umoci").args(["new", "--image", &image]).run();
    let bundle = tmp.join("bundle");
    cmd("umoci")
        .args(["unpack", "--image", &image])
        .arg(&bundle)
        .run();
    let root = bundle.join("rootfs");
    write(&root.join("etc/motd"), "hello\n");
    write(&root.join("etc/issue"), "Skopeo\n");
    write(&root.join("usr/bin/tool"), vec![b'z'; 70_000]);
    std::fs::hard_link(root.join("usr/bin/tool"), root.join("usr/bin/tool2")).unwrap();
    symlink("usr/bin", root.join("bin")).unwrap();
    write(&root.join(format!("share/{}", "w".repeat(170))), "long\n");
    cmd("setfattr")
        .args(["-n", "user.k", "-v", "v"])
        .arg(root.join("etc/motd"))
        .run();
    cmd("umoci")
        .args(["repack", "--refresh-bundle", "--image", &image])
        .arg(&bundle)
        .run();
    std::fs::remove_file(root.join("etc/issue")).unwrap();
    write(&root.join("etc/motd"), "hello again\n");
    cmd("umoci")
        .args(["repack", "--image", &image])
        .arg(&bundle)
        .run();
    let listing = umoci_unpack(&layout, "src", tmp, "unpacked");
    (layout, listing)
}

/// Loads `file` (an image file or layout) in layercake, picks `name` (or the only image),
/// and checks it against what skopeo says of `reference` and against the expected tree.
/// Opening reads no layer; a docker-archive's plain layers are then read in place.
fn check(file: &Path, name: Option<&str>, reference: &str, expected: &Listing) -> Image {
    let seen = skopeo_inspect(reference);
    let archive =
        Archive::open(file).unwrap_or_else(|e| panic!("layercake reads {reference}: {e}"));
    let image = match name {
        Some(name) => archive.image(name),
        None => archive.only_image(),
    }
    .unwrap_or_else(|e| panic!("{reference}: the image: {e}"));
    assert!(
        image.layers().all(|l| !l.is_read()),
        "{reference}: opening read a layer"
    );
    assert_ids(&image, &seen.image_id, &seen.diff_ids, reference);
    assert_eq!(
        image.config().as_bytes(),
        &seen.config[..],
        "{reference}: config bytes"
    );
    let blobs: Vec<String> = image
        .layers()
        .map(|l| l.blob().digest().to_string())
        .collect();
    assert_eq!(blobs, seen.blobs, "{reference}: blob digests");
    let tree = image
        .tree()
        .unwrap_or_else(|e| panic!("{reference}: layercake reads the layers: {e}"));
    assert!(image.layers().all(Layer::is_read), "{reference}");
    if archive.format() == Format::DockerArchive {
        for (path, node) in tree.walk() {
            if let Some(contents) = node.contents() {
                assert!(
                    contents.as_bytes().is_none(),
                    "{reference}: /{path} was copied into memory, not read in place"
                );
            }
        }
    }
    assert_same_listing(
        &tree_listing(&tree),
        expected,
        &format!("{reference} vs umoci unpack of the source"),
    );
    image
}

fn compressions(image: &Image) -> Vec<Compression> {
    image.layers().map(|l| l.blob().compression()).collect()
}

/// Rewrites an OCI layout so every layer descriptor says `media_type`, whatever the blob
/// is: a new manifest blob (the old one removed), `index.json` pointing at it, digests and
/// sizes fixed.
fn relabel(layout: &Path, media_type: &str) {
    let index_path = layout.join("index.json");
    let mut index: serde_json::Value = read_json(&index_path);
    let desc = &mut index["manifests"][0];
    let old = desc["digest"].as_str().unwrap().to_owned();
    let mut manifest: serde_json::Value = read_json(&blob_path(layout, &old));
    for layer in manifest["layers"].as_array_mut().unwrap() {
        layer["mediaType"] = media_type.into();
    }
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let digest = sha256(&bytes);
    std::fs::write(blob_path(layout, &digest), &bytes).unwrap();
    std::fs::remove_file(blob_path(layout, &old)).unwrap();
    desc["digest"] = digest.into();
    desc["size"] = bytes.len().into();
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
}

const TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

#[test]
fn skopeo_images_in_every_form_load_with_skopeo_ids_and_flatten_like_umoci() {
    let tmp = TempDir::new("skopeo-read");
    let (umoci, expected) = umoci_source(&tmp);
    let src = format!("oci:{}:src", umoci.display());

    // umoci's own layout (gzip, written by Go's gzip), named with a ref name only.
    let image = check(&umoci, Some("src"), &src, &expected);
    assert_eq!(compressions(&image), [Compression::Gzip; 2]);
    assert_eq!(Archive::open(&umoci).unwrap().images()[0].names(), ["src"]);
    let diff_ids = image.diff_ids();

    // docker-archive: plain `<diff_id>.tar` files with `<v1id>/layer.tar` symlinks.
    let da = tmp.join("skopeo.tar");
    let da_ref = format!("docker-archive:{}", da.display());
    skopeo_copy(&[&src, &format!("{da_ref}:skopeo/img:1")]);
    let image = check(&da, Some("skopeo/img:1"), &da_ref, &expected);
    assert_eq!(image.diff_ids(), diff_ids);
    assert_eq!(compressions(&image), [Compression::None; 2]);
    let listing = cmd("tar").arg("tvf").arg(&da).run_text();
    assert!(
        listing.lines().any(|l| l.starts_with('l') && l.contains("/layer.tar -> ")),
        "skopeo's docker-archive has layer.tar symlinks: the fixture is not what it claims\n{listing}"
    );

    // OCI with zstd layers.
    let zstd = tmp.join("zstd");
    let zstd_ref = format!("oci:{}:z", zstd.display());
    skopeo_copy(&["--dest-compress-format", "zstd", &src, &zstd_ref]);
    let image = check(&zstd, Some("z"), &zstd_ref, &expected);
    assert_eq!(image.diff_ids(), diff_ids);
    assert_eq!(compressions(&image), [Compression::Zstd; 2]);
    assert_eq!(
        skopeo_inspect(&zstd_ref).media_types,
        ["application/vnd.oci.image.layer.v1.tar+zstd"; 2]
    );

    // OCI with gzip layers recompressed by skopeo, from the docker-archive.
    let gzip = tmp.join("gzip");
    let gzip_ref = format!("oci:{}:g", gzip.display());
    skopeo_copy(&[
        "--dest-compress-format",
        "gzip",
        &format!("{da_ref}:skopeo/img:1"),
        &gzip_ref,
    ]);
    let image = check(&gzip, Some("g"), &gzip_ref, &expected);
    assert_eq!(image.diff_ids(), diff_ids);
    assert_eq!(compressions(&image), [Compression::Gzip; 2]);

    // OCI with uncompressed layers: skopeo 1.9.3 labels these plain tar blobs `+gzip`.
    let plain = tmp.join("plain");
    let plain_ref = format!("oci:{}:p", plain.display());
    skopeo_copy(&[
        "--dest-oci-accept-uncompressed-layers",
        &format!("{da_ref}:skopeo/img:1"),
        &plain_ref,
    ]);
    assert_eq!(skopeo_inspect(&plain_ref).media_types, [TAR_GZIP; 2]);
    let image = check(&plain, Some("p"), &plain_ref, &expected);
    assert_eq!(image.diff_ids(), diff_ids);
    assert_eq!(
        compressions(&image),
        [Compression::None; 2],
        "sniffed, not trusted"
    );

    // The same layout labelled honestly, by hand: umoci unpacks it too.
    let honest = tmp.join("honest");
    cmd("cp").arg("-a").arg(&plain).arg(&honest).run();
    relabel(&honest, TAR);
    let honest_ref = format!("oci:{}:p", honest.display());
    assert_eq!(skopeo_inspect(&honest_ref).media_types, [TAR; 2]);
    let image = check(&honest, Some("p"), &honest_ref, &expected);
    assert_eq!(image.diff_ids(), diff_ids);
    assert_same_listing(
        &umoci_unpack(&honest, "p", &tmp, "unpacked-honest"),
        &expected,
        "umoci unpack of the uncompressed layout",
    );

    // And mislabelled again by hand: plain tar blobs whose descriptors say `+gzip`.
    let lying = tmp.join("lying");
    cmd("cp").arg("-a").arg(&honest).arg(&lying).run();
    relabel(&lying, TAR_GZIP);
    let lying_ref = format!("oci:{}:p", lying.display());
    assert_eq!(skopeo_inspect(&lying_ref).media_types, [TAR_GZIP; 2]);
    let image = check(&lying, Some("p"), &lying_ref, &expected);
    assert_eq!(image.diff_ids(), diff_ids);
    assert_eq!(compressions(&image), [Compression::None; 2]);

    // oci-archive (a tar of a layout), zstd.
    let oa = tmp.join("oci-archive.tar");
    let oa_ref = format!("oci-archive:{}:arch", oa.display());
    skopeo_copy(&["--dest-compress-format", "zstd", &src, &oa_ref]);
    let image = check(&oa, Some("arch"), &oa_ref, &expected);
    assert_eq!(image.diff_ids(), diff_ids);
}

/// Two images on one base, built in memory: a base, and a container commit on it.
fn ours() -> (Image, Image) {
    let base = Layer::builder()
        .entry(
            "etc/motd",
            Entry::file("made in memory\n").mtime(1_700_000_000),
        )
        .file("etc/issue", "Cake\n")
        .entry("usr/bin/tool", Entry::file(vec![1u8; 100_000]).mode(0o755))
        .hard_link("usr/bin/tool", "usr/bin/tool2")
        .symlink("usr/bin", "bin")
        .entry(
            format!("share/{}", "x".repeat(200)),
            Entry::file("long\n").xattr("user.k", "v"),
        )
        .file(b"share/caf\xe9".as_slice(), "latin-1\n")
        .build()
        .unwrap();
    let base = Image::builder()
        .layer(base)
        .cmd(["/bin/tool"])
        .commit(layercake::Commit::new().created(1_700_000_000))
        .build()
        .unwrap();
    let mut c = Container::new(&base).unwrap();
    c.set_clock(1_700_000_100);
    c.remove_file("etc/issue").unwrap();
    c.write("etc/motd", "changed in a container\n").unwrap();
    c.create_dir_all("srv/www").unwrap();
    c.write("srv/www/index.html", "<h1>cake</h1>\n").unwrap();
    let app = c
        .commit(
            &CommitOptions::new().commit(
                layercake::Commit::new()
                    .message("serve")
                    .created(1_700_000_200),
            ),
        )
        .unwrap();
    (base, app)
}

#[test]
fn what_layercake_writes_loads_in_skopeo_and_comes_back_the_same() {
    let tmp = TempDir::new("skopeo-write");
    let (base, app) = ours();
    // Tags unique across the file: Docker 25's ref name is the tag alone (`oci:DIR:2`).
    let base_tags = ["lc/base:1"];
    let app_tags = ["lc/app:2", "lc/app:latest"];
    let named = |writer: Writer| writer.image(&base, base_tags).image(&app, app_tags);
    let app_tree = tree_listing(&app.tree().unwrap());
    let app_ids: Vec<String> = app.diff_ids().iter().map(|d| d.to_string()).collect();

    // A multi-image docker-archive: skopeo picks each image by tag and sees our config.
    let da = tmp.join("ours.tar");
    let file = std::fs::File::create(&da).unwrap();
    named(Writer::new(Format::DockerArchive))
        .write(file)
        .unwrap();
    for (image, tag) in [
        (&base, "lc/base:1"),
        (&app, "lc/app:2"),
        (&app, "lc/app:latest"),
    ] {
        let reference = format!("docker-archive:{}:{tag}", da.display());
        let seen = skopeo_inspect(&reference);
        assert_eq!(seen.image_id, image.id().to_string(), "{reference}");
        assert_eq!(seen.config, image.config().as_bytes()[..], "{reference}");
        let ids: Vec<String> = image.diff_ids().iter().map(|d| d.to_string()).collect();
        assert_eq!(
            seen.blobs, ids,
            "{reference}: docker-archive layers are plain tars"
        );
        let inspect: serde_json::Value =
            serde_json::from_slice(&cmd("skopeo").args(["inspect", &reference]).run()).unwrap();
        assert_eq!(inspect["Layers"], serde_json::json!(ids), "{reference}");
    }
    // Our docker-archive is an OCI layout too (as Docker 25 writes): extracted, it
    // validates and skopeo reads it by tag, the ref name Docker 25 writes.
    let extracted = tmp.join("ours-extracted");
    std::fs::create_dir(&extracted).unwrap();
    cmd("tar")
        .arg("-xf")
        .arg(&da)
        .arg("-C")
        .arg(&extracted)
        .run();
    cmd("oci-image-tool")
        .args(["validate", "--type", "image"])
        .arg(&extracted)
        .run();
    for (image, tag) in [(&base, "1"), (&app, "2"), (&app, "latest")] {
        let seen = skopeo_inspect(&format!("oci:{}:{tag}", extracted.display()));
        assert_eq!(seen.image_id, image.id().to_string(), "oci:…:{tag}");
    }

    // skopeo copies it to an OCI layout (checking every digest), and back.
    let copy = tmp.join("copy");
    let copy_ref = format!("oci:{}:app", copy.display());
    skopeo_copy(&[
        &format!("docker-archive:{}:lc/app:2", da.display()),
        &copy_ref,
    ]);
    let seen = skopeo_inspect(&copy_ref);
    assert_eq!(seen.diff_ids, app_ids);
    let copied = check(&copy, Some("app"), &copy_ref, &app_tree);
    assert_eq!(copied.diff_ids(), app.diff_ids());
    // skopeo names it with a ref name only; that is its name in layercake.
    assert_eq!(Archive::open(&copy).unwrap().images()[0].names(), ["app"]);
    let back = tmp.join("back.tar");
    let back_ref = format!("docker-archive:{}", back.display());
    skopeo_copy(&[&copy_ref, &format!("{back_ref}:lc/back:1")]);
    let again = check(&back, Some("lc/back:1"), &back_ref, &app_tree);
    assert_eq!(again.diff_ids(), app.diff_ids());
    // skopeo writes the full reference; `lc/back:1` found it above all the same.
    let names = Archive::open(&back).unwrap().images()[0].names().to_vec();
    assert_eq!(names, ["docker.io/lc/back:1"]);

    // OCI layouts in each compression, named both ways: Docker 25's references (skopeo
    // finds the app by its tag) and skopeo's own ref names written as they are.
    for (compression, docker25) in [
        (Compression::Gzip, true),
        (Compression::None, false),
        (Compression::Zstd, true),
        (Compression::Zstd, false),
    ] {
        let convention = if docker25 { "docker25" } else { "ref-name" };
        let dir = tmp.join(format!("oci-{compression}-{convention}"));
        let writer = Writer::new(Format::OciLayout).compression(compression);
        let (writer, app_ref) = if docker25 {
            (named(writer), "2")
        } else {
            let writer = writer
                .image_ref(&base, "lc/base:1")
                .image_ref(&app, "lc/app:2");
            (writer, "lc/app:2")
        };
        writer.write_dir(&dir).unwrap();
        let reference = format!("oci:{}:{app_ref}", dir.display());
        let seen = skopeo_inspect(&reference);
        assert_eq!(seen.image_id, app.id().to_string(), "{reference}");
        let ours = layout_image(&dir, app_ref);
        assert_eq!(ours.image_id(), app.id().to_string(), "{reference}");
        assert_eq!(seen.blobs, ours.blob_digests(), "{reference}");
        assert_eq!(
            seen.media_types,
            vec![compression.oci_layer_media_type(); app.layers().count()],
            "{reference}"
        );
        // layercake finds it by the same name, and (Docker 25) by the reference too.
        let archive = Archive::open(&dir).unwrap();
        assert_eq!(
            archive.image(app_ref).unwrap().id(),
            app.id(),
            "{reference}"
        );
        assert_eq!(
            archive.image("lc/app:2").unwrap().id(),
            app.id(),
            "{reference}"
        );
        if compression != Compression::Zstd {
            // oci-image-tool 1.0.0-rc1 does not know the zstd media type.
            cmd("oci-image-tool")
                .args(["validate", "--type", "image"])
                .arg(&dir)
                .run();
        }
        // skopeo reads every blob (decompressing ours, recompressing as gzip) and writes a
        // layout whose layers must still match our DiffIds: layercake verifies them.
        let recompressed = tmp.join(format!("recompressed-{compression}-{convention}"));
        let recompressed_ref = format!("oci:{}:app", recompressed.display());
        skopeo_copy(&[
            "--dest-compress-format",
            "gzip",
            &reference,
            &recompressed_ref,
        ]);
        let image = check(&recompressed, Some("app"), &recompressed_ref, &app_tree);
        assert_eq!(image.diff_ids(), app.diff_ids(), "{reference}");
        // And to a docker-archive (plain tars) through skopeo's decompressor.
        if compression != Compression::Zstd {
            let da = tmp.join(format!("to-docker-{compression}-{convention}.tar"));
            skopeo_copy(&[
                &reference,
                &format!("docker-archive:{}:lc/x:1", da.display()),
            ]);
            let loaded = check(
                &da,
                None,
                &format!("docker-archive:{}", da.display()),
                &app_tree,
            );
            assert_eq!(loaded.diff_ids(), app.diff_ids());
        }
    }
    // An oci-archive, zstd, Docker 25's names: skopeo finds the base by its tag.
    let oa = tmp.join("ours-oci-archive.tar");
    let file = std::fs::File::create(&oa).unwrap();
    named(Writer::new(Format::OciArchive).compression(Compression::Zstd))
        .write(file)
        .unwrap();
    let oa_ref = format!("oci-archive:{}:1", oa.display());
    let seen = skopeo_inspect(&oa_ref);
    assert_eq!(seen.image_id, base.id().to_string());
    let copy = tmp.join("from-oci-archive");
    skopeo_copy(&[&oa_ref, &format!("oci:{}:base", copy.display())]);
    let loaded = check(
        &copy,
        Some("base"),
        &format!("oci:{}:base", copy.display()),
        &tree_listing(&base.tree().unwrap()),
    );
    assert_eq!(
        loaded.id(),
        base.id(),
        "an OCI to OCI copy keeps the config bytes"
    );
}

#[cfg(feature = "cli")]
mod cli {
    //! The `layercake` binary against skopeo: `convert` between formats and compressions,
    //! `layers`, `inspect`, `history`, `diff`.

    use super::*;
    use std::process::Command;

    fn layercake(args: &[&str]) -> Vec<u8> {
        let out = Command::new(env!("CARGO_BIN_EXE_layercake"))
            .args(args)
            .output()
            .expect("run layercake");
        assert!(
            out.status.success(),
            "layercake {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    #[test]
    fn cli_convert_docker_archive_to_zstd_oci_and_back_keeps_ids() {
        let tmp = TempDir::new("skopeo-cli");
        let (umoci, expected) = umoci_source(&tmp);
        let src = tmp.join("src.tar");
        let src_ref = format!("docker-archive:{}:skopeo/src:1", src.display());
        skopeo_copy(&[&format!("oci:{}:src", umoci.display()), &src_ref]);
        let original = skopeo_inspect(&src_ref);

        // docker-archive -> OCI, zstd: the config bytes, so the ImageId, are kept.
        let zstd = tmp.join("zstd");
        let zstd_ref = format!("oci:{}:zz", zstd.display());
        layercake(&["convert", &src_ref, &zstd_ref, "--compression", "zstd"]);
        let seen = skopeo_inspect(&zstd_ref);
        assert_eq!(seen.image_id, original.image_id);
        assert_eq!(seen.diff_ids, original.diff_ids);
        assert_eq!(
            seen.media_types,
            ["application/vnd.oci.image.layer.v1.tar+zstd"; 2]
        );
        // skopeo can read and decompress every zstd blob we wrote.
        let checked = tmp.join("checked");
        skopeo_copy(&[
            "--dest-compress-format",
            "gzip",
            &zstd_ref,
            &format!("oci:{}:c", checked.display()),
        ]);
        check(
            &checked,
            Some("c"),
            &format!("oci:{}:c", checked.display()),
            &expected,
        );

        // `layers` prints what skopeo's manifest says.
        let layers = String::from_utf8(layercake(&["layers", &zstd_ref])).unwrap();
        for (i, (blob, diff_id)) in seen.blobs.iter().zip(&seen.diff_ids).enumerate() {
            assert!(layers.contains(&format!("layer {i}\n")), "{layers}");
            assert!(
                layers.contains(&format!("blob:        {blob}\n")),
                "{layers}"
            );
            assert!(
                layers.contains(&format!("diff id:     {diff_id}\n")),
                "{layers}"
            );
        }
        assert_eq!(
            layers
                .matches("media type:  application/vnd.oci.image.layer.v1.tar+zstd")
                .count(),
            2
        );

        // ... and back to a docker-archive: the same DiffIds and ImageId, our tag.
        let back = tmp.join("back.tar");
        let back_ref = format!("docker-archive:{}:lc/back:2", back.display());
        layercake(&["convert", &zstd_ref, &back_ref]);
        let seen = skopeo_inspect(&back_ref);
        assert_eq!(seen.image_id, original.image_id);
        assert_eq!(seen.diff_ids, original.diff_ids);
        assert_eq!(
            seen.blobs, original.diff_ids,
            "docker-archive layers are plain tars"
        );

        // `inspect` of the result: id, tags and DiffIds as skopeo sees them.
        let inspect: serde_json::Value =
            serde_json::from_slice(&layercake(&["inspect", &back.display().to_string()])).unwrap();
        assert_eq!(inspect[0]["Id"], original.image_id);
        assert_eq!(inspect[0]["RepoTags"], serde_json::json!(["lc/back:2"]));
        assert_eq!(
            inspect[0]["RootFS"]["Layers"],
            serde_json::json!(original.diff_ids)
        );

        // To an oci-archive and through skopeo to an OCI layout: still the same image.
        let oa = tmp.join("out.tar");
        layercake(&[
            "convert",
            &back_ref,
            &format!("oci-archive:{}:final", oa.display()),
        ]);
        let seen = skopeo_inspect(&format!("oci-archive:{}:final", oa.display()));
        assert_eq!(seen.image_id, original.image_id);
        assert_eq!(seen.diff_ids, original.diff_ids);

        // `diff` from the first layer's image to the whole: what the second layer did.
        let first = tmp.join("first");
        let source_image = Archive::open(&src).unwrap().only_image().unwrap();
        let lower = Image::builder()
            .layer(source_image.layers().next().unwrap().clone())
            .build()
            .unwrap();
        // (Written with the layer unread: the writer checks its blob as it copies it.)
        Writer::new(Format::OciLayout)
            .image_ref(&lower, "first")
            .write_dir(&first)
            .unwrap();
        let diff = String::from_utf8(layercake(&[
            "diff",
            &format!("oci:{}:first", first.display()),
            &src_ref,
        ]))
        .unwrap();
        assert_eq!(diff, "C /etc\nD /etc/issue\nC /etc/motd\n");
    }
}
