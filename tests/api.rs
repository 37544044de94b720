//! The public API as a vocabulary: what every type promises (threads), what every
//! constructor and `Result` function does on input it does not expect (no panics), and the
//! shared shapes of options, links, paths and commit metadata.

use layercake::archive::{Archive, Format, Writer};
use layercake::{Container, Error, Image, Layer};

type Result<T = ()> = layercake::Result<T>;

#[test]
fn squash_out_of_range_is_an_error() -> Result {
    let image = Image::builder()
        .layer(Layer::builder().file("a", "1").build()?)
        .layer(Layer::builder().file("b", "2").build()?)
        .build()?;
    // In range: 0 (everything) to 1 (the top layer alone).
    assert_eq!(
        image.squash(0, &layercake::Commit::new())?.layers().count(),
        1
    );
    assert_eq!(
        image.squash(1, &layercake::Commit::new())?.tree()?,
        image.tree()?
    );
    // Out of range (from 2: no layer to squash, as the CLI's `--from`): an error naming the
    // index and the count, never a panic.
    for from in [2, 3, 4, usize::MAX] {
        match image.squash(from, &layercake::Commit::new()) {
            Err(Error::LayerOutOfRange { index, layers }) => assert_eq!((index, layers), (from, 2)),
            other => panic!("squash({from}): expected LayerOutOfRange, got {other:?}"),
        }
    }
    assert_eq!(
        image
            .squash(3, &layercake::Commit::new())
            .unwrap_err()
            .to_string(),
        "layer 3 is out of range: the image has 2 layers"
    );
    Ok(())
}

#[test]
fn container_new_does_not_panic_on_an_unreadable_loaded_layer() -> Result {
    let marker = b"layer bytes that will be damaged in the file";
    let image = Image::builder()
        .layer(Layer::builder().file("data", &marker[..]).build()?)
        .build()?;
    let mut tar = Vec::new();
    Writer::new(Format::DockerArchive)
        .image(&image, ["app:1"])
        .write(&mut tar)?;
    // Damage the layer's contents, not the outer tar's headers: opening the file still
    // succeeds (it reads the index only), and the layer fails its digest when it is read.
    let at = tar
        .windows(marker.len())
        .position(|w| w == marker)
        .expect("the layer is stored plain in the archive");
    tar[at] ^= 0x20;
    let loaded = Archive::from_bytes(tar)?.image("app:1")?;
    assert_eq!(loaded.id(), image.id(), "the index is intact");
    let err = Container::new(&loaded).unwrap_err();
    assert!(
        matches!(err, Error::DigestMismatch { .. }),
        "expected the layer's digest mismatch, got {err:?}"
    );
    // The image itself reports the same error, and still never panics.
    assert!(loaded.tree().is_err());
    Ok(())
}

#[test]
fn container_new_does_not_panic_on_a_dangling_hardlink() -> Result {
    // A loader does not apply layers, so an image whose only layer links to nothing loads.
    let layer = Layer::builder()
        .hard_link("bin/busybox", "bin/sh")
        .build()?;
    let image = Image::builder().layer(layer).build()?;
    let mut tar = Vec::new();
    Writer::new(Format::OciArchive)
        .image(&image, ["app:1"])
        .write(&mut tar)?;
    let loaded = Archive::from_bytes(tar)?.image("app:1")?;
    assert!(matches!(
        Container::new(&loaded),
        Err(Error::InvalidHardlink { .. })
    ));
    Ok(())
}

#[test]
fn links_take_the_standard_library_order_in_builders_and_containers() -> Result {
    // `std::os::unix::fs::symlink(original, link)` and `std::fs::hard_link(original, link)`:
    // what the link points to first, the new path second, in both APIs.
    let built = Layer::builder()
        .file("bin/busybox", "ELF")
        .symlink("busybox", "bin/sh")
        .hard_link("bin/busybox", "bin/ash")
        .build()?;
    let image = Image::builder().build()?;
    let mut c = Container::new(&image)?;
    c.create_dir("bin")?;
    c.write("bin/busybox", "ELF")?;
    c.symlink("busybox", "bin/sh")?;
    c.hard_link("bin/busybox", "bin/ash")?;

    let from_builder = layercake::Tree::new().apply(&built)?;
    for tree in [&from_builder, c.tree()] {
        let sh = tree
            .lookup("bin/sh")?
            .expect("the link is at the second argument");
        assert_eq!(sh.link_target().unwrap(), "busybox");
        assert_eq!(tree.read("bin/sh")?, "ELF");
        let ash = tree
            .lookup("bin/ash")?
            .expect("the hardlink is at the second argument");
        assert!(ash.same_file(&tree.lookup("bin/busybox")?.unwrap()));
    }
    Ok(())
}

#[test]
fn options_are_by_value_builders_with_in_force_accessors() -> Result {
    use layercake::archive::{LoadOptions, Platform};
    use layercake::layer::{DiffOptions, Duplicates, ReadOptions, WhiteoutStyle};
    use layercake::store::AddOptions;
    use layercake::{Compression, Limits};

    // Every limit: the setter named after it, the accessor with `_in_force` appended.
    let limits = Limits::default()
        .layer_bytes(1)
        .image_bytes(2)
        .archive_bytes(3)
        .blob_bytes(4)
        .ratio(5)
        .entries(6)
        .path_bytes(7)
        .name_bytes(8)
        .depth(9)
        .pax_bytes(10)
        .json_bytes(11)
        .layers(12)
        .index_depth(13)
        .trailing_bytes(14);
    let read: [u64; 14] = [
        limits.layer_bytes_in_force(),
        limits.image_bytes_in_force(),
        limits.archive_bytes_in_force(),
        limits.blob_bytes_in_force(),
        limits.ratio_in_force(),
        limits.entries_in_force(),
        limits.path_bytes_in_force() as u64,
        limits.name_bytes_in_force() as u64,
        limits.depth_in_force() as u64,
        limits.pax_bytes_in_force(),
        limits.json_bytes_in_force(),
        limits.layers_in_force() as u64,
        limits.index_depth_in_force() as u64,
        limits.trailing_bytes_in_force(),
    ];
    assert_eq!(read, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
    assert_eq!(Limits::default().ratio_in_force(), 128);
    assert_ne!(limits, Limits::default());
    assert_eq!(Limits::new(), Limits::default());

    let read = ReadOptions::new()
        .limits(limits.clone())
        .duplicates(Duplicates::Reject);
    assert_eq!(read.limits_in_force(), &limits);
    let arm = Platform::parse("linux/arm64")?;
    let load = LoadOptions::new().read(read).platform(arm.clone());
    assert_eq!(load.platform_in_force(), &arm);
    assert_eq!(
        DiffOptions::new()
            .whiteouts(WhiteoutStyle::Opaque)
            .whiteouts_in_force(),
        WhiteoutStyle::Opaque
    );
    let writer = Writer::new(Format::OciArchive)
        .compression(Compression::Gzip)
        .level(1);
    assert_eq!(
        (
            writer.format_in_force(),
            writer.compression_in_force(),
            writer.level_in_force()
        ),
        (Format::OciArchive, Some(Compression::Gzip), Some(1))
    );
    assert_eq!(AddOptions::new().tag("a").tags_in_force(), ["a"]);
    Ok(())
}

#[test]
fn one_commit_struct_for_builder_commit_import_and_squash() -> Result {
    use layercake::archive::{import, ImportOptions};
    use layercake::config::ContainerConfig;
    use layercake::{Commit, CommitOptions};

    let mut config = ContainerConfig::default();
    config.cmd = Some(vec!["/app".into()]);
    let commit = Commit::new()
        .author("Jane <jane@example.com>")
        .message("release 1")
        .created(1_700_000_000)
        .config(config.clone());
    assert_eq!(commit.message_in_force(), Some("release 1"));

    let layer = Layer::builder().file("app", "ELF").build()?;
    let built = Image::builder()
        .layer(layer.clone())
        .commit(commit.clone())
        .build()?;
    let committed = Container::new(&Image::builder().build()?)?
        .commit(&CommitOptions::new().commit(commit.clone()))?;
    let imported = import(
        layer.tar()?.clone(),
        &ImportOptions::new().commit(commit.clone()),
    )?;
    let two = Image::builder()
        .layer(layer)
        .layer(Layer::builder().file("b", "").build()?)
        .build()?;
    let squashed = two.squash(0, &commit)?;

    for (what, image) in [
        ("built", &built),
        ("committed", &committed),
        ("imported", &imported),
        ("squashed", &squashed),
    ] {
        let file = image.config().file();
        assert_eq!(
            file.author.as_deref(),
            Some("Jane <jane@example.com>"),
            "{what}"
        );
        assert_eq!(
            file.comment.as_deref(),
            Some("release 1"),
            "{what}: the message"
        );
        assert_eq!(
            file.created.as_deref(),
            Some("2023-11-14T22:13:20Z"),
            "{what}"
        );
        assert_eq!(file.config, config, "{what}");
        // Newest first, as `docker history` shows it.
        let newest = image.history().into_iter().next().expect("a history row");
        assert_eq!(newest.created, "2023-11-14T22:13:20Z", "{what}");
    }
    // The history row of the new layer carries the message where a commit writes one.
    for image in [&committed, &imported, &squashed] {
        assert_eq!(image.history()[0].comment, "release 1");
    }

    // Unset fields keep the operation's default: the epoch for a builder, and the import's
    // own message.
    let plain = Image::builder().commit(Commit::new().author("x")).build()?;
    assert_eq!(plain.inspect().created, "1970-01-01T00:00:00Z");
    let imported = import(
        Layer::builder().build()?.tar()?.clone(),
        &ImportOptions::new().commit(Commit::new().created(0)),
    )?;
    assert_eq!(imported.inspect().comment, "Imported from -");
    Ok(())
}

/// Compile-time: the type can be sent to and shared between threads, as the crate docs
/// promise ("Threads"). One assertion per public type; a type that stops being `Send + Sync`
/// fails to compile here.
macro_rules! send_sync {
    ($($ty:ty),* $(,)?) => {
        $(const _: fn() = || {
            fn check<T: Send + Sync>() {}
            check::<$ty>();
        };)*
    };
}

send_sync! {
    layercake::archive::Archive,
    layercake::archive::ArchiveImage,
    layercake::archive::Format,
    layercake::archive::ImportOptions,
    layercake::archive::LoadOptions,
    layercake::archive::Platform,
    layercake::archive::Writer,
    layercake::archive::oci::Descriptor,
    layercake::archive::oci::Index,
    layercake::archive::oci::Manifest,
    layercake::ChainId,
    layercake::Change,
    layercake::ChangeKind,
    layercake::Changeset,
    layercake::Commit,
    layercake::CommitOptions,
    layercake::Compression,
    layercake::config::ConfigFile,
    layercake::config::ContainerConfig,
    layercake::config::History,
    layercake::config::RootFs,
    layercake::Container,
    layercake::Contents,
    layercake::ContentsReader,
    layercake::DiffId,
    layercake::Digest,
    layercake::digest::Algorithm,
    layercake::digest::Hex<'static>,
    layercake::digest::HashingReader<std::fs::File>,
    layercake::digest::HashingWriter<Vec<u8>>,
    layercake::Entry,
    layercake::EntryKind,
    layercake::Error,
    layercake::FileType,
    layercake::HistoryRow,
    layercake::Image,
    layercake::ImageBuilder,
    layercake::ImageConfig,
    layercake::ImageId,
    layercake::ImagePath,
    layercake::Inspect,
    layercake::InspectRootFs,
    layercake::Layer,
    layercake::layer::Blob,
    layercake::layer::DiffOptions,
    layercake::layer::Duplicates,
    layercake::layer::ReadOptions,
    layercake::layer::WhiteoutStyle,
    layercake::LayerBuilder,
    layercake::Limits,
    layercake::Metadata,
    layercake::Node,
    layercake::Reference,
    layercake::Familiar<'static>,
    layercake::Store,
    layercake::AddReport,
    layercake::LayerStatus,
    layercake::Progress,
    layercake::Removal,
    layercake::Usage,
    layercake::Verification,
    layercake::store::Corruption,
    layercake::Tree,
    layercake::tree::ReadDir,
    layercake::tree::Walk<'static>,
    layercake::tree::Dump<'static>,
    layercake::UnpackOptions,
    layercake::UnpackReport,
    layercake::unpack::Owners,
    layercake::unpack::Devices,
    layercake::unpack::Setuid,
    layercake::unpack::Xattrs,
    layercake::unpack::Skipped,
    layercake::unpack::SkipReason,
}

/// `AddOptions` holds a progress callback that is `Send` but not `Sync` (an `FnMut`): it
/// moves to another thread with the add, and is documented as `Send` only.
const _: fn() = || {
    fn check<T: Send>() {}
    check::<layercake::store::AddOptions<'static>>();
};

#[test]
fn public_types_are_send_and_sync() {
    // The assertions above are checked when this file compiles; this test names them in the
    // test list, and checks at run time that values really cross threads.
    let image = Image::builder().build().unwrap();
    let handle = std::thread::spawn(move || image.id());
    assert_eq!(
        handle.join().unwrap(),
        Image::builder().build().unwrap().id()
    );
}

#[test]
fn paths_accept_str_bytes_and_host_paths_everywhere() -> Result {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    use std::path::{Path, PathBuf};

    use layercake::{ImagePath, Tree};

    let latin1: &[u8] = b"srv/caf\xe9.txt";
    // Builder entries: &str, bytes, &Path.
    let layer = Layer::builder()
        .file("etc/motd", "str")
        .file(latin1, "bytes")
        .file(Path::new("/srv/host.txt"), "path")
        .symlink("motd", PathBuf::from("etc/motd.link"))
        .hard_link(OsStr::from_bytes(latin1), b"srv/again")
        .build()?;
    let tree = Tree::new().apply(&layer)?;
    // Tree lookups: every form names the same node.
    assert_eq!(tree.read(OsStr::from_bytes(latin1))?, "bytes");
    assert_eq!(tree.read(Path::new("srv/host.txt"))?, "path");
    assert_eq!(tree.read(String::from("etc/motd.link"))?, "str");
    assert!(tree.lookup(ImagePath::new("srv/again")?)?.is_some());
    assert!(tree.lookup(latin1)?.is_some());
    assert_eq!(tree.read_dir(Path::new("srv"))?.count(), 3);
    // Container operations.
    let mut c = Container::new(&Image::builder().layer(layer).build()?)?;
    c.write(Path::new("srv/new"), "x")?;
    c.rename(OsStr::from_bytes(latin1), PathBuf::from("srv/cafe.txt"))?;
    assert_eq!(c.read(b"srv/cafe.txt")?, "bytes");
    assert!(c.exists(Path::new("/srv/new")));
    Ok(())
}

#[test]
fn lookup_of_an_invalid_path_is_an_error() -> Result {
    let tree = layercake::Tree::new().apply(&Layer::builder().file("etc/motd", "").build()?)?;
    assert!(tree.lookup("etc/motd")?.is_some());
    assert!(tree.lookup("etc/nothing")?.is_none(), "missing is Ok(None)");
    assert!(
        tree.lookup("etc/motd/below")?.is_none(),
        "through a file is Ok(None)"
    );
    for invalid in [&b"etc/../motd"[..], b"etc/mo\0td"] {
        match tree.lookup(invalid) {
            Err(Error::InvalidPath { .. }) => {}
            other => panic!("{invalid:?}: expected InvalidPath, got {other:?}"),
        }
    }
    Ok(())
}

#[test]
fn bytes_is_reexported_at_the_crate_root() -> Result {
    let contents: layercake::Bytes = layercake::Bytes::from_static(b"hi");
    let tree =
        layercake::Tree::new().apply(&Layer::builder().file("a", contents.clone()).build()?)?;
    let read: layercake::Bytes = tree.read("a")?;
    assert_eq!(read, contents);
    Ok(())
}

#[test]
fn empty_tar_is_a_digest_const() -> Result {
    use layercake::{DiffId, Digest};
    const EMPTY: Digest = Digest::EMPTY_TAR;
    assert_eq!(EMPTY, Digest::sha256([0u8; 1024]));
    assert_eq!(
        Layer::builder().build()?.diff_id(),
        DiffId::from_digest(EMPTY)
    );
    assert_eq!(
        EMPTY.to_string(),
        "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
    );
    Ok(())
}

#[test]
fn history_created_is_typed_and_keeps_its_text() -> Result {
    use layercake::config::{History, Timestamp};
    use layercake::ImageConfig;

    // A time as some builder wrote it: a fraction and an offset, not Docker's own form.
    let text = "2016-06-01T20:53:37.123456789-07:00";
    let json = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":[]}},"history":[{{"created":"{text}","created_by":"RUN x","empty_layer":true}}]}}"#
    );
    let config = ImageConfig::from_bytes(json.clone())?;
    let created: &Timestamp = config.file().history[0].created.as_ref().unwrap();
    assert_eq!(created.unix_seconds(), 1_464_839_617);
    assert_eq!(created.subsec_nanos(), 123_456_789);
    assert_eq!(created.as_str(), text);
    // Written again, the history entry is the same text, byte for byte.
    let rewritten = ImageConfig::from_file(config.file().clone())?;
    let back = String::from_utf8(rewritten.as_bytes().to_vec()).unwrap();
    assert!(back.contains(&format!(r#""created":"{text}""#)), "{back}");
    // A time in any other form is refused with the text named, as Go's time.Time refuses it.
    let bad = json.replace(text, "last tuesday");
    let err = ImageConfig::from_bytes(bad).unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. }), "{err:?}");
    // And built in code.
    let step = History::new("COPY . /").created(Timestamp::from_unix(0));
    assert_eq!(step.created.unwrap().as_str(), "1970-01-01T00:00:00Z");
    Ok(())
}

#[test]
fn changeset_entry_of_an_invalid_path_is_an_error() -> Result {
    let layer = Layer::builder().file("etc/motd", "hi").build()?;
    let changes = layer.changeset()?;
    assert!(changes.entry("etc/motd")?.is_some());
    assert!(changes.entry("etc/issue")?.is_none());
    assert!(matches!(
        changes.entry("etc/../motd"),
        Err(Error::InvalidPath { .. })
    ));
    Ok(())
}

#[test]
fn options_in_force_accessors_for_commit_import_and_unpack() -> Result {
    use layercake::archive::{ImportOptions, Platform};
    use layercake::layer::WhiteoutStyle;
    use layercake::unpack::{Devices, Owners, Setuid, Xattrs};
    use layercake::{Commit, CommitOptions, UnpackOptions};

    let commit = CommitOptions::new()
        .commit(Commit::new().message("m"))
        .commit(Commit::new().author("a"))
        .created_by("RUN x")
        .whiteouts(WhiteoutStyle::Opaque);
    // A second commit() merges: both fields are kept.
    assert_eq!(commit.commit_in_force().message_in_force(), Some("m"));
    assert_eq!(commit.commit_in_force().author_in_force(), Some("a"));
    assert_eq!(commit.created_by_in_force(), Some("RUN x"));
    assert_eq!(commit.whiteouts_in_force(), WhiteoutStyle::Opaque);

    let arm = Platform::parse("linux/arm64")?;
    let import = ImportOptions::new()
        .commit(Commit::new().created(5))
        .platform(arm.clone());
    assert_eq!(import.commit_in_force().created_in_force(), Some(5));
    assert_eq!(import.platform_in_force(), Some(&arm));

    let unpack = UnpackOptions::new()
        .owners(Owners::Drop)
        .devices(Devices::Create)
        .setuid(Setuid::Keep)
        .xattrs(Xattrs::Skip);
    assert_eq!(
        (
            unpack.owners_in_force(),
            unpack.devices_in_force(),
            unpack.setuid_in_force(),
            unpack.xattrs_in_force()
        ),
        (Owners::Drop, Devices::Create, Setuid::Keep, Xattrs::Skip)
    );
    Ok(())
}
