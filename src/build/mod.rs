//! Building images from a Dockerfile, without a daemon (DESIGN.md §10).
//!
//! [`Build`] runs a Dockerfile's stages on [`Container`](crate::Container)s and commits each
//! step as Docker's classic builder does (its `created_by` strings, `empty_layer` for config
//! steps and for a RUN that changes nothing); RUN goes to an [`Executor`]: [`InProcess`] (a
//! closure over the container) or [`ProcessExecutor`] (the command run for real, in its own
//! namespaces, over an overlay mount of the image's layers, its changes read back).
//! [`Build::run_in`] builds in a [`Store`](crate::Store) with its build cache, as
//! `docker build` does in the daemon's: a step already made from the same parent, the same
//! instruction and the same sources is taken from the store, not run again.
//!
//! ```
//! use layercake::build::{Build, Context};
//!
//! let report = Build::new("FROM scratch\nENV GREETING=hi\nCOPY hello.txt /srv/\n")
//!     .context(Context::new().file("hello.txt", "hello\n"))
//!     .run()?;
//! let image = report.image;
//! assert_eq!(image.tree()?.read("srv/hello.txt")?, "hello\n");
//! assert_eq!(report.steps.len(), 3);
//! # Ok::<(), layercake::Error>(())
//! ```
//!
//! The files of this module, top down:
//!
//! - `parser.rs` (and `parser/`): lines, parser directives, comments, continuations,
//!   heredocs; each instruction's flags and arguments ([`Dockerfile::parse`]).
//! - `words.rs`: the word lexer, variable substitution as the reference defines it
//!   (`$v`, `${v:-w}`, …), quotes and escapes, and which variables a word used ([`Lexer`]).
//! - `executor.rs`: the [`Executor`] trait and [`InProcess`]; `process.rs` and `scan.rs`:
//!   [`ProcessExecutor`] (`unshare` over an overlay mount or an unpacked tree, the tree
//!   read back; `overlay.rs`: the layers as overlayfs lower directories).
//! - `stage.rs` (and `stage/copy.rs`, with `copy/tarsum.rs`: the classic builder's
//!   `file:`/`dir:` hashes): stages, ARG scope, which instructions expand, each
//!   instruction's effect and history row, and the build cache (each step's image kept in
//!   the store under its key, [`Build::run_in`]); `builder.rs`: [`Build`], [`Context`], the
//!   events and reports; `ignore.rs`: `.dockerignore` ([`Ignore`]).
//!
//! [reference]: https://docs.docker.com/reference/dockerfile/

mod builder;
mod executor;
mod ignore;
mod overlay;
mod parser;
mod process;
mod scan;
mod stage;
mod words;

pub use builder::{Build, BuildEvent, BuildReport, Context, StepReport};
pub use executor::{Executor, InProcess, Network, RunStep};
pub use ignore::{Ignore, IgnoreError, IgnoreErrorKind};
pub use parser::{Args, Directive, Dockerfile, Flag, Form, Heredoc, Instruction, Keyword};
pub use process::ProcessExecutor;
pub use words::{Expansion, Lexer, Variables, WordError, WordErrorKind};
