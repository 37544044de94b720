//! # layercake
//!
//! Docker and OCI container images as ordinary Rust values: typed [`Layer`], [`Image`] and
//! [`Container`] values, a pure in-memory overlay resolver, the digest chain that names them
//! ([`DiffId`], [`ChainId`], [`ImageId`]), and layer tars in the forms real tools read and
//! write. No daemon, no root, no mounts.
//!
//! TOUR
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(missing_debug_implementations)]

pub mod archive;
pub mod config;
mod container;
mod diff;
pub mod digest;
mod entry;
mod error;
mod image;
pub mod layer;
mod path;
mod store;
pub mod tree;

pub use crate::config::ImageConfig;
pub use crate::container::{CommitOptions, Container};
pub use crate::diff::{Change, ChangeKind};
pub use crate::digest::{ChainId, DiffId, Digest, ImageId};
pub use crate::entry::{Entry, EntryKind, FileType, Metadata};
pub use crate::error::{Error, Result};
pub use crate::image::{HistoryRow, Image, ImageBuilder, Inspect, InspectRootFs};
pub use crate::layer::{Layer, LayerBuilder};
pub use crate::path::ImagePath;
pub use crate::store::{AddReport, LayerStatus, Removal, Store, Usage};
pub use crate::tree::{Node, Tree};
