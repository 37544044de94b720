//! The flattened filesystem of an image in and out: [`export`] (`docker export`) and
//! [`import`] (`docker import`).

use std::io::Write;

use crate::archive::Platform;
use crate::codec::tar_write;
use crate::commit::Commit;
use crate::config::History;
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

/// Options for [`import`], like the flags of `docker import`: the commit's metadata (a
/// [`Commit`]: `--message`, `--change`, the time) and the platform.
///
/// ```
/// use layercake::archive::{import, ImportOptions, Platform};
/// use layercake::{Commit, Layer};
///
/// let rootfs = Layer::builder().file("bin/sh", "ELF").build()?;
/// let options = ImportOptions::new()
///     .commit(Commit::new().message("rootfs of build 42").created(0))
///     .platform(Platform::parse("linux/arm64")?);
/// let image = import(rootfs.tar()?.clone(), &options)?;
/// assert_eq!(image.inspect().architecture, "arm64");
/// assert_eq!(image.inspect().comment, "rootfs of build 42");
/// # Ok::<(), layercake::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    commit: Commit,
    platform: Option<Platform>,
}

impl ImportOptions {
    /// The defaults: the message `Imported from -`, created now, an empty runtime config, the
    /// host's platform.
    ///
    /// ```
    /// use layercake::archive::{import, ImportOptions, Platform};
    /// use layercake::Layer;
    ///
    /// let rootfs = Layer::builder().file("bin/sh", "ELF").build()?;
    /// let image = import(rootfs.tar()?.clone(), &ImportOptions::new())?;
    /// assert_eq!(image.inspect().comment, "Imported from -");
    /// assert_eq!(image.inspect().architecture, Platform::host().architecture);
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn new() -> ImportOptions {
        ImportOptions::default()
    }

    /// Sets the commit metadata (`--message`, `--change`, the time). Fields the [`Commit`]
    /// leaves unset keep what an earlier call set.
    ///
    /// ```
    /// use layercake::archive::{import, ImportOptions};
    /// use layercake::{Commit, Layer};
    ///
    /// let rootfs = Layer::builder().file("bin/sh", "ELF").build()?;
    /// let options = ImportOptions::new().commit(Commit::new().author("ci").created(60));
    /// let image = import(rootfs.tar()?.clone(), &options)?;
    /// assert_eq!(image.inspect().author, "ci");
    /// assert_eq!(image.inspect().created, "1970-01-01T00:01:00Z");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn commit(mut self, commit: Commit) -> ImportOptions {
        self.commit = std::mem::take(&mut self.commit).merged(commit);
        self
    }

    /// The commit metadata in force.
    ///
    /// ```
    /// use layercake::archive::ImportOptions;
    /// use layercake::Commit;
    ///
    /// let options = ImportOptions::new().commit(Commit::new().message("rootfs"));
    /// assert_eq!(options.commit_in_force().message_in_force(), Some("rootfs"));
    /// ```
    pub fn commit_in_force(&self) -> &Commit {
        &self.commit
    }

    /// Sets the platform written in the config (default: the host's).
    ///
    /// ```
    /// use layercake::archive::{import, ImportOptions, Platform};
    /// use layercake::Layer;
    ///
    /// let rootfs = Layer::builder().file("bin/sh", "ELF").build()?;
    /// let options = ImportOptions::new().platform(Platform::parse("linux/riscv64")?);
    /// assert_eq!(import(rootfs.tar()?.clone(), &options)?.inspect().architecture, "riscv64");
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn platform(mut self, platform: Platform) -> ImportOptions {
        self.platform = Some(platform);
        self
    }

    /// The platform in force, if set (`None`: the host's).
    ///
    /// ```
    /// use layercake::archive::{ImportOptions, Platform};
    ///
    /// let arm = Platform::parse("linux/arm64")?;
    /// assert_eq!(ImportOptions::new().platform(arm.clone()).platform_in_force(), Some(&arm));
    /// # Ok::<(), layercake::Error>(())
    /// ```
    pub fn platform_in_force(&self) -> Option<&Platform> {
        self.platform.as_ref()
    }
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
/// let image = import(rootfs.tar()?.clone(), &ImportOptions::new())?;
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
/// let image = import_layer(rootfs.clone(), &ImportOptions::new())?;
/// assert_eq!(image.diff_ids(), [rootfs.diff_id()]);
/// # Ok::<(), layercake::Error>(())
/// ```
pub fn import_layer(layer: Layer, options: &ImportOptions) -> Result<Image> {
    let platform = options.platform.clone().unwrap_or_else(Platform::host);
    let commit = Commit::new()
        .message("Imported from -")
        .created(crate::config::now())
        .merged(options.commit.clone());
    let message = commit.message.clone().unwrap_or_default();
    Image::builder()
        .layer_with(layer, History::default().comment(message))
        .commit(commit)
        .os(platform.os)
        .architecture(platform.architecture)
        .build()
}
