//! # layercake
//!
//! Docker and OCI container images as ordinary Rust values: typed [`Layer`], [`Image`] and
//! [`Container`] values, a pure in-memory overlay resolver, the digest chain that names them
//! ([`DiffId`], [`ChainId`], [`ImageId`]), and layer tars in the forms real tools read and
//! write. No daemon, no root, no mounts.
//!
//! ## Should I use this?
//!
//! Use layercake when a program needs to *look inside or change* container images: an image
//! builder, a scanner, a CI step, a VM or sandbox runtime that wants a root filesystem, a
//! registry tool. It replaces shelling out to `docker`, `skopeo` or `umoci` with function
//! calls on values in memory. It does not run containers (there is no process, namespace or
//! cgroup here): a [`Container`] is a writable filesystem on top of an image.
//!
//! ## Open an image file
//!
//! What most programs come for: open an image (`docker save`, `skopeo copy`, an OCI layout),
//! look at its files, with the layer that supplied each one, and read one. Only the file's
//! index is read at first; each layer is read (verified, decompressed once) when a tree
//! needs it, and file contents are read from disk when asked.
//!
//! ```
//! use layercake::archive;
//! # use layercake::archive::{Format, Writer};
//! # use layercake::{Image, Layer};
//! # let dir = std::env::temp_dir().join(format!("layercake-tour-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! # let path = dir.join("app.tar");
//! # let base = Layer::builder().file("etc/os-release", "ID=cake\n").file("etc/passwd", "root:x:0:0::/root:/bin/sh\n").build()?;
//! # let app = Layer::builder().file("etc/motd", "hello\n").build()?;
//! # let image = Image::builder().layer(base).layer(app).build()?;
//! # Writer::new(Format::DockerArchive).image(&image, ["app:1"]).write(std::fs::File::create(&path)?)?;
//! // A docker-archive, an oci-archive or an OCI layout directory: the format is detected.
//! let image = archive::load(&path, "app:1")?;
//! println!("{} ({} layers)", image.id(), image.layers().len());
//!
//! let tree = image.tree()?;
//! for (name, node) in tree.read_dir("etc")? {
//!     // Which layer supplied the file: 0 is the bottom one.
//!     println!("{} {:>8} layer {:?}  /etc/{name}", node.mode_string(), node.size(), node.layer());
//! }
//! assert_eq!(tree.lookup("etc/motd")?.unwrap().layer(), Some(1));
//! assert_eq!(tree.read("etc/passwd")?, "root:x:0:0::/root:/bin/sh\n");
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`archive::Archive`] lists every image of a file with its names and platforms;
//! [`Store::open`] keeps images in a directory across runs.
//!
//! ## A tour
//!
//! Build two layers, the second deleting a file of the first with a whiteout, and stack them
//! into an image:
//!
//! ```
//! use layercake::{Commit, CommitOptions, Container, Image, Layer, Tree};
//!
//! let base = Layer::builder()
//!     .file("etc/os-release", "ID=cake\n")
//!     .file("etc/motd", "hello\n")
//!     .build()?;
//! let patch = Layer::builder()
//!     .whiteout("etc/motd")
//!     .file("etc/issue", "Cake Linux\n")
//!     .build()?;
//! let image = Image::builder().layer(base).layer(patch).build()?;
//!
//! // The merged view: what a container of this image sees.
//! let tree = image.tree()?;
//! assert!(tree.lookup("etc/motd")?.is_none());
//! assert_eq!(tree.read("etc/issue")?, "Cake Linux\n");
//! assert_eq!(tree.lookup("etc/os-release")?.unwrap().layer(), Some(0));
//!
//! // A container: a writable layer on top. Change, delete, add; then commit.
//! let mut container = Container::new(&image)?;
//! container.write("etc/motd", "back again\n")?;
//! container.remove_file("etc/issue")?;
//! container.create_dir_all("srv/www")?;
//! container.write("srv/www/index.html", "<h1>cake</h1>\n")?;
//! let changes: Vec<String> = container.diff()?.iter().map(|c| c.to_string()).collect();
//! assert_eq!(changes, ["C /etc", "D /etc/issue", "A /etc/motd", "A /srv", "A /srv/www", "A /srv/www/index.html"]);
//!
//! let commit = Commit::new().message("serve cake").created(0);
//! let committed = container.commit(&CommitOptions::new().commit(commit))?;
//! assert_eq!(committed.layers().count(), 3);
//! assert_eq!(committed.tree()?, *container.tree());
//!
//! // Export the new layer as a tar and import it again: same bytes, same DiffId.
//! let top = committed.layers().last().unwrap();
//! let tar = top.tar()?.to_bytes()?;
//! let imported = Layer::from_tar(tar)?;
//! assert_eq!(imported.diff_id(), top.diff_id());
//!
//! // And the image from its config bytes and layers: same ImageId.
//! let layers: Vec<Layer> = committed.layers().cloned().collect();
//! let loaded = Image::from_parts(committed.config().as_bytes().clone(), layers)?;
//! assert_eq!(loaded.id(), committed.id());
//! # Ok::<(), layercake::Error>(())
//! ```
//!
//! ## Concepts
//!
//! **Layers are changesets.** A [`Layer`] adds or replaces entries, deletes lower entries
//! with *whiteouts* (`.wh.NAME` in a tar) and hides a lower directory's whole contents with
//! an *opaque* marker (`DIR/.wh..wh..opq`). Layers apply bottom first; within one layer the
//! result does not depend on tar order. The rules, R1 to R10, are in `docs/concepts.md` and
//! each has tests named after it. See the OCI
//! [layer specification](https://github.com/opencontainers/image-spec/blob/main/layer.md).
//!
//! **Trees are whole filesystems.** A [`Tree`] is immutable and structurally shared:
//! applying a layer copies only the directories on changed paths, so an image built on
//! another shares every untouched node with it, and [`Tree::diff`] costs what changed.
//! [`Layer::diff`] turns the difference of two trees back into a layer: that is commit,
//! squash and image-to-image diff.
//!
//! **Three digests, three types.** A layer's [`DiffId`] is the SHA-256 of its
//! *uncompressed* tar; a compressed blob has a different [`Digest`]. A [`ChainId`] names a
//! stack of layers (`sha256(parent + " " + diff_id)`); images built on one another
//! ([`ImageBuilder::base`]) or held in one [`Store`] share the merged tree of every common
//! ChainId prefix. An [`ImageId`] is the SHA-256 of the config bytes
//! exactly as stored, which is why configs and imported tars keep their original bytes. See
//! the OCI [config specification](https://github.com/opencontainers/image-spec/blob/main/config.md#layer-chainid).
//!
//! **The store shares.** A [`Store`] keeps layers by DiffId, trees by ChainId and images by
//! id, with tags; adding an image whose base it has costs only the new layers. In memory
//! ([`Store::new`]) or in a directory ([`Store::open`]): an OCI image layout that skopeo and
//! umoci read as it is, shared by processes, where a failed or killed load leaves nothing
//! half written.
//!
//! **Bytes stay where they are.** A file's [`Contents`] are bytes in memory (built, written
//! in a container) or a range of an uncompressed tar on disk, read when asked: the
//! docker-archive itself for its plain layers, a temporary file for a compressed layer,
//! decompressed once. Opening an image file ([`archive::Archive`]) reads its index only; a
//! layer is read when its tree or changeset is first needed. So the memory an image takes is
//! its entries, not its bytes, and reading a file's contents is fallible ([`Result`]).
//!
//! ```
//! use layercake::archive::{self, Format, Writer};
//! use layercake::{Compression, Image, Layer};
//!
//! let image = Image::builder()
//!     .layer(Layer::builder().file("srv/data.bin", vec![7u8; 1 << 20]).build()?)
//!     .build()?;
//! let path = std::env::temp_dir().join(format!("layercake-tour-{}.tar", std::process::id()));
//! Writer::new(Format::OciArchive)
//!     .compression(Compression::Zstd)
//!     .image(&image, ["data:1"])
//!     .write(std::fs::File::create(&path)?)?;
//!
//! let loaded = archive::load(&path, "data:1")?; // the index only
//! assert!(!loaded.layers().next().unwrap().is_read());
//! let tree = loaded.tree()?; // the layer is read now: verified, decompressed to disk, parsed
//! let data = tree.lookup("srv/data.bin")?.unwrap().contents().unwrap().clone();
//! assert!(data.as_bytes().is_none(), "on disk, not in memory");
//! assert_eq!(data.len(), 1 << 20);
//! let mut first = [0u8; 4];
//! data.read_at(0, &mut first)?;
//! assert_eq!(first, [7; 4]);
//! std::fs::remove_file(&path)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Crate features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `registry` | no | [`registry`]: a daemonless registry client (OCI distribution 1.1, Docker registry v2): pull into a [`Store`], push stored or built images, copy between registries; blocking HTTP through ureq with rustls (ring), credentials as Docker keeps them |
//! | `cli` | no | the `layercake` binary (demo, inspect, history, layers, ls, cat, diff, export, unpack, import, convert, squash, load, images, save, tag, rmi, prune, verify, df, pull, push, login, logout, copy, append, rebase, mutate), with clap and indicatif; turns on `registry` |
//!
//! ## Safety
//!
//! `#![forbid(unsafe_code)]`. Archive contents are data: every name is checked (no `..`,
//! no NUL, the root stays a directory) and malformed input gives a typed [`Error`], never a
//! panic. Every size, count and depth an input could inflate is bounded by [`Limits`], with
//! defaults taken from Linux, Docker, containerd and Go (see its table); exceeding one is
//! [`Error::LimitExceeded`] naming it ([`Error::RatioExceeded`] for the decompression ratio);
//! counts and declared sizes are checked before a byte is decompressed. A layer is verified against every digest that names it before any of its
//! entries is returned, so a failed read changes nothing. [`unpack()`](fn@unpack) writes a tree to a
//! host directory through directory descriptors: nothing outside it, no symlink followed
//! (Linux).
//!
//! ## Threads
//!
//! Every public type is `Send + Sync`: values ([`Layer`], [`Image`], [`Tree`], digests),
//! builders and options, [`Container`], [`Store`], [`Error`], and the iterators and readers.
//! [`Layer`], [`Image`] and [`Tree`] are also cheap to clone (an `Arc` inside), so one image
//! can be read from many threads at once. The one exception is
//! [`store::AddOptions`], which holds a progress callback (`FnMut + Send`): it is `Send`
//! only. `tests/api.rs` asserts each of these at compile time.
//!
//! ```
//! use layercake::{Image, Layer};
//!
//! let image = Image::builder().layer(Layer::builder().file("a", "1").build()?).build()?;
//! let readers: Vec<_> = (0..4)
//!     .map(|_| {
//!         let image = image.clone();
//!         std::thread::spawn(move || image.tree().map(|t| t.read("a").unwrap()))
//!     })
//!     .collect();
//! for reader in readers {
//!     assert_eq!(reader.join().unwrap()?, "1");
//! }
//! # Ok::<(), layercake::Error>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(missing_debug_implementations)]

pub mod archive;
pub mod build;
mod changes;
mod codec;
mod commit;
pub mod config;
mod container;
mod contents;
mod diff;
pub mod digest;
mod entry;
mod error;
mod image;
mod inspect;
pub mod layer;
mod limits;
mod path;
mod reference;
#[cfg(feature = "registry")]
pub mod registry;
pub mod store;
mod timestamp;
pub mod tree;
#[cfg(target_os = "linux")]
pub mod unpack;

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub use crate::changes::Changeset;
pub use crate::codec::Compression;
pub use crate::commit::Commit;
pub use crate::config::ImageConfig;
pub use crate::container::{CommitOptions, Container};
pub use crate::contents::{Contents, ContentsReader};
pub use crate::diff::{Change, ChangeKind};
pub use crate::digest::{ChainId, DiffId, Digest, ImageId};
pub use crate::entry::{Entry, EntryKind, FileType, Metadata};
pub use crate::error::{Error, Result};
pub use crate::image::{HistoryRow, Image, ImageBuilder, Inspect, InspectRootFs};
pub use crate::layer::{Layer, LayerBuilder};
pub use crate::limits::Limits;
pub use crate::path::{AsImagePath, ImagePath};
pub use crate::reference::{Familiar, Reference};
pub use crate::store::{AddReport, LayerStatus, Progress, Removal, Store, Usage, Verification};
pub use crate::tree::{Node, Tree};
#[cfg(target_os = "linux")]
pub use crate::unpack::{unpack, UnpackOptions, UnpackReport};
/// The byte buffer file contents, link targets and blobs come in and out as (a re-export of
/// [`bytes::Bytes`], so callers need no `bytes` dependency of their own).
///
/// ```
/// use layercake::{Bytes, Layer};
///
/// let layer = Layer::builder().file("a", Bytes::from_static(b"hi")).build()?;
/// let contents: Bytes = layer.changeset()?.entry("a")?.unwrap().contents().unwrap().to_bytes()?;
/// assert_eq!(contents, "hi");
/// # Ok::<(), layercake::Error>(())
/// ```
pub use bytes::Bytes;
