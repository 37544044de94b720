//! What one filesystem entry is: its [`EntryKind`] (with the contents) and its [`Metadata`].

use std::collections::BTreeMap;
use std::fmt;

use bytes::Bytes;

use crate::path::ImagePath;

/// The metadata of an entry (R9): permissions, owner, modification time and extended attributes.
///
/// `mode` holds only the permission, setuid, setgid and sticky bits (`0o7777`); the file type
/// lives in [`EntryKind`]. Times are whole seconds since the Unix epoch.
///
/// ```
/// use layercake::Metadata;
///
/// let m = Metadata::new(0o4755).owner(1000, 1000).mtime(1_700_000_000).xattr("user.k", "v");
/// assert_eq!(m.mode, 0o4755);
/// assert_eq!(m.xattrs.len(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Metadata {
    /// Permission bits plus setuid (`0o4000`), setgid (`0o2000`) and sticky (`0o1000`).
    pub mode: u32,
    /// Owner user id.
    pub uid: u64,
    /// Owner group id.
    pub gid: u64,
    /// Modification time, seconds since the Unix epoch.
    pub mtime: i64,
    /// Extended attributes, name to value (`SCHILY.xattr.*` in a tar).
    pub xattrs: BTreeMap<Bytes, Bytes>,
}

impl Metadata {
    /// Metadata with these mode bits, owned by root, mtime 0, no xattrs.
    ///
    /// # Panics
    ///
    /// If `mode` has bits outside `0o7777` (file-type bits belong in [`EntryKind`]).
    pub fn new(mode: u32) -> Metadata {
        assert!(mode <= 0o7777, "mode {mode:o} has bits outside 0o7777");
        Metadata {
            mode,
            ..Metadata::default()
        }
    }

    /// Sets the owner.
    pub fn owner(mut self, uid: u64, gid: u64) -> Metadata {
        self.uid = uid;
        self.gid = gid;
        self
    }

    /// Sets the modification time (seconds since the epoch).
    pub fn mtime(mut self, mtime: i64) -> Metadata {
        self.mtime = mtime;
        self
    }

    /// Adds an extended attribute.
    pub fn xattr(mut self, name: impl Into<Bytes>, value: impl Into<Bytes>) -> Metadata {
        self.xattrs.insert(name.into(), value.into());
        self
    }
}

/// The type of an entry, without its contents (what `ls -l` shows in the first column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FileType {
    /// A regular file.
    File,
    /// A directory.
    Directory,
    /// A symbolic link.
    Symlink,
    /// A hardlink record of a layer (a tree never holds one: it holds the shared file).
    Hardlink,
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A named pipe.
    Fifo,
}

impl FileType {
    /// The letter `ls -l` uses: `-`, `d`, `l`, `h`, `c`, `b`, `p`.
    ///
    /// ```
    /// assert_eq!(layercake::FileType::Directory.as_char(), 'd');
    /// ```
    pub fn as_char(self) -> char {
        match self {
            FileType::File => '-',
            FileType::Directory => 'd',
            FileType::Symlink => 'l',
            FileType::Hardlink => 'h',
            FileType::CharDevice => 'c',
            FileType::BlockDevice => 'b',
            FileType::Fifo => 'p',
        }
    }
}

/// What an entry is, with its contents.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// A regular file and its bytes.
    File(Bytes),
    /// A directory (its children are entries of their own).
    Directory,
    /// A symbolic link and its target, verbatim (R8).
    Symlink(Bytes),
    /// In a layer: another path of the same layer stack that this path shares a file with (R7).
    Hardlink(ImagePath),
    /// A character device.
    CharDevice {
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
    /// A block device.
    BlockDevice {
        /// Major number.
        major: u32,
        /// Minor number.
        minor: u32,
    },
    /// A named pipe.
    Fifo,
}

/// One filesystem entry: a kind with its contents, and metadata.
///
/// The constructors give the usual defaults (files 0644, directories 0755, symlinks 0777,
/// owned by root, mtime 0); change them with the builder methods.
///
/// ```
/// use layercake::{Entry, FileType};
///
/// let e = Entry::file("#!/bin/sh\necho hi\n").mode(0o755).owner(0, 0).mtime(1);
/// assert_eq!(e.file_type(), FileType::File);
/// assert_eq!(e.contents().unwrap().len(), 18);
/// assert_eq!(e.metadata().mode, 0o755);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Entry {
    pub(crate) metadata: Metadata,
    pub(crate) kind: EntryKind,
}

impl Entry {
    /// An entry of this kind with this metadata.
    pub fn new(kind: EntryKind, metadata: Metadata) -> Entry {
        Entry { metadata, kind }
    }

    /// A regular file, mode 0644.
    pub fn file(contents: impl Into<Bytes>) -> Entry {
        Entry::new(EntryKind::File(contents.into()), Metadata::new(0o644))
    }

    /// A directory, mode 0755.
    pub fn dir() -> Entry {
        Entry::new(EntryKind::Directory, Metadata::new(0o755))
    }

    /// A symbolic link to `target` (stored verbatim), mode 0777.
    pub fn symlink(target: impl Into<Bytes>) -> Entry {
        Entry::new(EntryKind::Symlink(target.into()), Metadata::new(0o777))
    }

    /// A hardlink to another path (only meaningful inside a layer).
    pub fn hardlink(target: ImagePath) -> Entry {
        Entry::new(EntryKind::Hardlink(target), Metadata::new(0o644))
    }

    /// A character device, mode 0666.
    pub fn char_device(major: u32, minor: u32) -> Entry {
        Entry::new(EntryKind::CharDevice { major, minor }, Metadata::new(0o666))
    }

    /// A block device, mode 0660.
    pub fn block_device(major: u32, minor: u32) -> Entry {
        Entry::new(
            EntryKind::BlockDevice { major, minor },
            Metadata::new(0o660),
        )
    }

    /// A named pipe, mode 0644.
    pub fn fifo() -> Entry {
        Entry::new(EntryKind::Fifo, Metadata::new(0o644))
    }

    /// Sets the mode bits.
    ///
    /// # Panics
    ///
    /// If `mode` has bits outside `0o7777`.
    pub fn mode(mut self, mode: u32) -> Entry {
        assert!(mode <= 0o7777, "mode {mode:o} has bits outside 0o7777");
        self.metadata.mode = mode;
        self
    }

    /// Sets the owner.
    pub fn owner(mut self, uid: u64, gid: u64) -> Entry {
        self.metadata = self.metadata.owner(uid, gid);
        self
    }

    /// Sets the modification time.
    pub fn mtime(mut self, mtime: i64) -> Entry {
        self.metadata.mtime = mtime;
        self
    }

    /// Adds an extended attribute.
    pub fn xattr(mut self, name: impl Into<Bytes>, value: impl Into<Bytes>) -> Entry {
        self.metadata = self.metadata.xattr(name, value);
        self
    }

    /// Replaces the whole metadata.
    pub fn with_metadata(mut self, metadata: Metadata) -> Entry {
        self.metadata = metadata;
        self
    }

    /// The metadata.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The kind and contents.
    pub fn kind(&self) -> &EntryKind {
        &self.kind
    }

    /// The type, without contents.
    pub fn file_type(&self) -> FileType {
        match self.kind {
            EntryKind::File(_) => FileType::File,
            EntryKind::Directory => FileType::Directory,
            EntryKind::Symlink(_) => FileType::Symlink,
            EntryKind::Hardlink(_) => FileType::Hardlink,
            EntryKind::CharDevice { .. } => FileType::CharDevice,
            EntryKind::BlockDevice { .. } => FileType::BlockDevice,
            EntryKind::Fifo => FileType::Fifo,
        }
    }

    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        matches!(self.kind, EntryKind::Directory)
    }

    /// A regular file's bytes.
    pub fn contents(&self) -> Option<&Bytes> {
        match &self.kind {
            EntryKind::File(b) => Some(b),
            _ => None,
        }
    }

    /// A symlink's target.
    pub fn link_target(&self) -> Option<&Bytes> {
        match &self.kind {
            EntryKind::Symlink(t) => Some(t),
            _ => None,
        }
    }

    /// The size `ls -l` shows: a file's length, a symlink's target length, else 0.
    pub fn size(&self) -> u64 {
        match &self.kind {
            EntryKind::File(b) => b.len() as u64,
            EntryKind::Symlink(t) => t.len() as u64,
            _ => 0,
        }
    }
}

/// Formats `mode` the way `ls -l` does, e.g. `drwxr-xr-x` or `-rwsr-xr-x`.
pub(crate) fn mode_string(file_type: FileType, mode: u32) -> String {
    let mut s = String::with_capacity(10);
    s.push(match file_type {
        FileType::Hardlink => '-',
        t => t.as_char(),
    });
    let special = [(0o4000, 's', 'S'), (0o2000, 's', 'S'), (0o1000, 't', 'T')];
    for (i, (bit, set_x, set_no_x)) in special.iter().enumerate() {
        let shift = 6 - 3 * i as u32;
        let rwx = (mode >> shift) & 7;
        s.push(if rwx & 4 != 0 { 'r' } else { '-' });
        s.push(if rwx & 2 != 0 { 'w' } else { '-' });
        let x = rwx & 1 != 0;
        s.push(match (mode & bit != 0, x) {
            (true, true) => *set_x,
            (true, false) => *set_no_x,
            (false, true) => 'x',
            (false, false) => '-',
        });
    }
    s
}

/// A `Display` of bytes that escapes non-UTF-8 as `\xNN` (for link targets and names).
pub(crate) struct Escaped<'a>(pub(crate) &'a [u8]);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            f.write_str(chunk.valid())?;
            for b in chunk.invalid() {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_strings() {
        assert_eq!(mode_string(FileType::Directory, 0o755), "drwxr-xr-x");
        assert_eq!(mode_string(FileType::File, 0o4755), "-rwsr-xr-x");
        assert_eq!(mode_string(FileType::File, 0o2644), "-rw-r-Sr--");
        assert_eq!(mode_string(FileType::Directory, 0o1777), "drwxrwxrwt");
        assert_eq!(mode_string(FileType::Symlink, 0o777), "lrwxrwxrwx");
    }
}
