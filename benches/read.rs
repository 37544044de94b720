//! Reading a compressed layer against its floor: zlib-rs (or zstd) inflating the same blob
//! into nothing, on one core. layercake's read hashes the blob, inflates it, hashes the tar,
//! writes it to a temporary file and parses every header, with decompression on one core and
//! the rest on the other, so it should come close to the floor. The two are timed side by
//! side, alternating, in one run; the ratio is what counts (these machines are shared).
//!
//! Run: `cargo bench --bench read -- [BLOB...]` (default: a gzip blob made once from the
//! files under /usr/lib and /usr/share of this machine, about 256 MiB of tar, in the temp dir).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use layercake::{Compression, Layer};

mod inputs;

/// Rounds of each, alternating.
const ROUNDS: usize = 9;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let blobs: Vec<PathBuf> = if args.is_empty() {
        vec![default_blob()]
    } else {
        args.iter().map(PathBuf::from).collect()
    };
    for blob in &blobs {
        compare(blob);
    }
}

fn compare(blob: &Path) {
    let size = std::fs::metadata(blob).expect("the blob").len();
    let mut magic = [0u8; 4];
    std::fs::File::open(blob)
        .and_then(|mut f| f.read_exact(&mut magic))
        .expect("the blob's first bytes");
    let compression = Compression::detect(&magic);
    let (mut floor, mut ours) = (Vec::new(), Vec::new());
    let mut tar_bytes = 0;
    let mut entries = 0;
    for _ in 0..ROUNDS {
        let start = Instant::now();
        tar_bytes = inflate_only(blob, compression);
        floor.push(start.elapsed());
        let start = Instant::now();
        let layer = Layer::open(blob).expect("the layer reads");
        entries = layer.changeset().expect("read").entries().count();
        ours.push(start.elapsed());
    }
    let best = |times: &[Duration]| times.iter().min().copied().unwrap_or_default();
    let rate = |d: Duration| tar_bytes as f64 / d.as_secs_f64() / 1e6;
    let (floor, ours) = (best(&floor), best(&ours));
    println!(
        "{}: {compression} blob of {} MB, tar of {} MB, {entries} entries",
        blob.display(),
        size / 1_000_000,
        tar_bytes / 1_000_000
    );
    println!(
        "  inflate only ({compression}, one core): {:>7.3} s  {:>6.0} MB/s of tar",
        floor.as_secs_f64(),
        rate(floor)
    );
    println!(
        "  Layer::open (verify, spill, parse):  {:>7.3} s  {:>6.0} MB/s of tar",
        ours.as_secs_f64(),
        rate(ours)
    );
    println!(
        "  ratio floor/ours: {:.2} (best of {ROUNDS} each, alternating)",
        floor.as_secs_f64() / ours.as_secs_f64()
    );
}

/// Decompresses the blob into nothing; returns the uncompressed size.
fn inflate_only(blob: &Path, compression: Compression) -> u64 {
    let file = std::io::BufReader::with_capacity(256 << 10, std::fs::File::open(blob).unwrap());
    let mut decoder: Box<dyn Read> = match compression {
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(file)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(file).unwrap()),
        _ => Box::new(file),
    };
    let mut buf = vec![0u8; 256 << 10];
    let mut total = 0u64;
    loop {
        let n = decoder.read(&mut buf).unwrap();
        if n == 0 {
            return total;
        }
        total += n as u64;
    }
}

/// A realistic gzip layer, made once: a tar of this machine's /usr/lib and /usr/share files,
/// up to 256 MiB.
fn default_blob() -> PathBuf {
    let path = std::env::temp_dir().join("layercake-bench-read-usr.tar.gz");
    if path.exists() {
        return path;
    }
    let mut builder = Layer::builder();
    let mut total = 0u64;
    for root in ["/usr/lib", "/usr/share"] {
        for entry in inputs::files_under(Path::new(root)) {
            if total > 256 << 20 {
                break;
            }
            if let Ok(bytes) = std::fs::read(&entry) {
                total += bytes.len() as u64 + 512;
                builder = builder.file(entry.to_string_lossy().trim_start_matches('/'), bytes);
            }
        }
    }
    let layer = builder.build().expect("a layer of real files");
    let gz = layer.compress(Compression::Gzip, 6).expect("gzip");
    let mut out = std::fs::File::create(&path).expect("the blob file");
    out.write_all(&gz.blob().contents().to_bytes().expect("bytes"))
        .expect("written");
    path
}
