//! The store: layer reuse, sharing across images, tags, `docker rmi` and `docker image
//! prune` semantics, inspect; and the image operations the store relies on (from_parts,
//! squash, history).

use std::collections::BTreeSet;

use layercake::config::History;
use layercake::{Compression, DiffId, Error, Image, ImageId, Layer, LayerStatus, Store, Tree};

type Result<T = ()> = layercake::Result<T>;

/// A base with one big file, built afresh each call (same bytes, new buffers).
fn base_layer() -> Result<Layer> {
    Layer::builder()
        .file("usr/lib/libbig.so", vec![0xab; 256 * 1024])
        .file("etc/os-release", "ID=demo\n")
        .build()
}

fn base() -> Result<Image> {
    Image::builder().layer(base_layer()?).build()
}

/// An image on `base` with one small layer of its own.
fn app(base: &Image, n: usize) -> Result<Image> {
    Image::builder()
        .base(base)
        .layer(
            Layer::builder()
                .file(format!("app/{n}"), format!("app number {n}\n"))
                .build()?,
        )
        .cmd([format!("/app/{n}")])
        .build()
}

fn statuses(report: &layercake::AddReport) -> Vec<LayerStatus> {
    report.layers.iter().map(|(_, s)| *s).collect()
}

#[test]
fn add_reuses_layers_it_has() -> Result {
    let base = base()?;
    let app = app(&base, 1)?;
    let mut store = Store::new();

    let report = store.add(&base).unwrap();
    assert_eq!(statuses(&report), [LayerStatus::New]);
    assert_eq!(report.layers[0].0, base.diff_ids()[0]);
    assert_eq!(report.image.id(), base.id());

    let report = store.add(&app).unwrap();
    assert_eq!(
        statuses(&report),
        [LayerStatus::AlreadyExists, LayerStatus::New]
    );
    let report = store.add(&app).unwrap();
    assert_eq!(
        statuses(&report),
        [LayerStatus::AlreadyExists, LayerStatus::AlreadyExists]
    );
    assert_eq!(store.images().count(), 2);
    assert_eq!(store.layers().count(), 2);

    // The same base built again is the same layer (same DiffId): the store keeps its own
    // copy of the bytes and hands that to the new image.
    // (Layers built in code hold their tars in memory.)
    let tar_ptr = |image: &Image| -> Result<*const u8> {
        let tar = image.layers().next().unwrap().tar()?;
        Ok(tar
            .as_bytes()
            .expect("a built layer's tar is in memory")
            .as_ptr())
    };
    let stored = store.image(&base.id().to_string())?;
    let stored_tar = tar_ptr(&stored)?;
    let rebuilt = Image::builder().layer(base_layer()?).cmd(["sh"]).build()?;
    assert_ne!(tar_ptr(&rebuilt)?, stored_tar);
    let report = store.add(&rebuilt).unwrap();
    assert_eq!(statuses(&report), [LayerStatus::AlreadyExists]);
    assert_eq!(tar_ptr(&report.image)?, stored_tar);
    assert_eq!(report.image.id(), rebuilt.id());
    assert_eq!(store.layers().count(), 2);
    Ok(())
}

#[test]
fn ten_images_on_one_base_store_the_base_once() -> Result {
    let base = base()?;
    let apps: Vec<Image> = (0..10).map(|n| app(&base, n)).collect::<Result<_>>()?;
    let mut store = Store::new();
    for image in &apps {
        store.add(image).unwrap();
    }
    let usage = store.usage().unwrap();
    assert_eq!(usage.images, 10);
    assert_eq!(usage.layers, 11);

    // The store counts blob sizes: for layers built in code, the blob is the plain tar.
    let base_layer = base.layers().next().unwrap();
    let base_size = base_layer.blob().size();
    assert_eq!(base_size, base_layer.size()?);
    let tops: u64 = apps
        .iter()
        .map(|i| i.layers().last().unwrap().blob().size())
        .sum();
    let configs: u64 = apps
        .iter()
        .map(|i| i.config().as_bytes().len() as u64)
        .sum();
    assert_eq!(usage.stored_bytes, configs + base_size + tops);
    assert_eq!(usage.unshared_bytes, configs + 10 * base_size + tops);
    // The tops are small: what is stored is close to one image, unshared close to ten.
    assert!(base_size > 256 * 1024);
    assert!(usage.stored_bytes < base_size + base_size / 10);
    assert!(usage.unshared_bytes > 10 * base_size);
    assert!(usage.unshared_bytes / usage.stored_bytes >= 9);
    Ok(())
}

#[test]
fn images_in_a_store_share_the_base_tree() -> Result {
    // Two images on bases built separately: equal DiffIds, separate buffers and trees,
    // each tree built (and cached) before the store sees the image.
    let a = app(&base()?, 1)?;
    let b = app(&base()?, 2)?;
    let (ta, tb) = (a.tree()?, b.tree()?);
    let shared = |x: &Tree, y: &Tree, path: &str| {
        x.lookup(path)
            .unwrap()
            .unwrap()
            .same_file(&y.lookup(path).unwrap().unwrap())
    };
    assert!(!shared(&ta, &tb, "usr/lib/libbig.so"));
    assert_eq!(a.chain_ids()[0], b.chain_ids()[0]);

    let mut store = Store::new();
    let a = store.add(&a).unwrap().image;
    let b = store.add(&b).unwrap().image;
    let (ta, tb) = (a.tree()?, b.tree()?);
    for path in [
        "usr/lib/libbig.so",
        "etc/os-release",
        "usr",
        "usr/lib",
        "etc",
    ] {
        assert!(shared(&ta, &tb, path), "{path} is not shared");
    }
    assert!(ta.lookup("app/2")?.is_none());
    assert_eq!(tb.read("app/2")?, "app number 2\n");
    // The contents are the store's one copy.
    let lib = ta.read("usr/lib/libbig.so")?;
    assert_eq!(lib.as_ptr(), tb.read("usr/lib/libbig.so")?.as_ptr());

    // Images built on a stored image share with it too, before any store sees them.
    let c = app(&a, 3)?;
    assert!(shared(&c.tree()?, &ta, "usr/lib/libbig.so"));
    Ok(())
}

/// Images until two of them share the first hex digit of their id.
fn images_with_a_common_prefix(store: &mut Store) -> Result<(String, Vec<ImageId>)> {
    let base = base()?;
    let mut ids = Vec::new();
    for n in 0..17 {
        let image = app(&base, n)?;
        store.add(&image).unwrap();
        ids.push(image.id());
    }
    let first = |id: &ImageId| id.to_hex().to_string()[..1].to_owned();
    let prefix = ids
        .iter()
        .map(first)
        .find(|p| ids.iter().filter(|id| first(id) == *p).count() > 1)
        .expect("17 ids, 16 hex digits");
    Ok((prefix, ids))
}

#[test]
fn lookup_by_tag_id_and_prefix() -> Result {
    let mut store = Store::new();
    let (prefix, ids) = images_with_a_common_prefix(&mut store)?;
    let id = ids[0];
    let hex = id.to_hex().to_string();

    store.tag(&id.to_string(), "demo/app")?;
    store.tag(&hex[..12], "registry.example:5000/demo/app:v1")?;
    assert_eq!(store.image("demo/app")?.id(), id);
    assert_eq!(store.image("demo/app:latest")?.id(), id);
    assert_eq!(store.image("registry.example:5000/demo/app:v1")?.id(), id);
    assert_eq!(store.image(&id.to_string())?.id(), id);
    assert_eq!(store.image(&hex)?.id(), id);
    assert_eq!(store.image(&hex[..12])?.id(), id);
    assert_eq!(store.image(&format!("sha256:{}", &hex[..12]))?.id(), id);
    assert_eq!(
        store.tags_of(id),
        ["demo/app:latest", "registry.example:5000/demo/app:v1"]
    );

    // An ambiguous prefix names every image it could mean.
    match store.image(&prefix) {
        Err(Error::AmbiguousReference {
            reference,
            mut candidates,
        }) => {
            assert_eq!(reference, prefix);
            let mut want: Vec<String> = ids
                .iter()
                .filter(|id| id.to_hex().to_string().starts_with(&prefix))
                .map(ToString::to_string)
                .collect();
            candidates.sort();
            want.sort();
            assert!(want.len() > 1);
            assert_eq!(candidates, want);
        }
        other => panic!("expected AmbiguousReference, got {other:?}"),
    }
    let absent = (0..=255u8)
        .map(|b| format!("{b:02x}"))
        .find(|p| ids.iter().all(|id| !id.to_hex().to_string().starts_with(p)))
        .expect("17 ids cannot start with all 256 two-digit prefixes");
    assert!(matches!(
        store.image(&absent),
        Err(Error::ImageNotFound { .. })
    ));
    assert!(matches!(
        store.image("demo/other"),
        Err(Error::ImageNotFound { .. })
    ));
    assert!(matches!(
        store.tag("demo/other", "x"),
        Err(Error::ImageNotFound { .. })
    ));
    assert!(matches!(
        store.tag("demo/app", "Demo/App"),
        Err(Error::InvalidReference { .. })
    ));
    assert!(matches!(
        store.tag("demo/app", "demo/app@sha256:00"),
        Err(Error::InvalidReference { .. })
    ));

    // A tag moves when it is given again.
    store.tag(&ids[1].to_string(), "demo/app:latest")?;
    assert_eq!(store.image("demo/app")?.id(), ids[1]);
    assert_eq!(store.tags_of(id), ["registry.example:5000/demo/app:v1"]);

    // Untagging leaves the image.
    assert_eq!(store.untag("demo/app")?, ids[1]);
    assert!(matches!(
        store.image("demo/app"),
        Err(Error::ImageNotFound { .. })
    ));
    assert_eq!(store.image(&ids[1].to_string())?.id(), ids[1]);
    assert!(matches!(
        store.untag("demo/app"),
        Err(Error::ImageNotFound { .. })
    ));
    assert_eq!(store.images().count(), 17);
    Ok(())
}

#[test]
fn tags_are_docker_references_shown_in_familiar_form() -> Result {
    let base = base()?;
    let (one, two) = (app(&base, 1)?, app(&base, 2)?);
    let mut store = Store::new();
    store.add(&one).unwrap();
    store.add(&two).unwrap();
    let id = one.id().to_string();

    // One tag, however it is spelled; shown as Docker shows it.
    store.tag(&id, "busybox")?;
    store.tag(&id, "docker.io/library/busybox:latest")?;
    store.tag(&id, "library/busybox")?;
    assert_eq!(store.tags_of(one.id()), ["busybox:latest"]);
    for spelling in [
        "busybox",
        "busybox:latest",
        "library/busybox",
        "docker.io/library/busybox",
        "docker.io/library/busybox:latest",
    ] {
        assert_eq!(store.image(spelling)?.id(), one.id(), "{spelling}");
    }
    assert!(matches!(
        store.image("busybox:1"),
        Err(Error::ImageNotFound { .. })
    ));

    // Given again in another spelling, the tag moves.
    store.tag(&two.id().to_string(), "docker.io/library/busybox")?;
    assert_eq!(store.image("busybox")?.id(), two.id());
    assert!(store.tags_of(one.id()).is_empty());

    // Sorted by the full form (`docker.io/library/zed:1` before `example.com/a:1`), shown in
    // the familiar one.
    store.tag(&id, "example.com/a:1")?;
    store.tag(&id, "zed:1")?;
    assert_eq!(store.tags_of(one.id()), ["zed:1", "example.com/a:1"]);
    assert_eq!(store.inspect(&id)?.repo_tags, ["zed:1", "example.com/a:1"]);

    // Removing by a full spelling reports the familiar one.
    let removal = store.remove("docker.io/library/zed:1")?;
    assert_eq!(removal.untagged, ["zed:1"]);
    assert!(removal.images.is_empty());
    assert_eq!(store.tags_of(one.id()), ["example.com/a:1"]);
    assert_eq!(store.untag("docker.io/library/busybox:latest")?, two.id());
    assert!(store.tags_of(two.id()).is_empty());
    Ok(())
}

#[test]
fn usage_counts_layers_as_their_stored_blobs() -> Result {
    // A compressed layer takes its blob's bytes, not its tar's.
    let plain = base_layer()?;
    let gzip = plain.compress(Compression::Gzip, 6)?;
    let image = Image::builder().layer(gzip.clone()).build()?;
    let mut store = Store::new();
    store.add(&image).unwrap();
    let usage = store.usage().unwrap();
    let config = image.config().as_bytes().len() as u64;
    assert_eq!(usage.stored_bytes, config + gzip.blob().size());
    assert_eq!(usage.unshared_bytes, usage.stored_bytes);
    assert!(
        gzip.blob().size() * 10 < plain.size()?,
        "256 KiB of one byte compresses well: the blob size is not the tar size"
    );
    Ok(())
}

#[test]
fn remove_follows_docker_rmi() -> Result {
    let base = base()?;
    let (one, two) = (app(&base, 1)?, app(&base, 2)?);
    let mut store = Store::new();
    store.add(&one).unwrap();
    store.add(&two).unwrap();
    store.tag(&one.id().to_string(), "one:a")?;
    store.tag(&one.id().to_string(), "one:b")?;
    store.tag(&two.id().to_string(), "two")?;

    // By id with two tags: refused, nothing changes.
    let err = store.remove(&one.id().to_string()).unwrap_err();
    match &err {
        Error::ImageInUse { id, tags } => {
            assert_eq!(*id, one.id());
            assert_eq!(tags, &["one:a", "one:b"]);
        }
        other => panic!("expected ImageInUse, got {other}"),
    }
    assert_eq!(store.images().count(), 2);
    assert_eq!(store.tags_of(one.id()).len(), 2);

    // By tag: only the tag goes while another one points at the image.
    let removal = store.remove("one:a")?;
    assert_eq!(removal.untagged, ["one:a"]);
    assert!(removal.images.is_empty());
    assert!(removal.layers.is_empty());
    assert_eq!(store.image("one:b")?.id(), one.id());

    // By id with one tag: the tag and the image go, and the layer only it used.
    let removal = store.remove(&one.id().to_string())?;
    assert_eq!(removal.untagged, ["one:b"]);
    assert_eq!(removal.images, [one.id()]);
    assert_eq!(removal.layers, [one.diff_ids()[1]]);
    assert!(matches!(
        store.image(&one.id().to_string()),
        Err(Error::ImageNotFound { .. })
    ));
    assert_eq!(store.layers().count(), 2, "the base stays for `two`");

    // By its last tag: the image goes, and with it every layer.
    let removal = store.remove("two:latest")?;
    assert_eq!(removal.untagged, ["two:latest"]);
    assert_eq!(removal.images, [two.id()]);
    let gone: BTreeSet<DiffId> = removal.layers.into_iter().collect();
    assert_eq!(gone, two.diff_ids().into_iter().collect());
    assert_eq!(store.usage().unwrap().layers, 0);
    assert_eq!(store.usage().unwrap().stored_bytes, 0);

    assert!(matches!(
        store.remove("two"),
        Err(Error::ImageNotFound { .. })
    ));
    Ok(())
}

#[test]
fn remove_an_untagged_image_by_id() -> Result {
    let mut store = Store::new();
    let image = base()?;
    store.add(&image).unwrap();
    let removal = store.remove(&image.id().to_hex().to_string()[..8])?;
    assert!(removal.untagged.is_empty());
    assert_eq!(removal.images, [image.id()]);
    assert_eq!(removal.layers, image.diff_ids());
    assert_eq!(store.images().count(), 0);
    Ok(())
}

#[test]
fn prune_removes_dangling_images_and_their_layers() -> Result {
    let base = base()?;
    let kept = app(&base, 1)?;
    let dangling = [app(&base, 2)?, app(&base, 3)?];
    let mut store = Store::new();
    store.add(&kept).unwrap();
    store.tag(&kept.id().to_string(), "kept")?;
    for image in &dangling {
        store.add(image).unwrap();
    }
    assert_eq!(store.usage().unwrap().layers, 4);

    let removal = store.prune().unwrap();
    assert!(removal.untagged.is_empty());
    let images: BTreeSet<ImageId> = removal.images.iter().copied().collect();
    assert_eq!(images, dangling.iter().map(Image::id).collect());
    let layers: BTreeSet<DiffId> = removal.layers.iter().copied().collect();
    let tops: BTreeSet<DiffId> = dangling.iter().map(|i| i.diff_ids()[1]).collect();
    assert_eq!(layers, tops, "the shared base stays");

    let left: Vec<ImageId> = store.images().map(Image::id).collect();
    assert_eq!(left, [kept.id()]);
    let left: BTreeSet<DiffId> = store.layers().map(Layer::diff_id).collect();
    assert_eq!(left, kept.diff_ids().into_iter().collect());
    assert_eq!(
        store.image("kept")?.tree()?.read("app/1")?,
        "app number 1\n"
    );

    // Nothing more to prune.
    let again = store.prune().unwrap();
    assert!(again.images.is_empty() && again.layers.is_empty());
    Ok(())
}

#[test]
fn inspect_lists_repo_tags() -> Result {
    let image = app(&base()?, 1)?;
    let mut store = Store::new();
    store.add(&image).unwrap();
    store.tag(&image.id().to_string(), "demo/app:v1")?;
    store.tag(&image.id().to_string(), "demo/app")?;

    let inspect = store.inspect("demo/app:v1")?;
    assert_eq!(inspect.repo_tags, ["demo/app:latest", "demo/app:v1"]);
    assert_eq!(inspect.id, image.id());
    assert_eq!(inspect.root_fs.layers, image.diff_ids());
    assert_eq!(inspect.config.cmd, Some(vec!["/app/1".to_string()]));
    assert_eq!(inspect.os, "linux");
    assert_eq!(inspect.architecture, "amd64");
    assert_eq!(inspect.size, Some(256 * 1024 + 8 + 13));
    // Outside a store an image has no tags.
    assert!(image.inspect().repo_tags.is_empty());

    let json = serde_json::to_value(&inspect).unwrap();
    assert_eq!(json["RepoTags"][1], "demo/app:v1");
    assert_eq!(json["RootFS"]["Type"], "layers");
    assert!(matches!(
        store.inspect("nope"),
        Err(Error::ImageNotFound { .. })
    ));
    Ok(())
}

#[test]
fn from_parts_checks_the_layers_against_the_config() -> Result {
    let image = app(&base()?, 1)?;
    let config = image.config().as_bytes().clone();
    let layers: Vec<Layer> = image.layers().cloned().collect();

    let loaded = Image::from_parts(config.clone(), layers.clone())?;
    assert_eq!(loaded.id(), image.id());
    assert_eq!(loaded.tree()?, image.tree()?);

    // A different top layer: the digest named in the config is not the one given.
    let wrong_top = Layer::builder().file("app/1", "tampered\n").build()?;
    let err =
        Image::from_parts(config.clone(), vec![layers[0].clone(), wrong_top.clone()]).unwrap_err();
    match err {
        Error::DigestMismatch {
            expected, actual, ..
        } => {
            assert_eq!(expected, layers[1].diff_id().digest());
            assert_eq!(actual, wrong_top.diff_id().digest());
        }
        other => panic!("expected DigestMismatch, got {other}"),
    }
    // Layers in the wrong order are wrong layers too.
    let swapped = vec![layers[1].clone(), layers[0].clone()];
    assert!(matches!(
        Image::from_parts(config.clone(), swapped),
        Err(Error::DigestMismatch { .. })
    ));
    // A missing layer is a config that does not fit.
    assert!(matches!(
        Image::from_parts(config, vec![layers[0].clone()]),
        Err(Error::InvalidConfig { .. })
    ));
    Ok(())
}

#[test]
fn squash_keeps_the_tree() -> Result {
    let image = Image::builder()
        .layer_with(
            Layer::builder()
                .file("etc/a", "1")
                .file("etc/b", "2")
                .symlink("usr/bin", "bin")
                .build()?,
            History::new("ADD rootfs /"),
        )
        .layer_with(
            Layer::builder()
                .file("usr/bin/tool", "ELF")
                .hard_link("usr/bin/tool", "usr/bin/tool2")
                .build()?,
            History::new("COPY tool /usr/bin/"),
        )
        .layer_with(
            Layer::builder().whiteout("etc/a").opaque("usr").build()?,
            History::new("RUN rm -rf /etc/a /usr/*"),
        )
        .build()?;
    let tree = image.tree()?;
    assert!(tree.lookup("etc/a")?.is_none());
    assert!(tree.lookup("usr/bin")?.is_none());

    let all = image.squash(0, &layercake::Commit::new())?;
    assert_eq!(all.layers().count(), 1);
    assert_eq!(all.tree()?, tree);
    let layer = all.layers().next().unwrap();
    assert_eq!(layer.changeset()?.whiteouts().count(), 0);
    assert_eq!(layer.changeset()?.opaque_dirs().count(), 0);
    assert_eq!(all.history().len(), 1);
    assert_eq!(
        all.history()[0].created_by,
        "layercake squash: layers 1\u{2013}3 of 3"
    );

    let top = image.squash(1, &layercake::Commit::new())?;
    assert_eq!(top.layers().count(), 2);
    assert_eq!(top.diff_ids()[0], image.diff_ids()[0]);
    assert_eq!(top.chain_ids()[0], image.chain_ids()[0]);
    assert_eq!(top.tree()?, tree);
    let rows: Vec<String> = top.history().into_iter().map(|r| r.created_by).collect();
    assert_eq!(
        rows,
        ["layercake squash: layers 2\u{2013}3 of 3", "ADD rootfs /"]
    );
    assert_ne!(top.id(), image.id());
    // The squashed layer still deletes what the kept layer below had.
    let layer = top.layers().last().unwrap();
    let whiteouts: Vec<String> = layer
        .changeset()?
        .whiteouts()
        .map(ToString::to_string)
        .collect();
    assert_eq!(whiteouts, ["etc/a"]);

    // Squashing from past the last layer squashes nothing: an error, not an empty layer.
    assert!(matches!(
        image.squash(3, &layercake::Commit::new()),
        Err(layercake::Error::LayerOutOfRange {
            index: 3,
            layers: 3
        })
    ));
    Ok(())
}

#[test]
fn history_rows_are_newest_first() -> Result {
    let image = Image::builder()
        .layer_with(
            Layer::builder().file("a", "12345").build()?,
            History::new("ADD a /"),
        )
        .empty_step(History::new("ENV X=1"))
        .layer_with(
            Layer::builder().file("b", "123").build()?,
            History::new("COPY b /").comment("second"),
        )
        .commit(layercake::Commit::new().created(1_700_000_000))
        .build()?;
    let rows = image.history();
    let steps: Vec<(&str, Option<u64>, bool)> = rows
        .iter()
        .map(|r| (r.created_by.as_str(), r.size, r.empty_layer))
        .collect();
    assert_eq!(
        steps,
        [
            ("COPY b /", Some(3), false),
            ("ENV X=1", Some(0), true),
            ("ADD a /", Some(5), false)
        ]
    );
    assert_eq!(rows[0].id, Some(image.id()));
    assert!(rows[1..].iter().all(|r| r.id.is_none()));
    assert_eq!(rows[0].comment, "second");
    assert!(rows.iter().all(|r| r.created == "2023-11-14T22:13:20Z"));
    Ok(())
}
