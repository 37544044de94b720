//! Criterion benches for the core: lookup depth versus layer count, applying a layer on a
//! cached parent, diff and commit of a small change on a large image, and layer tar read and
//! write throughput.
//!
//! Run: `cargo bench --bench layers` (add `-- lookup` etc. to pick one group).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use layercake::{CommitOptions, Container, Entry, Image, Layer, Tree};

/// A layer of `dirs * files` small files under `prefix/dNNN/fNNN`.
fn wide_layer(prefix: &str, dirs: usize, files: usize, size: usize) -> Layer {
    let mut b = Layer::builder();
    let body = vec![b'x'; size];
    for d in 0..dirs {
        for f in 0..files {
            b = b.entry(
                format!("{prefix}/d{d:03}/f{f:04}"),
                Entry::file(body.clone()).mtime(1),
            );
        }
    }
    b.build().expect("bench layer")
}

/// An image of `n` layers, each adding 100 files in its own directory, plus one
/// `usr/lib/x86_64-linux-gnu/libc.so.6` at the bottom, looked up through all of them.
fn stacked_image(n: usize) -> Image {
    let mut builder = Image::builder().layer(
        Layer::builder()
            .file("usr/lib/x86_64-linux-gnu/libc.so.6", "ELF")
            .build()
            .expect("bottom layer"),
    );
    for i in 1..n {
        builder = builder.layer(wide_layer(&format!("layer{i:03}"), 10, 10, 16));
    }
    builder.build().expect("image")
}

fn lookup(c: &mut Criterion) {
    let mut group = c.benchmark_group("lookup");
    for n in [1usize, 10, 100] {
        let tree = stacked_image(n).tree().expect("tree");
        group.bench_with_input(BenchmarkId::new("layers", n), &tree, |b, tree| {
            b.iter(|| black_box(tree.lookup("usr/lib/x86_64-linux-gnu/libc.so.6").unwrap()))
        });
        group.bench_with_input(BenchmarkId::new("resolve_layers", n), &tree, |b, tree| {
            b.iter(|| black_box(tree.resolve("/usr/lib/x86_64-linux-gnu/libc.so.6").is_ok()))
        });
    }
    group.finish();
}

/// A 100k-file image: 100 directories of 1000 files of 64 bytes.
fn big_image() -> Image {
    Image::builder()
        .layer(wide_layer("data", 100, 1000, 64))
        .build()
        .expect("big image")
}

fn apply_on_cached_parent(c: &mut Criterion) {
    let mut group = c.benchmark_group("apply");
    group.sample_size(20);
    let base = big_image();
    let base_tree = base.tree().expect("tree");
    let top = Layer::builder()
        .file("data/d050/f0500", "changed")
        .file("etc/new", "new")
        .build()
        .expect("top");
    group.bench_function("small_layer_on_100k_files", |b| {
        b.iter(|| black_box(base_tree.apply(&top).expect("apply")))
    });
    let whole = base.layers().next().expect("layer").clone();
    group.bench_function("whole_100k_file_layer_on_empty", |b| {
        b.iter(|| black_box(Tree::new().apply(&whole).expect("apply")))
    });
    group.finish();
}

fn diff_and_commit(c: &mut Criterion) {
    let mut group = c.benchmark_group("commit");
    group.sample_size(20);
    let image = big_image();
    let mut container = Container::new(&image).unwrap();
    container.set_clock(2);
    container
        .write("data/d050/f0500", "changed")
        .expect("write");
    group.bench_function("diff_1_change_on_100k_files", |b| {
        b.iter(|| black_box(container.diff().expect("diff")))
    });
    let options = CommitOptions::new().commit(layercake::Commit::new().created(3));
    group.bench_function("commit_1_change_on_100k_files", |b| {
        b.iter(|| black_box(container.commit(&options).expect("commit")))
    });
    group.finish();
}

fn tar_throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("tar");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    for (name, dirs, files, size) in [
        ("64MiB_in_1k_files", 10usize, 100usize, 64 << 10),
        ("16MiB_in_64k_files", 64, 1000, 256),
    ] {
        let layer = wide_layer("data", dirs, files, size);
        // The tar in memory, as `Layer::from_tar` reads it in place.
        let tar = layer.tar().expect("tar").clone();
        assert!(tar.as_bytes().is_some(), "a built layer's tar is in memory");
        group.throughput(Throughput::Bytes(tar.len()));
        group.bench_with_input(BenchmarkId::new("read", name), &tar, |b, tar| {
            b.iter(|| black_box(Layer::from_tar(tar.clone()).expect("read")))
        });
        let tree = Tree::new().apply(&layer).expect("tree");
        group.bench_with_input(BenchmarkId::new("write_squash", name), &tree, |b, tree| {
            b.iter(|| black_box(Layer::squash(tree).expect("squash")))
        });
    }
    group.finish();
}

/// Import of a layer blob held in memory (hash blob, decompress into a temporary file, hash
/// tar, parse) against its floor: the same decompression and hashing into memory with no
/// parsing and no file at all, in the same run.
fn blob_import(c: &mut Criterion) {
    use layercake::Compression;
    use sha2::Digest as _;
    let mut group = c.benchmark_group("blob_import");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    // 64 MiB of pseudo-random text over a 16-letter alphabet: compresses about 2:1.
    let mut b = Layer::builder();
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for i in 0..1024 {
        let body: Vec<u8> = (0..64 * 1024)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                b"etaoinshrdlu \n.,"[(state % 16) as usize]
            })
            .collect();
        b = b.entry(format!("usr/share/doc/f{i:04}"), Entry::file(body).mtime(1));
    }
    let layer = b.build().expect("layer");
    for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let packed = layer
            .compress(compression, compression.default_level())
            .expect("compress");
        let blob = packed.blob().contents().to_bytes().expect("blob");
        let size = layer.size().expect("size");
        group.throughput(Throughput::Bytes(size));
        group.bench_with_input(
            BenchmarkId::new("layercake_from_blob", compression),
            &blob,
            |b, blob| b.iter(|| black_box(Layer::from_blob(blob.clone()).expect("read"))),
        );
        group.bench_with_input(
            BenchmarkId::new("floor_decompress_and_sha256", compression),
            &blob,
            |b, blob| {
                b.iter(|| {
                    let tar = match compression {
                        Compression::Gzip => {
                            let mut tar = Vec::with_capacity(size as usize);
                            std::io::copy(
                                &mut flate2::read::MultiGzDecoder::new(&blob[..]),
                                &mut tar,
                            )
                            .expect("gunzip");
                            tar
                        }
                        Compression::Zstd => zstd::stream::decode_all(&blob[..]).expect("unzstd"),
                        // A plain blob is its own tar: one hash is the whole floor.
                        _ => return black_box((sha2::Sha256::digest(&blob[..]), None)),
                    };
                    black_box((
                        sha2::Sha256::digest(&blob[..]),
                        Some(sha2::Sha256::digest(&tar)),
                    ))
                })
            },
        );
        if compression == Compression::None {
            continue;
        }
        group.bench_with_input(
            BenchmarkId::new("layercake_compress", compression),
            &layer,
            |b, layer| {
                b.iter(|| {
                    black_box(
                        layer
                            .compress(compression, compression.default_level())
                            .expect("compress"),
                    )
                })
            },
        );
    }
    group.finish();
}

criterion_group!(
    benches,
    lookup,
    apply_on_cached_parent,
    diff_and_commit,
    tar_throughput,
    blob_import
);
criterion_main!(benches);
