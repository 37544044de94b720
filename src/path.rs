//! [`ImagePath`]: a normalised path inside an image, as bytes.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::error::{Error, Result};

/// A path inside an image, relative to its root and normalised.
///
/// Leading `/` and `./`, repeated slashes, `.` components and a trailing slash are removed
/// (`/./a//b/` is `a/b`); the empty path is the root. Names are bytes: non-UTF-8 is allowed,
/// NUL is not, and a `..` component is an error, never silently cleaned. Paths order
/// component by component, so a sorted list of paths is a depth-first walk of the tree.
///
/// # Example
///
/// ```
/// use layercake::ImagePath;
///
/// let p = ImagePath::new("/./usr//bin/")?;
/// assert_eq!(p, ImagePath::new("usr/bin")?);
/// assert_eq!(p.file_name(), Some(&b"bin"[..]));
/// assert_eq!(p.parent(), Some(ImagePath::new("usr")?));
/// assert!(ImagePath::new("usr/../etc").is_err());
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct ImagePath(Bytes);

impl ImagePath {
    /// The root directory (the empty path).
    ///
    /// ```
    /// use layercake::ImagePath;
    ///
    /// assert_eq!(ImagePath::new("/")?, ImagePath::ROOT);
    /// assert_eq!(ImagePath::new("usr")?.parent(), Some(ImagePath::ROOT));
    /// // Build paths from names, one checked component at a time.
    /// assert_eq!(ImagePath::ROOT.join("etc")?, ImagePath::new("etc")?);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub const ROOT: ImagePath = ImagePath(Bytes::from_static(b""));

    /// Normalises and checks a path.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPath`] for a NUL byte or a `..` component.
    ///
    /// ```
    /// use layercake::{Error, ImagePath};
    ///
    /// // A name from a tar and one a user typed compare equal once normalised.
    /// assert_eq!(ImagePath::new("./usr/bin/")?, ImagePath::new("/usr/bin")?);
    /// assert!(matches!(ImagePath::new("usr/../../etc"), Err(Error::InvalidPath { .. })));
    /// assert!(matches!(ImagePath::new("a\0b"), Err(Error::InvalidPath { .. })));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn new(path: impl AsImagePath) -> Result<ImagePath> {
        let raw = path.image_path_bytes();
        let raw = &raw[..];
        let invalid = |reason| Error::InvalidPath {
            path: crate::error::path_bytes(raw),
            reason,
        };
        if raw.contains(&0) {
            return Err(invalid("NUL byte"));
        }
        let mut out = Vec::with_capacity(raw.len());
        for component in raw.split(|&b| b == b'/') {
            match component {
                b"" | b"." => {}
                b".." => return Err(invalid("`..` component")),
                name => {
                    if !out.is_empty() {
                        out.push(b'/');
                    }
                    out.extend_from_slice(name);
                }
            }
        }
        Ok(ImagePath(Bytes::from(out)))
    }

    /// Whether this is the root directory.
    ///
    /// ```
    /// assert!(layercake::ImagePath::new("/./")?.is_root());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The normalised bytes, without a leading or trailing slash.
    ///
    /// ```
    /// assert_eq!(layercake::ImagePath::new("/a/b/")?.as_bytes(), b"a/b");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The components, root first.
    ///
    /// ```
    /// let p = layercake::ImagePath::new("a/b/c")?;
    /// assert_eq!(p.components().collect::<Vec<_>>(), [&b"a"[..], b"b", b"c"]);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn components(&self) -> impl DoubleEndedIterator<Item = &[u8]> + Clone + '_ {
        self.0.split(|&b| b == b'/').filter(|c| !c.is_empty())
    }

    /// The number of components (0 for the root).
    ///
    /// ```
    /// assert_eq!(layercake::ImagePath::new("a/b")?.depth(), 2);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn depth(&self) -> usize {
        self.components().count()
    }

    /// The last component, or `None` for the root.
    ///
    /// ```
    /// use layercake::ImagePath;
    ///
    /// assert_eq!(ImagePath::new("etc/ssl/cert.pem")?.file_name(), Some(&b"cert.pem"[..]));
    /// assert_eq!(ImagePath::ROOT.file_name(), None);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn file_name(&self) -> Option<&[u8]> {
        self.components().next_back()
    }

    /// The containing directory, or `None` for the root.
    ///
    /// ```
    /// use layercake::ImagePath;
    ///
    /// assert_eq!(
    ///     ImagePath::new("usr/local/bin")?.parent(),
    ///     Some(ImagePath::new("usr/local")?)
    /// );
    /// assert_eq!(ImagePath::new("usr")?.parent(), Some(ImagePath::ROOT));
    /// assert_eq!(ImagePath::ROOT.parent(), None);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn parent(&self) -> Option<ImagePath> {
        if self.is_root() {
            return None;
        }
        let end = self.0.iter().rposition(|&b| b == b'/').unwrap_or(0);
        Some(ImagePath(self.0.slice(..end)))
    }

    /// Every proper ancestor, nearest the root first, excluding the root itself.
    ///
    /// ```
    /// let p = layercake::ImagePath::new("a/b/c")?;
    /// let names: Vec<String> = p.ancestors().map(|a| a.to_string()).collect();
    /// assert_eq!(names, ["a", "a/b"]);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn ancestors(&self) -> impl Iterator<Item = ImagePath> + '_ {
        self.0
            .iter()
            .enumerate()
            .filter(|(_, &b)| b == b'/')
            .map(|(i, _)| ImagePath(self.0.slice(..i)))
    }

    /// This path with one more component.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidPath`] if `name` is empty, `.`, `..`, or holds `/` or NUL.
    ///
    /// ```
    /// let p = layercake::ImagePath::ROOT.join("etc")?.join("hosts")?;
    /// assert_eq!(p.to_string(), "etc/hosts");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn join(&self, name: impl AsRef<[u8]>) -> Result<ImagePath> {
        let name = name.as_ref();
        if name.is_empty()
            || name == b"."
            || name == b".."
            || name.contains(&b'/')
            || name.contains(&0)
        {
            return Err(Error::InvalidPath {
                path: crate::error::path_bytes(name),
                reason: "not a single file name",
            });
        }
        Ok(self.join_unchecked(name))
    }

    /// Appends a name known to be a valid single component.
    pub(crate) fn join_unchecked(&self, name: &[u8]) -> ImagePath {
        if self.is_root() {
            return ImagePath(Bytes::copy_from_slice(name));
        }
        let mut v = Vec::with_capacity(self.0.len() + 1 + name.len());
        v.extend_from_slice(&self.0);
        v.push(b'/');
        v.extend_from_slice(name);
        ImagePath(Bytes::from(v))
    }

    /// Whether `self` is `other` or lies below it.
    ///
    /// ```
    /// use layercake::ImagePath;
    /// let a = ImagePath::new("a")?;
    /// assert!(ImagePath::new("a/b")?.starts_with(&a));
    /// assert!(!ImagePath::new("ab")?.starts_with(&a));
    /// assert!(a.starts_with(&ImagePath::ROOT));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn starts_with(&self, other: &ImagePath) -> bool {
        other.is_root()
            || (self.0.starts_with(&other.0)
                && (self.0.len() == other.0.len() || self.0[other.0.len()] == b'/'))
    }
}

impl Ord for ImagePath {
    /// Component by component, which for normalised paths is byte order with `/` below
    /// every other byte (NUL cannot occur).
    fn cmp(&self, other: &Self) -> Ordering {
        let (a, b) = (&self.0[..], &other.0[..]);
        match a.iter().zip(b).position(|(x, y)| x != y) {
            None => a.len().cmp(&b.len()),
            Some(i) => {
                let rank = |c: u8| if c == b'/' { 0 } else { c };
                rank(a[i]).cmp(&rank(b[i]))
            }
        }
    }
}

impl PartialOrd for ImagePath {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A path as every path-taking method of the crate accepts it: `&str` and `String`, bytes
/// (`&[u8]`, `b"..."`, `Vec<u8>`, [`Bytes`]), a host path (`&Path`, `PathBuf`, `&OsStr`,
/// `OsString`: its bytes as they are on Unix, so a non-UTF-8 name arrives intact), or an
/// [`ImagePath`]. One bound for tree lookups, container operations and builder entries.
///
/// The path is normalised and checked where it is used, as [`ImagePath::new`] does.
///
/// ```
/// use std::path::Path;
///
/// use layercake::{Container, Image, ImagePath, Layer};
///
/// let layer = Layer::builder().file("etc/motd", "hi").file(b"caf\xe9", "latin-1").build()?;
/// let tree = layercake::Tree::new().apply(&layer)?;
/// // The same file, however the caller holds its name.
/// assert_eq!(tree.read("etc/motd")?, "hi");
/// assert_eq!(tree.read(b"etc/motd")?, "hi");
/// assert_eq!(tree.read(Path::new("/etc/motd"))?, "hi");
/// assert_eq!(tree.read(ImagePath::new("etc/motd")?)?, "hi");
/// assert_eq!(tree.read(String::from("etc/motd"))?, "hi");
/// # #[cfg(unix)] {
/// use std::os::unix::ffi::OsStrExt;
/// let latin1 = std::ffi::OsStr::from_bytes(b"caf\xe9");
/// assert_eq!(tree.read(latin1)?, "latin-1");
/// # }
/// let mut c = Container::new(&Image::builder().layer(layer).build()?)?;
/// c.write(Path::new("etc/hostname"), "box")?;
/// assert_eq!(c.read("etc/hostname")?, "box");
/// # Ok::<(), layercake::Error>(())
/// ```
pub trait AsImagePath {
    /// The path's bytes, before normalisation. Borrowed except for a host path on a platform
    /// whose paths are not bytes (not Unix), which goes through its UTF-8 form.
    fn image_path_bytes(&self) -> Cow<'_, [u8]>;
}

impl<T: AsImagePath + ?Sized> AsImagePath for &T {
    fn image_path_bytes(&self) -> Cow<'_, [u8]> {
        (**self).image_path_bytes()
    }
}

macro_rules! as_image_path_bytes {
    ($($ty:ty),*) => {
        $(impl AsImagePath for $ty {
            fn image_path_bytes(&self) -> Cow<'_, [u8]> {
                Cow::Borrowed(AsRef::<[u8]>::as_ref(self))
            }
        })*
    };
}

as_image_path_bytes!(str, String, [u8], Vec<u8>, Bytes, ImagePath);

impl<const N: usize> AsImagePath for [u8; N] {
    fn image_path_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(self)
    }
}

impl AsImagePath for Cow<'_, str> {
    fn image_path_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(self.as_bytes())
    }
}

impl AsImagePath for OsStr {
    fn image_path_bytes(&self) -> Cow<'_, [u8]> {
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            Cow::Borrowed(self.as_bytes())
        }
        #[cfg(not(unix))]
        {
            match self.to_string_lossy() {
                Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
                Cow::Owned(s) => Cow::Owned(s.into_bytes()),
            }
        }
    }
}

impl AsImagePath for OsString {
    fn image_path_bytes(&self) -> Cow<'_, [u8]> {
        self.as_os_str().image_path_bytes()
    }
}

impl AsImagePath for Path {
    fn image_path_bytes(&self) -> Cow<'_, [u8]> {
        self.as_os_str().image_path_bytes()
    }
}

impl AsImagePath for PathBuf {
    fn image_path_bytes(&self) -> Cow<'_, [u8]> {
        self.as_os_str().image_path_bytes()
    }
}

impl AsRef<[u8]> for ImagePath {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for ImagePath {
    /// Shows the path with a leading `/` omitted; non-UTF-8 bytes are escaped as `\xNN`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&crate::entry::Escaped(&self.0), f)
    }
}

impl fmt::Debug for ImagePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"/{self}\"")
    }
}

impl std::str::FromStr for ImagePath {
    type Err = Error;

    fn from_str(s: &str) -> Result<ImagePath> {
        ImagePath::new(s)
    }
}

impl TryFrom<&str> for ImagePath {
    type Error = Error;

    fn try_from(s: &str) -> Result<ImagePath> {
        ImagePath::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises() {
        for (input, want) in [
            ("", ""),
            ("/", ""),
            ("./", ""),
            (".", ""),
            ("./a//b/", "a/b"),
            ("/a/./b", "a/b"),
            ("a/b/.", "a/b"),
            ("...", "..."),
            ("a/.wh..wh..opq", "a/.wh..wh..opq"),
        ] {
            assert_eq!(
                ImagePath::new(input).unwrap().as_bytes(),
                want.as_bytes(),
                "{input}"
            );
        }
        for bad in ["..", "a/../b", "/..", "a/..", "a\0b"] {
            assert!(ImagePath::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn orders_by_component() {
        let mut v: Vec<ImagePath> = ["a-b", "a/b", "a", "a/b/c", "b", ""]
            .iter()
            .map(|s| ImagePath::new(s).unwrap())
            .collect();
        v.sort();
        let shown: Vec<String> = v.iter().map(|p| p.to_string()).collect();
        assert_eq!(shown, ["", "a", "a/b", "a/b/c", "a-b", "b"]);
    }

    #[test]
    fn non_utf8_display() {
        let p = ImagePath::new(b"caf\xe9").unwrap();
        assert_eq!(p.to_string(), "caf\\xe9");
        assert_eq!(p.parent(), Some(ImagePath::ROOT));
    }
}
