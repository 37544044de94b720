//! [`unpack()`]: writing a [`Tree`] into a host directory, every entry created relative to an
//! open directory file descriptor so that nothing is written outside that directory and no
//! symlink below it is ever followed.
//!
//! The options say how much of the tree's metadata reaches the host: owners ([`Owners`]),
//! device nodes ([`Devices`]), setuid and setgid bits ([`Setuid`]) and extended attributes
//! ([`Xattrs`]). Whatever was left out is listed in the [`UnpackReport`], with the reason.

use std::collections::btree_map;
use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use rustix::fs::{
    self as fs, AtFlags, FileType as HostType, Gid, Mode, OFlags, Stat, Timespec, Timestamps, Uid,
    XattrFlags, CWD,
};
use rustix::io::Errno;

use crate::entry::{Entry, EntryKind, Escaped, Metadata};
use crate::error::{Error, Result};
use crate::path::ImagePath;
use crate::tree::{Dir, Node, NodeKind, Tree};

/// How many directory descriptors one unpack keeps open below its root. Deeper than this, the
/// descriptors of the outer directories are closed and reopened through `..` (checked to be
/// the same directory) on the way back up, so no tree can exhaust the process's descriptors.
const OPEN_DIRS: usize = 64;

/// Whose files the unpacked entries are: the tree's owners, or the user running the unpack.
///
/// ```
/// use layercake::unpack::Owners;
/// use layercake::UnpackOptions;
///
/// let options = UnpackOptions::new().owners(Owners::Drop);
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Owners {
    /// [`Owners::Keep`] when running as root (effective uid 0), else [`Owners::Drop`], as
    /// `tar -x` does.
    #[default]
    Auto,
    /// Every entry gets the tree's uid and gid (`tar --same-owner`). Giving a file away
    /// needs root (`CAP_CHOWN`): as anyone else the unpack fails at the first such entry.
    Keep,
    /// Every entry stays owned by the user running the unpack (`tar --no-same-owner`).
    Drop,
}

/// Whether character and block devices of the tree become device nodes on the host.
///
/// ```
/// use layercake::unpack::Devices;
/// use layercake::UnpackOptions;
///
/// let options = UnpackOptions::new().devices(Devices::Create);
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Devices {
    /// Leave them out and list them in [`UnpackReport::skipped`]. A device node in an image
    /// is a door to the host's hardware (`/dev/sda`, `/dev/mem`) for whoever can open it.
    #[default]
    Skip,
    /// Create them with `mknodat` (needs root, `CAP_MKNOD`, and `/proc` mounted: a device is
    /// never opened, so its mode is set through `/proc/self/fd`). Named pipes are always
    /// created: they open nothing on the host.
    Create,
}

/// Whether setuid and setgid bits and file capabilities reach the host.
///
/// ```
/// use layercake::unpack::Setuid;
/// use layercake::UnpackOptions;
///
/// let options = UnpackOptions::new().setuid(Setuid::Keep);
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Setuid {
    /// Clear setuid (`0o4000`) and setgid (`0o2000`) bits, and leave out the
    /// `security.capability` attribute: an unpacked `su` must not run as its owner. A
    /// directory keeps its setgid bit, which only makes new files inherit its group.
    /// Every entry that lost something is listed in [`UnpackReport::skipped`].
    #[default]
    Strip,
    /// Keep the tree's modes and capabilities as they are (for a root filesystem that a
    /// container runtime will use).
    Keep,
}

/// Which extended attributes are written.
///
/// ```
/// use layercake::unpack::Xattrs;
/// use layercake::UnpackOptions;
///
/// let options = UnpackOptions::new().xattrs(Xattrs::Skip);
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Xattrs {
    /// `user.*` always; every other namespace (`security.*`, `trusted.*`, `system.*`) only
    /// when running as root. Attributes left out or refused by the filesystem are listed in
    /// [`UnpackReport::skipped`]; neither stops the unpack.
    #[default]
    Auto,
    /// Write none, and report none.
    Skip,
}

/// Options for [`unpack()`], a builder by value. The defaults are the safe ones: owners kept
/// only by root, no device nodes, no setuid or setgid bits, extended attributes as
/// [`Xattrs::Auto`] says.
///
/// ```
/// use layercake::unpack::{Devices, Owners, Setuid};
/// use layercake::UnpackOptions;
///
/// // What a container runtime preparing a root filesystem as root wants.
/// let options = UnpackOptions::new()
///     .owners(Owners::Keep)
///     .devices(Devices::Create)
///     .setuid(Setuid::Keep);
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnpackOptions {
    owners: Owners,
    devices: Devices,
    setuid: Setuid,
    xattrs: Xattrs,
}

impl UnpackOptions {
    /// The defaults: [`Owners::Auto`], [`Devices::Skip`], [`Setuid::Strip`], [`Xattrs::Auto`].
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::os::unix::fs::PermissionsExt;
    ///
    /// use layercake::unpack::SkipReason;
    /// use layercake::{unpack, Entry, Layer, Tree, UnpackOptions};
    ///
    /// let layer =
    ///     Layer::builder().entry("usr/bin/su", Entry::file("ELF").mode(0o4755)).build()?;
    /// let dir = std::env::temp_dir()
    ///     .join(format!("layercake-options-new-doc-{}", std::process::id()));
    /// let report = unpack(&Tree::new().apply(&layer)?, &dir, &UnpackOptions::new())?;
    /// // The safe defaults: the setuid bit does not reach the host, and the report says so.
    /// assert_eq!(report.skipped[0].reason, SkipReason::SetidBits { mode: 0o4755 });
    /// let mode = std::fs::metadata(dir.join("usr/bin/su"))?.permissions().mode();
    /// assert_eq!(mode & 0o7777, 0o755);
    /// std::fs::remove_dir_all(&dir)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn new() -> UnpackOptions {
        UnpackOptions::default()
    }

    /// Sets whose files the entries are.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::os::unix::fs::MetadataExt;
    ///
    /// use layercake::unpack::Owners;
    /// use layercake::{unpack, Entry, Layer, Tree, UnpackOptions};
    ///
    /// let layer =
    ///     Layer::builder().entry("srv/data", Entry::file("").owner(1000, 1000)).build()?;
    /// let dir =
    ///     std::env::temp_dir().join(format!("layercake-owners-doc-{}", std::process::id()));
    /// unpack(&Tree::new().apply(&layer)?, &dir, &UnpackOptions::new().owners(Owners::Drop))?;
    /// // Whoever runs this, the file is theirs, not uid 1000's.
    /// let me = std::fs::metadata(&dir)?.uid();
    /// assert_eq!(std::fs::metadata(dir.join("srv/data"))?.uid(), me);
    /// std::fs::remove_dir_all(&dir)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn owners(mut self, owners: Owners) -> UnpackOptions {
        self.owners = owners;
        self
    }

    /// Sets whether device nodes are created.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use layercake::unpack::Devices;
    /// use layercake::{unpack, Layer, Tree, UnpackOptions};
    ///
    /// let layer = Layer::builder()
    ///     .char_device("dev/null", 1, 3)
    ///     .file("etc/motd", "hi\n")
    ///     .build()?;
    /// let dir =
    ///     std::env::temp_dir().join(format!("layercake-devices-doc-{}", std::process::id()));
    /// // `Devices::Create` needs root; without it, leave devices out and see which they were.
    /// let options = UnpackOptions::new().devices(Devices::Skip);
    /// let report = unpack(&Tree::new().apply(&layer)?, &dir, &options)?;
    /// assert!(!dir.join("dev/null").exists());
    /// assert_eq!(report.skipped[0].to_string(), "dev/null: device node not created");
    /// std::fs::remove_dir_all(&dir)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn devices(mut self, devices: Devices) -> UnpackOptions {
        self.devices = devices;
        self
    }

    /// Sets whether setuid and setgid bits and file capabilities are kept.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::os::unix::fs::PermissionsExt;
    ///
    /// use layercake::unpack::Setuid;
    /// use layercake::{unpack, Entry, Layer, Tree, UnpackOptions};
    ///
    /// let layer =
    ///     Layer::builder().entry("usr/bin/su", Entry::file("ELF").mode(0o4755)).build()?;
    /// let dir =
    ///     std::env::temp_dir().join(format!("layercake-setuid-doc-{}", std::process::id()));
    /// // A root filesystem for a container runtime: keep `su` as the image has it.
    /// let options = UnpackOptions::new().setuid(Setuid::Keep);
    /// let report = unpack(&Tree::new().apply(&layer)?, &dir, &options)?;
    /// assert!(report.skipped.is_empty());
    /// let mode = std::fs::metadata(dir.join("usr/bin/su"))?.permissions().mode();
    /// assert_eq!(mode & 0o7777, 0o4755);
    /// std::fs::remove_dir_all(&dir)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn setuid(mut self, setuid: Setuid) -> UnpackOptions {
        self.setuid = setuid;
        self
    }

    /// Sets which extended attributes are written.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use layercake::unpack::Xattrs;
    /// use layercake::{unpack, Entry, Layer, Tree, UnpackOptions};
    ///
    /// let app = Entry::file("ELF").xattr("user.origin", "build");
    /// let layer = Layer::builder().entry("app", app).build()?;
    /// let dir = std::env::temp_dir().join(format!("layercake-xattrs-doc-{}", std::process::id()));
    /// // For a target with no use for them, or a filesystem without them: no attempt, no noise.
    /// let options = UnpackOptions::new().xattrs(Xattrs::Skip);
    /// let report = unpack(&Tree::new().apply(&layer)?, &dir, &options)?;
    /// assert!(report.skipped.is_empty());
    /// assert_eq!(report.files, 1);
    /// std::fs::remove_dir_all(&dir)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn xattrs(mut self, xattrs: Xattrs) -> UnpackOptions {
        self.xattrs = xattrs;
        self
    }
    /// The [`Owners`] policy in force.
    ///
    /// ```
    /// use layercake::unpack::Owners;
    /// use layercake::UnpackOptions;
    ///
    /// let options = UnpackOptions::new().owners(Owners::Keep);
    /// assert_eq!(options.owners_in_force(), Owners::Keep);
    /// ```
    pub fn owners_in_force(&self) -> Owners {
        self.owners
    }

    /// The [`Devices`] policy in force.
    ///
    /// ```
    /// use layercake::unpack::Devices;
    /// use layercake::UnpackOptions;
    ///
    /// let options = UnpackOptions::new().devices(Devices::Create);
    /// assert_eq!(options.devices_in_force(), Devices::Create);
    /// ```
    pub fn devices_in_force(&self) -> Devices {
        self.devices
    }

    /// The [`Setuid`] policy in force.
    ///
    /// ```
    /// use layercake::unpack::Setuid;
    /// use layercake::UnpackOptions;
    ///
    /// let options = UnpackOptions::new().setuid(Setuid::Keep);
    /// assert_eq!(options.setuid_in_force(), Setuid::Keep);
    /// ```
    pub fn setuid_in_force(&self) -> Setuid {
        self.setuid
    }

    /// The [`Xattrs`] policy in force.
    ///
    /// ```
    /// use layercake::unpack::Xattrs;
    /// use layercake::UnpackOptions;
    ///
    /// let options = UnpackOptions::new().xattrs(Xattrs::Auto);
    /// assert_eq!(options.xattrs_in_force(), Xattrs::Auto);
    /// ```
    pub fn xattrs_in_force(&self) -> Xattrs {
        self.xattrs
    }
}

/// What [`unpack()`] wrote, and what it left out.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use layercake::unpack::SkipReason;
/// use layercake::{unpack, Layer, Tree, UnpackOptions};
///
/// let tree = Tree::new().apply(
///     &Layer::builder()
///         .file("etc/motd", "hi\n")
///         .char_device("dev/null", 1, 3)
///         .build()?,
/// )?;
/// let dir = std::env::temp_dir().join(format!("layercake-report-{}", std::process::id()));
/// let report = unpack(&tree, &dir, &UnpackOptions::new())?;
/// assert_eq!((report.directories, report.files, report.bytes), (2, 1, 3));
/// assert_eq!(report.skipped[0].reason, SkipReason::Device);
/// assert_eq!(report.skipped[0].to_string(), "dev/null: device node not created");
/// std::fs::remove_dir_all(&dir)?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnpackReport {
    /// Directories created or, where one was already there, reused (not counting DIR).
    pub directories: u64,
    /// Regular files written (the first path of each hardlinked file).
    pub files: u64,
    /// Symlinks created.
    pub symlinks: u64,
    /// Further paths of a file already written, created with `linkat`.
    pub hardlinks: u64,
    /// Named pipes created.
    pub fifos: u64,
    /// Device nodes created.
    pub devices: u64,
    /// Bytes of file contents written.
    pub bytes: u64,
    /// Entries that were already in the directory and were removed to make room.
    pub replaced: u64,
    /// What was left out, in the order met.
    pub skipped: Vec<Skipped>,
}

impl UnpackReport {
    /// How many entries were written: directories, files, symlinks, hardlinks, pipes and
    /// devices.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use layercake::{unpack, Layer, Tree, UnpackOptions};
    ///
    /// let layer = Layer::builder()
    ///     .file("etc/motd", "hi\n")
    ///     .symlink("etc/motd", "motd")
    ///     .fifo("run/pipe")
    ///     .build()?;
    /// let tree = Tree::new().apply(&layer)?;
    /// let dir =
    ///     std::env::temp_dir().join(format!("layercake-entries-doc-{}", std::process::id()));
    /// let report = unpack(&tree, &dir, &UnpackOptions::new())?;
    /// // Every entry of the tree made it (nothing here is left out by default).
    /// assert_eq!(report.entries(), tree.len() as u64);
    /// std::fs::remove_dir_all(&dir)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn entries(&self) -> u64 {
        self.directories + self.files + self.symlinks + self.hardlinks + self.fifos + self.devices
    }
}

/// One thing [`unpack()`] left out, and why.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use layercake::{unpack, Entry, Layer, Tree, UnpackOptions};
///
/// let layer = Layer::builder()
///     .char_device("dev/null", 1, 3)
///     .entry("usr/bin/su", Entry::file("ELF").mode(0o4755))
///     .build()?;
/// let dir =
///     std::env::temp_dir().join(format!("layercake-skipped-doc-{}", std::process::id()));
/// let report = unpack(&Tree::new().apply(&layer)?, &dir, &UnpackOptions::new())?;
/// let lines: Vec<String> = report.skipped.iter().map(|s| s.to_string()).collect();
/// assert_eq!(
///     lines,
///     [
///         "dev/null: device node not created",
///         "usr/bin/su: setuid/setgid bits cleared from 4755"
///     ]
/// );
/// std::fs::remove_dir_all(&dir)?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The entry, as a path inside the tree.
    pub path: ImagePath,
    /// What was left out and why.
    pub reason: SkipReason,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.reason)
    }
}

/// Why something was left out of an unpack.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use layercake::unpack::SkipReason;
/// use layercake::{unpack, Layer, Tree, UnpackOptions};
///
/// let layer = Layer::builder()
///     .char_device("dev/null", 1, 3)
///     .char_device("dev/zero", 1, 5)
///     .build()?;
/// let dir = std::env::temp_dir()
///     .join(format!("layercake-skip-reason-doc-{}", std::process::id()));
/// let report = unpack(&Tree::new().apply(&layer)?, &dir, &UnpackOptions::new())?;
/// // Which paths need `Devices::Create` (and root) to be complete?
/// let devices: Vec<String> = report
///     .skipped
///     .iter()
///     .filter(|s| s.reason == SkipReason::Device)
///     .map(|s| s.path.to_string())
///     .collect();
/// assert_eq!(devices, ["dev/null", "dev/zero"]);
/// std::fs::remove_dir_all(&dir)?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// A character or block device was not created ([`Devices::Skip`]).
    Device,
    /// Setuid or setgid bits were cleared ([`Setuid::Strip`]); `mode` is the tree's mode.
    SetidBits {
        /// The mode the tree holds.
        mode: u32,
    },
    /// An extended attribute was not attempted: a namespace other than `user.*` when not
    /// root ([`Xattrs::Auto`]), or `security.capability` under [`Setuid::Strip`].
    XattrNotAllowed {
        /// The attribute's name.
        name: Bytes,
    },
    /// The host refused an extended attribute (a filesystem without them, `user.*` on a
    /// symlink, a missing `/proc` for one on a symlink or device).
    XattrFailed {
        /// The attribute's name.
        name: Bytes,
        /// The OS error number.
        errno: i32,
    },
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Device => f.write_str("device node not created"),
            SkipReason::SetidBits { mode } => {
                write!(f, "setuid/setgid bits cleared from {mode:04o}")
            }
            SkipReason::XattrNotAllowed { name } => {
                write!(f, "xattr {} not allowed", Escaped(name))
            }
            SkipReason::XattrFailed { name, errno } => write!(
                f,
                "xattr {} not written: {}",
                Escaped(name),
                io::Error::from_raw_os_error(*errno)
            ),
        }
    }
}

/// Writes a tree into the host directory `dir`: every directory, file, symlink, hardlink and
/// named pipe, with modes, mtimes and, as the options say, owners, device nodes and extended
/// attributes.
///
/// `dir` is created (with its parents) if it is missing, and takes the metadata of the tree's
/// root directory. Entries already in it that the tree names are replaced (a directory is
/// merged into); entries the tree does not name stay. Directories are created `0700` and get
/// their own mode, owner and mtime once their children are written, so their mtimes are the
/// tree's. Two paths holding the same file node ([`Node::same_file`]) become one inode with
/// two names.
///
/// # Security
///
/// The tree may be hostile, and so may what is already in `dir`; neither can make this
/// function write outside `dir`, nor follow a symlink below it:
///
/// - `dir` itself is opened as the caller names it (a symlink *as* `dir` is followed, as
///   `cd` would). Below it, every entry is created with one name relative to an open
///   descriptor of its parent (`mkdirat`, `openat`, `symlinkat`, `linkat`, `mknodat`):
///   no path is ever joined and resolved again, so a symlink, whether written by this
///   tree or already there, is never a way through.
/// - Directories are opened with `O_DIRECTORY | O_NOFOLLOW`, and files are created with
///   `O_CREAT | O_EXCL | O_NOFOLLOW`: every file is a new inode, so an existing file, a
///   hardlink to a file elsewhere or a symlink in the way is never written to. Whatever
///   non-directory is in the way is unlinked first (unlinking a symlink removes the link
///   itself); a non-empty directory in the way of a non-directory stops the unpack with
///   [`Error::Unpack`].
/// - Owners, modes, extended attributes and times are set through the entry's own
///   descriptor, or relative to its parent with `AT_SYMLINK_NOFOLLOW`, never by path.
/// - A hardlink is made only to a file this same call created: its parent is reopened from
///   `dir` one `O_NOFOLLOW` component at a time, and the new link's inode is checked to be
///   the one written; anything else fails with [`Error::Unpack`].
/// - Symlink targets are written verbatim and never resolved. They point wherever the image
///   says: a program that later *follows* them on the host (instead of inside a chroot or
///   container) can still be led outside `dir`.
/// - Setuid and setgid bits, file capabilities and device nodes are left out unless asked
///   for ([`Setuid`], [`Devices`]).
/// - The walk keeps an explicit stack and at most 64 directory descriptors open whatever the
///   depth of the tree; it never recurses.
///
/// What this does not guard against: another process changing `dir` while the unpack runs
/// can make it fail (every such change that is noticed is an error, never a write
/// elsewhere), and a `dir` on a filesystem that the caller should not write to at all.
///
/// # Errors
///
/// [`Error::Io`] naming the host path for a system call that failed (including `chown` with
/// [`Owners::Keep`] when not root), [`Error::Unpack`] for a non-empty directory in the way, a
/// directory or entry changed underneath, or (with owners kept) a uid or gid that does not fit
/// in 32 bits, [`Error::InvalidPath`] for a name that is not one component.
/// What was written before the error stays.
///
/// # Example
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::path::Path;
///
/// use layercake::unpack::Owners;
/// use layercake::{unpack, Image, Layer, UnpackOptions};
///
/// let layer = Layer::builder()
///     .file("etc/os-release", "ID=cake\n")
///     .symlink("../../../../etc/passwd", "etc/escape")
///     .hard_link("etc/os-release", "etc/os-release.bak")
///     .build()?;
/// let image = Image::builder().layer(layer).build()?;
///
/// let dir =
///     std::env::temp_dir().join(format!("layercake-unpack-doc-{}", std::process::id()));
/// let report = unpack(&image.tree()?, &dir, &UnpackOptions::new().owners(Owners::Drop))?;
/// assert_eq!((report.files, report.symlinks, report.hardlinks), (1, 1, 1));
/// assert_eq!(std::fs::read_to_string(dir.join("etc/os-release"))?, "ID=cake\n");
/// // The symlink is written as it is, and nothing follows it.
/// assert_eq!(
///     std::fs::read_link(dir.join("etc/escape"))?,
///     Path::new("../../../../etc/passwd")
/// );
/// std::fs::remove_dir_all(&dir)?;
/// # Ok(())
/// # }
/// ```
pub fn unpack(tree: &Tree, dir: impl AsRef<Path>, options: &UnpackOptions) -> Result<UnpackReport> {
    let dir = dir.as_ref();
    let root = open_root(dir)?;
    let root_user = rustix::process::geteuid().is_root();
    let mut unpacker = Unpacker {
        dir,
        owners: match options.owners {
            Owners::Auto => root_user,
            Owners::Keep => true,
            Owners::Drop => false,
        },
        options: options.clone(),
        root_user,
        links: HashMap::new(),
        report: UnpackReport::default(),
    };
    unpacker.run(tree, root)?;
    Ok(unpacker.report)
}

/// Opens (creating it if missing) the directory to unpack into. This is the one path that
/// is resolved as the caller gave it.
fn open_root(dir: &Path) -> Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let opened = match fs::openat(CWD, dir, flags, Mode::empty()) {
        Err(Errno::NOENT) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io(format_args!("creating `{}`", dir.display()), e))?;
            fs::openat(CWD, dir, flags, Mode::empty())
        }
        other => other,
    };
    opened.map_err(|e| Error::io(format_args!("opening `{}`", dir.display()), e.into()))
}

/// A file already written by this unpack, for the later paths that share its node.
#[derive(Debug, Clone)]
enum Written {
    At { path: ImagePath, id: FileId },
    Skipped(SkipReason),
}

/// A host inode: device and inode numbers.
type FileId = (u64, u64);

#[allow(clippy::unnecessary_cast)] // `st_dev` and `st_ino` are not `u64` everywhere.
fn file_id(stat: &Stat) -> FileId {
    (stat.st_dev as u64, stat.st_ino as u64)
}

/// One directory on the way down: its descriptor (closed when too deep, see [`OPEN_DIRS`]),
/// its inode, and the children still to write.
struct Frame<'t> {
    fd: Option<OwnedFd>,
    id: FileId,
    dir: &'t Dir,
    children: btree_map::Iter<'t, Bytes, Node>,
    path: ImagePath,
}

struct Unpacker<'a> {
    dir: &'a Path,
    owners: bool,
    options: UnpackOptions,
    root_user: bool,
    /// Shared file nodes already written, by the address of their `Arc<Entry>`.
    links: HashMap<*const Entry, Written>,
    report: UnpackReport,
}

/// What is being done, for an [`Error::Io`] context.
#[derive(Clone, Copy)]
enum Doing {
    Creating,
    Opening,
    Removing,
    Linking,
    Owner,
    Mode,
    Mtime,
    Stat,
}

impl Unpacker<'_> {
    /// The host path of a tree path, for messages only (nothing opens it).
    fn host(&self, path: &ImagePath) -> String {
        if path.is_root() {
            self.dir.display().to_string()
        } else {
            format!("{}/{}", self.dir.display(), path)
        }
    }

    fn io(&self, doing: Doing, path: &ImagePath, err: Errno) -> Error {
        let what = match doing {
            Doing::Creating => "creating",
            Doing::Opening => "opening",
            Doing::Removing => "removing",
            Doing::Linking => "linking",
            Doing::Owner => "setting the owner of",
            Doing::Mode => "setting the mode of",
            Doing::Mtime => "setting the mtime of",
            Doing::Stat => "checking",
        };
        Error::io(format_args!("{what} `{}`", self.host(path)), err.into())
    }

    fn refuse(&self, path: &ImagePath, reason: &'static str) -> Error {
        Error::Unpack {
            path: self.host(path),
            reason,
        }
    }

    fn skip(&mut self, path: &ImagePath, reason: SkipReason) {
        self.report.skipped.push(Skipped {
            path: path.clone(),
            reason,
        });
    }

    fn run(&mut self, tree: &Tree, root: OwnedFd) -> Result<()> {
        let root_dir: &Dir = tree.root_dir();
        let id = file_id(&fs::fstat(&root).map_err(|e| self.io(Doing::Stat, &ImagePath::ROOT, e))?);
        let mut stack = vec![Frame {
            fd: Some(root),
            id,
            dir: root_dir,
            children: root_dir.children.iter(),
            path: ImagePath::ROOT,
        }];
        loop {
            let top = stack.last_mut().expect("the root frame is popped last");
            let Some((name, node)) = top.children.next() else {
                let frame = stack.pop().expect("a frame is there");
                let fd = frame.fd.expect("the top frame is open");
                if let Some(parent) = stack.last_mut() {
                    if parent.fd.is_none() {
                        parent.fd =
                            Some(self.reopen_parent(fd.as_fd(), parent.id, &parent.path)?);
                    }
                }
                self.set_metadata(fd.as_fd(), &frame.dir.metadata, &frame.path, true)?;
                if stack.is_empty() {
                    return Ok(());
                }
                continue;
            };
            let path = top.path.join_unchecked(name);
            check_name(name, &path)?;
            let parent = stack
                .last()
                .and_then(|f| f.fd.as_ref())
                .expect("the top frame is open");
            match &node.kind {
                NodeKind::Dir(dir) => {
                    let fd = self.make_dir(parent.as_fd(), name, &path)?;
                    let id = file_id(&fs::fstat(&fd).map_err(|e| self.io(Doing::Stat, &path, e))?);
                    self.report.directories += 1;
                    stack.push(Frame {
                        fd: Some(fd),
                        id,
                        dir,
                        children: dir.children.iter(),
                        path,
                    });
                    // Keep the root and the innermost OPEN_DIRS directories open.
                    if stack.len() > OPEN_DIRS + 1 {
                        let outer = stack.len() - 1 - OPEN_DIRS;
                        stack[outer].fd = None;
                    }
                }
                NodeKind::Leaf(entry) => {
                    let root = stack[0].fd.as_ref().expect("the root stays open");
                    self.leaf(root.as_fd(), parent.as_fd(), name, &path, entry)?;
                }
            }
        }
    }

    /// Opens the parent of a directory whose descriptor was closed for depth, through `..`
    /// of the child, and checks it is the directory it was.
    fn reopen_parent(
        &self,
        child: BorrowedFd<'_>,
        id: FileId,
        path: &ImagePath,
    ) -> Result<OwnedFd> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = fs::openat(child, "..", flags, Mode::empty())
            .map_err(|e| self.io(Doing::Opening, path, e))?;
        let stat = fs::fstat(&fd).map_err(|e| self.io(Doing::Stat, path, e))?;
        if file_id(&stat) != id {
            return Err(self.refuse(path, "the directory was moved while unpacking"));
        }
        Ok(fd)
    }

    /// Runs `create`; if something is in the way, removes it without following it and runs
    /// `create` once more.
    fn create<T>(
        &mut self,
        doing: Doing,
        parent: BorrowedFd<'_>,
        name: &[u8],
        path: &ImagePath,
        mut create: impl FnMut() -> rustix::io::Result<T>,
    ) -> Result<T> {
        let result = match create() {
            Err(Errno::EXIST) => {
                self.clear(parent, name, path)?;
                create()
            }
            other => other,
        };
        result.map_err(|e| self.io(doing, path, e))
    }

    /// Removes whatever non-directory or empty directory is at `name`. A symlink is removed,
    /// not followed; a non-empty directory is an error.
    fn clear(&mut self, parent: BorrowedFd<'_>, name: &[u8], path: &ImagePath) -> Result<()> {
        let stat = match fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Err(Errno::NOENT) => return Ok(()),
            other => other.map_err(|e| self.io(Doing::Stat, path, e))?,
        };
        let is_dir = HostType::from_raw_mode(stat.st_mode) == HostType::Directory;
        let flags = if is_dir {
            AtFlags::REMOVEDIR
        } else {
            AtFlags::empty()
        };
        match fs::unlinkat(parent, name, flags) {
            Ok(()) => {
                self.report.replaced += 1;
                Ok(())
            }
            Err(Errno::NOTEMPTY | Errno::EXIST) if is_dir => {
                Err(self.refuse(path, "a non-empty directory is in the way"))
            }
            Err(e) => Err(self.io(Doing::Removing, path, e)),
        }
    }

    /// Creates (or reuses) a directory and opens it without following a symlink.
    fn make_dir(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &[u8],
        path: &ImagePath,
    ) -> Result<OwnedFd> {
        let mut reused = false;
        match fs::mkdirat(parent, name, Mode::RWXU) {
            Ok(()) => {}
            Err(Errno::EXIST) => {
                let stat = fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| self.io(Doing::Stat, path, e))?;
                if HostType::from_raw_mode(stat.st_mode) == HostType::Directory {
                    reused = true;
                } else {
                    self.clear(parent, name, path)?;
                    fs::mkdirat(parent, name, Mode::RWXU)
                        .map_err(|e| self.io(Doing::Creating, path, e))?;
                }
            }
            Err(e) => return Err(self.io(Doing::Creating, path, e)),
        }
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = fs::openat(parent, name, flags, Mode::empty())
            .map_err(|e| self.io(Doing::Opening, path, e))?;
        if reused {
            // Its children must go in before it gets its own mode: make sure we may write.
            let stat = fs::fstat(&fd).map_err(|e| self.io(Doing::Stat, path, e))?;
            if stat.st_mode & 0o700 != 0o700 {
                let mode = Mode::from_raw_mode(stat.st_mode) | Mode::RWXU;
                fs::fchmod(&fd, mode).map_err(|e| self.io(Doing::Mode, path, e))?;
            }
        }
        Ok(fd)
    }

    /// Writes one non-directory: a new file, symlink, pipe or device, or a hardlink to one
    /// written before.
    fn leaf(
        &mut self,
        root: BorrowedFd<'_>,
        parent: BorrowedFd<'_>,
        name: &[u8],
        path: &ImagePath,
        entry: &Arc<Entry>,
    ) -> Result<()> {
        // A node held by one path only cannot be a hardlink; skip the bookkeeping for it.
        let shared = Arc::strong_count(entry) > 1;
        if shared {
            match self.links.get(&Arc::as_ptr(entry)).cloned() {
                Some(Written::At { path: first, id }) => {
                    return self.link(root, parent, name, path, &first, id)
                }
                Some(Written::Skipped(reason)) => {
                    self.skip(path, reason);
                    return Ok(());
                }
                None => {}
            }
        }
        let meta = &entry.metadata;
        let nofollow = AtFlags::SYMLINK_NOFOLLOW;
        let id = match &entry.kind {
            EntryKind::File(contents) => {
                let flags = OFlags::WRONLY
                    | OFlags::CREATE
                    | OFlags::EXCL
                    | OFlags::NOFOLLOW
                    | OFlags::CLOEXEC;
                let fd = self.create(Doing::Creating, parent, name, path, || {
                    fs::openat(parent, name, flags, Mode::RUSR | Mode::WUSR)
                })?;
                let file = File::from(fd);
                contents.copy_to_file(&file, &format!("`{}`", self.host(path)))?;
                self.report.files += 1;
                self.report.bytes += contents.len();
                self.set_metadata(file.as_fd(), meta, path, false)?;
                file_id(&fs::fstat(&file).map_err(|e| self.io(Doing::Stat, path, e))?)
            }
            EntryKind::Symlink(target) => {
                self.create(Doing::Creating, parent, name, path, || {
                    fs::symlinkat(&target[..], parent, name)
                })?;
                self.report.symlinks += 1;
                if self.owners {
                    let (uid, gid) = self.ids(meta, path)?;
                    fs::chownat(parent, name, Some(uid), Some(gid), nofollow)
                        .map_err(|e| self.io(Doing::Owner, path, e))?;
                }
                // No descriptor of a symlink can carry an xattr; name it through the
                // parent's descriptor in /proc, without following the last component.
                let at = proc_fd_path(parent, Some(name));
                self.write_xattrs(path, meta, |n, v| {
                    fs::lsetxattr(&at[..], n, v, XattrFlags::empty())
                });
                fs::utimensat(parent, name, &times(meta.mtime), nofollow)
                    .map_err(|e| self.io(Doing::Mtime, path, e))?;
                let stat = fs::statat(parent, name, nofollow)
                    .map_err(|e| self.io(Doing::Stat, path, e))?;
                file_id(&stat)
            }
            EntryKind::Fifo => {
                self.create(Doing::Creating, parent, name, path, || {
                    fs::mknodat(parent, name, HostType::Fifo, Mode::RUSR | Mode::WUSR, 0)
                })?;
                // Opening a pipe to read without blocking has no other effect.
                let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                let fd = fs::openat(parent, name, flags, Mode::empty())
                    .map_err(|e| self.io(Doing::Opening, path, e))?;
                let stat = fs::fstat(&fd).map_err(|e| self.io(Doing::Stat, path, e))?;
                if HostType::from_raw_mode(stat.st_mode) != HostType::Fifo {
                    return Err(self.refuse(path, "the entry was replaced while unpacking"));
                }
                self.report.fifos += 1;
                self.set_metadata(fd.as_fd(), meta, path, false)?;
                file_id(&stat)
            }
            EntryKind::CharDevice { major, minor } | EntryKind::BlockDevice { major, minor } => {
                if self.options.devices == Devices::Skip {
                    self.skip(path, SkipReason::Device);
                    if shared {
                        self.links
                            .insert(Arc::as_ptr(entry), Written::Skipped(SkipReason::Device));
                    }
                    return Ok(());
                }
                let kind = if matches!(entry.kind, EntryKind::CharDevice { .. }) {
                    HostType::CharacterDevice
                } else {
                    HostType::BlockDevice
                };
                let dev = fs::makedev(*major, *minor);
                self.create(Doing::Creating, parent, name, path, || {
                    fs::mknodat(parent, name, kind, Mode::RUSR | Mode::WUSR, dev)
                })?;
                self.report.devices += 1;
                self.device_metadata(parent, name, path, meta, kind, dev)?
            }
            EntryKind::Directory | EntryKind::Hardlink(_) => {
                // A tree holds directories as directory nodes and hardlinks as shared
                // nodes; a leaf of either kind is not something to write.
                return Err(Error::InvalidPath {
                    path: crate::error::path_bytes(path),
                    reason: "a tree leaf that is a directory or hardlink record",
                });
            }
        };
        if shared {
            self.links.insert(
                Arc::as_ptr(entry),
                Written::At {
                    path: path.clone(),
                    id,
                },
            );
        }
        Ok(())
    }

    /// Owner, mode, xattrs and mtime of a device node just made. A device is never opened
    /// for real (that would call its driver): an `O_PATH` descriptor pins it, is checked to
    /// be the node made, and its mode and xattrs are set through `/proc/self/fd`.
    fn device_metadata(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &[u8],
        path: &ImagePath,
        meta: &Metadata,
        kind: HostType,
        dev: fs::Dev,
    ) -> Result<FileId> {
        let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = fs::openat(parent, name, flags, Mode::empty())
            .map_err(|e| self.io(Doing::Opening, path, e))?;
        let stat = fs::fstat(&fd).map_err(|e| self.io(Doing::Stat, path, e))?;
        if HostType::from_raw_mode(stat.st_mode) != kind || stat.st_rdev != dev {
            return Err(self.refuse(path, "the entry was replaced while unpacking"));
        }
        if self.owners {
            let (uid, gid) = self.ids(meta, path)?;
            fs::chownat(&fd, "", Some(uid), Some(gid), AtFlags::EMPTY_PATH)
                .map_err(|e| self.io(Doing::Owner, path, e))?;
        }
        let at = proc_fd_path(fd.as_fd(), None);
        self.write_xattrs(path, meta, |n, v| {
            fs::setxattr(&at[..], n, v, XattrFlags::empty())
        });
        let mode = self.mode(meta.mode, false, path);
        fs::chmodat(CWD, &at[..], Mode::from_raw_mode(mode), AtFlags::empty())
            .map_err(|e| self.io(Doing::Mode, path, e))?;
        fs::utimensat(parent, name, &times(meta.mtime), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| self.io(Doing::Mtime, path, e))?;
        Ok(file_id(&stat))
    }

    /// Makes `name` another path of the file first written at `first`.
    fn link(
        &mut self,
        root: BorrowedFd<'_>,
        parent: BorrowedFd<'_>,
        name: &[u8],
        path: &ImagePath,
        first: &ImagePath,
        id: FileId,
    ) -> Result<()> {
        let (Some(first_dir), Some(first_name)) = (first.parent(), first.file_name()) else {
            return Err(self.refuse(path, "a hardlink to the root"));
        };
        // Reopen the first path's directory from the root, one component at a time.
        let mut held: Option<OwnedFd> = None;
        for component in first_dir.components() {
            let at = held.as_ref().map_or(root, |fd| fd.as_fd());
            let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let next = fs::openat(at, component, flags, Mode::empty())
                .map_err(|e| self.io(Doing::Opening, &first_dir, e))?;
            held = Some(next);
        }
        let source = held.as_ref().map_or(root, |fd| fd.as_fd());
        self.create(Doing::Linking, parent, name, path, || {
            fs::linkat(source, first_name, parent, name, AtFlags::empty())
        })?;
        let stat = fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| self.io(Doing::Stat, path, e))?;
        if file_id(&stat) != id {
            // Best effort: the error is what matters.
            let _ = fs::unlinkat(parent, name, AtFlags::empty());
            return Err(self.refuse(path, "the hardlink's target was replaced while unpacking"));
        }
        self.report.hardlinks += 1;
        Ok(())
    }

    /// Owner, xattrs, mode and mtime through a descriptor of the entry itself, in that order:
    /// `chown` clears setuid bits and a read-only mode would refuse `user.*` xattrs.
    fn set_metadata(
        &mut self,
        fd: BorrowedFd<'_>,
        meta: &Metadata,
        path: &ImagePath,
        is_dir: bool,
    ) -> Result<()> {
        if self.owners {
            let (uid, gid) = self.ids(meta, path)?;
            fs::fchown(fd, Some(uid), Some(gid)).map_err(|e| self.io(Doing::Owner, path, e))?;
        }
        self.write_xattrs(path, meta, |n, v| {
            fs::fsetxattr(fd, n, v, XattrFlags::empty())
        });
        let mode = self.mode(meta.mode, is_dir, path);
        fs::fchmod(fd, Mode::from_raw_mode(mode)).map_err(|e| self.io(Doing::Mode, path, e))?;
        fs::futimens(fd, &times(meta.mtime)).map_err(|e| self.io(Doing::Mtime, path, e))?;
        Ok(())
    }

    /// The tree's owner as host ids.
    fn ids(&self, meta: &Metadata, path: &ImagePath) -> Result<(Uid, Gid)> {
        // u32::MAX is -1, which chown reads as "leave unchanged".
        let fit = |id: u64| u32::try_from(id).ok().filter(|&id| id != u32::MAX);
        match (fit(meta.uid), fit(meta.gid)) {
            (Some(uid), Some(gid)) => Ok((Uid::from_raw(uid), Gid::from_raw(gid))),
            _ => Err(self.refuse(path, "the owner's uid or gid does not fit in 32 bits")),
        }
    }

    /// The mode to give an entry, setuid and setgid bits cleared as the options say.
    fn mode(&mut self, mode: u32, is_dir: bool, path: &ImagePath) -> u32 {
        let strip = if is_dir { 0o4000 } else { 0o6000 };
        if self.options.setuid == Setuid::Strip && mode & strip != 0 {
            self.skip(path, SkipReason::SetidBits { mode });
            mode & !strip
        } else {
            mode
        }
    }

    /// Writes the xattrs the options allow with `set`, reporting what is left out.
    fn write_xattrs(
        &mut self,
        path: &ImagePath,
        meta: &Metadata,
        mut set: impl FnMut(&[u8], &[u8]) -> rustix::io::Result<()>,
    ) {
        if self.options.xattrs == Xattrs::Skip {
            return;
        }
        for (name, value) in &meta.xattrs {
            let capability = &name[..] == b"security.capability";
            let allowed = if capability && self.options.setuid == Setuid::Strip {
                false
            } else {
                name.starts_with(b"user.") || self.root_user
            };
            if !allowed {
                self.skip(path, SkipReason::XattrNotAllowed { name: name.clone() });
            } else if let Err(e) = set(name, value) {
                let reason = SkipReason::XattrFailed {
                    name: name.clone(),
                    errno: e.raw_os_error(),
                };
                self.skip(path, reason);
            }
        }
    }
}

/// `/proc/self/fd/N`, or `/proc/self/fd/N/NAME`: a path that reaches what descriptor `N`
/// holds (or a name in that directory) without resolving anything else.
fn proc_fd_path(fd: BorrowedFd<'_>, name: Option<&[u8]>) -> Vec<u8> {
    let mut path = format!("/proc/self/fd/{}", fd.as_raw_fd()).into_bytes();
    if let Some(name) = name {
        path.push(b'/');
        path.extend_from_slice(name);
    }
    path
}

fn times(mtime: i64) -> Timestamps {
    let at = Timespec {
        tv_sec: mtime,
        tv_nsec: 0,
    };
    Timestamps {
        last_access: at,
        last_modification: at,
    }
}

/// Tree names are single components already; check anyway, since a `/` or `..` here would
/// be the one way out of the directory.
fn check_name(name: &[u8], path: &ImagePath) -> Result<()> {
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0)
    {
        return Err(Error::InvalidPath {
            path: crate::error::path_bytes(path),
            reason: "not a single file name",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_would_leave_the_directory_are_refused() {
        for bad in [&b""[..], b".", b"..", b"a/b", b"a\0"] {
            assert!(check_name(bad, &ImagePath::ROOT).is_err(), "{bad:?}");
        }
        assert!(check_name(b"...", &ImagePath::ROOT).is_ok());
    }

    #[test]
    fn proc_paths() {
        let dir = File::open("/").unwrap();
        let fd = dir.as_raw_fd();
        assert_eq!(
            proc_fd_path(dir.as_fd(), Some(b"x")),
            format!("/proc/self/fd/{fd}/x").into_bytes()
        );
    }

    #[test]
    fn skip_reasons_read_well() {
        let s = Skipped {
            path: ImagePath::new("usr/bin/su").unwrap(),
            reason: SkipReason::SetidBits { mode: 0o4755 },
        };
        assert_eq!(
            s.to_string(),
            "usr/bin/su: setuid/setgid bits cleared from 4755"
        );
        let s = SkipReason::XattrNotAllowed {
            name: Bytes::from_static(b"trusted.x"),
        };
        assert_eq!(s.to_string(), "xattr trusted.x not allowed");
    }
}
