//! [`Contents`]: the bytes of a file, a layer tar or a blob, either in memory or as a range of
//! a file on disk that is read on demand with positioned reads; and the temporary files that
//! hold decompressed layers.
//!
//! Nothing here maps memory (no `unsafe`): a range on disk is read with `pread` when asked.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, Read, Seek, SeekFrom, Write};
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use crate::error::{Error, Result};

/// How much one read of a range on disk asks for at a time.
const CHUNK: usize = 256 << 10;

/// The bytes of a regular file in an image (or of a layer tar, or of a blob): in memory, or
/// a range of a file on disk read when asked.
///
/// Files built in code, written in a [`Container`](crate::Container) or read from a tar held
/// in memory ([`Layer::from_tar`](crate::Layer::from_tar)) are in memory. Files of layers
/// read from an image file or a blob on disk are ranges of an uncompressed tar on disk: the
/// image file itself where its layers are plain tars, else a temporary file the layer was
/// decompressed into once. Both kinds mix freely in one tree, and cloning either is O(1).
///
/// Reading a range on disk can fail (the file may have been truncated since), so every read
/// returns a [`Result`].
///
/// ```
/// use std::io::Read;
///
/// use layercake::{Contents, Layer, Tree};
///
/// let layer = Layer::builder().file("etc/motd", "hello\n").build()?;
/// let tree = Tree::new().apply(&layer)?;
/// let contents: Contents = tree.lookup("etc/motd")?.unwrap().contents().unwrap().clone();
/// assert_eq!(contents.len(), 6);
/// // Three ways to get the bytes: all at once, as a reader, or at an offset.
/// assert_eq!(contents.to_bytes()?, "hello\n");
/// let mut text = String::new();
/// contents.reader().read_to_string(&mut text)?;
/// assert_eq!(text, "hello\n");
/// let mut buf = [0u8; 4];
/// assert_eq!(contents.read_at(1, &mut buf)?, 4);
/// assert_eq!(&buf, b"ello");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Contents(Repr);

#[derive(Clone)]
enum Repr {
    Memory(Bytes),
    Disk(Range),
}

/// A range of a file on disk.
#[derive(Clone)]
struct Range {
    file: Arc<HostFile>,
    offset: u64,
    len: u64,
}

/// A file on disk that contents are read from: an image file, a blob, or a temporary file
/// holding a decompressed layer (already unlinked, so it goes when its last user does).
pub(crate) struct HostFile {
    file: File,
    /// What the file is, for messages: its path, or what a temporary file holds.
    label: String,
}

impl HostFile {
    /// Opens a file on the host for reading.
    pub(crate) fn open(path: &Path) -> Result<Arc<HostFile>> {
        Error::check_host_path(path, "opening")?;
        let file = File::open(path)
            .map_err(|e| Error::io(format_args!("opening {}", path.display()), e))?;
        Ok(Arc::new(HostFile {
            file,
            label: path.display().to_string(),
        }))
    }

    /// A file already open, with a label for messages.
    pub(crate) fn new(file: File, label: impl Into<String>) -> Arc<HostFile> {
        Arc::new(HostFile {
            file,
            label: label.into(),
        })
    }

    /// The open file (for writing a temporary file through `&File`).
    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    /// The file's current length.
    pub(crate) fn len(&self) -> Result<u64> {
        self.file
            .metadata()
            .map(|m| m.len())
            .map_err(|e| Error::io(format_args!("reading the size of {}", self.label), e))
    }

    /// Reads at most `buf.len()` bytes at `offset`; fewer only at the end of the file.
    pub(crate) fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            match positioned_read(&self.file, &mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    /// Reads exactly `buf.len()` bytes at `offset`, naming the file if it ends first.
    pub(crate) fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let n = self
            .read_at(offset, buf)
            .map_err(|e| Error::io(format_args!("reading {} at {offset}", self.label), e))?;
        if n < buf.len() {
            return Err(Error::io(
                format_args!("reading {} at {offset}", self.label),
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the file is shorter than it was when it was read first",
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(unix)]
fn positioned_read(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(windows)]
fn positioned_read(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

impl fmt::Debug for HostFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label)
    }
}

/// Creates a temporary file in `dir` for a decompressed layer. It has no name (Linux's
/// `O_TMPFILE`) or loses it at once, so it is freed when the last [`Contents`] using it is
/// dropped, and a crash leaves nothing behind.
pub(crate) fn temporary_file(dir: &Path, label: impl Into<String>) -> Result<Arc<HostFile>> {
    let label = label.into();
    let fail = |e| {
        Error::io(
            format_args!("creating a temporary file in {}", dir.display()),
            e,
        )
    };
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{Mode, OFlags};
        let flags = OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC;
        match rustix::fs::open(dir, flags, Mode::from_raw_mode(0o600)) {
            Ok(fd) => return Ok(HostFile::new(File::from(fd), label)),
            // Filesystems without O_TMPFILE: a named file, unlinked at once.
            Err(rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::ISDIR) => {}
            Err(e) => return Err(fail(e.into())),
        }
    }
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    loop {
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = dir.join(format!(".layercake-{}-{n}", std::process::id()));
        match File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(file) => {
                std::fs::remove_file(&path).map_err(fail)?;
                return Ok(HostFile::new(file, label));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(fail(e)),
        }
    }
}

/// Gives a file written here a name: `target`, in the same filesystem. The file is synced
/// first. A temporary file without a name (`O_TMPFILE`) is linked in place, so `target` never
/// exists half written; one that had a name is copied to a file beside `target`, synced and
/// renamed over it. A `target` that exists already is left as it is: names are digests, so
/// whoever wrote it first wrote the same bytes.
pub(crate) fn persist(file: &HostFile, target: &Path) -> Result<()> {
    let fail = |e: io::Error| Error::io(format_args!("storing {}", target.display()), e);
    file.file.sync_all().map_err(fail)?;
    if target.exists() {
        return Ok(());
    }
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let source = format!("/proc/self/fd/{}", file.file.as_raw_fd());
        let here = rustix::fs::CWD;
        match rustix::fs::linkat(
            here,
            source.as_str(),
            here,
            target,
            rustix::fs::AtFlags::SYMLINK_FOLLOW,
        ) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => return Ok(()),
            // A file that had a name (no O_TMPFILE here) cannot be linked again: copied.
            Err(_) => {}
        }
    }
    let dir = target.parent().unwrap_or(Path::new("."));
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // `NAME.PID.N.partial`: what a store cleans once process PID is gone.
    let partial = dir.join(format!(".{name}.{}.{n}.partial", std::process::id()));
    let mut out = File::create(&partial).map_err(fail)?;
    let mut reader = io::BufReader::with_capacity(CHUNK, FileReader { file, pos: 0 });
    io::copy(&mut reader, &mut out).map_err(fail)?;
    out.sync_all().map_err(fail)?;
    std::fs::rename(&partial, target).map_err(fail)
}

/// Reads a [`HostFile`] from the start, by position.
struct FileReader<'a> {
    file: &'a HostFile,
    pos: u64,
}

impl Read for FileReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(self.pos, buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Writes bytes that become [`Contents`]: in memory, or in a temporary file (for what is
/// made from bytes on disk, so it never has to fit in memory). Hashes what passes.
pub(crate) struct ContentsWriter {
    to: Sink,
    hash: crate::digest::HashingWriter<io::Sink>,
}

enum Sink {
    Memory(Vec<u8>),
    File(Arc<HostFile>, io::BufWriter<File>),
}

impl ContentsWriter {
    /// Bytes kept in memory.
    pub(crate) fn memory() -> ContentsWriter {
        ContentsWriter::new(Sink::Memory(Vec::new()))
    }

    /// Bytes kept in a new temporary file in `dir` (see [`temporary_file`]).
    pub(crate) fn temporary(dir: &Path, label: impl Into<String>) -> Result<ContentsWriter> {
        let file = temporary_file(dir, label)?;
        let writer = file
            .file
            .try_clone()
            .map_err(|e| Error::io(format_args!("opening {}", file.label), e))?;
        Ok(ContentsWriter::new(Sink::File(
            file,
            io::BufWriter::with_capacity(CHUNK, writer),
        )))
    }

    fn new(to: Sink) -> ContentsWriter {
        ContentsWriter {
            to,
            hash: crate::digest::HashingWriter::new(io::sink()),
        }
    }

    /// The SHA-256 of what was written.
    pub(crate) fn digest(&self) -> crate::digest::Digest {
        self.hash.digest()
    }

    /// The bytes written.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the last bytes cannot be written to the temporary file.
    /// Writes out what is buffered and waits until the file is on disk (a store syncs what
    /// it commits: done early, beside other work, the commit finds nothing left to write).
    pub(crate) fn sync(&mut self) -> io::Result<()> {
        match &mut self.to {
            Sink::Memory(_) => Ok(()),
            Sink::File(file, writer) => {
                writer.flush()?;
                file.file.sync_all()
            }
        }
    }

    pub(crate) fn finish(self) -> Result<Contents> {
        let len = self.hash.len();
        match self.to {
            Sink::Memory(bytes) => Ok(Contents::from(bytes)),
            Sink::File(file, writer) => {
                writer.into_inner().map_err(|e| {
                    Error::io(format_args!("writing {}", file.label), e.into_error())
                })?;
                Ok(Contents::on_disk(file, 0, len))
            }
        }
    }
}

impl Write for ContentsWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = match &mut self.to {
            Sink::Memory(bytes) => bytes.write(buf)?,
            Sink::File(_, writer) => writer.write(buf)?,
        };
        self.hash.write_all(&buf[..n])?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.to {
            Sink::Memory(_) => Ok(()),
            Sink::File(_, writer) => writer.flush(),
        }
    }
}

impl Contents {
    /// A range of a file on disk.
    pub(crate) fn on_disk(file: Arc<HostFile>, offset: u64, len: u64) -> Contents {
        Contents(Repr::Disk(Range { file, offset, len }))
    }

    /// The file these bytes are a range of, if they are on disk.
    pub(crate) fn host_file(&self) -> Option<&Arc<HostFile>> {
        match &self.0 {
            Repr::Disk(range) => Some(&range.file),
            Repr::Memory(_) => None,
        }
    }

    /// The length in bytes.
    ///
    /// ```
    /// use layercake::Contents;
    ///
    /// assert_eq!(Contents::from("hello").len(), 5);
    /// ```
    pub fn len(&self) -> u64 {
        match &self.0 {
            Repr::Memory(b) => b.len() as u64,
            Repr::Disk(r) => r.len,
        }
    }

    /// Whether there are no bytes.
    ///
    /// ```
    /// use layercake::Contents;
    ///
    /// assert!(Contents::from("").is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes, if they are in memory (no I/O); `None` for a range on disk.
    ///
    /// ```
    /// use layercake::Contents;
    ///
    /// let built = Contents::from("in memory");
    /// assert_eq!(built.as_bytes().unwrap(), "in memory");
    /// ```
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match &self.0 {
            Repr::Memory(b) => Some(b),
            Repr::Disk(_) => None,
        }
    }

    /// All the bytes in memory: a cheap clone for contents in memory, a read of the whole
    /// range for contents on disk. Prefer [`reader`](Self::reader) for large files.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] naming the file on disk if it cannot be read or is shorter than it was,
    /// and [`Error::LimitExceeded`] for a range larger than this platform's address space.
    ///
    /// ```
    /// use layercake::{Layer, Tree};
    ///
    /// let tree = Tree::new().apply(&Layer::builder().file("etc/hostname", "box\n").build()?)?;
    /// let contents = tree.lookup("etc/hostname")?.unwrap().contents().unwrap().clone();
    /// assert_eq!(contents.to_bytes()?, "box\n");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn to_bytes(&self) -> Result<Bytes> {
        match &self.0 {
            Repr::Memory(b) => Ok(b.clone()),
            Repr::Disk(r) => {
                let len = usize::try_from(r.len).map_err(|_| Error::LimitExceeded {
                    limit: "bytes read into memory at once",
                    value: r.len,
                    max: usize::MAX as u64,
                })?;
                let mut buf = vec![0; len];
                r.file.read_exact_at(r.offset, &mut buf)?;
                Ok(Bytes::from(buf))
            }
        }
    }

    /// Reads up to `buf.len()` bytes starting `offset` bytes in, like `pread`; returns how
    /// many were read, fewer only at the end of the contents (0 at or past it).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] naming the file on disk if it cannot be read or is shorter than it was.
    ///
    /// ```
    /// use layercake::Contents;
    ///
    /// let contents = Contents::from("0123456789");
    /// let mut buf = [0u8; 4];
    /// assert_eq!(contents.read_at(8, &mut buf)?, 2);
    /// assert_eq!(&buf[..2], b"89");
    /// assert_eq!(contents.read_at(20, &mut buf)?, 0);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let available = self.len().saturating_sub(offset);
        let n = buf
            .len()
            .min(usize::try_from(available).unwrap_or(usize::MAX));
        match &self.0 {
            Repr::Memory(b) => {
                if n > 0 {
                    let start = offset as usize;
                    buf[..n].copy_from_slice(&b[start..start + n]);
                }
            }
            Repr::Disk(r) => {
                if n > 0 {
                    r.file.read_exact_at(r.offset + offset, &mut buf[..n])?;
                }
            }
        }
        Ok(n)
    }

    /// A reader over the bytes, with [`Seek`] and [`BufRead`]. Reading contents on disk
    /// fails with an [`io::Error`] naming the file.
    ///
    /// ```
    /// use std::io::{Read, Seek, SeekFrom};
    ///
    /// use layercake::Contents;
    ///
    /// let mut reader = Contents::from("header|body").reader();
    /// reader.seek(SeekFrom::Start(7))?;
    /// let mut body = String::new();
    /// reader.read_to_string(&mut body)?;
    /// assert_eq!(body, "body");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn reader(&self) -> ContentsReader {
        ContentsReader {
            contents: self.clone(),
            pos: 0,
            buf: Vec::new(),
            buf_start: 0,
        }
    }

    /// A sub-range of these contents (O(1), no I/O).
    ///
    /// # Panics
    ///
    /// If the range is out of bounds or decreasing, as slicing does.
    ///
    /// ```
    /// use layercake::Contents;
    ///
    /// let contents = Contents::from("0123456789");
    /// assert_eq!(contents.slice(2..5).to_bytes()?, "234");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn slice(&self, range: impl RangeBounds<u64>) -> Contents {
        let len = self.len();
        let start = match range.start_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => s + 1,
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&e) => e + 1,
            Bound::Excluded(&e) => e,
            Bound::Unbounded => len,
        };
        assert!(
            start <= end && end <= len,
            "range {start}..{end} out of bounds for contents of {len} bytes"
        );
        match &self.0 {
            Repr::Memory(b) => Contents(Repr::Memory(b.slice(start as usize..end as usize))),
            Repr::Disk(r) => Contents::on_disk(r.file.clone(), r.offset + start, end - start),
        }
    }

    /// Writes all the bytes to `out`, streaming a range on disk in chunks (never held whole).
    /// Returns the number of bytes written.
    ///
    /// # Errors
    ///
    /// [`Error::Io`]: reading names the file on disk; writing names `what`.
    pub(crate) fn copy_to(&self, out: &mut dyn Write, what: &str) -> Result<u64> {
        let write_fail = |e| Error::io(format_args!("writing {what}"), e);
        match &self.0 {
            Repr::Memory(b) => out.write_all(b).map_err(write_fail)?,
            Repr::Disk(r) => {
                let mut buf = vec![0; CHUNK.min(r.len as usize)];
                let mut done = 0u64;
                while done < r.len {
                    let n = buf.len().min((r.len - done) as usize);
                    r.file.read_exact_at(r.offset + done, &mut buf[..n])?;
                    out.write_all(&buf[..n]).map_err(write_fail)?;
                    done += n as u64;
                }
            }
        }
        Ok(self.len())
    }

    /// Writes all the bytes to the end of the file `out`: a range on disk is copied by the
    /// kernel (`copy_file_range`, no copy through memory) where the filesystems allow it.
    ///
    /// # Errors
    ///
    /// [`Error::Io`]: reading names the file on disk; writing names `what`.
    pub(crate) fn copy_to_file(&self, out: &File, what: &str) -> Result<u64> {
        #[cfg(target_os = "linux")]
        if let Repr::Disk(r) = &self.0 {
            use rustix::io::Errno;
            let mut offset = r.offset;
            let end = r.offset + r.len;
            while offset < end {
                let want = usize::try_from(end - offset)
                    .unwrap_or(usize::MAX)
                    .min(1 << 30);
                match rustix::fs::copy_file_range(&r.file.file, Some(&mut offset), out, None, want)
                {
                    Ok(0) => {
                        return Err(Error::io(
                            format_args!("reading {} at {offset}", r.file.label),
                            io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "the file is shorter than it was when it was read first",
                            ),
                        ))
                    }
                    Ok(_) => {}
                    Err(Errno::INTR) => {}
                    // Not between these files (other filesystems, old kernels): copy the rest
                    // through memory.
                    Err(Errno::XDEV | Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP)
                        if offset == r.offset =>
                    {
                        return self.copy_to(&mut &*out, what);
                    }
                    Err(e) => return Err(Error::io(format_args!("writing {what}"), e.into())),
                }
            }
            return Ok(r.len);
        }
        self.copy_to(&mut &*out, what)
    }

    /// Whether two contents hold the same bytes. Answered without I/O where it can be (bytes
    /// in memory, the same range of the same file, different lengths), else by reading both.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if a range on disk cannot be read.
    pub(crate) fn same_bytes(&self, other: &Contents) -> Result<bool> {
        if self.len() != other.len() {
            return Ok(false);
        }
        match (&self.0, &other.0) {
            (Repr::Memory(a), Repr::Memory(b)) => return Ok(a == b),
            (Repr::Disk(a), Repr::Disk(b))
                if Arc::ptr_eq(&a.file, &b.file) && a.offset == b.offset =>
            {
                return Ok(true)
            }
            _ => {}
        }
        let mut ours = vec![0; CHUNK.min(self.len() as usize)];
        let mut theirs = vec![0; ours.len()];
        let mut done = 0u64;
        while done < self.len() {
            let n = self.read_at(done, &mut ours)?;
            other.read_at(done, &mut theirs[..n])?;
            if ours[..n] != theirs[..n] {
                return Ok(false);
            }
            done += n as u64;
        }
        Ok(true)
    }

    /// Compares with bytes in memory, reading a range on disk (an I/O error compares unequal).
    fn eq_slice(&self, other: &[u8]) -> bool {
        match &self.0 {
            Repr::Memory(b) => b[..] == *other,
            Repr::Disk(_) => self
                .same_bytes(&Contents::from(other.to_vec()))
                .unwrap_or(false),
        }
    }
}

impl Default for Contents {
    /// No bytes.
    fn default() -> Contents {
        Contents(Repr::Memory(Bytes::new()))
    }
}

impl From<Bytes> for Contents {
    fn from(bytes: Bytes) -> Contents {
        Contents(Repr::Memory(bytes))
    }
}

impl From<Vec<u8>> for Contents {
    fn from(bytes: Vec<u8>) -> Contents {
        Contents::from(Bytes::from(bytes))
    }
}

impl From<String> for Contents {
    fn from(text: String) -> Contents {
        Contents::from(Bytes::from(text))
    }
}

impl From<&'static str> for Contents {
    fn from(text: &'static str) -> Contents {
        Contents::from(Bytes::from_static(text.as_bytes()))
    }
}

impl From<&'static [u8]> for Contents {
    fn from(bytes: &'static [u8]) -> Contents {
        Contents::from(Bytes::from_static(bytes))
    }
}

impl<const N: usize> From<&'static [u8; N]> for Contents {
    fn from(bytes: &'static [u8; N]) -> Contents {
        Contents::from(Bytes::from_static(bytes))
    }
}

/// Equal when the bytes are equal, whichever side is on disk. Comparing contents on disk
/// reads them, and a read that fails compares unequal; where an error must be seen, compare
/// the results of [`Contents::to_bytes`].
impl PartialEq for Contents {
    fn eq(&self, other: &Contents) -> bool {
        self.same_bytes(other).unwrap_or(false)
    }
}

impl Eq for Contents {}

/// Hashes the length only (the bytes may be on disk); equal contents hash equally.
impl std::hash::Hash for Contents {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.len().hash(state);
    }
}

impl PartialEq<[u8]> for Contents {
    fn eq(&self, other: &[u8]) -> bool {
        self.eq_slice(other)
    }
}

impl PartialEq<str> for Contents {
    fn eq(&self, other: &str) -> bool {
        self.eq_slice(other.as_bytes())
    }
}

impl PartialEq<Bytes> for Contents {
    fn eq(&self, other: &Bytes) -> bool {
        self.eq_slice(other)
    }
}

impl PartialEq<Vec<u8>> for Contents {
    fn eq(&self, other: &Vec<u8>) -> bool {
        self.eq_slice(other)
    }
}

impl<'a, T: ?Sized> PartialEq<&'a T> for Contents
where
    Contents: PartialEq<T>,
{
    fn eq(&self, other: &&'a T) -> bool {
        *self == **other
    }
}

impl fmt::Debug for Contents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Memory(b) if b.len() <= 64 => write!(f, "Contents({b:?})"),
            Repr::Memory(b) => write!(f, "Contents({} bytes in memory)", b.len()),
            Repr::Disk(r) => write!(
                f,
                "Contents({} bytes of {} at {})",
                r.len, r.file.label, r.offset
            ),
        }
    }
}

/// A reader over [`Contents`], from [`Contents::reader`]: [`Read`], [`BufRead`] and [`Seek`],
/// reading a range on disk in chunks with positioned reads.
///
/// ```
/// use std::io::BufRead;
///
/// use layercake::Contents;
///
/// let lines: Vec<String> =
///     Contents::from("a\nb\n").reader().lines().collect::<Result<_, _>>()?;
/// assert_eq!(lines, ["a", "b"]);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ContentsReader {
    contents: Contents,
    pos: u64,
    /// Bytes read ahead from disk, starting at `buf_start`.
    buf: Vec<u8>,
    buf_start: u64,
}

impl ContentsReader {
    /// The contents being read.
    ///
    /// ```
    /// use layercake::Contents;
    ///
    /// assert_eq!(Contents::from("abc").reader().contents().len(), 3);
    /// ```
    pub fn contents(&self) -> &Contents {
        &self.contents
    }
}

impl BufRead for ContentsReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        let len = self.contents.len();
        if self.pos >= len {
            return Ok(&[]);
        }
        match &self.contents.0 {
            Repr::Memory(b) => Ok(&b[self.pos as usize..]),
            Repr::Disk(_) => {
                let buf_end = self.buf_start + self.buf.len() as u64;
                if self.pos < self.buf_start || self.pos >= buf_end {
                    let n = CHUNK.min((len - self.pos) as usize);
                    self.buf.resize(n, 0);
                    let read = self
                        .contents
                        .read_at(self.pos, &mut self.buf)
                        .map_err(io::Error::from)?;
                    self.buf.truncate(read);
                    self.buf_start = self.pos;
                }
                Ok(&self.buf[(self.pos - self.buf_start) as usize..])
            }
        }
    }

    fn consume(&mut self, amount: usize) {
        // Never more than `fill_buf` gave: a position past the end (after a seek) stays.
        self.pos = self.pos.saturating_add(amount as u64);
    }
}

impl Read for ContentsReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        // A large read of a range on disk goes straight into the caller's buffer.
        if self.contents.as_bytes().is_none() && out.len() >= CHUNK {
            let n = self
                .contents
                .read_at(self.pos, out)
                .map_err(io::Error::from)?;
            self.pos += n as u64;
            return Ok(n);
        }
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl Seek for ContentsReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let len = self.contents.len() as i128;
        let target = match to {
            SeekFrom::Start(n) => n as i128,
            SeekFrom::End(d) => len + d as i128,
            SeekFrom::Current(d) => self.pos as i128 + d as i128,
        };
        if target < 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the contents",
            ));
        }
        self.pos = u64::try_from(target).unwrap_or(u64::MAX);
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_disk(bytes: &[u8]) -> Contents {
        let file = temporary_file(&std::env::temp_dir(), "test").unwrap();
        file.file().write_all(bytes).unwrap();
        Contents::on_disk(file, 0, bytes.len() as u64)
    }

    #[test]
    fn disk_and_memory_read_alike() {
        let data: Vec<u8> = (0..700_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let disk = on_disk(&data);
        let memory = Contents::from(data.clone());
        assert_eq!(disk, memory);
        assert_eq!(disk.to_bytes().unwrap(), data);
        let mut via_reader = Vec::new();
        disk.reader().read_to_end(&mut via_reader).unwrap();
        assert_eq!(via_reader, data);
        let part = disk.slice(100_000..400_123);
        assert_eq!(part.to_bytes().unwrap(), &data[100_000..400_123]);
        let mut reader = part.reader();
        reader.seek(SeekFrom::End(-10)).unwrap();
        let mut tail = Vec::new();
        reader.read_to_end(&mut tail).unwrap();
        assert_eq!(tail, &data[400_113..400_123]);
        let mut other = data.clone();
        other[650_000] ^= 1;
        assert_ne!(disk, Contents::from(other));
        let mut sink = Vec::new();
        disk.copy_to(&mut sink, "a vector").unwrap();
        assert_eq!(sink, data);
    }

    #[test]
    fn a_truncated_file_is_an_error_naming_it() {
        let file = temporary_file(&std::env::temp_dir(), "layer sha256:ab").unwrap();
        file.file().write_all(b"short").unwrap();
        let contents = Contents::on_disk(file, 0, 100);
        let err = contents.to_bytes().unwrap_err();
        assert!(err.to_string().contains("layer sha256:ab"), "{err}");
    }
}
