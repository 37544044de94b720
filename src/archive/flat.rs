//! The flattened filesystem of an image in and out: [`export`] (`docker export`) and
//! [`import`] (`docker import`).

use std::io::Write;

use crate::archive::Platform;
use crate::codec::tar_write;
use crate::config::{ContainerConfig, History};
use crate::contents::Contents;
use crate::error::{Error, Result};
use crate::image::Image;
use crate::layer::{DiffOptions, Layer};
use crate::tree::Tree;

/// Writes the flattened filesystem of a tree as one tar, as `docker export` does: every
/// entry of the merged view, no whiteouts, hardlinks kept as hardlinks. File contents are
/// streamed from wherever they are, never held whole.
///
/// # Errors
///
/// [`Error::Io`] if reading a file or writing fails; [`Error::InvalidPath`] for a regular
/// file under a `.wh.*` name, which a tar can only carry as a whiteout.
///
/// ```
/// use layercake::{Image, Layer, Tree};
///
/// let image = Image::builder()
///     .layer(Layer::builder().file("a", "1").file("b", "2").build()?)
///     .layer(Layer::builder().whiteout("a").build()?)
///     .build()?;
/// let mut tar = Vec::new();
/// layercake::archive::export(&image.tree()?, &mut tar)?;
/// let flat = Layer::from_tar(tar)?;
/// assert_eq!(flat.changeset()?.whiteouts().count(), 0);
/// assert_eq!(Tree::new().apply(&flat)?, image.tree()?);
/// # Ok::<(), layercake::Error>(())
/// ```
pub fn export<W: Write>(tree: &Tree, mut out: W) -> Result<()> {
    let changes = crate::changes::diff(&Tree::new(), tree, &DiffOptions::default())?;
    // The writer refuses a name that would read back as something else (a regular file
    // under a `.wh.*` name, say), as a commit does.
    tar_write::write(&changes, &mut out, "the exported tar")?;
    out.flush()
        .map_err(|e| Error::io("writing the exported tar", e))
}

/// Options for [`import`], like the flags of `docker import`.
///
/// ```
/// use layercake::archive::{import, ImportOptions, Platform};
/// use layercake::Layer;
///
/// let rootfs = Layer::builder().file("bin/sh", "ELF").build()?;
/// let mut options = ImportOptions::default();
/// options.message = Some("rootfs of build 42".into());
/// options.created = Some(0);
/// options.platform = Some(Platform::parse("linux/arm64")?);
/// let image = import(rootfs.tar()?.clone(), &options)?;
/// assert_eq!(image.inspect().architecture, "arm64");
/// assert_eq!(image.inspect().comment, "rootfs of build 42");
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ImportOptions {
    /// The runtime config (`--change`).
    pub config: Option<ContainerConfig>,
    /// The commit message (`--message`).
    pub message: Option<String>,
    /// The creation time, seconds since the epoch (default: now).
    pub created: Option<i64>,
    /// The platform written in the config (default: the host's).
    pub platform: Option<Platform>,
}

/// Makes a one-layer image from a root filesystem tar (plain, gzip or zstd; in memory or a
/// range of a file), as `docker import` does.
///
/// # Errors
///
/// As [`Layer::from_blob`].
///
/// ```
/// use layercake::archive::{import, ImportOptions};
/// use layercake::Layer;
///
/// let rootfs = Layer::builder().file("bin/sh", "ELF").build()?;
/// let image = import(rootfs.tar()?.clone(), &ImportOptions::default())?;
/// assert_eq!(image.diff_ids(), [rootfs.diff_id()]);
/// assert_eq!(image.history()[0].comment, "Imported from -");
/// # Ok::<(), layercake::Error>(())
/// ```
pub fn import(blob: impl Into<Contents>, options: &ImportOptions) -> Result<Image> {
    import_layer(Layer::from_blob(blob)?, options)
}

/// Makes a one-layer image from a layer already read (see [`import`]).
///
/// # Errors
///
/// [`Error::InvalidConfig`] if the config cannot be written.
///
/// ```
/// use layercake::archive::{import_layer, ImportOptions};
/// use layercake::Layer;
///
/// let rootfs = Layer::builder().file("bin/sh", "ELF").build()?;
/// let image = import_layer(rootfs.clone(), &ImportOptions::default())?;
/// assert_eq!(image.diff_ids(), [rootfs.diff_id()]);
/// # Ok::<(), layercake::Error>(())
/// ```
pub fn import_layer(layer: Layer, options: &ImportOptions) -> Result<Image> {
    let platform = options.platform.clone().unwrap_or_else(Platform::host);
    let message = options
        .message
        .clone()
        .unwrap_or_else(|| "Imported from -".into());
    let mut builder = Image::builder()
        .layer_with(layer, History::default().comment(message.clone()))
        .comment(message)
        .os(platform.os)
        .architecture(platform.architecture)
        .created(options.created.unwrap_or_else(crate::config::now));
    if let Some(config) = &options.config {
        builder = builder.config(config.clone());
    }
    builder.build()
}
