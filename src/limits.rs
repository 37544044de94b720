//! [`Limits`]: how much untrusted input a read may make layercake hold or do. Every byte of
//! an image file is attacker-controlled; each limit here, when exceeded, stops the read with
//! [`Error::LimitExceeded`](crate::Error::LimitExceeded) naming it, except the decompression
//! ratio, which stops it with [`Error::RatioExceeded`](crate::Error::RatioExceeded) naming the
//! blob.

/// Limits on what reading a layer or an image file accepts, with defaults that follow the
/// platform and the tools people already run.
///
/// | limit | default | anchor |
/// |---|---|---|
/// | `layer_bytes` | 16 GiB | uncompressed bytes of one layer |
/// | `image_bytes` | 64 GiB | bytes of all layers of one image, as declared when the file is opened |
/// | `archive_bytes` | 64 GiB | bytes declared by, and uncompressed bytes read from, one image file |
/// | `blob_bytes` | 16 GiB | bytes of one compressed blob |
/// | `ratio` | 128 | uncompressed bytes per blob byte taken in so far, past 64 MiB of output |
/// | `entries` | 500 000 | records in one layer tar (large real layers hold ~100 000) |
/// | `path_bytes` | 4096 | Linux `PATH_MAX` (paths, hardlink and symlink targets) |
/// | `name_bytes` | 255 | Linux `NAME_MAX` |
/// | `depth` | 1024 | components of one path |
/// | `pax_bytes` | 1 MiB | one PAX or GNU long-name record (Go's `archive/tar` cap) |
/// | `json_bytes` | 20 MiB | one manifest, index or config (containerd's cap) |
/// | `layers` | 127 | layers of one image (Docker and overlayfs stop at about 128) |
/// | `index_depth` | 8 | nested indexes in an OCI layout |
/// | `trailing_bytes` | 1 MiB | zero bytes after a tar's end blocks (record padding) |
///
/// **The ratio** is a blob's uncompressed output against the blob bytes the decompressor has
/// taken in so far, checked as the output grows once it passes [`Limits::RATIO_FLOOR`]. Real
/// layers stay under 16:1 (the bookworm root filesystem, /usr, a Python install,
/// node_modules, a Rust toolchain, locales, logs, JSON, CSV; gzip -6/-9, zstd -3/-19), and
/// files that are 90% zero pages under about 90:1. Bombs of zeros are 222:1 and more (gzip
/// -1; 1030:1 at -6 and -9, about 30000:1 in zstd), so 128:1 stops every one within about
/// 64 to 96 MiB of output. Layers made mostly of zero-filled files are refused with them,
/// because they are the same bytes as a bomb: a 1 GiB swap file, a layer that starts with
/// a large file of zeros, `/var/log/lastlog` after `useradd -u` with a large uid and no
/// `-l`. Raise `ratio` for those; `layer_bytes` still bounds the output. The method and
/// the figures: `benches/RATIO.md` in the repository.
///
/// Each limit has a by-value setter named after it (`Limits::default().ratio(2000)`) and an
/// accessor with `_in_force` appended (`limits.ratio_in_force()`), the naming every options
/// type of the crate uses.
///
/// Anything non-zero after a tar's end blocks is an error whatever `trailing_bytes` says.
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
pub struct Limits {
    pub(crate) layer_bytes: u64,
    pub(crate) image_bytes: u64,
    pub(crate) archive_bytes: u64,
    pub(crate) blob_bytes: u64,
    pub(crate) ratio: u64,
    pub(crate) entries: u64,
    pub(crate) path_bytes: usize,
    pub(crate) name_bytes: usize,
    pub(crate) depth: usize,
    pub(crate) pax_bytes: u64,
    pub(crate) json_bytes: u64,
    pub(crate) layers: usize,
    pub(crate) index_depth: usize,
    pub(crate) trailing_bytes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            layer_bytes: 16 << 30,
            image_bytes: 64 << 30,
            archive_bytes: 64 << 30,
            blob_bytes: 16 << 30,
            ratio: 128,
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
    ($($(#[$doc:meta])* $name:ident / $in_force:ident: $ty:ty),* $(,)?) => {
        impl Limits {
            $(
                $(#[$doc])*
                pub fn $name(mut self, value: $ty) -> Limits {
                    self.$name = value;
                    self
                }

                #[doc = concat!("The `", stringify!($name), "` limit in force (see [`Limits::", stringify!($name), "`]).")]
                ///
                /// ```
                /// use layercake::Limits;
                ///
                #[doc = concat!("let default = Limits::default().", stringify!($in_force), "();")]
                #[doc = concat!("let halved = Limits::default().", stringify!($name), "(default / 2);")]
                #[doc = concat!("assert_eq!(halved.", stringify!($in_force), "(), default / 2);")]
                /// ```
                pub fn $in_force(&self) -> $ty {
                    self.$name
                }
            )*
        }
    };
}

setters! {
    /// Sets the limit on uncompressed bytes of one layer.
    ///
    /// ```
    /// use layercake::layer::ReadOptions;
    /// use layercake::{Error, Layer, Limits};
    ///
    /// // 4 KiB of data: more than this reader will hold for one layer.
    /// let layer = Layer::builder().file("big", vec![0u8; 4096]).build()?;
    /// let options = ReadOptions::new().limits(Limits::default().layer_bytes(1024));
    /// let err = Layer::from_tar_with(layer.tar()?.clone(), &options).unwrap_err();
    /// assert!(matches!(err, Error::LimitExceeded { limit: "uncompressed layer bytes", .. }));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    layer_bytes / layer_bytes_in_force: u64,
    /// Sets the limit on bytes of all the layers of one image, as declared when its file is
    /// opened (blob and member sizes, before anything is read).
    ///
    /// ```
    /// use layercake::archive::{Archive, Format, LoadOptions, Writer};
    /// use layercake::layer::ReadOptions;
    /// use layercake::{Error, Image, Layer, Limits};
    ///
    /// let big = || Layer::builder().file("f", vec![1u8; 4096]).build();
    /// let image = Image::builder().layer(big()?).layer(big()?).build()?;
    /// let mut tar = Vec::new();
    /// Writer::new(Format::DockerArchive).image(&image, ["two"]).write(&mut tar)?;
    /// // Each layer fits the layer limit; together they do not. Checked from the sizes the
    /// // file declares, when it is opened.
    /// let limits = Limits::default().image_bytes(8 << 10);
    /// let options = LoadOptions::new().read(ReadOptions::new().limits(limits));
    /// let err = Archive::from_bytes_with(tar, &options).unwrap_err();
    /// let limit = "uncompressed bytes of one image";
    /// assert!(matches!(err, Error::LimitExceeded { limit: l, .. } if l == limit));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    image_bytes / image_bytes_in_force: u64,
    /// Sets the limit on bytes of the layers of one image file: what all the layers of one
    /// image file may declare and unpack to, however many images share them. Declared sizes are checked when the file is
    /// opened; uncompressed bytes are counted as layers are read, so a file of many layers,
    /// each within its limits, cannot add up past it either.
    ///
    /// ```
    /// use layercake::archive::{Archive, Format, LoadOptions, Writer};
    /// use layercake::layer::ReadOptions;
    /// use layercake::{Compression, Error, Image, Layer, Limits};
    ///
    /// let zeros = |name| Layer::builder().file(name, vec![0u8; 64 << 10]).build();
    /// let a = Image::builder().layer(zeros("a")?).build()?;
    /// let b = Image::builder().layer(zeros("b")?).build()?;
    /// let mut tar = Vec::new();
    /// Writer::new(Format::OciArchive)
    ///     .compression(Compression::Gzip)
    ///     .image(&a, ["a"])
    ///     .image(&b, ["b"])
    ///     .write(&mut tar)?;
    /// // Each layer unpacks to about 66 KiB; the file may unpack to 100 KiB in all.
    /// let limits = Limits::default().archive_bytes(100 << 10);
    /// let archive =
    ///     Archive::from_bytes_with(tar, &LoadOptions::new().read(ReadOptions::new().limits(limits)))?;
    /// archive.image("a")?.tree()?;
    /// let err = archive.image("b")?.tree().unwrap_err();
    /// let limit = "uncompressed bytes read from one image file";
    /// assert!(matches!(err, Error::LimitExceeded { limit: l, .. } if l == limit));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    archive_bytes / archive_bytes_in_force: u64,
    /// Sets the limit on bytes of one compressed blob.
    ///
    /// ```
    /// use layercake::Compression;
    /// use layercake::layer::ReadOptions;
    /// use layercake::{Error, Layer, Limits};
    ///
    /// let gz = Layer::builder().file("a", "hi").build()?.compress(Compression::Gzip, 6)?;
    /// // Checked before a byte is decompressed.
    /// let options = ReadOptions::new().limits(Limits::default().blob_bytes(16));
    /// let err = Layer::from_blob_with(gz.blob().contents().clone(), &options).unwrap_err();
    /// assert!(matches!(err, Error::LimitExceeded { limit: "blob bytes", .. }));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    blob_bytes / blob_bytes_in_force: u64,
    /// Sets the largest decompression ratio (uncompressed bytes per blob byte taken in so
    /// far). It only counts once a blob's output passes [`Limits::RATIO_FLOOR`] (see there for a small layer it lets through).
    /// Exceeding it is [`Error::RatioExceeded`](crate::Error::RatioExceeded), not `LimitExceeded`.
    ///
    /// ```
    /// use layercake::layer::ReadOptions;
    /// use layercake::Limits;
    ///
    /// // A layer that really is a big file of zeros (a VM disk, a swap file) needs more.
    /// let options = ReadOptions::new().limits(Limits::default().ratio(2000));
    /// assert_eq!(options.limits_in_force().ratio_in_force(), 2000);
    /// assert_eq!(Limits::default().ratio_in_force(), 128);
    /// ```
    ratio / ratio_in_force: u64,
    /// Sets the limit on records in one layer tar. Every record counts, whiteouts and opaque markers included.
    ///
    /// ```
    /// use layercake::layer::ReadOptions;
    /// use layercake::{Error, Layer, Limits};
    ///
    /// // Three whiteouts are three records of the tar.
    /// let layer = Layer::builder().whiteout("a").whiteout("b").whiteout("c").build()?;
    /// let options = ReadOptions::new().limits(Limits::default().entries(2));
    /// let err = Layer::from_tar_with(layer.tar()?.clone(), &options).unwrap_err();
    /// assert!(matches!(err, Error::LimitExceeded { limit: "entries in one layer", .. }));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    entries / entries_in_force: u64,
    /// Sets the limit on bytes of one path, and of one symlink target.
    ///
    /// ```
    /// use layercake::layer::ReadOptions;
    /// use layercake::{Error, Layer, Limits};
    ///
    /// // 100 nested directories make a 201-byte path.
    /// let layer = Layer::builder().file(format!("{}f", "d/".repeat(100)), "").build()?;
    /// let options = ReadOptions::new().limits(Limits::default().path_bytes(128));
    /// let err = Layer::from_tar_with(layer.tar()?.clone(), &options).unwrap_err();
    /// assert!(matches!(err, Error::LimitExceeded { limit: "path bytes", .. }));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    path_bytes / path_bytes_in_force: usize,
    /// Sets the limit on bytes of one path component.
    ///
    /// ```
    /// use layercake::layer::ReadOptions;
    /// use layercake::{Error, Layer, Limits};
    ///
    /// // Stricter than Linux's 255, for a target filesystem with shorter names.
    /// let layer = Layer::builder().file("x".repeat(200), "").build()?;
    /// let options = ReadOptions::new().limits(Limits::default().name_bytes(143));
    /// let err = Layer::from_tar_with(layer.tar()?.clone(), &options).unwrap_err();
    /// assert!(matches!(err, Error::LimitExceeded { limit: "path component bytes", .. }));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    name_bytes / name_bytes_in_force: usize,
    /// Sets the limit on components of one path.
    ///
    /// ```
    /// use layercake::layer::ReadOptions;
    /// use layercake::{Error, Layer, Limits};
    ///
    /// // Four components: a, b, c, d.
    /// let layer = Layer::builder().file("a/b/c/d", "").build()?;
    /// let options = ReadOptions::new().limits(Limits::default().depth(3));
    /// let err = Layer::from_tar_with(layer.tar()?.clone(), &options).unwrap_err();
    /// assert!(matches!(err, Error::LimitExceeded { limit: "path depth", .. }));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    depth / depth_in_force: usize,
    /// Sets the limit on bytes of one PAX extended header or GNU long name/link record.
    ///
    /// ```
    /// use layercake::layer::ReadOptions;
    /// use layercake::{Error, Layer, Limits};
    ///
    /// // A 4 KiB xattr travels in a PAX record of over 4 KiB.
    /// let entry = layercake::Entry::file("").xattr("user.x", vec![b'x'; 4096]);
    /// let layer = Layer::builder().entry("f", entry).build()?;
    /// let options = ReadOptions::new().limits(Limits::default().pax_bytes(1024));
    /// let err = Layer::from_tar_with(layer.tar()?.clone(), &options).unwrap_err();
    /// assert!(matches!(err, Error::LimitExceeded { limit: "PAX or long-name record bytes", .. }));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pax_bytes / pax_bytes_in_force: u64,
    /// Sets the limit on bytes of one JSON document (manifest, index, config,
    /// `manifest.json`).
    ///
    /// ```
    /// use layercake::archive::{Archive, Format, LoadOptions, Writer};
    /// use layercake::layer::ReadOptions;
    /// use layercake::{Error, Image, Limits};
    ///
    /// let image = Image::builder().build()?;
    /// let mut tar = Vec::new();
    /// Writer::new(Format::DockerArchive).image(&image, ["app"]).write(&mut tar)?;
    /// // `manifest.json` and the config are far over 64 bytes: refused before being read.
    /// let options =
    ///     LoadOptions::new().read(ReadOptions::new().limits(Limits::default().json_bytes(64)));
    /// let err = Archive::from_bytes_with(tar, &options).unwrap_err();
    /// assert!(matches!(err, Error::LimitExceeded { limit: "JSON document bytes", .. }));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    json_bytes / json_bytes_in_force: u64,
    /// Sets the limit on layers of one image.
    ///
    /// ```
    /// use layercake::archive::{Archive, Format, LoadOptions, Writer};
    /// use layercake::layer::ReadOptions;
    /// use layercake::{Error, Image, Layer, Limits};
    ///
    /// let big = || Layer::builder().file("f", vec![1u8; 4096]).build();
    /// let image = Image::builder().layer(big()?).layer(big()?).build()?;
    /// let mut tar = Vec::new();
    /// Writer::new(Format::DockerArchive).image(&image, ["two"]).write(&mut tar)?;
    /// // Checked from the manifest, before any layer is read.
    /// let options =
    ///     LoadOptions::new().read(ReadOptions::new().limits(Limits::default().layers(1)));
    /// let err = Archive::from_bytes_with(tar, &options).unwrap_err();
    /// assert!(matches!(err, Error::LimitExceeded { limit: "layers in one image", .. }));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    layers / layers_in_force: usize,
    /// Sets the limit on nesting of indexes in an OCI layout: how many image indexes may lie
    /// between `index.json` and a manifest.
    ///
    /// ```
    /// use layercake::archive::{Archive, Format, LoadOptions, Writer};
    /// use layercake::layer::ReadOptions;
    /// use layercake::{Image, Limits};
    ///
    /// let image = Image::builder().build()?;
    /// let mut tar = Vec::new();
    /// Writer::new(Format::OciArchive).image(&image, ["app"]).write(&mut tar)?;
    /// // `index.json` naming manifests directly needs no nesting at all.
    /// let options =
    ///     LoadOptions::new().read(ReadOptions::new().limits(Limits::default().index_depth(0)));
    /// assert_eq!(Archive::from_bytes_with(tar, &options)?.only_image()?.id(), image.id());
    /// # Ok::<(), layercake::Error>(())
    /// ```
    index_depth / index_depth_in_force: usize,
    /// Sets the limit on zero bytes allowed after a tar's end-of-archive blocks.
    ///
    /// ```
    /// use layercake::layer::ReadOptions;
    /// use layercake::{Error, Layer, Limits};
    ///
    /// let mut tar = Layer::builder().file("a", "x").build()?.tar()?.to_bytes()?.to_vec();
    /// tar.resize(tar.len() + (64 << 10), 0); // 64 KiB of zeros after the end blocks
    /// let options = ReadOptions::new().limits(Limits::default().trailing_bytes(10_240));
    /// let err = Layer::from_tar_with(tar, &options).unwrap_err();
    /// let limit = "zero bytes after the end of the archive";
    /// assert!(matches!(err, Error::LimitExceeded { limit: l, .. } if l == limit));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    trailing_bytes / trailing_bytes_in_force: u64,
}

impl Limits {
    /// The defaults of the table above, as [`Limits::default`]: the start of a by-value
    /// chain like every options type's `new()`.
    ///
    /// ```
    /// use layercake::Limits;
    ///
    /// assert_eq!(Limits::new(), Limits::default());
    /// let tight = Limits::new().entries(10_000);
    /// assert_eq!(tight.entries_in_force(), 10_000);
    /// ```
    pub fn new() -> Limits {
        Limits::default()
    }

    /// Output below this many bytes is never a decompression bomb, whatever the ratio.
    ///
    /// Small layers of zeros or text compress far beyond any sane ratio; the ratio limit
    /// only starts to count once a blob unpacks to more than this.
    ///
    /// ```
    /// use layercake::Compression;
    /// use layercake::layer::ReadOptions;
    /// use layercake::{Layer, Limits};
    ///
    /// let zeros = Layer::builder().file("zeros", vec![0u8; 1 << 20]).build()?;
    /// let blob = zeros.compress(Compression::Gzip, 9)?.blob().contents().clone();
    /// assert!(zeros.size()? > 100 * blob.len() && zeros.size()? < Limits::RATIO_FLOOR);
    /// // Even a 1:1 ratio limit lets this small layer through.
    /// let options = ReadOptions::new().limits(Limits::default().ratio(1));
    /// assert_eq!(Layer::from_blob_with(blob, &options)?, zeros);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub const RATIO_FLOOR: u64 = 64 << 20;

    /// Checks one value against one limit.
    pub(crate) fn check(limit: &'static str, value: u64, max: u64) -> crate::Result<()> {
        if value > max {
            return Err(crate::Error::LimitExceeded { limit, value, max });
        }
        Ok(())
    }
}
