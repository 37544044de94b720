//! A parallel gzip encoder (pigz's method): one standard gzip member, its deflate data
//! compressed in fixed blocks on several threads.
//!
//! The input is cut into blocks of [`BLOCK_SIZE`] bytes. Each block is compressed on its own
//! as raw deflate, primed with the 32 KiB of input before it as a dictionary (so matches
//! reach back across the cut and the ratio stays within a fraction of a percent of one
//! stream), and ended with a sync flush: an empty stored block that leaves the data
//! byte-aligned and not final, so the compressed blocks simply concatenate. The last block
//! is ended with a final block instead. Each worker also computes its block's CRC-32; the
//! writing thread combines them in order and appends the RFC 1952 trailer.
//!
//! The output bytes depend only on the input, the level and the block size: never on the
//! thread count, the sizes of the writes that delivered the input, or timing. That matters
//! because a compressed layer is a content-addressed blob, named by its sha256.
//!
//! Memory stays bounded whatever the input's size: at most `2 * threads` blocks are handed
//! out and not yet written, plus the block being filled.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::panic::{self, AssertUnwindSafe};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

/// Bytes of input per block. Twice pigz's default: each block costs a fresh compressor and
/// hashing its 32 KiB dictionary, which at 128 KiB is some 8% more work than one stream
/// (counted in instructions at level 6), at 256 KiB some 4%, at 1 MiB some 2%. With two
/// cores the first caps the speed-up near 1.85, this one near 1.9, while a 1 MiB layer
/// still makes four blocks and memory stays small (`2 * threads` blocks of about 0.6 MiB,
/// input and output). The ratio barely moves: within 0.03% of one stream at all three.
const BLOCK_SIZE: usize = 256 << 10;

/// Deflate's window: how much input before a block is given to it as a dictionary.
const WINDOW: usize = 32 << 10;

/// The gzip header: no name, no comment, mtime 0, OS 255 ("unknown", as Go's
/// `compress/gzip` and flate2 write it). Byte 8 (XFL) is set from the level.
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

/// Compresses `input` to `output` as one gzip member at `level` (0..=9), splitting the
/// input into blocks compressed on up to `threads` threads. Returns (bytes read, bytes
/// written). The output is the same for every `threads`; `0` counts as 1.
///
/// # Errors
///
/// Any error from `input` or `output`, as it was; an error if a worker thread panicked.
///
/// # Panics
///
/// If `level` is above 9.
pub(crate) fn compress<R: Read, W: Write>(
    mut input: R,
    output: W,
    level: u32,
    threads: usize,
) -> io::Result<(u64, u64)> {
    let mut writer = GzipWriter::new(output, level, threads);
    writer.fill_from(&mut input)?;
    let (_, read, written) = writer.finish()?;
    Ok((read, written))
}

/// The number of threads [`compress`] should use on this machine: the available
/// parallelism, at least 1.
pub(crate) fn default_threads() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

/// A [`Write`] adaptor that gzips what is written to it into `output`, compressing blocks on
/// several threads; for producers that push, such as a tar writer.
///
/// Call [`finish`](GzipWriter::finish) at the end: dropping the writer leaves the gzip
/// member unfinished (it stops the worker threads and writes nothing more).
///
/// [`flush`](Write::flush) writes out every block handed to the workers, but not the block
/// still being filled: cutting a block there would make the bytes depend on when flushes
/// happen.
pub(crate) struct GzipWriter<W: Write> {
    /// The block being filled: `dict_len` bytes of dictionary, then the block's input up to
    /// `end`. Always `WINDOW + block_size` long (zeroed once, when allocated).
    block: Vec<u8>,
    dict_len: usize,
    end: usize,
    block_size: usize,
    level: u32,
    /// Blocks handed to the engine so far.
    sent: u64,
    /// Bytes of input taken so far.
    read: u64,
    engine: Engine,
    sink: Sink<W>,
    /// Set by the first error: the gzip member is then broken, so every later call fails.
    failed: bool,
    /// Test hook: the worker given this block panics.
    #[cfg(test)]
    panic_at: Option<u64>,
}

/// Where blocks are compressed.
enum Engine {
    /// One thread: each block is compressed on the caller's thread when it is handed over.
    Inline,
    /// Worker threads, taking blocks from a shared queue.
    Pool(Pool),
}

/// Worker threads and the two queues between them and the writing thread.
struct Pool {
    /// `None` once shutting down: the workers stop when the queue is closed and empty.
    jobs: Option<mpsc::Sender<Job>>,
    done: mpsc::Receiver<Done>,
    workers: Vec<thread::JoinHandle<()>>,
    /// Blocks handed out and not yet written, at most.
    limit: u64,
}

/// A block to compress.
struct Job {
    index: u64,
    /// The dictionary (`dict_len` bytes), then the block, up to `end`.
    input: Vec<u8>,
    dict_len: usize,
    end: usize,
    last: bool,
    /// A buffer to compress into (recycled: its contents are garbage).
    output: Vec<u8>,
    #[cfg(test)]
    panic: bool,
}

/// A compressed block, with its buffers coming back for reuse.
struct Done {
    index: u64,
    input: Vec<u8>,
    /// The compressed block is `output[..output_len]` (the buffer is kept at its length, so
    /// that reusing it need not zero it again).
    output: Vec<u8>,
    output_len: usize,
    /// The CRC-32 of the block's input (not of the dictionary).
    crc: Crc,
    result: io::Result<()>,
}

/// The writing end: puts compressed blocks out in order.
struct Sink<W> {
    output: W,
    xfl: u8,
    /// Blocks written so far; the next to write has this index.
    written: u64,
    /// Blocks that came back before one ahead of them.
    waiting: BTreeMap<u64, Done>,
    crc: Crc,
    bytes_out: u64,
    /// Recycled buffers.
    spare_inputs: Vec<Vec<u8>>,
    spare_outputs: Vec<Vec<u8>>,
    /// The most blocks ever handed out and not yet written (for the memory-bound test).
    #[cfg(test)]
    peak_in_flight: u64,
}

impl<W: Write> GzipWriter<W> {
    /// A writer that gzips into `output` at `level` (0..=9) on up to `threads` threads
    /// (`0` counts as 1; with 1, no thread is started and blocks are compressed on the
    /// caller's thread).
    ///
    /// # Panics
    ///
    /// If `level` is above 9.
    pub(crate) fn new(output: W, level: u32, threads: usize) -> Self {
        Self::with_block_size(output, level, threads, BLOCK_SIZE)
    }

    /// [`new`](Self::new) with another block size (tests use small blocks to cut many).
    fn with_block_size(output: W, level: u32, threads: usize, block_size: usize) -> Self {
        assert!(level <= 9, "gzip level {level} is not in 0..=9");
        assert!(block_size > 0, "gzip block size is 0");
        let engine = match threads {
            0 | 1 => Engine::Inline,
            n => Pool::start(level, n).map_or(Engine::Inline, Engine::Pool),
        };
        let xfl = match level {
            9 => 2,
            0 | 1 => 4,
            _ => 0,
        };
        GzipWriter {
            block: vec![0; WINDOW + block_size],
            dict_len: 0,
            end: 0,
            block_size,
            level,
            sent: 0,
            read: 0,
            engine,
            sink: Sink {
                output,
                xfl,
                written: 0,
                waiting: BTreeMap::new(),
                crc: Crc::new(),
                bytes_out: 0,
                spare_inputs: Vec::new(),
                spare_outputs: Vec::new(),
                #[cfg(test)]
                peak_in_flight: 0,
            },
            failed: false,
            #[cfg(test)]
            panic_at: None,
        }
    }

    /// Ends the gzip member: compresses and writes the last block, writes the trailer,
    /// flushes the output and stops the workers. Returns the output, the bytes taken and
    /// the bytes written.
    ///
    /// # Errors
    ///
    /// An error from the output, or from an earlier failed call; an error if a worker
    /// thread panicked.
    pub(crate) fn finish(mut self) -> io::Result<(W, u64, u64)> {
        self.usable()?;
        let result = self.finish_member();
        self.note(result)?;
        let GzipWriter {
            engine, sink, read, ..
        } = self;
        if let Engine::Pool(pool) = engine {
            pool.stop()?;
        }
        Ok((sink.output, read, sink.bytes_out))
    }

    fn finish_member(&mut self) -> io::Result<()> {
        // Only a full block is handed over, and only once input after it arrives, so the
        // last block is the one in hand (empty only if the whole input is).
        self.dispatch(true)?;
        self.drain()?;
        let sink = &mut self.sink;
        let mut trailer = [0; 8];
        trailer[..4].copy_from_slice(&sink.crc.sum().to_le_bytes());
        // ISIZE is the input's length modulo 2^32 (RFC 1952).
        trailer[4..].copy_from_slice(&(self.read as u32).to_le_bytes());
        sink.output.write_all(&trailer)?;
        sink.bytes_out += trailer.len() as u64;
        sink.output.flush()
    }

    /// Reads `input` to its end straight into the blocks (no intermediate buffer).
    fn fill_from<R: Read>(&mut self, input: &mut R) -> io::Result<u64> {
        self.usable()?;
        let start = self.read;
        loop {
            if self.end - self.dict_len == self.block_size {
                // Hand the full block over only once there is input after it, so that the
                // last block is always the one left in hand at the end.
                let mut probe = [0; 1];
                if read_some(input, &mut probe)? == 0 {
                    return Ok(self.read - start);
                }
                let result = self.dispatch(false);
                self.note(result)?;
                self.block[self.end] = probe[0];
                self.end += 1;
                self.read += 1;
            }
            let filled = self.end;
            let end = self.dict_len + self.block_size;
            let mut at = filled;
            let mut eof = false;
            let mut failure = None;
            while at < end {
                match read_some(input, &mut self.block[at..end]) {
                    Ok(0) => {
                        eof = true;
                        break;
                    }
                    Ok(n) => at += n,
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            self.end = at;
            self.read += (at - filled) as u64;
            if let Some(e) = failure {
                return Err(e);
            }
            if eof {
                return Ok(self.read - start);
            }
        }
    }

    /// Hands the block in hand over for compression and starts the next one, primed with
    /// the last [`WINDOW`] bytes of input.
    fn dispatch(&mut self, last: bool) -> io::Result<()> {
        // After the last block the writer is done: no next block.
        let mut next = Vec::new();
        let mut next_dict = 0;
        if !last {
            let size = WINDOW + self.block_size;
            next = self
                .sink
                .spare_inputs
                .pop()
                .unwrap_or_else(|| vec![0; size]);
            let tail = self.end.saturating_sub(WINDOW)..self.end;
            next_dict = tail.len();
            next[..next_dict].copy_from_slice(&self.block[tail]);
        }
        let job = Job {
            index: self.sent,
            input: std::mem::replace(&mut self.block, next),
            dict_len: std::mem::replace(&mut self.dict_len, next_dict),
            end: std::mem::replace(&mut self.end, next_dict),
            last,
            output: self.sink.spare_outputs.pop().unwrap_or_default(),
            #[cfg(test)]
            panic: self.panic_at == Some(self.sent),
        };
        self.sent += 1;
        match &mut self.engine {
            Engine::Inline => {
                let done = run(self.level, job);
                #[cfg(test)]
                self.sink.observe_in_flight(self.sent);
                self.sink.accept(done)
            }
            Engine::Pool(pool) => {
                // Room for this block first: wait for (and write) earlier ones.
                while self.sent - self.sink.written > pool.limit {
                    let done = pool.receive()?;
                    self.sink.accept(done)?;
                }
                pool.send(job)?;
                #[cfg(test)]
                self.sink.observe_in_flight(self.sent);
                // Write whatever is already back, without waiting.
                while let Ok(done) = pool.done.try_recv() {
                    self.sink.accept(done)?;
                }
                Ok(())
            }
        }
    }

    /// Waits for every block handed over and writes them.
    fn drain(&mut self) -> io::Result<()> {
        if let Engine::Pool(pool) = &mut self.engine {
            while self.sink.written < self.sent {
                let done = pool.receive()?;
                self.sink.accept(done)?;
            }
        }
        Ok(())
    }

    /// Fails if an earlier call failed.
    fn usable(&self) -> io::Result<()> {
        if self.failed {
            return Err(io::Error::other(
                "gzip writer unusable after an earlier error",
            ));
        }
        Ok(())
    }

    /// Passes `result` through, remembering a failure.
    fn note<T>(&mut self, result: io::Result<T>) -> io::Result<T> {
        self.failed |= result.is_err();
        result
    }

    /// The most blocks handed out and not yet written at any time so far.
    #[cfg(test)]
    fn peak_in_flight(&self) -> u64 {
        self.sink.peak_in_flight
    }
}

impl<W: Write> Write for GzipWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.usable()?;
        if buf.is_empty() {
            return Ok(0);
        }
        if self.end - self.dict_len == self.block_size {
            let result = self.dispatch(false);
            self.note(result)?;
        }
        let room = self.block_size - (self.end - self.dict_len);
        let n = room.min(buf.len());
        self.block[self.end..self.end + n].copy_from_slice(&buf[..n]);
        self.end += n;
        self.read += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.usable()?;
        let result = self.drain().and_then(|()| self.sink.output.flush());
        self.note(result)
    }
}

impl<W: Write> std::fmt::Debug for GzipWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GzipWriter")
            .field("level", &self.level)
            .field("block_size", &self.block_size)
            .field("read", &self.read)
            .field("written", &self.sink.bytes_out)
            .finish_non_exhaustive()
    }
}

impl<W: Write> Sink<W> {
    /// Takes a compressed block back and writes every block now next in order.
    fn accept(&mut self, mut done: Done) -> io::Result<()> {
        std::mem::replace(&mut done.result, Ok(()))?;
        self.waiting.insert(done.index, done);
        while let Some(done) = self.waiting.remove(&self.written) {
            if self.written == 0 {
                let mut header = HEADER;
                header[8] = self.xfl;
                self.output.write_all(&header)?;
                self.bytes_out += header.len() as u64;
            }
            self.output.write_all(&done.output[..done.output_len])?;
            self.bytes_out += done.output_len as u64;
            self.crc.combine(&done.crc);
            self.written += 1;
            self.spare_inputs.push(done.input);
            self.spare_outputs.push(done.output);
        }
        Ok(())
    }

    /// Records how many blocks are handed out and not yet written, for the memory test.
    #[cfg(test)]
    fn observe_in_flight(&mut self, sent: u64) {
        self.peak_in_flight = self.peak_in_flight.max(sent - self.written);
    }
}

impl Pool {
    /// Starts up to `threads` workers; `None` if not even two could be started.
    fn start(level: u32, threads: usize) -> Option<Pool> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let (done_tx, done) = mpsc::channel();
        let mut workers = Vec::with_capacity(threads);
        for _ in 0..threads {
            let queue = Arc::clone(&queue);
            let done_tx = done_tx.clone();
            let spawned = thread::Builder::new()
                .name("layercake-gzip".into())
                .spawn(move || work(level, &queue, &done_tx));
            match spawned {
                Ok(handle) => workers.push(handle),
                Err(_) => break,
            }
        }
        let pool = Pool {
            jobs: Some(jobs),
            done,
            limit: 2 * workers.len() as u64,
            workers,
        };
        // Fewer than two workers is no better than the caller's thread (dropping the pool
        // stops the one there may be).
        (pool.workers.len() >= 2).then_some(pool)
    }

    fn send(&self, job: Job) -> io::Result<()> {
        let sent = self.jobs.as_ref().map(|jobs| jobs.send(job));
        match sent {
            Some(Ok(())) => Ok(()),
            _ => Err(io::Error::other("gzip worker threads have stopped")),
        }
    }

    /// The next block to come back, waiting for it.
    fn receive(&self) -> io::Result<Done> {
        self.done
            .recv()
            .map_err(|_| io::Error::other("gzip worker threads have stopped"))
    }

    /// Closes the queue and waits for the workers to end.
    fn stop(mut self) -> io::Result<()> {
        self.jobs = None;
        let mut panicked = false;
        for handle in std::mem::take(&mut self.workers) {
            panicked |= handle.join().is_err();
        }
        if panicked {
            return Err(io::Error::other("a gzip worker thread panicked"));
        }
        Ok(())
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.jobs = None;
        for handle in std::mem::take(&mut self.workers) {
            // A panic is reported through the queue; nothing more to say while dropping.
            let _ = handle.join();
        }
    }
}

/// A worker: compresses blocks from the queue until it is closed. A panic while compressing
/// is caught and sent back as an error for its block, and the worker ends.
fn work(level: u32, queue: &Mutex<mpsc::Receiver<Job>>, done: &mpsc::Sender<Done>) {
    loop {
        let job = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let index = job.index;
        match panic::catch_unwind(AssertUnwindSafe(|| run(level, job))) {
            Ok(block) => {
                if done.send(block).is_err() {
                    return;
                }
            }
            Err(payload) => {
                let what = payload
                    .downcast_ref::<&str>()
                    .copied()
                    .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                    .unwrap_or("no message");
                let _ = done.send(Done {
                    index,
                    input: Vec::new(),
                    output: Vec::new(),
                    output_len: 0,
                    crc: Crc::new(),
                    result: Err(io::Error::other(format!(
                        "gzip worker thread panicked on block {index}: {what}"
                    ))),
                });
                return;
            }
        }
    }
}

/// `input.read(buf)`, retried while interrupted.
fn read_some<R: Read>(input: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match input.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            result => return result,
        }
    }
}

/// Compresses one block: its CRC-32, and its raw deflate data primed with its dictionary,
/// ended by a sync flush, or by the final block if it is the last.
fn run(level: u32, job: Job) -> Done {
    #[cfg(test)]
    if job.panic {
        panic!("test hook: panic on block {}", job.index);
    }
    let Job {
        index,
        input,
        dict_len,
        end,
        last,
        mut output,
        ..
    } = job;
    let (dictionary, data) = input[..end].split_at(dict_len);
    let mut crc = Crc::new();
    crc.update(data);
    let (result, output_len) = match deflate_block(level, dictionary, data, last, &mut output) {
        Ok(len) => (Ok(()), len),
        Err(e) => (Err(e), 0),
    };
    Done {
        index,
        input,
        output,
        output_len,
        crc,
        result,
    }
}

/// Compresses `data` as raw deflate at `level`, with `dictionary` as the input before it,
/// into the start of `output` (whose contents are ignored, and which is grown as needed).
/// Returns the compressed length.
///
/// The result must be a function of the arguments alone, so two things that could carry
/// history are made fresh for every block:
///
/// - The compressor. `Compress::reset` keeps the window's old bytes, and deflate's match
///   finder reads past the end of the input into them: a compressor reused for a block
///   that was not the one before gives different (valid) bytes.
/// - The output space offered, a function of the block's length, not of the recycled
///   buffer's. Deflate cuts stored blocks (level 0) to fit the space it is given.
fn deflate_block(
    level: u32,
    dictionary: &[u8],
    data: &[u8],
    last: bool,
    output: &mut Vec<u8>,
) -> io::Result<usize> {
    let mut deflate = Compress::new(Compression::new(level), false);
    if !dictionary.is_empty() {
        deflate.set_dictionary(dictionary)?;
    }
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    // zlib's conservative bound (an eighth more, for static Huffman codes on random data),
    // with room for the stored and flush markers; doubled below if ever short.
    let mut space = data.len() + (data.len() >> 3) + (data.len() >> 6) + 64;
    let (mut taken, mut made) = (0, 0);
    loop {
        if output.len() < space {
            output.resize(space, 0);
        }
        let (before_in, before_out) = (deflate.total_in(), deflate.total_out());
        let status = deflate.compress(&data[taken..], &mut output[made..space], flush)?;
        taken += (deflate.total_in() - before_in) as usize;
        made += (deflate.total_out() - before_out) as usize;
        let complete = match status {
            Status::StreamEnd => true,
            // A sync flush is complete once all input is in and the output was not filled.
            Status::Ok | Status::BufError => !last && taken == data.len() && made < space,
        };
        if complete {
            return Ok(made);
        }
        space *= 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;
    use std::process::{Command, Stdio};

    /// xorshift64: random-looking bytes without a `rand` dependency.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        fn bytes(&mut self, len: usize) -> Vec<u8> {
            let mut v = Vec::with_capacity(len + 8);
            while v.len() < len {
                v.extend_from_slice(&self.next().to_le_bytes());
            }
            v.truncate(len);
            v
        }
    }

    /// Text-like data: words from a small vocabulary, picked at random, so it compresses
    /// about as well as source code or logs do.
    fn text(len: usize, seed: u64) -> Vec<u8> {
        const WORDS: &[&str] = &[
            "layer",
            "image",
            "the",
            "of",
            "digest",
            "sha256:",
            "tar",
            "usr/lib/",
            "config",
            "manifest",
            "whiteout",
            ".wh.",
            "\n",
            "{\"size\": ",
            "0",
            "1",
            "42",
            "opaque",
            "container",
            "  ",
            "fn ",
            "return ",
            "if ",
            "else",
            "; ",
            "= ",
            "(",
            ")",
        ];
        let mut rng = XorShift(seed);
        let mut v = Vec::with_capacity(len + 16);
        while v.len() < len {
            let r = rng.next();
            let word = WORDS[(r % WORDS.len() as u64) as usize];
            v.extend_from_slice(word.as_bytes());
            if r >> 60 == 0 {
                v.extend_from_slice(format!("{:x}", r >> 8).as_bytes());
            }
        }
        v.truncate(len);
        v
    }

    fn gzip(data: &[u8], level: u32, threads: usize, block_size: usize) -> Vec<u8> {
        let mut w = GzipWriter::with_block_size(Vec::new(), level, threads, block_size);
        w.write_all(data).expect("write");
        let (out, read, written) = w.finish().expect("finish");
        assert_eq!(read, data.len() as u64);
        assert_eq!(written, out.len() as u64);
        out
    }

    /// Decodes with flate2's single-member decoder, and checks that the member ends exactly
    /// at the end of `gz` (no second member, no trailing bytes).
    fn gunzip(gz: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut out)
            .expect("flate2 decodes it");
        let mut decoder = flate2::bufread::GzDecoder::new(gz);
        io::copy(&mut decoder, &mut io::sink()).expect("decode");
        assert!(
            decoder.into_inner().fill_buf().expect("rest").is_empty(),
            "bytes after the first gzip member"
        );
        out
    }

    /// What the module should produce, spelt out serially with a fresh compressor per block.
    fn reference(data: &[u8], level: u32, block_size: usize) -> Vec<u8> {
        let mut out = HEADER.to_vec();
        out[8] = match level {
            9 => 2,
            0 | 1 => 4,
            _ => 0,
        };
        let mut crc = Crc::new();
        crc.update(data);
        let blocks: Vec<&[u8]> = if data.is_empty() {
            vec![data]
        } else {
            data.chunks(block_size).collect()
        };
        let mut start = 0usize;
        for (i, block) in blocks.iter().enumerate() {
            let dictionary = &data[start.saturating_sub(WINDOW)..start];
            let mut buf = Vec::new();
            let len = deflate_block(level, dictionary, block, i + 1 == blocks.len(), &mut buf)
                .expect("deflate");
            out.extend_from_slice(&buf[..len]);
            start += block.len();
        }
        out.extend_from_slice(&crc.sum().to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out
    }

    #[test]
    fn round_trips_every_edge_of_a_block() {
        let data = text(5 * BLOCK_SIZE + 77, 1);
        for len in [
            0,
            1,
            BLOCK_SIZE - 1,
            BLOCK_SIZE,
            BLOCK_SIZE + 1,
            2 * BLOCK_SIZE,
            5 * BLOCK_SIZE + 77,
        ] {
            for threads in [1, 2] {
                let gz = gzip(&data[..len], 6, threads, BLOCK_SIZE);
                assert_eq!(gunzip(&gz), &data[..len], "len {len}, threads {threads}");
            }
        }
    }

    #[test]
    fn empty_input_is_an_empty_member() {
        let gz = gzip(b"", 6, 2, BLOCK_SIZE);
        // Header, the final empty fixed-Huffman block, CRC 0, ISIZE 0.
        assert_eq!(gz.len(), 10 + 2 + 8);
        assert_eq!(&gz[..4], &[0x1f, 0x8b, 8, 0]);
        assert!(gunzip(&gz).is_empty());
    }

    #[test]
    fn many_small_blocks_match_the_serial_reference() {
        // Blocks smaller than the window: the dictionary then spans several blocks.
        let data = text(300_000, 2);
        for block_size in [1000, 40_000, BLOCK_SIZE] {
            let expected = reference(&data, 6, block_size);
            for threads in [1, 2, 4] {
                let gz = gzip(&data, 6, threads, block_size);
                assert!(
                    gz == expected,
                    "block {block_size}, threads {threads}: bytes differ from the reference"
                );
            }
            assert_eq!(gunzip(&expected), data);
        }
    }

    #[test]
    fn output_does_not_depend_on_threads_or_write_sizes() {
        let mut rng = XorShift(3);
        let mut data = text(3 * BLOCK_SIZE, 4);
        data.extend(rng.bytes(BLOCK_SIZE + 5));
        data.extend(text(BLOCK_SIZE / 2, 5));
        for level in [0, 1, 6, 9] {
            let one = gzip(&data, level, 1, BLOCK_SIZE);
            for threads in [2, 4] {
                assert!(
                    gzip(&data, level, threads, BLOCK_SIZE) == one,
                    "level {level}"
                );
            }
            // Odd-sized writes, and `compress` reading on its own.
            let mut w = GzipWriter::new(Vec::new(), level, 2);
            for chunk in data.chunks(4093) {
                w.write_all(chunk).expect("write");
            }
            assert!(w.finish().expect("finish").0 == one, "level {level}");
            let mut out = Vec::new();
            compress(&data[..], &mut out, level, 3).expect("compress");
            assert!(out == one, "level {level}");
            assert_eq!(gunzip(&one), data, "level {level}");
        }
    }

    /// The size of `data` gzipped as one stream by flate2.
    fn one_stream(data: &[u8], level: u32) -> usize {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), Compression::new(level));
        gz.write_all(data).expect("write");
        gz.finish().expect("finish").len()
    }

    #[test]
    fn incompressible_data_round_trips_and_grows_like_one_stream() {
        let data = XorShift(6).bytes(3 * BLOCK_SIZE + 1234);
        for level in [0, 1, 6, 9] {
            let gz = gzip(&data, level, 2, BLOCK_SIZE);
            assert_eq!(gunzip(&gz), data);
            let one = one_stream(&data, level);
            assert!(
                gz.len() <= one + one / 1000 + 64,
                "level {level}: {} against {one}",
                gz.len()
            );
        }
    }

    #[test]
    fn compressible_data_shrinks_like_one_stream() {
        let data = vec![b'a'; 4 * BLOCK_SIZE + 3];
        let gz = gzip(&data, 6, 2, BLOCK_SIZE);
        assert_eq!(gunzip(&gz), data);
        // One stream gives about 1.6 KiB; each block adds a few bytes for its cut.
        assert!(gz.len() < 2048, "{} bytes", gz.len());
    }

    /// Up to `limit` bytes of real files under /usr/lib and /usr/share, in a fixed order;
    /// generated text where there are too few.
    fn realistic(limit: usize) -> Vec<u8> {
        fn walk(dir: &std::path::Path, out: &mut Vec<u8>, limit: usize) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
            paths.sort();
            for path in paths {
                if out.len() >= limit {
                    return;
                }
                let Ok(meta) = std::fs::symlink_metadata(&path) else {
                    continue;
                };
                if meta.is_dir() {
                    walk(&path, out, limit);
                } else if meta.is_file() {
                    // At most what is still wanted, however large the file.
                    if let Ok(file) = std::fs::File::open(&path) {
                        let want = (limit - out.len()) as u64;
                        let _ =
                            std::io::Read::read_to_end(&mut std::io::Read::take(file, want), out);
                    }
                }
            }
        }
        let mut out = Vec::new();
        for root in ["/usr/lib", "/usr/share"] {
            walk(std::path::Path::new(root), &mut out, limit);
        }
        if out.len() < limit {
            out.extend(text(limit - out.len(), 7));
        }
        out.truncate(limit);
        out
    }

    #[test]
    fn ratio_is_within_one_percent_of_one_stream() {
        let data = realistic(16 << 20);
        for level in [1, 6, 9] {
            let one = one_stream(&data, level);
            let ours = gzip(&data, level, default_threads().max(2), BLOCK_SIZE).len();
            let excess = ours as f64 / one as f64 - 1.0;
            assert!(
                excess < 0.01,
                "level {level}: {ours} bytes against {one}, {:.2}% more",
                excess * 100.0
            );
        }
    }

    #[test]
    fn system_gzip_decodes_it() {
        // gzip is an essential package of Debian: every machine this runs on has it.
        let gzip_path = std::path::Path::new("/usr/bin/gzip");
        assert!(
            gzip_path.exists(),
            "this test decodes with the system's gzip, which is missing: apt-get install gzip"
        );
        let mut data = text(4 * BLOCK_SIZE + 11, 8);
        data.extend(XorShift(9).bytes(BLOCK_SIZE));
        for len in [0, 1, data.len()] {
            let gz = gzip(&data[..len], 6, 2, BLOCK_SIZE);
            let mut child = Command::new(gzip_path)
                .arg("-dc")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("run gzip");
            let mut stdin = child.stdin.take().expect("stdin");
            let feeder = thread::spawn(move || stdin.write_all(&gz));
            let out = child.wait_with_output().expect("gzip output");
            feeder.join().expect("feeder").expect("feed gzip");
            assert!(out.status.success(), "gzip -dc failed on length {len}");
            assert!(
                out.stdout == data[..len],
                "gzip -dc differs on length {len}"
            );
        }
    }

    /// Input produced on the fly and never held whole.
    struct Generated {
        rng: XorShift,
        left: u64,
        crc: Crc,
    }

    impl Read for Generated {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.left.try_into().unwrap_or(usize::MAX));
            for chunk in buf[..n].chunks_mut(8) {
                // Mostly repetitive with random bytes mixed in: it compresses, a little.
                let r = self.rng.next();
                let bytes = if r & 3 == 0 {
                    r
                } else {
                    r & 0x0f0f_0f0f_0f0f_0f0f
                };
                chunk.copy_from_slice(&bytes.to_le_bytes()[..chunk.len()]);
            }
            self.crc.update(&buf[..n]);
            self.left -= n as u64;
            Ok(n)
        }
    }

    /// Output that is decompressed on the fly, keeping only its CRC and length.
    struct Checked {
        crc: Crc,
        len: u64,
    }

    impl Write for Checked {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.crc.update(buf);
            self.len += buf.len() as u64;
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn streams_hundreds_of_mib_in_bounded_memory() {
        const LEN: u64 = 256 << 20;
        let threads = 2;
        let mut input = Generated {
            rng: XorShift(10),
            left: LEN,
            crc: Crc::new(),
        };
        let decoded = flate2::write::GzDecoder::new(Checked {
            crc: Crc::new(),
            len: 0,
        });
        // Level 1 keeps the test quick in debug builds.
        let mut w = GzipWriter::new(decoded, 1, threads);
        w.fill_from(&mut input).expect("compress");
        assert!(w.peak_in_flight() <= 2 * threads as u64);
        let (decoded, read, _) = w.finish().expect("finish");
        let checked = decoded.finish().expect("a complete gzip member");
        assert_eq!((read, checked.len), (LEN, LEN));
        assert_eq!(checked.crc.sum(), input.crc.sum());
    }

    #[test]
    fn errors_from_the_reader_and_writer_come_back() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::new(
                    io::ErrorKind::ConnectionReset,
                    "reader broke",
                ))
            }
        }
        let err = compress(Failing, Vec::new(), 6, 2).expect_err("reader error");
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);

        /// Accepts `left` bytes, then fails.
        struct Full {
            left: usize,
        }
        impl Write for Full {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                if self.left == 0 {
                    return Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"));
                }
                let n = buf.len().min(self.left);
                self.left -= n;
                Ok(n)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let data = text(6 * BLOCK_SIZE, 11);
        for threads in [1, 2] {
            let err = compress(&data[..], Full { left: 1000 }, 6, threads).expect_err("full");
            assert_eq!(err.kind(), io::ErrorKind::StorageFull, "threads {threads}");
            // The writer stays failed.
            let mut w = GzipWriter::new(Full { left: 1000 }, 6, threads);
            let err = w.write_all(&data).expect_err("full");
            assert_eq!(err.kind(), io::ErrorKind::StorageFull, "threads {threads}");
            assert!(w.write(b"more").is_err());
            assert!(w.finish().is_err());
        }
    }

    #[test]
    fn a_worker_panic_is_an_error() {
        let data = text(8 * BLOCK_SIZE, 12);
        for threads in [2, 4] {
            let mut w = GzipWriter::new(Vec::new(), 6, threads);
            w.panic_at = Some(3);
            let result = w.write_all(&data).and_then(|()| w.finish().map(|_| ()));
            let err = result.expect_err("the panic is reported");
            assert!(
                err.to_string().contains("panicked on block 3"),
                "threads {threads}: {err}"
            );
        }
    }

    #[test]
    fn header_and_trailer_are_as_specified() {
        let data = b"hello, layer";
        let gz = gzip(data, 6, 1, BLOCK_SIZE);
        assert_eq!(&gz[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
        let mut crc = Crc::new();
        crc.update(data);
        let n = gz.len();
        assert_eq!(&gz[n - 8..n - 4], &crc.sum().to_le_bytes());
        assert_eq!(&gz[n - 4..], &(data.len() as u32).to_le_bytes());
        assert_eq!(gzip(data, 9, 1, BLOCK_SIZE)[8], 2);
        assert_eq!(gzip(data, 1, 1, BLOCK_SIZE)[8], 4);
    }
}
