//! The store on disk (`Store::open`), against issue 8's "Must show": images and tags that
//! outlive the process, one copy of a shared base, failed loads that change nothing, `kill -9`
//! at random instants, two processes loading at once, skopeo and umoci reading the store as
//! it is, and `verify`/`prune` after corruption.
//!
//! The crash and concurrency tests re-execute this test binary as a child process: the
//! child runs the same test with `LAYERCAKE_STORE_CHILD` set and acts as the loader.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{assert_same_listing, cmd, read_json, tree_listing, TempDir};
use layercake::archive::oci::{Index, Manifest};
use layercake::archive::{Archive, Format, LoadOptions, Writer};
use layercake::layer::ReadOptions;
use layercake::store::AddOptions;
use layercake::{
    Compression, DiffId, Digest, Image, Layer, LayerStatus, Limits, Progress, Store, Tree,
};

// ---------------------------------------------------------------------------------------
// Fixtures: a base of varied bytes, small distinct tops, image files written from them.

/// splitmix64: a small seeded generator, so every run (and a failing seed) is reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// `len` bytes: half random, half text-like runs, so gzip has something to do but the
    /// data is nothing like zeros.
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            let word = self.next();
            if word & 1 == 0 {
                out.extend_from_slice(&word.to_le_bytes());
            } else {
                let letter = b'a' + (word >> 8) as u8 % 26;
                out.extend(std::iter::repeat_n(letter, 1 + (word >> 16) as usize % 12));
            }
        }
        out.truncate(len);
        out
    }
}

/// A base image: `files` files of `each` varied bytes under `usr/lib`, explicit directories.
fn base(seed: u64, files: usize, each: usize) -> Image {
    let mut rng = Rng(seed);
    let mut layer = Layer::builder()
        .dir("etc")
        .dir("usr")
        .dir("usr/lib")
        .file("etc/os-release", format!("ID=demo\nSEED={seed}\n"));
    for i in 0..files {
        layer = layer.file(format!("usr/lib/lib{i}.so"), rng.bytes(each));
    }
    Image::builder()
        .layer(layer.build().expect("base layer"))
        .build()
        .expect("base image")
}

/// An image on `base` with one small layer of its own, named by `label`.
fn app(base: &Image, label: &str, top_bytes: usize) -> Image {
    let mut rng = Rng(label
        .bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31) ^ u64::from(b)));
    let top = Layer::builder()
        .dir("app")
        .file(format!("app/{label}"), format!("#!/bin/sh\necho {label}\n"))
        .file(format!("app/{label}.data"), rng.bytes(top_bytes))
        .build()
        .expect("top layer");
    Image::builder()
        .base(base)
        .layer(top)
        .cmd([format!("/app/{label}")])
        .build()
        .expect("app image")
}

/// The two kinds of image file the store is loaded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// docker-archive: plain tar layers.
    Docker,
    /// oci-archive with gzip layers.
    OciGzip,
}

impl Source {
    fn writer(self) -> Writer {
        match self {
            Source::Docker => Writer::new(Format::DockerArchive),
            Source::OciGzip => Writer::new(Format::OciArchive).compression(Compression::Gzip),
        }
    }
}

/// Writes `image` named `tag` to `path` as `source`.
fn write_archive(path: &Path, image: &Image, tag: &str, source: Source) {
    let file = std::fs::File::create(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    source
        .writer()
        .image(image, [tag])
        .write(std::io::BufWriter::new(file))
        .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// `docker load` by hand: the one image of an image file.
fn open_image(path: &Path) -> Image {
    Archive::open(path)
        .and_then(|a| a.only_image())
        .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()))
}

// ---------------------------------------------------------------------------------------
// Looking at the store's directory by hand.

fn blobs_dir(root: &Path) -> PathBuf {
    root.join("blobs").join("sha256")
}

fn cache_dir(root: &Path) -> PathBuf {
    root.join("layercake").join("cache")
}

fn ingest_dir(root: &Path) -> PathBuf {
    root.join("layercake").join("ingest")
}

/// Every name in a directory (dot-files included: a leftover must be seen).
fn names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect()
}

/// Every path under `root` (relative) with a file's bytes, or `None` for a directory.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read_dir") {
            let entry = entry.expect("entry");
            let path = entry.path();
            let rel = path.strip_prefix(root).expect("under root").to_path_buf();
            if entry.file_type().expect("file type").is_dir() {
                out.insert(rel, None);
                stack.push(path);
            } else {
                out.insert(rel, Some(std::fs::read(&path).expect("read")));
            }
        }
    }
    out
}

/// Asserts two snapshots are the same, naming the paths that differ.
#[track_caller]
fn assert_same_snapshot(
    before: &BTreeMap<PathBuf, Option<Vec<u8>>>,
    after: &BTreeMap<PathBuf, Option<Vec<u8>>>,
    what: &str,
) {
    let mut problems = Vec::new();
    for path in before.keys().chain(after.keys()).collect::<BTreeSet<_>>() {
        match (before.get(path), after.get(path)) {
            (Some(a), Some(b)) if a == b => {}
            (Some(_), Some(_)) => problems.push(format!("{}: contents changed", path.display())),
            (Some(_), None) => problems.push(format!("{}: deleted", path.display())),
            (None, Some(_)) => problems.push(format!("{}: created", path.display())),
            (None, None) => unreachable!(),
        }
    }
    assert!(
        problems.is_empty(),
        "{what}: the store changed:\n{}",
        problems.join("\n")
    );
}

/// Bytes of every file under `dir`.
fn disk_bytes(dir: &Path) -> u64 {
    snapshot(dir)
        .values()
        .map(|f| f.as_ref().map_or(0, |b| b.len() as u64))
        .sum()
}

#[track_caller]
fn assert_ingest_empty(root: &Path, what: &str) {
    let left = names(&ingest_dir(root));
    assert!(left.is_empty(), "{what}: ingest area holds {left:?}");
}

#[track_caller]
fn assert_verifies(store: &Store, what: &str) {
    let verification = store
        .verify()
        .unwrap_or_else(|e| panic!("{what}: verify: {e}"));
    assert!(
        verification.is_ok(),
        "{what}: verify found problems:\n{}",
        verification
            .problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// What the store's `index.json` names, read by hand: the blobs of every manifest (the
/// manifest, its config, its layers), the DiffIds of layers whose blob is not their tar,
/// and the ref names.
struct Referenced {
    blobs: BTreeSet<String>,
    compressed_diff_ids: BTreeSet<String>,
    ref_names: Vec<String>,
}

fn referenced(root: &Path) -> Referenced {
    let index: Index = read_json(&root.join("index.json"));
    let mut out = Referenced {
        blobs: BTreeSet::new(),
        compressed_diff_ids: BTreeSet::new(),
        ref_names: Vec::new(),
    };
    for desc in &index.manifests {
        if let Some(name) = desc.annotations.get("org.opencontainers.image.ref.name") {
            out.ref_names.push(name.clone());
        }
        out.blobs.insert(desc.digest.to_hex().to_string());
        let manifest: Manifest = read_json(&blobs_dir(root).join(desc.digest.to_hex().to_string()));
        out.blobs
            .insert(manifest.config.digest.to_hex().to_string());
        let config =
            std::fs::read(blobs_dir(root).join(manifest.config.digest.to_hex().to_string()))
                .expect("config");
        let diff_ids = common::config_diff_ids(&config);
        assert_eq!(diff_ids.len(), manifest.layers.len(), "manifest vs config");
        for (layer, diff_id) in manifest.layers.iter().zip(diff_ids) {
            let hex = layer.digest.to_hex().to_string();
            let diff_hex = diff_id.strip_prefix("sha256:").expect("sha256").to_owned();
            if hex != diff_hex {
                out.compressed_diff_ids.insert(diff_hex);
            }
            out.blobs.insert(hex);
        }
    }
    out
}

/// Compares the files of two trees: same paths, kinds and bytes (cheap: no hashing).
#[track_caller]
fn assert_same_files(stored: &Tree, original: &Tree, what: &str) {
    let files = |tree: &Tree| -> BTreeMap<Vec<u8>, (char, Option<Vec<u8>>)> {
        tree.walk()
            .map(|(path, node)| {
                let bytes = node.contents().map(|c| {
                    c.to_bytes()
                        .unwrap_or_else(|e| panic!("{what}: reading /{path}: {e}"))
                        .to_vec()
                });
                (
                    path.as_bytes().to_vec(),
                    (node.file_type().as_char(), bytes),
                )
            })
            .collect()
    };
    let (ours, theirs) = (files(stored), files(original));
    let differ: Vec<String> = ours
        .keys()
        .chain(theirs.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|p| ours.get(*p) != theirs.get(*p))
        .map(|p| format!("/{}", String::from_utf8_lossy(p)))
        .collect();
    assert!(differ.is_empty(), "{what}: files differ: {differ:?}");
    assert!(!ours.is_empty(), "{what}: an empty tree");
}

fn statuses(report: &layercake::AddReport) -> Vec<(DiffId, LayerStatus)> {
    report.layers.clone()
}

/// The blobs the manifests of the index name for their bottom layer (the shared base).
fn base_blobs(root: &Path) -> BTreeSet<Digest> {
    let index: Index = read_json(&root.join("index.json"));
    index
        .manifests
        .iter()
        .map(|desc| {
            let manifest: Manifest = read_json(&blobs_dir(root).join(hex(desc.digest)));
            manifest.layers[0].digest
        })
        .collect()
}

fn hex(digest: Digest) -> String {
    digest.to_hex().to_string()
}

// ---------------------------------------------------------------------------------------
// 1. Persistence and sharing.

/// One load: the report, the progress heard, and how long it took.
fn load_with_progress(
    store: &mut Store,
    path: &Path,
    tag: &str,
) -> (layercake::AddReport, Vec<Progress>, Duration) {
    let started = Instant::now();
    let image = open_image(path);
    let mut heard = Vec::new();
    let report = store
        .add_with(
            &image,
            AddOptions::new()
                .tag(tag)
                .progress(|p: &Progress| heard.push(p.clone())),
        )
        .unwrap_or_else(|e| panic!("loading {}: {e}", path.display()));
    (report, heard, started.elapsed())
}

/// A file's identity and state: whether it was rewritten.
fn stamp(path: &Path) -> (u64, u64, i64, i64) {
    let m = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (m.ino(), m.len(), m.mtime(), m.mtime_nsec())
}

/// Loads ten images on one base from `source` files into a fresh store and checks what
/// each later load reports and writes; returns (bytes of the store, bytes of a store of
/// the first image only).
fn ten_on_one_base(
    tmp: &TempDir,
    images: &[Image],
    files: &[PathBuf],
    source: Source,
) -> (u64, u64) {
    let root = tmp.join(format!("store-{source:?}"));
    let one = tmp.join(format!("one-{source:?}"));
    {
        let mut store = Store::open(&one).unwrap();
        load_with_progress(&mut store, &files[0], "app:0");
    }
    let base_diff = images[0].diff_ids()[0];
    let mut base_blob = None;
    let mut first = Duration::ZERO;
    let mut later = Vec::new();
    let mut store = Store::open(&root).unwrap();
    for (n, (image, file)) in images.iter().zip(files).enumerate() {
        if n == 5 {
            // The rest in a fresh open, as a second `layercake load` would.
            store = Store::open(&root).unwrap();
        }
        let what = format!("{source:?} load {n}");
        let blobs_before = names(&blobs_dir(&root));
        let cache_before = names(&cache_dir(&root));
        let base_stamps = base_blob.as_ref().map(|b: &String| {
            let cache = cache_dir(&root).join(hex(base_diff.digest()));
            (
                stamp(&blobs_dir(&root).join(b)),
                cache.exists().then(|| stamp(&cache)),
            )
        });
        let (report, heard, took) = load_with_progress(&mut store, file, &format!("app:{n}"));
        let top_diff = image.diff_ids()[1];
        assert_eq!(report.image.id(), image.id(), "{what}: image id");
        let stored_top = report.image.layers().last().unwrap().blob().digest();
        let stored_base = report.image.layers().next().unwrap().blob().digest();
        if n == 0 {
            first = took;
            assert_eq!(
                statuses(&report),
                [(base_diff, LayerStatus::New), (top_diff, LayerStatus::New)],
                "{what}"
            );
            base_blob = Some(hex(stored_base));
            continue;
        }
        later.push(took);
        assert_eq!(
            statuses(&report),
            [
                (base_diff, LayerStatus::AlreadyExists),
                (top_diff, LayerStatus::New)
            ],
            "{what}: the base must already exist"
        );
        assert_eq!(Some(hex(stored_base)), base_blob, "{what}: the base blob");
        assert!(
            heard.contains(&Progress::Exists { diff_id: base_diff }),
            "{what}: no Progress::Exists for the base: {heard:?}"
        );
        let base_work: Vec<&Progress> = heard
            .iter()
            .filter(|p| match p {
                Progress::Copying { diff_id, .. } | Progress::Stored { diff_id, .. } => {
                    *diff_id == base_diff
                }
                _ => false,
            })
            .collect();
        assert!(
            base_work.is_empty(),
            "{what}: the base was copied: {base_work:?}"
        );
        assert!(
            heard
                .iter()
                .any(|p| matches!(p, Progress::Stored { diff_id, .. } if *diff_id == top_diff)),
            "{what}: no Progress::Stored for the top: {heard:?}"
        );
        // Nothing written for the base: blobs/ grows by the top, the config and the
        // manifest, exactly; the base blob (and its cached tar) is the same file, untouched.
        let blobs_after = names(&blobs_dir(&root));
        assert!(blobs_before.is_subset(&blobs_after), "{what}: a blob went");
        let grown: BTreeSet<String> = blobs_after.difference(&blobs_before).cloned().collect();
        let manifest = store
            .manifest_digest(image.id())
            .expect("a stored image has a manifest");
        let want: BTreeSet<String> = [hex(stored_top), hex(image.id().digest()), hex(manifest)]
            .into_iter()
            .collect();
        assert_eq!(grown, want, "{what}: blobs written (top, config, manifest)");
        let cache_after = names(&cache_dir(&root));
        let cache_grown: BTreeSet<String> =
            cache_after.difference(&cache_before).cloned().collect();
        let want_cache: BTreeSet<String> = match source {
            Source::Docker => BTreeSet::new(),
            Source::OciGzip => [hex(top_diff.digest())].into_iter().collect(),
        };
        assert_eq!(cache_grown, want_cache, "{what}: layer cache written");
        let base_stamps_after = {
            let cache = cache_dir(&root).join(hex(base_diff.digest()));
            (
                stamp(&blobs_dir(&root).join(base_blob.as_ref().unwrap())),
                cache.exists().then(|| stamp(&cache)),
            )
        };
        assert_eq!(
            base_stamps,
            Some(base_stamps_after),
            "{what}: the base's files were rewritten"
        );
    }
    drop(store);

    // A fresh open: every image, with its tag, reading the same files.
    let store = Store::open(&root).unwrap();
    assert_eq!(store.images().count(), images.len(), "{source:?}: images");
    for (n, image) in images.iter().enumerate() {
        let what = format!("{source:?} app:{n} after reopening");
        let stored = store.image(&format!("app:{n}")).unwrap();
        assert_eq!(stored.id(), image.id(), "{what}");
        assert_eq!(store.tags_of(image.id()), [format!("app:{n}")], "{what}");
        assert_same_listing(
            &tree_listing(&stored.tree().unwrap()),
            &tree_listing(&image.tree().unwrap()),
            &what,
        );
    }
    assert_verifies(&store, &format!("{source:?} store"));
    assert_ingest_empty(&root, &format!("{source:?} store"));
    let mean_later = later.iter().sum::<Duration>() / later.len() as u32;
    println!(
        "{source:?}: first load {first:?}, later loads {mean_later:?} on average ({:.1} %)",
        100.0 * mean_later.as_secs_f64() / first.as_secs_f64()
    );
    (disk_bytes(&root), disk_bytes(&one))
}

#[test]
fn ten_images_on_one_base_persist_with_tags_and_keep_the_base_once() {
    let tmp = TempDir::new("store-ten");
    let base = base(1, 6, 512 * 1024); // 3 MiB of varied bytes
    let images: Vec<Image> = (0..10)
        .map(|n| app(&base, &format!("ten{n}"), 2048))
        .collect();
    for source in [Source::Docker, Source::OciGzip] {
        let files: Vec<PathBuf> = images
            .iter()
            .enumerate()
            .map(|(n, image)| {
                let path = tmp.join(format!("app{n}-{source:?}.tar"));
                write_archive(&path, image, &format!("app:{n}"), source);
                path
            })
            .collect();
        let (ten, one) = ten_on_one_base(&tmp, &images, &files, source);
        println!(
            "{source:?}: 10 images {ten} bytes on disk, 1 image {one} bytes: {:.3}x",
            ten as f64 / one as f64
        );
        assert!(
            one > 3 << 20,
            "{source:?}: one image takes {one} bytes, less than its base"
        );
        assert!(
            ten * 10 <= one * 11,
            "{source:?}: ten images take {ten} bytes on disk, more than 1.1 x one image ({one})"
        );
    }

    // The same images from the other kind of file: every layer exists (by DiffId), and
    // the store's files are the same set.
    for (source, other) in [
        (Source::Docker, Source::OciGzip),
        (Source::OciGzip, Source::Docker),
    ] {
        let root = tmp.join(format!("store-{source:?}"));
        let before = names(&blobs_dir(&root));
        let mut store = Store::open(&root).unwrap();
        for (n, image) in images.iter().enumerate().take(3) {
            let path = tmp.join(format!("app{n}-{other:?}.tar"));
            let (report, _, _) = load_with_progress(&mut store, &path, &format!("again:{n}"));
            assert_eq!(report.image.id(), image.id());
            assert!(
                report
                    .layers
                    .iter()
                    .all(|(_, s)| *s == LayerStatus::AlreadyExists),
                "{other:?} file into the {source:?} store: {:?}",
                report.layers
            );
        }
        assert_eq!(
            names(&blobs_dir(&root)),
            before,
            "{other:?} files of stored images into the {source:?} store wrote blobs"
        );
    }
}

// ---------------------------------------------------------------------------------------
// 2. A failed load leaves the store as it was.

/// An image on `base` with two new layers: a good one, then one of `entries` files whose
/// first holds a marker (to find and break it in an image file).
fn two_new_layers(base: &Image, label: &str, entries: usize) -> Image {
    let mut rng = Rng(label.len() as u64 * 977);
    let good = Layer::builder()
        .file(format!("good-{label}"), rng.bytes(200 * 1024))
        .build()
        .unwrap();
    let mut bad = Layer::builder().dir("bad");
    for i in 0..entries.saturating_sub(1) {
        let mut contents = format!("MARKER-{label}-{i}-").into_bytes();
        contents.extend(rng.bytes(64 * 1024));
        bad = bad.file(format!("bad/{i}"), contents);
    }
    Image::builder()
        .base(base)
        .layer(good)
        .layer(bad.build().unwrap())
        .build()
        .unwrap()
}

/// Where a member's data lies in a tar: (offset, size) of the member named `name`.
fn member(tar_bytes: &[u8], name: &str) -> (usize, usize) {
    let mut archive = tar::Archive::new(tar_bytes);
    for entry in archive.entries().expect("a tar") {
        let entry = entry.expect("an entry");
        if entry.path().expect("a path").to_string_lossy() == name {
            return (
                entry.raw_file_position() as usize,
                entry.header().size().expect("size") as usize,
            );
        }
    }
    panic!("no member {name}");
}

/// An image file of `image` as bytes.
fn archive_bytes(image: &Image, tag: &str, writer: Writer) -> Vec<u8> {
    let mut out = Vec::new();
    writer.image(image, [tag]).write(&mut out).unwrap();
    out
}

#[test]
fn a_failed_load_leaves_the_store_byte_for_byte_as_it_was() {
    let tmp = TempDir::new("store-fail");
    let root = tmp.join("store");
    let base = base(2, 2, 256 * 1024);
    let first = app(&base, "first", 1024);
    {
        let mut store = Store::open(&root).unwrap();
        store
            .add_with(
                &open_image(&{
                    let p = tmp.join("first.tar");
                    write_archive(&p, &first, "first:1", Source::OciGzip);
                    p
                }),
                AddOptions::new().tag("first:1"),
            )
            .unwrap();
    }
    let before = snapshot(&root);
    assert!(before.keys().any(|p| p.starts_with("blobs/sha256")));

    // Each case: a name, and a load (open + add) that must fail.
    type Load = Box<dyn Fn(&mut Store) -> layercake::Result<()>>;
    let mut cases: Vec<(&str, Load)> = Vec::new();
    let add = |store: &mut Store, image: &Image| {
        store
            .add_with(image, AddOptions::new().tag("broken:1"))
            .map(|_| ())
    };

    // (a) a byte flipped in a layer blob of an oci-archive: plain, then gzip.
    for (label, compression) in [
        ("flip-plain", Compression::None),
        ("flip-gzip", Compression::Gzip),
    ] {
        let image = two_new_layers(&base, label, 6);
        let writer = Writer::new(Format::OciArchive).compression(compression);
        let mut bytes = archive_bytes(&image, "broken:1", writer);
        let blob = Archive::from_bytes(bytes.clone())
            .unwrap()
            .only_image()
            .unwrap()
            .layers()
            .last()
            .unwrap()
            .blob()
            .digest();
        let (at, size) = member(&bytes, &format!("blobs/sha256/{}", hex(blob)));
        bytes[at + size / 2] ^= 0x20;
        let path = tmp.join(format!("{label}.tar"));
        std::fs::write(&path, &bytes).unwrap();
        cases.push((
            label,
            Box::new(move |store: &mut Store| {
                let image = Archive::open(&path)?.only_image()?;
                add(store, &image)
            }),
        ));
    }

    // (b) a truncated docker-archive: cut inside the last layer, before opening it, and
    // after opening it (the add is what meets the end).
    let image = two_new_layers(&base, "truncated", 6);
    let bytes = archive_bytes(&image, "broken:1", Writer::new(Format::DockerArchive));
    let top = hex(image.diff_ids()[2].digest());
    let manifest: serde_json::Value = serde_json::from_slice(
        &bytes[{
            let (at, size) = member(&bytes, "manifest.json");
            at..at + size
        }],
    )
    .unwrap();
    let layer_name = manifest[0]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_owned())
        .find(|l| l.contains(&top))
        .unwrap_or_else(|| manifest[0]["Layers"][2].as_str().unwrap().to_owned());
    let (at, size) = member(&bytes, &layer_name);
    let cut = at + size / 2;
    let truncated = tmp.join("truncated.tar");
    std::fs::write(&truncated, &bytes[..cut]).unwrap();
    let path = truncated.clone();
    cases.push((
        "truncated before opening",
        Box::new(move |store: &mut Store| {
            let image = Archive::open(&path)?.only_image()?;
            add(store, &image)
        }),
    ));
    let whole = tmp.join("truncated-later.tar");
    std::fs::write(&whole, &bytes).unwrap();
    cases.push((
        "truncated after opening",
        Box::new(move |store: &mut Store| {
            let image = Archive::open(&whole)?.only_image()?;
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(&whole)
                .unwrap();
            file.set_len(cut as u64).unwrap();
            add(store, &image)
        }),
    ));

    // (c) a limit: 3 entries a layer; the good new layer has 1, the last one 6.
    let image = two_new_layers(&base, "limit", 6);
    let path = tmp.join("limit.tar");
    write_archive(&path, &image, "broken:1", Source::Docker);
    cases.push((
        "entries limit",
        Box::new(move |store: &mut Store| {
            let options =
                LoadOptions::new().read(ReadOptions::new().limits(Limits::default().entries(3)));
            let image = Archive::open_with(&path, &options)?.only_image()?;
            add(store, &image)
        }),
    ));

    for (what, load) in &cases {
        let mut store = Store::open(&root).unwrap();
        let result = load(&mut store);
        println!("{what}: {result:?}");
        assert!(result.is_err(), "{what}: the load succeeded");
        assert!(
            store.image("broken:1").is_err(),
            "{what}: the image is listed"
        );
        drop(store);
        assert_ingest_empty(&root, what);
        assert_same_snapshot(&before, &snapshot(&root), what);
        let store = Store::open(&root).unwrap();
        assert_eq!(store.images().count(), 1, "{what}");
        assert_verifies(&store, what);
        assert_same_snapshot(&before, &snapshot(&root), &format!("{what}, reopened"));
    }

    // The store is not wedged: the good file of the limit case loads with default limits.
    let mut store = Store::open(&root).unwrap();
    let image = open_image(&tmp.join("limit.tar"));
    store
        .add_with(&image, AddOptions::new().tag("fixed:1"))
        .unwrap();
    assert_eq!(store.image("fixed:1").unwrap().id(), image.id());
    assert_verifies(&store, "after the failures");
}

// ---------------------------------------------------------------------------------------
// Child processes: this test binary run again, one test, with `CHILD` set.

/// Set in a child: what it is to do (`loads`, `concurrent`).
const CHILD: &str = "LAYERCAKE_STORE_CHILD";
/// The store's root, for a child.
const CHILD_ROOT: &str = "LAYERCAKE_STORE_CHILD_ROOT";
/// Image files and tags to load, `FILE\tTAG` a line, for a child.
const CHILD_LOADS: &str = "LAYERCAKE_STORE_CHILD_LOADS";
/// For a concurrent child: the file it creates once the store is open, and the file it
/// waits for before loading.
const CHILD_READY: &str = "LAYERCAKE_STORE_CHILD_READY";
const CHILD_GO: &str = "LAYERCAKE_STORE_CHILD_GO";

/// Starts this test binary running test `test` as a child that loads `loads` into `root`;
/// its standard error goes to `log`.
fn spawn_child(
    test: &str,
    mode: &str,
    root: &Path,
    loads: &[(PathBuf, String)],
    extra: &[(&str, &Path)],
    log: &Path,
) -> std::process::Child {
    let lines: Vec<String> = loads
        .iter()
        .map(|(file, tag)| format!("{}\t{tag}", file.display()))
        .collect();
    let mut command = Command::new(std::env::current_exe().expect("the test binary"));
    command
        .args(["--exact", test, "--nocapture", "--test-threads", "1"])
        .env(CHILD, mode)
        .env(CHILD_ROOT, root)
        .env(CHILD_LOADS, lines.join("\n"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("child log"));
    for (key, value) in extra {
        command.env(key, value);
    }
    command.spawn().expect("starting a child test process")
}

/// In a child: the loads it was given.
fn child_loads_given() -> Vec<(PathBuf, String)> {
    std::env::var(CHILD_LOADS)
        .expect("a child is given its loads")
        .lines()
        .map(|line| {
            let (file, tag) = line.split_once('\t').expect("FILE\\tTAG");
            (PathBuf::from(file), tag.to_owned())
        })
        .collect()
}

/// In a child: opens the store and loads each file with its tag. Panics (exit non-zero)
/// on any error.
fn run_child(mode: &str) {
    let root = PathBuf::from(std::env::var_os(CHILD_ROOT).expect("a child is given a root"));
    let mut store = Store::open(&root).unwrap_or_else(|e| panic!("child: open: {e}"));
    if mode == "concurrent" {
        let ready = std::env::var_os(CHILD_READY).expect("ready file");
        std::fs::write(ready, b"").expect("ready file");
        let go = PathBuf::from(std::env::var_os(CHILD_GO).expect("go file"));
        let deadline = Instant::now() + Duration::from_secs(60);
        while !go.exists() {
            assert!(Instant::now() < deadline, "child: never told to go");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    for (file, tag) in child_loads_given() {
        let image = Archive::open(&file)
            .and_then(|a| a.only_image())
            .unwrap_or_else(|e| panic!("child: opening {}: {e}", file.display()));
        store
            .add_with(&image, AddOptions::new().tag(&tag))
            .unwrap_or_else(|e| panic!("child: loading {} as {tag}: {e}", file.display()));
        eprintln!("child: loaded {tag}");
    }
}

/// A child's log, for a failure message.
fn log_of(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// 3. kill -9 at random instants.

#[test]
fn kill_9_at_random_instants_during_loads_leaves_a_store_that_opens_verifies_and_loads() {
    if let Ok(mode) = std::env::var(CHILD) {
        return run_child(&mode);
    }
    const ROUNDS: usize = 20;
    const PER_ROUND: usize = 8;
    let seed = std::env::var("LAYERCAKE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    println!("kill -9 test: seed {seed} (LAYERCAKE_CRASH_SEED={seed} repeats the delays)");
    let mut rng = Rng(seed);
    let tmp = TempDir::new("store-crash");
    let root = tmp.join("store");
    let base = base(3, 2, 256 * 1024);
    // Every image a child may add, by id: its tag and the image itself.
    let mut expected: BTreeMap<layercake::ImageId, (String, Image)> = BTreeMap::new();
    let mut killed_mid_load = 0;
    let started = Instant::now();
    for round in 0..ROUNDS {
        let mut loads = Vec::new();
        for k in 0..PER_ROUND {
            let label = format!("r{round}-{k}");
            let image = app(&base, &label, 48 * 1024);
            let tag = format!("crash:{label}");
            let path = tmp.join(format!("{label}.tar"));
            let source = if (round + k) % 2 == 0 {
                Source::OciGzip
            } else {
                Source::Docker
            };
            write_archive(&path, &image, &tag, source);
            expected.insert(image.id(), (tag.clone(), image));
            loads.push((path, tag));
        }
        let delay = Duration::from_millis(rng.below(301));
        let what = format!("seed {seed}, round {round}, killed after {delay:?}");
        let log = tmp.join(format!("child-{round}.log"));
        let mut child = spawn_child(
            "kill_9_at_random_instants_during_loads_leaves_a_store_that_opens_verifies_and_loads",
            "loads",
            &root,
            &loads,
            &[],
            &log,
        );
        std::thread::sleep(delay);
        match child.try_wait().expect("try_wait") {
            Some(status) => assert!(
                status.success(),
                "{what}: the child failed on its own ({status}):\n{}",
                log_of(&log)
            ),
            None => {
                child.kill().expect("SIGKILL");
                killed_mid_load += 1;
            }
        }
        child.wait().expect("wait");
        let loaded = log_of(&log).matches("child: loaded").count();

        let mut store =
            Store::open(&root).unwrap_or_else(|e| panic!("{what}: Store::open failed: {e}"));
        assert_ingest_empty(&root, &what);
        assert_verifies(&store, &what);
        for image in store.images() {
            let (tag, original) = expected
                .get(&image.id())
                .unwrap_or_else(|| panic!("{what}: an image no load added: {}", image.id()));
            let tags = store.tags_of(image.id());
            assert!(
                tags.contains(tag),
                "{what}: {} listed without its tag {tag} (tags {tags:?})",
                image.id()
            );
            let tree = image
                .tree()
                .unwrap_or_else(|e| panic!("{what}: {tag} does not read: {e}"));
            assert_same_files(&tree, &original.tree().unwrap(), &format!("{what}: {tag}"));
        }
        for (_, tag) in loads.iter().take(loaded) {
            assert!(
                store.image(tag).is_ok(),
                "{what}: the child loaded {tag}, the store lost it"
            );
        }
        // Loading again succeeds, whatever the child left.
        for (file, tag) in &loads {
            let image = open_image(file);
            let report = store
                .add_with(&image, AddOptions::new().tag(tag))
                .unwrap_or_else(|e| panic!("{what}: loading {tag} again: {e}"));
            assert_eq!(report.image.id(), image.id(), "{what}: {tag}");
        }
        drop(store);
        let store = Store::open(&root).unwrap();
        for (_, tag) in &loads {
            let image = store
                .image(tag)
                .unwrap_or_else(|e| panic!("{what}: {tag}: {e}"));
            assert_same_files(
                &image.tree().unwrap(),
                &expected[&image.id()].1.tree().unwrap(),
                &format!("{what}: {tag} loaded again"),
            );
        }
        assert_verifies(&store, &format!("{what}, loaded again"));
        assert_ingest_empty(&root, &format!("{what}, loaded again"));
    }
    // What killed processes left (blobs stored but never named in the index) goes with
    // prune; what the index names stays.
    let mut store = Store::open(&root).unwrap();
    let leftovers = names(&blobs_dir(&root)).len() - referenced(&root).blobs.len();
    let pruned = store.prune().unwrap();
    assert!(
        pruned.images.is_empty(),
        "every image is tagged: {pruned:?}"
    );
    let refs = referenced(&root);
    assert_eq!(
        names(&blobs_dir(&root)),
        refs.blobs,
        "seed {seed}: blobs after prune"
    );
    assert_eq!(
        names(&cache_dir(&root)),
        refs.compressed_diff_ids,
        "seed {seed}: cache after prune"
    );
    assert_eq!(store.images().count(), expected.len());
    assert_verifies(&store, &format!("seed {seed}: after prune"));
    println!("kill -9 test: prune removed {leftovers} blobs killed loads left");
    println!(
        "kill -9 test: {ROUNDS} rounds, {killed_mid_load} killed while running, {:?}",
        started.elapsed()
    );
    assert!(
        killed_mid_load >= ROUNDS / 4,
        "only {killed_mid_load} of {ROUNDS} children were still running when killed"
    );
}

// ---------------------------------------------------------------------------------------
// 4. Two processes loading into one store at once.

#[test]
fn two_processes_loading_at_once_both_succeed_and_share_blobs() {
    if let Ok(mode) = std::env::var(CHILD) {
        return run_child(&mode);
    }
    let tmp = TempDir::new("store-concurrent");
    let base = base(4, 2, 512 * 1024);
    for (round, sources) in [
        [Source::OciGzip, Source::OciGzip],
        [Source::Docker, Source::Docker],
        [Source::Docker, Source::OciGzip],
    ]
    .into_iter()
    .enumerate()
    {
        let root = tmp.join(format!("store-{round}"));
        let go = tmp.join(format!("go-{round}"));
        let mut all = Vec::new();
        let mut children = Vec::new();
        for (c, source) in sources.into_iter().enumerate() {
            let mut loads = Vec::new();
            for k in 0..3 {
                let label = format!("c{round}-{c}-{k}");
                let image = app(&base, &label, 4096);
                let tag = format!("both/{label}:1");
                let path = tmp.join(format!("{label}.tar"));
                write_archive(&path, &image, &tag, source);
                all.push((tag.clone(), image));
                loads.push((path, tag));
            }
            let ready = tmp.join(format!("ready-{round}-{c}"));
            let log = tmp.join(format!("child-{round}-{c}.log"));
            let child = spawn_child(
                "two_processes_loading_at_once_both_succeed_and_share_blobs",
                "concurrent",
                &root,
                &loads,
                &[(CHILD_READY, &ready), (CHILD_GO, &go)],
                &log,
            );
            children.push((child, ready, log));
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while !children.iter().all(|(_, ready, _)| ready.exists()) {
            assert!(
                Instant::now() < deadline,
                "round {round}: children not ready"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        std::fs::write(&go, b"").unwrap();
        for (mut child, _, log) in children {
            let status = child.wait().expect("wait");
            assert!(
                status.success(),
                "round {round}: a concurrent load failed ({status}):\n{}",
                log_of(&log)
            );
        }

        let what = format!("round {round} ({sources:?})");
        let store = Store::open(&root).unwrap();
        assert_eq!(store.images().count(), all.len(), "{what}: images");
        for (tag, image) in &all {
            assert_eq!(
                store.image(tag).map(|i| i.id()).ok(),
                Some(image.id()),
                "{what}: {tag}"
            );
        }
        assert_verifies(&store, &what);
        assert_ingest_empty(&root, &what);
        let refs = referenced(&root);
        let mut ref_names = refs.ref_names.clone();
        ref_names.sort();
        let mut want: Vec<String> = all.iter().map(|(t, _)| format!("docker.io/{t}")).collect();
        want.sort();
        assert_eq!(ref_names, want, "{what}: index.json ref names");
        assert_eq!(
            names(&blobs_dir(&root)),
            refs.blobs,
            "{what}: blobs/sha256 is not exactly the blobs the manifests name"
        );
        assert_eq!(
            names(&cache_dir(&root)),
            refs.compressed_diff_ids,
            "{what}: the layer cache is not exactly the compressed layers' tars"
        );
        // One base blob for one kind of file. For two kinds (plain and gzip blobs of one
        // DiffId) it depends on timing: two if both loads took the base in at once, one if
        // the second found it (by DiffId) already stored; each is named by a manifest
        // (checked above), none is a leftover. Counted from the manifests, by hand.
        let blobs_of_base = base_blobs(&root);
        if sources[0] == sources[1] {
            assert_eq!(blobs_of_base.len(), 1, "{what}: base blobs");
        }
        println!("{what}: {} base blob(s)", blobs_of_base.len());
    }
}

// ---------------------------------------------------------------------------------------
// 5. skopeo and umoci read the store as it is.

#[test]
fn skopeo_and_umoci_read_the_store_as_it_is() {
    let tmp = TempDir::new("store-peers");
    let root = tmp.join("store");
    let base = base(5, 2, 128 * 1024);
    let app1 = app(&base, "peer-app", 4096);
    let plain = app(&base, "peer-plain", 4096);
    let other = app(&base, "peer-other", 4096);
    let mut store = Store::open(&root).unwrap();
    for (image, tag, source) in [
        (&app1, "app:1", Source::OciGzip),
        (&plain, "plain:1", Source::Docker),
        (&other, "example.com/team/app:1", Source::OciGzip),
    ] {
        let path = tmp.join(format!("{}.tar", tag.replace(['/', ':'], "_")));
        write_archive(&path, image, tag, source);
        store
            .add_with(&open_image(&path), AddOptions::new().tag(tag))
            .unwrap();
    }
    drop(store);
    let refs = referenced(&root);
    for name in [
        "docker.io/library/app:1",
        "docker.io/library/plain:1",
        "example.com/team/app:1",
    ] {
        assert!(
            refs.ref_names.iter().any(|r| r == name),
            "index.json ref names {:?} lack {name}",
            refs.ref_names
        );
    }
    for (image, reference) in [
        (&app1, "docker.io/library/app:1"),
        (&plain, "docker.io/library/plain:1"),
        (&other, "example.com/team/app:1"),
    ] {
        let out = tmp.join(format!("{}.docker.tar", reference.replace(['/', ':'], "_")));
        cmd("skopeo")
            .arg("copy")
            .arg(format!("oci:{}:{reference}", root.display()))
            .arg(format!("docker-archive:{}:app:1", out.display()))
            .run();
        let copied = open_image(&out);
        assert_eq!(copied.id(), image.id(), "skopeo copy of {reference}");
        let bundle = format!("bundle-{}", reference.replace(['/', ':'], "_"));
        let unpacked = common::umoci_unpack(&root, reference, &tmp, &bundle);
        assert_same_listing(
            &tree_listing(&image.tree().unwrap()),
            &unpacked,
            &format!("umoci unpack of {reference} from the store"),
        );
    }
    // The peers changed nothing the store minds.
    let store = Store::open(&root).unwrap();
    assert_eq!(store.images().count(), 3);
    assert_verifies(&store, "after skopeo and umoci");
}

// ---------------------------------------------------------------------------------------
// 6. verify names corruption; the cache may go; prune.

#[test]
fn verify_names_a_corrupt_blob_a_deleted_cache_is_rebuilt_and_prune_cleans() {
    let tmp = TempDir::new("store-verify");
    let root = tmp.join("store");
    let base = base(6, 2, 128 * 1024);
    let a = app(&base, "va", 64 * 1024);
    let b = app(&base, "vb", 64 * 1024);
    let mut store = Store::open(&root).unwrap();
    for (image, tag) in [(&a, "va:1"), (&b, "vb:1")] {
        let path = tmp.join(format!("{}.tar", tag.replace(':', "_")));
        write_archive(&path, image, tag, Source::OciGzip);
        store
            .add_with(&open_image(&path), AddOptions::new().tag(tag))
            .unwrap();
    }
    let a_top = store
        .image("va:1")
        .unwrap()
        .layers()
        .last()
        .unwrap()
        .blob()
        .digest();
    drop(store);
    assert_ne!(a_top, a.diff_ids()[1].digest(), "a gzip blob");
    let corrupt = PathBuf::from("blobs/sha256").join(hex(a_top));
    let garbage = b"these are not the bytes of the blob".repeat(100);
    std::fs::write(root.join(&corrupt), &garbage).unwrap();
    let b_cache = cache_dir(&root).join(hex(b.diff_ids()[1].digest()));
    assert!(b_cache.exists(), "a gzip layer has a cached tar");
    std::fs::remove_file(&b_cache).unwrap();

    let store = Store::open(&root).unwrap();
    let verification = store.verify().unwrap();
    println!("{verification:?}");
    assert_eq!(
        verification
            .problems
            .iter()
            .map(|p| p.path.clone())
            .collect::<Vec<_>>(),
        std::slice::from_ref(&corrupt),
        "verify names the corrupt blob, and only it: {:?}",
        verification.problems
    );
    let problem = &verification.problems[0];
    assert_eq!(problem.expected, a_top);
    assert_eq!(problem.actual, Some(Digest::sha256(&garbage)));

    // The cache may be deleted: the image reads its tree, from the blob, and the tar is
    // back.
    let stored_b = store.image("vb:1").unwrap();
    assert_same_listing(
        &tree_listing(&stored_b.tree().unwrap()),
        &tree_listing(&b.tree().unwrap()),
        "vb:1 with its cached tar deleted",
    );
    assert!(
        b_cache.exists(),
        "the cached tar of vb:1's top layer was not rebuilt"
    );
    drop(store);

    // Remove the corrupt image; prune; what no image uses is gone and verify is clean.
    let mut store = Store::open(&root).unwrap();
    store.remove("va:1").unwrap();
    store.prune().unwrap();
    assert!(!root.join(&corrupt).exists(), "the unused blob stayed");
    assert_verifies(&store, "after remove and prune");
    let refs = referenced(&root);
    assert_eq!(names(&blobs_dir(&root)), refs.blobs, "blobs after prune");
    assert_eq!(
        names(&cache_dir(&root)),
        refs.compressed_diff_ids,
        "cache after prune"
    );
    assert!(refs.blobs.contains(&hex(store
        .image("vb:1")
        .unwrap()
        .layers()
        .next()
        .unwrap()
        .blob()
        .digest())));
    let store = Store::open(&root).unwrap();
    assert_eq!(store.images().count(), 1);
    assert_same_files(
        &store.image("vb:1").unwrap().tree().unwrap(),
        &b.tree().unwrap(),
        "vb:1 after prune",
    );
}

// ---------------------------------------------------------------------------------------
// Two blobs of one layer: what two loads at once can leave (a plain and a gzip blob of one
// DiffId), made here deterministically by skopeo writing into the store's layout.

#[test]
fn usage_counts_every_blob_when_two_manifests_name_two_blobs_of_one_layer() {
    let tmp = TempDir::new("store-two-blobs");
    let root = tmp.join("store");
    let base = base(7, 2, 128 * 1024);
    let plain = app(&base, "two-plain", 4096);
    let gzip = app(&base, "two-gzip", 4096);
    let plain_file = tmp.join("plain.tar");
    write_archive(&plain_file, &plain, "plain:1", Source::Docker);
    let gzip_file = tmp.join("gzip.tar");
    write_archive(&gzip_file, &gzip, "gzip:1", Source::OciGzip);
    let mut store = Store::open(&root).unwrap();
    store
        .add_with(&open_image(&plain_file), AddOptions::new().tag("plain:1"))
        .unwrap();
    drop(store);
    cmd("skopeo")
        .arg("copy")
        .arg(format!("oci-archive:{}:1", gzip_file.display()))
        .arg(format!("oci:{}:docker.io/library/gzip:1", root.display()))
        .run();
    let base_blobs = base_blobs(&root);
    assert_eq!(base_blobs.len(), 2, "a plain and a gzip blob of the base");

    let store = Store::open(&root).unwrap();
    assert_eq!(store.image("gzip:1").unwrap().id(), gzip.id());
    assert_verifies(&store, "two blobs of one layer");
    let on_disk: u64 = names(&blobs_dir(&root))
        .iter()
        .map(|n| std::fs::metadata(blobs_dir(&root).join(n)).unwrap().len())
        .sum();
    assert_eq!(
        names(&blobs_dir(&root)),
        referenced(&root).blobs,
        "every blob is named"
    );
    let usage = store.usage().unwrap();
    assert_eq!(
        usage.stored_bytes, on_disk,
        "usage: stored bytes vs the bytes of blobs/sha256, every one named by a manifest"
    );
}

#[test]
fn usage_counts_what_no_image_uses_as_reclaimable_and_prune_deletes_it() {
    let dir = TempDir::new("reclaimable");
    let root = dir.join("root");
    let file = dir.join("app.tar");
    write_archive(
        &file,
        &app(&base(11, 2, 4096), "r", 512),
        "r:1",
        Source::OciGzip,
    );
    let mut store = Store::open(&root).unwrap();
    store
        .add_with(&open_image(&file), AddOptions::new().tag("r:1"))
        .unwrap();
    assert_eq!(store.usage().unwrap().reclaimable_bytes, 0);
    // What a load killed between storing a blob and naming it in the index leaves: a
    // well-formed blob no image uses.
    let stray = b"a blob no manifest names".to_vec();
    let name = hex(Digest::sha256(&stray));
    std::fs::write(blobs_dir(&root).join(&name), &stray).unwrap();
    let store_again = Store::open(&root).unwrap();
    let usage = store_again.usage().unwrap();
    assert_eq!(usage.reclaimable_bytes, stray.len() as u64);
    assert_verifies(&store_again, "a stray blob is not corrupt");
    let mut store = store_again;
    store.prune().unwrap();
    assert!(!blobs_dir(&root).join(&name).exists(), "prune deletes it");
    assert_eq!(store.usage().unwrap().reclaimable_bytes, 0);
    assert_eq!(
        store
            .image("r:1")
            .unwrap()
            .tree()
            .unwrap()
            .read("app/r")
            .unwrap(),
        "#!/bin/sh\necho r\n"
    );
}

// ---------------------------------------------------------------------------------------
// 7. What a push reads back: manifests and blobs as stored.

#[test]
fn manifests_and_blobs_read_back_exactly_as_stored() {
    let tmp = TempDir::new("store-readback");
    let root = tmp.join("store");
    let image = app(&base(9, 1, 64 * 1024), "readback", 4096);
    let path = tmp.join("readback.tar");
    write_archive(&path, &image, "app:1", Source::OciGzip);
    let mut store = Store::open(&root).unwrap();
    store
        .add_with(&open_image(&path), AddOptions::new().tag("app:1"))
        .unwrap();
    let index: Index = read_json(&root.join("index.json"));
    let listed = &index.manifests[0];
    let on_disk = std::fs::read(root.join("blobs/sha256").join(hex(listed.digest))).unwrap();

    for store in [store, Store::open(&root).unwrap()] {
        // By tag, by name@digest, by id: the manifest index.json lists, byte for byte.
        for reference in [
            "app:1".to_owned(),
            format!("app@{}", listed.digest),
            image.id().to_string(),
        ] {
            let (desc, bytes) = store.manifest(&reference).unwrap();
            assert_eq!(
                (desc.digest, desc.size),
                (listed.digest, listed.size),
                "{reference}"
            );
            assert_eq!(bytes, on_disk, "{reference}");
        }
        assert_eq!(store.manifest_digest(image.id()), Some(listed.digest));
        // Every blob it names: there, a range of its file, hashing to its name.
        let manifest: Manifest = serde_json::from_slice(&on_disk).unwrap();
        for desc in manifest.layers.iter().chain([&manifest.config]) {
            assert!(store.has_blob(desc.digest));
            let blob = store.blob(desc.digest).unwrap();
            assert!(blob.as_bytes().is_none(), "read by offset, not whole");
            assert_eq!(blob.len(), desc.size);
            assert_eq!(Digest::sha256(blob.to_bytes().unwrap()), desc.digest);
        }
        // Loaded, not pulled: no RepoDigests, as after `docker load`.
        assert!(store.inspect("app:1").unwrap().repo_digests.is_empty());
        let nowhere = Digest::sha256(b"nowhere");
        assert!(!store.has_blob(nowhere));
        assert!(matches!(
            store.blob(nowhere),
            Err(layercake::Error::MissingBlob { digest, .. }) if digest == nowhere
        ));
        assert!(matches!(
            store.manifest("app:2"),
            Err(layercake::Error::ImageNotFound { .. })
        ));
    }
}
