//! Content addresses: [`Digest`] and the distinct identities built on it ([`DiffId`],
//! [`ChainId`], [`ImageId`]), plus readers and writers that hash bytes as they stream.
//!
//! Mixing a compressed blob's digest with an uncompressed layer's DiffId is the classic bug of
//! this field, so each meaning is its own type and converting between them is explicit.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use sha2::{Digest as _, Sha256, Sha512};

use crate::error::{Error, Result};

/// A hash algorithm that may appear in a digest.
///
/// ```
/// use layercake::digest::Algorithm;
/// use layercake::Digest;
///
/// let d: Digest = format!("sha512:{}", "ab".repeat(64)).parse()?;
/// assert_eq!(d.algorithm(), Algorithm::Sha512);
/// assert_eq!(d.as_bytes().len(), 64);
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// SHA-256, the algorithm of every digest Docker and OCI tools write.
    Sha256,
    /// SHA-512, allowed by the OCI image spec.
    Sha512,
}

impl Algorithm {
    /// The name used before the colon: `sha256` or `sha512`.
    ///
    /// ```
    /// assert_eq!(layercake::digest::Algorithm::Sha256.as_str(), "sha256");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn len(self) -> usize {
        match self {
            Algorithm::Sha256 => 32,
            Algorithm::Sha512 => 64,
        }
    }
}

/// The digest of some bytes: `sha256:<64 lowercase hex>`, a small `Copy` value.
///
/// # Example
///
/// ```
/// use layercake::Digest;
///
/// let d = Digest::sha256(b"");
/// assert_eq!(
///     d.to_string(),
///     "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
/// );
/// assert_eq!(d, d.to_string().parse()?);
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest {
    algorithm: Algorithm,
    bytes: [u8; 64],
}

impl Digest {
    /// The digest of the 1024 zero bytes of an empty tar: the DiffId of an empty layer.
    ///
    /// ```
    /// use layercake::{DiffId, Digest, Image, Layer};
    ///
    /// // Find the layers that change nothing (a `RUN` that wrote no file still makes one).
    /// let image = Image::builder()
    ///     .layer(Layer::builder().file("a", "").build()?)
    ///     .layer(Layer::builder().build()?)
    ///     .build()?;
    /// let empty = DiffId::from_digest(Digest::EMPTY_TAR);
    /// assert_eq!(image.diff_ids().iter().filter(|d| **d == empty).count(), 1);
    /// assert_eq!(
    ///     Digest::EMPTY_TAR.to_string(),
    ///     "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
    /// );
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub const EMPTY_TAR: Digest =
        Digest::sha256_from_hex("5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef");

    /// A SHA-256 digest from its 64 hex digits, at compile time (for the constants above).
    const fn sha256_from_hex(hex: &str) -> Digest {
        const fn nibble(c: u8) -> u8 {
            match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                _ => panic!("not a lowercase hex digit"),
            }
        }
        let hex = hex.as_bytes();
        assert!(hex.len() == 64, "64 hex digits");
        let mut bytes = [0u8; 64];
        let mut i = 0;
        while i < 32 {
            bytes[i] = nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]);
            i += 1;
        }
        Digest {
            algorithm: Algorithm::Sha256,
            bytes,
        }
    }

    /// Hashes `data` with SHA-256.
    ///
    /// ```
    /// let d = layercake::Digest::sha256(&[0u8; 1024]);
    /// assert_eq!(d, layercake::Digest::EMPTY_TAR);
    /// ```
    pub fn sha256(data: impl AsRef<[u8]>) -> Digest {
        Digest::from_sha256(Sha256::digest(data.as_ref()).into())
    }

    /// Wraps a raw SHA-256 value.
    ///
    /// ```
    /// let d = layercake::Digest::from_sha256([0; 32]);
    /// assert!(d.to_string().starts_with("sha256:0000"));
    /// ```
    pub fn from_sha256(hash: [u8; 32]) -> Digest {
        let mut bytes = [0; 64];
        bytes[..32].copy_from_slice(&hash);
        Digest {
            algorithm: Algorithm::Sha256,
            bytes,
        }
    }

    /// The algorithm named before the colon.
    ///
    /// ```
    /// use layercake::{digest::Algorithm, Digest};
    /// assert_eq!(Digest::sha256(b"x").algorithm(), Algorithm::Sha256);
    /// ```
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The raw hash bytes (32 for SHA-256).
    ///
    /// ```
    /// assert_eq!(layercake::Digest::sha256(b"x").as_bytes().len(), 32);
    /// ```
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.algorithm.len()]
    }

    /// The hex part alone, as a `Display` adaptor (no allocation until you format it).
    ///
    /// ```
    /// let d = layercake::Digest::sha256(b"");
    /// assert_eq!(d.to_hex().to_string().len(), 64);
    /// ```
    pub fn to_hex(&self) -> Hex<'_> {
        Hex(self.as_bytes())
    }

    /// Hashes `data` with this digest's algorithm and says whether it matches.
    ///
    /// ```
    /// let d = layercake::Digest::sha256(b"abc");
    /// assert!(d.verify(b"abc"));
    /// assert!(!d.verify(b"abd"));
    /// ```
    pub fn verify(&self, data: impl AsRef<[u8]>) -> bool {
        let data = data.as_ref();
        match self.algorithm {
            Algorithm::Sha256 => Sha256::digest(data).as_slice() == self.as_bytes(),
            Algorithm::Sha512 => Sha512::digest(data).as_slice() == self.as_bytes(),
        }
    }
}

/// Lowercase hex of a digest, returned by [`Digest::to_hex`].
///
/// ```
/// use layercake::Digest;
///
/// // Formats straight into a larger string, with no `String` in between.
/// let d = Digest::sha256(b"");
/// assert_eq!(
///     format!("blobs/sha256/{}", d.to_hex()),
///     "blobs/sha256/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
/// );
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Hex<'a>(&'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 128];
        let out = &mut buf[..self.0.len() * 2];
        hex::encode_to_slice(self.0, out).map_err(|_| fmt::Error)?;
        // hex output is ASCII.
        f.write_str(std::str::from_utf8(out).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.as_str(), self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Digest {
    type Err = Error;

    fn from_str(s: &str) -> Result<Digest> {
        let invalid = |reason| Error::InvalidDigest {
            input: s.chars().take(200).collect(),
            reason,
        };
        let (algo, hex_part) = s.split_once(':').ok_or_else(|| invalid("no `:`"))?;
        let algorithm = match algo {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            other => {
                let ok = !other.is_empty()
                    && other.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b)
                    });
                return Err(if ok {
                    Error::UnsupportedAlgorithm {
                        algorithm: other.to_owned(),
                    }
                } else {
                    invalid("bad algorithm name")
                });
            }
        };
        if hex_part.len() != algorithm.len() * 2 {
            return Err(invalid("wrong length"));
        }
        if !hex_part
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(invalid("not lowercase hex"));
        }
        let mut bytes = [0u8; 64];
        hex::decode_to_slice(hex_part, &mut bytes[..algorithm.len()])
            .map_err(|_| invalid("not lowercase hex"))?;
        Ok(Digest { algorithm, bytes })
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

macro_rules! identity {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(Digest);

        impl $name {
            /// Wraps a digest that is known to have this meaning.
            ///
            /// ```
            #[doc = concat!("use layercake::{Digest, ", stringify!($name), "};")]
            ///
            /// // Saying what a digest names is explicit: a `Digest` is never silently one.
            /// let digest = Digest::sha256(b"bytes");
            #[doc = concat!("let id = ", stringify!($name), "::from_digest(digest);")]
            /// assert_eq!(id.to_string(), digest.to_string());
            #[doc = concat!("let debug = format!(\"", stringify!($name), "({digest})\");")]
            /// assert_eq!(format!("{id:?}"), debug);
            /// ```
            pub fn from_digest(digest: Digest) -> Self {
                $name(digest)
            }

            /// The underlying digest.
            ///
            /// ```
            #[doc = concat!("use layercake::{Digest, ", stringify!($name), "};")]
            ///
            #[doc = concat!("let id = ", stringify!($name), "::from_digest(Digest::EMPTY_TAR);")]
            /// // Back to a plain digest, to check bytes against it.
            /// assert!(id.digest().verify([0u8; 1024]));
            /// # Ok::<(), layercake::Error>(())
            /// ```
            pub fn digest(&self) -> Digest {
                self.0
            }

            /// The hex part alone (see [`Digest::to_hex`]).
            ///
            /// ```
            #[doc = concat!("use layercake::{Digest, ", stringify!($name), "};")]
            ///
            #[doc = concat!("let id = ", stringify!($name), "::from_digest(Digest::EMPTY_TAR);")]
            /// // The short form `docker` shows.
            /// assert_eq!(&id.to_hex().to_string()[..12], "5f70bf18a086");
            /// # Ok::<(), layercake::Error>(())
            /// ```
            pub fn to_hex(&self) -> Hex<'_> {
                self.0.to_hex()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = Error;

            fn from_str(s: &str) -> Result<Self> {
                s.parse().map($name)
            }
        }
    };
}

identity! {
    /// The identity of a layer's contents: the digest of its *uncompressed* tar bytes.
    ///
    /// This is what an image config lists in `rootfs.diff_ids`. A compressed blob of the same
    /// layer has a different [`Digest`].
    ///
    /// ```
    /// use layercake::{DiffId, Layer};
    ///
    /// let empty = Layer::builder().build()?;
    /// assert_eq!(empty.diff_id().digest(), layercake::Digest::EMPTY_TAR);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    DiffId
}

identity! {
    /// The identity of a stack of layers, as the OCI image spec defines it:
    /// `ChainId(L0) = DiffId(L0)`, `ChainId(Ln) = sha256(ChainId(Ln-1) + " " + DiffId(Ln))`.
    ///
    /// Two images whose bottom layers have equal ChainIds share that whole prefix, and so the
    /// merged tree of it, which layercake builds once for images built on one another or
    /// kept in one [`Store`](crate::Store).
    ///
    /// ```
    /// use layercake::{ChainId, DiffId};
    ///
    /// let ids: Vec<DiffId> = [
    ///     "sha256:c6f988f4874bb0add23a778f753c65efe992244e148a1d2ec2a8b664fb66bbd1",
    ///     "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef",
    /// ]
    /// .iter()
    /// .map(|s| s.parse())
    /// .collect::<Result<_, _>>()?;
    /// let chain = ChainId::of(&ids).unwrap();
    /// assert_eq!(
    ///     chain.to_string(),
    ///     "sha256:c3191d32a37d7159b2e30830937d2e30268ad6c375a773a8994911a3aba9b93f"
    /// );
    /// # Ok::<(), layercake::Error>(())
    /// ```
    ChainId
}

identity! {
    /// The identity of an image: the digest of its config JSON bytes exactly as stored.
    ///
    /// ```
    /// use layercake::Image;
    ///
    /// let image = Image::builder().build()?;
    /// assert_eq!(image.id().digest(), layercake::Digest::sha256(image.config().as_bytes()));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    ImageId
}

impl ChainId {
    /// The ChainId of the first layer of a stack: its DiffId.
    ///
    /// ```
    /// use layercake::{ChainId, Image, Layer};
    ///
    /// let layer = Layer::builder().file("a", "1").build()?;
    /// let image = Image::builder().layer(layer.clone()).build()?;
    /// assert_eq!(ChainId::root(layer.diff_id()), image.chain_ids()[0]);
    /// assert_eq!(ChainId::root(layer.diff_id()).digest(), layer.diff_id().digest());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn root(diff_id: DiffId) -> ChainId {
        ChainId(diff_id.0)
    }

    /// The ChainId of this stack with one more layer on top.
    ///
    /// ```
    /// use layercake::{ChainId, Image, Layer};
    ///
    /// let a = Layer::builder().file("a", "1").build()?;
    /// let b = Layer::builder().file("b", "2").build()?;
    /// let image = Image::builder().layer(a.clone()).layer(b.clone()).build()?;
    /// // Extend a known stack by one layer without recomputing it from the bottom.
    /// let chain = ChainId::root(a.diff_id()).then(b.diff_id());
    /// assert_eq!(chain, image.chain_ids()[1]);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn then(&self, diff_id: DiffId) -> ChainId {
        let mut hasher = Sha256::new();
        hasher.update(self.to_string().as_bytes());
        hasher.update(b" ");
        hasher.update(diff_id.to_string().as_bytes());
        ChainId(Digest::from_sha256(hasher.finalize().into()))
    }

    /// The ChainId of a whole stack, bottom first; `None` for no layers.
    ///
    /// ```
    /// use layercake::{ChainId, Image, Layer};
    ///
    /// let image = Image::builder()
    ///     .layer(Layer::builder().file("a", "1").build()?)
    ///     .layer(Layer::builder().file("b", "2").build()?)
    ///     .build()?;
    /// assert_eq!(ChainId::of(&image.diff_ids()), image.chain_ids().last().copied());
    /// assert_eq!(ChainId::of(&[]), None);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn of(diff_ids: &[DiffId]) -> Option<ChainId> {
        let (first, rest) = diff_ids.split_first()?;
        Some(
            rest.iter()
                .fold(ChainId::root(*first), |chain, id| chain.then(*id)),
        )
    }
}

/// The running SHA-256 and byte count shared by [`HashingReader`] and [`HashingWriter`].
#[derive(Debug, Clone, Default)]
struct Tally {
    hasher: Sha256,
    len: u64,
}

impl Tally {
    fn add(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
        self.len += bytes.len() as u64;
    }

    fn digest(&self) -> Digest {
        Digest::from_sha256(self.hasher.clone().finalize().into())
    }
}

/// A `Read` pass-through that computes the SHA-256 of every byte read through it.
///
/// ```
/// use layercake::digest::HashingReader;
/// use std::io::Read;
///
/// let mut r = HashingReader::new(&b"hello"[..]);
/// let mut out = Vec::new();
/// r.read_to_end(&mut out)?;
/// assert_eq!(r.digest(), layercake::Digest::sha256(b"hello"));
/// assert_eq!(r.len(), 5);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct HashingReader<R> {
    inner: R,
    tally: Tally,
}

impl<R> HashingReader<R> {
    /// Wraps a reader.
    ///
    /// ```
    /// use layercake::digest::HashingReader;
    /// use layercake::Digest;
    ///
    /// // Copy a blob somewhere and learn its digest in the same pass.
    /// let mut reader = HashingReader::new(&b"layer bytes"[..]);
    /// let mut copy = Vec::new();
    /// std::io::copy(&mut reader, &mut copy)?;
    /// assert_eq!(reader.digest(), Digest::sha256(&copy));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            tally: Tally::default(),
        }
    }

    /// The digest of the bytes read so far.
    ///
    /// ```
    /// use layercake::digest::HashingReader;
    /// use layercake::Digest;
    ///
    /// let promised = Digest::sha256(b"blob");
    /// let mut reader = HashingReader::new(&b"blob"[..]);
    /// std::io::copy(&mut reader, &mut std::io::sink())?;
    /// assert_eq!(reader.digest(), promised, "what was streamed is what was promised");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn digest(&self) -> Digest {
        self.tally.digest()
    }

    /// How many bytes were read so far.
    ///
    /// ```
    /// use layercake::digest::HashingReader;
    /// use std::io::Read;
    ///
    /// let mut reader = HashingReader::new(&b"hello world"[..]);
    /// reader.read_exact(&mut [0u8; 5])?;
    /// assert_eq!(reader.len(), 5);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn len(&self) -> u64 {
        self.tally.len
    }

    /// Whether nothing was read yet.
    ///
    /// ```
    /// use layercake::digest::HashingReader;
    /// use layercake::Digest;
    ///
    /// let reader = HashingReader::new(&b"data"[..]);
    /// assert!(reader.is_empty());
    /// assert_eq!(reader.digest(), Digest::sha256(b""));
    /// ```
    pub fn is_empty(&self) -> bool {
        self.tally.len == 0
    }

    /// Gives back the wrapped reader.
    ///
    /// ```
    /// use layercake::digest::HashingReader;
    /// use std::io::{Cursor, Read};
    ///
    /// let mut reader = HashingReader::new(Cursor::new(b"abcdef".to_vec()));
    /// reader.read_exact(&mut [0u8; 3])?;
    /// assert_eq!(reader.into_inner().position(), 3);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.tally.add(&buf[..n]);
        Ok(n)
    }
}

/// A `Write` pass-through that computes the SHA-256 of every byte written through it.
///
/// ```
/// use layercake::digest::HashingWriter;
/// use std::io::Write;
///
/// let mut w = HashingWriter::new(Vec::new());
/// w.write_all(b"hello")?;
/// assert_eq!(w.digest(), layercake::Digest::sha256(b"hello"));
/// assert_eq!(w.into_inner(), b"hello");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct HashingWriter<W> {
    inner: W,
    tally: Tally,
}

impl<W> HashingWriter<W> {
    /// Wraps a writer.
    ///
    /// ```
    /// use layercake::digest::HashingWriter;
    /// use layercake::Digest;
    /// use std::io::Write;
    ///
    /// // Write a blob and get what its descriptor needs, digest and size, in one pass.
    /// let mut writer = HashingWriter::new(Vec::new());
    /// writer.write_all(b"{}")?;
    /// assert_eq!((writer.digest(), writer.len()), (Digest::sha256(b"{}"), 2));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            tally: Tally::default(),
        }
    }

    /// The digest of the bytes written so far.
    ///
    /// ```
    /// use layercake::digest::HashingWriter;
    /// use layercake::Digest;
    /// use std::io::Write;
    ///
    /// let mut writer = HashingWriter::new(std::io::sink());
    /// writer.write_all(b"hello ")?;
    /// writer.write_all(b"world")?;
    /// assert_eq!(writer.digest(), Digest::sha256(b"hello world"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn digest(&self) -> Digest {
        self.tally.digest()
    }

    /// How many bytes were written so far.
    ///
    /// ```
    /// use layercake::digest::HashingWriter;
    /// use std::io::Write;
    ///
    /// let mut writer = HashingWriter::new(std::io::sink());
    /// writer.write_all(&[0u8; 1024])?;
    /// assert_eq!(writer.len(), 1024);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn len(&self) -> u64 {
        self.tally.len
    }

    /// Whether nothing was written yet.
    ///
    /// ```
    /// use layercake::digest::HashingWriter;
    ///
    /// let writer = HashingWriter::new(Vec::<u8>::new());
    /// assert!(writer.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.tally.len == 0
    }

    /// Gives back the wrapped writer.
    ///
    /// ```
    /// use layercake::digest::HashingWriter;
    /// use std::io::Write;
    ///
    /// let mut writer = HashingWriter::new(Vec::new());
    /// writer.write_all(b"tar bytes")?;
    /// let digest = writer.digest();
    /// let bytes = writer.into_inner();
    /// assert!(digest.verify(&bytes));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.tally.add(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_id_known_answer() {
        let a: DiffId = "sha256:c6f988f4874bb0add23a778f753c65efe992244e148a1d2ec2a8b664fb66bbd1"
            .parse()
            .unwrap();
        let b = DiffId::from_digest(Digest::EMPTY_TAR);
        assert_eq!(ChainId::of(&[a]).unwrap().digest(), a.digest());
        assert_eq!(
            ChainId::of(&[a, b]).unwrap().to_string(),
            "sha256:c3191d32a37d7159b2e30830937d2e30268ad6c375a773a8994911a3aba9b93f"
        );
        assert_eq!(ChainId::of(&[]), None);
    }

    #[test]
    fn parse_rejects_bad_digests() {
        for bad in [
            "sha256",
            "sha256:",
            "sha256:abc",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ":e3b0",
            "SHA256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ] {
            assert!(
                matches!(bad.parse::<Digest>(), Err(Error::InvalidDigest { .. })),
                "{bad}"
            );
        }
        assert!(matches!(
            "blake3:abcd".parse::<Digest>(),
            Err(Error::UnsupportedAlgorithm { .. })
        ));
        let long = format!("sha512:{}", "ab".repeat(64));
        let d: Digest = long.parse().unwrap();
        assert_eq!(d.to_string(), long);
        assert_eq!(d.as_bytes().len(), 64);
    }

    #[test]
    fn serde_as_string() {
        let d = Digest::sha256(b"x");
        let json = serde_json::to_string(&DiffId::from_digest(d)).unwrap();
        assert_eq!(json, format!("\"{d}\""));
        let back: DiffId = serde_json::from_str(&json).unwrap();
        assert_eq!(back.digest(), d);
    }
}
