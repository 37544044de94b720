//! Layer blob compression: detection from magic bytes (never from media types, which lie),
//! one-pass decompression that hashes both sides, and compression at a chosen level.

use std::fmt;
use std::io::{self, Read, Write};

use bytes::Bytes;

use sha2::{Digest as _, Sha256};

use crate::digest::{Digest, HashingReader};
use crate::error::{Error, Result};
use crate::limits::Limits;

/// How a layer blob is compressed.
///
/// ```
/// use layercake::archive::Compression;
/// use layercake::Layer;
///
/// let layer = Layer::builder().file("big", vec![0u8; 1 << 16]).build()?;
/// let compression: Compression = "zstd".parse()?; // e.g. from a command-line flag
/// let packed = layer.compress(compression, compression.default_level())?;
/// assert_eq!(packed.blob().compression(), Compression::Zstd);
/// assert!(packed.blob().size() < layer.blob().size());
/// assert_eq!(packed.diff_id(), layer.diff_id(), "the same layer");
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Compression {
    /// A plain tar.
    #[default]
    None,
    /// gzip (RFC 1952), one member or several.
    Gzip,
    /// Zstandard, one frame or several.
    Zstd,
}

impl Compression {
    /// Detects the compression of a blob from its first bytes.
    ///
    /// ```
    /// use layercake::archive::Compression;
    /// assert_eq!(Compression::detect(&[0x1f, 0x8b, 8, 0]), Compression::Gzip);
    /// assert_eq!(Compression::detect(&[0x28, 0xb5, 0x2f, 0xfd]), Compression::Zstd);
    /// assert_eq!(Compression::detect(b"etc/\0\0\0"), Compression::None);
    /// ```
    pub fn detect(blob: &[u8]) -> Compression {
        if blob.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if blob.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// The OCI media type of a layer blob with this compression.
    ///
    /// ```
    /// use layercake::archive::Compression;
    /// assert_eq!(
    ///     Compression::Zstd.oci_layer_media_type(),
    ///     "application/vnd.oci.image.layer.v1.tar+zstd"
    /// );
    /// ```
    pub fn oci_layer_media_type(self) -> &'static str {
        match self {
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }

    /// The default level: 6 for gzip (as `gzip` and Docker), 3 for zstd.
    ///
    /// ```
    /// use layercake::archive::Compression;
    ///
    /// let tar = vec![0u8; 10_240];
    /// for c in [Compression::Gzip, Compression::Zstd] {
    ///     let packed = c.compress(&tar, c.default_level())?;
    ///     assert_eq!(Compression::detect(&packed), c);
    /// }
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn default_level(self) -> u32 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 6,
            Compression::Zstd => 3,
        }
    }

    /// Compresses `data` at `level` (gzip 0–9, zstd 1–22). A level out of range is clamped:
    /// gzip above 9 is 9, and zstd bounds its own levels (0 is its default).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the encoder fails (it writes to memory, so in practice it does not).
    ///
    /// ```
    /// use layercake::archive::Compression;
    /// let packed = Compression::Zstd.compress(&[0u8; 4096], 3)?;
    /// assert!(packed.len() < 100);
    /// assert_eq!(Compression::detect(&packed), Compression::Zstd);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn compress(self, data: &[u8], level: u32) -> Result<Bytes> {
        let fail = |e| Error::io(format_args!("{self} compression"), e);
        match self {
            Compression::None => Ok(Bytes::copy_from_slice(data)),
            Compression::Gzip => {
                let mut enc = flate2::write::GzEncoder::new(
                    Vec::with_capacity(data.len() / 3),
                    flate2::Compression::new(level.min(9)),
                );
                enc.write_all(data).map_err(fail)?;
                Ok(Bytes::from(enc.finish().map_err(fail)?))
            }
            Compression::Zstd => {
                let level = i32::try_from(level).unwrap_or(i32::MAX);
                let out = zstd::stream::encode_all(data, level).map_err(fail)?;
                Ok(Bytes::from(out))
            }
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        })
    }
}

impl std::str::FromStr for Compression {
    type Err = Error;

    fn from_str(s: &str) -> Result<Compression> {
        match s {
            "none" | "uncompressed" => Ok(Compression::None),
            "gzip" => Ok(Compression::Gzip),
            "zstd" => Ok(Compression::Zstd),
            _ => Err(Error::Unsupported {
                what: format!("compression `{s}`"),
            }),
        }
    }
}

/// A decompressed blob: the tar bytes and both digests, from one pass over the blob.
pub(crate) struct Unpacked {
    pub(crate) compression: Compression,
    pub(crate) blob_digest: Digest,
    pub(crate) tar: Bytes,
    pub(crate) tar_digest: Digest,
}

/// Decompresses a blob (any of the three forms), hashing the blob as it is read and the tar
/// as it is written, so no byte is read twice. Output stops one byte past the limits
/// (layer size, and the decompression ratio once past [`Limits::RATIO_FLOOR`]), so a bomb
/// costs at most the limit.
pub(crate) fn unpack(blob: &Bytes, limits: &Limits) -> Result<Unpacked> {
    let compression = Compression::detect(blob);
    Limits::check("blob bytes", blob.len() as u64, limits.blob_bytes)?;
    if compression == Compression::None {
        Limits::check(
            "uncompressed layer bytes",
            blob.len() as u64,
            limits.layer_bytes,
        )?;
        let digest = Digest::sha256(blob);
        return Ok(Unpacked {
            compression,
            blob_digest: digest,
            tar: blob.clone(),
            tar_digest: digest,
        });
    }
    let by_ratio = (blob.len() as u64)
        .saturating_mul(limits.ratio)
        .max(Limits::RATIO_FLOOR);
    let mut reader = HashingReader::new(&blob[..]);
    let mut tar = Vec::with_capacity(blob.len().saturating_mul(3));
    let mut tar_hash = Sha256::new();
    let copied = {
        let mut decoder: Box<dyn Read + '_> = match compression {
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(&mut reader)),
            Compression::Zstd => Box::new(
                zstd::stream::read::Decoder::new(&mut reader)
                    .map_err(|e| Error::io("starting zstd decompression", e))?,
            ),
            Compression::None => unreachable!("handled above"),
        };
        let stop = limits.layer_bytes.min(by_ratio).saturating_add(1);
        decompress_hashed(&mut decoder, &mut tar, &mut tar_hash, stop)
    };
    let copied = copied.map_err(|e| Error::InvalidBlob {
        digest: Digest::sha256(blob).to_string(),
        reason: format!("{compression} stream is corrupt or truncated: {e}"),
    })?;
    Limits::check("uncompressed layer bytes", copied, limits.layer_bytes)?;
    if copied > by_ratio {
        return Err(Error::LimitExceeded {
            limit: "decompression ratio",
            value: copied.div_ceil((blob.len() as u64).max(1)),
            max: limits.ratio,
        });
    }
    // Trailing bytes the decoder did not consume are garbage after the stream.
    if reader.len() != blob.len() as u64 {
        return Err(Error::InvalidBlob {
            digest: Digest::sha256(blob).to_string(),
            reason: format!(
                "{} bytes after the end of the {compression} stream",
                blob.len() as u64 - reader.len()
            ),
        });
    }
    Ok(Unpacked {
        compression,
        blob_digest: reader.digest(),
        tar: Bytes::from(tar),
        tar_digest: Digest::from_sha256(tar_hash.finalize().into()),
    })
}

/// Decompresses into `out` in 128 KiB steps, straight into its spare room (no bounce
/// buffer), hashing each step while it is still in cache; stops after `stop` bytes.
fn decompress_hashed(
    decoder: &mut dyn Read,
    out: &mut Vec<u8>,
    hash: &mut Sha256,
    stop: u64,
) -> io::Result<u64> {
    const STEP: usize = 128 << 10;
    loop {
        let start = out.len();
        if start as u64 >= stop {
            return Ok(start as u64);
        }
        let want = STEP.min((stop - start as u64) as usize);
        out.resize(start + want, 0);
        let n = loop {
            match decoder.read(&mut out[start..]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        let n = match n {
            Ok(n) => n,
            Err(e) => {
                out.truncate(start);
                return Err(e);
            }
        };
        out.truncate(start + n);
        if n == 0 {
            return Ok(start as u64);
        }
        hash.update(&out[start..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_digests() {
        let data = Bytes::from(vec![7u8; 100_000]);
        for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let blob = c.compress(&data, c.default_level()).unwrap();
            let out = unpack(&blob, &Limits::default()).unwrap();
            assert_eq!(out.compression, c);
            assert_eq!(out.tar, data);
            assert_eq!(out.tar_digest, Digest::sha256(&data));
            assert_eq!(out.blob_digest, Digest::sha256(&blob));
        }
    }

    #[test]
    fn multi_member_gzip_is_one_stream() {
        let a = Compression::Gzip.compress(b"hello ", 6).unwrap();
        let b = Compression::Gzip.compress(b"world", 6).unwrap();
        let blob = Bytes::from([&a[..], &b[..]].concat());
        assert_eq!(
            unpack(&blob, &Limits::default()).unwrap().tar,
            "hello world"
        );
    }

    #[test]
    fn truncation_and_trailing_garbage_are_errors() {
        let data = vec![1u8; 10_000];
        for c in [Compression::Gzip, Compression::Zstd] {
            let blob = c.compress(&data, 3).unwrap();
            let cut = Bytes::copy_from_slice(&blob[..blob.len() - 5]);
            assert!(
                matches!(
                    unpack(&cut, &Limits::default()),
                    Err(Error::InvalidBlob { .. })
                ),
                "{c} cut"
            );
            let junk = Bytes::from([&blob[..], b"junk!"].concat());
            assert!(
                matches!(
                    unpack(&junk, &Limits::default()),
                    Err(Error::InvalidBlob { .. })
                ),
                "{c} junk"
            );
        }
    }

    #[test]
    fn bombs_stop_at_the_limit() {
        let blob = Compression::Zstd.compress(&vec![0u8; 1 << 20], 3).unwrap();
        let small = Limits::default().layer_bytes(1000);
        assert!(matches!(
            unpack(&blob, &small),
            Err(Error::LimitExceeded {
                limit: "uncompressed layer bytes",
                ..
            })
        ));
        // 128 MiB of zeros compress far beyond 1024:1.
        let bomb = Compression::Zstd
            .compress(&vec![0u8; 128 << 20], 1)
            .unwrap();
        assert!(matches!(
            unpack(&bomb, &Limits::default()),
            Err(Error::LimitExceeded {
                limit: "decompression ratio",
                ..
            })
        ));
    }
}
