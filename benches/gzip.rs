//! Gzip throughput at level 6 on 64 MiB of real files: flate2's single-stream `GzEncoder` (one
//! core), against layercake's gzip (`Compression::Gzip`, blocks compressed in parallel on
//! every core). Also prints the compressed sizes, so the ratio cost of cutting blocks shows
//! next to the speed.
//!
//! Run: `cargo bench --bench gzip`

use std::io::{self, Write};
use std::time::Duration;

mod inputs;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use layercake::Compression;

/// How much input to compress.
const SIZE: usize = 64 << 20;
/// The level `docker push` and most registries' tools use.
const LEVEL: u32 = 6;

fn flate2_gzip(data: &[u8]) -> io::Result<u64> {
    let mut out = Counter(0);
    let mut gz = flate2::write::GzEncoder::new(&mut out, flate2::Compression::new(LEVEL));
    gz.write_all(data)?;
    gz.finish()?;
    Ok(out.0)
}

/// A sink that counts what it is given.
struct Counter(u64);

impl Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn gzip(c: &mut Criterion) {
    let data = inputs::real_bytes(SIZE);

    let one_stream = flate2_gzip(&data).expect("flate2");
    let blocks = Compression::Gzip
        .compress(&data, LEVEL)
        .expect("gzip")
        .len() as u64;
    eprintln!(
        "gzip -{LEVEL} of {} bytes: flate2 GzEncoder {one_stream} bytes ({:.2}%), \
         layercake {blocks} bytes ({:.2}%, {:+.3}% against flate2), {} cores",
        data.len(),
        100.0 * one_stream as f64 / data.len() as f64,
        100.0 * blocks as f64 / data.len() as f64,
        100.0 * (blocks as f64 / one_stream as f64 - 1.0),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );

    let mut group = c.benchmark_group("gzip");
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_with_input(
        BenchmarkId::new("flate2_gz_encoder_one_core", LEVEL),
        &data,
        |b, data| b.iter(|| flate2_gzip(data).expect("flate2")),
    );
    group.bench_with_input(
        BenchmarkId::new("layercake_every_core", LEVEL),
        &data,
        |b, data| b.iter(|| Compression::Gzip.compress(data, LEVEL).expect("gzip")),
    );
    group.finish();
}

criterion_group!(benches, gzip);
criterion_main!(benches);
