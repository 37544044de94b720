//! Building images from a Dockerfile, without a daemon (DESIGN.md §10).
//!
//! What is here so far is the Dockerfile language: [`Dockerfile::parse`] reads a Dockerfile
//! as the [reference] and BuildKit's parser do, into [`Instruction`]s whose arguments are not
//! yet expanded, and [`Lexer`] expands a word's variables as the reference defines it.
//!
//! ```
//! use layercake::build::{Dockerfile, Keyword};
//!
//! let dockerfile = Dockerfile::parse("FROM busybox\nCOPY --chown=me foo /tmp/\n")?;
//! let copy = &dockerfile.instructions()[1];
//! assert_eq!(copy.keyword(), Keyword::Copy);
//! assert_eq!(copy.flag("chown"), Some("me"));
//! # Ok::<(), layercake::Error>(())
//! ```
//!
//! The files of this module, top down:
//!
//! - `parser.rs` (and `parser/`): lines, parser directives, comments, continuations,
//!   heredocs; each instruction's flags and arguments.
//! - `words.rs`: the word lexer, variable substitution as the reference defines it
//!   (`$v`, `${v:-w}`, …), quotes and escapes, and which variables a word used ([`Lexer`]).
//! - Planned: `stage.rs` (stages, ARG scoping, which instructions expand), `executor.rs`
//!   (the RUN executors: in-process and a namespaced process), `cache.rs` (the build cache in
//!   the store), and the builder that runs a Dockerfile's steps on `Container`s and commits
//!   them as Docker's classic builder does.
//!
//! [reference]: https://docs.docker.com/reference/dockerfile/

mod builder;
mod executor;
mod parser;
mod stage;
mod words;

pub use builder::{Build, BuildReport, Context, StepReport};
pub use executor::{Executor, InProcess, Network, RunStep};
pub use parser::{Args, Directive, Dockerfile, Flag, Form, Heredoc, Instruction, Keyword};
pub use words::{Expansion, Lexer, Variables, WordError, WordErrorKind};
