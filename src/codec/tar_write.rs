//! Writing a [`Changeset`] as the canonical layer tar, streaming: file contents go from memory
//! or disk straight to the writer, never gathered first. The `.wh.` spelling is encoded here.

use std::io::{self, Write};

use tar::{EntryType, Header};

use crate::changes::Changeset;
use crate::codec::{AUFS_META, OPAQUE, PAX_XATTR, WHITEOUT};
use crate::contents::Contents;
use crate::entry::{Entry, EntryKind, Metadata};
use crate::error::{Error, Result};
use crate::path::ImagePath;

/// The largest value the octal fields of a USTAR header hold: uid and gid (7 digits).
const MAX_ID: u64 = 0o7_777_777;
/// The largest mtime in 11 octal digits.
const MAX_TIME: i64 = 0o77_777_777_777;
/// The largest size in 11 octal digits.
const MAX_SIZE: u64 = 0o77_777_777_777;

/// What writing a tar gave: its length, and where each regular file's data starts in it.
#[derive(Debug, Default)]
pub(crate) struct Written {
    /// Bytes written, end blocks included.
    pub(crate) len: u64,
    /// For each regular file entry, in path order: its path and the offset of its data.
    pub(crate) data: Vec<(ImagePath, u64)>,
}

/// Refuses changes that the tar form cannot carry: they would read back as something else.
///
/// - a regular file named `.wh.*` reads back as a whiteout or opaque marker (R5);
/// - a whiteout of a `.wh.*` name is written as `.wh..wh.*`, an AUFS meta name, ignored;
/// - anything whose first component is an AUFS meta name (`.wh..wh.*`, other than
///   `.wh..wh..opq`) is ignored when read.
fn check_writable(changes: &Changeset) -> Result<()> {
    let refuse = |path: &ImagePath, reason| {
        Err(Error::InvalidPath {
            path: crate::error::path_bytes(path),
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

/// One record of the canonical tar before it is written.
enum Record<'a> {
    Entry(&'a ImagePath, &'a Entry),
    Whiteout,
    Opaque,
}

/// Writes `changes` as the canonical layer tar to `out`, streaming file contents from memory
/// or disk; `what` names the output in an I/O error.
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
///
/// # Errors
///
/// [`Error::InvalidPath`] for a name the tar cannot carry, [`Error::Io`] if reading a file's
/// contents or writing fails.
pub(crate) fn write(changes: &Changeset, out: &mut dyn Write, what: &str) -> Result<Written> {
    check_writable(changes)?;
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

    let mut out = Counting { inner: out, len: 0 };
    let mut written = Written::default();
    for (name, record) in &records {
        match record {
            Record::Whiteout | Record::Opaque => {
                write_record(
                    &mut out,
                    name.as_bytes(),
                    &Metadata::default(),
                    EntryType::Regular,
                    None,
                    None,
                    None,
                    what,
                )?;
            }
            Record::Entry(path, entry) => {
                if let Some(at) = write_entry(&mut out, path, entry, what)? {
                    written.data.push(((*path).clone(), at));
                }
            }
        }
    }
    out.write_all(&[0; 1024])
        .map_err(|e| Error::io(format_args!("writing {what}"), e))?;
    written.len = out.len;
    Ok(written)
}

/// A writer that counts what passes through it.
struct Counting<'a> {
    inner: &'a mut dyn Write,
    len: u64,
}

impl Write for Counting<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.len += n as u64;
        Ok(n)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.inner.write_all(buf)?;
        self.len += buf.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes one entry; returns where its data starts if it is a regular file.
fn write_entry(
    out: &mut Counting<'_>,
    path: &ImagePath,
    entry: &Entry,
    what: &str,
) -> Result<Option<u64>> {
    let mut name = path.as_bytes().to_vec();
    let (entry_type, data, link, device): (_, _, Option<&[u8]>, _) = match &entry.kind {
        EntryKind::File(data) => (EntryType::Regular, Some(data), None, None),
        EntryKind::Directory => {
            if path.is_root() {
                name = b"./".to_vec();
            } else {
                name.push(b'/');
            }
            (EntryType::Directory, None, None, None)
        }
        EntryKind::Symlink(target) => (EntryType::Symlink, None, Some(target), None),
        EntryKind::Hardlink(target) => (EntryType::Link, None, Some(target.as_bytes()), None),
        EntryKind::CharDevice { major, minor } => {
            (EntryType::Char, None, None, Some((*major, *minor)))
        }
        EntryKind::BlockDevice { major, minor } => {
            (EntryType::Block, None, None, Some((*major, *minor)))
        }
        EntryKind::Fifo => (EntryType::Fifo, None, None, None),
    };
    write_record(
        out,
        &name,
        &entry.metadata,
        entry_type,
        data,
        link,
        device,
        what,
    )
}

/// Whether a name fits a USTAR name or linkname field as is.
fn fits_ustar(name: &[u8]) -> bool {
    name.len() <= 100 && name.is_ascii()
}

/// Writes one record: a PAX header first if a value does not fit USTAR, then the header and
/// the data padded to a whole block. Returns where the data starts, if there is data.
#[allow(clippy::too_many_arguments)]
fn write_record(
    out: &mut Counting<'_>,
    name: &[u8],
    m: &Metadata,
    entry_type: EntryType,
    data: Option<&Contents>,
    link: Option<&[u8]>,
    device: Option<(u32, u32)>,
    what: &str,
) -> Result<Option<u64>> {
    let fail = |e| Error::io(format_args!("writing {what}"), e);
    let size = data.map_or(0, Contents::len);
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
        let body = Contents::from(body);
        write_record(
            out,
            &pax_name,
            &Metadata::default(),
            EntryType::XHeader,
            Some(&body),
            None,
            None,
            what,
        )?;
    }
    let header = ustar_header(name, m, entry_type, size, link, device);
    out.write_all(header.as_bytes()).map_err(fail)?;
    let start = out.len;
    if let Some(data) = data {
        data.copy_to(out, what)?;
    }
    out.write_all(&[0; 512][..((512 - size % 512) % 512) as usize])
        .map_err(fail)?;
    Ok(data.map(|_| start))
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
}
