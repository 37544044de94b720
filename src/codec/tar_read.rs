//! Reading any tar met in the wild into a typed [`Changeset`], from a stream (every byte
//! passes once: a layer being hashed) or by positioned reads (headers only, data skipped: the
//! members of an image file). Untrusted input: every size, count and name is bounded by
//! [`Limits`] before anything is built from it. The `.wh.` spelling is decoded here.

use std::collections::BTreeMap;
use std::io::{self, BufRead};
use std::sync::Arc;

use bytes::Bytes;

use crate::changes::Changeset;
use crate::codec::{AUFS_META, OPAQUE, PAX_XATTR, WHITEOUT};
use crate::contents::Contents;
use crate::entry::{Entry, EntryKind, Metadata};
use crate::error::{lossy, Error, Result};
use crate::layer::{Duplicates, ReadOptions};
use crate::limits::Limits;
use crate::path::ImagePath;

/// The size of a tar block.
const BLOCK: u64 = 512;

/// Where a tar's bytes come from.
pub(crate) trait TarInput {
    /// Fills `buf` as far as the input goes; returns how many bytes it read.
    fn read_full(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    /// Passes over `n` bytes; returns how many there were before the end.
    fn skip(&mut self, n: u64) -> io::Result<u64>;
}

/// A tar read as a stream: data is passed over by consuming it (the stream's owner sees every
/// byte, to hash it or keep it).
pub(crate) struct Streamed<R>(pub(crate) R);

impl<R: BufRead> TarInput for Streamed<R> {
    fn read_full(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            let available = self.0.fill_buf()?;
            if available.is_empty() {
                break;
            }
            let n = available.len().min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&available[..n]);
            self.0.consume(n);
            done += n;
        }
        Ok(done)
    }

    fn skip(&mut self, n: u64) -> io::Result<u64> {
        let mut done = 0;
        while done < n {
            let available = self.0.fill_buf()?.len();
            if available == 0 {
                break;
            }
            let step = available.min(usize::try_from(n - done).unwrap_or(usize::MAX));
            self.0.consume(step);
            done += step as u64;
        }
        Ok(done)
    }
}

/// A tar read by positioned reads of its headers: data is passed over without being read.
pub(crate) struct Positioned<'a> {
    contents: &'a Contents,
    pos: u64,
}

impl<'a> Positioned<'a> {
    pub(crate) fn new(contents: &'a Contents) -> Positioned<'a> {
        Positioned { contents, pos: 0 }
    }
}

impl TarInput for Positioned<'_> {
    fn read_full(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.contents.read_at(self.pos, buf)?;
        self.pos += n as u64;
        Ok(n)
    }

    fn skip(&mut self, n: u64) -> io::Result<u64> {
        let step = n.min(self.contents.len().saturating_sub(self.pos));
        self.pos += step;
        Ok(step)
    }
}

/// Field offsets of a tar header block.
mod field {
    use std::ops::Range;
    pub(super) const NAME: Range<usize> = 0..100;
    pub(super) const MODE: Range<usize> = 100..108;
    pub(super) const UID: Range<usize> = 108..116;
    pub(super) const GID: Range<usize> = 116..124;
    pub(super) const SIZE: Range<usize> = 124..136;
    pub(super) const MTIME: Range<usize> = 136..148;
    pub(super) const CHECKSUM: Range<usize> = 148..156;
    pub(super) const TYPE: usize = 156;
    pub(super) const LINKNAME: Range<usize> = 157..257;
    pub(super) const MAGIC: Range<usize> = 257..265;
    pub(super) const DEV_MAJOR: Range<usize> = 329..337;
    pub(super) const DEV_MINOR: Range<usize> = 337..345;
    pub(super) const PREFIX: Range<usize> = 345..500;
}

/// One header block and what it says.
struct Header([u8; BLOCK as usize]);

impl Header {
    fn is_zero(&self) -> bool {
        self.0.iter().all(|&b| b == 0)
    }

    fn entry_type(&self) -> u8 {
        self.0[field::TYPE]
    }

    /// The sum Go and GNU tar check: every byte, the checksum field counted as spaces,
    /// unsigned or (as some old writers computed it) signed.
    fn checksum_ok(&self) -> bool {
        let Ok(stored) = number(&self.0[field::CHECKSUM]) else {
            return false;
        };
        let (mut unsigned, mut signed) = (0i64, 0i64);
        for (i, &b) in self.0.iter().enumerate() {
            let b = if field::CHECKSUM.contains(&i) {
                b' '
            } else {
                b
            };
            unsigned += i64::from(b);
            signed += i64::from(b as i8);
        }
        stored == unsigned || stored == signed
    }

    /// The name, with the USTAR prefix when the magic says USTAR (GNU tar puts other things
    /// where the prefix would be).
    fn path(&self) -> Vec<u8> {
        let name = until_nul(&self.0[field::NAME]);
        if &self.0[field::MAGIC] == b"ustar\x0000" {
            let prefix = until_nul(&self.0[field::PREFIX]);
            if !prefix.is_empty() {
                return [prefix, b"/", name].concat();
            }
        }
        name.to_vec()
    }

    fn link_name(&self) -> &[u8] {
        until_nul(&self.0[field::LINKNAME])
    }

    /// A numeric field, naming it if it is malformed.
    fn number(&self, range: std::ops::Range<usize>, name: &str) -> Result<i64> {
        number(&self.0[range]).map_err(|reason| Error::tar(None, format!("{name} field {reason}")))
    }

    /// A field that cannot be negative.
    fn unsigned(&self, range: std::ops::Range<usize>, name: &str) -> Result<u64> {
        let value = self.number(range, name)?;
        u64::try_from(value).map_err(|_| Error::tar(None, format!("{name} field is negative")))
    }
}

fn until_nul(bytes: &[u8]) -> &[u8] {
    bytes
        .iter()
        .position(|&b| b == 0)
        .map_or(bytes, |end| &bytes[..end])
}

/// Parses a numeric header field as Go does: base-256 (two's complement, big-endian) when the
/// top bit of the first byte is set, else octal digits with spaces and NULs around them.
fn number(bytes: &[u8]) -> std::result::Result<i64, &'static str> {
    if bytes.first().is_some_and(|&b| b & 0x80 != 0) {
        // Base-256: the first byte's top bit marks the form; the bit below it is the sign.
        let negative = bytes[0] & 0x40 != 0;
        let mut value: i128 = if negative { -1 } else { 0 };
        for (i, &b) in bytes.iter().enumerate() {
            let b = if i == 0 { b & 0x7f } else { b };
            let b = if i == 0 && negative { b | 0x80 } else { b };
            value = (value << 8) | i128::from(b);
            if !(i64::MIN as i128..=i64::MAX as i128).contains(&value) {
                return Err("overflows 64 bits");
            }
        }
        return Ok(value as i64);
    }
    let trimmed = {
        let start = bytes.iter().position(|&b| b != b' ' && b != 0);
        match start {
            None => return Ok(0),
            Some(s) => {
                let end = bytes
                    .iter()
                    .rposition(|&b| b != b' ' && b != 0)
                    .unwrap_or(s);
                &bytes[s..=end]
            }
        }
    };
    let mut value: i64 = 0;
    for &b in trimmed {
        if !(b'0'..=b'7').contains(&b) {
            return Err("is not an octal number");
        }
        value = value
            .checked_mul(8)
            .and_then(|v| v.checked_add(i64::from(b - b'0')))
            .ok_or("overflows 64 bits")?;
    }
    Ok(value)
}

/// One PAX record: key and value, as bytes.
type PaxRecord = (Vec<u8>, Vec<u8>);

/// The extension records (`x`, `L`, `K`) that apply to the next entry.
#[derive(Default)]
struct Extensions {
    pax: Option<Vec<PaxRecord>>,
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
}

impl Extensions {
    fn is_empty(&self) -> bool {
        self.pax.is_none() && self.long_name.is_none() && self.long_link.is_none()
    }

    /// The value of the last PAX record with this key.
    fn pax(&self, key: &[u8]) -> Option<&[u8]> {
        self.pax
            .as_ref()?
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| &v[..])
    }

    /// The name: a GNU long name, else a PAX `path`, else the header's (as Go reads them).
    fn path(&self, header: &Header) -> Vec<u8> {
        match (&self.long_name, self.pax(b"path")) {
            (Some(name), _) => name.clone(),
            (None, Some(path)) => path.to_vec(),
            (None, None) => header.path(),
        }
    }

    /// The link target, by the same precedence.
    fn link(&self, header: &Header) -> Vec<u8> {
        match (&self.long_link, self.pax(b"linkpath")) {
            (Some(link), _) => link.clone(),
            (None, Some(link)) => link.to_vec(),
            (None, None) => header.link_name().to_vec(),
        }
    }
}

/// What the reader does with the data of a regular file: makes the contents that stand for
/// `len` bytes at `offset` of the tar.
pub(crate) type ContentsAt<'a> = &'a dyn Fn(u64, u64) -> Contents;

/// Reads a whole tar into a changeset. File contents are made by `contents_at` from their
/// offsets in the tar; nothing else of the data is kept.
///
/// # Errors
///
/// [`Error::InvalidTar`] for a malformed archive, [`Error::InvalidPath`] for a name with a
/// `..` component or a NUL, [`Error::RootDirectory`] for a root that is not a directory,
/// [`Error::DuplicateEntry`] under [`Duplicates::Reject`], [`Error::LimitExceeded`] past
/// a limit, [`Error::Io`] if the input fails.
pub(crate) fn read(
    input: &mut dyn TarInput,
    options: &ReadOptions,
    contents_at: ContentsAt<'_>,
) -> Result<Changeset> {
    Reader::new(input, options, false).read(contents_at)
}

/// Reads the members of an image file (a docker-archive or an oci-archive) as [`read`] reads
/// a layer, except that a path named twice is refused whatever `options` say, with
/// [`Error::DuplicateEntry`], unless both are directories or both are the same regular
/// file bytes (or the same link): two different members under one name are two different
/// archives to two readers, one that keeps the first and one that keeps the last.
/// The same bytes twice mean the same thing to both (`tar --append` of a blob again).
///
/// # Errors
///
/// As [`read`].
pub(crate) fn read_members(
    input: &mut dyn TarInput,
    options: &ReadOptions,
    contents_at: ContentsAt<'_>,
) -> Result<Changeset> {
    Reader::new(input, options, true).read(contents_at)
}

/// Whether a member named twice in an image file means the same thing both times.
fn same_member(first: &Entry, second: &Entry) -> Result<bool> {
    Ok(match (&first.kind, &second.kind) {
        (EntryKind::Directory, EntryKind::Directory) => true,
        (EntryKind::File(a), EntryKind::File(b)) => a.same_bytes(b)?,
        (EntryKind::Symlink(a), EntryKind::Symlink(b)) => a == b,
        (EntryKind::Hardlink(a), EntryKind::Hardlink(b)) => a == b,
        _ => false,
    })
}

struct Reader<'a> {
    input: &'a mut dyn TarInput,
    options: &'a ReadOptions,
    /// How far into the tar the reader is.
    pos: u64,
    /// The name of the last entry, for messages.
    last: Option<Vec<u8>>,
    /// Reading the members of an image file: see [`read_members`].
    members: bool,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `input`; `members` for the members of an image file.
    fn new(input: &'a mut dyn TarInput, options: &'a ReadOptions, members: bool) -> Reader<'a> {
        Reader {
            input,
            options,
            pos: 0,
            last: None,
            members,
        }
    }

    fn limits(&self) -> &Limits {
        &self.options.limits
    }

    /// An `InvalidTar` at the entry being read, or after the last one read.
    fn bad_here(&self, reason: impl Into<String>) -> Error {
        let reason = reason.into();
        match &self.last {
            Some(last) => Error::tar(None, format!("after `{}`: {reason}", lossy(last))),
            None => Error::tar(None, reason),
        }
    }

    fn io(&self, e: io::Error) -> Error {
        Error::io(format_args!("reading a tar at offset {}", self.pos), e)
    }

    /// Reads one header block: `None` at a clean end of input.
    fn header(&mut self) -> Result<Option<Header>> {
        let mut block = [0u8; BLOCK as usize];
        let n = self.input.read_full(&mut block).map_err(|e| self.io(e))?;
        self.pos += n as u64;
        match n as u64 {
            0 => Ok(None),
            BLOCK => Ok(Some(Header(block))),
            _ => Err(self.bad_here("the archive ends inside a header block")),
        }
    }

    /// Reads the data of an extension record (bounded by `pax_bytes`) and its padding.
    fn extension_data(&mut self, size: u64) -> Result<Vec<u8>> {
        Limits::check(
            "PAX or long-name record bytes",
            size,
            self.limits().pax_bytes,
        )?;
        let mut data = vec![0; size as usize];
        let n = self.input.read_full(&mut data).map_err(|e| self.io(e))?;
        self.pos += n as u64;
        if n as u64 != size {
            return Err(self.bad_here("the archive ends inside an extension record"));
        }
        self.padding(size, false)?;
        Ok(data)
    }

    /// Passes over `size` bytes of data.
    fn data(&mut self, size: u64, path: &[u8]) -> Result<()> {
        let n = self.input.skip(size).map_err(|e| self.io(e))?;
        self.pos += n;
        if n != size {
            return Err(Error::tar(
                Some(path),
                "file data runs past the end of the archive",
            ));
        }
        Ok(())
    }

    /// Passes over the padding after `size` bytes of data. Returns `false` if the input ended
    /// right where the padding would start, which only the last entry may do (`may_end`): Go
    /// writers that are never closed stop there.
    fn padding(&mut self, size: u64, may_end: bool) -> Result<bool> {
        let pad = (BLOCK - size % BLOCK) % BLOCK;
        let n = self.input.skip(pad).map_err(|e| self.io(e))?;
        self.pos += n;
        match n {
            n if n == pad => Ok(true),
            0 if may_end => Ok(false),
            _ => Err(self.bad_here("the archive ends inside an entry's data or padding")),
        }
    }

    /// After the end blocks: zero bytes only (record padding), and not too many.
    fn trailer(&mut self) -> Result<()> {
        // The first zero block has been read; count it with the rest.
        let max = self.limits().trailing_bytes.saturating_add(2 * BLOCK);
        let mut zeros = BLOCK;
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = self.input.read_full(&mut buf).map_err(|e| self.io(e))?;
            if n == 0 {
                return Ok(());
            }
            // Data after a lone zero block is a second archive some readers would see and
            // others not.
            if let Some(at) = buf[..n].iter().position(|&b| b != 0) {
                return Err(Error::tar(
                    None,
                    format!(
                        "data after the end of the archive at offset {}",
                        self.pos + at as u64
                    ),
                ));
            }
            self.pos += n as u64;
            zeros += n as u64;
            if zeros > max {
                return Err(Error::LimitExceeded {
                    limit: "zero bytes after the end of the archive",
                    value: zeros - 2 * BLOCK,
                    max: self.limits().trailing_bytes,
                });
            }
        }
    }

    fn read(mut self, contents_at: ContentsAt<'_>) -> Result<Changeset> {
        let mut changes = Changeset::default();
        let mut count = 0u64;
        let mut ext = Extensions::default();
        loop {
            let Some(header) = self.header()? else {
                if !ext.is_empty() {
                    return Err(self.bad_here("an extension record with no entry after it"));
                }
                break;
            };
            if header.is_zero() {
                if !ext.is_empty() {
                    return Err(self.bad_here("an extension record with no entry after it"));
                }
                self.trailer()?;
                break;
            }
            if !header.checksum_ok() {
                return Err(self.bad_here("header checksum mismatch"));
            }
            let header_size = header
                .unsigned(field::SIZE, "size")
                .map_err(|e| named(e, &header.path()))?;
            match header.entry_type() {
                b'x' | b'L' | b'K' => {
                    let data = self.extension_data(header_size)?;
                    let kind = header.entry_type();
                    let twice = match kind {
                        b'x' => ext.pax.is_some(),
                        b'L' => ext.long_name.is_some(),
                        _ => ext.long_link.is_some(),
                    };
                    if twice {
                        return Err(self.bad_here(match kind {
                            b'x' => "two PAX extended headers for one entry",
                            b'L' => "two GNU long-name records for one entry",
                            _ => "two GNU long-link records for one entry",
                        }));
                    }
                    match kind {
                        b'x' => {
                            let records =
                                pax_records(&data).map_err(|reason| self.bad_here(reason))?;
                            ext.pax = Some(records);
                        }
                        b'L' => ext.long_name = Some(until_nul(&data).to_vec()),
                        _ => ext.long_link = Some(until_nul(&data).to_vec()),
                    }
                    continue;
                }
                _ => {}
            }
            count += 1;
            Limits::check("entries in one layer", count, self.limits().entries)?;
            let entry_ext = std::mem::take(&mut ext);
            let last = self.entry(&header, header_size, &entry_ext, &mut changes, contents_at)?;
            if !last {
                break;
            }
        }
        Ok(changes)
    }

    /// Reads one entry (its header already read) with its data. Returns `false` if the input
    /// ended right after its data (no padding, no end blocks).
    fn entry(
        &mut self,
        header: &Header,
        header_size: u64,
        ext: &Extensions,
        changes: &mut Changeset,
        contents_at: ContentsAt<'_>,
    ) -> Result<bool> {
        let entry_type = header.entry_type();
        let raw_path = ext.path(header);
        let bad = |reason: &str| Error::tar(Some(&raw_path), reason.to_owned());
        let size = match ext.pax(b"size") {
            Some(value) => parse_pax_u64(value).ok_or_else(|| bad("bad PAX size record"))?,
            None => header_size,
        };
        // Entries that are only a header (links, directories, devices, pipes) carry no data
        // whatever their size field says, as Go reads them; a global PAX header's data is
        // passed over.
        let size = if matches!(entry_type, b'1'..=b'6') {
            0
        } else {
            size
        };
        // The data is passed over first: contents are made only for data that is there.
        let data_start = self.pos;
        self.data(size, &raw_path)?;
        if entry_type == b'g' {
            self.last = Some(raw_path.clone());
            return self.padding(size, true);
        }
        if raw_path.is_empty() {
            return Err(bad("empty name"));
        }
        check_name(&raw_path, self.limits())?;
        let path = ImagePath::new(&raw_path)?;

        let mut kept: Option<EntryKind> = None;
        // AUFS meta entries at the root (`.wh..wh.aufs`, `.wh..wh.plnk/…`, `.wh..wh.orph/…`),
        // of any type and with everything below them: ignored, as Docker does (R5).
        let aufs = path
            .components()
            .next()
            .is_some_and(|c| c.starts_with(AUFS_META) && c != OPAQUE);
        // Markers (R2, R3, R5): only regular files are markers; an old-style regular entry
        // whose name ends in `/` is a directory.
        let marker = matches!(entry_type, b'0' | 0)
            && !raw_path.ends_with(b"/")
            && path.file_name().is_some_and(|n| n.starts_with(WHITEOUT));
        if !aufs && marker {
            let name = path.file_name().expect("a marker has a name");
            let parent = path.parent().expect("a named path has a parent");
            if name == OPAQUE {
                changes.opaques.insert(parent);
            } else if name.starts_with(AUFS_META) {
                // AUFS meta files (`.wh..wh.plnk`, `.wh..wh.aufs`): ignored, as Docker does.
            } else {
                let target = &name[WHITEOUT.len()..];
                if target.is_empty() || target == b"." || target == b".." {
                    return Err(bad("whiteout names no entry"));
                }
                changes.whiteouts.insert(parent.join_unchecked(target));
            }
        } else if !aufs {
            kept = Some(match entry_type {
                b'0' | 0 | b'7' if raw_path.ends_with(b"/") => EntryKind::Directory,
                b'0' | 0 | b'7' => EntryKind::File(contents_at(data_start, size)),
                b'5' => EntryKind::Directory,
                b'2' => {
                    let target = ext.link(header);
                    // As symlink(2) refuses a target of PATH_MAX or more: each hop of a
                    // resolution queues the target's components, so an unbounded target
                    // would let 40 hops hold 40 times its size.
                    Limits::check(
                        "symlink target bytes",
                        target.len() as u64,
                        self.limits().path_bytes as u64,
                    )?;
                    EntryKind::Symlink(Bytes::from(target))
                }
                b'1' => {
                    let target = ext.link(header);
                    if target.is_empty() {
                        return Err(bad("hardlink with no target"));
                    }
                    check_name(&target, self.limits())?;
                    EntryKind::Hardlink(ImagePath::new(&target)?)
                }
                b'3' | b'4' => {
                    let device = |range, name| {
                        let value = header
                            .unsigned(range, name)
                            .map_err(|_| bad(&format!("{name} field is not a device number")))?;
                        u32::try_from(value).map_err(|_| bad(&format!("{name} out of range")))
                    };
                    let major = device(field::DEV_MAJOR, "device major")?;
                    let minor = device(field::DEV_MINOR, "device minor")?;
                    if entry_type == b'3' {
                        EntryKind::CharDevice { major, minor }
                    } else {
                        EntryKind::BlockDevice { major, minor }
                    }
                }
                b'6' => EntryKind::Fifo,
                b'S' => return Err(bad("sparse files are not supported")),
                other => {
                    return Err(bad(&format!(
                        "unsupported entry type `{}`",
                        other.escape_ascii()
                    )))
                }
            });
        }
        if let Some(kind) = kept {
            if path.is_root() && !matches!(kind, EntryKind::Directory) {
                return Err(Error::RootDirectory {
                    reason: "a layer entry makes the root a non-directory",
                });
            }
            let metadata = metadata(header, ext, &raw_path)?;
            let entry = Arc::new(Entry::new(kind, metadata));
            let previous = changes.entries.insert(path.clone(), entry.clone());
            let refused = match &previous {
                None => false,
                Some(first) if self.members => {
                    INDEX_MEMBERS.contains(&path.as_bytes()) || !same_member(first, &entry)?
                }
                Some(_) => self.options.duplicates == Duplicates::Reject,
            };
            if refused {
                return Err(Error::DuplicateEntry {
                    path: crate::error::path_bytes(&path),
                });
            }
        }
        self.last = Some(raw_path);
        self.padding(size, true)
    }
}

/// The members of an image file that index it: one of them twice is refused even with the
/// same bytes, so that no reader has to pick one.
pub(crate) const INDEX_MEMBERS: [&[u8]; 4] = [
    b"manifest.json",
    b"index.json",
    b"oci-layout",
    b"repositories",
];

/// The metadata of one entry (R9): mode masked to `0o7777`, owner and mtime with their PAX
/// overrides, xattrs from `SCHILY.xattr.*`.
fn metadata(header: &Header, ext: &Extensions, raw_path: &[u8]) -> Result<Metadata> {
    let at_path = |e| named(e, raw_path);
    let bad_pax = |key: &str| Error::tar(Some(raw_path), format!("bad PAX {key}"));
    let id = |key: &[u8], range, name| -> Result<u64> {
        match ext.pax(key) {
            Some(v) => parse_pax_u64(v).ok_or_else(|| bad_pax(name)),
            None => header.unsigned(range, name).map_err(at_path),
        }
    };
    let mut metadata = Metadata {
        mode: header.unsigned(field::MODE, "mode").map_err(at_path)? as u32 & 0o7777,
        uid: id(b"uid", field::UID, "uid")?,
        gid: id(b"gid", field::GID, "gid")?,
        mtime: match ext.pax(b"mtime") {
            Some(v) => parse_pax_time(v).ok_or_else(|| bad_pax("mtime"))?,
            None => header.number(field::MTIME, "mtime").map_err(at_path)?,
        },
        xattrs: BTreeMap::new(),
    };
    for (key, value) in ext.pax.iter().flatten() {
        if let Some(name) = key.strip_prefix(PAX_XATTR.as_bytes()) {
            metadata
                .xattrs
                .insert(Bytes::copy_from_slice(name), Bytes::copy_from_slice(value));
        }
    }
    Ok(metadata)
}

/// Puts `path` into an `InvalidTar` that names no entry.
fn named(e: Error, path: &[u8]) -> Error {
    match e {
        Error::InvalidTar { path: None, reason } => Error::tar(Some(path), reason),
        other => other,
    }
}

/// Checks a name from a tar against the path limits: total length, component length and
/// depth, before anything is built from it.
pub(crate) fn check_name(name: &[u8], limits: &Limits) -> Result<()> {
    Limits::check("path bytes", name.len() as u64, limits.path_bytes as u64)?;
    let mut depth = 0u64;
    for component in name.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
        Limits::check(
            "path component bytes",
            component.len() as u64,
            limits.name_bytes as u64,
        )?;
        depth += 1;
    }
    Limits::check("path depth", depth, limits.depth as u64)
}

/// Splits a PAX extended header into `(key, value)` records. Each record is
/// `LEN KEY=VALUE\n` with LEN counting the whole record, so values may hold any byte,
/// newlines included. NUL padding after the last record is allowed.
///
/// A NUL is refused where a C reader would stop at it and see another name than this
/// reader does (Go's `validPAXRecord`): in any key (an xattr name is part of its key), and
/// in the values of `linkpath`, `uname` and `gname` (in `path` the name check refuses it
/// with [`Error::InvalidPath`], as every name with a NUL). xattr values are binary and may
/// hold NULs.
fn pax_records(mut data: &[u8]) -> std::result::Result<Vec<PaxRecord>, String> {
    let mut records = Vec::new();
    while data.first().is_some_and(|&b| b != 0) {
        let space = data
            .iter()
            .position(|&b| b == b' ')
            .ok_or("malformed PAX record".to_owned())?;
        let len: usize = std::str::from_utf8(&data[..space])
            .ok()
            .and_then(|n| n.parse().ok())
            .ok_or("malformed PAX record length".to_owned())?;
        if len <= space + 1 || len > data.len() {
            return Err("PAX record length out of range".into());
        }
        let record = data[space + 1..len]
            .strip_suffix(b"\n")
            .ok_or("PAX record does not end in a newline".to_owned())?;
        let eq = record
            .iter()
            .position(|&b| b == b'=')
            .ok_or("PAX record without `=`".to_owned())?;
        let (key, value) = (&record[..eq], &record[eq + 1..]);
        if key.is_empty() {
            return Err("PAX record with an empty key".into());
        }
        let nul_in_value = matches!(key, b"linkpath" | b"uname" | b"gname");
        if key.contains(&0) || (nul_in_value && value.contains(&0)) {
            return Err(format!("NUL in the PAX record `{}`", key.escape_ascii()));
        }
        records.push((key.to_vec(), value.to_vec()));
        data = &data[len..];
    }
    Ok(records)
}

/// Parses a PAX decimal integer (`uid`, `gid`, `size`).
fn parse_pax_u64(value: &[u8]) -> Option<u64> {
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// Parses a PAX time (`123`, `-5`, `123.456`): whole seconds, the fraction dropped.
fn parse_pax_time(value: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(value).ok()?;
    let whole = text.split_once('.').map_or(text, |(w, _)| w);
    match whole {
        "" | "-" => Some(0),
        w => w.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_as_go_reads_them() {
        assert_eq!(number(b"0000644\0"), Ok(0o644));
        assert_eq!(number(b"  644 \0"), Ok(0o644));
        assert_eq!(number(b"\0\0\0\0"), Ok(0));
        assert_eq!(number(b"0000000000z\0"), Err("is not an octal number"));
        let mut big = [0u8; 12];
        big[0] = 0x80;
        big[11] = 5;
        assert_eq!(number(&big), Ok(5));
        assert_eq!(number(&[0xff; 12]), Ok(-1));
        let mut huge = [0u8; 12];
        huge[0] = 0x80;
        huge[3] = 1;
        assert_eq!(number(&huge), Err("overflows 64 bits"));
    }

    #[test]
    fn pax_times() {
        assert_eq!(parse_pax_time(b"123"), Some(123));
        assert_eq!(parse_pax_time(b"123.999"), Some(123));
        assert_eq!(parse_pax_time(b"-5.5"), Some(-5));
        assert_eq!(parse_pax_time(b"x"), None);
    }
}
