//! [`Limits`]: how much untrusted input a read may make layercake hold or do. Every byte of
//! an image file is attacker-controlled; each limit here, when exceeded, stops the read with
//! [`Error::LimitExceeded`](crate::Error::LimitExceeded) naming it.

/// Limits on what reading a layer or an image file accepts, with defaults that follow the
/// platform and the tools people already run.
///
/// | limit | default | anchor |
/// |---|---|---|
/// | `layer_bytes` | 16 GiB | uncompressed bytes of one layer |
/// | `image_bytes` | 64 GiB | uncompressed bytes of all layers of one image |
/// | `blob_bytes` | 16 GiB | bytes of one compressed blob |
/// | `ratio` | 1024 | uncompressed/compressed, checked past 64 MiB of output (gzip cannot exceed ~1032) |
/// | `entries` | 500 000 | records in one layer tar (large real layers hold ~100 000) |
/// | `path_bytes` | 4096 | Linux `PATH_MAX` (paths, hardlink and symlink targets) |
/// | `name_bytes` | 255 | Linux `NAME_MAX` |
/// | `depth` | 1024 | components of one path |
/// | `pax_bytes` | 1 MiB | one PAX or GNU long-name record (Go's `archive/tar` cap) |
/// | `json_bytes` | 20 MiB | one manifest, index or config (containerd's cap) |
/// | `layers` | 127 | layers of one image (Docker and overlayfs stop at about 128) |
/// | `index_depth` | 8 | nested indexes in an OCI layout |
/// | `trailing_bytes` | 1 MiB | zero bytes after a tar's end blocks (record padding); anything non-zero there is an error whatever this says |
///
/// JSON nesting is bounded by `serde_json`'s recursion limit (128 levels), and symlink
/// resolution by [`MAX_SYMLINK_HOPS`](crate::tree::MAX_SYMLINK_HOPS) (40, as Linux).
///
/// ```
/// use layercake::layer::ReadOptions;
/// use layercake::Limits;
///
/// let tight = Limits::default().entries(10_000).layer_bytes(256 << 20);
/// let options = ReadOptions::new().limits(tight);
/// # let _ = options;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Uncompressed bytes of one layer.
    pub layer_bytes: u64,
    /// Uncompressed bytes of all the layers of one image.
    pub image_bytes: u64,
    /// Bytes of one compressed blob.
    pub blob_bytes: u64,
    /// Largest decompression ratio, checked once output passes [`Limits::RATIO_FLOOR`].
    pub ratio: u64,
    /// Records in one layer tar.
    pub entries: u64,
    /// Bytes of one path, and of one symlink target.
    pub path_bytes: usize,
    /// Bytes of one path component.
    pub name_bytes: usize,
    /// Components of one path.
    pub depth: usize,
    /// Bytes of one PAX extended header or GNU long name/link record.
    pub pax_bytes: u64,
    /// Bytes of one JSON document (manifest, index, config, `manifest.json`).
    pub json_bytes: u64,
    /// Layers of one image.
    pub layers: usize,
    /// Nesting of indexes in an OCI layout.
    pub index_depth: usize,
    /// Zero bytes allowed after a tar's end-of-archive blocks.
    pub trailing_bytes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            layer_bytes: 16 << 30,
            image_bytes: 64 << 30,
            blob_bytes: 16 << 30,
            ratio: 1024,
            entries: 500_000,
            path_bytes: 4096,
            name_bytes: 255,
            depth: 1024,
            pax_bytes: 1 << 20,
            json_bytes: 20 << 20,
            layers: 127,
            index_depth: 8,
            trailing_bytes: 1 << 20,
        }
    }
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty),* $(,)?) => {
        impl Limits {
            $(
                $(#[$doc])*
                pub fn $name(mut self, value: $ty) -> Limits {
                    self.$name = value;
                    self
                }
            )*
        }
    };
}

setters! {
    /// Sets [`Limits::layer_bytes`].
    layer_bytes: u64,
    /// Sets [`Limits::image_bytes`].
    image_bytes: u64,
    /// Sets [`Limits::blob_bytes`].
    blob_bytes: u64,
    /// Sets [`Limits::ratio`].
    ratio: u64,
    /// Sets [`Limits::entries`].
    entries: u64,
    /// Sets [`Limits::path_bytes`].
    path_bytes: usize,
    /// Sets [`Limits::name_bytes`].
    name_bytes: usize,
    /// Sets [`Limits::depth`].
    depth: usize,
    /// Sets [`Limits::pax_bytes`].
    pax_bytes: u64,
    /// Sets [`Limits::json_bytes`].
    json_bytes: u64,
    /// Sets [`Limits::layers`].
    layers: usize,
    /// Sets [`Limits::index_depth`].
    index_depth: usize,
    /// Sets [`Limits::trailing_bytes`].
    trailing_bytes: u64,
}

impl Limits {
    /// Output below this many bytes is never a decompression bomb, whatever the ratio.
    pub const RATIO_FLOOR: u64 = 64 << 20;

    /// Checks one value against one limit.
    pub(crate) fn check(limit: &'static str, value: u64, max: u64) -> crate::Result<()> {
        if value > max {
            return Err(crate::Error::LimitExceeded { limit, value, max });
        }
        Ok(())
    }
}
