//! Layer codecs, below the model: the tar format (read under every limit, written in one
//! canonical form), compression (detected from magic bytes, streamed, gzip in parallel
//! blocks), and [`decode`], which turns a blob into a verified changeset in one pass.
//!
//! A compressed blob is decompressed on one thread while another hashes the tar, writes it
//! to a temporary file and parses its headers, so every byte is touched once and memory
//! stays a few chunks whatever the size of the layer. A plain tar is read where it lies.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{
    sync_channel, Receiver, RecvError, RecvTimeoutError, SyncSender, TryRecvError,
};
use std::sync::Arc;

use sha2::{Digest as _, Sha256};

use crate::changes::Changeset;
use crate::contents::{temporary_file, Contents, ContentsReader};
use crate::digest::{DiffId, Digest, HashingReader};
use crate::error::{Error, Result};
use crate::layer::ReadOptions;
use crate::limits::Limits;

pub(crate) mod compression;
pub(crate) mod gzip;
pub(crate) mod tar_read;
pub(crate) mod tar_write;

pub use compression::Compression;

/// The prefix of a whiteout file name (R2).
pub(crate) const WHITEOUT: &[u8] = b".wh.";
/// The name of an opaque marker (R3).
pub(crate) const OPAQUE: &[u8] = b".wh..wh..opq";
/// The prefix of AUFS meta files, ignored (R5).
pub(crate) const AUFS_META: &[u8] = b".wh..wh.";
/// The PAX key prefix of an extended attribute.
pub(crate) const PAX_XATTR: &str = "SCHILY.xattr.";

/// The size of the chunks a blob is decompressed, hashed and written in.
const CHUNK: usize = 256 << 10;
/// Chunks in flight between the decompressing thread and the parsing one.
const IN_FLIGHT: usize = 4;

/// How much more of a durable tar is written before it is synced again.
const SYNC_EVERY: u64 = 16 << 20;

/// How many uncompressed bytes the layers of one opened image file may produce together
/// ([`Limits::archive_bytes`]): shared by every layer read from it, charged as the bytes
/// come out of the decompressor, so many layers cannot add up past it either.
#[derive(Debug)]
pub(crate) struct Budget {
    used: AtomicU64,
    max: u64,
}

impl Budget {
    pub(crate) fn new(max: u64) -> Arc<Budget> {
        Arc::new(Budget {
            used: AtomicU64::new(0),
            max,
        })
    }

    fn charge(&self, bytes: u64) -> Result<()> {
        let used = self
            .used
            .fetch_add(bytes, Ordering::Relaxed)
            .saturating_add(bytes);
        Limits::check(
            "uncompressed bytes read from one image file",
            used,
            self.max,
        )
    }
}

/// Where a blob's bytes come from.
pub(crate) enum BlobInput<'a> {
    /// Bytes in memory or a range on disk, read where they lie when plain.
    Contents(&'a Contents),
    /// A stream, read once; a plain tar is copied to a temporary file as it passes.
    Reader(&'a mut (dyn Read + Send)),
    /// A compressed stream whose bytes the caller hashes as it feeds them (on its own thread,
    /// beside the download) and checks against [`Expected::blob`], which must be given: the
    /// decoder does not hash them again.
    Hashed(&'a mut (dyn Read + Send)),
}

/// What a blob must turn out to be.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Expected {
    /// The digest of the blob as stored (a manifest's layer descriptor).
    pub(crate) blob: Option<Digest>,
    /// The digest of the uncompressed tar (a config's `diff_ids`).
    pub(crate) diff_id: Option<DiffId>,
}

/// A blob read and verified: its compression and digest, the tar, and what the tar changes.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub(crate) compression: Compression,
    pub(crate) blob_digest: Digest,
    pub(crate) tar: Contents,
    pub(crate) diff_id: DiffId,
    pub(crate) changes: Changeset,
}

/// Reads a layer blob (plain, gzip or zstd, told apart by its magic bytes) in one pass:
/// hashes the blob, decompresses it, hashes the tar, writes it to a temporary file in
/// `options`' directory (a plain tar on disk or in memory is read where it is) and parses its
/// headers; then checks the digests against `expected`. File contents in the changeset are
/// ranges of the tar.
///
/// # Errors
///
/// [`Error::DigestMismatch`] for a blob or tar that is not what `expected` says (also when
/// the blob does not decompress, if its digest is wrong: the wrong blob is the likelier
/// story), [`Error::InvalidBlob`] for a corrupt or truncated stream or one with data after
/// it, [`Error::LimitExceeded`] past a limit or `budget`, then the errors of reading a tar.
pub(crate) fn decode(
    input: BlobInput<'_>,
    expected: &Expected,
    options: &ReadOptions,
    budget: Option<&Budget>,
) -> Result<Decoded> {
    let limits = &options.limits;
    let hashed_apart = matches!(input, BlobInput::Hashed(_));
    let (result, blob) = match input {
        BlobInput::Contents(blob) => {
            Limits::check("blob bytes", blob.len(), limits.blob_bytes)?;
            let mut magic = [0u8; 4];
            let n = blob.read_at(0, &mut magic)?;
            let result = match Compression::detect(&magic[..n]) {
                Compression::None => plain(blob, options, budget),
                c => compressed(blob.reader(), Whole::Contents(blob), c, options, budget),
            };
            (result, Some(blob))
        }
        BlobInput::Reader(reader) | BlobInput::Hashed(reader) => {
            // Who hashes the blob: the decoder, or the caller (for `Hashed`), which checks
            // it against the digest expected.
            let apart = match (hashed_apart, expected.blob) {
                (true, Some(digest)) => Some(digest),
                (true, None) => {
                    return Err(Error::InvalidBlob {
                        digest: None,
                        reason: "a blob hashed apart has no digest to be checked against".into(),
                    })
                }
                _ => None,
            };
            let mut magic = Vec::with_capacity(4);
            (&mut *reader)
                .take(4)
                .read_to_end(&mut magic)
                .map_err(|e| Error::io("reading a layer blob", e))?;
            let compression = Compression::detect(&magic);
            let stream = io::Cursor::new(magic).chain(reader);
            let result = match (compression, apart) {
                (Compression::None, None) => streamed_plain(stream, options, budget),
                (Compression::None, Some(digest)) => Err(Error::InvalidBlob {
                    digest: Some(digest),
                    reason: "a blob hashed apart must be compressed".into(),
                }),
                (c, None) => compressed(stream, Whole::Stream, c, options, budget),
                (c, Some(digest)) => {
                    compressed(stream, Whole::HashedApart(digest), c, options, budget)
                }
            };
            (result, None)
        }
    };
    let decoded = result.map_err(|e| explain(e, expected, blob))?;
    if let Some(want) = expected.blob {
        if decoded.blob_digest != want {
            return Err(mismatch(want, decoded.blob_digest));
        }
    }
    if let Some(want) = expected.diff_id {
        if decoded.diff_id != want {
            return Err(Error::DigestMismatch {
                what: format!("layer {want}"),
                expected: want.digest(),
                actual: decoded.diff_id.digest(),
            });
        }
    }
    Ok(decoded)
}

/// The error to give for a blob that failed to decode: a digest mismatch if the blob is not
/// the one its manifest names (the likelier story for a blob that does not decompress or
/// parse), and the blob's digest in an `InvalidBlob` that has none yet.
fn explain(e: Error, expected: &Expected, blob: Option<&Contents>) -> Error {
    let unnamed = matches!(&e, Error::InvalidBlob { digest: None, .. })
        || matches!(&e, Error::RatioExceeded { blob: None, .. });
    let actual = if expected.blob.is_some() || unnamed {
        blob.and_then(|blob| {
            let mut hash = HashingReader::new(blob.reader());
            io::copy(&mut hash, &mut io::sink()).ok()?;
            Some(hash.digest())
        })
    } else {
        None
    };
    match (expected.blob, actual) {
        (Some(want), Some(actual)) if want != actual => return mismatch(want, actual),
        _ => {}
    }
    match e {
        Error::InvalidBlob { reason, .. } if unnamed => Error::InvalidBlob {
            digest: expected.blob.or(actual),
            reason,
        },
        Error::RatioExceeded {
            blob: None,
            value,
            max,
            offset,
        } => Error::RatioExceeded {
            blob: expected.blob.or(actual),
            value,
            max,
            offset,
        },
        other => other,
    }
}

fn mismatch(want: Digest, actual: Digest) -> Error {
    Error::DigestMismatch {
        what: format!("layer blob {want}"),
        expected: want,
        actual,
    }
}

/// A plain tar in memory or on disk, read where it is.
fn plain(blob: &Contents, options: &ReadOptions, budget: Option<&Budget>) -> Result<Decoded> {
    Limits::check(
        "uncompressed layer bytes",
        blob.len(),
        options.limits.layer_bytes,
    )?;
    if let Some(budget) = budget {
        budget.charge(blob.len())?;
    }
    let contents_at = |offset: u64, len: u64| blob.slice(offset..offset + len);
    let (digest, changes) = match blob.as_bytes() {
        // In memory: one hash over the buffer, then the headers by offset.
        Some(bytes) => {
            let digest = Digest::sha256(bytes);
            let mut input = tar_read::Positioned::new(blob);
            (digest, tar_read::read(&mut input, options, &contents_at)?)
        }
        // On disk: one sequential read that hashes every byte while the headers are parsed.
        None => {
            let mut reader = blob.reader();
            let mut pipe = Pipe::new(Feed::Read(&mut reader), None, Guard::none());
            let changes = pipe.parse(options, &contents_at)?;
            (pipe.digest(), changes)
        }
    };
    Ok(Decoded {
        compression: Compression::None,
        blob_digest: digest,
        tar: blob.clone(),
        diff_id: DiffId::from_digest(digest),
        changes,
    })
}

/// A plain tar from a stream: copied to a temporary file as it is hashed and parsed.
fn streamed_plain(
    mut stream: impl Read,
    options: &ReadOptions,
    budget: Option<&Budget>,
) -> Result<Decoded> {
    let spill = temporary_file(&options.spill_dir(), "a layer tar read from a stream")?;
    let guard = Guard {
        layer_bytes: options.limits.layer_bytes,
        ratio: None,
        budget,
        consumed: 0,
    };
    let mut pipe = Pipe::new(Feed::Read(&mut stream), Some(spill.file()), guard);
    let contents_at = |offset, len| Contents::on_disk(spill.clone(), offset, len);
    let changes = pipe.parse(options, &contents_at)?;
    let digest = pipe.digest();
    let len = pipe.total;
    drop(pipe);
    Ok(Decoded {
        compression: Compression::None,
        blob_digest: digest,
        tar: Contents::on_disk(spill, 0, len),
        diff_id: DiffId::from_digest(digest),
        changes,
    })
}

/// One decompressed chunk and how many blob bytes the decoder had taken in by then.
type Chunk = Result<(Vec<u8>, u64)>;

/// A gzip or zstd blob: decompressed on a thread of its own; this thread hashes the tar,
/// writes it to a temporary file and parses it as the chunks arrive. A blob that can be read
/// again (`whole`) is hashed by this thread too, in the moments it waits for a chunk, so the
/// decompressing thread only decompresses; a stream is hashed as it is taken in.
/// Who hashes a compressed blob: the consumer in its idle moments (the blob is at hand),
/// the producer as it reads (a stream), or the caller (the digest it will check).
#[derive(Clone, Copy)]
enum Whole<'a> {
    Contents(&'a Contents),
    Stream,
    HashedApart(Digest),
}

fn compressed<R: Read + Send>(
    blob: R,
    whole: Whole<'_>,
    compression: Compression,
    options: &ReadOptions,
    budget: Option<&Budget>,
) -> Result<Decoded> {
    let limits = &options.limits;
    let spill = temporary_file(&options.spill_dir(), format!("a {compression} layer"))?;
    let (send, receive) = sync_channel::<Chunk>(IN_FLIGHT);
    // Chunk buffers go back to the decompressing thread once read, so none is allocated or
    // zeroed again.
    let (recycle, recycled) = sync_channel::<Vec<u8>>(IN_FLIGHT + 2);
    let blob_bytes = limits.blob_bytes;
    std::thread::scope(|scope| {
        let hash = matches!(whole, Whole::Stream);
        let producer = scope.spawn(move || {
            match produce(blob, compression, blob_bytes, hash, &send, &recycled) {
                Ok(produced) => produced,
                Err(e) => {
                    // The parser sees the error in place of the next chunk.
                    let _ = send.send(Err(e));
                    Produced::Stopped
                }
            }
        });
        // A tar bound for a store's cache is synced behind the writer, so that the commit's
        // sync finds little left to write. The syncer stops when `stop_syncing` is dropped
        // (at once, and on a panic too).
        let (stop_syncing, stopped) = std::sync::mpsc::channel::<()>();
        if options.durable {
            let file = spill.file();
            scope.spawn(move || {
                let mut synced = 0;
                while let Err(RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(std::time::Duration::from_millis(20))
                {
                    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
                    if len >= synced + SYNC_EVERY && file.sync_data().is_ok() {
                        synced = len;
                    }
                }
            });
        }
        let guard = Guard {
            layer_bytes: limits.layer_bytes,
            ratio: Some(limits.ratio),
            budget,
            consumed: 0,
        };
        let feed = Feed::Channel {
            receive,
            recycle,
            blob: match whole {
                Whole::Contents(whole) => Some(Box::new(BlobHash::new(whole))),
                _ => None,
            },
        };
        let mut pipe = Pipe::new(feed, Some(spill.file()), guard);
        let contents_at = |offset, len| Contents::on_disk(spill.clone(), offset, len);
        let parsed = pipe.parse(options, &contents_at);
        // Whatever the parser left (it reads to the end unless it failed) is drained, so the
        // hash covers every byte and the decoder finishes.
        let parsed = parsed.and_then(|changes| pipe.drain().map(|()| changes));
        let diff_id = pipe.digest();
        let len = pipe.total;
        // The blob's own hash, if this thread keeps it: what idle moments left undone.
        let apart = match (&parsed, &mut pipe.feed) {
            (
                Ok(_),
                Feed::Channel {
                    blob: Some(blob), ..
                },
            ) => Some(blob.finish()),
            _ => None,
        };
        drop(pipe);
        drop(stop_syncing);
        let produced = producer
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        let changes = parsed?;
        let blob_digest = match (produced, apart) {
            (Produced::Done(Some(digest)), _) => digest,
            (Produced::Done(None), Some(apart)) => apart?,
            (Produced::Done(None), None) => match whole {
                Whole::HashedApart(digest) => digest,
                _ => {
                    return Err(Error::InvalidBlob {
                        digest: None,
                        reason: "the blob was not hashed".into(),
                    })
                }
            },
            _ => {
                return Err(Error::InvalidBlob {
                    digest: None,
                    reason: "the decompressor stopped early".into(),
                })
            }
        };
        Ok(Decoded {
            compression,
            blob_digest,
            tar: Contents::on_disk(spill.clone(), 0, len),
            diff_id: DiffId::from_digest(diff_id),
            changes,
        })
    })
}

use compression::Decoder;

/// The hash of a blob that can be read again, kept by the parsing thread in the moments it
/// waits for the decompressor, so the decompressing thread only decompresses.
struct BlobHash {
    reader: ContentsReader,
    hash: Sha256,
    done: bool,
}

impl BlobHash {
    fn new(blob: &Contents) -> BlobHash {
        BlobHash {
            reader: blob.reader(),
            hash: Sha256::new(),
            done: false,
        }
    }

    /// Hashes the next piece of the blob.
    fn step(&mut self) -> Result<()> {
        let chunk = self
            .reader
            .fill_buf()
            .map_err(|e| Error::io("reading a layer blob", e))?;
        self.done = chunk.is_empty();
        self.hash.update(chunk);
        let n = chunk.len();
        self.reader.consume(n);
        Ok(())
    }

    /// Hashes the rest and gives the digest.
    fn finish(&mut self) -> Result<Digest> {
        while !self.done {
            self.step()?;
        }
        Ok(Digest::from_sha256(self.hash.clone().finalize().into()))
    }
}

/// How the decompressing thread ended.
enum Produced {
    /// At the end of the stream, with the blob's digest if it hashed the blob.
    Done(Option<Digest>),
    /// Early: the parser hung up (it has its own error), or this thread failed (and sent
    /// its error).
    Stopped,
}

/// Decompresses `blob` into chunks sent to the parser, checking `blob_bytes` as the blob is
/// taken in and that nothing follows the compressed stream, hashing the blob if `hash`.
fn produce<R: Read>(
    blob: R,
    compression: Compression,
    blob_bytes: u64,
    hash: bool,
    send: &SyncSender<Chunk>,
    recycled: &Receiver<Vec<u8>>,
) -> Result<Produced> {
    let corrupt = |e: io::Error| Error::InvalidBlob {
        digest: None,
        reason: format!("{compression} stream is corrupt or truncated: {e}"),
    };
    let buffered = BufReader::with_capacity(CHUNK, Taken::new(blob, hash));
    let mut decoder = Decoder::new(compression, buffered).map_err(corrupt)?;
    loop {
        let mut chunk = recycled.try_recv().unwrap_or_default();
        chunk.resize(CHUNK, 0);
        let n = read_full(&mut decoder, &mut chunk).map_err(corrupt)?;
        let consumed = decoder.get_ref().get_ref().len;
        Limits::check("blob bytes", consumed, blob_bytes)?;
        if n == 0 {
            break;
        }
        chunk.truncate(n);
        if send.send(Ok((chunk, consumed))).is_err() {
            return Ok(Produced::Stopped);
        }
    }
    // What the decoder did not take is not part of any stream.
    let mut rest = decoder.into_inner();
    let mut trailing = 0u64;
    loop {
        let n = rest.fill_buf().map_err(corrupt)?.len();
        if n == 0 {
            break;
        }
        trailing += n as u64;
        rest.consume(n);
    }
    if trailing > 0 {
        return Err(Error::InvalidBlob {
            digest: None,
            reason: format!("{trailing} bytes after the end of the {compression} stream"),
        });
    }
    Ok(Produced::Done(rest.into_inner().digest()))
}

/// A blob reader that counts what it gives, and hashes it if asked.
struct Taken<R> {
    inner: R,
    len: u64,
    hash: Option<Sha256>,
}

impl<R> Taken<R> {
    fn new(inner: R, hash: bool) -> Taken<R> {
        Taken {
            inner,
            len: 0,
            hash: hash.then(Sha256::new),
        }
    }

    fn digest(self) -> Option<Digest> {
        self.hash.map(|h| Digest::from_sha256(h.finalize().into()))
    }
}

impl<R: Read> Read for Taken<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.len += n as u64;
        if let Some(hash) = &mut self.hash {
            hash.update(&buf[..n]);
        }
        Ok(n)
    }
}

/// Fills `buf` from `reader` as far as it goes.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match reader.read(&mut buf[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// The next chunk from the decompressing thread, hashing a piece of the blob each time none
/// is waiting yet.
fn next_received(
    receive: &Receiver<Chunk>,
    blob: &mut Option<Box<BlobHash>>,
) -> Result<std::result::Result<Chunk, RecvError>> {
    loop {
        match receive.try_recv() {
            Ok(chunk) => return Ok(Ok(chunk)),
            Err(TryRecvError::Disconnected) => return Ok(Err(RecvError)),
            Err(TryRecvError::Empty) => match blob {
                Some(blob) if !blob.done => blob.step()?,
                _ => return Ok(receive.recv()),
            },
        }
    }
}

/// Where a [`Pipe`]'s chunks come from.
enum Feed<'a> {
    /// Read from a stream in chunks.
    Read(&'a mut dyn Read),
    /// Received from a decompressing thread, buffers sent back once read; while none is
    /// waiting, the blob is hashed a piece at a time, if it is this thread's to hash.
    Channel {
        receive: Receiver<Chunk>,
        recycle: SyncSender<Vec<u8>>,
        blob: Option<Box<BlobHash>>,
    },
}

/// The limits a [`Pipe`] checks as bytes pass.
struct Guard<'a> {
    layer_bytes: u64,
    /// The ratio limit, against the blob bytes taken in so far.
    ratio: Option<u64>,
    budget: Option<&'a Budget>,
    /// Blob bytes the decompressor had taken in by the last chunk.
    consumed: u64,
}

impl Guard<'_> {
    fn none() -> Guard<'static> {
        Guard {
            layer_bytes: u64::MAX,
            ratio: None,
            budget: None,
            consumed: 0,
        }
    }

    /// Checks the totals after a chunk of `len` bytes brought the output to `total`.
    fn check(&self, len: u64, total: u64) -> Result<()> {
        Limits::check("uncompressed layer bytes", total, self.layer_bytes)?;
        if let Some(ratio) = self.ratio {
            // Against what has come in so far, so a bomb stops soon after the floor
            // whatever follows it in the blob.
            let input = self.consumed.max(1);
            if total > Limits::RATIO_FLOOR && total > input.saturating_mul(ratio) {
                return Err(Error::RatioExceeded {
                    blob: None,
                    value: total.div_ceil(input),
                    max: ratio,
                    offset: self.consumed,
                });
            }
        }
        if let Some(budget) = self.budget {
            budget.charge(len)?;
        }
        Ok(())
    }
}

/// The tar as it comes in, chunk by chunk: every chunk is hashed, written to the temporary
/// file if there is one, and checked against the limits once, when it arrives; the parser
/// reads it through [`BufRead`] without a copy of the data.
struct Pipe<'a> {
    feed: Feed<'a>,
    chunk: Vec<u8>,
    pos: usize,
    hash: Sha256,
    total: u64,
    spill: Option<&'a File>,
    guard: Guard<'a>,
    /// A typed error behind the `io::Error` the parser saw.
    failure: Option<Error>,
}

impl<'a> Pipe<'a> {
    fn new(feed: Feed<'a>, spill: Option<&'a File>, guard: Guard<'a>) -> Pipe<'a> {
        Pipe {
            feed,
            chunk: Vec::new(),
            pos: 0,
            hash: Sha256::new(),
            total: 0,
            spill,
            guard,
            failure: None,
        }
    }

    fn digest(&self) -> Digest {
        Digest::from_sha256(self.hash.clone().finalize().into())
    }

    /// Parses the tar, giving the typed error behind an I/O failure of the pipe itself.
    fn parse(
        &mut self,
        options: &ReadOptions,
        contents_at: tar_read::ContentsAt<'_>,
    ) -> Result<Changeset> {
        let result = tar_read::read(&mut tar_read::Streamed(&mut *self), options, contents_at);
        result.map_err(|e| self.failure.take().unwrap_or(e))
    }

    /// Reads to the end.
    fn drain(&mut self) -> Result<()> {
        loop {
            let n = match self.fill_buf() {
                Ok(b) => b.len(),
                Err(e) => {
                    return Err(self
                        .failure
                        .take()
                        .unwrap_or_else(|| Error::io("reading a layer", e)))
                }
            };
            if n == 0 {
                return Ok(());
            }
            self.consume(n);
        }
    }

    /// Takes in the next chunk; `false` at the end.
    fn next_chunk(&mut self) -> Result<bool> {
        let chunk = match &mut self.feed {
            Feed::Read(reader) => {
                let mut chunk = std::mem::take(&mut self.chunk);
                chunk.resize(CHUNK, 0);
                let n = read_full(reader, &mut chunk)
                    .map_err(|e| Error::io("reading a layer blob", e))?;
                chunk.truncate(n);
                chunk
            }
            Feed::Channel {
                receive,
                recycle,
                blob,
            } => match next_received(receive, blob)? {
                Ok(Ok((chunk, consumed))) => {
                    self.guard.consumed = consumed;
                    let _ = recycle.try_send(std::mem::take(&mut self.chunk));
                    chunk
                }
                Ok(Err(e)) => return Err(e),
                // The decoder thread is done.
                Err(_) => Vec::new(),
            },
        };
        self.chunk = chunk;
        self.pos = 0;
        if self.chunk.is_empty() {
            return Ok(false);
        }
        let len = self.chunk.len() as u64;
        self.hash.update(&self.chunk);
        self.total += len;
        if let Some(mut file) = self.spill {
            file.write_all(&self.chunk)
                .map_err(|e| Error::io("writing a decompressed layer to a temporary file", e))?;
        }
        self.guard.check(len, self.total)?;
        Ok(true)
    }
}

impl BufRead for Pipe<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos >= self.chunk.len() {
            match self.next_chunk() {
                Ok(_) => {}
                Err(e) => {
                    self.failure = Some(e);
                    return Err(io::Error::other("the layer stream failed"));
                }
            }
        }
        Ok(&self.chunk[self.pos..])
    }

    fn consume(&mut self, amount: usize) {
        self.pos = (self.pos + amount).min(self.chunk.len());
    }
}

impl Read for Pipe<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

/// Reads a plain tar where it is: no compression is looked for (the caller says it is a
/// tar), nothing is copied.
pub(crate) fn decode_tar(tar: &Contents, options: &ReadOptions) -> Result<Decoded> {
    plain(tar, options, None)
}

/// Reads the headers of a tar this crate wrote and verified before (a store's layer cache):
/// by offset, seeking past file data, with no hashing. Limits still apply.
pub(crate) fn read_trusted_tar(tar: &Contents, options: &ReadOptions) -> Result<Changeset> {
    let contents_at = |offset: u64, len: u64| tar.slice(offset..offset + len);
    let mut input = tar_read::Positioned::new(tar);
    tar_read::read(&mut input, options, &contents_at)
}

/// Checks every name a changeset would write against the path limits, as the reader will
/// check them when the tar is read back: entries, markers as spelled (`.wh.NAME`), and link
/// targets.
pub(crate) fn check_names(changes: &Changeset, limits: &Limits) -> Result<()> {
    use crate::entry::EntryKind;
    for (path, entry) in &changes.entries {
        tar_read::check_name(path.as_bytes(), limits)?;
        match &entry.kind {
            EntryKind::Symlink(target) => Limits::check(
                "symlink target bytes",
                target.len() as u64,
                limits.path_bytes as u64,
            )?,
            EntryKind::Hardlink(target) => tar_read::check_name(target.as_bytes(), limits)?,
            _ => {}
        }
    }
    for path in &changes.whiteouts {
        let (parent, name) = crate::tree::split(path);
        let marker = parent.join_unchecked(&[WHITEOUT, name].concat());
        tar_read::check_name(marker.as_bytes(), limits)?;
    }
    for dir in &changes.opaques {
        tar_read::check_name(dir.join_unchecked(OPAQUE).as_bytes(), limits)?;
    }
    Ok(())
}
