//! Layer tars: reading any single-layer tar met in the wild into typed [`Changes`], and
//! writing [`Changes`] as the canonical tar. The `.wh.` whiteout spelling lives here only.

use std::collections::BTreeMap;
use std::io::{self, Cursor};
use std::sync::Arc;

use bytes::Bytes;
use tar::{EntryType, Header};

use crate::entry::{Entry, EntryKind, Metadata};
use crate::error::{lossy, Error, Result};
use crate::layer::{Changes, Duplicates, ReadOptions};
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
    let mut last: Option<Vec<u8>> = None;
    for entry in entries {
        let mut entry = entry.map_err(|e| {
            Error::tar(
                None,
                match &last {
                    Some(p) => format!("after `{}`: {e}", lossy(p)),
                    None => e.to_string(),
                },
            )
        })?;
        let entry_type = entry.header().entry_type();
        if entry_type.is_pax_global_extensions() {
            continue;
        }
        let raw_path = entry.path_bytes().into_owned();
        let bad = |reason: &str| Error::tar(Some(&raw_path), reason.to_owned());
        if raw_path.is_empty() {
            return Err(bad("empty name"));
        }
        let path = ImagePath::new(&raw_path)?;

        // Markers (R2, R3, R5): only regular files are markers.
        if entry_type.is_file() {
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

        let metadata = metadata(&mut entry, &raw_path)?;
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
            EntryType::Symlink => EntryKind::Symlink(Bytes::from(
                entry.link_name_bytes().unwrap_or_default().into_owned(),
            )),
            EntryType::Link => {
                let target = entry.link_name_bytes().unwrap_or_default();
                if target.is_empty() {
                    return Err(bad("hardlink with no target"));
                }
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
    Ok(changes)
}

/// The metadata of one tar entry (R9): mode masked to `0o7777`, owner and mtime with their
/// PAX overrides, xattrs from `SCHILY.xattr.*`.
fn metadata<R: io::Read>(entry: &mut tar::Entry<'_, R>, raw_path: &[u8]) -> Result<Metadata> {
    let bad = |e: io::Error| Error::tar(Some(raw_path), e.to_string());
    let header = entry.header();
    let mut metadata = Metadata {
        mode: header.mode().map_err(bad)? & 0o7777,
        uid: header.uid().map_err(bad)?,
        gid: header.gid().map_err(bad)?,
        mtime: header.mtime().map_err(bad)? as i64,
        xattrs: BTreeMap::new(),
    };
    if let Some(pax) = entry.pax_extensions().map_err(bad)? {
        for ext in pax {
            let ext = ext.map_err(bad)?;
            let key = ext.key_bytes();
            if let Some(name) = key.strip_prefix(PAX_XATTR.as_bytes()) {
                metadata.xattrs.insert(
                    Bytes::copy_from_slice(name),
                    Bytes::copy_from_slice(ext.value_bytes()),
                );
            } else if key == b"mtime" {
                metadata.mtime = parse_pax_time(ext.value_bytes())
                    .ok_or_else(|| Error::tar(Some(raw_path), "bad PAX mtime"))?;
            }
        }
    }
    Ok(metadata)
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
pub(crate) fn write(changes: &Changes) -> Vec<u8> {
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

    // Headers (with room for a PAX header each) and padded contents: one allocation.
    let capacity: usize = records
        .iter()
        .map(|(_, r)| match r {
            Record::Entry(_, e) => 1024 + e.contents().map_or(0, |c| c.len().next_multiple_of(512)),
            _ => 512,
        })
        .sum::<usize>()
        + 1024;
    let mut out = Vec::with_capacity(capacity);
    for (name, record) in &records {
        match record {
            Record::Whiteout | Record::Opaque => {
                write_header(
                    &mut out,
                    name.as_bytes(),
                    &Metadata::default(),
                    EntryType::Regular,
                    0,
                    None,
                    None,
                );
            }
            Record::Entry(path, entry) => write_entry(&mut out, path, entry),
        }
    }
    out.extend_from_slice(&[0; 1024]);
    out
}

fn write_entry(out: &mut Vec<u8>, path: &ImagePath, entry: &Entry) {
    let mut name = path.as_bytes().to_vec();
    let m = &entry.metadata;
    match &entry.kind {
        EntryKind::File(data) => {
            write_header(
                out,
                &name,
                m,
                EntryType::Regular,
                data.len() as u64,
                None,
                None,
            );
            out.extend_from_slice(data);
            let pad = (512 - data.len() % 512) % 512;
            out.resize(out.len() + pad, 0);
        }
        EntryKind::Directory => {
            if path.is_root() {
                name = b"./".to_vec();
            } else {
                name.push(b'/');
            }
            write_header(out, &name, m, EntryType::Directory, 0, None, None);
        }
        EntryKind::Symlink(target) => {
            write_header(out, &name, m, EntryType::Symlink, 0, Some(target), None);
        }
        EntryKind::Hardlink(target) => {
            write_header(
                out,
                &name,
                m,
                EntryType::Link,
                0,
                Some(target.as_bytes()),
                None,
            );
        }
        EntryKind::CharDevice { major, minor } => {
            write_header(
                out,
                &name,
                m,
                EntryType::Char,
                0,
                None,
                Some((*major, *minor)),
            );
        }
        EntryKind::BlockDevice { major, minor } => {
            write_header(
                out,
                &name,
                m,
                EntryType::Block,
                0,
                None,
                Some((*major, *minor)),
            );
        }
        EntryKind::Fifo => write_header(out, &name, m, EntryType::Fifo, 0, None, None),
    }
}

/// Whether a name fits a USTAR name or linkname field as is.
fn fits_ustar(name: &[u8]) -> bool {
    name.len() <= 100 && name.is_ascii()
}

fn write_header(
    out: &mut Vec<u8>,
    name: &[u8],
    m: &Metadata,
    entry_type: EntryType,
    size: u64,
    link: Option<&[u8]>,
    device: Option<(u32, u32)>,
) {
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
        let mut pax_name = b"PaxHeaders/".to_vec();
        pax_name.extend_from_slice(&name[..name.len().min(89)]);
        let header = ustar_header(
            &pax_name,
            &Metadata::default(),
            EntryType::XHeader,
            body.len() as u64,
            None,
            None,
        );
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(&body);
        out.resize(out.len() + (512 - body.len() % 512) % 512, 0);
    }
    let header = ustar_header(name, m, entry_type, size, link, device);
    out.extend_from_slice(header.as_bytes());
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
