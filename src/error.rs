//! The crate's one error type: every failure names the path, digest or limit it is about.

use std::fmt;
use std::io;

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
/// Variants carry structured context (the path, the digest, the expected and actual values),
/// and their `Display` is one lowercase line that names it. [`Error::Io`] keeps its I/O
/// error, and [`Error::InvalidConfig`] and [`Error::InvalidArchive`] their JSON error, as
/// [`std::error::Error::source`], and do not repeat its message. Other underlying errors are
/// not kept as a source: the message of the tar reader or a decoder that refuses its input
/// is part of the `reason` of [`Error::InvalidTar`], [`Error::InvalidBlob`] or
/// [`Error::InvalidArchive`], as is an I/O error reading a file of an OCI layout directory.
///
/// # Example
///
/// ```
/// use layercake::{Error, ImagePath};
///
/// let err = ImagePath::new("etc/../passwd").unwrap_err();
/// assert!(matches!(err, Error::InvalidPath { .. }));
/// assert_eq!(err.to_string(), "invalid path `etc/../passwd`: `..` component");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A digest string is not `algorithm:hex` of the right length.
    #[error("invalid digest `{input}`: {reason}")]
    InvalidDigest {
        /// The text that was parsed.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A digest names an algorithm this crate cannot compute.
    #[error("unsupported digest algorithm `{algorithm}`")]
    UnsupportedAlgorithm {
        /// The algorithm part of the digest.
        algorithm: String,
    },

    /// Bytes did not hash to the digest that names them.
    #[error("{what}: digest mismatch, expected {expected}, got {actual}")]
    DigestMismatch {
        /// What was being verified (a layer, a config, a blob).
        what: String,
        /// The digest that was promised.
        expected: String,
        /// The digest of the bytes actually seen.
        actual: String,
    },

    /// A path is not acceptable inside an image.
    #[error("invalid path `{path}`: {reason}")]
    InvalidPath {
        /// The path, lossily decoded.
        path: String,
        /// Why it was refused.
        reason: &'static str,
    },

    /// A layer tar is malformed.
    #[error("invalid layer tar{}: {reason}", at_path(.path))]
    InvalidTar {
        /// The entry the problem was found at, if it got that far.
        path: Option<String>,
        /// What is wrong.
        reason: String,
    },

    /// Two entries of one layer name the same path and the reader was told to refuse that (R4).
    #[error("duplicate entry `{path}` in one layer")]
    DuplicateEntry {
        /// The path that appears twice.
        path: String,
    },

    /// An entry of a layer lies below a non-directory entry of the same layer.
    #[error("entry `{path}` lies below `{parent}`, which its own layer makes a non-directory")]
    ParentNotDirectory {
        /// The entry.
        path: String,
        /// The non-directory ancestor.
        parent: String,
    },

    /// A hardlink names a target that cannot be linked (R7).
    #[error("hardlink `{path}` to `{target}`: {reason}")]
    InvalidHardlink {
        /// The link.
        path: String,
        /// What it points at.
        target: String,
        /// Why the link is refused.
        reason: &'static str,
    },

    /// Following symlinks took more than 40 hops (R8).
    #[error("too many levels of symbolic links resolving `{path}`")]
    SymlinkLoop {
        /// The path being resolved.
        path: String,
    },

    /// No entry at a path.
    #[error("no such file or directory `{path}`")]
    NotFound {
        /// The missing path.
        path: String,
    },

    /// A directory was needed and something else is there.
    #[error("not a directory `{path}`")]
    NotADirectory {
        /// The path that is not a directory.
        path: String,
    },

    /// A non-directory was needed and a directory is there.
    #[error("is a directory `{path}`")]
    IsADirectory {
        /// The directory.
        path: String,
    },

    /// An entry already exists where a new one was to be created.
    #[error("file exists `{path}`")]
    AlreadyExists {
        /// The path that is taken.
        path: String,
    },

    /// A directory that had to be empty is not.
    #[error("directory not empty `{path}`")]
    DirectoryNotEmpty {
        /// The directory.
        path: String,
    },

    /// An operation on the root directory that the root does not allow (R10).
    #[error("operation not permitted on the root directory: {reason}")]
    RootDirectory {
        /// What was attempted.
        reason: &'static str,
    },

    /// An image configuration could not be parsed or does not fit its layers.
    #[error("invalid image config: {reason}")]
    InvalidConfig {
        /// What is wrong.
        reason: String,
        /// The JSON error, where there was one.
        #[source]
        source: Option<serde_json::Error>,
    },

    /// An image reference (`name:tag`) is malformed.
    #[error("invalid reference `{reference}`: {reason}")]
    InvalidReference {
        /// The text.
        reference: String,
        /// Why it is refused.
        reason: &'static str,
    },

    /// No image answers to a reference in the store.
    #[error("no such image `{reference}`")]
    ImageNotFound {
        /// The reference or id that was asked for.
        reference: String,
    },

    /// A reference could mean more than one image, or none was given where several images
    /// could be meant.
    #[error("{}", ambiguous(.reference, .candidates))]
    AmbiguousReference {
        /// What was asked for (a short id, a name); empty when nothing was.
        reference: String,
        /// The images it could mean: their names, or ids for unnamed ones.
        candidates: Vec<String>,
    },

    /// An image cannot be removed while tags point at it and `force` was not given.
    #[error("image {id} is tagged as {tags}; untag it or remove it by tag")]
    ImageInUse {
        /// The image id.
        id: String,
        /// Its tags, comma separated.
        tags: String,
    },

    /// A blob is not what it claims to be: not a valid compressed stream, truncated, or
    /// followed by garbage.
    #[error("blob {digest}: {reason}")]
    InvalidBlob {
        /// The digest of the blob (as found, or as named by its descriptor).
        digest: String,
        /// What is wrong.
        reason: String,
    },

    /// A blob an archive needs is not in it.
    #[error("missing blob {digest}{}", at_path(.path))]
    MissingBlob {
        /// The digest that was looked for.
        digest: String,
        /// Where it was expected, if the archive names a path.
        path: Option<String>,
    },

    /// An image archive (docker-archive, OCI layout) is malformed.
    #[error("invalid image archive{}: {reason}", at_path(.path))]
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
    #[error("{limit}: {value} exceeds the limit of {max}")]
    LimitExceeded {
        /// Which limit.
        limit: &'static str,
        /// The value found (or reached).
        value: u64,
        /// The limit.
        max: u64,
    },

    /// Something this crate does not support (a compression, a media type, a format).
    #[error("unsupported: {what}")]
    Unsupported {
        /// What it is.
        what: String,
    },

    /// Writing a tree to a host directory met something it will not write over or through.
    #[error("cannot unpack to `{path}`: {reason}")]
    Unpack {
        /// The host path.
        path: String,
        /// Why it stopped there.
        reason: &'static str,
    },

    /// A layer index past the end of an image, e.g. [`Image::squash`](crate::Image::squash)
    /// from a layer the image does not have.
    #[error("layer {index} is out of range: the image has {layers} layers")]
    LayerOutOfRange {
        /// The index asked for.
        index: usize,
        /// How many layers the image has.
        layers: usize,
    },

    /// Reading or writing failed.
    #[error("i/o error while {context}")]
    Io {
        /// What was being done, naming the file where there is one.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

fn ambiguous(reference: &str, candidates: &[String]) -> String {
    let list = candidates.join(", ");
    if reference.is_empty() {
        format!("several images and no name to pick one: {list}")
    } else {
        format!("ambiguous image reference `{reference}`: it could be {list}")
    }
}

fn at_path(path: &Option<String>) -> String {
    match path {
        Some(p) => format!(" at `{p}`"),
        None => String::new(),
    }
}

impl Error {
    pub(crate) fn io(context: impl fmt::Display, source: io::Error) -> Error {
        Error::Io {
            context: context.to_string(),
            source,
        }
    }

    pub(crate) fn tar(path: Option<&[u8]>, reason: impl Into<String>) -> Error {
        Error::InvalidTar {
            path: path.map(lossy),
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
            | Error::InvalidBlob { .. }
            | Error::InvalidArchive { .. } => io::ErrorKind::InvalidData,
            Error::MissingBlob { .. } => io::ErrorKind::NotFound,
            Error::Unsupported { .. } => io::ErrorKind::Unsupported,
            _ => io::ErrorKind::InvalidInput,
        };
        io::Error::new(kind, err)
    }
}
