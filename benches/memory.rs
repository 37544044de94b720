//! Memory of shared bases: peak RSS with one image on a large base, then with ten images on
//! the same base, each with its merged tree built. Prints the figures; asserts nothing about
//! time (this is a measurement, not a test).
//!
//! Run: `cargo bench --bench memory`

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

fn main() {
    // A 256 MiB base of 65536 files of 4 KiB. The builder's inputs share one buffer, so the
    // only large allocation is the layer's tar, which the layer's files then point into.
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
    let base_layer = b.build().expect("base layer");
    // From here on, what is measured is the store and the trees, not the building.
    let (_, start) = rss_kib();
    let base = Image::builder().layer(base_layer).build().expect("base");
    let mut store = Store::new();
    store.add(&base);
    let first = Image::builder()
        .base(&base)
        .layer(
            Layer::builder()
                .file("app/0", "app 0")
                .build()
                .expect("layer"),
        )
        .build()
        .expect("image");
    let first = store.add(&first).image;
    first.tree().expect("tree");
    let (peak_one, rss_one) = rss_kib();

    let mut images = vec![first];
    for i in 1..10 {
        let image = Image::builder()
            .base(&base)
            .layer(
                Layer::builder()
                    .file(format!("app/{i}"), format!("app {i}"))
                    .build()
                    .expect("layer"),
            )
            .build()
            .expect("image");
        let stored = store.add(&image).image;
        stored.tree().expect("tree");
        images.push(stored);
    }
    let (peak_ten, rss_ten) = rss_kib();
    let usage = store.usage();
    println!(
        "base layer: {} MiB of tar in {} files; RSS before it {} MiB",
        base.layers().next().map_or(0, |l| l.size()) >> 20,
        base.layers().next().map_or(0, |l| l.entries().count()),
        empty >> 10
    );
    println!(
        "store: {} images, {} layers, stored {} MiB, unshared {} MiB",
        usage.images,
        usage.layers,
        usage.stored_bytes >> 20,
        usage.unshared_bytes >> 20
    );
    println!(
        "RSS with the base layer read {} MiB; one image (with tree): {} MiB (peak {} MiB); ten images (with trees): {} MiB (peak {} MiB)",
        start >> 10,
        rss_one >> 10,
        peak_one >> 10,
        rss_ten >> 10,
        peak_ten >> 10
    );
    println!(
        "nine more images on the same base, trees built, added {} KiB of RSS",
        rss_ten.saturating_sub(rss_one)
    );
    println!(
        "ten images take {:.2}x the memory of one (layer bytes included)",
        (rss_ten - empty) as f64 / (rss_one - empty).max(1) as f64
    );
}
