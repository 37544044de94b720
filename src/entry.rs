//! What one filesystem entry is: its [`EntryKind`] (with the contents) and its [`Metadata`].

use std::collections::BTreeMap;
use std::fmt;

use bytes::Bytes;

use crate::contents::Contents;
use crate::path::ImagePath;

/// The metadata of an entry (R9): permissions, owner, modification time and extended attributes.
///
/// `mode` holds only the permission, setuid, setgid and sticky bits (`0o7777`); the file type
/// lives in [`EntryKind`]. Times are whole seconds since the Unix epoch.
///
/// ```
/// use layercake::Metadata;
///
/// let m = Metadata::new(0o4755)
///     .owner(1000, 1000)
///     .mtime(1_700_000_000)
///     .xattr("user.k", "v");
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
    ///
    /// ```
    /// use layercake::{Entry, Layer, Metadata};
    ///
    /// // One metadata for several entries: private to the app user.
    /// let private = Metadata::new(0o700).owner(1000, 1000);
    /// let layer = Layer::builder()
    ///     .entry("home/app", Entry::dir().with_metadata(private.clone()))
    ///     .entry("home/app/.ssh", Entry::dir().with_metadata(private.clone()))
    ///     .build()?;
    /// assert_eq!(layer.changeset()?.entry("home/app/.ssh")?.unwrap().metadata(), &private);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn new(mode: u32) -> Metadata {
        assert!(mode <= 0o7777, "mode {mode:o} has bits outside 0o7777");
        Metadata {
            mode,
            ..Metadata::default()
        }
    }

    /// Sets the owner.
    ///
    /// ```
    /// use layercake::{Entry, Layer, Metadata};
    ///
    /// let nobody = Metadata::new(0o755).owner(65534, 65534);
    /// let layer = Layer::builder()
    ///     .entry("home/nobody", Entry::dir().with_metadata(nobody))
    ///     .build()?;
    /// let read_back = layer.changeset()?.entry("home/nobody")?.unwrap().metadata();
    /// assert_eq!((read_back.uid, read_back.gid), (65534, 65534));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn owner(mut self, uid: u64, gid: u64) -> Metadata {
        self.uid = uid;
        self.gid = gid;
        self
    }

    /// Sets the modification time (seconds since the epoch).
    ///
    /// ```
    /// use layercake::{Entry, Layer, Metadata};
    ///
    /// let m = Metadata::new(0o644).mtime(1_700_000_000);
    /// let layer = Layer::builder()
    ///     .entry("etc/issue", Entry::file("cake\n").with_metadata(m))
    ///     .build()?;
    /// assert_eq!(layer.changeset()?.entry("etc/issue")?.unwrap().metadata().mtime, 1_700_000_000);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn mtime(mut self, mtime: i64) -> Metadata {
        self.mtime = mtime;
        self
    }

    /// Adds an extended attribute.
    ///
    /// ```
    /// use layercake::{Entry, Layer, Metadata};
    ///
    /// // `ping` with a file capability instead of setuid.
    /// let m =
    ///     Metadata::new(0o755).xattr("security.capability", vec![1, 0, 0, 2, 0, 0x20, 0, 0]);
    /// let layer = Layer::builder()
    ///     .entry("bin/ping", Entry::file("ELF").with_metadata(m))
    ///     .build()?;
    /// // Written as a `SCHILY.xattr.` PAX record, and read back.
    /// assert_eq!(layer.changeset()?.entry("bin/ping")?.unwrap().metadata().xattrs.len(), 1);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn xattr(mut self, name: impl Into<Bytes>, value: impl Into<Bytes>) -> Metadata {
        self.xattrs.insert(name.into(), value.into());
        self
    }
}

/// The type of an entry, without its contents (what `ls -l` shows in the first column).
///
/// ```
/// use layercake::{FileType, Layer, Tree};
///
/// let tree = Tree::new().apply(
///     &Layer::builder().file("bin/busybox", "").symlink("busybox", "bin/sh").build()?,
/// )?;
/// let types: Vec<FileType> = tree.walk().map(|(_, node)| node.file_type()).collect();
/// assert_eq!(types, [FileType::Directory, FileType::File, FileType::Symlink]);
/// # Ok::<(), layercake::Error>(())
/// ```
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
///
/// ```
/// use layercake::{EntryKind, Layer};
///
/// let layer = Layer::builder()
///     .file("a", "x")
///     .symlink("a", "b")
///     .char_device("dev/null", 1, 3)
///     .build()?;
/// let devices = layer
///     .changeset()?
///     .entries()
///     .filter(|(_, e)| {
///         matches!(e.kind(), EntryKind::CharDevice { .. } | EntryKind::BlockDevice { .. })
///     })
///     .count();
/// assert_eq!(devices, 1);
/// assert_eq!(layer.changeset()?.entry("b")?.unwrap().kind(), &EntryKind::Symlink("a".into()));
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// A regular file and its contents (in memory, or a range of a layer's tar on disk).
    File(Contents),
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
    ///
    /// ```
    /// use layercake::{Entry, EntryKind, Layer, Metadata};
    ///
    /// let tty = Entry::new(
    ///     EntryKind::CharDevice { major: 5, minor: 0 },
    ///     Metadata::new(0o666).owner(0, 5),
    /// );
    /// let layer = Layer::builder().entry("dev/tty", tty.clone()).build()?;
    /// assert_eq!(layer.changeset()?.entry("dev/tty")?, Some(&tty), "the layer tar keeps it all");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn new(kind: EntryKind, metadata: Metadata) -> Entry {
        Entry { metadata, kind }
    }

    /// A regular file, mode 0644.
    ///
    /// ```
    /// use layercake::{Entry, Layer};
    ///
    /// let script = Entry::file("#!/bin/sh\necho hi\n");
    /// assert_eq!(script.metadata().mode, 0o644);
    /// let layer = Layer::builder().entry("usr/bin/hi", script.mode(0o755)).build()?;
    /// assert_eq!(
    ///     layer.changeset()?.entry("usr/bin/hi")?.unwrap().contents().unwrap(),
    ///     "#!/bin/sh\necho hi\n"
    /// );
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn file(contents: impl Into<Contents>) -> Entry {
        Entry::new(EntryKind::File(contents.into()), Metadata::new(0o644))
    }

    /// A directory, mode 0755.
    ///
    /// ```
    /// use layercake::{Entry, Layer, Tree};
    ///
    /// // A world-writable sticky directory, as `/tmp` is.
    /// let layer = Layer::builder().entry("tmp", Entry::dir().mode(0o1777)).build()?;
    /// let tree = Tree::new().apply(&layer)?;
    /// assert_eq!(tree.lookup("tmp")?.unwrap().mode_string(), "drwxrwxrwt");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn dir() -> Entry {
        Entry::new(EntryKind::Directory, Metadata::new(0o755))
    }

    /// A symbolic link to `target` (stored verbatim), mode 0777.
    ///
    /// ```
    /// use layercake::{Entry, Layer, Tree};
    ///
    /// let link = Entry::symlink("libc.so.6").owner(0, 0);
    /// let layer = Layer::builder()
    ///     .file("lib/libc.so.6", "ELF")
    ///     .entry("lib/libc.so", link)
    ///     .build()?;
    /// let tree = Tree::new().apply(&layer)?;
    /// assert_eq!(tree.read("lib/libc.so")?, "ELF");
    /// assert_eq!(tree.lookup("lib/libc.so")?.unwrap().mode_string(), "lrwxrwxrwx");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn symlink(target: impl Into<Bytes>) -> Entry {
        Entry::new(EntryKind::Symlink(target.into()), Metadata::new(0o777))
    }

    /// A hardlink to another path (only meaningful inside a layer).
    ///
    /// ```
    /// use layercake::{Entry, ImagePath, Layer, Tree};
    ///
    /// let layer = Layer::builder()
    ///     .file("bin/busybox", "ELF")
    ///     .entry("bin/sh", Entry::hardlink(ImagePath::new("bin/busybox")?))
    ///     .build()?;
    /// let tree = Tree::new().apply(&layer)?;
    /// assert!(tree.lookup("bin/sh")?.unwrap().same_file(&tree.lookup("bin/busybox")?.unwrap()));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn hardlink(target: ImagePath) -> Entry {
        Entry::new(EntryKind::Hardlink(target), Metadata::new(0o644))
    }

    /// A character device, mode 0666.
    ///
    /// ```
    /// use layercake::{Entry, Layer, Tree};
    ///
    /// let tree = Tree::new()
    ///     .apply(&Layer::builder().entry("dev/null", Entry::char_device(1, 3)).build()?)?;
    /// let null = tree.lookup("dev/null")?.unwrap();
    /// assert_eq!(null.device(), Some((1, 3)));
    /// assert_eq!(null.mode_string(), "crw-rw-rw-");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn char_device(major: u32, minor: u32) -> Entry {
        Entry::new(EntryKind::CharDevice { major, minor }, Metadata::new(0o666))
    }

    /// A block device, mode 0660.
    ///
    /// ```
    /// use layercake::{Entry, Layer, Tree};
    ///
    /// let tree = Tree::new()
    ///     .apply(&Layer::builder().entry("dev/sda", Entry::block_device(8, 0)).build()?)?;
    /// let sda = tree.lookup("dev/sda")?.unwrap();
    /// assert_eq!(sda.device(), Some((8, 0)));
    /// assert_eq!(sda.mode_string(), "brw-rw----");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn block_device(major: u32, minor: u32) -> Entry {
        Entry::new(
            EntryKind::BlockDevice { major, minor },
            Metadata::new(0o660),
        )
    }

    /// A named pipe, mode 0644.
    ///
    /// ```
    /// use layercake::{Entry, Layer, Tree};
    ///
    /// let tree = Tree::new().apply(
    ///     &Layer::builder().entry("run/initctl", Entry::fifo().mode(0o600)).build()?,
    /// )?;
    /// assert_eq!(tree.lookup("run/initctl")?.unwrap().mode_string(), "prw-------");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn fifo() -> Entry {
        Entry::new(EntryKind::Fifo, Metadata::new(0o644))
    }

    /// Sets the mode bits.
    ///
    /// # Panics
    ///
    /// If `mode` has bits outside `0o7777`.
    ///
    /// ```
    /// use layercake::Entry;
    ///
    /// let su = Entry::file("ELF").mode(0o4755);
    /// assert_eq!(su.metadata().mode, 0o4755);
    /// ```
    pub fn mode(mut self, mode: u32) -> Entry {
        assert!(mode <= 0o7777, "mode {mode:o} has bits outside 0o7777");
        self.metadata.mode = mode;
        self
    }

    /// Sets the owner.
    ///
    /// ```
    /// use layercake::{Entry, Layer};
    ///
    /// let layer =
    ///     Layer::builder().entry("srv/data", Entry::dir().owner(1000, 1000)).build()?;
    /// let m = layer.changeset()?.entry("srv/data")?.unwrap().metadata();
    /// assert_eq!((m.uid, m.gid), (1000, 1000));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn owner(mut self, uid: u64, gid: u64) -> Entry {
        self.metadata = self.metadata.owner(uid, gid);
        self
    }

    /// Sets the modification time.
    ///
    /// ```
    /// use layercake::{Entry, Layer};
    ///
    /// // Keep a copied file's own time, as `tar` does.
    /// let layer = Layer::builder()
    ///     .entry("etc/issue", Entry::file("cake\n").mtime(1_700_000_000))
    ///     .build()?;
    /// assert_eq!(layer.changeset()?.entry("etc/issue")?.unwrap().metadata().mtime, 1_700_000_000);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn mtime(mut self, mtime: i64) -> Entry {
        self.metadata.mtime = mtime;
        self
    }

    /// Adds an extended attribute.
    ///
    /// ```
    /// use layercake::{Entry, Layer};
    ///
    /// let layer = Layer::builder()
    ///     .entry("app", Entry::file("ELF").xattr("user.checksum", "abc"))
    ///     .build()?;
    /// let xattrs = &layer.changeset()?.entry("app")?.unwrap().metadata().xattrs;
    /// assert_eq!(xattrs.get(&b"user.checksum"[..]).unwrap(), "abc");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn xattr(mut self, name: impl Into<Bytes>, value: impl Into<Bytes>) -> Entry {
        self.metadata = self.metadata.xattr(name, value);
        self
    }

    /// Replaces the whole metadata.
    ///
    /// ```
    /// use layercake::Entry;
    ///
    /// // New contents with an old file's metadata: what rewriting a file in place does.
    /// let old = Entry::file("v1").mode(0o600).owner(1000, 1000);
    /// let new = Entry::file("v2").with_metadata(old.metadata().clone());
    /// assert_eq!(new.metadata(), old.metadata());
    /// assert_ne!(new, old);
    /// ```
    pub fn with_metadata(mut self, metadata: Metadata) -> Entry {
        self.metadata = metadata;
        self
    }

    /// The metadata.
    ///
    /// ```
    /// use layercake::{Entry, Layer};
    ///
    /// let layer = Layer::builder()
    ///     .entry("etc/shadow", Entry::file("").mode(0o640).owner(0, 42))
    ///     .build()?;
    /// let m = layer.changeset()?.entry("etc/shadow")?.unwrap().metadata();
    /// assert_eq!((m.mode, m.uid, m.gid), (0o640, 0, 42));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The kind and contents.
    ///
    /// ```
    /// use layercake::{EntryKind, ImagePath, Layer};
    ///
    /// let layer = Layer::builder()
    ///     .file("bin/busybox", "ELF")
    ///     .hard_link("bin/busybox", "bin/sh")
    ///     .build()?;
    /// let sh = layer.changeset()?.entry("bin/sh")?.unwrap();
    /// assert_eq!(sh.kind(), &EntryKind::Hardlink(ImagePath::new("bin/busybox")?));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn kind(&self) -> &EntryKind {
        &self.kind
    }

    /// The type, without contents.
    ///
    /// ```
    /// use layercake::Layer;
    ///
    /// let layer = Layer::builder().file("a", "").symlink("a", "b").fifo("c").build()?;
    /// let letters: String = layer.changeset()?.entries().map(|(_, e)| e.file_type().as_char()).collect();
    /// assert_eq!(letters, "-lp");
    /// # Ok::<(), layercake::Error>(())
    /// ```
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
    ///
    /// ```
    /// use layercake::Layer;
    ///
    /// let layer = Layer::builder().dir("etc").file("etc/hosts", "").build()?;
    /// let dirs: Vec<String> = layer
    ///     .changeset()?
    ///     .entries()
    ///     .filter(|(_, e)| e.is_dir())
    ///     .map(|(p, _)| p.to_string())
    ///     .collect();
    /// assert_eq!(dirs, ["etc"]);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn is_dir(&self) -> bool {
        matches!(self.kind, EntryKind::Directory)
    }

    /// A regular file's contents.
    ///
    /// ```
    /// use layercake::Layer;
    ///
    /// let layer = Layer::builder()
    ///     .file("etc/hostname", "box\n")
    ///     .symlink("etc/hostname", "hostname")
    ///     .build()?;
    /// let changes = layer.changeset()?;
    /// assert_eq!(changes.entry("etc/hostname")?.unwrap().contents().unwrap(), "box\n");
    /// assert!(
    ///     changes.entry("hostname")?.unwrap().contents().is_none(),
    ///     "a symlink has no contents"
    /// );
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn contents(&self) -> Option<&Contents> {
        match &self.kind {
            EntryKind::File(b) => Some(b),
            _ => None,
        }
    }

    /// A symlink's target.
    ///
    /// ```
    /// use layercake::Layer;
    ///
    /// let layer = Layer::builder().symlink("libz.so.1", "usr/lib/libz.so").build()?;
    /// assert_eq!(layer.changeset()?.entry("usr/lib/libz.so")?.unwrap().link_target().unwrap(), "libz.so.1");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn link_target(&self) -> Option<&Bytes> {
        match &self.kind {
            EntryKind::Symlink(t) => Some(t),
            _ => None,
        }
    }

    /// The size `ls -l` shows: a file's length, a symlink's target length, else 0.
    ///
    /// ```
    /// use layercake::Layer;
    ///
    /// let layer = Layer::builder().file("a", "hello").symlink("a", "b").dir("c").build()?;
    /// let sizes: Vec<u64> = layer.changeset()?.entries().map(|(_, e)| e.size()).collect();
    /// assert_eq!(sizes, [5, 1, 0]);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn size(&self) -> u64 {
        match &self.kind {
            EntryKind::File(c) => c.len(),
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
