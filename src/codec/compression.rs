//! Layer blob compression: detection from magic bytes (never from media types, which lie),
//! streaming decoders, and streaming encoders (gzip in parallel blocks on several cores).

use std::fmt;
use std::io::{self, BufRead, Read, Write};

use bytes::Bytes;

use crate::codec::gzip;
use crate::error::{Error, Result};

/// How a layer blob is compressed.
///
/// ```
/// use layercake::{Compression, Layer};
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
    /// use layercake::Compression;
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
    /// use layercake::Compression;
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
    /// use layercake::Compression;
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

    /// Compresses `data` at `level` (gzip 0–9, zstd 1–22) into memory. A level out of range
    /// is clamped: gzip above 9 is 9, and zstd bounds its own levels (0 is its default).
    /// gzip is compressed in parallel blocks on every core, with the same output whatever
    /// the number of cores.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the encoder fails (it writes to memory, so in practice it does not).
    ///
    /// ```
    /// use layercake::Compression;
    /// let packed = Compression::Zstd.compress(&[0u8; 4096], 3)?;
    /// assert!(packed.len() < 100);
    /// assert_eq!(Compression::detect(&packed), Compression::Zstd);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn compress(self, data: &[u8], level: u32) -> Result<Bytes> {
        let fail = |e| Error::io(format_args!("{self} compression"), e);
        let mut out = Vec::with_capacity(data.len() / 3);
        if self == Compression::Gzip {
            gzip::compress(data, &mut out, level.min(9), gzip::default_threads()).map_err(fail)?;
        } else {
            let mut encoder = Encoder::new(self, level, &mut out)?;
            encoder.write_all(data).map_err(fail)?;
            encoder.finish()?;
        }
        Ok(Bytes::from(out))
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

/// A streaming compressor writing into `W`.
pub(crate) enum Encoder<W: Write> {
    None(W),
    Gzip(gzip::GzipWriter<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Encoder<W> {
    pub(crate) fn new(compression: Compression, level: u32, out: W) -> Result<Encoder<W>> {
        Ok(match compression {
            Compression::None => Encoder::None(out),
            Compression::Gzip => Encoder::Gzip(gzip::GzipWriter::new(
                out,
                level.min(9),
                gzip::default_threads(),
            )),
            Compression::Zstd => {
                let level = i32::try_from(level).unwrap_or(i32::MAX);
                let level = level.min(*zstd::compression_level_range().end());
                Encoder::Zstd(
                    zstd::stream::write::Encoder::new(out, level)
                        .map_err(|e| Error::io("starting zstd compression", e))?,
                )
            }
        })
    }

    /// Ends the stream and gives the writer back.
    pub(crate) fn finish(self) -> Result<W> {
        let fail = |e| Error::io("finishing compression", e);
        match self {
            Encoder::None(w) => Ok(w),
            Encoder::Gzip(g) => g.finish().map(|(w, _, _)| w).map_err(fail),
            Encoder::Zstd(z) => z.finish().map_err(fail),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::None(w) => w.write(buf),
            Encoder::Gzip(g) => g.write(buf),
            Encoder::Zstd(z) => z.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Encoder::None(w) => w.write_all(buf),
            Encoder::Gzip(g) => g.write_all(buf),
            Encoder::Zstd(z) => z.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::None(w) => w.flush(),
            Encoder::Gzip(g) => g.flush(),
            Encoder::Zstd(z) => z.flush(),
        }
    }
}

/// A streaming decompressor over a buffered reader of the blob.
pub(crate) enum Decoder<R: BufRead> {
    Gzip(Box<flate2::bufread::MultiGzDecoder<R>>),
    Zstd(zstd::stream::read::Decoder<'static, R>),
}

impl<R: BufRead> Decoder<R> {
    /// A decoder for a compressed blob (`compression` is not `None`).
    pub(crate) fn new(compression: Compression, input: R) -> io::Result<Decoder<R>> {
        match compression {
            Compression::Gzip => Ok(Decoder::Gzip(Box::new(
                flate2::bufread::MultiGzDecoder::new(input),
            ))),
            Compression::Zstd => Ok(Decoder::Zstd(zstd::stream::read::Decoder::with_buffer(
                input,
            )?)),
            Compression::None => unreachable!("a plain blob needs no decoder"),
        }
    }

    /// The blob reader under the decoder.
    pub(crate) fn get_ref(&self) -> &R {
        match self {
            Decoder::Gzip(d) => d.get_ref(),
            Decoder::Zstd(d) => d.get_ref(),
        }
    }

    /// The blob reader, after the end of the compressed stream.
    pub(crate) fn into_inner(self) -> R {
        match self {
            Decoder::Gzip(d) => d.into_inner(),
            Decoder::Zstd(d) => d.finish(),
        }
    }
}

impl<R: BufRead> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Gzip(d) => d.read(buf),
            Decoder::Zstd(d) => d.read(buf),
        }
    }
}
