//! The crate's one error type: every failure names the path, digest or limit it is about.

use std::fmt;
use std::io;

use bytes::Bytes;

use crate::digest::{Digest, ImageId};
// A path's bytes shown: UTF-8 as text, any other byte as `\xNN`.
use crate::entry::Escaped as PathBytes;

/// A specialised `Result` whose error is [`Error`].
///
/// The error type is a default parameter, so `Result<T, E>` still names any other error.
///
/// ```
/// use layercake::{Layer, Result, Tree};
///
/// // Helpers over layercake calls need no error type of their own.
/// fn motd(text: &str) -> Result<Tree> {
///     Tree::new().apply(&Layer::builder().file("etc/motd", text.to_owned()).build()?)
/// }
/// assert_eq!(motd("hi\n")?.read("etc/motd")?, "hi\n");
/// let parsed: Result<u32, std::num::ParseIntError> = "42".parse();
/// assert_eq!(parsed, Ok(42));
/// # Ok::<(), layercake::Error>(())
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in layercake.
///
/// Variants carry structured context (the path, the digest, the expected and actual values):
/// digests are [`Digest`]s, sizes `u64`s, paths inside an image their bytes. The `Display`
/// of each is one lowercase line that names it.
///
/// # Messages are safe to print
///
/// Much of what a message quotes comes from the input: a path from a tar header, a name from
/// `manifest.json`, the words of the tar reader or of `serde_json` about bytes they refused.
/// `Display` escapes every character that is not printable (control characters including
/// ESC, DEL and C1 as `\xNN`; newline, tab and carriage return as `\n`, `\t`, `\r`; the
/// Unicode format characters that reorder or hide text as `\u{NNNN}`) and every byte of a
/// path that is not UTF-8 as `\xNN`, so a message never puts raw input on a terminal. This
/// is done once, in `Display`, for every variant.
///
/// # Causes
///
/// [`Error::Io`] keeps its I/O error, and [`Error::InvalidConfig`] and
/// [`Error::InvalidArchive`] their JSON error, as [`std::error::Error::source`], for code
/// that wants its kind or position. `Display` ends with the cause's message (escaped too),
/// so `i/o error while opening x.tar: No such file or directory (os error 2)` says why on
/// its own; a printer of the whole chain should skip a cause whose message the line already
/// holds. Other underlying errors are not kept as a source: the message of the tar reader
/// or a decoder that refuses its input is part of the `reason` of [`Error::InvalidTar`],
/// [`Error::InvalidBlob`] or [`Error::InvalidArchive`].
///
/// # Example
///
/// ```
/// use layercake::{Error, ImagePath};
///
/// let err = ImagePath::new("etc/../passwd").unwrap_err();
/// assert!(matches!(err, Error::InvalidPath { .. }));
/// assert_eq!(err.to_string(), "invalid path `etc/../passwd`: `..` component");
///
/// // Bytes from the input are escaped: no ESC reaches a terminal.
/// let err = ImagePath::new(&b"etc/\x1b[31m/../\xff"[..]).unwrap_err();
/// assert_eq!(err.to_string(), r"invalid path `etc/\x1b[31m/../\xff`: `..` component");
///
/// // An I/O error says why.
/// let err = layercake::Layer::open("/nonexistent/layer.tar").unwrap_err();
/// assert!(err.to_string().ends_with("No such file or directory (os error 2)"), "{err}");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A digest string is not `algorithm:hex` of the right length.
    InvalidDigest {
        /// The text that was parsed.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A digest names an algorithm this crate cannot compute.
    UnsupportedAlgorithm {
        /// The algorithm part of the digest.
        algorithm: String,
    },

    /// Bytes did not hash to the digest that names them.
    DigestMismatch {
        /// What was being verified (a layer, a config, a blob).
        what: String,
        /// The digest that was promised (a DiffId is given as its digest).
        expected: Digest,
        /// The digest of the bytes actually seen.
        actual: Digest,
    },

    /// Bytes were not as long as their descriptor says.
    SizeMismatch {
        /// What was being verified (a blob, a layer).
        what: String,
        /// The size that was promised.
        expected: u64,
        /// The size actually seen.
        actual: u64,
    },

    /// A path is not acceptable inside an image (a `..` component, a NUL byte, a name a
    /// layer tar cannot carry), or names the wrong kind of entry for what was asked (a
    /// device or pipe where a regular file is needed, a directory moved into itself).
    InvalidPath {
        /// The path, as given.
        path: Bytes,
        /// Why it was refused.
        reason: &'static str,
    },

    /// A permission mode has bits outside `0o7777`.
    InvalidMode {
        /// The path whose mode was to be set.
        path: Bytes,
        /// The mode that was given.
        mode: u32,
    },

    /// A layer tar is malformed.
    InvalidTar {
        /// The entry the problem was found at, if it got that far.
        path: Option<Bytes>,
        /// What is wrong.
        reason: String,
    },

    /// Two entries of one layer name the same path and the reader was told to refuse that (R4).
    DuplicateEntry {
        /// The path that appears twice.
        path: Bytes,
    },

    /// An entry of a layer lies below a non-directory entry of the same layer.
    ParentNotDirectory {
        /// The entry.
        path: Bytes,
        /// The non-directory ancestor.
        parent: Bytes,
    },

    /// A hardlink names a target that cannot be linked (R7).
    InvalidHardlink {
        /// The link.
        path: Bytes,
        /// What it points at.
        target: Bytes,
        /// Why the link is refused.
        reason: &'static str,
    },

    /// Following symlinks took more than 40 hops (R8).
    SymlinkLoop {
        /// The path being resolved.
        path: Bytes,
    },

    /// No entry at a path.
    NotFound {
        /// The missing path.
        path: Bytes,
    },

    /// A directory was needed and something else is there.
    NotADirectory {
        /// The path that is not a directory.
        path: Bytes,
    },

    /// A non-directory was needed and a directory is there.
    IsADirectory {
        /// The directory.
        path: Bytes,
    },

    /// An entry already exists where a new one was to be created.
    AlreadyExists {
        /// The path that is taken.
        path: Bytes,
    },

    /// A directory that had to be empty is not.
    DirectoryNotEmpty {
        /// The directory.
        path: Bytes,
    },

    /// An operation on the root directory that the root does not allow (R10).
    RootDirectory {
        /// What was attempted.
        reason: &'static str,
    },

    /// An image configuration could not be parsed or does not fit its layers.
    InvalidConfig {
        /// What is wrong.
        reason: String,
        /// The JSON error, where there was one.
        #[source]
        source: Option<serde_json::Error>,
    },

    /// An image reference (`name:tag`) is malformed.
    InvalidReference {
        /// The text.
        reference: String,
        /// Why it is refused.
        reason: &'static str,
    },

    /// No image answers to a reference in the store.
    ImageNotFound {
        /// The reference or id that was asked for.
        reference: String,
    },

    /// A reference could mean more than one image, or none was given where several images
    /// could be meant.
    AmbiguousReference {
        /// What was asked for (a short id, a name); empty when nothing was.
        reference: String,
        /// The images it could mean: their names, or ids for unnamed ones.
        candidates: Vec<String>,
    },

    /// An image cannot be removed by id while several tags point at it (as `docker rmi`
    /// without `-f` refuses): remove it by tag, one tag at a time.
    ImageInUse {
        /// The image id.
        id: ImageId,
        /// Its tags, in familiar form (`busybox:latest`).
        tags: Vec<String>,
    },

    /// A blob is not what it claims to be: not a valid compressed stream, truncated, or
    /// followed by garbage.
    InvalidBlob {
        /// The digest of the blob (as named by its descriptor, or as found); `None` for a
        /// stream whose digest is not known.
        digest: Option<Digest>,
        /// What is wrong.
        reason: String,
    },

    /// A blob an archive needs is not in it.
    MissingBlob {
        /// The digest that was looked for.
        digest: Digest,
        /// Where it was expected, if the archive names a path.
        path: Option<String>,
    },

    /// An image archive (docker-archive, OCI layout) is malformed.
    InvalidArchive {
        /// The member or file the problem is in.
        path: Option<String>,
        /// What is wrong.
        reason: String,
        /// The JSON error, where there was one.
        #[source]
        source: Option<serde_json::Error>,
    },

    /// A configured limit was exceeded.
    LimitExceeded {
        /// Which limit.
        limit: &'static str,
        /// The value found (or reached).
        value: u64,
        /// The limit.
        max: u64,
    },

    /// The decompression ratio of a blob passed [`Limits::ratio`](crate::Limits::ratio).
    ///
    /// Its message names the blob and says how to raise the limit: a layer made mostly of
    /// zero-filled files (a swap file, a sparse `lastlog`) is refused like a bomb.
    RatioExceeded {
        /// The blob, once it is known.
        blob: Option<Digest>,
        /// The ratio reached (uncompressed bytes per blob byte so far).
        value: u64,
        /// The limit.
        max: u64,
        /// How many bytes of the blob had been read when it was refused.
        offset: u64,
    },

    /// Something this crate does not support (a compression, a media type, a format, a
    /// platform string it cannot parse), a name whose index has no image for the platform
    /// asked, or writer options that contradict each other
    /// ([`Writer::write`](crate::archive::Writer::write)).
    Unsupported {
        /// What it is.
        what: String,
    },

    /// Writing a tree to a host directory met something it will not write over or through.
    Unpack {
        /// The host path.
        path: String,
        /// Why it stopped there.
        reason: &'static str,
    },

    /// A layer index past the end of an image, e.g. [`Image::squash`](crate::Image::squash)
    /// from a layer the image does not have.
    LayerOutOfRange {
        /// The index asked for.
        index: usize,
        /// How many layers the image has.
        layers: usize,
    },

    /// A registry refused a request, answered something unusable, or could not be reached
    /// (after the retries a [`registry::Client`](crate::registry::Client) makes).
    Registry {
        /// The registry, as a reference names it (`docker.io`, `127.0.0.1:5000`).
        registry: String,
        /// The repository (`library/busybox`); empty for a request about the registry itself.
        repository: String,
        /// What was asked: method and path (`GET /v2/library/busybox/manifests/latest`).
        request: String,
        /// The HTTP status, when there was an answer.
        status: Option<u16>,
        /// The error code the registry gave (`MANIFEST_UNKNOWN`, `DENIED`), if any.
        code: Option<String>,
        /// What went wrong, in the registry's words or ours.
        reason: String,
    },

    /// A Dockerfile does not follow the reference's grammar: an unknown instruction or
    /// flag, a malformed argument, a parser directive given twice, an unterminated heredoc.
    Dockerfile {
        /// The line the problem is on, from 1.
        line: usize,
        /// The column, from 1, in characters.
        column: usize,
        /// What is wrong.
        reason: String,
    },

    /// A `.dockerignore` holds a pattern Docker refuses (a lone `!`, a malformed character
    /// class, a trailing `\\`).
    Dockerignore {
        /// The file.
        path: String,
        /// The line, the pattern and what is wrong with it.
        #[source]
        source: crate::build::IgnoreError,
    },

    /// A RUN step's command exited with a non-zero status (or was killed by a signal:
    /// 128 + its number, as a shell says).
    RunFailed {
        /// The command, its arguments joined by spaces (`/bin/sh -c make`).
        command: String,
        /// The exit status.
        status: i32,
        /// What it wrote to stdout and stderr, interleaved (the last 64 KiB).
        output: String,
    },

    /// Reading or writing failed.
    Io {
        /// What was being done, naming the file where there is one.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl fmt::Display for Error {
    /// Writes the message, escaping what is not printable (see [`Error`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.message(&mut Escaping(f))
    }
}

impl Error {
    /// The message, unescaped; [`Display`](fmt::Display) passes it through [`Escaping`].
    fn message(&self, w: &mut dyn fmt::Write) -> fmt::Result {
        let p = |b: &Bytes| PathBytes(b).to_string();
        match self {
            Error::InvalidDigest { input, reason } => {
                write!(w, "invalid digest `{input}`: {reason}")
            }
            Error::UnsupportedAlgorithm { algorithm } => {
                write!(w, "unsupported digest algorithm `{algorithm}`")
            }
            Error::DigestMismatch {
                what,
                expected,
                actual,
            } => write!(
                w,
                "{what}: digest mismatch, expected {expected}, got {actual}"
            ),
            Error::SizeMismatch {
                what,
                expected,
                actual,
            } => write!(
                w,
                "{what}: size mismatch, expected {expected} bytes, got {actual}"
            ),
            Error::InvalidPath { path, reason } => {
                write!(w, "invalid path `{}`: {reason}", p(path))
            }
            Error::InvalidMode { path, mode } => write!(
                w,
                "invalid mode 0o{mode:o} for `{}`: bits outside 0o7777",
                p(path)
            ),
            Error::InvalidTar { path, reason } => {
                write!(w, "invalid layer tar")?;
                if let Some(path) = path {
                    write!(w, " at `{}`", p(path))?;
                }
                write!(w, ": {reason}")
            }
            Error::DuplicateEntry { path } => {
                write!(w, "duplicate entry `{}` in one layer", p(path))
            }
            Error::ParentNotDirectory { path, parent } => write!(
                w,
                "entry `{}` lies below `{}`, which its own layer makes a non-directory",
                p(path),
                p(parent)
            ),
            Error::InvalidHardlink {
                path,
                target,
                reason,
            } => write!(w, "hardlink `{}` to `{}`: {reason}", p(path), p(target)),
            Error::SymlinkLoop { path } => write!(
                w,
                "too many levels of symbolic links resolving `{}`",
                p(path)
            ),
            Error::NotFound { path } => write!(w, "no such file or directory `{}`", p(path)),
            Error::NotADirectory { path } => write!(w, "not a directory `{}`", p(path)),
            Error::IsADirectory { path } => write!(w, "is a directory `{}`", p(path)),
            Error::AlreadyExists { path } => write!(w, "file exists `{}`", p(path)),
            Error::DirectoryNotEmpty { path } => {
                write!(w, "directory not empty `{}`", p(path))
            }
            Error::RootDirectory { reason } => {
                write!(w, "operation not permitted on the root directory: {reason}")
            }
            Error::InvalidConfig { reason, source } => {
                write!(w, "invalid image config: {reason}")?;
                cause(w, source.as_ref().map(|e| e as _))
            }
            Error::InvalidReference { reference, reason } => {
                write!(w, "invalid reference `{reference}`: {reason}")
            }
            Error::ImageNotFound { reference } => write!(w, "no such image `{reference}`"),
            Error::AmbiguousReference {
                reference,
                candidates,
            } => {
                let list = candidates.join(", ");
                if reference.is_empty() {
                    write!(
                        w,
                        "several images and no name to pick one: {list}; name one of them"
                    )
                } else {
                    write!(
                        w,
                        "ambiguous image reference `{reference}`: it could be {list}"
                    )
                }
            }
            Error::LayerOutOfRange { index, layers } => write!(
                w,
                "layer {index} is out of range: the image has {layers} layers"
            ),
            Error::ImageInUse { id, tags } => write!(
                w,
                "image {id} is tagged as {}; untag it or remove it by tag",
                tags.join(", ")
            ),
            Error::InvalidBlob { digest, reason } => match digest {
                Some(digest) => write!(w, "blob {digest}: {reason}"),
                None => write!(w, "blob of a stream: {reason}"),
            },
            Error::MissingBlob { digest, path } => {
                write!(w, "missing blob {digest}")?;
                if let Some(path) = path {
                    write!(w, " at `{path}`")?;
                }
                Ok(())
            }
            Error::InvalidArchive {
                path,
                reason,
                source,
            } => {
                match path {
                    Some(path) => write!(w, "{path}: {reason}")?,
                    None => write!(w, "invalid image archive: {reason}")?,
                }
                cause(w, source.as_ref().map(|e| e as _))
            }
            Error::Registry {
                registry,
                repository,
                request,
                status,
                code,
                reason,
            } => {
                write!(w, "registry {registry}")?;
                if !repository.is_empty() {
                    write!(w, ", repository {repository}")?;
                }
                write!(w, ": {request}: ")?;
                if let Some(status) = status {
                    write!(w, "{status} ")?;
                }
                // The code as Docker shows it: `unauthorized: authentication required`.
                if let Some(code) = code {
                    write!(w, "{}: ", code.to_lowercase())?;
                }
                write!(w, "{reason}")
            }
            Error::LimitExceeded { limit, value, max } => {
                write!(w, "{limit}: {value} exceeds the limit of {max}")
            }
            Error::RatioExceeded {
                blob,
                value,
                max,
                offset,
            } => {
                if let Some(blob) = blob {
                    write!(w, "layer blob {blob}: ")?;
                }
                write!(
                    w,
                    "decompression ratio: {value} exceeds the limit of {max} (uncompressed \
                     bytes per blob byte, at blob offset {offset}); a layer made mostly of \
                     zero-filled files looks like a bomb: to read it, raise the limit with \
                     Limits::ratio"
                )
            }
            Error::Unsupported { what } => write!(w, "unsupported: {what}"),
            Error::Unpack { path, reason } => write!(w, "cannot unpack to `{path}`: {reason}"),
            Error::Dockerfile {
                line,
                column,
                reason,
            } => write!(w, "dockerfile line {line}, column {column}: {reason}"),
            Error::Dockerignore { path, source } => write!(w, "{path}: {source}"),
            Error::RunFailed {
                command,
                status,
                output,
            } => write!(
                w,
                "the command `{command}` returned a non-zero code: {status}; its output: {output}"
            ),
            Error::Io { context, source } => {
                write!(w, "i/o error while {context}")?;
                cause(w, Some(source))
            }
        }
    }
}

/// Ends a message with its cause's, as `: CAUSE`.
fn cause(w: &mut dyn fmt::Write, source: Option<&dyn std::error::Error>) -> fmt::Result {
    match source {
        Some(source) => write!(w, ": {source}"),
        None => Ok(()),
    }
}

/// Whether a character is shown escaped in messages: control characters (C0 including ESC,
/// DEL, C1) and the format characters that reorder or hide text.
fn is_unprintable(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{206f}'
            | '\u{feff}' | '\u{fff9}'..='\u{fffb}')
}

/// A writer that escapes every unprintable character (see [`is_unprintable`]) on its way
/// to `f`: `\n`, `\t`, `\r`, else `\xNN` below U+0100 and `\u{NNNN}` above.
struct Escaping<'a, 'b>(&'a mut fmt::Formatter<'b>);

impl fmt::Write for Escaping<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        while let Some(at) = rest.find(is_unprintable) {
            self.0.write_str(&rest[..at])?;
            let c = rest[at..].chars().next().expect("found a char there");
            match c {
                '\n' => self.0.write_str("\\n")?,
                '\t' => self.0.write_str("\\t")?,
                '\r' => self.0.write_str("\\r")?,
                c if (c as u32) < 0x100 => write!(self.0, "\\x{:02x}", c as u32)?,
                c => write!(self.0, "\\u{{{:04x}}}", c as u32)?,
            }
            rest = &rest[at + c.len_utf8()..];
        }
        self.0.write_str(rest)
    }
}

impl Error {
    pub(crate) fn io(context: impl fmt::Display, source: io::Error) -> Error {
        Error::Io {
            context: context.to_string(),
            source,
        }
    }

    /// Refuses an empty host path before it reaches the system, which would say only "No
    /// such file or directory" about a name it never shows.
    pub(crate) fn check_host_path(path: &std::path::Path, doing: &str) -> Result<()> {
        if path.as_os_str().is_empty() {
            return Err(Error::Io {
                context: format!("{doing} a file"),
                source: io::Error::new(io::ErrorKind::InvalidInput, "path is empty"),
            });
        }
        Ok(())
    }

    pub(crate) fn tar(path: Option<&[u8]>, reason: impl Into<String>) -> Error {
        Error::InvalidTar {
            path: path.map(Bytes::copy_from_slice),
            reason: reason.into(),
        }
    }

    pub(crate) fn archive(path: impl Into<Option<String>>, reason: impl Into<String>) -> Error {
        Error::InvalidArchive {
            path: path.into(),
            reason: reason.into(),
            source: None,
        }
    }

    pub(crate) fn config(reason: impl Into<String>) -> Error {
        Error::InvalidConfig {
            reason: reason.into(),
            source: None,
        }
    }
}

/// The bytes of an image path, for an error's `path` field.
pub(crate) fn path_bytes(path: impl AsRef<[u8]>) -> Bytes {
    Bytes::copy_from_slice(path.as_ref())
}

/// Lossily decodes a byte path for an error message.
pub(crate) fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl From<Error> for io::Error {
    /// Converts to an `io::Error`, keeping the underlying kind where there is one.
    fn from(err: Error) -> io::Error {
        let kind = match &err {
            Error::Io { source, .. } => source.kind(),
            Error::NotFound { .. } | Error::ImageNotFound { .. } => io::ErrorKind::NotFound,
            Error::AlreadyExists { .. } => io::ErrorKind::AlreadyExists,
            Error::NotADirectory { .. } => io::ErrorKind::NotADirectory,
            Error::IsADirectory { .. } => io::ErrorKind::IsADirectory,
            Error::DirectoryNotEmpty { .. } => io::ErrorKind::DirectoryNotEmpty,
            Error::InvalidTar { .. }
            | Error::DigestMismatch { .. }
            | Error::SizeMismatch { .. }
            | Error::RatioExceeded { .. }
            | Error::InvalidBlob { .. }
            | Error::InvalidArchive { .. } => io::ErrorKind::InvalidData,
            Error::MissingBlob { .. } => io::ErrorKind::NotFound,
            Error::Unsupported { .. } => io::ErrorKind::Unsupported,
            _ => io::ErrorKind::InvalidInput,
        };
        io::Error::new(kind, err)
    }
}
