//! Memory of shared bases: peak RSS with one image on a large base, then with ten images on
//! the same base, each with its merged tree built; once with the base built in memory, once
//! (in a fresh process, so the first run's freed heap does not hide anything) with the same
//! base read from a docker-archive on disk, whose file contents then stay in the file.
//! Prints the figures; asserts nothing about time (this is a measurement, not a test).
//!
//! Run: `cargo bench --bench memory`

use layercake::archive::{Archive, Format, Writer};
use layercake::{Entry, Image, Layer, Store};

/// Peak and current resident set size of this process, in KiB (Linux `/proc`).
fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Ten images of one small layer each on `base`, added to a store with it, each tree
/// built. Prints RSS after the first and after all ten, above `empty` (the RSS before the
/// base existed).
fn ten_images_on(base: &Image, empty: u64) {
    let (_, start) = rss_kib();
    let mut store = Store::new();
    store.add(base).unwrap();
    let mut images = Vec::new();
    let mut after_one = (0, 0);
    for i in 0..10 {
        let image = Image::builder()
            .base(base)
            .layer(
                Layer::builder()
                    .file(format!("app/{i}"), format!("app {i}"))
                    .build()
                    .expect("layer"),
            )
            .build()
            .expect("image");
        let stored = store.add(&image).unwrap().image;
        stored.tree().expect("tree");
        images.push(stored);
        if i == 0 {
            after_one = rss_kib();
        }
    }
    let ((peak_one, rss_one), (peak_ten, rss_ten)) = (after_one, rss_kib());
    let usage = store.usage().unwrap();
    println!(
        "  store: {} images, {} layers, stored {} MiB ({} MiB without sharing)",
        usage.images,
        usage.layers,
        usage.stored_bytes >> 20,
        usage.unshared_bytes >> 20
    );
    println!(
        "  RSS with the base {} MiB; one image (with tree): {} MiB (peak {} MiB); ten images (with trees): {} MiB (peak {} MiB)",
        start >> 10,
        rss_one >> 10,
        peak_one >> 10,
        rss_ten >> 10,
        peak_ten >> 10
    );
    println!(
        "  nine more images on the same base, trees built, added {} KiB of RSS",
        rss_ten.saturating_sub(rss_one)
    );
    println!(
        "  ten images take {:.2}x the memory of one (layer bytes in memory included)",
        rss_ten.saturating_sub(empty) as f64 / rss_one.saturating_sub(empty).max(1) as f64
    );
}

/// The second run, in a process of its own: the base from the docker-archive at `path`.
fn from_disk(path: &str) {
    let (_, empty) = rss_kib();
    // Opening reads the index; the first tree reads the layer where it lies.
    let base = Archive::open(path)
        .expect("open the archive")
        .image("base:1")
        .expect("the base");
    println!(
        "base read from a docker-archive on disk (RSS before it {} MiB):",
        empty >> 10
    );
    ten_images_on(&base, empty);
    let layer = base.layers().next().expect("the base layer");
    assert!(
        layer.tar().expect("tar").as_bytes().is_none(),
        "the base layer's tar is read in place"
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--from-disk") {
        return from_disk(&args[at + 1]);
    }
    // A 256 MiB base of 65536 files of 4 KiB. The builder's inputs share one buffer, so the
    // only large allocation is the layer's tar (in memory, as every file is), which the
    // layer's files then point into.
    let (_, empty) = rss_kib();
    let body = bytes::Bytes::from(vec![7u8; 4 << 10]);
    let mut b = Layer::builder();
    for d in 0..256 {
        for f in 0..256 {
            b = b.entry(
                format!("usr/share/d{d:03}/f{f:03}"),
                Entry::file(body.clone()).mtime(1),
            );
        }
    }
    drop(body);
    let base_layer = b.build().expect("base layer");
    assert!(
        base_layer.tar().expect("tar").as_bytes().is_some(),
        "the base layer's tar is in memory, so RSS counts it"
    );
    let base = Image::builder().layer(base_layer).build().expect("base");
    let layer = base.layers().next().expect("the base layer");
    println!(
        "base layer: {} MiB of tar in {} files; RSS before it {} MiB",
        layer.size().expect("size") >> 20,
        layer.changeset().expect("changeset").entries().count(),
        empty >> 10
    );
    // From here on, what is measured is the store and the trees, not the building.
    println!("base built in memory:");
    ten_images_on(&base, empty);

    // The same base through a docker-archive on disk, measured by a fresh process.
    let path =
        std::env::temp_dir().join(format!("layercake-bench-memory-{}.tar", std::process::id()));
    let file = std::fs::File::create(&path).expect("create the archive");
    Writer::new(Format::DockerArchive)
        .image(&base, ["base:1"])
        .write(std::io::BufWriter::new(file))
        .expect("write the archive");
    drop(base);
    let status = std::process::Command::new(std::env::current_exe().expect("this bench"))
        .arg("--from-disk")
        .arg(&path)
        .status();
    std::fs::remove_file(&path).expect("remove the archive");
    assert!(status.expect("run the second process").success());
}
