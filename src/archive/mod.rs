//! Image formats on disk and on the wire.
//!
//! Today: the layer tar ([`Layer::from_tar`](crate::Layer::from_tar) reads any single-layer
//! tar met in the wild; [`Layer::tar`](crate::Layer::tar) gives the bytes back).
//!
//! # The canonical layer tar
//!
//! A layer built in code or from a diff is written in one fixed form, so equal changes always
//! give equal DiffIds:
//!
//! - records in path order, component by component (a directory before its children);
//! - names without a leading `./`, directories with a trailing `/`, the root as `./`;
//! - USTAR headers with empty user and group names; a PAX header only when a value does not
//!   fit: `path`/`linkpath` for names over 100 bytes or not ASCII, `uid`/`gid` over 2097151,
//!   `mtime` outside the 11-digit octal range, `size` over 8 GiB, `SCHILY.xattr.NAME` for
//!   every extended attribute;
//! - whiteouts (`.wh.NAME`) and opaque markers (`.wh..wh..opq`) as empty regular files with
//!   mode 0, owner 0:0 and mtime 0, as Docker and umoci write them;
//! - **mtimes**: entries keep the mtime they carry, nothing is clamped or set to "now";
//!   builders default to 0, and a container stamps what it changes with its clock
//!   ([`Container::set_clock`](crate::Container::set_clock));
//! - the archive ends with two zero blocks.

pub(crate) mod layer_tar;
