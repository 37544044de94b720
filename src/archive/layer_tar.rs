//! Layer tars: reading any single-layer tar met in the wild into typed [`Changes`], and
//! writing [`Changes`] as the canonical tar. The `.wh.` whiteout spelling lives here only.

use std::collections::BTreeMap;
use std::io::{self, Cursor, Write};
use std::sync::Arc;

use bytes::Bytes;
use tar::{EntryType, Header};

use crate::entry::{Entry, EntryKind, Metadata};
use crate::error::{lossy, Error, Result};
use crate::layer::{Changes, Duplicates, ReadOptions};
use crate::limits::Limits;
use crate::path::ImagePath;

/// The prefix of a whiteout file name (R2).
const WHITEOUT: &[u8] = b".wh.";
/// The name of an opaque marker (R3).
const OPAQUE: &[u8] = b".wh..wh..opq";
/// The prefix of AUFS meta files, ignored (R5).
const AUFS_META: &[u8] = b".wh..wh.";
/// The PAX key prefix of an extended attribute.
const PAX_XATTR: &str = "SCHILY.xattr.";

/// Reads a whole uncompressed layer tar. File contents are slices of `tar`.
pub(crate) fn read(tar: &Bytes, options: &ReadOptions) -> Result<Changes> {
    let mut changes = Changes::default();
    let mut archive = tar::Archive::new(Cursor::new(&tar[..]));
    let entries = archive
        .entries_with_seek()
        .map_err(|e| Error::tar(None, e.to_string()))?;
    let limits = &options.limits;
    let mut count = 0u64;
    let mut last: Option<Vec<u8>> = None;
    // Where the record after the previous entry starts: the extension records (`x`, `L`,
    // `K`) of the next entry lie between there and its header.
    let mut next_record = 0u64;
    // Where the previous entry's data ends (before its padding).
    let mut data_end = 0u64;
    for entry in entries {
        let entry = entry.map_err(|e| {
            Error::tar(
                None,
                match &last {
                    Some(p) => format!("after `{}`: {e}", lossy(p)),
                    None => e.to_string(),
                },
            )
        })?;
        count += 1;
        Limits::check("entries in one layer", count, limits.entries)?;
        let pax = pax_before(tar, next_record, entry.raw_header_position(), limits)?;
        data_end = entry
            .raw_file_position()
            .checked_add(entry.size())
            .ok_or_else(|| Error::tar(None, "entry size overflows"))?;
        next_record = data_end
            .checked_next_multiple_of(512)
            .ok_or_else(|| Error::tar(None, "entry size overflows"))?;
        let entry_type = entry.header().entry_type();
        if entry_type.is_pax_global_extensions() {
            continue;
        }
        // The tar crate splits PAX records at newlines, so it misses any record after a value
        // holding one; the records are parsed here. A `path` or `linkpath` record wins over
        // the header, a GNU long name over both, as Go reads them.
        let raw_path = match pax.path() {
            Some(p) => p.to_vec(),
            None => entry.path_bytes().into_owned(),
        };
        let bad = |reason: &str| Error::tar(Some(&raw_path), reason.to_owned());
        if raw_path.is_empty() {
            return Err(bad("empty name"));
        }
        if let Some(size) = pax.get(b"size") {
            if parse_pax_u64(size) != Some(entry.size()) {
                return Err(bad("PAX size record that could not be applied"));
            }
        }
        check_name(&raw_path, limits)?;
        let path = ImagePath::new(&raw_path)?;

        // AUFS meta entries at the root (`.wh..wh.aufs`, `.wh..wh.plnk/…`, `.wh..wh.orph/…`),
        // of any type and with everything below them: ignored, as Docker does (R5).
        if path
            .components()
            .next()
            .is_some_and(|c| c.starts_with(AUFS_META) && c != OPAQUE)
        {
            last = Some(raw_path);
            continue;
        }

        // Markers (R2, R3, R5): only regular files are markers; an old-style regular entry
        // whose name ends in `/` is a directory.
        if entry_type.is_file() && !raw_path.ends_with(b"/") {
            if let Some(name) = path.file_name().filter(|n| n.starts_with(WHITEOUT)) {
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
                last = Some(raw_path);
                continue;
            }
        }

        let metadata = metadata(&entry, &pax, &raw_path)?;
        let header = entry.header();
        let kind = match entry_type {
            EntryType::Regular | EntryType::Continuous if raw_path.ends_with(b"/") => {
                EntryKind::Directory
            }
            EntryType::Regular | EntryType::Continuous => {
                let start = entry.raw_file_position();
                let end = start.checked_add(entry.size());
                match end {
                    Some(end) if end <= tar.len() as u64 => {
                        EntryKind::File(tar.slice(start as usize..end as usize))
                    }
                    _ => return Err(bad("file data runs past the end of the archive")),
                }
            }
            EntryType::Directory => EntryKind::Directory,
            EntryType::Symlink => {
                let target = match pax.linkpath() {
                    Some(l) => l.to_vec(),
                    None => entry.link_name_bytes().unwrap_or_default().into_owned(),
                };
                // As symlink(2) refuses a target of PATH_MAX or more: each hop of a
                // resolution queues the target's components, so an unbounded target would
                // let 40 hops hold 40 times its size.
                Limits::check(
                    "symlink target bytes",
                    target.len() as u64,
                    limits.path_bytes as u64,
                )?;
                EntryKind::Symlink(Bytes::from(target))
            }
            EntryType::Link => {
                let target = match pax.linkpath() {
                    Some(l) => l.to_vec(),
                    None => entry.link_name_bytes().unwrap_or_default().into_owned(),
                };
                if target.is_empty() {
                    return Err(bad("hardlink with no target"));
                }
                check_name(&target, limits)?;
                EntryKind::Hardlink(ImagePath::new(&target)?)
            }
            EntryType::Char | EntryType::Block => {
                let major = header
                    .device_major()
                    .map_err(|e| bad(&e.to_string()))?
                    .unwrap_or(0);
                let minor = header
                    .device_minor()
                    .map_err(|e| bad(&e.to_string()))?
                    .unwrap_or(0);
                if entry_type == EntryType::Char {
                    EntryKind::CharDevice { major, minor }
                } else {
                    EntryKind::BlockDevice { major, minor }
                }
            }
            EntryType::Fifo => EntryKind::Fifo,
            EntryType::GNUSparse => return Err(bad("sparse files are not supported")),
            other => {
                return Err(bad(&format!(
                    "unsupported entry type `{}`",
                    other.as_byte().escape_ascii()
                )))
            }
        };
        if path.is_root() && !matches!(kind, EntryKind::Directory) {
            return Err(Error::RootDirectory {
                reason: "a layer entry makes the root a non-directory",
            });
        }
        let previous = changes
            .entries
            .insert(path.clone(), Arc::new(Entry::new(kind, metadata)));
        if previous.is_some() && options.duplicates == Duplicates::Reject {
            return Err(Error::DuplicateEntry {
                path: path.to_string(),
            });
        }
        last = Some(raw_path);
    }
    // The archive may stop right after the last entry's data (no padding, no end blocks:
    // an unclosed Go writer), but not inside its data or its padding, as Go readers agree.
    let len = tar.len() as u64;
    if len < next_record && len != data_end {
        return Err(Error::tar(
            last.as_deref(),
            "the archive ends inside an entry's data or padding",
        ));
    }
    // After the end: zero blocks only (the end marker and record padding), and not too many.
    // Data after a lone zero block is a second archive some readers would see and others not.
    let rest = tar.get(next_record.min(len) as usize..).unwrap_or_default();
    if let Some(at) = rest.iter().position(|&b| b != 0) {
        return Err(Error::tar(
            None,
            format!(
                "data after the end of the archive at offset {}",
                next_record + at as u64
            ),
        ));
    }
    Limits::check(
        "zero bytes after the end of the archive",
        (rest.len() as u64).saturating_sub(1024),
        limits.trailing_bytes,
    )?;
    Ok(changes)
}

/// The metadata of one tar entry (R9): mode masked to `0o7777`, owner and mtime with their
/// PAX overrides, xattrs from `SCHILY.xattr.*`.
fn metadata<R: io::Read>(
    entry: &tar::Entry<'_, R>,
    pax: &Pax<'_>,
    raw_path: &[u8],
) -> Result<Metadata> {
    let bad = |e: io::Error| Error::tar(Some(raw_path), e.to_string());
    let bad_pax = |key: &str| Error::tar(Some(raw_path), format!("bad PAX {key}"));
    let header = entry.header();
    let mut metadata = Metadata {
        mode: header.mode().map_err(bad)? & 0o7777,
        uid: match pax.get(b"uid") {
            Some(v) => parse_pax_u64(v).ok_or_else(|| bad_pax("uid"))?,
            None => header.uid().map_err(bad)?,
        },
        gid: match pax.get(b"gid") {
            Some(v) => parse_pax_u64(v).ok_or_else(|| bad_pax("gid"))?,
            None => header.gid().map_err(bad)?,
        },
        mtime: match pax.get(b"mtime") {
            Some(v) => parse_pax_time(v).ok_or_else(|| bad_pax("mtime"))?,
            None => header.mtime().map_err(bad)? as i64,
        },
        xattrs: BTreeMap::new(),
    };
    for (key, value) in &pax.records {
        if let Some(name) = key.strip_prefix(PAX_XATTR.as_bytes()) {
            metadata
                .xattrs
                .insert(Bytes::copy_from_slice(name), Bytes::copy_from_slice(value));
        }
    }
    Ok(metadata)
}

/// One PAX record: key and value, as bytes.
type PaxRecord<'a> = (&'a [u8], &'a [u8]);

/// The PAX records (`x`) that apply to one entry, in archive order.
#[derive(Default)]
struct Pax<'a> {
    records: Vec<PaxRecord<'a>>,
    /// Whether a GNU `L` record names the entry (the tar crate applies it).
    gnu_long_name: bool,
    /// Whether a GNU `K` record gives the link target (the tar crate applies it).
    gnu_long_link: bool,
}

impl<'a> Pax<'a> {
    /// The `path` record, unless a GNU long name overrides it.
    fn path(&self) -> Option<&'a [u8]> {
        self.get(b"path").filter(|_| !self.gnu_long_name)
    }

    /// The `linkpath` record, unless a GNU long link overrides it.
    fn linkpath(&self) -> Option<&'a [u8]> {
        self.get(b"linkpath").filter(|_| !self.gnu_long_link)
    }

    /// The value of the last record with this key.
    fn get(&self, key: &[u8]) -> Option<&'a [u8]> {
        self.records
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
    }
}

/// Checks a name from a tar against the path limits: total length, component length and
/// depth, before anything is built from it.
fn check_name(name: &[u8], limits: &Limits) -> Result<()> {
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

/// Parses the PAX records of the extension headers between `start` (where the previous
/// entry's data ended) and `header` (the entry's own header).
fn pax_before<'a>(tar: &'a [u8], start: u64, header: u64, limits: &Limits) -> Result<Pax<'a>> {
    let mut pax = Pax::default();
    let mut pos = start;
    while pos < header {
        let bad = |reason: &str| Error::tar(None, format!("extension header at {pos}: {reason}"));
        let block = usize::try_from(pos)
            .ok()
            .and_then(|p| tar.get(p..p.checked_add(512)?))
            .ok_or_else(|| bad("truncated"))?;
        let h = Header::from_byte_slice(block);
        let size = h.entry_size().map_err(|e| bad(&e.to_string()))?;
        Limits::check("PAX or long-name record bytes", size, limits.pax_bytes)?;
        let data_start = pos + 512;
        let data_end = data_start
            .checked_add(size)
            .ok_or_else(|| bad("too large"))?;
        pax.gnu_long_name |= h.entry_type().is_gnu_longname();
        pax.gnu_long_link |= h.entry_type().is_gnu_longlink();
        if h.entry_type().is_pax_local_extensions() {
            let data = tar
                .get(data_start as usize..data_end as usize)
                .ok_or_else(|| bad("data runs past the end of the archive"))?;
            pax.records.extend(pax_records(data).map_err(bad)?);
        }
        pos = data_end
            .checked_next_multiple_of(512)
            .ok_or_else(|| bad("too large"))?;
    }
    Ok(pax)
}

/// Splits a PAX extended header into `(key, value)` records. Each record is
/// `LEN KEY=VALUE\n` with LEN counting the whole record, so values may hold any byte,
/// newlines included. NUL padding after the last record is allowed.
fn pax_records(mut data: &[u8]) -> std::result::Result<Vec<PaxRecord<'_>>, &'static str> {
    let mut records = Vec::new();
    while data.first().is_some_and(|&b| b != 0) {
        let space = data
            .iter()
            .position(|&b| b == b' ')
            .ok_or("malformed PAX record")?;
        let len: usize = std::str::from_utf8(&data[..space])
            .ok()
            .and_then(|n| n.parse().ok())
            .ok_or("malformed PAX record length")?;
        if len <= space + 1 || len > data.len() {
            return Err("PAX record length out of range");
        }
        let record = data[space + 1..len]
            .strip_suffix(b"\n")
            .ok_or("PAX record does not end in a newline")?;
        let eq = record
            .iter()
            .position(|&b| b == b'=')
            .ok_or("PAX record without `=`")?;
        records.push((&record[..eq], &record[eq + 1..]));
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

// ---------------------------------------------------------------------------------------
// Writing

/// Refuses changes that the tar form cannot carry: they would read back as something else.
///
/// - a regular file named `.wh.*` reads back as a whiteout or opaque marker (R5);
/// - a whiteout of a `.wh.*` name is written as `.wh..wh.*`, an AUFS meta name, ignored;
/// - anything whose first component is an AUFS meta name (`.wh..wh.*`, other than
///   `.wh..wh..opq`) is ignored when read.
fn check_writable(changes: &Changes) -> Result<()> {
    let refuse = |path: &ImagePath, reason| {
        Err(Error::InvalidPath {
            path: path.to_string(),
            reason,
        })
    };
    let aufs_root = |path: &ImagePath| {
        path.components()
            .next()
            .is_some_and(|c| c.starts_with(AUFS_META) && c != OPAQUE)
    };
    for (path, entry) in &changes.entries {
        let marker_name = path.file_name().is_some_and(|n| n.starts_with(WHITEOUT));
        if marker_name && matches!(entry.kind, EntryKind::File(_)) {
            return refuse(path, "a regular file named `.wh.*` reads back as a marker");
        }
        if aufs_root(path) {
            return refuse(path, "an AUFS meta name at the root is ignored when read");
        }
    }
    for path in &changes.whiteouts {
        if path.file_name().is_some_and(|n| n.starts_with(WHITEOUT)) {
            return refuse(path, "a whiteout of a `.wh.*` name cannot be written");
        }
        if aufs_root(path) {
            return refuse(path, "an AUFS meta name at the root is ignored when read");
        }
    }
    for path in &changes.opaques {
        if aufs_root(path) {
            return refuse(path, "an AUFS meta name at the root is ignored when read");
        }
    }
    Ok(())
}

/// The largest value the octal fields of a USTAR header hold: uid and gid (7 digits).
const MAX_ID: u64 = 0o7_777_777;
/// The largest mtime in 11 octal digits.
const MAX_TIME: i64 = 0o77_777_777_777;
/// The largest size in 11 octal digits.
const MAX_SIZE: u64 = 0o77_777_777_777;

/// One record of the canonical tar before it is written.
enum Record<'a> {
    Entry(&'a ImagePath, &'a Entry),
    Whiteout,
    Opaque,
}

/// Writes `changes` as the canonical layer tar:
///
/// - entries and markers in path order (component by component), so a directory comes
///   before its children and the output never depends on the order of the calls;
/// - names without a leading `./`, directories with a trailing `/`, the root as `./`;
/// - USTAR headers with empty user and group names; a PAX header (`x`) only when needed:
///   `path` or `linkpath` for names over 100 bytes or not ASCII, `uid`/`gid` over 2097151,
///   `mtime` outside 0..=8^11-1, `size` over 8 GiB, `SCHILY.xattr.NAME` for each xattr;
/// - whiteouts and opaque markers as empty regular files with mode 0, owner 0:0, mtime 0;
/// - mtimes of entries as the entries carry them (no clamping: choose them when building);
/// - two zero blocks at the end.
///
/// Names that would read back as something else are refused first (see [`check_writable`]).
pub(crate) fn write(changes: &Changes) -> Result<Vec<u8>> {
    let capacity: usize = changes
        .entries
        .values()
        .map(|e| 1024 + e.contents().map_or(0, |c| c.len().next_multiple_of(512)))
        .sum::<usize>()
        + 512 * (changes.whiteouts.len() + changes.opaques.len())
        + 1024;
    let mut out = Vec::with_capacity(capacity);
    write_to(changes, &mut out, "a layer tar")?;
    Ok(out)
}

/// Writes `changes` as the canonical tar (see [`write`]) to any writer, streaming; `what`
/// names the output in an I/O error.
pub(crate) fn write_to<W: Write>(changes: &Changes, out: &mut W, what: &str) -> Result<()> {
    check_writable(changes)?;
    write_records(changes, out).map_err(|e| Error::io(format_args!("writing {what}"), e))
}

fn write_records<W: Write>(changes: &Changes, out: &mut W) -> io::Result<()> {
    let mut records: Vec<(ImagePath, Record<'_>)> = Vec::new();
    for (path, entry) in &changes.entries {
        records.push((path.clone(), Record::Entry(path, entry)));
    }
    for path in &changes.whiteouts {
        let (parent, name) = crate::tree::split(path);
        let mut marker = WHITEOUT.to_vec();
        marker.extend_from_slice(name);
        records.push((parent.join_unchecked(&marker), Record::Whiteout));
    }
    for dir in &changes.opaques {
        records.push((dir.join_unchecked(OPAQUE), Record::Opaque));
    }
    records.sort_by(|a, b| a.0.cmp(&b.0));

    for (name, record) in &records {
        match record {
            Record::Whiteout | Record::Opaque => write_record(
                out,
                name.as_bytes(),
                &Metadata::default(),
                EntryType::Regular,
                &[],
                None,
                None,
            )?,
            Record::Entry(path, entry) => write_entry(out, path, entry)?,
        }
    }
    out.write_all(&[0; 1024])
}

fn write_entry<W: Write>(out: &mut W, path: &ImagePath, entry: &Entry) -> io::Result<()> {
    let mut name = path.as_bytes().to_vec();
    let (entry_type, data, link, device): (_, &[u8], Option<&[u8]>, _) = match &entry.kind {
        EntryKind::File(data) => (EntryType::Regular, data, None, None),
        EntryKind::Directory => {
            if path.is_root() {
                name = b"./".to_vec();
            } else {
                name.push(b'/');
            }
            (EntryType::Directory, &[], None, None)
        }
        EntryKind::Symlink(target) => (EntryType::Symlink, &[], Some(target), None),
        EntryKind::Hardlink(target) => (EntryType::Link, &[], Some(target.as_bytes()), None),
        EntryKind::CharDevice { major, minor } => {
            (EntryType::Char, &[], None, Some((*major, *minor)))
        }
        EntryKind::BlockDevice { major, minor } => {
            (EntryType::Block, &[], None, Some((*major, *minor)))
        }
        EntryKind::Fifo => (EntryType::Fifo, &[], None, None),
    };
    write_record(out, &name, &entry.metadata, entry_type, data, link, device)
}

/// Whether a name fits a USTAR name or linkname field as is.
fn fits_ustar(name: &[u8]) -> bool {
    name.len() <= 100 && name.is_ascii()
}

/// Writes one record: a PAX header first if a value does not fit USTAR, then the header and
/// the data padded to a whole block.
fn write_record<W: Write>(
    out: &mut W,
    name: &[u8],
    m: &Metadata,
    entry_type: EntryType,
    data: &[u8],
    link: Option<&[u8]>,
    device: Option<(u32, u32)>,
) -> io::Result<()> {
    let size = data.len() as u64;
    let mut pax: Vec<(&[u8], Vec<u8>)> = Vec::new();
    if !fits_ustar(name) {
        pax.push((b"path", name.to_vec()));
    }
    if let Some(link) = link.filter(|l| !fits_ustar(l)) {
        pax.push((b"linkpath", link.to_vec()));
    }
    if m.uid > MAX_ID {
        pax.push((b"uid", m.uid.to_string().into_bytes()));
    }
    if m.gid > MAX_ID {
        pax.push((b"gid", m.gid.to_string().into_bytes()));
    }
    if !(0..=MAX_TIME).contains(&m.mtime) {
        pax.push((b"mtime", m.mtime.to_string().into_bytes()));
    }
    if size > MAX_SIZE {
        pax.push((b"size", size.to_string().into_bytes()));
    }
    let xattr_keys: Vec<Vec<u8>> = m
        .xattrs
        .keys()
        .map(|k| [PAX_XATTR.as_bytes(), k].concat())
        .collect();
    for (key, value) in xattr_keys.iter().zip(m.xattrs.values()) {
        pax.push((key, value.to_vec()));
    }
    if !pax.is_empty() {
        pax.sort_by(|a, b| a.0.cmp(b.0));
        let mut body = Vec::new();
        for (key, value) in &pax {
            pax_record(&mut body, key, value);
        }
        // The PAX header's own name is informative only; keep it short ASCII so it never
        // needs a PAX header itself.
        let mut pax_name = b"PaxHeaders/".to_vec();
        pax_name.extend(
            name.iter()
                .take(89)
                .map(|&b| if b.is_ascii() && b != 0 { b } else { b'_' }),
        );
        write_record(
            out,
            &pax_name,
            &Metadata::default(),
            EntryType::XHeader,
            &body,
            None,
            None,
        )?;
    }
    let header = ustar_header(name, m, entry_type, size, link, device);
    out.write_all(header.as_bytes())?;
    out.write_all(data)?;
    out.write_all(&[0; 512][..(512 - data.len() % 512) % 512])
}

/// One PAX record: `LEN KEY=VALUE\n`, where LEN counts itself.
fn pax_record(body: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let rest = 3 + key.len() + value.len();
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    body.extend_from_slice(len.to_string().as_bytes());
    body.push(b' ');
    body.extend_from_slice(key);
    body.push(b'=');
    body.extend_from_slice(value);
    body.push(b'\n');
}

fn ustar_header(
    name: &[u8],
    m: &Metadata,
    entry_type: EntryType,
    size: u64,
    link: Option<&[u8]>,
    device: Option<(u32, u32)>,
) -> Header {
    let mut header = Header::new_ustar();
    {
        let ustar = header.as_ustar_mut().expect("a ustar header");
        let n = name.len().min(100);
        ustar.name[..n].copy_from_slice(&name[..n]);
        if let Some(link) = link {
            let n = link.len().min(100);
            ustar.linkname[..n].copy_from_slice(&link[..n]);
        }
    }
    header.set_mode(m.mode);
    header.set_uid(m.uid.min(MAX_ID));
    header.set_gid(m.gid.min(MAX_ID));
    header.set_mtime(m.mtime.clamp(0, MAX_TIME) as u64);
    header.set_size(size.min(MAX_SIZE));
    header.set_entry_type(entry_type);
    if let Some((major, minor)) = device {
        header
            .set_device_major(major)
            .expect("a ustar header has device fields");
        header
            .set_device_minor(minor)
            .expect("a ustar header has device fields");
    }
    header.set_cksum();
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        for value_len in [
            0usize, 1, 4, 5, 6, 90, 95, 96, 97, 98, 99, 100, 995, 996, 997, 1000,
        ] {
            let mut body = Vec::new();
            let value = vec![b'x'; value_len];
            pax_record(&mut body, b"path", &value);
            let (len, _) = std::str::from_utf8(&body).unwrap().split_once(' ').unwrap();
            assert_eq!(
                len.parse::<usize>().unwrap(),
                body.len(),
                "value length {value_len}"
            );
        }
    }

    #[test]
    fn pax_times() {
        assert_eq!(parse_pax_time(b"123"), Some(123));
        assert_eq!(parse_pax_time(b"123.999"), Some(123));
        assert_eq!(parse_pax_time(b"-5.5"), Some(-5));
        assert_eq!(parse_pax_time(b"x"), None);
    }
}
